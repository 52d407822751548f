import XCTest
#if canImport(FoundationXML)
import FoundationXML
#endif
@testable import Kernels

/// Counts the elements of an SVG document, failing on malformed XML.
private final class ElementCounter: NSObject, XMLParserDelegate {
    var counts: [String: Int] = [:]
    var texts: [String] = []
    private var inText = false
    func parser(_ parser: XMLParser, didStartElement name: String, namespaceURI: String?, qualifiedName: String?, attributes: [String: String] = [:]) {
        counts[name, default: 0] += 1
        if name == "text" { inText = true; texts.append("") }
    }
    func parser(_ parser: XMLParser, didEndElement name: String, namespaceURI: String?, qualifiedName: String?) { if name == "text" { inText = false } }
    func parser(_ parser: XMLParser, foundCharacters string: String) { if inText { texts[texts.count - 1] += string } }

    static func parse(_ svg: String) throws -> ElementCounter {
        let counter = ElementCounter()
        let parser = XMLParser(data: Data(svg.utf8))
        parser.delegate = counter
        guard parser.parse() else { throw parser.parserError ?? IOFailure.corrupt(path: "svg", reason: "unparsable") }
        return counter
    }
}

final class DrawTests: XCTestCase {
    /// A small graph is drawn node by node and edge by edge, with its partition names.
    func testToyDrawsEveryNodeAndEdge() throws {
        let net = try UnrollFixtures.randomlyPruned(ModelZoo.toy(), keep: 0.5, seed: 2)
        let g = try unroll(net)
        let svg = GraphDrawing.svg(g, title: "toy & <friends>")
        let doc = try ElementCounter.parse(svg)
        XCTAssertEqual(doc.counts["circle"], g.nodeCount)
        let shortcutEdges = (0 ..< g.nodeCount).reduce(0) { sum, u in
            sum + (g.outOffsets[u] ..< g.outOffsets[u + 1]).filter { g.partitionIndex(of: Int(g.outTargets[$0])) > g.partitionIndex(of: u) + 1 }.count
        }
        XCTAssertGreaterThan(shortcutEdges, 0)
        XCTAssertEqual(doc.counts["line", default: 0] + doc.counts["path", default: 0], g.edgeCount)
        XCTAssertEqual(doc.counts["path", default: 0], shortcutEdges, "shortcuts are arcs")
        for p in g.partitions { XCTAssertTrue(doc.texts.contains(p.name), p.name) }
        XCTAssertTrue(doc.texts.contains("toy & <friends>"), "titles are escaped")
    }

    /// The reference layout's edges inside a partition are drawn as loops.
    func testReferenceQuirkShowsAsLoops() throws {
        let net = try UnrollFixtures.randomlyPruned(ModelZoo.toy(), keep: 0.5, seed: 2)
        let g = try unroll(net, compat: .reference)
        let doc = try ElementCounter.parse(GraphDrawing.svg(g, title: "reference"))
        XCTAssertTrue(doc.texts.contains { $0.contains("red loops") })
        XCTAssertEqual(doc.counts["line", default: 0] + doc.counts["path", default: 0], g.edgeCount)
    }

    /// A 15-million-edge graph gives a file of a few MB: binned columns, aggregated lines.
    func testLargeGraphStaysSmall() throws {
        let net = try UnrollFixtures.randomlyPruned(ModelZoo.resnet(depth: 20, classes: 10), keep: 0.4, seed: 1)
        let g = try unroll(net)
        XCTAssertGreaterThan(g.edgeCount, 10_000_000)
        let options = DrawingOptions()
        let svg = GraphDrawing.svg(g, title: "ResNet-20", options: options)
        XCTAssertLessThan(svg.utf8.count, 4_000_000)
        let doc = try ElementCounter.parse(svg)
        XCTAssertLessThanOrEqual(doc.counts["line", default: 0] + doc.counts["path", default: 0], options.maxLines)
        XCTAssertEqual(doc.counts["rect", default: 0], 1 + options.bins * (g.partitions.count - 1), "background + bins; the 10 outputs are nodes")
        XCTAssertEqual(doc.counts["circle"], 10)
    }

    /// Per-layer bipartite graphs are laid side by side, one labelled pair of columns each.
    func testLayerPanelsSideBySide() throws {
        func bipartite(_ name: String, _ left: Int, _ right: Int) -> Graph {
            var offsets = [0], targets: [UInt32] = []
            for u in 0 ..< left { targets.append(UInt32(left + u % right)); offsets.append(targets.count) }
            offsets += [Int](repeating: targets.count, count: right)
            return Graph(nodeCount: left + right,
                         partitions: [Partition(name: name + " in", start: 0, count: left, shape: [left]),
                                      Partition(name: name, start: left, count: right, shape: [right])],
                         outOffsets: offsets, outTargets: targets, outWeights: targets.map { _ in 1 })
        }
        let layers = [bipartite("conv1", 27, 16), bipartite("layer1.0.conv1", 144, 16), bipartite("linear", 64, 10)]
        let net = Network(architecture: ModelZoo.toy(), seed: 0)
        let svg = GraphDrawing.svg(panels: [.multipartite(try unroll(net), title: "unrolled"), .layers(layers, title: "rolled")])
        let doc = try ElementCounter.parse(svg)
        for name in ["conv1", "layer1.0.conv1", "linear", "unrolled", "rolled"] { XCTAssertTrue(doc.texts.contains(name), name) }
        XCTAssertEqual(doc.counts["circle"], try unroll(net).nodeCount + layers.reduce(0) { $0 + $1.nodeCount })
        let path = NSTemporaryDirectory() + "/mge-draw-\(UInt32.random(in: 0 ... .max)).svg"
        defer { unlink(path) }
        try GraphDrawing.write(svg, to: path)
        XCTAssertEqual(try String(contentsOfFile: path, encoding: .utf8), svg)
    }
}
