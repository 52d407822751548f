import CBLAS
import CLapacke
import Foundation

// Thick-restart block Lanczos (block Krylov–Schur for symmetric operators) with full
// reorthogonalisation, Double precision.
//
// Why a block method: a single-vector Krylov space holds one vector per eigenspace, so a
// repeated eigenvalue shows up once. A block Krylov space started from b random vectors holds
// min(multiplicity, b) vectors of every eigenspace, so with b = k the k most wanted eigenvalues
// *counted with multiplicity* are all represented (a multiplicity above k does not change the
// top-k multiset). And a product with b vectors costs little more than with one (the matrix is
// streamed once; `apply(block:)`), so the block method also needs fewer passes over the matrix.

/// Result of an eigen-solve.
public struct EigenResult: Sendable {
    /// Eigenvalues, most wanted first (by |λ| for `.largestMagnitude`, by λ otherwise).
    public var values: [Double]
    /// Residual norms ‖Ax − θx‖ of the returned pairs.
    public var residuals: [Double]
    /// Operator applications, counted per vector (a block product of b vectors counts b).
    public var matvecs: Int
    /// Block products (passes over the matrix).
    public var passes: Int = 0
    /// Whether every returned pair met the tolerance.
    public var converged: Bool
    /// A certified bracket of the largest eigenvalue, where the solver has one
    /// (`laplacianLargestEigenvalue`: its top Ritz value and Collatz–Wielandt bound).
    public var lowerBound: Double? = nil, upperBound: Double? = nil
}

/// Options of the Lanczos solver.
public struct LanczosOptions: Sendable {
    /// Relative residual tolerance: ‖Ax − θx‖ ≤ tol · max|θ|.
    public var tolerance: Double = 1e-9
    /// Krylov basis size (rounded to a multiple of the block size b; at least
    /// max(2k + 2b + 6, 8b) so a restart cycle adds several blocks; at most n).
    public var basisSize: Int = 40
    /// Maximum number of restarts.
    public var maxRestarts: Int = 500
    /// Whether repeated eigenvalues must be found with their multiplicity: the solver then
    /// uses a block of at least k start vectors (see `blockSize`), which represents every
    /// eigenspace among the k most wanted values with min(multiplicity, k) vectors.
    public var checkMultiplicity: Bool = true
    /// Block size b (vectors per operator application); 0 = automatic: max(k, 4). Four is
    /// what one SIMD4<Double> lane group of `SymmetricGraphOperator.apply(block:)` carries, so
    /// a product of four vectors streams the matrix once, and the reorthogonalisation reads
    /// the basis once per block whatever b is: the cost per pass hardly grows with b while
    /// the Krylov space grows b times faster. Beyond four the reorthogonalisation, O(n·m·b)
    /// per pass, outweighs the passes saved.
    public var blockSize: Int = 0
    /// Problems of at most this dimension go to dense LAPACK.
    public var denseThreshold: Int = 300
    public var seed: UInt64 = 0x5EED
    /// Called with one line per convergence test (restart number, products, the wanted Ritz
    /// values and their relative residuals, seconds spent in products / orthogonalisation /
    /// restarts so far); nil = silent. For diagnosing slow solves (benchmarks).
    public var trace: (@Sendable (String) -> Void)? = nil
    /// The Laplacian radius solver (`laplacianLargestEigenvalue`): most products, and the
    /// relative width of its certified bracket at which it stops (the value, the bracket's
    /// midpoint, is then within half of it).
    public var radiusSteps: Int = 2000
    public var bracketTolerance: Double = 2e-9
    public init() {}

    /// The whole-graph topometrics' setting: relative residual 1e-5, tied to the SPEC's bar.
    ///
    /// What it guarantees: the returned Ritz pairs have orthonormal vectors and residuals
    /// ‖Ax − θx‖ ≤ 1e-5·max|θ| ≤ 1e-5·|λ|₁, so (A symmetric; Kahan's theorem, Bauer–Fike for
    /// one pair) there are that many distinct eigenvalues, each within 1e-5·|λ|₁ of its Ritz
    /// value. The spectral gap |λ|₁ − |λ|₃ is then within 2e-5·|λ|₁ and the Laplacian radius
    /// within 1e-5 of itself: 5 and 10 times inside the SPEC's 1e-4 (the reference runs ARPACK
    /// in single precision). On a bipartite MGE the gap is solved on the normal matrix BᵀB
    /// (`bipartiteTopAbsEigenvalues`): μ within 1e-5·μ₁ puts σ = √μ within about 0.5e-5·σ₁,
    /// so the gap is within 1e-5·|λ|₁. Like every Krylov method it presumes the wanted values are in the
    /// Krylov space (a start block orthogonal to an eigenvector never sees it). In practice the
    /// values are far closer — a Ritz value's error is about ‖r‖²/(distance to the next
    /// eigenvalue): on VGG-16 (CIFAR) 1e-5 gives the gap and radius to 1e-10 of the 1e-8
    /// solve's — but in a dense cluster (at 224×224 |λ|₃ tops one) only the linear bound
    /// holds, and each decade of residual there costs 60–120 products (docs/scale.md). One
    /// tolerance for every graph: the implicit and explicit forms run the same iterations.
    ///
    /// Basis 80: a longer cycle loses less to restarts, while the reorthogonalisation grows with
    /// the basis; 80 is where the two balance on ResNet-20. The basis costs 8·n·(80 + b) bytes
    /// (≈ 130 MB there).
    ///
    /// At most 100 restarts: every whole-graph solve in docs/scale.md converged within about 40
    /// (the slowest, ResNet-50's gap on the full adjacency: 269 products, 7 per restart); a
    /// solve that cannot converge in useful time stops with its warning instead of after hours.
    ///
    /// The Laplacian radius: residual 1e-5 as above, or a certified bracket of relative width
    /// 1e-4 (the SPEC's bar), whose midpoint is within 5e-5 of λ_max whatever the spectrum —
    /// the test that ends a band's solve (VGG-16 at 224: the residual is still 3e-4 after
    /// 300 products, the bracket closes at about 110). At most 1000 products.
    public static var wholeGraph: LanczosOptions {
        var o = LanczosOptions()
        o.tolerance = 1e-5
        o.basisSize = 80
        o.maxRestarts = 100
        o.radiusSteps = 1000
        o.bracketTolerance = 1e-4
        return o
    }

    func effectiveBlock(k: Int) -> Int {
        if blockSize > 0 { return checkMultiplicity ? max(blockSize, k) : blockSize }
        return max(k, 4)
    }
}

/// Block operator: `y = A x` for `count` column-major vectors of length n (leading dimension n).
public typealias BlockMatvec = (_ x: UnsafePointer<Double>, _ y: UnsafeMutablePointer<Double>, _ count: Int) -> Void

/// k eigenvalues of a symmetric operator at the wanted end of the spectrum, from a
/// single-vector product (applied column by column inside the block method).
/// - Complexity: see `symmetricEigenvalues(dimension:k:target:options:blockMatvec:)`.
public func symmetricEigenvalues(dimension n: Int, k: Int, target: EigenTarget,
                                 options: LanczosOptions = LanczosOptions(),
                                 matvec: (UnsafePointer<Double>, UnsafeMutablePointer<Double>) -> Void)
    -> EigenResult {
    withoutActuallyEscaping(matvec) { mv in
        symmetricEigenvalues(dimension: n, k: k, target: target, options: options) { x, y, b in
            for c in 0 ..< b { mv(x + c * n, y + c * n) }
        }
    }
}

/// k eigenvalues of a symmetric operator at the wanted end of the spectrum.
///
/// Thick-restart block Lanczos: the basis grows by blocks of b vectors (`A·V_j`, projected
/// against its coupled blocks, then once against the whole basis, then orthonormalised by
/// Cholesky QR — BLAS-3 on row blocks; blocks that fail the stability tests take two full
/// block Gram–Schmidt passes and a column-wise QR), the projected matrix H = VᵀAV is
/// diagonalised after every block once the basis holds 40 vectors (the solve stops as soon
/// as the wanted pairs converge), and on restart the most wanted half of the Ritz vectors
/// plus the residual block are kept. Rank loss in a new block (an invariant subspace, e.g. a
/// disconnected graph) continues with fresh random vectors orthogonal to the basis. Polls `Cancellation` once per
/// restart and returns unconverged when it is set (callers check it afterwards).
/// - Complexity: O((nnz·b + n·m·b)·passes) time with basis size m and block size b;
///   O(n·(m + b)) memory.
public func symmetricEigenvalues(dimension n: Int, k: Int, target: EigenTarget,
                                 options: LanczosOptions = LanczosOptions(),
                                 blockMatvec: BlockMatvec) -> EigenResult {
    let kk = min(k, n)
    if kk <= 0 { return EigenResult(values: [], residuals: [], matvecs: 0, converged: true) }
    Parallel.configureBLAS()
    var b = max(1, min(options.effectiveBlock(k: kk), n))
    // Basis size: a multiple of b, at least room for the wanted values, the kept Ritz vectors
    // and two blocks; at most n.
    var m = max(options.basisSize, 2 * kk + 2 * b + 6, 8 * b)
    m = min(n, ((m + b - 1) / b) * b)
    if m < 2 * b { b = max(1, m / 2) }
    m = (m / b) * b
    let spansAll = m >= n
    var rng = SeededGenerator(seed: options.seed)
    var V = zeroedOnHugePages(n * (m + b))
    var H = [Double](repeating: 0, count: m * m)
    var Rlast = [Double](repeating: 0, count: b * b)
    var theta = [Double](repeating: 0, count: m)
    var Y = [Double](repeating: 0, count: m * m)
    var order: [Int] = []
    var matvecs = 0, passes = 0
    var normEstimate = 0.0
    var converged = false
    var residualOf = [Double](repeating: 0, count: m)
    var productSeconds = 0.0, orthSeconds = 0.0, restartSeconds = 0.0, ritzSeconds = 0.0
    func now() -> Double { Double(DispatchTime.now().uptimeNanoseconds) / 1e9 }

    // Fills columns [s, s+b) with normalised random vectors orthogonal to columns [0, s) and
    // to each other.
    func randomBlock(_ V: inout [Double], start s: Int) {
        for i in 0 ..< n * b { V[s * n + i] = rng.uniform() - 0.5 }
        var R = [Double](repeating: 0, count: b * b)
        _ = orthonormalizeBlock(&V, start: s, width: b, R: &R, normEstimate: 0, rng: &rng)
    }

    // Projects columns [s, s+w) of V against columns [0, s) and orthonormalises them among
    // themselves, twice (block classical Gram–Schmidt, "BCGS2"): W = V·C₁ + Q₁R₁,
    // Q₁ = V·C₂ + Q R₂, so W = V·(C₁ + C₂R₁) + Q·(R₂R₁). Returns C (s × w); R (w × w, upper)
    // receives R₂R₁. A column that collapses inside the block QR (norm ≤ 1e-12·normEstimate,
    // i.e. rank loss or an invariant subspace) becomes a fresh random vector orthogonal to
    // everything, with a zero diagonal entry in R.
    func orthonormalizeBlock(_ V: inout [Double], start s: Int, width w: Int, R: inout [Double],
                             normEstimate: Double, rng: inout SeededGenerator) -> [Double] {
        var C = [Double](repeating: 0, count: max(1, s * w))
        var R1 = [Double](repeating: 0, count: w * w), R2 = R1
        V.withUnsafeMutableBufferPointer { vp in
            let base = vp.baseAddress!
            let W = base + s * n
            func projectOut() -> [Double] {
                guard s > 0 else { return [Double](repeating: 0, count: max(1, s * w)) }
                let c = blockProject(UnsafePointer(base), s, UnsafePointer(W), w, n)
                blockSubtract(UnsafePointer(base), s, c, W, w, n)
                return c
            }
            // Modified Gram–Schmidt with reorthogonalisation inside the block.
            func blockQR(_ Rq: inout [Double]) {
                for i in 0 ..< w {
                    let col = W + i * n
                    let before = parallelDot(col, col, n).squareRoot()
                    var norm = before
                    for _ in 0 ..< 3 {
                        let prev = norm
                        if i > 0 {
                            let c = projectCoefficients(UnsafePointer(W), i, col, n)
                            subtractCombination(UnsafePointer(W), i, c, col, n)
                            for l in 0 ..< i { Rq[l + i * w] += c[l] }
                        }
                        norm = parallelDot(col, col, n).squareRoot()
                        if norm > 0.7071 * prev { break }
                    }
                    if norm > 1e-12 * max(normEstimate, 1e-300) && norm > 0 {
                        Rq[i + i * w] = norm
                        cblas_dscal(Int32(n), 1 / norm, col, 1)
                        continue
                    }
                    // Collapsed: a fresh random direction orthogonal to the basis and the block.
                    Rq[i + i * w] = 0
                    var ok = false
                    for _ in 0 ..< 5 where !ok {
                        for r in 0 ..< n { col[r] = rng.uniform() - 0.5 }
                        let start = parallelDot(col, col, n).squareRoot()
                        for _ in 0 ..< 2 {
                            if s > 0 {
                                let c = projectCoefficients(UnsafePointer(base), s, col, n)
                                subtractCombination(UnsafePointer(base), s, c, col, n)
                            }
                            if i > 0 {
                                let c = projectCoefficients(UnsafePointer(W), i, col, n)
                                subtractCombination(UnsafePointer(W), i, c, col, n)
                            }
                        }
                        let nrm = parallelDot(col, col, n).squareRoot()
                        if nrm > 1e-8 * start { cblas_dscal(Int32(n), 1 / nrm, col, 1); ok = true }
                    }
                    if !ok { for r in 0 ..< n { col[r] = 0 } }
                }
            }
            let C1 = projectOut()
            blockQR(&R1)
            let C2 = projectOut()
            blockQR(&R2)
            // C = C₁ + C₂R₁, R = R₂R₁.
            for i in 0 ..< w {
                for r in 0 ..< s {
                    var v = C1[r + i * s]
                    for l in 0 ... i { v += C2[r + l * s] * R1[l + i * w] }
                    C[r + i * s] = v
                }
                for r in 0 ..< w {
                    var v = 0.0
                    for l in 0 ..< w { v += R2[r + l * w] * R1[l + i * w] }
                    R[r + i * w] = v
                }
            }
        }
        return C
    }

    // Orthonormalises the new block W = A·V[j ..< j+b) (columns [s, s+b), s = j + b) against
    // columns [0, s); returns C (s × b) and sets R (b × b, upper) with W = V·C + Q·R.
    //
    // Why not BCGS2 over the whole basis every time: in exact arithmetic A·V_j lies in the
    // span of blocks j−b, j and j+b (plus the kept Ritz vectors for the first block after a
    // restart), so the large coefficients and the cancellation are local. The cheap path
    // projects against those columns [l0, s) first, then once against the whole basis (that
    // sweep only removes rounding-level components, so one pass suffices: the DGKS test
    // below checks it), then orthonormalises the block by Cholesky QR twice (CholQR2: one Gram
    // GEMM and one triangular solve per pass over the b columns instead of b² column sweeps).
    // It reads the basis twice per block instead of four times. A block that fails a test —
    // cancellation in the full sweep, or a Gram matrix with condition above 10⁸ (rank loss,
    // an invariant subspace) — goes on through `orthonormalizeBlock`, the robust path.
    func orthonormalizeNewBlock(_ V: inout [Double], start s: Int, localFrom l0: Int, R: inout [Double]) -> [Double] {
        var C = [Double](repeating: 0, count: s * b)
        var T = [Double](repeating: 0, count: b * b)   // W_original = V·C + W·T
        for i in 0 ..< b { T[i + i * b] = 1 }
        var robust = false
        V.withUnsafeMutableBufferPointer { vp in
            let base = vp.baseAddress!
            let W = base + s * n
            if l0 > 0 {
                let Cl = blockProject(UnsafePointer(base + l0 * n), s - l0, UnsafePointer(W), b, n)
                blockSubtract(UnsafePointer(base + l0 * n), s - l0, Cl, W, b, n)
                for i in 0 ..< b { for r in l0 ..< s { C[r + i * s] += Cl[(r - l0) + i * (s - l0)] } }
            }
            let Cf = blockProject(UnsafePointer(base), s, UnsafePointer(W), b, n)
            blockSubtract(UnsafePointer(base), s, Cf, W, b, n)
            for i in 0 ..< s * b { C[i] += Cf[i] }
            // DGKS: ‖W before the sweep‖² = ‖W after‖² + ‖Cf column‖²; a column that lost more
            // than half its square norm had cancellation, so one sweep is not enough.
            let G = blockProject(UnsafePointer(W), b, UnsafePointer(W), b, n)
            for i in 0 ..< b {
                var c2 = 0.0
                for r in 0 ..< s { c2 += Cf[r + i * s] * Cf[r + i * s] }
                if c2 > G[i + i * b] { robust = true }
            }
            if robust { return }
            for pass in 0 ..< 2 {
                let gram = pass == 0 ? G : blockProject(UnsafePointer(W), b, UnsafePointer(W), b, n)
                guard let Rx = choleskyFactor(gram, b, maxCondition: 1e8) else { robust = true; return }
                applyUpperInverse(Rx, b, W, n)
                T = upperProduct(Rx, T, b)
            }
        }
        if robust {
            var Rr = [Double](repeating: 0, count: b * b)
            let Cr = orthonormalizeBlock(&V, start: s, width: b, R: &Rr, normEstimate: normEstimate, rng: &rng)
            for i in 0 ..< b { for r in 0 ..< s {
                var v = 0.0
                for l in 0 ... i { v += Cr[r + l * s] * T[l + i * b] }
                C[r + i * s] += v
            } }
            T = upperProduct(Rr, T, b)
        }
        R = T
        return C
    }

    // The first convergence test comes once the basis holds 40 vectors (or m): a small block
    // Krylov space can show a converged pair before a larger eigenvalue, barely present in the
    // start block, has appeared (40 is where the solver has always made its first test).
    let firstCheck = min(m, ((40 + b - 1) / b) * b)
    var earlyConverged = false
    // Ritz pairs of H[0 ..< sz, 0 ..< sz] (theta, Y with leading dimension sz, order, residuals
    // ‖Rl · Y[sz−b ..< sz, c]‖); sets `earlyConverged` when the kk most wanted meet the
    // tolerance. Returns false on a LAPACK failure.
    func rayleighRitz(size sz: Int, residualBlock Rl: [Double]) -> Bool {
        var Hc = [Double](repeating: 0, count: sz * sz)
        for c in 0 ..< sz { for r in 0 ..< sz { Hc[r + c * sz] = H[r + c * m] } }
        var w = [Double](repeating: 0, count: sz)
        if !smallSymmetricEigen(&Hc, &w, m: sz) { return false }
        for i in 0 ..< sz { theta[i] = w[i] }
        Y = Hc
        order = Array(0 ..< sz)
        switch target {
        case .largestMagnitude: order.sort { abs(theta[$0]) > abs(theta[$1]) }
        case .largestAlgebraic: order.sort { theta[$0] > theta[$1] }
        }
        for c in 0 ..< sz {
            var s2 = 0.0
            for l in 0 ..< b {
                var r = 0.0
                for i in 0 ..< b { r += Rl[l + i * b] * Y[(sz - b + i) + c * sz] }
                s2 += r * r
            }
            residualOf[c] = s2.squareRoot()
        }
        let scale = max(w.map { abs($0) }.max() ?? 0, 1e-300)
        earlyConverged = order.prefix(kk).allSatisfy { residualOf[$0] <= options.tolerance * scale }
        if let trace = options.trace {
            let pairs = order.prefix(kk + 3).map { i in
                String(format: "%.12g(r %.1e)", theta[i], residualOf[i] / scale)
            }.joined(separator: " ")
            trace("restart \(restarts) size \(sz) products \(passes) ritz [\(pairs)] " + String(format: "seconds product %.2f orth %.2f ritz %.2f restart %.2f", productSeconds, orthSeconds, ritzSeconds, restartSeconds))
        }
        return true
    }

    randomBlock(&V, start: 0)
    var p = 0                 // kept Ritz vectors
    var restarts = 0
    while true {
        // Expand: blocks [j, j+b) → new block [j+b, j+2b), until the basis has m columns.
        var j = p
        while j < m {
            let t0 = now()
            V.withUnsafeMutableBufferPointer { vp in
                let base = vp.baseAddress!
                blockMatvec(UnsafePointer(base + j * n), base + (j + b) * n, b)
                for c in 0 ..< b {
                    let col = base + (j + b + c) * n
                    normEstimate = max(normEstimate, parallelDot(col, col, n).squareRoot())
                }
            }
            matvecs += b; passes += 1
            let t1 = now()
            productSeconds += t1 - t0
            var R = [Double](repeating: 0, count: b * b)
            // Columns coupled to block j in exact arithmetic: the previous and the current block,
            // or everything up to it for the first block after a restart (the arrowhead).
            let localFrom = j == p ? 0 : j - b
            let C = orthonormalizeNewBlock(&V, start: j + b, localFrom: localFrom, R: &R)
            orthSeconds += now() - t1
            let s = j + b
            for i in 0 ..< b {
                for r in 0 ..< s { H[r + (j + i) * m] = C[r + i * s]; H[(j + i) + r * m] = C[r + i * s] }
            }
            if j + 2 * b <= m {
                for i in 0 ..< b { for l in 0 ..< b {
                    // New column j+b+l has coefficient R[l, i] in A·v_{j+i}.
                    H[(j + b + l) + (j + i) * m] = R[l + i * b]
                    H[(j + i) + (j + b + l) * m] = R[l + i * b]
                } }
            } else {
                Rlast = R
            }
            j += b
            // Test convergence after every block, not only when the basis is full: a cycle
            // can end as soon as the wanted pairs have converged (the Laplacian's radius
            // usually converges within the first cycle).
            if j < m && j >= firstCheck {
                let t2 = now()
                let ok = rayleighRitz(size: j, residualBlock: R)
                ritzSeconds += now() - t2
                if ok && earlyConverged { break }
            }
        }
        if earlyConverged { converged = true; break }
        if !rayleighRitz(size: m, residualBlock: Rlast) { break }
        if earlyConverged || spansAll { converged = true; break }
        restarts += 1
        if restarts > options.maxRestarts || Cancellation.isRequested { break }
        // Thick restart: keep p Ritz vectors ((m − p) divisible by b) and the residual block.
        var keepCount = kk + max(b, (m - kk) / 2)
        keepCount = min(keepCount, m - b)
        keepCount = m - ((m - keepCount + b - 1) / b) * b
        p = max(keepCount, 0)
        let t3 = now()
        defer { restartSeconds += now() - t3 }
        let keep = Array(order.prefix(p))
        var Yp = [Double](repeating: 0, count: m * max(p, 1))
        for (c, i) in keep.enumerated() { for r in 0 ..< m { Yp[r + c * m] = Y[r + i * m] } }
        if p > 0 {
            V.withUnsafeMutableBufferPointer { vp in
                let base = vp.baseAddress!
                combineInPlace(base, m, Yp, p, n)
                (base + p * n).update(from: base + m * n, count: n * b)
            }
        } else {
            V.withUnsafeMutableBufferPointer { vp in
                let base = vp.baseAddress!
                base.update(from: base + m * n, count: n * b)
            }
        }
        for i in 0 ..< m * m { H[i] = 0 }
        for (c, i) in keep.enumerated() {
            H[c + c * m] = theta[i]
            for l in 0 ..< b {
                var s = 0.0
                for q in 0 ..< b { s += Rlast[l + q * b] * Y[(m - b + q) + i * m] }
                H[(p + l) + c * m] = s; H[c + (p + l) * m] = s
            }
        }
    }
    let sel = Array(order.prefix(kk))
    return EigenResult(values: sel.map { theta[$0] }, residuals: sel.map { residualOf[$0] },
                       matvecs: matvecs, passes: passes, converged: converged)
}

/// C = V[:, 0..<c]ᵀ W (c × w, column-major) for column-major V and W with leading dimension n;
/// one single-threaded GEMM per row block, blocks handed out dynamically (`Parallel.forChunks`:
/// the cores are shared, and a static split waits for a preempted thread). One partial
/// product per block, summed in block order, so the result does not depend on the schedule.
func blockProject(_ V: UnsafePointer<Double>, _ c: Int, _ W: UnsafePointer<Double>, _ w: Int, _ n: Int) -> [Double] {
    let chunk = 16384
    let blocks = max(1, (n + chunk - 1) / chunk)
    var partial = [Double](repeating: 0, count: blocks * c * w)
    partial.withUnsafeMutableBufferPointer { pp in
        let p = SharedMutablePointer(pp.baseAddress!)
        Parallel.forChunks(n, grain: chunk) { _, r in
            cblas_dgemm(CblasColMajor, CblasTrans, CblasNoTrans, Int32(c), Int32(w), Int32(r.count), 1,
                        V + r.lowerBound, Int32(n), W + r.lowerBound, Int32(n), 0,
                        p.base + (r.lowerBound / chunk) * c * w, Int32(c))
        }
    }
    var out = [Double](repeating: 0, count: c * w)
    for t in 0 ..< blocks { for i in 0 ..< c * w { out[i] += partial[t * c * w + i] } }
    return out
}

/// W −= V[:, 0..<c] C, parallel over row blocks (dynamic).
func blockSubtract(_ V: UnsafePointer<Double>, _ c: Int, _ C: [Double], _ W: UnsafeMutablePointer<Double>, _ w: Int, _ n: Int) {
    let wp = SharedMutablePointer(W)
    C.withUnsafeBufferPointer { cp in
        let cb = cp.baseAddress!
        Parallel.forChunks(n, grain: 16384) { _, r in
            cblas_dgemm(CblasColMajor, CblasNoTrans, CblasNoTrans, Int32(r.count), Int32(w), Int32(c), -1,
                        V + r.lowerBound, Int32(n), cb, Int32(c), 1, wp.base + r.lowerBound, Int32(n))
        }
    }
}

/// V[:, 0..<p] ← V[:, 0..<m] Y (m × p, p ≤ m), in place: each row block's product goes to a
/// block-sized scratch and is copied back over the block's first p columns (rows are
/// independent), so the restart needs no n × p copy of the basis (1.75 GB for VGG-16 at
/// 224). Row blocks of 16384 rows, one GEMM each.
func combineInPlace(_ V: UnsafeMutablePointer<Double>, _ m: Int, _ Y: [Double], _ p: Int, _ n: Int) {
    let chunk = 16384
    let vp = SharedMutablePointer(V)
    Y.withUnsafeBufferPointer { yp in
        let yb = yp.baseAddress!
        Parallel.forChunks(n, grain: chunk) { _, r in
            let rows = r.count
            let scratch = UnsafeMutablePointer<Double>.allocate(capacity: rows * p)
            defer { scratch.deallocate() }
            cblas_dgemm(CblasColMajor, CblasNoTrans, CblasNoTrans, Int32(rows), Int32(p), Int32(m), 1,
                        vp.base + r.lowerBound, Int32(n), yb, Int32(m), 0, scratch, Int32(rows))
            for c in 0 ..< p { (vp.base + c * n + r.lowerBound).update(from: scratch + c * rows, count: rows) }
        }
    }
}

/// `count` zeros in an array whose pages the kernel is asked to back with transparent huge pages
/// (madvise before the first touch): the Lanczos basis is 100+ MB on a ResNet-20 graph, and
/// zero-filling it page by page took tens of thousands of page faults per solve, two solves per
/// topometrics. Only a hint: where huge pages are off it is an ordinary zeroed array.
func zeroedOnHugePages(_ count: Int) -> [Double] {
    [Double](unsafeUninitializedCapacity: count) { buffer, initialized in
        if let base = buffer.baseAddress, count * 8 >= 4 << 20 {
            let huge = 2 << 20
            let start = (Int(bitPattern: base) + huge - 1) / huge * huge
            let end = (Int(bitPattern: base + count)) / huge * huge
            if end > start, let p = UnsafeMutableRawPointer(bitPattern: start) {
                _ = adviseHugePages(p, end - start)
            }
        }
        buffer.initialize(repeating: 0)
        initialized = count
    }
}

/// Linux's madvise(addr, length, MADV_HUGEPAGE); elsewhere nothing.
private func adviseHugePages(_ address: UnsafeMutableRawPointer, _ length: Int) -> Int32 {
    #if os(Linux)
    return linuxMadvise(address, length, 14) // MADV_HUGEPAGE (<sys/mman.h>)
    #else
    return 0
    #endif
}

#if os(Linux)
/// glibc's `int madvise(void *addr, size_t length, int advice)`, which the Glibc module does not export.
@_silgen_name("madvise") private func linuxMadvise(_ address: UnsafeMutableRawPointer?, _ length: Int, _ advice: Int32) -> Int32
#endif

/// Upper Cholesky factor R (w × w, column-major, RᵀR = G) of a symmetric positive definite Gram
/// matrix, or nil when G's 2-norm condition exceeds `maxCondition` (or LAPACK fails): Cholesky
/// QR loses orthogonality like cond(G)·ε, so an ill-conditioned block takes the robust path.
/// - Complexity: O(w³).
func choleskyFactor(_ G: [Double], _ w: Int, maxCondition: Double) -> [Double]? {
    var e = G, ev = [Double](repeating: 0, count: w)
    guard LAPACKE_dsyev(LAPACK_COL_MAJOR, Int8(UInt8(ascii: "N")), Int8(UInt8(ascii: "U")), Int32(w), &e, Int32(w), &ev) == 0,
          let lo = ev.first, let hi = ev.last, lo > 0, hi <= maxCondition * lo else { return nil }
    var r = G
    guard LAPACKE_dpotrf(LAPACK_COL_MAJOR, Int8(UInt8(ascii: "U")), Int32(w), &r, Int32(w)) == 0 else { return nil }
    for i in 0 ..< w { for l in i + 1 ..< w { r[l + i * w] = 0 } }
    return r
}

/// W ← W R⁻¹ for column-major W (n × w) and upper R (w × w), parallel over row blocks (dynamic).
func applyUpperInverse(_ R: [Double], _ w: Int, _ W: UnsafeMutablePointer<Double>, _ n: Int) {
    let wp = SharedMutablePointer(W)
    R.withUnsafeBufferPointer { rp in
        let rb = rp.baseAddress!
        Parallel.forChunks(n, grain: 16384) { _, r in
            cblas_dtrsm(CblasColMajor, CblasRight, CblasUpper, CblasNoTrans, CblasNonUnit, Int32(r.count), Int32(w), 1,
                        rb, Int32(w), wp.base + r.lowerBound, Int32(n))
        }
    }
}

/// A·B for upper triangular w × w column-major A and B.
func upperProduct(_ A: [Double], _ B: [Double], _ w: Int) -> [Double] {
    var out = [Double](repeating: 0, count: w * w)
    for i in 0 ..< w { for r in 0 ... i {
        var v = 0.0
        for l in r ... i { v += A[r + l * w] * B[l + i * w] }
        out[r + i * w] = v
    } }
    return out
}
