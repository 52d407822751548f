import Foundation

/// A column of a table: numbers (missing values are NaN) or text (missing values are "").
public enum Column: Sendable, Equatable {
    case number([Double])
    case text([String])

    public var count: Int {
        switch self {
        case .number(let xs): return xs.count
        case .text(let xs): return xs.count
        }
    }

    public var isNumeric: Bool { if case .number = self { return true }; return false }

    /// The rows at `indices`, in that order.
    public func take(_ indices: [Int]) -> Column {
        switch self {
        case .number(let xs): return .number(indices.map { xs[$0] })
        case .text(let xs): return .text(indices.map { xs[$0] })
        }
    }

    /// One cell as text (numbers in their shortest round-tripping form, missing as "").
    public func text(at row: Int) -> String {
        switch self {
        case .number(let xs): return Table.format(xs[row])
        case .text(let xs): return xs[row]
        }
    }
}

public enum TableFailure: Error, CustomStringConvertible, Equatable {
    case unknownColumn(String, available: [String])
    case lengthMismatch(String, expected: Int, got: Int)
    case notNumeric(String)
    case duplicateColumn(String)
    case invalid(String)

    public var description: String {
        switch self {
        case let .unknownColumn(name, available):
            return "no column '\(name)' (columns: \(available.joined(separator: ", ")))"
        case let .lengthMismatch(name, expected, got):
            return "column '\(name)' has \(got) values but the table has \(expected) rows"
        case .notNumeric(let name): return "column '\(name)' is not numeric"
        case .duplicateColumn(let name): return "column '\(name)' appears twice"
        case .invalid(let message): return message
        }
    }
}

/// A rectangular table of named, typed columns (a CSV file, a sweep's results, a fit's folds).
/// Value semantics: every operation returns a new table.
public struct Table: Sendable, Equatable {
    public private(set) var names: [String]
    public private(set) var columns: [Column]

    public init() { names = []; columns = [] }

    /// - Throws: when names repeat or the columns differ in length.
    public init(names: [String], columns: [Column]) throws {
        precondition(names.count == columns.count)
        self.names = []
        self.columns = []
        for (name, column) in zip(names, columns) { try adding(name, column, replace: false) }
    }

    public var rowCount: Int { columns.first?.count ?? 0 }
    public var columnCount: Int { columns.count }

    public func index(of name: String) throws -> Int {
        guard let i = names.firstIndex(of: name) else { throw TableFailure.unknownColumn(name, available: names) }
        return i
    }

    public func column(_ name: String) throws -> Column { columns[try index(of: name)] }

    /// The numeric column `name`, or an error naming it when it holds text.
    public func numbers(_ name: String) throws -> [Double] {
        guard case .number(let xs) = try column(name) else { throw TableFailure.notNumeric(name) }
        return xs
    }

    /// Adds `column` as `name` (replacing a column of that name when `replace`).
    public mutating func adding(_ name: String, _ column: Column, replace: Bool = true) throws {
        if !columns.isEmpty, column.count != rowCount {
            throw TableFailure.lengthMismatch(name, expected: rowCount, got: column.count)
        }
        if let i = names.firstIndex(of: name) {
            guard replace else { throw TableFailure.duplicateColumn(name) }
            columns[i] = column
        } else {
            names.append(name)
            columns.append(column)
        }
    }

    public func with(_ name: String, _ column: Column) throws -> Table {
        var t = self
        try t.adding(name, column)
        return t
    }

    /// The rows at `indices`, in that order.
    public func rows(_ indices: [Int]) -> Table {
        var t = Table()
        t.names = names
        t.columns = columns.map { $0.take(indices) }
        return t
    }

    /// The named columns, in the order given.
    public func selecting(_ wanted: [String]) throws -> Table {
        var t = Table()
        for name in wanted { try t.adding(name, try column(name), replace: false) }
        return t
    }

    /// Row indices grouped by the values of `keys`, groups in order of first appearance.
    /// - Complexity: O(rows × keys).
    public func groups(by keys: [String]) throws -> (keys: [[String]], rows: [[Int]]) {
        let keyColumns = try keys.map { try column($0) }
        var position: [[String]: Int] = [:]
        var groupKeys: [[String]] = []
        var groupRows: [[Int]] = []
        for r in 0..<rowCount {
            let key = keyColumns.map { $0.text(at: r) }
            if let g = position[key] {
                groupRows[g].append(r)
            } else {
                position[key] = groupKeys.count
                groupKeys.append(key)
                groupRows.append([r])
            }
        }
        return (groupKeys, groupRows)
    }

    /// An inner join on equal key values (compared as text). Columns of `other` whose names clash
    /// with this table's non-key columns get `suffix`. Rows keep this table's order; a key matching
    /// several rows of `other` gives one row per match.
    /// - Complexity: O(rows + other.rows + output).
    public func join(_ other: Table, on keys: [String], suffix: String = "_right") throws -> Table {
        let leftKeys = try keys.map { try column($0) }
        let rightKeys = try keys.map { try other.column($0) }
        var index: [[String]: [Int]] = [:]
        for r in 0..<other.rowCount { index[rightKeys.map { $0.text(at: r) }, default: []].append(r) }
        var left: [Int] = [], right: [Int] = []
        for r in 0..<rowCount {
            for match in index[leftKeys.map { $0.text(at: r) }] ?? [] { left.append(r); right.append(match) }
        }
        var t = rows(left)
        let taken = other.rows(right)
        for (name, column) in zip(taken.names, taken.columns) where !keys.contains(name) {
            try t.adding(names.contains(name) ? name + suffix : name, column, replace: false)
        }
        return t
    }

    /// Rows whose every column equals another earlier row's are left out.
    public func distinct() -> Table {
        var seen = Set<[String]>()
        var keep: [Int] = []
        for r in 0..<rowCount where seen.insert(columns.map { $0.text(at: r) }).inserted { keep.append(r) }
        return rows(keep)
    }

    /// Shortest text that reads back as the same Double; integers without ".0"; NaN as empty.
    public static func format(_ d: Double) -> String {
        if d.isNaN { return "" }
        if d == d.rounded(), abs(d) < 1e15 { return String(Int64(d)) }
        return d.description
    }
}
