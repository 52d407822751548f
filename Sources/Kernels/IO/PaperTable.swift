import Foundation

/// The paper's published dataset layout (SPEC §4; `graph_metrics/unrolled/unrolled.csv`):
/// the run's description, then nodes and edges, then the normalised topometrics under the
/// paper's column names, then `compat`, the encoding mode that produced the row (the paper's
/// own file has no such column; its rows correspond to `reference`).
///
/// Values follow the paper's conventions: model and dataset as the paper spells them
/// (`Resnet-20`, `CIFAR-10`, `tinyimagenet`), integer columns as integers, none as an empty cell.
public enum PaperTable {
    /// (our field, paper column, divisor) — divisor `n` = nodes, `m` = edges, `1` = raw — in the
    /// paper's column order, from `MetricTable`.
    public static let metricColumns: [(field: String, column: String, per: Character)] =
        MetricTable.paperEntries.map { ($0.name, $0.paperColumn ?? $0.name, $0.normalisation.rawValue) }

    /// mge's columns beside a paper column: an estimable metric's marker and sample size
    /// (`motif` → `motifs_estimated`, `motifs_sample`). The paper's file has none; its motif
    /// column holds estimates.
    public static let markerColumns: [(after: String, columns: [String])] =
        MetricTable.paperEntries.compactMap { e in
            guard let estimated = e.estimatedField, let sample = e.sampleField else { return nil }
            return (e.paperColumn ?? e.name, [estimated, sample])
        }

    /// The metric columns mge writes: the paper's, each followed by its markers.
    public static var metricColumnsWithMarkers: [String] {
        metricColumns.flatMap { entry in [entry.column] + (markerColumns.first { $0.after == entry.column }?.columns ?? []) }
    }

    /// Columns describing the run, first as in the paper's file.
    public static let runColumns = ["accuracy", "pruning", "sparsity", "model", "dataset", "seed"]
    /// The graph's size, between the run and the metrics.
    public static let sizeColumns = ["nodes", "edges"]
    /// The encoding mode column, after the paper's columns.
    public static let modeColumn = "compat"
    /// Columns whose values are integers (written without a decimal point).
    public static let integerColumns: Set<String> = ["seed", "nodes", "edges", "no_connected_components", "motifs_sample"]
    /// Metric columns computed from edge weights, not only from the masks: the published ones
    /// most likely come from trained weights and are not comparable with a freshly initialised net.
    public static let weightedColumns: Set<String> = Set(MetricTable.all.filter(\.weighted).compactMap(\.paperColumn))

    /// The paper's 24 columns, in its order.
    public static var paperColumns: [String] { runColumns + sizeColumns + metricColumns.map(\.column) }
    /// The columns mge writes: the paper's (with the estimate markers beside the motif column),
    /// then `compat`.
    public static var columns: [String] { runColumns + sizeColumns + metricColumnsWithMarkers + [modeColumn] }

    /// Normalises raw topometrics (field → value, with `nodes` and `edges`) into paper columns.
    /// Fields not present (e.g. computed with `only:`) are left out.
    public static func normalized(_ metrics: [String: Double]) -> [(column: String, value: Double)] {
        let n = metrics["nodes"] ?? .nan, m = metrics["edges"] ?? .nan
        return metricColumns.compactMap { entry in
            guard let v = metrics[entry.field] else { return nil }
            let divisor = entry.per == "n" ? n : entry.per == "m" ? m : 1
            return (entry.column, divisor == 0 ? .nan : v / divisor)
        }
    }

    // MARK: Names as the paper spells them

    /// mge model name → the paper's (`resnet20` → `Resnet-20`).
    public static let modelLabels: [(name: String, label: String)] = [
        ("conv6", "CONV-6"), ("resnet20", "Resnet-20"), ("resnet32", "Resnet-32"),
        ("wrn28_2", "Wide-Resnet-28-2"), ("mobilenetv2", "MobileNetV2"),
    ]
    /// mge dataset name → the paper's (`cifar10` → `CIFAR-10`).
    public static let datasetLabels: [(name: String, label: String)] = [
        ("cifar10", "CIFAR-10"), ("cifar100", "CIFAR-100"), ("tinyimagenet", "tinyimagenet"),
    ]

    /// The paper's spelling of a model given either spelling (case and punctuation ignored);
    /// nil for a model the paper does not have.
    public static func modelLabel(_ text: String) -> String? { label(text, in: modelLabels) }
    /// The paper's spelling of a dataset given either spelling; nil for one the paper does not have.
    public static func datasetLabel(_ text: String) -> String? { label(text, in: datasetLabels) }

    static func label(_ text: String, in table: [(name: String, label: String)]) -> String? {
        let key = squeezed(text)
        return table.first { squeezed($0.name) == key || squeezed($0.label) == key }?.label
    }

    /// Lower case, letters and digits only: `Wide-Resnet-28-2` and `wrn28_2` differ, `CIFAR-10` and `cifar10` do not.
    static func squeezed(_ s: String) -> String { String(s.lowercased().filter { $0.isLetter || $0.isNumber }) }

    // MARK: Rows

    /// What describes one run; nil leaves a cell empty.
    public struct Run: Equatable, Sendable {
        public var accuracy: Double?
        public var pruning: String?
        public var sparsity: Double?
        public var model: String?
        public var dataset: String?
        public var seed: Int?
        public var compat: String?
        public init(accuracy: Double? = nil, pruning: String? = nil, sparsity: Double? = nil, model: String? = nil,
                    dataset: String? = nil, seed: Int? = nil, compat: String? = nil) {
            self.accuracy = accuracy; self.pruning = pruning; self.sparsity = sparsity; self.model = model
            self.dataset = dataset; self.seed = seed; self.compat = compat
        }
    }

    /// Why a run's description cannot be written.
    public enum Invalid: Error, CustomStringConvertible, Equatable {
        case value(column: String, reason: String)
        public var column: String { if case let .value(column, _) = self { return column }; return "" }
        public var reason: String { if case let .value(_, reason) = self { return reason }; return "" }
        public var description: String { "\(column): \(reason)" }
    }

    /// Checks the run's values and spells model and dataset as the paper does.
    /// sparsity ∈ [0, 1), accuracy ∈ [0, 1], seed ≥ 0, compat "paper" or "reference" (or a
    /// "mixed:" description). A model or dataset the paper does not have is kept as given.
    public static func validated(_ run: Run) throws -> Run {
        var out = run
        if let s = run.sparsity, !(s >= 0 && s < 1) {
            throw Invalid.value(column: "sparsity", reason: "expected a fraction in [0, 1), got \(s)")
        }
        if let a = run.accuracy, !(a >= 0 && a <= 1) {
            throw Invalid.value(column: "accuracy", reason: "expected a fraction in [0, 1], got \(a)")
        }
        if let s = run.seed, s < 0 { throw Invalid.value(column: "seed", reason: "expected a seed ≥ 0, got \(s)") }
        for (column, text) in [("pruning", run.pruning), ("model", run.model), ("dataset", run.dataset), ("compat", run.compat)] {
            if let text, text.isEmpty { throw Invalid.value(column: column, reason: "empty name") }
        }
        if let c = run.compat, !(c == "paper" || c == "reference" || c.hasPrefix("mixed")) {
            throw Invalid.value(column: "compat", reason: "expected \"paper\" or \"reference\", got \"\(c)\"")
        }
        out.model = run.model.map { modelLabel($0) ?? $0 }
        out.dataset = run.dataset.map { datasetLabel($0) ?? $0 }
        return out
    }

    /// One row (column → cell) of the paper's layout: the validated run, then `metrics`
    /// (paper column → value, e.g. from `normalized`, plus `nodes` and `edges`).
    public static func row(_ run: Run, metrics: [(column: String, value: Double)]) throws -> [String: String] {
        let run = try validated(run)
        var row: [String: String] = [:]
        if let v = run.accuracy { row["accuracy"] = cell(v, column: "accuracy") }
        if let v = run.pruning { row["pruning"] = v }
        if let v = run.sparsity { row["sparsity"] = cell(v, column: "sparsity") }
        if let v = run.model { row["model"] = v }
        if let v = run.dataset { row["dataset"] = v }
        if let v = run.seed { row["seed"] = String(v) }
        if let v = run.compat { row[modeColumn] = v }
        for (column, value) in metrics { row[column] = cell(value, column: column) }
        return row
    }

    /// A number as the paper's file writes it: integers in integer columns without a decimal
    /// point, other values in the shortest form that reads back exactly, NaN as an empty cell.
    public static func cell(_ value: Double, column: String) -> String {
        guard !value.isNaN else { return "" }
        if integerColumns.contains(column), value.rounded() == value, abs(value) < 9.0e15 { return String(Int(value)) }
        return String(value)
    }
}
