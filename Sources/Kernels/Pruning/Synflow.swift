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
///
/// Speed: a round is one forward and one backward of a single image on `FirstOrderPass`, so it
/// costs about its convolutions (no closures recorded per op, no generic per-element work).
struct SynflowScoring<Scalar: NNScalar>: ScoreFunction {
    let options: SynflowOptions
    var scope: ScoreScope { .weightsAndBiases }
    var keepRule: KeepRule { .iterativeRemoveLowest(rounds: options.rounds) }

    func scores(network: Network, alive: [String: [UInt8]], data: Dataset?, seed: UInt64) throws -> [String: [Float]] {
        try Cancellation.check()
        return try Self.scores(network: network, alive: alive)
    }

    /// One round: the linearised network's forward and backward on a tape-free first-order pass.
    /// - Complexity: one forward and one backward of a single image, plus O(N) over the parameters.
    @_specialize(where Scalar == Double)
    @_specialize(where Scalar == Float)
    static func scores(network: Network, alive: [String: [UInt8]]) throws -> [String: [Float]] {
        let architecture = network.architecture
        let scored = ScoredPruning.scoredParameters(architecture, .weightsAndBiases)
        // |θ| for every state-dict entry; scored weights and biases times their alive mask
        // (a removed bias has no mask in the forward pass: it is zeroed here).
        var parameters: [String: [Scalar]] = [:], running: [String: [Scalar]] = [:]
        for spec in architecture.parameters {
            guard let t = network.parameters[spec.name] else { throw ModelError.missingParameter(spec.name, model: architecture.name) }
            var values = [Scalar](unsafeUninitializedCapacity: t.data.count) { out, n in
                t.data.withUnsafeBufferPointer { src in for i in src.indices { out[i] = Scalar(Double(abs(src[i]))) } }
                n = t.data.count
            }
            if spec.role == .weight || spec.role == .bias, let a = alive[spec.name], a.count == values.count {
                for i in values.indices where a[i] == 0 { values[i] = 0 }
            }
            if spec.role == .runningMean || spec.role == .runningVar { running[spec.name] = values } else { parameters[spec.name] = values }
        }

        let pass = try FirstOrderPass<Scalar>(architecture, parameters: parameters, runningStatistics: running, normalisation: .running)
        let inputCount = (architecture.nodes.first?.shape ?? []).reduce(1, *)
        let output = try pass.forward([Scalar](repeating: 1, count: inputCount), batch: 1)
        // R = Σ f(1): the seed is all ones.
        let gradients = try pass.backward(seed: [Scalar](repeating: 1, count: output.count), wanted: Set(scored.map(\.name))).gradients

        // score = |θ ⊙ ∂R/∂θ|; ∂R/∂θ = ∂R/∂(θ⊙m) ⊙ m, so masked entries score 0 (θ⊙m is 0 there).
        var scores: [[Scalar]] = []
        var largest: Scalar = 0
        for spec in scored {
            guard let theta = parameters[spec.name], let g = gradients[spec.name], g.count == theta.count else {
                throw PruneError.badScores(pruner: "synflow", detail: "no gradient for \(spec.name)")
            }
            let s = [Scalar](unsafeUninitializedCapacity: theta.count) { out, n in
                theta.withUnsafeBufferPointer { t in
                    g.withUnsafeBufferPointer { d in
                        for i in 0 ..< t.count { let v = abs(t[i] * d[i]); out[i] = v; largest = max(largest, v) }
                    }
                }
                n = theta.count
            }
            scores.append(s)
        }
        guard largest.isFinite else {
            throw PruneError.badScores(pruner: "synflow", detail: "the synaptic flow overflowed \(Scalar.self) on \(architecture.name)")
        }
        // Scale by a power of two (exact) only when the largest score would not fit in Float.
        var scale: Scalar = 1
        let floatLimit = Scalar(Double(Float.greatestFiniteMagnitude) / 2)
        while largest * scale > floatLimit { scale /= Scalar(1 << 32) }
        var result: [String: [Float]] = [:]
        for (spec, s) in zip(scored, scores) {
            result[spec.name] = [Float](unsafeUninitializedCapacity: s.count) { out, n in
                s.withUnsafeBufferPointer { p in for i in 0 ..< p.count { out[i] = Float((p[i] * scale).doubleValue) } }
                n = s.count
            }
        }
        return result
    }
}
