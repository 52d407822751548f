import Foundation
import Kernels
import Lang
import Synchronization

/// `mge-script [--keep-going] file.mge [arguments...]` (or `-` for stdin); the arguments after
/// the file reach the script as the list of strings `args`.
/// Exit codes follow sysexits: 0 ok, 64 usage, 65 syntax error, 70 runtime error, 74 I/O error;
/// stopped by SIGINT or SIGTERM: 128 + the signal (130, 143), as a shell reports a signal death.
///
/// SIGINT and SIGTERM do not kill the script: they ask it to stop (the evaluator and long
/// kernels poll `Cancellation`), so it stops at a safe point — never half-way through a row
/// appended to a CSV or a file being written — and exits normally, flushing everything it
/// printed (stdout to a file is block-buffered, and a signal death would drop the buffer).
/// A second signal of either kind ends the process at once.
public enum ScriptRunner {
    public static let usage = "usage: mge-script [--keep-going] file.mge [arguments...]   (- reads stdin; the script sees the arguments as `args`)\n"

    static let scriptArgumentsSummary = "The arguments after the script's file name (mge-script file.mge a b gives [\"a\", \"b\"]); [] in the REPL."

    public static func main(_ arguments: [String]) -> Int32 {
        var keepGoing = false
        var files: [String] = []
        var scriptArguments: [String] = []
        for arg in arguments {
            if !files.isEmpty { scriptArguments.append(arg); continue }
            switch arg {
            case "--keep-going", "-k": keepGoing = true
            case "-h", "--help":
                print(usage, terminator: "")
                return 0
            default:
                if arg.hasPrefix("-"), arg != "-" {
                    fputs("mge-script: unknown option '\(arg)'\n" + usage, stderr)
                    return 64
                }
                files.append(arg)
            }
        }
        guard files.count == 1, let path = files.first else {
            fputs(usage, stderr)
            return 64
        }
        guard let source = readSource(path) else { return 74 }
        let interpreter = Interpreter()
        interpreter.defineConstant(Constant("args", .list(scriptArguments.map(Value.string)), summary: scriptArgumentsSummary))
        return runAsScript(source, in: interpreter, keepGoing: keepGoing)
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
        return exitCode(outcome)
    }

    public static func exitCode(_ outcome: RunOutcome) -> Int32 {
        switch outcome {
        case .ok: return 0
        case .syntaxError: return 65
        case .runtimeError: return 70
        case .interrupted: return 130
        }
    }
}
