import XCTest
@testable import Kernels

final class GraphTests: XCTestCase {
    func testInAdjacencyMirrorsOutAdjacency() {
        // 0 -> 1, 0 -> 2, 1 -> 2
        let g = Graph(nodeCount: 3, partitions: [Partition(name: "a", start: 0, count: 3, shape: [3])],
                      outOffsets: [0, 2, 3, 3], outTargets: [1, 2, 2], outWeights: [1, 2, 3])
        XCTAssertEqual(g.inOffsets, [0, 0, 1, 3])
        XCTAssertEqual(g.inSources, [0, 0, 1])
        XCTAssertEqual(g.inWeights, [1, 2, 3])
        XCTAssertEqual(g.inDegree(2), 2)
        XCTAssertEqual(g.outDegree(0), 2)
    }
}
