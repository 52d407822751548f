/// How long kernels say how far they are: a stage ("synflow", a download's file name), steps
/// done and the total. Kernels only report; the front end decides whether and how to show it
/// by installing a `ProgressReporter` (the Runtime draws bars on a terminal). With none
/// installed, reports go nowhere.
///
///     let stage = Progress.begin("synflow", total: 100, unit: "rounds")
///     defer { stage.finish() }
///     for _ in 0..<100 { try Cancellation.check(); …; stage.advance() }
public protocol ProgressReporter: Sendable {
    /// A stage of `total` steps (counted in `unit`, e.g. "rounds") begins.
    func begin(_ stage: String, total: Int, unit: String) -> any ProgressStage
}

/// One stage being reported. Safe to call from several threads.
public protocol ProgressStage: AnyObject, Sendable {
    /// `count` more steps are done.
    func advance(by count: Int)
    /// The stage ended (completed, failed or interrupted); later calls do nothing.
    func finish()
}

extension ProgressStage {
    public func advance() { advance(by: 1) }
}

public enum Progress {
    /// Installed once by the front end at start-up; nil while nobody watches.
    nonisolated(unsafe) public static var reporter: (any ProgressReporter)?

    /// Starts reporting a stage to the installed reporter.
    public static func begin(_ stage: String, total: Int, unit: String = "") -> any ProgressStage {
        reporter?.begin(stage, total: max(0, total), unit: unit) ?? Unwatched()
    }

    private final class Unwatched: ProgressStage {
        func advance(by count: Int) {}
        func finish() {}
    }
}
