// Neighbourhood sizes along out-edges.

/// Per-node size of the closed 1-hop out-neighbourhood {v} ∪ N⁺(v) (distinct nodes), as
/// igraph's `neighborhood_size(order=1, mode="out")`.
/// - Complexity: O(n + m) (out-lists are sorted, so duplicates are adjacent).
public func oneHopSizes(_ g: Graph) -> [Int32] {
    let n = g.nodeCount
    var out = [Int32](repeating: 1, count: n)
    g.outOffsets.withUnsafeBufferPointer { oo in
    g.outTargets.withUnsafeBufferPointer { ot in
        for v in 0 ..< n {
            var c: Int32 = 1
            var last: UInt32 = .max
            for e in oo[v] ..< oo[v + 1] {
                let t = ot[e]
                if t != last && Int(t) != v { c += 1 }
                last = t
            }
            out[v] = c
        }
    }}
    return out
}

/// Per-node size of the closed 2-hop out-neighbourhood (distinct nodes reachable in ≤ 2
/// out-steps, the node included), as igraph's `neighborhood_size(order=2, mode="out")`.
/// Parallel over nodes (chunks claimed dynamically); each thread keeps one stamp array of n UInt32.
/// - Complexity: O(Σ_v Σ_{u∈N⁺(v)} (1 + outdeg(u))) time, O(T·n) extra memory for T threads.
public func twoHopSizes(_ g: Graph) -> [Int32] {
    let n = g.nodeCount
    var out = [Int32](repeating: 0, count: n)
    let threads = Parallel.threads
    var stamps = [[UInt32]](repeating: [], count: threads)
    out.withUnsafeMutableBufferPointer { outp in
    stamps.withUnsafeMutableBufferPointer { sp in
    g.outOffsets.withUnsafeBufferPointer { oo in
    g.outTargets.withUnsafeBufferPointer { ot in
        let op = SharedMutablePointer(outp.baseAddress!)
        let stp = SharedMutablePointer(sp.baseAddress!)
        Parallel.forChunks(n, grain: 256, threads: threads) { t, range in
            if Cancellation.isRequested { return }   // partial result; the caller checks
            if stp[t].isEmpty { stp[t] = [UInt32](repeating: UInt32.max, count: n) }
            stp[t].withUnsafeMutableBufferPointer { mark in
                for v in range {
                    let s = UInt32(v)
                    mark[v] = s
                    var c: Int32 = 1
                    for e in oo[v] ..< oo[v + 1] {
                        let u = Int(ot[e])
                        if mark[u] != s { mark[u] = s; c += 1 }
                    }
                    for e in oo[v] ..< oo[v + 1] {
                        let u = Int(ot[e])
                        for f in oo[u] ..< oo[u + 1] {
                            let w = Int(ot[f])
                            if mark[w] != s { mark[w] = s; c += 1 }
                        }
                    }
                    op[v] = c
                }
            }
        }
    }}}}
    return out
}
