import Foundation
import Kernels

/// What every executable (mge, mge-script, the bench tools) does first, before any numerics:
/// the process-wide choices the kernels leave to their front end.
public enum Startup {
    /// Picks OpenBLAS's best kernels (re-executing the process once if needed), keeps freed
    /// activation memory for reuse, takes data folders from the environment and shows kernel
    /// progress as terminal bars. Call first thing in `main`.
    public static func prepare() {
        reexecWithBetterBLASKernelsIfNeeded()
        keepFreedMemory()
        readEnvironment(ProcessInfo.processInfo.environment)
        Progress.reporter = TerminalProgress()
    }

    /// `$MGE_DATA` (searched first, and where `download` unpacks), `$MGE_DATA_MIRROR`,
    /// `$MGE_PAPER_DATA`.
    static func readEnvironment(_ environment: [String: String]) {
        // `~` is $HOME, as in the shell (Foundation's home comes from the password database).
        let userHome = environment["HOME"].flatMap { $0.isEmpty ? nil : $0 } ?? NSHomeDirectory()
        let home = userHome + "/.mge/data"
        if let data = environment["MGE_DATA"], !data.isEmpty {
            Dataset.roots = [data == "~" || data.hasPrefix("~/") ? userHome + data.dropFirst() : data, home]
        } else {
            Dataset.roots = [home]
        }
        if let mirror = environment["MGE_DATA_MIRROR"], !mirror.isEmpty {
            DatasetDownload.mirror = mirror.hasSuffix("/") ? String(mirror.dropLast()) : mirror
        }
        if let folder = environment["MGE_PAPER_DATA"], !folder.isEmpty { PublishedTable.folder = folder }
    }

    /// Debian's OpenBLAS picks its kernels by CPU model when it loads; on virtual CPUs that
    /// report a generic model it falls back to the SSE3 "Prescott" kernels, 4x slower than the
    /// AVX-512 ones (sgemm 32 vs 136 GFLOP/s per core on the development machine) with the same
    /// oracle agreement. The choice can only be made before the library loads, through
    /// OPENBLAS_CORETYPE, so the process sets it and re-executes itself once (same arguments).
    /// Returns normally when nothing needs doing or the re-exec fails.
    static func reexecWithBetterBLASKernelsIfNeeded() {
        guard ProcessInfo.processInfo.environment["OPENBLAS_CORETYPE"] == nil, let core = betterBLASCoreType() else { return }
        setenv("OPENBLAS_CORETYPE", core, 1)
        var argv: [UnsafeMutablePointer<CChar>?] = CommandLine.arguments.map { strdup($0) }
        argv.append(nil)
        execv("/proc/self/exe", &argv)  // returns only on failure: carry on with the slow kernels
        for p in argv { free(p) }
    }

    /// The best core type the CPU supports by its flags, when OpenBLAS chose something weaker.
    static func betterBLASCoreType() -> String? {
        guard let cpuinfo = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8),
              let flagsLine = cpuinfo.split(separator: "\n").first(where: { $0.hasPrefix("flags") }) else { return nil }
        let flags = Set(flagsLine.split(separator: " ").map(String.init))
        let current = BLASKernels.coreName.lowercased()
        if flags.isSuperset(of: ["avx512f", "avx512bw", "avx512vl", "avx512dq"]) {
            return ["skylakex", "cooperlake", "sapphirerapids"].contains(current) ? nil : "SkylakeX"
        }
        if flags.isSuperset(of: ["avx2", "fma"]) {
            return ["haswell", "zen", "skylakex", "cooperlake", "sapphirerapids"].contains(current) ? nil : "Haswell"
        }
        return nil
    }

    /// Activations and gradients are arrays of megabytes, allocated and freed many times per
    /// step. glibc serves blocks above its mmap threshold with fresh mappings and returns them on
    /// free, so every such array is page-faulted in again (and zero-filled by the kernel). Raising
    /// the threshold to its maximum (32 MB) and not trimming the heap lets freed blocks be reused:
    /// the resident size stays at the step's peak instead of going up and down.
    static func keepFreedMemory() {
        #if os(Linux)
        _ = glibcMallopt(-3, 32 << 20)  // M_MMAP_THRESHOLD (<malloc.h>, not in the Glibc module)
        _ = glibcMallopt(-1, 1 << 30)   // M_TRIM_THRESHOLD
        #endif
    }
}

/// glibc's `int mallopt(int param, int value)`; <malloc.h> is not part of Swift's Glibc module.
@_silgen_name("mallopt") private func glibcMallopt(_ parameter: Int32, _ value: Int32) -> Int32
