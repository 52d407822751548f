import CEditLine
import Foundation
import Kernels
import Lang

/// State the C callbacks (completion, SIGINT) reach; libedit gives them no context pointer.
private enum ReplCallbacks {
    nonisolated(unsafe) static var complete: ((String) -> [String])?
    nonisolated(unsafe) static var candidates: [String] = []
    nonisolated(unsafe) static var next = 0
    nonisolated(unsafe) static var lookup: ((String) -> Value?)?
}

/// The interactive prompt: libedit line editing, persistent history, tab completion of names and
/// record fields, continuation lines while brackets or blocks are open, Ctrl-C to interrupt.
public final class REPL {
    public static let banner = "mge \(mgeVersion) — sparse networks as graphs. ?name for help, Ctrl-D to quit."
    public static let prompt = ">>> "
    public static let continuationPrompt = "... "

    let interpreter: Interpreter
    let historyPath: String

    public init(interpreter: Interpreter = Interpreter()) {
        self.interpreter = interpreter
        let environment = ProcessInfo.processInfo.environment
        if let path = environment["MGE_HISTORY"], !path.isEmpty {
            historyPath = path
        } else {
            historyPath = (environment["HOME"] ?? NSHomeDirectory()) + "/.mge_history"
        }
    }

    /// `mge` entry point: `mge`, `mge file.mge`, `mge -i file.mge`; stdin that is not a terminal runs as a script.
    public static func main(_ arguments: [String]) -> Int32 {
        if arguments.first == "--install-kernel" { return JupyterFrontEnd.installKernel(Array(arguments.dropFirst())) }
        if arguments.first == "--kernel" {
            guard arguments.count == 2 else {
                fputs("usage: mge --kernel connection.json   (Jupyter starts it so; see mge --install-kernel)\n", stderr)
                return 64
            }
            return JupyterFrontEnd.runKernel(connectionFile: arguments[1])
        }
        var interactive = false
        var files: [String] = []
        for arg in arguments {
            switch arg {
            case "-i": interactive = true
            case "-h", "--help":
                print("""
                    usage: mge [-i] [file.mge]   (no file: interactive prompt; -i: run the file, then prompt)
                           mge --install-kernel [--user | --prefix DIR | --sys-prefix]   (the Jupyter kernelspec "mge")
                           mge --kernel connection.json   (the Jupyter kernel; Jupyter starts it)
                    """)
                return 0
            case "--version":
                print("mge \(mgeVersion)")
                return 0
            default:
                if arg.hasPrefix("-"), arg != "-" {
                    fputs("mge: unknown option '\(arg)'\n", stderr)
                    return 64
                }
                files.append(arg)
            }
        }
        guard files.count <= 1 else {
            fputs("usage: mge [-i] [file.mge]\n", stderr)
            return 64
        }
        let interpreter = Interpreter()
        if let path = files.first {
            guard let source = ScriptRunner.readSource(path) else { return 74 }
            if !interactive { return ScriptRunner.runAsScript(source, in: interpreter, keepGoing: false) }
            _ = runOnLargeStack { ScriptRunner.run(source, in: interpreter, keepGoing: false) }
        } else if isatty(0) == 0 {
            guard let source = ScriptRunner.readSource("-") else { return 74 }
            return ScriptRunner.runAsScript(source, in: interpreter, keepGoing: false)
        }
        return REPL(interpreter: interpreter).loop()
    }

    /// Reads cells until Ctrl-D. Returns the process exit code.
    public func loop() -> Int32 {
        // Wide tables wrap at the terminal's width.
        var size = winsize()
        if isatty(1) == 1, ioctl(1, UInt(TIOCGWINSZ), &size) == 0, size.ws_col >= 40 {
            Display.tableWidth = Int(size.ws_col)
            Display.helpWidth = Int(size.ws_col)
        }
        print(REPL.banner)
        fflush(stdout)
        setUpLineEditing()
        var buffer = ""
        var blankLines = 0
        while true {
            Cancellation.reset()
            let prompt = buffer.isEmpty ? REPL.prompt : REPL.continuationPrompt
            guard let raw = readline(prompt) else {
                if Cancellation.isRequested {
                    // Ctrl-C at the prompt: drop the line (and any open cell) and prompt again.
                    print("")
                    buffer = ""
                    continue
                }
                print("")
                break
            }
            let line = String(cString: raw)
            free(raw)
            if !line.allSatisfy(\.isWhitespace) {
                blankLines = 0
            } else {
                blankLines += 1
                if buffer.isEmpty { continue }
            }
            buffer += line + "\n"
            let parsed = Parser.parse(Source(name: "<repl>", text: buffer))
            // Keep reading while something is open; two blank lines in a row give up and show the error.
            if parsed.isIncomplete, blankLines < 2 { continue }
            // A multi-line block is one history entry (recalled whole with the up arrow).
            let entry = buffer.trimmingCharacters(in: .whitespacesAndNewlines)
            if !entry.isEmpty {
                add_history(entry)
                saveHistory()
            }
            buffer = ""
            blankLines = 0
            if !parsed.diagnostics.isEmpty {
                for d in parsed.diagnostics { fputs(d.rendered(), stderr) }
                continue
            }
            evaluate(parsed.program)
        }
        saveHistory()
        return 0
    }

    private func evaluate(_ program: Program) {
        Cancellation.reset()
        let interpreter = self.interpreter
        interpreter.missingDataset = nil
        let outcome = runOnLargeStack { interpreter.execute(program) }
        fflush(stdout)
        // The terminal has echoed "^C"; finish that line.
        if outcome == .interrupted { fputs("\ninterrupted\n", stderr) }
        Cancellation.reset()
        if outcome == .runtimeError, let name = interpreter.missingDataset, let archive = DatasetArchive.named(name), isatty(0) == 1 {
            offerDownload(archive)
        }
    }

    /// Asks (y/N) whether to download the dataset a statement needed, and does so on "y".
    private func offerDownload(_ archive: DatasetArchive) {
        let question = "download \(archive.name) now? \(byteSize(archive.approximateBytes)) into \(DatasetDownload.dataRoot)/\(archive.name) [y/N] "
        guard let raw = readline(question) else { print(""); return }
        let answer = String(cString: raw).trimmingCharacters(in: .whitespaces).lowercased()
        free(raw)
        guard answer == "y" || answer == "yes" else { return }
        do {
            _ = try downloadDataset(archive, interpreter)
            print("run the statement again to use it")
        } catch is InterruptedError {
            fputs("\ninterrupted (download(\"\(archive.name)\") resumes it)\n", stderr)
        } catch let error as RuntimeError {
            fputs(error.message + "\n", stderr)
        } catch {
            fputs("\(error)\n", stderr)
        }
        fflush(stdout)
        Cancellation.reset()
    }

    // MARK: - libedit

    private func setUpLineEditing() {
        _ = Cancellation.isRequested // initialise the flag before the signal handler can touch it
        installInterruptHandler()
        mge_set_catch_signals(0)
        stifle_history(2000)
        if FileManager.default.fileExists(atPath: historyPath) { read_history(historyPath) }
        let interpreter = self.interpreter
        ReplCallbacks.complete = { text in
            let line = mge_line_buffer().map { String(cString: $0) } ?? ""
            return REPL.completions(for: text, in: interpreter, code: line, cursor: line.unicodeScalars.count)
        }
        mge_set_word_break_characters(strdup(" \t\n\"\\'`@$><=;|&{([,)]+-*/%:!?"))
        mge_set_completion_function { text, _, _ in
            guard let text else { return nil }
            let word = String(cString: text)
            ReplCallbacks.candidates = ReplCallbacks.complete?(word) ?? []
            ReplCallbacks.next = 0
            let single = ReplCallbacks.candidates.count == 1 ? ReplCallbacks.candidates[0] : nil
            // After a unique function name, open the call; after a field, nothing; else a space.
            if let single, let value = ReplCallbacks.lookup?(single), value.typeName == "function" {
                mge_set_completion_append_character(Int32(UInt8(ascii: "(")))
            } else if single?.contains(".") == true || single?.hasSuffix(": ") == true {
                mge_set_completion_append_character(0)
            } else {
                mge_set_completion_append_character(Int32(UInt8(ascii: " ")))
            }
            return rl_completion_matches(text) { _, state in
                if state == 0 { ReplCallbacks.next = 0 }
                guard ReplCallbacks.next < ReplCallbacks.candidates.count else { return nil }
                let candidate = ReplCallbacks.candidates[ReplCallbacks.next]
                ReplCallbacks.next += 1
                return strdup(candidate)
            }
        }
        ReplCallbacks.lookup = { name in interpreter.lookupGlobal(name) }
    }

    /// Writes the history to a temporary file, then renames it over the real one.
    private func saveHistory() {
        let temporary = historyPath + ".tmp\(getpid())"
        if write_history(temporary) == 0 {
            if rename(temporary, historyPath) != 0 { unlink(temporary) }
        } else {
            unlink(temporary)
        }
    }

    /// Ctrl-C sets the cancellation flag. No SA_RESTART, so a blocked read at the prompt returns.
    private func installInterruptHandler() {
        // A parent may have blocked SIGINT; this thread must receive it so that Ctrl-C interrupts
        // readline's read() (Linux delivers a process signal to the main thread first).
        var unblocked = sigset_t()
        sigemptyset(&unblocked)
        sigaddset(&unblocked, SIGINT)
        pthread_sigmask(SIG_UNBLOCK, &unblocked, nil)
        var action = sigaction()
        action.__sigaction_handler.sa_handler = { _ in Cancellation.request() }
        sigemptyset(&action.sa_mask)
        action.sa_flags = 0
        sigaction(SIGINT, &action, nil)
    }

    // MARK: - Completion

    /// Candidates for the word before the cursor: names, keywords, or `base.field` paths; inside
    /// a call's brackets (`code` up to `cursor`, a count of Unicode scalars) also the function's
    /// keyword arguments, as `name: `.
    public static func completions(for text: String, in interpreter: Interpreter, code: String = "", cursor: Int? = nil) -> [String] {
        let keywords = text.contains(".") ? [] : keywordArguments(startingWith: text, code: code, cursor: cursor, in: interpreter)
        return keywords + nameCompletions(for: text, in: interpreter)
    }

    /// `label: ` for each parameter of the innermost call open before the cursor whose name
    /// starts with `prefix`.
    static func keywordArguments(startingWith prefix: String, code: String, cursor: Int?, in interpreter: Interpreter) -> [String] {
        let scalars = Array(code.unicodeScalars)
        var i = min(max(0, cursor ?? scalars.count), scalars.count) - prefix.unicodeScalars.count
        var depth = 0
        while i > 0 {
            i -= 1
            switch scalars[i] {
            case ")", "]", "}": depth += 1
            case "[", "{": depth -= 1
            case "(":
                if depth == 0 {
                    var start = i
                    while start > 0, scalars[start - 1] == "_" || scalars[start - 1].properties.isAlphabetic || ("0"..."9").contains(scalars[start - 1]) { start -= 1 }
                    var name = String.UnicodeScalarView()
                    name.append(contentsOf: scalars[start..<i])
                    let names: [String]
                    switch interpreter.lookupGlobal(String(name)) {
                    case .builtin(let b)?: names = b.params.filter { !$0.isVariadic && !$0.isKeywords }.map(\.name)
                    case .function(let f)?: names = f.decl.params.map(\.name)
                    default: names = []
                    }
                    return names.filter { $0.hasPrefix(prefix) }.map { $0 + ": " }
                }
                depth -= 1
            default: break
            }
            if depth < 0 { return [] }
        }
        return []
    }

    private static func nameCompletions(for text: String, in interpreter: Interpreter) -> [String] {
        if let dot = text.lastIndex(of: ".") {
            let basePath = String(text[..<dot])
            let prefix = String(text[text.index(after: dot)...])
            let parts = basePath.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
            guard let first = parts.first, var value = interpreter.lookupGlobal(first) else { return [] }
            for part in parts.dropFirst() {
                guard let next = fieldValue(value, part) else { return [] }
                value = next
            }
            return fieldNames(value).filter { $0.hasPrefix(prefix) }.sorted().map { basePath + "." + $0 }
        }
        return Array(Set(interpreter.visibleNames + reservedWords)).filter { $0.hasPrefix(text) }.sorted()
    }

    private static func fieldNames(_ value: Value) -> [String] {
        switch value {
        case .record(let r): return r.names
        case .native(let object): return object.fieldNames
        default: return []
        }
    }

    private static func fieldValue(_ value: Value, _ name: String) -> Value? {
        switch value {
        case .record(let r): return r[name]
        case .native(let object): return object.field(name)
        default: return nil
        }
    }
}
