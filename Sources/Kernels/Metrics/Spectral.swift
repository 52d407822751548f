import CBLAS
import CLapacke
import Dispatch

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
        workspace = BlockWorkspace()
    }

    let workspace: BlockWorkspace

    /// Y = M X for `count` column-major vectors (leading dimension n).
    ///
    /// The vectors are interleaved up to eight at a time (64 bytes per node for five to eight,
    /// 32 bytes for up to four), so each matrix entry is read once per group and its
    /// neighbour's lanes arrive in one contiguous load: one group of eight costs less than two
    /// of four (the matrix stream is shared; the lane arithmetic, two doubles per SSE2
    /// instruction, is not). Not reentrant: one product at a time per operator.
    /// - Complexity: O(n + nnz) per group of eight vectors; O(n) scratch.
    public func apply(block x: UnsafePointer<Double>, _ y: UnsafeMutablePointer<Double>, count b: Int) {
        applyInLaneGroups(block: x, y, count: b)
    }

    /// Y = M X for `w ≤ L.scalarCount` vectors from their interleaved copy `xi`.
    ///
    /// Rows are handed out dynamically (`Parallel.forChunks`): the cores are shared, and a
    /// static split waits for whichever thread the scheduler preempted.
    @inline(__always)
    func product<L: GatherLanes>(_ xi: UnsafeMutablePointer<L>, _ y: UnsafeMutablePointer<Double>, width w: Int) {
        let n = view.nodeCount
        let weighted = self.weighted, lap = laplacian
        let yp = SharedMutablePointer(y)
        let xs = SharedMutablePointer(xi)
        view.offsets.withUnsafeBufferPointer { off in
        view.neighbors.withUnsafeBufferPointer { nb in
        view.weights.withUnsafeBufferPointer { wt in
        diagonal.withUnsafeBufferPointer { dg in
            Parallel.forChunks(n, grain: 2048) { _, r in
                let xi = xs.base
                for u in r {
                    var s = L()
                    if weighted {
                        for e in off[u] ..< off[u + 1] { s = L.adding(s, Double(wt[e]), xi[Int(nb[e])]) }
                    } else {
                        for e in off[u] ..< off[u + 1] { s = L.adding(s, 1, xi[Int(nb[e])]) }
                    }
                    if lap { s = L.adding(L.adding(L(), dg[u], xi[u]), -1, s) }
                    for c in 0 ..< w { yp[c * n + u] = s[c] }
                }
            }
        }}}}
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
            Parallel.forChunks(n, grain: 8192) { _, range in
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

/// Lane vector of the block product: `adding(s, a, x)` is s + a·x on concrete SIMD types, so
/// the generic kernel specialises to vector instructions (the generic SIMD operators are
/// element loops).
protocol GatherLanes: SIMD where Scalar == Double {
    static func adding(_ s: Self, _ a: Double, _ x: Self) -> Self
}

extension SIMD4<Double>: GatherLanes {
    @inline(__always) static func adding(_ s: Self, _ a: Double, _ x: Self) -> Self { s + Self(repeating: a) * x }
}

extension SIMD2<Double>: GatherLanes {
    @inline(__always) static func adding(_ s: Self, _ a: Double, _ x: Self) -> Self { s + Self(repeating: a) * x }
}

extension SIMD8<Double>: GatherLanes {
    @inline(__always) static func adding(_ s: Self, _ a: Double, _ x: Self) -> Self { s + Self(repeating: a) * x }
}

/// A symmetric operator whose block product runs on groups of up to eight vectors
/// interleaved per node (both graph forms' spectral operators).
protocol LaneGroupProduct {
    var dimension: Int { get }
    var workspace: BlockWorkspace { get }
    /// Y = M X for `w ≤ L.scalarCount` column-major vectors (leading dimension n) from their
    /// interleaved copy `xi`.
    func product<L: GatherLanes>(_ xi: UnsafeMutablePointer<L>, _ y: UnsafeMutablePointer<Double>, width w: Int)
}

extension LaneGroupProduct {
    /// Y = M X for `count` column-major vectors, eight (or, for the last up to four, four)
    /// lanes at a time.
    func applyInLaneGroups(block x: UnsafePointer<Double>, _ y: UnsafeMutablePointer<Double>, count b: Int) {
        let n = dimension
        if n == 0 || b <= 0 { return }
        var g = 0
        while g < b {
            let w = min(8, b - g)
            if w > 4 {
                group(SIMD8<Double>.self, x + g * n, y + g * n, width: w)
            } else if w <= 2 {
                group(SIMD2<Double>.self, x + g * n, y + g * n, width: w)
            } else {
                group(SIMD4<Double>.self, x + g * n, y + g * n, width: w)
            }
            g += w
        }
    }

    @inline(__always)
    private func group<L: GatherLanes>(_: L.Type, _ x: UnsafePointer<Double>, _ y: UnsafeMutablePointer<Double>, width w: Int) {
        let n = dimension
        let xi = workspace.interleaved(L.self, n: n)
        Parallel.forChunks(n, grain: 8192) { _, r in
            for v in r {
                var s = L()
                for c in 0 ..< w { s[c] = x[c * n + v] }
                xi[v] = s
            }
        }
        product(xi, y, width: w)
    }
}

extension SymmetricGraphOperator: LaneGroupProduct {}

/// Scratch of the block product: the interleaved input, 32 or 64 bytes per node (the widest
/// lanes asked so far), cache-line aligned (allocated on first use, reused across products).
final class BlockWorkspace: @unchecked Sendable {
    private var raw: UnsafeMutableRawPointer?
    private var bytes = 0

    /// The scratch viewed as n lane vectors of type L.
    func interleaved<L: GatherLanes>(_: L.Type, n: Int) -> UnsafeMutablePointer<L> {
        let needed = max(1, n) * MemoryLayout<L>.stride
        if needed > bytes || raw == nil {
            raw?.deallocate()
            raw = UnsafeMutableRawPointer.allocate(byteCount: needed, alignment: 64)
            bytes = needed
        }
        // Only ever one binding in use at a time (the operator is not reentrant).
        return raw.unsafelyUnwrapped.bindMemory(to: L.self, capacity: n)
    }

    deinit { raw?.deallocate() }
}

/// x·y over n entries, row blocks spread over the cores. Summed per fixed block of rows, then
/// over the blocks in order, so the value does not depend on the thread count (sweep shards on
/// machines with other core counts write the same rows).
func parallelDot(_ x: UnsafePointer<Double>, _ y: UnsafePointer<Double>, _ n: Int) -> Double {
    let chunk = 16384
    var partial = [Double](repeating: 0, count: max(1, (n + chunk - 1) / chunk))
    partial.withUnsafeMutableBufferPointer { pp in
        let p = SharedMutablePointer(pp.baseAddress!)
        Parallel.forChunks(n, grain: chunk) { _, r in
            var s = 0.0
            for i in r { s += x[i] * y[i] }
            p[r.lowerBound / chunk] = s
        }
    }
    return partial.reduce(0, +)
}

/// c = Vᵀw for the first `cols` columns of column-major V (n rows), row blocks spread over the cores;
/// per-block sums added in block order (independent of the thread count, as `parallelDot`).
func projectCoefficients(_ V: UnsafePointer<Double>, _ cols: Int, _ w: UnsafePointer<Double>, _ n: Int) -> [Double] {
    let chunk = 8192
    let blocks = max(1, (n + chunk - 1) / chunk)
    var partial = [Double](repeating: 0, count: blocks * cols)
    partial.withUnsafeMutableBufferPointer { pp in
        let p = SharedMutablePointer(pp.baseAddress!)
        Parallel.forChunks(n, grain: chunk) { _, r in
            let b = r.lowerBound / chunk
            for j in 0 ..< cols {
                let col = V + j * n
                var s = 0.0
                for i in r { s += col[i] * w[i] }
                p[b * cols + j] = s
            }
        }
    }
    var c = [Double](repeating: 0, count: cols)
    for b in 0 ..< blocks { for j in 0 ..< cols { c[j] += partial[b * cols + j] } }
    return c
}

/// w −= V c, row blocks spread over the cores.
func subtractCombination(_ V: UnsafePointer<Double>, _ cols: Int, _ c: [Double], _ w: UnsafeMutablePointer<Double>, _ n: Int) {
    let wp = SharedMutablePointer(w)
    c.withUnsafeBufferPointer { cp in
        Parallel.forChunks(n, grain: 8192) { _, r in
            for j in 0 ..< cols {
                let col = V + j * n
                let cj = cp[j]
                if cj == 0 { continue }
                for i in r { wp[i] -= cj * col[i] }
            }
        }
    }
}

/// k eigenvalues of a graph operator: dense LAPACK for small dimensions, Lanczos otherwise.
/// - Complexity: O(n³) when n ≤ `options.denseThreshold`, else as `symmetricEigenvalues`.
public func graphEigenvalues(_ op: SymmetricGraphOperator, k: Int, target: EigenTarget,
                             options: LanczosOptions = LanczosOptions()) -> EigenResult {
    graphEigenvalues(dimension: op.dimension, dense: { op.dense() }, k: k, target: target, options: options) { x, y, b in
        op.apply(block: x, y, count: b)
    }
}

/// The same for any symmetric operator given by its dense form (used when n ≤
/// `options.denseThreshold`) and its block product (the implicit MGE's operator).
func graphEigenvalues(dimension n: Int, dense: () -> [Double], k: Int, target: EigenTarget,
                      options: LanczosOptions, blockMatvec: BlockMatvec) -> EigenResult {
    if n <= options.denseThreshold {
        guard let all = denseSymmetricEigenvalues(dense(), n: n) else {
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
    return symmetricEigenvalues(dimension: n, k: k, target: target, options: options, blockMatvec: blockMatvec)
}

/// Three largest |λ| of the (weighted or 0/1) adjacency of the view, descending; missing
/// entries (n < 3) are 0. With `sides` (a bipartition of the view's graph), through the
/// normal matrix on one side (`bipartiteTopAbsEigenvalues`) when that side is above the dense
/// threshold.
/// - Complexity: see `graphEigenvalues`.
func topAbsEigenvalues(_ view: UndirectedView, weighted: Bool = true, count: Int = 3,
                       options: LanczosOptions = LanczosOptions(), sides: BipartiteSides?,
                       solved: ((EigenResult) -> Void)? = nil) -> [Double] {
    if view.neighbors.isEmpty { return [Double](repeating: 0, count: count) }
    if count == 3, let sides, sides.count > options.denseThreshold {
        return bipartiteTopAbsEigenvalues(SymmetricGraphOperator(view: view, weighted: weighted), sides: sides, options: options, solved: solved)
    }
    return topAbsEigenvalues(view, weighted: weighted, count: count, options: options, solved: solved)
}

/// Three largest |λ| of the (weighted or 0/1) adjacency of the view, descending; missing
/// entries (n < 3) are 0.
/// - Complexity: see `graphEigenvalues`.
/// `solved` sees the solver's result (its convergence and residuals).
public func topAbsEigenvalues(_ view: UndirectedView, weighted: Bool = true, count: Int = 3,
                              options: LanczosOptions = LanczosOptions(), solved: ((EigenResult) -> Void)? = nil) -> [Double] {
    if view.neighbors.isEmpty { return [Double](repeating: 0, count: count) }
    let r = graphEigenvalues(SymmetricGraphOperator(view: view, weighted: weighted), k: count,
                             target: .largestMagnitude, options: options)
    solved?(r)
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

/// spectral_radius = largest eigenvalue of L = diag(column sums of A) − A (weighted): dense
/// LAPACK up to the dense threshold, else the bracketed solver (`laplacianLargestEigenvalue`),
/// started ±1 by side when `sides` 2-colour the graph.
/// - Complexity: see `laplacianLargestEigenvalue`.
public func laplacianSpectralRadius(_ view: UndirectedView, weighted: Bool = true,
                                    options: LanczosOptions = LanczosOptions(), solved: ((EigenResult) -> Void)? = nil) -> Double {
    laplacianSpectralRadius(view, weighted: weighted, options: options, sides: nil, solved: solved)
}

func laplacianSpectralRadius(_ view: UndirectedView, weighted: Bool = true, options: LanczosOptions, sides: BipartiteSides?,
                             solved: ((EigenResult) -> Void)? = nil) -> Double {
    if view.neighbors.isEmpty { return 0 }
    let op = SymmetricGraphOperator(view: view, weighted: weighted, laplacian: true)
    let nonnegative = !op.weighted || !view.weights.contains { $0 < 0 }
    let r = laplacianRadius(dimension: op.dimension, dense: { op.dense() }, diagonal: op.diagonal, nonnegative: nonnegative,
                            sides: sides, options: options) { x, y, b in
        op.apply(block: x, y, count: b)
    }
    solved?(r)
    return r.values.first ?? 0
}

/// The Laplacian radius of any graph operator given by its dense form, its row sums and its
/// block product (both graph forms): dense LAPACK up to the dense threshold, else the
/// bracketed solver with the options' tolerances, trace and product cap. (MGE weights are
/// |w|; a hand-made graph with a negative weight gets no upper bound.)
func laplacianRadius(dimension n: Int, dense: () -> [Double], diagonal: [Double], nonnegative: Bool = true, sides: BipartiteSides?,
                     options: LanczosOptions, laplacian: BlockMatvec) -> EigenResult {
    if n <= options.denseThreshold {
        return graphEigenvalues(dimension: n, dense: dense, k: 1, target: .largestAlgebraic, options: options, blockMatvec: laplacian)
    }
    return laplacianLargestEigenvalue(dimension: n, diagonal: diagonal, nonnegative: nonnegative, tolerance: options.tolerance,
                                      bracketTolerance: options.bracketTolerance, maxSteps: options.radiusSteps,
                                      negativeStart: sides?.otherRanges, seed: options.seed,
                                      trace: options.trace, laplacian: laplacian)
}

/// What the user must be told when a spectral field's solve stopped short of its tolerance
/// (nil when it converged): the value is then a Ritz value whose eigenvalue is only known to
/// within its residual.
func unconvergedNote(_ field: String, _ r: EigenResult, _ options: LanczosOptions) -> String? {
    guard !r.converged, !Cancellation.isRequested else { return nil }
    let scale = r.values.map { abs($0) }.max() ?? 0
    let residual = scale > 0 ? (r.residuals.max() ?? 0) / scale : 0
    let stopped = "\(field): the eigensolver stopped after \(r.passes) products without reaching its tolerance "
        + String(format: "(relative residual %.1e, tolerance %.0e)", residual, options.tolerance)
    if let low = r.lowerBound, let high = r.upperBound {
        return stopped + String(format: "; the largest eigenvalue lies in [%.9g, %.9g] (relative width %.1e, certified), the value is its lower end",
                                low, high, scale > 0 ? (high - low) / scale : 0)
    }
    return stopped + "; the value may be off by that much of |λ|"
}
