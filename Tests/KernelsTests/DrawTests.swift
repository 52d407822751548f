import XCTest
#if canImport(FoundationXML)
import FoundationXML
#endif
@testable import Kernels

/// An SVG document read back: elements by name and class, and every text with its attributes.
private final class SVGDocument: NSObject, XMLParserDelegate {
    struct Text { var string: String; var x: Double; var y: Double; var size: Double; var anchor: String }
    var counts: [String: Int] = [:]
    var classes: [String: Int] = [:]
    var texts: [Text] = []
    var width = 0.0, height = 0.0
    private var inText = false

    func parser(_ parser: XMLParser, didStartElement name: String, namespaceURI: String?, qualifiedName: String?, attributes: [String: String] = [:]) {
        counts[name, default: 0] += 1
        for c in (attributes["class"] ?? "").split(separator: " ") { classes[String(c), default: 0] += 1 }
        if name == "svg" { width = Double(attributes["width"] ?? "") ?? 0; height = Double(attributes["height"] ?? "") ?? 0 }
        if name == "text" {
            inText = true
            texts.append(Text(string: "", x: Double(attributes["x"] ?? "") ?? .nan, y: Double(attributes["y"] ?? "") ?? .nan,
                              size: Double(attributes["font-size"] ?? "") ?? 0, anchor: attributes["text-anchor"] ?? "start"))
        }
    }
    func parser(_ parser: XMLParser, didEndElement name: String, namespaceURI: String?, qualifiedName: String?) { if name == "text" { inText = false } }
    func parser(_ parser: XMLParser, foundCharacters string: String) { if inText { texts[texts.count - 1].string += string } }

    static func parse(_ svg: String) throws -> SVGDocument {
        let doc = SVGDocument()
        let parser = XMLParser(data: Data(svg.utf8))
        parser.delegate = doc
        guard parser.parse() else { throw parser.parserError ?? IOFailure.corrupt(path: "svg", reason: "unparsable") }
        return doc
    }

    var strings: [String] { texts.map(\.string) }

    /// Every label is at least 12 px, inside the canvas, and no two labels' boxes overlap
    /// (boxes from the same width estimate the layout uses, which errs on the wide side).
    func checkLabels(file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertFalse(texts.isEmpty, file: file, line: line)
        var boxes: [(x0: Double, x1: Double, y0: Double, y1: Double, text: String)] = []
        for t in texts {
            XCTAssertGreaterThanOrEqual(t.size, 12, "'\(t.string)' is \(t.size) px", file: file, line: line)
            let w = DrawingCanvas.textWidth(t.string, size: t.size)
            let x0 = t.anchor == "middle" ? t.x - w / 2 : t.anchor == "end" ? t.x - w : t.x
            let box = (x0: x0, x1: x0 + w, y0: t.y - t.size * 0.8, y1: t.y + t.size * 0.2, text: t.string)
            XCTAssertTrue(box.x0 >= -0.5 && box.x1 <= width + 0.5 && box.y0 >= 0 && box.y1 <= height,
                          "'\(t.string)' leaves the \(width)×\(height) canvas", file: file, line: line)
            boxes.append(box)
        }
        // Node labels inside grid cells are checked against the cell size by the layout; these are the figure's labels.
        for (i, a) in boxes.enumerated() {
            for b in boxes[(i + 1)...] where a.x0 < b.x1 - 0.5 && b.x0 < a.x1 - 0.5 && a.y0 < b.y1 - 0.5 && b.y0 < a.y1 - 0.5 {
                XCTFail("labels '\(a.text)' and '\(b.text)' overlap", file: file, line: line)
            }
        }
    }
}

final class DrawTests: XCTestCase {
    /// A small graph is drawn node by node (as pixel grids) and edge by edge, with its partition
    /// names, a legend naming every layer, and escaped titles.
    func testToyDrawsEveryNodeAndEdge() throws {
        let net = try UnrollFixtures.randomlyPruned(ModelZoo.toy(), keep: 0.5, seed: 2)
        let g = try unroll(net)
        let svg = GraphDrawing.svg(panels: [.unrolled(g, plan: try UnrollPlan(net.architecture), title: "toy & <friends>")])
        let doc = try SVGDocument.parse(svg)
        XCTAssertEqual(doc.classes["n"], g.nodeCount)
        XCTAssertEqual(doc.classes["e"], g.edgeCount, "one line per edge")
        let shortcutEdges = (0 ..< g.nodeCount).reduce(0) { sum, u in
            sum + (g.outOffsets[u] ..< g.outOffsets[u + 1]).filter { g.partitionIndex(of: Int(g.outTargets[$0])) > g.partitionIndex(of: u) + 1 }.count
        }
        XCTAssertGreaterThan(shortcutEdges, 0)
        XCTAssertEqual(doc.classes["s", default: 0], shortcutEdges, "shortcuts are arcs")
        for p in g.partitions { XCTAssertTrue(doc.strings.contains(p.name), p.name) }
        XCTAssertTrue(doc.strings.contains("block.shortcut.0"), "the legend names the shortcut layer")
        XCTAssertTrue(doc.strings.contains("padding (zero ring)"))
        XCTAssertTrue(doc.strings.contains("toy & <friends>"), "titles are escaped")
        doc.checkLabels()
    }

    /// Colours follow layers: a shortcut's arcs take the shortcut layer's colour, and a layer has
    /// the same colour in the rolled and the unrolled panel.
    func testColoursFollowLayers() throws {
        let net = Network(architecture: ModelZoo.toy(), seed: 0)
        let g = try unroll(net)
        var colours = LayerColours()
        for name in try UnrollPlan(net.architecture).layers.map(\.name) { colours.add(name) }
        XCTAssertEqual(Set(colours.order.map(colours.colour)).count, colours.order.count, "one colour per layer")
        let svg = GraphDrawing.svg(panels: [.unrolled(g, plan: try UnrollPlan(net.architecture), title: "t")])
        let shortcut = colours.colour("block.shortcut.0")
        let arcs = svg.split(separator: "\n").filter { $0.hasPrefix("<path class=\"e s") }
        XCTAssertFalse(arcs.isEmpty)
        XCTAssertTrue(arcs.allSatisfy { $0.contains("stroke=\"\(shortcut)\"") }, "arcs in the shortcut layer's colour")
        var many = LayerColours()
        for i in 0 ..< 22 { many.add("l\(i)") }
        XCTAssertEqual(Set(many.order.map(many.colour)).count, 22)
    }

    /// The reference layout's edges inside a partition are drawn as loops, listed in the legend.
    func testReferenceQuirkShowsAsLoops() throws {
        let net = try UnrollFixtures.randomlyPruned(ModelZoo.toy(), keep: 0.5, seed: 2)
        let g = try unroll(net, compat: .reference)
        let doc = try SVGDocument.parse(GraphDrawing.svg(g, title: "reference"))
        XCTAssertTrue(doc.strings.contains("loops: edges inside a partition"))
        XCTAssertEqual(doc.classes["e"], g.edgeCount)
    }

    /// A 15-million-edge graph gives a file of a few MB: one bin per channel, bundled lines,
    /// column heights that follow partition sizes.
    func testLargeGraphStaysSmall() throws {
        let net = try UnrollFixtures.randomlyPruned(ModelZoo.resnet(depth: 20, classes: 10), keep: 0.4, seed: 1)
        let g = try unroll(net)
        XCTAssertGreaterThan(g.edgeCount, 10_000_000)
        let options = DrawingOptions()
        let svg = GraphDrawing.svg(g, title: "ResNet-20", options: options)
        XCTAssertLessThan(svg.utf8.count, 4_000_000)
        let doc = try SVGDocument.parse(svg)
        XCTAssertLessThanOrEqual(doc.classes["e", default: 0], options.maxLines)
        // One bin per channel where the column is tall enough (input 3, the seven 16-channel and
        // six 32-channel partitions), channel groups in the six short 64-channel columns of
        // the funnel's end; the 10 outputs are nodes.
        let early = 3 + 16 * 7 + 32 * 6
        let late = doc.classes["b", default: 0] - early
        XCTAssertTrue(late > 6 * 8 && late < 6 * 64 && late % 6 == 0, "\(late) bins in the 64-channel columns")
        XCTAssertEqual(doc.classes["n"], 10)
        doc.checkLabels()
    }

    /// Labels of real figures are never under 12 px, never overlap and stay on the canvas:
    /// ResNet-20 98% sparse in three rows at 1,600 px, and the toy's three encodings.
    func testFigureLabelsReadOnASlide() throws {
        let resnet = try UnrollFixtures.randomlyPruned(ModelZoo.resnet(depth: 20, classes: 10), keep: 0.02, seed: 3)
        let toy = try UnrollFixtures.randomlyPruned(ModelZoo.toy(), keep: 0.7, seed: 1)
        for net in [resnet, toy] {
            let layers = try NetworkLayersFixture.rolled(net)
            let mge = DrawingPanel.unrolled(try unroll(net), plan: try UnrollPlan(net.architecture), title: "unrolled (MGE)")
            let rows: [[DrawingPanel]] = net === toy
                ? [[.layers(layers.rolled, title: "rolled"), .layers(layers.channel, title: "rolled-channel")], [mge]]
                : [[.layers(layers.rolled, title: "rolled")], [.layers(layers.channel, title: "rolled-channel")], [mge]]
            for width in [1600.0, 1000.0, 400.0] {
                var options = DrawingOptions()
                options.width = width
                let doc = try SVGDocument.parse(GraphDrawing.svg(rows: rows, title: "\(net.architecture.name): three encodings", options: options))
                XCTAssertEqual(doc.width, width)
                doc.checkLabels()
            }
        }
    }

    /// A highlighted set is drawn on top: its nodes outlined, its internal edges emphasised,
    /// the rest faded (and the legend says so).
    func testHighlightDrawsTheSetOnTop() throws {
        let net = Network(architecture: ModelZoo.toy(), seed: 0)
        let g = try unroll(net)
        let target = try XCTUnwrap(g.node(partition: 1, coordinates: [0, 2, 2]))
        var panel = DrawingPanel.unrolled(g, plan: try UnrollPlan(net.architecture), title: "rf")
        panel.highlight = Set(g.receptiveField(of: [target]) + [target])
        let svg = GraphDrawing.svg(panels: [panel])
        let doc = try SVGDocument.parse(svg)
        XCTAssertEqual(doc.classes["n"], g.nodeCount)
        XCTAssertTrue(doc.strings.contains("faded: outside the highlighted set"))
        XCTAssertEqual(doc.classes["h"], 9, "the 9 edges of the 3×3 window")
        XCTAssertEqual(doc.classes["e"], g.edgeCount)
    }

    /// Per-layer bipartite graphs are laid side by side, one labelled pair of columns each.
    func testLayerPanelsSideBySide() throws {
        func bipartite(_ name: String, _ left: Int, _ right: Int) -> Graph {
            var offsets = [0], targets: [UInt32] = []
            for u in 0 ..< left { targets.append(UInt32(left + u % right)); offsets.append(targets.count) }
            offsets += [Int](repeating: targets.count, count: right)
            return Graph(nodeCount: left + right,
                         partitions: [Partition(name: name + ".in", start: 0, count: left, shape: [left]),
                                      Partition(name: name, start: left, count: right, shape: [right])],
                         outOffsets: offsets, outTargets: targets, outWeights: targets.map { _ in 1 })
        }
        let layers = [bipartite("conv1", 27, 16), bipartite("layer1.0.conv1", 144, 16), bipartite("linear", 64, 10)]
        let net = Network(architecture: ModelZoo.toy(), seed: 0)
        let svg = GraphDrawing.svg(panels: [.multipartite(try unroll(net), title: "unrolled"), .layers(layers, title: "rolled")])
        let doc = try SVGDocument.parse(svg)
        for name in ["conv1", "layer1.0.conv1", "linear", "unrolled", "rolled"] { XCTAssertTrue(doc.strings.contains(name), name) }
        doc.checkLabels()
        let path = NSTemporaryDirectory() + "/mge-draw-\(UInt32.random(in: 0 ... .max)).svg"
        defer { unlink(path) }
        try GraphDrawing.write(svg, to: path)
        XCTAssertEqual(try String(contentsOfFile: path, encoding: .utf8), svg)
    }

    /// A PNG rendered through librsvg has the PNG signature and the figure's size.
    func testPNGThroughLibrsvg() throws {
        let svg = GraphDrawing.svg(try unroll(Network(architecture: ModelZoo.toy(), seed: 0)), title: "toy")
        let size = try XCTUnwrap(GraphDrawing.size(of: svg))
        let path = NSTemporaryDirectory() + "/mge-draw-\(UInt32.random(in: 0 ... .max)).png"
        defer { unlink(path) }
        try GraphDrawing.writePNG(svg, width: Int(size.width), height: Int(size.height), to: path)
        let bytes = try XCTUnwrap(FileManager.default.contents(atPath: path))
        XCTAssertEqual(Array(bytes.prefix(8)), [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A])
        func be32(_ at: Int) -> Int { bytes[at ..< at + 4].reduce(0) { $0 << 8 | Int($1) } }
        XCTAssertEqual(be32(16), Int(size.width))
        XCTAssertEqual(be32(20), Int(size.height))
        XCTAssertThrowsError(try GraphDrawing.writePNG("<svg", width: 10, height: 10, to: path + ".bad.png"))
        XCTAssertThrowsError(try GraphDrawing.writePNG(svg, width: 10, height: 10, to: "/no/such/folder/x.png"))
    }

    /// A slice of an unrolled graph holds the edges among its partitions, and keeps each
    /// node's role (source, sink) from the whole graph.
    func testSlicesOfAnUnrolledGraph() throws {
        let net = try UnrollFixtures.randomlyPruned(ModelZoo.toy(), keep: 0.5, seed: 2)
        let g = try unroll(net)
        let plan = try UnrollPlan(net.architecture)
        let slice = g.partitionSlice(1 ... 2)
        XCTAssertEqual(slice.partitions.map(\.name), Array(g.partitions[1 ... 2].map(\.name)))
        let lo = g.partitions[1].start, hi = g.partitions[2].start + g.partitions[2].count
        let inside = (lo ..< hi).reduce(0) { sum, u in sum + (g.outOffsets[u] ..< g.outOffsets[u + 1]).filter { Int(g.outTargets[$0]) < hi }.count }
        XCTAssertEqual(slice.edgeCount, inside)
        let part = GraphDrawing.svg(panels: [.unrolled(g, plan: plan, partitions: 1 ... 2, title: "part")])
        // Sources and sinks come from the whole graph: a sliced-off neighbour does not make one
        // (one ring per such node, plus the legend's swatch).
        func count(_ colour: String) -> Int { part.components(separatedBy: "stroke=\"\(colour)\"").count - 1 }
        let sinks = (lo ..< hi).filter { g.outDegree($0) == 0 && g.inDegree($0) > 0 }.count
        let sources = (lo ..< hi).filter { g.inDegree($0) == 0 && g.outDegree($0) > 0 }.count
        XCTAssertEqual(count(NodeStyle.sinkColour), sinks + (sinks > 0 ? 1 : 0))
        XCTAssertEqual(count(NodeStyle.sourceColour), sources + (sources > 0 ? 1 : 0))
    }
}

/// Rolled and rolled-channel graphs of every prunable layer, for figures in tests.
enum NetworkLayersFixture {
    static func rolled(_ net: Network) throws -> (rolled: [Graph], channel: [Graph]) {
        var rolled: [Graph] = [], channel: [Graph] = []
        for node in net.architecture.nodes {
            let groups: Int
            switch node.op {
            case .conv(let c): groups = c.groups
            case .linear: groups = 1
            default: continue
            }
            let key = node.name + ".weight"
            guard let t = net.parameter(key) else { continue }
            let layer = LayerWeight(name: node.name, kind: t.shape.count == 2 ? "linear" : "conv",
                                    shape: t.shape, groups: groups, values: t.data, mask: net.masks[key])
            rolled.append(try rolledGraph(layer))
            channel.append(try rolledChannelGraph(layer))
        }
        return (rolled, channel)
    }
}
