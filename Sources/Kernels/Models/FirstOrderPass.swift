/// A tape-free forward/backward of an `Architecture` (llm.c style: one forward and one backward
/// routine per node kind, activations in plain arrays), for gradients and, in forward-over-reverse
/// mode, exact Hessian-vector products.
///
/// The library's one gradient engine: `Execution` (forward, loss, gradients), the pruners and
/// training run on it. It uses the kernels (`Conv2D`, `BatchNorm`, `Pooling`, `CrossEntropy`)
/// directly and keeps only what its backward reads (the test suite checks it against finite
/// differences and an independent autodiff tape):
/// - the input of every conv / linear (for the weight gradient) and of every training-mode
///   batch norm (with the batch mean and 1/σ);
/// - the output of every ReLU (its 0/1 pattern; y > 0 ⇔ x > 0) and max-pool indices.
///
/// **Hessian-vector products** (forward-over-reverse): `forward` given parameter tangents v also
/// propagates the directional derivative ẏ = ∂y/∂θ·v of every activation (batch statistics
/// included), and `backward` given the seed's tangent propagates the tangent of every gradient.
/// The tangent of ∇L along v is H·v, exactly (up to rounding) and with about twice the memory of
/// a gradient, instead of the recorded double-backward graph. ReLU and max pool are piecewise
/// linear: their 0/1 pattern and indices are constants.
///
/// Weights are taken as given: the caller passes the *effective* weights (w ⊙ m). The gradient
/// returned for a weight is ∂L/∂(w ⊙ m); ∂L/∂w = that ⊙ m and ∂L/∂m = that ⊙ w.
///
/// Batch norm: `.batch` normalises with the batch's mean and biased variance (training mode,
/// running statistics untouched); `.running` uses the running statistics (evaluation mode) as
/// y = x·(γσ⁻¹) + (β − μ·γσ⁻¹). `updatedRunningStatistics` folds a `.batch` forward's
/// statistics into the running ones (PyTorch's training-mode forward).
/// Tangents and batch-norm weight gradients are provided in `.batch` mode only.
final class FirstOrderPass<S: NNScalar> {
    enum Normalisation { case batch, running }

    let architecture: Architecture
    let normalisation: Normalisation
    /// Learnable parameters by state-dict name (effective weights), and running statistics.
    private let parameters: [String: [S]]
    private let runningStatistics: [String: [S]]

    /// Per node: its output when a backward rule reads it (nil otherwise or before `forward`),
    /// and likewise its tangent in forward-over-reverse mode.
    private var saved: [[S]?]
    private var savedTangent: [[S]?]
    /// Per training-mode batch-norm node: the batch mean and 1/√(var + ε); with tangents also
    /// mean(ẋ) and mean(x̂·ẋ).
    private var statistics: [(mean: [S], invStd: [S])?]
    private var tangentStatistics: [(meanXDot: [S], meanXhatXDot: [S])?]
    /// Per max-pool node: the flat input index of each output.
    private var argmax: [[Int32]?]
    /// The parameter tangents of the last `forward` (nil: plain first order).
    private var parameterTangents: [String: [S]]?
    /// ∂logits/∂θ·v of the last `forward` with tangents.
    private(set) var outputTangent: [S]?
    private var batch = 0
    /// Which node outputs a backward rule reads (see the type's comment).
    private let keep: [Bool]
    /// Kept taps of the very sparse conv weights (by weight name) that may run on
    /// `SparseConv2D` (`ConvKernelChoice` picks per layer); empty unless `sparseKernels`.
    private let sparseTaps: [String: SparseConvTaps]
    /// Weight gradients of every weight, kept or not (dynamic sparse training reads the dense
    /// gradient); the forward and input gradients still follow the masks.
    private let denseWeightGradients: Bool
    /// Kernel choices imposed on this pass (a resumed run's), by weight name.
    private var pinnedChoices: [String: (sparse: Int, known: Int)] = [:]

    /// - Parameters:
    ///   - parameters: every conv/linear weight (effective, w ⊙ m) and bias and every batch-norm
    ///     weight and bias the architecture declares, by state-dict name.
    ///   - runningStatistics: `running_mean` / `running_var` by name (read in `.running` mode;
    ///     in `.batch` mode only `updatedRunningStatistics` reads them).
    ///   - forBackward: keep what `backward` reads; false for a forward-only pass (evaluation,
    ///     a loss), which then frees every activation after its last reader.
    ///   - sparseKernels: let conv layers whose kept fraction is below
    ///     `ConvKernelChoice.densityLimit` run on the sparse kernels where its cost model picks them. The
    ///     kept pattern is `masks[weight name]` (non-zero = kept), else — forward-only passes —
    ///     the weight's non-zeros. With a mask, weight gradients are produced for kept weights
    ///     only (0 elsewhere) unless `denseWeightGradients`. Tangent (Hessian-vector) terms always run dense.
    init(_ architecture: Architecture, parameters: [String: [S]], runningStatistics: [String: [S]],
         normalisation: Normalisation, forBackward: Bool = true, sparseKernels: Bool = false,
         masks: [String: [S]] = [:], denseWeightGradients: Bool = false) throws {
        self.denseWeightGradients = denseWeightGradients
        for spec in architecture.parameters {
            let isRunning = spec.role == .runningMean || spec.role == .runningVar
            if isRunning && normalisation == .batch { continue }
            let present = isRunning ? runningStatistics[spec.name]?.count : parameters[spec.name]?.count
            guard present == spec.count else { throw ModelError.missingParameter(spec.name, model: architecture.name) }
        }
        self.architecture = architecture
        self.normalisation = normalisation
        self.parameters = parameters
        self.runningStatistics = runningStatistics
        var keep = [Bool](repeating: false, count: architecture.nodes.count)
        for node in architecture.nodes where forBackward {
            switch node.op {
            case .conv, .linear: keep[node.inputs[0]] = true
            case .batchNorm: if normalisation == .batch { keep[node.inputs[0]] = true }
            case .relu: keep[node.id] = true
            default: break
            }
        }
        self.keep = keep
        var sparseTaps: [String: SparseConvTaps] = [:]
        for node in architecture.nodes where sparseKernels {
            guard case let .conv(c) = node.op, c.groups == 1 else { continue }
            let name = node.name + ".weight"
            guard let pattern = masks[name] ?? (forBackward ? nil : parameters[name]) else { continue }
            let s = architecture.nodes[node.inputs[0]].shape
            let g = ConvGeometry(batch: 1, inChannels: c.inChannels, height: s[1], width: s[2], outChannels: c.outChannels,
                                 kernel: c.kernel, stride: c.stride, padding: c.padding, groups: c.groups)
            if let taps = pattern.withUnsafeBufferPointer({ SparseConvTaps(g, kept: $0) }),
               taps.density < ConvKernelChoice.densityLimit {
                sparseTaps[name] = taps
            }
        }
        self.sparseTaps = sparseTaps
        let none = Array(repeating: [S]?.none, count: architecture.nodes.count)
        saved = none; savedTangent = none
        statistics = Array(repeating: nil, count: architecture.nodes.count)
        tangentStatistics = Array(repeating: nil, count: architecture.nodes.count)
        argmax = Array(repeating: nil, count: architecture.nodes.count)
    }

    // MARK: Forward

    /// Logits `[N, classes]` of x `[N] + input shape` (row-major), keeping what `backward` reads.
    /// With `parameterTangents` (a direction v over any subset of the parameters; missing ones
    /// are zero) it also computes every activation's tangent; `outputTangent` holds the logits'.
    /// - Complexity: one forward kernel per node (two to three with tangents); memory
    ///   O(N · Σ kept activation sizes), doubled with tangents.
    @_specialize(where S == Float)
    @_specialize(where S == Double)
    func forward(_ input: [S], batch: Int, parameterTangents: [String: [S]]? = nil) throws -> [S] {
        let nodes = architecture.nodes
        let inputCount = (nodes.first?.shape ?? []).reduce(1, *)
        guard batch > 0, input.count == batch * inputCount else {
            throw NNError.shapeMismatch(operation: "\(architecture.name) forward", detail: "\(input.count) values for batch \(batch)")
        }
        if let parameterTangents {
            guard normalisation == .batch else {
                throw NNError.invalidArgument(operation: "\(architecture.name) forward", detail: "tangents need training-mode batch norm")
            }
            for (name, v) in parameterTangents where parameters[name]?.count != v.count {
                throw NNError.shapeMismatch(operation: "\(architecture.name) forward", detail: "tangent of \(name) has \(v.count) values")
            }
        }
        self.batch = batch
        self.parameterTangents = parameterTangents
        var lastUse = [Int](repeating: -1, count: nodes.count)
        for node in nodes { for i in node.inputs { lastUse[i] = max(lastUse[i], node.id) } }
        lastUse[architecture.output] = Int.max
        var values = [[S]?](repeating: nil, count: nodes.count)
        var tangents = [[S]?](repeating: nil, count: nodes.count)

        for node in nodes {
            let count = batch * node.shape.reduce(1, *)
            var y: [S]
            var yDot: [S]? = nil
            let x = node.op == .input ? [] : try value(values, node.inputs[0])
            let xDot = node.inputs.first.flatMap { tangents[$0] }
            switch node.op {
            case .input:
                y = input
            case let .conv(c):
                let g = geometry(c, node)
                let w = try parameter(node.name + ".weight"), wDot = tangent(node.name + ".weight")
                var out: [S]? = nil
                Self.convolve(g, x, w, into: &out, taps: sparse(node.name + ".weight", .forward))
                y = out ?? []
                // ẏ = conv(ẋ, w) + conv(x, ẇ) (+ ḃ).
                if let xDot { Self.convolve(g, xDot, w, into: &yDot, taps: sparse(node.name + ".weight", .forward)) }
                if let wDot { Self.convolve(g, x, wDot, into: &yDot) }
                if c.bias {
                    try addBias(&y, parameter(node.name + ".bias"), inner: g.outPixels)
                    if let bDot = tangent(node.name + ".bias") { yDot = yDot ?? [S](repeating: 0, count: count); addBias(&yDot, bDot, inner: g.outPixels) }
                }
            case let .linear(l):
                let w = try parameter(node.name + ".weight"), wDot = tangent(node.name + ".weight")
                var out: [S]? = nil
                Self.linear(l, batch: batch, x, w, into: &out)
                y = out ?? []
                if let xDot { Self.linear(l, batch: batch, xDot, w, into: &yDot) }
                if let wDot { Self.linear(l, batch: batch, x, wDot, into: &yDot) }
                if l.bias {
                    try addBias(&y, parameter(node.name + ".bias"), inner: 1)
                    if let bDot = tangent(node.name + ".bias") { yDot = yDot ?? [S](repeating: 0, count: count); addBias(&yDot, bDot, inner: 1) }
                }
            case let .batchNorm(channels):
                (y, yDot) = try batchNormForward(node, channels: channels, x, xDot)
            case .relu:
                y = Self.relu(x)
                yDot = xDot.map { Self.maskPositive($0, where: y) }
            case let .maxPool(pool):
                let s = nodes[node.inputs[0]].shape
                var index = [Int32](repeating: 0, count: count)
                y = x.withUnsafeBufferPointer { px in
                    index.withUnsafeMutableBufferPointer { pi in
                        Autodiff.buffer(count) {
                            Pooling.maxForward(x: Autodiff.base(px), planes: batch * s[0], height: s[1], width: s[2], pool: pool,
                                               y: $0, argmax: Autodiff.base(pi))
                        }
                    }
                }
                yDot = xDot.map { d in
                    d.withUnsafeBufferPointer { pd in
                        index.withUnsafeBufferPointer { pi in
                            Autodiff.buffer(count) { Pooling.gather(x: Autodiff.base(pd), index: Autodiff.base(pi), count: count, y: $0) }
                        }
                    }
                }
                argmax[node.id] = index
            case let .avgPool(poolWindow):
                let s = nodes[node.inputs[0]].shape
                func pool(_ a: [S]) -> [S] {
                    a.withUnsafeBufferPointer { pa in
                        Autodiff.buffer(count) {
                            Pooling.averageForward(x: Autodiff.base(pa), planes: batch * s[0], height: s[1], width: s[2], pool: poolWindow, y: $0)
                        }
                    }
                }
                y = pool(x)
                yDot = xDot.map(pool)
            case .flatten:
                y = x
                yDot = xDot
            case .add:
                let b = try value(values, node.inputs[1])
                guard x.count == b.count else {
                    throw NNError.shapeMismatch(operation: "\(architecture.name) add", detail: "\(x.count) and \(b.count) values")
                }
                y = Self.sum(x, b)
                switch (xDot, tangents[node.inputs[1]]) {
                case let (a?, b?): yDot = Self.sum(a, b)
                case let (a, b): yDot = a ?? b
                }
            }
            values[node.id] = y
            tangents[node.id] = yDot
            saved[node.id] = keep[node.id] ? y : nil
            savedTangent[node.id] = keep[node.id] ? yDot : nil
            for i in node.inputs where lastUse[i] == node.id { values[i] = nil; tangents[i] = nil }
        }
        let outputCount = batch * nodes[architecture.output].shape.reduce(1, *)
        outputTangent = parameterTangents == nil ? nil : (tangents[architecture.output] ?? [S](repeating: 0, count: outputCount))
        return try value(values, architecture.output)
    }

    /// Batch norm of x `[N, C, …]` in the pass's mode (and its tangent); saves the batch statistics.
    private func batchNormForward(_ node: ArchitectureNode, channels: Int, _ x: [S], _ xDot: [S]?) throws -> ([S], [S]?) {
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
            guard parameterTangents != nil else { return (y, nil) }
            let gammaDot = tangent(node.name + ".weight"), betaDot = tangent(node.name + ".bias")
            var meanXDot = [S](repeating: 0, count: channels), meanXhatXDot = [S](repeating: 0, count: channels)
            let yDot: [S] = x.withUnsafeBufferPointer { px in
                Self.withOptional(xDot) { pxd in
                    Self.withOptional(gammaDot) { pgd in
                        Self.withOptional(betaDot) { pbd in
                            meanXDot.withUnsafeMutableBufferPointer { pa in
                                meanXhatXDot.withUnsafeMutableBufferPointer { pb in
                                    Autodiff.buffer(x.count) {
                                        BatchNorm.forwardTangentTraining(x: Autodiff.base(px), xDot: pxd, gamma: gamma, gammaDot: pgd,
                                                                         betaDot: pbd, mean: mean, invStd: invStd, outer: batch,
                                                                         channels: channels, inner: inner, yDot: $0,
                                                                         meanXDot: Autodiff.base(pa), meanXhatXDot: Autodiff.base(pb))
                                    }
                                }
                            }
                        }
                    }
                }
            }
            tangentStatistics[node.id] = (meanXDot, meanXhatXDot)
            return (y, yDot)
        case .running:
            let (scale, shift) = try runningAffine(node, gamma: gamma, beta: beta)
            let y: [S] = x.withUnsafeBufferPointer { px in
                Autodiff.buffer(x.count) { out in
                    for n in 0 ..< batch {
                        for c in 0 ..< channels {
                            let o = (n * channels + c) * inner, a = scale[c], b = shift[c]
                            for i in 0 ..< inner { out[o + i] = px[o + i] * a + b }
                        }
                    }
                }
            }
            return (y, nil)
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

    /// The running statistics after the last `.batch` forward, updated as PyTorch's `train()`
    /// forward does: momentum 0.1, `running_var` from the *unbiased* batch variance. Starts from
    /// the `runningStatistics` given at init; returns every `running_mean` / `running_var`.
    func updatedRunningStatistics() throws -> [String: [S]] {
        var result = runningStatistics
        for node in architecture.nodes {
            guard case let .batchNorm(channels) = node.op else { continue }
            let meanName = node.name + ".running_mean", varName = node.name + ".running_var"
            guard normalisation == .batch, let (mean, invStd) = statistics[node.id] else { throw missing(node) }
            guard var runningMean = result[meanName], var runningVar = result[varName],
                  runningMean.count == channels, runningVar.count == channels else {
                throw ModelError.missingParameter(meanName, model: architecture.name)
            }
            let count = batch * architecture.nodes[node.inputs[0]].shape.reduce(1, *) / channels
            runningMean.withUnsafeMutableBufferPointer { pm in
                runningVar.withUnsafeMutableBufferPointer { pv in
                    BatchNorm.updateRunningStatistics(mean: mean, invStd: invStd, count: count, channels: channels,
                                                      runningMean: Autodiff.base(pm), runningVar: Autodiff.base(pv))
                }
            }
            result[meanName] = runningMean; result[varName] = runningVar
        }
        return result
    }

    // MARK: Loss

    /// Mean cross-entropy of `logits` / T (`logits` `[N, K]` from `forward`, T = `temperature`)
    /// against `labels`, and the seed ∂L/∂logits = (softmax(z/T) − onehot)/(N·T) for `backward`;
    /// after a forward with tangents also the seed's tangent (ṗ/(N·T) with
    /// ṗ = p ⊙ (ż/T − Σₖ p·ż/T) per row, ż = `outputTangent`).
    func crossEntropy(_ logits: [S], labels: [Int], temperature: S = 1) throws -> (loss: Double, seed: [S], seedTangent: [S]?) {
        let inverseTemperature = 1 / temperature
        let logits = temperature == 1 ? logits : logits.map { $0 * inverseTemperature }
        let classes = logits.count / max(batch, 1)
        guard batch > 0, labels.count == batch, logits.count == batch * classes, classes > 0 else {
            throw NNError.shapeMismatch(operation: "crossEntropy", detail: "\(labels.count) labels for \(logits.count) logits of batch \(batch)")
        }
        if let bad = labels.first(where: { $0 < 0 || $0 >= classes }) {
            throw NNError.invalidArgument(operation: "crossEntropy", detail: "label \(bad) outside 0..<\(classes)")
        }
        var probabilities = [S](repeating: 0, count: logits.count)
        let loss = logits.withUnsafeBufferPointer { pz in
            probabilities.withUnsafeMutableBufferPointer { pp in
                CrossEntropy.forward(logits: Autodiff.base(pz), labels: labels, batch: batch, classes: classes, probabilities: pp.baseAddress)
            }
        }
        let seed: [S] = probabilities.withUnsafeBufferPointer { pp in
            Autodiff.buffer(logits.count, zeroed: true) {
                CrossEntropy.backward(probabilities: Autodiff.base(pp), labels: labels, batch: batch, classes: classes,
                                      scale: inverseTemperature, dLogits: $0)
            }
        }
        guard let zDot = outputTangent else { return (loss, seed, nil) }
        var seedTangent = [S](repeating: 0, count: logits.count)
        let inverseBatch = 1 / S(batch), inverseSquare = inverseTemperature * inverseTemperature
        for n in 0 ..< batch {
            let o = n * classes
            var s: S = 0
            for k in 0 ..< classes { s += probabilities[o + k] * zDot[o + k] }
            for k in 0 ..< classes { seedTangent[o + k] = probabilities[o + k] * (zDot[o + k] - s) * inverseBatch * inverseSquare }
        }
        return (loss, seed, seedTangent)
    }

    // MARK: Backward

    /// The gradients of ⟨seed, logits⟩ with respect to the parameters named in `wanted` (conv /
    /// linear weights and biases, batch-norm weights and biases), after `forward`; a weight's
    /// gradient is ∂/∂(w ⊙ m). After a forward with tangents v and given the seed's tangent,
    /// `tangents` holds the tangent of each wanted gradient: H·v for a loss's seed.
    /// Seed shape: `[N, classes]` like the logits.
    /// - Complexity: about twice the forward's work (three times more with tangents).
    @_specialize(where S == Float)
    @_specialize(where S == Double)
    func backward(seed: [S], seedTangent: [S]? = nil, wanted: Set<String>) throws
        -> (gradients: [String: [S]], tangents: [String: [S]]) {
        let nodes = architecture.nodes
        let outputCount = batch * nodes[architecture.output].shape.reduce(1, *)
        guard batch > 0, seed.count == outputCount, seedTangent.map({ $0.count == outputCount }) ?? true else {
            throw NNError.shapeMismatch(operation: "\(architecture.name) backward", detail: "seed of \(seed.count) values for batch \(batch)")
        }
        let withTangents = parameterTangents != nil
        var gradients = [[S]?](repeating: nil, count: nodes.count)
        var gradientTangents = [[S]?](repeating: nil, count: nodes.count)
        gradients[architecture.output] = seed
        gradientTangents[architecture.output] = withTangents ? seedTangent : nil
        var result: [String: [S]] = [:], resultTangents: [String: [S]] = [:]

        /// Adds `g` into slot `i` of `into` (moved in when it is the first).
        func accumulate(_ into: inout [[S]?], _ i: Int, _ g: [S]?) {
            guard let g, nodes[i].op != .input else { return }
            guard var existing = into[i] else { into[i] = g; return }
            into[i] = nil
            Self.addInPlace(&existing, g)
            into[i] = existing
        }
        func pass(_ node: ArchitectureNode, _ g: [S], _ gDot: [S]?, input: Int = 0) {
            accumulate(&gradients, node.inputs[input], g)
            accumulate(&gradientTangents, node.inputs[input], gDot)
        }
        func needsInput(_ node: ArchitectureNode) -> Bool { nodes[node.inputs[0]].op != .input }

        for node in nodes.reversed() {
            guard let g = gradients[node.id] else { continue }
            let gDot = gradientTangents[node.id]
            gradients[node.id] = nil
            gradientTangents[node.id] = nil
            switch node.op {
            case .input:
                break
            case let .conv(c):
                let geometry = self.geometry(c, node)
                let weightName = node.name + ".weight", biasName = node.name + ".bias"
                let w = try parameter(weightName), wDot = tangent(weightName)
                let x = saved[node.inputs[0]], xDot = savedTangent[node.inputs[0]]
                if c.bias, wanted.contains(biasName) {
                    result[biasName] = channelSums(g, channels: c.outChannels, inner: geometry.outPixels)
                    if withTangents { resultTangents[biasName] = gDot.map { channelSums($0, channels: c.outChannels, inner: geometry.outPixels) } }
                }
                if wanted.contains(weightName) {
                    guard let x else { throw missing(node) }
                    // dW = dW(x, g);  ḋW = dW(ẋ, g) + dW(x, ġ).
                    var dw: [S]? = nil
                    Self.convolveWeight(geometry, x, g, into: &dw, taps: withTangents || denseWeightGradients ? nil : sparse(weightName, .weight))
                    result[weightName] = dw
                    if withTangents {
                        var dwDot: [S]? = nil
                        if let xDot { Self.convolveWeight(geometry, xDot, g, into: &dwDot) }
                        if let gDot { Self.convolveWeight(geometry, x, gDot, into: &dwDot) }
                        resultTangents[weightName] = dwDot
                    }
                }
                if needsInput(node) {
                    // dx = convᵀ(g, w);  ḋx = convᵀ(ġ, w) + convᵀ(g, ẇ).
                    var dx: [S]? = nil, dxDot: [S]? = nil
                    Self.convolveInput(geometry, g, w, into: &dx, taps: sparse(weightName, .input))
                    if let gDot { Self.convolveInput(geometry, gDot, w, into: &dxDot, taps: sparse(weightName, .input)) }
                    if let wDot { Self.convolveInput(geometry, g, wDot, into: &dxDot) }
                    accumulate(&gradients, node.inputs[0], dx)
                    accumulate(&gradientTangents, node.inputs[0], dxDot)
                }
            case let .linear(l):
                let weightName = node.name + ".weight", biasName = node.name + ".bias"
                let w = try parameter(weightName), wDot = tangent(weightName)
                let x = saved[node.inputs[0]], xDot = savedTangent[node.inputs[0]]
                if l.bias, wanted.contains(biasName) {
                    result[biasName] = channelSums(g, channels: l.outFeatures, inner: 1)
                    if withTangents { resultTangents[biasName] = gDot.map { channelSums($0, channels: l.outFeatures, inner: 1) } }
                }
                if wanted.contains(weightName) {
                    guard let x else { throw missing(node) }
                    var dw: [S]? = nil
                    Self.linearWeight(l, batch: batch, x, g, into: &dw)
                    result[weightName] = dw
                    if withTangents {
                        var dwDot: [S]? = nil
                        if let xDot { Self.linearWeight(l, batch: batch, xDot, g, into: &dwDot) }
                        if let gDot { Self.linearWeight(l, batch: batch, x, gDot, into: &dwDot) }
                        resultTangents[weightName] = dwDot
                    }
                }
                if needsInput(node) {
                    var dx: [S]? = nil, dxDot: [S]? = nil
                    Self.linearInput(l, batch: batch, g, w, into: &dx)
                    if let gDot { Self.linearInput(l, batch: batch, gDot, w, into: &dxDot) }
                    if let wDot { Self.linearInput(l, batch: batch, g, wDot, into: &dxDot) }
                    accumulate(&gradients, node.inputs[0], dx)
                    accumulate(&gradientTangents, node.inputs[0], dxDot)
                }
            case let .batchNorm(channels):
                let (dx, dxDot) = try batchNormBackward(node, channels: channels, g, gDot, wanted: wanted,
                                                        into: &result, tangents: &resultTangents)
                accumulate(&gradients, node.inputs[0], dx)
                accumulate(&gradientTangents, node.inputs[0], dxDot)
            case .relu:
                guard let y = saved[node.id] else { throw missing(node) }
                pass(node, Self.maskPositive(g, where: y), gDot.map { Self.maskPositive($0, where: y) })
            case .maxPool:
                guard let index = argmax[node.id] else { throw missing(node) }
                let inputCount = batch * nodes[node.inputs[0]].shape.reduce(1, *)
                func scatter(_ a: [S]) -> [S] {
                    a.withUnsafeBufferPointer { pa in
                        index.withUnsafeBufferPointer { pi in
                            Autodiff.buffer(inputCount, zeroed: true) {
                                Pooling.scatterAdd(dy: Autodiff.base(pa), index: Autodiff.base(pi), count: a.count, dx: $0)
                            }
                        }
                    }
                }
                pass(node, scatter(g), gDot.map(scatter))
            case let .avgPool(poolWindow):
                let s = nodes[node.inputs[0]].shape
                func spread(_ a: [S]) -> [S] {
                    a.withUnsafeBufferPointer { pa in
                        Autodiff.buffer(batch * s.reduce(1, *), zeroed: true) {
                            Pooling.averageBackward(dy: Autodiff.base(pa), planes: batch * s[0], height: s[1], width: s[2], pool: poolWindow, dx: $0)
                        }
                    }
                }
                pass(node, spread(g), gDot.map(spread))
            case .flatten:
                pass(node, g, gDot)
            case .add:
                pass(node, g, gDot, input: 0)
                pass(node, g, gDot, input: 1)
            }
        }
        if withTangents {
            for name in wanted where result[name] != nil && resultTangents[name] == nil {
                resultTangents[name] = [S](repeating: 0, count: result[name]?.count ?? 0)
            }
        }
        return (result, resultTangents)
    }

    /// Batch norm's backward (and its tangent): stores dγ, dβ (and their tangents) when wanted;
    /// returns dx and ḋx unless the input is the network's input.
    private func batchNormBackward(_ node: ArchitectureNode, channels: Int, _ g: [S], _ gDot: [S]?, wanted: Set<String>,
                                   into result: inout [String: [S]], tangents: inout [String: [S]]) throws -> ([S]?, [S]?) {
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
            guard parameterTangents != nil else { return (dx, nil) }
            guard let (meanXDot, meanXhatXDot) = tangentStatistics[node.id] else { throw missing(node) }
            let xDot = savedTangent[node.inputs[0]], gammaDot = tangent(gammaName)
            var dxDot: [S]? = wantsInput ? [S](unsafeUninitializedCapacity: g.count) { _, n in n = g.count } : nil
            var dGammaDot: [S]? = dGamma == nil ? nil : [S](repeating: 0, count: channels)
            var dBetaDot: [S]? = dBeta == nil ? nil : [S](repeating: 0, count: channels)
            x.withUnsafeBufferPointer { px in
                g.withUnsafeBufferPointer { pg in
                    Self.withOptional(xDot) { pxd in
                        Self.withOptional(gDot) { pgd in
                            Self.withOptional(gammaDot) { pgammad in
                                Autodiff.withOptionalPointer(&dxDot) { pdx in
                                    Autodiff.withOptionalPointer(&dGammaDot) { pdg in
                                        Autodiff.withOptionalPointer(&dBetaDot) { pdb in
                                            BatchNorm.backwardTangentTraining(
                                                x: Autodiff.base(px), xDot: pxd, dy: Autodiff.base(pg), dyDot: pgd, gamma: gamma,
                                                gammaDot: pgammad, mean: mean, invStd: invStd, meanXDot: meanXDot,
                                                meanXhatXDot: meanXhatXDot, outer: batch, channels: channels, inner: inner,
                                                dxDot: pdx, dGammaDot: pdg, dBetaDot: pdb)
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            if let dGammaDot { tangents[gammaName] = dGammaDot }
            if let dBetaDot { tangents[betaName] = dBetaDot }
            return (dx, dxDot)
        case .running:
            let (scale, _) = try runningAffine(node, gamma: gamma, beta: beta)
            if wanted.contains(betaName) { result[betaName] = channelSums(g, channels: channels, inner: inner) }
            if wanted.contains(gammaName) {
                throw NNError.invalidArgument(operation: "\(architecture.name) backward",
                                              detail: "evaluation-mode batch-norm weight gradients are not provided by the first-order pass")
            }
            guard wantsInput else { return (nil, nil) }
            let dx: [S] = g.withUnsafeBufferPointer { pg in
                Autodiff.buffer(g.count) { out in
                    for n in 0 ..< batch {
                        for c in 0 ..< channels {
                            let o = (n * channels + c) * inner, a = scale[c]
                            for i in 0 ..< inner { out[o + i] = pg[o + i] * a }
                        }
                    }
                }
            }
            return (dx, nil)
        }
    }

    // MARK: Helpers

    private func parameter(_ name: String) throws -> [S] {
        guard let p = parameters[name] else { throw ModelError.missingParameter(name, model: architecture.name) }
        return p
    }

    private func tangent(_ name: String) -> [S]? { parameterTangents?[name] }

    private func value(_ values: [[S]?], _ i: Int) throws -> [S] {
        guard let v = values[i] else {
            throw NNError.invalidArgument(operation: "\(architecture.name) forward", detail: "node \(i) read before it is computed")
        }
        return v
    }

    private func missing(_ node: ArchitectureNode) -> NNError {
        .invalidArgument(operation: "\(architecture.name) backward", detail: "node \(node.id) (\(node.name)) has no saved forward values; run forward first")
    }

    /// Per sparse-capable conv weight, the kernel choices of this pass (see
    /// `ConvKernelChoice.choices`): bits set = sparse, `known` = which operations are decided.
    var kernelChoices: [String: (sparse: Int, known: Int)] {
        var choices: [String: (sparse: Int, known: Int)] = [:]
        for (name, taps) in sparseTaps { choices[name] = ConvKernelChoice.choices(taps, S.self, pinned: pinnedChoices[name]) }
        return choices
    }

    /// Imposes recorded kernel choices (by weight name), e.g. those of the run being resumed;
    /// they override the cost model for this pass only.
    func pinKernelChoices(_ choices: [String: (sparse: Int, known: Int)]) {
        pinnedChoices = choices.filter { sparseTaps[$0.key] != nil }
    }

    /// The sparse taps of weight `name` at the current batch size with the kernel chosen for
    /// `op` (nil: no taps, dense kernels).
    private func sparse(_ name: String, _ op: ConvKernelChoice.Operation) -> (taps: SparseConvTaps, sparse: Bool)? {
        guard var taps = sparseTaps[name] else { return nil }
        taps.geometry.batch = batch
        return (taps, ConvKernelChoice.uses(taps, op, S.self, pinned: pinnedChoices[name]))
    }

    private func geometry(_ c: Convolution, _ node: ArchitectureNode) -> ConvGeometry {
        let s = architecture.nodes[node.inputs[0]].shape
        return ConvGeometry(batch: batch, inChannels: c.inChannels, height: s[1], width: s[2], outChannels: c.outChannels,
                            kernel: c.kernel, stride: c.stride, padding: c.padding, groups: c.groups)
    }

    /// y[n, c, :] += b[c] over the N rows of `[C, inner]`.
    private func addBias(_ y: inout [S], _ b: [S], inner: Int) {
        let channels = b.count, rows = batch
        y.withUnsafeMutableBufferPointer { py in
            for n in 0 ..< rows {
                for c in 0 ..< channels {
                    let row = Autodiff.base(py) + (n * channels + c) * inner, v = b[c]
                    for i in 0 ..< inner { row[i] += v }
                }
            }
        }
    }

    private func addBias(_ y: inout [S]?, _ b: [S], inner: Int) {
        guard var values = y else { return }
        y = nil
        addBias(&values, b, inner: inner)
        y = values
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

    /// Runs `body` on `target`'s storage with `accumulate` true, or on a fresh array of `count`
    /// (zeroed when asked) with `accumulate` false when `target` is nil. The kernels below add
    /// into an existing result (a sum of terms) or overwrite a new one.
    private static func into(_ target: inout [S]?, count: Int, zeroed: Bool = false,
                             _ body: (UnsafeMutablePointer<S>, _ accumulate: Bool) -> Void) {
        if var values = target {
            target = nil  // keep the buffer uniquely referenced so writing into it does not copy
            values.withUnsafeMutableBufferPointer { body(Autodiff.base($0), true) }
            target = values
        } else {
            target = Autodiff.buffer(count, zeroed: zeroed) { body($0, false) }
        }
    }

    /// y (+)= conv(x, w). x `[N, Cin, H, W]`, w `[Cout, Cin/groups, k, k]`, y `[N, Cout, Ho, Wo]`.
    /// With `taps`, `ConvKernelChoice` runs the kernel chosen for the layer (dense or sparse).
    private static func convolve(_ g: ConvGeometry, _ x: [S], _ w: [S], into y: inout [S]?,
                                 taps: (taps: SparseConvTaps, sparse: Bool)? = nil) {
        x.withUnsafeBufferPointer { px in
            w.withUnsafeBufferPointer { pw in
                into(&y, count: g.outputShape.reduce(1, *)) {
                    if let taps {
                        ConvKernelChoice.forward(taps.taps, sparse: taps.sparse, x: Autodiff.base(px), weight: Autodiff.base(pw), y: $0, accumulate: $1)
                    } else {
                        Conv2D.forward(g, x: Autodiff.base(px), weight: Autodiff.base(pw), y: $0, accumulate: $1)
                    }
                }
            }
        }
    }

    /// dx (+)= convᵀ(dy, w). dy `[N, Cout, Ho, Wo]`, dx `[N, Cin, H, W]`.
    private static func convolveInput(_ g: ConvGeometry, _ dy: [S], _ w: [S], into dx: inout [S]?,
                                      taps: (taps: SparseConvTaps, sparse: Bool)? = nil) {
        dy.withUnsafeBufferPointer { pg in
            w.withUnsafeBufferPointer { pw in
                into(&dx, count: g.inputShape.reduce(1, *)) {
                    if let taps {
                        ConvKernelChoice.backwardInput(taps.taps, sparse: taps.sparse, dy: Autodiff.base(pg), weight: Autodiff.base(pw), dx: $0, accumulate: $1)
                    } else {
                        Conv2D.backwardInput(g, dy: Autodiff.base(pg), weight: Autodiff.base(pw), dx: $0, accumulate: $1)
                    }
                }
            }
        }
    }

    /// dw (+)= Σₙ dyₙ·im2col(xₙ)ᵀ. dw `[Cout, Cin/groups, k, k]`.
    /// With `taps`, only the kept weights' gradients are computed (the rest stay 0).
    private static func convolveWeight(_ g: ConvGeometry, _ x: [S], _ dy: [S], into dw: inout [S]?,
                                       taps: (taps: SparseConvTaps, sparse: Bool)? = nil) {
        x.withUnsafeBufferPointer { px in
            dy.withUnsafeBufferPointer { pg in
                into(&dw, count: g.weightShape.reduce(1, *), zeroed: true) { out, _ in
                    if let taps {
                        ConvKernelChoice.backwardWeight(taps.taps, sparse: taps.sparse, x: Autodiff.base(px), dy: Autodiff.base(pg), dw: out)
                    } else {
                        Conv2D.backwardWeight(g, x: Autodiff.base(px), dy: Autodiff.base(pg), dw: out)
                    }
                }
            }
        }
    }

    /// y (+)= x·Wᵀ. x `[N, in]`, w `[out, in]`, y `[N, out]`.
    private static func linear(_ l: Linear, batch: Int, _ x: [S], _ w: [S], into y: inout [S]?) {
        x.withUnsafeBufferPointer { px in
            w.withUnsafeBufferPointer { pw in
                into(&y, count: batch * l.outFeatures) {
                    S.gemm(transposeA: false, transposeB: true, m: batch, n: l.outFeatures, k: l.inFeatures, alpha: 1,
                           a: Autodiff.base(px), lda: l.inFeatures, b: Autodiff.base(pw), ldb: l.inFeatures,
                           beta: $1 ? 1 : 0, c: $0, ldc: l.outFeatures)
                }
            }
        }
    }

    /// dx (+)= g·W. g `[N, out]`, w `[out, in]`, dx `[N, in]`.
    private static func linearInput(_ l: Linear, batch: Int, _ g: [S], _ w: [S], into dx: inout [S]?) {
        g.withUnsafeBufferPointer { pg in
            w.withUnsafeBufferPointer { pw in
                into(&dx, count: batch * l.inFeatures) {
                    S.gemm(transposeA: false, transposeB: false, m: batch, n: l.inFeatures, k: l.outFeatures, alpha: 1,
                           a: Autodiff.base(pg), lda: l.outFeatures, b: Autodiff.base(pw), ldb: l.inFeatures,
                           beta: $1 ? 1 : 0, c: $0, ldc: l.inFeatures)
                }
            }
        }
    }

    /// dW (+)= gᵀ·x. x `[N, in]`, g `[N, out]`, dW `[out, in]`.
    private static func linearWeight(_ l: Linear, batch: Int, _ x: [S], _ g: [S], into dw: inout [S]?) {
        g.withUnsafeBufferPointer { pg in
            x.withUnsafeBufferPointer { px in
                into(&dw, count: l.outFeatures * l.inFeatures) {
                    S.gemm(transposeA: true, transposeB: false, m: l.outFeatures, n: l.inFeatures, k: batch, alpha: 1,
                           a: Autodiff.base(pg), lda: l.outFeatures, b: Autodiff.base(px), ldb: l.inFeatures,
                           beta: $1 ? 1 : 0, c: $0, ldc: l.inFeatures)
                }
            }
        }
    }

    /// max(x, 0).
    private static func relu(_ x: [S]) -> [S] {
        x.withUnsafeBufferPointer { px in
            let p = Autodiff.base(px)
            return Autodiff.buffer(x.count) { out in Autodiff.elementwise(x.count) { for i in $0 { out[i] = max(p[i], 0) } } }
        }
    }

    /// g ⊙ [y > 0] (ReLU's backward and tangent; y > 0 ⇔ x > 0).
    private static func maskPositive(_ g: [S], where y: [S]) -> [S] {
        g.withUnsafeBufferPointer { pg in
            y.withUnsafeBufferPointer { py in
                let a = Autodiff.base(pg), r = Autodiff.base(py)
                // Load first: the select vectorises.
                return Autodiff.buffer(g.count) { out in Autodiff.elementwise(g.count) { for i in $0 { let v = a[i]; out[i] = r[i] > 0 ? v : 0 } } }
            }
        }
    }

    /// a + b elementwise.
    private static func sum(_ a: [S], _ b: [S]) -> [S] {
        a.withUnsafeBufferPointer { pa in
            b.withUnsafeBufferPointer { pb in
                let p = Autodiff.base(pa), q = Autodiff.base(pb)
                return Autodiff.buffer(a.count) { out in Autodiff.elementwise(a.count) { for i in $0 { out[i] = p[i] + q[i] } } }
            }
        }
    }

    /// a += b (same length).
    private static func addInPlace(_ a: inout [S], _ b: [S]) {
        a.withUnsafeMutableBufferPointer { pa in
            b.withUnsafeBufferPointer { pb in
                let e = Autodiff.base(pa), s = Autodiff.base(pb)
                Autodiff.elementwise(min(pa.count, pb.count)) { for k in $0 { e[k] += s[k] } }
            }
        }
    }

    private static func withOptional<R>(_ a: [S]?, _ body: (UnsafePointer<S>?) -> R) -> R {
        guard let a else { return body(nil) }
        return a.withUnsafeBufferPointer { body(Autodiff.base($0)) }
    }
}
