import CBLAS
import Foundation

/// The floating-point types the numeric kernels and the autodiff run on.
///
/// Float is the production type (OpenBLAS `sgemm`); Double exists so the tests can check
/// gradients and Hessian-vector products against finite differences without Float's rounding
/// drowning the signal. Every kernel is generic over this protocol and is specialised by the
/// optimiser inside the Kernels module.
public protocol NNScalar: BinaryFloatingPoint, Sendable {
    /// Row-major C ← alpha·op(A)·op(B) + beta·C with op(A) m×k, op(B) k×n, C m×n.
    static func gemm(transposeA: Bool, transposeB: Bool, m: Int, n: Int, k: Int, alpha: Self,
                     a: UnsafePointer<Self>, lda: Int, b: UnsafePointer<Self>, ldb: Int,
                     beta: Self, c: UnsafeMutablePointer<Self>, ldc: Int)
    static func exponential(_ x: Self) -> Self
    static func logarithm(_ x: Self) -> Self
    init(_ value: Double)
    var doubleValue: Double { get }
}

extension Float: NNScalar {
    @inline(__always)
    public static func gemm(transposeA: Bool, transposeB: Bool, m: Int, n: Int, k: Int, alpha: Float,
                            a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
                            beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int) {
        cblas_sgemm(CblasRowMajor, transposeA ? CblasTrans : CblasNoTrans, transposeB ? CblasTrans : CblasNoTrans,
                    Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
    }
    @inline(__always) public static func exponential(_ x: Float) -> Float { Foundation.exp(x) }
    @inline(__always) public static func logarithm(_ x: Float) -> Float { Foundation.log(x) }
    @inline(__always) public var doubleValue: Double { Double(self) }
}

extension Double: NNScalar {
    @inline(__always)
    public static func gemm(transposeA: Bool, transposeB: Bool, m: Int, n: Int, k: Int, alpha: Double,
                            a: UnsafePointer<Double>, lda: Int, b: UnsafePointer<Double>, ldb: Int,
                            beta: Double, c: UnsafeMutablePointer<Double>, ldc: Int) {
        cblas_dgemm(CblasRowMajor, transposeA ? CblasTrans : CblasNoTrans, transposeB ? CblasTrans : CblasNoTrans,
                    Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
    }
    @inline(__always) public static func exponential(_ x: Double) -> Double { Foundation.exp(x) }
    @inline(__always) public static func logarithm(_ x: Double) -> Double { Foundation.log(x) }
    @inline(__always) public var doubleValue: Double { self }
}

/// Who parallelises: the kernels split batches over cores themselves
/// (`DispatchQueue.concurrentPerform`), so each GEMM they issue is small and runs on one
/// OpenBLAS thread; letting OpenBLAS spawn its own threads inside would oversubscribe the cores.
public enum Parallel {
    /// Cores the kernels spread work over.
    public static let workers = max(1, ProcessInfo.processInfo.activeProcessorCount)

    private static let singleThreadedBLAS: Void = { openblas_set_num_threads(1) }()

    /// Makes OpenBLAS single-threaded (once per process) before the kernels' own parallel loops run.
    @inline(__always) static func configureBLAS() { _ = singleThreadedBLAS }

    /// Runs `body(range)` on up to `workers` contiguous chunks of `0..<count`, in parallel when
    /// there are at least two chunks and `count * costPerItem` is worth a thread hop.
    static func forChunks(_ count: Int, costPerItem: Int = 1 << 16, _ body: (Range<Int>) -> Void) {
        configureBLAS()
        let chunks = min(workers, count, max(1, count * costPerItem / (1 << 15)))
        if chunks <= 1 { if count > 0 { body(0 ..< count) }; return }
        DispatchQueue.concurrentPerform(iterations: chunks) { c in
            let lo = count * c / chunks, hi = count * (c + 1) / chunks
            if lo < hi { body(lo ..< hi) }
        }
    }
}
