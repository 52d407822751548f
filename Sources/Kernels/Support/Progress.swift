import Foundation
import Synchronization

/// A progress bar for long kernels, drawn on stderr only when stderr is a terminal
/// (quiet when piped, so scripts and tests see nothing):
///
///     let p = Progress(label: "synflow", total: 100, unit: "rounds")
///     for _ in 0..<100 { try Cancellation.check(); …; p.advance() }
///     p.finish()
///
/// Safe to call from several threads. Redraws at most ten times a second.
public final class Progress: @unchecked Sendable {
    /// Set to false to silence every bar (tests); nil means "draw when stderr is a terminal".
    nonisolated(unsafe) public static var forceEnabled: Bool?

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
        self.enabled = Progress.forceEnabled ?? (isatty(2) == 1)
    }

    /// Whether this bar draws (a terminal, not silenced); callers print plain lines otherwise.
    public var isDrawing: Bool { enabled }

    public func advance(by count: Int = 1) {
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
            text += Progress.seconds(elapsed)
        } else if done > 0, elapsed > 0 {
            let rate = Double(done) / elapsed
            let eta = Double(total - done) / rate
            text += String(format: "%.1f/s  ETA %@", rate, Progress.seconds(eta))
        }
        return note.isEmpty ? text : text + "  " + note
    }

    static func seconds(_ s: Double) -> String {
        s < 60 ? String(format: "%.1f s", s) : String(format: "%dm%02ds", Int(s) / 60, Int(s) % 60)
    }

    private func draw(_ line: String, final: Bool) {
        let text = "\r\u{1B}[K" + line + (final ? "\n" : "")
        FileHandle.standardError.write(Data(text.utf8))
    }
}
