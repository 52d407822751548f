import Foundation

// Pruning at initialisation (SPEC §2). `prune(network, pruner, sparsity:seed:data:options:)`
// computes one mask per prunable weight, sets them on the network only when everything
// succeeded, and returns a per-layer report.
//
// Two families share the entry point:
// - data-free random pruners (uniform, er, erk, dense), implemented in `RandomPruners.swift`;
// - score-based pruners (snip, grasp, synflow, prospr): a `ScoreFunction` computes saliencies
//   (gradients on `FirstOrderPass`) and its `KeepRule` turns them into masks
//   (`ScoreFunction.swift`).

/// A pruning-at-initialisation method with its hyperparameters (reference defaults).
public enum Pruner: Equatable, Sendable, CustomStringConvertible {
    case snip(SnipOptions = SnipOptions())
    case grasp(GraspOptions = GraspOptions())
    case synflow(SynflowOptions = SynflowOptions())
    case prospr(ProsprOptions = ProsprOptions())
    /// One global random ranking over all conv/linear weights and biases.
    case uniform
    /// Erdős–Rényi: per-layer density ε·Σshape/Πshape.
    case er
    /// Erdős–Rényi-kernel with the iterative dense-layer rule.
    case erk
    /// Keeps every weight.
    case dense

    /// Names as the language spells them, in the order the paper lists them.
    public static let names = ["snip", "grasp", "synflow", "prospr", "uniform", "er", "erk", "dense"]

    /// The pruner called `name` with its reference defaults, or nil for an unknown name.
    public static func named(_ name: String) -> Pruner? {
        switch name.lowercased() {
        case "snip": return .snip()
        case "grasp": return .grasp()
        case "synflow": return .synflow()
        case "prospr": return .prospr()
        case "uniform", "random": return .uniform
        case "er": return .er
        case "erk": return .erk
        case "dense": return .dense
        default: return nil
        }
    }

    public var name: String {
        switch self {
        case .snip: return "snip"
        case .grasp: return "grasp"
        case .synflow: return "synflow"
        case .prospr: return "prospr"
        case .uniform: return "uniform"
        case .er: return "er"
        case .erk: return "erk"
        case .dense: return "dense"
        }
    }

    public var description: String { name }

    /// True for the pruners that read training data (snip, grasp, prospr). Synflow is data-free
    /// but needs gradients.
    public var needsData: Bool {
        switch self {
        case .snip, .grasp, .prospr: return true
        case .synflow, .uniform, .er, .erk, .dense: return false
        }
    }

    /// How the pruner turns scores into masks (score-based pruners only).
    public var keepRule: KeepRule? {
        switch self {
        case .snip: return .keepTopFloorWithTies
        case .grasp: return .removeTopFloorKeepThreshold
        case let .synflow(o): return .iterativeRemoveLowest(rounds: o.rounds)
        case .prospr: return .keepTopCeilExact
        case .uniform, .er, .erk, .dense: return nil
        }
    }

    /// Checks the hyperparameters; throws `PruneError.invalidOption` naming the bad one.
    public func validate() throws {
        func check(_ ok: Bool, _ option: String, _ value: String, _ requirement: String) throws {
            if !ok { throw PruneError.invalidOption(pruner: name, option: option, value: value, requirement: requirement) }
        }
        switch self {
        case let .snip(o):
            try check(o.batch > 0, "batch", "\(o.batch)", "a positive batch size")
        case let .grasp(o):
            try check(o.samplesPerClass > 0, "samples_per_class", "\(o.samplesPerClass)", "a positive count")
            try check(o.temperature.isFinite && o.temperature > 0, "T", "\(o.temperature)", "a positive finite temperature")
        case let .synflow(o):
            try check(o.rounds > 0, "rounds", "\(o.rounds)", "a positive number of rounds")
        case let .prospr(o):
            try check(o.steps > 0, "steps", "\(o.steps)", "a positive number of inner steps")
            try check(o.learningRate.isFinite && o.learningRate > 0, "lr", "\(o.learningRate)", "a positive finite learning rate")
            try check(o.momentum.isFinite && o.momentum >= 0 && o.momentum < 1, "momentum", "\(o.momentum)", "a momentum in [0, 1)")
            try check(o.batch > 0, "batch", "\(o.batch)", "a positive batch size")
        case .uniform, .er, .erk, .dense:
            break
        }
    }

    /// Everything `prune` refuses before any work, in this order: the hyperparameters
    /// (`invalidOption`), the sparsity (`invalidSparsity`), a network without prunable weights,
    /// given data that cannot serve the network (`emptyDataset`, `tooManyClasses`), and dense
    /// at a sparsity other than 0. Front ends call it to blame the right argument before
    /// loading default data.
    public func check(sparsity: Double, network: Network, data: Dataset?) throws {
        try validate()
        try checkPrunable(network, sparsity: sparsity, data: data)
        if case .dense = self, sparsity != 0 { throw PruneError.denseWithSparsity(sparsity) }
    }
}

/// The checks of every prune, whatever the pruner: sparsity in [0, 1), prunable weights, and
/// data, when given, that can serve the network.
private func checkPrunable(_ network: Network, sparsity: Double, data: Dataset?) throws {
    guard sparsity.isFinite, sparsity >= 0, sparsity < 1 else { throw PruneError.invalidSparsity(sparsity) }
    guard !network.architecture.prunable.isEmpty else { throw PruneError.noPrunableWeights(model: network.architecture.name) }
    // Data-free pruners ignore data, but data that cannot serve this network is still refused.
    guard let data else { return }
    guard data.count > 0 else { throw PruneError.emptyDataset(data.name) }
    guard data.classes <= network.architecture.classes else {
        throw PruneError.tooManyClasses(dataset: data.name, classes: data.classes,
                                        model: network.architecture.name, modelClasses: network.architecture.classes)
    }
}

/// SNIP (Lee et al. 2019): one training batch, score |g ⊙ w| normalised by its sum.
public struct SnipOptions: Equatable, Sendable {
    public var batch: Int
    public init(batch: Int = 128) { self.batch = batch }
}

/// GraSP (Wang et al. 2020): Hessian-gradient product on `samplesPerClass` samples per class.
public struct GraspOptions: Equatable, Sendable {
    public var samplesPerClass: Int
    /// Logits are divided by T before the loss.
    public var temperature: Double
    /// Score a Kaiming-re-initialised copy of the network (the reference's default).
    public var reinitialise: Bool
    public init(samplesPerClass: Int = 25, temperature: Double = 200, reinitialise: Bool = true) {
        self.samplesPerClass = samplesPerClass; self.temperature = temperature; self.reinitialise = reinitialise
    }
}

/// SynFlow (Tanaka et al. 2020): data-free iterative synaptic-flow pruning.
public struct SynflowOptions: Equatable, Sendable {
    public var rounds: Int
    public init(rounds: Int = 100) { self.rounds = rounds }
}

/// ProsPr (Alizadeh et al. 2022): meta-gradient through `steps` unrolled SGD steps.
public struct ProsprOptions: Equatable, Sendable {
    public var steps: Int
    public var learningRate: Double
    public var momentum: Double
    public var batch: Int
    public init(steps: Int = 3, learningRate: Double = 0.5, momentum: Double = 0.9, batch: Int = 512) {
        self.steps = steps; self.learningRate = learningRate; self.momentum = momentum; self.batch = batch
    }
}

/// Paper behaviour (default) or the reference implementation's (`compat: reference`).
public enum PruneCompat: String, Equatable, Sendable {
    /// SPEC as written. ER uses the exact ε solving Σ ε·Σshape = k·N (the root the reference's
    /// search approximates); uniform, er and erk keep exactly round(p_l·n_l) weights per layer.
    case paper
    /// ER reproduces the reference's ε search, including its last step past the 5-parameter
    /// tolerance (the loop updates ε once more after the sum it tested was within tolerance);
    /// er and erk draw each weight (kept when U < p_l), uniform ranks weights and biases together.
    case reference
}

/// Where a prune starts.
public enum PruneStart: String, Equatable, Sendable {
    /// From the network's unpruned weights with every mask 1: the new masks replace the old
    /// ones, as if the network had never been pruned (the default).
    case unpruned
    /// From the current masks (iterative pruning): only kept weights are scored and the new
    /// masks keep a subset of them. Score-based pruners only.
    case current
}

public struct PruneOptions: Sendable {
    public var compat: PruneCompat
    /// Replace the masks (`.unpruned`) or prune further from them (`.current`).
    public var from: PruneStart = .unpruned
    /// Put the raw per-weight scores (or, for random pruners, the random draws that decided) in the report.
    public var keepScores: Bool

    public init(compat: PruneCompat = .paper, from: PruneStart = .unpruned, keepScores: Bool = false) {
        self.compat = compat; self.from = from; self.keepScores = keepScores
    }
}

/// What a prune did: per-layer counts and totals (prunable weights only).
public struct PruneReport: Sendable {
    public struct Layer: Equatable, Sendable {
        /// Module name (`layer1.0.conv1`); the weight is `parameter`.
        public var layer: String
        public var parameter: String
        public var params: Int
        public var kept: Int
        public var density: Double { params == 0 ? 0 : Double(kept) / Double(params) }
        /// The keep probability a random pruner used for this layer (uniform, er, erk), else nil.
        public var probability: Double?
    }

    /// The pruner's name (`erk`), or the name given to a custom score function.
    public var pruner: String
    public var sparsity: Double
    public var seed: UInt64
    public var layers: [Layer]
    public var params: Int { layers.reduce(0) { $0 + $1.params } }
    public var kept: Int { layers.reduce(0) { $0 + $1.kept } }
    public var density: Double { params == 0 ? 0 : Double(kept) / Double(params) }
    /// The ER/ERK scale ε that produced the probabilities.
    public var epsilon: Double?
    /// Uniform ranks biases with the weights but masks weights only: how many biases were
    /// ranked and how many of them drew "keep" (weights kept + this = N − round(s·N)).
    public var biasesRanked: Int?
    public var biasesKept: Int?
    /// Raw scores per parameter, when `PruneOptions.keepScores` was set.
    public var scores: [(name: String, tensor: Tensor)]?

    /// The kept count asked for: (1 − sparsity) of the prunable weights.
    public var target: Double { Double(params) * (1 - sparsity) }

    /// How far the kept count may honestly differ from `target`: four binomial standard
    /// deviations of the random pruners' draws (√Σ n·p·(1−p)), plus 0.5 % of the target for the
    /// score pruners' tie rules and for biases ranked with the weights, plus 2 for rounding.
    public var tolerance: Double {
        let variance = layers.reduce(0.0) { sum, layer in
            guard let p = layer.probability else { return sum }
            let q = min(max(p, 0), 1)
            return sum + Double(layer.params) * q * (1 - q)
        }
        return 4 * variance.squareRoot() + 0.005 * target + 2
    }

    /// What the user must know about this result: layers left without any weight (the
    /// network is disconnected there) and a kept count further from the target than `tolerance`.
    public var warnings: [String] {
        var out: [String] = []
        let empty = layers.filter { $0.kept == 0 && $0.params > 0 }.map(\.layer)
        if empty.count == layers.count, !empty.isEmpty {
            out.append("no layer keeps any weight: the network is empty")
        } else if !empty.isEmpty {
            let names = empty.count <= 6 ? empty.joined(separator: ", ") : empty.prefix(5).joined(separator: ", ") + " and \(empty.count - 5) more"
            out.append("\(empty.count == 1 ? "layer" : "layers") \(names) \(empty.count == 1 ? "keeps" : "keep") no weight: the network is cut there and every metric sees a disconnected graph")
        }
        if abs(Double(kept) - target) > tolerance {
            out.append("kept \(kept) weights where sparsity \(sparsity) asks for \(Int(target.rounded())) (beyond the ±\(Int(tolerance.rounded())) this pruner's randomness and tie rules explain); density \(Double(Int((density * 1e4).rounded())) / 1e4), not \(1 - sparsity)")
        }
        return out
    }
}

public enum PruneError: Error, CustomStringConvertible, Equatable {
    case invalidSparsity(Double)
    case invalidOption(pruner: String, option: String, value: String, requirement: String)
    case needsData(pruner: String)
    case emptyDataset(String)
    case tooManyClasses(dataset: String, classes: Int, model: String, modelClasses: Int)
    case denseWithSparsity(Double)
    case noPrunableWeights(model: String)
    case searchDidNotConverge(pruner: String, detail: String)
    case badScores(pruner: String, detail: String)
    case cannotContinue(pruner: String, detail: String)

    public var description: String {
        switch self {
        case let .invalidSparsity(s):
            return "sparsity must be in [0, 1) (the fraction of weights removed), got \(s)"
        case let .invalidOption(pruner, option, value, requirement):
            return "\(pruner): option \(option) = \(value) is invalid; it needs \(requirement)"
        case let .needsData(pruner):
            return "\(pruner) scores weights on training data and none was given"
        case let .emptyDataset(name):
            return "dataset \(name) holds no samples"
        case let .tooManyClasses(dataset, classes, model, modelClasses):
            return "dataset \(dataset) has \(classes) classes but \(model) has \(modelClasses) outputs; build the model for \(classes) classes"
        case let .denseWithSparsity(s):
            return "dense keeps every weight, so its sparsity must be 0, got \(s)"
        case let .noPrunableWeights(model):
            return "\(model) has no conv or linear weights to prune"
        case let .searchDidNotConverge(pruner, detail):
            return "\(pruner): \(detail)"
        case let .badScores(pruner, detail):
            return "\(pruner): \(detail)"
        case let .cannotContinue(pruner, detail):
            return "\(pruner) cannot prune from the current masks: \(detail)"
        }
    }
}

/// Prunes `network` at initialisation to `sparsity` (fraction of prunable weights removed).
///
/// Validates everything first (`Pruner.check`, then data present for data-driven pruners;
/// data-free pruners ignore data), computes every mask, and only then sets the masks (zeroing
/// removed weights). On any error the network is unchanged. The same `seed` gives the same
/// masks on every machine.
/// - Complexity: O(N) for the random pruners (N = prunable weights); score-based pruners add
///   their score function's cost.
@discardableResult
public func prune(_ network: Network, _ pruner: Pruner, sparsity: Double, seed: UInt64 = 0,
                  data: Dataset? = nil, options: PruneOptions = PruneOptions()) throws -> PruneReport {
    try pruner.check(sparsity: sparsity, network: network, data: data)
    if pruner.needsData, data == nil { throw PruneError.needsData(pruner: pruner.name) }
    let start = try startingPoint(network, pruner: pruner.name, scored: pruner.keepRule != nil, sparsity: sparsity, options: options)
    func scored(_ function: any ScoreFunction) throws -> PruneOutcome {
        try ScoredPruning.masks(start.network, function, name: pruner.name, sparsity: sparsity, seed: seed,
                                data: data, keepScores: options.keepScores, current: start.current)
    }

    let outcome: PruneOutcome
    switch pruner {
    case .uniform:
        outcome = RandomPruners.uniform(network.architecture, sparsity: sparsity, seed: seed, compat: options.compat,
                                        keepScores: options.keepScores)
    case .er:
        outcome = try RandomPruners.er(network.architecture, sparsity: sparsity, seed: seed,
                                       compat: options.compat, keepScores: options.keepScores)
    case .erk:
        outcome = RandomPruners.erk(network.architecture, sparsity: sparsity, seed: seed, compat: options.compat,
                                    keepScores: options.keepScores)
    case .dense:
        outcome = RandomPruners.dense(network.architecture)
    case let .snip(o): outcome = try scored(SnipScoring<Float>(options: o))
    case let .grasp(o): outcome = try scored(GraspScoring<Float>(options: o))
    case let .synflow(o): outcome = try scored(SynflowScoring<Double>(options: o))
    case let .prospr(o): outcome = try scored(ProsprScoring<Float>(options: o))
    }
    let report = try commit(outcome, to: network, pruner: pruner.name, sparsity: sparsity, seed: seed)
    switch pruner {
    case .uniform, .er, .erk: network.maskCompat = options.compat  // their masks differ between modes
    default: network.maskCompat = nil
    }
    return report
}

/// The network a pruner scores and, from the current masks, those masks. A fresh prune scores
/// an unpruned copy (every mask 1, the weights as initialised or loaded) so earlier prunes do
/// not leak into the new masks.
private func startingPoint(_ network: Network, pruner: String, scored: Bool, sparsity: Double,
                           options: PruneOptions) throws -> (network: Network, current: [String: [UInt8]]?) {
    switch options.from {
    case .unpruned:
        return (network.masks.values.allSatisfy { !$0.contains(0) } ? network : network.unprunedCopy(), nil)
    case .current:
        guard scored else {
            throw PruneError.cannotContinue(pruner: pruner, detail: "it draws masks at random from the architecture alone, without looking at weights; prune without from: to replace the masks")
        }
        let target = Int((Double(network.prunableCount) * (1 - sparsity)).rounded(.down))
        guard network.keptCount >= target else {
            throw PruneError.cannotContinue(pruner: pruner, detail: "the network keeps \(network.keptCount) of \(network.prunableCount) weights, fewer than the \(target) that sparsity \(sparsity) keeps; it can only prune further")
        }
        return (network, network.masks)
    }
}

/// Prunes with a caller-supplied score function and keep rule (the driver the gradient pruners
/// use). `name` labels errors and the report.
@discardableResult
public func prune(_ network: Network, scoring function: any ScoreFunction, name: String, sparsity: Double,
                  seed: UInt64 = 0, data: Dataset? = nil, options: PruneOptions = PruneOptions()) throws -> PruneReport {
    try checkPrunable(network, sparsity: sparsity, data: data)
    let start = try startingPoint(network, pruner: name, scored: true, sparsity: sparsity, options: options)
    let outcome = try ScoredPruning.masks(start.network, function, name: name, sparsity: sparsity, seed: seed, data: data,
                                          keepScores: options.keepScores, current: start.current)
    let report = try commit(outcome, to: network, pruner: name, sparsity: sparsity, seed: seed)
    network.maskCompat = nil
    return report
}

/// Masks (and optional scores) computed but not yet applied.
struct PruneOutcome {
    var masks: [String: [UInt8]]
    var probabilities: [String: Double] = [:]
    var epsilon: Double?
    var biasesRanked: Int?
    var biasesKept: Int?
    var scores: [(name: String, tensor: Tensor)]?
}

/// Checks every mask against the architecture, then sets them all; builds the report.
private func commit(_ outcome: PruneOutcome, to network: Network, pruner: String, sparsity: Double,
                    seed: UInt64) throws -> PruneReport {
    let prunable = network.architecture.prunable
    for spec in prunable {
        guard let mask = outcome.masks[spec.name], mask.count == spec.count else {
            throw PruneError.badScores(pruner: pruner, detail: "no mask of \(spec.count) entries for \(spec.name)")
        }
    }
    for spec in prunable {
        // Cannot fail: names and sizes were checked above against the same architecture.
        try network.setMask(spec.name, outcome.masks[spec.name] ?? [])
    }
    let layers = prunable.map { spec -> PruneReport.Layer in
        let kept = (outcome.masks[spec.name] ?? []).reduce(0) { $0 + Int($1) }
        let layer = spec.name.hasSuffix(".weight") ? String(spec.name.dropLast(".weight".count)) : spec.name
        return PruneReport.Layer(layer: layer, parameter: spec.name, params: spec.count, kept: kept,
                                 probability: outcome.probabilities[spec.name])
    }
    return PruneReport(pruner: pruner, sparsity: sparsity, seed: seed, layers: layers, epsilon: outcome.epsilon,
                       biasesRanked: outcome.biasesRanked, biasesKept: outcome.biasesKept, scores: outcome.scores)
}

/// Rounds half to even, as Python's `round` (used by torch's pruning amounts) does.
func pythonRound(_ x: Double) -> Int { Int(x.rounded(.toNearestOrEven)) }
