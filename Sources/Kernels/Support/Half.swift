/// Float16 → Float by bit manipulation.
///
/// Why: without F16C in the baseline x86-64 target, Swift converts `Float(h)` through a
/// runtime call (`__extendhfsf2`, a few ns each), which showed up in the metrics on 23 M edge
/// weights. Shifting the half's exponent and mantissa into a Float and scaling by 2¹¹² (the
/// bias difference 127 − 15) is exact for every finite value, subnormals included (they land
/// on Float subnormals, which the scaling makes normal); infinities and NaNs take the runtime
/// conversion.
@inlinable @inline(__always)
func widen(_ h: Float16) -> Float {
    let bits = UInt32(h.bitPattern)
    let magnitude = bits & 0x7FFF
    if magnitude >= 0x7C00 { return Float(h) }
    let scaled = Float(bitPattern: magnitude << 13) * 0x1p112
    return Float(bitPattern: scaled.bitPattern | (bits & 0x8000) << 16)
}
