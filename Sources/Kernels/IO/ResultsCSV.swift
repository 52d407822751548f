import Foundation

/// The one place that writes and reads results tables: CSV files of named columns whose
/// first record is the header, as string cells. The text is tokenised and written by
/// `CSVReader` (RFC 4180); this type adds the locking, the appends and the header rules.
///
/// Appends are safe when several processes write to one file at once (two sweeps, a sweep and
/// a notebook): each append takes an exclusive advisory lock (`flock`) on the file, reads its
/// header, writes the whole row with one `write` on an `O_APPEND` descriptor, then `fsync`s
/// before unlocking. A row is therefore either wholly in the file or not at all, and no row
/// is lost to a concurrent writer. Readers take a shared lock so they never see half a row.
///
/// Records end with `\n` (as the paper's published files do); the reader also accepts `\r\n`
/// and skips blank lines.
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
            text = CSVReader.record(header)
        } else {
            header = try readHeader(fd: fd, path: path)
            // A file whose last row was cut short (not written by this type) gets its own
            // line ended, so the new row stays whole; the reader then reports the short row.
            var last: UInt8 = 0
            if pread(fd, &last, 1, off_t(st.st_size - 1)) == 1, last != UInt8(ascii: "\n") { text = "\n" }
        }
        let unknown = row.keys.filter { !header.contains($0) }.sorted()
        guard unknown.isEmpty else { throw Failure.unknownColumns(path: path, columns: unknown, header: header) }
        text += CSVReader.record(header.map { row[$0] ?? "" })
        try writeAll(fd, Array(text.utf8), path: path)
        guard fsync(fd) == 0 else { throw IOFailure.cannotWrite(path: path, reason: "fsync: " + String(cString: strerror(errno))) }
        guard countRows else { return nil }
        return try countRecords(fd: fd, path: path) - 1
    }

    /// Writes a whole table to `path` through a temporary file renamed into place.
    public static func write(_ table: Table, to path: String) throws {
        var text = CSVReader.record(table.header)
        for row in table.rows { text += CSVReader.record(row) }
        try AtomicFile.write(Array(text.utf8), to: path)
    }

    // MARK: Reading

    /// Reads and parses a whole table under a shared lock. Refuses what `CSVReader.Cells`
    /// refuses (a row whose cell count differs from the header's, an unterminated quote, a stray
    /// quote inside an unquoted cell, a repeated column name), naming the line.
    public static func read(path: String) throws -> Table {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw IOFailure.cannotRead(path: path, reason: String(cString: strerror(errno))) }
        defer { close(fd) }
        try lock(fd, LOCK_SH, path: path)
        defer { flock(fd, LOCK_UN) }
        let bytes = try readAll(fd: fd, path: path)
        return try parseTable(bytes, path: path)
    }

    /// Parses CSV text (a header, then rows); empty text is a table without columns. `path`
    /// names the source in errors.
    /// - Complexity: O(bytes).
    public static func parseTable(_ bytes: [UInt8], path: String) throws -> Table {
        try tokenized(bytes, path: path) { Table(header: $0.header, rows: (0 ..< $0.rows).map($0.row)) }
    }

    /// `body` applied to the text's cells; the tokenizer's refusals become `IOFailure.corrupt`.
    static func tokenized<T>(_ bytes: [UInt8], path: String, _ body: (CSVReader.Cells) -> T) throws -> T {
        do {
            return try bytes.withUnsafeBufferPointer { body(try CSVReader.Cells($0, name: path)) }
        } catch let CSVReader.Failure.malformed(_, line, column, reason) {
            throw IOFailure.corrupt(path: path, reason: "line \(line), column \(column): \(reason)")
        }
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
        let header = try tokenized(bytes, path: path) { $0.header }
        guard !header.isEmpty, header != [""] else {
            throw IOFailure.corrupt(path: path, reason: "its first line (the header) is empty")
        }
        return header
    }

    /// Counts records (line ends outside quotes after a line that is not blank, plus an
    /// unterminated last line), reading in chunks without holding the file.
    static func countRecords(fd: Int32, path: String) throws -> Int {
        var count = 0, inQuotes = false, lineHasText = false
        try forEachChunk(fd: fd, path: path) { chunk in
            for c in chunk {
                if c == UInt8(ascii: "\"") { inQuotes.toggle() }
                if c == UInt8(ascii: "\n"), !inQuotes {
                    if lineHasText { count += 1 }
                    lineHasText = false
                } else if c != UInt8(ascii: "\r") {
                    lineHasText = true
                }
            }
            return true
        }
        return lineHasText ? count + 1 : count
    }

    static func duplicates(_ names: [String]) -> [String] {
        var seen = Set<String>(), repeated: [String] = []
        for name in names where !seen.insert(name).inserted && !repeated.contains(name) { repeated.append(name) }
        return repeated
    }
}
