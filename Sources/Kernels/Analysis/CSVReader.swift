import CZstd
import Foundation

/// Reads CSV files (RFC 4180: comma-separated, double-quoted cells may hold commas, quotes as
/// `""` and newlines) into typed tables. A column whose every non-empty cell is a number is
/// numeric (empty cells become NaN, "missing"); any other column is text. `.zst` files are
/// decompressed first. Malformed input is refused with the line and column.
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
            var parser = Parser(buffer: buffer, name: name)
            return try parser.table()
        }
    }

    /// One pass over the bytes, recording each cell's byte range; quoted cells are unescaped
    /// into `unquoted` and recorded as negative ranges into it.
    private struct Parser {
        let buffer: UnsafeBufferPointer<UInt8>
        let name: String
        var starts: [Int] = []
        var ends: [Int] = []
        var unquoted: [UInt8] = []

        init(buffer: UnsafeBufferPointer<UInt8>, name: String) { self.buffer = buffer; self.name = name }

        static let comma = UInt8(ascii: ","), quote = UInt8(ascii: "\""), newline = UInt8(ascii: "\n"), cr = UInt8(ascii: "\r")

        mutating func table() throws -> Table {
            var i = 0
            let n = buffer.count
            if n >= 3, buffer[0] == 0xEF, buffer[1] == 0xBB, buffer[2] == 0xBF { i = 3 } // UTF-8 byte-order mark
            var line = 1
            var width = -1
            var rowCells = 0
            var rows = 0
            starts.reserveCapacity(n / 8)
            ends.reserveCapacity(n / 8)
            while i < n {
                // One cell.
                if buffer[i] == Parser.quote {
                    let start = unquoted.count
                    let openLine = line
                    i += 1
                    var closed = false
                    while i < n {
                        let c = buffer[i]
                        if c == Parser.quote {
                            if i + 1 < n, buffer[i + 1] == Parser.quote { unquoted.append(Parser.quote); i += 2; continue }
                            i += 1; closed = true; break
                        }
                        if c == Parser.newline { line += 1 }
                        unquoted.append(c)
                        i += 1
                    }
                    guard closed else {
                        throw Failure.malformed(path: name, line: openLine, column: rowCells + 1, reason: "quoted cell is never closed")
                    }
                    // A carriage return ends the cell only as the end of the line (CRLF or the file's end).
                    let lineEnd = i < n && buffer[i] == Parser.cr && (i + 1 == n || buffer[i + 1] == Parser.newline)
                    if i < n, buffer[i] != Parser.comma, buffer[i] != Parser.newline, !lineEnd {
                        throw Failure.malformed(path: name, line: line, column: rowCells + 1, reason: "text after the closing quote of a quoted cell")
                    }
                    starts.append(-1 - start)
                    ends.append(-1 - unquoted.count)
                } else {
                    let start = i
                    while i < n {
                        let c = buffer[i]
                        if c == Parser.comma || c == Parser.newline { break }
                        if c == Parser.quote {
                            throw Failure.malformed(path: name, line: line, column: rowCells + 1, reason: "a quote inside an unquoted cell")
                        }
                        i += 1
                    }
                    var end = i
                    if end > start, buffer[end - 1] == Parser.cr { end -= 1 }
                    starts.append(start)
                    ends.append(end)
                }
                rowCells += 1
                if i < n, buffer[i] == Parser.cr { i += 1 }
                if i >= n || buffer[i] == Parser.newline {
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
            guard width > 0 else { throw Failure.malformed(path: name, line: 1, column: 1, reason: "no header line") }
            var headers: [String] = []
            for c in 0..<width { headers.append(text(c)) }
            var seen = Set<String>()
            for (c, h) in headers.enumerated() where !seen.insert(h).inserted {
                throw Failure.malformed(path: name, line: 1, column: c + 1, reason: "column name '\(h)' appears twice")
            }
            var columns: [Column] = []
            columns.reserveCapacity(width)
            for c in 0..<width {
                var numbers = [Double](repeating: 0, count: rows)
                var numeric = true
                for r in 0..<rows {
                    guard let x = number((r + 1) * width + c) else { numeric = false; break }
                    numbers[r] = x
                }
                if numeric {
                    columns.append(.number(numbers))
                } else {
                    columns.append(.text((0..<rows).map { text((($0 + 1) * width) + c) }))
                }
            }
            return try Table(names: headers, columns: columns)
        }

        func text(_ cell: Int) -> String {
            let s = starts[cell], e = ends[cell]
            if s >= 0 { return String(decoding: UnsafeBufferPointer(rebasing: buffer[s..<e]), as: UTF8.self) }
            return String(decoding: unquoted[(-1 - s)..<(-1 - e)], as: UTF8.self)
        }

        /// The cell as a number: NaN when empty, nil when it is not a number.
        func number(_ cell: Int) -> Double? {
            let s = starts[cell], e = ends[cell]
            if s >= 0 {
                return CSVReader.number(UnsafeBufferPointer(rebasing: buffer[s..<e]))
            }
            return unquoted[(-1 - s)..<(-1 - e)].withUnsafeBufferPointer { CSVReader.number($0) }
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
        var out = table.names.map(escape).joined(separator: ",") + "\n"
        for r in 0..<table.rowCount {
            out += table.columns.map { escape($0.text(at: r)) }.joined(separator: ",")
            out += "\n"
        }
        try AtomicFile.write(Array(out.utf8), to: path)
    }

    static func escape(_ cell: String) -> String {
        guard cell.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" || $0 == "\r" }) else { return cell }
        return "\"" + cell.replacingOccurrences(of: "\"", with: "\"\"") + "\""
    }
}

/// Whole-buffer zstd decompression (for `.zst` data files shipped with the project).
enum Zstd {
    static func decompress(_ input: [UInt8], path: String) throws -> [UInt8] {
        guard let stream = ZSTD_createDStream() else { throw IOFailure.cannotRead(path: path, reason: "zstd could not allocate a decompressor") }
        defer { ZSTD_freeDStream(stream) }
        var output: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: ZSTD_DStreamOutSize())
        try input.withUnsafeBytes { src in
            var inBuffer = ZSTD_inBuffer(src: src.baseAddress, size: src.count, pos: 0)
            var last = 0
            var produced = 0
            repeat {
                produced = try chunk.withUnsafeMutableBytes { dst -> Int in
                    var outBuffer = ZSTD_outBuffer(dst: dst.baseAddress, size: dst.count, pos: 0)
                    last = ZSTD_decompressStream(stream, &outBuffer, &inBuffer)
                    if ZSTD_isError(last) != 0 {
                        throw IOFailure.corrupt(path: path, reason: "zstd: " + String(cString: ZSTD_getErrorName(last)))
                    }
                    return outBuffer.pos
                }
                output.append(contentsOf: chunk[0..<produced])
            } while inBuffer.pos < inBuffer.size || produced == chunk.count
            guard last == 0 else { throw IOFailure.corrupt(path: path, reason: "the compressed data is truncated") }
        }
        return output
    }
}
