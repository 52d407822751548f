import CBLAS
import Foundation

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

    /// Runs `body(i)` for every `i < iterations`, spread over all cores.
    static func forEach(_ iterations: Int, _ body: (Int) -> Void) {
        if iterations <= 1 || workers == 1 {
            for i in 0 ..< iterations { body(i) }
        } else {
            DispatchQueue.concurrentPerform(iterations: iterations, execute: body)
        }
    }

    /// `chunks` nearly equal consecutive ranges covering `0 ..< count`.
    static func ranges(_ count: Int, chunks: Int) -> [Range<Int>] {
        let k = max(1, min(chunks, count))
        return (0 ..< k).map { i in (count * i / k) ..< (count * (i + 1) / k) }
    }
}

/// Runs `body(thread, range)` over `0 ..< count` split into interleaved chunks of `chunk`
/// items: thread `t` handles chunks `t, t + T, t + 2T, …` (static, load-balanced for
/// irregular work because chunks are small). `body` must only write thread-private state
/// or disjoint slots.
/// - Complexity: O(count / chunk) scheduling overhead.
@inlinable
func parallelChunks(count: Int, chunk: Int = 1024, threads: Int = Parallel.workers,
                    _ body: (_ thread: Int, _ range: Range<Int>) -> Void) {
    let chunkSize = max(1, chunk)
    let nChunks = (count + chunkSize - 1) / chunkSize
    let t = max(1, min(threads, nChunks))
    if t <= 1 {
        var c = 0
        while c < nChunks { body(0, c * chunkSize ..< min(count, (c + 1) * chunkSize)); c += 1 }
        return
    }
    DispatchQueue.concurrentPerform(iterations: t) { thread in
        var c = thread
        while c < nChunks {
            body(thread, c * chunkSize ..< min(count, (c + 1) * chunkSize))
            c += t
        }
    }
}

/// Like `parallelChunks`, but the chunks are claimed one at a time by `threads` workers from a
/// shared counter, for irregular work on shared cores: a static split waits for whichever
/// worker got the expensive chunks or was preempted. Which worker runs a chunk depends on the
/// schedule, so `body` may keep per-thread scratch but must not build per-thread results
/// whose value depends on the split (e.g. floating-point partial sums).
/// - Complexity: O(count / chunk) lock acquisitions.
func dynamicChunks(count: Int, chunk: Int = 1024, threads: Int = Parallel.workers,
                   _ body: (_ thread: Int, _ range: Range<Int>) -> Void) {
    let size = max(1, chunk)
    let chunks = (count + size - 1) / size
    let t = max(1, min(threads, chunks))
    if t <= 1 {
        // The same chunks as with several threads: a body that keeps one result per chunk
        // (blockProject) must give the same value on a one-core machine.
        for c in 0 ..< chunks { body(0, c * size ..< min(count, (c + 1) * size)) }
        return
    }
    let counter = ChunkCounter()
    DispatchQueue.concurrentPerform(iterations: t) { thread in
        while true {
            let c = counter.next()
            if c >= chunks { break }
            body(thread, c * size ..< min(count, (c + 1) * size))
        }
    }
}

/// The shared chunk index of `dynamicChunks`.
private final class ChunkCounter: @unchecked Sendable {
    private let lock = NSLock()
    private var value = 0
    func next() -> Int {
        lock.lock()
        defer { lock.unlock() }
        value += 1
        return value - 1
    }
}

/// A mutable pointer that may be shared across the workers of `parallelChunks` when each
/// worker writes disjoint slots.
@usableFromInline
struct SharedMutablePointer<T>: @unchecked Sendable {
    @usableFromInline let base: UnsafeMutablePointer<T>
    @usableFromInline init(_ base: UnsafeMutablePointer<T>) { self.base = base }
    @inlinable subscript(i: Int) -> T {
        get { base[i] }
        nonmutating set { base[i] = newValue }
    }
}
