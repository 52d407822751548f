import Synchronization

/// Thrown by `Cancellation.check()` when the user pressed Ctrl-C.
public struct InterruptedError: Error, CustomStringConvertible {
    public init() {}
    public var description: String { "interrupted" }
}

/// One process-wide "stop what you are doing" flag. The REPL's SIGINT handler sets it; the evaluator
/// and long-running kernels poll it (`try Cancellation.check()` once per row, round or batch).
/// Reading it is a relaxed atomic load, cheap enough for inner loops at coarse granularity.
public enum Cancellation {
    private static let flag = Atomic<Bool>(false)

    public static var isRequested: Bool { flag.load(ordering: .relaxed) }

    /// Async-signal-safe: a single atomic store.
    public static func request() { flag.store(true, ordering: .relaxed) }

    public static func reset() { flag.store(false, ordering: .relaxed) }

    public static func check() throws {
        if flag.load(ordering: .relaxed) { throw InterruptedError() }
    }
}
