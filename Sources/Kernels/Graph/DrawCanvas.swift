import Foundation

/// What an SVG element stands for, as its `class`: a node (`n`), a bin of nodes (`b`), an
/// edge or bundle (`e`, plus `s` for a shortcut's arc and `h` when highlighted), or nothing of
/// the graph (no class). Lets tests and stylesheets tell them apart.
enum ElementRole {
    case node, bin, decoration
    case edge(shortcut: Bool, highlighted: Bool)
    static let edge = ElementRole.edge(shortcut: false, highlighted: false)

    var attribute: String {
        switch self {
        case .node: return " class=\"n\""
        case .bin: return " class=\"b\""
        case .edge(let shortcut, let highlighted): return " class=\"e\(shortcut ? " s" : "")\(highlighted ? " h" : "")\""
        case .decoration: return ""
        }
    }
}

/// SVG text output for the graph drawings: shapes, text with an estimated width (so labels can
/// be placed without overlapping), and the document wrapper. Coordinates are SVG user units,
/// which are pixels when the figure is shown at its own width.
struct DrawingCanvas {
    let width: Double, height: Double
    var body: [String] = []
    /// What could not be laid out (a panel left without room for its graph, a cut title, labels
    /// on top of each other), one sentence each.
    var problems: [String] = []
    /// The box of every figure text drawn so far (titles, column labels, legend; not the node
    /// labels inside grid cells, which the layout sizes to their cells), from the same width
    /// estimate the layout uses: what `layoutProblems()` checks.
    var textBoxes: [TextBox] = []

    struct TextBox {
        var x0, x1, y0, y1: Double
        var text: String
        func overlaps(_ o: TextBox) -> Bool {
            x0 < o.x1 - 0.5 && o.x0 < x1 - 0.5 && y0 < o.y1 - 0.5 && o.y0 < y1 - 0.5
        }
    }

    /// Width of `text` at `size` px in DejaVu Sans (the figure's first font), from per-class
    /// advances (digits 0.64 em, `×` 0.84, narrow punctuation 0.32…), rounded up a little so
    /// estimated boxes do not touch.
    static func textWidth(_ text: String, size: Double) -> Double {
        var em = 0.0
        for ch in text.unicodeScalars {
            switch ch {
            case ".", ",", ":", ";", "i", "l", "j", "'", "|", "!": em += 0.32
            case " ", "(", ")", "[", "]", "f", "t", "r": em += 0.40
            case "×", "→", "∝", "Σ", "m", "w", "M", "W": em += 0.86
            case "A" ... "Z": em += 0.72
            default: em += 0.62
            }
        }
        return em * size * 1.04
    }

    static func number(_ v: Double) -> String {
        let r = (v * 10).rounded() / 10
        return r == r.rounded() ? String(Int(r)) : String(r)
    }

    static func escape(_ s: String) -> String {
        s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
    }

    private static func style(stroke: String?, strokeWidth: Double, opacity: Double, dashed: Bool = false) -> String {
        guard let stroke else { return "" }
        var s = " stroke=\"\(stroke)\" stroke-width=\"\(String(format: "%.2f", strokeWidth))\""
        if opacity < 1 { s += " stroke-opacity=\"\(String(format: "%.3f", opacity))\"" }
        if dashed { s += " stroke-dasharray=\"3 2\"" }
        return s
    }

    mutating func line(_ x1: Double, _ y1: Double, _ x2: Double, _ y2: Double, colour: String, width: Double, opacity: Double,
                       role: ElementRole = .decoration) {
        let n = DrawingCanvas.number
        body.append("<line\(role.attribute) x1=\"\(n(x1))\" y1=\"\(n(y1))\" x2=\"\(n(x2))\" y2=\"\(n(y2))\"\(DrawingCanvas.style(stroke: colour, strokeWidth: width, opacity: opacity))/>")
    }

    mutating func curve(_ x1: Double, _ y1: Double, _ cx: Double, _ cy: Double, _ x2: Double, _ y2: Double,
                        colour: String, width: Double, opacity: Double, role: ElementRole = .decoration) {
        let n = DrawingCanvas.number
        body.append("<path\(role.attribute) d=\"M\(n(x1)) \(n(y1))Q\(n(cx)) \(n(cy)) \(n(x2)) \(n(y2))\" fill=\"none\"\(DrawingCanvas.style(stroke: colour, strokeWidth: width, opacity: opacity))/>")
    }

    mutating func circle(_ x: Double, _ y: Double, _ r: Double, fill: String, fillOpacity: Double = 1,
                         stroke: String? = nil, strokeWidth: Double = 1, dashed: Bool = false, role: ElementRole = .decoration) {
        let n = DrawingCanvas.number
        let opacity = fillOpacity < 1 ? " fill-opacity=\"\(String(format: "%.3f", fillOpacity))\"" : ""
        body.append("<circle\(role.attribute) cx=\"\(n(x))\" cy=\"\(n(y))\" r=\"\(String(format: "%.2f", r))\" fill=\"\(fill)\"\(opacity)\(DrawingCanvas.style(stroke: stroke, strokeWidth: strokeWidth, opacity: 1, dashed: dashed))/>")
    }

    mutating func rect(_ x: Double, _ y: Double, _ w: Double, _ h: Double, fill: String, fillOpacity: Double = 1,
                       stroke: String? = nil, strokeWidth: Double = 1, dashed: Bool = false, role: ElementRole = .decoration) {
        let n = DrawingCanvas.number
        let opacity = fillOpacity < 1 ? " fill-opacity=\"\(String(format: "%.3f", fillOpacity))\"" : ""
        body.append("<rect\(role.attribute) x=\"\(n(x))\" y=\"\(n(y))\" width=\"\(String(format: "%.2f", w))\" height=\"\(String(format: "%.2f", h))\" fill=\"\(fill)\"\(opacity)\(DrawingCanvas.style(stroke: stroke, strokeWidth: strokeWidth, opacity: 1, dashed: dashed))/>")
    }

    /// `rotate`: degrees about the text's anchor point (vertical axis titles, slanted tick labels).
    /// `inCell`: a node label inside its grid cell (sized to the cell; not a figure label).
    mutating func text(_ x: Double, _ y: Double, _ s: String, size: Double, anchor: String = "middle", weight: String = "400",
                       colour: String = "#222222", rotate: Double? = nil, inCell: Bool = false) {
        let n = DrawingCanvas.number
        if rotate == nil && !inCell {
            let w = DrawingCanvas.textWidth(s, size: size)
            let x0 = anchor == "middle" ? x - w / 2 : anchor == "end" ? x - w : x
            // Ascent 0.8 em above the baseline, descent 0.2 em below.
            textBoxes.append(TextBox(x0: x0, x1: x0 + w, y0: y - size * 0.8, y1: y + size * 0.2, text: s))
        }
        let transform = rotate.map { " transform=\"rotate(\(n($0)) \(n(x)) \(n(y)))\"" } ?? ""
        body.append("<text x=\"\(n(x))\" y=\"\(n(y))\" font-size=\"\(n(size))\" text-anchor=\"\(anchor)\" font-weight=\"\(weight)\" fill=\"\(colour)\"\(transform)>\(DrawingCanvas.escape(s))</text>")
    }

    /// Texts that overlap another or leave the canvas, one sentence each (at most a few, the
    /// first ones in drawing order: enough to say what is wrong).
    /// - Complexity: O(t log t + overlapping pairs) for t texts (a sweep over x).
    func layoutProblems() -> [String] {
        var out: [String] = []
        for b in textBoxes where b.x0 < -0.5 || b.x1 > width + 0.5 || b.y0 < -0.5 || b.y1 > height + 0.5 {
            out.append("\"\(b.text)\" does not fit on the \(Int(width))×\(Int(height)) px canvas")
            if out.count >= 3 { return out }
        }
        let order = textBoxes.indices.sorted { textBoxes[$0].x0 < textBoxes[$1].x0 }
        var open: [Int] = []
        var pairs: [(Int, Int)] = []
        for i in order {
            let b = textBoxes[i]
            open.removeAll { textBoxes[$0].x1 - 0.5 <= b.x0 }
            for j in open where textBoxes[j].overlaps(b) { pairs.append((min(i, j), max(i, j))) }
            open.append(i)
        }
        for (i, j) in pairs.sorted(by: { ($0.0, $0.1) < ($1.0, $1.1) }).prefix(3) {
            out.append("labels \"\(textBoxes[i].text)\" and \"\(textBoxes[j].text)\" overlap")
        }
        if pairs.count > 3 { out.append("\(pairs.count - 3) more pairs of labels overlap") }
        return out
    }

    func document() -> String {
        let n = DrawingCanvas.number
        return "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(n(width))\" height=\"\(n(height))\" viewBox=\"0 0 \(n(width)) \(n(height))\" font-family=\"DejaVu Sans, Helvetica, Arial, sans-serif\">\n"
            + "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n" + body.joined(separator: "\n") + "\n</svg>\n"
    }
}

/// Places centred labels on one line without overlaps: each label goes on the first of up to
/// `maxLevels` staggered rows where it does not touch its neighbours; a label that fits on no row
/// is left out (the figure's legend names every layer). Labels are shifted inwards so that none
/// leaves `[minX, maxX]`.
/// - Returns: per label its centre x and row (nil when left out), and the number of rows used.
/// - Complexity: O(labels · maxLevels).
func placeLabels(_ items: [(x: Double, text: String)], size: Double, minX: Double, maxX: Double,
                 maxLevels: Int = 3) -> (placed: [(x: Double, level: Int)?], levels: Int) {
    var rightEdge = [Double](repeating: -.infinity, count: maxLevels)
    var placed: [(x: Double, level: Int)?] = []
    var used = 0
    let gap = size * 0.6
    for item in items {
        let w = DrawingCanvas.textWidth(item.text, size: size)
        let x = min(max(item.x, minX + w / 2), maxX - w / 2)
        if let level = (0 ..< maxLevels).first(where: { rightEdge[$0] + gap <= x - w / 2 }), w <= maxX - minX {
            rightEdge[level] = x + w / 2
            placed.append((x, level))
            used = max(used, level + 1)
        } else {
            placed.append(nil)
        }
    }
    return (placed, used)
}
