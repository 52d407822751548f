import CBLAS
import CLapacke

// Spectral metrics: a thick-restart Lanczos (Krylov–Schur form, full reorthogonalisation,
// Double precision) for a few extreme eigenvalues of a symmetric sparse matrix, the
// operators built on the undirected view (weighted/unweighted adjacency, Laplacian), and
// the derived spectral gap / spectral radius. Small problems go to dense LAPACK (dsyevd).

/// Which end of the spectrum to compute.
public enum EigenTarget: Sendable {
    /// Largest |λ| (ARPACK's "LM").
    case largestMagnitude
    /// Largest λ (ARPACK's "LA").
    case largestAlgebraic
}

/// The symmetric matrix built on an undirected view: `A` (weighted or 0/1) or the Laplacian
/// `L = diag(column sums of A) − A`.
public struct SymmetricGraphOperator: @unchecked Sendable {
    public let view: UndirectedView
    public let weighted: Bool
    public let laplacian: Bool
    /// Row sums of A (only for the Laplacian).
    let diagonal: [Double]

    public init(view: UndirectedView, weighted: Bool = true, laplacian: Bool = false) {
        self.view = view
        self.weighted = weighted && !view.weights.isEmpty
        self.laplacian = laplacian
        if laplacian {
            var d = [Double](repeating: 0, count: view.nodeCount)
            for v in 0 ..< view.nodeCount {
                if self.weighted {
                    var s = 0.0
                    for e in view.offsets[v] ..< view.offsets[v + 1] { s += Double(view.weights[e]) }
                    d[v] = s
                } else {
                    d[v] = Double(view.degree(v))
                }
            }
            diagonal = d
        } else {
            diagonal = []
        }
    }

    public var dimension: Int { view.nodeCount }

    /// y = M x, parallel over row blocks.
    /// - Complexity: O(n + nnz) per product.
    public func apply(_ x: UnsafePointer<Double>, _ y: UnsafeMutablePointer<Double>) {
        let n = view.nodeCount
        let yp = SharedMutablePointer(y)
        view.offsets.withUnsafeBufferPointer { off in
        view.neighbors.withUnsafeBufferPointer { nb in
        view.weights.withUnsafeBufferPointer { wt in
        diagonal.withUnsafeBufferPointer { dg in
            let weighted = self.weighted, lap = self.laplacian
            parallelChunks(count: n, chunk: 8192) { _, range in
                for v in range {
                    var s = 0.0
                    if weighted {
                        for e in off[v] ..< off[v + 1] { s += Double(wt[e]) * x[Int(nb[e])] }
                    } else {
                        for e in off[v] ..< off[v + 1] { s += x[Int(nb[e])] }
                    }
                    yp[v] = lap ? dg[v] * x[v] - s : s
                }
            }
        }}}}
    }

    /// The dense matrix (row-major n×n), for small problems and tests.
    /// - Complexity: O(n² + nnz) time and memory.
    public func dense() -> [Double] {
        let n = view.nodeCount
        var a = [Double](repeating: 0, count: n * n)
        for v in 0 ..< n {
            for e in view.offsets[v] ..< view.offsets[v + 1] {
                let w = weighted ? Double(view.weights[e]) : 1
                a[v * n + Int(view.neighbors[e])] = laplacian ? -w : w
            }
            if laplacian { a[v * n + v] = diagonal[v] }
        }
        return a
    }
}

/// All eigenvalues (ascending) of a dense symmetric row-major n×n matrix, by LAPACK dsyevd.
/// Returns nil if LAPACK reports a failure.
/// - Complexity: O(n³) time, O(n²) memory.
public func denseSymmetricEigenvalues(_ a: [Double], n: Int) -> [Double]? {
    if n == 0 { return [] }
    var m = a
    var w = [Double](repeating: 0, count: n)
    let info = LAPACKE_dsyevd(LAPACK_ROW_MAJOR, Int8(UInt8(ascii: "N")), Int8(UInt8(ascii: "U")),
                              Int32(n), &m, Int32(n), &w)
    return info == 0 ? w : nil
}

/// Eigen-decomposition of a small dense symmetric column-major m×m matrix (values ascending,
/// vectors overwrite `a` column by column). Returns false on LAPACK failure.
func smallSymmetricEigen(_ a: inout [Double], _ w: inout [Double], m: Int) -> Bool {
    let info = LAPACKE_dsyev(LAPACK_COL_MAJOR, Int8(UInt8(ascii: "V")), Int8(UInt8(ascii: "U")),
                             Int32(m), &a, Int32(m), &w)
    return info == 0
}

/// Deterministic generator (SplitMix64) for start vectors and sampling.
public struct SplitMix64: RandomNumberGenerator, Sendable {
    var state: UInt64
    public init(seed: UInt64) { state = seed }
    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// x·y over n entries, two threads.
func parallelDot(_ x: UnsafePointer<Double>, _ y: UnsafePointer<Double>, _ n: Int) -> Double {
    var partial = [Double](repeating: 0, count: Parallel.workers)
    partial.withUnsafeMutableBufferPointer { pp in
        let p = SharedMutablePointer(pp.baseAddress!)
        parallelChunks(count: n, chunk: 16384) { t, r in
            var s = 0.0
            for i in r { s += x[i] * y[i] }
            p[t] += s
        }
    }
    return partial.reduce(0, +)
}

/// c = Vᵀw for the first `cols` columns of column-major V (n rows), two threads over row blocks.
func projectCoefficients(_ V: UnsafePointer<Double>, _ cols: Int, _ w: UnsafePointer<Double>, _ n: Int) -> [Double] {
    let threads = Parallel.workers
    var partial = [Double](repeating: 0, count: threads * cols)
    partial.withUnsafeMutableBufferPointer { pp in
        let p = SharedMutablePointer(pp.baseAddress!)
        parallelChunks(count: n, chunk: 8192, threads: threads) { t, r in
            for j in 0 ..< cols {
                let col = V + j * n
                var s = 0.0
                for i in r { s += col[i] * w[i] }
                p[t * cols + j] += s
            }
        }
    }
    var c = [Double](repeating: 0, count: cols)
    for t in 0 ..< threads { for j in 0 ..< cols { c[j] += partial[t * cols + j] } }
    return c
}

/// w −= V c, two threads over row blocks.
func subtractCombination(_ V: UnsafePointer<Double>, _ cols: Int, _ c: [Double], _ w: UnsafeMutablePointer<Double>, _ n: Int) {
    let wp = SharedMutablePointer(w)
    c.withUnsafeBufferPointer { cp in
        parallelChunks(count: n, chunk: 8192) { _, r in
            for j in 0 ..< cols {
                let col = V + j * n
                let cj = cp[j]
                if cj == 0 { continue }
                for i in r { wp[i] -= cj * col[i] }
            }
        }
    }
}

/// Result of an eigen-solve.
public struct EigenResult: Sendable {
    /// Eigenvalues, most wanted first (by |λ| for `.largestMagnitude`, by λ otherwise).
    public var values: [Double]
    /// Residual norms ‖Ax − θx‖ of the returned pairs.
    public var residuals: [Double]
    /// Matrix–vector products used.
    public var matvecs: Int
    /// Whether every returned pair met the tolerance.
    public var converged: Bool
}

/// Options of the Lanczos solver.
public struct LanczosOptions: Sendable {
    /// Relative residual tolerance: ‖Ax − θx‖ ≤ tol · max|θ|.
    public var tolerance: Double = 1e-9
    /// Krylov basis size (clamped to [2k + 8, n]).
    public var basisSize: Int = 40
    /// Maximum number of restarts.
    public var maxRestarts: Int = 500
    /// After convergence, search the deflated operator (converged vectors locked) for a
    /// further eigenvalue at least as wanted as the k-th one: catches repeated eigenvalues,
    /// which a single-vector Krylov space cannot represent.
    public var checkMultiplicity: Bool = true
    /// Problems of at most this dimension go to dense LAPACK.
    public var denseThreshold: Int = 300
    public var seed: UInt64 = 0x5EED
    public init() {}
}

/// k eigenvalues of a symmetric operator at the wanted end of the spectrum.
///
/// Thick-restart Lanczos (Wu–Simon / Krylov–Schur for symmetric matrices) with full
/// reorthogonalisation (classical Gram–Schmidt applied twice, through BLAS), restarting with
/// the most wanted half of the Ritz vectors. Breakdown (an invariant subspace, e.g. a
/// disconnected graph) continues with a fresh random vector orthogonal to the basis.
/// With `checkMultiplicity`, converged vectors are locked and the deflated operator is
/// searched again, until nothing further as wanted as the k-th value remains.
/// - Complexity: O((nnz + n·b)·iterations) time with basis size b; O(n·b) memory.
public func symmetricEigenvalues(dimension n: Int, k: Int, target: EigenTarget,
                                 options: LanczosOptions = LanczosOptions(),
                                 matvec: (UnsafePointer<Double>, UnsafeMutablePointer<Double>) -> Void)
    -> EigenResult {
    let kk = min(k, n)
    if kk <= 0 { return EigenResult(values: [], residuals: [], matvecs: 0, converged: true) }
    var rng = SplitMix64(seed: options.seed)
    var locked: [Double] = []      // n × L, column-major
    var lockedValues: [Double] = []
    var lockedRes: [Double] = []
    var matvecs = 0
    var allConverged = true
    // First pass: the k wanted values.
    let first = lanczosCore(n: n, k: kk, target: target, options: options, locked: locked,
                            lockedCount: 0, rng: &rng, matvec: matvec)
    matvecs += first.matvecs
    allConverged = allConverged && first.converged
    lockedValues = first.values; lockedRes = first.residuals; locked = first.vectors
    if options.checkMultiplicity {
        // Repeatedly look for one more wanted value in the orthogonal complement.
        var rounds = 0
        while lockedValues.count < n && rounds < 64 {
            rounds += 1
            // A loose tolerance suffices to decide; a found value is then refined.
            var loose = options
            loose.tolerance = max(options.tolerance, 1e-6)
            var extra = lanczosCore(n: n, k: 1, target: target, options: loose, locked: locked,
                                    lockedCount: lockedValues.count, rng: &rng, matvec: matvec)
            matvecs += extra.matvecs
            guard let v0 = extra.values.first else { break }
            var v = v0
            let kth = kthWanted(lockedValues, kk, target)
            let scale = max(lockedValues.map { abs($0) }.max() ?? 0, 1e-300)
            let better: Bool
            switch target {
            // Only a strictly more wanted value changes the top-k multiset (an equal one would
            // merely swap places with the k-th).
            case .largestMagnitude: better = abs(v) > abs(kth) + 1e-9 * scale
            case .largestAlgebraic: better = v > kth + 1e-9 * scale
            }
            if !better { break }
            if options.tolerance < loose.tolerance {
                extra = lanczosCore(n: n, k: 1, target: target, options: options, locked: locked,
                                    lockedCount: lockedValues.count, rng: &rng, matvec: matvec)
                matvecs += extra.matvecs
                guard let refined = extra.values.first else { break }
                v = refined
            }
            allConverged = allConverged && extra.converged
            lockedValues.append(v); lockedRes.append(extra.residuals[0])
            locked.append(contentsOf: extra.vectors)
        }
    }
    var order = Array(0 ..< lockedValues.count)
    switch target {
    case .largestMagnitude: order.sort { abs(lockedValues[$0]) > abs(lockedValues[$1]) }
    case .largestAlgebraic: order.sort { lockedValues[$0] > lockedValues[$1] }
    }
    let take = order.prefix(kk)
    return EigenResult(values: take.map { lockedValues[$0] }, residuals: take.map { lockedRes[$0] },
                       matvecs: matvecs, converged: allConverged)
}

private func kthWanted(_ values: [Double], _ k: Int, _ target: EigenTarget) -> Double {
    var v = values
    switch target {
    case .largestMagnitude: v.sort { abs($0) > abs($1) }
    case .largestAlgebraic: v.sort(by: >)
    }
    return v[min(k, v.count) - 1]
}

private struct CoreResult {
    var values: [Double]
    var residuals: [Double]
    var vectors: [Double]
    var matvecs: Int
    var converged: Bool
}

/// One thick-restart Lanczos run on the complement of `locked` (n × lockedCount).
private func lanczosCore(n: Int, k: Int, target: EigenTarget, options: LanczosOptions,
                         locked: [Double], lockedCount: Int, rng: inout SplitMix64,
                         matvec: (UnsafePointer<Double>, UnsafeMutablePointer<Double>) -> Void) -> CoreResult {
    let avail = n - lockedCount
    if avail <= 0 { return CoreResult(values: [], residuals: [], vectors: [], matvecs: 0, converged: true) }
    let kk = min(k, avail)
    let m = min(avail, max(options.basisSize, 2 * kk + 8))
    // Basis: m + 1 columns of length n (column-major), workspace for the restart.
    var V = [Double](repeating: 0, count: n * (m + 1))
    var H = [Double](repeating: 0, count: m * m)
    var h = [Double](repeating: 0, count: m + 1)
    var hl = [Double](repeating: 0, count: max(lockedCount, 1))
    var matvecs = 0
    var normEstimate = 0.0

    // Orthogonalises column `col` of V against locked vectors and V[:, 0..<cols] (classical
    // Gram–Schmidt with a second pass only when the norm drops by more than 1/√2, the DGKS
    // criterion); accumulates the V-coefficients in h. Returns the resulting norm. Own
    // two-thread kernels rather than BLAS so OpenBLAS threads do not compete with the SpMV's.
    func orthogonalize(_ V: inout [Double], col: Int, cols: Int, accumulate: Bool) -> Double {
        V.withUnsafeMutableBufferPointer { vp in
            let base = vp.baseAddress!
            let w = base + col * n
            if accumulate { for i in 0 ..< cols { h[i] = 0 } }
            var norm = parallelDot(w, w, n).squareRoot()
            for _ in 0 ..< 3 {
                let before = norm
                if lockedCount > 0 {
                    locked.withUnsafeBufferPointer { lp in
                        let c = projectCoefficients(UnsafePointer(lp.baseAddress!), lockedCount, w, n)
                        subtractCombination(UnsafePointer(lp.baseAddress!), lockedCount, c, w, n)
                    }
                }
                if cols > 0 {
                    let c = projectCoefficients(UnsafePointer(base), cols, w, n)
                    subtractCombination(UnsafePointer(base), cols, c, w, n)
                    if accumulate { for i in 0 ..< cols { h[i] += c[i] } }
                }
                norm = parallelDot(w, w, n).squareRoot()
                if norm > 0.7071 * before { break }
            }
            return norm
        }
    }
    func randomColumn(_ V: inout [Double], col: Int) {
        for i in 0 ..< n { V[col * n + i] = Double(rng.next() >> 11) * 0x1p-53 - 0.5 }
    }
    func scaleColumn(_ V: inout [Double], col: Int, by s: Double) {
        V.withUnsafeMutableBufferPointer { vp in cblas_dscal(Int32(n), s, vp.baseAddress! + col * n, 1) }
    }
    // Fresh normalised random column orthogonal to everything before it (retries on bad luck).
    func freshColumn(_ V: inout [Double], col: Int) -> Bool {
        for _ in 0 ..< 5 {
            randomColumn(&V, col: col)
            let before = V.withUnsafeBufferPointer { parallelDot($0.baseAddress! + col * n, $0.baseAddress! + col * n, n).squareRoot() }
            let nrm = orthogonalize(&V, col: col, cols: col, accumulate: false)
            if nrm > 1e-8 * before { scaleColumn(&V, col: col, by: 1 / nrm); return true }
        }
        return false
    }

    if !freshColumn(&V, col: 0) {
        return CoreResult(values: [], residuals: [], vectors: [], matvecs: 0, converged: false)
    }
    var p = 0                // number of kept (locked-in-basis) Ritz vectors
    var beta = 0.0           // residual norm coupling of the last column
    var theta = [Double](repeating: 0, count: m)
    var Y = [Double](repeating: 0, count: m * m)
    var wantedOrder: [Int] = []
    var converged = false
    var restarts = 0
    var tmp = [Double](repeating: 0, count: 0)
    while true {
        // Expand the basis from column p to m.
        var j = p
        while j < m {
            V.withUnsafeMutableBufferPointer { vp in
                let base = vp.baseAddress!
                matvec(UnsafePointer(base + j * n), base + (j + 1) * n)
            }
            matvecs += 1
            let nrm = orthogonalize(&V, col: j + 1, cols: j + 1, accumulate: true)
            for i in 0 ... j { H[i + j * m] = h[i]; H[j + i * m] = h[i] }
            normEstimate = max(normEstimate, abs(h[j]) + nrm)
            if nrm <= 1e-12 * max(normEstimate, 1e-300) {
                // Invariant subspace: continue with a fresh direction, no coupling.
                beta = 0
                if j + 1 < m || true {
                    if !freshColumn(&V, col: j + 1) { beta = 0; j += 1; break }
                }
            } else {
                beta = nrm
                scaleColumn(&V, col: j + 1, by: 1 / nrm)
            }
            if j + 1 < m { H[(j + 1) + j * m] = beta; H[j + (j + 1) * m] = beta }
            j += 1
        }
        // Ritz values of the projected matrix.
        var Hc = H
        if !smallSymmetricEigen(&Hc, &theta, m: m) { break }
        Y = Hc
        var order = Array(0 ..< m)
        switch target {
        case .largestMagnitude: order.sort { abs(theta[$0]) > abs(theta[$1]) }
        case .largestAlgebraic: order.sort { theta[$0] > theta[$1] }
        }
        wantedOrder = order
        let scale = max(theta.map { abs($0) }.max() ?? 0, 1e-300)
        var ok = true
        for i in order.prefix(kk) where abs(beta * Y[(m - 1) + i * m]) > options.tolerance * scale {
            ok = false
        }
        if ok || m >= avail { converged = ok || m >= avail; break }
        restarts += 1
        if restarts > options.maxRestarts { break }
        // Thick restart: keep the p most wanted Ritz vectors and the residual direction.
        p = min(m - 2, kk + max(2, (m - kk) / 2))
        let keep = Array(order.prefix(p))
        var Yp = [Double](repeating: 0, count: m * p)
        for (c, i) in keep.enumerated() { for r in 0 ..< m { Yp[r + c * m] = Y[r + i * m] } }
        if tmp.count != n * p { tmp = [Double](repeating: 0, count: n * p) }
        V.withUnsafeMutableBufferPointer { vp in
            cblas_dgemm(CblasColMajor, CblasNoTrans, CblasNoTrans, Int32(n), Int32(p), Int32(m), 1,
                        vp.baseAddress!, Int32(n), Yp, Int32(m), 0, &tmp, Int32(n))
            // Residual direction (column m) moves to column p.
            let base = vp.baseAddress!
            (base + p * n).update(from: base + m * n, count: n)
            tmp.withUnsafeBufferPointer { base.update(from: $0.baseAddress!, count: n * p) }
        }
        for i in 0 ..< m * m { H[i] = 0 }
        for (c, i) in keep.enumerated() {
            H[c + c * m] = theta[i]
            let s = beta * Y[(m - 1) + i * m]
            H[c + p * m] = s; H[p + c * m] = s
        }
    }
    // Ritz vectors of the k most wanted.
    let sel = Array(wantedOrder.prefix(kk))
    var Ysel = [Double](repeating: 0, count: m * sel.count)
    for (c, i) in sel.enumerated() { for r in 0 ..< m { Ysel[r + c * m] = Y[r + i * m] } }
    var X = [Double](repeating: 0, count: n * sel.count)
    if !sel.isEmpty {
        V.withUnsafeBufferPointer { vp in
            cblas_dgemm(CblasColMajor, CblasNoTrans, CblasNoTrans, Int32(n), Int32(sel.count), Int32(m), 1,
                        vp.baseAddress!, Int32(n), Ysel, Int32(m), 0, &X, Int32(n))
        }
    }
    return CoreResult(values: sel.map { theta[$0] },
                      residuals: sel.map { abs(beta * Y[(m - 1) + $0 * m]) },
                      vectors: X, matvecs: matvecs, converged: converged)
}

/// k eigenvalues of a graph operator: dense LAPACK for small dimensions, Lanczos otherwise.
/// - Complexity: O(n³) when n ≤ `options.denseThreshold`, else as `symmetricEigenvalues`.
public func graphEigenvalues(_ op: SymmetricGraphOperator, k: Int, target: EigenTarget,
                             options: LanczosOptions = LanczosOptions()) -> EigenResult {
    let n = op.dimension
    if n <= options.denseThreshold {
        guard let all = denseSymmetricEigenvalues(op.dense(), n: n) else {
            return EigenResult(values: [], residuals: [], matvecs: 0, converged: false)
        }
        var v = all
        switch target {
        case .largestMagnitude: v.sort { abs($0) > abs($1) }
        case .largestAlgebraic: v.sort(by: >)
        }
        let t = Array(v.prefix(k))
        return EigenResult(values: t, residuals: t.map { _ in 0 }, matvecs: 0, converged: true)
    }
    return symmetricEigenvalues(dimension: n, k: k, target: target, options: options) { x, y in op.apply(x, y) }
}

/// Three largest |λ| of the (weighted or 0/1) adjacency of the view, descending; missing
/// entries (n < 3) are 0.
/// - Complexity: see `graphEigenvalues`.
public func topAbsEigenvalues(_ view: UndirectedView, weighted: Bool = true, count: Int = 3,
                              options: LanczosOptions = LanczosOptions()) -> [Double] {
    if view.neighbors.isEmpty { return [Double](repeating: 0, count: count) }
    let r = graphEigenvalues(SymmetricGraphOperator(view: view, weighted: weighted), k: count,
                             target: .largestMagnitude, options: options)
    var a = r.values.map { abs($0) }.sorted(by: >)
    while a.count < count { a.append(0) }
    return a
}

/// spectral_gap = |λ|₁ − |λ|₃ of the weighted adjacency of the undirected view.
public func spectralGap(_ view: UndirectedView, weighted: Bool = true,
                        options: LanczosOptions = LanczosOptions()) -> Double {
    let a = topAbsEigenvalues(view, weighted: weighted, options: options)
    return a[0] - a[2]
}

/// spectral_radius = largest eigenvalue of L = diag(column sums of A) − A (weighted).
/// - Complexity: see `graphEigenvalues`.
public func laplacianSpectralRadius(_ view: UndirectedView, weighted: Bool = true,
                                    options: LanczosOptions = LanczosOptions()) -> Double {
    if view.neighbors.isEmpty { return 0 }
    var o = options
    o.checkMultiplicity = false   // the largest value is all that is asked; its multiplicity is irrelevant
    let r = graphEigenvalues(SymmetricGraphOperator(view: view, weighted: weighted, laplacian: true),
                             k: 1, target: .largestAlgebraic, options: o)
    return r.values.first ?? 0
}
