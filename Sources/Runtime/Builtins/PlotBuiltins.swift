import Foundation
import Kernels

// `plot`: scatter, line, bar and box charts as SVG files (Kernels/Analysis/Plot.swift draws them).
// A script run with --report also gets each figure inline in its report.

let plotBuiltins: [Builtin] = [
    Builtin("plot", [Param("xs", .oneOf([.list, .native("table")])), Param("ys", .optional(.list), default: Value.none),
                     Param("kind", .string, default: .string("scatter")), Param("title", .optional(.string), default: Value.none),
                     Param("x", .optional(.string), default: Value.none), Param("y", .optional(.string), default: Value.none),
                     Param("color", .optional(.oneOf([.string, .list])), default: Value.none),
                     Param("path", .optional(.string), default: Value.none), Param("diagonal", .bool, default: .bool(false))],
            returns: "figure or none",
            summary: "Draws a chart as SVG: kind \"scatter\", \"line\", \"bar\" or \"box\". plot(xs, ys, …) takes lists (x:, y: label the "
                + "axes; color: one label per point splits the points into coloured series with a legend); plot(t, x: \"col\", y: \"col\", "
                + "color: \"col\") takes a table's columns. Bars: xs are the labels, ys the lengths; boxes: xs label each value's group. "
                + "diagonal: true draws y = x. Written to path (.svg, or .png) when one is given; without a path it returns the figure "
                + "(shown inline in a notebook and in mge-script --report; save(fig, \"x.svg\") writes it).",
            example: "plot(t, x: \"sparsity\", y: \"accuracy\", color: \"pruning\", path: \"acc.svg\");  plot(t.accuracy, f.predictions, diagonal: true)") { args in
        try Plotting.plot(args)
    },
]

enum Plotting {
    static func plot(_ args: Arguments) throws -> Value {
        guard let kind = Chart.Kind(rawValue: try args.string("kind")) else {
            throw args.bad("kind", "\"scatter\", \"line\", \"bar\" or \"box\" expected, got \(Display.quoted(try args.string("kind")))")
        }
        var chart = Chart(kind: kind)
        chart.title = args.optional("title").map(Display.plain) ?? ""
        chart.diagonal = try args.bool("diagonal")
        var xs: [Value], ys: [Value], colors: [Value]?
        if case .native(let native) = args["xs"], let object = TableObject.of(native) {
            guard args.optional("ys") == nil else { throw args.bad("ys", "with a table, name the columns with x: and y:") }
            guard case .string(let xName)? = args.optional("x") else { throw args.bad("x", "with a table, x: names the column for the x axis") }
            guard case .string(let yName)? = args.optional("y") else { throw args.bad("y", "with a table, y: names the column for the y axis") }
            xs = try column(object, xName, args, "x")
            ys = try column(object, yName, args, "y")
            switch args["color"] {
            case .string(let name): colors = try column(object, name, args, "color")
            case .list(let list): colors = list
            default: colors = nil
            }
            chart.xLabel = xName; chart.yLabel = yName
        } else {
            xs = try args.list("xs")
            guard case .list(let list)? = args.optional("ys") else { throw args.bad("ys", "a list of y values expected") }
            ys = list
            if case .list(let list) = args["color"] { colors = list } else if case .string = args["color"] {
                throw args.bad("color", "with lists, color: is a list of labels, one per point")
            }
            chart.xLabel = args.optional("x").map(Display.plain) ?? ""
            chart.yLabel = args.optional("y").map(Display.plain) ?? ""
        }
        guard xs.count == ys.count else { throw args.bad("ys", "\(ys.count) y values for \(xs.count) x values") }
        if let colors, colors.count != xs.count { throw args.bad("color", "\(colors.count) color labels for \(xs.count) points") }
        guard !xs.isEmpty else { throw args.bad("xs", "nothing to plot (no values)") }
        let y = try ys.enumerated().map { i, v -> Double in
            if let d = v.asDouble { return d }
            if case .none = v { return .nan }
            throw args.bad("ys", "y value \(i) is \(Display.inline(v)), a number expected")
        }
        switch kind {
        case .scatter, .line:
            let x = try xs.enumerated().map { i, v -> Double in
                if let d = v.asDouble { return d }
                if case .none = v { return .nan }
                throw args.bad("xs", "x value \(i) is \(Display.inline(v)), a number expected (bar and box plots take labels)")
            }
            let labels = colors.map { $0.map(Display.plain) } ?? [String](repeating: "", count: x.count)
            var order: [String] = [], members: [String: [Int]] = [:]
            for (i, l) in labels.enumerated() {
                if members[l] == nil { order.append(l) }
                members[l, default: []].append(i)
            }
            if colors != nil { order = sortedLabels(order) }
            chart.series = order.map { l in
                var idx = members[l] ?? []
                if kind == .line { idx.sort { x[$0] < x[$1] } }
                return Chart.Series(name: l, xs: idx.map { x[$0] }, ys: idx.map { y[$0] })
            }
        case .bar:
            chart.labels = xs.map(Display.plain)
            chart.barValues = y
        case .box:
            let labels = xs.map(Display.plain)
            var order: [String] = [], members: [String: [Double]] = [:]
            for (l, v) in zip(labels, y) {
                if members[l] == nil { order.append(l) }
                members[l, default: []].append(v)
            }
            order = sortedLabels(order)
            chart.labels = order
            chart.boxValues = order.map { members[$0] ?? [] }
        }
        let svg = chart.svg()
        guard args.optional("path") != nil else { return .native(FigureObject(svg: svg, title: chart.title)) }
        try Figures.write(svg, args, "path", fallbackSize: (800, 500))
        return .none
    }

    /// Labels that are all numbers sort numerically (sparsities), others keep their first-seen order.
    static func sortedLabels(_ labels: [String]) -> [String] {
        let numbers = labels.compactMap(Double.init)
        guard numbers.count == labels.count else { return labels }
        return labels.sorted { (Double($0) ?? 0) < (Double($1) ?? 0) }
    }

    private static func column(_ object: TableObject, _ name: String, _ args: Arguments, _ blame: String) throws -> [Value] {
        guard let values = object.field(name) , case .list(let list) = values else {
            throw args.bad(blame, "the table has no column '\(name)' (columns: \(object.table.names.joined(separator: ", ")))")
        }
        return list
    }
}
