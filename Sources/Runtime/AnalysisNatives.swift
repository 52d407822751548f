import Kernels

// The analysis objects the language hands around: tables (`read_csv`) and fitted regressions (`fit`).

/// A native that stands for a table of rows: every table builtin (`filter`, `write_csv`, `plot`, `fit`, …)
/// takes it through `Arguments.table(_:)`, so a new table-like object needs only this conformance.
public protocol TableValued: NativeValue {
    /// The rows as a Kernels table.
    var table: Table { get }
}

/// A table of typed columns. `t.accuracy` is a column as a list, `t[0]` a row as a record,
/// `for row in t` iterates rows, `len(t)` counts them.
public final class TableObject: TableValued {
    public let table: Table
    public init(_ table: Table) { self.table = table }

    public var typeName: String { "table" }

    /// `object` as a table of its rows when it is table-valued (itself when it is a `TableObject`), else nil.
    public static func of(_ object: NativeValue) -> TableObject? {
        if let table = object as? TableObject { return table }
        if let valued = object as? TableValued { return TableObject(valued.table) }
        return nil
    }

    /// Rows shown by the short display (the REPL's cell); `show(t)` shows every row.
    static let headRows = 10

    public func display(long: Bool) -> String {
        let shape = "table \(grouped(table.rowCount)) rows × \(table.columnCount) columns"
        let shown = long ? table.rowCount : min(table.rowCount, TableObject.headRows)
        guard table.columnCount > 0 else { return shape }
        let rows = (0..<shown).map { r in table.columns.map { TableObject.cell($0, r) } }
        let text = Display.table(header: table.names, rows: rows, rightAligned: table.columns.map(\.isNumeric))
        let more = shown < table.rowCount ? "\n… \(grouped(table.rowCount - shown)) more rows (show(t) prints all)" : ""
        return shape + "\n" + text + more
    }

    /// A cell for display: numbers to 6 significant digits, long text cut.
    static func cell(_ column: Column, _ row: Int) -> String {
        switch column {
        case .number(let xs):
            let x = xs[row]
            if x.isNaN { return "" }
            if x == x.rounded(), abs(x) < 1e15 { return String(Int64(x)) }
            return String(format: "%.6g", x)
        case .text(let xs):
            let s = xs[row]
            return s.count > Display.maxCellWidth ? String(s.prefix(Display.maxCellWidth - 1)) + "…" : s
        }
    }

    public var fieldNames: [String] { table.names }

    public func field(_ name: String) -> Value? {
        guard let i = table.names.firstIndex(of: name) else { return nil }
        return .list(TableObject.values(table.columns[i]))
    }

    public var elements: [Value]? { (0..<table.rowCount).map { .record(row($0)) } }

    /// Numeric columns whose every present value is integral: their cells are ints, as in `t.column`.
    private lazy var integral: [Bool] = table.columns.map(TableObject.isIntegral)

    public func row(_ r: Int) -> Record {
        Record(table.names.indices.map { c in (table.names[c], TableObject.value(table.columns[c], r, integral: integral[c])) })
    }

    static func isIntegral(_ column: Column) -> Bool {
        guard case .number(let xs) = column else { return false }
        return xs.allSatisfy { $0.isNaN || ($0 == $0.rounded() && abs($0) < 1e15) }
    }

    /// A column as language values: ints when every present value is integral, floats otherwise,
    /// none for missing cells, strings for text.
    static func values(_ column: Column) -> [Value] {
        switch column {
        case .number(let xs):
            let integral = isIntegral(column)
            return xs.map { $0.isNaN ? .none : integral ? .int(Int($0)) : .float($0) }
        case .text(let xs): return xs.map(Value.string)
        }
    }

    static func value(_ column: Column, _ r: Int, integral: Bool) -> Value {
        switch column {
        case .number(let xs):
            let x = xs[r]
            return x.isNaN ? .none : integral ? .int(Int(x)) : .float(x)
        case .text(let xs): return .string(xs[r])
        }
    }
}

/// A fitted XGBoost regression with its cross-validation (from `fit`).
public final class RegressionObject: NativeValue {
    public let booster: Booster
    public let target: String
    public let features: [String]
    public let params: [(String, String)]
    public let rounds: Int
    /// Cross-validation, nil when fitted on all rows without folds.
    public let validation: CrossValidation.Result?
    public let groupColumns: [String]
    /// The fold of each row (empty without cross-validation).
    public var rowFolds: [Int] = []
    /// One row per searched trial (nil without `trials:`).
    public let trials: Table?
    /// The columns that identify a fitted row (group columns, features, target) and each fitted
    /// row's out-of-fold prediction by those cells, so `rank_pruners(t, f)` finds them for the
    /// rows of t (nil for a key two rows with different predictions share). Empty without
    /// cross-validation.
    var rowKeyColumns: [String] = []
    var outOfFoldByRow: [RowKey: Double?] = [:]

    init(booster: Booster, target: String, features: [String], params: [(String, String)], rounds: Int,
         validation: CrossValidation.Result?, groupColumns: [String], trials: Table?) {
        self.booster = booster; self.target = target; self.features = features; self.params = params
        self.rounds = rounds; self.validation = validation; self.groupColumns = groupColumns; self.trials = trials
    }

    public var typeName: String { "regression" }

    public func display(long: Bool) -> String {
        var text = "regression of \(target) on \(features.count) features  \(rounds) rounds  "
            + params.map { "\($0.0)=\(RegressionObject.short($0.1))" }.joined(separator: " ")
        if let v = validation {
            text += "\n\(v.perFold.count)-fold CV\(groupColumns.isEmpty ? "" : " (grouped by \(groupColumns.joined(separator: ", ")))"): "
                + "R² \(String(format: "%.4f", v.overall.r2))  MAE \(String(format: "%.4g", v.overall.mae))  RMSE \(String(format: "%.4g", v.overall.rmse))"
            if let trials { text += "  (best of \(trials.rowCount) trials, chosen on these folds)" }
            if long {
                for (f, s) in v.perFold.enumerated() {
                    text += "\n  fold \(f): \(s.count) rows  R² \(String(format: "%.4f", s.r2))  MAE \(String(format: "%.4g", s.mae))  RMSE \(String(format: "%.4g", s.rmse))"
                }
            }
        } else {
            text += "\nfitted on all rows (no cross-validation)"
        }
        return text
    }

    static func short(_ value: String) -> String {
        guard let d = Double(value), value.count > 7 else { return value }
        return String(format: "%.4g", d)
    }

    public var fieldNames: [String] { ["target", "features", "params", "rounds", "r2", "mae", "rmse", "folds", "predictions", "row_folds", "trials"] }

    public func field(_ name: String) -> Value? {
        switch name {
        case "target": return .string(target)
        case "features": return .list(features.map(Value.string))
        case "rounds": return .int(rounds)
        case "params":
            return .record(Record(params.map { name, value in (name, Double(value).map(Value.float) ?? .string(value)) }))
        case "r2": return validation.map { .float($0.overall.r2) } ?? Value.none
        case "mae": return validation.map { .float($0.overall.mae) } ?? Value.none
        case "rmse": return validation.map { .float($0.overall.rmse) } ?? Value.none
        case "predictions": return validation.map { .list($0.predictions.map(Value.float)) } ?? Value.none
        case "folds":
            guard let v = validation else { return Value.none }
            let table = try? Table(names: ["fold", "rows", "r2", "mae", "rmse"], columns: [
                .number(v.perFold.indices.map(Double.init)), .number(v.perFold.map { Double($0.count) }),
                .number(v.perFold.map(\.r2)), .number(v.perFold.map(\.mae)), .number(v.perFold.map(\.rmse)),
            ])
            return table.map { .native(TableObject($0)) } ?? Value.none
        case "row_folds": return validation == nil ? Value.none : .list(rowFolds.map(Value.int))
        case "trials": return trials.map { .native(TableObject($0)) } ?? Value.none
        default: return nil
        }
    }
}

/// The cells of one table row in given columns, comparable across tables (numbers by bits,
/// missing values alike).
struct RowKey: Hashable {
    var numbers: [UInt64] = []
    var texts: [String] = []

    /// The key of every row of `table` over `columns` (all present in the table).
    static func keys(_ table: Table, _ columns: [String]) throws -> [RowKey] {
        var keys = [RowKey](repeating: RowKey(), count: table.rowCount)
        for name in columns {
            switch try table.column(name) {
            case .number(let xs):
                for r in keys.indices { keys[r].numbers.append(xs[r].isNaN ? UInt64.max : (xs[r] == 0 ? 0 : xs[r].bitPattern)) }
            case .text(let xs):
                for r in keys.indices { keys[r].texts.append(xs[r]) }
            }
        }
        return keys
    }
}
