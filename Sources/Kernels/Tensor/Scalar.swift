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
        Parallel.configureBLAS() // one OpenBLAS thread: a GEMM's rounding must not follow its thread count
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
        Parallel.configureBLAS()
        cblas_dgemm(CblasRowMajor, transposeA ? CblasTrans : CblasNoTrans, transposeB ? CblasTrans : CblasNoTrans,
                    Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
    }
    @inline(__always) public static func exponential(_ x: Double) -> Double { Foundation.exp(x) }
    @inline(__always) public static func logarithm(_ x: Double) -> Double { Foundation.log(x) }
    @inline(__always) public var doubleValue: Double { self }
}

/// Which OpenBLAS kernels run. Debian's OpenBLAS picks its kernels by CPU model when it loads;
/// on virtual CPUs that report a generic model ("Intel Xeon Processor") it falls back to the
/// SSE3 "Prescott" kernels, 4x slower than the AVX-512 ones on this machine (sgemm 32 vs 136
/// GFLOP/s per core). The choice can only be made before the library loads, through the
/// environment variable OPENBLAS_CORETYPE, so an executable that cares re-executes itself once.
public enum BLASKernels {
    /// The kernel family OpenBLAS chose ("Prescott", "Haswell", "SkylakeX", ...).
    public static var coreName: String {
        guard let name = openblas_get_corename() else { return "unknown" }
        return String(cString: name)
    }

    /// The best core type the CPU supports by its flags, when OpenBLAS chose something weaker.
    public static var betterCoreType: String? {
        guard let cpuinfo = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8),
              let flagsLine = cpuinfo.split(separator: "\n").first(where: { $0.hasPrefix("flags") }) else { return nil }
        let flags = Set(flagsLine.split(separator: " ").map(String.init))
        let current = coreName.lowercased()
        if flags.isSuperset(of: ["avx512f", "avx512bw", "avx512vl", "avx512dq"]) {
            return ["skylakex", "cooperlake", "sapphirerapids"].contains(current) ? nil : "SkylakeX"
        }
        if flags.isSuperset(of: ["avx2", "fma"]) {
            return ["haswell", "zen", "skylakex", "cooperlake", "sapphirerapids"].contains(current) ? nil : "Haswell"
        }
        return nil
    }

    /// If OpenBLAS runs weaker kernels than the CPU supports and OPENBLAS_CORETYPE is unset,
    /// sets it and replaces the process with a fresh copy of itself (same arguments). Returns
    /// normally when nothing needs doing or the re-exec fails. Call first thing in `main`.
    public static func reexecWithBetterKernelsIfNeeded() {
        guard ProcessInfo.processInfo.environment["OPENBLAS_CORETYPE"] == nil,
              let core = betterCoreType else { return }
        setenv("OPENBLAS_CORETYPE", core, 1)
        let arguments = CommandLine.arguments
        var argv: [UnsafeMutablePointer<CChar>?] = arguments.map { strdup($0) }
        argv.append(nil)
        execv("/proc/self/exe", &argv)  // returns only on failure: carry on with the slow kernels
        for p in argv { free(p) }
    }
}
