/// A program text plus the line table needed to turn byte offsets into `line:col`.
/// Tokens and AST nodes store only offsets into `bytes`; everything human-readable is derived here.
public final class Source: @unchecked Sendable {
    public let name: String
    public let text: String
    public let bytes: [UInt8]
    /// Byte offset where each line starts; line 1 starts at 0.
    private let lineStarts: [Int]

    public init(name: String, text: String) {
        self.name = name
        self.text = text
        self.bytes = Array(text.utf8)
        var starts = [0]
        for (i, b) in bytes.enumerated() where b == UInt8(ascii: "\n") { starts.append(i + 1) }
        self.lineStarts = starts
    }

    /// 1-based line and column (column counted in Unicode scalars, so a caret lines up under UTF-8 text).
    public func lineAndColumn(of offset: Int) -> (line: Int, column: Int) {
        let clamped = max(0, min(offset, bytes.count))
        var lo = 0, hi = lineStarts.count - 1
        while lo < hi {
            let mid = (lo + hi + 1) / 2
            if lineStarts[mid] <= clamped { lo = mid } else { hi = mid - 1 }
        }
        var column = 1
        var i = lineStarts[lo]
        while i < clamped {
            if bytes[i] & 0xC0 != 0x80 { column += 1 }
            i += 1
        }
        return (lo + 1, column)
    }

    /// The text of a 1-based line, without its newline.
    public func lineText(_ line: Int) -> String {
        guard line >= 1, line <= lineStarts.count else { return "" }
        let start = lineStarts[line - 1]
        var end = line < lineStarts.count ? lineStarts[line] - 1 : bytes.count
        if end > start, bytes[end - 1] == UInt8(ascii: "\r") { end -= 1 }
        return String(decoding: bytes[start..<max(start, end)], as: UTF8.self)
    }

    /// `name:line:col`
    public func describe(_ offset: Int) -> String {
        let (line, column) = lineAndColumn(of: offset)
        return "\(name):\(line):\(column)"
    }
}

/// A point in some source: where an error happened or a function was called from.
public struct SourcePoint: Sendable {
    public let source: Source
    public let offset: Int
    public init(source: Source, offset: Int) { self.source = source; self.offset = offset }
    public var description: String { source.describe(offset) }
}

/// One error report: `file:line:col: error: message`, the source line, a caret, then trace lines.
public struct Diagnostic: Error, Sendable {
    public enum Kind: Sendable { case syntax, runtime }
    public let kind: Kind
    public let message: String
    public let point: SourcePoint?
    /// Extra lines printed after the caret (for runtime errors: one per active user-function call).
    public var trace: [String]

    public init(kind: Kind, message: String, point: SourcePoint?, trace: [String] = []) {
        self.kind = kind; self.message = message; self.point = point; self.trace = trace
    }

    /// The first line alone, e.g. `sweep.mge:12:5: error: undefined variable 'nett'`.
    public var headline: String {
        guard let point else { return "error: \(message)" }
        return "\(point.description): error: \(message)"
    }

    /// The full multi-line report, ending with a newline.
    public func rendered() -> String {
        var out = headline + "\n"
        if let point {
            let (line, column) = point.source.lineAndColumn(of: point.offset)
            let text = point.source.lineText(line)
            if !text.isEmpty {
                out += "    " + text + "\n"
                // Copy tabs from the source line so the caret lines up in a terminal.
                var pad = ""
                for (i, ch) in text.unicodeScalars.enumerated() where i < column - 1 { pad.append(ch == "\t" ? "\t" : " ") }
                out += "    " + pad + "^\n"
            }
        }
        for line in trace { out += line + "\n" }
        return out
    }
}

/// The closest candidate by edit distance, for "did you mean" hints; nil when nothing is close.
public func closestName(to name: String, among candidates: some Sequence<String>) -> String? {
    let target = Array(name.lowercased().unicodeScalars)
    guard !target.isEmpty else { return nil }
    var best: (String, Int)?
    for candidate in candidates where candidate != name {
        let distance = editDistance(target, Array(candidate.lowercased().unicodeScalars))
        if let (bestName, bestDistance) = best, distance > bestDistance || (distance == bestDistance && candidate >= bestName) {
            continue
        }
        best = (candidate, distance)
    }
    guard let (found, distance) = best else { return nil }
    // Allow roughly one typo per three characters, at least one.
    return distance <= max(1, target.count / 3) ? found : nil
}

/// Optimal-string-alignment distance: insertions, deletions, substitutions and adjacent swaps ("pirnt" -> "print").
private func editDistance(_ a: [Unicode.Scalar], _ b: [Unicode.Scalar]) -> Int {
    if a.isEmpty { return b.count }
    if b.isEmpty { return a.count }
    var twoBack = [Int](repeating: 0, count: b.count + 1)
    var previous = Array(0...b.count)
    var current = [Int](repeating: 0, count: b.count + 1)
    for i in 1...a.count {
        current[0] = i
        for j in 1...b.count {
            let cost = a[i - 1] == b[j - 1] ? 0 : 1
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost)
            if i > 1, j > 1, a[i - 1] == b[j - 2], a[i - 2] == b[j - 1] {
                current[j] = min(current[j], twoBack[j - 2] + 1)
            }
        }
        (twoBack, previous, current) = (previous, current, twoBack)
    }
    return previous[b.count]
}
