import Kernels
import XCTest
@testable import Runtime

/// Long calls show that they run within the 2 s users are promised, even before a first step.
final class ProgressBarTests: XCTestCase {
    private final class Captured: @unchecked Sendable {
        let lock = NSLock()
        var text = ""
        func add(_ s: String) { lock.lock(); text += s; lock.unlock() }
        var value: String { lock.lock(); defer { lock.unlock() }; return text }
    }

    private var saved: (Bool?, @Sendable (String) -> Void, Double) = (nil, { _ in }, 1)

    override func setUp() {
        saved = (ProgressBar.forceEnabled, ProgressBar.sink, Activity.delay)
        ProgressBar.forceEnabled = true
        Activity.delay = 0.05
    }

    override func tearDown() { (ProgressBar.forceEnabled, ProgressBar.sink, Activity.delay) = saved }

    func testActivityLineAppearsForASlowCallAndIsCleared() {
        let captured = Captured()
        ProgressBar.sink = { captured.add($0) }
        let activity = Activity.begin("prune")
        XCTAssertNotNil(activity)
        Thread.sleep(forTimeInterval: 0.4)
        activity?.end()
        let text = captured.value
        XCTAssertTrue(text.contains("prune… 0."), text)
        XCTAssertTrue(text.hasSuffix("\r\u{1B}[K"), "the line is cleared at the end")
        let quiet = Captured()
        ProgressBar.sink = { quiet.add($0) }
        Activity.begin("fast")?.end()
        Thread.sleep(forTimeInterval: 0.15)
        XCTAssertEqual(quiet.value, "", "a call shorter than the delay draws nothing")
    }

    func testBarShowsElapsedTimeBeforeItsFirstStep() {
        let captured = Captured()
        ProgressBar.sink = { captured.add($0) }
        let bar = ProgressBar(label: "topometrics", total: 5, unit: "steps")
        bar.showWhileWaiting()
        Thread.sleep(forTimeInterval: 0.3)
        XCTAssertTrue(captured.value.contains("topometrics  0/5 steps"), captured.value)
        bar.finish()
    }

    /// A stage a kernel reports is drawn as one bar: synflow's rounds once, not once by the
    /// kernel and again by the builtin.
    func testPruneDrawsOneBarForSynflowRounds() throws {
        let captured = Captured()
        ProgressBar.sink = { captured.add($0) }
        let savedReporter = Kernels.Progress.reporter
        Kernels.Progress.reporter = TerminalProgress()
        defer { Kernels.Progress.reporter = savedReporter }
        let session = Session()
        XCTAssertEqual(session.run("net = toy(classes: 3)\nprune(net, synflow, 0.5, rounds: 3)"), .ok, session.err)
        let text = captured.value
        XCTAssertTrue(text.contains("synflow  3/3 rounds"), text)
        XCTAssertEqual(text.components(separatedBy: "\n").count - 1, 1, "one finished bar: \(text)")
    }
}
