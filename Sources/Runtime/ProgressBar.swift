import Foundation
import Synchronization
import Kernels

// What the front ends show of long work on stderr: a bar per stage a kernel reports (or a
// builtin draws itself) and, for a call without one, a line saying it is still running. Both
// draw only when stderr is a terminal (quiet when piped, so scripts and tests see nothing).

/// Draws the stages kernels report (`Kernels.Progress`) as terminal bars; installed by
/// `Startup.prepare`.
struct TerminalProgress: ProgressReporter {
    func begin(_ stage: String, total: Int, unit: String) -> any ProgressStage {
        ProgressBar(label: stage, total: total, unit: unit)
    }
}

/// Where bars draw instead of the terminal: the Jupyter kernel shows each bar as one display
/// updated in place. `bar` tells the bars apart; `final` is the completed bar's last draw.
protocol ProgressSurface: AnyObject, Sendable {
    func draw(_ line: String, bar: ObjectIdentifier, final: Bool)
}

/// A progress bar on stderr:
///
///     let p = ProgressBar(label: "topometrics", total: 100, unit: "steps")
///     for _ in 0..<100 { try Cancellation.check(); …; p.advance() }
///     p.finish()
///
/// Safe to call from several threads. Redraws at most ten times a second.
public final class ProgressBar: ProgressStage, @unchecked Sendable {
    /// Set to false to silence every bar (tests); nil means "draw when stderr is a terminal".
    nonisolated(unsafe) public static var forceEnabled: Bool?
    /// Where bars and activity lines are drawn (stderr; tests capture it).
    nonisolated(unsafe) public static var sink: @Sendable (String) -> Void = { text in FileHandle.standardError.write(Data(text.utf8)) }
    /// Set by the Jupyter kernel: bars draw there (whatever stderr is) instead of on stderr.
    nonisolated(unsafe) static var surface: ProgressSurface?
    /// When any bar last drew (seconds since the reference date), so `Activity` stays quiet
    /// while a real bar is showing.
    static let lastDrawn = Mutex(0.0)
    /// Whether an unfinished bar or activity line is on the terminal (the cursor at its end).
    static let partialLine = Atomic<Bool>(false)

    /// Clears an unfinished bar or activity line before other output; the next draw redraws it.
    public static func clearPartialLine() {
        if partialLine.exchange(false, ordering: .relaxed) { sink("\r\u{1B}[K") }
    }

    private struct State {
        var done = 0
        var lastDraw = 0.0
        var finished = false
        var note = ""
    }

    public let label: String
    public let total: Int
    public let unit: String
    private let start = Date()
    private let enabled: Bool
    private let state = Mutex(State())

    public init(label: String, total: Int, unit: String = "") {
        self.label = label
        self.total = max(0, total)
        self.unit = unit
        self.enabled = ProgressBar.forceEnabled ?? (ProgressBar.surface != nil || isatty(2) == 1)
    }

    /// Whether this bar draws (a terminal, not silenced); callers print plain lines otherwise.
    public var isDrawing: Bool { enabled }

    public func advance(by count: Int) {
        let line: String? = state.withLock { s in
            s.done = min(total, s.done + count)
            let now = Date().timeIntervalSince(start)
            guard enabled, !s.finished, now - s.lastDraw >= 0.1 else { return nil }
            s.lastDraw = now
            return render(done: s.done, elapsed: now, final: false, note: s.note)
        }
        if let line { draw(line, final: false) }
    }

    /// Extra text shown after the rate (e.g. "2 failed"); redrawn with the next `advance`.
    public func setNote(_ note: String) { state.withLock { $0.note = note } }

    /// Draws the completed bar with the total time and ends the line.
    public func finish() {
        let line: String? = state.withLock { s in
            guard !s.finished else { return nil }
            s.finished = true
            return enabled ? render(done: s.done, elapsed: Date().timeIntervalSince(start), final: true, note: s.note) : nil
        }
        if let line { draw(line, final: true) }
    }

    deinit { finish() }

    func render(done: Int, elapsed: Double, final: Bool, note: String = "") -> String {
        let width = 20
        let fraction = total > 0 ? Double(done) / Double(total) : 1
        let filled = min(width, Int(fraction * Double(width)))
        let bar = String(repeating: "█", count: filled) + String(repeating: "·", count: width - filled)
        let units = unit.isEmpty ? "" : " " + unit
        var text = "\(label)  \(done)/\(total)\(units)  [\(bar)] "
        if final {
            text += ProgressBar.seconds(elapsed)
        } else if done > 0, elapsed > 0 {
            let rate = Double(done) / elapsed
            let eta = Double(total - done) / rate
            text += String(format: "%.1f/s  ETA %@", rate, ProgressBar.seconds(eta))
        } else {
            text += ProgressBar.seconds(elapsed)  // no rate yet: at least show that time passes
        }
        return note.isEmpty ? text : text + "  " + note
    }

    static func seconds(_ s: Double) -> String {
        s < 60 ? String(format: "%.1f s", s) : String(format: "%dm%02ds", Int(s) / 60, Int(s) % 60)
    }

    private func draw(_ line: String, final: Bool) {
        ProgressBar.lastDrawn.withLock { $0 = Date().timeIntervalSinceReferenceDate }
        if let surface = ProgressBar.surface {
            surface.draw(line, bar: ObjectIdentifier(self), final: final)
            return
        }
        ProgressBar.partialLine.store(!final, ordering: .relaxed)
        ProgressBar.sink("\r\u{1B}[K" + line + (final ? "\n" : ""))
    }

    /// Starts the bar's own clock: until the first step completes it redraws every half second
    /// with the elapsed time (a first step can take minutes), beginning after `Activity.delay`.
    public func showWhileWaiting() {
        guard enabled else { return }
        let deadline = DispatchTime.now() + Activity.delay
        DispatchQueue.global().asyncAfter(deadline: deadline) { [weak self] in self?.tick() }
    }

    private func tick() {
        let line: String? = state.withLock { s in
            guard !s.finished, s.done == 0 else { return nil }
            let now = Date().timeIntervalSince(start)
            s.lastDraw = now
            return render(done: 0, elapsed: now, final: false)
        }
        guard let line else { return }
        draw(line, final: false)
        DispatchQueue.global().asyncAfter(deadline: .now() + 0.5) { [weak self] in self?.tick() }
    }
}

/// A line on stderr saying that a call is still running (`prune… 4.5 s`), for any call that
/// takes longer than `delay` while no progress bar is drawing. Quiet when stderr is not a
/// terminal, like `ProgressBar`. `begin` at the start of a call, `end` when it returns.
public final class Activity: @unchecked Sendable {
    /// How long a call runs before its line appears (users must see progress within 2 s).
    nonisolated(unsafe) public static var delay: Double = 1.0

    private let label: String
    private let start = Date()
    private let state = Mutex((ended: false, drew: false))

    private init(label: String) { self.label = label }

    /// nil when nothing can be drawn.
    public static func begin(_ label: String) -> Activity? {
        guard ProgressBar.forceEnabled ?? (isatty(2) == 1) else { return nil }
        let activity = Activity(label: label)
        DispatchQueue.global().asyncAfter(deadline: .now() + delay) { [weak activity] in activity?.tick() }
        return activity
    }

    private func tick() {
        let now = Date().timeIntervalSinceReferenceDate
        let barIsShowing = ProgressBar.lastDrawn.withLock { now - $0 < 1.0 }
        let keepGoing: Bool = state.withLock { s in
            guard !s.ended else { return false }
            if !barIsShowing {
                s.drew = true
                ProgressBar.partialLine.store(true, ordering: .relaxed)
                ProgressBar.sink("\r\u{1B}[K\(label)… " + ProgressBar.seconds(Date().timeIntervalSince(start)))
            }
            return true
        }
        if keepGoing { DispatchQueue.global().asyncAfter(deadline: .now() + 0.5) { [weak self] in self?.tick() } }
    }

    /// Stops the line and clears it if it was drawn.
    public func end() {
        let clear: Bool = state.withLock { s in
            defer { s.ended = true }
            return s.drew && !s.ended
        }
        if clear, ProgressBar.partialLine.exchange(false, ordering: .relaxed) { ProgressBar.sink("\r\u{1B}[K") }
    }

    deinit { end() }
}
