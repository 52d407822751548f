import Foundation

/// SynFlow (Tanaka et al. 2020), SPEC §2: data-free. Each round scores the alive conv/linear
/// weights and biases on a linearised copy of the network — every state-dict entry replaced
/// by its absolute value (batch-norm affine parameters and running statistics too, as the
/// reference's `abs_()` over the state dict does), evaluation-mode batch norm, masks applied —
/// with R = Σ f(1), f evaluated on one all-ones input, and score = |θ ⊙ ∂R/∂θ|. The driver
/// (`KeepRule.iterativeRemoveLowest`) then removes round(a·n_alive) of the lowest alive scores.
/// `network` itself is never touched, so the signs are "restored" by construction.
///
/// Precision: the synaptic flow is a product of |weights| over the depth, which grows by
/// roughly fan_in·E|w| per layer; on deep networks R and the scores leave Float's range
/// (≈3e38), so `Scalar` is Double by default. The scores are returned as Float; when the
/// largest exceeds Float's range all scores of the round are scaled by one power of two
/// (which keeps their order) so that it fits.
struct SynflowScoring<Scalar: NNScalar>: ScoreFunction {
    let options: SynflowOptions
    var scope: ScoreScope { .weightsAndBiases }
    var keepRule: KeepRule { .iterativeRemoveLowest(rounds: options.rounds) }

    func scores(network: Network, alive: [String: [UInt8]], data: Dataset?, seed: UInt64) throws -> [String: [Float]] {
        try Cancellation.check()
        let architecture = network.architecture
        let model = DifferentiableNetwork<Scalar>(network, parametersRequireGrad: false)
        for (name, p) in model.parameters {
            model.parameters[name] = try Variable(shape: p.shape, values: p.values.map(abs))
        }
        for (name, values) in model.runningStatistics { model.runningStatistics[name] = values.map(abs) }

        let scored = ScoredPruning.scoredParameters(architecture, .weightsAndBiases)
        var leaves: [Variable<Scalar>] = []
        for spec in scored {
            guard let p = model.parameters[spec.name] else { throw ModelError.missingParameter(spec.name, model: architecture.name) }
            // A removed bias has no mask in the forward pass (masks cover weights): zero it here.
            var values = p.values
            if spec.role == .bias, let a = alive[spec.name], a.count == values.count {
                for i in values.indices where a[i] == 0 { values[i] = 0 }
            }
            let leaf = try Variable(shape: p.shape, values: values, requiresGrad: true)
            model.parameters[spec.name] = leaf
            if spec.role == .weight { model.masks[spec.name] = try GradientScoring.maskConstant(alive[spec.name], shape: spec.shape) }
            leaves.append(leaf)
        }

        let inputShape = architecture.nodes.first?.shape ?? []
        let ones = Variable<Scalar>.constant(1, shape: [1] + inputShape)
        let output = try model.forward(ones, train: false)
        let flow = try Autodiff.sum(output)
        let gradients = try Autodiff.grad(of: flow, wrt: leaves)

        var scores: [[Scalar]] = []
        var largest: Scalar = 0
        for (spec, (leaf, g)) in zip(scored, zip(leaves, gradients)) {
            let weightMask = spec.role == .weight ? alive[spec.name] : nil
            var s = [Scalar](repeating: 0, count: leaf.count)
            for i in 0 ..< s.count where weightMask.map({ $0[i] != 0 }) ?? true {
                s[i] = abs(leaf.values[i] * g.values[i])
            }
            largest = max(largest, s.max() ?? 0)
            scores.append(s)
        }
        guard largest.isFinite else {
            throw PruneError.badScores(pruner: "synflow", detail: "the synaptic flow overflowed \(Scalar.self) on \(architecture.name)")
        }
        // Scale by a power of two (exact) only when the largest score would not fit in Float.
        var scale: Scalar = 1
        let floatLimit = Scalar(Double(Float.greatestFiniteMagnitude) / 2)
        while largest * scale > floatLimit { scale /= Scalar(1 << 32) }
        return Dictionary(uniqueKeysWithValues: zip(scored.map(\.name), scores.map { $0.map { Float(($0 * scale).doubleValue) } }))
    }
}
