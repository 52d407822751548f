import Foundation

/// Batch normalisation kernels on a buffer viewed as `[outer, channels, inner]`:
/// 2-d BN on NCHW is outer = N, inner = H·W; 1-d BN on `[N, F]` is outer = N, inner = 1.
/// Statistics are per channel over outer·inner values, summed in Double so that a batch of
/// 128×32×32 values loses no more than Float's own rounding.
public enum BatchNorm {
    public static let epsilon = 1e-5
    public static let momentum = 0.1

    /// Training-mode forward: y = (x − mean)·invStd·γ + β with the batch's mean and biased
    /// variance. Writes `mean` and `invStd` (`[channels]`, kept for backward).
    /// Shapes: x, y `[outer, channels, inner]`; gamma, beta, mean, invStd `[channels]`.
    /// - Complexity: O(outer · channels · inner), two passes.
    @_specialize(where S == Float)
    @_specialize(where S == Double)
    public static func forwardTraining<S: NNScalar>(x: UnsafePointer<S>, y: UnsafeMutablePointer<S>,
                                                    gamma: UnsafePointer<S>, beta: UnsafePointer<S>,
                                                    outer: Int, channels: Int, inner: Int,
                                                    mean: UnsafeMutablePointer<S>, invStd: UnsafeMutablePointer<S>) {
        let count = Double(outer * inner)
        Parallel.forChunks(channels, costPerItem: 3 * outer * inner) { range in
            for c in range {
                var sum = 0.0
                for n in 0 ..< outer {
                    let p = x + (n * channels + c) * inner
                    for i in 0 ..< inner { sum += p[i].doubleValue }
                }
                let mu = sum / count
                var squares = 0.0
                for n in 0 ..< outer {
                    let p = x + (n * channels + c) * inner
                    for i in 0 ..< inner { let d = p[i].doubleValue - mu; squares += d * d }
                }
                let inv = 1 / (squares / count + epsilon).squareRoot()
                mean[c] = S(mu); invStd[c] = S(inv)
                // (x − μ)·scale + β, not x·scale + (β − μ·scale): the latter loses |μ|/σ·ulp to cancellation.
                let scale = S(inv) * gamma[c], mu0 = S(mu), shift = beta[c]
                for n in 0 ..< outer {
                    let p = x + (n * channels + c) * inner, q = y + (n * channels + c) * inner
                    for i in 0 ..< inner { q[i] = (p[i] - mu0) * scale + shift }
                }
            }
        }
    }

    /// Running statistics update as PyTorch does it: running ← (1 − 0.1)·running + 0.1·batch,
    /// with the batch variance *unbiased* (× m/(m−1), m = outer·inner) for `runningVar`.
    @_specialize(where S == Float)
    @_specialize(where S == Double)
    public static func updateRunningStatistics<S: NNScalar>(mean: UnsafePointer<S>, invStd: UnsafePointer<S>,
                                                            count: Int, channels: Int,
                                                            runningMean: UnsafeMutablePointer<S>,
                                                            runningVar: UnsafeMutablePointer<S>) {
        let m = Double(count)
        let correction = m > 1 ? m / (m - 1) : 1
        for c in 0 ..< channels {
            let inv = invStd[c].doubleValue
            let biased = 1 / (inv * inv) - epsilon
            runningMean[c] = S((1 - momentum) * runningMean[c].doubleValue + momentum * mean[c].doubleValue)
            runningVar[c] = S((1 - momentum) * runningVar[c].doubleValue + momentum * biased * correction)
        }
    }

    /// Training-mode backward, accumulating:
    /// dx += γ·invStd·(dy − mean(dy) − x̂·mean(dy·x̂)), dγ += Σ dy·x̂, dβ += Σ dy, x̂ = (x − mean)·invStd.
    /// Any of dx, dGamma, dBeta may be nil when not wanted.
    @_specialize(where S == Float)
    @_specialize(where S == Double)
    public static func backwardTraining<S: NNScalar>(x: UnsafePointer<S>, dy: UnsafePointer<S>,
                                                     gamma: UnsafePointer<S>, mean: UnsafePointer<S>, invStd: UnsafePointer<S>,
                                                     outer: Int, channels: Int, inner: Int,
                                                     dx: UnsafeMutablePointer<S>?, dGamma: UnsafeMutablePointer<S>?,
                                                     dBeta: UnsafeMutablePointer<S>?) {
        let count = Double(outer * inner)
        Parallel.forChunks(channels, costPerItem: 3 * outer * inner) { range in
            for c in range {
                let mu = mean[c], inv = invStd[c]
                var sumDy = 0.0, sumDyXhat = 0.0
                for n in 0 ..< outer {
                    let p = x + (n * channels + c) * inner, g = dy + (n * channels + c) * inner
                    for i in 0 ..< inner {
                        let gd = g[i].doubleValue
                        sumDy += gd
                        sumDyXhat += gd * ((p[i] - mu) * inv).doubleValue
                    }
                }
                dGamma?[c] += S(sumDyXhat)
                dBeta?[c] += S(sumDy)
                guard let dx else { continue }
                let k = gamma[c] * inv
                let meanDy = S(sumDy / count), meanDyXhat = S(sumDyXhat / count)
                for n in 0 ..< outer {
                    let p = x + (n * channels + c) * inner, g = dy + (n * channels + c) * inner
                    let d = dx + (n * channels + c) * inner
                    for i in 0 ..< inner {
                        let xhat = (p[i] - mu) * inv
                        d[i] += k * (g[i] - meanDy - xhat * meanDyXhat)
                    }
                }
            }
        }
    }
}

/// Non-overlapping pooling (window = stride = `kernel`, no padding) on NCHW planes.
public enum Pooling {
    /// y = max over each window; `argmax` receives the flat index into x of each maximum
    /// (first one on ties, as PyTorch). Shapes: x `[planes, H, W]`, y and argmax `[planes, H/k, W/k]`.
    @_specialize(where S == Float)
    @_specialize(where S == Double)
    public static func maxForward<S: NNScalar>(x: UnsafePointer<S>, planes: Int, height: Int, width: Int, kernel: Int,
                                               y: UnsafeMutablePointer<S>, argmax: UnsafeMutablePointer<Int32>) {
        let oh = height / kernel, ow = width / kernel
        Parallel.forChunks(planes, costPerItem: height * width) { range in
            for plane in range {
                let base = plane * height * width
                for oy in 0 ..< oh {
                    for ox in 0 ..< ow {
                        var best = base + oy * kernel * width + ox * kernel
                        var bestValue = x[best]
                        for a in 0 ..< kernel {
                            for b in 0 ..< kernel {
                                let i = base + (oy * kernel + a) * width + ox * kernel + b
                                // NaN propagates like PyTorch: a NaN beats every number.
                                if x[i] > bestValue || x[i].isNaN && !bestValue.isNaN { bestValue = x[i]; best = i }
                            }
                        }
                        let o = (plane * oh + oy) * ow + ox
                        y[o] = bestValue
                        argmax[o] = Int32(best)
                    }
                }
            }
        }
    }

    /// y[i] = x[index[i]] (the max pool forward with fixed indices; adjoint of `scatterAdd`).
    @_specialize(where S == Float)
    @_specialize(where S == Double)
    public static func gather<S: NNScalar>(x: UnsafePointer<S>, index: UnsafePointer<Int32>, count: Int,
                                           y: UnsafeMutablePointer<S>) {
        for i in 0 ..< count { y[i] = x[Int(index[i])] }
    }

    /// dx[index[i]] += dy[i] (max pool backward; adjoint of `gather`).
    @_specialize(where S == Float)
    @_specialize(where S == Double)
    public static func scatterAdd<S: NNScalar>(dy: UnsafePointer<S>, index: UnsafePointer<Int32>, count: Int,
                                               dx: UnsafeMutablePointer<S>) {
        for i in 0 ..< count { dx[Int(index[i])] += dy[i] }
    }

    /// y = mean over each window. Shapes: x `[planes, H, W]`, y `[planes, H/k, W/k]`.
    @_specialize(where S == Float)
    @_specialize(where S == Double)
    public static func averageForward<S: NNScalar>(x: UnsafePointer<S>, planes: Int, height: Int, width: Int, kernel: Int,
                                                   y: UnsafeMutablePointer<S>) {
        let oh = height / kernel, ow = width / kernel
        let scale = 1 / S(kernel * kernel)
        for plane in 0 ..< planes {
            let base = x + plane * height * width
            for oy in 0 ..< oh {
                for ox in 0 ..< ow {
                    var sum: S = 0
                    for a in 0 ..< kernel {
                        let row = base + (oy * kernel + a) * width + ox * kernel
                        for b in 0 ..< kernel { sum += row[b] }
                    }
                    y[(plane * oh + oy) * ow + ox] = sum * scale
                }
            }
        }
    }

    /// dx += dy / k² spread over each window (adjoint of `averageForward`).
    @_specialize(where S == Float)
    @_specialize(where S == Double)
    public static func averageBackward<S: NNScalar>(dy: UnsafePointer<S>, planes: Int, height: Int, width: Int, kernel: Int,
                                                    dx: UnsafeMutablePointer<S>) {
        let oh = height / kernel, ow = width / kernel
        let scale = 1 / S(kernel * kernel)
        for plane in 0 ..< planes {
            let base = dx + plane * height * width
            for oy in 0 ..< oh {
                for ox in 0 ..< ow {
                    let g = dy[(plane * oh + oy) * ow + ox] * scale
                    for a in 0 ..< kernel {
                        let row = base + (oy * kernel + a) * width + ox * kernel
                        for b in 0 ..< kernel { row[b] += g }
                    }
                }
            }
        }
    }
}

/// Softmax cross-entropy with integer labels, mean over the batch (PyTorch `cross_entropy`).
public enum CrossEntropy {
    /// Returns mean_n (logsumexp(zₙ) − zₙ[yₙ]); writes softmax(z) into `probabilities` when given.
    /// Shapes: logits, probabilities `[N, K]`; labels `[N]` in 0..<K (checked by the caller).
    @_specialize(where S == Float)
    @_specialize(where S == Double)
    public static func forward<S: NNScalar>(logits: UnsafePointer<S>, labels: UnsafePointer<Int>, batch: Int, classes: Int,
                                            probabilities: UnsafeMutablePointer<S>?) -> Double {
        var total = 0.0
        for n in 0 ..< batch {
            let row = logits + n * classes
            var top = row[0].doubleValue
            for k in 1 ..< classes { top = max(top, row[k].doubleValue) }
            var sum = 0.0
            for k in 0 ..< classes { sum += Foundation.exp(row[k].doubleValue - top) }
            let logSum = top + Foundation.log(sum)
            total += logSum - row[labels[n]].doubleValue
            if let probabilities {
                for k in 0 ..< classes { probabilities[n * classes + k] = S(Foundation.exp(row[k].doubleValue - logSum)) }
            }
        }
        return total / Double(max(batch, 1))
    }

    /// dz += scale·(softmax(z) − onehot(y))/N, given the softmax from `forward`.
    @_specialize(where S == Float)
    @_specialize(where S == Double)
    public static func backward<S: NNScalar>(probabilities: UnsafePointer<S>, labels: UnsafePointer<Int>, batch: Int,
                                             classes: Int, scale: S, dLogits: UnsafeMutablePointer<S>) {
        let s = scale / S(max(batch, 1))
        for n in 0 ..< batch {
            for k in 0 ..< classes {
                let target: S = k == labels[n] ? 1 : 0
                dLogits[n * classes + k] += s * (probabilities[n * classes + k] - target)
            }
        }
    }
}
