import CBLAS
import Foundation

/// The kernels' one chunk scheduler.
///
/// Work over `0 ..< count` is cut into chunks whose boundaries depend on the problem only
/// (`count` and a grain the caller derives from the problem), never on the thread count; the
/// threads claim chunks one at a time from a shared counter (the cores are shared, so a static
/// split would wait for whichever thread was preempted). A reduction keeps one partial result
/// per chunk and combines them in chunk order, so every sum that can reach a mask or a metric
/// is the same with 1, 2 or 64 threads — which is what lets a sweep run N worker processes with
/// cores/N threads each and still write the rows a single process writes.
///
/// Who parallelises: the kernels split batches over cores themselves, so each GEMM they issue is
/// small and runs on one OpenBLAS thread; letting OpenBLAS spawn its own threads inside would
/// oversubscribe the cores (and tie a GEMM's rounding to its thread count).
public enum Parallel {
    /// Cores of this machine.
    public static let cores = max(1, ProcessInfo.processInfo.activeProcessorCount)

    private static let threadSetting = ThreadSetting(cores)

    /// Threads the kernels spread work over: every core unless set lower (a sweep worker that
    /// shares the machine with others sets cores / workers). Results do not depend on it.
    public static var threads: Int {
        get { threadSetting.value }
        set { configureBLAS(); threadSetting.value = max(1, newValue) }
    }

    private static let singleThreadedBLAS: Void = { openblas_set_num_threads(1) }()

    /// Makes OpenBLAS single-threaded (once per process) before the kernels' GEMMs run.
    @inline(__always) static func configureBLAS() { _ = singleThreadedBLAS }

    /// The one scheduler: calls `body(thread, range)` for every chunk `[c·grain, (c+1)·grain) ∩
    /// [0, count)`, chunks claimed dynamically by up to `threads` threads. `thread` (< threads)
    /// names the calling thread for thread-private scratch; which thread runs a chunk depends
    /// on the schedule, so results must be kept per chunk (chunk index = range.lowerBound / grain)
    /// or be independent of the order (disjoint writes, integer counts).
    /// - Complexity: O(count / grain) counter increments.
    static func forChunks(_ count: Int, grain: Int, threads: Int = Parallel.threads,
                          _ body: (_ thread: Int, _ range: Range<Int>) -> Void) {
        configureBLAS()
        let size = max(1, grain)
        let chunks = (count + size - 1) / size
        let t = max(1, min(threads, chunks))
        if t <= 1 {
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

    /// `forChunks` for work whose writes are disjoint: each chunk costs at least ~2¹⁵ units of
    /// `costPerItem` (cheaper work is not worth a thread hop).
    static func forChunks(_ count: Int, costPerItem: Int = 1 << 16, _ body: (Range<Int>) -> Void) {
        forChunks(count, grain: grain(costPerItem: costPerItem)) { _, range in body(range) }
    }

    /// Items per chunk so that a chunk costs about 2¹⁵ units: a function of the work only.
    static func grain(costPerItem: Int) -> Int { max(1, (1 << 15) / max(1, costPerItem)) }

    /// Runs `body(i)` for every `i < iterations`, one item per chunk.
    static func forEach(_ iterations: Int, _ body: (Int) -> Void) {
        forChunks(iterations, grain: 1) { _, range in for i in range { body(i) } }
    }

    /// A deterministic reduction: `partial(range)` for every chunk of `grain` items, combined
    /// left to right in chunk order (never in the order the threads finish).
    /// - Complexity: O(count / grain) partial results held.
    static func reduce<T>(_ count: Int, grain: Int, _ initial: T,
                          partial: (Range<Int>) -> T, combine: (T, T) -> T) -> T {
        let size = max(1, grain)
        let chunks = (count + size - 1) / size
        let slots = UnsafeMutablePointer<T?>.allocate(capacity: max(1, chunks))
        slots.initialize(repeating: nil, count: max(1, chunks))
        defer { slots.deinitialize(count: max(1, chunks)); slots.deallocate() }
        let shared = SharedMutablePointer(slots)
        forChunks(count, grain: size) { _, range in shared[range.lowerBound / size] = partial(range) }
        var result = initial
        for c in 0 ..< chunks { if let p = slots[c] { result = combine(result, p) } }
        return result
    }

    /// `chunks` nearly equal consecutive ranges covering `0 ..< count`.
    static func ranges(_ count: Int, chunks: Int) -> [Range<Int>] {
        let k = max(1, min(chunks, count))
        return (0 ..< k).map { i in (count * i / k) ..< (count * (i + 1) / k) }
    }
}

/// The thread count, shared by every thread of the process.
private final class ThreadSetting: @unchecked Sendable {
    private let lock = NSLock()
    private var stored: Int
    init(_ value: Int) { stored = value }
    var value: Int {
        get { lock.lock(); defer { lock.unlock() }; return stored }
        set { lock.lock(); stored = newValue; lock.unlock() }
    }
}

/// The shared chunk index of `Parallel.forChunks`.
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

/// A mutable pointer that may be shared across the threads of `Parallel.forChunks` when each
/// thread writes disjoint slots.
@usableFromInline
struct SharedMutablePointer<T>: @unchecked Sendable {
    @usableFromInline let base: UnsafeMutablePointer<T>
    @usableFromInline init(_ base: UnsafeMutablePointer<T>) { self.base = base }
    @inlinable subscript(i: Int) -> T {
        get { base[i] }
        nonmutating set { base[i] = newValue }
    }
}
