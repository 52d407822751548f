import CArchive
import Foundation

/// PyTorch's `torch.save` files (`.pt`, `.pth`) holding a state dict, read and written without
/// Python and without running anything the file contains.
///
/// Two layouts exist. The zip format (PyTorch ≥ 1.6): a zip of stored entries under one folder,
/// `<folder>/data.pkl` (the pickled object), `<folder>/data/<key>` (each storage's raw
/// little-endian bytes), `<folder>/byteorder` and `<folder>/version`. The legacy format: five
/// pickles in a row (magic number, protocol 1001, system info, the object, the list of storage
/// keys), then for each key its element count (Int64) and raw bytes. In both the object's
/// tensors are `_rebuild_tensor_v2(storage, offset, size, stride, …)` calls whose storage is a
/// persistent id `('storage', torch.FloatStorage, key, location, numel)`.
///
/// The pickles are read by `Unpickler` with `allowedGlobals`: anything else a file names (a
/// model class, `posix.system`, `builtins.eval`) is refused with its name before any tensor is read.
public enum PyTorchFile {
    /// The globals a state-dict pickle uses: the dict type, the tensor rebuilders and the
    /// storage types of the element types mge reads.
    public static let allowedGlobals: Set<String> = Set(["collections.OrderedDict", "torch._utils._rebuild_tensor_v2",
                                                         "torch._utils._rebuild_tensor", "torch._utils._rebuild_parameter"]
        + StorageType.allCases.map(\.global))

    /// The element types of the storages mge reads; each becomes a safetensors dtype (bfloat16
    /// widens exactly to F32, bool becomes U8 0/1).
    public enum StorageType: String, CaseIterable {
        case float = "FloatStorage", half = "HalfStorage", bfloat16 = "BFloat16Storage", double = "DoubleStorage"
        case long = "LongStorage", int = "IntStorage", bool = "BoolStorage", byte = "ByteStorage"

        public var global: String { "torch." + rawValue }
        public var width: Int {
            switch self {
            case .double, .long: return 8
            case .float, .int: return 4
            case .half, .bfloat16: return 2
            case .bool, .byte: return 1
            }
        }
    }

    /// Keys under which a training checkpoint commonly keeps its state dict.
    public static let stateDictKeys = ["state_dict", "model_state_dict", "model", "net", "network"]

    /// The file name extensions read and written as PyTorch files.
    public static let extensions: Set<String> = ["pt", "pth"]

    // MARK: Reading

    /// The state dict of the file at `path`, in the file's order, with a `module.` prefix
    /// (DataParallel) removed when every name has it.
    /// - Complexity: O(file size + elements).
    public static func read(path: String) throws -> [(name: String, tensor: SafeTensor)] {
        let data: Data
        do { data = try BoundedFile.read(path) } catch let failure as BoundedFile.Failure {
            throw IOFailure.cannotRead(path: path, reason: failure.description)
        }
        do { return try decode([UInt8](data)) } catch let error as PickleError {
            throw IOFailure.corrupt(path: path, reason: error.reason)
        }
    }

    /// Decodes a whole `.pt` file; throws `PickleError` with the reason it is refused.
    static func decode(_ bytes: [UInt8]) throws -> [(name: String, tensor: SafeTensor)] {
        if bytes.starts(with: [0x50, 0x4B, 0x03, 0x04]) { return try decodeZip(bytes) }
        if bytes.first == 0x80 { return try decodeLegacy(bytes) }
        throw PickleError("not a PyTorch file: neither a zip archive (torch.save since 1.6) nor a pickle (the legacy format)")
    }

    static func decodeZip(_ bytes: [UInt8]) throws -> [(name: String, tensor: SafeTensor)] {
        let entries = try zipEntries(bytes)
        guard let pickleName = entries.keys.filter({ $0.hasSuffix("/data.pkl") && $0.split(separator: "/").count == 2 }).sorted().first,
              let pickle = entries[pickleName] else {
            throw PickleError("zip archive without a <folder>/data.pkl record: not a torch.save file")
        }
        let folder = String(pickleName.dropLast("data.pkl".count))
        if let order = entries[folder + "byteorder"], String(decoding: order, as: UTF8.self) != "little" {
            throw PickleError("byteorder record says '\(String(decoding: order.prefix(16), as: UTF8.self))'; only little-endian files are read")
        }
        let (root, end) = try Unpickler(allowedGlobals: allowedGlobals).load(pickle)
        guard end == pickle.count else { throw PickleError("data.pkl has \(pickle.count - end) bytes after its STOP") }
        let refs = try stateDictTensors(root)
        return try refs.map { ref in
            guard let storage = entries[folder + "data/" + ref.storage.key] else {
                throw PickleError("tensor '\(ref.name)' refers to storage \(ref.storage.key), which the archive lacks")
            }
            guard let expected = CheckedSize.product(ref.storage.count, ref.storage.type.width), storage.count == expected else {
                throw PickleError("storage \(ref.storage.key) holds \(storage.count) bytes, \(ref.storage.count) × \(ref.storage.type.rawValue) needs \(ref.storage.count &* ref.storage.type.width)")
            }
            return (ref.name, try ref.tensor(from: storage))
        }
    }

    static func decodeLegacy(_ bytes: [UInt8]) throws -> [(name: String, tensor: SafeTensor)] {
        // Header pickles may name nothing but plain values.
        let plain = Unpickler(allowedGlobals: [])
        let (magic, afterMagic) = try plain.load(bytes)
        guard case .bigInt(let digits) = magic, digits == [0x6C, 0xFC, 0x9C, 0x46, 0xF9, 0x20, 0x6A, 0xA8, 0x50, 0x19] else {
            throw PickleError("a pickle without PyTorch's magic number: not a torch.save file")
        }
        let (proto, afterProtocol) = try plain.load(bytes, from: afterMagic)
        guard case .int(1001) = proto else { throw PickleError("legacy protocol \(proto), 1001 expected") }
        let (sysInfo, afterInfo) = try plain.load(bytes, from: afterProtocol)
        if case .dict(let info) = sysInfo,
           let little = info.entries.first(where: { if case .string("little_endian") = $0.key { return true }; return false }),
           case .bool(false) = little.value {
            throw PickleError("written on a big-endian machine; only little-endian files are read")
        }
        let (root, afterRoot) = try Unpickler(allowedGlobals: allowedGlobals).load(bytes, from: afterInfo)
        let (keyList, afterKeys) = try plain.load(bytes, from: afterRoot)
        guard case .list(let keys) = keyList else { throw PickleError("legacy storage key list missing (found \(keyList))") }
        // Every storage the object names (also outside the state dict), for the record widths.
        var declared: [String: Storage] = [:]
        try collectStorages(root, into: &declared, depth: 0)
        var reader = PickleByteReader(bytes: bytes, position: afterKeys)
        var storages: [String: [UInt8]] = [:]
        for item in keys.items {
            guard case .string(let key) = item else { throw PickleError("legacy storage key \(item) is not a string") }
            guard let storage = declared[key] else { throw PickleError("legacy storage \(key) is not referenced by any tensor") }
            let count = try reader.uint(8, "storage \(key)'s element count")
            guard count == UInt64(storage.count), let size = CheckedSize.product(storage.count, storage.type.width) else {
                throw PickleError("legacy storage \(key) has \(count) elements, its tensor says \(storage.count)")
            }
            storages[key] = try reader.bytes(size, "storage \(key)")
        }
        guard reader.position == bytes.count else { throw PickleError("\(bytes.count - reader.position) bytes after the last storage") }
        return try stateDictTensors(root).map { ref in
            guard let storage = storages[ref.storage.key] else {
                throw PickleError("tensor '\(ref.name)' refers to storage \(ref.storage.key), which the file lacks")
            }
            return (ref.name, try ref.tensor(from: storage))
        }
    }

    /// A storage as a persistent id declares it.
    struct Storage: Equatable {
        var key: String
        var type: StorageType
        /// Elements of the whole storage.
        var count: Int
        /// Legacy views: the view's first element in the storage and its length.
        var viewOffset = 0
        var viewCount: Int?
    }

    /// One tensor of the state dict: where its elements are in which storage.
    struct TensorRef {
        var name: String
        var storage: Storage
        var offset: Int
        var shape: [Int]
        var strides: [Int]

        /// The tensor's elements gathered (per its strides) into a contiguous safetensors array.
        /// - Complexity: O(elements).
        func tensor(from bytes: [UInt8]) throws -> SafeTensor {
            let width = storage.type.width
            guard let count = CheckedSize.product(shape) else { throw PickleError("tensor '\(name)' has shape \(shape), too large to exist") }
            // The last element reachable: offset + Σ (size − 1) · stride must lie in the storage (or view).
            let available = storage.viewCount ?? (storage.count - storage.viewOffset)
            if count > 0 {
                var last = offset
                for (size, stride) in zip(shape, strides) {
                    guard let step = CheckedSize.product(size - 1, stride), let next = CheckedSize.sum(last, step) else {
                        throw PickleError("tensor '\(name)' has strides \(strides) for shape \(shape), beyond any storage")
                    }
                    last = next
                }
                guard last < available, storage.viewOffset + available <= storage.count else {
                    throw PickleError("tensor '\(name)' (offset \(offset), shape \(shape), strides \(strides)) reaches element \(last) of a storage of \(available)")
                }
            }
            guard let byteCount = CheckedSize.product(count, width), CheckedSize.fitsInMemory(byteCount) else {
                throw PickleError("tensor '\(name)' of shape \(shape) needs more memory than this machine has")
            }
            var out = [UInt8](repeating: 0, count: byteCount)
            // Walk the index odometer; contiguous tensors reduce to one copy.
            let base = storage.viewOffset + offset
            if count > 0 {
                if strides == contiguousStrides(shape) {
                    out.replaceSubrange(0 ..< count * width, with: bytes[(base * width) ..< ((base + count) * width)])
                } else {
                    var index = [Int](repeating: 0, count: shape.count)
                    var source = base
                    for e in 0 ..< count {
                        for b in 0 ..< width { out[e * width + b] = bytes[source * width + b] }
                        var d = shape.count - 1
                        while d >= 0 {
                            index[d] += 1; source += strides[d]
                            if index[d] < shape[d] { break }
                            source -= strides[d] * shape[d]; index[d] = 0; d -= 1
                        }
                    }
                }
            }
            switch storage.type {
            case .float: return SafeTensor(dtype: .f32, shape: shape, bytes: out)
            case .half: return SafeTensor(dtype: .f16, shape: shape, bytes: out)
            case .double: return SafeTensor(dtype: .f64, shape: shape, bytes: out)
            case .long: return SafeTensor(dtype: .i64, shape: shape, bytes: out)
            case .int: return SafeTensor(dtype: .i32, shape: shape, bytes: out)
            case .byte: return SafeTensor(dtype: .u8, shape: shape, bytes: out)
            case .bool: return SafeTensor(dtype: .u8, shape: shape, bytes: out.map { $0 == 0 ? 0 : 1 })
            case .bfloat16:
                // bfloat16 is the top half of a float32: widening is exact.
                var floats = [Float](repeating: 0, count: count)
                for i in 0 ..< count { floats[i] = Float(bitPattern: UInt32(out[2 * i]) << 16 | UInt32(out[2 * i + 1]) << 24) }
                return SafeTensor(dtype: .f32, shape: shape, bytes: floats.withUnsafeBytes { Array($0) })
            }
        }
    }

    static func contiguousStrides(_ shape: [Int]) -> [Int] {
        var strides = [Int](repeating: 1, count: shape.count)
        for d in stride(from: shape.count - 2, through: 0, by: -1) { strides[d] = strides[d + 1] &* shape[d + 1] }
        return strides
    }

    /// The state dict inside `root`: `root` itself when every value is a tensor, else the dict
    /// under one of `stateDictKeys`. Names lose a `module.` prefix that all of them share.
    static func stateDictTensors(_ root: PickleValue) throws -> [TensorRef] {
        guard case .dict(let top) = root else { throw PickleError("the file holds a \(root), not a dict of tensors (a state dict)") }
        var chosen = top
        if !isTensorDict(top) {
            let inner = stateDictKeys.lazy.compactMap { key -> PickleDict? in
                guard let entry = top.entries.first(where: { if case .string(key) = $0.key { return true }; return false }),
                      case .dict(let d) = entry.value, isTensorDict(d) else { return nil }
                return d
            }.first
            guard let inner else {
                let keys = top.entries.prefix(8).map { "\($0.key)" }.joined(separator: ", ")
                throw PickleError("no state dict: the top-level dict (keys \(keys)) neither holds only tensors nor has one under \(stateDictKeys.joined(separator: " / "))")
            }
            chosen = inner
        }
        var refs: [TensorRef] = []
        for (key, value) in chosen.entries {
            guard case .string(let name) = key else { throw PickleError("a state dict key \(key) that is not a string") }
            refs.append(try tensorRef(name, value))
        }
        if !refs.isEmpty, refs.allSatisfy({ $0.name.hasPrefix("module.") }) {
            for i in refs.indices { refs[i].name.removeFirst("module.".count) }
        }
        var seen = Set<String>()
        for ref in refs where !seen.insert(ref.name).inserted { throw PickleError("name '\(ref.name)' appears twice") }
        return refs
    }

    private static func isTensorDict(_ d: PickleDict) -> Bool {
        !d.entries.isEmpty && d.entries.allSatisfy { entry in
            if case .call(let f, _) = entry.value, f.hasPrefix("torch._utils._rebuild_") { return true }
            return false
        }
    }

    /// Reads `_rebuild_tensor_v2(storage, offset, size, stride, requires_grad, hooks[, metadata])`,
    /// `_rebuild_tensor(storage, offset, size, stride)` or `_rebuild_parameter(tensor, …)`.
    static func tensorRef(_ name: String, _ value: PickleValue) throws -> TensorRef {
        guard case .call(let f, let args) = value else { throw PickleError("'\(name)' holds \(value), not a tensor") }
        if f == "torch._utils._rebuild_parameter" {
            guard let inner = args.first else { throw PickleError("'\(name)': _rebuild_parameter without a tensor") }
            return try tensorRef(name, inner)
        }
        guard args.count >= 4, case .persistent(let id) = args[0] else {
            throw PickleError("'\(name)': \(f) with arguments that are not (storage, offset, size, stride, …)")
        }
        let storage = try storageOf(id)
        guard case .int(let offset) = args[1], offset >= 0, offset <= Int64(Int.max) else { throw PickleError("'\(name)': storage offset \(args[1]) is not a non-negative int") }
        let shape = try intTuple(args[2], "'\(name)': size")
        let strides = try intTuple(args[3], "'\(name)': stride")
        guard shape.count == strides.count else { throw PickleError("'\(name)': \(shape.count) sizes but \(strides.count) strides") }
        return TensorRef(name: name, storage: storage, offset: Int(offset), shape: shape, strides: strides)
    }

    private static func intTuple(_ value: PickleValue, _ what: String) throws -> [Int] {
        guard case .tuple(let items) = value, items.count <= 32 else { throw PickleError("\(what) \(value) is not a tuple of ints") }
        return try items.map { item in
            guard case .int(let i) = item, i >= 0, i <= Int64(Int32.max) * 1024 else { throw PickleError("\(what) holds \(item), not a non-negative int") }
            return Int(i)
        }
    }

    /// `('storage', torch.FloatStorage, key, location, numel[, view_metadata])`.
    static func storageOf(_ id: PickleValue) throws -> Storage {
        guard case .tuple(let t) = id, t.count == 5 || t.count == 6, case .string("storage") = t[0] else {
            throw PickleError("persistent id \(id) is not a storage reference")
        }
        guard case .global(let typeName) = t[1], let type = StorageType.allCases.first(where: { $0.global == typeName }) else {
            throw PickleError("storage type \(t[1]) is not one mge reads")
        }
        guard case .string(let key) = t[2], !key.isEmpty, !key.contains("/"), !key.contains("..") else { throw PickleError("storage key \(t[2]) is not a plain name") }
        guard case .int(let count) = t[4], count >= 0, count <= Int64(Int.max) / 8 else { throw PickleError("storage \(key) has element count \(t[4])") }
        var storage = Storage(key: key, type: type, count: Int(count))
        if t.count == 6, case .tuple(let view) = t[5] {
            guard view.count == 3, case .int(let offset) = view[1], case .int(let size) = view[2],
                  offset >= 0, size >= 0, offset <= count, size <= count - offset else {
                throw PickleError("storage \(key) has a view \(t[5]) outside it")
            }
            storage.viewOffset = Int(offset); storage.viewCount = Int(size)
        }
        return storage
    }

    /// Every storage referenced anywhere in `value` (a legacy file stores all of them).
    private static func collectStorages(_ value: PickleValue, into found: inout [String: Storage], depth: Int) throws {
        guard depth <= Unpickler.maxDepth else { return }
        switch value {
        case .persistent(let id):
            var storage = try storageOf(id)
            storage.viewOffset = 0; storage.viewCount = nil
            if let other = found[storage.key], other != storage {
                throw PickleError("storage \(storage.key) is declared as both \(other.type.rawValue)[\(other.count)] and \(storage.type.rawValue)[\(storage.count)]")
            }
            found[storage.key] = storage
        case .tuple(let items), .call(_, let items): for item in items { try collectStorages(item, into: &found, depth: depth + 1) }
        case .list(let l): for item in l.items { try collectStorages(item, into: &found, depth: depth + 1) }
        case .dict(let d): for entry in d.entries { try collectStorages(entry.value, into: &found, depth: depth + 1) }
        default: break
        }
    }

    /// The stored entries of a zip archive, by name, read through libarchive. Deflated entries
    /// are read too (torch writes stored ones); corrupt archives are refused with libarchive's reason.
    static func zipEntries(_ bytes: [UInt8]) throws -> [String: [UInt8]] {
        guard let reader = archive_read_new() else { throw PickleError("libarchive could not start") }
        defer { archive_read_free(reader) }
        archive_read_support_format_zip_seekable(reader)
        func failure(_ what: String) -> PickleError {
            PickleError("\(what): \(archive_error_string(reader).map { String(cString: $0) } ?? "damaged zip archive")")
        }
        return try bytes.withUnsafeBytes { raw -> [String: [UInt8]] in
            guard archive_read_open_memory(reader, raw.baseAddress, raw.count) == ARCHIVE_OK else { throw failure("not a readable zip archive") }
            var entries: [String: [UInt8]] = [:]
            var total = 0
            var entry: OpaquePointer?
            while true {
                let status = archive_read_next_header(reader, &entry)
                if status == ARCHIVE_EOF { break }
                guard status == ARCHIVE_OK, let entry else { throw failure("damaged zip archive") }
                guard let rawName = archive_entry_pathname(entry) else { throw failure("a zip entry without a name") }
                let name = String(cString: rawName)
                guard archive_entry_filetype(entry) == UInt32(S_IFREG) else { continue }
                guard entries[name] == nil else { throw PickleError("zip entry \(name) appears twice") }
                // Decompressed sizes are bounded by what the file could hold uncompressed.
                let declared = archive_entry_size_is_set(entry) != 0 ? Int(archive_entry_size(entry)) : -1
                guard declared >= 0, declared <= raw.count, let sum = CheckedSize.sum(total, declared), sum <= 4 &* raw.count &+ (1 << 20) else {
                    throw PickleError("zip entry \(name) declares \(declared) bytes in a \(raw.count)-byte file")
                }
                total = sum
                var data = [UInt8](repeating: 0, count: declared)
                var filled = 0
                while filled < declared {
                    let got = data.withUnsafeMutableBytes { buffer -> Int in
                        guard let base = buffer.baseAddress else { return -1 }
                        return archive_read_data(reader, base + filled, declared - filled)
                    }
                    if got < 0 { throw failure("damaged data in zip entry \(name)") }
                    if got == 0 { break }
                    filled += got
                }
                guard filled == declared else { throw PickleError("zip entry \(name) holds \(filled) bytes, its header says \(declared)") }
                var probe: UInt8 = 0
                guard archive_read_data(reader, &probe, 1) == 0 else { throw PickleError("zip entry \(name) holds more than its header's \(declared) bytes") }
                entries[name] = data
            }
            return entries
        }
    }
}
