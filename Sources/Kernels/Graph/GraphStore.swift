import CZstd
import Foundation

/// `.mgeg` — mge's binary graph file, version 1 (also described in `docs/graph-format.md`).
///
/// All integers little-endian. Layout:
///
///     offset  size  field
///     0       8     magic 89 4D 47 45 47 0D 0A 1A  ("\x89MGEG\r\n\x1A": catches 7-bit and
///                   newline-mangling transfers, like PNG's)
///     8       4     version (u32) = 1
///     12      4     flags (u32) = 0, reserved
///     16      8     node count n (u64, < 2^32)
///     24      8     edge count m (u64)
///     32      8     partition count p (u64)
///     40      8     payload length in bytes, uncompressed (u64)
///     48      8     compressed length c in bytes (u64)
///     56      8     XXH64 (seed 0) of bytes 0 ..< 56: the header is checked before any
///                   size in it is trusted
///     64      c     one zstd frame holding the payload
///     64+c    8     XXH64 (seed 0) of the uncompressed payload
///     72+c    8     end magic "MGEG-END"
///
/// The file is exactly 80 + c bytes. Payload, in order:
/// 1. partition table, per partition: name length (u32), name (UTF-8), start (u64), count
///    (u64), rank (u32), rank × dimension (u64); partitions are contiguous from node 0 and
///    cover all n nodes;
/// 2. out-degree of every node (n × u32);
/// 3. out-targets (m × u32), node by node, delta-coded within each node: the first target as
///    is, each next one minus its predecessor (targets are sorted, so deltas are ≥ 0 and
///    small, which zstd compresses well);
/// 4. edge weights (m × IEEE binary16), in the same order.
/// The in-adjacency is not stored; loading rebuilds it by a parallel transpose.
///
/// Writing streams the payload through the compressor in chunks into a temporary file
/// beside the destination, then renames it: memory stays the graph plus a few MB. Loading
/// decompresses straight into the graph's arrays and hands back nothing unless the header
/// checksum, sizes, zstd frame, payload checksum, end magic and structure all check out.
public enum GraphFile {
    public static let magic: [UInt8] = [0x89, 0x4D, 0x47, 0x45, 0x47, 0x0D, 0x0A, 0x1A]
    public static let endMagic: [UInt8] = Array("MGEG-END".utf8)
    public static let version: UInt32 = 1
    static let headerSize = 64
    static let trailerSize = 16
    /// Edges per chunk fed to the compressor (4 MB of targets).
    static let chunkEdges = 1 << 20
    /// An upper bound on zstd's expansion: its densest block (RLE) turns 4 bytes into 128 KiB,
    /// so no payload exceeds 32,768 times its compressed size; twice that for safety.
    static let maximumExpansion = 1 << 16
}

/// A file written to a temporary name beside its destination and renamed into place on
/// `commit`; abandoned (deleted) otherwise, so a failed write never leaves a partial file.
final class AtomicStreamWriter {
    let path: String
    private let temporaryPath: String
    private var file: UnsafeMutablePointer<FILE>?
    private(set) var bytesWritten = 0

    init(path: String) throws {
        self.path = path
        temporaryPath = try AtomicFile.temporaryPath(beside: path)
        guard let f = fopen(temporaryPath, "wb") else {
            throw IOFailure.cannotWrite(path: path, reason: String(cString: strerror(errno)))
        }
        file = f
    }

    /// Ctrl-C (the Cancellation flag) abandons the file: the write throws `InterruptedError`
    /// and `deinit` deletes the temporary.
    func write(_ bytes: UnsafeRawBufferPointer) throws {
        try Cancellation.check()
        guard let f = file else { throw IOFailure.cannotWrite(path: path, reason: "file already closed") }
        guard bytes.count > 0, let base = bytes.baseAddress else { return }
        guard fwrite(base, 1, bytes.count, f) == bytes.count else {
            throw IOFailure.cannotWrite(path: path, reason: String(cString: strerror(errno)))
        }
        bytesWritten += bytes.count
    }

    func write(_ bytes: [UInt8]) throws { try bytes.withUnsafeBytes { try write($0) } }

    /// Overwrites bytes at `offset` (used to fill in the header once sizes are known).
    func overwrite(_ bytes: [UInt8], at offset: Int) throws {
        guard let f = file else { throw IOFailure.cannotWrite(path: path, reason: "file already closed") }
        guard fseeko(f, off_t(offset), SEEK_SET) == 0,
              bytes.withUnsafeBytes({ fwrite($0.baseAddress, 1, bytes.count, f) }) == bytes.count,
              fseeko(f, 0, SEEK_END) == 0 else {
            throw IOFailure.cannotWrite(path: path, reason: String(cString: strerror(errno)))
        }
    }

    func commit() throws {
        try Cancellation.check()
        guard let f = file else { throw IOFailure.cannotWrite(path: path, reason: "file already closed") }
        file = nil
        let flushed = fflush(f) == 0 && fsync(fileno(f)) == 0
        let reason = String(cString: strerror(errno))
        guard fclose(f) == 0, flushed else {
            unlink(temporaryPath)
            throw IOFailure.cannotWrite(path: path, reason: reason)
        }
        if rename(temporaryPath, path) != 0 {
            let reason = String(cString: strerror(errno))
            unlink(temporaryPath)
            throw IOFailure.cannotWrite(path: path, reason: reason)
        }
    }

    deinit {
        if let f = file { fclose(f); unlink(temporaryPath) }
    }
}

/// Little-endian byte packing for headers and tables.
struct ByteWriter {
    var bytes: [UInt8] = []
    mutating func u32(_ v: UInt32) { withUnsafeBytes(of: v.littleEndian) { bytes += $0 } }
    mutating func u64(_ v: UInt64) { withUnsafeBytes(of: v.littleEndian) { bytes += $0 } }
}

struct ByteReader {
    let bytes: [UInt8]
    var offset = 0
    init(_ bytes: [UInt8]) { self.bytes = bytes }
    mutating func take(_ n: Int) -> ArraySlice<UInt8>? {
        guard n >= 0, n <= bytes.count - offset else { return nil }
        defer { offset += n }
        return bytes[offset ..< offset + n]
    }
    mutating func u32() -> UInt32? { take(4).map { $0.reversed().reduce(0) { $0 << 8 | UInt32($1) } } }
    mutating func u64() -> UInt64? { take(8).map { $0.reversed().reduce(0) { $0 << 8 | UInt64($1) } } }
}

/// A zstd compression stream writing its frame to an `AtomicStreamWriter`, hashing the
/// uncompressed bytes on the way.
final class ZstdFrameWriter {
    private let context: OpaquePointer
    private var output: [UInt8]
    private let writer: AtomicStreamWriter
    private(set) var hasher = XXHash64()
    private(set) var payloadBytes = 0
    private(set) var compressedBytes = 0

    init(writer: AtomicStreamWriter, level: Int, workers: Int) throws {
        guard let c = ZSTD_createCCtx() else { throw IOFailure.cannotWrite(path: writer.path, reason: "zstd could not allocate a compressor") }
        context = c
        self.writer = writer
        output = [UInt8](repeating: 0, count: ZSTD_CStreamOutSize())
        _ = ZSTD_CCtx_setParameter(c, ZSTD_c_compressionLevel, Int32(level))
        // Worker threads compress while this thread prepares the next chunk; libzstd built
        // without threading refuses the parameter, and then compression is single-threaded.
        if workers > 1 { _ = ZSTD_CCtx_setParameter(c, ZSTD_c_nbWorkers, Int32(workers)) }
    }

    deinit { ZSTD_freeCCtx(context) }

    func feed(_ raw: UnsafeRawBufferPointer) throws {
        hasher.update(raw)
        payloadBytes += raw.count
        var input = ZSTD_inBuffer(src: raw.baseAddress, size: raw.count, pos: 0)
        while input.pos < input.size { try step(&input, ZSTD_e_continue) }
    }

    func feed<T>(_ array: [T]) throws { try array.withUnsafeBytes { try feed($0) } }

    func finish() throws {
        var input = ZSTD_inBuffer(src: nil, size: 0, pos: 0)
        while try step(&input, ZSTD_e_end) != 0 {}
    }

    @discardableResult
    private func step(_ input: inout ZSTD_inBuffer, _ mode: ZSTD_EndDirective) throws -> Int {
        let count = output.count
        let (remaining, produced) = output.withUnsafeMutableBytes { out -> (Int, Int) in
            var buffer = ZSTD_outBuffer(dst: out.baseAddress, size: count, pos: 0)
            let r = ZSTD_compressStream2(context, &buffer, &input, mode)
            return (r, buffer.pos)
        }
        if ZSTD_isError(remaining) != 0 {
            throw IOFailure.cannotWrite(path: writer.path, reason: "zstd: " + String(cString: ZSTD_getErrorName(remaining)))
        }
        try output.withUnsafeBytes { try writer.write(UnsafeRawBufferPointer(rebasing: $0[0 ..< produced])) }
        compressedBytes += produced
        return remaining
    }
}

extension Graph {
    /// Saves the graph as `.mgeg` (see `GraphFile`), atomically.
    /// - Complexity: O(n + m); extra memory a few MB plus zstd's window.
    public func save(to path: String, compressionLevel: Int = 3) throws {
        let writer = try AtomicStreamWriter(path: path)
        try writer.write([UInt8](repeating: 0, count: GraphFile.headerSize))
        let zstd = try ZstdFrameWriter(writer: writer, level: compressionLevel, workers: Parallel.threads)
        var table = ByteWriter()
        for p in partitions {
            let name = Array(p.name.utf8)
            table.u32(UInt32(name.count)); table.bytes += name
            table.u64(UInt64(p.start)); table.u64(UInt64(p.count))
            table.u32(UInt32(p.shape.count)); for d in p.shape { table.u64(UInt64(d)) }
        }
        try zstd.feed(table.bytes)
        var scratch = [UInt32](repeating: 0, count: GraphFile.chunkEdges)
        var used = 0
        func flush() throws {
            try scratch.withUnsafeBytes { try zstd.feed(UnsafeRawBufferPointer(rebasing: $0[0 ..< used * 4])) }
            used = 0
        }
        for v in 0 ..< nodeCount {
            if used == scratch.count { try flush() }
            scratch[used] = UInt32(outOffsets[v + 1] - outOffsets[v]).littleEndian
            used += 1
        }
        try flush()
        for v in 0 ..< nodeCount {
            var previous: UInt32 = 0
            for e in outOffsets[v] ..< outOffsets[v + 1] {
                if used == scratch.count { try flush() }
                let t = outTargets[e]
                scratch[used] = (t &- previous).littleEndian
                previous = t
                used += 1
            }
        }
        try flush()
        var halves = [UInt16](repeating: 0, count: GraphFile.chunkEdges)
        var start = 0
        while start < edgeCount {
            let end = min(edgeCount, start + halves.count)
            for e in start ..< end { halves[e - start] = outWeights[e].bitPattern.littleEndian }
            try halves.withUnsafeBytes { try zstd.feed(UnsafeRawBufferPointer(rebasing: $0[0 ..< (end - start) * 2])) }
            start = end
        }
        try zstd.finish()
        var trailer = ByteWriter()
        trailer.u64(zstd.hasher.digest())
        trailer.bytes += GraphFile.endMagic
        try writer.write(trailer.bytes)
        var header = ByteWriter()
        header.bytes = GraphFile.magic
        header.u32(GraphFile.version); header.u32(0)
        header.u64(UInt64(nodeCount)); header.u64(UInt64(edgeCount)); header.u64(UInt64(partitions.count))
        header.u64(UInt64(zstd.payloadBytes)); header.u64(UInt64(zstd.compressedBytes))
        header.u64(XXHash64.hash(header.bytes))
        try writer.overwrite(header.bytes, at: 0)
        try writer.commit()
    }

    /// Loads a `.mgeg` file. A truncated, altered or foreign file is refused with the reason;
    /// nothing is returned half-loaded.
    /// - Complexity: O(n + m); memory the graph plus zstd's window.
    public static func load(from path: String) throws -> Graph {
        func corrupt(_ reason: String) -> IOFailure { .corrupt(path: path, reason: reason) }
        guard let file = fopen(path, "rb") else {
            throw IOFailure.cannotRead(path: path, reason: String(cString: strerror(errno)))
        }
        defer { fclose(file) }
        guard fseeko(file, 0, SEEK_END) == 0 else { throw IOFailure.cannotRead(path: path, reason: "not a regular file") }
        let fileSize = Int(ftello(file))
        rewind(file)
        func read(_ count: Int) throws -> [UInt8] {
            var bytes = [UInt8](repeating: 0, count: count)
            let got = bytes.withUnsafeMutableBytes { fread($0.baseAddress, 1, count, file) }
            guard got == count else { throw corrupt("truncated: ended \(count - got) bytes early") }
            return bytes
        }
        guard fileSize >= GraphFile.headerSize + GraphFile.trailerSize else {
            throw corrupt("only \(fileSize) bytes, shorter than an empty .mgeg file (80)")
        }
        let headerBytes = try read(GraphFile.headerSize)
        guard Array(headerBytes[0 ..< 8]) == GraphFile.magic else { throw corrupt("wrong magic number: not an mge graph file") }
        var header = ByteReader(headerBytes)
        _ = header.take(8)
        guard let version = header.u32(), let flags = header.u32(), let n64 = header.u64(), let m64 = header.u64(),
              let p64 = header.u64(), let payload64 = header.u64(), let compressed64 = header.u64(),
              let headerSum = header.u64() else { throw corrupt("header too short") }
        guard version == GraphFile.version else {
            throw corrupt("format version \(version) is not supported (this mge reads version \(GraphFile.version))")
        }
        guard XXHash64.hash(Array(headerBytes[0 ..< 56])) == headerSum else { throw corrupt("header checksum mismatch: the header was altered") }
        guard flags == 0 else { throw corrupt("unknown flags \(flags)") }
        guard n64 < UInt64(UInt32.max), m64 < UInt64(Int.max / 16), p64 <= n64 + 1, compressed64 < UInt64(Int.max / 2),
              payload64 < UInt64(Int.max / 2) else { throw corrupt("implausible sizes in the header") }
        let n = Int(n64), m = Int(m64), partitionCount = Int(p64), payloadBytes = Int(payload64), compressedBytes = Int(compressed64)
        guard fileSize == GraphFile.headerSize + compressedBytes + GraphFile.trailerSize else {
            throw corrupt(fileSize < GraphFile.headerSize + compressedBytes + GraphFile.trailerSize
                          ? "truncated: \(fileSize) bytes, the header announces \(GraphFile.headerSize + compressedBytes + GraphFile.trailerSize)"
                          : "\(fileSize - GraphFile.headerSize - compressedBytes - GraphFile.trailerSize) unexpected bytes after the end")
        }
        // The bounds above keep these sums far from overflow; the payload is checked against
        // what zstd can possibly expand `compressedBytes` to before anything is allocated.
        let tableBytes = payloadBytes - 4 * n - 6 * m
        guard tableBytes >= 0 else { throw corrupt("payload length \(payloadBytes) too small for \(n) nodes and \(m) edges") }
        guard payloadBytes / GraphFile.maximumExpansion <= compressedBytes + 1 else {
            throw corrupt("the header announces \(payloadBytes) payload bytes, more than \(compressedBytes) compressed bytes can hold")
        }
        let needed = 16 * n + 12 * m + tableBytes
        let physical = CheckedSize.physicalMemory
        guard needed < physical else {
            throw IOFailure.cannotRead(path: path, reason: "the graph needs \(needed >> 20) MB, more than this machine's \(physical >> 20) MB")
        }

        var table = [UInt8](repeating: 0, count: tableBytes)
        var degrees = [UInt32](repeating: 0, count: n)
        var targets = [UInt32](repeating: 0, count: m)
        var weights = [Float16](repeating: 0, count: m)
        var hasher = XXHash64()
        try table.withUnsafeMutableBytes { t in
            try degrees.withUnsafeMutableBytes { d in
                try targets.withUnsafeMutableBytes { g in
                    try weights.withUnsafeMutableBytes { w in
                        try decompress(file: file, compressedBytes: compressedBytes, into: [t, d, g, w], hasher: &hasher, corrupt: corrupt)
                    }
                }
            }
        }
        let trailer = try read(GraphFile.trailerSize)
        var trailerReader = ByteReader(trailer)
        guard Array(trailer[8 ..< 16]) == GraphFile.endMagic else { throw corrupt("end marker missing: the file was cut or altered") }
        guard trailerReader.u64() == hasher.digest() else { throw corrupt("payload checksum mismatch: the data was altered") }

        // Structure, checked even though the checksum matched: a hand-made file must not crash.
        var reader = ByteReader(table)
        var partitions: [Partition] = []
        var expectedStart = 0
        for index in 0 ..< partitionCount {
            guard let nameLength = reader.u32(), let nameBytes = reader.take(Int(nameLength)),
                  let name = String(bytes: nameBytes, encoding: .utf8),
                  let start = reader.u64(), let count = reader.u64(), let rank = reader.u32(), rank <= 8 else {
                throw corrupt("partition table entry \(index) is malformed")
            }
            var shape: [Int] = []
            for _ in 0 ..< rank {
                guard let d = reader.u64(), d <= UInt64(UInt32.max) else { throw corrupt("partition '\(name)' has a malformed shape") }
                shape.append(Int(d))
            }
            guard start == UInt64(expectedStart), count <= UInt64(n), CheckedSize.product(shape) == Int(count) else {
                throw corrupt("partition '\(name)' (start \(start), \(count) nodes, shape \(shape)) does not continue the previous one")
            }
            partitions.append(Partition(name: name, start: Int(start), count: Int(count), shape: shape))
            expectedStart += Int(count)
        }
        guard expectedStart == n, reader.offset == table.count else { throw corrupt("partitions cover \(expectedStart) of \(n) nodes") }
        var offsets = [Int](repeating: 0, count: n + 1)
        for v in 0 ..< n { offsets[v + 1] = offsets[v] + Int(UInt32(littleEndian: degrees[v])) }
        guard offsets[n] == m else { throw corrupt("degrees sum to \(offsets[n]), the header announces \(m) edges") }
        var badNode = -1
        targets.withUnsafeMutableBufferPointer { t in
            for v in 0 ..< n {
                var previous: UInt32 = 0
                for e in offsets[v] ..< offsets[v + 1] {
                    let delta = UInt32(littleEndian: t[e])
                    let (target, overflow) = previous.addingReportingOverflow(delta)
                    if overflow || Int(target) >= n { badNode = v; return }
                    t[e] = target
                    previous = target
                }
            }
        }
        guard badNode < 0 else { throw corrupt("node \(badNode) has a target outside the graph") }
        #if _endian(big)
        for e in 0 ..< m { weights[e] = Float16(bitPattern: UInt16(littleEndian: weights[e].bitPattern)) }
        #endif
        let inverse = transpose(nodeCount: n, outOffsets: offsets, outTargets: targets, outWeights: weights)
        return Graph(nodeCount: n, partitions: partitions, outOffsets: offsets, outTargets: targets, outWeights: weights,
                     inOffsets: inverse.offsets, inSources: inverse.sources, inWeights: inverse.weights)
    }

    /// Streams one zstd frame of exactly `compressedBytes` from `file` into `sections`, in
    /// order, which it must fill exactly; hashes every decompressed byte.
    private static func decompress(file: UnsafeMutablePointer<FILE>, compressedBytes: Int, into sections: [UnsafeMutableRawBufferPointer],
                                   hasher: inout XXHash64, corrupt: (String) -> IOFailure) throws {
        guard let context = ZSTD_createDCtx() else { throw corrupt("zstd could not allocate a decompressor") }
        defer { ZSTD_freeDCtx(context) }
        var input = [UInt8](repeating: 0, count: ZSTD_DStreamInSize())
        // One spare byte after the last section: anything landing there is excess payload.
        var spare = [UInt8](repeating: 0, count: 1)
        var section = 0, position = 0
        var remaining = compressedBytes
        var frameEnded = false
        while remaining > 0 {
            let want = min(input.count, remaining)
            let got = input.withUnsafeMutableBytes { fread($0.baseAddress, 1, want, file) }
            guard got == want else { throw corrupt("truncated inside the compressed data") }
            remaining -= got
            try input.withUnsafeBytes { raw in
                var inBuffer = ZSTD_inBuffer(src: raw.baseAddress, size: got, pos: 0)
                while !frameEnded {
                    while section < sections.count, position == sections[section].count { section += 1; position = 0 }
                    let produced: Int, status: Int
                    if section < sections.count {
                        let target = sections[section]
                        var outBuffer = ZSTD_outBuffer(dst: target.baseAddress! + position, size: target.count - position, pos: 0)
                        status = ZSTD_decompressStream(context, &outBuffer, &inBuffer)
                        produced = outBuffer.pos
                        if ZSTD_isError(status) == 0 {
                            hasher.update(UnsafeRawBufferPointer(start: target.baseAddress! + position, count: produced))
                        }
                        position += produced
                    } else {
                        var excess = 0
                        status = spare.withUnsafeMutableBytes { s in
                            var outBuffer = ZSTD_outBuffer(dst: s.baseAddress, size: 1, pos: 0)
                            let r = ZSTD_decompressStream(context, &outBuffer, &inBuffer)
                            excess = outBuffer.pos
                            return r
                        }
                        if excess > 0 { throw corrupt("the payload is longer than the header announces") }
                        produced = 0
                    }
                    if ZSTD_isError(status) != 0 { throw corrupt("compressed data is damaged (zstd: \(String(cString: ZSTD_getErrorName(status))))") }
                    if status == 0 { frameEnded = true; break }
                    if inBuffer.pos == inBuffer.size && produced == 0 { break }
                }
                if frameEnded, inBuffer.pos < inBuffer.size { throw corrupt("unexpected bytes after the compressed payload") }
            }
        }
        while section < sections.count, position == sections[section].count { section += 1; position = 0 }
        guard frameEnded else { throw corrupt("the compressed payload ends early") }
        guard section == sections.count else { throw corrupt("the payload is shorter than the header announces") }
    }

    // MARK: Exports

    /// Writes `in_degree`, `out_degree` (I32 per node) and `layer_sizes` (I64 per partition)
    /// to a safetensors file laid out exactly as the oracle's `mge.safetensors`.
    public func exportDegrees(to path: String) throws {
        let inDegrees = (0 ..< nodeCount).map { Int32(clamping: inOffsets[$0 + 1] - inOffsets[$0]) }
        let outDegrees = (0 ..< nodeCount).map { Int32(clamping: outOffsets[$0 + 1] - outOffsets[$0]) }
        try SafeTensors.write([
            ("in_degree", SafeTensor(int32: inDegrees, shape: [nodeCount])),
            ("layer_sizes", SafeTensor(int64: partitions.map { Int64($0.count) }, shape: [partitions.count])),
            ("out_degree", SafeTensor(int32: outDegrees, shape: [nodeCount])),
        ], path: path)
    }

    /// Writes the edge list as text: a header line `source<TAB>target<TAB>weight`, then one
    /// line per edge in CSR order, weight as the shortest decimal that reads back to the same
    /// half. Streamed and atomic.
    /// - Complexity: O(m).
    public func exportEdgeList(to path: String) throws {
        let writer = try AtomicStreamWriter(path: path)
        var buffer: [UInt8] = []
        buffer.reserveCapacity(1 << 20 + 64)
        buffer += Array("source\ttarget\tweight\n".utf8)
        var digits = [UInt8](repeating: 0, count: 24)
        func append(_ value: Int) {
            var v = value, k = 0
            repeat { digits[k] = UInt8(48 + v % 10); v /= 10; k += 1 } while v > 0
            while k > 0 { k -= 1; buffer.append(digits[k]) }
        }
        for u in 0 ..< nodeCount {
            for e in outOffsets[u] ..< outOffsets[u + 1] {
                append(u); buffer.append(9)
                append(Int(outTargets[e])); buffer.append(9)
                buffer += outWeights[e].description.utf8
                buffer.append(10)
                if buffer.count >= 1 << 20 { try writer.write(buffer); buffer.removeAll(keepingCapacity: true) }
            }
        }
        try writer.write(buffer)
        try writer.commit()
    }
}
