import Foundation

/// Where one partition's nodes go in a panel.
struct ColumnLayout {
    enum Mode {
        /// `C` little `H×W` pixel grids stacked top to bottom, one square cell per node.
        case grid(cell: Double, top: Double)
        /// One dot per node, `spacing` apart.
        case dots(top: Double, spacing: Double)
        /// `count` bins of consecutive nodes (whole channels of a `C×H×W` partition when it has
        /// more channels than one per bin), `spacing` apart.
        case bins(top: Double, spacing: Double, count: Int)
    }
    let graph: Int
    let partitionIndex: Int
    let partition: Partition
    let x: Double
    let colour: String
    var mode: Mode

    var nodeLevel: Bool { if case .bins = mode { return false }; return true }
    var isGrid: Bool { if case .grid = mode { return true }; return false }
    var cellSize: Double { if case .grid(let s, _) = mode { return s }; return 0 }
    var slotCount: Int { if case .bins(_, _, let n) = mode { return n }; return partition.count }

    /// Channel-major grid geometry of a `[C, H, W]` partition (a vector counts as `[n, 1, 1]`).
    var grid: (c: Int, h: Int, w: Int) {
        let s = partition.shape
        return s.count == 3 ? (s[0], s[1], s[2]) : (partition.count, 1, 1)
    }

    func slot(ofLocal k: Int) -> Int {
        guard case .bins(_, _, let n) = mode else { return k }
        let g = grid
        if partition.shape.count == 3 && g.c >= n {
            return min(n - 1, (k / (g.h * g.w)) * n / g.c)       // whole channels per bin
        }
        return min(n - 1, k * n / max(1, partition.count))
    }

    func position(ofSlot k: Int) -> (x: Double, y: Double) {
        switch mode {
        case .grid(let s, let top):
            let g = grid
            let c = k / (g.h * g.w), rest = k % (g.h * g.w)
            let r = rest / g.w, col = rest % g.w
            return (x - Double(g.w) * s / 2 + (Double(col) + 0.5) * s, top + Double(c) * (Double(g.h) + ColumnLayout.gridGap) * s + (Double(r) + 0.5) * s)
        case .dots(let top, let spacing), .bins(let top, let spacing, _):
            return (x, top + (Double(k) + 0.5) * spacing)
        }
    }

    /// Gap between the channel grids of a column, in cells.
    static let gridGap = 0.7

    /// Half the drawn width, so edges start and end at a column's side.
    var halfWidth: Double {
        switch mode {
        case .grid(let s, _): return Double(grid.w) * s / 2
        case .dots(_, let spacing): return min(7, spacing * 0.4)
        case .bins: return 5
        }
    }
}

/// Edge counts and weight sums per (source slot, target slot) of one pair of columns: dense
/// arrays while the pair has at most 4M slot pairs (bins), a dictionary beyond (large node-level
/// columns, whose edges are few next to their slot pairs).
struct SlotPairTable {
    static let denseLimit = 1 << 22
    private var counts: [Int32] = [], sums: [Float] = [], marks: [Bool] = []
    private var sparse: [Int: (count: Int, sum: Float, highlighted: Bool)]?

    init(slots: Int) {
        if slots <= SlotPairTable.denseLimit {
            counts = [Int32](repeating: 0, count: slots); sums = [Float](repeating: 0, count: slots)
        } else {
            sparse = [:]
        }
    }

    mutating func add(_ slot: Int, weight: Float, highlighted: Bool) {
        if sparse != nil {
            let old = sparse![slot] ?? (0, 0, false)
            sparse![slot] = (old.count + 1, old.sum + weight, old.highlighted || highlighted)
            return
        }
        counts[slot] += 1
        sums[slot] += weight
        if highlighted {
            if marks.isEmpty { marks = [Bool](repeating: false, count: counts.count) }
            marks[slot] = true
        }
    }

    /// Calls `body(slot, count, Σ|w|, highlighted)` for every slot pair with an edge.
    func forEach(_ body: (Int, Int, Float, Bool) -> Void) {
        if let sparse {
            for (slot, v) in sparse.sorted(by: { $0.key < $1.key }) { body(slot, v.count, v.sum, v.highlighted) }
            return
        }
        for (i, n) in counts.enumerated() where n > 0 { body(i, Int(n), sums[i], !marks.isEmpty && marks[i]) }
    }
}

/// Draws one panel: header, columns, edges (per edge or bundled), labels that never overlap.
struct PanelRenderer {
    let panel: DrawingPanel
    let frame: DrawingFrame
    let fs: Double
    let colours: LayerColours
    let lineBudget: Int
    var needs = LegendNeeds()

    init(panel: DrawingPanel, frame: DrawingFrame, fontSize: Double, colours: LayerColours, lineBudget: Int) {
        self.panel = panel; self.frame = frame; self.fs = fontSize; self.colours = colours; self.lineBudget = lineBudget
    }

    var graphs: [Graph] {
        switch panel.content {
        case .multipartite(let g): return [g]
        case .layers(let gs): return gs
        }
    }

    var isMultipartite: Bool { if case .multipartite = panel.content { return true }; return false }

    /// The colour of a partition: its layer's (a rolled layer's two sides share it), grey for the input.
    func colour(graph gi: Int, partition pi: Int) -> String {
        let g = graphs[gi]
        if isMultipartite { return pi == 0 && panel.startsAtInput ? LayerColours.inputColour : colours.colour(g.partitions[pi].name) }
        return colours.colour(g.partitions.last?.name ?? "")
    }

    /// Column centres: evenly spaced partitions, or per layer a left and a right column.
    func columnCentres() -> [(graph: Int, partition: Int, x: Double)] {
        switch panel.content {
        case .multipartite(let g):
            let step = frame.width / Double(max(1, g.partitions.count))
            return g.partitions.indices.map { (0, $0, frame.x + step * (Double($0) + 0.5)) }
        case .layers(let gs):
            let slot = frame.width / Double(max(1, gs.count))
            return gs.indices.flatMap { i -> [(graph: Int, partition: Int, x: Double)] in
                let x0 = frame.x + slot * Double(i)
                return gs[i].partitions.indices.map { p in (i, p, x0 + slot * (p == 0 ? 0.3 : 0.7)) }
            }
        }
    }

    /// Room a column may take sideways.
    var columnWidth: Double {
        switch panel.content {
        case .multipartite(let g): return frame.width / Double(max(1, g.partitions.count)) * 0.6
        case .layers(let gs): return frame.width / Double(max(1, gs.count)) * 0.3
        }
    }

    mutating func draw(on canvas: inout DrawingCanvas) -> LegendNeeds {
        // Header: title and what a node and an edge are, each wrapped onto at most two lines.
        var baseline = frame.y
        let name = panel.title.isEmpty ? "a panel" : "panel \"\(panel.title)\""
        for line in PanelRenderer.wrap(panel.title, width: frame.width, size: fs * 1.15, what: "the title of \(name)", on: &canvas) {
            baseline += fs * 1.5
            canvas.text(frame.x + frame.width / 2, baseline, line, size: fs * 1.15, weight: "600")
        }
        var headerBottom = baseline + fs * 0.6
        if !panel.subtitle.isEmpty {
            baseline += fs * 0.4
            for line in PanelRenderer.wrap(panel.subtitle, width: frame.width, size: fs, what: "the subtitle of \(name)", on: &canvas) {
                baseline += fs * 1.3
                canvas.text(frame.x + frame.width / 2, baseline, line, size: fs, colour: "#555555")
            }
            headerBottom = baseline + fs * 0.5
        }
        // Labels over and under the columns.
        let centres = columnCentres()
        var top: [(x: Double, text: String)] = [], bottom: [(x: Double, text: String)] = []
        switch panel.content {
        case .multipartite(let g):
            for c in centres {
                let p = g.partitions[c.partition]
                top.append((c.x, p.name))
                bottom.append((c.x, p.shape.map(String.init).joined(separator: "×")))
            }
        case .layers(let gs):
            for (i, g) in gs.enumerated() {
                let xs = centres.filter { $0.graph == i }.map(\.x)
                let mid = ((xs.first ?? 0) + (xs.last ?? 0)) / 2
                top.append((mid, g.partitions.last?.name ?? ""))
                let sides = g.partitions.map { $0.shape.map(String.init).joined(separator: "×") }
                bottom.append((mid, sides.joined(separator: " → ")))
            }
        }
        let topPlaced = placeLabels(top, size: fs, minX: frame.x, maxX: frame.right)
        let bottomPlaced = placeLabels(bottom, size: fs, minX: frame.x, maxX: frame.right)
        let lineHeight = fs * 1.3
        let areaTop = headerBottom + Double(topPlaced.levels) * lineHeight + fs * 0.6
        let areaBottom = frame.bottom - Double(bottomPlaced.levels) * lineHeight - fs * 0.6
        for (item, place) in zip(top, topPlaced.placed) {
            guard let place else { continue }
            canvas.text(place.x, headerBottom + Double(place.level + 1) * lineHeight - fs * 0.2, item.text, size: fs)
        }
        for (item, place) in zip(bottom, bottomPlaced.placed) {
            guard let place else { continue }
            canvas.text(place.x, areaBottom + fs * 0.4 + Double(place.level + 1) * lineHeight - fs * 0.2, item.text, size: fs, colour: "#555555")
        }
        guard areaBottom - areaTop > fs * 2 else {
            canvas.problems.append("\(name) has no room for its graph: its title and \(topPlaced.levels + bottomPlaced.levels) rows of labels "
                + "take its whole \(Int(frame.height.rounded())) px height")
            return needs
        }
        let columns = layout(centres, top: areaTop, bottom: areaBottom)
        drawEdges(columns, areaTop: areaTop, on: &canvas)
        drawNodes(columns, on: &canvas)
        return needs
    }

    /// `text` broken at spaces into at most `maxLines` lines that each fit `width` at `size` (by
    /// the layout's width estimate). Text that still does not fit is cut with an ellipsis and
    /// the cut is recorded on `canvas` as a problem naming `what`, so a checked figure refuses
    /// instead of showing it.
    static func wrap(_ text: String, width: Double, size: Double, maxLines: Int = 2, what: String,
                     on canvas: inout DrawingCanvas) -> [String] {
        guard !text.isEmpty else { return [] }
        var lines: [String] = []
        var current = ""
        for word in text.split(separator: " ", omittingEmptySubsequences: false) {
            let candidate = current.isEmpty ? String(word) : current + " " + word
            if current.isEmpty || DrawingCanvas.textWidth(candidate, size: size) <= width {
                current = candidate
            } else {
                lines.append(current)
                current = String(word)
            }
        }
        lines.append(current)
        if lines.count > maxLines {
            lines = Array(lines.prefix(maxLines - 1)) + [lines.dropFirst(maxLines - 1).joined(separator: " ")]
        }
        if lines.contains(where: { DrawingCanvas.textWidth($0, size: size) > width }) {
            canvas.problems.append("\(what) is cut (it needs \(Int(DrawingCanvas.textWidth(text, size: size).rounded())) px at \(DrawingCanvas.number(size)) px, \(Int(width.rounded())) px a line)")
            lines = lines.map { fit($0, width: width, size: size) }
        }
        return lines
    }

    /// Cuts `text` with an ellipsis so that it fits `width` at `size` (by the layout's width estimate).
    static func fit(_ text: String, width: Double, size: Double) -> String {
        guard DrawingCanvas.textWidth(text, size: size) > width else { return text }
        var cut = String(text.dropLast())
        while !cut.isEmpty && DrawingCanvas.textWidth(cut + "…", size: size) > width { cut.removeLast() }
        return cut + "…"
    }

    // MARK: Layout

    /// Chooses grids when every partition's pixels fit as cells of at least 6 px, otherwise
    /// columns whose heights follow their partitions' sizes (dots, or bins when too many).
    func layout(_ centres: [(graph: Int, partition: Int, x: Double)], top: Double, bottom: Double) -> [ColumnLayout] {
        let height = bottom - top
        let gs = graphs
        let totalNodes = gs.reduce(0) { $0 + $1.nodeCount }
        var cell = Double.infinity
        for c in centres {
            let p = gs[c.graph].partitions[c.partition]
            if p.shape.count == 3 {
                let (ch, h, w) = (Double(p.shape[0]), Double(p.shape[1]), Double(p.shape[2]))
                cell = min(cell, columnWidth / w, height / (ch * h + (ch - 1) * ColumnLayout.gridGap))
            } else {
                cell = min(cell, height / Double(max(1, p.count)))
            }
        }
        cell = min(cell, fs * 5)
        let useGrid = cell >= 6 && totalNodes <= 6000
        let maxCount = Double(centres.map { gs[$0.graph].partitions[$0.partition].count }.max() ?? 1)
        let middle = (top + bottom) / 2
        return centres.map { c in
            let p = gs[c.graph].partitions[c.partition]
            let colour = colour(graph: c.graph, partition: c.partition)
            let mode: ColumnLayout.Mode
            if useGrid {
                if p.shape.count == 3 {
                    let rows = Double(p.shape[0] * p.shape[1]) + Double(p.shape[0] - 1) * ColumnLayout.gridGap
                    mode = .grid(cell: cell, top: middle - rows * cell / 2)
                } else {
                    mode = .dots(top: middle - Double(p.count) * cell / 2, spacing: cell)
                }
            } else {
                // The funnel: a column's height follows its partition's size.
                let h = min(height, max(height * Double(p.count) / maxCount, min(height, fs * 3)))
                let spacing = h / Double(max(1, p.count))
                if spacing >= 4 {
                    let s = min(spacing, fs * 2)
                    mode = .dots(top: middle - Double(p.count) * s / 2, spacing: s)
                } else {
                    let channels = p.shape.count == 3 ? p.shape[0] : p.count
                    let bins = max(1, min(channels, Int(h / 4)))
                    mode = .bins(top: middle - h / 2, spacing: h / Double(bins), count: bins)
                }
            }
            return ColumnLayout(graph: c.graph, partitionIndex: c.partition, partition: p, x: c.x, colour: colour, mode: mode)
        }
    }

    // MARK: Nodes

    /// A node's role in the drawing: padding ring, isolated, source, sink (SPEC §4's counts), else normal.
    func role(_ g: Graph, _ v: Int, partition pi: Int) -> NodeRole {
        let pad = panel.inputPadding
        if isMultipartite, pi == 0, pad > 0, g.partitions[0].shape.count == 3 {
            let s = g.partitions[0].shape
            let k = v - g.partitions[0].start
            let r = (k % (s[1] * s[2])) / s[2], c = k % s[2]
            if r < pad || r >= s[1] - pad || c < pad || c >= s[2] - pad { return .padding }
        }
        var (graph, node, partition) = (g, v, pi)
        if let whole = panel.wholeGraph { (graph, node, partition) = (whole.graph, v + whole.nodeOffset, pi + whole.partitionOffset) }
        let inDegree = graph.inDegree(node), outDegree = graph.outDegree(node)
        if inDegree == 0 && outDegree == 0 { return .isolated }
        guard isMultipartite else { return .normal }
        if inDegree == 0 && partition > 0 { return .source }
        if outDegree == 0 && partition < graph.partitions.count - 1 { return .sink }
        return .normal
    }

    mutating func drawNodes(_ columns: [ColumnLayout], on canvas: inout DrawingCanvas) {
        let gs = graphs
        let highlight = panel.highlight
        let fading = !highlight.isEmpty
        var onTop: [(ColumnLayout, Int)] = []
        for c in columns {
            let g = gs[c.graph]
            switch c.mode {
            case .grid(let s, _):
                let label = labelFormat(c)
                let showLabels = label.map { DrawingCanvas.textWidth($0(c.partition.count - 1), size: fs) + 4 <= s } ?? false
                for k in 0 ..< c.partition.count {
                    let v = c.partition.start + k
                    let role = role(g, v, partition: c.partitionIndex)
                    needs.roles.insert(role)
                    let p = c.position(ofSlot: k)
                    if fading && highlight.contains(v) { onTop.append((c, k)); continue }
                    NodeStyle.draw(role, colour: c.colour, x: p.x, y: p.y, size: s * 0.88, square: true, faded: fading, on: &canvas,
                                   fillOpacity: showLabels ? 0.45 : 1)
                    if showLabels, let label { canvas.text(p.x, p.y + fs * 0.35, label(k), size: fs, colour: fading ? "#AAAAAA" : "#111111", inCell: true) }
                }
            case .dots(_, let spacing):
                let size = max(2, min(14, spacing * 0.75))
                for k in 0 ..< c.partition.count {
                    let v = c.partition.start + k
                    let role = role(g, v, partition: c.partitionIndex)
                    needs.roles.insert(role)
                    if fading && highlight.contains(v) { onTop.append((c, k)); continue }
                    let p = c.position(ofSlot: k)
                    NodeStyle.draw(role, colour: c.colour, x: p.x, y: p.y, size: size, square: false, faded: fading, on: &canvas)
                }
            case .bins(_, let spacing, let count):
                var marked = [Bool](repeating: false, count: count)
                if fading { for v in c.partition.range where highlight.contains(v) { marked[c.slot(ofLocal: v - c.partition.start)] = true } }
                for b in 0 ..< count {
                    let p = c.position(ofSlot: b)
                    let h = max(1, spacing * 0.8)
                    canvas.rect(p.x - 5, p.y - h / 2, 10, h, fill: c.colour, fillOpacity: fading && !marked[b] ? 0.2 : 0.9,
                                stroke: marked[b] ? "#111111" : nil, strokeWidth: 1.5, role: .bin)
                }
                needs.roles.insert(.normal)
            }
        }
        // Highlighted nodes last, outlined, over everything else.
        for (c, k) in onTop {
            let v = c.partition.start + k
            let p = c.position(ofSlot: k)
            let role = role(graphs[c.graph], v, partition: c.partitionIndex)
            let size: Double
            switch c.mode {
            case .grid(let s, _): size = s * 0.88
            case .dots(_, let spacing): size = max(3, min(14, spacing * 0.75))
            case .bins: size = 6
            }
            NodeStyle.draw(role, colour: c.colour, x: p.x, y: p.y, size: size, square: c.isGrid,
                           faded: false, on: &canvas)
            // The outline goes around the node, so a source's or sink's ring stays visible.
            if case .grid = c.mode {
                canvas.rect(p.x - size / 2 - 2, p.y - size / 2 - 2, size + 4, size + 4, fill: "none", stroke: "#111111", strokeWidth: 2)
            } else {
                canvas.circle(p.x, p.y, size / 2 + 2.5, fill: "none", stroke: "#111111", strokeWidth: 2)
            }
        }
    }

    /// Node labels: `(c, y, x)` for a pixel of an unrolled partition, `(c, kh, kw)` for a kernel
    /// entry of a rolled layer's left side; nil for other columns.
    func labelFormat(_ c: ColumnLayout) -> ((Int) -> String)? {
        guard c.partition.shape.count == 3 else { return nil }
        let g = c.grid
        return { k in "(\(k / (g.h * g.w)),\((k % (g.h * g.w)) / g.w),\(k % g.w))" }
    }

    // MARK: Edges

    /// Aggregates edges per (source slot, target slot) of each pair of columns, then draws
    /// them: one line per edge (width ∝ |w|) between node-level columns, one bundle per pair
    /// of bins (opacity ∝ Σ|w|) otherwise. Weights are normalised per pair of columns (each
    /// layer's own scale). - Complexity: O(m) plus O(lines · log lines) for the budget.
    mutating func drawEdges(_ columns: [ColumnLayout], areaTop: Double, on canvas: inout DrawingCanvas) {
        let gs = graphs
        var columnOf: [[Int]] = gs.map { [Int](repeating: -1, count: $0.partitions.count) }
        for (i, c) in columns.enumerated() { columnOf[c.graph][c.partitionIndex] = i }
        struct Bundle { var source: Int, target: Int, sourceSlot: Int, targetSlot: Int, count: Int, weight: Double, highlighted: Bool }
        var bundles: [Bundle] = []
        let highlight = panel.highlight
        for (gi, g) in gs.enumerated() {
            // key: column pair → (count, Σ|w|, highlighted) per slot pair.
            var tables: [Int: SlotPairTable] = [:]
            for (pi, p) in g.partitions.enumerated() {
                let ci = columnOf[gi][pi]
                guard ci >= 0 else { continue }
                let a = columns[ci]
                for u in p.range {
                    let su = a.slot(ofLocal: u - p.start)
                    let uMarked = !highlight.isEmpty && highlight.contains(u)
                    var e = g.outOffsets[u]
                    let end = g.outOffsets[u + 1]
                    while e < end {
                        // Targets are sorted: one run per target partition.
                        let tp = g.partitionIndex(of: Int(g.outTargets[e]))
                        let cj = columnOf[gi][tp]
                        let b = columns[cj]
                        let limit = b.partition.start + b.partition.count
                        let key = ci << 32 | cj
                        let width = b.slotCount
                        var table = tables.removeValue(forKey: key) ?? SlotPairTable(slots: a.slotCount * width)
                        while e < end && Int(g.outTargets[e]) < limit {
                            let v = Int(g.outTargets[e])
                            table.add(su * width + b.slot(ofLocal: v - b.partition.start), weight: Float(g.outWeights[e]),
                                      highlighted: uMarked && highlight.contains(v))
                            e += 1
                        }
                        tables[key] = table
                    }
                }
            }
            for (key, table) in tables {
                let ci = key >> 32, cj = key & 0xFFFF_FFFF, width = columns[cj].slotCount
                table.forEach { i, n, sum, highlighted in
                    bundles.append(Bundle(source: ci, target: cj, sourceSlot: i / width, targetSlot: i % width, count: n,
                                          weight: Double(sum), highlighted: highlighted))
                }
            }
        }
        // Normalise per column pair.
        var maxWeight: [Int: Double] = [:]
        for b in bundles { maxWeight[b.source << 32 | b.target] = max(maxWeight[b.source << 32 | b.target] ?? 0, b.weight) }
        let total = bundles.count
        if bundles.count > lineBudget {
            bundles.sort { ($0.highlighted ? 1 : 0, $0.weight) > ($1.highlighted ? 1 : 0, $1.weight) }
            bundles.removeLast(bundles.count - lineBudget)
            needs.truncated = (bundles.count, total)
        }
        let fading = !highlight.isEmpty
        if fading { needs.faded = true }
        let baseOpacity = min(0.7, max(0.12, 22.0 / Double(max(1, bundles.count)).squareRoot()))
        // Skip edges first (underneath), then layer by layer; highlighted ones last, on top.
        bundles.sort {
            ($0.highlighted ? 1 : 0, $0.target - $0.source == 1 ? 1 : 0, $0.source, $0.target)
                < ($1.highlighted ? 1 : 0, $1.target - $1.source == 1 ? 1 : 0, $1.source, $1.target)
        }
        let step = frame.width / Double(max(1, columns.count))
        for b in bundles {
            let a = columns[b.source], t = columns[b.target]
            let p1 = a.position(ofSlot: b.sourceSlot), p2 = t.position(ofSlot: b.targetSlot)
            let strength = b.weight / max(maxWeight[b.source << 32 | b.target] ?? 1, 1e-30)
            let perEdge = a.nodeLevel && t.nodeLevel
            var width: Double, opacity: Double
            var colour = t.colour
            if perEdge {
                needs.perEdgeLines = true
                width = 0.4 + 2.6 * strength
                opacity = baseOpacity
            } else {
                needs.bundles = true
                width = 1.2
                opacity = 0.03 + 0.72 * strength.squareRoot()
            }
            if fading && !b.highlighted { opacity *= 0.3; colour = "#B0B0B0" }
            if b.highlighted { width += 0.4; opacity = min(0.9, max(0.5, opacity * 2)) }
            let role = ElementRole.edge(shortcut: false, highlighted: b.highlighted)
            if b.target == b.source {
                // Edges inside one partition (only the reference's stride-2 layout makes them).
                needs.loops = true
                let bulge = step * 0.3 + 0.3 * abs(p2.y - p1.y)
                canvas.curve(p1.x + a.halfWidth, p1.y, a.x + a.halfWidth + bulge, (p1.y + p2.y) / 2, p1.x + a.halfWidth, p2.y,
                             colour: "#D62728", width: width, opacity: min(0.9, opacity * 1.5), role: role)
                continue
            }
            // Grid cells are joined centre to centre (the pixel itself is the end point); other
            // columns from side to side.
            let x1 = a.isGrid ? p1.x : a.x + a.halfWidth + 1, x2 = t.isGrid ? p2.x : t.x - t.halfWidth - 1
            let y1 = p1.y, y2 = p2.y
            if isMultipartite && b.target > b.source + 1 {
                // A shortcut: an arc over the skipped columns, in the shortcut layer's colour,
                // kept inside the drawing area (a quadratic curve peaks halfway to its control point).
                needs.skipArcs = true
                if !(fading && !b.highlighted), let name = panel.skipLayers[PartitionPair(source: a.partitionIndex, target: t.partitionIndex)] {
                    colour = colours.colour(name)
                }
                let lift = 0.15 * (x2 - x1)
                let cy = max(min(y1, y2) - lift, 2 * areaTop - (y1 + y2) / 2)
                canvas.curve(x1, y1, (x1 + x2) / 2, cy, x2, y2, colour: colour, width: width, opacity: opacity,
                             role: .edge(shortcut: true, highlighted: b.highlighted))
            } else if a.isGrid && t.isGrid && b.source != b.target {
                // Between pixel grids, edges leaving one row from different columns would lie on
                // one straight line: each bows by its source column, so every edge stays visible.
                let g = a.grid
                let column = Double(b.sourceSlot % g.w)
                let bow = g.w > 1 ? (column / Double(g.w - 1) - 0.5) * Double(min(g.h, 4)) * a.cellSize * 0.6 : 0
                canvas.curve(x1, y1, (x1 + x2) / 2, (y1 + y2) / 2 + bow, x2, y2, colour: colour, width: width, opacity: opacity, role: role)
            } else {
                canvas.line(x1, y1, x2, y2, colour: colour, width: width, opacity: opacity, role: role)
            }
        }
    }
}
