// Size-4 motifs: the number of weakly connected induced 4-node subgraphs of the undirected
// view (direction ignored, parallel edges merged, self-loops dropped).

/// Subgraph counts used by the exact motif count (non-induced copies in the undirected view).
public struct MotifCensus: Sendable, Equatable {
    /// Σ_v C(d_v, 3): 3-stars.
    public var stars: Int
    /// Paths on 4 nodes: Σ_{uv} (d_u − 1)(d_v − 1) − 3·triangles.
    public var paths: Int
    public var triangles: Int
    /// 4-cycles (non-induced).
    public var fourCycles: Int
    /// Paws (triangle + pendant edge): Σ_v t_v (d_v − 2).
    public var paws: Int
    /// Diamonds (two triangles on a shared edge): Σ_e C(t_e, 2).
    public var diamonds: Int
    public var cliques4: Int
    /// Connected 4-node sets = paths + stars − 3·C4 − 2·paws + 4·diamonds − 6·K4.
    ///
    /// Per 4-node set X: its spanning trees are paths or stars, and a connected graph on 4
    /// nodes has τ = 1 (P4, star), 4 (C4), 3 (paw), 8 (diamond), 16 (K4) spanning trees;
    /// expressing the induced counts through the non-induced ones gives these coefficients,
    /// which make every connected X count exactly once and every disconnected X zero.
    public var connectedSets: Int { paths + stars - 3 * fourCycles - 2 * paws + 4 * diamonds - 6 * cliques4 }
}

/// Exact census of the undirected view by degree ordering (Chiba–Nishizeki): nodes ranked by
/// (degree, id); 4-cycles counted once from their highest-ranked node, per-edge triangle
/// counts by marker intersection, 4-cliques inside each edge's common lower neighbourhood.
/// Parallel over nodes with per-thread marker arrays.
/// - Complexity: O(Σ_{uv∈E} min(d_u, d_v)) ⊆ O(m·√m) time for triangles and 4-cycles
///   (plus Σ over triangles of the lowest node's degree for 4-cliques); O(n + m) extra memory
///   (a rank-relabelled copy of the adjacency and one UInt32 per edge).
public func motifCensus(_ view: UndirectedView) -> MotifCensus {
    let n = view.nodeCount
    if n == 0 { return MotifCensus(stars: 0, paths: 0, triangles: 0, fourCycles: 0, paws: 0, diamonds: 0, cliques4: 0) }
    // Rank nodes by (degree, id).
    var order = [Int32](unsafeUninitializedCapacity: n) { b, c in for i in 0 ..< n { b[i] = Int32(i) }; c = n }
    order.sort { a, b in
        let da = view.degree(Int(a)), db = view.degree(Int(b))
        return da != db ? da < db : a < b
    }
    var rank = [UInt32](repeating: 0, count: n)
    for (r, v) in order.enumerated() { rank[Int(v)] = UInt32(r) }
    // Relabelled adjacency, each list sorted by rank; lower entries are a prefix.
    var off = [Int](repeating: 0, count: n + 1)
    for r in 0 ..< n { off[r + 1] = off[r] + view.degree(Int(order[r])) }
    var adj = [UInt32](repeating: 0, count: off[n])
    var lowCount = [Int](repeating: 0, count: n)
    adj.withUnsafeMutableBufferPointer { ap in
    view.offsets.withUnsafeBufferPointer { vo in
    view.neighbors.withUnsafeBufferPointer { vn in
    rank.withUnsafeBufferPointer { rk in
    lowCount.withUnsafeMutableBufferPointer { lc in
        let a = SharedMutablePointer(ap.baseAddress!)
        let lcp = SharedMutablePointer(lc.baseAddress!)
        Parallel.forChunks(n, grain: 2048) { _, range in
            for r in range {
                let v = Int(order[r])
                var s = off[r]
                for e in vo[v] ..< vo[v + 1] { a[s] = rk[Int(vn[e])]; s += 1 }
                var buf = UnsafeMutableBufferPointer(start: a.base + off[r], count: off[r + 1] - off[r])
                buf.sort()
                var low = 0
                while low < buf.count && Int(buf[low]) < r { low += 1 }
                lcp[r] = low
            }
        }
    }}}}}
    rank = []
    // Compact index of lower entries: edge (u, v<u) ↦ lowOff[u] + position of v in L(u).
    var lowOff = [Int](repeating: 0, count: n + 1)
    for r in 0 ..< n { lowOff[r + 1] = lowOff[r] + lowCount[r] }
    var tEdge = [UInt32](repeating: 0, count: lowOff[n])
    let threads = Parallel.threads
    var c4 = [Int](repeating: 0, count: threads)
    var k4 = [Int](repeating: 0, count: threads)
    adj.withUnsafeBufferPointer { a in
    off.withUnsafeBufferPointer { off in
    lowCount.withUnsafeBufferPointer { lc in
    lowOff.withUnsafeBufferPointer { lo in
    tEdge.withUnsafeMutableBufferPointer { tp in
    c4.withUnsafeMutableBufferPointer { c4p in
    k4.withUnsafeMutableBufferPointer { k4p in
        let te = SharedMutablePointer(tp.baseAddress!)
        let c4s = SharedMutablePointer(c4p.baseAddress!)
        let k4s = SharedMutablePointer(k4p.baseAddress!)
        // One set of n-entry marker arrays per thread, made when the thread takes its first
        // chunk and reused for the rest (a fresh set per 64-node chunk was mostly memset):
        // cnt is zeroed after each node, and the marks are stamped with node and edge numbers
        // that no other node or edge uses.
        let scratch = UnsafeMutablePointer<MotifScratch?>.allocate(capacity: threads)
        scratch.initialize(repeating: nil, count: threads)
        defer { scratch.deinitialize(count: threads); scratch.deallocate() }
        let scratchOf = SharedMutablePointer(scratch)
        Parallel.forChunks(n, grain: 64, threads: threads) { t, range in
            if Cancellation.isRequested { return }   // partial result; the caller checks
            let own: MotifScratch
            if let made = scratchOf[t] { own = made } else { own = MotifScratch(n); scratchOf[t] = own }
            var cycles = 0, cliques = 0
            let cnt = own.cnt, mark = own.mark, markC = own.markC
            do {
                for u in range {
                    let su = UInt32(u)
                    // 4-cycles with u as highest-ranked node.
                    own.touched.removeAll(keepingCapacity: true)
                    for e in off[u] ..< off[u] + lc[u] {
                        let v = Int(a[e])
                        var f = off[v]
                        let fe = off[v + 1]
                        while f < fe {
                            let w = Int(a[f])
                            if w >= u { break }
                            if cnt[w] == 0 { own.touched.append(Int32(w)) }
                            cnt[w] += 1
                            f += 1
                        }
                    }
                    for w in own.touched {
                        let c = Int(cnt[Int(w)])
                        cycles += c * (c - 1) / 2
                        cnt[Int(w)] = 0
                    }
                    // Triangles on each lower edge (u, v): |N(u) ∩ N(v)|.
                    for e in off[u] ..< off[u + 1] { mark[Int(a[e])] = su }
                    for (i, e) in (off[u] ..< off[u] + lc[u]).enumerated() {
                        let v = Int(a[e])
                        var tri: UInt32 = 0
                        own.common.removeAll(keepingCapacity: true)
                        for f in off[v] ..< off[v + 1] {
                            let w = Int(a[f])
                            if mark[w] == su {
                                tri += 1
                                if w < v { own.common.append(Int32(w)) }
                            }
                        }
                        te[lo[u] + i] = tri
                        // 4-cliques {x < w < v < u}: edges inside the common lower neighbourhood.
                        if own.common.count >= 2 {
                            let stamp = UInt32(truncatingIfNeeded: lo[u] + i)
                            for w in own.common { markC[Int(w)] = stamp }
                            for w in own.common {
                                let wi = Int(w)
                                var f = off[wi]
                                let fe = off[wi] + lc[wi]
                                while f < fe {
                                    if markC[Int(a[f])] == stamp { cliques += 1 }
                                    f += 1
                                }
                            }
                        }
                    }
                }
            }
            c4s[t] += cycles
            k4s[t] += cliques
        }
    }}}}}}}
    // Aggregate.
    var stars = 0, pathsRaw = 0, triSum = 0, diamonds = 0
    var tv = [Int](repeating: 0, count: n)   // Σ_{e∋v} t_e = 2·t_v
    for u in 0 ..< n {
        let du = off[u + 1] - off[u]
        stars += du * (du - 1) * (du - 2) / 6
        for i in 0 ..< lowCount[u] {
            let v = Int(adj[off[u] + i])
            let dv = off[v + 1] - off[v]
            pathsRaw += (du - 1) * (dv - 1)
            let t = Int(tEdge[lowOff[u] + i])
            triSum += t
            diamonds += t * (t - 1) / 2
            tv[u] += t; tv[v] += t
        }
    }
    var paws = 0
    for u in 0 ..< n { paws += (tv[u] / 2) * (off[u + 1] - off[u] - 2) }
    let triangles = triSum / 3
    return MotifCensus(stars: stars, paths: pathsRaw - 3 * triangles, triangles: triangles,
                       fourCycles: c4.reduce(0, +), paws: paws, diamonds: diamonds, cliques4: k4.reduce(0, +))
}

/// One thread's marker arrays for `motifCensus` (n entries each) and its two small lists.
private final class MotifScratch {
    let cnt: UnsafeMutableBufferPointer<UInt32>
    let mark: UnsafeMutableBufferPointer<UInt32>
    let markC: UnsafeMutableBufferPointer<UInt32>
    var touched: [Int32] = []
    var common: [Int32] = []
    init(_ n: Int) {
        cnt = .allocate(capacity: n); cnt.initialize(repeating: 0)
        mark = .allocate(capacity: n); mark.initialize(repeating: UInt32.max)
        markC = .allocate(capacity: n); markC.initialize(repeating: UInt32.max)
    }
    deinit { cnt.deallocate(); mark.deallocate(); markC.deallocate() }
}

/// Exact number of weakly connected induced 4-node subgraphs.
/// - Complexity: see `motifCensus`.
public func connectedFourSets(_ view: UndirectedView) -> Int { motifCensus(view).connectedSets }

/// Per-root ESU counts: for each root v, the number of connected 4-node sets whose smallest
/// id is v (the quantity RAND-ESU samples). Iterative, no recursion; parallel over roots.
/// - Complexity: O(Σ_roots Σ_{w1} Σ_{w2} d(w2)) — proportional to the sets enumerated, i.e.
///   up to O(d³) per root for degree d; cheap on very sparse graphs only.
public func esuRootCounts(_ view: UndirectedView, roots: [Int]) -> [Int] {
    let n = view.nodeCount
    var result = [Int](repeating: 0, count: roots.count)
    result.withUnsafeMutableBufferPointer { rp in
    view.offsets.withUnsafeBufferPointer { off in
    view.neighbors.withUnsafeBufferPointer { nb in
        let res = SharedMutablePointer(rp.baseAddress!)
        // Roots are claimed dynamically: their cost varies with their neighbourhood (≈ d³).
        Parallel.forChunks(roots.count, grain: 1) { _, range in
            var markV = [UInt32](repeating: UInt32.max, count: n)   // N[v] stamp = root index
            var markW = [UInt32](repeating: UInt32.max, count: n)   // N[w1] stamp = running id
            var stampW: UInt32 = 0
            var ext2: [UInt32] = []
            markV.withUnsafeMutableBufferPointer { mv in
            markW.withUnsafeMutableBufferPointer { mw in
                for ri in range {
                    if Cancellation.isRequested { break }   // partial result; the caller checks
                    let v = roots[ri]
                    guard v >= 0 && v < n else { continue }
                    let sv = UInt32(ri)
                    mv[v] = sv
                    for e in off[v] ..< off[v + 1] { mv[Int(nb[e])] = sv }
                    // ext1: neighbours of v greater than v (a suffix of the sorted list).
                    var s1 = off[v]
                    while s1 < off[v + 1] && Int(nb[s1]) <= v { s1 += 1 }
                    var total = 0
                    var i = s1
                    while i < off[v + 1] {
                        let w1 = Int(nb[i])
                        stampW &+= 1
                        if stampW == UInt32.max { for k in 0 ..< n { mw[k] = UInt32.max }; stampW = 0 }
                        // N[w1] ∪ N[v] under one stamp: the innermost loop then tests one
                        // mark instead of two (it runs Σ deg(w2) times per w1; this costs deg(v)).
                        mw[w1] = stampW
                        for f in off[w1] ..< off[w1 + 1] { mw[Int(nb[f])] = stampW }
                        mw[v] = stampW
                        for e in off[v] ..< off[v + 1] { mw[Int(nb[e])] = stampW }
                        // ext2 = rest of ext1 ∪ exclusive neighbours of w1 (> v, outside N[v]).
                        ext2.removeAll(keepingCapacity: true)
                        var r = i + 1
                        while r < off[v + 1] { ext2.append(nb[r]); r += 1 }
                        for f in off[w1] ..< off[w1 + 1] {
                            let u = Int(nb[f])
                            if u > v && mv[u] != sv { ext2.append(UInt32(u)) }
                        }
                        for j in 0 ..< ext2.count {
                            let w2 = Int(ext2[j])
                            total += ext2.count - j - 1
                            for f in off[w2] ..< off[w2 + 1] {
                                let u = Int(nb[f])
                                if u > v && mw[u] != stampW { total += 1 }
                            }
                        }
                        i += 1
                    }
                    res[ri] = total
                }
            }}
        }
    }}}
    return result
}

/// `⌊0.001·n⌋` (at least 1) distinct roots drawn uniformly with a seeded generator
/// (partial Fisher–Yates), sorted.
/// - Complexity: O(sample) expected time with a dictionary-backed shuffle.
public func motifSampleRoots(nodeCount n: Int, sample: Int? = nil, seed: UInt64 = 0) -> [Int] {
    guard n > 0 else { return [] }
    let s = min(n, max(1, sample ?? Int((0.001 * Double(n)).rounded(.down))))
    var rng = SeededGenerator(seed: seed)
    var swapped: [Int: Int] = [:]
    var out: [Int] = []
    out.reserveCapacity(s)
    for i in 0 ..< s {
        let j = i + Int(rng.next() % UInt64(n - i))
        let vi = swapped[i] ?? i, vj = swapped[j] ?? j
        swapped[j] = vi
        out.append(vj)
    }
    return out.sorted()
}

/// RAND-ESU estimate of the number of connected 4-node sets: Σ_{roots} count(root) · n / |roots|.
/// - Complexity: see `rootCounts` (counted on a bipartite view, else `esuRootCounts`).
public func motifEstimate(_ view: UndirectedView, roots: [Int]) -> Double {
    guard !roots.isEmpty else { return 0 }
    let counts = rootCounts(view, roots: roots)
    return Double(counts.reduce(0, +)) * Double(view.nodeCount) / Double(roots.count)
}
