// Core decomposition and strength.

/// The Batagelj–Zaversnik bin sort `coreNumbers(Graph)` starts from: each node's degree, its position in the degree-sorted order, that order, and
/// each degree's first position.
/// - Complexity: O(n + maxDegree).
func coreBins(nodeCount n: Int, degree: (Int) -> Int) -> (deg: [Int32], pos: [Int], vert: [Int32], bin: [Int]) {
    var deg = [Int32](repeating: 0, count: n)
    var maxDeg = 0
    for v in 0 ..< n {
        let d = degree(v)
        deg[v] = Int32(d)
        if d > maxDeg { maxDeg = d }
    }
    var bin = [Int](repeating: 0, count: maxDeg + 2)
    for v in 0 ..< n { bin[Int(deg[v])] += 1 }
    var start = 0
    for d in 0 ... maxDeg { let c = bin[d]; bin[d] = start; start += c }
    var pos = [Int](repeating: 0, count: n)
    var vert = [Int32](repeating: 0, count: n)
    for v in 0 ..< n { pos[v] = bin[Int(deg[v])]; vert[pos[v]] = Int32(v); bin[Int(deg[v])] += 1 }
    var d = maxDeg
    while d > 0 { bin[d] = bin[d - 1]; d -= 1 }
    bin[0] = 0
    return (deg, pos, vert, bin)
}

/// Core numbers (Batagelj–Zaversnik bin sort) of a directed graph with degree = in + out:
/// every edge counts once at each endpoint, parallel edges count with multiplicity (as
/// igraph's `coreness(mode="all")`). Self-loops count twice, like igraph's degree.
/// - Complexity: O(n + m) time, O(n + maxDegree) extra memory.
public func coreNumbers(_ g: Graph) -> [Int32] {
    let n = g.nodeCount
    var (deg, pos, vert, bin) = coreBins(nodeCount: n) { g.outDegree($0) + g.inDegree($0) }
    deg.withUnsafeMutableBufferPointer { deg in
    pos.withUnsafeMutableBufferPointer { pos in
    vert.withUnsafeMutableBufferPointer { vert in
    bin.withUnsafeMutableBufferPointer { bin in
    g.outOffsets.withUnsafeBufferPointer { oo in
    g.outTargets.withUnsafeBufferPointer { ot in
    g.inOffsets.withUnsafeBufferPointer { io in
    g.inSources.withUnsafeBufferPointer { isrc in
        @inline(__always) func relax(_ v: Int, _ u: Int) {
            let du = Int(deg[u])
            if du > Int(deg[v]) {
                let pu = pos[u], pw = bin[du], w = Int(vert[pw])
                if u != w { pos[u] = pw; vert[pu] = Int32(w); pos[w] = pu; vert[pw] = Int32(u) }
                bin[du] += 1
                deg[u] -= 1
            }
        }
        for i in 0 ..< n {
            let v = Int(vert[i])
            for e in oo[v] ..< oo[v + 1] { relax(v, Int(ot[e])) }
            for e in io[v] ..< io[v + 1] { relax(v, Int(isrc[e])) }
        }
    }}}}}}}}
    return deg
}

/// Mean over nodes of (Σ in-weights + Σ out-weights) = 2·Σw / n.
/// - Complexity: O(m).
public func meanStrength(_ g: Graph) -> Double {
    guard g.nodeCount > 0 else { return 0 }
    var s = 0.0
    g.outWeights.withUnsafeBufferPointer { w in
        var partial = 0.0
        for (i, x) in w.enumerated() {
            partial += Double(widen(x))
            if i & 4095 == 4095 { s += partial; partial = 0 }
        }
        s += partial
    }
    return 2 * s / Double(g.nodeCount)
}
