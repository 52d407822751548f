import Foundation

/// The data-free random pruners of SPEC §2: uniform, er, erk and dense. In the default `.paper`
/// mode each layer keeps exactly round(p_l·n_l) weights (the sparsity asked is the sparsity got,
/// even on a small net); `.reference` keeps the reference's draws (a Bernoulli draw per weight
/// for er/erk, one global ranking over weights and biases for uniform).
///
/// Every random draw comes from a named `SeededGenerator` stream of the seed (one per layer for
/// er/erk, so a layer's mask does not depend on the others), so a seed gives the same masks on
/// every machine.
public enum RandomPruners {
    // MARK: Layer probabilities (pure, exposed for reports and tests)

    /// Σshape / Πshape of a weight, the Erdős–Rényi raw density. Uses the weight's own shape
    /// (`[out, in/groups, kh, kw]`), as the reference does, so a depthwise conv counts in = 1.
    public static func rawDensity(_ shape: [Int]) -> Double {
        Double(shape.reduce(0, +)) / Double(shape.reduce(1, *))
    }

    /// ER's ε and per-layer keep probabilities p = ε·Σshape/Πshape (a p above 1 keeps the layer whole).
    ///
    /// `.paper`: ε = k·N / Σ_l Σshape_l, and a layer whose p would exceed 1 becomes dense with
    /// its excess redistributed over the others exactly as ERK does (so the expected kept
    /// count is k·N; without this ResNet-20 at 0.9 keeps ~26,100 of the 27,090 asked).
    /// `.reference`: p capped at 1 without redistribution, as the reference does, with ε from the reference's search (ε from 10, factor 1 ± g with g = 0.5 shrinking ×0.95
    /// per step, until the sum it tested is within 5 parameters of k·N) *including* the update it
    /// applies after that test, which moves ε by the last factor (about 1.3 % on ResNet-20 at 0.95).
    /// - Complexity: O(L) for L layers, plus the search's steps (≤ 10,000; the reference's loop
    ///   can spin forever when its shrinking steps cannot reach the target, we throw instead).
    public static func erProbabilities(_ shapes: [(name: String, shape: [Int])], sparsity: Double,
                                       compat: PruneCompat) throws -> (epsilon: Double, probabilities: [String: Double]) {
        let keep = 1 - sparsity
        let total = shapes.reduce(0.0) { $0 + Double($1.shape.reduce(1, *)) }
        let target = total * keep
        var epsilon: Double
        switch compat {
        case .paper:
            // Layers whose probability would exceed 1 keep everything and give what they cannot
            // take back to the others (ERK's rule), so the expected kept count is k·N.
            return erkProbabilities(shapes, sparsity: sparsity)
        case .reference:
            let tolerance = 5.0
            epsilon = 10
            var growth = 0.5
            var current = 0.0
            var steps = 0
            while !(current + tolerance > target && current - tolerance < target) {
                guard steps < 10_000 else {
                    throw PruneError.searchDidNotConverge(
                        pruner: "er", detail: "the reference ε search did not come within 5 parameters of \(target) in 10,000 steps; use compat: paper")
                }
                // Summed layer by layer, as the reference does, so rounding matches it.
                current = shapes.reduce(0.0) { $0 + epsilon * Double($1.shape.reduce(0, +)) }
                epsilon *= current > target ? 1 - growth : 1 + growth
                growth *= 0.95
                steps += 1
            }
        }
        var probabilities: [String: Double] = [:]
        for (name, shape) in shapes { probabilities[name] = epsilon * rawDensity(shape) }
        return (epsilon, probabilities)
    }

    /// ERK's ε and per-layer keep probabilities with the reference's iterative dense-layer rule:
    /// ε = (Σ_sparse k·n_l − Σ_dense (1−k)·n_l) / Σ_sparse raw_l·n_l; while ε·max raw > 1, the
    /// layer(s) with the largest raw density become dense (probability 1) and ε is recomputed.
    /// - Complexity: O(L²) for L layers (at most L rounds of O(L)).
    public static func erkProbabilities(_ shapes: [(name: String, shape: [Int])],
                                        sparsity: Double) -> (epsilon: Double, probabilities: [String: Double]) {
        let keep = 1 - sparsity
        var dense = Set<String>()
        var epsilon = 0.0
        while true {
            var rhs = 0.0, divisor = 0.0
            var largest = -Double.infinity
            for (name, shape) in shapes {
                let n = Double(shape.reduce(1, *))
                if dense.contains(name) {
                    rhs -= n * (1 - keep)
                } else {
                    rhs += n * keep
                    let raw = rawDensity(shape)
                    divisor += raw * n
                    largest = max(largest, raw)
                }
            }
            if divisor == 0 { break }  // every layer dense (only at sparsity ≈ 0)
            epsilon = rhs / divisor
            guard largest * epsilon > 1 else { break }
            for (name, shape) in shapes where !dense.contains(name) && rawDensity(shape) == largest { dense.insert(name) }
        }
        var probabilities: [String: Double] = [:]
        for (name, shape) in shapes {
            probabilities[name] = dense.contains(name) ? 1 : epsilon * rawDensity(shape)
        }
        return (epsilon, probabilities)
    }

    // MARK: Masks

    static func weightShapes(_ architecture: Architecture) -> [(name: String, shape: [Int])] {
        architecture.prunable.map { ($0.name, $0.shape) }
    }

    /// uniform. `.paper`: every layer keeps exactly round(k·n_l) of its n_l weights, chosen
    /// uniformly from the layer's own stream, so the sparsity asked is the sparsity got.
    /// `.reference` (SPEC §2, as the reference): one random ranking over all conv/linear weights
    /// and biases (N entries); exactly round(s·N) of them (Python rounding, as torch's pruning
    /// amount) are removed, so the weights' own sparsity is off by the biases kept. Masks cover
    /// weights only.
    /// - Complexity: O(N) time and memory.
    static func uniform(_ architecture: Architecture, sparsity: Double, seed: UInt64, compat: PruneCompat,
                        keepScores: Bool) -> PruneOutcome {
        if compat == .paper {
            let probabilities = Dictionary(architecture.prunable.map { ($0.name, 1 - sparsity) }, uniquingKeysWith: { a, _ in a })
            return exactCountMasks(architecture, probabilities, stream: "prune.uniform", seed: seed, epsilon: nil, keepScores: keepScores)
        }
        let ranked = ScoredPruning.scoredParameters(architecture, .weightsAndBiases)
        let total = ranked.reduce(0) { $0 + $1.count }
        let removed = min(total, max(0, pythonRound(sparsity * Double(total))))
        var rng = SeededGenerator.stream(seed: seed, name: "prune.uniform")
        let (alive, rank) = randomSubset(total, keep: total - removed, &rng, scores: keepScores)
        var outcome = PruneOutcome(masks: [:])
        let keepProbability = Double(total - removed) / Double(max(total, 1))
        var offset = 0
        var biasesKept = 0, biasesRanked = 0
        var scores: [(name: String, tensor: Tensor)] = []
        for spec in ranked {
            let slice = Array(alive[offset ..< offset + spec.count])
            if spec.role == .weight {
                outcome.masks[spec.name] = slice
                outcome.probabilities[spec.name] = keepProbability
            } else {
                biasesRanked += spec.count
                biasesKept += slice.reduce(0) { $0 + Int($1) }
            }
            if keepScores { scores.append((spec.name, Tensor(shape: spec.shape, data: Array(rank[offset ..< offset + spec.count])))) }
            offset += spec.count
        }
        outcome.biasesRanked = biasesRanked
        outcome.biasesKept = biasesKept
        if keepScores { outcome.scores = scores }
        return outcome
    }

    /// A uniformly random subset of `keep` of `total` entries (1 = kept) by a partial
    /// Fisher–Yates shuffle of the entries' indices: the first `prefix` positions of the shuffle
    /// are a uniform subset, taken as the removed entries or (when fewer) the kept ones. With
    /// `scores`, the shuffle goes on to the full permutation (the prefix, hence the subset, is
    /// the same) and each entry scores its position in it, kept entries higher than removed ones
    /// as with every other pruner's scores.
    /// - Complexity: O(total) memory; O(min(keep, total − keep)) draws (O(total) with scores).
    static func randomSubset(_ total: Int, keep: Int, _ rng: inout SeededGenerator, scores: Bool) -> (alive: [UInt8], scores: [Float]) {
        let removed = total - keep
        let pickRemoved = removed <= keep
        let prefix = pickRemoved ? removed : keep
        let shuffled = scores ? total : prefix
        var order = [UInt32](unsafeUninitializedCapacity: total) { buffer, count in
            for i in 0 ..< total { buffer[i] = UInt32(truncatingIfNeeded: i) }
            count = total
        }
        for i in 0 ..< shuffled {
            let j = i + Int(uniformIndex(below: UInt64(total - i), &rng))
            order.swapAt(i, j)
        }
        var alive = [UInt8](repeating: pickRemoved ? 1 : 0, count: total)
        for p in 0 ..< prefix { alive[Int(order[p])] = pickRemoved ? 0 : 1 }
        var rank: [Float] = []
        if scores {
            rank = [Float](repeating: 0, count: total)
            for p in 0 ..< total { rank[Int(order[p])] = Float(pickRemoved ? p : total - 1 - p) }
        }
        return (alive, rank)
    }

    /// er: `.paper` keeps exactly round(p_l·n_l) weights of each layer (a uniform subset from the
    /// layer's own stream); `.reference` keeps each weight when U < p_l, as the reference does.
    /// - Complexity: O(N).
    static func er(_ architecture: Architecture, sparsity: Double, seed: UInt64, compat: PruneCompat,
                   keepScores: Bool) throws -> PruneOutcome {
        let (epsilon, probabilities) = try erProbabilities(weightShapes(architecture), sparsity: sparsity, compat: compat)
        if compat == .paper {
            return exactCountMasks(architecture, probabilities, stream: "prune.er", seed: seed, epsilon: epsilon, keepScores: keepScores)
        }
        return bernoulliMasks(architecture, probabilities, stream: "prune.er", seed: seed, epsilon: epsilon, keepScores: keepScores)
    }

    /// erk: as er with ERK's probabilities.
    /// - Complexity: O(N + L²).
    static func erk(_ architecture: Architecture, sparsity: Double, seed: UInt64, compat: PruneCompat, keepScores: Bool) -> PruneOutcome {
        let (epsilon, probabilities) = erkProbabilities(weightShapes(architecture), sparsity: sparsity)
        if compat == .paper {
            return exactCountMasks(architecture, probabilities, stream: "prune.erk", seed: seed, epsilon: epsilon, keepScores: keepScores)
        }
        return bernoulliMasks(architecture, probabilities, stream: "prune.erk", seed: seed, epsilon: epsilon, keepScores: keepScores)
    }

    /// dense: every mask all ones.
    static func dense(_ architecture: Architecture) -> PruneOutcome {
        var outcome = PruneOutcome(masks: [:])
        for spec in architecture.prunable {
            outcome.masks[spec.name] = [UInt8](repeating: 1, count: spec.count)
            outcome.probabilities[spec.name] = 1
        }
        return outcome
    }

    /// Masks keeping exactly round(p_l·n_l) weights of each layer (Python rounding; p capped to
    /// [0, 1]), a uniform subset drawn from the stream `stream.<layer's stream name>`.
    /// - Complexity: O(N).
    private static func exactCountMasks(_ architecture: Architecture, _ probabilities: [String: Double], stream: String,
                                        seed: UInt64, epsilon: Double?, keepScores: Bool) -> PruneOutcome {
        var outcome = PruneOutcome(masks: [:])
        outcome.epsilon = epsilon
        var scores: [(name: String, tensor: Tensor)] = []
        for spec in architecture.prunable {
            let p = min(max(probabilities[spec.name] ?? 0, 0), 1)
            var rng = SeededGenerator.stream(seed: seed, name: stream + "." + spec.streamName)
            let keep = min(spec.count, max(0, pythonRound(p * Double(spec.count))))
            let (mask, rank) = randomSubset(spec.count, keep: keep, &rng, scores: keepScores)
            outcome.masks[spec.name] = mask
            outcome.probabilities[spec.name] = p
            if keepScores { scores.append((spec.name, Tensor(shape: spec.shape, data: rank))) }
        }
        if keepScores { outcome.scores = scores }
        return outcome
    }

    /// The reference's draw: each weight kept when U < p_l, U uniform in [0, 1) from the layer's
    /// own stream (the kept count is binomial, so a small layer can miss k·n_l by a lot).
    private static func bernoulliMasks(_ architecture: Architecture, _ probabilities: [String: Double], stream: String,
                                       seed: UInt64, epsilon: Double, keepScores: Bool) -> PruneOutcome {
        var outcome = PruneOutcome(masks: [:])
        outcome.epsilon = epsilon
        var scores: [(name: String, tensor: Tensor)] = []
        for spec in architecture.prunable {
            let p = probabilities[spec.name] ?? 0
            var rng = SeededGenerator.stream(seed: seed, name: stream + "." + spec.streamName)
            var mask = [UInt8](repeating: 0, count: spec.count)
            var draws: [Float] = keepScores ? [Float](repeating: 0, count: spec.count) : []
            for i in 0 ..< spec.count {
                let u = rng.uniform()
                if u < p { mask[i] = 1 }
                if keepScores { draws[i] = Float(u) }
            }
            outcome.masks[spec.name] = mask
            outcome.probabilities[spec.name] = min(max(p, 0), 1)
            if keepScores { scores.append((spec.name, Tensor(shape: spec.shape, data: draws))) }
        }
        if keepScores { outcome.scores = scores }
        return outcome
    }

    /// An unbiased integer in [0, bound) (rejection sampling), the same on every platform,
    /// unlike `Int.random(in:using:)` whose algorithm belongs to the standard library.
    static func uniformIndex(below bound: UInt64, _ rng: inout SeededGenerator) -> UInt64 {
        let threshold = (0 &- bound) % bound  // 2^64 mod bound
        while true {
            let x = rng.next()
            if x >= threshold { return x % bound }
        }
    }
}
