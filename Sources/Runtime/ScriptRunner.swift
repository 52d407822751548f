import Foundation
import Lang

/// `mge-script [--keep-going] file.mge` (or `-` for stdin).
/// Exit codes follow sysexits: 0 ok, 64 usage, 65 syntax error, 70 runtime error, 74 I/O error.
public enum ScriptRunner {
    public static let usage = "usage: mge-script [--keep-going] [--report out.html|out.md] file.mge   (- reads stdin)\n"

    public static func main(_ arguments: [String]) -> Int32 {
        var keepGoing = false
        var reportPath: String?
        var files: [String] = []
        var pending = arguments[...]
        while let arg = pending.popFirst() {
            switch arg {
            case "--keep-going", "-k": keepGoing = true
            case "--report":
                guard let path = pending.popFirst(), !path.isEmpty else {
                    fputs("mge-script: --report needs a file name (report.html or report.md)\n" + usage, stderr)
                    return 64
                }
                reportPath = path
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
        guard let reportPath else { return runOnLargeStack { run(source, in: Interpreter(), keepGoing: keepGoing) } }
        let interpreter = Interpreter()
        let report = Report(source: source)
        report.attach(to: interpreter)
        let code = runOnLargeStack { run(source, in: interpreter, keepGoing: keepGoing) }
        do {
            try report.write(to: reportPath, title: (path as NSString).lastPathComponent)
            fputs("mge-script: wrote \(reportPath)\n", stderr)
        } catch {
            fputs("mge-script: cannot write the report: \(error)\n", stderr)
            return code == 0 ? 74 : code
        }
        return code
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
