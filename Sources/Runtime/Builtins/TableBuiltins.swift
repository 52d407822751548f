import Foundation
import Kernels

// Tables in the language: reading and writing CSV, building tables from values, and the
// usual operations (filter, group with aggregates, merge on keys, new columns, sort, select).
// Every operation returns a new table; the kernels are in Kernels/Analysis/Table.swift.

let tableBuiltins: [Builtin] = [
    Builtin("read_csv", [Param("path", .oneOf([.string, .list])), Param("rename", .optional(.record), default: Value.none)],
            returns: "table",
            summary: "Reads a CSV file (or .csv.zst) into a table: columns whose every non-empty cell is a number are numeric "
                + "(empty = missing), others text. A list of paths reads them all and stacks their rows (same columns needed). "
                + "rename: {old: \"new\"} renames columns of each file as it is read (absent names are ignored). "
                + "A malformed file is refused with its line and column.",
            example: "t = read_csv(\"data/paper/unrolled.csv.zst\");  t = read_csv([\"a.csv\", \"b.csv\"], rename: {pruning_algorithm: \"pruning\"})") { args in
        var paths: [String] = []
        switch args["path"] {
        case .string: paths = [try filePath(args, "path")]
        case .list(let items):
            for (i, item) in items.enumerated() {
                guard case .string(let text) = item, let p = checkedPath(text) else { throw args.bad("path", "item \(i) is \(Display.inline(item)), a path expected") }
                paths.append(p)
            }
            guard !paths.isEmpty else { throw args.bad("path", "an empty list of paths") }
        default: break
        }
        var renames: [(String, String)] = []
        if case .record(let r)? = args.optional("rename") {
            for (old, new) in r.fields {
                guard case .string(let name) = new else { throw args.bad("rename", "the new name of '\(old)' is \(new.typeName), string expected") }
                renames.append((old, name))
            }
        }
        var tables: [Table] = []
        for path in paths {
            try Cancellation.check()
            var table = try tableError(args, "path") { try CSVReader.read(path: path) }
            if !renames.isEmpty { table = try tableError(args, "rename") { try renamed(table, renames) } }
            tables.append(table)
        }
        if tables.count == 1 { return .native(TableObject(tables[0])) }
        return .native(TableObject(try stacked(tables, sources: paths, args: args, blame: "path")))
    },
    Builtin("write_csv", [Param("t", .native("table")), Param("path", .string)], returns: "none",
            summary: "Writes a table as CSV (header + rows; written to a temporary file and renamed into place).",
            example: "write_csv(t, \"results/summary.csv\")") { args in
        let table = try args.table("t").table
        let path = try filePath(args, "path")
        try tableError(args, "path") { try CSVReader.write(table, to: path) }
        reportWrite(path, file: path, args)
        return .none
    },
    Builtin("table", [Param("x", .oneOf([.record, .list]))], returns: "table",
            summary: "A table from a record of equal-length lists ({name: [values]}) or from a list of records (one row each; "
                + "a field missing from a row is a missing value). Values must be numbers (none = missing), bools or strings.",
            example: "t = table({pruner: [\"snip\", \"grasp\"], tau: [0.6, 0.4]});  t = table(rows)") { args in
        var names: [String] = [], columns: [[Value]] = []
        switch args["x"] {
        case .record(let r):
            for (name, value) in r.fields {
                guard case .list(let items) = value else { throw args.bad("x", "field '\(name)' is a \(value.typeName), a list of values expected") }
                names.append(name); columns.append(items)
            }
        case .list(let rows):
            for row in rows {
                guard case .record(let r) = row else { throw args.bad("x", "a list of records expected, found a \(row.typeName)") }
                for name in r.names where !names.contains(name) { names.append(name) }
            }
            columns = names.map { name in rows.map { row in if case .record(let r) = row { return r[name] ?? .none }; return .none } }
        default: break
        }
        let built = try zip(names, columns).map { name, values in try column(values, name: name, args: args, blame: "x") }
        return .native(TableObject(try tableError(args, "x") { try Table(names: names, columns: built) }))
    },
    Builtin("filter", [Param("x", .oneOf([.native("table"), .list])), Param("keep", .oneOf([.function, .record]))],
            returns: "table or list",
            summary: "The rows of a table (or items of a list) that keep accepts: a function of the row record returning true, "
                + "or a record of column values to match ({model: \"CONV-6\"}; a list of values matches any of them).",
            example: "filter(t, {model: \"Resnet-20\", pruning: [\"snip\", \"grasp\"]});  filter(t, fn (r) { return r.sparsity >= 0.9 })") { args in
        if case .list(let items) = args["x"] {
            guard case .record = args["keep"] else {
                return .list(try items.filter { try args.interpreter.call(args["keep"], [$0]).isTruthy })
            }
            throw args.bad("keep", "a list is filtered by a function")
        }
        let table = try args.table("x").table
        var keep: [Int] = []
        switch args["keep"] {
        case .record(let wanted):
            var tests: [(Column, (Column, Int) -> Bool)] = []
            for (name, value) in wanted.fields {
                let col = try tableError(args, "keep") { try table.column(name) }
                let options: [Value] = { if case .list(let xs) = value { return xs }; return [value] }()
                let numbers = options.compactMap(\.asDouble), texts: [String] = options.compactMap { if case .string(let s) = $0 { return s }; return nil }
                tests.append((col, { c, r in
                    switch c {
                    case .number(let xs): return numbers.contains(xs[r])
                    case .text(let xs): return texts.contains(xs[r])
                    }
                }))
            }
            keep = (0..<table.rowCount).filter { r in tests.allSatisfy { $0.1($0.0, r) } }
        default:
            let object = try args.table("x")
            for r in 0..<table.rowCount where try args.interpreter.call(args["keep"], [.record(object.row(r))]).isTruthy { keep.append(r) }
        }
        return .native(TableObject(table.rows(keep)))
    },
    Builtin("group", [Param("t", .native("table")), Param("by", .oneOf([.string, .list])),
                      Param("aggregates", .record, default: .record(Record()))],
            returns: "table",
            summary: "One row per distinct value of the by column(s), in order of appearance, with n (rows in the group) and, for each "
                + "aggregates entry {column: \"mean\"} or {column: [\"mean\", \"std\"]}, a column column_mean…. Aggregates: mean, median, "
                + "min, max, sum, std (sample), count (non-missing), first. Missing values are skipped.",
            example: "group(t, [\"model\", \"sparsity\"], {accuracy: [\"mean\", \"std\"], edges: \"max\"})") { args in
        let table = try args.table("t").table
        let by = try stringList(args, "by")
        var specs: [(column: String, aggregate: String)] = []
        for (name, value) in try args.record("aggregates").fields {
            let names: [Value] = { if case .list(let xs) = value { return xs }; return [value] }()
            for n in names {
                guard case .string(let aggregate) = n, aggregateNames.contains(aggregate) else {
                    throw args.bad("aggregates", "unknown aggregate \(Display.inline(n)) for '\(name)' (expected one of \(aggregateNames.joined(separator: ", ")))")
                }
                specs.append((name, aggregate))
            }
        }
        let (keys, rows) = try tableError(args, "by") { try table.groups(by: by) }
        var out = try tableError(args, "by") { try table.selecting(by) }.rows(rows.map { $0[0] })
        try tableError(args, "by") { try out.adding("n", .number(rows.map { Double($0.count) }), replace: false) }
        _ = keys
        for spec in specs {
            let column = try tableError(args, "aggregates") { try table.column(spec.column) }
            let values: [Double]
            switch (column, spec.aggregate) {
            case (.number(let xs), _): values = rows.map { aggregate(spec.aggregate, $0.map { xs[$0] }.filter { !$0.isNaN }) }
            case (.text, "count"), (.text, "first"):
                if spec.aggregate == "count" { values = rows.map { Double($0.count) } } else {
                    try tableError(args, "aggregates") { try out.adding(spec.column + "_first", column.take(rows.map { $0[0] })) }
                    continue
                }
            default: throw args.bad("aggregates", "'\(spec.aggregate)' of column '\(spec.column)' needs numbers; it holds text")
            }
            try tableError(args, "aggregates") { try out.adding(spec.column + "_" + spec.aggregate, .number(values)) }
        }
        return .native(TableObject(out))
    },
    Builtin("merge", [Param("left", .native("table")), Param("right", .native("table")), Param("on", .oneOf([.string, .list])),
                      Param("suffix", .string, default: .string("_right"))],
            returns: "table",
            summary: "Joins two tables on equal key columns (an inner join, keys compared as text): each left row is paired with "
                + "every right row of the same key, in the left table's order. Right columns whose names clash get suffix.",
            example: "merge(ramanujan, accuracies, on: [\"model\", \"dataset\", \"sparsity\", \"seed\"])") { args in
        let left = try args.table("left").table
        let right = try args.table("right").table
        let on = try stringList(args, "on")
        return .native(TableObject(try tableError(args, "on") { try left.join(right, on: on, suffix: try args.string("suffix")) }))
    },
    Builtin("with_column", [Param("t", .native("table")), Param("name", .string), Param("values", .oneOf([.list, .function]))],
            returns: "table",
            summary: "The table with a new (or replaced) column: a list with one value per row, or a function of the row record.",
            example: "t2 = with_column(t, \"density\", fn (r) { return 1 - r.sparsity });  with_column(t, \"pred\", predict(f, t))") { args in
        let object = try args.table("t")
        let name = try args.string("name")
        var values: [Value]
        if case .list(let xs) = args["values"] {
            values = xs
        } else {
            values = []
            values.reserveCapacity(object.table.rowCount)
            for r in 0..<object.table.rowCount { values.append(try args.interpreter.call(args["values"], [.record(object.row(r))])) }
        }
        let built = try column(values, name: name, args: args, blame: "values")
        return .native(TableObject(try tableError(args, "values") { try object.table.with(name, built) }))
    },
    Builtin("select", [Param("t", .native("table")), Param("columns", .list)], returns: "table",
            summary: "The table with only the named columns, in that order.",
            example: "select(t, [\"model\", \"sparsity\", \"accuracy\"])") { args in
        let table = try args.table("t").table
        return .native(TableObject(try tableError(args, "columns") { try table.selecting(try stringList(args, "columns")) }))
    },
    Builtin("rename", [Param("t", .native("table")), Param("names", .record)], returns: "table",
            summary: "The table with columns renamed: {old: \"new\"}; every old name must exist.",
            example: "rename(t, {pruning_algorithm: \"pruning\"})") { args in
        let table = try args.table("t").table
        var pairs: [(String, String)] = []
        for (old, new) in try args.record("names").fields {
            guard case .string(let name) = new else { throw args.bad("names", "the new name of '\(old)' is \(new.typeName), string expected") }
            _ = try tableError(args, "names") { try table.index(of: old) }
            pairs.append((old, name))
        }
        return .native(TableObject(try tableError(args, "names") { try renamed(table, pairs) }))
    },
    Builtin("concat", [Param("tables", .list)], returns: "table",
            summary: "Stacks the rows of tables with the same columns (in any order; the first table's order is kept).",
            example: "concat([t1, t2])") { args in
        var tables: [Table] = []
        for (i, item) in try args.list("tables").enumerated() {
            guard case .native(let native) = item, let object = TableObject.of(native) else { throw args.bad("tables", "item \(i) is a \(item.typeName), table expected") }
            tables.append(object.table)
        }
        guard !tables.isEmpty else { throw args.bad("tables", "an empty list") }
        return .native(TableObject(try stacked(tables, sources: tables.indices.map { "table \($0)" }, args: args, blame: "tables")))
    },
    Builtin("distinct", [Param("t", .native("table"))], returns: "table",
            summary: "The table without rows that repeat an earlier row exactly (all columns equal).",
            example: "t = distinct(read_csv(\"unrolled.csv\"))") { args in
        .native(TableObject(try args.table("t").table.distinct()))
    },
    Builtin("sort_by", [Param("t", .native("table")), Param("column", .string), Param("reverse", .bool, default: .bool(false))],
            returns: "table",
            summary: "The rows sorted by one column (numbers or text; stable; missing values last).",
            example: "sort_by(importance(f, t), \"mean_abs_shap\", reverse: true)") { args in
        let table = try args.table("t").table
        let column = try tableError(args, "column") { try table.column(try args.string("column")) }
        let reverse = try args.bool("reverse")
        var order = Array(0..<table.rowCount)
        switch column {
        case .number(let xs):
            order.sort { a, b in
                if xs[a].isNaN || xs[b].isNaN { return !xs[a].isNaN && xs[b].isNaN }
                return xs[a] == xs[b] ? a < b : (reverse ? xs[a] > xs[b] : xs[a] < xs[b])
            }
        case .text(let xs):
            order.sort { a, b in xs[a] == xs[b] ? a < b : (reverse ? xs[a] > xs[b] : xs[a] < xs[b]) }
        }
        return .native(TableObject(table.rows(order)))
    },
    Builtin("head", [Param("t", .native("table")), Param("n", .int, default: .int(10))], returns: "table",
            summary: "The first n rows (a negative n: all but the last -n).",
            example: "head(t, 5)") { args in
        let table = try args.table("t").table
        let n = try args.int("n")
        let count = n >= 0 ? min(n, table.rowCount) : max(0, table.rowCount + n)
        return .native(TableObject(table.rows(Array(0..<count))))
    },
]

let aggregateNames = ["mean", "median", "min", "max", "sum", "std", "count", "first"]

/// One aggregate of the non-missing values of a group (NaN when there are none).
func aggregate(_ name: String, _ xs: [Double]) -> Double {
    if name == "count" { return Double(xs.count) }
    guard !xs.isEmpty else { return .nan }
    switch name {
    case "mean": return xs.reduce(0, +) / Double(xs.count)
    case "median":
        let s = xs.sorted()
        return s.count % 2 == 1 ? s[s.count / 2] : (s[s.count / 2 - 1] + s[s.count / 2]) / 2
    case "min": return xs.min() ?? .nan
    case "max": return xs.max() ?? .nan
    case "sum": return xs.reduce(0, +)
    case "std":
        guard xs.count > 1 else { return .nan }
        let m = xs.reduce(0, +) / Double(xs.count)
        return (xs.reduce(0) { $0 + ($1 - m) * ($1 - m) } / Double(xs.count - 1)).squareRoot()
    default: return xs[0]
    }
}

/// A column from language values: numbers, bools and none make a numeric column (none = missing),
/// strings (and none) a text column; anything else, or numbers mixed with strings, is refused.
func column(_ values: [Value], name: String, args: Arguments, blame: String) throws -> Column {
    var numbers: [Double] = [], texts: [String] = []
    var isText = false, isNumber = false
    for (i, value) in values.enumerated() {
        switch value {
        case .int, .float: isNumber = true; numbers.append(value.asDouble ?? .nan); texts.append("")
        case .bool(let b): isNumber = true; numbers.append(b ? 1 : 0); texts.append("")
        case .none: numbers.append(.nan); texts.append("")
        case .string(let s): isText = true; texts.append(s); numbers.append(.nan)
        default: throw args.bad(blame, "column '\(name)' row \(i) is a \(value.typeName); numbers, bools or strings expected")
        }
        if isText, isNumber { throw args.bad(blame, "column '\(name)' mixes numbers and strings (row \(i))") }
    }
    return isText ? .text(texts) : .number(numbers)
}

/// A list of column names given as one string or a list of strings.
func stringList(_ args: Arguments, _ name: String) throws -> [String] {
    switch args[name] {
    case .string(let s): return [s]
    case .list(let items):
        return try items.map { item in
            guard case .string(let s) = item else { throw args.bad(name, "column names expected, found \(Display.inline(item))") }
            return s
        }
    default: throw args.bad(name, "a column name or list of names expected, got \(args[name].typeName)")
    }
}

private func renamed(_ table: Table, _ pairs: [(String, String)]) throws -> Table {
    var names = table.names
    for (old, new) in pairs { if let i = names.firstIndex(of: old) { names[i] = new } }
    return try Table(names: names, columns: table.columns)
}

/// Rows of several tables with the same column names, stacked; a column numeric in one table and
/// text in another becomes text.
private func stacked(_ tables: [Table], sources: [String], args: Arguments, blame: String) throws -> Table {
    let names = tables[0].names
    for (table, source) in zip(tables, sources) {
        let missing = names.filter { !table.names.contains($0) }, extra = table.names.filter { !names.contains($0) }
        guard missing.isEmpty, extra.isEmpty else {
            throw args.bad(blame, "\(source) has different columns from \(sources[0]): "
                + (missing.isEmpty ? "" : "no \(missing.joined(separator: ", "))") + (missing.isEmpty || extra.isEmpty ? "" : "; ")
                + (extra.isEmpty ? "" : "extra \(extra.joined(separator: ", "))") + " (rename: can align them)")
        }
    }
    var columns: [Column] = []
    for name in names {
        let parts = try tables.map { try $0.column(name) }
        if parts.allSatisfy(\.isNumeric) {
            columns.append(.number(parts.flatMap { if case .number(let xs) = $0 { return xs }; return [] }))
        } else {
            columns.append(.text(parts.flatMap { part in (0..<part.count).map { part.text(at: $0) } }))
        }
    }
    return try tableError(args, blame) { try Table(names: names, columns: columns) }
}

/// Runs a table kernel, turning its errors (unknown columns, malformed files) into argument errors.
@discardableResult
func tableError<T>(_ args: Arguments, _ blame: String, _ body: () throws -> T) throws -> T {
    do {
        return try body()
    } catch let error as TableFailure {
        throw args.bad(blame, error.description)
    } catch let error as CSVReader.Failure {
        throw RuntimeError(error.description)
    } catch let error as IOFailure {
        throw args.bad(blame, error.description)
    } catch let error as XGBoostFailure {
        throw args.bad(blame, error.description)
    }
}
