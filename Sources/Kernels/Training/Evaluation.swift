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
    /// Samples per forward. Evaluation-mode batch norm treats every sample on its own, so the
    /// split changes nothing but speed: a small one keeps each layer's activations in cache
    /// (measured on ResNet-20, 2 cores: 32 samples per forward evaluate 2x faster than 128 or 500).
    public static let samplesPerForward = 32

    /// Evaluates `network` on `data` (every sample once, in order, never augmented).
    /// - Throws: `TrainingError.invalid` when the data does not fit the network.
    public static func evaluate(_ network: Network, on data: Dataset,
                                onBatch: ((_ images: Int) -> Void)? = nil) throws -> EvaluationResult {
        let architecture = network.architecture
        try checkFit(data, architecture, subject: data.name)
        let (parameters, running) = network.engineParameters()
        return try evaluate(architecture, parameters: parameters, runningStatistics: running, data: data, onBatch: onBatch)
    }

    /// Refuses data whose samples or class count do not fit `architecture`; `subject` names the
    /// data in the message, `classesHint` is added to the class-count message.
    static func checkFit(_ data: Dataset, _ architecture: Architecture, subject: String, classesHint: String = "") throws {
        let input = architecture.nodes.first?.shape ?? []
        guard data.sampleShape == input else {
            throw TrainingError.invalid("\(subject) has samples of shape \(Tensor.describe(data.sampleShape)), \(architecture.name) takes \(Tensor.describe(input))")
        }
        // A dataset made from tensors knows only its largest label; the disk datasets know their class count.
        let fits = data.isPreBatched ? data.classes <= architecture.classes : data.classes == architecture.classes
        guard fits else {
            throw TrainingError.invalid("\(subject) has \(data.classes) classes, \(architecture.name) was built for \(architecture.classes)\(classesHint)")
        }
    }

    /// Evaluates parameters given by name (prunable weights already w ⊙ m). Checks `Cancellation`
    /// per batch.
    /// - Complexity: one forward per batch; memory O(batch × the largest two live activations).
    static func evaluate(_ architecture: Architecture, parameters: [String: [Float]], runningStatistics: [String: [Float]],
                         data: Dataset, onBatch: ((_ images: Int) -> Void)? = nil) throws -> EvaluationResult {
        let pass = try FirstOrderPass<Float>(architecture, parameters: parameters, runningStatistics: runningStatistics,
                                             normalisation: .running, forBackward: false, sparseKernels: true)
        var lossSum = 0.0, correct = 0, count = 0
        let sampleSize = architecture.nodes.first?.shape.reduce(1, *) ?? 0
        var batches = try data.augmented(nil).batches(size: samplesPerForward).makeIterator()
        while let batch = try batches.nextBatch() {
            // A dataset made from tensors yields its own (possibly large) batches: cut them up.
            for start in stride(from: 0, to: batch.count, by: samplesPerForward) {
                try Cancellation.check()
                let end = min(start + samplesPerForward, batch.count), n = end - start
                let labels = Array(batch.labels[start ..< end])
                let images = n == batch.count ? batch.images.data : Array(batch.images.data[(start * sampleSize) ..< (end * sampleSize)])
                let logits = try pass.forward(images, batch: n)
                let (loss, _, _) = try pass.crossEntropy(logits, labels: labels)
                lossSum += loss * Double(n)
                correct += Self.correct(logits, labels: labels)
                count += n
                onBatch?(n)
            }
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
