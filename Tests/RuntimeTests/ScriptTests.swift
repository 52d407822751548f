import Foundation
import XCTest

/// Runs every Tests/Scripts/**/*.mge through the built `mge-script` and checks its directives:
///   `# expect: TEXT`                 the next stdout line equals TEXT (all stdout lines, in order)
///   `# expect error: MSG`            a syntax error whose headline contains MSG (exit 65)
///   `# expect runtime error: MSG`    a runtime error whose headline contains MSG (exit 70)
///   `# args: --keep-going`           extra mge-script arguments
///   `# tmpdir`                       a fresh directory of its own is the script's args[0] (removed
///                                    after), so scripts that write files never share them with
///                                    another run of the suite on the same machine; the directory's
///                                    path reads `<tmpdir>` in the output the directives match
///   `# expect exit: N`               the exit code (e.g. 1: sweep points failed)
/// Several error directives match the reported errors in order. Without any, the exit code must be 0.
final class ScriptTests: XCTestCase {
    struct Expectations {
        var stdout: [String] = []
        var errors: [String] = []
        var exitCode: Int32 = 0
        var arguments: [String] = []
        var temporaryDirectory = false
    }

    static func expectations(of text: String) -> Expectations {
        var e = Expectations()
        for raw in text.split(separator: "\n", omittingEmptySubsequences: false) {
            let line = raw.trimmingCharacters(in: .whitespaces)
            func value(after prefix: String) -> String? {
                guard line.hasPrefix(prefix) else { return nil }
                let rest = raw[raw.range(of: prefix)!.upperBound...]
                return String(rest.hasPrefix(" ") ? rest.dropFirst() : rest[...])
            }
            if let v = value(after: "# expect:") {
                e.stdout.append(v)
            } else if let v = value(after: "# expect error:") {
                e.errors.append(v)
                e.exitCode = 65
            } else if let v = value(after: "# expect runtime error:") {
                e.errors.append(v)
                e.exitCode = 70
            } else if let v = value(after: "# args:") {
                e.arguments += v.split(separator: " ").map(String.init)
            } else if let v = value(after: "# expect exit:"), let code = Int32(v) {
                e.exitCode = code
            } else if line == "# tmpdir" {
                e.temporaryDirectory = true
            }
        }
        return e
    }

    static func scriptPaths() -> [String] {
        let root = TestPaths.packageRoot.appendingPathComponent("Tests/Scripts")
        let files = FileManager.default.enumerator(atPath: root.path)?.compactMap { $0 as? String } ?? []
        return files.filter { $0.hasSuffix(".mge") }.sorted().map { "Tests/Scripts/" + $0 }
    }

    /// nil when the script passes, else what differed.
    static func check(_ path: String, with binary: URL) -> String? {
        guard let text = try? String(contentsOf: TestPaths.packageRoot.appendingPathComponent(path), encoding: .utf8) else {
            return "cannot read"
        }
        let expected = expectations(of: text)
        var scriptArguments: [String] = []
        if expected.temporaryDirectory {
            let folder = FileManager.default.temporaryDirectory.appendingPathComponent("mge-script-test-\(getpid())-\(path.filter { $0.isLetter || $0.isNumber })")
            try? FileManager.default.removeItem(at: folder)
            guard (try? FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)) != nil else { return "cannot create \(folder.path)" }
            scriptArguments = [folder.path]
        }
        defer { if let folder = scriptArguments.first { try? FileManager.default.removeItem(atPath: folder) } }
        guard let ran = try? runProcess(binary, expected.arguments + [path] + scriptArguments, timeout: 60) else { return "cannot run mge-script" }
        var problems: [String] = []
        // The directory differs per run; expectations name it <tmpdir>.
        func placeholder(_ text: String) -> String {
            scriptArguments.first.map { text.replacingOccurrences(of: $0, with: "<tmpdir>") } ?? text
        }
        let result = (stdout: placeholder(ran.stdout), stderr: placeholder(ran.stderr), status: ran.status)
        var lines = result.stdout.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        if lines.last == "" { lines.removeLast() }
        if lines != expected.stdout {
            let firstDifference = (0..<min(lines.count, expected.stdout.count)).first { lines[$0] != expected.stdout[$0] } ?? min(lines.count, expected.stdout.count)
            let got = firstDifference < lines.count ? lines[firstDifference] : "<no more output>"
            let want = firstDifference < expected.stdout.count ? expected.stdout[firstDifference] : "<no more output>"
            problems.append("stdout line \(firstDifference + 1): got \(got.debugDescription), expected \(want.debugDescription)")
        }
        if result.status != expected.exitCode {
            problems.append("exit code \(result.status), expected \(expected.exitCode)")
        }
        let headlines = result.stderr.split(separator: "\n").map(String.init).filter { $0.contains(": error: ") }
        if headlines.count != expected.errors.count {
            problems.append("\(headlines.count) error(s) reported, expected \(expected.errors.count)")
        }
        for (got, want) in zip(headlines, expected.errors) where !got.contains(want) {
            problems.append("error \(got.debugDescription) does not contain \(want.debugDescription)")
        }
        if !problems.isEmpty, !result.stderr.isEmpty { problems.append("stderr:\n" + result.stderr) }
        return problems.isEmpty ? nil : problems.joined(separator: "\n  ")
    }

    func testEveryScript() throws {
        let binary = try XCTUnwrap(TestPaths.product("mge-script"), "build mge-script first (swift build)")
        let paths = ScriptTests.scriptPaths()
        XCTAssertGreaterThanOrEqual(paths.count, 60, "the suite should keep at least 60 scripts")
        var failures = [String?](repeating: nil, count: paths.count)
        let lock = NSLock()
        DispatchQueue.concurrentPerform(iterations: paths.count) { i in
            let failure = ScriptTests.check(paths[i], with: binary)
            lock.lock(); failures[i] = failure; lock.unlock()
        }
        for (path, failure) in zip(paths, failures) {
            if let failure { XCTFail("\(path):\n  \(failure)") }
        }
        let failed = failures.compactMap { $0 }.count
        print("script tests: \(paths.count - failed) passed, \(failed) failed, \(paths.count) total")
    }

    /// The directive parser itself: a wrong expectation must be able to fail.
    func testDirectivesAreParsedAndCanFail() throws {
        let e = ScriptTests.expectations(of: "x\n# expect: 1\n#expect: no\n# expect:\n# expect runtime error: boom\n# args: -k")
        XCTAssertEqual(e.stdout, ["1", ""])
        XCTAssertEqual(e.errors, ["boom"])
        XCTAssertEqual(e.exitCode, 70)
        XCTAssertEqual(e.arguments, ["-k"])
        XCTAssertFalse(e.temporaryDirectory)
        let f = ScriptTests.expectations(of: "# tmpdir\n# expect exit: 1\n")
        XCTAssertTrue(f.temporaryDirectory)
        XCTAssertEqual(f.exitCode, 1)
        let binary = try XCTUnwrap(TestPaths.product("mge-script"))
        let temporary = "Tests/.wrong-expectation-\(getpid()).mge"
        let url = TestPaths.packageRoot.appendingPathComponent(temporary)
        try "print(1)\n# expect: 2\n".write(to: url, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: url) }
        XCTAssertNotNil(ScriptTests.check(temporary, with: binary))
    }
}

/// mge-script's command line and exit codes outside what a script file can express.
final class ScriptRunnerTests: XCTestCase {
    func testExitCodes() throws {
        let binary = try XCTUnwrap(TestPaths.product("mge-script"))
        let missing = try runProcess(binary, ["/nonexistent/file.mge"])
        XCTAssertEqual(missing.status, 74)
        XCTAssertTrue(missing.stderr.contains("/nonexistent/file.mge: no such file"), missing.stderr)
        XCTAssertEqual(try runProcess(binary, []).status, 64)
        XCTAssertEqual(try runProcess(binary, ["--bogus", "x.mge"]).status, 64)
        let stdin = try runProcess(binary, ["-"], stdin: "print(\"from stdin\")\n1 +\n")
        XCTAssertEqual(stdin.status, 65)
        XCTAssertEqual(stdin.stdout, "", "nothing runs when the file has a syntax error")
        XCTAssertTrue(stdin.stderr.hasPrefix("<stdin>:2:4: error: expected an expression, got end of input"), stdin.stderr)
        let ok = try runProcess(binary, ["-"], stdin: "x = 2\nx ** 5")
        XCTAssertEqual(ok.stdout, "32\n")
        XCTAssertEqual(ok.status, 0)
    }
}
