import Lang

/// How values turn into text: `print` form, inline form (inside lists and records), and the
/// notebook-cell form used when an expression statement's value is shown (tables for records).
public enum Display {
    /// Containers nested deeper than this print as `[…]` (a deep value must not overflow the stack).
    static let maxDepth = 64
    /// Table cells longer than this are cut in the short form.
    static let maxCellWidth = 60

    /// Shortest text that reads back as the same Double: `0.1`, `3.0`, `1e-07`, `1e+16`, `inf`, `nan`.
    public static func float(_ d: Double) -> String { d.description }

    /// A float in a table cell: 6 significant digits (`0.999999999` → `1.0`, `0.0543218` →
    /// `0.0543218`, `1234567.0` → `1.23457e+06`); `print`, CSV and records keep full precision.
    public static func tableFloat(_ d: Double) -> String {
        guard d.isFinite else { return d.description }
        var text = String(format: "%.6g", d)
        if !text.contains(".") && !text.contains("e") { text += ".0" }
        return text
    }

    /// Tables wider than this many characters are wrapped into blocks of columns, each
    /// repeating the first (key) column. The REPL sets it from the terminal's width.
    nonisolated(unsafe) public static var tableWidth = 120

    /// Help text (`?name`) is wrapped to this width when set (the REPL sets it from the terminal's).
    nonisolated(unsafe) public static var helpWidth: Int?

    /// Wraps each line longer than `width` at spaces; continuation lines keep the line's indent.
    public static func wrap(_ text: String, width: Int) -> String {
        text.split(separator: "\n", omittingEmptySubsequences: false).map { line -> String in
            guard line.count > width else { return String(line) }
            let indent = String(line.prefix { $0 == " " })
            var lines: [String] = []
            var current = ""
            for word in line.dropFirst(indent.count).split(separator: " ", omittingEmptySubsequences: false) {
                let candidate = current.isEmpty ? indent + word : current + " " + word
                if candidate.count > width, !current.isEmpty {
                    lines.append(current)
                    current = indent + word
                } else {
                    current = candidate
                }
            }
            lines.append(current)
            return lines.joined(separator: "\n")
        }.joined(separator: "\n")
    }

    /// `print` and `str` form: strings raw, everything else inline.
    public static func plain(_ value: Value) -> String {
        if case .string(let s) = value { return s }
        return inline(value)
    }

    /// Form inside containers: strings quoted, records as `{a: 1, b: "x"}`.
    public static func inline(_ value: Value, depth: Int = 0) -> String {
        switch value {
        case .none: return "none"
        case .bool(let b): return b ? "true" : "false"
        case .int(let i): return String(i)
        case .float(let d): return float(d)
        case .string(let s): return quoted(s)
        case .list(let items):
            if depth >= maxDepth { return "[…]" }
            return "[" + items.map { inline($0, depth: depth + 1) }.joined(separator: ", ") + "]"
        case .record(let r):
            if depth >= maxDepth { return "{…}" }
            let fields = r.fields.map { "\(fieldName($0)): \(inline($1, depth: depth + 1))" }
            return "{" + fields.joined(separator: ", ") + "}"
        case .function(let f):
            return "<fn \(f.name)(\(f.decl.params.map(\.name).joined(separator: ", ")))>"
        case .builtin(let b): return "<builtin \(b.name)>"
        case .native(let object): return object.display(long: false)
        }
    }

    static func quoted(_ s: String) -> String {
        var out = "\""
        for ch in s.unicodeScalars {
            switch ch {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\t": out += "\\t"
            case "\r": out += "\\r"
            case "\0": out += "\\0"
            default: out.unicodeScalars.append(ch)
            }
        }
        return out + "\""
    }

    static func fieldName(_ name: String) -> String {
        let isIdentifier = name.first.map { $0.isLetter || $0 == "_" } == true
            && name.allSatisfy { $0.isLetter || $0.isNumber || $0 == "_" }
        return isIdentifier ? name : quoted(name)
    }

    /// What a notebook cell shows for a value; nil for `none` (nothing is shown).
    /// Records become name/value tables, non-empty lists of records one-column-per-field tables.
    public static func cell(_ value: Value, long: Bool = false) -> String? {
        switch value {
        case .none:
            return nil
        case .record(let r) where r.count > 0:
            let rows = r.fields.map { [$0, cellText($1, long: long)] }
            return table(header: ["field", "value"], rows: rows, rightAligned: [false, false])
        case .list(let items) where !items.isEmpty && items.allSatisfy({ if case .record = $0 { return true }; return false }):
            return recordTable(items, long: long)
        case .native(let object):
            return object.display(long: long)
        default:
            return plain(value)
        }
    }

    /// The table of `summary(x)` under a native object's line, for its long form ("" when it has none).
    static func longSummary(_ object: Summarizable) -> String {
        guard let summary = try? object.summary(), let table = cell(summary, long: true) else { return "" }
        return "\n" + table
    }

    static func recordTable(_ items: [Value], long: Bool) -> String {
        var columns: [String] = []
        var seen = Set<String>()
        for case .record(let r) in items {
            for name in r.names where !seen.contains(name) { seen.insert(name); columns.append(name) }
        }
        var numeric = [Bool](repeating: true, count: columns.count)
        var rows: [[String]] = []
        for case .record(let r) in items {
            var row: [String] = []
            for (c, name) in columns.enumerated() {
                let v = r[name]
                switch v {
                case .int?, .float?, nil, Value.none?: break
                default: numeric[c] = false
                }
                row.append(v.map { cellText($0, long: long) } ?? "")
            }
            rows.append(row)
        }
        return table(header: columns, rows: rows, rightAligned: numeric)
    }

    /// One table cell: strings raw (newlines escaped), long cells cut in the short form.
    private static func cellText(_ value: Value, long: Bool) -> String {
        var text: String
        switch value {
        case .string(let s): text = s.replacingNewlines()
        case .native(let object): text = object.display(long: false).replacingNewlines()
        case .float(let d): text = tableFloat(d)
        default: text = inline(value)
        }
        if !long, text.count > maxCellWidth { text = String(text.prefix(maxCellWidth - 1)) + "…" }
        return text
    }

    /// Columns separated by two spaces; no trailing spaces. A table wider than `tableWidth` is
    /// printed as blocks of columns (each repeating the first column), separated by a blank line.
    static func table(header: [String], rows: [[String]], rightAligned: [Bool]) -> String {
        let all = [header] + rows
        var widths = [Int](repeating: 0, count: header.count)
        for row in all { for (i, cell) in row.enumerated() { widths[i] = max(widths[i], cell.count) } }
        var blocks: [[Int]] = [[]]
        var used = 0
        for i in widths.indices {
            let w = widths[i] + (i > 0 ? 2 : 0)
            if i > 1, used + w > tableWidth, blocks[blocks.count - 1].count > 1 {
                blocks.append([0])
                used = widths[0]
            }
            blocks[blocks.count - 1].append(i)
            used += w
        }
        return blocks.map { columns in
            tableBlock(all.map { row in columns.map { $0 < row.count ? row[$0] : "" } },
                       widths: columns.map { widths[$0] }, rightAligned: columns.map { rightAligned[$0] })
        }.joined(separator: "\n\n")
    }

    private static func tableBlock(_ all: [[String]], widths: [Int], rightAligned: [Bool]) -> String {
        var lines: [String] = []
        for row in all {
            var line = ""
            for (i, cell) in row.enumerated() {
                let pad = String(repeating: " ", count: widths[i] - cell.count)
                if i > 0 { line += "  " }
                line += rightAligned[i] ? pad + cell : cell + pad
            }
            while line.last == " " { line.removeLast() }
            lines.append(line)
        }
        return lines.joined(separator: "\n")
    }
}

private extension String {
    func replacingNewlines() -> String {
        contains("\n") ? split(separator: "\n", omittingEmptySubsequences: false).joined(separator: "\\n") : self
    }
}
