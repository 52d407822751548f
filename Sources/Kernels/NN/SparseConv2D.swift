import Foundation

/// The kept taps of one very sparse convolution weight, per output channel (CSR-like):
/// output channel `o` owns entries `start[o] ..< start[o + 1]`, each the flat index of the weight
/// `[o, c, ki, kj]` and the offset of its first read `c·ph·pw + ki·pw + kj` in the zero-padded
/// input planes `[Cin, ph, pw]` (ph = H + 2p, pw = W + 2p). Built for `groups == 1`.
public struct SparseConvTaps: Sendable {
    /// The conv's sizes (`batch` may be changed: the taps do not depend on it).
    public var geometry: ConvGeometry
    let start: [Int32]
    let weightIndex: [Int32]
    let offset: [Int32]
    /// Kept taps (the weight's non-zero count when built from its pattern).
    public var count: Int { weightIndex.count }
    /// Kept fraction of the weight.
    public var density: Double { Double(count) / Double(max(1, geometry.weightShape.reduce(1, *))) }

    /// Taps of `kept` (`[Cout, Cin, k, k]`, non-zero = kept); nil when the conv is grouped or
    /// `kept` does not have the weight's size.
    /// - Complexity: O(Cout · Cin · k²).
    public init?<S: NNScalar>(_ g: ConvGeometry, kept: UnsafeBufferPointer<S>) {
        guard g.groups == 1, g.problem == nil, kept.count == g.weightShape.reduce(1, *) else { return nil }
        let k = g.kernel, kk = k * k, ph = g.height + 2 * g.padding, pw = g.width + 2 * g.padding
        var start = [Int32](), index = [Int32](), offset = [Int32]()
        start.reserveCapacity(g.outChannels + 1)
        start.append(0)
        for o in 0 ..< g.outChannels {
            for c in 0 ..< g.inChannels {
                for t in 0 ..< kk where kept[(o * g.inChannels + c) * kk + t] != 0 {
                    index.append(Int32((o * g.inChannels + c) * kk + t))
                    offset.append(Int32(c * ph * pw + (t / k) * pw + t % k))
                }
            }
            start.append(Int32(index.count))
        }
        geometry = g; self.start = start; weightIndex = index; self.offset = offset
    }
}

/// Convolution kernels that visit only a layer's kept taps (`SparseConvTaps`), for weights so
/// sparse that a dense GEMM spends most of its time multiplying zeros. Same math as `Conv2D`
/// (PyTorch semantics, groups = 1) up to float summation order; the weight gradient is produced
/// for the kept taps only (the others are left untouched, i.e. 0 in a fresh buffer).
///
/// Each kept tap w[o, c, ki, kj] is applied directly on the zero-padded input planes as an axpy
/// over output rows, `y[o, oy, :] += w · P[c, oy·s + ki, kj + s·(0 ..< ow)]` — planes of 32², 16²
/// and 8² stay in L1/L2. Work is split over images (forward, input gradient: each image written
/// by one worker) or over a fixed number of image chunks whose partial sums are added in chunk
/// order (weight gradient), so results do not depend on the thread count.
public enum SparseConv2D {
    /// Image chunks of the weight gradient's partial sums: fixed, so the summation order (hence
    /// the result, bit for bit) is the same on any number of cores.
    static let weightGradientChunks = 8

    /// Calls `body(image, scratch)` for every image, spread over the threads; each thread has its
    /// own `scratchCount` values, zeroed once (disjoint writes per image, so the result does not
    /// depend on the schedule).
    static func forImages<S: NNScalar>(_ batch: Int, costPerImage: Int, scratchCount: Int,
                                       _ body: (_ image: Int, _ scratch: UnsafeMutablePointer<S>) -> Void) {
        let threads = Parallel.threads
        let scratch = UnsafeMutablePointer<S>.allocate(capacity: threads * scratchCount)
        scratch.initialize(repeating: 0, count: threads * scratchCount)
        defer { scratch.deallocate() }
        Parallel.forChunks(batch, grain: Parallel.grain(costPerItem: costPerImage), threads: threads) { thread, images in
            for n in images { body(n, scratch + thread * scratchCount) }
        }
    }

    /// Copies image `x` `[Cin, H, W]` into the interior of `padded` `[Cin, ph, pw]` (borders stay zero).
    @inline(__always)
    static func pad<S: NNScalar>(_ x: UnsafePointer<S>, _ g: ConvGeometry, into padded: UnsafeMutablePointer<S>) {
        let p = g.padding, ph = g.height + 2 * p, pw = g.width + 2 * p
        for c in 0 ..< g.inChannels {
            for iy in 0 ..< g.height {
                Conv2D.copyRow(padded + (c * ph + iy + p) * pw + p, x + (c * g.height + iy) * g.width, g.width)
            }
        }
    }

    /// y = conv(x, w), or y += conv(x, w) when `accumulate`, visiting only `taps`.
    /// Shapes: x `[N, Cin, H, W]`, w `[Cout, Cin, k, k]`, y `[N, Cout, Ho, Wo]`.
    /// - Complexity: O(N · taps · Ho · Wo) multiply-adds.
    @_specialize(where S == Float)
    @_specialize(where S == Double)
    public static func forward<S: NNScalar>(_ taps: SparseConvTaps, x: UnsafePointer<S>, weight: UnsafePointer<S>,
                                            y: UnsafeMutablePointer<S>, accumulate: Bool) {
        let g = taps.geometry
        if S.self == Float.self && hasVectorRows(g) {
            forwardRows(taps, x: rebound(x), weight: rebound(weight), y: rebound(y), accumulate: accumulate)
            return
        }
        let (s, oh, ow) = (g.stride, g.outHeight, g.outWidth)
        let ph = g.height + 2 * g.padding, pw = g.width + 2 * g.padding
        let inImage = g.inChannels * g.inPixels, outImage = g.outChannels * g.outPixels
        taps.start.withUnsafeBufferPointer { start in
        taps.weightIndex.withUnsafeBufferPointer { index in
        taps.offset.withUnsafeBufferPointer { offset in
            forImages(g.batch, costPerImage: max(1, taps.count * g.outPixels), scratchCount: g.inChannels * ph * pw) { (n, padded: UnsafeMutablePointer<S>) in
                let source: UnsafePointer<S>
                if g.padding > 0 { pad(x + n * inImage, g, into: padded); source = UnsafePointer(padded) } else { source = x + n * inImage }
                for o in 0 ..< g.outChannels {
                    let out = y + n * outImage + o * oh * ow
                    if !accumulate { out.update(repeating: 0, count: oh * ow) }
                    for e in Int(start[o]) ..< Int(start[o + 1]) {
                        let wv = weight[Int(index[e])], base = source + Int(offset[e])
                        for oy in 0 ..< oh {
                            let src = base + oy * s * pw, dst = out + oy * ow
                            if s == 1 {
                                for ox in 0 ..< ow { dst[ox] += wv * src[ox] }
                            } else {
                                for ox in 0 ..< ow { dst[ox] += wv * src[ox * s] }
                            }
                        }
                    }
                }
            }
        }
        }
        }
    }

    /// dx = convᵀ(dy, w), or dx += convᵀ(dy, w) when `accumulate`, visiting only `taps`.
    /// Shapes: dy `[N, Cout, Ho, Wo]`, w `[Cout, Cin, k, k]`, dx `[N, Cin, H, W]`.
    /// - Complexity: O(N · (taps · Ho · Wo + Cin · ph · pw)).
    @_specialize(where S == Float)
    @_specialize(where S == Double)
    public static func backwardInput<S: NNScalar>(_ taps: SparseConvTaps, dy: UnsafePointer<S>, weight: UnsafePointer<S>,
                                                  dx: UnsafeMutablePointer<S>, accumulate: Bool) {
        let g = taps.geometry
        if S.self == Float.self && hasVectorRows(g) {
            backwardInputRows(taps, dy: rebound(dy), weight: rebound(weight), dx: rebound(dx), accumulate: accumulate)
            return
        }
        let (s, p, oh, ow) = (g.stride, g.padding, g.outHeight, g.outWidth)
        let ph = g.height + 2 * p, pw = g.width + 2 * p
        let inImage = g.inChannels * g.inPixels, outImage = g.outChannels * g.outPixels
        let paddedCount = g.inChannels * ph * pw
        taps.start.withUnsafeBufferPointer { start in
        taps.weightIndex.withUnsafeBufferPointer { index in
        taps.offset.withUnsafeBufferPointer { offset in
            // `padded`: the gradient of the padded planes; its border (the padding) is dropped.
            forImages(g.batch, costPerImage: max(1, taps.count * g.outPixels + paddedCount), scratchCount: paddedCount) { (n, padded: UnsafeMutablePointer<S>) in
                do {
                    padded.update(repeating: 0, count: paddedCount)
                    let gout = dy + n * outImage
                    for o in 0 ..< g.outChannels {
                        let grad = gout + o * oh * ow
                        for e in Int(start[o]) ..< Int(start[o + 1]) {
                            let wv = weight[Int(index[e])], base = padded + Int(offset[e])
                            for oy in 0 ..< oh {
                                let dst = base + oy * s * pw, src = grad + oy * ow
                                if s == 1 {
                                    for ox in 0 ..< ow { dst[ox] += wv * src[ox] }
                                } else {
                                    for ox in 0 ..< ow { dst[ox * s] += wv * src[ox] }
                                }
                            }
                        }
                    }
                    let xin = dx + n * inImage
                    for c in 0 ..< g.inChannels {
                        for iy in 0 ..< g.height {
                            let src = padded + (c * ph + iy + p) * pw + p, dst = xin + (c * g.height + iy) * g.width
                            if accumulate { for ix in 0 ..< g.width { dst[ix] += src[ix] } } else { Conv2D.copyRow(dst, src, g.width) }
                        }
                    }
                }
            }
        }
        }
        }
    }

    /// dw[kept] += Σₙ dyₙ ⋆ xₙ for the kept taps only (one dot product per tap and image); the
    /// other entries of dw are not written.
    /// Shapes: x `[N, Cin, H, W]`, dy `[N, Cout, Ho, Wo]`, dw `[Cout, Cin, k, k]`.
    /// - Complexity: O(N · (taps · Ho · Wo + Cin · H · W)).
    @_specialize(where S == Float)
    @_specialize(where S == Double)
    public static func backwardWeight<S: NNScalar>(_ taps: SparseConvTaps, x: UnsafePointer<S>, dy: UnsafePointer<S>,
                                                   dw: UnsafeMutablePointer<S>) {
        let g = taps.geometry
        let (s, oh, ow) = (g.stride, g.outHeight, g.outWidth)
        let ph = g.height + 2 * g.padding, pw = g.width + 2 * g.padding
        let inImage = g.inChannels * g.inPixels, outImage = g.outChannels * g.outPixels
        let chunks = max(1, min(weightGradientChunks, g.batch)), kept = taps.count
        guard kept > 0 else { return }
        if S.self == Float.self && hasVectorRows(g) {
            backwardWeightRows(taps, x: rebound(x), dy: rebound(dy), dw: rebound(dw))
            return
        }
        let partial = UnsafeMutablePointer<S>.allocate(capacity: chunks * kept)
        partial.initialize(repeating: 0, count: chunks * kept)
        defer { partial.deallocate() }
        taps.start.withUnsafeBufferPointer { start in
        taps.offset.withUnsafeBufferPointer { offset in
            Parallel.forChunks(chunks, costPerItem: max(1, (g.batch / chunks) * kept * g.outPixels)) { chunkRange in
                let padded = UnsafeMutablePointer<S>.allocate(capacity: g.inChannels * ph * pw)
                padded.initialize(repeating: 0, count: g.inChannels * ph * pw)
                // Per-column sums of one tap (vectorisable); reduced once per tap and image.
                let columns = UnsafeMutablePointer<S>.allocate(capacity: ow)
                defer { padded.deallocate(); columns.deallocate() }
                for chunk in chunkRange {
                    let acc = partial + chunk * kept
                    for n in g.batch * chunk / chunks ..< g.batch * (chunk + 1) / chunks {
                        let source: UnsafePointer<S>
                        if g.padding > 0 { pad(x + n * inImage, g, into: padded); source = UnsafePointer(padded) } else { source = x + n * inImage }
                        for o in 0 ..< g.outChannels {
                            let grad = dy + n * outImage + o * oh * ow
                            for e in Int(start[o]) ..< Int(start[o + 1]) {
                                let base = source + Int(offset[e])
                                columns.update(repeating: 0, count: ow)
                                for oy in 0 ..< oh {
                                    let src = base + oy * s * pw, gr = grad + oy * ow
                                    if s == 1 {
                                        for ox in 0 ..< ow { columns[ox] += gr[ox] * src[ox] }
                                    } else {
                                        for ox in 0 ..< ow { columns[ox] += gr[ox] * src[ox * s] }
                                    }
                                }
                                var sum: S = 0
                                for ox in 0 ..< ow { sum += columns[ox] }
                                acc[e] += sum
                            }
                        }
                    }
                }
            }
        }
        }
        taps.weightIndex.withUnsafeBufferPointer { index in
            for e in 0 ..< kept {
                var sum: S = 0
                for chunk in 0 ..< chunks { sum += partial[chunk * kept + e] }
                dw[Int(index[e])] += sum
            }
        }
    }
}

// MARK: Float rows of 8-float vectors

extension SparseConv2D {
    typealias Vector = SIMD8<Float>

    /// Output rows of whole 8-float vectors at stride 1 or 2 (CIFAR planes: 32, 16, 8 wide) take
    /// the vector paths below; other shapes the scalar loops above.
    static func hasVectorRows(_ g: ConvGeometry) -> Bool { g.outWidth % 8 == 0 && (g.stride == 1 || g.stride == 2) }

    @inline(__always) static func rebound<S>(_ p: UnsafePointer<S>) -> UnsafePointer<Float> {
        UnsafeRawPointer(p).assumingMemoryBound(to: Float.self)
    }
    @inline(__always) static func rebound<S>(_ p: UnsafeMutablePointer<S>) -> UnsafeMutablePointer<Float> {
        UnsafeMutableRawPointer(p).assumingMemoryBound(to: Float.self)
    }

    /// 8 values at `p`, or at stride 2 the even ones of the 16 at `p`.
    @inline(__always) static func load(_ p: UnsafePointer<Float>, stride: Int) -> Vector {
        stride == 1 ? UnsafeRawPointer(p).loadUnaligned(as: Vector.self)
                    : UnsafeRawPointer(p).loadUnaligned(as: SIMD16<Float>.self).evenHalf
    }

    /// Padded planes `[Cin, ph, pw]` plus slack: a stride-2 vector read or write touches 16
    /// values from its first column, which can run one value past the last row.
    static func paddedScratchCount(_ g: ConvGeometry) -> Int {
        g.inChannels * (g.height + 2 * g.padding) * (g.width + 2 * g.padding) + 16
    }

    /// The kept taps' weights in tap order (one gather per call instead of one per row).
    static func tapWeights(_ taps: SparseConvTaps, _ weight: UnsafePointer<Float>) -> [Float] {
        taps.weightIndex.map { weight[Int($0)] }
    }

    /// `forward` on vector rows: each 8-wide piece of an output row is summed over the output
    /// channel's taps in a register and stored once.
    static func forwardRows(_ taps: SparseConvTaps, x: UnsafePointer<Float>, weight: UnsafePointer<Float>,
                            y: UnsafeMutablePointer<Float>, accumulate: Bool) {
        let g = taps.geometry
        let (s, oh, ow) = (g.stride, g.outHeight, g.outWidth)
        let pw = g.width + 2 * g.padding, vectors = ow / 8
        let inImage = g.inChannels * g.inPixels, outImage = g.outChannels * g.outPixels
        let weights = tapWeights(taps, weight)
        taps.start.withUnsafeBufferPointer { start in
        taps.offset.withUnsafeBufferPointer { offset in
        weights.withUnsafeBufferPointer { tapWeight in
            forImages(g.batch, costPerImage: max(1, taps.count * g.outPixels), scratchCount: paddedScratchCount(g)) { (n, padded: UnsafeMutablePointer<Float>) in
                do {
                    pad(x + n * inImage, g, into: padded)
                    for o in 0 ..< g.outChannels {
                        let lo = Int(start[o]), hi = Int(start[o + 1])
                        let out = y + n * outImage + o * oh * ow
                        for oy in 0 ..< oh {
                            let row = UnsafePointer(padded) + oy * s * pw
                            for v in 0 ..< vectors {
                                var sum = Vector()
                                let column = row + v * 8 * s
                                for e in lo ..< hi { sum += tapWeight[e] * load(column + Int(offset[e]), stride: s) }
                                let dst = UnsafeMutableRawPointer(out + oy * ow + v * 8)
                                if accumulate { sum += dst.loadUnaligned(as: Vector.self) }
                                dst.storeBytes(of: sum, as: Vector.self)
                            }
                        }
                    }
                }
            }
        }
        }
        }
    }

    /// `backwardInput` on vector rows: each 8-wide piece of a gradient row is added, times each
    /// of its output channel's taps, into the padded input-gradient planes.
    static func backwardInputRows(_ taps: SparseConvTaps, dy: UnsafePointer<Float>, weight: UnsafePointer<Float>,
                                  dx: UnsafeMutablePointer<Float>, accumulate: Bool) {
        let g = taps.geometry
        let (s, p, oh, ow) = (g.stride, g.padding, g.outHeight, g.outWidth)
        let ph = g.height + 2 * p, pw = g.width + 2 * p, vectors = ow / 8
        let inImage = g.inChannels * g.inPixels, outImage = g.outChannels * g.outPixels
        let weights = tapWeights(taps, weight)
        taps.start.withUnsafeBufferPointer { start in
        taps.offset.withUnsafeBufferPointer { offset in
        weights.withUnsafeBufferPointer { tapWeight in
            let count = paddedScratchCount(g)
            forImages(g.batch, costPerImage: max(1, taps.count * g.outPixels + count), scratchCount: count) { (n, padded: UnsafeMutablePointer<Float>) in
                do {
                    padded.update(repeating: 0, count: count)
                    for o in 0 ..< g.outChannels {
                        let lo = Int(start[o]), hi = Int(start[o + 1])
                        let grad = dy + n * outImage + o * oh * ow
                        for oy in 0 ..< oh {
                            let row = padded + oy * s * pw
                            for v in 0 ..< vectors {
                                let gv = UnsafeRawPointer(grad + oy * ow + v * 8).loadUnaligned(as: Vector.self)
                                let column = row + v * 8 * s
                                if s == 1 {
                                    for e in lo ..< hi {
                                        let d = UnsafeMutableRawPointer(column + Int(offset[e]))
                                        d.storeBytes(of: d.loadUnaligned(as: Vector.self) + tapWeight[e] * gv, as: Vector.self)
                                    }
                                } else {
                                    for e in lo ..< hi {
                                        let d = UnsafeMutableRawPointer(column + Int(offset[e]))
                                        var wide = d.loadUnaligned(as: SIMD16<Float>.self)
                                        wide.evenHalf += tapWeight[e] * gv
                                        d.storeBytes(of: wide, as: SIMD16<Float>.self)
                                    }
                                }
                            }
                        }
                    }
                    let xin = dx + n * inImage
                    for c in 0 ..< g.inChannels {
                        for iy in 0 ..< g.height {
                            let src = padded + (c * ph + iy + p) * pw + p, dst = xin + (c * g.height + iy) * g.width
                            if accumulate { for ix in 0 ..< g.width { dst[ix] += src[ix] } } else { Conv2D.copyRow(dst, src, g.width) }
                        }
                    }
                }
            }
        }
        }
        }
    }

    /// `backwardWeight` on vector rows: one 8-wide running product per tap and image, reduced
    /// once; partial sums per fixed image chunk as in the scalar path.
    static func backwardWeightRows(_ taps: SparseConvTaps, x: UnsafePointer<Float>, dy: UnsafePointer<Float>,
                                   dw: UnsafeMutablePointer<Float>) {
        let g = taps.geometry
        let (s, oh, ow) = (g.stride, g.outHeight, g.outWidth)
        let pw = g.width + 2 * g.padding, vectors = ow / 8
        let inImage = g.inChannels * g.inPixels, outImage = g.outChannels * g.outPixels
        let chunks = max(1, min(weightGradientChunks, g.batch)), kept = taps.count
        let partial = UnsafeMutablePointer<Float>.allocate(capacity: chunks * kept)
        partial.initialize(repeating: 0, count: chunks * kept)
        defer { partial.deallocate() }
        taps.start.withUnsafeBufferPointer { start in
        taps.offset.withUnsafeBufferPointer { offset in
            Parallel.forChunks(chunks, costPerItem: max(1, (g.batch / chunks) * kept * g.outPixels)) { chunkRange in
                let padded = UnsafeMutablePointer<Float>.allocate(capacity: paddedScratchCount(g))
                padded.initialize(repeating: 0, count: paddedScratchCount(g))
                defer { padded.deallocate() }
                for chunk in chunkRange {
                    let acc = partial + chunk * kept
                    for n in g.batch * chunk / chunks ..< g.batch * (chunk + 1) / chunks {
                        pad(x + n * inImage, g, into: padded)
                        for o in 0 ..< g.outChannels {
                            let grad = dy + n * outImage + o * oh * ow
                            for e in Int(start[o]) ..< Int(start[o + 1]) {
                                let base = UnsafePointer(padded) + Int(offset[e])
                                var sum = Vector()
                                for oy in 0 ..< oh {
                                    let src = base + oy * s * pw, gr = grad + oy * ow
                                    for v in 0 ..< vectors {
                                        sum += UnsafeRawPointer(gr + v * 8).loadUnaligned(as: Vector.self) * load(src + v * 8 * s, stride: s)
                                    }
                                }
                                acc[e] += sum.sum()
                            }
                        }
                    }
                }
            }
        }
        }
        taps.weightIndex.withUnsafeBufferPointer { index in
            for e in 0 ..< kept {
                var sum: Float = 0
                for chunk in 0 ..< chunks { sum += partial[chunk * kept + e] }
                dw[Int(index[e])] += sum
            }
        }
    }
}

/// Picks the dense (`Conv2D`) or sparse (`SparseConv2D`) kernel of each layer and operation by a
/// cost model: a pure function of the layer's shape, kept count and operation (and the scalar
/// type), so the choice — hence the rounding, since the two kernels sum in different orders — is
/// the same in every process, at any load and thread count. (The choice used to be made by timing
/// both kernels at first use, so the same script gave different bits from process to process.)
///
/// Model, per image and one thread: dense = `dense[op]`·(Cout·Cin·k²·Ho·Wo) multiply-adds of
/// the GEMM + `columns[op]`·(Cin·k²·Ho·Wo) im2col entries (0 for a 1x1 stride-1 conv, which
/// reads its input directly); sparse = `tap[op]`·(kept·Ho·Wo) multiply-adds (`scalarTap[op]`
/// when the output rows are not whole 8-float vectors or the scalar is not Float) +
/// `pad[op]`·(Cin·(H+2p)·(W+2p)) padded-input entries. Sparse is chosen when cheaper and the kept
/// fraction is below `densityLimit`. The constants are nanoseconds, fitted by least squares to
/// `mge-bench --conv-kernels` (scripts/bench-conv-kernels), which times both kernels on one
/// thread in CPU time over the zoo's conv shapes at kept fractions 0.01–0.3, batch 128; that
/// bench prints the model's pick next to the measured winner, to recalibrate on a new machine kind.
/// A pick on a layer whose two costs are close may not be the faster one by a few percent: the
/// point is that it is a fixed function, not that it wins every close call.
///
/// A training checkpoint records the choices of its run (`choices`) and a resume imposes them
/// (`FirstOrderPass.pinKernelChoices`), so checkpoints written by a build whose choices differ
/// (an earlier cost model, or the timed choice of older builds) still resume bit for bit.
public enum ConvKernelChoice {
    /// Above this kept fraction the sparse kernels cannot win (a GEMM runs ~10x more
    /// multiply-adds per second than the per-tap axpy), so they are never chosen.
    public static let densityLimit = 0.3

    /// The three conv kernels of a training step.
    public enum Operation: Int, CaseIterable, Sendable { case forward, input, weight }

    /// Nanoseconds per unit (see the type), indexed by `Operation.rawValue`.
    /// Fitted on 2026-12-06 to `scripts/bench-conv-kernels --runs 3 --batch 32` on this project's
    /// machine kind (OpenBLAS Cooperlake kernels, 2 shared cores at load ~10), weighted least
    /// squares on the relative error: the model picks the measured winner in 482 of 525 (shape,
    /// operation, density) cases; the misses are layers whose two kernels were within ~20% of
    /// each other, but for the 1x1 stride-2 shortcuts (their strided im2col costs more than the
    /// model says: dense picked where sparse was up to 2.5x faster; small layers).
    static let dense: [Double] = [0.0255, 0.0280, 0.0290]
    static let columns: [Double] = [0.124, 0.0508, 0.0384]
    static let tap: [Double] = [0.117, 0.203, 0.151]
    static let scalarTap: [Double] = [0.381, 0.339, 0.541]
    static let pad: [Double] = [0.268, 0.300, 0.143]

    /// Tests set it to imitate a build whose cost model picks the other kernel everywhere.
    nonisolated(unsafe) static var invertedForTesting = false

    /// Modelled (dense, sparse) nanoseconds per image of `op` on a conv of geometry `g` keeping
    /// `kept` weights.
    public static func modelledCost(_ g: ConvGeometry, kept: Int, _ op: Operation, vectorRows: Bool) -> (dense: Double, sparse: Double) {
        let outPixels = Double(g.outHeight * g.outWidth), patch = Double(g.inChannels * g.kernel * g.kernel)
        let direct = g.kernel == 1 && g.stride == 1 && g.padding == 0
        let dense = dense[op.rawValue] * Double(g.outChannels) * patch * outPixels + (direct ? 0 : columns[op.rawValue] * patch * outPixels)
        // The forward pass reads an unpadded input in place; the gradients always copy it.
        let padded = op == .forward && g.padding == 0 ? 0 : Double(g.inChannels * (g.height + 2 * g.padding) * (g.width + 2 * g.padding))
        let sparse = (vectorRows ? tap : scalarTap)[op.rawValue] * Double(kept) * outPixels + pad[op.rawValue] * padded
        return (dense, sparse)
    }

    /// Whether `op` of a conv of geometry `g` keeping `kept` weights runs on the sparse kernel,
    /// for scalars of `scalarSize` bytes (4: Float). A pure function: the same answer in every
    /// process. Grouped convs never run sparse.
    public static func prefersSparse(_ g: ConvGeometry, kept: Int, _ op: Operation, scalarSize: Int = 4) -> Bool {
        let weights = g.weightShape.reduce(1, *)
        guard g.groups == 1, weights > 0, Double(kept) < densityLimit * Double(weights) else { return invertedForTesting }
        let vectorRows = scalarSize == MemoryLayout<Float>.size && SparseConv2D.hasVectorRows(g)
        let cost = modelledCost(g, kept: kept, op, vectorRows: vectorRows)
        return (cost.sparse < cost.dense) != invertedForTesting
    }

    /// Whether `op` runs sparse for `taps` with scalars `S`.
    public static func prefersSparse<S: NNScalar>(_ taps: SparseConvTaps, _ op: Operation, _: S.Type) -> Bool {
        prefersSparse(taps.geometry, kept: taps.count, op, scalarSize: MemoryLayout<S>.size)
    }

    /// The choices for `taps` as bits (1 forward, 2 input gradient, 4 weight gradient: set =
    /// sparse) with a mask of which are decided (all three); `pinned` choices (bits of a
    /// checkpoint) override the model for the operations they know.
    public static func choices<S: NNScalar>(_ taps: SparseConvTaps, _: S.Type, pinned: (sparse: Int, known: Int)? = nil) -> (sparse: Int, known: Int) {
        var sparse = 0
        for op in Operation.allCases where uses(taps, op, S.self, pinned: pinned) { sparse |= 1 << op.rawValue }
        return (sparse, 7)
    }

    /// Whether `op` runs sparse for `taps`: the pinned choice when it knows `op`, else the model.
    public static func uses<S: NNScalar>(_ taps: SparseConvTaps, _ op: Operation, _: S.Type, pinned: (sparse: Int, known: Int)?) -> Bool {
        let bit = 1 << op.rawValue
        if let pinned, pinned.known & bit != 0 { return pinned.sparse & bit != 0 }
        return prefersSparse(taps, op, S.self)
    }

    /// y (+)= conv(x, w) on the sparse kernel or the dense one (same result up to rounding).
    @_specialize(where S == Float)
    @_specialize(where S == Double)
    public static func forward<S: NNScalar>(_ taps: SparseConvTaps, sparse: Bool, x: UnsafePointer<S>, weight: UnsafePointer<S>,
                                            y: UnsafeMutablePointer<S>, accumulate: Bool) {
        if sparse {
            SparseConv2D.forward(taps, x: x, weight: weight, y: y, accumulate: accumulate)
        } else {
            Conv2D.forward(taps.geometry, x: x, weight: weight, y: y, accumulate: accumulate)
        }
    }

    /// dx (+)= convᵀ(dy, w) on the sparse kernel or the dense one.
    @_specialize(where S == Float)
    @_specialize(where S == Double)
    public static func backwardInput<S: NNScalar>(_ taps: SparseConvTaps, sparse: Bool, dy: UnsafePointer<S>, weight: UnsafePointer<S>,
                                                  dx: UnsafeMutablePointer<S>, accumulate: Bool) {
        if sparse {
            SparseConv2D.backwardInput(taps, dy: dy, weight: weight, dx: dx, accumulate: accumulate)
        } else {
            Conv2D.backwardInput(taps.geometry, dy: dy, weight: weight, dx: dx, accumulate: accumulate)
        }
    }

    /// dw[kept] += Σₙ dyₙ ⋆ xₙ on the sparse kernel or the dense one. The dense kernel writes
    /// every entry, so its result is masked back to the kept taps (the weight gradient of a
    /// removed weight is left as it was, as the sparse kernel leaves it).
    @_specialize(where S == Float)
    @_specialize(where S == Double)
    public static func backwardWeight<S: NNScalar>(_ taps: SparseConvTaps, sparse: Bool, x: UnsafePointer<S>, dy: UnsafePointer<S>,
                                                   dw: UnsafeMutablePointer<S>) {
        if sparse {
            SparseConv2D.backwardWeight(taps, x: x, dy: dy, dw: dw)
            return
        }
        let g = taps.geometry, count = g.weightShape.reduce(1, *)
        let full = UnsafeMutablePointer<S>.allocate(capacity: count)
        full.initialize(repeating: 0, count: count)
        defer { full.deallocate() }
        Conv2D.backwardWeight(g, x: x, dy: dy, dw: full)
        for i in taps.weightIndex { dw[Int(i)] += full[Int(i)] }
    }
}
