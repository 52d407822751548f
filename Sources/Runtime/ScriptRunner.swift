import Foundation
import Kernels
import Lang
import Synchronization

/// `mge-script [options] file.mge [arguments...]` (or `-` for stdin); the options are parsed in
/// `parse`, and the arguments after the file reach the script as the list of strings `args`.
/// Exit codes follow sysexits: 0 ok, 1 sweep points failed, 64 usage, 65 syntax error, 70 runtime error, 74 I/O error;
/// stopped by SIGINT or SIGTERM: 128 + the signal (130, 143), as a shell reports a signal death.
///
/// SIGINT and SIGTERM do not kill the script: they ask it to stop (the evaluator and long
/// kernels poll `Cancellation`), so it stops at a safe point — never half-way through a row
/// appended to a CSV or a file being written — and exits normally, flushing everything it
/// printed (stdout to a file is block-buffered, and a signal death would drop the buffer).
/// A second signal of either kind ends the process at once.
public enum ScriptRunner {
    public static let usage = """
        usage: mge-script [options] file.mge [arguments...]   (- reads stdin; the script sees the arguments as `args`)
          -k, --keep-going     run the next top-level statement after a runtime error
          --jobs N             run sweep points in N worker processes
          --shard i/n          run the i-th of n slices of each sweep into <results>.shard-i-of-n.csv
          --merge              join the shard files into the results file (runs no point)
          --plan               print each sweep point's estimated time and memory, run nothing
          --shards n           with --plan: also show the totals for n shards
          --retry-failed       run again the points recorded in <results>.errors.csv
          --restart            when a sweep's function changed since its results file was
                               written: set the file aside and run every point again
          --report out.html    write a notebook page of the run: each statement, its output and
                               figures inline (out.md: Markdown with the figures beside it)
          --notebook out.ipynb write the executed Jupyter notebook (cells split at `# %%` lines)

        """

    static let scriptArgumentsSummary = "The arguments after the script's file name (mge-script file.mge a b gives [\"a\", \"b\"]); [] in the REPL."

    /// The command line: every option is parsed here.
    struct Options {
        var keepGoing = false
        var sweep = SweepSettings()
        var files: [String] = []
        var reportPath: String?
        var notebookPath: String?
        /// Kernel threads (a --jobs worker gets its share of the cores); nil: every core.
        var threads: Int?
    }

    /// Parses the arguments, or returns the message for a usage error.
    static func parse(_ arguments: [String]) -> Result<Options, UsageError> {
        var o = Options()
        var modes: [String] = []
        var i = 0
        func value(_ flag: String) throws(UsageError) -> String {
            i += 1
            guard i < arguments.count else { throw UsageError(message: "\(flag) needs a value") }
            return arguments[i]
        }
        do throws(UsageError) {
            while i < arguments.count {
                let arg = arguments[i]
                if !o.files.isEmpty {  // everything after the script is the script's
                    o.sweep.scriptArguments.append(arg)
                    i += 1
                    continue
                }
                switch arg {
                case "--keep-going", "-k": o.keepGoing = true
                case "--jobs", "-j":
                    let text = try value(arg)
                    guard let n = Int(text), n >= 1, n <= 256 else { throw UsageError(message: "--jobs expects a number of processes from 1 to 256, got '\(text)'") }
                    o.sweep.jobs = n
                case "--shard":
                    let text = try value(arg)
                    let parts = text.split(separator: "/")
                    guard parts.count == 2, let k = Int(parts[0]), let n = Int(parts[1]), n >= 1, k >= 1, k <= n else {
                        throw UsageError(message: "--shard expects i/n with 1 <= i <= n (e.g. --shard 2/10), got '\(text)'")
                    }
                    o.sweep.shard = (k, n)
                    modes.append("--shard")
                case "--shards":
                    let text = try value(arg)
                    guard let n = Int(text), n >= 1 else { throw UsageError(message: "--shards expects a number of shards, got '\(text)'") }
                    o.sweep.planShards = n
                case "--merge": o.sweep.mode = .merge; modes.append(arg)
                case "--plan": o.sweep.mode = .plan
                case "--retry-failed": o.sweep.retryFailed = true
                case "--restart": o.sweep.restart = true
                case "--report":
                    let path = try value(arg)
                    guard !path.isEmpty else { throw UsageError(message: "--report needs a file name (report.html or report.md)") }
                    o.reportPath = path
                case "--notebook":
                    let path = try value(arg)
                    guard path.lowercased().hasSuffix(".ipynb") else { throw UsageError(message: "--notebook needs a file name ending in .ipynb, got '\(path)'") }
                    o.notebookPath = path
                case "--sweep-worker": // internal: a --jobs worker process
                    guard let n = Int(try value(arg)) else { throw UsageError(message: "--sweep-worker expects a sweep number") }
                    o.sweep.mode = .worker(ordinal: n)
                case "--sweep-threads": // internal: a --jobs worker's share of the cores
                    guard let n = Int(try value(arg)), n >= 1 else { throw UsageError(message: "--sweep-threads expects a number of threads") }
                    o.threads = n
                default:
                    if arg.hasPrefix("-"), arg != "-" { throw UsageError(message: "unknown option '\(arg)'") }
                    o.files.append(arg)
                }
                i += 1
            }
            if modes.count > 1 { throw UsageError(message: "--shard and --merge do not go together (merge after every shard has run)") }
            guard o.files.count == 1 else { throw UsageError(message: "no script given") }
        } catch {
            return .failure(error)
        }
        o.sweep.scriptPath = o.files[0]
        return .success(o)
    }

    struct UsageError: Error { let message: String }

    public static func main(_ arguments: [String]) -> Int32 {
        let ownArguments = arguments.prefix { !($0 == "-" || !$0.hasPrefix("-")) }  // the script's own come after its file
        if ownArguments.contains("-h") || ownArguments.contains("--help") {
            print(usage, terminator: "")
            return 0
        }
        let options: Options
        switch parse(arguments) {
        case .success(let o): options = o
        case .failure(let e):
            fputs("mge-script: \(e.message)\n" + usage, stderr)
            return 64
        }
        guard let source = readSource(options.files[0]) else { return 74 }
        let interpreter = Interpreter()
        interpreter.sweepSettings = options.sweep
        interpreter.defineConstant(Constant("args", .list(options.sweep.scriptArguments.map(Value.string)), summary: scriptArgumentsSummary))
        if case .worker = options.sweep.mode {
            // A --jobs worker: stdout carries the protocol and the coordinator draws the bar.
            interpreter.write = { _ in }
            ProgressBar.forceEnabled = false
        }
        if let threads = options.threads { Parallel.threads = threads }
        if let notebookPath = options.notebookPath {
            guard options.reportPath == nil else {
                fputs("mge-script: --report and --notebook do not go together (the notebook is the report)\n", stderr)
                return 64
            }
            installStopHandlers()
            let code = NotebookRecorder.run(source, in: interpreter, keepGoing: options.keepGoing, writingTo: notebookPath)
            let signal = stopSignal.load(ordering: .relaxed)
            return code == exitCode(.interrupted) && signal != 0 ? 128 + signal : code
        }
        guard let reportPath = options.reportPath else {
            return runAsScript(source, in: interpreter, keepGoing: options.keepGoing)
        }
        let report = Report(source: source)
        report.attach(to: interpreter)
        let code = runAsScript(source, in: interpreter, keepGoing: options.keepGoing)
        do {
            try report.write(to: reportPath, title: (options.files[0] as NSString).lastPathComponent)
            fputs("mge-script: wrote \(reportPath)\n", stderr)
        } catch {
            fputs("mge-script: cannot write the report: \(error)\n", stderr)
            return code == 0 ? 74 : code
        }
        return code
    }

    /// Runs a whole script on a large stack with SIGINT/SIGTERM asking it to stop; returns the
    /// exit code (128 + the signal when one stopped it). For `mge-script` and `mge file.mge`;
    /// not for a file run before the prompt (`mge -i`), whose prompt handles Ctrl-C itself.
    public static func runAsScript(_ source: Source, in interpreter: Interpreter, keepGoing: Bool) -> Int32 {
        installStopHandlers()
        let code = runOnLargeStack { run(source, in: interpreter, keepGoing: keepGoing) }
        let signal = stopSignal.load(ordering: .relaxed)
        return code == exitCode(.interrupted) && signal != 0 ? 128 + signal : code
    }

    /// The signal that asked the script to stop, 0 while none has.
    private static let stopSignal = Atomic<Int32>(0)

    /// SIGINT/SIGTERM request a stop (async-signal-safe: atomic stores only); a second one
    /// restores the default action and re-raises, ending the process.
    private static func installStopHandlers() {
        for sig in [SIGINT, SIGTERM] {
            var action = sigaction()
            action.__sigaction_handler.sa_handler = { sig in
                if ScriptRunner.stopSignal.exchange(sig, ordering: .relaxed) != 0 {
                    signal(sig, SIG_DFL)
                    raise(sig)
                    return
                }
                Cancellation.request()
            }
            sigemptyset(&action.sa_mask)
            action.sa_flags = SA_RESTART
            sigaction(sig, &action, nil)
        }
    }

    /// Reads a file (or stdin for "-"), printing an I/O error when it cannot.
    public static func readSource(_ path: String) -> Source? {
        if path == "-" {
            let data = FileHandle.standardInput.readDataToEndOfFile()
            return Source(name: "<stdin>", text: String(decoding: data, as: UTF8.self))
        }
        guard let data = FileManager.default.contents(atPath: path) else {
            let reason = FileManager.default.fileExists(atPath: path) ? "cannot read" : "no such file"
            fputs("mge: \(path): \(reason)\n", stderr)
            return nil
        }
        return Source(name: path, text: String(decoding: data, as: UTF8.self))
    }

    /// Runs a whole source and maps the outcome to an exit code.
    public static func run(_ source: Source, in interpreter: Interpreter, keepGoing: Bool) -> Int32 {
        let outcome = interpreter.run(source, keepGoing: keepGoing)
        fflush(stdout)
        if outcome == .interrupted { fputs("interrupted\n", stderr) }
        // A script whose sweeps left points without a row did not do all it was asked: say so
        // last, where it is seen, and exit 1 (a runtime error's or a signal's code wins).
        let failures = interpreter.sweepFailures.filter { $0.value > 0 }
        if !failures.isEmpty {
            let count = failures.values.reduce(0, +)
            let files = failures.keys.sorted().joined(separator: ", ")
            fputs("mge-script: \(count) sweep point\(count == 1 ? "" : "s") failed (the errors, with file:line:col, are in \(files))\n", stderr)
            if outcome == .ok { return sweepFailedExitCode }
        }
        return exitCode(outcome)
    }

    /// The script ran to its end, but sweep points failed.
    public static let sweepFailedExitCode: Int32 = 1

    public static func exitCode(_ outcome: RunOutcome) -> Int32 {
        switch outcome {
        case .ok: return 0
        case .syntaxError: return 65
        case .runtimeError: return 70
        case .interrupted: return 130
        }
    }
}
