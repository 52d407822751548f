import Foundation

/// A CSV results file that several processes append to: every row is written whole, under an
/// advisory lock, then fsync'd, so a SIGKILL at any moment leaves a file whose every complete
/// line parses. A last line without its newline (a write cut short by a crash of the machine)
/// is ignored when reading and cut off before the next append.
///
/// Cells never contain a newline (callers flatten messages), so one line is one row.
public enum RowFile {
    public struct Contents: Equatable {
        public var header: [String]
        public var rows: [[String]]
    }

    /// The header and rows, or nil when the file does not exist or is empty.
    /// A row whose cell count differs from the header's is refused with its line number.
    /// - Complexity: O(file size).
    public static func read(_ path: String) throws -> Contents? {
        guard FileManager.default.fileExists(atPath: path) else { return nil }
        guard let data = FileManager.default.contents(atPath: path) else {
            throw IOFailure.cannotRead(path: path, reason: "permission denied or not a file")
        }
        var lines = String(decoding: data, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false)
        lines.removeLast() // the text after the last newline: empty, or a torn row
        guard let first = lines.first, !first.isEmpty else { return nil }
        let header = CSVTable.parseLine(String(first))
        var rows: [[String]] = []
        rows.reserveCapacity(lines.count - 1)
        for (i, line) in lines.enumerated().dropFirst() where !line.isEmpty {
            let cells = CSVTable.parseLine(String(line))
            guard cells.count == header.count else {
                throw IOFailure.corrupt(path: path, reason: "line \(i + 1) has \(cells.count) cells, the header has \(header.count)")
            }
            rows.append(cells)
        }
        return Contents(header: header, rows: rows)
    }

    /// Appends `rows` (each as wide as `header`) in one write under an exclusive lock, writing the
    /// header first when the file is new or empty, then fsyncs. The caller checks that an
    /// existing header is `header` (see `read`).
    public static func append(_ path: String, header: [String], rows: [[String]]) throws {
        guard !rows.isEmpty else { return }
        let fd = open(path, O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw IOFailure.cannotWrite(path: path, reason: String(cString: strerror(errno))) }
        defer { close(fd) }
        guard flock(fd, LOCK_EX) == 0 else { throw IOFailure.cannotWrite(path: path, reason: "cannot lock: \(String(cString: strerror(errno)))") }
        defer { flock(fd, LOCK_UN) }
        var text = ""
        let size = lseek(fd, 0, SEEK_END)
        if size <= 0 {
            text = line(header)
        } else {
            var last: UInt8 = 0
            if pread(fd, &last, 1, size - 1) == 1, last != UInt8(ascii: "\n") {
                try cutTornTail(fd, size: size, path: path)
                if lseek(fd, 0, SEEK_END) == 0 { text = line(header) }
            }
        }
        for row in rows { text += line(row) }
        try writeAll(fd, Array(text.utf8), path: path)
        guard fsync(fd) == 0 else { throw IOFailure.cannotWrite(path: path, reason: "fsync: \(String(cString: strerror(errno)))") }
    }

    /// Replaces the whole file (temporary in the same folder, fsync, rename).
    public static func rewrite(_ path: String, header: [String], rows: [[String]]) throws {
        let dir = URL(fileURLWithPath: path).deletingLastPathComponent().path
        let temp = dir + "/." + URL(fileURLWithPath: path).lastPathComponent + ".tmp-\(getpid())"
        let fd = open(temp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw IOFailure.cannotWrite(path: path, reason: String(cString: strerror(errno))) }
        var text = line(header)
        for row in rows { text += line(row) }
        do {
            try writeAll(fd, Array(text.utf8), path: path)
            guard fsync(fd) == 0 else { throw IOFailure.cannotWrite(path: path, reason: "fsync failed") }
        } catch {
            close(fd); unlink(temp)
            throw error
        }
        close(fd)
        guard rename(temp, path) == 0 else {
            let reason = String(cString: strerror(errno))
            unlink(temp)
            throw IOFailure.cannotWrite(path: path, reason: reason)
        }
    }

    /// One CSV line (RFC 4180 quoting), newline included.
    public static func line(_ cells: [String]) -> String {
        cells.map(CSVTable.escape).joined(separator: ",") + "\n"
    }

    private static func cutTornTail(_ fd: Int32, size: off_t, path: String) throws {
        var keep = size
        var byte: UInt8 = 0
        while keep > 0, pread(fd, &byte, 1, keep - 1) == 1, byte != UInt8(ascii: "\n") { keep -= 1 }
        guard ftruncate(fd, keep) == 0 else { throw IOFailure.cannotWrite(path: path, reason: "cannot cut a torn last row") }
    }

    private static func writeAll(_ fd: Int32, _ bytes: [UInt8], path: String) throws {
        var offset = 0
        while offset < bytes.count {
            let n = bytes[offset...].withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
            if n < 0, errno == EINTR { continue }
            guard n > 0 else { throw IOFailure.cannotWrite(path: path, reason: String(cString: strerror(errno))) }
            offset += n
        }
    }
}
