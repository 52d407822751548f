import XCTest
@testable import Kernels

final class RolledTests: XCTestCase {
    func edges(_ g: Graph) -> [(Int, Int, Float)] {
        var out: [(Int, Int, Float)] = []
        for u in 0 ..< g.nodeCount { for e in g.outOffsets[u] ..< g.outOffsets[u + 1] {
            out.append((u, Int(g.outTargets[e]), Float(g.outWeights[e])))
        } }
        return out
    }

    func testRolledConvOrderMaskAndHalfRounding() throws {
        // W[o, i, a, b] with out 2, in 2, 1x2 kernel: left index = i*2 + b.
        let v: [Float] = [0.1, 0, -0.3, 0.4,     // o = 0: (i0,b0) (i0,b1) (i1,b0) (i1,b1)
                          0, 1.0001, 0.5, -0.7]  // o = 1
        let mask: [UInt8] = [1, 1, 1, 0, 1, 1, 1, 1]
        let g = try rolledGraph(LayerWeight(name: "c", kind: "conv", shape: [2, 2, 1, 2], values: v, mask: mask))
        XCTAssertEqual(g.nodeCount, 6)
        XCTAssertEqual(g.partitions.map(\.count), [4, 2])
        let e = edges(g)
        XCTAssertEqual(e.map { [$0.0, $0.1] }, [[0, 4], [1, 5], [2, 4], [2, 5], [3, 5]])
        XCTAssertEqual(e.map(\.2), [Float(Float16(0.1)), Float(Float16(1.0001)), Float(Float16(0.3)), 0.5, Float(Float16(0.7))])
        XCTAssertEqual(Float(Float16(1.0001)), 1.0)   // rounded to half precision
    }

    func testRolledChannelNormsAndDepthwise() throws {
        // out 2, in 2, 2x1 kernels.
        let v: [Float] = [3, 4,  0, 0,   // o0: i0 = (3,4) → 5, i1 = 0 → no edge
                          0, 1,  1, 1]   // o1: i0 → 1, i1 → √2
        let g = try rolledChannelGraph(LayerWeight(name: "c", kind: "conv", shape: [2, 2, 2, 1], values: v))
        XCTAssertEqual(edges(g).map { [$0.0, $0.1] }, [[0, 2], [0, 3], [1, 3]])
        XCTAssertEqual(edges(g).map(\.2), [5, 1, Float(Float16(Float(2.0.squareRoot())))])
        // Depthwise [3, 1, 1, 2], groups 3: j → j, the middle kernel pruned.
        let dw = LayerWeight(name: "dw", kind: "conv", shape: [3, 1, 1, 2], groups: 3, values: [1, 0, 0, 0, 0, 2])
        let gc = try rolledChannelGraph(dw)
        XCTAssertEqual(gc.partitions.map(\.count), [3, 3])
        XCTAssertEqual(edges(gc).map { [$0.0, $0.1] }, [[0, 3], [2, 5]])
        let gr = try rolledGraph(dw)
        XCTAssertEqual(gr.partitions.map(\.count), [2, 3])   // left = kh·kw
        XCTAssertEqual(edges(gr).map { [$0.0, $0.1] }, [[0, 2], [1, 4]])
    }

    func testLinearAndErrors() throws {
        let lin = LayerWeight(name: "fc", kind: "linear", shape: [2, 3], values: [1, 0, 2, 0, -3, 0])
        let g = try rolledGraph(lin)
        XCTAssertEqual(edges(g).map { [$0.0, $0.1] }, [[0, 3], [1, 4], [2, 3]])
        XCTAssertEqual(try rolledChannelGraph(lin).outTargets, g.outTargets)
        XCTAssertThrowsError(try rolledGraph(LayerWeight(name: "x", kind: "conv", shape: [2, 3, 3], values: [])))
        XCTAssertThrowsError(try rolledGraph(LayerWeight(name: "x", kind: "linear", shape: [2, 3], values: [1])))
        XCTAssertThrowsError(try rolledGraph(LayerWeight(name: "x", kind: "linear", shape: [2, 3], values: [1, 1, 1, 1, 1, 1], mask: [1])))
        XCTAssertThrowsError(try rolledChannelGraph(LayerWeight(name: "x", kind: "conv", shape: [4, 2, 1, 1], groups: 2, values: [Float](repeating: 1, count: 8))))
        XCTAssertThrowsError(try rolledGraph(LayerWeight(name: "x", kind: "conv", shape: [0, 2, 1, 1], values: [])))
    }
}
