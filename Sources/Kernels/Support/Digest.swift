import Foundation

/// SHA-256 (FIPS 180-4) and MD5 (RFC 1321), streamed, for checking downloaded archives against
/// their published checksums. Written here because Linux has no system hashing API Swift can
/// reach without another dependency; checked against `sha256sum`/`md5sum` in DigestTests.
public protocol StreamingDigest {
    init()
    mutating func update(_ bytes: UnsafeRawBufferPointer)
    /// The digest as lowercase hex; the state is consumed.
    mutating func hexDigest() -> String
}

extension StreamingDigest {
    public mutating func update(_ bytes: [UInt8]) { bytes.withUnsafeBytes { update($0) } }

    /// The digest of `bytes`, as lowercase hex.
    public static func hex(_ bytes: [UInt8]) -> String { var d = Self(); d.update(bytes); return d.hexDigest() }
}

/// The shared block buffering of both hashes (64-byte blocks, length in bits appended).
struct BlockBuffer {
    var pending: [UInt8] = []
    var length: UInt64 = 0

    /// Feeds `bytes`, handing each complete 64-byte block to `process`.
    /// - Complexity: O(bytes).
    mutating func feed(_ bytes: UnsafeRawBufferPointer, _ process: (UnsafeRawBufferPointer) -> Void) {
        length &+= UInt64(bytes.count)
        var offset = 0
        if !pending.isEmpty {
            let take = min(64 - pending.count, bytes.count)
            pending += bytes[0 ..< take]
            offset = take
            if pending.count == 64 { pending.withUnsafeBytes(process); pending.removeAll(keepingCapacity: true) }
        }
        while bytes.count - offset >= 64 {
            process(UnsafeRawBufferPointer(rebasing: bytes[offset ..< offset + 64]))
            offset += 64
        }
        if offset < bytes.count { pending += bytes[offset...] }
    }

    /// The final padding: 0x80, zeros, then the bit length (big- or little-endian).
    func padding(bigEndianLength: Bool) -> [UInt8] {
        var tail: [UInt8] = [0x80]
        while (pending.count + tail.count) % 64 != 56 { tail.append(0) }
        let bits = length &* 8
        for i in 0 ..< 8 { tail.append(UInt8(truncatingIfNeeded: bits >> UInt64(bigEndianLength ? 56 - 8 * i : 8 * i))) }
        return tail
    }
}

public struct SHA256: StreamingDigest {
    private var h: [UInt32] = [0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19]
    private var buffer = BlockBuffer()
    private static let k: [UInt32] = [
        0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
        0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
        0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
        0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
        0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
        0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
        0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
        0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
    ]

    public init() {}

    public mutating func update(_ bytes: UnsafeRawBufferPointer) {
        var state = h
        buffer.feed(bytes) { Self.compress(&state, $0) }
        h = state
    }

    public mutating func hexDigest() -> String {
        let tail = buffer.padding(bigEndianLength: true)
        var state = h
        var scratch = BlockBuffer()
        scratch.pending = buffer.pending
        tail.withUnsafeBytes { scratch.feed($0) { Self.compress(&state, $0) } }
        return state.map { word in (0 ..< 4).map { hex2(UInt8(truncatingIfNeeded: word >> UInt32(24 - 8 * $0))) }.joined() }.joined()
    }

    private static func compress(_ h: inout [UInt32], _ block: UnsafeRawBufferPointer) {
        withUnsafeTemporaryAllocation(of: UInt32.self, capacity: 64) { w in compress(&h, block, w) }
    }

    private static func compress(_ h: inout [UInt32], _ block: UnsafeRawBufferPointer, _ w: UnsafeMutableBufferPointer<UInt32>) {
        for i in 0 ..< 16 {
            w[i] = (0 ..< 4).reduce(0) { $0 << 8 | UInt32(block[4 * i + $1]) }
        }
        for i in 16 ..< 64 {
            let s0 = rotr(w[i - 15], 7) ^ rotr(w[i - 15], 18) ^ (w[i - 15] >> 3)
            let s1 = rotr(w[i - 2], 17) ^ rotr(w[i - 2], 19) ^ (w[i - 2] >> 10)
            w[i] = w[i - 16] &+ s0 &+ w[i - 7] &+ s1
        }
        var a = h[0], b = h[1], c = h[2], d = h[3], e = h[4], f = h[5], g = h[6], hh = h[7]
        for i in 0 ..< 64 {
            let t1 = hh &+ (rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25)) &+ ((e & f) ^ (~e & g)) &+ k[i] &+ w[i]
            let t2 = (rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22)) &+ ((a & b) ^ (a & c) ^ (b & c))
            hh = g; g = f; f = e; e = d &+ t1; d = c; c = b; b = a; a = t1 &+ t2
        }
        h[0] &+= a; h[1] &+= b; h[2] &+= c; h[3] &+= d; h[4] &+= e; h[5] &+= f; h[6] &+= g; h[7] &+= hh
    }
}

public struct MD5: StreamingDigest {
    private var state: [UInt32] = [0x67452301, 0xefcdab89, 0x98badcfe, 0x10325476]
    private var buffer = BlockBuffer()
    private static let shifts: [UInt32] = [7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22,
                                           5, 9, 14, 20, 5, 9, 14, 20, 5, 9, 14, 20, 5, 9, 14, 20,
                                           4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23,
                                           6, 10, 15, 21, 6, 10, 15, 21, 6, 10, 15, 21, 6, 10, 15, 21]
    /// ⌊|sin(i + 1)| · 2^32⌋.
    private static let k: [UInt32] = (0 ..< 64).map { UInt32(truncatingIfNeeded: Int64(abs(sin(Double($0 + 1))) * 4_294_967_296)) }

    public init() {}

    public mutating func update(_ bytes: UnsafeRawBufferPointer) {
        var s = state
        buffer.feed(bytes) { Self.compress(&s, $0) }
        state = s
    }

    public mutating func hexDigest() -> String {
        let tail = buffer.padding(bigEndianLength: false)
        var s = state
        var scratch = BlockBuffer()
        scratch.pending = buffer.pending
        tail.withUnsafeBytes { scratch.feed($0) { Self.compress(&s, $0) } }
        return s.map { word in (0 ..< 4).map { hex2(UInt8(truncatingIfNeeded: word >> UInt32(8 * $0))) }.joined() }.joined()
    }

    private static func compress(_ s: inout [UInt32], _ block: UnsafeRawBufferPointer) {
        var m = [UInt32](repeating: 0, count: 16)
        for i in 0 ..< 16 { m[i] = (0 ..< 4).reduce(0) { $0 | UInt32(block[4 * i + $1]) << UInt32(8 * $1) } }
        var a = s[0], b = s[1], c = s[2], d = s[3]
        for i in 0 ..< 64 {
            var f: UInt32, g: Int
            switch i {
            case 0 ..< 16: f = (b & c) | (~b & d); g = i
            case 16 ..< 32: f = (d & b) | (~d & c); g = (5 * i + 1) % 16
            case 32 ..< 48: f = b ^ c ^ d; g = (3 * i + 5) % 16
            default: f = c ^ (b | ~d); g = (7 * i) % 16
            }
            f = f &+ a &+ k[i] &+ m[g]
            a = d; d = c; c = b
            b = b &+ rotl(f, shifts[i])
        }
        s[0] &+= a; s[1] &+= b; s[2] &+= c; s[3] &+= d
    }
}

@inline(__always) private func rotr(_ x: UInt32, _ n: UInt32) -> UInt32 { (x >> n) | (x << (32 - n)) }
@inline(__always) private func rotl(_ x: UInt32, _ n: UInt32) -> UInt32 { (x << n) | (x >> (32 - n)) }
private func hex2(_ b: UInt8) -> String {
    let digits = Array("0123456789abcdef")
    return String([digits[Int(b >> 4)], digits[Int(b & 15)]])
}
