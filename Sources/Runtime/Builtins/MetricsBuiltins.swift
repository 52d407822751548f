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
                            Param("only", .optional(.list), default: Value.none),
                            Param("exact_limit", .optional(.int), default: Value.none)],
            returns: "record",
            summary: "The topological metrics of an unrolled graph (sinks, sources, removable edges, 1- and 2-hop neighbourhoods, motifs, strength, k-core, cut edges and nodes, components, spectral gap and radius), or one record per layer of a rolled encoding. motifs: \"auto\" (exact when the census work Σ min(d_u, d_v) over the edges is at most exact_limit, default 500000000, else the RAND-ESU estimate on ⌊0.001·n⌋ roots), \"exact\" or \"estimate\" (RAND-ESU on sample: a count or a list of root ids); motifs_estimated (true/false) and motifs_sample (the roots of an estimate, none when exact) say which it is. only: the fields to compute. The record's compat field names the mode of every stage that made it. The paper's published table comes from its reference implementation: compat: \"reference\" on prune, unroll and topometrics reproduces its mask-only columns; its weighted columns (strength, spectral gap and radius) most likely come from trained weights and are not comparable with a fresh net (compare_to_paper, docs/results.md).",
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
            summary: "A topometrics record in the paper's dataset layout: nodes and edges, then the counts divided by the node or edge count as the paper does under the paper's column names (motifs_estimated and motifs_sample beside motif), compat, then the record's other fields (accuracy, …) as they are.",
            example: "normalized(topometrics(g))") { args in
        .record(try MetricsBinding.paperRecord(try args.record("m"), args: args, name: "m"))
    },
    Builtin("append_csv", [Param("path", .string), Param("m", .record),
                           Param("pruning", .any, default: Value.none), Param("sparsity", .optional(.number), default: Value.none),
                           Param("model", .any, default: Value.none), Param("dataset", .any, default: Value.none),
                           Param("seed", .optional(.int), default: Value.none), Param("accuracy", .optional(.number), default: Value.none),
                           Param("compat", .optional(.string), default: Value.none),
                           Param("normalized", .bool, default: .bool(true))],
            returns: "int",
            summary: "Appends one row to a CSV in the paper's dataset layout (accuracy, pruning, sparsity, model, dataset, seed, nodes, edges, the normalised metrics with motifs_estimated and motifs_sample beside motif, then compat: the encoding mode of the row), then m's other fields in columns of their own; normalized: false writes mge's raw counts under mge's field names instead (nodes, edges, every topometric with motifs_estimated and motifs_sample beside motifs, compat), for a file of raw rows only (a field named like a run column, e.g. m.accuracy, fills that column unless the argument is given). Model and dataset are spelled as the paper does (a network or \"resnet20\" → Resnet-20, cifar10 → CIFAR-10); sparsity must be in [0, 1), accuracy in [0, 1], seed an int ≥ 0. compat defaults to the mode recorded in m by topometrics. Safe with several processes appending to one file (whole rows under a lock). Returns the number of rows in the file.",
            example: "append_csv(\"sweep.csv\", topometrics(g), pruning: erk, sparsity: 0.98, model: net, dataset: cifar10, seed: 0)") { args in
        let path = try filePath(args, "path", extensions: ["csv"], what: "a CSV file")
        let record = try args.record("m")
        let normalizing = try args.bool("normalized")
        if !normalizing, let column = MetricsBinding.paperOnlyColumn(in: record) {
            throw args.bad("m", "normalized: false writes raw counts, but m is already normalised (it has the paper's column '\(column)'); pass topometrics' record itself")
        }
        guard let layout = try MetricsBinding.paperLayout(record, normalized: normalizing, blame: { args.bad("m", $0) }) else {
            throw args.bad("m", "a topometrics record with nodes and edges expected (they normalise the counts)")
        }
        // The run's columns: from the arguments, else from fields of m with those names.
        let fromRecord = Dictionary(layout.extras.filter { PaperTable.runColumns.contains($0.name) }, uniquingKeysWith: { a, _ in a })
        func given(_ column: String) -> Value? {
            if let v = args.optional(column) { return v }
            if let v = fromRecord[column], v != .none { return v }
            return nil
        }
        for (column, v) in fromRecord where args.optional(column) != nil && v != .none && v != args[column] {
            throw args.bad(column, "m has \(column): \(Display.inline(v)) and the argument says \(Display.inline(args[column])); give one of them")
        }
        var run = PaperTable.Run()
        run.pruning = try given("pruning").map { try MetricsBinding.label($0, "pruning", args) }
        run.model = try given("model").map { try MetricsBinding.label($0, "model", args) }
        run.dataset = try given("dataset").map { try MetricsBinding.label($0, "dataset", args) }
        for column in ["sparsity", "accuracy"] {
            if let v = given(column), v.asDouble == nil { throw args.bad(column, "number or none expected, got \(v.typeName)") }
        }
        run.sparsity = given("sparsity")?.asDouble
        run.accuracy = given("accuracy")?.asDouble
        if let v = given("seed") {
            guard case .int(let seed) = v else { throw args.bad("seed", "int or none expected, got \(v.typeName)") }
            run.seed = seed
        }
        if case .string(let c)? = args.optional("compat") {
            run.compat = c
        } else if case .string(let c)? = record["compat"] {
            run.compat = c
        }
        do { run = try PaperTable.validated(run) } catch let invalid as PaperTable.Invalid {
            throw args.bad(invalid.column, invalid.reason)
        }
        var numbers: [(column: String, value: Double)] = []
        var markers: [String: String] = [:]
        for (name, value) in layout.metrics.fields where name != PaperTable.modeColumn {
            // Raw counts are written as the language prints them (an int stays an int).
            if !normalizing, value.asDouble != nil { markers[name] = MetricsBinding.cell(value); continue }
            switch value {
            case .int(let i): numbers.append((name, Double(i)))
            case .float(let d): numbers.append((name, d))
            case .bool: markers[name] = MetricsBinding.cell(value)
            default: continue
            }
        }
        var row = try PaperTable.row(run, metrics: numbers)
        for (name, cell) in markers { row[name] = cell }
        // m's other fields, in columns after the paper's.
        var extraColumns: [String] = []
        for (name, value) in layout.extras where !PaperTable.runColumns.contains(name) {
            guard let cell = MetricsBinding.csvCell(value) else {
                throw args.bad("m", "field '\(name)' is a \(value.typeName); a CSV cell holds a number, string, bool or none")
            }
            extraColumns.append(name)
            row[name] = cell
        }
        let columns = normalizing ? PaperTable.columns : MetricsBinding.rawColumns
        let rows = try ResultsCSV.append(path: path, columns: columns + extraColumns, row: row, countRows: true)
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
    /// A metric of `MetricTable` not named here gets a group of its own.
    static let groups: [[String]] = {
        let named: [[String]] = [
            ["sink_nodes", "source_nodes", "disconnected_nodes", "removable_out_edges", "removable_in_edges",
             "one_hop", "two_hop", "strength", "k_core", "components", "mean_component_size"],
            ["cut_edges", "cut_nodes"], ["motifs"], ["spectral_gap"], ["spectral_radius"],
        ]
        let grouped = Set(named.joined())
        return named + Topometrics.fieldNames.filter { $0 != "nodes" && $0 != "edges" && !grouped.contains($0) }.map { [$0] }
    }()

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
        var motifsSample: Int?, notes: [String] = []
        for fields in work {
            let m = try cancellable { try compute(compat, mode, Set(fields)) }
            for (name, value) in m.orderedFields { values[name] = value }
            if fields.contains("motifs") { motifsSample = m.motifsSample }
            progress.advance()
            notes += m.notes
        }
        // A value short of its usual accuracy is never shown silently.
        progress.finish()
        for note in notes { args.interpreter.write("warning: \(note)\n") }
        var record = Record()
        for entry in MetricTable.all where entry.name == "nodes" || entry.name == "edges" || wanted?.contains(entry.name) ?? true {
            record[entry.name] = values[entry.name].map(value) ?? Value.none
            // Beside an estimable metric: whether this value is an estimate, and of how many roots.
            if let estimated = entry.estimatedField, let sample = entry.sampleField {
                let isEstimate: Bool
                if case .double? = values[entry.name] { isEstimate = true } else { isEstimate = false }
                record[estimated] = .bool(isEstimate)
                record[sample] = isEstimate ? motifsSample.map(Value.int) ?? Value.none : Value.none
            }
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
        for name in ["sample", "exact_limit"] where args.optional(name) != nil {
            throw args.bad(name, "per-layer records have no motifs, so no motif \(name == "sample" ? "sample" : "limit") applies")
        }
        let motifs = try args.string("motifs")
        guard motifs == "auto" else {
            throw args.bad("motifs", "per-layer records have no motifs (got \(Display.quoted(motifs)))")
        }
        let wanted = try onlyFields(args, known: LayerTopometrics.fieldNames)
        let progress = ProgressBar(label: "topometrics", total: layers.count, unit: "layers")
        defer { progress.finish() }
        var rows: [Value] = [], notes: [String] = []
        for (i, layer) in layers.enumerated() {
            let m = try cancellable {
                layerTopometrics(layer.graph, layerId: i < ids.count ? ids[i] : -1, name: layer.layerName, kind: layer.layerKind)
            }
            notes += m.notes
            var record = Record()
            for (name, v) in m.orderedFields {
                guard name == "layer_id" || name == "layer_name" || wanted?.contains(name) ?? true else { continue }
                record[name] = name == "layer_id" && i >= ids.count ? Value.none : v.map(value) ?? Value.none
                if name == "kind", layer.layerKind.isEmpty { record[name] = Value.none }
            }
            rows.append(.record(record))
            progress.advance()
        }
        progress.finish()
        for note in notes { args.interpreter.write("warning: \(note)\n") }
        return rows
    }

    static func motifMode(_ args: Arguments, nodeCount n: Int) throws -> MotifMode {
        let text = try args.string("motifs")
        let modes = ["auto", "exact", "estimate"]
        guard modes.contains(text) else {
            let hint = closestName(to: text, among: modes).map { " (did you mean \(Display.quoted($0))?)" } ?? ""
            throw args.bad("motifs", "expected \"auto\", \"exact\" or \"estimate\", got \(Display.quoted(text))\(hint)")
        }
        if let limit = args.optional("exact_limit") {
            guard text == "auto" else { throw args.bad("exact_limit", "the limit applies to motifs: \"auto\", not \(Display.quoted(text))") }
            guard case .int(let l) = limit, l >= 0 else { throw args.bad("exact_limit", "expected a census work ≥ 0, got \(Display.plain(limit))") }
            guard args.optional("sample") == nil else { throw args.bad("sample", "a sample applies to motifs: \"estimate\", not \"auto\"") }
            return .auto(maxCensusWork: l)
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

    /// A record in the paper's layout (`paperLayout`), its other fields after the metrics.
    static func paperRecord(_ r: Record, args: Arguments, name: String) throws -> Record {
        try paperRecord(r) { args.bad(name, $0) }
    }

    /// `paperRecord` with errors made by `blame` (a sweep has no argument to blame).
    static func paperRecord(_ r: Record, blame: (String) -> RuntimeError) throws -> Record {
        guard let layout = try paperLayout(r, blame: blame) else {
            throw blame("a topometrics record with nodes and edges expected (they normalise the counts)")
        }
        var out = layout.metrics
        for (name, v) in layout.extras { out[name] = v }
        return out
    }

    /// A record's topometrics in one layout whatever else it holds, and its other fields.
    struct PaperLayout {
        /// nodes, edges, the metrics (paper columns in the paper's order when normalised, mge's
        /// field names in SPEC order when raw), each estimable one followed by its markers
        /// (motifs_estimated, motifs_sample), then compat when the record has it.
        var metrics: Record
        /// The record's other fields, in its order (accuracy, a label, …).
        var extras: [(name: String, value: Value)]
    }

    /// `append_csv(..., normalized: false)`'s columns: the run's, then every topometrics field
    /// under mge's name with its markers (nodes and edges first), then compat.
    static var rawColumns: [String] {
        PaperTable.runColumns + PaperTable.sizeColumns
            + MetricTable.recordFields.filter { !PaperTable.sizeColumns.contains($0) } + [PaperTable.modeColumn]
    }

    /// A field of `r` that only a normalised record has (a paper column such as `k-core`), if any.
    static func paperOnlyColumn(in r: Record) -> String? {
        let paperOnly = Set(PaperTable.metricColumns.map(\.column)).subtracting(Topometrics.fieldNames)
        return r.names.first { paperOnly.contains($0) }
    }

    /// Splits `r` into its topometrics and its other fields. A topometrics record (mge's field
    /// names) is normalised as the paper does unless `normalized` is false; a record already in
    /// the paper's columns (from `normalized`) is kept as it is. Nil when the record holds no
    /// topometrics at all (not even nodes and edges).
    static func paperLayout(_ r: Record, normalized: Bool = true, blame: (String) -> RuntimeError) throws -> PaperLayout? {
        let markers = Set(MetricTable.markerFields)
        let rawNames = Set(Topometrics.fieldNames)
        let paperOnly = Set(PaperTable.metricColumns.map(\.column)).subtracting(rawNames)
        let alreadyPaper = r.names.contains { paperOnly.contains($0) }
        let metricNames = alreadyPaper ? Set(PaperTable.sizeColumns + PaperTable.metricColumns.map(\.column)) : rawNames
        func isMetric(_ name: String) -> Bool { metricNames.contains(name) || markers.contains(name) || name == PaperTable.modeColumn }

        let metricFields = r.fields.filter { metricNames.contains($0.0) }
        if metricFields.isEmpty { return nil }
        // Fields besides the metrics; one a typo away from a metric or run column is refused, as
        // it would otherwise land in a column of its own.
        let known = Topometrics.fieldNames + PaperTable.columns
        var extras: [(name: String, value: Value)] = []
        for (field, v) in r.fields where !isMetric(field) {
            if !PaperTable.runColumns.contains(field), let near = closestName(to: field, among: known) {
                throw blame("'\(field)' is not a topometric nor a column of the paper's table (did you mean '\(near)'?)")
            }
            extras.append((field, v))
        }
        var numbers: [String: Double] = [:]
        for (field, v) in metricFields {
            switch v {
            case .int(let i): numbers[field] = Double(i)
            case .float(let d): numbers[field] = d
            case .none: continue
            default: throw blame("field '\(field)' should be a number, got \(v.typeName)")
            }
        }
        let normalizing = normalized && !alreadyPaper
        if normalizing, numbers["nodes"] == nil || numbers["edges"] == nil {
            throw blame("a topometrics record with nodes and edges expected (they normalise the counts)")
        }
        var out = Record()
        for size in PaperTable.sizeColumns where r[size] != nil { out[size] = r[size] }
        func addMarkers(after metric: String) {
            guard let entry = MetricTable.entry(metric), let estimated = entry.estimatedField, let sample = entry.sampleField else { return }
            // A record without the markers (made by hand, or before mge wrote them) gets none: unknown.
            out[estimated] = r[estimated] ?? Value.none
            out[sample] = r[sample] ?? Value.none
        }
        if alreadyPaper {
            for (field, column, _) in PaperTable.metricColumns where r[column] != nil {
                out[column] = r[column]
                addMarkers(after: field)
            }
        } else if normalizing {
            let values = Dictionary(uniqueKeysWithValues: PaperTable.normalized(numbers))
            for (field, column, _) in PaperTable.metricColumns where r[field] != nil {
                guard let v = values[column] else { out[column] = Value.none; addMarkers(after: field); continue }
                let integral = PaperTable.integerColumns.contains(column) && v.rounded() == v && abs(v) < 9e15
                out[column] = v.isNaN ? Value.none : integral ? .int(Int(v)) : .float(v)
                addMarkers(after: field)
            }
        } else {
            for entry in MetricTable.all where entry.name != "nodes" && entry.name != "edges" && r[entry.name] != nil {
                out[entry.name] = r[entry.name]
                addMarkers(after: entry.name)
            }
        }
        if let mode = r[PaperTable.modeColumn] { out[PaperTable.modeColumn] = mode }
        return PaperLayout(metrics: out, extras: extras)
    }

    /// A record field as a CSV cell: numbers, bools and none as `cell` writes them, strings on
    /// one line, a pruner, network or dataset by name; nil for values a cell cannot hold.
    static func csvCell(_ v: Value) -> String? {
        switch v {
        case .list, .record, .function, .builtin: return nil
        case .native: return SweepRun.keyCell(v)
        case .string(let s): return s.replacingOccurrences(of: "\n", with: " ")
        default: return cell(v)
        }
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
