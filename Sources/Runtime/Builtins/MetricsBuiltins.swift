import Foundation
import Kernels
import Lang

// Topological metrics (SPEC §4) in the language: `topometrics`, `ramanujan`, and the paper's
// dataset layout (`normalized`, `append_csv`).

let metricsBuiltins: [Builtin] = [
    Builtin("topometrics", [Param("x", .oneOf([.native("graph"), .native("layers")])),
                            Param("compat", .string, default: .string("paper")),
                            Param("motifs", .string, default: .string("auto")),
                            Param("sample", .optional(.oneOf([.list, .int])), default: Value.none),
                            Param("only", .optional(.list), default: Value.none)],
            returns: "record",
            summary: "The topological metrics of an unrolled graph (sinks, sources, removable edges, 1- and 2-hop neighbourhoods, motifs, strength, k-core, cut edges and nodes, components, spectral gap and radius), or one record per layer of a rolled encoding. motifs: \"auto\" (exact when affordable), \"exact\" or \"estimate\" (RAND-ESU on sample: a count or a list of root ids); only: the fields to compute. The record's compat field names the mode of every stage that made it. The paper's published table comes from its reference implementation: compat: \"reference\" on prune, unroll and topometrics reproduces its mask-only columns; its weighted columns (strength, spectral gap and radius) most likely come from trained weights and are not comparable with a fresh net (compare_to_paper, docs/results.md).",
            example: "m = topometrics(g);  topometrics(g, only: [\"components\", \"spectral_gap\"]);  topometrics(rolled(net))") { args in
        let start = DispatchTime.now().uptimeNanoseconds
        let result: Value
        switch args["x"] {
        case .native(let ls as LayersObject):
            result = .list(try MetricsBinding.layerRecords(ls.layers, ids: ls.layerIds, args: args))
        case .native(let g as GraphObject) where !g.layerName.isEmpty:
            result = .list(try MetricsBinding.layerRecords([g], ids: [], args: args))
        case .native(let g as GraphObject):
            result = .record(try MetricsBinding.graphRecord(g, args: args))
        case .native(let g as ImplicitGraphObject):
            result = .record(try MetricsBinding.graphRecord(nodes: g.graph.nodeCount, edges: g.graph.edgeCount, modes: g.modes, args: args) {
                try topometrics(g.graph, compat: $0, motifs: $1, only: $2)
            })
        default:
            throw args.bad("x", "graph or layers expected, got \(args["x"].typeName)")
        }
        let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        if seconds >= 0.1 { args.interpreter.writeError("(topometrics computed in \(formatDuration(seconds)))\n") }
        return result
    },
    Builtin("ramanujan", [Param("x", .oneOf([.native("layers"), .native("graph")]))], returns: "list",
            summary: "Ramanujan metrics of each bipartite layer (zero-degree nodes dropped): delta_r, the weighted spectral gap, and their iterative versions over the left-degree classes; none where a layer has no value.",
            example: "ramanujan(rolled(net))") { args in
        let layers: [GraphObject], ids: [Int]
        switch args["x"] {
        case .native(let ls as LayersObject): (layers, ids) = (ls.layers, ls.layerIds)
        case .native(let g as GraphObject) where !g.layerName.isEmpty: (layers, ids) = ([g], [])
        default: throw args.bad("x", "the layers of rolled(net) or rolled_channel(net), or one of them, expected; an unrolled graph has no bipartite layers")
        }
        let progress = ProgressBar(label: "ramanujan", total: layers.count, unit: "layers")
        defer { progress.finish() }
        var rows: [Value] = []
        for (i, layer) in layers.enumerated() {
            let left = layer.graph.partitions.first?.count ?? 0
            let r = try cancellable { ramanujanMetrics(layer.graph, leftCount: left) }
            rows.append(.record(Record([
                ("layer_id", i < ids.count ? Value.int(ids[i]) : Value.none), ("layer_name", .string(layer.layerName)),
                ("delta_r", MetricsBinding.value(r.deltaR)), ("spectral_gap", MetricsBinding.value(r.weightedGap)),
                ("iterative_spectral_gap", MetricsBinding.value(r.iterativeSpectralGap)),
                ("iterative_delta_r", MetricsBinding.value(r.iterativeDeltaR)),
            ])))
            progress.advance()
        }
        return .list(rows)
    },
    Builtin("normalized", [Param("m", .record)], returns: "record",
            summary: "A topometrics record in the paper's dataset layout: counts divided by the node or edge count as the paper does, under the paper's column names, then nodes and edges.",
            example: "normalized(topometrics(g))") { args in
        .record(try MetricsBinding.paperRecord(try args.record("m"), args: args, name: "m"))
    },
    Builtin("append_csv", [Param("path", .string), Param("m", .record),
                           Param("pruning", .any, default: Value.none), Param("sparsity", .optional(.number), default: Value.none),
                           Param("model", .any, default: Value.none), Param("dataset", .any, default: Value.none),
                           Param("seed", .optional(.int), default: Value.none), Param("accuracy", .optional(.number), default: Value.none),
                           Param("compat", .optional(.string), default: Value.none)],
            returns: "int",
            summary: "Appends one row to a CSV in the paper's dataset layout (accuracy, pruning, sparsity, model, dataset, seed, nodes, edges, the normalised metrics, then compat: the encoding mode of the row). Model and dataset are spelled as the paper does (a network or \"resnet20\" → Resnet-20, cifar10 → CIFAR-10); sparsity must be in [0, 1), accuracy in [0, 1], seed an int ≥ 0. compat defaults to the mode recorded in m by topometrics. Safe with several processes appending to one file (whole rows under a lock). Returns the number of rows in the file.",
            example: "append_csv(\"sweep.csv\", topometrics(g), pruning: erk, sparsity: 0.98, model: net, dataset: cifar10, seed: 0)") { args in
        let path = try filePath(args, "path", extensions: ["csv"], what: "a CSV file")
        let given = try args.record("m")
        var run = PaperTable.Run()
        run.pruning = try args.optional("pruning").map { try MetricsBinding.label($0, "pruning", args) }
        run.model = try args.optional("model").map { try MetricsBinding.label($0, "model", args) }
        run.dataset = try args.optional("dataset").map { try MetricsBinding.label($0, "dataset", args) }
        run.sparsity = args.optional("sparsity")?.asDouble
        run.accuracy = args.optional("accuracy")?.asDouble
        if case .int(let seed)? = args.optional("seed") { run.seed = seed }
        if case .string(let c)? = args.optional("compat") {
            run.compat = c
        } else if case .string(let c)? = given["compat"] {
            run.compat = c
        }
        do { run = try PaperTable.validated(run) } catch let invalid as PaperTable.Invalid {
            throw args.bad(invalid.column, invalid.reason)
        }
        let metrics = try MetricsBinding.paperRecord(given, args: args, name: "m")
        var numbers: [(column: String, value: Double)] = []
        for (name, value) in metrics.fields {
            switch value {
            case .int(let i): numbers.append((name, Double(i)))
            case .float(let d): numbers.append((name, d))
            default: continue
            }
        }
        let row = try PaperTable.row(run, metrics: numbers)
        let rows = try ResultsCSV.append(path: path, columns: PaperTable.columns, row: row, countRows: true)
        return .int(rows ?? 0)
    },
    Builtin("compare_to_paper", [Param("m", .record), Param("pruning", .any), Param("sparsity", .number),
                                 Param("model", .any), Param("dataset", .any, default: .string("cifar10")),
                                 Param("seed", .optional(.int), default: Value.none)],
            returns: "list",
            summary: "Puts a topometrics record beside the paper's published rows of the same configuration (its unrolled table, shipped as data/paper/unrolled.csv.zst): one row per column with mge's value, the published value of each seed, and whether they match. The published table was computed by the reference implementation, so its mask-only columns are reproduced with compat: \"reference\" on prune, unroll and topometrics (and the same seed); its weighted columns (avg_node_strength, spectral_gap, spectral_radius) come from trained weights and are not comparable with a freshly initialised net.",
            example: "net = resnet20(); prune(net, erk, 0.9, compat: \"reference\");  m = topometrics(unroll(net, compat: \"reference\"), compat: \"reference\");  compare_to_paper(m, erk, 0.9, net, seed: 0)") { args in
        try PaperComparison.table(args)
    },
]

enum MetricsBinding {
    /// Whole-graph metrics computed in groups (each on a worker thread, Ctrl-C checked between
    /// and during groups, a progress bar on a terminal), returned in SPEC order.
    static let groups: [[String]] = [
        ["sink_nodes", "source_nodes", "disconnected_nodes", "removable_out_edges", "removable_in_edges",
         "one_hop", "two_hop", "strength", "k_core", "components", "mean_component_size"],
        ["cut_edges", "cut_nodes"], ["motifs"], ["spectral_gap"], ["spectral_radius"],
    ]

    static func graphRecord(_ graphObject: GraphObject, args: Arguments) throws -> Record {
        let graph = graphObject.graph
        return try graphRecord(nodes: graph.nodeCount, edges: graph.edgeCount, modes: graphObject.modes, args: args) {
            try topometrics(graph, compat: $0, motifs: $1, only: $2)
        }
    }

    /// The record of either MGE form: `compute` is the form's `topometrics`.
    static func graphRecord(nodes: Int, edges: Int, modes: [(stage: String, compat: String)], args: Arguments,
                            compute: @escaping (MetricsCompat, MotifMode, Set<String>) throws -> Topometrics) throws -> Record {
        let compatText = try args.string("compat")
        guard let compat = MetricsCompat(rawValue: compatText) else {
            throw args.bad("compat", "expected \"paper\" or \"reference\", got \(Display.quoted(compatText))")
        }
        let mode = try motifMode(args, nodeCount: nodes)
        let wanted = try onlyFields(args, known: Topometrics.fieldNames)
        let work = groups.map { $0.filter { wanted?.contains($0) ?? true } }.filter { !$0.isEmpty }
        let progress = ProgressBar(label: "topometrics", total: work.count, unit: "steps")
        progress.showWhileWaiting()  // the first group can take minutes on a dense net
        defer { progress.finish() }
        var values: [String: MetricValue] = ["nodes": .int(nodes), "edges": .int(edges)]
        for fields in work {
            let m = try cancellable { try compute(compat, mode, Set(fields)) }
            for (name, value) in m.orderedFields { values[name] = value }
            progress.advance()
        }
        var record = Record()
        for name in Topometrics.fieldNames where name == "nodes" || name == "edges" || wanted?.contains(name) ?? true {
            record[name] = values[name].map(value) ?? Value.none
        }
        // Known only for a graph unrolled in this session (a loaded graph's origin is not recorded).
        let stages = MetricsBinding.mode(of: modes, metrics: compat)
        if case .string = stages { record[PaperTable.modeColumn] = stages }
        return record
    }

    /// The encoding mode of a whole-graph record: "paper" or "reference" when every stage that
    /// produced it (an ER prune, unroll, topometrics) used that mode, "mixed: …" naming each
    /// stage otherwise, none when the graph's origin is unknown (loaded from a file).
    static func mode(of modes: [(stage: String, compat: String)], metrics: MetricsCompat) -> Value {
        guard !modes.isEmpty else { return .none }
        let stages = modes + [("topometrics", metrics.rawValue)]
        let distinct = Set(stages.map(\.compat))
        if distinct.count == 1, let only = distinct.first { return .string(only) }
        return .string("mixed: " + stages.map { "\($0.stage)=\($0.compat)" }.joined(separator: ", "))
    }

    static func layerRecords(_ layers: [GraphObject], ids: [Int], args: Arguments) throws -> [Value] {
        let compatText = try args.string("compat")
        guard MetricsCompat(rawValue: compatText) != nil else {
            throw args.bad("compat", "expected \"paper\" or \"reference\", got \(Display.quoted(compatText))")
        }
        if args.optional("sample") != nil {
            throw args.bad("sample", "per-layer records have no motifs, so no motif sample applies")
        }
        let motifs = try args.string("motifs")
        guard motifs == "auto" else {
            throw args.bad("motifs", "per-layer records have no motifs (got \(Display.quoted(motifs)))")
        }
        let wanted = try onlyFields(args, known: LayerTopometrics.fieldNames)
        let progress = ProgressBar(label: "topometrics", total: layers.count, unit: "layers")
        defer { progress.finish() }
        var rows: [Value] = []
        for (i, layer) in layers.enumerated() {
            let m = try cancellable {
                layerTopometrics(layer.graph, layerId: i < ids.count ? ids[i] : -1, name: layer.layerName, kind: layer.layerKind)
            }
            var record = Record()
            for (name, v) in m.orderedFields {
                guard name == "layer_id" || name == "layer_name" || wanted?.contains(name) ?? true else { continue }
                record[name] = name == "layer_id" && i >= ids.count ? Value.none : v.map(value) ?? Value.none
                if name == "kind", layer.layerKind.isEmpty { record[name] = Value.none }
            }
            rows.append(.record(record))
            progress.advance()
        }
        return rows
    }

    static func motifMode(_ args: Arguments, nodeCount n: Int) throws -> MotifMode {
        let text = try args.string("motifs")
        let modes = ["auto", "exact", "estimate"]
        guard modes.contains(text) else {
            let hint = closestName(to: text, among: modes).map { " (did you mean \(Display.quoted($0))?)" } ?? ""
            throw args.bad("motifs", "expected \"auto\", \"exact\" or \"estimate\", got \(Display.quoted(text))\(hint)")
        }
        guard let sample = args.optional("sample") else {
            switch text {
            case "exact": return .exact
            case "estimate": return .estimate(sample: .reference(seed: 0))
            default: return MotifMode.defaultMode
            }
        }
        guard text != "exact" else { throw args.bad("sample", "a sample applies to motifs: \"estimate\", not \"exact\"") }
        switch sample {
        case .int(let count):
            guard count >= 1, count <= max(n, 1) else { throw args.bad("sample", "a sample of \(count) roots; expected 1 to \(n)") }
            return .estimate(sample: .count(count, seed: 0))
        case .list(let items):
            guard !items.isEmpty else { throw args.bad("sample", "empty list of root ids") }
            var roots: [Int] = []
            for item in items {
                guard case .int(let id) = item else { throw args.bad("sample", "root ids must be ints, got \(item.typeName)") }
                guard id >= 0, id < n else { throw args.bad("sample", "root id \(id) is not a node (the graph has \(n) nodes, ids 0 to \(n - 1))") }
                roots.append(id)
            }
            return .estimate(sample: .roots(roots))
        default:
            throw args.bad("sample", "int or list of ints expected, got \(sample.typeName)")
        }
    }

    /// The names of `only:`, checked against `known` (nil: every field).
    static func onlyFields(_ args: Arguments, known: [String]) throws -> Set<String>? {
        guard case .list(let items)? = args.optional("only") else { return nil }
        var names = Set<String>()
        for item in items {
            guard case .string(let name) = item else { throw args.bad("only", "field names must be strings, got \(item.typeName)") }
            guard known.contains(name) else {
                let hint = closestName(to: name, among: known).map { " (did you mean '\($0)'?)" } ?? ""
                throw args.bad("only", "unknown metric '\(name)'\(hint)")
            }
            names.insert(name)
        }
        return names
    }

    static func value(_ v: MetricValue) -> Value {
        switch v {
        case .int(let i): return .int(i)
        case .double(let d): return d.isNaN ? .none : .float(d)
        case .string(let s): return .string(s)
        }
    }

    static func value(_ d: Double?) -> Value {
        guard let d, !d.isNaN else { return .none }
        return .float(d)
    }

    /// A record in the paper's layout: a topometrics record is normalised, a record already
    /// in paper columns is checked and kept.
    static func paperRecord(_ r: Record, args: Arguments, name: String) throws -> Record {
        try paperRecord(r) { args.bad(name, $0) }
    }

    /// `paperRecord` with errors made by `blame` (a sweep has no argument to blame).
    static func paperRecord(_ r: Record, blame: (String) -> RuntimeError) throws -> Record {
        let raw = Set(Topometrics.fieldNames), paper = Set(PaperTable.columns)
        if r.names.allSatisfy({ paper.contains($0) }), r.names.contains(where: { !raw.contains($0) && $0 != PaperTable.modeColumn }) {
            var kept = Record()
            for (field, v) in r.fields where !PaperTable.runColumns.contains(field) && field != PaperTable.modeColumn { kept[field] = v }
            return kept
        }
        var numbers: [String: Double] = [:]
        for (field, v) in r.fields where field != PaperTable.modeColumn {
            guard raw.contains(field) else {
                let hint = closestName(to: field, among: Topometrics.fieldNames + PaperTable.columns).map { " (did you mean '\($0)'?)" } ?? ""
                throw blame("'\(field)' is not a topometric nor a column of the paper's table\(hint)")
            }
            switch v {
            case .int(let i): numbers[field] = Double(i)
            case .float(let d): numbers[field] = d
            case .none: continue
            default: throw blame("field '\(field)' should be a number, got \(v.typeName)")
            }
        }
        guard let n = numbers["nodes"], let m = numbers["edges"] else {
            throw blame("a topometrics record with nodes and edges expected (they normalise the counts)")
        }
        var out = Record()
        for (column, v) in PaperTable.normalized(numbers) {
            let integral = PaperTable.integerColumns.contains(column) && v.rounded() == v && abs(v) < 9e15
            out[column] = v.isNaN ? Value.none : integral ? .int(Int(v)) : .float(v)
        }
        out["nodes"] = .int(Int(n))
        out["edges"] = .int(Int(m))
        if let mode = r[PaperTable.modeColumn] { out[PaperTable.modeColumn] = mode }
        return out
    }

    /// A CSV cell: ints and floats as the language prints them, none as an empty cell.
    static func cell(_ v: Value) -> String {
        switch v {
        case .none: return ""
        case .float(let d) where d.isNaN: return ""
        default: return Display.plain(v)
        }
    }

    /// pruning/model/dataset: a string, or the object it names (a pruner, a network, a
    /// dataset, or a dataset function such as `cifar10`).
    static func label(_ v: Value, _ name: String, _ args: Arguments) throws -> String {
        switch v {
        case .string(let s): return s
        case .native(let p as PrunerObject): return p.pruner.name
        case .native(let n as NetworkObject): return n.modelName
        case .native(let d as DatasetObject):
            // "CIFAR-10 train" names the split too; the table wants the dataset.
            return PaperTable.datasetLabel(String(d.dataset.name.split(separator: " ").first ?? "")) ?? d.dataset.name
        case .builtin(let b) where PaperTable.datasetLabel(b.name) != nil: return b.name
        default: throw args.bad(name, "string, pruner, network, dataset or dataset function expected, got \(v.typeName)")
        }
    }
}
