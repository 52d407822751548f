import Foundation
import Kernels
@testable import Runtime
import XCTest

/// The process pool behind `mge-script --jobs`, with shell workers standing in for mge-script.
final class WorkerPoolTests: XCTestCase {
    /// A worker that announces itself, doubles each job id, and kills itself (SIGKILL, as the
    /// out-of-memory killer would) on job 3.
    static let worker = #"""
        printf '\001SWEEP READY same\n'
        while read id; do
            if [ "$id" = 3 ]; then kill -9 $$; fi
            printf 'noise on stdout\n\001SWEEP DONE %d\n' $((id * 2))
        done
        """#

    func testWorkersRunEveryJobAndADeadWorkerCostsOnlyItsJob() throws {
        let pool = WorkerPool(executable: "/bin/sh", arguments: ["-c", Self.worker], environment: [:])
        var replies: [Int: String] = [:], deaths: [Int: String] = [:]
        try pool.run((0 ..< 8).map { WorkerPool.Job(id: $0, bytes: 1) }, workers: 2, memoryBudget: nil,
                     checkReady: { $0 == "same" ? nil : "different" }, started: { _ in },
                     finished: { id, outcome in
                         switch outcome {
                         case .reply(let text): replies[id] = text
                         case .died(let reason): deaths[id] = reason
                         }
                     })
        XCTAssertEqual(replies, [0: "0", 1: "2", 2: "4", 4: "8", 5: "10", 6: "12", 7: "14"])
        XCTAssertEqual(Array(deaths.keys), [3])
        XCTAssertEqual(deaths[3], "the worker process was killed (SIGKILL: out of memory, or kill -9) while running this point")
    }

    func testAWorkerOfAnotherSweepIsRefused() {
        let pool = WorkerPool(executable: "/bin/sh", arguments: ["-c", Self.worker], environment: [:])
        XCTAssertThrowsError(try pool.run([WorkerPool.Job(id: 0, bytes: 1)], workers: 1, memoryBudget: nil,
                                          checkReady: { $0 == "other" ? nil : "reached sweep \($0)" },
                                          started: { _ in }, finished: { _, _ in })) { error in
            XCTAssertEqual("\(error)", "reached sweep same")
        }
    }

    /// With a budget for one job at a time, two workers never run two jobs at once.
    func testMemoryBudgetKeepsJobsApart() throws {
        let pool = WorkerPool(executable: "/bin/sh", arguments: ["-c", Self.worker], environment: [:])
        var running = 0, most = 0
        try pool.run([0, 1, 2, 4].map { WorkerPool.Job(id: $0, bytes: 600) }, workers: 2, memoryBudget: 1000,
                     checkReady: { _ in nil }, started: { _ in running += 1; most = max(most, running) },
                     finished: { _, _ in running -= 1 })
        XCTAssertEqual(most, 1)
    }

    func testShardsAreDisjointBalancedAndTheSameEveryTime() {
        let costs: [Double] = [5, 1, 1, 1, 1, 1, 4, 2, 2, 2]
        let owner = SweepCost.shards(costs: costs, count: 3)
        XCTAssertEqual(owner, SweepCost.shards(costs: costs, count: 3))
        var load = [Double](repeating: 0, count: 3)
        for (i, s) in owner.enumerated() { load[s] += costs[i] }
        XCTAssertEqual(load.reduce(0, +), 20)
        XCTAssertLessThanOrEqual(load.max()! - load.min()!, 1, "\(load)")
    }
}
