// The topometrics of an implicit MGE (#23): the same algorithms as on the explicit `Graph`
// and `UndirectedView`, fed by edges generated per node from the masks and the geometry.
// Every integer equals the explicit form's; every float agrees to rounding (same Lanczos
// start vectors and iterations, same summation order per node).

/// Per-thread scratch for a parallel pass (indexed by the scheduler's thread number).
private func scratchPerThread() -> [ImplicitScratch] { (0 ..< Parallel.threads).map { _ in ImplicitScratch() } }

/// Σ w over emitted edges.
struct WeightSum: EdgeSink {
    var sum = 0.0
    @inline(__always) mutating func emit(_ target: Int, _ weight: Float16) { sum += Double(widen(weight)) }
}

/// Σ w·x[target] over emitted edges, `L` lanes at a time (the block product).
struct LaneProduct<L: GatherLanes>: EdgeSink {
    let x: UnsafeMutablePointer<L>
    var s = L()
    @inline(__always) mutating func emit(_ target: Int, _ weight: Float16) { s = L.adding(s, Double(widen(weight)), x[target]) }
}

/// Counts targets not yet stamped, stamping them.
struct StampCounter: EdgeSink {
    let mark: UnsafeMutablePointer<UInt32>
    let stamp: UInt32
    var count = 0
    @inline(__always) mutating func emit(_ target: Int, _ weight: Float16) {
        if mark[target] != stamp { mark[target] = stamp; count += 1 }
    }
}

/// Appends targets to a list (unsorted).
struct TargetAppender: EdgeSink {
    var targets: [UInt32]
    @inline(__always) mutating func emit(_ target: Int, _ weight: Float16) { targets.append(UInt32(truncatingIfNeeded: target)) }
}

/// Sink/source/disconnected counts and removable edges from the degree arrays.
/// - Complexity: O(n).
public func localConnectivity(_ g: ImplicitGraph, compat: MetricsCompat)
    -> (sink: Int, source: Int, disconnected: Int, removableOut: Int, removableIn: Int) {
    localConnectivity(nodeCount: g.nodeCount, inDegree: { g.inDegree($0) }, outDegree: { g.outDegree($0) },
                      firstPartition: g.partitions.first?.count ?? 0,
                      lastPartition: g.partitions.last?.count ?? 0, compat: compat)
}

/// Σ_v |{v} ∪ N⁺(v)| (distinct), as `oneHopSizes` summed.
/// - Complexity: O(n + m) generation over the cores.
public func oneHopTotal(_ g: ImplicitGraph) -> Int {
    // No self-loop or repeated target: every out-edge adds one distinct node.
    if g.isSimple { return g.nodeCount + g.edgeCount }
    return Parallel.reduce(g.nodeCount, grain: 4096, 0, partial: { range in
        // The thread's number is not known here: one list per chunk (reused inside it).
        var list = EdgeList()
        var total = 0
        for v in range {
            g.outEdges(of: v, into: &list)
            var c = 1
            var last: UInt32 = .max
            for t in list.targets {
                if t != last && Int(t) != v { c += 1 }
                last = t
            }
            total += c
        }
        return total
    }, combine: +)
}

/// Σ_v of the closed 2-hop out-neighbourhood size, as `twoHopSizes` summed. Polls
/// `Cancellation` per chunk (partial result; the caller checks).
/// - Complexity: O(Σ_v Σ_{u∈N⁺(v)} (1 + outdeg(u))) generation; one n-entry stamp array per thread.
public func twoHopTotal(_ g: ImplicitGraph, progress: (any ProgressStage)? = nil) -> Int {
    let n = g.nodeCount
    let threads = Parallel.threads
    var stamps = [[UInt32]](repeating: [], count: threads)
    var totals = [Int](repeating: 0, count: threads)
    let scratch = scratchPerThread()
    stamps.withUnsafeMutableBufferPointer { sp in
    totals.withUnsafeMutableBufferPointer { tp in
        let stp = SharedMutablePointer(sp.baseAddress!)
        let tot = SharedMutablePointer(tp.baseAddress!)
        Parallel.forChunks(n, grain: 256, threads: threads) { t, range in
            if Cancellation.isRequested { return }
            if stp[t].isEmpty { stp[t] = [UInt32](repeating: UInt32.max, count: n) }
            let s = scratch[t]
            var sum = 0
            stp[t].withUnsafeMutableBufferPointer { mark in
                // Distinct nodes are counted by stamps, so the lists need no sorting.
                var first = TargetAppender(targets: s.out.targets)
                for v in range {
                    let stamp = UInt32(v)
                    mark[v] = stamp
                    first.targets.removeAll(keepingCapacity: true)
                    g.emitOut(v, &first)
                    var counter = StampCounter(mark: mark.baseAddress!, stamp: stamp)
                    for u in first.targets { counter.emit(Int(u), 0) }
                    for u in first.targets { g.emitOut(Int(u), &counter) }
                    sum += 1 + counter.count
                }
            }
            tot[t] += sum
            progress?.advance(by: range.count)
        }
    }}
    return totals.reduce(0, +)
}

/// Mean over nodes of (Σ in-weights + Σ out-weights) = 2·Σw / n.
/// - Complexity: O(n + m) generation over the cores.
public func meanStrength(_ g: ImplicitGraph) -> Double {
    guard g.nodeCount > 0 else { return 0 }
    let s = Parallel.reduce(g.nodeCount, grain: 4096, 0.0, partial: { range in
        var sink = WeightSum()
        for v in range { g.emitOut(v, &sink) }
        return sink.sum
    }, combine: +)
    return 2 * s / Double(g.nodeCount)
}

/// Core numbers (Batagelj–Zaversnik) with degree = in + out, as `coreNumbers(Graph)`.
/// - Complexity: O(n + m) time (each node's lists generated once, when it is processed),
///   O(n + maxDegree) memory.
public func coreNumbers(_ g: ImplicitGraph, progress: (any ProgressStage)? = nil) -> [Int32] {
    let n = g.nodeCount
    var (deg, pos, vert, bin) = coreBins(nodeCount: n) { g.outDegree($0) + g.inDegree($0) }
    deg.withUnsafeMutableBufferPointer { deg in
    pos.withUnsafeMutableBufferPointer { pos in
    vert.withUnsafeMutableBufferPointer { vert in
    bin.withUnsafeMutableBufferPointer { bin in
        // Core numbers do not depend on the order neighbours are relaxed in: the edges are
        // taken as generated.
        var relax = CoreRelax(deg: deg.baseAddress!, pos: pos.baseAddress!, vert: vert.baseAddress!, bin: bin.baseAddress!, v: 0)
        for i in 0 ..< n {
            if i & 0xFFFF == 0 {
                if Cancellation.isRequested { return }
                progress?.advance(by: min(0x10000, n - i))
            }
            relax.v = Int(vert[i])
            g.emitOut(relax.v, &relax)
            g.emitIn(relax.v, &relax)
        }
    }}}}
    return deg
}

/// One step of Batagelj–Zaversnik for every neighbour u of the node v being processed.
struct CoreRelax: EdgeSink {
    let deg: UnsafeMutablePointer<Int32>
    let pos: UnsafeMutablePointer<Int>
    let vert: UnsafeMutablePointer<Int32>
    let bin: UnsafeMutablePointer<Int>
    var v: Int
    @inline(__always) mutating func emit(_ u: Int, _ weight: Float16) {
        let du = Int(deg[u])
        if du > Int(deg[v]) {
            let pu = pos[u], pw = bin[du], w = Int(vert[pw])
            if u != w { pos[u] = pw; vert[pu] = Int32(w); pos[w] = pu; vert[pw] = Int32(u) }
            bin[du] += 1
            deg[u] -= 1
        }
    }
}

/// Union–find over the emitted edges of node u.
struct UnionSink: EdgeSink {
    let p: UnsafeMutablePointer<Int32>
    let size: UnsafeMutablePointer<Int32>
    var u: Int32
    @inline(__always) func find(_ x0: Int32) -> Int32 {
        var x = x0
        while p[Int(x)] != x { p[Int(x)] = p[Int(p[Int(x)])]; x = p[Int(x)] }
        return x
    }
    @inline(__always) mutating func emit(_ target: Int, _ weight: Float16) {
        var a = find(u), b = find(Int32(target))
        if a == b { return }
        if size[Int(a)] < size[Int(b)] { swap(&a, &b) }
        p[Int(b)] = a
        size[Int(a)] += size[Int(b)]
    }
}

/// Number of weakly connected components (union–find over generated out-edges).
/// - Complexity: O(n + m·α(n)) time, O(n) memory.
public func weakComponentCount(_ g: ImplicitGraph) -> Int {
    let n = g.nodeCount
    var parent = [Int32](unsafeUninitializedCapacity: n) { buf, c in
        for i in 0 ..< n { buf[i] = Int32(i) }
        c = n
    }
    var size = [Int32](repeating: 1, count: n)
    parent.withUnsafeMutableBufferPointer { p in
    size.withUnsafeMutableBufferPointer { sz in
        guard n > 0 else { return }
        var sink = UnionSink(p: p.baseAddress!, size: sz.baseAddress!, u: 0)
        for u in 0 ..< n {
            if u & 0xFFFF == 0 && Cancellation.isRequested { return }
            sink.u = Int32(u)
            g.emitOut(u, &sink)
        }
    }}
    var count = 0
    for v in 0 ..< n where parent[v] == Int32(v) { count += 1 }
    return count
}

/// Bridges and articulation points of the undirected view (the iterative Hopcroft–Tarjan DFS
/// of `bridgesAndArticulationPoints`), over generated rows: each node on the DFS stack keeps
/// its row in an arena that grows on push and shrinks on pop.
/// - Complexity: O(n + m) time; O(n) plus the rows of the nodes on the current DFS path.
public func bridgesAndArticulationPoints(_ g: ImplicitGraph, progress: (any ProgressStage)? = nil)
    -> (bridges: Int, articulationPoints: Int) {
    let n = g.nodeCount
    var disc = [Int32](repeating: -1, count: n)
    var low = [Int32](repeating: 0, count: n)
    var isCut = [Bool](repeating: false, count: n)
    var stackNode = [Int32](repeating: 0, count: n)
    var stackTreeMulti = [Bool](repeating: false, count: n)   // the tree edge into the frame's node
    var stackNext = [Int](repeating: 0, count: n)
    var stackEnd = [Int](repeating: 0, count: n)
    var arena: [UInt32] = []
    var arenaMulti: [Bool] = []
    let s = ImplicitScratch()
    var bridges = 0
    var time: Int32 = 0
    var visited = 0
    /// Pushes u's row on the arena; returns its end.
    let simple = g.isSimple
    var appender = TargetAppender(targets: [])
    func pushRow(_ u: Int) -> Int {
        if simple {
            // Out- and in-edges, each pair once: no merge (the DFS visits them in another
            // order than the explicit form's, which leaves bridges and cut nodes unchanged).
            swap(&appender.targets, &arena)
            g.emitOut(u, &appender)
            g.emitIn(u, &appender)
            swap(&appender.targets, &arena)
            arenaMulti.append(contentsOf: repeatElement(false, count: arena.count - arenaMulti.count))
        } else {
            g.undirectedRow(of: u, s, weights: false)
            arena.append(contentsOf: s.row.neighbors)
            arenaMulti.append(contentsOf: s.row.multi)
        }
        return arena.count
    }
    for root in 0 ..< n where disc[root] < 0 {
        if Cancellation.isRequested { break }
        arena.removeAll(keepingCapacity: true); arenaMulti.removeAll(keepingCapacity: true)
        var top = 0
        stackNode[0] = Int32(root); stackTreeMulti[0] = false; stackNext[0] = 0
        stackEnd[0] = pushRow(root)
        disc[root] = time; low[root] = time; time += 1
        visited += 1
        if stackEnd[0] == 0 { continue }
        var rootChildren = 0
        while top >= 0 {
            let u = Int(stackNode[top])
            let e = stackNext[top]
            if e < stackEnd[top] {
                stackNext[top] = e + 1
                let w = Int(arena[e])
                if disc[w] < 0 {
                    disc[w] = time; low[w] = time; time += 1
                    visited += 1
                    if visited & 0xFFFF == 0 {
                        progress?.advance(by: 0x10000)
                        if Cancellation.isRequested { return (bridges, 0) }
                    }
                    let multi = arenaMulti[e]
                    top += 1
                    stackNode[top] = Int32(w); stackTreeMulti[top] = multi
                    stackNext[top] = arena.count
                    stackEnd[top] = pushRow(w)
                    if u == root { rootChildren += 1 }
                } else if top > 0 && w == Int(stackNode[top - 1]) && !arenaMulti[e] {
                    // The single tree edge back to the parent: not a back edge.
                } else if disc[w] < low[u] {
                    low[u] = disc[w]
                }
            } else {
                let rowStart = top > 0 ? stackEnd[top - 1] : 0
                arena.removeSubrange(rowStart...)
                arenaMulti.removeSubrange(rowStart...)
                top -= 1
                if top >= 0 {
                    let p = Int(stackNode[top])
                    if low[u] < low[p] { low[p] = low[u] }
                    if low[u] > disc[p] && !stackTreeMulti[top + 1] { bridges += 1 }
                    if p != root && low[u] >= disc[p] { isCut[p] = true }
                }
            }
        }
        if rootChildren >= 2 { isCut[root] = true }
    }
    var cuts = 0
    for v in 0 ..< n where isCut[v] { cuts += 1 }
    return (bridges, cuts)
}

/// W = Σ_{uv∈E} min(d_u, d_v) over the undirected view, as `motifCensusWork(view)`.
/// - Complexity: O(n + m) generation over the cores.
func motifCensusWork(_ g: ImplicitGraph, degrees: [Int32]) -> Int {
    Parallel.reduce(g.nodeCount, grain: 4096, 0, partial: { range in
        let s = ImplicitScratch()
        var work = 0
        for u in range {
            g.undirectedRow(of: u, s, weights: false)
            let du = Int(degrees[u])
            for v in s.row.neighbors {
                if Int(v) >= u { break }
                work += min(du, Int(degrees[Int(v)]))
            }
        }
        return work
    }, combine: +)
}

/// Per-root ESU counts (as `esuRootCounts(view, roots:)`) over generated rows.
/// - Complexity: as `esuRootCounts`, plus the generation of every row it reads.
func esuRootCounts(_ g: ImplicitGraph, roots: [Int]) -> [Int] {
    let n = g.nodeCount
    var result = [Int](repeating: 0, count: roots.count)
    result.withUnsafeMutableBufferPointer { rp in
        let res = SharedMutablePointer(rp.baseAddress!)
        Parallel.forChunks(roots.count, grain: 1) { _, range in
            var markV = [UInt32](repeating: UInt32.max, count: n)
            var markW = [UInt32](repeating: UInt32.max, count: n)
            var stampW: UInt32 = 0
            var ext2: [UInt32] = []
            let s = ImplicitScratch()
            markV.withUnsafeMutableBufferPointer { mv in
            markW.withUnsafeMutableBufferPointer { mw in
                for ri in range {
                    if Cancellation.isRequested { break }
                    let v = roots[ri]
                    guard v >= 0 && v < n else { continue }
                    let sv = UInt32(ri)
                    g.undirectedRow(of: v, s, weights: false)
                    let nv = s.row.neighbors
                    mv[v] = sv
                    for x in nv { mv[Int(x)] = sv }
                    var s1 = 0
                    while s1 < nv.count && Int(nv[s1]) <= v { s1 += 1 }
                    var total = 0
                    var i = s1
                    while i < nv.count {
                        let w1 = Int(nv[i])
                        stampW &+= 1
                        if stampW == UInt32.max { for k in 0 ..< n { mw[k] = UInt32.max }; stampW = 0 }
                        g.undirectedRow(of: w1, s, weights: false)
                        let n1 = s.row.neighbors
                        mw[w1] = stampW
                        for x in n1 { mw[Int(x)] = stampW }
                        mw[v] = stampW
                        for x in nv { mw[Int(x)] = stampW }
                        ext2.removeAll(keepingCapacity: true)
                        var r = i + 1
                        while r < nv.count { ext2.append(nv[r]); r += 1 }
                        for x in n1 where Int(x) > v && mv[Int(x)] != sv { ext2.append(x) }
                        for j in 0 ..< ext2.count {
                            let w2 = Int(ext2[j])
                            total += ext2.count - j - 1
                            g.undirectedRow(of: w2, s, weights: false)
                            for x in s.row.neighbors where Int(x) > v && mw[Int(x)] != stampW { total += 1 }
                        }
                        i += 1
                    }
                    res[ri] = total
                }
            }}
        }
    }
    return result
}

/// The motifs field under `mode`, as `motifValue(view, mode:)`: the exact census (on a view
/// built from generated rows, since the census needs the whole adjacency) when chosen, else
/// the RAND-ESU estimate over generated rows.
public func motifValue(_ g: ImplicitGraph, mode motifs: MotifMode) -> MetricValue {
    let n = g.nodeCount
    var mode = motifs
    if case let .auto(limit) = motifs {
        let degrees = g.undirectedDegrees()
        mode = motifCensusWork(g, degrees: degrees) <= limit ? .exact : .estimate(sample: .reference(seed: 0))
    }
    switch mode {
    case .exact, .auto: return .int(connectedFourSets(g.undirectedView(weights: false)))
    case let .estimate(sample):
        let roots: [Int]
        switch sample {
        case let .reference(seed): roots = motifSampleRoots(nodeCount: n, seed: seed)
        case let .count(c, seed): roots = motifSampleRoots(nodeCount: n, sample: c, seed: seed)
        case let .roots(list): roots = list.filter { $0 >= 0 && $0 < n }
        }
        guard !roots.isEmpty else { return .double(0) }
        let counts = esuRootCounts(g, roots: roots)
        return .double(Double(counts.reduce(0, +)) * Double(n) / Double(roots.count))
    }
}

/// The symmetric weighted adjacency (or Laplacian) of the implicit MGE's undirected view:
/// the same matrix as `SymmetricGraphOperator(view: UndirectedView(graph))`, its rows
/// generated per product (masked conv and conv-transpose taps) instead of stored.
final class ImplicitSymmetricOperator: @unchecked Sendable {
    let graph: ImplicitGraph
    let laplacian: Bool
    let diagonal: [Double]
    let workspace = BlockWorkspace()
    let scratch: [ImplicitScratch]

    init(_ graph: ImplicitGraph, laplacian: Bool) {
        self.graph = graph
        self.laplacian = laplacian
        let scratch = scratchPerThread()
        self.scratch = scratch
        var d = [Double](repeating: 0, count: laplacian ? graph.nodeCount : 0)
        if laplacian {
            d.withUnsafeMutableBufferPointer { dp in
                let p = SharedMutablePointer(dp.baseAddress ?? UnsafeMutablePointer(bitPattern: 8)!)
                Parallel.forChunks(graph.nodeCount, grain: 4096) { t, range in
                    for v in range {
                        if graph.isSimple {
                            var sink = WeightSum()
                            graph.emitOut(v, &sink)
                            graph.emitIn(v, &sink)
                            p[v] = sink.sum
                        } else {
                            graph.undirectedRow(of: v, scratch[t], weights: true)
                            var s = 0.0
                            for w in scratch[t].row.weights { s += Double(w) }
                            p[v] = s
                        }
                    }
                }
            }
        }
        diagonal = d
    }

    /// Whether the view has any entry (a graph of self-loops only has none).
    func hasEntries() -> Bool {
        let s = ImplicitScratch()
        for v in 0 ..< graph.nodeCount where graph.outDegree(v) > 0 {
            graph.undirectedRow(of: v, s, weights: false)
            if !s.row.neighbors.isEmpty { return true }
        }
        return false
    }

    /// Y = M X for `count` column-major vectors, in groups of up to eight lanes like
    /// `SymmetricGraphOperator.apply(block:)` (the same per-row summation order).
    /// - Complexity: O(n + m) generation per group.
    func apply(block x: UnsafePointer<Double>, _ y: UnsafeMutablePointer<Double>, count b: Int) {
        let n = graph.nodeCount
        if n == 0 || b <= 0 { return }
        var g = 0
        while g < b {
            let w = min(8, b - g)
            if w > 4 { product(SIMD8<Double>.self, x + g * n, y + g * n, width: w) } else { product(SIMD4<Double>.self, x + g * n, y + g * n, width: w) }
            g += w
        }
    }

    private func product<L: GatherLanes>(_: L.Type, _ x: UnsafePointer<Double>, _ y: UnsafeMutablePointer<Double>, width w: Int) {
        let n = graph.nodeCount
        let xi = workspace.interleaved(L.self, n: n)
        Parallel.forChunks(n, grain: 8192) { _, r in
            for v in r {
                var s = L()
                for c in 0 ..< w { s[c] = x[c * n + v] }
                xi[v] = s
            }
        }
        let yp = SharedMutablePointer(y)
        let xs = SharedMutablePointer(xi)
        let lap = laplacian, graph = self.graph, scratch = self.scratch
        diagonal.withUnsafeBufferPointer { dg in
            Parallel.forChunks(n, grain: 2048) { t, r in
                let xi = xs.base
                let sc = scratch[t]
                for u in r {
                    var s = L()
                    if graph.isSimple {
                        // The row is the out- and in-edges: a masked conv and its transpose,
                        // summed in generation order (rounding-level differences only).
                        var sink = LaneProduct<L>(x: xi)
                        graph.emitOut(u, &sink)
                        graph.emitIn(u, &sink)
                        s = sink.s
                    } else {
                        graph.undirectedRow(of: u, sc, weights: true)
                        let nb = sc.row.neighbors, wt = sc.row.weights
                        for e in nb.indices { s = L.adding(s, Double(wt[e]), xi[Int(nb[e])]) }
                    }
                    if lap { s = L.adding(L.adding(L(), dg[u], xi[u]), -1, s) }
                    for c in 0 ..< w { yp[c * n + u] = s[c] }
                }
            }
        }
    }

    /// The dense matrix (row-major), for dimensions under the dense threshold.
    func dense() -> [Double] {
        let n = graph.nodeCount
        var a = [Double](repeating: 0, count: n * n)
        let s = ImplicitScratch()
        for v in 0 ..< n {
            graph.undirectedRow(of: v, s, weights: true)
            for (k, u) in s.row.neighbors.enumerated() { a[v * n + Int(u)] = laplacian ? -Double(s.row.weights[k]) : Double(s.row.weights[k]) }
            if laplacian { a[v * n + v] = diagonal[v] }
        }
        return a
    }

    func eigenvalues(k: Int, target: EigenTarget, options: LanczosOptions) -> EigenResult {
        graphEigenvalues(dimension: graph.nodeCount, dense: { dense() }, k: k, target: target, options: options) { x, y, b in
            apply(block: x, y, count: b)
        }
    }
}

/// Three largest |λ| of the weighted adjacency, descending (as `topAbsEigenvalues(view)`).
public func topAbsEigenvalues(_ g: ImplicitGraph, count: Int = 3, options: LanczosOptions = LanczosOptions()) -> [Double] {
    let op = ImplicitSymmetricOperator(g, laplacian: false)
    if !op.hasEntries() { return [Double](repeating: 0, count: count) }
    var a = op.eigenvalues(k: count, target: .largestMagnitude, options: options).values.map { abs($0) }.sorted(by: >)
    while a.count < count { a.append(0) }
    return a
}

/// Largest eigenvalue of the weighted Laplacian (as `laplacianSpectralRadius(view)`).
public func laplacianSpectralRadius(_ g: ImplicitGraph, options: LanczosOptions = LanczosOptions()) -> Double {
    let op = ImplicitSymmetricOperator(g, laplacian: true)
    if !op.hasEntries() { return 0 }
    var o = options
    o.checkMultiplicity = false
    return op.eigenvalues(k: 1, target: .largestAlgebraic, options: o).values.first ?? 0
}

/// All (or `only`) topometrics of an implicit MGE: the same record as `topometrics(Graph)`
/// on `unroll(net)` of the same network (integers identical, floats to rounding), in O(n +
/// weights) memory. Each metric reports its progress as a stage; Ctrl-C is polled inside the
/// long passes and checked between metrics.
/// - Throws: `TopometricsError.unknownField`; `InterruptedError` when cancelled.
/// - Complexity: the explicit form's, with each edge generated (a few ns) instead of read.
public func topometrics(_ g: ImplicitGraph, compat: MetricsCompat = .paper, motifs: MotifMode = MotifMode.defaultMode,
                        only: Set<String>? = nil, lanczos: LanczosOptions = .wholeGraph) throws -> Topometrics {
    if let only { for f in only where !Topometrics.fieldNames.contains(f) { throw TopometricsError.unknownField(f) } }
    func want(_ f: String) -> Bool { only?.contains(f) ?? true }
    var r = Topometrics(nodes: g.nodeCount, edges: g.edgeCount)
    let n = g.nodeCount
    func stage<T>(_ name: String, total: Int = 1, _ body: (any ProgressStage) throws -> T) throws -> T {
        let p = Progress.begin(name, total: total, unit: total > 1 ? "nodes" : "")
        defer { p.finish() }
        let v = try body(p)
        try Cancellation.check()
        return v
    }
    if want("sink_nodes") || want("source_nodes") || want("disconnected_nodes") || want("removable_out_edges") || want("removable_in_edges") {
        let l = localConnectivity(g, compat: compat)
        if want("sink_nodes") { r.sinkNodes = l.sink }
        if want("source_nodes") { r.sourceNodes = l.source }
        if want("disconnected_nodes") { r.disconnectedNodes = l.disconnected }
        if want("removable_out_edges") { r.removableOutEdges = l.removableOut }
        if want("removable_in_edges") { r.removableInEdges = l.removableIn }
    }
    if want("one_hop") { r.oneHop = try stage("one_hop") { _ in n == 0 ? 0 : Double(oneHopTotal(g)) / Double(n) } }
    if want("two_hop") { r.twoHop = try stage("two_hop", total: n) { p in n == 0 ? 0 : Double(twoHopTotal(g, progress: p)) / Double(n) } }
    if want("strength") { r.strength = try stage("strength") { _ in meanStrength(g) } }
    if want("k_core") {
        r.kCore = try stage("k_core", total: n) { p in n == 0 ? 0 : meanOf(coreNumbers(g, progress: p)) }
    }
    if want("components") || want("mean_component_size") {
        let c = try stage("components") { _ in weakComponentCount(g) }
        if want("components") { r.components = c }
        if want("mean_component_size") { r.meanComponentSize = c == 0 ? 0 : Double(n) / Double(c) }
    }
    if want("cut_edges") || want("cut_nodes") {
        let b = try stage("cut edges and nodes", total: n) { p in bridgesAndArticulationPoints(g, progress: p) }
        if want("cut_edges") { r.cutEdges = b.bridges }
        if want("cut_nodes") { r.cutNodes = b.articulationPoints }
    }
    if want("motifs") { r.motifs = try stage("motifs") { _ in motifValue(g, mode: motifs) } }
    // The Lanczos basis holds (basis + block) vectors of n doubles: 13.7 G of them for
    // VGG-16 at 224 with the default 80. Where that exceeds a sixth of the memory the basis
    // shrinks (to no fewer than 32 vectors): more restarts, the same tolerance; never on the
    // CIFAR models, whose records stay identical to the explicit form's.
    var lanczos = lanczos
    let budget = CheckedSize.physicalMemory / 6, perVector = 8 * max(n, 1)
    if perVector * (lanczos.basisSize + 8) > budget { lanczos.basisSize = max(32, budget / perVector - 8) }
    if want("spectral_gap"), g.edgeCount > 0 {
        let top = try stage("spectral_gap") { _ in topAbsEigenvalues(g, options: lanczos) }
        r.topAbsEigenvalues = top
        r.spectralGap = top[0] - top[2]
    }
    if want("spectral_radius"), g.edgeCount > 0 {
        r.spectralRadius = try stage("spectral_radius") { _ in laplacianSpectralRadius(g, options: lanczos) }
    }
    return r
}
