/// Sizes of one 2-D convolution over a batch, PyTorch semantics (cross-correlation, zero padding).
///
/// Input x `[batch, inChannels, height, width]`, weight w `[outChannels, inChannels/groups,
/// kernel, kernel]`, output y `[batch, outChannels, outHeight, outWidth]`.
public struct ConvGeometry: Equatable, Sendable {
    public var batch: Int
    public var inChannels: Int
    public var height: Int
    public var width: Int
    public var outChannels: Int
    public var kernel: Int
    public var stride: Int
    public var padding: Int
    public var groups: Int

    public init(batch: Int, inChannels: Int, height: Int, width: Int, outChannels: Int,
                kernel: Int, stride: Int = 1, padding: Int = 0, groups: Int = 1) {
        self.batch = batch; self.inChannels = inChannels; self.height = height; self.width = width
        self.outChannels = outChannels; self.kernel = kernel; self.stride = stride
        self.padding = padding; self.groups = groups
    }

    public var outHeight: Int { (height + 2 * padding - kernel) / stride + 1 }
    public var outWidth: Int { (width + 2 * padding - kernel) / stride + 1 }
    var inPerGroup: Int { inChannels / groups }
    var outPerGroup: Int { outChannels / groups }
    /// Rows of one group's im2col matrix: in-channel, kernel row, kernel column (W.reshape order).
    var patchSize: Int { inPerGroup * kernel * kernel }
    var outPixels: Int { outHeight * outWidth }
    var inPixels: Int { height * width }
    public var inputShape: [Int] { [batch, inChannels, height, width] }
    public var weightShape: [Int] { [outChannels, inPerGroup, kernel, kernel] }
    public var outputShape: [Int] { [batch, outChannels, outHeight, outWidth] }
    /// A 1x1, stride-1, unpadded conv reads its input as the im2col matrix itself.
    var isPointwise: Bool { kernel == 1 && stride == 1 && padding == 0 }
    /// One input and one output channel per group: handled by direct loops, GEMM would be 1-row.
    var isDepthwise: Bool { inPerGroup == 1 && outPerGroup == 1 }

    /// Output columns `ox` whose tap `ox·stride − padding + kj` lands inside the image (a half-open range).
    @inline(__always) func validColumns(_ kj: Int) -> (Int, Int) {
        let lo = min(outWidth, max(0, (padding - kj + stride - 1) / stride))  // ceil for the positive case
        let last = width - 1 + padding - kj
        if last < 0 { return (lo, lo) }
        return (lo, max(lo, min(outWidth, last / stride + 1)))
    }

    /// Nil when the numbers cannot describe a convolution (so callers can throw a clear error).
    public var problem: String? {
        if batch < 0 || inChannels <= 0 || outChannels <= 0 || height <= 0 || width <= 0 { return "empty or negative sizes" }
        if kernel <= 0 || stride <= 0 || padding < 0 || groups <= 0 { return "kernel, stride and groups must be positive, padding non-negative" }
        if inChannels % groups != 0 || outChannels % groups != 0 { return "groups \(groups) must divide in (\(inChannels)) and out (\(outChannels)) channels" }
        if height + 2 * padding < kernel || width + 2 * padding < kernel { return "kernel \(kernel) larger than the padded input \(height)x\(width)" }
        return nil
    }
}

/// Convolution kernels on plain NCHW buffers: im2col + GEMM, with direct loops for depthwise
/// convs and no copy for pointwise ones. The batch is split over cores; each worker owns its
/// im2col scratch. Backward kernels *accumulate* (`+=`) into their gradient buffers.
public enum Conv2D {
    /// Per-worker scratch of the im2col path: the column matrix and, for padded convs, a
    /// zero-bordered copy of one image's channel slice (borders are zeroed once, only the
    /// interior is rewritten per image), so that im2col copies whole rows without bounds tests.
    struct Scratch<S: NNScalar> {
        let col: UnsafeMutablePointer<S>?
        let padded: UnsafeMutablePointer<S>?
        let paddedCount: Int

        init(_ g: ConvGeometry) {
            col = g.isPointwise ? nil : UnsafeMutablePointer<S>.allocate(capacity: g.patchSize * g.outPixels)
            if !g.isPointwise && g.padding > 0 {
                paddedCount = g.inPerGroup * (g.height + 2 * g.padding) * (g.width + 2 * g.padding)
                let p = UnsafeMutablePointer<S>.allocate(capacity: paddedCount)
                p.initialize(repeating: 0, count: paddedCount)
                padded = p
            } else {
                paddedCount = 0; padded = nil
            }
        }

        func release() { col?.deallocate(); padded?.deallocate() }

        /// The GEMM operand of one image's group `[patchSize, outPixels]`: its im2col columns,
        /// or the input itself for a 1×1 stride-1 conv (no copy needed).
        @inline(__always)
        func columns(_ input: UnsafePointer<S>, _ g: ConvGeometry) -> UnsafePointer<S> {
            guard let col else { return input }
            Conv2D.im2col(input, g, col, padded: padded)
            return UnsafePointer(col)
        }
    }

    /// Copies `n` values without a library call per row (im2col copies rows of 8–32 values),
    /// 32 bytes at a time for Float and Double.
    @inline(__always)
    static func copyRow<S: NNScalar>(_ dst: UnsafeMutablePointer<S>, _ src: UnsafePointer<S>, _ n: Int) {
        guard S.self == Float.self || S.self == Double.self else { dst.update(from: src, count: n); return }
        let d = UnsafeMutableRawPointer(dst), s = UnsafeRawPointer(src)
        typealias V = SIMD8<Float>
        var o = 0
        let bytes = n * MemoryLayout<S>.stride
        // Four stores per iteration (the loop is not turned back into a memcpy call).
        while o + 128 <= bytes {
            let a = s.loadUnaligned(fromByteOffset: o, as: V.self), b = s.loadUnaligned(fromByteOffset: o + 32, as: V.self)
            let c = s.loadUnaligned(fromByteOffset: o + 64, as: V.self), e = s.loadUnaligned(fromByteOffset: o + 96, as: V.self)
            d.storeBytes(of: a, toByteOffset: o, as: V.self); d.storeBytes(of: b, toByteOffset: o + 32, as: V.self)
            d.storeBytes(of: c, toByteOffset: o + 64, as: V.self); d.storeBytes(of: e, toByteOffset: o + 96, as: V.self)
            o += 128
        }
        if o + 64 <= bytes {
            let a = s.loadUnaligned(fromByteOffset: o, as: V.self), b = s.loadUnaligned(fromByteOffset: o + 32, as: V.self)
            d.storeBytes(of: a, toByteOffset: o, as: V.self); d.storeBytes(of: b, toByteOffset: o + 32, as: V.self)
            o += 64
        }
        if o + 32 <= bytes {
            d.storeBytes(of: s.loadUnaligned(fromByteOffset: o, as: V.self), toByteOffset: o, as: V.self)
            o += 32
        }
        var i = o / MemoryLayout<S>.stride
        while i < n { dst[i] = src[i]; i += 1 }
    }

    /// im2col of one image's channel slice `x[c0 ..< c0+inPerGroup]` into `col [patchSize, outPixels]`,
    /// reading through the zero-bordered copy `padded` when the conv pads (see `Scratch`).
    /// - Complexity: O(patchSize · outPixels).
    @_specialize(where S == Float)
    @_specialize(where S == Double)
    static func im2col<S: NNScalar>(_ x: UnsafePointer<S>, _ g: ConvGeometry, _ col: UnsafeMutablePointer<S>,
                                    padded: UnsafeMutablePointer<S>?) {
        let (k, s, p, oh, ow) = (g.kernel, g.stride, g.padding, g.outHeight, g.outWidth)
        let ph = g.height + 2 * p, pw = g.width + 2 * p
        let source: UnsafePointer<S>
        if p > 0, let padded {
            for c in 0 ..< g.inPerGroup {
                for iy in 0 ..< g.height {
                    copyRow(padded + (c * ph + iy + p) * pw + p, x + (c * g.height + iy) * g.width, g.width)
                }
            }
            source = UnsafePointer(padded)
        } else {
            source = x
        }
        var row = 0
        for c in 0 ..< g.inPerGroup {
            let plane = source + c * ph * pw
            for ki in 0 ..< k {
                for kj in 0 ..< k {
                    let dst = col + row * oh * ow
                    if s == 1 {
                        for oy in 0 ..< oh { copyRow(dst + oy * ow, plane + (oy + ki) * pw + kj, ow) }
                    } else {
                        for oy in 0 ..< oh {
                            let src = plane + (oy * s + ki) * pw + kj, d = dst + oy * ow
                            for ox in 0 ..< ow { d[ox] = src[ox * s] }
                        }
                    }
                    row += 1
                }
            }
        }
    }

    /// Adjoint of `im2col`: adds `col [patchSize, outPixels]` into one image's channel slice.
    @_specialize(where S == Float)
    @_specialize(where S == Double)
    static func col2imAdd<S: NNScalar>(_ col: UnsafePointer<S>, _ g: ConvGeometry, _ x: UnsafeMutablePointer<S>) {
        let (h, w, k, s, p, oh, ow) = (g.height, g.width, g.kernel, g.stride, g.padding, g.outHeight, g.outWidth)
        var row = 0
        for c in 0 ..< g.inPerGroup {
            let plane = x + c * h * w
            for ki in 0 ..< k {
                for kj in 0 ..< k {
                    let src = col + row * oh * ow
                    let (oxLo, oxHi) = g.validColumns(kj)
                    for oy in 0 ..< oh {
                        let iy = oy * s - p + ki
                        if iy < 0 || iy >= h { continue }
                        let dst = plane + iy * w
                        let srow = src + oy * ow
                        if s == 1 {
                            let d = dst + (oxLo - p + kj), r = srow + oxLo
                            for j in 0 ..< oxHi - oxLo { d[j] += r[j] }
                        } else {
                            var ix = oxLo * s - p + kj
                            for ox in oxLo ..< oxHi { dst[ix] += srow[ox]; ix += s }
                        }
                    }
                    row += 1
                }
            }
        }
    }

    /// y = conv(x, w), overwriting y.
    /// Shapes: x `[N, Cin, H, W]`, w `[Cout, Cin/groups, k, k]`, y `[N, Cout, Ho, Wo]`.
    /// - Complexity: O(N · Cout · Cin/groups · k² · Ho · Wo) multiply-adds.
    @_specialize(where S == Float)
    @_specialize(where S == Double)
    public static func forward<S: NNScalar>(_ g: ConvGeometry, x: UnsafePointer<S>, weight: UnsafePointer<S>,
                                            y: UnsafeMutablePointer<S>) {
        forward(g, x: x, weight: weight, y: y, accumulate: false)
    }

    /// y = conv(x, w), or y += conv(x, w) when `accumulate`.
    @_specialize(where S == Float)
    @_specialize(where S == Double)
    static func forward<S: NNScalar>(_ g: ConvGeometry, x: UnsafePointer<S>, weight: UnsafePointer<S>,
                                     y: UnsafeMutablePointer<S>, accumulate: Bool) {
        let inImage = g.inChannels * g.inPixels, outImage = g.outChannels * g.outPixels
        if g.isDepthwise {
            depthwiseForward(g, x: x, weight: weight, y: y, accumulate: accumulate)
            return
        }
        if g.stride == 1 && g.groups == 1 && g.kernel > 1 {
            shiftedForward(g, x: x, weight: weight, y: y, accumulate: accumulate)
            return
        }
        let cost = g.outChannels * g.patchSize * g.outPixels
        Parallel.forChunks(g.batch, costPerItem: cost) { images in
            let scratch = Scratch<S>(g)
            defer { scratch.release() }
            for n in images {
                for grp in 0 ..< g.groups {
                    let b = scratch.columns(x + n * inImage + grp * g.inPerGroup * g.inPixels, g)
                    S.gemm(transposeA: false, transposeB: false, m: g.outPerGroup, n: g.outPixels, k: g.patchSize,
                           alpha: 1, a: weight + grp * g.outPerGroup * g.patchSize, lda: g.patchSize,
                           b: b, ldb: g.outPixels, beta: accumulate ? 1 : 0,
                           c: y + n * outImage + grp * g.outPerGroup * g.outPixels, ldc: g.outPixels)
                }
            }
        }
    }

    /// Stride-1 convolution without im2col (y = or += conv(x, w)). On the zero-padded image
    /// P `[Cin, ph, pw]` (each plane followed by k − 1 zeros), the output computed on the padded
    /// grid, Y′ `[Cout, oh·pw]`, is a sum over the k² taps of GEMMs that read P shifted in place:
    ///
    ///     Y′ += W_tap `[Cout, Cin]` · P[:, ki·pw + kj …]   (row stride = the plane stride)
    ///
    /// Columns ox ≥ ow of each Y′ row are junk (they wrap into the next row) and are dropped
    /// when Y′ is copied out. This saves im2col's copy of k²·Cin·oh·ow values per image.
    /// - Complexity: O(N · Cout · Cin · k² · oh · pw) multiply-adds.
    @_specialize(where S == Float)
    @_specialize(where S == Double)
    static func shiftedForward<S: NNScalar>(_ g: ConvGeometry, x: UnsafePointer<S>, weight: UnsafePointer<S>,
                                            y: UnsafeMutablePointer<S>, accumulate: Bool) {
        let k = g.kernel, kk = k * k, p = g.padding
        let (cin, cout, oh, ow) = (g.inChannels, g.outChannels, g.outHeight, g.outWidth)
        let ph = g.height + 2 * p, pw = g.width + 2 * p
        let planeStride = ph * pw + k - 1
        let columns = oh * pw
        // The taps as matrices: taps[t] `[Cout, Cin]` = w[:, :, ki, kj].
        let taps = UnsafeMutablePointer<S>.allocate(capacity: kk * cout * cin)
        defer { taps.deallocate() }
        for o in 0 ..< cout {
            for c in 0 ..< cin {
                let src = weight + (o * cin + c) * kk
                for t in 0 ..< kk { taps[(t * cout + o) * cin + c] = src[t] }
            }
        }
        let inImage = cin * g.inPixels, outImage = cout * g.outPixels
        Parallel.forChunks(g.batch, costPerItem: cout * cin * kk * columns) { images in
            let padded = UnsafeMutablePointer<S>.allocate(capacity: cin * planeStride)
            padded.initialize(repeating: 0, count: cin * planeStride)
            let out = UnsafeMutablePointer<S>.allocate(capacity: cout * columns)
            defer { padded.deallocate(); out.deallocate() }
            for n in images {
                let xin = x + n * inImage
                for c in 0 ..< cin {
                    for iy in 0 ..< g.height {
                        copyRow(padded + c * planeStride + (iy + p) * pw + p, xin + (c * g.height + iy) * g.width, g.width)
                    }
                }
                for t in 0 ..< kk {
                    S.gemm(transposeA: false, transposeB: false, m: cout, n: columns, k: cin, alpha: 1,
                           a: taps + t * cout * cin, lda: cin, b: padded + (t / k) * pw + t % k, ldb: planeStride,
                           beta: t == 0 ? 0 : 1, c: out, ldc: columns)
                }
                let yout = y + n * outImage
                for o in 0 ..< cout {
                    for oy in 0 ..< oh {
                        let dst = yout + (o * oh + oy) * ow, src = out + o * columns + oy * pw
                        if accumulate { for ox in 0 ..< ow { dst[ox] += src[ox] } } else { copyRow(dst, src, ow) }
                    }
                }
            }
        }
    }

    /// dx += convᵀ(dy, w): the input gradient (a transposed convolution).
    /// Shapes: dy `[N, Cout, Ho, Wo]`, w `[Cout, Cin/groups, k, k]`, dx `[N, Cin, H, W]`.
    @_specialize(where S == Float)
    @_specialize(where S == Double)
    public static func backwardInput<S: NNScalar>(_ g: ConvGeometry, dy: UnsafePointer<S>, weight: UnsafePointer<S>,
                                                  dx: UnsafeMutablePointer<S>) {
        backwardInput(g, dy: dy, weight: weight, dx: dx, accumulate: true)
    }

    /// dx += convᵀ(dy, w) when `accumulate`, else dx = convᵀ(dy, w) (dx need not be initialised).
    @_specialize(where S == Float)
    @_specialize(where S == Double)
    static func backwardInput<S: NNScalar>(_ g: ConvGeometry, dy: UnsafePointer<S>, weight: UnsafePointer<S>,
                                           dx: UnsafeMutablePointer<S>, accumulate: Bool) {
        let inImage = g.inChannels * g.inPixels, outImage = g.outChannels * g.outPixels
        if g.isDepthwise {
            if !accumulate { dx.update(repeating: 0, count: g.batch * inImage) }
            depthwiseBackwardInput(g, dy: dy, weight: weight, dx: dx)
            return
        }
        if g.stride == 1 && !g.isPointwise && g.kernel - 1 - g.padding >= 0 {
            // At stride 1 the transposed conv is a conv of dy with the kernel flipped and in/out
            // swapped, padding k−1−p: it runs on the fast im2col+GEMM path instead of col2im.
            let flipped = UnsafeMutablePointer<S>.allocate(capacity: g.outChannels * g.patchSize)
            defer { flipped.deallocate() }
            let k = g.kernel, kk = k * k
            for grp in 0 ..< g.groups {
                for o in 0 ..< g.outPerGroup {
                    for i in 0 ..< g.inPerGroup {
                        let src = weight + ((grp * g.outPerGroup + o) * g.inPerGroup + i) * kk
                        let dst = flipped + ((grp * g.inPerGroup + i) * g.outPerGroup + o) * kk
                        for a in 0 ..< kk { dst[a] = src[kk - 1 - a] }
                    }
                }
            }
            let transposed = ConvGeometry(batch: g.batch, inChannels: g.outChannels, height: g.outHeight, width: g.outWidth,
                                          outChannels: g.inChannels, kernel: k, stride: 1, padding: k - 1 - g.padding,
                                          groups: g.groups)
            forward(transposed, x: dy, weight: flipped, y: dx, accumulate: accumulate)
            return
        }
        let cost = g.outChannels * g.patchSize * g.outPixels
        Parallel.forChunks(g.batch, costPerItem: cost) { images in
            let col = g.isPointwise ? nil : UnsafeMutablePointer<S>.allocate(capacity: g.patchSize * g.outPixels)
            defer { col?.deallocate() }
            for n in images {
                if !accumulate && !g.isPointwise { (dx + n * inImage).update(repeating: 0, count: inImage) }
                for grp in 0 ..< g.groups {
                    let xin = dx + n * inImage + grp * g.inPerGroup * g.inPixels
                    let a = weight + grp * g.outPerGroup * g.patchSize
                    let b = dy + n * outImage + grp * g.outPerGroup * g.outPixels
                    if let col {
                        S.gemm(transposeA: true, transposeB: false, m: g.patchSize, n: g.outPixels, k: g.outPerGroup,
                               alpha: 1, a: a, lda: g.patchSize, b: b, ldb: g.outPixels, beta: 0, c: col, ldc: g.outPixels)
                        col2imAdd(col, g, xin)
                    } else {
                        S.gemm(transposeA: true, transposeB: false, m: g.patchSize, n: g.outPixels, k: g.outPerGroup,
                               alpha: 1, a: a, lda: g.patchSize, b: b, ldb: g.outPixels, beta: accumulate ? 1 : 0, c: xin, ldc: g.outPixels)
                    }
                }
            }
        }
    }

    /// dw += Σₙ dyₙ · im2col(xₙ)ᵀ: the weight gradient. Each chunk of images (fixed by the batch
    /// size, `weightGradientChunks`) sums into its own buffer; the buffers are added in chunk
    /// order at the end, so dw does not depend on the thread count (no shared writes in the loop).
    /// Shapes: x `[N, Cin, H, W]`, dy `[N, Cout, Ho, Wo]`, dw `[Cout, Cin/groups, k, k]`.
    @_specialize(where S == Float)
    @_specialize(where S == Double)
    public static func backwardWeight<S: NNScalar>(_ g: ConvGeometry, x: UnsafePointer<S>, dy: UnsafePointer<S>,
                                                   dw: UnsafeMutablePointer<S>) {
        let inImage = g.inChannels * g.inPixels, outImage = g.outChannels * g.outPixels
        if g.isDepthwise {
            depthwiseBackwardWeight(g, x: x, dy: dy, dw: dw)
            return
        }
        if g.stride == 1 && g.groups == 1 && g.kernel > 1 {
            shiftedBackwardWeight(g, x: x, dy: dy, dw: dw)
            return
        }
        let weightCount = g.outChannels * g.patchSize
        let (grain, chunks) = weightGradientChunks(g.batch)
        let partial = UnsafeMutablePointer<S>.allocate(capacity: weightCount * chunks)
        partial.initialize(repeating: 0, count: weightCount * chunks)
        defer { partial.deallocate() }
        Parallel.forChunks(g.batch, grain: grain) { _, images in
            let acc = partial + images.lowerBound / grain * weightCount
            let scratch = Scratch<S>(g)
            defer { scratch.release() }
            for n in images {
                for grp in 0 ..< g.groups {
                    let b = scratch.columns(x + n * inImage + grp * g.inPerGroup * g.inPixels, g)
                    S.gemm(transposeA: false, transposeB: true, m: g.outPerGroup, n: g.patchSize, k: g.outPixels,
                           alpha: 1, a: dy + n * outImage + grp * g.outPerGroup * g.outPixels, lda: g.outPixels,
                           b: b, ldb: g.outPixels, beta: 1,
                           c: acc + grp * g.outPerGroup * g.patchSize, ldc: g.patchSize)
                }
            }
        }
        for c in 0 ..< chunks {
            let acc = partial + c * weightCount
            for i in 0 ..< weightCount { dw[i] += acc[i] }
        }
    }

    /// Images per weight-gradient chunk and the number of chunks: at most 8 chunks, a function
    /// of the batch size only, so the order of the floating-point sums is fixed by the problem.
    static func weightGradientChunks(_ batch: Int) -> (grain: Int, chunks: Int) {
        let grain = max(1, (batch + 7) / 8)
        return (grain, max(1, (batch + grain - 1) / grain))
    }

    /// Stride-1 weight gradient without im2col (dw += Σₙ …), the adjoint of `shiftedForward`:
    /// with dy laid out on the padded grid, dy′ `[Cout, oh·pw]` (junk columns zero), each tap is
    ///
    ///     dW_tap `[Cout, Cin]` += dy′ · P[:, ki·pw + kj …]ᵀ
    ///
    /// Each chunk of images sums into its own `[k², Cout, Cin]` buffer; the buffers are added into
    /// dw in chunk order at the end (the same sum for any thread count).
    /// - Complexity: O(N · Cout · Cin · k² · oh · pw) multiply-adds.
    @_specialize(where S == Float)
    @_specialize(where S == Double)
    static func shiftedBackwardWeight<S: NNScalar>(_ g: ConvGeometry, x: UnsafePointer<S>, dy: UnsafePointer<S>,
                                                   dw: UnsafeMutablePointer<S>) {
        let k = g.kernel, kk = k * k, p = g.padding
        let (cin, cout, oh, ow) = (g.inChannels, g.outChannels, g.outHeight, g.outWidth)
        let ph = g.height + 2 * p, pw = g.width + 2 * p
        let planeStride = ph * pw + k - 1
        let columns = oh * pw
        let weightCount = cout * cin * kk
        let inImage = cin * g.inPixels, outImage = cout * g.outPixels
        let (grain, chunks) = weightGradientChunks(g.batch)
        let partial = UnsafeMutablePointer<S>.allocate(capacity: weightCount * chunks)
        partial.initialize(repeating: 0, count: weightCount * chunks)
        defer { partial.deallocate() }
        Parallel.forChunks(g.batch, grain: grain) { _, images in
            let padded = UnsafeMutablePointer<S>.allocate(capacity: cin * planeStride)
            padded.initialize(repeating: 0, count: cin * planeStride)
            let grid = UnsafeMutablePointer<S>.allocate(capacity: cout * columns)
            grid.initialize(repeating: 0, count: cout * columns)
            defer { padded.deallocate(); grid.deallocate() }
            let acc = partial + images.lowerBound / grain * weightCount
            for n in images {
                let xin = x + n * inImage, gin = dy + n * outImage
                for ch in 0 ..< cin {
                    for iy in 0 ..< g.height {
                        copyRow(padded + ch * planeStride + (iy + p) * pw + p, xin + (ch * g.height + iy) * g.width, g.width)
                    }
                }
                for o in 0 ..< cout {
                    for oy in 0 ..< oh { copyRow(grid + o * columns + oy * pw, gin + (o * oh + oy) * ow, ow) }
                }
                for t in 0 ..< kk {
                    S.gemm(transposeA: false, transposeB: true, m: cout, n: cin, k: columns, alpha: 1,
                           a: grid, lda: columns, b: padded + (t / k) * pw + t % k, ldb: planeStride,
                           beta: 1, c: acc + t * cout * cin, ldc: cin)
                }
            }
        }
        for c in 0 ..< chunks {
            let acc = partial + c * weightCount
            for o in 0 ..< cout {
                for ch in 0 ..< cin {
                    let d = dw + (o * cin + ch) * kk
                    for t in 0 ..< kk { d[t] += acc[(t * cout + o) * cin + ch] }
                }
            }
        }
    }

    // MARK: Depthwise (one input and one output channel per group)

    /// Calls `body(plane)` for every (image, channel) plane, split over cores.
    private static func forPlanes(_ g: ConvGeometry, _ body: (Int) -> Void) {
        let planes = g.batch * g.outChannels
        Parallel.forChunks(planes, costPerItem: g.kernel * g.kernel * g.outPixels) { range in
            for plane in range { body(plane) }
        }
    }

    @_specialize(where S == Float)
    @_specialize(where S == Double)
    static func depthwiseForward<S: NNScalar>(_ g: ConvGeometry, x: UnsafePointer<S>, weight: UnsafePointer<S>,
                                              y: UnsafeMutablePointer<S>, accumulate: Bool = false) {
        let (h, w, k, s, p, oh, ow) = (g.height, g.width, g.kernel, g.stride, g.padding, g.outHeight, g.outWidth)
        forPlanes(g) { plane in
            let c = plane % g.outChannels
            let src = x + plane * h * w, dst = y + plane * oh * ow, ker = weight + c * k * k
            if !accumulate { dst.update(repeating: 0, count: oh * ow) }
            for ki in 0 ..< k {
                for kj in 0 ..< k {
                    let wv = ker[ki * k + kj]
                    let (oxLo, oxHi) = g.validColumns(kj)
                    for oy in 0 ..< oh {
                        let iy = oy * s - p + ki
                        if iy < 0 || iy >= h { continue }
                        let srow = src + iy * w, drow = dst + oy * ow
                        var ix = oxLo * s - p + kj
                        for ox in oxLo ..< oxHi { drow[ox] += wv * srow[ix]; ix += s }
                    }
                }
            }
        }
    }

    @_specialize(where S == Float)
    @_specialize(where S == Double)
    static func depthwiseBackwardInput<S: NNScalar>(_ g: ConvGeometry, dy: UnsafePointer<S>, weight: UnsafePointer<S>,
                                                    dx: UnsafeMutablePointer<S>) {
        let (h, w, k, s, p, oh, ow) = (g.height, g.width, g.kernel, g.stride, g.padding, g.outHeight, g.outWidth)
        forPlanes(g) { plane in
            let c = plane % g.outChannels
            let gout = dy + plane * oh * ow, gin = dx + plane * h * w, ker = weight + c * k * k
            for ki in 0 ..< k {
                for kj in 0 ..< k {
                    let wv = ker[ki * k + kj]
                    let (oxLo, oxHi) = g.validColumns(kj)
                    for oy in 0 ..< oh {
                        let iy = oy * s - p + ki
                        if iy < 0 || iy >= h { continue }
                        let grow = gout + oy * ow, irow = gin + iy * w
                        var ix = oxLo * s - p + kj
                        for ox in oxLo ..< oxHi { irow[ix] += wv * grow[ox]; ix += s }
                    }
                }
            }
        }
    }

    @_specialize(where S == Float)
    @_specialize(where S == Double)
    static func depthwiseBackwardWeight<S: NNScalar>(_ g: ConvGeometry, x: UnsafePointer<S>, dy: UnsafePointer<S>,
                                                     dw: UnsafeMutablePointer<S>) {
        let (h, w, k, s, p, oh, ow) = (g.height, g.width, g.kernel, g.stride, g.padding, g.outHeight, g.outWidth)
        // Split over channels: each channel's k² weights are written by one worker only.
        Parallel.forChunks(g.outChannels, costPerItem: g.batch * k * k * oh * ow) { channels in
            for c in channels {
                for ki in 0 ..< k {
                    for kj in 0 ..< k {
                        let (oxLo, oxHi) = g.validColumns(kj)
                        var sum: S = 0
                        for n in 0 ..< g.batch {
                            let plane = n * g.outChannels + c
                            let src = x + plane * h * w, gout = dy + plane * oh * ow
                            for oy in 0 ..< oh {
                                let iy = oy * s - p + ki
                                if iy < 0 || iy >= h { continue }
                                let srow = src + iy * w, grow = gout + oy * ow
                                var ix = oxLo * s - p + kj
                                for ox in oxLo ..< oxHi { sum += grow[ox] * srow[ix]; ix += s }
                            }
                        }
                        dw[c * k * k + ki * k + kj] += sum
                    }
                }
            }
        }
    }
}
