/// Streaming XXH64 (Yann Collet's xxHash, 64-bit variant, seed 0 unless given): the checksum
/// of `.mgeg` graph files. Chosen because it runs at memory speed (several GB/s), which
/// matters for multi-gigabyte payloads, and is the same hash zstd uses for its frames.
/// Feed bytes in any chunking with `update`; `digest` gives the same value as one call.
public struct XXHash64: Sendable {
    private static let prime1: UInt64 = 11_400_714_785_074_694_791
    private static let prime2: UInt64 = 14_029_467_366_897_019_727
    private static let prime3: UInt64 = 1_609_587_929_392_839_161
    private static let prime4: UInt64 = 9_650_029_242_287_828_579
    private static let prime5: UInt64 = 2_870_177_450_012_600_261

    private let seed: UInt64
    private var v1, v2, v3, v4: UInt64
    private var totalLength: UInt64 = 0
    /// Bytes of an incomplete 32-byte stripe.
    private var pending: [UInt8] = []

    public init(seed: UInt64 = 0) {
        self.seed = seed
        v1 = seed &+ XXHash64.prime1 &+ XXHash64.prime2
        v2 = seed &+ XXHash64.prime2
        v3 = seed
        v4 = seed &- XXHash64.prime1
        pending.reserveCapacity(32)
    }

    @inline(__always) private static func rotl(_ x: UInt64, _ r: UInt64) -> UInt64 { (x << r) | (x >> (64 - r)) }

    @inline(__always) private static func round(_ acc: UInt64, _ input: UInt64) -> UInt64 {
        rotl(acc &+ input &* prime2, 31) &* prime1
    }

    @inline(__always) private static func merge(_ acc: UInt64, _ value: UInt64) -> UInt64 {
        (acc ^ round(0, value)) &* prime1 &+ prime4
    }

    @inline(__always) private static func load64(_ p: UnsafeRawPointer, _ offset: Int) -> UInt64 {
        UInt64(littleEndian: p.loadUnaligned(fromByteOffset: offset, as: UInt64.self))
    }

    public mutating func update(_ bytes: UnsafeRawBufferPointer) {
        guard let base = bytes.baseAddress, bytes.count > 0 else { return }
        totalLength &+= UInt64(bytes.count)
        var offset = 0
        if !pending.isEmpty {
            let take = min(32 - pending.count, bytes.count)
            pending.append(contentsOf: UnsafeRawBufferPointer(start: base, count: take))
            offset = take
            guard pending.count == 32 else { return }
            pending.withUnsafeBytes { stripe(UnsafeRawPointer($0.baseAddress!)) }
            pending.removeAll(keepingCapacity: true)
        }
        var a = v1, b = v2, c = v3, d = v4
        while offset + 32 <= bytes.count {
            a = XXHash64.round(a, XXHash64.load64(base, offset))
            b = XXHash64.round(b, XXHash64.load64(base, offset + 8))
            c = XXHash64.round(c, XXHash64.load64(base, offset + 16))
            d = XXHash64.round(d, XXHash64.load64(base, offset + 24))
            offset += 32
        }
        v1 = a; v2 = b; v3 = c; v4 = d
        if offset < bytes.count {
            pending.append(contentsOf: UnsafeRawBufferPointer(start: base + offset, count: bytes.count - offset))
        }
    }

    public mutating func update(_ bytes: [UInt8]) { bytes.withUnsafeBytes { update($0) } }

    private mutating func stripe(_ p: UnsafeRawPointer) {
        v1 = XXHash64.round(v1, XXHash64.load64(p, 0))
        v2 = XXHash64.round(v2, XXHash64.load64(p, 8))
        v3 = XXHash64.round(v3, XXHash64.load64(p, 16))
        v4 = XXHash64.round(v4, XXHash64.load64(p, 24))
    }

    public func digest() -> UInt64 {
        var h: UInt64
        if totalLength >= 32 {
            h = XXHash64.rotl(v1, 1) &+ XXHash64.rotl(v2, 7) &+ XXHash64.rotl(v3, 12) &+ XXHash64.rotl(v4, 18)
            h = XXHash64.merge(h, v1); h = XXHash64.merge(h, v2); h = XXHash64.merge(h, v3); h = XXHash64.merge(h, v4)
        } else {
            h = seed &+ XXHash64.prime5
        }
        h &+= totalLength
        pending.withUnsafeBytes { raw in
            guard let p = raw.baseAddress else { return }
            var i = 0
            while i + 8 <= raw.count {
                h ^= XXHash64.round(0, XXHash64.load64(p, i))
                h = XXHash64.rotl(h, 27) &* XXHash64.prime1 &+ XXHash64.prime4
                i += 8
            }
            if i + 4 <= raw.count {
                h ^= UInt64(UInt32(littleEndian: p.loadUnaligned(fromByteOffset: i, as: UInt32.self))) &* XXHash64.prime1
                h = XXHash64.rotl(h, 23) &* XXHash64.prime2 &+ XXHash64.prime3
                i += 4
            }
            while i < raw.count {
                h ^= UInt64(raw[i]) &* XXHash64.prime5
                h = XXHash64.rotl(h, 11) &* XXHash64.prime1
                i += 1
            }
        }
        h ^= h >> 33; h &*= XXHash64.prime2
        h ^= h >> 29; h &*= XXHash64.prime3
        h ^= h >> 32
        return h
    }

    /// XXH64 of one buffer.
    public static func hash(_ bytes: [UInt8], seed: UInt64 = 0) -> UInt64 {
        var h = XXHash64(seed: seed); h.update(bytes); return h.digest()
    }
}
