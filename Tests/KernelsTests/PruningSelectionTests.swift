import XCTest
@testable import Kernels

/// The shared selection (`ScoreSelection`) against brute-force sorting, ties included.
final class PruningSelectionTests: XCTestCase {
    /// Vectors with many ties (values from a small set) and without.
    private func vectors() -> [[Float]] {
        var rng = SeededGenerator(seed: 11)
        var out: [[Float]] = [[3], [1, 1], [2, 1], [0, 0, 0, 0], [5, -1, 5, 2, 5, -1]]
        for n in [7, 50, 333, 2000] {
            out.append((0 ..< n).map { _ in Float(rng.normal()) })
            out.append((0 ..< n).map { _ in Float(RandomPruners.uniformIndex(below: 5, &rng)) })
        }
        return out
    }

    func testKthLargestAndSmallestMatchSorting() {
        for v in vectors() {
            let desc = v.sorted(by: >), asc = v.sorted()
            for r in 1 ... v.count {
                XCTAssertEqual(ScoreSelection.kthLargest(v, r), desc[r - 1])
                XCTAssertEqual(ScoreSelection.kthSmallest(v, r), asc[r - 1])
            }
            XCTAssertNil(ScoreSelection.kthLargest(v, 0))
            XCTAssertNil(ScoreSelection.kthLargest(v, v.count + 1))
        }
        XCTAssertNil(ScoreSelection.kthLargest([1, .nan, 2], 1), "NaN scores have no order")
    }

    func testSelectionOnAdversarialInputs() {
        // Sorted, reversed and constant inputs of 100k entries: introselect stays exact.
        let n = 100_000
        let up = (0 ..< n).map(Float.init)
        XCTAssertEqual(ScoreSelection.kthLargest(up, 1), Float(n - 1))
        XCTAssertEqual(ScoreSelection.kthLargest(up, n / 2), Float(n - n / 2))
        XCTAssertEqual(ScoreSelection.kthSmallest(Array(up.reversed()), 10), 9)
        XCTAssertEqual(ScoreSelection.kthLargest([Float](repeating: 7, count: n), 12_345), 7)
    }

    /// snip: keep score ≥ k-th largest, so ties at the threshold are all kept.
    func testKeepAtLeastKeepsTies() {
        let s: [Float] = [1, 3, 2, 3, 0, 3]
        XCTAssertEqual(ScoreSelection.keepAtLeastKthLargest(s, k: 2), [0, 1, 0, 1, 0, 1], "three 3s tie with the 2nd largest")
        XCTAssertEqual(ScoreSelection.keepAtLeastKthLargest(s, k: 4), [0, 1, 1, 1, 0, 1])
        XCTAssertEqual(ScoreSelection.keepAtLeastKthLargest(s, k: 0), [0, 0, 0, 0, 0, 0])
        XCTAssertEqual(ScoreSelection.keepAtLeastKthLargest(s, k: 6), [1, 1, 1, 1, 1, 1])
        for v in vectors() {
            for k in [1, v.count / 3, v.count - 1] where k >= 1 {
                let t = v.sorted(by: >)[k - 1]
                let mask = ScoreSelection.keepAtLeastKthLargest(v, k: k)
                XCTAssertEqual(mask, v.map { $0 >= t ? 1 : 0 })
                XCTAssertGreaterThanOrEqual(mask.reduce(0) { $0 + Int($1) }, k)
            }
        }
    }

    /// grasp: threshold = r-th largest, keep score ≤ threshold (the threshold entry survives).
    func testKeepAtMostKeepsThreshold() {
        let s: [Float] = [5, 1, 4, 2, 3]
        XCTAssertEqual(ScoreSelection.keepAtMostRthLargest(s, r: 2), [0, 1, 1, 1, 1], "removes only the largest: 4 is the threshold")
        XCTAssertEqual(ScoreSelection.keepAtMostRthLargest(s, r: 0), [1, 1, 1, 1, 1])
        XCTAssertEqual(ScoreSelection.keepAtMostRthLargest([2, 2, 1], r: 1), [1, 1, 1], "ties with the threshold are kept")
    }

    /// prospr: exactly k kept; equal scores at the threshold are taken by lower index.
    func testKeepLargestExactlyWithIndexTieBreak() {
        XCTAssertEqual(ScoreSelection.keepLargest([1, 3, 2, 3, 0, 3], exactly: 2), [0, 1, 0, 1, 0, 0])
        XCTAssertEqual(ScoreSelection.keepLargest([1, 1, 1], exactly: 2), [1, 1, 0])
        for v in vectors() {
            for k in [0, 1, v.count / 2, v.count] {
                let mask = ScoreSelection.keepLargest(v, exactly: k)
                XCTAssertEqual(mask.reduce(0) { $0 + Int($1) }, k)
                if k > 0, k < v.count {
                    let keptMin: Float = zip(v, mask).filter { $0.1 == 1 }.map(\.0).min() ?? 0
                    let droppedMax: Float = zip(v, mask).filter { $0.1 == 0 }.map(\.0).max() ?? 0
                    XCTAssertGreaterThanOrEqual(keptMin, droppedMax)
                }
            }
        }
    }

    /// synflow: exactly `count` of the alive entries go, lowest first; dead entries stay dead.
    func testRemoveSmallestAmongAlive() {
        var alive: [UInt8] = [1, 0, 1, 1, 1, 1]
        ScoreSelection.removeSmallest([5, 0, 1, 1, 9, 4], alive: &alive, count: 2)
        XCTAssertEqual(alive, [1, 0, 0, 0, 1, 1], "index 1 was already dead and is not counted")
        ScoreSelection.removeSmallest([5, 0, 1, 1, 9, 4], alive: &alive, count: 1)
        XCTAssertEqual(alive, [1, 0, 0, 0, 1, 0])
        var tied: [UInt8] = [1, 1, 1, 1]
        ScoreSelection.removeSmallest([2, 2, 2, 2], alive: &tied, count: 3)
        XCTAssertEqual(tied, [0, 0, 0, 1], "ties go by lower index")
        var all: [UInt8] = [1, 1]
        ScoreSelection.removeSmallest([1, 2], alive: &all, count: 5)
        XCTAssertEqual(all, [0, 0])
    }
}
