import Foundation

/// Which parameters a score function scores.
public enum ScoreScope: Equatable, Sendable {
    /// Every prunable (conv/linear) weight.
    case weights
    /// Conv/linear weights and their biases ranked together (synflow); masks still cover weights only.
    case weightsAndBiases
}

/// How scores become masks, each exactly as the reference decides it (SPEC §2).
/// N = number of scored entries, k = 1 − s.
public enum KeepRule: Equatable, Sendable {
    /// snip: keep every score ≥ the ⌊k·N⌋-th largest (ties at the threshold kept).
    case keepTopFloorWithTies
    /// grasp: threshold = the ⌊s·N⌋-th largest; keep every score ≤ threshold.
    case removeTopFloorKeepThreshold
    /// prospr: keep exactly the ⌈k·N⌉ largest.
    case keepTopCeilExact
    /// synflow: `rounds` rounds, each rescoring the alive entries and removing exactly
    /// round(a·n_alive) of the lowest, a = 1 − k^(1/rounds).
    case iterativeRemoveLowest(rounds: Int)
}

/// The seam for score-based pruners. An implementation computes saliencies; the driver
/// (`ScoredPruning.masks`) applies the keep rule, validates, and builds masks.
///
/// Implementations must leave `network` unchanged (work on a copy when they need to alter
/// weights, as synflow's |θ| linearisation and grasp's re-initialisation do).
public protocol ScoreFunction {
    var scope: ScoreScope { get }
    var keepRule: KeepRule { get }
    /// One score per entry of every scored parameter, keyed by parameter name, in the
    /// parameter's row-major order. `alive` holds the current masks of the scored parameters
    /// (all ones except between synflow rounds); `seed` fixes any random choice (batches, re-init).
    func scores(network: Network, alive: [String: [UInt8]], data: Dataset?, seed: UInt64) throws -> [String: [Float]]
}

/// Turns a score function's output into masks with its keep rule.
public enum ScoredPruning {
    /// The scored parameters of `architecture` for `scope`, in state-dict order.
    public static func scoredParameters(_ architecture: Architecture, _ scope: ScoreScope) -> [ParameterSpec] {
        architecture.parameters.filter { scope == .weights ? $0.role == .weight : ($0.role == .weight || $0.role == .bias) }
    }

    /// Runs `function` and its keep rule; returns the weight masks without touching `network`.
    /// With `current` masks (iterative pruning), weights those masks removed stay removed: they
    /// rank below every kept weight, and the keep count is still `sparsity` of all weights.
    /// - Complexity: O(N) per scoring call plus the score function's cost (one call, or
    ///   `rounds` calls for the iterative rule).
    static func masks(_ network: Network, _ function: any ScoreFunction, name: String, sparsity: Double, seed: UInt64,
                      data: Dataset?, keepScores: Bool, current: [String: [UInt8]]? = nil) throws -> PruneOutcome {
        let specs = scoredParameters(network.architecture, function.scope)
        let total = specs.reduce(0) { $0 + $1.count }
        var keep = 1 - sparsity
        var alive = [UInt8](repeating: 1, count: total)
        var last: [Float] = []
        // Entries the current masks removed (biases are never masked).
        var removed = [Bool](repeating: false, count: total)
        if let current {
            var offset = 0
            for spec in specs {
                if let mask = current[spec.name] { for i in 0 ..< spec.count where mask[i] == 0 { removed[offset + i] = true } }
                offset += spec.count
            }
        }
        let hasRemoved = removed.contains(true)
        /// Removed entries rank last for a rule that keeps the largest scores, first for GraSP's.
        func ranked(_ scores: [Float], removedScore: Float) -> [Float] {
            guard hasRemoved else { return scores }
            var out = scores
            for i in 0 ..< out.count where removed[i] { out[i] = removedScore }
            return out
        }

        func score(_ alive: [UInt8]) throws -> [Float] {
            var aliveByName: [String: [UInt8]] = [:]
            var offset = 0
            for spec in specs {
                aliveByName[spec.name] = Array(alive[offset ..< offset + spec.count])
                offset += spec.count
            }
            let raw = try function.scores(network: network, alive: aliveByName, data: data, seed: seed)
            var flat: [Float] = []
            flat.reserveCapacity(total)
            for spec in specs {
                guard let values = raw[spec.name] else {
                    throw PruneError.badScores(pruner: name, detail: "the score function gave no scores for \(spec.name)")
                }
                guard values.count == spec.count else {
                    throw PruneError.badScores(pruner: name, detail: "\(spec.name) got \(values.count) scores for \(spec.count) entries")
                }
                if let bad = values.firstIndex(where: { !$0.isFinite }) {
                    throw PruneError.badScores(pruner: name, detail: "score \(values[bad]) at entry \(bad) of \(spec.name) is not finite")
                }
                flat += values
            }
            return flat
        }

        switch function.keepRule {
        case .keepTopFloorWithTies:
            last = try score(alive)
            alive = ScoreSelection.keepAtLeastKthLargest(ranked(last, removedScore: -.greatestFiniteMagnitude),
                                                         k: Int((Double(total) * keep).rounded(.down)))
        case .removeTopFloorKeepThreshold:
            last = try score(alive)
            alive = ScoreSelection.keepAtMostRthLargest(ranked(last, removedScore: .greatestFiniteMagnitude),
                                                        r: Int((Double(total) * (1 - keep)).rounded(.down)))
        case .keepTopCeilExact:
            last = try score(alive)
            alive = ScoreSelection.keepLargest(ranked(last, removedScore: -.greatestFiniteMagnitude),
                                               exactly: Int((Double(total) * keep).rounded(.up)))
        case let .iterativeRemoveLowest(rounds):
            guard rounds > 0 else {
                throw PruneError.invalidOption(pruner: name, option: "rounds", value: "\(rounds)", requirement: "a positive number of rounds")
            }
            if hasRemoved {
                // Start from the current masks; the rounds shrink what is alive to keep·total.
                for i in 0 ..< total where removed[i] { alive[i] = 0 }
                let aliveCount = alive.reduce(0) { $0 + Int($1) }
                keep = aliveCount == 0 ? 0 : min(1, keep * Double(total) / Double(aliveCount))
            }
            let perRound = 1 - Foundation.pow(keep, 1 / Double(rounds))
            let progress = Progress.begin(name, total: rounds, unit: "rounds")
            defer { progress.finish() }
            for _ in 1 ... rounds {
                try Cancellation.check()
                last = try score(alive)
                let aliveCount = alive.reduce(0) { $0 + Int($1) }
                ScoreSelection.removeSmallest(last, alive: &alive, count: pythonRound(perRound * Double(aliveCount)))
                progress.advance()
            }
        }

        for i in 0 ..< total where removed[i] { alive[i] = 0 }
        var outcome = PruneOutcome(masks: [:])
        var scores: [(name: String, tensor: Tensor)] = []
        var offset = 0
        for spec in specs {
            if spec.role == .weight { outcome.masks[spec.name] = Array(alive[offset ..< offset + spec.count]) }
            if keepScores { scores.append((spec.name, Tensor(shape: spec.shape, data: Array(last[offset ..< offset + spec.count])))) }
            offset += spec.count
        }
        if keepScores { outcome.scores = scores }
        return outcome
    }
}

extension FirstOrderPass {
    /// What snip, grasp and prospr each need of a batch: the gradient of its training-mode
    /// cross-entropy (logits divided by `temperature`) at `parameters` for the parameters named
    /// in `wanted` and, given parameter tangents v, the tangent of that gradient, H·v (empty
    /// without tangents). Weights are the effective w ⊙ m, as `FirstOrderPass` takes them.
    /// - Complexity: one forward and one backward at the batch's size (about twice the work and
    ///   memory with tangents).
    @_specialize(where S == Float)
    @_specialize(where S == Double)
    static func crossEntropyGradient(_ architecture: Architecture, parameters: [String: [S]], batch: Batch, temperature: S = 1,
                                     tangents: [String: [S]]? = nil, wanted: Set<String>) throws
        -> (gradients: [String: [S]], hessianVector: [String: [S]]) {
        let pass = try FirstOrderPass(architecture, parameters: parameters, runningStatistics: [:], normalisation: .batch)
        let logits = try pass.forward(batch.images.data.map { S(Double($0)) }, batch: batch.labels.count, parameterTangents: tangents)
        let (_, seed, seedTangent) = try pass.crossEntropy(logits, labels: batch.labels, temperature: temperature)
        let (gradients, hessianVector) = try pass.backward(seed: seed, seedTangent: seedTangent, wanted: wanted)
        return (gradients, hessianVector)
    }
}
