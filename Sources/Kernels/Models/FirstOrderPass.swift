/// A tape-free forward/backward of an `Architecture` for first-order gradients (llm.c style:
/// one forward kernel and one backward kernel per node, activations kept in plain arrays).
///
/// The autodiff tape (`DifferentiableNetwork` + `Autodiff.grad`) records a node with closures
/// per operation and can differentiate its own backward pass; pruners that need only one
/// gradient (synflow's 100 rounds, SNIP's single batch) pay for that machinery without using
/// it. This pass computes the same values with the same kernels (`Conv2D`, `BatchNorm`,
/// `Pooling`, `CrossEntropy`) and keeps only what the backward reads:
/// - the input of every conv / linear (for the weight gradient) and of every training-mode
///   batch norm (with the batch mean and 1/σ);
/// - the output of every ReLU (its 0/1 pattern; y > 0 ⇔ x > 0) and max-pool indices.
///
/// Weights are taken as given: the caller passes the *effective* weights (w ⊙ m). The gradient
/// returned for a weight is ∂L/∂(w ⊙ m); ∂L/∂w = that ⊙ m and ∂L/∂m = that ⊙ w.
///
/// Batch norm: `.batch` normalises with the batch's mean and biased variance (training mode,
/// running statistics untouched); `.running` uses the running statistics (evaluation mode) as
/// y = x·(γσ⁻¹) + (β − μ·γσ⁻¹), the same arithmetic as `DifferentiableNetwork.forward`.
final class FirstOrderPass<S: NNScalar> {
    enum Normalisation { case batch, running }

    let architecture: Architecture
    let normalisation: Normalisation
    /// Learnable parameters by state-dict name (effective weights), and running statistics.
    private let parameters: [String: [S]]
    private let runningStatistics: [String: [S]]

    /// Per node: its output when a backward rule reads it (nil otherwise or before `forward`).
    private var saved: [[S]?]
    /// Per training-mode batch-norm node: the batch mean and 1/√(var + ε).
    private var statistics: [(mean: [S], invStd: [S])?]
    /// Per max-pool node: the flat input index of each output.
    private var argmax: [[Int32]?]
    private var batch = 0
    /// Which node outputs a backward rule reads (see the type's comment).
    private let keep: [Bool]

    /// - Parameters:
    ///   - parameters: every conv/linear weight (effective, w ⊙ m) and bias and every batch-norm
    ///     weight and bias the architecture declares, by state-dict name.
    ///   - runningStatistics: `running_mean` / `running_var` by name (read in `.running` mode).
    init(_ architecture: Architecture, parameters: [String: [S]], runningStatistics: [String: [S]],
         normalisation: Normalisation) throws {
        for spec in architecture.parameters {
            let present = spec.role == .runningMean || spec.role == .runningVar
                ? runningStatistics[spec.name]?.count : parameters[spec.name]?.count
            guard present == spec.count else { throw ModelError.missingParameter(spec.name, model: architecture.name) }
        }
        self.architecture = architecture
        self.normalisation = normalisation
        self.parameters = parameters
        self.runningStatistics = runningStatistics
        var keep = [Bool](repeating: false, count: architecture.nodes.count)
        for node in architecture.nodes {
            switch node.op {
            case .conv, .linear: keep[node.inputs[0]] = true
            case .batchNorm: if normalisation == .batch { keep[node.inputs[0]] = true }
            case .relu: keep[node.id] = true
            default: break
            }
        }
        self.keep = keep
        saved = Array(repeating: nil, count: architecture.nodes.count)
        statistics = Array(repeating: nil, count: architecture.nodes.count)
        argmax = Array(repeating: nil, count: architecture.nodes.count)
    }

    private func parameter(_ name: String) throws -> [S] {
        guard let p = parameters[name] else { throw ModelError.missingParameter(name, model: architecture.name) }
        return p
    }

    private func geometry(_ c: Convolution, _ node: ArchitectureNode) -> ConvGeometry {
        let s = architecture.nodes[node.inputs[0]].shape
        return ConvGeometry(batch: batch, inChannels: c.inChannels, height: s[1], width: s[2], outChannels: c.outChannels,
                            kernel: c.kernel, stride: c.stride, padding: c.padding, groups: c.groups)
    }

    /// Logits `[N, classes]` of x `[N] + input shape` (row-major), keeping what `backward` reads.
    /// - Complexity: one forward kernel per node; memory O(N · Σ kept activation sizes).
    @_specialize(where S == Float)
    @_specialize(where S == Double)
    func forward(_ x: [S], batch: Int) throws -> [S] {
        let nodes = architecture.nodes
        let inputCount = (nodes.first?.shape ?? []).reduce(1, *)
        guard batch > 0, x.count == batch * inputCount else {
            throw NNError.shapeMismatch(operation: "\(architecture.name) forward", detail: "\(x.count) values for batch \(batch)")
        }
        self.batch = batch
        var lastUse = [Int](repeating: -1, count: nodes.count)
        for node in nodes { for i in node.inputs { lastUse[i] = max(lastUse[i], node.id) } }
        lastUse[architecture.output] = Int.max
        var values = [[S]?](repeating: nil, count: nodes.count)

        for node in nodes {
            let count = batch * node.shape.reduce(1, *)
            let y: [S]
            switch node.op {
            case .input:
                y = x
            case let .conv(c):
                let g = geometry(c, node)
                let w = try parameter(node.name + ".weight")
                let input = try value(values, node.inputs[0])
                var out: [S] = input.withUnsafeBufferPointer { px in
                    w.withUnsafeBufferPointer { pw in
                        Autodiff.buffer(count) { Conv2D.forward(g, x: Autodiff.base(px), weight: Autodiff.base(pw), y: $0) }
                    }
                }
                if c.bias { try addBias(&out, node.name + ".bias", planes: batch, inner: g.outPixels) }
                y = out
            case let .linear(l):
                let w = try parameter(node.name + ".weight")
                let input = try value(values, node.inputs[0])
                var out: [S] = input.withUnsafeBufferPointer { px in
                    w.withUnsafeBufferPointer { pw in
                        Autodiff.buffer(count) {
                            S.gemm(transposeA: false, transposeB: true, m: batch, n: l.outFeatures, k: l.inFeatures, alpha: 1,
                                   a: Autodiff.base(px), lda: l.inFeatures, b: Autodiff.base(pw), ldb: l.inFeatures,
                                   beta: 0, c: $0, ldc: l.outFeatures)
                        }
                    }
                }
                if l.bias { try addBias(&out, node.name + ".bias", planes: batch, inner: 1) }
                y = out
            case let .batchNorm(channels):
                y = try batchNormForward(node, channels: channels, try value(values, node.inputs[0]))
            case .relu:
                let input = try value(values, node.inputs[0])
                y = input.withUnsafeBufferPointer { px in
                    Autodiff.buffer(count) { out in Autodiff.elementwise(count) { for i in $0 { out[i] = max(px[i], 0) } } }
                }
            case let .maxPool(k):
                let input = try value(values, node.inputs[0])
                let s = nodes[node.inputs[0]].shape
                var index = [Int32](repeating: 0, count: count)
                y = input.withUnsafeBufferPointer { px in
                    index.withUnsafeMutableBufferPointer { pi in
                        Autodiff.buffer(count) {
                            Pooling.maxForward(x: Autodiff.base(px), planes: batch * s[0], height: s[1], width: s[2], kernel: k,
                                               y: $0, argmax: Autodiff.base(pi))
                        }
                    }
                }
                argmax[node.id] = index
            case let .avgPool(k):
                let input = try value(values, node.inputs[0])
                let s = nodes[node.inputs[0]].shape
                y = input.withUnsafeBufferPointer { px in
                    Autodiff.buffer(count) {
                        Pooling.averageForward(x: Autodiff.base(px), planes: batch * s[0], height: s[1], width: s[2], kernel: k, y: $0)
                    }
                }
            case .flatten:
                y = try value(values, node.inputs[0])
            case .add:
                let a = try value(values, node.inputs[0]), b = try value(values, node.inputs[1])
                guard a.count == b.count else {
                    throw NNError.shapeMismatch(operation: "\(architecture.name) add", detail: "\(a.count) and \(b.count) values")
                }
                y = a.withUnsafeBufferPointer { pa in
                    b.withUnsafeBufferPointer { pb in
                        Autodiff.buffer(count) { out in Autodiff.elementwise(count) { for i in $0 { out[i] = pa[i] + pb[i] } } }
                    }
                }
            }
            values[node.id] = y
            saved[node.id] = keep[node.id] ? y : nil
            for i in node.inputs where lastUse[i] == node.id { values[i] = nil }
        }
        return try value(values, architecture.output)
    }

    private func value(_ values: [[S]?], _ i: Int) throws -> [S] {
        guard let v = values[i] else {
            throw NNError.invalidArgument(operation: "\(architecture.name) forward", detail: "node \(i) read before it is computed")
        }
        return v
    }

    /// y[n, c, :] += b[c] over `planes` = N rows of `[C, inner]`.
    private func addBias(_ y: inout [S], _ name: String, planes: Int, inner: Int) throws {
        let b = try parameter(name)
        let channels = b.count
        y.withUnsafeMutableBufferPointer { py in
            for n in 0 ..< planes {
                for c in 0 ..< channels {
                    let row = Autodiff.base(py) + (n * channels + c) * inner, v = b[c]
                    for i in 0 ..< inner { row[i] += v }
                }
            }
        }
    }

    /// Batch norm of x `[N, C, …]` in the pass's mode; saves the batch statistics in `.batch` mode.
    private func batchNormForward(_ node: ArchitectureNode, channels: Int, _ x: [S]) throws -> [S] {
        let gamma = try parameter(node.name + ".weight"), beta = try parameter(node.name + ".bias")
        let inner = x.count / (batch * channels)
        switch normalisation {
        case .batch:
            guard batch * inner > 1 else {
                throw NNError.invalidArgument(operation: "batchNorm", detail: "training mode needs more than one value per channel")
            }
            var mean = [S](repeating: 0, count: channels), invStd = [S](repeating: 0, count: channels)
            let y: [S] = x.withUnsafeBufferPointer { px in
                mean.withUnsafeMutableBufferPointer { pm in
                    invStd.withUnsafeMutableBufferPointer { pi in
                        Autodiff.buffer(x.count) {
                            BatchNorm.forwardTraining(x: Autodiff.base(px), y: $0, gamma: gamma, beta: beta, outer: batch,
                                                      channels: channels, inner: inner, mean: Autodiff.base(pm), invStd: Autodiff.base(pi))
                        }
                    }
                }
            }
            statistics[node.id] = (mean, invStd)
            return y
        case .running:
            let (scale, shift) = try runningAffine(node, gamma: gamma, beta: beta)
            return x.withUnsafeBufferPointer { px in
                Autodiff.buffer(x.count) { out in
                    for n in 0 ..< batch {
                        for c in 0 ..< channels {
                            let o = (n * channels + c) * inner, a = scale[c], b = shift[c]
                            for i in 0 ..< inner { out[o + i] = px[o + i] * a + b }
                        }
                    }
                }
            }
        }
    }

    /// Evaluation-mode batch norm as a per-channel affine map: scale = γσ⁻¹, shift = β − μ·scale.
    private func runningAffine(_ node: ArchitectureNode, gamma: [S], beta: [S]) throws -> (scale: [S], shift: [S]) {
        guard let mean = runningStatistics[node.name + ".running_mean"], let variance = runningStatistics[node.name + ".running_var"] else {
            throw ModelError.missingParameter(node.name + ".running_mean", model: architecture.name)
        }
        let scale = (0 ..< gamma.count).map { gamma[$0] * (1 / (variance[$0] + S(BatchNorm.epsilon)).squareRoot()) }
        let shift = (0 ..< gamma.count).map { beta[$0] - scale[$0] * mean[$0] }
        return (scale, shift)
    }

    /// The gradients of ⟨seed, logits⟩ with respect to the parameters named in `wanted` (conv /
    /// linear weights and biases, batch-norm weights and biases), after `forward`.
    /// Seed shape: `[N, classes]` like the logits. A weight's gradient is ∂/∂(w ⊙ m).
    /// - Complexity: one backward kernel per node, about twice the forward's work.
    @_specialize(where S == Float)
    @_specialize(where S == Double)
    func backward(seed: [S], wanted: Set<String>) throws -> [String: [S]] {
        let nodes = architecture.nodes
        guard batch > 0, seed.count == batch * nodes[architecture.output].shape.reduce(1, *) else {
            throw NNError.shapeMismatch(operation: "\(architecture.name) backward", detail: "seed of \(seed.count) values for batch \(batch)")
        }
        var gradients = [[S]?](repeating: nil, count: nodes.count)
        gradients[architecture.output] = seed
        var result: [String: [S]] = [:]

        /// Adds `g` into the gradient of node `i` (moved in when it is the first).
        func accumulate(_ i: Int, _ g: [S]) {
            guard nodes[i].op != .input else { return }
            guard var existing = gradients[i] else { gradients[i] = g; return }
            gradients[i] = nil
            existing.withUnsafeMutableBufferPointer { pe in
                g.withUnsafeBufferPointer { pg in
                    let e = Autodiff.base(pe), s = Autodiff.base(pg)
                    Autodiff.elementwise(g.count) { for k in $0 { e[k] += s[k] } }
                }
            }
            gradients[i] = existing
        }
        func needsInput(_ node: ArchitectureNode) -> Bool { nodes[node.inputs[0]].op != .input }

        for node in nodes.reversed() {
            guard let g = gradients[node.id] else { continue }
            gradients[node.id] = nil
            switch node.op {
            case .input:
                break
            case let .conv(c):
                let geometry = self.geometry(c, node)
                let weightName = node.name + ".weight"
                let w = try parameter(weightName)
                if c.bias, wanted.contains(node.name + ".bias") {
                    result[node.name + ".bias"] = channelSums(g, channels: c.outChannels, inner: geometry.outPixels)
                }
                if wanted.contains(weightName) {
                    guard let x = saved[node.inputs[0]] else { throw missing(node) }
                    result[weightName] = x.withUnsafeBufferPointer { px in
                        g.withUnsafeBufferPointer { pg in
                            Autodiff.buffer(w.count, zeroed: true) {
                                Conv2D.backwardWeight(geometry, x: Autodiff.base(px), dy: Autodiff.base(pg), dw: $0)
                            }
                        }
                    }
                }
                if needsInput(node) {
                    let dx: [S] = g.withUnsafeBufferPointer { pg in
                        w.withUnsafeBufferPointer { pw in
                            Autodiff.buffer(geometry.inputShape.reduce(1, *)) {
                                Conv2D.backwardInput(geometry, dy: Autodiff.base(pg), weight: Autodiff.base(pw), dx: $0, accumulate: false)
                            }
                        }
                    }
                    accumulate(node.inputs[0], dx)
                }
            case let .linear(l):
                let weightName = node.name + ".weight"
                let w = try parameter(weightName)
                if l.bias, wanted.contains(node.name + ".bias") {
                    result[node.name + ".bias"] = channelSums(g, channels: l.outFeatures, inner: 1)
                }
                if wanted.contains(weightName) {
                    guard let x = saved[node.inputs[0]] else { throw missing(node) }
                    // dW [out, in] = gᵀ [out, N] · x [N, in].
                    result[weightName] = g.withUnsafeBufferPointer { pg in
                        x.withUnsafeBufferPointer { px in
                            Autodiff.buffer(w.count) {
                                S.gemm(transposeA: true, transposeB: false, m: l.outFeatures, n: l.inFeatures, k: batch, alpha: 1,
                                       a: Autodiff.base(pg), lda: l.outFeatures, b: Autodiff.base(px), ldb: l.inFeatures,
                                       beta: 0, c: $0, ldc: l.inFeatures)
                            }
                        }
                    }
                }
                if needsInput(node) {
                    // dx [N, in] = g [N, out] · W [out, in].
                    let dx: [S] = g.withUnsafeBufferPointer { pg in
                        w.withUnsafeBufferPointer { pw in
                            Autodiff.buffer(batch * l.inFeatures) {
                                S.gemm(transposeA: false, transposeB: false, m: batch, n: l.inFeatures, k: l.outFeatures, alpha: 1,
                                       a: Autodiff.base(pg), lda: l.outFeatures, b: Autodiff.base(pw), ldb: l.inFeatures,
                                       beta: 0, c: $0, ldc: l.inFeatures)
                            }
                        }
                    }
                    accumulate(node.inputs[0], dx)
                }
            case let .batchNorm(channels):
                try batchNormBackward(node, channels: channels, g, wanted: wanted, into: &result).map { accumulate(node.inputs[0], $0) }
            case .relu:
                guard let y = saved[node.id] else { throw missing(node) }
                let dx: [S] = g.withUnsafeBufferPointer { pg in
                    y.withUnsafeBufferPointer { py in
                        Autodiff.buffer(g.count) { out in
                            Autodiff.elementwise(g.count) { for i in $0 { let v = pg[i]; out[i] = py[i] > 0 ? v : 0 } }
                        }
                    }
                }
                accumulate(node.inputs[0], dx)
            case .maxPool:
                guard let index = argmax[node.id] else { throw missing(node) }
                let inputCount = batch * nodes[node.inputs[0]].shape.reduce(1, *)
                let dx: [S] = g.withUnsafeBufferPointer { pg in
                    index.withUnsafeBufferPointer { pi in
                        Autodiff.buffer(inputCount, zeroed: true) {
                            Pooling.scatterAdd(dy: Autodiff.base(pg), index: Autodiff.base(pi), count: g.count, dx: $0)
                        }
                    }
                }
                accumulate(node.inputs[0], dx)
            case let .avgPool(k):
                let s = nodes[node.inputs[0]].shape
                let dx: [S] = g.withUnsafeBufferPointer { pg in
                    Autodiff.buffer(batch * s.reduce(1, *), zeroed: true) {
                        Pooling.averageBackward(dy: Autodiff.base(pg), planes: batch * s[0], height: s[1], width: s[2], kernel: k, dx: $0)
                    }
                }
                accumulate(node.inputs[0], dx)
            case .flatten:
                accumulate(node.inputs[0], g)
            case .add:
                accumulate(node.inputs[0], g)
                accumulate(node.inputs[1], g)
            }
        }
        return result
    }

    private func missing(_ node: ArchitectureNode) -> NNError {
        .invalidArgument(operation: "\(architecture.name) backward", detail: "node \(node.id) (\(node.name)) has no saved forward values; run forward first")
    }

    /// Σ over n and the inner positions of g `[N, C, inner]`, per channel (Double accumulation).
    private func channelSums(_ g: [S], channels: Int, inner: Int) -> [S] {
        g.withUnsafeBufferPointer { pg in
            (0 ..< channels).map { c in
                var s = 0.0
                for n in 0 ..< batch { s += BatchNorm.sumOf(Autodiff.base(pg) + (n * channels + c) * inner, inner) }
                return S(s)
            }
        }
    }

    /// Batch norm's backward: stores dγ, dβ in `result` when wanted; returns dx unless the input is the network's input.
    private func batchNormBackward(_ node: ArchitectureNode, channels: Int, _ g: [S], wanted: Set<String>,
                                   into result: inout [String: [S]]) throws -> [S]? {
        let gammaName = node.name + ".weight", betaName = node.name + ".bias"
        let gamma = try parameter(gammaName), beta = try parameter(betaName)
        let inner = g.count / (batch * channels)
        let wantsInput = architecture.nodes[node.inputs[0]].op != .input
        switch normalisation {
        case .batch:
            guard let x = saved[node.inputs[0]], let (mean, invStd) = statistics[node.id] else { throw missing(node) }
            var dx: [S]? = wantsInput ? [S](unsafeUninitializedCapacity: g.count) { _, n in n = g.count } : nil
            var dGamma: [S]? = wanted.contains(gammaName) ? [S](repeating: 0, count: channels) : nil
            var dBeta: [S]? = wanted.contains(betaName) ? [S](repeating: 0, count: channels) : nil
            x.withUnsafeBufferPointer { px in
                g.withUnsafeBufferPointer { pg in
                    Autodiff.withOptionalPointer(&dx) { pdx in
                        Autodiff.withOptionalPointer(&dGamma) { pdg in
                            Autodiff.withOptionalPointer(&dBeta) { pdb in
                                BatchNorm.backwardTraining(x: Autodiff.base(px), dy: Autodiff.base(pg), gamma: gamma, mean: mean,
                                                           invStd: invStd, outer: batch, channels: channels, inner: inner,
                                                           dx: pdx, dGamma: pdg, dBeta: pdb, accumulateInput: false)
                            }
                        }
                    }
                }
            }
            if let dGamma { result[gammaName] = dGamma }
            if let dBeta { result[betaName] = dBeta }
            return dx
        case .running:
            let (scale, _) = try runningAffine(node, gamma: gamma, beta: beta)
            if wanted.contains(betaName) { result[betaName] = channelSums(g, channels: channels, inner: inner) }
            if wanted.contains(gammaName) {
                throw NNError.invalidArgument(operation: "\(architecture.name) backward",
                                              detail: "evaluation-mode batch-norm weight gradients are not provided by the first-order pass")
            }
            guard wantsInput else { return nil }
            return g.withUnsafeBufferPointer { pg in
                Autodiff.buffer(g.count) { out in
                    for n in 0 ..< batch {
                        for c in 0 ..< channels {
                            let o = (n * channels + c) * inner, a = scale[c]
                            for i in 0 ..< inner { out[o + i] = pg[o + i] * a }
                        }
                    }
                }
            }
        }
    }
}
