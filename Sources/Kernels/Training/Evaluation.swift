import Foundation

/// Accuracy and mean loss of a network in evaluation mode (batch norm with its running
/// statistics), as PyTorch's `model.eval()` + `torch.no_grad()` test loop computes them.
public struct EvaluationResult: Sendable, Equatable {
    /// Fraction of samples whose largest logit is their label.
    public var accuracy: Double
    /// Mean cross-entropy over all samples.
    public var loss: Double
    /// Samples evaluated.
    public var count: Int
}

public enum Evaluation {
    /// Samples per forward when the dataset is not pre-batched (results do not depend on it
    /// beyond rounding: evaluation-mode batch norm treats every sample on its own).
    public static let batchSize = 256

    /// Evaluates `network` on `data` (every sample once, in order, never augmented).
    /// - Throws: `TrainingError.invalid` when the data does not fit the network.
    public static func evaluate(_ network: Network, on data: Dataset,
                                onBatch: ((_ images: Int) -> Void)? = nil) throws -> EvaluationResult {
        let architecture = network.architecture
        let input = architecture.nodes.first?.shape ?? []
        guard data.sampleShape == input else {
            throw TrainingError.invalid("\(data.name) has samples of shape \(Tensor.describe(data.sampleShape)), \(architecture.name) takes \(Tensor.describe(input))")
        }
        let fits = data.isPreBatched ? data.classes <= architecture.classes : data.classes == architecture.classes
        guard fits else {
            throw TrainingError.invalid("\(data.name) has \(data.classes) classes, \(architecture.name) was built for \(architecture.classes)")
        }
        var parameters: [String: [Float]] = [:], running: [String: [Float]] = [:]
        for spec in architecture.parameters {
            guard let t = network.parameters[spec.name] else { continue }
            if spec.isLearnable { parameters[spec.name] = t.data } else { running[spec.name] = t.data }
        }
        return try evaluate(architecture, parameters: parameters, runningStatistics: running, data: data, onBatch: onBatch)
    }

    /// Evaluates parameters given by name (prunable weights already w ⊙ m). Checks `Cancellation`
    /// per batch.
    /// - Complexity: one forward per batch; memory O(batch × the largest two live activations).
    static func evaluate(_ architecture: Architecture, parameters: [String: [Float]], runningStatistics: [String: [Float]],
                         data: Dataset, onBatch: ((_ images: Int) -> Void)? = nil) throws -> EvaluationResult {
        let pass = try FirstOrderPass<Float>(architecture, parameters: parameters, runningStatistics: runningStatistics,
                                             normalisation: .running, retainsForBackward: false)
        var lossSum = 0.0, correct = 0, count = 0
        for batch in try data.augmented(nil).batches(size: batchSize) {
            try Cancellation.check()
            let logits = try pass.forward(batch.images.data, batch: batch.count)
            let (loss, _, _) = try pass.crossEntropy(logits, labels: batch.labels)
            lossSum += loss * Double(batch.count)
            correct += Self.correct(logits, labels: batch.labels)
            count += batch.count
            onBatch?(batch.count)
        }
        return EvaluationResult(accuracy: Double(correct) / Double(max(count, 1)), loss: lossSum / Double(max(count, 1)), count: count)
    }

    /// Samples whose largest logit (the first one on ties, as `torch.argmax`) is their label.
    /// `logits` `[N, K]`.
    static func correct(_ logits: [Float], labels: [Int]) -> Int {
        let n = labels.count
        guard n > 0 else { return 0 }
        let k = logits.count / n
        var right = 0
        for i in 0 ..< n {
            var best = 0
            for j in 1 ..< max(k, 1) where logits[i * k + j] > logits[i * k + best] { best = j }
            if best == labels[i] { right += 1 }
        }
        return right
    }
}
