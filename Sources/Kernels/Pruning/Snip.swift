/// SNIP (Lee et al. 2019), SPEC §2: one training batch, saliency |∂L/∂m| = |g ⊙ w| of the
/// cross-entropy with training-mode batch norm, taken at masks m = 1.
///
/// The scores returned are the raw saliencies |∂L/∂m| (what the reference exports). The
/// reference divides them by their sum before ranking; a positive scale does not change the
/// ranking, so the keep rule (every score ≥ the ⌊k·N⌋-th largest) runs on the raw values.
/// `Scalar` is the arithmetic (Float in production; Double to measure Float's rounding).
struct SnipScoring<Scalar: NNScalar>: ScoreFunction {
    let options: SnipOptions
    var scope: ScoreScope { .weights }
    var keepRule: KeepRule { .keepTopFloorWithTies }

    func scores(network: Network, alive: [String: [UInt8]], data: Dataset?, seed: UInt64) throws -> [String: [Float]] {
        guard let data else { throw PruneError.needsData(pruner: "snip") }
        let batch = try PrunerData.batches(data, size: options.batch, count: 1, seed: seed)[0]
        return try Self.saliencies(network: network, alive: alive, batch: batch)
    }

    /// |∂L/∂m| = |∂L/∂(w⊙m) ⊙ w| by one forward and backward of the tape-free pass.
    /// Weights already pruned are 0 in `network`, so they score 0 whatever their mask.
    /// - Complexity: one training-mode forward and backward at the batch's size.
    @_specialize(where Scalar == Float)
    @_specialize(where Scalar == Double)
    static func saliencies(network: Network, alive: [String: [UInt8]], batch: Batch) throws -> [String: [Float]] {
        let architecture = network.architecture
        var parameters: [String: [Scalar]] = [:], weights: [String: [Scalar]] = [:]
        for spec in architecture.parameters where spec.isLearnable {
            var values: [Scalar] = try network.values(spec)
            if spec.isPrunable {
                weights[spec.name] = values
                // The effective weight w ⊙ m at the current masks (m = 1 on a fresh network).
                if let a = alive[spec.name], a.count == values.count { for i in values.indices where a[i] == 0 { values[i] = 0 } }
            }
            parameters[spec.name] = values
        }
        let specs = architecture.prunable
        let gradients = try FirstOrderPass<Scalar>.crossEntropyGradient(architecture, parameters: parameters, batch: batch,
                                                                         wanted: Set(specs.map(\.name))).gradients
        var result: [String: [Float]] = [:]
        for spec in specs {
            guard let g = gradients[spec.name], let w = weights[spec.name], g.count == w.count else {
                throw PruneError.badScores(pruner: "snip", detail: "no gradient for \(spec.name)")
            }
            result[spec.name] = zip(g, w).map { Float(abs($0 * $1).doubleValue) }
        }
        return result
    }
}
