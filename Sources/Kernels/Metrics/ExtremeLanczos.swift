import CLapacke
import Foundation

// The largest eigenvalue of a weighted Laplacian, bracketed: a lower bound from single-vector
// Lanczos and an upper bound from the signless Laplacian's Collatz–Wielandt quotient, both
// carried by one two-lane product per step.
//
// Why not the thick-restart block solver: at 13.7 M nodes (VGG-16 at 224) its basis fits
// 40 vectors, so it restarts every ten products and loses the polynomial degree a band of
// eigenvalues needs — and the top of a CNN's Laplacian is such a band (channels are
// translation invariant: sine envelopes whose eigenvalues differ by ~1e-4 relative). Its
// residual test cannot pass there in useful time, because the Ritz vector mixes the band's
// eigenvectors; yet only the value is asked for.
//
// Lower bound: the three-term recurrence keeps three vectors whatever the degree, and the top
// Ritz value θ of the tridiagonal T_j is a Rayleigh quotient, so θ ≤ λ_max. (Without
// reorthogonalisation the extreme Ritz value still converges: Paige — orthogonality is lost
// only along converged Ritz vectors, which then return as copies of a converged value.)
//
// Upper bound: with A ≥ 0 (edge weights are |w|), xᵀLx = Σ a_uv (x_u − x_v)² ≤
// |x|ᵀ(D + A)|x|, so λ_max(L) ≤ λ_max(Q), Q = D + A = 2D − L; and Q ≥ 0 gives, for every x > 0,
// λ_max(Q) ≤ max_u (Qx)_u / x_u (Collatz–Wielandt). The power iterates x_{k+1} = Q x_k from
// x_0 = 1 make that maximum non-increasing; on a CNN's MGE they converge to the
// infinite-grid value of the top channel pattern, which stands above the finite graph's λ_max
// only by the envelope's boundary correction. Both bounds hold whatever the spectrum looks
// like (the residual test needs a gap; this does not). On a bipartite graph L and Q are
// similar, so the bracket closes on λ_max itself.

/// The largest eigenvalue of L = D − A (A ≥ 0 symmetric, D its row sums) with a certified
/// bracket [θ, U] (the result's `lowerBound` and `upperBound`).
///
/// Each step applies `laplacian` to two vectors: the Lanczos vector and the power iterate of
/// Q = 2D − L. Stops when the top Ritz pair's residual β_j·|s_j| ≤ `tolerance`·θ (the block
/// solver's test; the value is θ), when U − θ ≤ `bracketTolerance`·θ (U the smallest
/// Collatz–Wielandt bound seen; the value is the midpoint, within half that of λ_max), when
/// β_j vanishes (an invariant subspace: θ is exact), or after `maxSteps` (unconverged, the
/// value θ). The Lanczos start is random, or — on a bipartite graph, `negativeStart` the
/// other side's ids — ±1 by side: L = SQS there, and 1 overlaps Q's nonnegative top
/// eigenvector, with weight on the smooth envelopes a band's top needs (VGG-16 at 224: the
/// Ritz value 60 products after this start is where a random start is after 265).
/// Without `nonnegative` weights there is no upper bound (U = ∞) and no second lane.
/// `trace` receives one line every `checkEvery` steps.
/// - Complexity: one two-vector product plus O(n) per step, O(j) for the tridiagonal at step j;
///   four n-vectors of memory besides the product's.
public func laplacianLargestEigenvalue(dimension n: Int, diagonal: [Double], nonnegative: Bool = true, tolerance: Double, bracketTolerance: Double,
                                       maxSteps: Int, negativeStart: [Range<Int>]? = nil, seed: UInt64 = 0x5EED, checkEvery: Int = 10,
                                       trace: ((String) -> Void)? = nil, laplacian: BlockMatvec) -> EigenResult {
    if n == 0 { return EigenResult(values: [0], residuals: [0], matvecs: 0, converged: true) }
    var rng = SeededGenerator(seed: seed)
    // X = [v | x] (Lanczos vector, power iterate), Y = L·X, previous = the Lanczos vector before v.
    var X = [Double](repeating: 1, count: 2 * n), Y = [Double](repeating: 0, count: 2 * n)
    var previous = [Double](repeating: 0, count: n)
    if let negativeStart {
        for r in negativeStart { for i in r { X[i] = -1 } }
    } else {
        for i in 0 ..< n { X[i] = rng.uniform() - 0.5 }
    }
    scale(&X, range: 0 ..< n, by: 1 / norm(X, 0 ..< n))
    var alpha: [Double] = [], beta: [Double] = []
    var theta = 0.0, residual = Double.infinity, upper = Double.infinity
    let start = DispatchTime.now().uptimeNanoseconds
    var step = 0
    let lanes = nonnegative ? 2 : 1
    // The bracket's midpoint once it has closed (within half its width of λ_max), else θ.
    func result(_ converged: Bool, bracketed: Bool = false) -> EigenResult {
        var r = EigenResult(values: [bracketed ? (theta + upper) / 2 : theta], residuals: [residual], matvecs: lanes * step,
                            passes: step, converged: converged)
        r.lowerBound = theta
        r.upperBound = upper
        return r
    }
    while step < max(1, maxSteps) {
        step += 1
        X.withUnsafeBufferPointer { xp in Y.withUnsafeMutableBufferPointer { laplacian(xp.baseAddress!, $0.baseAddress!, lanes) } }
        // Lane 1: the Collatz–Wielandt bound of x, then x ← Qx / max(Qx).
        if nonnegative { upper = min(upper, signlessQuotientStep(&X, Y, diagonal, n)) }
        // Lane 0: w = Lv − αv − β previous, with one local correction against v.
        let b0 = beta.last ?? 0
        let a = dot(X, 0, Y, 0, n)
        combine(&Y, X, -a, previous, -b0, n)
        let c = dot(X, 0, Y, 0, n)
        combine(&Y, X, -c, nil, 0, n)
        alpha.append(a + c)
        let b = norm(Y, 0 ..< n)
        let top = tridiagonalTop(alpha, beta)
        theta = top.value
        residual = b * abs(top.lastComponent)
        let invariant = b <= 1e-14 * max(abs(theta), 1e-300)
        let solved = invariant || residual <= tolerance * abs(theta)
        let bracketed = !solved && upper - theta <= bracketTolerance * abs(theta)
        let done = solved || bracketed
        if let trace, step % checkEvery == 0 || done || step == maxSteps {
            trace(String(format: "step %d θ1 %.10f θ2 %.10f residual %.2e (relative %.2e) upper %.10f (bracket %.2e) %.1f s",
                         step, theta, top.second, residual, residual / max(abs(theta), 1e-300), upper,
                         (upper - theta) / max(abs(theta), 1e-300), Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9))
        }
        if done { return result(true, bracketed: bracketed) }
        beta.append(b)
        // previous ← v, v ← w / β.
        X.withUnsafeBufferPointer { xp in previous.withUnsafeMutableBufferPointer { $0.baseAddress!.update(from: xp.baseAddress!, count: n) } }
        Y.withUnsafeBufferPointer { y in X.withUnsafeMutableBufferPointer { $0.baseAddress!.update(from: y.baseAddress!, count: n) } }
        scale(&X, range: 0 ..< n, by: 1 / b)
        if Cancellation.isRequested { break }
    }
    return result(false)
}

/// max_u (Qx)_u / x_u for the power iterate x in X[n ..< 2n] (Qx = 2·d∘x − (Lx), Lx in
/// Y[n ..< 2n]), then x ← Qx / max(Qx). A node with x_u = 0 and (Qx)_u = 0 is isolated in Q
/// (x > 0 and Q ≥ 0 give (Qx)_u > 0 for any node with an entry) and bounds nothing; one with
/// x_u = 0 < (Qx)_u makes the bound infinite.
/// - Complexity: O(n).
private func signlessQuotientStep(_ X: inout [Double], _ Y: [Double], _ d: [Double], _ n: Int) -> Double {
    let grain = 16384
    let (quotient, peak) = X.withUnsafeMutableBufferPointer { xp in
        Y.withUnsafeBufferPointer { yp in
            d.withUnsafeBufferPointer { dp in
                let x = SharedMutablePointer(xp.baseAddress! + n), y = yp.baseAddress! + n, dg = dp.baseAddress!
                return Parallel.reduce(n, grain: grain, (0.0, 0.0), partial: { r in
                    var q = 0.0, m = 0.0
                    for u in r {
                        let qx = 2 * dg[u] * x[u] - y[u]
                        if qx > 0 { q = max(q, x[u] > 0 ? qx / x[u] : .infinity) }
                        m = max(m, qx)
                        x[u] = qx
                    }
                    return (q, m)
                }, combine: { (max($0.0, $1.0), max($0.1, $1.1)) })
            }
        }
    }
    if peak > 0 { scale(&X, range: n ..< 2 * n, by: 1 / peak) }
    return quotient
}

/// The largest eigenvalue of the symmetric tridiagonal matrix with diagonal `d` and
/// off-diagonal `e` (at least d.count − 1 entries), the next one down, and the last component
/// of the largest one's unit eigenvector (LAPACK dstemr: bisection and MRRR).
/// - Complexity: O(j) for j = d.count.
func tridiagonalTop(_ d: [Double], _ e: [Double]) -> (value: Double, second: Double, lastComponent: Double) {
    let j = d.count
    if j == 1 { return (d[0], -.infinity, 1) }
    var diag = d, off = Array(e.prefix(j - 1)) + [0]
    var m: Int32 = 0, tryrac: Int32 = 1
    var w = [Double](repeating: 0, count: j), z = [Double](repeating: 0, count: 2 * j), support = [Int32](repeating: 0, count: 4)
    guard LAPACKE_dstemr(LAPACK_COL_MAJOR, Int8(UInt8(ascii: "V")), Int8(UInt8(ascii: "I")), Int32(j), &diag, &off, 0, 0,
                         Int32(j - 1), Int32(j), &m, &w, &z, Int32(j), 2, &support, &tryrac) == 0, m == 2 else {
        return (d.max() ?? 0, -.infinity, 1)   // a residual of β: never mistaken for converged
    }
    return (w[1], w[0], z[j + j - 1])
}

// MARK: O(n) vector steps, spread over the cores in fixed chunks (thread-count independent)

private func dot(_ x: [Double], _ xo: Int, _ y: [Double], _ yo: Int, _ n: Int) -> Double {
    x.withUnsafeBufferPointer { xp in y.withUnsafeBufferPointer { parallelDot(xp.baseAddress! + xo, $0.baseAddress! + yo, n) } }
}

private func norm(_ x: [Double], _ r: Range<Int>) -> Double {
    dot(x, r.lowerBound, x, r.lowerBound, r.count).squareRoot()
}

private func scale(_ x: inout [Double], range: Range<Int>, by a: Double) {
    x.withUnsafeMutableBufferPointer { xp in
        let p = SharedMutablePointer(xp.baseAddress! + range.lowerBound)
        Parallel.forChunks(range.count, grain: 16384) { _, r in for i in r { p[i] *= a } }
    }
}

/// w[0 ..< n] += a·x[0 ..< n] + b·y[0 ..< n] (without y: w += a·x, y not read).
private func combine(_ w: inout [Double], _ x: [Double], _ a: Double, _ y: [Double]?, _ b: Double, _ n: Int) {
    w.withUnsafeMutableBufferPointer { wp in
        x.withUnsafeBufferPointer { xp in
            let p = SharedMutablePointer(wp.baseAddress!), xs = xp.baseAddress!
            guard let y else {
                Parallel.forChunks(n, grain: 16384) { _, r in for i in r { p[i] += a * xs[i] } }
                return
            }
            y.withUnsafeBufferPointer { yp in
                let ys = yp.baseAddress!
                Parallel.forChunks(n, grain: 16384) { _, r in for i in r { p[i] += a * xs[i] + b * ys[i] } }
            }
        }
    }
}
