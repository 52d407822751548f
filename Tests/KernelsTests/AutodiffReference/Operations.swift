import Foundation
@testable import Kernels

/// The differentiable operations. Each one computes its value with a kernel on plain buffers
/// and records a backward rule written with these same operations, so the set is closed under
/// differentiation:
/// - conv2d, conv2dBackwardInput and conv2dBackwardWeight are three bilinear maps whose
///   backward rules are expressed with each other; matmul is closed under itself;
/// - max pool = gather at the forward's argmax indices, whose adjoint is scatterAdd (and back);
/// - average pool and its backward are each other's adjoints;
/// - ReLU's backward multiplies by the constant 0/1 pattern of its input (`maskPositive`);
/// - batch norm runs fused; its backward is a fused kernel for first order and, when a graph is
///   created, the same formula built from channel reductions and broadcasts.
extension Autodiff {
    // MARK: Buffers (`buffer`, `base`, `elementwise` are the library's, in NN/Buffers.swift)

    @inline(__always)
    static func read<S: NNScalar, R>(_ v: Variable<S>, _ body: (UnsafePointer<S>) -> R) -> R {
        v.values.withUnsafeBufferPointer { buf in
            body(base(buf))
        }
    }

    static func sameShape<S>(_ op: String, _ a: Variable<S>, _ b: Variable<S>) throws {
        guard a.shape == b.shape else {
            throw NNError.shapeMismatch(operation: op, detail: "\(Tensor.describe(a.shape)) and \(Tensor.describe(b.shape))")
        }
    }

    // MARK: Elementwise

    /// Inlined into each caller so that `f` is a known operation in the loop (it vectorises)
    /// instead of a closure call per element.
    @inline(__always)
    static func map2<S: NNScalar>(_ a: Variable<S>, _ b: Variable<S>, _ f: (S, S) -> S) -> [S] {
        read(a) { pa in read(b) { pb in buffer(a.count) { out in elementwise(a.count) { for i in $0 { out[i] = f(pa[i], pb[i]) } } } } }
    }

    @_specialize(where S == Float)
    @_specialize(where S == Double)
    static func add<S: NNScalar>(_ a: Variable<S>, _ b: Variable<S>) throws -> Variable<S> {
        try sameShape("add", a, b)
        return .result("add", shape: a.shape, values: map2(a, b, +), inputs: [a, b]) { g, _, needs, _ in
            [needs[0] ? g : nil, needs[1] ? g : nil]
        }
    }

    @_specialize(where S == Float)
    @_specialize(where S == Double)
    static func subtract<S: NNScalar>(_ a: Variable<S>, _ b: Variable<S>) throws -> Variable<S> {
        try sameShape("subtract", a, b)
        return .result("subtract", shape: a.shape, values: map2(a, b, -), inputs: [a, b]) { g, _, needs, _ in
            [needs[0] ? g : nil, needs[1] ? try scale(g, by: -1) : nil]
        }
    }

    /// Elementwise product.
    @_specialize(where S == Float)
    @_specialize(where S == Double)
    static func multiply<S: NNScalar>(_ a: Variable<S>, _ b: Variable<S>) throws -> Variable<S> {
        try sameShape("multiply", a, b)
        return .result("multiply", shape: a.shape, values: map2(a, b, *), inputs: [a, b]) { g, inputs, needs, _ in
            [needs[0] ? try multiply(g, inputs[1]) : nil, needs[1] ? try multiply(g, inputs[0]) : nil]
        }
    }

    /// c·a for a constant c.
    @_specialize(where S == Float)
    @_specialize(where S == Double)
    static func scale<S: NNScalar>(_ a: Variable<S>, by c: S) throws -> Variable<S> {
        let values: [S] = read(a) { pa in buffer(a.count) { out in elementwise(a.count) { for i in $0 { out[i] = c * pa[i] } } } }
        return .result("scale", shape: a.shape, values: values, inputs: [a]) { g, _, _, _ in [try scale(g, by: c)] }
    }

    /// Σ a, shape `[]`.
    @_specialize(where S == Float)
    @_specialize(where S == Double)
    static func sum<S: NNScalar>(_ a: Variable<S>) throws -> Variable<S> {
        let total: Double = read(a) { pa in var s = 0.0; for i in 0 ..< a.count { s += pa[i].doubleValue }; return s }
        return .result("sum", shape: [], values: [S(total)], inputs: [a]) { g, _, _, _ in [try broadcast(g, to: a.shape)] }
    }

    /// A one-element Variable repeated to `shape`.
    @_specialize(where S == Float)
    @_specialize(where S == Double)
    static func broadcast<S: NNScalar>(_ s: Variable<S>, to shape: [Int]) throws -> Variable<S> {
        guard s.count == 1 else {
            throw NNError.shapeMismatch(operation: "broadcast", detail: "needs one value, got \(Tensor.describe(s.shape))")
        }
        let values = [S](repeating: s.values[0], count: shape.reduce(1, *))
        return .result("broadcast", shape: shape, values: values, inputs: [s]) { g, _, _, _ in
            [try reshape(try sum(g), to: s.shape)]
        }
    }

    /// ⟨a, b⟩ = Σ a⊙b, shape `[]`.
    @_specialize(where S == Float)
    @_specialize(where S == Double)
    static func dot<S: NNScalar>(_ a: Variable<S>, _ b: Variable<S>) throws -> Variable<S> {
        try sum(try multiply(a, b))
    }

    @_specialize(where S == Float)
    @_specialize(where S == Double)
    static func reshape<S: NNScalar>(_ a: Variable<S>, to shape: [Int]) throws -> Variable<S> {
        guard shape.allSatisfy({ $0 >= 0 }), shape.reduce(1, *) == a.count else {
            throw NNError.shapeMismatch(operation: "reshape", detail: "\(Tensor.describe(a.shape)) to \(Tensor.describe(shape))")
        }
        if shape == a.shape { return a }
        return .result("reshape", shape: shape, values: a.values, inputs: [a]) { g, _, _, _ in [try reshape(g, to: a.shape)] }
    }

    /// max(x, 0).
    @_specialize(where S == Float)
    @_specialize(where S == Double)
    static func relu<S: NNScalar>(_ x: Variable<S>) throws -> Variable<S> {
        let values: [S] = read(x) { px in buffer(x.count) { out in elementwise(x.count) { for i in $0 { out[i] = max(px[i], 0) } } } }
        return .result("relu", shape: x.shape, values: values, inputs: [x]) { g, inputs, _, _ in
            [try maskPositive(g, where: inputs[0].values)]
        }
    }

    /// g ⊙ [reference > 0] for a constant `reference` (ReLU's backward; its own adjoint).
    @_specialize(where S == Float)
    @_specialize(where S == Double)
    static func maskPositive<S: NNScalar>(_ g: Variable<S>, where reference: [S]) throws -> Variable<S> {
        guard reference.count == g.count else {
            throw NNError.shapeMismatch(operation: "relu backward", detail: "\(g.count) gradients for \(reference.count) inputs")
        }
        let values: [S] = read(g) { pg in
            reference.withUnsafeBufferPointer { r in buffer(g.count) { out in elementwise(g.count) { for i in $0 { let v = pg[i]; out[i] = r[i] > 0 ? v : 0 } } } }  // load first: the select vectorises
        }
        return .result("relu backward", shape: g.shape, values: values, inputs: [g]) { gg, _, _, _ in
            [try maskPositive(gg, where: reference)]
        }
    }

    /// 1/√(a + ε).
    @_specialize(where S == Float)
    @_specialize(where S == Double)
    static func reciprocalSquareRoot<S: NNScalar>(_ a: Variable<S>, epsilon: S) throws -> Variable<S> {
        let values: [S] = read(a) { pa in buffer(a.count) { out in for i in 0 ..< a.count { out[i] = 1 / (pa[i] + epsilon).squareRoot() } } }
        return .result("rsqrt", shape: a.shape, values: values, inputs: [a]) { g, inputs, _, _ in
            // d/da (a+ε)^(-1/2) = −½·y³, with y recomputed from the (possibly recorded) input.
            let y = try reciprocalSquareRoot(inputs[0], epsilon: epsilon)
            return [try multiply(g, try scale(try multiply(try multiply(y, y), y), by: -0.5))]
        }
    }

    // MARK: Per-channel reductions and broadcasts

    /// (outer, channels, inner) of `shape` around `axis`.
    static func layout(_ shape: [Int], axis: Int) -> (Int, Int, Int) {
        (shape[..<axis].reduce(1, *), shape[axis], shape[(axis + 1)...].reduce(1, *))
    }

    static func checkAxis(_ op: String, _ shape: [Int], _ axis: Int) throws {
        guard axis >= 0, axis < shape.count else {
            throw NNError.invalidArgument(operation: op, detail: "axis \(axis) out of range for \(Tensor.describe(shape))")
        }
    }

    /// Sums over every axis but `axis`: `[…, C, …]` → `[C]` (Double accumulation).
    @_specialize(where S == Float)
    @_specialize(where S == Double)
    static func sumChannels<S: NNScalar>(_ a: Variable<S>, axis: Int = 1) throws -> Variable<S> {
        try checkAxis("sumChannels", a.shape, axis)
        let (outer, channels, inner) = layout(a.shape, axis: axis)
        let values: [S] = read(a) { pa in
            buffer(channels) { out in
                for c in 0 ..< channels {
                    var s = 0.0
                    for n in 0 ..< outer { let p = pa + (n * channels + c) * inner; for i in 0 ..< inner { s += p[i].doubleValue } }
                    out[c] = S(s)
                }
            }
        }
        return .result("sumChannels", shape: [channels], values: values, inputs: [a]) { g, _, _, _ in
            [try expandChannels(g, to: a.shape, axis: axis)]
        }
    }

    /// Repeats `[C]` along every axis but `axis` of `shape`.
    @_specialize(where S == Float)
    @_specialize(where S == Double)
    static func expandChannels<S: NNScalar>(_ v: Variable<S>, to shape: [Int], axis: Int = 1) throws -> Variable<S> {
        try checkAxis("expandChannels", shape, axis)
        let (outer, channels, inner) = layout(shape, axis: axis)
        guard v.shape == [channels] else {
            throw NNError.shapeMismatch(operation: "expandChannels", detail: "\(Tensor.describe(v.shape)) along axis \(axis) of \(Tensor.describe(shape))")
        }
        let values: [S] = read(v) { pv in
            buffer(outer * channels * inner) { out in
                for n in 0 ..< outer { for c in 0 ..< channels { (out + (n * channels + c) * inner).initialize(repeating: pv[c], count: inner) } }
            }
        }
        return .result("expandChannels", shape: shape, values: values, inputs: [v]) { g, _, _, _ in
            [try sumChannels(g, axis: axis)]
        }
    }

    /// x·scale[c] + shift[c] along `axis` (eval-mode batch norm, biases). `shift` may be nil.
    @_specialize(where S == Float)
    @_specialize(where S == Double)
    static func channelAffine<S: NNScalar>(_ x: Variable<S>, scale: Variable<S>, shift: Variable<S>?,
                                                  axis: Int = 1) throws -> Variable<S> {
        try checkAxis("channelAffine", x.shape, axis)
        let (outer, channels, inner) = layout(x.shape, axis: axis)
        guard scale.shape == [channels], shift.map({ $0.shape == [channels] }) ?? true else {
            throw NNError.shapeMismatch(operation: "channelAffine", detail: "scale/shift \(Tensor.describe(scale.shape)) for \(channels) channels")
        }
        let zero = [S](repeating: 0, count: channels)
        let values: [S] = read(x) { px in
            read(scale) { ps in
                (shift?.values ?? zero).withUnsafeBufferPointer { pb in
                    buffer(x.count) { out in
                        Parallel.forChunks(outer, costPerItem: channels * inner) { rows in
                            for n in rows {
                                for c in 0 ..< channels {
                                    let o = (n * channels + c) * inner, a = ps[c], b = pb[c]
                                    for i in 0 ..< inner { out[o + i] = px[o + i] * a + b }
                                }
                            }
                        }
                    }
                }
            }
        }
        let inputs = shift.map { [x, scale, $0] } ?? [x, scale]
        return .result("channelAffine", shape: x.shape, values: values, inputs: inputs) { g, inputs, needs, _ in
            [needs[0] ? try channelAffine(g, scale: inputs[1], shift: nil, axis: axis) : nil,
             needs[1] ? try sumChannels(try multiply(g, inputs[0]), axis: axis) : nil]
                + (inputs.count > 2 ? [needs[2] ? try sumChannels(g, axis: axis) : nil] : [])
        }
    }

    // MARK: Linear algebra

    /// op(a)·op(b) for 2-D a, b (op = transpose when asked).
    @_specialize(where S == Float)
    @_specialize(where S == Double)
    static func matmul<S: NNScalar>(_ a: Variable<S>, _ b: Variable<S>, transposeA: Bool = false,
                                           transposeB: Bool = false) throws -> Variable<S> {
        guard a.shape.count == 2, b.shape.count == 2 else {
            throw NNError.shapeMismatch(operation: "matmul", detail: "needs matrices, got \(Tensor.describe(a.shape)) and \(Tensor.describe(b.shape))")
        }
        let (m, k) = transposeA ? (a.shape[1], a.shape[0]) : (a.shape[0], a.shape[1])
        let (k2, n) = transposeB ? (b.shape[1], b.shape[0]) : (b.shape[0], b.shape[1])
        guard k == k2 else {
            throw NNError.shapeMismatch(operation: "matmul", detail: "inner sizes \(k) and \(k2)")
        }
        let values: [S] = read(a) { pa in
            read(b) { pb in
                buffer(m * n, zeroed: k == 0) { out in
                    if k > 0 {
                        S.gemm(transposeA: transposeA, transposeB: transposeB, m: m, n: n, k: k, alpha: 1,
                               a: pa, lda: a.shape[1], b: pb, ldb: b.shape[1], beta: 0, c: out, ldc: n)
                    }
                }
            }
        }
        return .result("matmul", shape: [m, n], values: values, inputs: [a, b]) { g, inputs, needs, _ in
            let (a, b) = (inputs[0], inputs[1])
            let ga = !needs[0] ? nil : transposeA
                ? try matmul(b, g, transposeA: transposeB, transposeB: true)
                : try matmul(g, b, transposeA: false, transposeB: !transposeB)
            let gb = !needs[1] ? nil : transposeB
                ? try matmul(g, a, transposeA: true, transposeB: transposeA)
                : try matmul(a, g, transposeA: !transposeA, transposeB: false)
            return [ga, gb]
        }
    }

    // MARK: Convolution

    /// 2-D convolution, PyTorch semantics. x `[N, Cin, H, W]`, w `[Cout, Cin/groups, k, k]`.
    @_specialize(where S == Float)
    @_specialize(where S == Double)
    static func conv2d<S: NNScalar>(_ x: Variable<S>, _ w: Variable<S>, stride: Int = 1, padding: Int = 0,
                                           groups: Int = 1) throws -> Variable<S> {
        guard x.shape.count == 4, w.shape.count == 4, w.shape[2] == w.shape[3] else {
            throw NNError.shapeMismatch(operation: "conv2d", detail: "input \(Tensor.describe(x.shape)), weight \(Tensor.describe(w.shape)) (need NCHW and a square kernel)")
        }
        let g = ConvGeometry(batch: x.shape[0], inChannels: x.shape[1], height: x.shape[2], width: x.shape[3],
                             outChannels: w.shape[0], kernel: w.shape[2], stride: stride, padding: padding, groups: groups)
        if let problem = g.problem { throw NNError.invalidArgument(operation: "conv2d", detail: problem) }
        guard w.shape == g.weightShape else {
            throw NNError.shapeMismatch(operation: "conv2d", detail: "weight \(Tensor.describe(w.shape)) for \(g.inChannels) input channels in \(groups) groups")
        }
        return convolve(x, w, g)
    }

    @_specialize(where S == Float)
    @_specialize(where S == Double)
    static func convolve<S: NNScalar>(_ x: Variable<S>, _ w: Variable<S>, _ g: ConvGeometry) -> Variable<S> {
        let values: [S] = read(x) { px in read(w) { pw in buffer(g.outputShape.reduce(1, *)) { Conv2D.forward(g, x: px, weight: pw, y: $0) } } }
        return .result("conv2d", shape: g.outputShape, values: values, inputs: [x, w]) { gy, inputs, needs, _ in
            [needs[0] ? try conv2dBackwardInput(gy, inputs[1], g) : nil,
             needs[1] ? try conv2dBackwardWeight(inputs[0], gy, g) : nil]
        }
    }

    /// convᵀ(dy, w): the input gradient of `conv2d`, shape `g.inputShape`.
    @_specialize(where S == Float)
    @_specialize(where S == Double)
    static func conv2dBackwardInput<S: NNScalar>(_ dy: Variable<S>, _ w: Variable<S>, _ g: ConvGeometry) throws -> Variable<S> {
        guard dy.shape == g.outputShape, w.shape == g.weightShape else {
            throw NNError.shapeMismatch(operation: "conv2d backward", detail: "gradient \(Tensor.describe(dy.shape)), weight \(Tensor.describe(w.shape))")
        }
        let values: [S] = read(dy) { pg in
            read(w) { pw in buffer(g.inputShape.reduce(1, *)) { Conv2D.backwardInput(g, dy: pg, weight: pw, dx: $0, accumulate: false) } }
        }
        return .result("conv2d backward input", shape: g.inputShape, values: values, inputs: [dy, w]) { gx, inputs, needs, _ in
            // ⟨gx, convᵀ(dy, w)⟩ = ⟨conv(gx, w), dy⟩: bilinear in (gx, w) and (gx, dy).
            [needs[0] ? convolve(gx, inputs[1], g) : nil,
             needs[1] ? try conv2dBackwardWeight(gx, inputs[0], g) : nil]
        }
    }

    /// The weight gradient of `conv2d`: Σₙ dyₙ·im2col(xₙ)ᵀ, shape `g.weightShape`.
    @_specialize(where S == Float)
    @_specialize(where S == Double)
    static func conv2dBackwardWeight<S: NNScalar>(_ x: Variable<S>, _ dy: Variable<S>, _ g: ConvGeometry) throws -> Variable<S> {
        guard x.shape == g.inputShape, dy.shape == g.outputShape else {
            throw NNError.shapeMismatch(operation: "conv2d weight gradient", detail: "input \(Tensor.describe(x.shape)), gradient \(Tensor.describe(dy.shape))")
        }
        let values: [S] = read(x) { px in
            read(dy) { pg in buffer(g.weightShape.reduce(1, *), zeroed: true) { Conv2D.backwardWeight(g, x: px, dy: pg, dw: $0) } }
        }
        return .result("conv2d backward weight", shape: g.weightShape, values: values, inputs: [x, dy]) { gw, inputs, needs, _ in
            // ⟨gw, dW(x, dy)⟩ = ⟨conv(x, gw), dy⟩.
            [needs[0] ? try conv2dBackwardInput(inputs[1], gw, g) : nil,
             needs[1] ? convolve(inputs[0], gw, g) : nil]
        }
    }

    // MARK: Pooling

    static func checkPool<S>(_ op: String, _ x: Variable<S>, _ pool: PoolGeometry) throws {
        guard x.shape.count == 4, pool.isValid, x.shape[2] + 2 * pool.padding >= pool.kernel, x.shape[3] + 2 * pool.padding >= pool.kernel else {
            throw NNError.shapeMismatch(operation: op, detail: "window \(pool.kernel) on \(Tensor.describe(x.shape)) (needs NCHW at least as large)")
        }
    }

    /// Max pool, window = stride = `kernel`.
    static func maxPool2d<S: NNScalar>(_ x: Variable<S>, kernel: Int) throws -> Variable<S> {
        try maxPool2d(x, pool: PoolGeometry(kernel: kernel))
    }

    /// Max pool with any window, stride and padding.
    @_specialize(where S == Float)
    @_specialize(where S == Double)
    static func maxPool2d<S: NNScalar>(_ x: Variable<S>, pool: PoolGeometry) throws -> Variable<S> {
        try checkPool("maxPool2d", x, pool)
        let (n, c, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        let outShape = [n, c, pool.outputSize(h), pool.outputSize(w)]
        let count = outShape.reduce(1, *)
        var index = [Int32](repeating: 0, count: count)
        let values: [S] = read(x) { px in
            index.withUnsafeMutableBufferPointer { pi in
                buffer(count) { out in
                    if let base = pi.baseAddress {
                        Pooling.maxForward(x: px, planes: n * c, height: h, width: w, pool: pool, y: out, argmax: base)
                    }
                }
            }
        }
        let frozen = index
        return .result("maxPool2d", shape: outShape, values: values, inputs: [x]) { g, _, _, _ in
            [try scatterAdd(g, index: frozen, shape: x.shape)]
        }
    }

    /// out[index[i]] += g[i] into zeros of `shape` (max pool backward).
    @_specialize(where S == Float)
    @_specialize(where S == Double)
    static func scatterAdd<S: NNScalar>(_ g: Variable<S>, index: [Int32], shape: [Int]) throws -> Variable<S> {
        let count = shape.reduce(1, *)
        guard index.count == g.count, index.allSatisfy({ $0 >= 0 && Int($0) < count }) else {
            throw NNError.shapeMismatch(operation: "scatterAdd", detail: "\(index.count) indices for \(g.count) values into \(count)")
        }
        let values: [S] = read(g) { pg in
            index.withUnsafeBufferPointer { pi in buffer(count, zeroed: true) { Pooling.scatterAdd(dy: pg, index: base(pi), count: g.count, dx: $0) } }
        }
        return .result("scatterAdd", shape: shape, values: values, inputs: [g]) { gg, _, _, _ in
            [try gather(gg, index: index, shape: g.shape)]
        }
    }

    /// out[i] = x[index[i]], shaped `shape` (max pool with fixed indices).
    @_specialize(where S == Float)
    @_specialize(where S == Double)
    static func gather<S: NNScalar>(_ x: Variable<S>, index: [Int32], shape: [Int]) throws -> Variable<S> {
        guard index.count == shape.reduce(1, *), index.allSatisfy({ $0 >= 0 && Int($0) < x.count }) else {
            throw NNError.shapeMismatch(operation: "gather", detail: "\(index.count) indices into \(x.count) values")
        }
        let values: [S] = read(x) { px in
            index.withUnsafeBufferPointer { pi in buffer(index.count) { Pooling.gather(x: px, index: base(pi), count: index.count, y: $0) } }
        }
        return .result("gather", shape: shape, values: values, inputs: [x]) { g, _, _, _ in
            [try scatterAdd(g, index: index, shape: x.shape)]
        }
    }

    /// Average pool, window = stride = `kernel`.
    static func avgPool2d<S: NNScalar>(_ x: Variable<S>, kernel: Int) throws -> Variable<S> {
        try avgPool2d(x, pool: PoolGeometry(kernel: kernel))
    }

    /// Average pool with any window, stride and padding (padding counted in the divisor).
    @_specialize(where S == Float)
    @_specialize(where S == Double)
    static func avgPool2d<S: NNScalar>(_ x: Variable<S>, pool: PoolGeometry) throws -> Variable<S> {
        try checkPool("avgPool2d", x, pool)
        let (n, c, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        let outShape = [n, c, pool.outputSize(h), pool.outputSize(w)]
        let values: [S] = read(x) { px in
            buffer(outShape.reduce(1, *)) { Pooling.averageForward(x: px, planes: n * c, height: h, width: w, pool: pool, y: $0) }
        }
        return .result("avgPool2d", shape: outShape, values: values, inputs: [x]) { g, _, _, _ in
            [try avgPool2dBackward(g, pool: pool, inputShape: x.shape)]
        }
    }

    /// The adjoint of `avgPool2d`: each gradient spread as g/k² over its window.
    @_specialize(where S == Float)
    @_specialize(where S == Double)
    static func avgPool2dBackward<S: NNScalar>(_ g: Variable<S>, pool: PoolGeometry, inputShape: [Int]) throws -> Variable<S> {
        let (n, c, h, w) = (inputShape[0], inputShape[1], inputShape[2], inputShape[3])
        guard g.shape == [n, c, pool.outputSize(h), pool.outputSize(w)] else {
            throw NNError.shapeMismatch(operation: "avgPool2d backward", detail: "\(Tensor.describe(g.shape)) for input \(Tensor.describe(inputShape))")
        }
        let values: [S] = read(g) { pg in
            buffer(inputShape.reduce(1, *), zeroed: true) { Pooling.averageBackward(dy: pg, planes: n * c, height: h, width: w, pool: pool, dx: $0) }
        }
        return .result("avgPool2d backward", shape: inputShape, values: values, inputs: [g]) { gg, _, _, _ in
            [try avgPool2d(gg, pool: pool)]
        }
    }

    // MARK: Batch norm

    /// Training-mode batch norm over `axis` 1 of x (`[N, C, H, W]` or `[N, C]`) with the batch's
    /// statistics. Returns the output and the batch mean and 1/√(biased var + ε), which the
    /// caller folds into running statistics (`BatchNorm.updateRunningStatistics`).
    @_specialize(where S == Float)
    @_specialize(where S == Double)
    static func batchNorm<S: NNScalar>(_ x: Variable<S>, gamma: Variable<S>, beta: Variable<S>)
        throws -> (output: Variable<S>, mean: [S], invStd: [S]) {
        guard x.shape.count >= 2, gamma.shape == [x.shape[1]], beta.shape == [x.shape[1]] else {
            throw NNError.shapeMismatch(operation: "batchNorm", detail: "input \(Tensor.describe(x.shape)), weight \(Tensor.describe(gamma.shape)), bias \(Tensor.describe(beta.shape))")
        }
        let (outer, channels, inner) = layout(x.shape, axis: 1)
        guard outer * inner > 1 else {
            throw NNError.invalidArgument(operation: "batchNorm", detail: "training mode needs more than one value per channel, got \(Tensor.describe(x.shape))")
        }
        var mean = [S](repeating: 0, count: channels), invStd = [S](repeating: 0, count: channels)
        let values: [S] = read(x) { px in
            read(gamma) { pg in
                read(beta) { pb in
                    mean.withUnsafeMutableBufferPointer { pm in
                        invStd.withUnsafeMutableBufferPointer { pi in
                            buffer(x.count) {
                                BatchNorm.forwardTraining(x: px, y: $0, gamma: pg, beta: pb, outer: outer, channels: channels,
                                                          inner: inner, mean: base(pm), invStd: base(pi))
                            }
                        }
                    }
                }
            }
        }
        let (savedMean, savedInvStd) = (mean, invStd)
        let output = Variable.result("batchNorm", shape: x.shape, values: values, inputs: [x, gamma, beta]) {
            g, inputs, needs, createGraph in
            if createGraph { return try batchNormBackwardComposite(g, inputs[0], inputs[1], needs) }
            // dx is overwritten by the kernel (no zero fill, no read of zeros); the small ones accumulate.
            var dx: [S]? = needs[0] ? [S](unsafeUninitializedCapacity: x.count) { _, n in n = x.count } : nil
            var dGamma: [S]? = needs[1] ? [S](repeating: 0, count: channels) : nil
            var dBeta: [S]? = needs[2] ? [S](repeating: 0, count: channels) : nil
            read(inputs[0]) { px in
                read(g) { pdy in
                    read(inputs[1]) { pg in
                        savedMean.withUnsafeBufferPointer { pm in
                            savedInvStd.withUnsafeBufferPointer { pi in
                                withOptionalPointer(&dx) { pdx in
                                    withOptionalPointer(&dGamma) { pdg in
                                        withOptionalPointer(&dBeta) { pdb in
                                            BatchNorm.backwardTraining(x: px, dy: pdy, gamma: pg, mean: base(pm), invStd: base(pi),
                                                                       outer: outer, channels: channels, inner: inner,
                                                                       dx: pdx, dGamma: pdg, dBeta: pdb, accumulateInput: false)
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            return [dx.map { Variable(uncheckedShape: x.shape, values: $0, node: nil) },
                    dGamma.map { Variable(uncheckedShape: [channels], values: $0, node: nil) },
                    dBeta.map { Variable(uncheckedShape: [channels], values: $0, node: nil) }]
        }
        return (output, mean, invStd)
    }

    /// Batch norm's backward built from recorded operations (so it can be differentiated again):
    /// x̂ = (x − μ)·σ⁻¹, dγ = Σ g·x̂, dβ = Σ g, dx = σ⁻¹·(ĝ − mean(ĝ) − x̂·mean(ĝ·x̂)) with ĝ = γ·g.
    @_specialize(where S == Float)
    @_specialize(where S == Double)
    static func batchNormBackwardComposite<S: NNScalar>(_ g: Variable<S>, _ x: Variable<S>, _ gamma: Variable<S>,
                                                        _ needs: [Bool]) throws -> [Variable<S>?] {
        let (outer, _, inner) = layout(x.shape, axis: 1)
        let m = S(outer * inner)
        let mean = try scale(try sumChannels(x), by: 1 / m)
        let centered = try subtract(x, try expandChannels(mean, to: x.shape))
        let variance = try scale(try sumChannels(try multiply(centered, centered)), by: 1 / m)
        let invStd = try reciprocalSquareRoot(variance, epsilon: S(BatchNorm.epsilon))
        let xhat = try channelAffine(centered, scale: invStd, shift: nil)
        let dBeta = needs[2] ? try sumChannels(g) : nil
        let dGamma = needs[1] ? try sumChannels(try multiply(g, xhat)) : nil
        guard needs[0] else { return [nil, dGamma, dBeta] }
        let ghat = try channelAffine(g, scale: gamma, shift: nil)
        let meanG = try expandChannels(try scale(try sumChannels(ghat), by: 1 / m), to: x.shape)
        let meanGX = try scale(try sumChannels(try multiply(ghat, xhat)), by: 1 / m)
        let inner1 = try subtract(try subtract(ghat, meanG), try channelAffine(xhat, scale: meanGX, shift: nil))
        return [try channelAffine(inner1, scale: invStd, shift: nil), dGamma, dBeta]
    }

    // MARK: Softmax and cross-entropy

    /// Row softmax of `[N, K]`.
    @_specialize(where S == Float)
    @_specialize(where S == Double)
    static func softmax<S: NNScalar>(_ z: Variable<S>) throws -> Variable<S> {
        guard z.shape.count == 2, z.shape[1] > 0 else {
            throw NNError.shapeMismatch(operation: "softmax", detail: "needs [N, K], got \(Tensor.describe(z.shape))")
        }
        let (n, k) = (z.shape[0], z.shape[1])
        let values: [S] = read(z) { pz in
            buffer(n * k) { out in
                for r in 0 ..< n {
                    let row = pz + r * k
                    var top = row[0].doubleValue
                    for j in 1 ..< k { top = max(top, row[j].doubleValue) }
                    var s = 0.0
                    for j in 0 ..< k { s += _exp(row[j].doubleValue - top) }
                    for j in 0 ..< k { out[r * k + j] = S(_exp(row[j].doubleValue - top) / s) }
                }
            }
        }
        return .result("softmax", shape: z.shape, values: values, inputs: [z]) { g, inputs, _, createGraph in
            // dz = y ⊙ (g − rowsum(g ⊙ y)), y recomputed so that it is recorded when needed.
            let y = createGraph ? try softmax(inputs[0]) : Variable(uncheckedShape: z.shape, values: values, node: nil)
            let rows = try sumChannels(try multiply(g, y), axis: 0)
            return [try multiply(y, try subtract(g, try expandChannels(rows, to: z.shape, axis: 0)))]
        }
    }

    /// Mean softmax cross-entropy of logits `[N, K]` against labels in 0..<K, shape `[]`.
    @_specialize(where S == Float)
    @_specialize(where S == Double)
    static func crossEntropy<S: NNScalar>(_ logits: Variable<S>, labels: [Int]) throws -> Variable<S> {
        guard logits.shape.count == 2, logits.shape[1] > 0 else {
            throw NNError.shapeMismatch(operation: "crossEntropy", detail: "logits must be [N, K], got \(Tensor.describe(logits.shape))")
        }
        let (n, k) = (logits.shape[0], logits.shape[1])
        guard labels.count == n else {
            throw NNError.shapeMismatch(operation: "crossEntropy", detail: "\(labels.count) labels for \(n) rows")
        }
        if let bad = labels.first(where: { $0 < 0 || $0 >= k }) {
            throw NNError.invalidArgument(operation: "crossEntropy", detail: "label \(bad) outside 0..<\(k)")
        }
        var probabilities = [S](repeating: 0, count: n * k)
        let loss: Double = read(logits) { pz in
            labels.withUnsafeBufferPointer { pl in
                probabilities.withUnsafeMutableBufferPointer { pp in
                    CrossEntropy.forward(logits: pz, labels: base(pl), batch: n, classes: k, probabilities: pp.baseAddress)
                }
            }
        }
        let frozen = probabilities
        return .result("crossEntropy", shape: [], values: [S(loss)], inputs: [logits]) { g, inputs, _, createGraph in
            if createGraph {
                // (softmax(z) − onehot)·g/N, recorded.
                var onehot = [S](repeating: 0, count: n * k)
                for r in 0 ..< n { onehot[r * k + labels[r]] = 1 }
                let diff = try subtract(try softmax(inputs[0]), Variable(uncheckedShape: [n, k], values: onehot, node: nil))
                return [try multiply(try broadcast(g, to: [n, k]), try scale(diff, by: 1 / S(max(n, 1))))]
            }
            let gz: [S] = frozen.withUnsafeBufferPointer { pp in
                labels.withUnsafeBufferPointer { pl in
                    buffer(n * k, zeroed: true) {
                        CrossEntropy.backward(probabilities: base(pp), labels: base(pl), batch: n, classes: k,
                                              scale: g.values[0], dLogits: $0)
                    }
                }
            }
            return [Variable(uncheckedShape: [n, k], values: gz, node: nil)]
        }
    }
}

@inline(__always) private func _exp(_ x: Double) -> Double { Foundation.exp(x) }
