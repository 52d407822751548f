import Foundation
import XCTest

/// Drives the real `mge` binary through a pseudo-terminal, as a person at a keyboard would.
final class REPLTests: XCTestCase {
    /// A child process whose stdin/stdout/stderr are the slave side of a pty we hold the master of.
    final class Terminal {
        let master: Int32
        let pid: pid_t
        private(set) var transcript = ""
        private var mark = "".endIndex

        init(executable: URL, arguments: [String] = [], environment: [String: String], columns: Int = 80) throws {
            var master: Int32 = 0, slave: Int32 = 0
            var size = winsize(ws_row: 40, ws_col: UInt16(columns), ws_xpixel: 0, ws_ypixel: 0)
            guard openpty(&master, &slave, nil, nil, &size) == 0, let name = ttyname(slave) else {
                throw NSError(domain: "pty", code: 1)
            }
            let slavePath = String(cString: name)
            var attributes = posix_spawnattr_t()
            posix_spawnattr_init(&attributes)
            defer { posix_spawnattr_destroy(&attributes) }
            // POSIX_SPAWN_SETSID (glibc): a new session, so opening the slave makes it the controlling
            // terminal and Ctrl-C reaches the child as SIGINT.
            // POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF: the child starts with no blocked signals and
            // default dispositions, whatever the test runner's threads have set.
            var noSignals = sigset_t()
            sigemptyset(&noSignals)
            posix_spawnattr_setsigmask(&attributes, &noSignals)
            var interrupt = sigset_t()
            sigemptyset(&interrupt)
            sigaddset(&interrupt, SIGINT)
            posix_spawnattr_setsigdefault(&attributes, &interrupt)
            posix_spawnattr_setflags(&attributes, 0x80 | 0x08 | 0x04)
            var actions = posix_spawn_file_actions_t()
            posix_spawn_file_actions_init(&actions)
            defer { posix_spawn_file_actions_destroy(&actions) }
            posix_spawn_file_actions_addclose(&actions, master)
            posix_spawn_file_actions_addclose(&actions, slave)
            posix_spawn_file_actions_addopen(&actions, 0, slavePath, O_RDWR, 0)
            posix_spawn_file_actions_adddup2(&actions, 0, 1)
            posix_spawn_file_actions_adddup2(&actions, 0, 2)
            let argv: [UnsafeMutablePointer<CChar>?] = ([executable.path] + arguments).map { strdup($0) } + [nil]
            let envp: [UnsafeMutablePointer<CChar>?] = environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
            defer { (argv + envp).forEach { free($0) } }
            var pid: pid_t = 0
            let status = posix_spawn(&pid, executable.path, &actions, &attributes, argv, envp)
            close(slave)
            guard status == 0 else { close(master); throw NSError(domain: "spawn", code: Int(status)) }
            self.master = master
            self.pid = pid
        }

        deinit {
            kill(pid, SIGKILL)
            var status: Int32 = 0
            waitpid(pid, &status, 0)
            close(master)
        }

        /// Like a person: a control key right after the prompt appears can reach the terminal before
        /// libedit has switched it to raw mode, where a lone ^D is dropped.
        func typeAfterPause(_ keys: String) {
            Thread.sleep(forTimeInterval: 0.2)
            type(keys)
        }

        func type(_ keys: String) {
            _ = keys.utf8CString.withUnsafeBufferPointer { write(master, $0.baseAddress, $0.count - 1) }
        }

        /// Reads output until `text` appears after the previous match (or the timeout passes).
        @discardableResult
        func waitFor(_ text: String, timeout: TimeInterval = 15) -> Bool {
            let deadline = Date().addingTimeInterval(timeout)
            while true {
                if let range = transcript.range(of: text, range: mark..<transcript.endIndex) {
                    mark = range.upperBound
                    return true
                }
                let remaining = deadline.timeIntervalSinceNow
                guard remaining > 0, readSome(timeout: remaining) else { return false }
            }
        }

        /// Everything read since the last call (a mark for slicing the transcript).
        var length: Int { transcript.count }

        /// The screen lines the output from character `from` on leaves: `\r` returns to the
        /// line's start, ESC[K clears to its end, other escapes (colours, cursor moves of the
        /// line editor) are dropped, characters overwrite.
        func screenLines(from: Int) -> [String] {
            var lines: [[Character]] = [[]]
            var cursor = 0
            var chars = Array(transcript.dropFirst(from))
            var i = 0
            while i < chars.count {
                let c = chars[i]
                if c == "\u{1B}" {
                    var j = i + 1
                    if j < chars.count, chars[j] == "[" {
                        j += 1
                        while j < chars.count, !(chars[j].isLetter) { j += 1 }
                        if j < chars.count, chars[j] == "K" { lines[lines.count - 1].removeSubrange(min(cursor, lines[lines.count - 1].count)...) }
                    }
                    i = j + 1
                    continue
                }
                if c == "\r" { cursor = 0 } else if c == "\n" || c == "\r\n" {
                    lines.append([]); cursor = 0
                } else if c.asciiValue.map({ $0 >= 32 }) ?? true {
                    if cursor < lines[lines.count - 1].count { lines[lines.count - 1][cursor] = c } else { lines[lines.count - 1].append(c) }
                    cursor += 1
                }
                i += 1
            }
            chars = []
            return lines.map { String($0) }
        }

        private func readSome(timeout: TimeInterval) -> Bool {
            var descriptor = pollfd(fd: master, events: Int16(POLLIN), revents: 0)
            guard poll(&descriptor, 1, Int32(min(timeout, 1) * 1000)) >= 0 else { return false }
            if descriptor.revents == 0 { return true } // nothing yet; let the caller re-check the deadline
            var buffer = [UInt8](repeating: 0, count: 4096)
            let n = read(master, &buffer, buffer.count)
            guard n > 0 else { return false }
            let offset = transcript.distance(from: transcript.startIndex, to: mark)
            transcript += String(decoding: buffer[0..<n], as: UTF8.self)
            mark = transcript.index(transcript.startIndex, offsetBy: offset)
            return true
        }

        func waitForExit(timeout: TimeInterval = 10) -> Int32? {
            let deadline = Date().addingTimeInterval(timeout)
            while Date() < deadline {
                _ = readSome(timeout: 0.05)
                var status: Int32 = 0
                if waitpid(pid, &status, WNOHANG) == pid { return (status >> 8) & 0xFF }
            }
            return nil
        }
    }

    private var home: URL!

    override func setUpWithError() throws {
        home = FileManager.default.temporaryDirectory.appendingPathComponent("mge-repl-test-\(getpid())-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: home, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(at: home)
    }

    private func start(columns: Int = 80) throws -> Terminal {
        let mge = try XCTUnwrap(TestPaths.product("mge"), "build mge first (swift build)")
        let environment = ["TERM": "xterm", "HOME": home.path, "MGE_HISTORY": home.appendingPathComponent("history").path,
                           "PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"]
        let terminal = try Terminal(executable: mge, environment: environment, columns: columns)
        XCTAssertTrue(terminal.waitFor(">>> "), "no prompt: \(terminal.transcript)")
        return terminal
    }

    func testTypingHistoryCompletionInterruptAndExit() throws {
        let t = try start()
        func step(_ keys: String, expect: String, _ what: String, file: StaticString = #filePath, line: UInt = #line) {
            t.type(keys)
            XCTAssertTrue(t.waitFor(expect), "\(what): \(expect.debugDescription) not seen in \(t.transcript.suffix(400).debugDescription)",
                          file: file, line: line)
        }
        step("x = 41 + 1\r", expect: ">>> ", "assignment")
        step("x\r", expect: "42\r\n>>> ", "display")
        step("\u{1B}[A", expect: "x", "history recall (up arrow)")
        step("\r", expect: "42\r\n>>> ", "recalled line runs")
        // The terminal redraws the completed line, so look for the completed suffix.
        step("le\t", expect: "n(", "completion of a builtin")
        step("[1, 2, 3])\r", expect: "3\r\n>>> ", "completed call runs")
        step("metrics = {spectral_gap: 0.5, components: 1}\r", expect: ">>> ", "record")
        step("metrics.spec\t", expect: "tral_gap", "completion of a record field")
        step("\r", expect: "0.5\r\n>>> ", "completed field runs")
        step("if x > 0 {\r", expect: "... ", "continuation prompt while a block is open")
        step("print(\"inside\")\r", expect: "... ", "still open")
        step("}\r", expect: "inside\r\n>>> ", "block runs when closed")
        step("n = 0\r", expect: ">>> ", "counter")
        t.type("while true { n = n + 1 }\r")
        Thread.sleep(forTimeInterval: 0.5)
        step("\u{03}", expect: "interrupted", "Ctrl-C stops a running loop")
        XCTAssertTrue(t.waitFor(">>> "))
        step("n > 0\r", expect: "true\r\n>>> ", "state survives an interrupt")
        step("half typed", expect: "half typed", "typing")
        t.typeAfterPause("\u{03}")
        Thread.sleep(forTimeInterval: 0.3)
        step("x\r", expect: "42\r\n>>> ", "Ctrl-C at the prompt drops the line")
        XCTAssertFalse(t.transcript.contains("half typedx"), "the dropped line must not be run")
        step("?len\r", expect: "Number of characters", "?name help")
        step("prnt(x)\r", expect: "did you mean 'print'?", "error with suggestion")
        XCTAssertTrue(t.waitFor(">>> "))
        t.typeAfterPause("\u{04}")
        XCTAssertEqual(t.waitForExit(), 0, "Ctrl-D exits with status 0")

        let history = try String(contentsOf: home.appendingPathComponent("history"), encoding: .utf8)
        XCTAssertTrue(history.contains("41"), history)

        // A new session recalls the previous session's lines.
        let again = try start()
        again.type("\u{1B}[A")
        XCTAssertTrue(again.waitFor("prnt(x)"), "last line of the previous session: \(again.transcript)")
        again.type("\r")
        XCTAssertTrue(again.waitFor("did you mean 'print'?"), again.transcript)
        XCTAssertTrue(again.waitFor(">>> "))
        again.typeAfterPause("\u{04}")
        XCTAssertEqual(again.waitForExit(), 0)
    }

    func testNonTerminalStdinRunsAsScript() throws {
        let mge = try XCTUnwrap(TestPaths.product("mge"))
        let result = try runProcess(mge, [], stdin: "x = 2\nx * 21\nnope\n")
        XCTAssertEqual(result.stdout, "42\n")
        XCTAssertEqual(result.status, 70)
        XCTAssertTrue(result.stderr.contains("<stdin>:3:1: error: undefined variable 'nope'"), result.stderr)
    }

    func testInteractiveAfterFileKeepsVariables() throws {
        let mge = try XCTUnwrap(TestPaths.product("mge"))
        let file = home.appendingPathComponent("setup.mge")
        try "answer = 6 * 7\nprint(\"loaded\")\n".write(to: file, atomically: true, encoding: .utf8)
        let plain = try runProcess(mge, [file.path])
        XCTAssertEqual(plain.stdout, "loaded\n")
        XCTAssertEqual(plain.status, 0)
        let environment = ["TERM": "xterm", "HOME": home.path, "MGE_HISTORY": home.appendingPathComponent("h").path, "PATH": "/usr/bin:/bin"]
        let t = try Terminal(executable: mge, arguments: ["-i", file.path], environment: environment)
        XCTAssertTrue(t.waitFor("loaded"))
        XCTAssertTrue(t.waitFor(">>> "))
        t.type("answer\r")
        XCTAssertTrue(t.waitFor("42\r\n>>> "), t.transcript)
        t.typeAfterPause("\u{04}")
        XCTAssertEqual(t.waitForExit(), 0)
    }

    /// The terminal polish, in a real pseudo-terminal 60 columns wide: Ctrl-C during a loop and
    /// during a builtin's long computation prints "interrupted" exactly once and keeps the
    /// variables; the caret stands under the offending keyword argument; a progress line is
    /// cleared before the next output; help wraps at the terminal's width; Tab completes keyword
    /// arguments; a multi-line block is one history entry; `~` is $HOME.
    func testPolishUnderAPseudoTerminal() throws {
        let t = try start(columns: 60)
        func step(_ keys: String, expect: String, _ what: String, timeout: TimeInterval = 30, file: StaticString = #filePath, line: UInt = #line) {
            t.type(keys)
            XCTAssertTrue(t.waitFor(expect, timeout: timeout), "\(what): \(expect.debugDescription) not seen in \(t.transcript.suffix(600).debugDescription)",
                          file: file, line: line)
        }
        func count(_ text: String, from: Int) -> Int { t.transcript.dropFirst(from).components(separatedBy: text).count - 1 }
        step("kept = 6 * 7\r", expect: ">>> ", "a variable")

        // Ctrl-C in the interpreter's loop and inside a builtin (the unrolled encoding of a dense ResNet-20).
        for (what, code) in [("a loop", "n = 0; while true { n = n + 1 }"), ("a builtin", "for i in range(100) { g = unroll(resnet20()) }")] {
            let before = t.length
            t.type(code + "\r")
            Thread.sleep(forTimeInterval: 1.5)
            step("\u{03}", expect: "interrupted", "Ctrl-C stops \(what)")
            XCTAssertTrue(t.waitFor(">>> "), t.transcript.suffix(400).debugDescription)
            Thread.sleep(forTimeInterval: 0.3)
            XCTAssertEqual(count("interrupted", from: before), 1, "\(what): \(t.transcript.dropFirst(before).debugDescription)")
            step("kept\r", expect: "42\r\n>>> ", "variables survive interrupting \(what)")
        }

        // The caret under the misspelt keyword argument.
        var mark = t.length
        step("prune(toy(), 0.5, methd: 1)\r", expect: ">>> ", "an error")
        let lines = t.screenLines(from: mark)
        let code = try XCTUnwrap(lines.first { $0.hasPrefix("    prune(") }, "\(lines)")
        let caret = try XCTUnwrap(lines.first { $0.trimmingCharacters(in: .whitespaces) == "^" }, "\(lines)")
        let column = try XCTUnwrap(code.range(of: "methd")).lowerBound
        XCTAssertEqual(caret.count - 1, code.distance(from: code.startIndex, to: column), "caret under 'methd': \(lines)")

        // A progress line (drawing a dense ResNet-20 takes a while) is cleared before "wrote".
        mark = t.length
        step("draw(resnet20(), \"~/r20.svg\")\r", expect: "r20.svg (", "drawing", timeout: 120)
        XCTAssertTrue(t.waitFor(">>> "))
        let wrote = t.screenLines(from: mark).filter { $0.contains("wrote") }
        XCTAssertTrue(t.transcript.dropFirst(mark).contains("draw… "), "a progress line was drawn (else this checks nothing)")
        XCTAssertEqual(wrote.count, 1, "\(wrote)")
        XCTAssertTrue(wrote.first?.hasPrefix("wrote \(home.path)/r20.svg (") ?? false, "the line holds nothing else: \(wrote)")
        XCTAssertTrue(FileManager.default.fileExists(atPath: home.appendingPathComponent("r20.svg").path), "~ is $HOME")

        // Help wraps at the terminal's 60 columns.
        mark = t.length
        step("?draw\r", expect: ">>> ", "help")
        let help = t.screenLines(from: mark).dropFirst().dropLast()
        XCTAssertGreaterThan(help.count, 5, "\(help)")
        for line in help { XCTAssertLessThanOrEqual(line.count, 60, line) }

        // Tab completes a keyword argument inside the call's brackets.
        step("draw(toy(), enc\t", expect: "oding: ", "keyword argument completion")
        t.type("\u{03}")
        XCTAssertTrue(t.waitFor(">>> "))

        // A multi-line block is one history entry: one up-arrow recalls and reruns all of it.
        step("if kept > 0 {\r", expect: "... ", "block opens")
        step("print(\"in block\")\r", expect: "... ", "block continues")
        step("}\r", expect: "in block\r\n>>> ", "block runs")
        mark = t.length
        t.type("\u{1B}[A")
        Thread.sleep(forTimeInterval: 0.3)
        step("\r", expect: "in block\r\n>>> ", "recalled block runs")
        XCTAssertEqual(count("in block", from: mark), 2, "the whole block came back (echoed and run): \(t.transcript.dropFirst(mark).debugDescription)")
        t.typeAfterPause("\u{04}")
        XCTAssertEqual(t.waitForExit(), 0)
    }
}
