import Foundation

/// mge's seeded random generator: SplitMix64 (Steele, Lea & Flood 2014), seeded as its reference
/// code is (the state starts at the seed). Every seeded draw in mge goes through it: weight
/// initialisation, random masks, shuffles, start vectors of the eigensolvers, sampled motif roots,
/// the regression search.
///
/// Chosen because it is tiny, fast, passes BigCrush and gives the same stream on every
/// machine; normals come from Box–Muller on two uniform doubles, so `seed` alone fixes every
/// initialisation, mask and shuffle.
public struct SeededGenerator: RandomNumberGenerator, Sendable {
    private var state: UInt64
    private var spareNormal: Double?

    public init(seed: UInt64) { state = seed; spareNormal = nil }

    public mutating func next() -> UInt64 {
        state = state &+ 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// Uniform in [0, 1) with 53 random bits.
    public mutating func uniform() -> Double { Double(next() >> 11) * 0x1.0p-53 }

    /// Standard normal by the polar-free Box–Muller transform; caches the second value.
    public mutating func normal() -> Double {
        if let z = spareNormal { spareNormal = nil; return z }
        var u1 = uniform()
        while u1 <= .leastNonzeroMagnitude { u1 = uniform() }
        let u2 = uniform()
        let r = (-2 * Foundation.log(u1)).squareRoot()
        spareNormal = r * Foundation.sin(2 * .pi * u2)
        return r * Foundation.cos(2 * .pi * u2)
    }

    /// A generator for a named stream, so adding a layer does not shift every other layer's draws.
    /// Its state starts at the seed xor the name's FNV-1a hash, one step on.
    public static func stream(seed: UInt64, name: String) -> SeededGenerator {
        var h: UInt64 = 0xCBF2_9CE4_8422_2325  // FNV-1a of the name
        for b in name.utf8 { h = (h ^ UInt64(b)) &* 0x100_0000_01B3 }
        return SeededGenerator(seed: (seed ^ h) &+ 0x9E37_79B9_7F4A_7C15)
    }
}
