import Foundation

/// The one place that writes and reads results tables: CSV files of named columns whose
/// first record is the header, quoted as RFC 4180 says.
///
/// Appends are safe when several processes write to one file at once (two sweeps, a sweep and
/// a notebook): each append takes an exclusive advisory lock (`flock`) on the file, reads its
/// header, writes the whole row with one `write` on an `O_APPEND` descriptor, then `fsync`s
/// before unlocking. A row is therefore either wholly in the file or not at all, and no row
/// is lost to a concurrent writer. Readers take a shared lock so they never see half a row.
///
/// Records end with `\n` (as the paper's published files do); the reader also accepts `\r\n`.
/// The file's header is authoritative: a row names its cells by column, a column the row does
/// not give is left empty, and a column the header lacks is refused (a sweep never silently
/// drops data).
public enum ResultsCSV {
    public enum Failure: Error, CustomStringConvertible, Equatable {
        case unknownColumns(path: String, columns: [String], header: [String])
        case duplicateColumns(path: String, columns: [String])
        public var description: String {
            switch self {
            case let .unknownColumns(path, columns, header):
                return "\(path) has no column \(columns.map { "'\($0)'" }.joined(separator: ", ")) (its header: \(header.joined(separator: ",")))"
            case let .duplicateColumns(path, columns):
                return "\(path): column \(columns.map { "'\($0)'" }.joined(separator: ", ")) appears more than once in the header"
            }
        }
    }

    /// A parsed table: the header and the data rows, each with exactly `header.count` cells.
    public struct Table: Equatable, Sendable {
        public var header: [String]
        public var rows: [[String]]
        public init(header: [String], rows: [[String]]) { self.header = header; self.rows = rows }

        /// The rows as column name → cell.
        public var records: [[String: String]] {
            rows.map { row in Dictionary(zip(header, row), uniquingKeysWith: { first, _ in first }) }
        }

        /// The index of column `name`, if the header has it.
        public func column(_ name: String) -> Int? { header.firstIndex(of: name) }
    }

    // MARK: Writing

    /// Appends one row (column name → already formatted cell) under an exclusive lock.
    /// A new or empty file gets `columns` as its header first; an existing file keeps its own
    /// header and the row is laid out by it. With `countRows`, also counts the data rows in
    /// the file after the append (under the same lock, so the count includes exactly the rows
    /// written before this one, and this one).
    /// - Complexity: O(row) for the append (the header is read, not the file); O(file) with `countRows`.
    @discardableResult
    public static func append(path: String, columns: [String], row: [String: String], countRows: Bool = false) throws -> Int? {
        let fd = open(path, O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw IOFailure.cannotWrite(path: path, reason: String(cString: strerror(errno))) }
        defer { close(fd) }
        try lock(fd, LOCK_EX, path: path)
        defer { flock(fd, LOCK_UN) }

        var st = stat()
        guard fstat(fd, &st) == 0 else { throw IOFailure.cannotRead(path: path, reason: String(cString: strerror(errno))) }
        guard (st.st_mode & S_IFMT) == S_IFREG else { throw IOFailure.cannotWrite(path: path, reason: "not a regular file") }

        var text = ""
        let header: [String]
        if st.st_size == 0 {
            let repeated = duplicates(columns)
            guard repeated.isEmpty else { throw Failure.duplicateColumns(path: path, columns: repeated) }
            header = columns
            text = encodeRecord(header)
        } else {
            header = try readHeader(fd: fd, path: path)
            // A file whose last row was cut short (not written by this type) gets its own
            // line ended, so the new row stays whole; the reader then reports the short row.
            var last: UInt8 = 0
            if pread(fd, &last, 1, off_t(st.st_size - 1)) == 1, last != UInt8(ascii: "\n") { text = "\n" }
        }
        let unknown = row.keys.filter { !header.contains($0) }.sorted()
        guard unknown.isEmpty else { throw Failure.unknownColumns(path: path, columns: unknown, header: header) }
        text += encodeRecord(header.map { row[$0] ?? "" })
        try writeAll(fd, Array(text.utf8), path: path)
        guard fsync(fd) == 0 else { throw IOFailure.cannotWrite(path: path, reason: "fsync: " + String(cString: strerror(errno))) }
        guard countRows else { return nil }
        return try countRecords(fd: fd, path: path) - 1
    }

    /// Writes a whole table to `path` through a temporary file renamed into place.
    public static func write(_ table: Table, to path: String) throws {
        var text = encodeRecord(table.header)
        for row in table.rows { text += encodeRecord(row) }
        try AtomicFile.write(Array(text.utf8), to: path)
    }

    /// One record: cells quoted where RFC 4180 requires (a comma, a double quote, CR or LF;
    /// quotes doubled), joined by commas, ended by `\n`.
    public static func encodeRecord(_ cells: [String]) -> String {
        cells.map(quote).joined(separator: ",") + "\n"
    }

    /// One cell as RFC 4180 writes it.
    public static func quote(_ cell: String) -> String {
        guard cell.utf8.contains(where: { $0 == 0x2C || $0 == 0x22 || $0 == 0x0A || $0 == 0x0D }) else { return cell }
        return "\"" + cell.replacingOccurrences(of: "\"", with: "\"\"") + "\""
    }

    // MARK: Reading

    /// Reads and parses a whole table under a shared lock. Refuses (with the record's line)
    /// a row whose cell count differs from the header's, an unterminated quote, or a stray
    /// quote inside an unquoted cell.
    public static func read(path: String) throws -> Table {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw IOFailure.cannotRead(path: path, reason: String(cString: strerror(errno))) }
        defer { close(fd) }
        try lock(fd, LOCK_SH, path: path)
        defer { flock(fd, LOCK_UN) }
        let bytes = try readAll(fd: fd, path: path)
        return try parseTable(bytes, path: path)
    }

    /// Parses CSV text (a header, then rows) as RFC 4180 describes. `path` names the source in errors.
    /// - Complexity: O(bytes).
    public static func parseTable(_ bytes: [UInt8], path: String) throws -> Table {
        var records = try parseRecords(bytes, path: path)
        guard !records.isEmpty else { return Table(header: [], rows: []) }
        let header = records.removeFirst().cells
        let repeated = duplicates(header)
        guard repeated.isEmpty else { throw Failure.duplicateColumns(path: path, columns: repeated) }
        for record in records where record.cells.count != header.count {
            throw IOFailure.corrupt(path: path, reason: "the record on line \(record.line) has \(record.cells.count) cells where the header has \(header.count)")
        }
        return Table(header: header, rows: records.map(\.cells))
    }

    /// Splits CSV bytes into records of cells, each with the line it starts on (1-based).
    /// An empty final line is not a record.
    static func parseRecords(_ bytes: [UInt8], path: String) throws -> [(cells: [String], line: Int)] {
        let comma = UInt8(ascii: ","), quoteMark = UInt8(ascii: "\""), lf = UInt8(ascii: "\n"), cr = UInt8(ascii: "\r")
        var records: [(cells: [String], line: Int)] = []
        var cells: [String] = []
        var cell: [UInt8] = []
        var cellWasQuoted = false
        var line = 1, recordLine = 1
        var inRecord = false
        var i = 0
        func endCell() {
            cells.append(String(decoding: cell, as: UTF8.self))
            cell.removeAll(keepingCapacity: true)
            cellWasQuoted = false
        }
        while i < bytes.count {
            let c = bytes[i]
            inRecord = true
            if c == quoteMark, cell.isEmpty, !cellWasQuoted {
                // A quoted cell runs to its closing quote; a doubled quote stands for one.
                let openLine = line
                cellWasQuoted = true
                i += 1
                var closed = false
                while i < bytes.count {
                    let q = bytes[i]
                    if q == quoteMark {
                        if i + 1 < bytes.count, bytes[i + 1] == quoteMark { cell.append(quoteMark); i += 2; continue }
                        closed = true; i += 1; break
                    }
                    if q == lf { line += 1 }
                    cell.append(q); i += 1
                }
                guard closed else { throw IOFailure.corrupt(path: path, reason: "the quoted cell opened on line \(openLine) is never closed") }
                guard i >= bytes.count || bytes[i] == comma || bytes[i] == lf || bytes[i] == cr else {
                    throw IOFailure.corrupt(path: path, reason: "text after a closing quote on line \(line)")
                }
                continue
            }
            switch c {
            case comma:
                endCell(); i += 1
            case lf, cr:
                if c == cr, i + 1 < bytes.count, bytes[i + 1] == lf { i += 1 }
                endCell()
                records.append((cells, recordLine)); cells = []
                i += 1; line += 1; recordLine = line; inRecord = false
            case quoteMark:
                throw IOFailure.corrupt(path: path, reason: "a double quote inside an unquoted cell on line \(line)")
            default:
                cell.append(c); i += 1
            }
        }
        if inRecord { endCell(); records.append((cells, recordLine)) }
        return records
    }

    // MARK: Descriptor helpers

    static func lock(_ fd: Int32, _ operation: Int32, path: String) throws {
        while flock(fd, operation) != 0 {
            guard errno == EINTR else { throw IOFailure.cannotWrite(path: path, reason: "cannot lock: " + String(cString: strerror(errno))) }
        }
    }

    static func writeAll(_ fd: Int32, _ bytes: [UInt8], path: String) throws {
        var offset = 0
        while offset < bytes.count {
            let n = bytes.withUnsafeBytes { buffer in Foundation.write(fd, buffer.baseAddress! + offset, bytes.count - offset) }
            if n < 0 {
                if errno == EINTR { continue }
                throw IOFailure.cannotWrite(path: path, reason: String(cString: strerror(errno)))
            }
            offset += n
        }
    }

    /// Reads the file from its start in chunks of `size` bytes, handing each to `body` until the
    /// file ends or `body` returns false (done).
    static func forEachChunk(fd: Int32, path: String, size: Int = 1 << 16,
                             _ body: (ArraySlice<UInt8>) throws -> Bool) throws {
        var chunk = [UInt8](repeating: 0, count: size)
        var offset: off_t = 0
        while true {
            let n = chunk.withUnsafeMutableBytes { pread(fd, $0.baseAddress, $0.count, offset) }
            if n < 0 {
                if errno == EINTR { continue }
                throw IOFailure.cannotRead(path: path, reason: String(cString: strerror(errno)))
            }
            if n == 0 { return }
            guard try body(chunk[0 ..< n]) else { return }
            offset += off_t(n)
        }
    }

    static func readAll(fd: Int32, path: String) throws -> [UInt8] {
        var bytes: [UInt8] = []
        try forEachChunk(fd: fd, path: path) { bytes.append(contentsOf: $0); return true }
        return bytes
    }

    /// The first record of the file, read in chunks until it is complete (a header cell may
    /// be quoted and hold a newline).
    static func readHeader(fd: Int32, path: String) throws -> [String] {
        var bytes: [UInt8] = []
        var inQuotes = false
        try forEachChunk(fd: fd, path: path, size: 4096) { chunk in
            for k in chunk.indices {
                let c = chunk[k]
                if c == UInt8(ascii: "\"") { inQuotes.toggle() }
                if c == UInt8(ascii: "\n"), !inQuotes {
                    bytes.append(contentsOf: chunk[..<k])
                    return false
                }
            }
            bytes.append(contentsOf: chunk)
            return true
        }
        return try headerCells(bytes, path: path)
    }

    static func headerCells(_ bytes: [UInt8], path: String) throws -> [String] {
        guard let first = try parseRecords(bytes, path: path).first else {
            throw IOFailure.corrupt(path: path, reason: "its first line (the header) is empty")
        }
        guard !(first.cells.count == 1 && first.cells[0].isEmpty) else {
            throw IOFailure.corrupt(path: path, reason: "its first line (the header) is empty")
        }
        let repeated = duplicates(first.cells)
        guard repeated.isEmpty else { throw Failure.duplicateColumns(path: path, columns: repeated) }
        return first.cells
    }

    /// Counts records (line ends outside quotes, plus an unterminated last line), reading in
    /// chunks without holding the file.
    static func countRecords(fd: Int32, path: String) throws -> Int {
        var count = 0, inQuotes = false, last: UInt8 = UInt8(ascii: "\n")
        try forEachChunk(fd: fd, path: path) { chunk in
            for c in chunk {
                if c == UInt8(ascii: "\"") { inQuotes.toggle() } else if c == UInt8(ascii: "\n"), !inQuotes { count += 1 }
            }
            last = chunk[chunk.endIndex - 1]
            return true
        }
        if last != UInt8(ascii: "\n") { count += 1 }
        return count
    }

    static func duplicates(_ names: [String]) -> [String] {
        var seen = Set<String>(), repeated: [String] = []
        for name in names where !seen.insert(name).inserted && !repeated.contains(name) { repeated.append(name) }
        return repeated
    }
}
