// The unrolled multipartite encoding without its edge list (#23): every MGE edge is a
// (kept weight, output position) pair, so a node's neighbours are generated from the masks
// and the conv geometry whenever a metric asks for them.

/// One node's edges as the generator emits them (reused between nodes: no allocation per node).
struct EdgeList: EdgeSink {
    var targets: [UInt32] = []
    var weights: [Float16] = []
    @inline(__always) mutating func emit(_ target: Int, _ weight: Float16) {
        targets.append(UInt32(truncatingIfNeeded: target))
        weights.append(weight)
    }
    mutating func clear() { targets.removeAll(keepingCapacity: true); weights.removeAll(keepingCapacity: true) }
    var count: Int { targets.count }

    /// Sorts by neighbour id, stably (parallel edges keep their emission order), exactly as
    /// `Graph.build` sorts a slice it filled unsorted.
    mutating func sortStably() {
        var sorted = true
        for k in targets.indices.dropFirst() where targets[k - 1] > targets[k] { sorted = false; break }
        if sorted { return }
        let pairs = zip(targets, weights).enumerated().sorted { ($0.element.0, $0.offset) < ($1.element.0, $1.offset) }
        for (k, p) in pairs.enumerated() { targets[k] = p.element.0; weights[k] = p.element.1 }
    }
}

/// One node's neighbours in the undirected simple view (`UndirectedView`'s row, generated).
struct UndirectedRow {
    var neighbors: [UInt32] = []
    var weights: [Float] = []
    /// Whether the pair had two or more directed edges (never a bridge).
    var multi: [Bool] = []
    mutating func clear() {
        neighbors.removeAll(keepingCapacity: true); weights.removeAll(keepingCapacity: true)
        multi.removeAll(keepingCapacity: true)
    }
}

/// A thread's buffers for generating one node's rows.
final class ImplicitScratch {
    var out = EdgeList()
    var into = EdgeList()
    var row = UndirectedRow()
    var second = EdgeList()
}

/// The implicit MGE: the network's nonzero weights grouped by input and by output channel
/// (`UnrolledEdges`), the node layout, and each node's in- and out-degree. Node ids,
/// neighbour order and edge weights are exactly those of `unroll(_:compat:)`'s `Graph`.
///
/// Memory: 8 bytes per node (two Int32 degrees) plus 2×12 bytes per nonzero weight (the taps
/// in both groupings) — never O(edges).
public final class ImplicitGraph: @unchecked Sendable {
    public let nodeCount: Int
    public let partitions: [Partition]
    public let plan: UnrollPlan
    let edges: UnrolledEdges
    public let outDegrees: [Int32]
    public let inDegrees: [Int32]
    /// Directed edges, as `Graph.edgeCount` would count them.
    public let edgeCount: Int
    /// No self-loop and no pair joined by two or more directed edges (in either direction):
    /// then a node's undirected row is its out- and in-edges, each once, and the metrics skip
    /// the sort-and-merge. True in paper mode (every layer writes a later partition, and the
    /// writers of a partition read distinct partitions, so no (source, target) pair repeats);
    /// false under the reference's quirk, which lays a layer's outputs inside its input's, and
    /// when an overlapping pool feeds a k > 1 conv or a linear layer (one pixel then reaches one
    /// target through two windows: a parallel edge, `UnrolledEdges.hasRepeatedPairs`).
    public let isSimple: Bool

    /// Lays out the nodes and counts every node's degrees (one generation pass per direction).
    /// - Complexity: O(n + m) time over the cores; O(n + weights) memory.
    public init(_ network: Network, compat: UnrollCompat = .paper) throws {
        let plan = try UnrollPlan(network.architecture, compat: compat)
        let edges = try UnrolledEdges(plan: plan, network: network)
        let n = plan.nodeCount
        guard n < Int(UInt32.max) else { throw GraphBuildError.tooManyNodes(n) }
        self.plan = plan
        self.edges = edges
        nodeCount = n
        partitions = plan.partitions
        var outD = [Int32](repeating: 0, count: n), inD = [Int32](repeating: 0, count: n)
        outD.withUnsafeMutableBufferPointer { op in
        inD.withUnsafeMutableBufferPointer { ip in
            let o = SharedMutablePointer(op.baseAddress ?? UnsafeMutablePointer(bitPattern: 8)!)
            let i = SharedMutablePointer(ip.baseAddress ?? UnsafeMutablePointer(bitPattern: 8)!)
            Parallel.forChunks(n, grain: 4096) { _, range in
                for v in range {
                    var c = DegreeCounter()
                    edges.emitOutEdges(of: v, into: &c)
                    o[v] = Int32(c.count)
                    var d = DegreeCounter()
                    edges.emitInEdges(of: v, into: &d)
                    i[v] = Int32(d.count)
                }
            }
        }}
        var outTotal = 0, inTotal = 0
        for v in 0 ..< n { outTotal += Int(outD[v]); inTotal += Int(inD[v]) }
        guard outTotal == inTotal else { throw GraphBuildError.inconsistentGenerator(outEdges: outTotal, inEdges: inTotal) }
        outDegrees = outD
        inDegrees = inD
        edgeCount = outTotal
        isSimple = !edges.writersInterleaved.contains(true) && !edges.hasRepeatedPairs && plan.layers.allSatisfy { l in
            !l.croppedLeftGrid && l.sourcePartition < l.targetPartition && l.targetBase == plan.partitions[l.targetPartition].start
        }
    }

    @inline(__always) public func outDegree(_ v: Int) -> Int { Int(outDegrees[v]) }
    @inline(__always) public func inDegree(_ v: Int) -> Int { Int(inDegrees[v]) }

    /// The partition holding node `v`. - Complexity: O(log p)
    public func partitionIndex(of v: Int) -> Int { edges.partitionIndex(of: v) }

    /// Bytes held: degrees, taps in both groupings and their offsets.
    public var byteSize: Int {
        var b = 2 * 4 * nodeCount
        for l in edges.layers { b += (l.taps.count + l.inTaps.count) * MemoryLayout<Tap>.stride + (l.tapStart.count + l.inTapStart.count) * 8 }
        return b
    }

    /// Bytes the explicit `Graph` of the same network would hold (`Graph.byteSize`).
    public var explicitByteSize: Int { 2 * (nodeCount + 1) * 8 + edgeCount * 12 }

    /// An upper bound of `Graph.byteSize` for `unroll(network, compat:)`, from the layer plan and
    /// the kept-weight counts alone (every kept tap counted at every output position, times
    /// the pooling window): lets `unroll` pick a form without generating any edge.
    /// - Complexity: O(weights).
    public static func explicitByteUpperBound(_ network: Network, compat: UnrollCompat = .paper) throws -> Int {
        let plan = try UnrollPlan(network.architecture, compat: compat)
        var edges = 0
        for layer in plan.layers {
            guard let w = network.parameters[layer.name + ".weight"] else { throw UnrollError.missingWeight(layer.name + ".weight") }
            var kept = 0
            for x in w.data where x != 0 { kept += 1 }
            let window = layer.pool.kernel * layer.pool.kernel
            switch layer.kind {
            case .conv: edges += kept * (layer.outputShape.count == 3 ? layer.outputShape[1] * layer.outputShape[2] : 1) * window
            case .linear: edges += kept * (layer.flattenedShape == nil ? 1 : window)
            }
        }
        return 2 * (plan.nodeCount + 1) * 8 + edges * 12
    }

    /// Writes in_degree, out_degree and layer_sizes as `Graph.exportDegrees` does.
    public func exportDegrees(to path: String) throws {
        try SafeTensors.write([
            ("in_degree", SafeTensor(int32: inDegrees, shape: [nodeCount])),
            ("layer_sizes", SafeTensor(int64: partitions.map { Int64($0.count) }, shape: [partitions.count])),
            ("out_degree", SafeTensor(int32: outDegrees, shape: [nodeCount])),
        ], path: path)
    }

    /// Emits `v`'s out-edges in generation order (unsorted), straight into `sink`.
    @inline(__always) func emitOut<S: EdgeSink>(_ v: Int, _ sink: inout S) { edges.emitOutEdges(of: v, into: &sink) }
    /// Emits `v`'s in-edges in generation order.
    @inline(__always) func emitIn<S: EdgeSink>(_ v: Int, _ sink: inout S) { edges.emitInEdges(of: v, into: &sink) }

    /// `v`'s out-edges, targets ascending (parallel edges in generation order), as in `Graph`.
    func outEdges(of v: Int, into list: inout EdgeList) {
        list.clear()
        edges.emitOutEdges(of: v, into: &list)
        if edges.mayEmitUnsorted(v) { list.sortStably() }
    }

    /// `v`'s in-edges, sources ascending, as in `Graph`.
    func inEdges(of v: Int, into list: inout EdgeList) {
        list.clear()
        edges.emitInEdges(of: v, into: &list)
        if edges.mayEmitInUnsorted(v) { list.sortStably() }
    }

    /// Out-neighbour ids of `v` (ascending, with multiplicity), for queries.
    public func outNeighbors(_ v: Int) -> [Int] {
        var l = EdgeList(); outEdges(of: v, into: &l); return l.targets.map { Int($0) }
    }
    /// In-neighbour ids of `v` (ascending, with multiplicity).
    public func inNeighbors(_ v: Int) -> [Int] {
        var l = EdgeList(); inEdges(of: v, into: &l); return l.targets.map { Int($0) }
    }

    /// `u`'s row of the undirected simple view: its out- and in-lists merged, self-loops
    /// dropped, a pair's weight that of its first edge in out-CSR order — the same entries,
    /// order, weights and multiplicity flags as `UndirectedView(graph)`'s row.
    /// - Complexity: O(d(u)) plus the generation.
    func undirectedRow(of u: Int, _ s: ImplicitScratch, weights withWeights: Bool) {
        outEdges(of: u, into: &s.out)
        inEdges(of: u, into: &s.into)
        s.row.clear()
        s.out.targets.withUnsafeBufferPointer { ot in
        s.out.weights.withUnsafeBufferPointer { ow in
        s.into.targets.withUnsafeBufferPointer { isrc in
        s.into.weights.withUnsafeBufferPointer { iw in
            let none = UnsafePointer<UInt32>(bitPattern: 8)!, noWeight = UnsafePointer<Float16>(bitPattern: 8)!
            mergeUndirectedRow(u, out: ot.baseAddress ?? none, ow.baseAddress ?? noWeight, ot.count,
                               in: isrc.baseAddress ?? none, iw.baseAddress ?? noWeight, isrc.count) { x, w, multi in
                s.row.neighbors.append(x)
                if withWeights { s.row.weights.append(widen(w)) }
                s.row.multi.append(multi)
            }
        }}}}
    }

    /// The explicit undirected view, built row by row from generated edges (for the exact motif
    /// census, which needs the whole adjacency anyway).
    /// - Complexity: O(n + m) time; 8 bytes per entry (12 with weights).
    func undirectedView(weights withWeights: Bool) -> UndirectedView {
        let n = nodeCount
        let degrees = undirectedDegrees()
        var offsets = [Int](repeating: 0, count: n + 1)
        for v in 0 ..< n { offsets[v + 1] = offsets[v] + Int(degrees[v]) }
        let total = offsets[n]
        var nb = [UInt32](repeating: 0, count: total)
        var wt = [Float](repeating: 0, count: withWeights ? total : 0)
        let threads = Parallel.threads
        var multiEntries = [[Int]](repeating: [], count: threads)
        let scratch = (0 ..< threads).map { _ in ImplicitScratch() }
        nb.withUnsafeMutableBufferPointer { nbp in
        wt.withUnsafeMutableBufferPointer { wtp in
        multiEntries.withUnsafeMutableBufferPointer { mep in
            let np = SharedMutablePointer(nbp.baseAddress ?? UnsafeMutablePointer(bitPattern: 8)!)
            let wp = withWeights ? wtp.baseAddress.map { SharedMutablePointer($0) } : nil
            let mp = SharedMutablePointer(mep.baseAddress!)
            Parallel.forChunks(n, grain: 4096, threads: threads) { t, range in
                let s = scratch[t]
                for u in range {
                    undirectedRow(of: u, s, weights: withWeights)
                    var slot = offsets[u]
                    for k in s.row.neighbors.indices {
                        np[slot] = s.row.neighbors[k]
                        if let wp { wp[slot] = s.row.weights[k] }
                        if s.row.multi[k] { mp[t].append(slot) }
                        slot += 1
                    }
                }
            }
        }}}
        let any = multiEntries.contains { !$0.isEmpty }
        var bits = [UInt64](repeating: 0, count: any ? (total + 63) / 64 : 0)
        for list in multiEntries { for e in list { bits[e >> 6] |= 1 << UInt64(e & 63) } }
        return UndirectedView(nodeCount: n, offsets: offsets, neighbors: nb, weights: wt, multiBits: bits)
    }

    /// Each node's degree in the undirected simple view.
    /// - Complexity: O(n + m) over the cores; 4 bytes per node.
    func undirectedDegrees() -> [Int32] {
        let n = nodeCount
        var d = [Int32](repeating: 0, count: n)
        let scratch = (0 ..< Parallel.threads).map { _ in ImplicitScratch() }
        d.withUnsafeMutableBufferPointer { dp in
            let p = SharedMutablePointer(dp.baseAddress ?? UnsafeMutablePointer(bitPattern: 8)!)
            Parallel.forChunks(n, grain: 4096) { t, range in
                for u in range {
                    if Cancellation.isRequested { return }
                    undirectedRow(of: u, scratch[t], weights: false)
                    p[u] = Int32(scratch[t].row.neighbors.count)
                }
            }
        }
        return d
    }
}
