/// Running a `Network` (Float) on the gradient engine, `FirstOrderPass`: forward, loss and
/// gradients for the `forward` / `loss` builtins, training and SNIP-like scores.
///
/// Masks: every prunable weight enters as w ⊙ m, so a masked weight contributes exactly 0 to
/// the forward pass, its gradient with respect to w is exactly 0 (∂(w⊙m)/∂w = m), and
/// ∂L/∂m = g ⊙ w with g = ∂L/∂(w⊙m).
///
/// Batch norm: training mode normalises with the batch's mean and biased variance; evaluation
/// mode uses the running statistics.
public enum Execution {
    /// Logits `[N, classes]`. In training mode the batch statistics are used and the network's
    /// running statistics are updated (PyTorch `model.train(); model(x)`: momentum 0.1, running
    /// variance from the unbiased batch variance); in evaluation mode the running statistics are
    /// used and nothing changes. Nothing is kept for gradients.
    /// - Complexity: one forward kernel per node; memory O(N · the widest live activations).
    public static func forward(_ network: Network, x: Tensor, train: Bool) throws -> Tensor {
        let (pass, batch) = try forwardPass(network, x: x, normalisation: train ? .batch : .running, forBackward: false)
        let logits = try pass.forward(x.data, batch: batch)
        if train {
            for (name, values) in try pass.updatedRunningStatistics() {
                try network.setParameter(name, Tensor(shape: [values.count], data: values))
            }
        }
        return Tensor(shape: [batch, logits.count / batch], data: logits)
    }

    /// Mean cross-entropy with training-mode batch norm; running statistics are left unchanged.
    public static func loss(_ network: Network, x: Tensor, labels: [Int]) throws -> Float {
        let (pass, batch) = try forwardPass(network, x: x, normalisation: .batch, forBackward: false)
        let logits = try pass.forward(x.data, batch: batch)
        return Float(try pass.crossEntropy(logits, labels: labels).loss)
    }

    /// The loss and ∂L/∂θ for every learnable parameter (BN in training mode, running statistics
    /// unchanged). Prunable weights get g ⊙ m, i.e. exactly 0 where masked.
    /// - Complexity: one forward and one backward at the batch's size.
    public static func lossAndGradients(_ network: Network, x: Tensor, labels: [Int])
        throws -> (loss: Float, gradients: [String: Tensor]) {
        let learnable = network.architecture.parameters.filter(\.isLearnable)
        let (loss, effective) = try effectiveGradients(network, x: x, labels: labels, wanted: learnable)
        var gradients: [String: Tensor] = [:]
        for spec in learnable {
            guard var g = effective[spec.name] else { throw ModelError.missingParameter(spec.name, model: network.architecture.name) }
            if spec.isPrunable, let mask = network.masks[spec.name], mask.count == g.count {
                for i in g.indices where mask[i] == 0 { g[i] = 0 }
            }
            gradients[spec.name] = Tensor(shape: spec.shape, data: g)
        }
        return (loss, gradients)
    }

    /// ∂L/∂θ for every learnable parameter; see `lossAndGradients`.
    public static func gradients(_ network: Network, x: Tensor, labels: [Int]) throws -> [String: Tensor] {
        try lossAndGradients(network, x: x, labels: labels).gradients
    }

    /// ∂L/∂m = g ⊙ w for every prunable weight's mask (SNIP's saliency before the absolute value).
    public static func maskGradients(_ network: Network, x: Tensor, labels: [Int]) throws -> [String: Tensor] {
        let prunable = network.architecture.prunable
        let effective = try effectiveGradients(network, x: x, labels: labels, wanted: prunable).gradients
        var result: [String: Tensor] = [:]
        for spec in prunable {
            guard let g = effective[spec.name], let w = network.parameters[spec.name], w.data.count == g.count else {
                throw ModelError.missingParameter(spec.name, model: network.architecture.name)
            }
            result[spec.name] = Tensor(shape: spec.shape, data: zip(g, w.data).map { $0 * $1 })
        }
        return result
    }

    /// The loss and ∂L/∂(w ⊙ m) (∂L/∂θ for the other parameters) named in `wanted`.
    private static func effectiveGradients(_ network: Network, x: Tensor, labels: [Int], wanted: [ParameterSpec])
        throws -> (loss: Float, gradients: [String: [Float]]) {
        let (pass, batch) = try forwardPass(network, x: x, normalisation: .batch, forBackward: true)
        let logits = try pass.forward(x.data, batch: batch)
        let (loss, seed, _) = try pass.crossEntropy(logits, labels: labels)
        let gradients = try pass.backward(seed: seed, wanted: Set(wanted.map(\.name))).gradients
        return (Float(loss), gradients)
    }

    /// A pass over the network's effective weights (w ⊙ m) after checking that x is
    /// `[N] + input shape` with N ≥ 1; returns it with N.
    private static func forwardPass(_ network: Network, x: Tensor, normalisation: FirstOrderPass<Float>.Normalisation,
                                    forBackward: Bool) throws -> (FirstOrderPass<Float>, Int) {
        let architecture = network.architecture
        let inputShape = architecture.nodes.first?.shape ?? []
        guard x.shape.count == inputShape.count + 1, Array(x.shape.dropFirst()) == inputShape, x.shape[0] > 0 else {
            throw NNError.shapeMismatch(operation: "\(architecture.name) forward",
                                        detail: "input \(Tensor.describe(x.shape)), expected N×\(Tensor.describe(inputShape)) with N ≥ 1")
        }
        let (parameters, running) = network.engineParameters()
        let pass = try FirstOrderPass<Float>(architecture, parameters: parameters, runningStatistics: running,
                                             normalisation: normalisation, forBackward: forBackward)
        return (pass, x.shape[0])
    }
}
