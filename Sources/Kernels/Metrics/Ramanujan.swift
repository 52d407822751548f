// Ramanujan metrics of a bipartite layer graph (SPEC §4 "Ramanujan"), after the reference
// (which extends VITA-Group/ramanujan-on-pai): delta_r, the iterative (per left degree)
// spectral gap and delta_r.

/// Ramanujan metrics of one bipartite layer; nil where the reference has no value.
public struct RamanujanMetrics: Sendable, Equatable {
    /// (ub − μ)/ub with μ the third largest |λ| of the 0/1 adjacency, ub = √(d_L−1) + √(d_R−1),
    /// on the layer without zero-degree nodes. nil when a side is empty or ≤ 3 nodes remain;
    /// −∞ when ub = 0 < μ (every degree 1), as the reference.
    public var deltaR: Double?
    /// |λ|₁ − |λ|₃ of the weighted adjacency of the same graph (the reference computes and
    /// discards it; it equals the layer's spectral_gap up to the removed isolated nodes).
    public var weightedGap: Double?
    /// Mean weighted gap over the left-degree-d subgraphs (d ≥ 3) with mean degrees ≥ 3.
    public var iterativeSpectralGap: Double?
    /// A line per eigen-solve that stopped short of its tolerance (`unconvergedNote`).
    public var notes: [String] = []
    /// Mean delta_r over the same subgraphs.
    public var iterativeDeltaR: Double?
}

/// The subgraph induced on the nodes with `keep[v]`, renumbered in order; partitions are
/// recounted (empty ones kept with count 0).
/// - Complexity: O(n + m).
func inducedSubgraph(_ g: Graph, keep: [Bool]) -> Graph {
    var newId = [Int](repeating: -1, count: g.nodeCount)
    var c = 0
    for v in 0 ..< g.nodeCount where keep[v] { newId[v] = c; c += 1 }
    var offsets = [Int](repeating: 0, count: c + 1)
    var targets: [UInt32] = [], weights: [Float16] = []
    for v in 0 ..< g.nodeCount where keep[v] {
        for e in g.outOffsets[v] ..< g.outOffsets[v + 1] {
            let t = newId[Int(g.outTargets[e])]
            if t >= 0 { targets.append(UInt32(t)); weights.append(g.outWeights[e]) }
        }
        offsets[newId[v] + 1] = targets.count
    }
    var parts: [Partition] = []
    var start = 0
    for p in g.partitions {
        let cnt = p.range.reduce(0) { $0 + (keep[$1] ? 1 : 0) }
        parts.append(Partition(name: p.name, start: start, count: cnt, shape: [cnt]))
        start += cnt
    }
    return Graph(nodeCount: c, partitions: parts, outOffsets: offsets, outTargets: targets, outWeights: weights)
}

/// [weighted gap, delta_r] of a bipartite graph with given mean side degrees.
/// A solve that stops short of its tolerance adds its note to `notes`.
private func gapAndDeltaR(_ g: Graph, dL: Double, dR: Double, options: LanczosOptions, notes: inout [String]) -> (Double, Double?) {
    let view = UndirectedView(g)
    var results: [(String, EigenResult)] = []
    let top = topAbsEigenvalues(view, weighted: true, options: options) { results.append(("delta_r's weighted gap", $0)) }
    let gap = top[0] - top[2]
    let mu = topAbsEigenvalues(view, weighted: false, options: options) { results.append(("delta_r's μ", $0)) }[2]
    notes += results.compactMap { unconvergedNote($0.0, $0.1, options) }
    let ub = (dL - 1).squareRoot() + (dR - 1).squareRoot()
    guard ub.isFinite else { return (gap, nil) }
    if ub == 0 {
        // d_L = d_R = 1 (a matching): the reference divides by zero and reports −∞ (μ > 0);
        // 0/0 would be NaN, reported as missing.
        return (gap, mu > 0 ? -Double.infinity : nil)
    }
    return (gap, (ub - mu) / ub)
}

/// Ramanujan metrics of a bipartite layer whose first `leftCount` nodes form the left side.
/// Degrees are in + out of the directed layer graph.
/// - Complexity: one or two eigen-solves per distinct left degree ≥ 3 plus O(n + m) each.
public func ramanujanMetrics(_ g: Graph, leftCount: Int, options: LanczosOptions = LanczosOptions()) -> RamanujanMetrics {
    let n = g.nodeCount
    let deg = (0 ..< n).map { g.outDegree($0) + g.inDegree($0) }
    var result = RamanujanMetrics()
    // Whole layer without zero-degree nodes.
    let keep = deg.map { $0 > 0 }
    let dimIn = (0 ..< min(leftCount, n)).filter { keep[$0] }.count
    let kept = keep.filter { $0 }.count
    let dimOut = kept - dimIn
    if dimIn > 0 && dimOut > 0 && kept > 3 {
        let sub = inducedSubgraph(g, keep: keep)
        let dL = Double((0 ..< min(leftCount, n)).reduce(0) { $0 + deg[$1] }) / Double(dimIn)
        let dR = Double((min(leftCount, n) ..< n).reduce(0) { $0 + deg[$1] }) / Double(dimOut)
        let (gap, dr) = gapAndDeltaR(sub, dL: dL, dR: dR, options: options, notes: &result.notes)
        result.weightedGap = gap
        result.deltaR = dr
    }
    // Iterative: one subgraph per distinct left degree d ≥ 3.
    var degrees: [Int] = []
    var seen = Set<Int>()
    for v in 0 ..< min(leftCount, n) where deg[v] >= 3 && !seen.contains(deg[v]) { seen.insert(deg[v]); degrees.append(deg[v]) }
    var gaps: [Double] = [], drs: [Double] = []
    for d in degrees {
        var sel = [Bool](repeating: false, count: n)
        for v in 0 ..< min(leftCount, n) where deg[v] == d { sel[v] = true }
        // Right nodes reached by the selected left nodes (zero-degree right nodes dropped).
        var rightDeg = [Int](repeating: 0, count: n)
        for v in 0 ..< min(leftCount, n) where sel[v] {
            for e in g.outOffsets[v] ..< g.outOffsets[v + 1] { rightDeg[Int(g.outTargets[e])] += 1 }
            for e in g.inOffsets[v] ..< g.inOffsets[v + 1] { rightDeg[Int(g.inSources[e])] += 1 }
        }
        var right = 0, rightSum = 0
        for v in min(leftCount, n) ..< n where rightDeg[v] > 0 { sel[v] = true; right += 1; rightSum += rightDeg[v] }
        guard right > 0 else { continue }
        let dR = Double(rightSum) / Double(right)
        guard Double(d) >= 3 && dR >= 3 else { continue }
        let (gap, dr) = gapAndDeltaR(inducedSubgraph(g, keep: sel), dL: Double(d), dR: dR, options: options, notes: &result.notes)
        guard let dr else { continue }
        gaps.append(gap); drs.append(dr)
    }
    if !gaps.isEmpty {
        result.iterativeSpectralGap = gaps.reduce(0, +) / Double(gaps.count)
        result.iterativeDeltaR = drs.reduce(0, +) / Double(drs.count)
    }
    return result
}
