/// Running an `Architecture` with autodiff: the differentiable view of a `Network` that pruners
/// use, and the plain forward / loss / gradients entry points.
///
/// Masks: every prunable weight enters the computation as w ⊙ m, so a masked weight contributes
/// exactly 0 to the forward pass, its gradient with respect to w is exactly 0 (∂(w⊙m)/∂w = m),
/// and ∂L/∂m = g ⊙ w is available for SNIP-like scores by making the masks leaves.
///
/// Batch norm: training mode normalises with the batch's mean and biased variance; when asked it
/// also updates the running statistics as PyTorch does (momentum 0.1, running_var from the
/// *unbiased* batch variance). Evaluation mode uses the running statistics.
public final class DifferentiableNetwork<S: NNScalar> {
    public let architecture: Architecture
    /// Learnable parameters by state-dict name: conv/linear weights and biases, BN weight and bias.
    public var parameters: [String: Variable<S>]
    /// A 0/1 mask per prunable weight. Constants unless created with `masksRequireGrad`.
    public var masks: [String: Variable<S>]
    /// `running_mean` and `running_var` by state-dict name.
    public var runningStatistics: [String: [S]]

    /// Copies a network's state. Parameters are leaves that require a gradient when asked; masks
    /// likewise (ProsPr and SNIP differentiate with respect to masks).
    @_specialize(where S == Float)
    @_specialize(where S == Double)
    public init(_ network: Network, parametersRequireGrad: Bool = true, masksRequireGrad: Bool = false) {
        architecture = network.architecture
        var parameters: [String: Variable<S>] = [:], masks: [String: Variable<S>] = [:], running: [String: [S]] = [:]
        for spec in network.architecture.parameters {
            guard let t = network.parameters[spec.name] else { continue }
            switch spec.role {
            case .runningMean, .runningVar:
                running[spec.name] = t.data.map { S(Double($0)) }
            default:
                parameters[spec.name] = Variable(converting: t, requiresGrad: parametersRequireGrad)
            }
            if spec.isPrunable, let m = network.masks[spec.name] {
                masks[spec.name] = Variable(uncheckedShape: spec.shape, values: m.map { S(Double($0)) }, node: nil)
                    .leaf(requiresGrad: masksRequireGrad)
            }
        }
        self.parameters = parameters; self.masks = masks; self.runningStatistics = running
    }

    /// The prunable weights in architecture order, as (name, Variable).
    public var prunableWeights: [(name: String, variable: Variable<S>)] {
        architecture.prunable.compactMap { spec in parameters[spec.name].map { (spec.name, $0) } }
    }

    /// Logits `[N, classes]` of input x `[N] + input shape`.
    /// - Parameters:
    ///   - train: training-mode batch norm (batch statistics) instead of running statistics.
    ///   - updateRunningStatistics: in training mode, fold the batch statistics into
    ///     `runningStatistics` (PyTorch's behaviour for a forward in `train()` mode).
    ///   - overrides: Variables to use instead of `parameters` for some names (fast weights of
    ///     unrolled SGD steps); prunable overrides are still multiplied by their mask.
    @_specialize(where S == Float)
    @_specialize(where S == Double)
    public func forward(_ x: Variable<S>, train: Bool, updateRunningStatistics: Bool = false,
                        overrides: [String: Variable<S>] = [:]) throws -> Variable<S> {
        let inputShape = architecture.nodes.first?.shape ?? []
        guard x.shape.count == inputShape.count + 1, Array(x.shape.dropFirst()) == inputShape, x.shape[0] > 0 else {
            throw NNError.shapeMismatch(operation: "\(architecture.name) forward",
                                        detail: "input \(Tensor.describe(x.shape)), expected N×\(Tensor.describe(inputShape)) with N ≥ 1")
        }
        if let unknown = overrides.keys.first(where: { parameters[$0] == nil }) {
            throw ModelError.unknownParameter(unknown, model: architecture.name)
        }
        let batch = x.shape[0]
        // Drop each value after its last reader so evaluation without gradients stays small.
        var lastUse = [Int](repeating: -1, count: architecture.nodes.count)
        for node in architecture.nodes { for i in node.inputs { lastUse[i] = max(lastUse[i], node.id) } }
        lastUse[architecture.output] = Int.max
        var values: [Int: Variable<S>] = [:]

        func parameter(_ name: String) throws -> Variable<S> {
            guard let p = overrides[name] ?? parameters[name] else { throw ModelError.missingParameter(name, model: architecture.name) }
            return p
        }
        func weight(_ name: String) throws -> Variable<S> {
            let w = try parameter(name)
            guard let m = masks[name] else { return w }
            return try Autodiff.multiply(w, m)
        }
        func addBias(_ y: Variable<S>, _ name: String) throws -> Variable<S> {
            let b = try parameter(name)
            return try Autodiff.channelAffine(y, scale: .constant(1, shape: b.shape), shift: b)
        }

        for node in architecture.nodes {
            let inputs = try node.inputs.map { i -> Variable<S> in
                guard let v = values[i] else {
                    throw NNError.invalidArgument(operation: "\(architecture.name) forward", detail: "node \(node.id) reads node \(i) before it is computed")
                }
                return v
            }
            let y: Variable<S>
            switch node.op {
            case .input:
                y = x
            case let .conv(c):
                var out = try Autodiff.conv2d(inputs[0], try weight(node.name + ".weight"), stride: c.stride,
                                              padding: c.padding, groups: c.groups)
                if c.bias { out = try addBias(out, node.name + ".bias") }
                y = out
            case let .linear(l):
                var out = try Autodiff.matmul(inputs[0], try weight(node.name + ".weight"), transposeB: true)
                if l.bias { out = try addBias(out, node.name + ".bias") }
                y = out
            case .batchNorm:
                let gamma = try parameter(node.name + ".weight"), beta = try parameter(node.name + ".bias")
                let meanName = node.name + ".running_mean", varName = node.name + ".running_var"
                guard let runningMean = runningStatistics[meanName], let runningVar = runningStatistics[varName] else {
                    throw ModelError.missingParameter(meanName, model: architecture.name)
                }
                if train {
                    let (out, mean, invStd) = try Autodiff.batchNorm(inputs[0], gamma: gamma, beta: beta)
                    if updateRunningStatistics {
                        var rm = runningMean, rv = runningVar
                        let count = inputs[0].count / gamma.count
                        rm.withUnsafeMutableBufferPointer { pm in
                            rv.withUnsafeMutableBufferPointer { pv in
                                BatchNorm.updateRunningStatistics(mean: mean, invStd: invStd, count: count, channels: gamma.count,
                                                                  runningMean: Autodiff.base(pm), runningVar: Autodiff.base(pv))
                            }
                        }
                        runningStatistics[meanName] = rm; runningStatistics[varName] = rv
                    }
                    y = out
                } else {
                    // y = x·γσ⁻¹ + (β − μγσ⁻¹), σ from the running variance; γ and β stay differentiable.
                    let invStd = runningVar.map { 1 / ($0 + S(BatchNorm.epsilon)).squareRoot() }
                    let scale = try Autodiff.multiply(gamma, Variable(uncheckedShape: gamma.shape, values: invStd, node: nil))
                    let shift = try Autodiff.subtract(beta, try Autodiff.multiply(scale, Variable(uncheckedShape: gamma.shape, values: runningMean, node: nil)))
                    y = try Autodiff.channelAffine(inputs[0], scale: scale, shift: shift)
                }
            case .relu:
                y = try Autodiff.relu(inputs[0])
            case let .maxPool(k):
                y = try Autodiff.maxPool2d(inputs[0], kernel: k)
            case let .avgPool(k):
                y = try Autodiff.avgPool2d(inputs[0], kernel: k)
            case .flatten:
                y = try Autodiff.reshape(inputs[0], to: [batch, inputs[0].count / batch])
            case .add:
                y = try Autodiff.add(inputs[0], inputs[1])
            }
            values[node.id] = y
            for i in node.inputs where lastUse[i] == node.id { values[i] = nil }
        }
        guard let logits = values[architecture.output] else {
            throw NNError.invalidArgument(operation: "\(architecture.name) forward", detail: "architecture has no output")
        }
        return logits
    }

    /// Mean cross-entropy of the logits against `labels` (training-mode BN unless `train` is false).
    @_specialize(where S == Float)
    @_specialize(where S == Double)
    public func loss(_ x: Variable<S>, labels: [Int], train: Bool = true, updateRunningStatistics: Bool = false,
                     overrides: [String: Variable<S>] = [:]) throws -> Variable<S> {
        let logits = try forward(x, train: train, updateRunningStatistics: updateRunningStatistics, overrides: overrides)
        return try Autodiff.crossEntropy(logits, labels: labels)
    }
}

/// Plain entry points on a `Network` (Float), for training, evaluation and SNIP-like scores.
public enum Execution {
    /// Logits `[N, classes]`. In training mode the batch statistics are used and the network's
    /// running statistics are updated (PyTorch `model.train(); model(x)`); in evaluation mode the
    /// running statistics are used and nothing changes. Nothing is recorded for gradients.
    public static func forward(_ network: Network, x: Tensor, train: Bool) throws -> Tensor {
        let model = DifferentiableNetwork<Float>(network, parametersRequireGrad: false)
        let logits = try model.forward(Variable(x), train: train, updateRunningStatistics: train)
        if train { try writeRunningStatistics(model, into: network) }
        return logits.tensor
    }

    /// Mean cross-entropy with training-mode batch norm; running statistics are left unchanged.
    public static func loss(_ network: Network, x: Tensor, labels: [Int]) throws -> Float {
        let model = DifferentiableNetwork<Float>(network, parametersRequireGrad: false)
        return try model.loss(Variable(x), labels: labels).values.first ?? .nan
    }

    /// The loss and ∂L/∂θ for every learnable parameter (BN in training mode, running statistics
    /// unchanged). Prunable weights get g ⊙ m, i.e. exactly 0 where masked.
    public static func lossAndGradients(_ network: Network, x: Tensor, labels: [Int])
        throws -> (loss: Float, gradients: [String: Tensor]) {
        let model = DifferentiableNetwork<Float>(network, parametersRequireGrad: true)
        let loss = try model.loss(Variable(x), labels: labels)
        let names = network.architecture.parameters.map(\.name).filter { model.parameters[$0] != nil }
        let grads = try Autodiff.grad(of: loss, wrt: names.compactMap { model.parameters[$0] })
        return (loss.values.first ?? .nan, Dictionary(uniqueKeysWithValues: zip(names, grads.map(\.tensor))))
    }

    /// ∂L/∂θ for every learnable parameter; see `lossAndGradients`.
    public static func gradients(_ network: Network, x: Tensor, labels: [Int]) throws -> [String: Tensor] {
        try lossAndGradients(network, x: x, labels: labels).gradients
    }

    /// ∂L/∂m = g ⊙ w for every prunable weight's mask (SNIP's saliency before the absolute value).
    public static func maskGradients(_ network: Network, x: Tensor, labels: [Int]) throws -> [String: Tensor] {
        let model = DifferentiableNetwork<Float>(network, parametersRequireGrad: false, masksRequireGrad: true)
        let loss = try model.loss(Variable(x), labels: labels)
        let names = network.architecture.prunable.map(\.name).filter { model.masks[$0] != nil }
        let grads = try Autodiff.grad(of: loss, wrt: names.compactMap { model.masks[$0] })
        return Dictionary(uniqueKeysWithValues: zip(names, grads.map(\.tensor)))
    }

    /// Copies a differentiable network's running statistics back into `network`.
    public static func writeRunningStatistics(_ model: DifferentiableNetwork<Float>, into network: Network) throws {
        for (name, values) in model.runningStatistics {
            try network.setParameter(name, Tensor(shape: [values.count], data: values))
        }
    }
}
