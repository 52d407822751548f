import XCTest
@testable import Kernels

/// Node-level queries against independent computations: coordinates, receptive fields from
/// the convolution arithmetic, path counts by dynamic programming, and the topometrics' counts.
final class NodeQueriesTests: XCTestCase {
    func testCoordinatesRoundTrip() throws {
        let g = try unroll(Network(architecture: ModelZoo.toy(), seed: 0))
        for v in stride(from: 0, to: g.nodeCount, by: 7) {
            let (p, c) = g.coordinates(of: v)
            XCTAssertEqual(g.node(partition: p, coordinates: c), v)
        }
        XCTAssertNil(g.node(partition: 1, coordinates: [0, 6, 0]), "row 6 of a 6×6 map")
        XCTAssertNil(g.node(partition: 1, coordinates: [0, 0]))
    }

    /// A conv1 pixel (3×3, padding 1, input padded by 1) sees the 3×3 window of the padded input
    /// whose top-left corner is at its own coordinates; a block.conv1 pixel (stride 2) sees 7×7.
    func testReceptiveFieldIsTheKernelWindow() throws {
        let g = try unroll(Network(architecture: ModelZoo.toy(), seed: 0))
        for (y, x) in [(0, 0), (2, 3), (5, 5)] {
            let v = try XCTUnwrap(g.node(partition: 1, coordinates: [1, y, x]))
            let expected = (0 ..< 3).flatMap { dy in (0 ..< 3).map { dx in g.node(partition: 0, coordinates: [0, y + dy, x + dx])! } }
            XCTAssertEqual(g.receptiveField(of: [v]), expected.sorted())
            XCTAssertEqual(g.neighbourhood(of: [v], hops: 1, direction: .in).filter { $0 < g.partitions[0].count }, expected.sorted())
        }
        let v = try XCTUnwrap(g.node(partition: 2, coordinates: [0, 1, 1]))
        // Output (1, 1) of a stride-2 conv reads conv1 rows/columns 1…3 (pad 1), which read padded input 1…5.
        let expected = (1 ... 5).flatMap { r in (1 ... 5).map { c in g.node(partition: 0, coordinates: [0, r, c])! } }
        XCTAssertEqual(g.receptiveField(of: [v]), expected.sorted())
    }

    /// Enumerated paths equal the number of paths counted by dynamic programming (when under
    /// the limit), are distinct, and each follows edges from source to target.
    func testPathsMatchADynamicProgrammingCount() throws {
        let net = try UnrollFixtures.randomlyPruned(ModelZoo.toy(), keep: 0.3, seed: 4)
        let g = try unroll(net)
        let target = g.partitions[3].start + 4
        var count = [Int](repeating: 0, count: g.nodeCount)
        count[target] = 1
        for u in stride(from: target - 1, through: 0, by: -1) {
            for e in g.outOffsets[u] ..< g.outOffsets[u + 1] { count[u] += count[Int(g.outTargets[e])] }
        }
        var checked = 0
        for source in g.partitions[0].range where count[source] > 0 && count[source] < 500 {
            let paths = g.paths(from: source, to: target, limit: 1000)
            XCTAssertEqual(paths.count, count[source])
            XCTAssertEqual(Set(paths.map { $0.map(String.init).joined(separator: ",") }).count, paths.count)
            for path in paths {
                XCTAssertEqual(path.first, source); XCTAssertEqual(path.last, target)
                for (a, b) in zip(path, path.dropFirst()) {
                    XCTAssertTrue(g.outTargets[g.outOffsets[a] ..< g.outOffsets[a + 1]].contains(UInt32(b)))
                }
            }
            checked += 1
        }
        XCTAssertGreaterThan(checked, 0)
        XCTAssertEqual(g.paths(from: target, to: g.partitions[0].start, limit: 5).count, 0, "no path backwards")
    }

    /// Sinks, sources and isolated nodes are the sets whose sizes the topometrics report.
    func testRolesMatchTopometrics() throws {
        for keep in [0.2, 0.05] {
            let net = try UnrollFixtures.randomlyPruned(ModelZoo.toy(), keep: keep, seed: 5)
            let g = try unroll(net)
            let m = try topometrics(g, only: ["sink_nodes", "source_nodes", "disconnected_nodes"])
            XCTAssertEqual(g.sinks.count, m.sinkNodes)
            XCTAssertEqual(g.sources.count, m.sourceNodes)
            XCTAssertEqual(g.isolated.count, m.disconnectedNodes)
        }
    }
}
