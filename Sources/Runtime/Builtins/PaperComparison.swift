import Foundation
import Kernels

// `compare_to_paper`: a computed row beside the paper's published rows (PublishedTable).

enum PaperComparison {
    /// One row per column of the paper's table that `m` has: mge's value, each seed's
    /// published value (`seed_0`…), and `match` against the published row of the same seed.
    static func table(_ args: Arguments) throws -> Value {
        let given = try args.record("m")
        let metrics = try MetricsBinding.paperRecord(given, args: args, name: "m")
        let pruning = try MetricsBinding.label(args["pruning"], "pruning", args)
        let model = try MetricsBinding.label(args["model"], "model", args)
        let dataset = try MetricsBinding.label(args["dataset"], "dataset", args)
        guard let sparsity = args["sparsity"].asDouble, sparsity >= 0, sparsity < 1 else {
            throw args.bad("sparsity", "expected a fraction in [0, 1), got \(Display.plain(args["sparsity"]))")
        }
        var seed: Int?
        if case .int(let s)? = args.optional("seed") { seed = s }

        let rows: [PublishedTable.Row]
        do {
            rows = try PublishedTable.rows(pruning: pruning, sparsity: sparsity, model: model, dataset: dataset)
        } catch let failure as IOFailure {
            let hint = PublishedTable.locate() == nil ? "; set MGE_PAPER_DATA to the folder that holds it" : ""
            throw RuntimeError("compare_to_paper: \(failure)\(hint)")
        }
        guard !rows.isEmpty else {
            let known = (try? PublishedTable.values(of: "pruning")) ?? []
            let models = (try? PublishedTable.values(of: "model")) ?? []
            throw RuntimeError("compare_to_paper: the paper has no row for \(pruning) at sparsity \(Display.float(sparsity)) on "
                + "\(PaperTable.modelLabel(model) ?? model) / \(PaperTable.datasetLabel(dataset) ?? dataset) (it has pruning "
                + known.joined(separator: ", ") + "; models " + models.joined(separator: ", ") + "; sparsities 0.6, 0.8, 0.9, 0.95, 0.98)")
        }
        let seeds = rows.compactMap { $0.cells["seed"] }
        if let seed, !seeds.contains(String(seed)) {
            throw args.bad("seed", "the paper has seeds \(seeds.joined(separator: ", ")) for this configuration, not \(seed)")
        }
        let compared = seed.map { s in rows.filter { $0.cells["seed"] == String(s) } } ?? rows

        let mode: String
        if case .string(let c)? = given[PaperTable.modeColumn] { mode = c } else { mode = "unknown" }
        if mode != "reference" {
            args.interpreter.writeError("note: m was computed in \(mode == "unknown" ? "an unknown" : "\"" + mode + "\"") mode; the published table comes from the reference implementation, reproduced with compat: \"reference\" on prune, unroll and topometrics\n")
        }

        var table: [Value] = []
        for column in PaperTable.sizeColumns + PaperTable.metricColumns.map(\.column) {
            guard let value = metrics[column], value != .none else { continue }
            var record = Record([("column", .string(column)), ("mge", value)])
            for row in rows {
                let key = "seed_" + (row.cells["seed"] ?? "?")
                record[key] = row.number(column).map { v in
                    PaperTable.integerColumns.contains(column) && v.rounded() == v && abs(v) < 9e15 ? Value.int(Int(v)) : .float(v)
                } ?? Value.none
            }
            record["match"] = .string(verdict(column: column, mine: value.asDouble, published: compared.compactMap { $0.number(column) }))
            table.append(.record(record))
        }
        return .list(table)
    }

    /// How mge's value sits against the published ones: "exact" (equal to every compared seed,
    /// to 1e-9 relative), "within the seeds" (inside their range: random masks come from a
    /// different generator than the paper's, so mask-dependent counts agree only up to seed
    /// spread), or the distance outside that range; weighted columns are not compared.
    static func verdict(column: String, mine: Double?, published: [Double]) -> String {
        if PaperTable.weightedColumns.contains(column) { return "not comparable (trained weights)" }
        guard let mine, let low = published.min(), let high = published.max() else { return "–" }
        func close(_ a: Double, _ b: Double) -> Bool { abs(a - b) <= 1e-9 * max(abs(a), abs(b)) }
        if published.allSatisfy({ close($0, mine) }) { return "exact" }
        if mine >= low && mine <= high { return published.count > 1 ? "within the seeds" : "exact" }
        let nearest = mine < low ? low : high
        let relative = nearest == 0 ? Double.infinity : (mine - nearest) / abs(nearest)
        let side = (mine < low ? "below " : "above ") + (published.count > 1 ? "the seeds" : "the published value")
        return relative.isFinite ? String(format: "\(side) by %.3g%%", abs(relative) * 100) : "\(side) (published 0)"
    }
}
