import Foundation
import XCTest
@testable import Kernels

/// Ctrl-C (the Cancellation flag) during a write leaves neither the file nor a temporary.
final class InterruptedWriteTests: XCTestCase {
    override func tearDown() { Cancellation.reset() }

    private func emptyFolder() throws -> String {
        let dir = NSTemporaryDirectory() + "mge-interrupt-\(getpid())-\(UInt32.random(in: 0 ... .max))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        return dir
    }

    /// A graph of 6M edges (about a second to save), interrupted 50 ms into `save`.
    func testInterruptedGraphSaveLeavesNothing() throws {
        let n = 200_000, perNode = 30
        var offsets = [Int](repeating: 0, count: n + 1)
        for v in 0 ..< n { offsets[v + 1] = offsets[v] + perNode }
        var rng = SeededGenerator(seed: 3)
        var targets = [UInt32](repeating: 0, count: n * perNode)
        for v in 0 ..< n {
            let row = (0 ..< perNode).map { _ in UInt32.random(in: 0 ..< UInt32(n), using: &rng) }.sorted()
            for k in 0 ..< perNode { targets[v * perNode + k] = row[k] }
        }
        let weights = (0 ..< n * perNode).map { _ in Float16(Float.random(in: -1 ... 1, using: &rng)) }
        let graph = Graph(nodeCount: n, partitions: [Partition(name: "all", start: 0, count: n, shape: [n])],
                          outOffsets: offsets, outTargets: targets, outWeights: weights)
        let dir = try emptyFolder()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let started = DispatchSemaphore(value: 0)
        Thread.detachNewThread { started.wait(); usleep(50_000); Cancellation.request() }
        started.signal()
        let clock = Date()
        XCTAssertThrowsError(try graph.save(to: dir + "/g.mgeg")) { XCTAssertTrue($0 is InterruptedError, "\($0)") }
        XCTAssertLessThan(Date().timeIntervalSince(clock), 5)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir), [], "a file or temporary was left")
        Cancellation.reset()
        try graph.save(to: dir + "/g.mgeg")   // and without the interrupt it completes
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir), ["g.mgeg"])
    }

    func testInterruptedAtomicWriteLeavesNothing() throws {
        let dir = try emptyFolder()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        Cancellation.request()
        XCTAssertThrowsError(try SafeTensors.write([("x", SafeTensor(uint8: [1, 2], shape: [2]))], path: dir + "/x.safetensors")) {
            XCTAssertTrue($0 is InterruptedError, "\($0)")
        }
        XCTAssertThrowsError(try GraphDrawing.write("<svg/>", to: dir + "/x.svg"))
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir), [])
    }
}
