import Foundation

/// Settings of a graph drawing. Sizes are SVG user units (pixels at 100%).
public struct DrawingOptions: Sendable {
    public var width: Double = 1400
    public var height: Double = 760
    /// A column with more nodes than this is drawn as `bins` stacked bins instead of nodes.
    public var maxNodesPerColumn = 160
    public var bins = 40
    /// At most this many lines; beyond it, the lightest slot pairs are left out (and the
    /// caption says so), which keeps an SVG of any graph to a few MB.
    public var maxLines = 24_000
    public init() {}
}

/// One panel of a side-by-side figure.
public enum DrawingPanel {
    /// A multipartite graph, partitions as columns (the unrolled encoding).
    case multipartite(Graph, title: String)
    /// Per-layer bipartite graphs (rolled encodings), each a pair of columns, side by side.
    case layers([Graph], title: String)
}

/// SVG drawings of encodings in the style of the paper's figures: partitions as columns of
/// nodes left to right, edges as thin translucent lines, shortcut edges (skipping a column)
/// as orange arcs. Large partitions are binned and edges aggregated per pair of bins
/// (line weight ∝ log of the number of edges), so any graph gives a file of a few MB.
public enum GraphDrawing {
    static let palette = ["#4C72B0", "#55A868", "#8172B2", "#C44E52", "#64B5CD", "#8C8C8C", "#937860", "#DA8BC3", "#CCB974", "#2F4B7C"]
    static let shortcutColour = "#E8871E"

    /// A figure of several panels side by side (e.g. the unrolled, rolled and rolled-channel
    /// encodings of one network).
    /// - Complexity: O(n + m) to aggregate, output O(nodes drawn + `maxLines`).
    public static func svg(panels: [DrawingPanel], title: String? = nil, options: DrawingOptions = DrawingOptions()) -> String {
        var canvas = Canvas(width: options.width, height: options.height)
        let titleHeight = title == nil ? 0.0 : 34.0
        if let title { canvas.text(options.width / 2, 24, title, size: 19, anchor: "middle", weight: "600") }
        // Panels get widths in proportion to their column count, so columns are evenly spaced.
        let columnCounts = panels.map { panel -> Double in
            switch panel {
            // An unrolled graph needs room for its edges: twice the width per column.
            case .multipartite(let g, _): return 2.2 * Double(max(3, g.partitions.count))
            case .layers(let gs, _): return 1.5 * Double(max(1, gs.count))
            }
        }
        let total = columnCounts.reduce(0, +)
        var x = 0.0
        let lineBudget = options.maxLines / max(1, panels.count)
        for (panel, share) in zip(panels, columnCounts) {
            let w = options.width * share / total
            let frame = Frame(x: x + 12, y: titleHeight, width: w - 24, height: options.height - titleHeight)
            switch panel {
            case .multipartite(let g, let title):
                canvas.text(frame.x + frame.width / 2, frame.y + 20, title, size: 15, anchor: "middle", weight: "600")
                drawMultipartite(g, in: frame.inset(top: 30), colourOffset: 0, lineBudget: lineBudget, options: options, canvas: &canvas)
            case .layers(let graphs, let title):
                canvas.text(frame.x + frame.width / 2, frame.y + 20, title, size: 15, anchor: "middle", weight: "600")
                let inner = frame.inset(top: 30)
                let each = inner.width / Double(max(1, graphs.count))
                for (i, g) in graphs.enumerated() {
                    let sub = Frame(x: inner.x + Double(i) * each, y: inner.y, width: each, height: inner.height)
                    drawMultipartite(g, in: sub, colourOffset: i, lineBudget: lineBudget / max(1, graphs.count),
                                     options: options, canvas: &canvas, compactLabels: true)
                }
            }
            if x > 0 { canvas.line(x, frame.y + 6, x, options.height - 6, colour: "#DDDDDD", width: 1, opacity: 1) }
            x += w
        }
        return canvas.document()
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

    // MARK: Layout

    struct Frame {
        var x, y, width, height: Double
        func inset(top: Double) -> Frame { Frame(x: x, y: y + top, width: width, height: height - top) }
    }

    /// Where a partition's nodes go: either one slot per node, or `bins` slots.
    struct Column {
        var x: Double
        var slots: Int
        var binned: Bool
        var partition: Partition
        /// Vertical centre of each slot.
        var centres: [Double]
        var slotSize: Double

        func slot(of node: Int) -> Int {
            let local = node - partition.start
            return binned ? min(slots - 1, local * slots / max(1, partition.count)) : local
        }
    }

    /// Lays out columns; channel groups of a `[C, H, W]` partition get small gaps between them.
    static func column(_ p: Partition, x: Double, top: Double, height: Double, options: DrawingOptions) -> Column {
        let binned = p.count > options.maxNodesPerColumn
        let slots = binned ? options.bins : max(1, p.count)
        let groups = (!binned && p.shape.count == 3 && p.shape[0] > 1) ? p.shape[0] : 1
        let perGroup = max(1, slots / groups)
        let gap = groups > 1 ? max(1.0, Double(perGroup) * 0.35) : 0
        let units = Double(slots) + Double(groups - 1) * gap
        // Few nodes are not stretched over the whole height: they stay centred and close.
        let unit = min(height / max(units, 1), 26)
        let used = unit * units
        let start = top + (height - used) / 2
        let centres = (0 ..< slots).map { i -> Double in
            let group = min(groups - 1, i / perGroup)
            return start + (Double(i) + Double(group) * gap + 0.5) * unit
        }
        return Column(x: x, slots: slots, binned: binned, partition: p, centres: centres, slotSize: unit)
    }

    static func drawMultipartite(_ g: Graph, in frame: Frame, colourOffset: Int, lineBudget: Int, options: DrawingOptions,
                                 canvas: inout Canvas, compactLabels: Bool = false) {
        let parts = g.partitions
        guard !parts.isEmpty else { return }
        let labelSpace = compactLabels ? 44.0 : 58.0
        let top = frame.y + labelSpace, bottom = frame.y + frame.height - 40
        let step = frame.width / Double(parts.count)
        let columns = parts.enumerated().map { i, p in
            column(p, x: frame.x + step * (Double(i) + 0.5), top: top, height: bottom - top, options: options)
        }
        // Count edges per (source slot, target slot), one dense table per pair of partitions.
        var tables: [Int: [Int]] = [:]  // key: source partition << 32 | target partition
        for (pi, p) in parts.enumerated() {
            for u in p.range {
                let su = columns[pi].slot(of: u)
                var e = g.outOffsets[u]
                let end = g.outOffsets[u + 1]
                while e < end {
                    // Targets are sorted: handle a run within one target partition at once.
                    let tp = g.partitionIndex(of: Int(g.outTargets[e]))
                    let limit = columns[tp].partition.start + columns[tp].partition.count
                    let key = pi << 32 | tp
                    let width = columns[tp].slots
                    var table = tables.removeValue(forKey: key) ?? [Int](repeating: 0, count: columns[pi].slots * width)
                    while e < end && Int(g.outTargets[e]) < limit {
                        table[su * width + columns[tp].slot(of: Int(g.outTargets[e]))] += 1
                        e += 1
                    }
                    tables[key] = table
                }
            }
        }
        var lines: [(source: Int, target: Int, sourceSlot: Int, targetSlot: Int, count: Int)] = []
        for (key, table) in tables {
            let sp = key >> 32, tp = key & 0xFFFF_FFFF, width = columns[tp].slots
            for (i, count) in table.enumerated() where count > 0 {
                lines.append((sp, tp, i / width, i % width, count))
            }
        }
        let totalPairs = lines.count
        if lines.count > lineBudget {
            lines.sort { $0.count > $1.count }
            lines.removeLast(lines.count - lineBudget)
        }
        let maxCount = Double(lines.map(\.count).max() ?? 1)
        let aggregated = maxCount > 1
        // Thin, translucent lines; denser graphs get fainter ones so structure shows through.
        let baseOpacity = min(0.55, max(0.06, 18.0 / Double(max(1, lines.count)).squareRoot()))
        // Shortcuts first, underneath the layer-to-layer edges.
        lines.sort { ($0.target - $0.source == 1 ? 1 : 0, $0.source, $0.target) < ($1.target - $1.source == 1 ? 1 : 0, $1.source, $1.target) }
        for l in lines {
            let a = columns[l.source], b = columns[l.target]
            let x1 = a.x + 3, y1 = a.centres[l.sourceSlot], x2 = b.x - 3, y2 = b.centres[l.targetSlot]
            let strength = aggregated ? log(1 + Double(l.count)) / log(1 + maxCount) : 1
            let width = aggregated ? 0.3 + 1.7 * strength : 0.7
            let opacity = aggregated ? min(0.8, baseOpacity * (0.3 + 1.4 * strength)) : baseOpacity
            if l.target == l.source {
                // Edges inside one partition (only the reference's quirk makes them): loops
                // to the right of the column, in red so the anomaly stands out.
                let bulge = step * (0.18 + 0.5 * abs(y2 - y1) / max(1, bottom - top))
                canvas.curve(a.x + 3, y1, a.x + bulge, (y1 + y2) / 2, a.x + 3, y2, colour: "#D62728", width: width, opacity: min(0.9, opacity * 1.8))
            } else if l.target > l.source + 1 {
                // Shortcut: an arc bowing upwards over the skipped columns.
                let lift = 0.12 * (x2 - x1)
                canvas.curve(x1, y1, (x1 + x2) / 2, min(y1, y2) - lift, x2, y2, colour: shortcutColour, width: width,
                             opacity: aggregated ? opacity * 0.6 : min(0.9, opacity * 1.4))
            } else {
                canvas.line(x1, y1, x2, y2, colour: palette[(l.target - 1 + colourOffset + palette.count) % palette.count], width: width, opacity: opacity)
            }
        }
        // Labels are all rotated as soon as one would not fit its column.
        let rotateLabels = parts.contains { Double($0.name.count) * 7 > step }
        for (i, c) in columns.enumerated() {
            // A layer panel shows both its columns in the layer's colour.
            let colour = compactLabels ? palette[colourOffset % palette.count] : palette[(i - 1 + colourOffset + palette.count) % palette.count]
            let fill = i == 0 && !compactLabels ? "#555555" : colour
            if c.binned {
                let h = max(1.0, c.slotSize * 0.8)
                for y in c.centres { canvas.rect(c.x - 4, y - h / 2, 8, h, fill: fill, opacity: 0.85) }
            } else {
                // Nodes without any edge (pruned away) are drawn hollow.
                let r = max(0.8, min(5, c.slotSize * 0.36))
                for (k, y) in c.centres.enumerated() {
                    let v = c.partition.start + k
                    if g.outDegree(v) == 0 && g.inDegree(v) == 0 {
                        canvas.circle(c.x, y, r, fill: "white", stroke: fill)
                    } else {
                        canvas.circle(c.x, y, r, fill: fill)
                    }
                }
            }
            let name = c.partition.name
            if compactLabels {
                // One label per layer panel, over its pair of columns.
                if i == parts.count - 1 {
                    let crowded = Double(name.count) * 6 > frame.width
                    canvas.text(frame.x + frame.width / 2, frame.y + 14 + (crowded ? Double(colourOffset % 2) * 13 : 0), name,
                                size: 10, anchor: "middle")
                }
            } else if rotateLabels {
                canvas.text(c.x, frame.y + labelSpace - 8, name, size: 10, anchor: "start", rotate: -35)
            } else {
                canvas.text(c.x, frame.y + labelSpace - 14, name, size: 12, anchor: "middle")
            }
            let shape = c.partition.shape.map(String.init).joined(separator: "×")
            // Staggered in two rows when neighbouring labels would touch.
            let stagger = Double(shape.count) * 5.6 > step ? Double(i % 2) * 11 : 0
            canvas.text(c.x, bottom + 14 + stagger, shape, size: 9, anchor: "middle", colour: "#666666")
        }
        var caption = "\(g.nodeCount) nodes, \(g.edgeCount) edges"
        if lines.contains(where: { $0.target > $0.source + 1 }) { caption += "; orange arcs: shortcut edges" }
        if lines.contains(where: { $0.target == $0.source }) { caption += "; red loops: edges inside a partition" }
        if columns.contains(where: { !$0.binned }) && (0 ..< g.nodeCount).contains(where: { g.outDegree($0) == 0 && g.inDegree($0) == 0 }) {
            caption += "; hollow: nodes without edges"
        }
        if aggregated { caption += "; columns in \(options.bins) bins, line weight ~ log(edges between bins)" }
        if totalPairs > lines.count { caption += "; \(lines.count) of \(totalPairs) heaviest shown" }
        if !compactLabels { canvas.text(frame.x + frame.width / 2, frame.y + frame.height - 2, caption, size: 10, anchor: "middle", colour: "#666666") }
    }

    // MARK: SVG text

    struct Canvas {
        let width: Double, height: Double
        var body: [String] = []

        static func number(_ v: Double) -> String {
            let r = (v * 10).rounded() / 10
            return r == r.rounded() ? String(Int(r)) : String(r)
        }

        static func escape(_ s: String) -> String {
            s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
                .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
        }

        mutating func line(_ x1: Double, _ y1: Double, _ x2: Double, _ y2: Double, colour: String, width: Double, opacity: Double) {
            let n = Canvas.number
            body.append("<line x1=\"\(n(x1))\" y1=\"\(n(y1))\" x2=\"\(n(x2))\" y2=\"\(n(y2))\" stroke=\"\(colour)\" stroke-width=\"\(String(format: "%.2f", width))\" stroke-opacity=\"\(String(format: "%.3f", opacity))\"/>")
        }

        mutating func curve(_ x1: Double, _ y1: Double, _ cx: Double, _ cy: Double, _ x2: Double, _ y2: Double, colour: String, width: Double, opacity: Double) {
            let n = Canvas.number
            body.append("<path d=\"M\(n(x1)) \(n(y1))Q\(n(cx)) \(n(cy)) \(n(x2)) \(n(y2))\" fill=\"none\" stroke=\"\(colour)\" stroke-width=\"\(String(format: "%.2f", width))\" stroke-opacity=\"\(String(format: "%.3f", opacity))\"/>")
        }

        mutating func circle(_ x: Double, _ y: Double, _ r: Double, fill: String, stroke: String? = nil) {
            let n = Canvas.number
            let outline = stroke.map { " stroke=\"\($0)\" stroke-width=\"1\"" } ?? ""
            body.append("<circle cx=\"\(n(x))\" cy=\"\(n(y))\" r=\"\(String(format: "%.2f", r))\" fill=\"\(fill)\"\(outline)/>")
        }

        mutating func rect(_ x: Double, _ y: Double, _ w: Double, _ h: Double, fill: String, opacity: Double) {
            let n = Canvas.number
            body.append("<rect x=\"\(n(x))\" y=\"\(n(y))\" width=\"\(n(w))\" height=\"\(String(format: "%.2f", h))\" fill=\"\(fill)\" fill-opacity=\"\(opacity)\"/>")
        }

        mutating func text(_ x: Double, _ y: Double, _ s: String, size: Double, anchor: String, weight: String = "400",
                           colour: String = "#222222", rotate: Double? = nil) {
            let n = Canvas.number
            let transform = rotate.map { " transform=\"rotate(\(n($0)) \(n(x)) \(n(y)))\"" } ?? ""
            body.append("<text x=\"\(n(x))\" y=\"\(n(y))\" font-size=\"\(n(size))\" text-anchor=\"\(anchor)\" font-weight=\"\(weight)\" fill=\"\(colour)\"\(transform)>\(Canvas.escape(s))</text>")
        }

        func document() -> String {
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(Canvas.number(width))\" height=\"\(Canvas.number(height))\" viewBox=\"0 0 \(Canvas.number(width)) \(Canvas.number(height))\" font-family=\"DejaVu Sans, Helvetica, Arial, sans-serif\">\n"
                + "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n" + body.joined(separator: "\n") + "\n</svg>\n"
        }
    }
}
