/// A model instance: an architecture, its state dict and a mask on every prunable weight.
///
/// Invariant: wherever `masks[name]![i] == 0`, `parameters[name]!.data[i] == 0`. Every
/// mutation path (init, load, prune, training updates) restores it with `applyMasks()`.
public final class Network: @unchecked Sendable {
    public let architecture: Architecture
    /// State dict keyed by PyTorch name; iterate in `architecture.parameters` order.
    public private(set) var parameters: [String: Tensor]
    /// One mask per prunable weight, 1 = kept.
    public private(set) var masks: [String: [UInt8]]

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
                params[spec.name] = Network.kaimingNormal(shape: spec.shape, seed: seed, name: spec.name)
                masks[spec.name] = [UInt8](repeating: 1, count: spec.count)
            case .bias, .normBias, .runningMean:
                params[spec.name] = Tensor(zeros: spec.shape)
            case .normWeight, .runningVar:
                params[spec.name] = Tensor(repeating: 1, shape: spec.shape)
            }
        }
        self.parameters = params
        self.masks = masks
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

    /// Replaces a parameter's values; the shape must match. Masked entries are zeroed again.
    public func setParameter(_ name: String, _ tensor: Tensor) throws {
        guard let old = parameters[name] else { throw ModelError.unknownParameter(name, model: architecture.name) }
        guard old.shape == tensor.shape else {
            throw ModelError.shapeMismatch(name: name, expected: old.shape, got: tensor.shape)
        }
        parameters[name] = tensor
        applyMask(name)
    }

    /// Replaces the mask of a prunable weight and zeroes the removed weights.
    public func setMask(_ name: String, _ mask: [UInt8]) throws {
        guard let old = masks[name] else { throw ModelError.unknownParameter(name, model: architecture.name) }
        guard old.count == mask.count else {
            throw ModelError.shapeMismatch(name: name, expected: parameters[name]?.shape ?? [old.count], got: [mask.count])
        }
        masks[name] = mask.map { $0 == 0 ? 0 : 1 }
        applyMask(name)
    }

    /// Zeroes every masked weight (restores the invariant after any update).
    public func applyMasks() { for name in masks.keys { applyMask(name) } }

    private func applyMask(_ name: String) {
        guard let mask = masks[name], var t = parameters[name] else { return }
        for i in 0 ..< mask.count where mask[i] == 0 { t.data[i] = 0 }
        parameters[name] = t
    }

    /// Loads a full state dict: every name of the architecture must be present with its shape,
    /// and no unknown name may appear. Nothing changes unless all of it fits.
    public func loadStateDict(_ entries: [(name: String, tensor: SafeTensor)]) throws {
        var incoming: [String: Tensor] = [:]
        for (name, t) in entries {
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
        applyMasks()
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
