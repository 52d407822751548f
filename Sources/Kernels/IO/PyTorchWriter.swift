import CArchive
import Foundation

/// Writing `torch.save`'s zip format: what `torch.load(path, weights_only=True)` reads back as an
/// `OrderedDict` of tensors.
extension PyTorchFile {
    /// The folder every record of a written archive sits in (torch.load accepts any name).
    static let archiveFolder = "archive"

    /// Writes `tensors` (in order) as a state dict, atomically (a temporary beside `path`, then a rename).
    public static func write(_ tensors: [(name: String, tensor: SafeTensor)], path: String) throws {
        let bytes: [UInt8]
        do { bytes = try encode(tensors) } catch let error as PickleError {
            throw IOFailure.cannotWrite(path: path, reason: error.reason)
        }
        try AtomicFile.write(bytes, to: path)
    }

    /// The zip archive: `data.pkl`, `byteorder`, one stored record per tensor, `version`.
    /// - Complexity: O(total bytes).
    static func encode(_ tensors: [(name: String, tensor: SafeTensor)]) throws -> [UInt8] {
        var records: [(name: String, bytes: [UInt8])] = [("data.pkl", pickle(tensors)), ("byteorder", Array("little".utf8))]
        for (i, entry) in tensors.enumerated() { records.append(("data/\(i)", entry.tensor.bytes)) }
        records.append(("version", Array("3\n".utf8)))
        return try storedZip(records.map { (archiveFolder + "/" + $0.name, $0.bytes) })
    }

    /// The storage type a safetensors dtype is written as.
    static func storageType(_ dtype: SafeTensorsDType) -> StorageType {
        switch dtype {
        case .f32: return .float
        case .f16: return .half
        case .f64: return .double
        case .i64: return .long
        case .i32: return .int
        case .u8: return .byte
        }
    }

    /// The protocol-2 pickle torch.save writes for an OrderedDict of contiguous tensors:
    /// `OrderedDict()` filled by SETITEMS with `name: _rebuild_tensor_v2(persistent storage id,
    /// 0, size, stride, False, OrderedDict())`, storage i in record `data/i`.
    static func pickle(_ tensors: [(name: String, tensor: SafeTensor)]) -> [UInt8] {
        var out: [UInt8] = [0x80, 2]
        func global(_ module: String, _ name: String) { out.append(0x63); out += Array("\(module)\n\(name)\n".utf8) }
        func string(_ s: String) {
            let utf8 = Array(s.utf8)
            out.append(0x58)
            for k in 0 ..< 4 { out.append(UInt8(truncatingIfNeeded: utf8.count >> (8 * k))) }
            out += utf8
        }
        func int(_ v: Int) {
            if v >= 0, v < 1 << 31 {
                out.append(0x4A)
                for k in 0 ..< 4 { out.append(UInt8(truncatingIfNeeded: v >> (8 * k))) }
            } else { // LONG1, 8 little-endian two's-complement bytes
                out += [0x8A, 8]
                for k in 0 ..< 8 { out.append(UInt8(truncatingIfNeeded: v >> (8 * k))) }
            }
        }
        func tuple(_ values: [Int]) { out.append(0x28); values.forEach(int); out.append(0x74) }
        func emptyOrderedDict() { global("collections", "OrderedDict"); out += [0x29, 0x52] }

        emptyOrderedDict()
        out.append(0x28) // MARK
        for (i, entry) in tensors.enumerated() {
            let t = entry.tensor
            string(entry.name)
            global("torch._utils", "_rebuild_tensor_v2")
            out.append(0x28)
            // The persistent id ('storage', torch.FloatStorage, key, 'cpu', numel).
            out.append(0x28)
            string("storage"); global("torch", storageType(t.dtype).rawValue); string(String(i)); string("cpu"); int(t.count)
            out += [0x74, 0x51] // TUPLE, BINPERSID
            int(0)
            tuple(t.shape)
            tuple(contiguousStrides(t.shape))
            out.append(0x89) // False: requires_grad
            emptyOrderedDict() // backward hooks
            out += [0x74, 0x52] // TUPLE, REDUCE
        }
        out += [0x75, 0x2E] // SETITEMS, STOP
        return out
    }

    /// A zip of stored (uncompressed) records, written by libarchive.
    static func storedZip(_ records: [(name: String, bytes: [UInt8])]) throws -> [UInt8] {
        guard let writer = archive_write_new() else { throw PickleError("libarchive could not start") }
        defer { archive_write_free(writer) }
        func failure(_ what: String) -> PickleError {
            PickleError("\(what): \(archive_error_string(writer).map { String(cString: $0) } ?? "libarchive failed")")
        }
        guard archive_write_set_format_zip(writer) == ARCHIVE_OK,
              archive_write_set_options(writer, "zip:compression=store") == ARCHIVE_OK,
              archive_write_set_bytes_in_last_block(writer, 1) == ARCHIVE_OK else { throw failure("cannot set up a stored zip") }
        // Room for the data plus generous per-record headers (local, descriptor, central).
        let capacity = records.reduce(4096) { $0 + $1.bytes.count + 2 * $1.name.utf8.count + 256 }
        var buffer = [UInt8](repeating: 0, count: capacity)
        var used = 0
        try buffer.withUnsafeMutableBytes { raw in
            guard archive_write_open_memory(writer, raw.baseAddress, raw.count, &used) == ARCHIVE_OK else { throw failure("cannot open the zip") }
            for record in records {
                guard let entry = archive_entry_new() else { throw PickleError("libarchive could not make an entry") }
                defer { archive_entry_free(entry) }
                archive_entry_set_pathname(entry, record.name)
                archive_entry_set_filetype(entry, UInt32(S_IFREG))
                archive_entry_set_perm(entry, 0o644)
                archive_entry_set_size(entry, la_int64_t(record.bytes.count))
                archive_entry_set_mtime(entry, 1_600_000_000, 0) // fixed: the same state dict gives the same file
                guard archive_write_header(writer, entry) == ARCHIVE_OK else { throw failure("cannot add \(record.name)") }
                let written = record.bytes.withUnsafeBytes { archive_write_data(writer, $0.baseAddress, $0.count) }
                guard written == record.bytes.count else { throw failure("cannot write \(record.name)") }
            }
            guard archive_write_close(writer) == ARCHIVE_OK else { throw failure("cannot finish the zip") }
        }
        return Array(buffer[0 ..< used])
    }
}
