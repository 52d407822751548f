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
/// one step. Each H_t·b̄_t is computed forward-over-reverse (`FirstOrderPass` with tangents:
/// the directional derivative of the gradient), which needs the activations and their tangents
/// of one step — about twice a gradient's memory — rather than a recorded double-backward graph
/// (8.75 GB for ResNet-20 at batch 512). The tests check it against a literally unrolled
/// double-backward on the tape and finite differences.
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
    /// - Complexity: `steps` + 1 gradients and `steps` − 1 Hessian-vector products (`steps` with
    ///   zero momentum) at batch `options.batch`; memory of one step's activations and tangents.
    @_specialize(where Scalar == Float)
    @_specialize(where Scalar == Double)
    func metaGradients(network: Network, alive: [String: [UInt8]], data: Dataset, seed: UInt64) throws -> [String: [Scalar]] {
        let steps = options.steps
        let batches = try PrunerData.batches(data, size: options.batch, count: steps + 1, seed: seed)
        let architecture = network.architecture
        // The learnable parameters (everything but running statistics); the fast parameters
        // already carry w ⊙ m, so the pass multiplies by no mask.
        let learnable = architecture.parameters.filter(\.isLearnable)
        let names = learnable.map(\.name)
        let learningRate = Scalar(options.learningRate), momentum = Scalar(options.momentum)

        // p₀: w ⊙ m for prunable weights (m = the alive mask, ones on a fresh network).
        var weightValues: [[Scalar]] = []
        var parameters: [[Scalar]] = []
        for spec in learnable {
            let values: [Scalar] = try network.values(spec)
            weightValues.append(values)
            if spec.isPrunable, let a = alive[spec.name], a.count == values.count {
                parameters.append(zip(values, a).map { $1 == 0 ? 0 : $0 })
            } else {
                parameters.append(values)
            }
        }

        /// ∇L_batch(at), and H(at)·vector when a vector is given (training-mode batch norm).
        func gradient(_ batch: Batch, at: [[Scalar]], vector: [[Scalar]]? = nil) throws -> (gradient: [[Scalar]], hessianVector: [[Scalar]]) {
            let (g, hv) = try FirstOrderPass<Scalar>.crossEntropyGradient(
                architecture, parameters: Dictionary(uniqueKeysWithValues: zip(names, at)), batch: batch,
                tangents: vector.map { Dictionary(uniqueKeysWithValues: zip(names, $0)) }, wanted: Set(names))
            let zeros = { (spec: ParameterSpec) in [Scalar](repeating: 0, count: spec.count) }
            return (learnable.map { g[$0.name] ?? zeros($0) }, vector == nil ? [] : learnable.map { hv[$0.name] ?? zeros($0) })
        }

        let progress = Progress.begin("prospr", total: 2 * steps + 1, unit: "passes")
        defer { progress.finish() }

        // Forward through the inner steps, keeping every p_t (parameters only: small).
        var trajectory: [[[Scalar]]] = [parameters]
        var buffer: [[Scalar]] = []
        for t in 0 ..< steps {
            try Cancellation.check()
            let g = try gradient(batches[t], at: parameters).gradient
            buffer = buffer.isEmpty || momentum == 0 ? g : zip(buffer, g).map { b, g in zip(b, g).map { momentum * $0 + $1 } }
            parameters = zip(parameters, buffer).map { p, b in zip(p, b).map { $0 - learningRate * $1 } }
            trajectory.append(parameters)
            progress.advance()
        }

        // Backward through the steps.
        try Cancellation.check()
        var parameterAdjoint = try gradient(batches[steps], at: parameters).gradient
        progress.advance()
        var bufferAdjoint: [[Scalar]] = parameterAdjoint.map { [Scalar](repeating: 0, count: $0.count) }
        for t in stride(from: steps - 1, through: 0, by: -1) {
            try Cancellation.check()
            // b̄_t collects −lr·p̄_{t+1} and the momentum path from b_{t+1}.
            let stepBufferAdjoint = zip(bufferAdjoint, parameterAdjoint).map { b, p in zip(b, p).map { $0 - learningRate * $1 } }
            // g_t = b_t − μ·b_{t−1} is differentiable except the detached first gradient (with momentum).
            if t > 0 || momentum == 0 {
                let hv = try gradient(batches[t], at: trajectory[t], vector: stepBufferAdjoint).hessianVector
                parameterAdjoint = zip(parameterAdjoint, hv).map { p, h in zip(p, h).map { $0 + $1 } }
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
