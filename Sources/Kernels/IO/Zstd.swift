import CZstd

/// Whole-buffer zstd decompression (the `.zst` data files: `read_csv`, the paper's table).
/// - Complexity: O(output).
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
