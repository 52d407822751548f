/// ProsPr (Alizadeh et al. 2022), SPEC §2, "full" (second-order) meta-gradient as the
/// reference computes it:
///
/// - masks m = 1 on every conv/linear weight; the fast parameters start as p₀ = w ⊙ m for those
///   weights and as copies of every other learnable parameter (biases, batch-norm affine), all
///   of which the inner steps update;
/// - `steps` SGD steps with momentum on the fast parameters, step t on batch t, training-mode
///   batch norm: g_t = ∇L_t(p_t), b_t = μ·b_{t−1} + g_t, p_{t+1} = p_t − lr·b_t. The first
///   buffer is the first gradient *detached* (PyTorch SGD's `clone().detach()`, which the
///   reference's functional SGD copies), so no second-order term flows through g₀;
/// - meta-loss M = L_T(p_T) on the next batch; score = |∂M/∂m|; keep exactly the ⌈k·N⌉ largest.
///
/// How: instead of recording the whole unrolled computation and differentiating it (which
/// holds every step's double-backward graph at once — 9 GB for ResNet-20 at batch 128), the
/// meta-gradient is accumulated backwards through the steps (reverse-mode by hand), with one
/// exact Hessian-vector product per step that has a second-order term:
///
///     p̄ = ∇M(p_T);  b̄ = 0
///     for t = T−1 … 0:  b̄_t = b̄ − lr·p̄;  p̄ += H_t(p_t)·b̄_t  (skipped for t = 0: g₀ is detached);  b̄ = μ·b̄_t
///     ∂M/∂m = p̄ ⊙ w
///
/// This is the same derivative (the chain rule applied in another order), with the memory of
/// one step. The tests check it against a literally unrolled double-backward and finite differences.
struct ProsprScoring<Scalar: NNScalar>: ScoreFunction {
    let options: ProsprOptions
    var scope: ScoreScope { .weights }
    var keepRule: KeepRule { .keepTopCeilExact }

    func scores(network: Network, alive: [String: [UInt8]], data: Dataset?, seed: UInt64) throws -> [String: [Float]] {
        guard let data else { throw PruneError.needsData(pruner: "prospr") }
        let meta = try metaGradients(network: network, alive: alive, data: data, seed: seed)
        return meta.mapValues { $0.map { Float(abs($0).doubleValue) } }
    }

    /// ∂M/∂m for every prunable weight (signed).
    func metaGradients(network: Network, alive: [String: [UInt8]], data: Dataset, seed: UInt64) throws -> [String: [Scalar]] {
        let steps = options.steps
        let batches = try PrunerData.batches(data, size: options.batch, count: steps + 1, seed: seed)
        let architecture = network.architecture
        let model = DifferentiableNetwork<Scalar>(network, parametersRequireGrad: false)
        // The fast parameters already carry w ⊙ m: the forward pass must not multiply by a mask again.
        model.masks = [:]
        let learnable = architecture.parameters.filter { model.parameters[$0.name] != nil }
        let names = learnable.map(\.name)
        let learningRate = Scalar(options.learningRate), momentum = Scalar(options.momentum)

        // p₀: w ⊙ m for prunable weights (m = the alive mask, ones on a fresh network).
        var weightValues: [[Scalar]] = []
        var parameters: [[Scalar]] = []
        for spec in learnable {
            guard let p = model.parameters[spec.name] else { throw ModelError.missingParameter(spec.name, model: architecture.name) }
            weightValues.append(p.values)
            if spec.isPrunable, let a = alive[spec.name], a.count == p.count {
                parameters.append(zip(p.values, a).map { $1 == 0 ? 0 : $0 })
            } else {
                parameters.append(p.values)
            }
        }

        func leaves(_ values: [[Scalar]]) throws -> [Variable<Scalar>] {
            try zip(learnable, values).map { try Variable(shape: $0.shape, values: $1, requiresGrad: true) }
        }
        func loss(_ batch: Batch, _ at: [Variable<Scalar>]) throws -> Variable<Scalar> {
            try model.loss(Variable(converting: batch.images), labels: batch.labels, train: true,
                           overrides: Dictionary(uniqueKeysWithValues: zip(names, at)))
        }

        let progress = Progress(label: "prospr", total: 2 * steps + 1, unit: "passes")
        defer { progress.finish() }

        // Forward through the inner steps, keeping every p_t (parameters only: small).
        var trajectory: [[[Scalar]]] = [parameters]
        var buffer: [[Scalar]] = []
        for t in 0 ..< steps {
            try Cancellation.check()
            let at = try leaves(parameters)
            let gradient = try Autodiff.grad(of: try loss(batches[t], at), wrt: at).map(\.values)
            buffer = buffer.isEmpty || momentum == 0 ? gradient : zip(buffer, gradient).map { b, g in zip(b, g).map { momentum * $0 + $1 } }
            parameters = zip(parameters, buffer).map { p, b in zip(p, b).map { $0 - learningRate * $1 } }
            trajectory.append(parameters)
            progress.advance()
        }

        // Backward through the steps.
        try Cancellation.check()
        let final = try leaves(parameters)
        var parameterAdjoint = try Autodiff.grad(of: try loss(batches[steps], final), wrt: final).map(\.values)
        progress.advance()
        var bufferAdjoint: [[Scalar]] = parameterAdjoint.map { [Scalar](repeating: 0, count: $0.count) }
        for t in stride(from: steps - 1, through: 0, by: -1) {
            try Cancellation.check()
            // b̄_t collects −lr·p̄_{t+1} and the momentum path from b_{t+1}.
            let stepBufferAdjoint = zip(bufferAdjoint, parameterAdjoint).map { b, p in zip(b, p).map { $0 - learningRate * $1 } }
            // g_t = b_t − μ·b_{t−1} is differentiable except the detached first gradient (with momentum).
            if t > 0 || momentum == 0 {
                let at = try leaves(trajectory[t])
                let vector = try zip(learnable, stepBufferAdjoint).map { try Variable(shape: $0.shape, values: $1) }
                let hv = try Autodiff.hessianVectorProduct(of: try loss(batches[t], at), wrt: at, vector: vector).hessianVector
                parameterAdjoint = zip(parameterAdjoint, hv).map { p, h in zip(p, h.values).map { $0 + $1 } }
            }
            bufferAdjoint = stepBufferAdjoint.map { $0.map { momentum * $0 } }
            progress.advance()
        }

        // p₀ = w ⊙ m, so ∂M/∂m = p̄₀ ⊙ w.
        var result: [String: [Scalar]] = [:]
        for (i, spec) in learnable.enumerated() where spec.isPrunable {
            result[spec.name] = zip(parameterAdjoint[i], weightValues[i]).map { $0 * $1 }
        }
        return result
    }
}
