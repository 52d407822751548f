/// Global score selection with the reference's tie rules: the one place where "keep the k
/// best" is decided, shared by every score-based pruner.
///
/// All functions work on one flat score vector (every scored parameter concatenated in
/// state-dict order) and find thresholds by selection, not by sorting.
public enum ScoreSelection {
    /// The `r`-th largest value (r = 1 is the maximum), or nil when `r` is outside 1...count or a
    /// value is NaN.
    /// - Complexity: O(n) expected time and O(n) extra space.
    public static func kthLargest(_ values: [Float], _ r: Int) -> Float? {
        guard r >= 1, r <= values.count, !values.contains(where: \.isNaN) else { return nil }
        var work = values
        return select(&work, ascendingIndex: values.count - r)
    }

    /// The `r`-th smallest value (r = 1 is the minimum), or nil as for `kthLargest`.
    /// - Complexity: O(n) expected.
    public static func kthSmallest(_ values: [Float], _ r: Int) -> Float? {
        guard r >= 1, r <= values.count, !values.contains(where: \.isNaN) else { return nil }
        var work = values
        return select(&work, ascendingIndex: r - 1)
    }

    /// SNIP's rule: keep every score ≥ the `k`-th largest, so ties at the threshold are all kept
    /// and more than `k` may survive. `k` = 0 keeps nothing; `k` ≥ count keeps everything.
    /// - Complexity: O(n) expected.
    public static func keepAtLeastKthLargest(_ scores: [Float], k: Int) -> [UInt8] {
        if k <= 0 { return [UInt8](repeating: 0, count: scores.count) }
        if k >= scores.count { return [UInt8](repeating: 1, count: scores.count) }
        guard let threshold = kthLargest(scores, k) else { return [UInt8](repeating: 0, count: scores.count) }
        return scores.map { $0 >= threshold ? 1 : 0 }
    }

    /// GraSP's rule: threshold = the `r`-th largest score; keep every score ≤ threshold. The
    /// threshold entry itself (and its ties) survive, so at most r − 1 are removed. `r` = 0 keeps
    /// everything (the reference would fail on an empty top-k).
    /// - Complexity: O(n) expected.
    public static func keepAtMostRthLargest(_ scores: [Float], r: Int) -> [UInt8] {
        if r <= 0 { return [UInt8](repeating: 1, count: scores.count) }
        let rank = min(r, scores.count)
        guard let threshold = kthLargest(scores, rank) else { return [UInt8](repeating: 0, count: scores.count) }
        return scores.map { $0 <= threshold ? 1 : 0 }
    }

    /// ProsPr's rule (top-k): keep exactly `k` largest scores. Among scores equal to the
    /// threshold the lower indices are kept, so the result is deterministic.
    /// - Complexity: O(n) expected.
    public static func keepLargest(_ scores: [Float], exactly k: Int) -> [UInt8] {
        if k <= 0 { return [UInt8](repeating: 0, count: scores.count) }
        if k >= scores.count { return [UInt8](repeating: 1, count: scores.count) }
        guard let threshold = kthLargest(scores, k) else { return [UInt8](repeating: 0, count: scores.count) }
        var mask = [UInt8](repeating: 0, count: scores.count)
        var above = 0
        for i in scores.indices where scores[i] > threshold { mask[i] = 1; above += 1 }
        var tiesToKeep = k - above
        for i in scores.indices where tiesToKeep > 0 && scores[i] == threshold {
            mask[i] = 1; tiesToKeep -= 1
        }
        return mask
    }

    /// SynFlow's per-round rule: among the entries with `alive[i] != 0`, remove exactly `count`
    /// with the lowest scores (lower index first among equal scores). Dead entries stay dead.
    /// - Complexity: O(n) expected.
    public static func removeSmallest(_ scores: [Float], alive: inout [UInt8], count: Int) {
        guard count > 0 else { return }
        let n = min(scores.count, alive.count)
        // The alive scores, gathered in one pass.
        let aliveScores = [Float](unsafeUninitializedCapacity: n) { out, filled in
            var j = 0
            scores.withUnsafeBufferPointer { s in
                alive.withUnsafeBufferPointer { a in
                    for i in 0 ..< n where a[i] != 0 { out[j] = s[i]; j += 1 }
                }
            }
            filled = j
        }
        if count >= aliveScores.count {
            for i in alive.indices { alive[i] = 0 }
            return
        }
        guard let threshold = kthSmallest(aliveScores, count) else { return }
        var removed = 0
        scores.withUnsafeBufferPointer { s in
            alive.withUnsafeMutableBufferPointer { a in
                for i in 0 ..< n where a[i] != 0 && s[i] < threshold { a[i] = 0; removed += 1 }
                for i in 0 ..< n where removed < count && a[i] != 0 && s[i] == threshold { a[i] = 0; removed += 1 }
            }
        }
    }

    /// Introselect: random pivots with a three-way partition (so runs of equal scores, common
    /// among pruned weights, cost one pass), falling back to a sort of the remaining range after
    /// too many rounds, which bounds the worst case at O(n log n).
    static func select(_ values: inout [Float], ascendingIndex target: Int) -> Float {
        var pivotSource = SeededGenerator(seed: 0x5E1E_C7ED)  // fixed: selection must not depend on the caller's seed
        return values.withUnsafeMutableBufferPointer { a -> Float in
            var lo = 0, hi = a.count - 1
            var budget = 4 * (Int.bitWidth - a.count.leadingZeroBitCount) + 16
            while lo < hi {
                if budget == 0 {
                    let sorted = a[lo ... hi].sorted()
                    return sorted[target - lo]
                }
                budget -= 1
                let pivot = a[lo + Int(pivotSource.next() % UInt64(hi - lo + 1))]
                var less = lo, i = lo, greater = hi
                while i <= greater {
                    let v = a[i]
                    if v < pivot {
                        a.swapAt(less, i); less += 1; i += 1
                    } else if v > pivot {
                        a.swapAt(i, greater); greater -= 1
                    } else {
                        i += 1
                    }
                }
                if target < less { hi = less - 1 } else if target > greater { lo = greater + 1 } else { return pivot }
            }
            return a[target]
        }
    }
}
