import Foundation
import Kernels

// Helpers every builtin area uses: the path rule and file reading and writing (with the
// `wrote …` report), values as tensors and labels, running a kernel so Ctrl-C interrupts it,
// and sizes and durations for messages.

// MARK: - Paths and files

/// The one path rule of every builtin that takes a path: an empty path is refused (nil here)
/// and a leading `~` is expanded.
func checkedPath(_ text: String) -> String? {
    guard !text.isEmpty else { return nil }
    // `~` is $HOME, as in the shell (Foundation would take the password database's home instead).
    if text == "~" || text.hasPrefix("~/"), let home = ProcessInfo.processInfo.environment["HOME"], !home.isEmpty {
        return home + text.dropFirst()
    }
    return (text as NSString).expandingTildeInPath
}

/// A path argument under the path rule.
func filePath(_ args: Arguments, _ name: String) throws -> String {
    guard let path = checkedPath(try args.string(name)) else { throw args.bad(name, "empty path") }
    return path
}

/// Reads a safetensors or PyTorch file (TensorFile), blaming the path argument for unreadable or corrupt files.
func readTensors(_ args: Arguments, _ name: String, _ path: String) throws -> [(name: String, tensor: SafeTensor)] {
    do { return try TensorFile.read(path: path) } catch let error as IOFailure { throw args.bad(name, error.description) }
}

/// Writes a safetensors file atomically and reports it on the output: `wrote masks.safetensors (265 kB)`.
func writeTensors(_ args: Arguments, _ name: String, _ entries: [(name: String, tensor: SafeTensor)]) throws {
    let path = try filePath(args, name)
    // On a worker, so Ctrl-C abandons the write and its temporary (`cancellable`).
    do { try cancellable(isWrite: true) { try TensorFile.write(entries, path: path) } } catch let error as IOFailure {
        throw args.bad(name, error.description)
    }
    reportWrite(try args.string(name), file: path, args)
}

/// A path argument under the path rule whose extension is one of `extensions`.
func filePath(_ args: Arguments, _ name: String, extensions: [String], what: String) throws -> String {
    let path = try filePath(args, name)
    let ext = (path as NSString).pathExtension.lowercased()
    guard extensions.contains(ext) else {
        let list = extensions.map { "." + $0 }.joined(separator: " or ")
        throw args.bad(name, "\(Display.quoted(path)) should name \(what) ending in \(list)")
    }
    return path
}

/// Reports a finished write on the interpreter's output as `wrote toy.svg (12 kB)`:
/// `shown` is the path as the user gave it, `path` the file whose size is reported.
func reportWrite(_ shown: String, file path: String, _ args: Arguments) {
    let bytes = (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? Int) ?? nil
    args.interpreter.write("wrote \(shown)\(bytes.map { " (" + byteSize($0) + ")" } ?? "")\n")
}

/// Sizes for messages: "412 B", "12 kB", "1.1 MB", "1228.8 MB".
func byteSize(_ n: Int) -> String {
    if n < 1000 { return "\(n) B" }
    if n < 1_000_000 { return "\(Int((Double(n) / 1000).rounded())) kB" }
    return String(format: "%.1f MB", Double(n) / 1_000_000)
}

// MARK: - Tensors and labels from values

/// A tensor value, or a flat list of numbers as a 1-d tensor; nil for anything else.
func tensorValue(_ value: Value) -> Tensor? {
    switch value {
    case .native(let object as TensorObject): return object.tensor
    case .list(let items):
        var data: [Float] = []
        for item in items { guard let d = item.asDouble else { return nil }; data.append(Float(d)) }
        return Tensor(shape: [data.count], data: data)
    default: return nil
    }
}

/// Labels from a tensor of non-negative integral values or a list of non-negative ints.
func labelList(_ args: Arguments, _ name: String) throws -> [Int] {
    switch args[name] {
    case .native(let object as TensorObject):
        do { return try Dataset.labels(from: object.tensor) } catch let error as DatasetError { throw args.bad(name, error.description) }
    case .list(let items):
        return try items.enumerated().map { i, item in
            guard let label = integralLabel(item) else {
                throw args.bad(name, "labels must be non-negative ints, item \(i) is \(Display.inline(item))")
            }
            return label
        }
    case let other:
        throw args.bad(name, "tensor or list of ints expected, got \(other.typeName)")
    }
}

/// A label: a non-negative int, or a float with such a value (as `t.values` gives).
func integralLabel(_ value: Value) -> Int? {
    switch value {
    case .int(let i): return i >= 0 ? i : nil
    case .float(let d): return d >= 0 && d == d.rounded() && d < 1e15 ? Int(d) : nil
    default: return nil
    }
}

/// Flattens nested lists of numbers into `flat`, returning their shape; ragged lists are refused.
func nestedList(_ value: Value, into flat: inout [Float], _ args: Arguments, depth: Int = 0) throws -> [Int] {
    switch value {
    case .list(let items):
        guard depth < 32 else { throw args.bad("values", "lists nested too deeply") }
        var inner: [Int]?
        for item in items {
            let shape = try nestedList(item, into: &flat, args, depth: depth + 1)
            if let inner, inner != shape { throw args.bad("values", "ragged nested lists (sub-lists of shapes \(Tensor.describe(inner)) and \(Tensor.describe(shape)))") }
            inner = shape
        }
        return [items.count] + (inner ?? [])
    default:
        guard let d = value.asDouble else { throw args.bad("values", "numbers expected, got \(value.typeName)") }
        flat.append(Float(d))
        return []
    }
}

// MARK: - Running kernels

/// Runs `work` on a worker thread while this one polls Ctrl-C every 20 ms. On an interrupt
/// a computation is abandoned at once (`InterruptedError`): its result is dropped, and it
/// finishes in the background, or sooner where its kernels poll the flag themselves. A write
/// (`isWrite`) is waited for instead: the file writers poll the flag (`AtomicStreamWriter`,
/// `AtomicFile`) and delete their temporary, so after Ctrl-C neither a file nor a temporary
/// appears later; a write that completed before it saw the flag stands.
func cancellable<T>(isWrite: Bool = false, _ work: @escaping () throws -> T) throws -> T {
    try Cancellation.check()
    let box = ResultBox<T>()
    let done = DispatchSemaphore(value: 0)
    let thread = Thread {
        let result = Result { try work() }
        box.set(result)
        done.signal()
    }
    thread.stackSize = 64 << 20
    thread.start()
    while done.wait(timeout: .now() + .milliseconds(20)) == .timedOut {
        guard Cancellation.isRequested else { continue }
        if !isWrite { throw InterruptedError() }
        done.wait()
        break
    }
    guard let result = box.get() else { throw RuntimeError("internal error: a worker thread ended without a result") }
    return try result.get()
}

private final class ResultBox<T>: @unchecked Sendable {
    private let lock = NSLock()
    private var value: Result<T, Error>?
    func set(_ v: Result<T, Error>) { lock.lock(); value = v; lock.unlock() }
    func get() -> Result<T, Error>? { lock.lock(); defer { lock.unlock() }; return value }
}

// MARK: - Messages

/// "12.3 ms", "1.52 s", "850 µs".
func formatDuration(_ seconds: Double) -> String {
    if seconds < 1e-3 { return String(format: "%.0f µs", seconds * 1e6) }
    if seconds < 1 { return String(format: "%.1f ms", seconds * 1e3) }
    if seconds < 60 { return String(format: "%.2f s", seconds) }
    return String(format: "%dm%04.1fs", Int(seconds) / 60, seconds.truncatingRemainder(dividingBy: 60))
}
