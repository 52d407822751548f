import Foundation

/// A chart: scatter, line, bar or box plot, with a title, axis labels, ticks and a legend.
public struct Chart: Sendable {
    public enum Kind: String, Sendable, CaseIterable { case scatter, line, bar, box }

    /// One coloured set of points (scatter/line), in the legend under `name` (none when empty).
    public struct Series: Sendable {
        public var name: String
        public var xs: [Double]
        public var ys: [Double]
        public init(name: String, xs: [Double], ys: [Double]) { self.name = name; self.xs = xs; self.ys = ys }
    }

    public var kind: Kind
    public var title = ""
    public var xLabel = ""
    public var yLabel = ""
    /// Scatter and line plots.
    public var series: [Series] = []
    /// Bar plots: one bar per label; box plots: one box per label over `boxValues`.
    public var labels: [String] = []
    public var barValues: [Double] = []
    public var boxValues: [[Double]] = []
    /// Draws y = x (predicted against true).
    public var diagonal = false
    public var width = 760.0
    public var height = 480.0

    public init(kind: Kind) { self.kind = kind }

    /// Twelve distinguishable colours (the graph drawings' ten plus two), so the paper's 11 pruners differ.
    static let palette = LayerColours.palette + ["#17BECF", "#9E3D22"]

    /// "Nice" tick positions covering lo…hi (steps of 1, 2 or 5 × 10ᵏ), about `count` of them.
    static func ticks(_ lo: Double, _ hi: Double, count: Int = 6) -> [Double] {
        guard lo.isFinite, hi.isFinite else { return [] }
        if hi <= lo { return [lo] }
        let raw = (hi - lo) / Double(count)
        let magnitude = pow(10, floor(log10(raw)))
        let step = [1.0, 2, 5, 10].map { $0 * magnitude }.first { $0 >= raw } ?? 10 * magnitude
        var t = ceil(lo / step - 1e-9) * step
        var out: [Double] = []
        while t <= hi + step * 1e-9 { out.append(abs(t) < step * 1e-9 ? 0 : t); t += step }
        return out
    }

    static func tickText(_ v: Double, step: Double) -> String {
        if v == 0 { return "0" }
        if abs(v) >= 1e5 || abs(v) < 1e-3 { return String(format: "%.2g", v) }
        let decimals = max(0, Int(ceil(-log10(step) - 1e-9)))
        return String(format: "%.\(decimals)f", v)
    }

    /// Value range padded by 5% on each side (a single value gets ±1).
    static func range(_ values: [Double], includeZero: Bool = false) -> (Double, Double) {
        let finite = values.filter(\.isFinite)
        var lo = finite.min() ?? 0, hi = finite.max() ?? 1
        if includeZero { lo = min(lo, 0); hi = max(hi, 0) }
        if lo == hi { return (lo - 1, hi + 1) }
        let pad = (hi - lo) * 0.05
        return (includeZero && lo == 0 ? 0 : lo - pad, includeZero && hi == 0 ? 0 : hi + pad)
    }

    /// The chart as an SVG document.
    /// - Complexity: O(points) (box plots sort each group: O(n log n)).
    public func svg() -> String {
        var canvas = DrawingCanvas(width: width, height: height)
        let palette = Chart.palette
        let legendNames = series.map(\.name).filter { !$0.isEmpty }
        let legendWidth = (kind == .scatter || kind == .line) && !legendNames.isEmpty
            ? min(220, 30 + 7.0 * Double(legendNames.map(\.count).max() ?? 0)) : 0
        let categoryWidth = kind == .bar ? min(260, 14 + 6.6 * Double(labels.map(\.count).max() ?? 0)) : 0
        let left = 70 + categoryWidth, right = width - 20 - legendWidth
        let top = title.isEmpty ? 20.0 : 46, bottom = height - 56 - (kind == .box ? rotatedLabelSpace : 0)
        if !title.isEmpty { canvas.text(width / 2, 28, title, size: 17, anchor: "middle", weight: "600") }

        // Value axis ranges.
        var xr = (0.0, 1.0), yr = (0.0, 1.0)
        switch kind {
        case .scatter, .line:
            var xs = series.flatMap(\.xs), ys = series.flatMap(\.ys)
            if diagonal { let both = xs + ys; xs = both; ys = both }
            xr = Chart.range(xs); yr = Chart.range(ys)
        case .bar: xr = Chart.range(barValues, includeZero: true)
        case .box: yr = Chart.range(boxValues.flatMap { $0 })
        }
        func px(_ x: Double) -> Double { left + (x - xr.0) / (xr.1 - xr.0) * (right - left) }
        func py(_ y: Double) -> Double { bottom - (y - yr.0) / (yr.1 - yr.0) * (bottom - top) }

        // Frame, grid and ticks.
        let axisColour = "#444444", gridColour = "#E5E5E5"
        if kind != .box {
            let xt = Chart.ticks(xr.0, xr.1)
            let step = xt.count > 1 ? xt[1] - xt[0] : 1
            for t in xt {
                canvas.line(px(t), top, px(t), bottom, colour: gridColour, width: 1, opacity: 1)
                canvas.text(px(t), bottom + 17, Chart.tickText(t, step: step), size: 11, anchor: "middle", colour: axisColour)
            }
        }
        if kind != .bar {
            let yt = Chart.ticks(yr.0, yr.1)
            let step = yt.count > 1 ? yt[1] - yt[0] : 1
            for t in yt {
                canvas.line(left, py(t), right, py(t), colour: gridColour, width: 1, opacity: 1)
                canvas.text(left - 7, py(t) + 4, Chart.tickText(t, step: step), size: 11, anchor: "end", colour: axisColour)
            }
        }
        canvas.line(left, bottom, right, bottom, colour: axisColour, width: 1, opacity: 1)
        canvas.line(left, top, left, bottom, colour: axisColour, width: 1, opacity: 1)
        // Bars lie horizontally: their labels (x) run down the left, their lengths (y) along the bottom.
        let (bottomLabel, leftLabel) = kind == .bar ? (yLabel, xLabel) : (xLabel, yLabel)
        if !bottomLabel.isEmpty { canvas.text((left + right) / 2, height - 14, bottomLabel, size: 13, anchor: "middle") }
        if !leftLabel.isEmpty { canvas.text(18, (top + bottom) / 2, leftLabel, size: 13, anchor: "middle", rotate: -90) }

        switch kind {
        case .scatter, .line:
            if diagonal { canvas.line(px(max(xr.0, yr.0)), py(max(xr.0, yr.0)), px(min(xr.1, yr.1)), py(min(xr.1, yr.1)), colour: "#888888", width: 1, opacity: 0.8) }
            let radius = series.reduce(0) { $0 + $1.xs.count } > 2000 ? 2.0 : 3.0
            for (k, s) in series.enumerated() {
                let colour = palette[k % palette.count]
                let points = zip(s.xs, s.ys).filter { $0.0.isFinite && $0.1.isFinite }
                if kind == .line {
                    let path = points.enumerated().map { i, p in "\(i == 0 ? "M" : "L")\(DrawingCanvas.number(px(p.0))) \(DrawingCanvas.number(py(p.1)))" }
                    canvas.body.append("<path d=\"\(path.joined())\" fill=\"none\" stroke=\"\(colour)\" stroke-width=\"2\"/>")
                    for p in points { canvas.circle(px(p.0), py(p.1), 2.5, fill: colour) }
                } else {
                    for p in points {
                        canvas.body.append("<circle cx=\"\(DrawingCanvas.number(px(p.0)))\" cy=\"\(DrawingCanvas.number(py(p.1)))\" r=\"\(radius)\" fill=\"\(colour)\" fill-opacity=\"0.6\"/>")
                    }
                }
            }
            if !legendNames.isEmpty {
                var y = top + 8
                for (k, s) in series.enumerated() where !s.name.isEmpty {
                    canvas.circle(right + 22, y - 4, 5, fill: palette[k % palette.count])
                    canvas.text(right + 32, y, s.name, size: 12, anchor: "start")
                    y += 18
                }
            }
        case .bar:
            let slot = (bottom - top) / Double(max(1, labels.count))
            let zero = px(0)
            for (i, (label, value)) in zip(labels, barValues).enumerated() {
                let y = top + Double(i) * slot
                let h = slot * 0.7
                if value.isFinite {
                    let x0 = min(zero, px(value)), w = abs(px(value) - zero)
                    canvas.rect(x0, y + (slot - h) / 2, max(w, 0.5), h, fill: palette[0], fillOpacity: 0.9)
                    let text = Chart.tickText(value, step: abs(value) / 100)
                    // Values sit past the bar's end; a negative bar's value goes right of zero so it never meets the labels.
                    canvas.text(value >= 0 ? x0 + w + 4 : zero + 4, y + slot / 2 + 4, text, size: 10, anchor: "start", colour: "#555555")
                }
                canvas.text(left - 8, y + slot / 2 + 4, label, size: 12, anchor: "end")
            }
            canvas.line(zero, top, zero, bottom, colour: axisColour, width: 1, opacity: 1)
        case .box:
            let slot = (right - left) / Double(max(1, labels.count))
            let rotate = labels.contains { Double($0.count) * 7 > slot }
            for (i, (label, values)) in zip(labels, boxValues).enumerated() {
                let x = left + (Double(i) + 0.5) * slot
                let colour = palette[i % palette.count]
                let sorted = values.filter(\.isFinite).sorted()
                if rotate {
                    canvas.text(x, bottom + 14, label, size: 11, anchor: "end", rotate: -35)
                } else {
                    canvas.text(x, bottom + 17, label, size: 12, anchor: "middle")
                }
                guard !sorted.isEmpty else { continue }
                let q1 = Chart.quantile(sorted, 0.25), q2 = Chart.quantile(sorted, 0.5), q3 = Chart.quantile(sorted, 0.75)
                let fence = 1.5 * (q3 - q1)
                let low = sorted.first { $0 >= q1 - fence } ?? q1, high = sorted.last { $0 <= q3 + fence } ?? q3
                let w = min(60, slot * 0.6)
                canvas.line(x, py(low), x, py(q1), colour: axisColour, width: 1, opacity: 1)
                canvas.line(x, py(q3), x, py(high), colour: axisColour, width: 1, opacity: 1)
                canvas.line(x - w / 4, py(low), x + w / 4, py(low), colour: axisColour, width: 1, opacity: 1)
                canvas.line(x - w / 4, py(high), x + w / 4, py(high), colour: axisColour, width: 1, opacity: 1)
                canvas.rect(x - w / 2, py(q3), w, max(0.5, py(q1) - py(q3)), fill: colour, fillOpacity: 0.55)
                canvas.line(x - w / 2, py(q2), x + w / 2, py(q2), colour: "#222222", width: 2, opacity: 1)
                for v in sorted where v < low || v > high { canvas.circle(x, py(v), 2.5, fill: "white", stroke: colour) }
            }
        }
        return canvas.document()
    }

    private var rotatedLabelSpace: Double {
        let longest = Double(labels.map(\.count).max() ?? 0)
        return kind == .box && longest * 7 > (width - 90) / Double(max(1, labels.count)) ? min(120, longest * 5) : 0
    }

    /// Linear-interpolated quantile of sorted values (numpy's default).
    static func quantile(_ sorted: [Double], _ q: Double) -> Double {
        let position = q * Double(sorted.count - 1)
        let i = Int(position), frac = position - Double(i)
        return i + 1 < sorted.count ? sorted[i] + frac * (sorted[i + 1] - sorted[i]) : sorted[i]
    }
}
