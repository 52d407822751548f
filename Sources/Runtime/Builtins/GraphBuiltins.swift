import Foundation
import Kernels
import Lang

// Graph encodings (SPEC §3) in the language: `unroll`, `rolled`, `rolled_channel`, their
// summaries, files (`save`, `load`, `export`, `export_degrees`) and drawings (`draw`).

let graphBuiltins: [Builtin] = [
    Builtin("unroll", [Param("net", .native("network")), Param("compat", .string, default: .string("paper")),
                       Param("implicit", .optional(.bool), default: Value.none)], returns: "graph",
            summary: "The unrolled multipartite graph encoding (MGE) of a network: one partition for the padded input and one per conv/linear output; compat: \"reference\" reproduces the Python tool's stride-2 quirk. implicit: true keeps only the masks, weights and geometry and generates each node's neighbours when asked (memory O(nodes + weights), never O(edges)); by default the implicit form is chosen when the edge list would not fit in half the memory, and the display says so. topometrics, summary, export_degrees and the node queries (node, neighbors, degree, receptive_field, paths, sinks…) give the same answers on either form; save and export need the explicit form.",
            example: "g = unroll(net);  unroll(net, compat: \"reference\");  unroll(net, implicit: true)") { args in
        let net = try args.native("net", as: NetworkObject.self)
        let compat = try GraphArguments.unrollCompat(args)
        var modes: [(stage: String, compat: String)] = []
        if let masks = net.network.maskCompat { modes.append(("prune", masks.rawValue)) }
        modes.append(("unroll", compat.rawValue))
        var asked: Bool?
        if case .bool(let b)? = args.optional("implicit") { asked = b }
        let budget = CheckedSize.physicalMemory / 2
        // The edge count is known only once generated; an upper bound (every tap at every
        // output position) settles most networks without that pass.
        let bound = (try? ImplicitGraph.explicitByteUpperBound(net.network, compat: compat)) ?? Int.max
        if asked == false || (asked == nil && bound <= budget) {
            let graph = try cancellable { try Kernels.unroll(net.network, compat: compat) }
            return .native(GraphObject(graph, encoding: "MGE", modes: modes, plan: try? UnrollPlan(net.network.architecture, compat: compat),
                                           source: net.network))
        }
        // Over the bound: the implicit form's degree pass gives the exact size. Should the edge
        // list fit after all (the bound counts border taps that fall in the padding), it is built
        // from the same generator, without planning the network again.
        let implicit = try cancellable { try ImplicitGraph(net.network, compat: compat) }
        if asked == nil && implicit.explicitByteSize <= budget {
            let graph = try cancellable { try implicit.materialized() }
            return .native(GraphObject(graph, encoding: "MGE", modes: modes, plan: implicit.plan, source: net.network))
        }
        let reason = asked == true ? "asked"
            : "chosen because the edge list would need \(formatBytes(implicit.explicitByteSize)), over half of \(formatBytes(CheckedSize.physicalMemory))"
        return .native(ImplicitGraphObject(implicit, modes: modes, reason: reason))
    },
    Builtin("rolled", [Param("net", .native("network"))], returns: "layers",
            summary: "The rolled encoding: one bipartite graph per conv, shortcut and linear layer (left = flattened kernel entries, right = output channels), in network order.",
            example: "ls = rolled(net);  ls[0];  ls[\"layer1.0.conv1\"]") { args in
        .native(try NetworkLayers.encode(try args.native("net", as: NetworkObject.self).network, channel: false))
    },
    Builtin("rolled_channel", [Param("net", .native("network"))], returns: "layers",
            summary: "The rolled-channel encoding: one bipartite graph per layer between input and output channels, an edge where the kernel W[o, i] has a kept weight (weight ‖W[o, i]‖₂).",
            example: "ls = rolled_channel(net);  topometrics(ls)") { args in
        .native(try NetworkLayers.encode(try args.native("net", as: NetworkObject.self).network, channel: true))
    },
    Builtin("save", [Param("x", .oneOf([.native("graph"), .native("regression"), .native("figure")])), Param("path", .string)], returns: "none",
            summary: "Saves a graph as a compressed, checksummed .mgeg file, a fitted regression as an XGBoost .json model "
                + "(with its feature names and target), or a figure (from draw or plot without a path) as .svg or .png, written atomically; load(path) reads graphs and models back.",
            example: "save(g, \"resnet20-erk-0.98.mgeg\");  save(f, \"accuracy-model.json\");  save(draw(g), \"g.png\")") { args in
        if case .native(let figure as FigureObject) = args["x"] {
            try Figures.write(figure.svg, args, "path", fallbackSize: (1600, 960))
            return .none
        }
        if case .native(let model as RegressionObject) = args["x"] {
            return try Fitting.save(model, args)
        }
        return try GraphArguments.writeGraph(args, "x", extensions: ["mgeg"], what: "a graph file") { try $0.save(to: $1) }
    },
    Builtin("load", [Param("path", .string)], returns: "graph or regression",
            summary: "Loads a graph saved by save(g, \"x.mgeg\") or a regression saved by save(f, \"x.json\"); a truncated, altered or foreign file is refused with the reason.",
            example: "g = load(\"resnet20-erk-0.98.mgeg\");  f = load(\"accuracy-model.json\")") { args in
        if (try args.string("path")).lowercased().hasSuffix(".json") { return try Fitting.load(args) }
        let path = try filePath(args, "path", extensions: ["mgeg"], what: "a graph file")
        let graph = try cancellable { try Graph.load(from: path) }
        let parts = graph.partitions
        if parts.count == 2, parts[0].name == parts[1].name + ".in" {
            // A per-layer (rolled) graph: its layer's name is the right partition's.
            return .native(GraphObject(graph, encoding: "layer", layerName: parts[1].name))
        }
        return .native(GraphObject(graph, encoding: "MGE"))
    },
    Builtin("export", [Param("g", .native("graph")), Param("path", .string)], returns: "none",
            summary: "Writes the edge list as text: a header `source<TAB>target<TAB>weight`, then one line per edge (node ids as in the graph, weights in half precision).",
            example: "export(g, \"edges.tsv\")") { args in
        try GraphArguments.writeGraph(args, "g", extensions: ["tsv", "txt", "csv"], what: "an edge list") { try $0.exportEdgeList(to: $1) }
    },
    Builtin("export_degrees", [Param("g", .native("graph")), Param("path", .string)], returns: "none",
            summary: "Writes in_degree, out_degree (per node) and layer_sizes (per partition) to a safetensors file laid out like the oracle's mge.safetensors.",
            example: "export_degrees(g, \"degrees.safetensors\")") { args in
        if case .native(let implicit as ImplicitGraphObject) = args["g"] {
            let path = try filePath(args, "path", extensions: ["safetensors"], what: "a safetensors file")
            try cancellable(isWrite: true) { try implicit.graph.exportDegrees(to: path) }
            reportWrite(path, file: path, args)
            return .none
        }
        return try GraphArguments.writeGraph(args, "g", extensions: ["safetensors"], what: "a safetensors file") { try $0.exportDegrees(to: $1) }
    },
    Builtin("draw", [Param("x", .oneOf([.native("graph"), .native("layers"), .native("network")])), Param("path", .optional(.string), default: Value.none),
                     Param("encoding", .string, default: .string("unrolled")), Param("title", .optional(.string), default: Value.none),
                     Param("width", .optional(.number), default: Value.none), Param("height", .optional(.number), default: Value.none),
                     Param("font_size", .optional(.number), default: Value.none),
                     Param("highlight", .optional(.oneOf([.native("nodes"), .list])), default: Value.none),
                     Param("preset", .optional(.string), default: Value.none),
                     Param("layers", .optional(.oneOf([.string, .int])), default: Value.none),
                     Param("split", .optional(.int), default: Value.none)],
            returns: "figure, list of figures or none",
            summary: "Draws a graph, a layer list or a network's encoding for slides (.svg, or .png through librsvg): one colour per layer with a legend, column heights following partition sizes, small feature maps as pixel grids. For a network, encoding: \"unrolled\", \"rolled\", \"rolled_channel\" or \"all\". width/height in px (default 1600 wide), font_size ≥ 12; preset: \"slide\" is 1920×1080 with 24 px labels. layers: \"a:b\" draws layers a to b only (counted from 1 in network order, as prune's table lists them; \"7:\" to the end); split: k spreads the layers over k figures (written to name-1.png … name-k.png, or returned as a list). Text never overlaps and is never cut: a size and font where it would is refused, naming what fits instead (a smaller font_size, a bigger canvas, split: or layers:). highlight: a node set (or a list of them) drawn over a faded graph. Without a path it returns the figure (shown inline in a notebook; save(fig, \"x.png\") writes it).",
            example: "draw(toy(), \"toy.png\", encoding: \"all\");  fig = draw(g);  draw(resnet(20), \"r20.png\", preset: \"slide\", split: 3);  draw(g, \"rf.svg\", highlight: receptive_field(g, node(g, \"linear\", 0)))") { args in
        let title = args.optional("title").map(Display.plain)
        let options = try GraphDrawings.options(args)
        let figures = try GraphDrawings.figures(args["x"], encoding: try args.string("encoding"), title: title, options: options, args: args)
        let splitAsked = args.optional("split") != nil
        var result: Value = .none
        if args.optional("path") != nil {
            let path = try filePath(args, "path", extensions: ["svg", "png"], what: "a figure")
            let fallback = (options.width, options.height ?? options.width * 0.6)
            if figures.count == 1 && !splitAsked {
                try Figures.write(figures[0].svg, to: path, args, fallbackSize: fallback)
            } else {
                // r20.png → r20-1.png, r20-2.png, …
                let ext = (path as NSString).pathExtension, stem = (path as NSString).deletingPathExtension
                for (i, figure) in figures.enumerated() {
                    try Figures.write(figure.svg, to: "\(stem)-\(i + 1).\(ext)", args, fallbackSize: fallback)
                }
            }
        } else if figures.count == 1 && !splitAsked {
            result = .native(FigureObject(svg: figures[0].svg, title: title ?? ""))
        } else {
            result = .list(figures.map { .native(FigureObject(svg: $0.svg, title: $0.title)) })
        }
        if case .native(let graph as GraphObject) = args["x"], let staleness = graph.staleness {
            args.interpreter.write("warning: the drawn graph is \(staleness)\n")
        }
        return result
    },
]

/// Argument checks of the graph builtins.
enum GraphArguments {
    static func unrollCompat(_ args: Arguments) throws -> UnrollCompat {
        let text = try args.string("compat")
        guard let compat = UnrollCompat(rawValue: text) else {
            throw args.bad("compat", "expected \"paper\" or \"reference\", got \(Display.quoted(text))")
        }
        return compat
    }

    /// Writes the graph of argument `graph` to the checked argument "path" with `write` (Ctrl-C
    /// abandons it) and reports the file: `wrote g.mgeg (1.3 MB)`.
    static func writeGraph(_ args: Arguments, _ graph: String, extensions: [String], what: String,
                           _ write: @escaping (Graph, String) throws -> Void) throws -> Value {
        let object = try args.native(graph, as: GraphObject.self)
        let path = try filePath(args, "path", extensions: extensions, what: what)
        try cancellable(isWrite: true) { try write(object.graph, path) }
        reportWrite(path, file: path, args)
        return .none
    }
}

/// The prunable conv, shortcut and linear layers of a network as the rolled encodings and the
/// per-layer metrics see them.
enum NetworkLayers {
    struct Entry {
        let name: String
        /// "conv", "residual" (a shortcut conv) or "linear".
        let kind: String
        /// The reference's id: its position in the model's module list, where named pooling
        /// modules (CONV-6's `nn.MaxPool2d`) also take a number.
        let id: Int
        let groups: Int
    }

    static func entries(_ architecture: Architecture) -> [Entry] {
        let nodes = architecture.nodes
        // A conv is a shortcut when it feeds the shortcut input of an add, directly or through BN.
        var shortcuts = Set<Int>()
        for node in nodes where node.op == .add && node.inputs.count == 2 {
            var s = node.inputs[1]
            while s >= 0, s < nodes.count, case .batchNorm = nodes[s].op, let input = nodes[s].inputs.first { s = input }
            if s >= 0, s < nodes.count, case .conv = nodes[s].op { shortcuts.insert(s) }
        }
        var out: [Entry] = []
        var id = 0
        for (index, node) in nodes.enumerated() {
            switch node.op {
            case .conv(let c):
                out.append(Entry(name: node.name, kind: shortcuts.contains(index) ? "residual" : "conv", id: id, groups: c.groups))
                id += 1
            case .linear:
                out.append(Entry(name: node.name, kind: "linear", id: id, groups: 1))
                id += 1
            case .maxPool, .avgPool:
                if !node.name.isEmpty { id += 1 }
            default:
                break
            }
        }
        return out
    }

    static func weights(_ network: Network) throws -> [(entry: Entry, weight: LayerWeight)] {
        try entries(network.architecture).map { e in
            let key = e.name + ".weight"
            guard let t = network.parameter(key) else { throw RuntimeError("the network has no weight '\(key)'") }
            return (e, LayerWeight(name: e.name, kind: e.kind, shape: t.shape, groups: e.groups, values: t.data,
                                   mask: network.masks[key]))
        }
    }

    static func encode(_ network: Network, channel: Bool) throws -> LayersObject {
        let encoding = channel ? "rolled-channel" : "rolled"
        let layers = try weights(network)
        let graphs = try cancellable {
            try layers.map { l in try channel ? rolledChannelGraph(l.weight) : rolledGraph(l.weight) }
        }
        let names = layers.map(\.entry.name)
        let objects = zip(layers, graphs).map { l, g in
            GraphObject(g, encoding: encoding, layerName: l.entry.name, layerKind: l.entry.kind, networkLayers: names, source: network)
        }
        return LayersObject(objects, encoding: encoding, layerIds: layers.map(\.entry.id))
    }
}

/// Figures of graphs, layer lists and networks.
enum GraphDrawings {
    static let encodings = ["unrolled", "rolled", "rolled_channel", "all"]
    static let rolledSubtitle = "kernel entries (c, kh, kw) → output channels; an edge per kept weight"
    static let channelSubtitle = "input channels → output channels; an edge where a kernel keeps a weight"

    /// width:, height:, font_size: checked against `DrawingOptions`' ranges.
    static func options(_ args: Arguments) throws -> DrawingOptions {
        var options = DrawingOptions()
        func number(_ name: String, _ range: ClosedRange<Double>) throws -> Double? {
            guard let v = args.optional(name)?.asDouble else { return nil }
            guard range.contains(v) else {
                throw args.bad(name, "expected \(Int(range.lowerBound)) to \(Int(range.upperBound)) px, got \(Display.inline(args[name]))")
            }
            return v
        }
        if let preset = args.optional("preset") {
            guard case .string("slide") = preset else { throw args.bad("preset", "expected \"slide\" (1920×1080, 24 px labels), got \(Display.inline(preset))") }
            options.width = 1920; options.height = 1080; options.fontSize = 24
        }
        if let w = try number("width", DrawingOptions.widthRange) { options.width = w }
        if let h = try number("height", DrawingOptions.heightRange) { options.height = h }
        if let f = try number("font_size", DrawingOptions.fontSizeRange) { options.fontSize = f }
        return options
    }

    /// A figure (SVG) and its title.
    typealias Figure = (svg: String, title: String)

    /// Draws the panel rows that `build(options, split)` makes (one list of rows per figure), or
    /// refuses with what is wrong and what would fit: tries a split into more figures (when
    /// there are `layers` to split), a bigger canvas and a smaller font_size, and names those
    /// that laid out. - Complexity: one render, plus up to eight more when the first does not fit
    /// (fewer once a fix is found and a few seconds have passed).
    static func checked(options: DrawingOptions, split: Int?, layers: ClosedRange<Int>?,
                        _ build: (Int) throws -> [(rows: [[DrawingPanel]], title: String?)]) throws -> [Figure] {
        func attempt(_ options: DrawingOptions, _ split: Int) throws -> Result<[Figure], DrawingDoesNotFit> {
            var figures: [Figure] = []
            for figure in try build(split) {
                do {
                    // A figure's name: its title, else its one panel's (what a list of figures shows).
                    let name = figure.title ?? figure.rows.first?.first?.title ?? ""
                    figures.append((try GraphDrawing.checkedSVG(rows: figure.rows, title: figure.title, options: options), name))
                } catch {
                    return .failure(error)
                }
            }
            return .success(figures)
        }
        let parts = split ?? 1
        let failure: DrawingDoesNotFit
        switch try attempt(options, parts) {
        case .success(let figures): return figures
        case .failure(let error): failure = error
        }
        var fixes: [String] = []
        // Each try is a whole render (seconds for a dense ResNet's 15 M edges): once one fix is
        // known, stop looking for others after a few seconds.
        let searchStart = Date()
        func enough() -> Bool { !fixes.isEmpty && Date().timeIntervalSince(searchStart) > 4 }
        // Fewer layers per figure first (what a lecturer would do for a slide), then a bigger
        // canvas, then a smaller font.
        let fs = options.fontSize
        if let layers, layers.count > parts {
            for k in parts + 1 ... min(parts + 3, layers.count) {
                if case .success = try attempt(options, k) {
                    let first = chunks(layers, into: k)[0]
                    fixes.append("split: \(k) (\(k) figures; or only layers: \"\(first.lowerBound + 1):\(first.upperBound + 1)\")")
                    break
                }
            }
        }
        let h = options.height ?? options.width * 0.6
        for factor in [1.5, 2.0] where !enough() {
            var o = options
            let height = min(h * factor, DrawingOptions.heightRange.upperBound)
            o.height = height
            o.width = min(options.width * factor, DrawingOptions.widthRange.upperBound)
            guard o.height != options.height || o.width != options.width else { break }
            if case .success = try attempt(o, parts) { fixes.append("width: \(Int(o.width)), height: \(Int(height)) (a bigger canvas)"); break }
        }
        for f in [fs * 0.8, fs * 0.65, DrawingOptions.minimumFontSize].map({ $0.rounded(.down) })
            where !enough() && f >= DrawingOptions.minimumFontSize && f < fs {
            var o = options; o.fontSize = f
            if case .success = try attempt(o, parts) { fixes.append("font_size: \(Int(f))"); break }
        }
        let size = "\(Int(options.width))×\(options.height.map { String(Int($0)) } ?? "auto") px"
        let advice = fixes.isEmpty
            ? "Nothing close fits: use a much bigger canvas (width:, height:), font_size: 12, or fewer layers per figure (layers: \"1:4\", split:)"
            : "It fits with " + fixes.joined(separator: ", or with ")
        // The first few problems say what is wrong (the rest mostly follow from them).
        let shown = failure.problems.prefix(3).joined(separator: "; ")
            + (failure.problems.count > 3 ? "; and \(failure.problems.count - 3) more problems" : "")
        let font = fs == fs.rounded() ? String(Int(fs)) : Display.float(fs)
        throw RuntimeError("the figure does not fit at \(size) with font_size \(font): \(shown). \(advice)")
    }

    /// `range` cut into `k` consecutive runs of nearly equal length (the first ones one longer).
    static func chunks(_ range: ClosedRange<Int>, into k: Int) -> [ClosedRange<Int>] {
        let n = range.count, parts = max(1, min(k, n))
        var out: [ClosedRange<Int>] = [], start = range.lowerBound
        for i in 0 ..< parts {
            let length = n / parts + (i < n % parts ? 1 : 0)
            out.append(start ... start + length - 1)
            start += length
        }
        return out
    }

    /// The layers: argument as 0-based positions among `count` layers: "a:b" (counted from 1,
    /// both included; "a:" to the end, ":b" from the start), "a" or an int (one layer).
    static func layerSelection(_ args: Arguments, count: Int, what: String) throws -> ClosedRange<Int> {
        guard let value = args.optional("layers") else { return 0 ... count - 1 }
        let expected = "\"a:b\" with 1 ≤ a ≤ b ≤ \(count) (\(what), counted from 1)"
        var bounds: (Int?, Int?)
        switch value {
        case .int(let i): bounds = (i, i)
        case .string(let text):
            let sides = text.split(separator: ":", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
            guard sides.count <= 2, sides.allSatisfy({ $0.isEmpty || Int($0) != nil }), !(sides.count == 1 && sides[0].isEmpty) else {
                throw args.bad("layers", "expected \(expected), got \(Display.quoted(text))")
            }
            bounds = sides.count == 1 ? (Int(sides[0]), Int(sides[0])) : (sides[0].isEmpty ? 1 : Int(sides[0]), sides[1].isEmpty ? count : Int(sides[1]))
        default: bounds = (nil, nil)
        }
        guard let a = bounds.0, let b = bounds.1, 1 <= a, a <= b, b <= count else {
            throw args.bad("layers", "expected \(expected), got \(Display.inline(value))")
        }
        return a - 1 ... b - 1
    }

    /// The split: argument: how many figures (1 to the number of layers drawn).
    static func splitCount(_ args: Arguments, layers: Int) throws -> Int? {
        guard case .int(let k)? = args.optional("split") else { return nil }
        guard k >= 1, k <= layers else {
            throw args.bad("split", "expected 1 to \(layers) figures (one layer each at most), got \(k)")
        }
        return k
    }

    /// The highlight: argument as node ids of `graph` (the object node queries answered on:
    /// a drawn implicit MGE's sets belong to it, not to its materialised form).
    static func highlight(_ args: Arguments, graph: AnyObject) throws -> Set<Int> {
        guard let value = args.optional("highlight") else { return [] }
        let sets: [Value]
        if case .list(let items) = value { sets = items } else { sets = [value] }
        var ids = Set<Int>()
        for item in sets {
            guard case .native(let s as NodeSetObject) = item else {
                throw args.bad("highlight", "node sets expected, got a list holding \(item.typeName)")
            }
            guard s.graph === graph else { throw args.bad("highlight", "the node set belongs to another graph") }
            ids.formUnion(s.nodes)
        }
        return ids
    }

    /// The partitions of an unrolled graph holding the layers `chunk` of `plan` (the first's
    /// input to the last's output).
    static func partitions(of chunk: ClosedRange<Int>, _ plan: UnrollPlan) -> ClosedRange<Int> {
        let layers = plan.layers[chunk]
        return (layers.map(\.sourcePartition).min() ?? 0) ... (layers.map(\.targetPartition).max() ?? 0)
    }

    /// ", layers 1–6 of 22" when `chunk` is not all of `count` layers.
    static func suffix(_ chunk: ClosedRange<Int>, of count: Int) -> String {
        chunk.count == count ? "" : chunk.count == 1 ? ", layer \(chunk.lowerBound + 1) of \(count)"
            : ", layers \(chunk.lowerBound + 1)–\(chunk.upperBound + 1) of \(count)"
    }

    /// An unrolled graph's figures: whole, or the layers:/split: slices of its plan.
    /// `highlight` holds ids of the whole graph.
    static func unrolledFigures(_ graph: Graph, plan: UnrollPlan?, name: String, highlight: Set<Int>, title: String?,
                                options: DrawingOptions, args: Arguments) throws -> [Figure] {
        let counts = "\(grouped(graph.nodeCount)) nodes, \(grouped(graph.edgeCount)) edges"
        guard let plan, plan.partitions.count == graph.partitions.count else {
            if args.optional("layers") != nil || args.optional("split") != nil {
                throw args.bad(args.optional("layers") != nil ? "layers" : "split", "this graph has no layer plan (loaded from a file); draw the network instead: draw(net, layers: \"1:6\")")
            }
            var panel = DrawingPanel.unrolled(graph, plan: plan, title: title ?? "\(name) (\(counts))")
            panel.highlight = highlight
            return try checked(options: options, split: nil, layers: nil) { _ in [([[panel]], nil)] }
        }
        let selection = try layerSelection(args, count: plan.layers.count, what: "the graph's layers")
        let split = try splitCount(args, layers: selection.count)
        return try checked(options: options, split: split, layers: selection) { k in
            chunks(selection, into: k).map { chunk in
                let range = partitions(of: chunk, plan)
                var panel = DrawingPanel.unrolled(graph, plan: plan, partitions: range,
                                                  title: (title ?? "\(name) (\(counts))") + suffix(chunk, of: plan.layers.count))
                // Highlighted ids are the whole graph's; the slice numbers its nodes from its first partition.
                let offset = graph.partitions[range.lowerBound].start, end = graph.partitions[range.upperBound].start + graph.partitions[range.upperBound].count
                panel.highlight = Set(highlight.filter { $0 >= offset && $0 < end }.map { $0 - offset })
                return ([[panel]], nil)
            }
        }
    }

    static func figures(_ x: Value, encoding: String, title: String?, options: DrawingOptions, args: Arguments) throws -> [Figure] {
        if args.optional("highlight") != nil, !(x.typeName == "graph") {
            let what = x.typeName == "layers" ? "layer list (pick one layer: ls[0])" : x.typeName
            throw args.bad("highlight", "highlight: applies to a graph (g = unroll(net)), not to a \(what)")
        }
        switch x {
        case .native(let g as GraphObject):
            guard encoding == "unrolled" else {
                throw args.bad("encoding", "a graph is drawn as it is; encoding: applies to networks (got \(Display.quoted(encoding)))")
            }
            let highlight = try highlight(args, graph: g.graph)
            if !g.layerName.isEmpty {
                if args.optional("layers") != nil || args.optional("split") != nil {
                    throw args.bad(args.optional("layers") != nil ? "layers" : "split", "one layer's graph is drawn whole; layers: and split: apply to networks, unrolled graphs and layer lists")
                }
                let counts = "\(grouped(g.graph.nodeCount)) nodes, \(grouped(g.graph.edgeCount)) edges"
                let subtitle = g.encoding == "rolled-channel" ? channelSubtitle : rolledSubtitle
                var panel = DrawingPanel.layers([g.graph], title: title ?? "\(g.encoding) \(g.layerName) (\(counts))", subtitle: subtitle)
                panel.layerOrder = g.networkLayers
                panel.highlight = highlight
                return try checked(options: options, split: nil, layers: nil) { _ in [([[panel]], nil)] }
            }
            return try unrolledFigures(g.graph, plan: g.plan, name: g.encoding, highlight: highlight, title: title, options: options, args: args)
        case .native(let h as ImplicitGraphObject):
            // Drawn from its explicit form when that fits (as unroll would have chosen it).
            guard encoding == "unrolled" else {
                throw args.bad("encoding", "a graph is drawn as it is; encoding: applies to networks (got \(Display.quoted(encoding)))")
            }
            guard let graph = try h.materializedForDrawing() else { throw args.bad("x", h.edgeListNeeded(by: "draw")) }
            return try unrolledFigures(graph, plan: h.graph.plan, name: "MGE", highlight: try highlight(args, graph: h.graph),
                                       title: title, options: options, args: args)
        case .native(let ls as LayersObject):
            guard encoding == "unrolled" else {
                throw args.bad("encoding", "a layer list is drawn as it is; encoding: applies to networks (got \(Display.quoted(encoding)))")
            }
            let subtitle = ls.encoding == "rolled-channel" ? channelSubtitle : rolledSubtitle
            let selection = try layerSelection(args, count: ls.layers.count, what: "the list's layers")
            let split = try splitCount(args, layers: selection.count)
            let order = ls.layers.first?.networkLayers ?? []
            return try checked(options: options, split: split, layers: selection) { k in
                chunks(selection, into: k).map { chunk in
                    var panel = DrawingPanel.layers(ls.layers[chunk].map(\.graph),
                                                    title: (title ?? "\(ls.encoding) (\(ls.layers.count) layers)") + suffix(chunk, of: ls.layers.count),
                                                    subtitle: subtitle)
                    panel.layerOrder = order
                    return ([[panel]], nil)
                }
            }
        case .native(let net as NetworkObject):
            guard encodings.contains(encoding) else {
                let hint = closestName(to: encoding, among: encodings).map { " (did you mean \(Display.quoted($0))?)" } ?? ""
                throw args.bad("encoding", "expected \(encodings.map(Display.quoted).joined(separator: ", ")), got \(Display.quoted(encoding))\(hint)")
            }
            let name = net.network.architecture.name
            let entries = NetworkLayers.entries(net.network.architecture)
            let selection = try layerSelection(args, count: entries.count, what: "the network's layers")
            let split = try splitCount(args, layers: selection.count)
            // Each encoding is made once; the figures draw slices of it.
            let needsUnrolled = encoding == "unrolled" || encoding == "all"
            let plan = needsUnrolled ? try UnrollPlan(net.network.architecture) : nil
            let unrolledGraph = needsUnrolled ? try cancellable { try Kernels.unroll(net.network, compat: .paper) } : nil
            let rolledLayers = encoding == "rolled" || encoding == "all" ? try NetworkLayers.encode(net.network, channel: false) : nil
            let channelLayers = encoding == "rolled_channel" || encoding == "all" ? try NetworkLayers.encode(net.network, channel: true) : nil
            let order = entries.map(\.name)
            func unrolled(_ chunk: ClosedRange<Int>, _ panelTitle: String) throws -> DrawingPanel {
                guard let g = unrolledGraph, let plan else { throw RuntimeError("draw: internal error: no unrolled graph for encoding \(encoding)") }
                // The plan numbers the same layers in the same order as the network's layer list.
                let range = plan.layers.count == entries.count ? partitions(of: chunk, plan) : 0 ... g.partitions.count - 1
                return .unrolled(g, plan: plan, partitions: range, title: panelTitle)
            }
            func rolled(_ ls: LayersObject?, _ chunk: ClosedRange<Int>, _ panelTitle: String, channel: Bool) -> DrawingPanel {
                var panel = DrawingPanel.layers((ls?.layers[chunk] ?? []).map(\.graph), title: panelTitle, subtitle: channel ? channelSubtitle : rolledSubtitle)
                panel.layerOrder = order
                return panel
            }
            return try checked(options: options, split: split, layers: selection) { k in
                try chunks(selection, into: k).map { chunk in
                    let part = suffix(chunk, of: entries.count)
                    switch encoding {
                    case "unrolled": return ([[try unrolled(chunk, (title ?? "\(name): unrolled (MGE)") + part)]], nil)
                    case "rolled": return ([[rolled(rolledLayers, chunk, (title ?? "\(name): rolled") + part, channel: false)]], nil)
                    case "rolled_channel": return ([[rolled(channelLayers, chunk, (title ?? "\(name): rolled-channel") + part, channel: true)]], nil)
                    default:
                        let r = rolled(rolledLayers, chunk, "rolled", channel: false), rc = rolled(channelLayers, chunk, "rolled-channel", channel: true)
                        let u = try unrolled(chunk, "unrolled (MGE)")
                        // Few layers: the two rolled encodings share a row above the MGE; many: one row each.
                        let rows = chunk.count <= 8 ? [[r, rc], [u]] : [[r], [rc], [u]]
                        return (rows, (title ?? "\(name): three encodings") + part)
                    }
                }
            }
        default:
            throw args.bad("x", "graph, layers or network expected, got \(x.typeName)")
        }
    }
}

extension GraphObject: Summarizable {
    /// One row per partition (name, shape, size, edges in and out), then a total row.
    public func summary() throws -> Value {
        var rows: [Value] = graph.partitions.map { p in
            let inEdges = graph.inOffsets[p.start + p.count] - graph.inOffsets[p.start]
            let outEdges = graph.outOffsets[p.start + p.count] - graph.outOffsets[p.start]
            return .record(Record([("partition", .string(p.name)), ("shape", .string(Tensor.describe(p.shape))),
                                   ("nodes", .int(p.count)), ("in_edges", .int(inEdges)), ("out_edges", .int(outEdges))]))
        }
        rows.append(.record(Record([("partition", .string("total")), ("shape", .string("")), ("nodes", .int(graph.nodeCount)),
                                    ("in_edges", .int(graph.edgeCount)), ("out_edges", .int(graph.edgeCount))])))
        return .list(rows)
    }
}

extension LayersObject: Summarizable {
    /// One row per layer (id, name, kind, left and right sizes, edges, density), then a total row.
    public func summary() throws -> Value {
        var totalEdges = 0, totalPossible = 0
        var rows: [Value] = []
        for (i, layer) in layers.enumerated() {
            let parts = layer.graph.partitions
            let left = parts.first?.count ?? 0, right = parts.count > 1 ? parts[1].count : 0
            let possible = left * right
            totalEdges += layer.graph.edgeCount; totalPossible += possible
            rows.append(.record(Record([
                ("layer_id", .int(i < layerIds.count ? layerIds[i] : i)), ("layer", .string(layer.layerName)),
                ("kind", .string(layer.layerKind)), ("left", .int(left)), ("right", .int(right)),
                ("edges", .int(layer.graph.edgeCount)), ("density", GraphSummary.density(layer.graph.edgeCount, possible)),
            ])))
        }
        rows.append(.record(Record([("layer", .string("total")), ("edges", .int(totalEdges)),
                                    ("density", GraphSummary.density(totalEdges, totalPossible))])))
        return .list(rows)
    }
}

enum GraphSummary {
    /// edges / possible, rounded to 4 decimals; none when nothing is possible.
    static func density(_ edges: Int, _ possible: Int) -> Value {
        guard possible > 0 else { return .none }
        return .float((Double(edges) / Double(possible) * 10000).rounded() / 10000)
    }
}
