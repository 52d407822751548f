/// A model instance: an architecture, its state dict and a mask on every prunable weight.
///
/// The network keeps the prunable weights it was initialised (or loaded) with, `unmasked`,
/// separately from its current masks, so pruning again starts from the same weights instead of
/// from what an earlier prune left: `parameters` = `unmasked` ⊙ `masks` for every prunable
/// weight, always. Every mutation path (init, load, set mask, set parameter) keeps that.
public final class Network: @unchecked Sendable {
    public let architecture: Architecture
    /// State dict keyed by PyTorch name; iterate in `architecture.parameters` order. Prunable
    /// weights are masked (zero where the mask is 0).
    public private(set) var parameters: [String: Tensor] { didSet { version &+= 1 } }
    /// One mask per prunable weight, 1 = kept.
    public private(set) var masks: [String: [UInt8]] { didSet { version &+= 1 } }
    /// Changes whenever a parameter or mask does (prune, train, load, set): a graph made from
    /// the network remembers it and can tell when the network moved on since.
    public private(set) var version = 0
    /// The prunable weights without their masks: as initialised or loaded, with later updates of
    /// kept entries (`setParameter`). What `prune` scores unless asked to continue from the masks.
    public private(set) var unmasked: [String: Tensor]
    /// The compat mode the current masks depend on: set by a prune whose masks differ between
    /// modes (ER), nil when they do not (every other pruner, loaded masks, unpruned).
    public internal(set) var maskCompat: PruneCompat?

    /// A freshly initialised network (SPEC §1): conv/linear weights Kaiming-normal with
    /// std √(2/fan_in), biases 0, BN weight 1 / bias 0, running mean 0 / var 1; all masks 1.
    /// Each parameter draws from its own named stream of `seed`, so the weights are the same
    /// on every machine.
    public init(architecture: Architecture, seed: UInt64) {
        self.architecture = architecture
        var params: [String: Tensor] = [:]
        var masks: [String: [UInt8]] = [:]
        for spec in architecture.parameters {
            switch spec.role {
            case .weight:
                params[spec.name] = Network.kaimingNormal(shape: spec.shape, seed: seed, name: spec.streamName)
                masks[spec.name] = [UInt8](repeating: 1, count: spec.count)
            case .bias, .normBias, .runningMean:
                params[spec.name] = Tensor(zeros: spec.shape)
            case .normWeight, .runningVar:
                params[spec.name] = Tensor(repeating: 1, shape: spec.shape)
            }
        }
        self.parameters = params
        self.masks = masks
        self.unmasked = params.filter { masks[$0.key] != nil }
    }

    private init(architecture: Architecture, parameters: [String: Tensor], masks: [String: [UInt8]], unmasked: [String: Tensor]) {
        self.architecture = architecture; self.parameters = parameters; self.masks = masks; self.unmasked = unmasked
    }

    /// A copy with every mask 1 and the prunable weights as they were before any pruning (the
    /// network a fresh prune scores). Other parameters (biases, BN) are shared values.
    public func unprunedCopy() -> Network {
        var params = parameters
        for (name, t) in unmasked { params[name] = t }
        return Network(architecture: architecture, parameters: params, masks: masks.mapValues { [UInt8](repeating: 1, count: $0.count) },
                       unmasked: unmasked)
    }

    /// Kaiming normal, fan_in mode, gain √2: N(0, 2/fan_in) with fan_in = Π shape[1...].
    public static func kaimingNormal(shape: [Int], seed: UInt64, name: String) -> Tensor {
        let fanIn = shape.dropFirst().reduce(1, *)
        let std = (2.0 / Double(max(fanIn, 1))).squareRoot()
        var rng = SeededGenerator.stream(seed: seed, name: name)
        let count = shape.reduce(1, *)
        var data = [Float](repeating: 0, count: count)
        for i in 0 ..< count { data[i] = Float(rng.normal() * std) }
        return Tensor(shape: shape, data: data)
    }

    // MARK: Reading and writing parameters

    public func parameter(_ name: String) -> Tensor? { parameters[name] }

    /// Replaces a parameter's values; the shape must match. For a prunable weight the kept
    /// entries take the new values and masked entries stay zero (their unmasked values are kept).
    public func setParameter(_ name: String, _ tensor: Tensor) throws {
        guard let old = parameters[name] else { throw ModelError.unknownParameter(name, model: architecture.name) }
        guard old.shape == tensor.shape else {
            throw ModelError.shapeMismatch(name: name, expected: old.shape, got: tensor.shape)
        }
        if let mask = masks[name], var base = unmasked[name] {
            for i in 0 ..< mask.count where mask[i] != 0 { base.data[i] = tensor.data[i] }
            unmasked[name] = base
        }
        parameters[name] = tensor
        applyMask(name)
    }

    /// Replaces the mask of a prunable weight: removed weights become zero, kept weights take
    /// their unmasked values (so a weight an earlier mask removed comes back as it was).
    public func setMask(_ name: String, _ mask: [UInt8]) throws {
        guard let old = masks[name] else { throw ModelError.unknownParameter(name, model: architecture.name) }
        guard old.count == mask.count else {
            throw ModelError.shapeMismatch(name: name, expected: parameters[name]?.shape ?? [old.count], got: [mask.count])
        }
        masks[name] = mask.map { $0 == 0 ? 0 : 1 }
        applyMask(name)
    }

    /// The state dict as the gradient engine (`FirstOrderPass`) takes it: the learnable
    /// parameters — prunable weights effective, w ⊙ m, by the invariant — and the running
    /// statistics, each by name.
    /// - Complexity: O(parameter count) copies.
    public func engineParameters() -> (learnable: [String: [Float]], running: [String: [Float]]) {
        var learnable: [String: [Float]] = [:], running: [String: [Float]] = [:]
        for spec in architecture.parameters {
            guard let t = parameters[spec.name] else { continue }
            if spec.isLearnable { learnable[spec.name] = t.data } else { running[spec.name] = t.data }
        }
        return (learnable, running)
    }

    /// Sets every prunable weight to unmasked ⊙ mask (restores the invariant after any update).
    public func applyMasks() { for name in masks.keys { applyMask(name) } }

    private func applyMask(_ name: String) {
        guard let mask = masks[name], var t = unmasked[name] ?? parameters[name] else { return }
        for i in 0 ..< mask.count where mask[i] == 0 { t.data[i] = 0 }
        parameters[name] = t
    }

    /// Loads a full state dict: every name of the architecture must be present with its shape,
    /// and no unknown name may appear. Nothing changes unless all of it fits. A weight stored
    /// pruned as `X_orig` + `X_mask` or `X` + `X_mask` loads as its effective weight
    /// (TensorFile.foldingPruningMasks).
    public func loadStateDict(_ entries: [(name: String, tensor: SafeTensor)]) throws {
        var incoming: [String: Tensor] = [:]
        for (name, t) in TensorFile.foldingPruningMasks(entries) {
            if name.hasSuffix("num_batches_tracked") { continue }  // PyTorch bookkeeping, not state we model
            guard let spec = architecture.parameters.first(where: { $0.name == name }) else {
                throw ModelError.unknownParameter(name, model: architecture.name)
            }
            guard spec.shape == t.shape else { throw ModelError.shapeMismatch(name: name, expected: spec.shape, got: t.shape) }
            incoming[name] = t.tensor
        }
        if let missing = architecture.parameters.first(where: { incoming[$0.name] == nil }) {
            throw ModelError.missingParameter(missing.name, model: architecture.name)
        }
        parameters = incoming
        unmasked = incoming.filter { masks[$0.key] != nil }
        applyMasks()
    }

    /// Loads one mask per prunable weight (any integer or float type, nonzero = kept).
    public func loadMasks(_ entries: [(name: String, tensor: SafeTensor)]) throws {
        var incoming: [String: [UInt8]] = [:]
        for (name, t) in entries {
            guard let spec = architecture.prunable.first(where: { $0.name == name }) else {
                throw ModelError.unknownParameter(name, model: architecture.name)
            }
            guard spec.shape == t.shape else { throw ModelError.shapeMismatch(name: name, expected: spec.shape, got: t.shape) }
            incoming[name] = t.floats.map { $0 != 0 ? 1 : 0 }
        }
        if let missing = architecture.prunable.first(where: { incoming[$0.name] == nil }) {
            throw ModelError.missingParameter(missing.name, model: architecture.name)
        }
        masks = incoming
        maskCompat = nil
        applyMasks()
    }

    /// Sets every prunable weight's mask from its zero pattern (nonzero = kept), for weights
    /// loaded from an already-pruned checkpoint; returns (kept, prunable) over all of them.
    /// - Complexity: O(prunable weights).
    @discardableResult
    public func setMasksFromWeights() -> (kept: Int, total: Int) {
        for spec in architecture.prunable {
            guard let w = parameters[spec.name] else { continue }
            masks[spec.name] = w.data.map { $0 != 0 ? 1 : 0 }
        }
        maskCompat = nil
        applyMasks()
        return (keptCount, prunableCount)
    }

    /// The state dict in PyTorch order, as F32 tensors.
    public func stateDict() -> [(name: String, tensor: SafeTensor)] {
        architecture.parameters.compactMap { spec in parameters[spec.name].map { (spec.name, SafeTensor($0)) } }
    }

    /// The masks in prunable order, as U8 tensors.
    public func maskDict() -> [(name: String, tensor: SafeTensor)] {
        architecture.prunable.compactMap { spec in masks[spec.name].map { (spec.name, SafeTensor(uint8: $0, shape: spec.shape)) } }
    }

    /// The values of the parameter `spec` names, in the arithmetic `S` of a computation.
    func values<S: NNScalar>(_ spec: ParameterSpec, as _: S.Type = S.self) throws -> [S] {
        guard let t = parameters[spec.name] else { throw ModelError.missingParameter(spec.name, model: architecture.name) }
        return t.data.map { S(Double($0)) }
    }

    // MARK: Counts

    /// All state-dict entries that are learnable (weights, biases, BN affine), as PyTorch counts them.
    public var parameterCount: Int {
        architecture.parameters.filter(\.isLearnable).reduce(0) { $0 + $1.count }
    }
    public var prunableCount: Int { architecture.prunable.reduce(0) { $0 + $1.count } }
    public var keptCount: Int { masks.values.reduce(0) { $0 + $1.reduce(0) { $0 + Int($1) } } }
    public func kept(_ name: String) -> Int { masks[name]?.reduce(0) { $0 + Int($1) } ?? 0 }
}

public enum ModelError: Error, CustomStringConvertible, Equatable {
    case unknownParameter(String, model: String)
    case missingParameter(String, model: String)
    case shapeMismatch(name: String, expected: [Int], got: [Int])

    public var description: String {
        switch self {
        case let .unknownParameter(name, model): return "\(model) has no parameter '\(name)'"
        case let .missingParameter(name, model): return "parameter '\(name)' of \(model) is missing"
        case let .shapeMismatch(name, expected, got):
            return "parameter '\(name)' has shape \(Tensor.describe(got)), expected \(Tensor.describe(expected))"
        }
    }
}
