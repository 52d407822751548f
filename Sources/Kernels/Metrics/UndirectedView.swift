/// The undirected simple view of a directed `Graph`: one entry per adjacent pair and
/// direction (both `u→w` and `w→u` appear), self-loops dropped, parallel and antiparallel
/// edges merged.
///
/// Weight of a merged pair `{u, w}` (`u < w`): the first edge in out-CSR order, i.e. the first
/// `u→w` edge if there is one, else the first `w→u` edge — the reference's
/// `as_undirected(combine_edges="first")` with edges numbered in construction order.
/// `isMulti(entry)` tells whether the pair had two or more directed edges (parallel or
/// antiparallel); such a pair is never a bridge.
///
/// Memory: 8 bytes per node for offsets and 8 bytes per entry (UInt32 id + Float weight),
/// i.e. 16 bytes per directed edge, plus one bit per entry when multi-pairs exist.
public struct UndirectedView: Sendable {
    public let nodeCount: Int
    /// `offsets[v] ..< offsets[v+1]` indexes `neighbors`/`weights`; neighbours sorted ascending.
    public let offsets: [Int]
    public let neighbors: [UInt32]
    /// Empty when built with `weights: false`.
    public let weights: [Float]
    /// Bitset over entries; empty when no pair has multiplicity ≥ 2.
    @usableFromInline let multiBits: [UInt64]

    /// Number of undirected edges (adjacent pairs).
    public var edgeCount: Int { neighbors.count / 2 }
    @inlinable public func degree(_ v: Int) -> Int { offsets[v + 1] - offsets[v] }
    public var hasMultiPairs: Bool { !multiBits.isEmpty }
    @inlinable public func isMulti(_ entry: Int) -> Bool {
        multiBits.isEmpty ? false : (multiBits[entry >> 6] >> UInt64(entry & 63)) & 1 == 1
    }

    /// Wraps rows built elsewhere (the implicit MGE generates them, `ImplicitGraph.undirectedView`).
    init(nodeCount: Int, offsets: [Int], neighbors: [UInt32], weights: [Float], multiBits: [UInt64]) {
        self.nodeCount = nodeCount; self.offsets = offsets; self.neighbors = neighbors
        self.weights = weights; self.multiBits = multiBits
    }

    /// Builds the view by merging each node's sorted out- and in-lists (two parallel passes).
    /// - Complexity: O(n + m) time; O(n + m) memory for the result.
    public init(_ g: Graph, weights withWeights: Bool = true) {
        let n = g.nodeCount
        nodeCount = n
        var deg = [Int](repeating: 0, count: n + 1)
        // Pass 1: distinct neighbours per node (and whether any multiplicity ≥ 2 exists).
        let threads = Parallel.threads
        var multiFlags = [Bool](repeating: false, count: threads)
        g.outOffsets.withUnsafeBufferPointer { oo in
        g.outTargets.withUnsafeBufferPointer { ot in
        g.inOffsets.withUnsafeBufferPointer { io in
        g.inSources.withUnsafeBufferPointer { isrc in
        deg.withUnsafeMutableBufferPointer { degp in
        multiFlags.withUnsafeMutableBufferPointer { mf in
            let dp = SharedMutablePointer(degp.baseAddress!)
            let mfp = SharedMutablePointer(mf.baseAddress!)
            Parallel.forChunks(n, grain: 4096, threads: threads) { t, range in
                var multi = false
                for u in range {
                    var a = oo[u], b = io[u]
                    let ae = oo[u + 1], be = io[u + 1]
                    var cnt = 0
                    while a < ae || b < be {
                        let x = a < ae ? (b < be ? min(ot[a], isrc[b]) : ot[a]) : isrc[b]
                        var c = 0
                        while a < ae && ot[a] == x { c += 1; a += 1 }
                        while b < be && isrc[b] == x { c += 1; b += 1 }
                        if Int(x) == u { continue }
                        if c > 1 { multi = true }
                        cnt += 1
                    }
                    dp[u + 1] = cnt
                }
                if multi { mfp[t] = true }
            }
        }}}}}}
        let anyMulti = multiFlags.contains(true)
        for v in 0 ..< n { deg[v + 1] += deg[v] }
        offsets = deg
        let total = deg[n]
        var nb = [UInt32](repeating: 0, count: total)
        var wt = [Float](repeating: 0, count: withWeights ? total : 0)
        var bits = [UInt64](repeating: 0, count: anyMulti ? (total + 63) / 64 : 0)
        // Pass 2: fill. Multi entries are collected per thread and set afterwards (bit words
        // may straddle nodes handled by different threads).
        var multiEntries = [[Int]](repeating: [], count: threads)
        g.outOffsets.withUnsafeBufferPointer { oo in
        g.outTargets.withUnsafeBufferPointer { ot in
        g.outWeights.withUnsafeBufferPointer { ow in
        g.inOffsets.withUnsafeBufferPointer { io in
        g.inSources.withUnsafeBufferPointer { isrc in
        g.inWeights.withUnsafeBufferPointer { iw in
        deg.withUnsafeBufferPointer { off in
        nb.withUnsafeMutableBufferPointer { nbp in
        wt.withUnsafeMutableBufferPointer { wtp in
        multiEntries.withUnsafeMutableBufferPointer { mep in
            let np = SharedMutablePointer(nbp.baseAddress!)
            let wp = withWeights ? wtp.baseAddress.map { SharedMutablePointer($0) } : nil
            let mp = SharedMutablePointer(mep.baseAddress!)
            Parallel.forChunks(n, grain: 4096, threads: threads) { t, range in
                var local: [Int] = []
                // An edgeless graph has no buffers: any pointer serves for empty lists.
                let none = UnsafePointer<UInt32>(bitPattern: 8)!, noWeight = UnsafePointer<Float16>(bitPattern: 8)!
                let otb = ot.baseAddress ?? none, owb = ow.baseAddress ?? noWeight
                let isb = isrc.baseAddress ?? none, iwb = iw.baseAddress ?? noWeight
                for u in range {
                    var slot = off[u]
                    mergeUndirectedRow(u, out: otb + oo[u], owb + oo[u], oo[u + 1] - oo[u],
                                       in: isb + io[u], iwb + io[u], io[u + 1] - io[u]) { x, w, multi in
                        np[slot] = x
                        if let wp = wp { wp[slot] = widen(w) }
                        if multi { local.append(slot) }
                        slot += 1
                    }
                }
                if !local.isEmpty { mp[t].append(contentsOf: local) }
            }
        }}}}}}}}}}
        for list in multiEntries { for e in list { bits[e >> 6] |= 1 << UInt64(e & 63) } }
        neighbors = nb; weights = wt; multiBits = bits
    }
}

/// Node u's row of the undirected simple view from its out- and in-lists, both sorted by
/// neighbour (both graph forms build rows with it): each neighbour once, self-loops dropped,
/// the pair's weight that of its first edge in out-CSR order — the lower endpoint's out-edge
/// if present (u < x: an out-edge of u; u > x: an in-edge) — and whether the pair had two or
/// more directed edges (parallel or antiparallel).
/// - Complexity: O(outdeg(u) + indeg(u)).
@inline(__always)
func mergeUndirectedRow(_ u: Int, out ot: UnsafePointer<UInt32>, _ ow: UnsafePointer<Float16>, _ ae: Int,
                        in isrc: UnsafePointer<UInt32>, _ iw: UnsafePointer<Float16>, _ be: Int,
                        _ entry: (_ neighbor: UInt32, _ weight: Float16, _ multi: Bool) -> Void) {
    var a = 0, b = 0
    while a < ae || b < be {
        let x = a < ae ? (b < be ? min(ot[a], isrc[b]) : ot[a]) : isrc[b]
        var c = 0
        var wOut: Float16 = 0, wIn: Float16 = 0
        var hasOut = false, hasIn = false
        while a < ae && ot[a] == x {
            if !hasOut { wOut = ow[a]; hasOut = true }
            c += 1; a += 1
        }
        while b < be && isrc[b] == x {
            if !hasIn { wIn = iw[b]; hasIn = true }
            c += 1; b += 1
        }
        if Int(x) == u { continue }
        entry(x, u < Int(x) ? (hasOut ? wOut : wIn) : (hasIn ? wIn : wOut), c > 1)
    }
}
