import Foundation

/// Sizes and offsets read from files, in arithmetic that reports overflow instead of wrapping.
///
/// Kernels is built with `-Ounchecked` (the numeric loops need it), and there `*`, `+` and
/// integer conversions do not trap: a header declaring `[2^61]` F64 elements would wrap to a
/// small byte count and pass a bounds check. Every reader therefore computes sizes through
/// these functions, which return nil on overflow, and checks allocations with `fitsInMemory`
/// before making them.
public enum CheckedSize {
    /// a · b, or nil when it overflows or either is negative.
    public static func product(_ a: Int, _ b: Int) -> Int? {
        guard a >= 0, b >= 0 else { return nil }
        let (p, overflow) = a.multipliedReportingOverflow(by: b)
        return overflow ? nil : p
    }

    /// The product of `dims` (1 for none), or nil when one is negative or it overflows.
    public static func product(_ dims: [Int]) -> Int? {
        var total = 1
        for d in dims {
            guard let p = product(total, d) else { return nil }
            total = p
        }
        return total
    }

    /// a + b, or nil when it overflows or either is negative.
    public static func sum(_ a: Int, _ b: Int) -> Int? {
        guard a >= 0, b >= 0 else { return nil }
        let (s, overflow) = a.addingReportingOverflow(b)
        return overflow ? nil : s
    }

    /// A non-negative integer from a JSON number (NSNumber): nil for fractions, booleans,
    /// negatives and values beyond Int (JSONSerialization hands those out as doubles).
    public static func jsonInt(_ value: Any) -> Int? {
        guard let n = value as? NSNumber else { return nil }
        let type = String(cString: n.objCType)
        if type == "c" || type == "B" { return nil }   // true/false (`is Bool` also holds for 0 and 1)
        if type == "d" || type == "f" {
            let d = n.doubleValue
            guard d.isFinite, d >= 0, d < 9.0e18, d == d.rounded() else { return nil }
            return Int(d)
        }
        if type == "Q" { return n.uint64Value <= UInt64(Int.max) ? Int(n.uint64Value) : nil }
        let v = n.int64Value
        return v >= 0 ? Int(v) : nil
    }

    /// Physical memory of this machine, the ceiling for anything a file asks us to allocate.
    public static var physicalMemory: Int { Int(clamping: ProcessInfo.processInfo.physicalMemory) }

    /// Whether `bytes` could be allocated at all (less than the machine's physical memory).
    public static func fitsInMemory(_ bytes: Int) -> Bool { bytes >= 0 && bytes < physicalMemory }
}

/// Whole-file reads for the readers: only regular files, and only when the file fits in memory
/// (a FIFO or `/dev/zero` would otherwise be read forever).
public enum BoundedFile {
    public enum Failure: Error, CustomStringConvertible {
        case missing, notRegular, tooLarge(Int), unreadable(String)
        public var description: String {
            switch self {
            case .missing: return "no such file"
            case .notRegular: return "not a regular file"
            case let .tooLarge(size): return "\(size) bytes, more than this machine's memory"
            case let .unreadable(reason): return reason
            }
        }
    }

    /// The bytes of the regular file at `path`, at most `limit` of them.
    /// - Complexity: O(file size).
    public static func read(_ path: String, limit: Int = CheckedSize.physicalMemory / 2) throws -> Data {
        var info = stat()
        guard stat(path, &info) == 0 else { throw errno == ENOENT ? Failure.missing : Failure.unreadable(String(cString: strerror(errno))) }
        guard (info.st_mode & S_IFMT) == S_IFREG else { throw Failure.notRegular }
        guard Int(info.st_size) <= limit else { throw Failure.tooLarge(Int(info.st_size)) }
        guard let data = FileManager.default.contents(atPath: path) else { throw Failure.unreadable("permission denied") }
        return data
    }

    /// The file as UTF-8 text, or nil when it is not valid UTF-8.
    public static func text(_ path: String, limit: Int = 64 << 20) throws -> String? {
        String(data: try read(path, limit: limit), encoding: .utf8)
    }
}
