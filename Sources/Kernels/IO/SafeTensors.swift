import Foundation

/// Errors of file input/output, each with a reason a user can act on.
public enum IOFailure: Error, CustomStringConvertible, Equatable {
    case cannotRead(path: String, reason: String)
    case cannotWrite(path: String, reason: String)
    case corrupt(path: String, reason: String)

    public var description: String {
        switch self {
        case let .cannotRead(path, reason): return "cannot read \(path): \(reason)"
        case let .cannotWrite(path, reason): return "cannot write \(path): \(reason)"
        case let .corrupt(path, reason): return "\(path) is not a valid file: \(reason)"
        }
    }
}

/// Element types of the safetensors format that mge reads and writes.
public enum SafeTensorsDType: String, CaseIterable, Sendable {
    case f64 = "F64", f32 = "F32", f16 = "F16", i64 = "I64", i32 = "I32", u8 = "U8"

    public var byteWidth: Int {
        switch self {
        case .f64, .i64: return 8
        case .f32, .i32: return 4
        case .f16: return 2
        case .u8: return 1
        }
    }
}

/// One named array of a safetensors file: its type, shape and little-endian bytes.
public struct SafeTensor: Sendable {
    public var dtype: SafeTensorsDType
    public var shape: [Int]
    public var bytes: [UInt8]

    /// Elements, as the bytes hold them (a reader only builds tensors whose shape matches).
    public var count: Int { bytes.count / dtype.byteWidth }

    public init(dtype: SafeTensorsDType, shape: [Int], bytes: [UInt8]) {
        self.dtype = dtype; self.shape = shape; self.bytes = bytes
    }

    public init(_ tensor: Tensor) {
        self.init(dtype: .f32, shape: tensor.shape, bytes: tensor.data.withUnsafeBytes { Array($0) })
    }
    public init(int32 values: [Int32], shape: [Int]) {
        self.init(dtype: .i32, shape: shape, bytes: values.withUnsafeBytes { Array($0) })
    }
    public init(int64 values: [Int64], shape: [Int]) {
        self.init(dtype: .i64, shape: shape, bytes: values.withUnsafeBytes { Array($0) })
    }
    public init(uint8 values: [UInt8], shape: [Int]) {
        self.init(dtype: .u8, shape: shape, bytes: values)
    }

    /// The values converted to Float (integers and halves exactly where representable).
    public var floats: [Float] {
        bytes.withUnsafeBytes { raw -> [Float] in
            switch dtype {
            case .f32: return (0 ..< count).map { raw.loadUnaligned(fromByteOffset: 4 * $0, as: Float.self) }
            case .f64: return (0 ..< count).map { Float(raw.loadUnaligned(fromByteOffset: 8 * $0, as: Double.self)) }
            case .f16: return (0 ..< count).map { Float(raw.loadUnaligned(fromByteOffset: 2 * $0, as: Float16.self)) }
            case .i64: return (0 ..< count).map { Float(raw.loadUnaligned(fromByteOffset: 8 * $0, as: Int64.self)) }
            case .i32: return (0 ..< count).map { Float(raw.loadUnaligned(fromByteOffset: 4 * $0, as: Int32.self)) }
            case .u8: return raw.map { Float($0) }
            }
        }
    }

    /// The values as Int64, for integer types; nil for floating types.
    public var integers: [Int64]? {
        bytes.withUnsafeBytes { raw -> [Int64]? in
            switch dtype {
            case .i64: return (0 ..< count).map { raw.loadUnaligned(fromByteOffset: 8 * $0, as: Int64.self) }
            case .i32: return (0 ..< count).map { Int64(raw.loadUnaligned(fromByteOffset: 4 * $0, as: Int32.self)) }
            case .u8: return raw.map { Int64($0) }
            case .f16, .f32, .f64: return nil
            }
        }
    }

    public var tensor: Tensor { Tensor(shape: shape, data: floats) }
}

/// The safetensors format: an 8-byte little-endian header length N, N bytes of JSON
/// `{name: {dtype, shape, data_offsets: [begin, end]}}`, then the data.
///
/// Reading checks every offset, size and dtype, so a truncated or altered file is refused
/// with a reason instead of being half-loaded.
public enum SafeTensors {
    /// Reads every tensor of the file at `path`, in header order sorted by data offset.
    /// - Complexity: O(file size).
    public static func read(path: String) throws -> [(name: String, tensor: SafeTensor)] {
        let data: Data
        do { data = try BoundedFile.read(path) } catch let failure as BoundedFile.Failure {
            throw IOFailure.cannotRead(path: path, reason: failure.description)
        }
        return try decode([UInt8](data), path: path)
    }

    /// Like `read`, keyed by name.
    public static func readDictionary(path: String) throws -> [String: SafeTensor] {
        Dictionary(try read(path: path).map { ($0.name, $0.tensor) }, uniquingKeysWith: { a, _ in a })
    }

    static func decode(_ bytes: [UInt8], path: String) throws -> [(name: String, tensor: SafeTensor)] {
        guard bytes.count >= 8 else { throw IOFailure.corrupt(path: path, reason: "shorter than the 8-byte header length") }
        var headerLength: UInt64 = 0
        for i in 0 ..< 8 { headerLength |= UInt64(bytes[i]) << (8 * UInt64(i)) }
        guard headerLength <= UInt64(bytes.count - 8) else {
            throw IOFailure.corrupt(path: path, reason: "header length \(headerLength) exceeds the file (\(bytes.count) bytes)")
        }
        let dataStart = 8 + Int(headerLength)
        let headerBytes = Data(bytes[8 ..< dataStart])
        guard let header = (try? JSONSerialization.jsonObject(with: headerBytes)) as? [String: Any] else {
            throw IOFailure.corrupt(path: path, reason: "header is not a JSON object")
        }
        let dataLength = bytes.count - dataStart
        var entries: [(name: String, begin: Int, tensor: SafeTensor)] = []
        for (name, value) in header where name != "__metadata__" {
            guard let info = value as? [String: Any],
                  let dtypeName = info["dtype"] as? String,
                  let shapeAny = info["shape"] as? [Any],
                  let offsetsAny = info["data_offsets"] as? [Any], offsetsAny.count == 2
            else { throw IOFailure.corrupt(path: path, reason: "entry '\(name)' lacks dtype, shape or data_offsets") }
            guard let dtype = SafeTensorsDType(rawValue: dtypeName) else {
                throw IOFailure.corrupt(path: path, reason: "entry '\(name)' has unsupported dtype \(dtypeName) (supported: F64, F32, F16, I64, I32, U8)")
            }
            // Sizes in overflow-checked arithmetic (CheckedSize): a shape of [2^61] F64 must not
            // wrap to a small byte count.
            let shape = shapeAny.compactMap(CheckedSize.jsonInt)
            let offsets = offsetsAny.compactMap(CheckedSize.jsonInt)
            guard shape.count == shapeAny.count, offsets.count == 2 else {
                throw IOFailure.corrupt(path: path, reason: "entry '\(name)' has a malformed shape or offsets (not non-negative integers)")
            }
            guard let count = CheckedSize.product(shape), let byteCount = CheckedSize.product(count, dtype.byteWidth) else {
                throw IOFailure.corrupt(path: path, reason: "entry '\(name)' has shape \(shape), too large to exist")
            }
            guard offsets[0] <= offsets[1], offsets[1] <= dataLength else {
                throw IOFailure.corrupt(path: path, reason: "entry '\(name)' points outside the data (offsets \(offsets), data is \(dataLength) bytes)")
            }
            guard offsets[1] - offsets[0] == byteCount else {
                throw IOFailure.corrupt(path: path, reason: "entry '\(name)' holds \(offsets[1] - offsets[0]) bytes, shape \(shape) of \(dtypeName) needs \(byteCount)")
            }
            let slice = Array(bytes[(dataStart + offsets[0]) ..< (dataStart + offsets[1])])
            entries.append((name, offsets[0], SafeTensor(dtype: dtype, shape: shape, bytes: slice)))
        }
        entries.sort { ($0.begin, $0.name) < ($1.begin, $1.name) }
        return entries.map { ($0.name, $0.tensor) }
    }

    /// Encodes tensors in the given order, header padded with spaces to 8 bytes as the format asks.
    public static func encode(_ tensors: [(name: String, tensor: SafeTensor)]) -> [UInt8] {
        var offset = 0
        var parts: [String] = []
        for (name, t) in tensors {
            let end = offset + t.bytes.count
            let shape = t.shape.map(String.init).joined(separator: ",")
            parts.append("\(jsonString(name)):{\"dtype\":\"\(t.dtype.rawValue)\",\"shape\":[\(shape)],\"data_offsets\":[\(offset),\(end)]}")
            offset = end
        }
        var header = Array(("{" + parts.joined(separator: ",") + "}").utf8)
        while (8 + header.count) % 8 != 0 { header.append(0x20) }
        var out: [UInt8] = []
        out.reserveCapacity(8 + header.count + offset)
        var n = UInt64(header.count)
        for _ in 0 ..< 8 { out.append(UInt8(n & 0xFF)); n >>= 8 }
        out += header
        for (_, t) in tensors { out += t.bytes }
        return out
    }

    /// Writes atomically: a temporary file beside `path`, then a rename.
    public static func write(_ tensors: [(name: String, tensor: SafeTensor)], path: String) throws {
        try AtomicFile.write(encode(tensors), to: path)
    }

    private static func jsonString(_ s: String) -> String {
        var out = "\""
        for scalar in s.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case _ where scalar.value < 0x20: out += String(format: "\\u%04x", scalar.value)
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out + "\""
    }
}

/// Writes that never leave a half-written file behind.
public enum AtomicFile {
    /// A fresh hidden temporary path in `path`'s folder (so the final rename stays on one file
    /// system); throws when that folder does not exist.
    public static func temporaryPath(beside path: String) throws -> String {
        let url = URL(fileURLWithPath: path)
        let dir = url.deletingLastPathComponent().path
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: dir, isDirectory: &isDir), isDir.boolValue else {
            throw IOFailure.cannotWrite(path: path, reason: "folder \(dir) does not exist")
        }
        return dir + "/." + url.lastPathComponent + ".tmp-\(getpid())-\(UInt32.random(in: 0 ... .max))"
    }

    /// Writes `bytes` to a temporary file in the destination's folder, then renames it into place.
    /// Ctrl-C (the Cancellation flag) before the rename deletes the temporary and throws
    /// `InterruptedError`: nothing is left behind.
    public static func write(_ bytes: [UInt8], to path: String) throws {
        try Cancellation.check()
        let temp = try AtomicFile.temporaryPath(beside: path)
        guard FileManager.default.createFile(atPath: temp, contents: Data(bytes)) else {
            throw IOFailure.cannotWrite(path: path, reason: "cannot create a file in \((path as NSString).deletingLastPathComponent)")
        }
        if Cancellation.isRequested {
            unlink(temp)
            throw InterruptedError()
        }
        if rename(temp, path) != 0 {
            let reason = String(cString: strerror(errno))
            unlink(temp)
            throw IOFailure.cannotWrite(path: path, reason: reason)
        }
    }
}
