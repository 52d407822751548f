import Foundation

/// Settings of a graph drawing. Sizes are SVG user units (pixels when shown at the figure's width).
public struct DrawingOptions: Sendable {
    public var width: Double = 1600
    /// nil: chosen from the width and the number of panel rows (about 16:9 for one row).
    public var height: Double? = nil
    /// Size of the smallest text (labels, legend); titles are a little larger.
    public var fontSize: Double = 14
    /// At most this many lines per figure; beyond it, the lightest bundles are left out (and
    /// the legend says so), which keeps an SVG of any graph to a few MB.
    public var maxLines = 24_000
    public init() {}

    /// No text of a figure is smaller than this at the figure's own width (it must read on a slide).
    public static let minimumFontSize = 12.0
    public static let widthRange = 400.0 ... 8000.0
    public static let heightRange = 300.0 ... 8000.0
    public static let fontSizeRange = minimumFontSize ... 48.0
}

/// A figure that does not lay out at the size and font asked for.
public struct DrawingDoesNotFit: Error, Sendable {
    /// One sentence per problem.
    public let problems: [String]
}

/// One panel of a figure: an unrolled (multipartite) graph, or per-layer bipartite graphs side by side.
public struct DrawingPanel {
    public enum Content {
        /// A multipartite graph, partitions as columns left to right (the unrolled encoding).
        case multipartite(Graph)
        /// Per-layer bipartite graphs (rolled encodings): each a pair of columns, side by side.
        case layers([Graph])
    }
    public var content: Content
    public var title: String
    /// One line under the title saying what a node and an edge are.
    public var subtitle: String
    /// Width of the zero-padding ring of the input partition (its ring nodes are drawn as padding).
    public var inputPadding = 0
    /// For edges between non-adjacent partitions of a multipartite graph: the layer that makes
    /// them (a shortcut conv), by `PartitionPair`, so they take that layer's colour.
    public var skipLayers: [PartitionPair: String] = [:]
    /// Nodes drawn on top of a faded graph, with the edges among them.
    public var highlight: Set<Int> = []
    /// The network's layers in order, when known: colours follow it, so a layer has the same
    /// colour in every figure of its network (drawn alone or with the others).
    public var layerOrder: [String] = []
    /// For a slice of a larger graph: that graph, the id of the slice's node 0 in it, and the
    /// index of the slice's first partition there (roles are read from the whole graph's degrees).
    var wholeGraph: (graph: Graph, nodeOffset: Int, partitionOffset: Int)?

    public init(_ content: Content, title: String, subtitle: String = "") {
        self.content = content; self.title = title; self.subtitle = subtitle
    }

    public static func multipartite(_ graph: Graph, title: String, subtitle: String = "") -> DrawingPanel {
        DrawingPanel(.multipartite(graph), title: title, subtitle: subtitle)
    }

    public static func layers(_ graphs: [Graph], title: String, subtitle: String = "") -> DrawingPanel {
        DrawingPanel(.layers(graphs), title: title, subtitle: subtitle)
    }

    /// An unrolled graph with its layout: the padding ring of its input and the shortcut layers
    /// whose edges skip partitions (from `plan`, when known).
    public static func unrolled(_ graph: Graph, plan: UnrollPlan?, title: String,
                                subtitle: String = "one node per pixel (c, y, x) of each feature map; an edge per kernel tap of a kept weight") -> DrawingPanel {
        var panel = DrawingPanel(.multipartite(graph), title: title, subtitle: subtitle)
        if let plan, plan.partitions.count == graph.partitions.count {
            panel.inputPadding = plan.inputPadding
            panel.layerOrder = plan.layers.map(\.name)
            for layer in plan.layers where layer.isShortcut {
                panel.skipLayers[PartitionPair(source: layer.sourcePartition, target: layer.targetPartition)] = layer.name
            }
        }
        return panel
    }

    /// Whether the first partition is the network's input (not so for a slice of later layers).
    var startsAtInput: Bool { (wholeGraph?.partitionOffset ?? 0) == 0 }

    /// The layers drawn: a multipartite graph's partitions after the input (and its skip
    /// layers), or each bipartite graph's right partition (its layer).
    var layerNames: [String] {
        switch content {
        case .multipartite(let g):
            return g.partitions.dropFirst(startsAtInput ? 1 : 0).map(\.name) + skipLayers.sorted { ($0.key.source, $0.key.target) < ($1.key.source, $1.key.target) }.map(\.value)
        case .layers(let gs):
            return gs.map { $0.partitions.last?.name ?? "" }
        }
    }
}

/// A pair of partition indices (source, target) of a multipartite graph.
public struct PartitionPair: Hashable, Sendable {
    public let source: Int, target: Int
    public init(source: Int, target: Int) { self.source = source; self.target = target }
}

/// One colour per layer, the same in every panel of a figure: a qualitative palette (without
/// the red and green that mark sinks and sources) for up to nine layers, then hues spread by the
/// golden angle at two lightnesses. The input is grey.
struct LayerColours {
    static let inputColour = "#7F7F7F"
    static let palette = ["#1F77B4", "#FF7F0E", "#9467BD", "#8C564B", "#E377C2", "#BCBD22", "#17BECF", "#393B79", "#5254A3"]
    private(set) var order: [String] = []
    private var index: [String: Int] = [:]
    /// The layers a figure draws (the legend lists these, in `order`).
    var drawn = Set<String>()
    var legendOrder: [String] { order.filter(drawn.contains) }

    mutating func add(_ name: String) {
        guard index[name] == nil, name != "input" else { return }
        index[name] = order.count
        order.append(name)
    }

    func colour(_ name: String) -> String {
        guard let i = index[name] else { return LayerColours.inputColour }
        if order.count <= LayerColours.palette.count { return LayerColours.palette[i] }
        let hue = (Double(i) * 137.508).truncatingRemainder(dividingBy: 360)
        return LayerColours.hsl(hue, 0.62, i % 2 == 0 ? 0.42 : 0.56)
    }

    static func hsl(_ h: Double, _ s: Double, _ l: Double) -> String {
        let c = (1 - abs(2 * l - 1)) * s
        let x = c * (1 - abs((h / 60).truncatingRemainder(dividingBy: 2) - 1))
        let m = l - c / 2
        let (r, g, b): (Double, Double, Double)
        switch h {
        case ..<60: (r, g, b) = (c, x, 0)
        case ..<120: (r, g, b) = (x, c, 0)
        case ..<180: (r, g, b) = (0, c, x)
        case ..<240: (r, g, b) = (0, x, c)
        case ..<300: (r, g, b) = (x, 0, c)
        default: (r, g, b) = (c, 0, x)
        }
        return String(format: "#%02X%02X%02X", Int(((r + m) * 255).rounded()), Int(((g + m) * 255).rounded()), Int(((b + m) * 255).rounded()))
    }
}

/// What a figure's legend must explain, collected while the panels are drawn.
struct LegendNeeds {
    var roles = Set<NodeRole>()
    var perEdgeLines = false
    var bundles = false
    var skipArcs = false
    var loops = false
    var faded = false
    /// Lines left out to stay within `maxLines`: (shown, total).
    var truncated: (shown: Int, total: Int)?

    mutating func merge(_ o: LegendNeeds) {
        roles.formUnion(o.roles)
        perEdgeLines = perEdgeLines || o.perEdgeLines
        bundles = bundles || o.bundles
        skipArcs = skipArcs || o.skipArcs
        loops = loops || o.loops
        faded = faded || o.faded
        if let t = o.truncated { truncated = ((truncated?.shown ?? 0) + t.shown, (truncated?.total ?? 0) + t.total) }
    }
}

/// How a node is drawn: the roles the topometrics count (SPEC §4) get their own style.
enum NodeRole: Int, CaseIterable, Hashable {
    case normal, source, sink, isolated, padding
}

/// Figures of graph encodings for slides, in the style of the paper's figures: partitions as
/// columns left to right whose heights follow their sizes (the network's funnel), small
/// `C×H×W` partitions as C little pixel grids, big ones as one bin per channel (group); one
/// colour per layer in every panel, a legend, and no text smaller than 12 px at the figure's width.
public enum GraphDrawing {
    /// A figure of panel rows (each row's panels side by side), a title and a legend.
    /// - Complexity: O(n + m) to aggregate edges, output O(nodes drawn + `maxLines`).
    public static func svg(rows: [[DrawingPanel]], title: String? = nil, options: DrawingOptions = DrawingOptions()) -> String {
        render(rows: rows, title: title, options: options).svg
    }

    /// Like `svg(rows:title:options:)`, but refuses a figure that did not lay out (a panel with
    /// no room left for its graph at this size and font) instead of returning it half empty.
    public static func checkedSVG(rows: [[DrawingPanel]], title: String? = nil, options: DrawingOptions = DrawingOptions()) throws(DrawingDoesNotFit) -> String {
        let (svg, problems) = render(rows: rows, title: title, options: options)
        guard problems.isEmpty else { throw DrawingDoesNotFit(problems: problems) }
        return svg
    }

    /// The figure and what could not be laid out in it.
    static func render(rows: [[DrawingPanel]], title: String?, options: DrawingOptions) -> (svg: String, problems: [String]) {
        let fs = max(options.fontSize, DrawingOptions.minimumFontSize)
        let width = options.width
        var colours = LayerColours()
        for panel in rows.joined() {
            for name in panel.layerOrder { colours.add(name) }
            for name in panel.layerNames { colours.add(name); colours.drawn.insert(name) }
        }
        let hasInput = rows.joined().contains { if case .multipartite = $0.content { return $0.startsAtInput }; return false }
        let rowCount = max(1, rows.count)
        let titleHeight = title == nil ? 0.0 : fs * 2.4
        let lineBudget = options.maxLines / max(1, rows.joined().count)

        /// Draws the panels between the title and a legend of `legendHeight`; returns what the legend must explain.
        func drawPanels(height: Double, legendHeight: Double, on canvas: inout DrawingCanvas) -> LegendNeeds {
            var needs = LegendNeeds()
            let rowsHeight = max(fs * 12, height - titleHeight - legendHeight)
            for (r, row) in rows.enumerated() {
                let y = titleHeight + rowsHeight * Double(r) / Double(rowCount)
                let h = rowsHeight / Double(rowCount)
                let shares = row.map(\.widthShare)
                let total = shares.reduce(0, +)
                var x = 0.0
                for (panel, share) in zip(row, shares) {
                    let w = width * share / max(total, 1e-9)
                    let frame = DrawingFrame(x: x + fs * 0.8, y: y, width: w - fs * 1.6, height: h)
                    var renderer = PanelRenderer(panel: panel, frame: frame, fontSize: fs, colours: colours, lineBudget: lineBudget)
                    needs.merge(renderer.draw(on: &canvas))
                    if x > 0 { canvas.line(x, y + fs * 0.5, x, y + h - fs * 0.5, colour: "#DDDDDD", width: 1, opacity: 1) }
                    x += w
                }
                if r > 0 { canvas.line(fs, y, width - fs, y, colour: "#DDDDDD", width: 1, opacity: 1) }
            }
            return needs
        }

        // What the legend lists depends on what gets drawn: a first pass on a scratch canvas
        // finds out, so the legend gets exactly the room it needs (drawing twice is cheap next
        // to a figure's use).
        let rowHeight = max(300, width * (rowCount == 1 ? 0.48 : rowCount == 2 ? 0.3 : 0.24))
        var scratch = DrawingCanvas(width: width, height: 0)
        let guessLegend = Legend.height(colours: colours, hasInput: hasInput, needs: LegendNeeds(), width: width, fontSize: fs)
        var firstNeeds = drawPanels(height: options.height ?? (titleHeight + guessLegend + Double(rowCount) * rowHeight),
                                    legendHeight: guessLegend, on: &scratch)
        // A slightly different height may switch a column between dots and bins: room for both keys.
        firstNeeds.perEdgeLines = true; firstNeeds.bundles = true
        let legendHeight = Legend.height(colours: colours, hasInput: hasInput, needs: firstNeeds, width: width, fontSize: fs)
        let height = options.height ?? (titleHeight + legendHeight + Double(rowCount) * rowHeight)
        var canvas = DrawingCanvas(width: width, height: height)
        if let title {
            let line = PanelRenderer.wrap(title, width: width - 2 * fs, size: fs * 1.4, maxLines: 1, what: "the figure's title", on: &canvas)
            canvas.text(width / 2, fs * 1.7, line.first ?? "", size: fs * 1.4, weight: "600")
        }
        if height - titleHeight - legendHeight < fs * 12 {
            canvas.problems.append("the legend (\(Int(legendHeight.rounded())) px) and title leave the panels less than \(Int(fs * 12)) px of the \(Int(height.rounded())) px height")
        }
        let needs = drawPanels(height: height, legendHeight: legendHeight, on: &canvas)
        Legend.draw(colours: colours, hasInput: hasInput, needs: needs, top: height - legendHeight, width: width, fontSize: fs, on: &canvas)
        // Whatever the layout could not avoid (labels on top of each other, text off the canvas) is a problem too.
        canvas.problems += canvas.layoutProblems()
        return (canvas.document(), canvas.problems)
    }

    /// Panels side by side in one row.
    public static func svg(panels: [DrawingPanel], title: String? = nil, options: DrawingOptions = DrawingOptions()) -> String {
        svg(rows: [panels], title: title, options: options)
    }

    /// The unrolled (multipartite) encoding alone.
    public static func svg(_ graph: Graph, title: String, options: DrawingOptions = DrawingOptions()) -> String {
        svg(panels: [.multipartite(graph, title: title)], options: options)
    }

    /// Per-layer bipartite encodings alone, side by side.
    public static func svg(layers: [Graph], title: String, options: DrawingOptions = DrawingOptions()) -> String {
        svg(panels: [.layers(layers, title: title)], options: options)
    }

    /// Writes an SVG document atomically.
    public static func write(_ svg: String, to path: String) throws {
        try AtomicFile.write(Array(svg.utf8), to: path)
    }
}

extension DrawingPanel {
    /// Share of its row's width: proportional to the columns it shows, so columns are evenly spaced.
    var widthShare: Double {
        switch content {
        case .multipartite(let g): return 2.2 * Double(max(3, g.partitions.count))
        case .layers(let gs): return 2.0 * Double(max(2, gs.count))
        }
    }
}

struct DrawingFrame {
    var x, y, width, height: Double
    var right: Double { x + width }
    var bottom: Double { y + height }
}


/// The figure's legend, under the panels: one swatch per layer, then the node styles and edge
/// encodings that occur, wrapped into lines that fit the width.
enum Legend {
    struct Item { var swatch: Swatch; var text: String }
    enum Swatch { case layer(String), role(NodeRole), line(String), none }

    static func items(colours: LayerColours, hasInput: Bool, needs: LegendNeeds) -> [[Item]] {
        var layers: [Item] = [Item(swatch: .none, text: "Layers:")]
        if hasInput { layers.append(Item(swatch: .layer(LayerColours.inputColour), text: "input")) }
        for name in colours.legendOrder { layers.append(Item(swatch: .layer(colours.colour(name)), text: name)) }
        var keys: [Item] = []
        let roleText: [NodeRole: String] = [.normal: "node", .source: "source (no in-edges)", .sink: "sink (no out-edges)",
                                            .isolated: "isolated (no edges)", .padding: "padding (zero ring)"]
        for role in NodeRole.allCases where needs.roles.contains(role) { keys.append(Item(swatch: .role(role), text: roleText[role] ?? "")) }
        if needs.perEdgeLines { keys.append(Item(swatch: .line("#555555"), text: "edge, width ∝ |w|")) }
        if needs.bundles { keys.append(Item(swatch: .line("#555555"), text: "bundle between channel groups, opacity ∝ Σ|w|")) }
        if needs.skipArcs { keys.append(Item(swatch: .none, text: "arcs: shortcut edges skipping layers")) }
        if needs.loops { keys.append(Item(swatch: .line("#D62728"), text: "loops: edges inside a partition")) }
        if needs.faded { keys.append(Item(swatch: .none, text: "faded: outside the highlighted set")) }
        if let t = needs.truncated { keys.append(Item(swatch: .none, text: "\(t.shown) of \(t.total) heaviest lines shown")) }
        return keys.isEmpty ? [layers] : [layers, keys]
    }

    static func itemWidth(_ item: Item, fontSize fs: Double) -> Double {
        let swatch: Double
        if case .none = item.swatch { swatch = 0 } else { swatch = fs * 1.6 }
        return swatch + DrawingCanvas.textWidth(item.text, size: fs) + fs * 1.2
    }

    /// Lines of items, each line at most `width - 2·margin` wide.
    static func lines(_ groups: [[Item]], width: Double, fontSize fs: Double) -> [[Item]] {
        var out: [[Item]] = []
        for group in groups {
            var line: [Item] = [], used = 0.0
            for var item in group {
                // An item wider than a whole line is cut to fit it.
                let room = width - 2 * fs - (itemWidth(Item(swatch: item.swatch, text: ""), fontSize: fs))
                item.text = PanelRenderer.fit(item.text, width: room, size: fs)
                let w = itemWidth(item, fontSize: fs)
                if !line.isEmpty && used + w > width - 2 * fs { out.append(line); line = []; used = 0 }
                line.append(item); used += w
            }
            if !line.isEmpty { out.append(line) }
        }
        return out
    }

    static func height(colours: LayerColours, hasInput: Bool, needs: LegendNeeds, width: Double, fontSize fs: Double) -> Double {
        Double(lines(items(colours: colours, hasInput: hasInput, needs: needs), width: width, fontSize: fs).count) * fs * 1.6 + fs * 0.8
    }

    static func draw(colours: LayerColours, hasInput: Bool, needs: LegendNeeds, top: Double, width: Double, fontSize fs: Double,
                     on canvas: inout DrawingCanvas) {
        canvas.line(fs, top + fs * 0.2, width - fs, top + fs * 0.2, colour: "#DDDDDD", width: 1, opacity: 1)
        var y = top + fs * 1.5
        let groups = items(colours: colours, hasInput: hasInput, needs: needs)
        for item in groups.joined() where itemWidth(item, fontSize: fs) > width - 2 * fs {
            canvas.problems.append("the legend's \"\(item.text)\" is cut (wider than the figure)")
        }
        for line in lines(groups, width: width, fontSize: fs) {
            let total = line.reduce(0) { $0 + itemWidth($1, fontSize: fs) }
            var x = max(fs, (width - total) / 2)
            for item in line {
                let mid = y - fs * 0.35
                switch item.swatch {
                case .none: break
                case .layer(let colour): canvas.rect(x, mid - fs * 0.45, fs * 1.1, fs * 0.9, fill: colour)
                case .line(let colour): canvas.line(x, mid, x + fs * 1.1, mid, colour: colour, width: 2, opacity: 0.8)
                case .role(let role): NodeStyle.drawSwatch(role, x: x + fs * 0.55, y: mid, size: fs * 0.9, on: &canvas)
                }
                if case .none = item.swatch {} else { x += fs * 1.6 }
                let bold = item.text == "Layers:"
                canvas.text(x, y, item.text, size: fs, anchor: "start", weight: bold ? "600" : "400", colour: "#333333")
                x += DrawingCanvas.textWidth(item.text, size: fs) + fs * 1.2
            }
            y += fs * 1.6
        }
    }
}

/// Node styles: layer colour filled; sources ringed green, sinks ringed red, isolated hollow,
/// padding dashed grey.
enum NodeStyle {
    static let sourceColour = "#2CA02C", sinkColour = "#D62728", paddingColour = "#9A9A9A"

    /// A node of `role` as a square (grid cell) or circle, `size` across.
    static func draw(_ role: NodeRole, colour: String, x: Double, y: Double, size: Double, square: Bool, faded: Bool,
                     on canvas: inout DrawingCanvas, fillOpacity: Double = 1, element: ElementRole = .node) {
        let fill: String, stroke: String?, strokeWidth: Double, dashed: Bool
        let ring = max(1.5, min(3, size * 0.16))
        switch role {
        case .normal: fill = colour; stroke = nil; strokeWidth = 0; dashed = false
        case .source: fill = colour; stroke = sourceColour; strokeWidth = ring; dashed = false
        case .sink: fill = colour; stroke = sinkColour; strokeWidth = ring; dashed = false
        case .isolated: fill = "white"; stroke = colour; strokeWidth = 1.2; dashed = false
        case .padding: fill = "white"; stroke = paddingColour; strokeWidth = 1; dashed = true
        }
        let opacity = faded ? 0.25 : fillOpacity
        let inner = size - (stroke == nil ? 0 : strokeWidth)
        if square {
            canvas.rect(x - inner / 2, y - inner / 2, inner, inner, fill: fill, fillOpacity: opacity, stroke: stroke.map { faded ? "#CCCCCC" : $0 },
                        strokeWidth: strokeWidth, dashed: dashed, role: element)
        } else {
            canvas.circle(x, y, inner / 2, fill: fill, fillOpacity: opacity, stroke: stroke.map { faded ? "#CCCCCC" : $0 },
                          strokeWidth: strokeWidth, dashed: dashed, role: element)
        }
    }

    static func drawSwatch(_ role: NodeRole, x: Double, y: Double, size: Double, on canvas: inout DrawingCanvas) {
        draw(role, colour: "#6A6A6A", x: x, y: y, size: size, square: true, faded: false, on: &canvas, element: .decoration)
    }
}
