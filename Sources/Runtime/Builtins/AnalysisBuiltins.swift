import Foundation
import Kernels

// The paper's section-4 analyses in the language: XGBoost regression with grouped k-fold
// cross-validation and a seeded hyperparameter search (`fit`), `predict`, TreeSHAP importance,
// ranking pruners against their accuracy (`rank_pruners`), and rank correlations.

/// Columns that identify one configuration (its seeds are grouped into one fold) when present.
/// `pruner` is the column name of sweeps written before they used the paper's `pruning`.
let defaultGroupColumns = ["model", "dataset", "pruning", "pruning_algorithm", "pruner", "sparsity"]

/// rank_pruners' default groups (those the table has, as fit skips absent group columns) and
/// the names its item column may have, the paper's first.
let defaultRankGroups = ["model", "dataset", "sparsity"]
let pruningColumnNames = ["pruning", "pruning_algorithm", "pruner"]

let analysisBuiltins: [Builtin] = [
    Builtin("fit", [Param("t", .native("table")), Param("target", .string), Param("features", .list),
                    Param("folds", .int, default: .int(5)), Param("params", .record, default: .record(Record())),
                    Param("rounds", .int, default: .int(100)), Param("seed", .int, default: .int(0)),
                    Param("trials", .int, default: .int(0)), Param("groups", .optional(.list), default: Value.none)],
            returns: "regression",
            summary: "Fits XGBoost (libxgboost's C API) to predict the target column from numeric feature columns, with k-fold "
                + "cross-validation: R², MAE and RMSE per fold and overall on the out-of-fold predictions (f.folds, f.r2, f.predictions; "
                + "f.row_folds is each row's fold). "
                + "Folds keep rows of one configuration together (groups: columns; default the table's model, dataset, pruning and "
                + "sparsity columns, so seeds never straddle train and test; groups: [] splits rows freely). params: XGBoost's own "
                + "parameter names ({max_depth: 4, eta: 0.1}), passed through; an unknown one is an error; defaults tree_method: \"hist\" "
                + "and nthread: 1 with the folds trained in parallel (give nthread: to let XGBoost thread instead). "
                + "folds: 0 fits on all rows only. trials: N runs a seeded random search of N parameter sets (max_depth, eta, rounds, "
                + "subsample, colsample_bytree, min_child_weight, lambda, alpha, as docs/analysis.md lists; given params stay fixed) scored by CV R² on the same "
                + "folds, and keeps the best (f.trials lists them; the best CV R² is optimistic, being chosen on those folds). "
                + "The returned model is refitted on all rows: predict(f, t) on those rows is in-sample (it has seen them), while "
                + "f.predictions are out of fold, which rank_pruners(t, f) uses.",
            example: "f = fit(t, \"accuracy\", [\"sink_nodes\", \"k-core\"], folds: 5, params: {max_depth: 4, eta: 0.1}, rounds: 200)") { args in
        try Fitting.fit(args)
    },
    Builtin("predict", [Param("model", .native("regression")), Param("t", .native("table"))], returns: "list",
            summary: "The model's predictions for the rows of a table, in order (the table needs the model's feature columns).",
            example: "p = predict(f, t);  plot(t.accuracy, p, x: \"accuracy\", y: \"predicted\", diagonal: true)") { args in
        let model = try args.native("model", as: RegressionObject.self)
        let x = try Fitting.features(args, "t", model.features)
        return .list(try tableError(args, "t") { try model.booster.predict(x) }.map(Value.float))
    },
    Builtin("importance", [Param("model", .native("regression")), Param("t", .native("table")),
                           Param("by", .optional(.oneOf([.string, .list])), default: Value.none)],
            returns: "table",
            summary: "Feature importance as mean |SHAP| over the rows of t, from XGBoost's own TreeSHAP (pred_contribs): "
                + "a table of feature and mean_abs_shap, largest first; by: column(s) gives one row per group and feature "
                + "(e.g. per sparsity or per model), largest first within each group.",
            example: "importance(f, t);  importance(f, t, by: \"sparsity\")") { args in
        let model = try args.native("model", as: RegressionObject.self)
        let table = try args.table("t").table
        let x = try Fitting.features(args, "t", model.features)
        let contributions = try tableError(args, "t") { try model.booster.contributions(x) }
        let by = args.optional("by") == nil ? [] : try stringList(args, "by")
        let (_, groups) = by.isEmpty ? ([[]], [Array(0..<table.rowCount)]) : try tableError(args, "by") { try table.groups(by: by) }
        var rows: [Int] = [], features: [String] = [], values: [Double] = []
        for members in groups {
            let means = model.features.indices.map { f in members.reduce(0.0) { $0 + abs(contributions[$1][f]) } / Double(members.count) }
            for f in means.indices.sorted(by: { means[$0] > means[$1] }) {
                rows.append(members[0]); features.append(model.features[f]); values.append(means[f])
            }
        }
        var out = try tableError(args, "by") { try table.selecting(by) }.rows(rows)
        if by.isEmpty { out = Table() }
        try tableError(args, "by") { try out.adding("feature", .text(features), replace: false) }
        try tableError(args, "by") { try out.adding("mean_abs_shap", .number(values), replace: false) }
        return .native(TableObject(out))
    },
    Builtin("rank_pruners", [Param("t", .native("table")), Param("score", .oneOf([.string, .list, .native("regression")])),
                             Param("truth", .string, default: .string("accuracy")), Param("item", .optional(.string), default: Value.none),
                             Param("by", .optional(.oneOf([.string, .list])), default: Value.none)],
            returns: "table",
            summary: "Ranks the pruners (item column, default the table's pruning column) within each group (by columns, default "
                + "those of model, dataset, sparsity the table has, as fit skips absent ones) by a score — a column name, a list "
                + "of values per row, or a regression from fit, whose out-of-fold predictions are used (a prediction by a model "
                + "that never saw the row; in-sample predictions rank far too well, τ near 1 even on noise), so t must be the "
                + "table f was fitted on or a filter of it, and a model fitted with folds: 0 is refused — against their true "
                + "accuracy: score and truth are first averaged over each pruner's rows (seeds), then Kendall's τ-b and "
                + "Spearman's ρ are computed per group. One row per group (pruners, kendall, spearman, scored_by: which scores "
                + "were used); a group with fewer than 2 pruners or a constant side has missing correlations. mean(r.kendall) "
                + "gives the overall value.",
            example: "r = rank_pruners(t, f);  mean(r.kendall);  rank_pruners(t, \"k-core\", by: [\"model\", \"sparsity\"])") { args in
        try Fitting.rank(args)
    },
    Builtin("kendall", [Param("xs", .list), Param("ys", .list)], returns: "float",
            summary: "Kendall's τ-b rank correlation of two equal-length lists of numbers (ties as scipy.stats.kendalltau); nan when a side is constant.",
            example: "kendall([1, 2, 3, 4], [1, 3, 2, 4])  # 0.6666666666666666") { args in
        let (x, y) = try pairedNumbers(args)
        return .float(RankCorrelation.kendall(x, y))
    },
    Builtin("spearman", [Param("xs", .list), Param("ys", .list)], returns: "float",
            summary: "Spearman's ρ of two equal-length lists of numbers: Pearson correlation of average ranks (as scipy.stats.spearmanr).",
            example: "spearman([1, 2, 3, 4], [1, 3, 2, 4])  # 0.8") { args in
        let (x, y) = try pairedNumbers(args)
        return .float(RankCorrelation.spearman(x, y))
    },
    Builtin("mean", [Param("xs", .list)], returns: "float",
            summary: "The mean of a list of numbers; none (missing) and nan values are skipped; none when nothing is left.",
            example: "mean(r.kendall)") { args in
        let xs = try numbers(args, "xs", allowMissing: true).filter { !$0.isNaN }
        return xs.isEmpty ? .none : .float(aggregate("mean", xs))
    },
]

/// Two lists of numbers of the same length.
private func pairedNumbers(_ args: Arguments) throws -> ([Double], [Double]) {
    let x = try numbers(args, "xs", allowMissing: false), y = try numbers(args, "ys", allowMissing: false)
    guard x.count == y.count else { throw args.bad("ys", "\(y.count) values but xs has \(x.count)") }
    return (x, y)
}

/// A list argument as numbers; none becomes NaN when `allowMissing`.
func numbers(_ args: Arguments, _ name: String, allowMissing: Bool) throws -> [Double] {
    try args.list(name).enumerated().map { i, v in
        if let d = v.asDouble { return d }
        if allowMissing, case .none = v { return .nan }
        throw args.bad(name, "item \(i) is \(Display.inline(v)), a number expected")
    }
}

/// The bodies of `fit` and `rank_pruners`.
enum Fitting {
    /// The feature columns of table argument `name` as a matrix; text columns are refused by name.
    /// Errors blame `blame` (fit's `features` list, whose entries the user wrote; the table when
    /// the features come from a fitted model).
    static func features(_ args: Arguments, _ name: String, _ features: [String], blame: String? = nil) throws -> FeatureMatrix {
        let blame = blame ?? name
        let table = try args.table(name).table
        let columns = try features.map { feature -> [Double] in
            guard table.names.contains(feature) else {
                throw args.bad(blame, "the table has no feature column '\(feature)' (columns: \(table.names.joined(separator: ", ")))")
            }
            guard case .number(let xs) = try table.column(feature) else {
                throw args.bad(blame, "feature '\(feature)' is not numeric (it holds text)")
            }
            // XGBoost refuses infinities; missing values (none) it handles itself.
            if let first = xs.firstIndex(where: { $0.isInfinite }) {
                let count = xs.filter(\.isInfinite).count
                throw args.bad(blame, "feature '\(feature)' has \(count) infinite value\(count == 1 ? "" : "s") (first at row \(first)); make them missing or finite first")
            }
            return xs
        }
        return FeatureMatrix(columns: columns, rows: table.rowCount)
    }

    static func fit(_ args: Arguments) throws -> Value {
        let table = try args.table("t").table
        let target = try args.string("target")
        let featureNames = try stringList(args, "features")
        guard !featureNames.isEmpty else { throw args.bad("features", "no feature columns given") }
        if let repeated = featureNames.first(where: { name in featureNames.filter { $0 == name }.count > 1 }) {
            throw args.bad("features", "feature '\(repeated)' is listed twice")
        }
        guard !featureNames.contains(target) else { throw args.bad("features", "the target '\(target)' is also a feature") }
        guard table.names.contains(target) else {
            throw args.bad("target", "the table has no column '\(target)' (columns: \(table.names.joined(separator: ", ")))")
        }
        guard case .number(let y) = try table.column(target) else { throw args.bad("target", "target '\(target)' is not numeric (it holds text)") }
        if let first = y.firstIndex(where: { !$0.isFinite }) {
            let count = y.filter { !$0.isFinite }.count
            throw args.bad("target", "target '\(target)' has \(count) missing or non-finite value\(count == 1 ? "" : "s") (first at row \(first)); filter them out first")
        }
        let x = try features(args, "t", featureNames, blame: "features")
        let folds = try args.int("folds"), rounds = try args.int("rounds"), seed = try args.int("seed"), trials = try args.int("trials")
        guard folds == 0 || folds >= 2 else { throw args.bad("folds", "folds must be 0 (fit on all rows) or at least 2, got \(folds)") }
        guard rounds >= 1, rounds <= 100_000 else { throw args.bad("rounds", "rounds must be in 1...100000, got \(rounds)") }
        guard seed >= 0 else { throw args.bad("seed", "seed must be >= 0, got \(seed)") }
        guard trials >= 0, trials <= 100_000 else { throw args.bad("trials", "trials must be in 0...100000, got \(trials)") }
        guard trials == 0 || folds >= 2 else { throw args.bad("trials", "a search needs folds to score its trials (folds: 0 given)") }
        var params: [(String, String)] = []
        for (name, value) in try args.record("params").fields {
            switch value {
            case .int(let i): params.append((name, String(i)))
            case .float(let d): params.append((name, String(d)))
            case .string(let s): params.append((name, s))
            case .bool(let b): params.append((name, b ? "true" : "false"))
            default: throw args.bad("params", "XGBoost parameter '\(name)' is a \(value.typeName); a number, string or bool expected")
            }
        }
        if !params.contains(where: { $0.0 == "seed" || $0.0 == "random_state" }) { params.append(("seed", String(seed))) }
        // Defaults for tables of a few thousand rows: histogram trees, and one XGBoost thread per
        // fold with the folds spread over the cores (XGBoost's own threads are slower here, and
        // far slower on a busy machine).
        if !params.contains(where: { $0.0 == "tree_method" }) { params.append(("tree_method", "hist")) }
        let parallelFolds = !params.contains(where: { $0.0 == "nthread" || $0.0 == "n_jobs" })
        if parallelFolds { params.append(("nthread", "1")) }

        // Folds over groups of rows.
        var groupColumns: [String]
        if case .list = args["groups"] {
            groupColumns = try stringList(args, "groups")
            for name in groupColumns where !table.names.contains(name) {
                throw args.bad("groups", "the table has no column '\(name)' (columns: \(table.names.joined(separator: ", ")))")
            }
        } else {
            groupColumns = defaultGroupColumns.filter { table.names.contains($0) && $0 != target }
        }
        var groupOf = Array(0..<table.rowCount)
        if !groupColumns.isEmpty {
            let (_, members) = try table.groups(by: groupColumns)
            for (g, rows) in members.enumerated() { for r in rows { groupOf[r] = g } }
        }
        let groupCount = Set(groupOf).count
        if folds > 0, groupCount < folds {
            throw args.bad("folds", "\(folds) folds but only \(groupCount) \(groupColumns.isEmpty ? "rows" : "groups of rows (by \(groupColumns.joined(separator: ", ")))")")
        }
        let fold = folds > 0 ? CrossValidation.groupedFolds(groups: groupOf, folds: folds, seed: UInt64(seed)) : []

        var best: (params: [(String, String)], rounds: Int) = (params, rounds)
        var validation: CrossValidation.Result?
        var trialTable: Table?
        try tableError(args, "params") {
            if trials > 0 {
                var rng = SeededGenerator(seed: UInt64(seed) &+ 0x5EED)
                let given = Set(params.map(\.0))
                let progress = ProgressBar(label: "fit", total: trials, unit: "trials")
                defer { progress.finish() }
                var rows: [(CrossValidation.Trial)] = []
                var bestR2 = -Double.infinity
                for _ in 0..<trials {
                    let candidate = CrossValidation.sample(&rng, fixed: params, fixedRounds: nil)
                    let result = try CrossValidation.run(x, y, fold: fold, folds: folds, features: featureNames, params: candidate.params, rounds: candidate.rounds, parallel: parallelFolds)
                    rows.append(CrossValidation.Trial(params: candidate.params, rounds: candidate.rounds, r2: result.overall.r2))
                    if result.overall.r2 > bestR2 || validation == nil { bestR2 = result.overall.r2; best = candidate; validation = result }
                    progress.advance()
                }
                var names = ["trial", "r2", "rounds"], columns: [Column] = [
                    .number(rows.indices.map(Double.init)), .number(rows.map(\.r2)), .number(rows.map { Double($0.rounds) }),
                ]
                for name in rows[0].params.map(\.0) where !given.contains(name) {
                    names.append(name)
                    columns.append(.number(rows.map { row in Double(row.params.first { $0.0 == name }?.1 ?? "") ?? .nan }))
                }
                trialTable = try Table(names: names, columns: columns)
            } else if folds > 0 {
                validation = try CrossValidation.run(x, y, fold: fold, folds: folds, features: featureNames, params: params, rounds: rounds, parallel: parallelFolds)
            }
        }
        let booster = try tableError(args, "params") { try Booster.train(x, y, features: featureNames, params: best.params, rounds: best.rounds) }
        let model = RegressionObject(booster: booster, target: target, features: featureNames, params: best.params, rounds: best.rounds,
                                     validation: validation, groupColumns: folds > 0 ? groupColumns : [], trials: trialTable)
        model.rowFolds = fold
        if let validation {
            // What rank_pruners needs to find each row's out-of-fold prediction in a table.
            let keyColumns = groupColumns + featureNames + [target]
            let keys = try tableError(args, "t") { try RowKey.keys(table, keyColumns) }
            var byRow: [RowKey: Double?] = [:]
            for (r, key) in keys.enumerated() {
                let p = validation.predictions[r]
                if let seen = byRow[key], seen != p { byRow[key] = .some(nil) } else { byRow[key] = p }
            }
            model.rowKeyColumns = keyColumns
            model.outOfFoldByRow = byRow
        }
        return .native(model)
    }

    static func rank(_ args: Arguments) throws -> Value {
        let table = try args.table("t").table
        let truthName = try args.string("truth")
        let item: String
        if args.optional("item") != nil {
            item = try args.string("item")
        } else if let present = pruningColumnNames.first(where: { table.names.contains($0) }) {
            item = present
        } else {
            throw args.bad("item", "the table has no pruning column (\(pruningColumnNames.joined(separator: ", "))); name the column to rank with item: (columns: \(table.names.joined(separator: ", ")))")
        }
        let by = args.optional("by") == nil ? defaultRankGroups.filter { table.names.contains($0) } : try stringList(args, "by")
        let truth = try tableError(args, "truth") { try table.numbers(truthName) }
        var score: [Double]
        let scoredBy: String
        switch args["score"] {
        case .string(let name):
            score = try tableError(args, "score") { try table.numbers(name) }
            scoredBy = "column \(name)"
        case .list:
            score = try numbers(args, "score", allowMissing: true)
            scoredBy = "given values"
        default:
            let model = try args.native("score", as: RegressionObject.self)
            score = try outOfFold(model, args)
            scoredBy = "out-of-fold predictions (\(model.validation?.perFold.count ?? 0)-fold CV)"
        }
        guard score.count == table.rowCount else { throw args.bad("score", "\(score.count) scores for \(table.rowCount) rows") }
        _ = try tableError(args, "item") { try table.column(item) }
        let (_, groups) = try tableError(args, "by") { try table.groups(by: by) }
        let itemColumn = try table.column(item)
        var first: [Int] = [], counts: [Double] = [], taus: [Double] = [], rhos: [Double] = []
        for members in groups {
            // Average over each pruner's rows (its seeds).
            var order: [String] = [], sums: [String: (Double, Double, Int)] = [:]
            for r in members where score[r].isFinite && truth[r].isFinite {
                let key = itemColumn.text(at: r)
                if sums[key] == nil { order.append(key) }
                let s = sums[key] ?? (0, 0, 0)
                sums[key] = (s.0 + score[r], s.1 + truth[r], s.2 + 1)
            }
            let xs = order.map { sums[$0].map { $0.0 / Double($0.2) } ?? .nan }
            let ys = order.map { sums[$0].map { $0.1 / Double($0.2) } ?? .nan }
            first.append(members[0]); counts.append(Double(order.count))
            taus.append(RankCorrelation.kendall(xs, ys)); rhos.append(RankCorrelation.spearman(xs, ys))
        }
        var out = try table.selecting(by).rows(first)
        try out.adding("pruners", .number(counts), replace: false)
        try out.adding("kendall", .number(taus), replace: false)
        try out.adding("spearman", .number(rhos), replace: false)
        try out.adding("scored_by", .text(Array(repeating: scoredBy, count: out.rowCount)), replace: false)
        return .native(TableObject(out))
    }

    /// The out-of-fold prediction of every row of table argument `t` by `model`: each row is
    /// found among the rows the model was fitted on by its group, feature and target cells.
    static func outOfFold(_ model: RegressionObject, _ args: Arguments) throws -> [Double] {
        guard model.validation != nil, !model.rowKeyColumns.isEmpty else {
            throw args.bad("score", "a regression's own predictions on the rows it was fitted on are in-sample and rank far too well "
                + "(τ near 1 even on noise), so rank_pruners uses its out-of-fold predictions, and this one has none (fitted with folds: 0, or loaded from a file); "
                + "fit with folds: 5 (the default), or pass a column of scores")
        }
        let table = try args.table("t").table
        if let missing = model.rowKeyColumns.first(where: { !table.names.contains($0) }) {
            throw args.bad("t", "the table has no column '\(missing)', which identifies the rows the regression was fitted on; rank with the table given to fit (or a filter of it)")
        }
        let keys = try tableError(args, "t") { try RowKey.keys(table, model.rowKeyColumns) }
        return try keys.enumerated().map { r, key in
            guard let found = model.outOfFoldByRow[key] else {
                throw args.bad("t", "row \(r) is not among the rows the regression was fitted on, so it has no out-of-fold prediction; rank with the table given to fit (or a filter of it)")
            }
            guard let prediction = found else {
                throw args.bad("t", "row \(r) has the same cells as fitted rows that got different out-of-fold predictions; fit with groups: so that such rows share a fold, or rank a column of scores")
            }
            return prediction
        }
    }
}

extension Fitting {
    /// `save(f, "model.json")`: XGBoost's JSON model with the target, rounds and parameters as attributes.
    static func save(_ model: RegressionObject, _ args: Arguments) throws -> Value {
        let path = try filePath(args, "path", extensions: ["json"], what: "an XGBoost model file")
        let expanded = (path as NSString).expandingTildeInPath
        let params = model.params.map { "\($0.0)=\($0.1)" }.joined(separator: "\n")
        let bytes = try tableError(args, "x") {
            try model.booster.serialized(attributes: ["mge_target": model.target, "mge_rounds": String(model.rounds), "mge_params": params])
        }
        try tableError(args, "path") { try AtomicFile.write(bytes, to: expanded) }
        reportWrite(path, file: expanded, args)
        return .none
    }

    /// `load("model.json")`: a regression without cross-validation results.
    static func load(_ args: Arguments) throws -> Value {
        let path = try filePath(args, "path")
        guard let data = FileManager.default.contents(atPath: path) else {
            throw args.bad("path", "cannot read \(path): \(FileManager.default.fileExists(atPath: path) ? "permission denied or not a file" : "no such file")")
        }
        let (booster, attributes) = try tableError(args, "path") { try Booster.load([UInt8](data), path: path) }
        let params: [(String, String)] = (attributes["mge_params"] ?? "").split(separator: "\n").compactMap { line in
            let parts = line.split(separator: "=", maxSplits: 1).map(String.init)
            return parts.count == 2 ? (parts[0], parts[1]) : nil
        }
        return .native(RegressionObject(booster: booster, target: attributes["mge_target"] ?? "?", features: booster.features, params: params,
                                        rounds: Int(attributes["mge_rounds"] ?? "") ?? 0, validation: nil, groupColumns: [], trials: nil))
    }
}
