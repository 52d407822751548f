import Foundation

/// Reads CSV files (RFC 4180: comma-separated, double-quoted cells may hold commas, quotes as
/// `""` and newlines) into typed tables. A column whose every non-empty cell is a number is
/// numeric (empty cells become NaN, "missing"); any other column is text. `.zst` files are
/// decompressed first. Malformed input is refused with the line and column.
///
/// Its tokenizer (`Cells`) and writer (`record`) are the only CSV code of mge: `ResultsCSV`
/// (results files, sweeps, the paper's table) reads and writes string cells through them.
public enum CSVReader {
    public enum Failure: Error, CustomStringConvertible, Equatable {
        case malformed(path: String, line: Int, column: Int, reason: String)
        public var description: String {
            switch self {
            case let .malformed(path, line, column, reason): return "\(path):\(line): column \(column): \(reason)"
            }
        }
    }

    /// Reads one file (`.csv` or `.csv.zst`).
    /// - Complexity: O(bytes); one pass to split cells, one to convert them.
    public static func read(path: String) throws -> Table {
        guard let data = FileManager.default.contents(atPath: path) else {
            let exists = FileManager.default.fileExists(atPath: path)
            throw IOFailure.cannotRead(path: path, reason: exists ? "permission denied or not a file" : "no such file")
        }
        var bytes = [UInt8](data)
        if path.hasSuffix(".zst") { bytes = try Zstd.decompress(bytes, path: path) }
        return try parse(bytes, name: path)
    }

    /// Parses CSV text; `name` is used in error messages.
    public static func parse(_ bytes: [UInt8], name: String) throws -> Table {
        try bytes.withUnsafeBufferPointer { buffer in
            let cells = try Cells(buffer, name: name)
            guard cells.width > 0 else { throw Failure.malformed(path: name, line: 1, column: 1, reason: "no header line") }
            var columns: [Column] = []
            columns.reserveCapacity(cells.width)
            for c in 0..<cells.width {
                var numbers = [Double](repeating: 0, count: cells.rows)
                var numeric = true
                for r in 0..<cells.rows {
                    guard let x = cells.bytes((r + 1) * cells.width + c, number) else { numeric = false; break }
                    numbers[r] = x
                }
                columns.append(numeric ? .number(numbers) : .text((0..<cells.rows).map { cells.text(($0 + 1) * cells.width + c) }))
            }
            return try Table(names: cells.header, columns: columns)
        }
    }

    /// The cells of CSV text, in one pass over the bytes: each cell's byte range in the text, or
    /// (a quoted cell, unescaped) a negative range into `unquoted`. Row 0 is the header; every
    /// row has its width. A leading UTF-8 byte-order mark is skipped, rows end with `\n` or
    /// `\r\n`, a blank line after the header is no row, and a trailing comma at the end of the
    /// text is one more empty cell. Refused with line and column: an unclosed quote, text after a
    /// closing quote, a quote inside an unquoted cell, a row of another width, a repeated
    /// column name. Valid only while `buffer` is.
    /// - Complexity: O(bytes).
    struct Cells {
        let buffer: UnsafeBufferPointer<UInt8>
        private var starts: [Int] = []
        private var ends: [Int] = []
        private var unquoted: [UInt8] = []
        /// Cells per row; 0 when the text has no header line.
        private(set) var width = 0
        /// Rows after the header.
        private(set) var rows = 0

        static let comma = UInt8(ascii: ","), quote = UInt8(ascii: "\""), newline = UInt8(ascii: "\n"), cr = UInt8(ascii: "\r")

        init(_ buffer: UnsafeBufferPointer<UInt8>, name: String) throws {
            self.buffer = buffer
            var i = 0
            let n = buffer.count
            if n >= 3, buffer[0] == 0xEF, buffer[1] == 0xBB, buffer[2] == 0xBF { i = 3 } // UTF-8 byte-order mark
            var line = 1
            var width = -1
            var rowCells = 0
            starts.reserveCapacity(n / 8)
            ends.reserveCapacity(n / 8)
            while i < n {
                // One cell.
                if buffer[i] == Cells.quote {
                    let start = unquoted.count
                    let openLine = line
                    i += 1
                    var closed = false
                    while i < n {
                        let c = buffer[i]
                        if c == Cells.quote {
                            if i + 1 < n, buffer[i + 1] == Cells.quote { unquoted.append(Cells.quote); i += 2; continue }
                            i += 1; closed = true; break
                        }
                        if c == Cells.newline { line += 1 }
                        unquoted.append(c)
                        i += 1
                    }
                    guard closed else {
                        throw Failure.malformed(path: name, line: openLine, column: rowCells + 1, reason: "quoted cell is never closed")
                    }
                    // A carriage return ends the cell only as the end of the line (CRLF or the file's end).
                    let lineEnd = i < n && buffer[i] == Cells.cr && (i + 1 == n || buffer[i + 1] == Cells.newline)
                    if i < n, buffer[i] != Cells.comma, buffer[i] != Cells.newline, !lineEnd {
                        throw Failure.malformed(path: name, line: line, column: rowCells + 1, reason: "text after the closing quote of a quoted cell")
                    }
                    starts.append(-1 - start)
                    ends.append(-1 - unquoted.count)
                } else {
                    let start = i
                    while i < n {
                        let c = buffer[i]
                        if c == Cells.comma || c == Cells.newline { break }
                        if c == Cells.quote {
                            throw Failure.malformed(path: name, line: line, column: rowCells + 1, reason: "a quote inside an unquoted cell")
                        }
                        i += 1
                    }
                    var end = i
                    if end > start, buffer[end - 1] == Cells.cr { end -= 1 }
                    starts.append(start)
                    ends.append(end)
                }
                rowCells += 1
                if i < n, buffer[i] == Cells.cr { i += 1 }
                if i >= n || buffer[i] == Cells.newline {
                    // End of a row.
                    if width < 0 {
                        width = rowCells
                    } else if rowCells == 1, let s = starts.last, s >= 0, ends.last == s {
                        // A blank line: no row.
                        starts.removeLast(); ends.removeLast()
                    } else if rowCells != width {
                        throw Failure.malformed(path: name, line: line, column: min(rowCells, width) + 1,
                                                reason: "\(rowCells) cells but the header has \(width)")
                    } else {
                        rows += 1
                    }
                    rowCells = 0
                    line += 1
                    i += 1
                } else {
                    i += 1 // the comma
                    if i >= n {
                        // A trailing comma at the end of the file: one more empty cell.
                        starts.append(i); ends.append(i); rowCells += 1
                        guard width < 0 || rowCells == width else {
                            throw Failure.malformed(path: name, line: line, column: rowCells, reason: "\(rowCells) cells but the header has \(width)")
                        }
                        rows += width < 0 ? 0 : 1
                        if width < 0 { width = rowCells }
                    }
                }
            }
            self.width = max(width, 0)
            var seen = Set<String>()
            for (c, h) in header.enumerated() where !seen.insert(h).inserted {
                throw Failure.malformed(path: name, line: 1, column: c + 1, reason: "column name '\(h)' appears twice")
            }
        }

        var header: [String] { (0..<width).map(text) }

        /// Data row `r` (0 is the first row after the header) as text.
        func row(_ r: Int) -> [String] { ((r + 1) * width ..< (r + 2) * width).map(text) }

        func text(_ cell: Int) -> String { bytes(cell) { String(decoding: $0, as: UTF8.self) } }

        /// `body` applied to the cell's bytes (unescaped).
        func bytes<T>(_ cell: Int, _ body: (UnsafeBufferPointer<UInt8>) -> T) -> T {
            let s = starts[cell], e = ends[cell]
            if s >= 0 { return body(UnsafeBufferPointer(rebasing: buffer[s..<e])) }
            return unquoted[(-1 - s)..<(-1 - e)].withUnsafeBufferPointer(body)
        }
    }

    /// Decimal numbers (`12`, `-3.5e-07`, `.5`), `nan`, `inf`, `-inf`; NaN for an empty cell;
    /// nil otherwise (hex and other forms strtod would take are refused so text stays text).
    static func number(_ cell: UnsafeBufferPointer<UInt8>) -> Double? {
        var lo = 0, hi = cell.count
        while lo < hi, cell[lo] == 0x20 { lo += 1 }
        while hi > lo, cell[hi - 1] == 0x20 { hi -= 1 }
        if lo == hi { return .nan }
        guard hi - lo < 64 else { return nil }
        var digits = 0
        for k in lo..<hi {
            switch cell[k] {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digits += 1
            case UInt8(ascii: "."), UInt8(ascii: "-"), UInt8(ascii: "+"), UInt8(ascii: "e"), UInt8(ascii: "E"): break
            default:
                let word = String(decoding: UnsafeBufferPointer(rebasing: cell[lo..<hi]), as: UTF8.self).lowercased()
                switch word {
                case "nan", "+nan", "-nan": return .nan
                case "inf", "+inf", "infinity": return .infinity
                case "-inf", "-infinity": return -.infinity
                default: return nil
                }
            }
        }
        guard digits > 0 else { return nil }
        var scratch = (UInt64(0), UInt64(0), UInt64(0), UInt64(0), UInt64(0), UInt64(0), UInt64(0), UInt64(0))
        return withUnsafeMutableBytes(of: &scratch) { raw -> Double? in
            let p = raw.bindMemory(to: CChar.self)
            for k in lo..<hi { p[k - lo] = CChar(bitPattern: cell[k]) }
            p[hi - lo] = 0
            var end: UnsafeMutablePointer<CChar>?
            let x = strtod(p.baseAddress!, &end)
            guard let end, end - p.baseAddress! == hi - lo else { return nil }
            return x
        }
    }

    /// Writes `table` as CSV (header + rows) through a temporary file renamed into place.
    public static func write(_ table: Table, to path: String) throws {
        var out = record(table.names)
        for r in 0..<table.rowCount { out += record(table.columns.map { $0.text(at: r) }) }
        try AtomicFile.write(Array(out.utf8), to: path)
    }

    /// One record as RFC 4180 writes it: cells quoted where they hold a comma, a double quote, CR
    /// or LF (quotes doubled), joined by commas, ended by `\n`. A record of one empty cell is
    /// written `""`, so it is not read back as a blank line.
    static func record(_ cells: [String]) -> String {
        if cells.count == 1, cells[0].isEmpty { return "\"\"\n" }
        return cells.map(quote).joined(separator: ",") + "\n"
    }

    /// One cell as RFC 4180 writes it.
    static func quote(_ cell: String) -> String {
        guard cell.utf8.contains(where: { $0 == 0x2C || $0 == 0x22 || $0 == 0x0A || $0 == 0x0D }) else { return cell }
        return "\"" + cell.replacingOccurrences(of: "\"", with: "\"\"") + "\""
    }
}
