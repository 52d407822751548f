import Dispatch
#if canImport(Glibc)
import Glibc
#endif

/// Number of worker threads the metrics use (the machine's active processor count, at least 1).
@usableFromInline
let metricsThreadCount: Int = max(1, ProcessInfoShim.activeProcessorCount)

/// Avoids importing Foundation only for the processor count.
@usableFromInline
enum ProcessInfoShim {
    static var activeProcessorCount: Int {
        #if canImport(Glibc)
        let n = sysconf(Int32(_SC_NPROCESSORS_ONLN))
        return n > 0 ? n : 1
        #else
        return 2
        #endif
    }
}

/// Runs `body(thread, range)` over `0 ..< count` split into interleaved chunks of `chunk`
/// items: thread `t` handles chunks `t, t + T, t + 2T, …` (static, load-balanced for
/// irregular work because chunks are small). `body` must only write thread-private state
/// or disjoint slots.
/// - Complexity: O(count / chunk) scheduling overhead.
@inlinable
func parallelChunks(count: Int, chunk: Int = 1024, threads: Int = metricsThreadCount,
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
