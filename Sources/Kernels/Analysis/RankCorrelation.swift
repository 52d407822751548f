import Foundation

/// Rank correlations with ties handled as scipy.stats does (Kendall's tau-b, Spearman on average ranks).
public enum RankCorrelation {
    /// Kendall's tau-b: (concordant − discordant) / √((n₀ − n₁)(n₀ − n₂)), n₁ and n₂ the pairs tied
    /// in x and in y. NaN when either side is constant or there are fewer than 2 values.
    /// - Complexity: O(n²) pair count; groups of pruners and fits of a few thousand rows are instant.
    public static func kendall(_ x: [Double], _ y: [Double]) -> Double {
        precondition(x.count == y.count)
        let n = x.count
        guard n >= 2 else { return .nan }
        var s = 0, tiedX = 0, tiedY = 0
        for i in 0..<n {
            for j in (i + 1)..<n {
                let dx = x[i] - x[j], dy = y[i] - y[j]
                if dx == 0 { tiedX += 1 }
                if dy == 0 { tiedY += 1 }
                if dx != 0, dy != 0 { s += (dx > 0) == (dy > 0) ? 1 : -1 }
            }
        }
        let pairs = n * (n - 1) / 2
        let denominator = (Double(pairs - tiedX) * Double(pairs - tiedY)).squareRoot()
        return denominator == 0 ? .nan : Double(s) / denominator
    }

    /// Spearman's ρ: Pearson correlation of the average ranks. NaN when either side is constant.
    /// - Complexity: O(n log n).
    public static func spearman(_ x: [Double], _ y: [Double]) -> Double {
        precondition(x.count == y.count)
        guard x.count >= 2 else { return .nan }
        return pearson(averageRanks(x), averageRanks(y))
    }

    /// 1-based ranks, ties sharing the mean of their positions.
    public static func averageRanks(_ x: [Double]) -> [Double] {
        let order = x.indices.sorted { x[$0] < x[$1] }
        var ranks = [Double](repeating: 0, count: x.count)
        var i = 0
        while i < order.count {
            var j = i
            while j + 1 < order.count, x[order[j + 1]] == x[order[i]] { j += 1 }
            let rank = Double(i + j) / 2 + 1
            for k in i...j { ranks[order[k]] = rank }
            i = j + 1
        }
        return ranks
    }

    public static func pearson(_ x: [Double], _ y: [Double]) -> Double {
        let n = Double(x.count)
        let mx = x.reduce(0, +) / n, my = y.reduce(0, +) / n
        var sxy = 0.0, sxx = 0.0, syy = 0.0
        for (a, b) in zip(x, y) { sxy += (a - mx) * (b - my); sxx += (a - mx) * (a - mx); syy += (b - my) * (b - my) }
        let d = (sxx * syy).squareRoot()
        return d == 0 ? .nan : sxy / d
    }
}
