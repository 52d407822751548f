import Foundation
@testable import Kernels

/// The reference tape's view of a `Network`: every learnable parameter a leaf `Variable`, masks
/// multiplied in (w ⊙ m) and optionally leaves themselves (∂L/∂m), batch norm in training
/// (batch statistics, optionally updating the running ones as PyTorch does) or evaluation mode.
/// The tests check the library's `FirstOrderPass` and `Execution` against it.
final class DifferentiableNetwork<S: NNScalar> {
    let architecture: Architecture
    /// Learnable parameters by state-dict name: conv/linear weights and biases, BN weight and bias.
    var parameters: [String: Variable<S>]
    /// A 0/1 mask per prunable weight. Constants unless created with `masksRequireGrad`.
    var masks: [String: Variable<S>]
    /// `running_mean` and `running_var` by state-dict name.
    var runningStatistics: [String: [S]]

    /// Copies a network's state. Parameters are leaves that require a gradient when asked; masks
    /// likewise (ProsPr and SNIP differentiate with respect to masks).
    @_specialize(where S == Float)
    @_specialize(where S == Double)
    init(_ network: Network, parametersRequireGrad: Bool = true, masksRequireGrad: Bool = false) {
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
    var prunableWeights: [(name: String, variable: Variable<S>)] {
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
    func forward(_ x: Variable<S>, train: Bool, updateRunningStatistics: Bool = false,
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
                y = try Autodiff.maxPool2d(inputs[0], pool: k)
            case let .avgPool(k):
                y = try Autodiff.avgPool2d(inputs[0], pool: k)
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
    func loss(_ x: Variable<S>, labels: [Int], train: Bool = true, updateRunningStatistics: Bool = false,
                     overrides: [String: Variable<S>] = [:]) throws -> Variable<S> {
        let logits = try forward(x, train: train, updateRunningStatistics: updateRunningStatistics, overrides: overrides)
        return try Autodiff.crossEntropy(logits, labels: labels)
    }
}
