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
                for n in 0 ..< outer { sum += sumOf(x + (n * channels + c) * inner, inner) }
                let mu = sum / count
                var squares = 0.0
                for n in 0 ..< outer { squares += sumOfSquaredDeviations(x + (n * channels + c) * inner, inner, from: mu) }
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
        backwardTraining(x: x, dy: dy, gamma: gamma, mean: mean, invStd: invStd, outer: outer, channels: channels,
                         inner: inner, dx: dx, dGamma: dGamma, dBeta: dBeta, accumulateInput: true)
    }

    /// `backwardTraining`, with dx overwritten (need not be initialised) unless `accumulateInput`.
    @_specialize(where S == Float)
    @_specialize(where S == Double)
    static func backwardTraining<S: NNScalar>(x: UnsafePointer<S>, dy: UnsafePointer<S>,
                                              gamma: UnsafePointer<S>, mean: UnsafePointer<S>, invStd: UnsafePointer<S>,
                                              outer: Int, channels: Int, inner: Int,
                                              dx: UnsafeMutablePointer<S>?, dGamma: UnsafeMutablePointer<S>?,
                                              dBeta: UnsafeMutablePointer<S>?, accumulateInput: Bool) {
        let count = Double(outer * inner)
        Parallel.forChunks(channels, costPerItem: 3 * outer * inner) { range in
            for c in range {
                let mu = mean[c], inv = invStd[c]
                var sumDy = 0.0, sumDyXhat = 0.0
                for n in 0 ..< outer {
                    let (a, b) = sumsOfGradient(x + (n * channels + c) * inner, dy + (n * channels + c) * inner, inner,
                                                mean: mu, invStd: inv)
                    sumDy += a; sumDyXhat += b
                }
                dGamma?[c] += S(sumDyXhat)
                dBeta?[c] += S(sumDy)
                guard let dx else { continue }
                let k = gamma[c] * inv
                let meanDy = S(sumDy / count), meanDyXhat = S(sumDyXhat / count)
                for n in 0 ..< outer {
                    let p = x + (n * channels + c) * inner, g = dy + (n * channels + c) * inner
                    let d = dx + (n * channels + c) * inner
                    if accumulateInput {
                        for i in 0 ..< inner {
                            let xhat = (p[i] - mu) * inv
                            d[i] += k * (g[i] - meanDy - xhat * meanDyXhat)
                        }
                    } else {
                        for i in 0 ..< inner {
                            let xhat = (p[i] - mu) * inv
                            d[i] = k * (g[i] - meanDy - xhat * meanDyXhat)
                        }
                    }
                }
            }
        }
    }

    // MARK: Forward-mode derivatives (tangents) of training-mode batch norm

    /// The tangent of training-mode batch norm along (ẋ, γ̇, β̇), given the forward's mean and
    /// 1/σ: ẏ = γ̇·x̂ + γ·x̂̇ + β̇ with x̂̇ = invStd·(ẋ − mean(ẋ) − x̂·mean(x̂·ẋ)) (the batch
    /// statistics move with x). Writes mean(ẋ) and mean(x̂·ẋ) per channel, which the backward
    /// tangent reads. Nil tangents are zero.
    /// Shapes: x, ẋ, ẏ `[outer, channels, inner]`; γ, γ̇, β̇, mean, invStd and the outputs `[channels]`.
    /// - Complexity: O(outer · channels · inner), two passes.
    @_specialize(where S == Float)
    @_specialize(where S == Double)
    static func forwardTangentTraining<S: NNScalar>(x: UnsafePointer<S>, xDot: UnsafePointer<S>?,
                                                    gamma: UnsafePointer<S>, gammaDot: UnsafePointer<S>?,
                                                    betaDot: UnsafePointer<S>?, mean: UnsafePointer<S>,
                                                    invStd: UnsafePointer<S>, outer: Int, channels: Int, inner: Int,
                                                    yDot: UnsafeMutablePointer<S>, meanXDot: UnsafeMutablePointer<S>,
                                                    meanXhatXDot: UnsafeMutablePointer<S>) {
        let count = Double(outer * inner)
        Parallel.forChunks(channels, costPerItem: 3 * outer * inner) { range in
            for c in range {
                let mu = mean[c], inv = invStd[c]
                var a = 0.0, b = 0.0
                if let xDot {
                    for n in 0 ..< outer {
                        let o = (n * channels + c) * inner
                        let (s, t) = sumsOfGradient(x + o, xDot + o, inner, mean: mu, invStd: inv)
                        a += s; b += t
                    }
                }
                let ma = S(a / count), mb = S(b / count)
                meanXDot[c] = ma; meanXhatXDot[c] = mb
                let gd = gammaDot?[c] ?? 0, bd = betaDot?[c] ?? 0, g = gamma[c]
                for n in 0 ..< outer {
                    let o = (n * channels + c) * inner
                    let p = x + o, q = yDot + o
                    if let xDot {
                        let d = xDot + o
                        for i in 0 ..< inner {
                            let xhat = (p[i] - mu) * inv
                            q[i] = gd * xhat + g * (inv * (d[i] - ma - xhat * mb)) + bd
                        }
                    } else {
                        for i in 0 ..< inner { q[i] = gd * ((p[i] - mu) * inv) + bd }
                    }
                }
            }
        }
    }

    /// The tangent of `backwardTraining` (forward-over-reverse: Hessian-vector products).
    /// With k = γ·invStd, ĝ = dy − mean(dy) − x̂·mean(dy·x̂) (so dx = k·ĝ), A = mean(ẋ),
    /// B = mean(x̂·ẋ), x̂̇ = invStd·(ẋ − A − x̂·B), k̇ = γ̇·invStd − γ·invStd²·B:
    ///
    ///     ḋx = k̇·ĝ + k·(ḋy − mean(ḋy) − x̂̇·mean(dy·x̂) − x̂·(mean(ḋy·x̂) + mean(dy·x̂̇)))
    ///     ḋγ = Σ (ḋy·x̂ + dy·x̂̇),   ḋβ = Σ ḋy
    ///
    /// `meanXDot` and `meanXhatXDot` are A and B from `forwardTangentTraining`. Nil tangents are
    /// zero; outputs that are nil are not computed; all outputs are overwritten.
    /// Shapes as in `backwardTraining`.
    /// - Complexity: O(outer · channels · inner), two passes.
    @_specialize(where S == Float)
    @_specialize(where S == Double)
    static func backwardTangentTraining<S: NNScalar>(x: UnsafePointer<S>, xDot: UnsafePointer<S>?,
                                                     dy: UnsafePointer<S>, dyDot: UnsafePointer<S>?,
                                                     gamma: UnsafePointer<S>, gammaDot: UnsafePointer<S>?,
                                                     mean: UnsafePointer<S>, invStd: UnsafePointer<S>,
                                                     meanXDot: UnsafePointer<S>, meanXhatXDot: UnsafePointer<S>,
                                                     outer: Int, channels: Int, inner: Int,
                                                     dxDot: UnsafeMutablePointer<S>?, dGammaDot: UnsafeMutablePointer<S>?,
                                                     dBetaDot: UnsafeMutablePointer<S>?) {
        let count = Double(outer * inner)
        Parallel.forChunks(channels, costPerItem: 4 * outer * inner) { range in
            for c in range {
                let mu = mean[c], inv = invStd[c]
                // Σ dy, Σ dy·x̂, Σ ḋy, Σ ḋy·x̂, Σ dy·ẋ.
                var sg = 0.0, sgx = 0.0, sgd = 0.0, sgdx = 0.0, sgxd = 0.0
                for n in 0 ..< outer {
                    let o = (n * channels + c) * inner
                    let (a, b) = sumsOfGradient(x + o, dy + o, inner, mean: mu, invStd: inv)
                    sg += a; sgx += b
                    if let dyDot {
                        let (e, f) = sumsOfGradient(x + o, dyDot + o, inner, mean: mu, invStd: inv)
                        sgd += e; sgdx += f
                    }
                    if let xDot { sgxd += dotOf(dy + o, xDot + o, inner) }
                }
                let ma = meanXDot[c].doubleValue, mb = meanXhatXDot[c].doubleValue, invD = inv.doubleValue
                let gm = sg / count, gx = sgx / count
                let meanDyXhatDot = invD * (sgxd / count - ma * gm - mb * gx)
                let gdm = sgd / count, gdx = sgdx / count + meanDyXhatDot
                dGammaDot?[c] = S(gdx * count)
                dBetaDot?[c] = S(sgd)
                guard let dxDot else { continue }
                let k = gamma[c] * inv
                let kDot = (gammaDot?[c] ?? 0) * inv - gamma[c] * inv * inv * S(mb)
                let (gmS, gxS, gdmS, gdxS, maS, mbS) = (S(gm), S(gx), S(gdm), S(gdx), S(ma), S(mb))
                for n in 0 ..< outer {
                    let o = (n * channels + c) * inner
                    let p = x + o, g = dy + o, d = dxDot + o
                    if let xDot, let dyDot {
                        // The common case (every tangent present), kept free of per-element branches.
                        let e = xDot + o, h = dyDot + o
                        for i in 0 ..< inner {
                            let xhat = (p[i] - mu) * inv
                            let xhatDot = inv * (e[i] - maS - xhat * mbS)
                            d[i] = kDot * (g[i] - gmS - xhat * gxS) + k * (h[i] - gdmS - xhatDot * gxS - xhat * gdxS)
                        }
                    } else {
                        for i in 0 ..< inner {
                            let xhat = (p[i] - mu) * inv
                            let xhatDot: S = xDot.map { inv * ($0[o + i] - maS - xhat * mbS) } ?? 0
                            let gDot: S = dyDot?[o + i] ?? 0
                            d[i] = kDot * (g[i] - gmS - xhat * gxS) + k * (gDot - gdmS - xhatDot * gxS - xhat * gdxS)
                        }
                    }
                }
            }
        }
    }

    /// Σ a[i]·b[i] in Double.
    @inline(__always)
    static func dotOf<S: NNScalar>(_ a: UnsafePointer<S>, _ b: UnsafePointer<S>, _ n: Int) -> Double {
        var acc = SIMD8<Double>(repeating: 0)
        var i = 0
        while i + 8 <= n {
            let x = SIMD8(a[i].doubleValue, a[i + 1].doubleValue, a[i + 2].doubleValue, a[i + 3].doubleValue,
                          a[i + 4].doubleValue, a[i + 5].doubleValue, a[i + 6].doubleValue, a[i + 7].doubleValue)
            let y = SIMD8(b[i].doubleValue, b[i + 1].doubleValue, b[i + 2].doubleValue, b[i + 3].doubleValue,
                          b[i + 4].doubleValue, b[i + 5].doubleValue, b[i + 6].doubleValue, b[i + 7].doubleValue)
            acc += x * y
            i += 8
        }
        var s = acc.sum()
        while i < n { s += a[i].doubleValue * b[i].doubleValue; i += 1 }
        return s
    }

    // Reductions in Double with eight independent accumulators: a single running sum is one
    // long chain of dependent additions (4 cycles each); eight chains keep the adders busy.

    /// Σ p[i] in Double.
    @inline(__always)
    static func sumOf<S: NNScalar>(_ p: UnsafePointer<S>, _ n: Int) -> Double {
        var a = SIMD8<Double>(repeating: 0)
        var i = 0
        while i + 8 <= n {
            a += SIMD8(p[i].doubleValue, p[i + 1].doubleValue, p[i + 2].doubleValue, p[i + 3].doubleValue,
                       p[i + 4].doubleValue, p[i + 5].doubleValue, p[i + 6].doubleValue, p[i + 7].doubleValue)
            i += 8
        }
        var s = a.sum()
        while i < n { s += p[i].doubleValue; i += 1 }
        return s
    }

    /// Σ (p[i] − mu)² in Double.
    @inline(__always)
    static func sumOfSquaredDeviations<S: NNScalar>(_ p: UnsafePointer<S>, _ n: Int, from mu: Double) -> Double {
        var a = SIMD8<Double>(repeating: 0)
        let m = SIMD8<Double>(repeating: mu)
        var i = 0
        while i + 8 <= n {
            let d = SIMD8(p[i].doubleValue, p[i + 1].doubleValue, p[i + 2].doubleValue, p[i + 3].doubleValue,
                          p[i + 4].doubleValue, p[i + 5].doubleValue, p[i + 6].doubleValue, p[i + 7].doubleValue) - m
            a += d * d
            i += 8
        }
        var s = a.sum()
        while i < n { let d = p[i].doubleValue - mu; s += d * d; i += 1 }
        return s
    }

    /// (Σ g[i], Σ g[i]·x̂[i]) in Double, x̂ = (x − mean)·invStd computed in S.
    @inline(__always)
    static func sumsOfGradient<S: NNScalar>(_ x: UnsafePointer<S>, _ g: UnsafePointer<S>, _ n: Int,
                                            mean mu: S, invStd inv: S) -> (Double, Double) {
        var a = SIMD8<Double>(repeating: 0), b = SIMD8<Double>(repeating: 0)
        var i = 0
        while i + 8 <= n {
            let gd = SIMD8(g[i].doubleValue, g[i + 1].doubleValue, g[i + 2].doubleValue, g[i + 3].doubleValue,
                           g[i + 4].doubleValue, g[i + 5].doubleValue, g[i + 6].doubleValue, g[i + 7].doubleValue)
            let xh = SIMD8(((x[i] - mu) * inv).doubleValue, ((x[i + 1] - mu) * inv).doubleValue,
                           ((x[i + 2] - mu) * inv).doubleValue, ((x[i + 3] - mu) * inv).doubleValue,
                           ((x[i + 4] - mu) * inv).doubleValue, ((x[i + 5] - mu) * inv).doubleValue,
                           ((x[i + 6] - mu) * inv).doubleValue, ((x[i + 7] - mu) * inv).doubleValue)
            a += gd
            b += gd * xh
            i += 8
        }
        var s = a.sum(), t = b.sum()
        while i < n {
            let gd = g[i].doubleValue
            s += gd; t += gd * ((x[i] - mu) * inv).doubleValue
            i += 1
        }
        return (s, t)
    }

}

/// Pooling on NCHW planes with any window, stride and padding (`PoolGeometry`; PyTorch's
/// floor mode). Outputs are `[planes, geometry.outputSize(H), geometry.outputSize(W)]`.
public enum Pooling {
    /// y = max over each window's existing pixels (padding never wins, as in PyTorch);
    /// `argmax` receives the flat index into x of each maximum (the first in row-major order on
    /// ties, as PyTorch). Shapes: x `[planes, H, W]`, y and argmax `[planes, oh, ow]`.
    /// - Complexity: O(planes · oh · ow · k²).
    @_specialize(where S == Float)
    @_specialize(where S == Double)
    public static func maxForward<S: NNScalar>(x: UnsafePointer<S>, planes: Int, height: Int, width: Int, pool: PoolGeometry,
                                               y: UnsafeMutablePointer<S>, argmax: UnsafeMutablePointer<Int32>) {
        let oh = pool.outputSize(height), ow = pool.outputSize(width)
        Parallel.forChunks(planes, costPerItem: height * width) { range in
            for plane in range {
                let base = plane * height * width
                for oy in 0 ..< oh {
                    let rows = pool.window(oy, size: height)
                    for ox in 0 ..< ow {
                        let columns = pool.window(ox, size: width)
                        var best = base + rows.lowerBound * width + columns.lowerBound
                        var bestValue = x[best]
                        for a in rows {
                            for b in columns {
                                let i = base + a * width + b
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

    /// dx[index[i]] += dy[i] (max pool backward; adjoint of `gather`). Overlapping windows may
    /// share a maximum: its gradients add up, as in PyTorch.
    @_specialize(where S == Float)
    @_specialize(where S == Double)
    public static func scatterAdd<S: NNScalar>(dy: UnsafePointer<S>, index: UnsafePointer<Int32>, count: Int,
                                               dx: UnsafeMutablePointer<S>) {
        for i in 0 ..< count { dx[Int(index[i])] += dy[i] }
    }

    /// y = (sum over each window's existing pixels) / k² — padding counts as zeros, PyTorch's
    /// default `count_include_pad=True`. Shapes: x `[planes, H, W]`, y `[planes, oh, ow]`.
    @_specialize(where S == Float)
    @_specialize(where S == Double)
    public static func averageForward<S: NNScalar>(x: UnsafePointer<S>, planes: Int, height: Int, width: Int, pool: PoolGeometry,
                                                   y: UnsafeMutablePointer<S>) {
        let oh = pool.outputSize(height), ow = pool.outputSize(width)
        let scale = 1 / S(pool.kernel * pool.kernel)
        for plane in 0 ..< planes {
            let base = x + plane * height * width
            for oy in 0 ..< oh {
                let rows = pool.window(oy, size: height)
                for ox in 0 ..< ow {
                    let columns = pool.window(ox, size: width)
                    var sum: S = 0
                    for a in rows {
                        let row = base + a * width
                        for b in columns { sum += row[b] }
                    }
                    y[(plane * oh + oy) * ow + ox] = sum * scale
                }
            }
        }
    }

    /// dx += dy / k² spread over each window's existing pixels (adjoint of `averageForward`).
    @_specialize(where S == Float)
    @_specialize(where S == Double)
    public static func averageBackward<S: NNScalar>(dy: UnsafePointer<S>, planes: Int, height: Int, width: Int, pool: PoolGeometry,
                                                    dx: UnsafeMutablePointer<S>) {
        let oh = pool.outputSize(height), ow = pool.outputSize(width)
        let scale = 1 / S(pool.kernel * pool.kernel)
        for plane in 0 ..< planes {
            let base = dx + plane * height * width
            for oy in 0 ..< oh {
                let rows = pool.window(oy, size: height)
                for ox in 0 ..< ow {
                    let columns = pool.window(ox, size: width)
                    let g = dy[(plane * oh + oy) * ow + ox] * scale
                    for a in rows {
                        let row = base + a * width
                        for b in columns { row[b] += g }
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
