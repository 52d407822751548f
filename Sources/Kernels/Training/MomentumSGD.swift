import Foundation

/// PyTorch's `torch.optim.SGD(model.parameters(), lr, momentum, weight_decay)` (dampening 0, no
/// Nesterov) over named Float parameters, with masks enforced.
///
/// Per parameter p with gradient g, in PyTorch's order of float32 operations:
///
///     d = g + λ·p;   b = d on the first step, else μ·b + d;   p = p − lr·b
///
/// Masks: the forward pass uses the effective weight w ⊙ m, so ∂L/∂w = g ⊙ m; a pruned weight
/// starts at 0, gets d = 0 and b = 0, and stays exactly 0 — it never regrows. The same kept-weight
/// trajectory as a reference that multiplies weights by their masks after every step (only that
/// reference's momentum of pruned weights differs, and it never reaches a kept weight). The
/// parameter and its buffer are still multiplied by the mask after the update, so no rounding
/// path can leave a pruned weight non-zero.
public struct MomentumSGD: Sendable {
    public let momentum: Float
    public let weightDecay: Float
    /// Momentum buffers by parameter name; absent until the parameter's first step.
    public private(set) var buffers: [String: [Float]]

    public init(momentum: Double, weightDecay: Double, buffers: [String: [Float]] = [:]) {
        self.momentum = Float(momentum)
        self.weightDecay = Float(weightDecay)
        self.buffers = buffers
    }

    /// Replaces a parameter's momentum buffer (dynamic sparse training resets grown connections').
    mutating func setBuffer(_ name: String, _ values: [Float]) { buffers[name] = values }

    /// One update of `parameter` (shape-free, `count` values) from `gradient` (same count).
    /// `mask` (0/1 per value) for a prunable weight, nil otherwise.
    /// - Complexity: O(count).
    public mutating func step(_ name: String, parameter: inout [Float], gradient: [Float], mask: [Float]?, learningRate: Double) {
        let count = parameter.count
        let lr = Float(learningRate), mu = momentum, lambda = weightDecay
        let first = buffers[name] == nil
        var buffer = buffers.removeValue(forKey: name) ?? [Float](repeating: 0, count: count)
        parameter.withUnsafeMutableBufferPointer { p in
            buffer.withUnsafeMutableBufferPointer { b in
                gradient.withUnsafeBufferPointer { g in
                    if let mask {
                        mask.withUnsafeBufferPointer { m in
                            for i in 0 ..< count {
                                let d = g[i] * m[i] + lambda * p[i]
                                let v = first ? d : mu * b[i] + d
                                b[i] = v * m[i]
                                p[i] = (p[i] - lr * v) * m[i]
                            }
                        }
                    } else {
                        for i in 0 ..< count {
                            let d = g[i] + lambda * p[i]
                            let v = first ? d : mu * b[i] + d
                            b[i] = v
                            p[i] = p[i] - lr * v
                        }
                    }
                }
            }
        }
        buffers[name] = buffer
    }
}

/// PyTorch's `MultiStepLR(optimizer, milestones, gamma)` stepped once per epoch: the learning
/// rate of epoch e (0-based) is lr·γ^k, k = the number of milestones ≤ e, multiplied out in
/// Double in the same order as PyTorch (so 0.1·0.1 is 0.010000000000000002, as there).
public struct MultiStepSchedule: Sendable, Equatable {
    public let initial: Double
    public let milestones: [Int]
    public let gamma: Double

    public init(initial: Double, milestones: [Int], gamma: Double) {
        self.initial = initial; self.milestones = milestones; self.gamma = gamma
    }

    /// The learning rate during epoch `epoch` (0-based).
    /// - Complexity: O(epoch + milestones).
    public func learningRate(epoch: Int) -> Double {
        var lr = initial
        guard epoch > 0 else { return lr }
        for e in 1 ... epoch { lr *= pow(gamma, Double(milestones.filter { $0 == e }.count)) }
        return lr
    }
}
