import Foundation
import XCTest

/// mge-script as a separate process: signals and several writers at once. Uses the
/// mge-script built beside the test bundle (`swift build` builds both).
final class ScriptProcessTests: XCTestCase {
    private var scratch = ""

    override func setUpWithError() throws {
        scratch = NSTemporaryDirectory() + "/mge-process-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: scratch, withIntermediateDirectories: true)
    }

    override func tearDown() { try? FileManager.default.removeItem(atPath: scratch) }

    private func binary() throws -> String {
        let exe = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        let path = URL(fileURLWithPath: exe).deletingLastPathComponent().appendingPathComponent("mge-script").path
        guard FileManager.default.isExecutableFile(atPath: path) else {
            throw XCTSkip("no mge-script beside the test bundle at \(path); run `swift build` first")
        }
        return path
    }

    /// Starts `mge-script script` with stdout and stderr to files.
    private func start(_ script: String, name: String) throws -> (Process, out: String, err: String) {
        let file = scratch + "/\(name).mge", out = scratch + "/\(name).out", err = scratch + "/\(name).err"
        try script.write(toFile: file, atomically: true, encoding: .utf8)
        FileManager.default.createFile(atPath: out, contents: nil)
        FileManager.default.createFile(atPath: err, contents: nil)
        let p = Process()
        p.executableURL = URL(fileURLWithPath: try binary())
        p.arguments = [file]
        p.standardOutput = try FileHandle(forWritingTo: URL(fileURLWithPath: out))
        p.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: err))
        try p.run()
        return (p, out, err)
    }

    private func text(_ path: String) -> String { (try? String(contentsOfFile: path, encoding: .utf8)) ?? "" }

    func testSignalsStopTheScriptFlushingItsOutput() throws {
        for (signal, code) in [(SIGINT, Int32(130)), (SIGTERM, Int32(143))] {
            let (p, out, err) = try start("print(\"started\")\nx = 0\nwhile true { x = x + 1 }\n", name: "loop-\(signal)")
            // Wait until the script runs (its line is buffered, so poll for the process instead).
            Thread.sleep(forTimeInterval: 0.5)
            kill(p.processIdentifier, signal)
            p.waitUntilExit()
            XCTAssertEqual(p.terminationReason, .exit, "killed by the signal instead of stopping")
            XCTAssertEqual(p.terminationStatus, code)
            XCTAssertEqual(text(out), "started\n", "the line printed before the signal was lost")
            XCTAssertTrue(text(err).contains("interrupted"), text(err))
        }
    }

    /// Several processes appending to one CSV: every row arrives whole, none is lost.
    func testConcurrentScriptsAppendEveryRow() throws {
        for writers in [2, 4] {
            let csv = scratch + "/sweep-\(writers).csv"
            let rows = 150
            var running: [Process] = []
            for w in 0 ..< writers {
                let script = """
                m = {nodes: 10, edges: 20, components: 1, sink_nodes: 3}
                for i in range(\(rows)) { append_csv("\(csv)", m, pruning: "writer \\"\(w)\\", row", sparsity: 0.5, seed: i) }
                """
                running.append(try start(script, name: "writer-\(writers)-\(w)").0)
            }
            for p in running { p.waitUntilExit(); XCTAssertEqual(p.terminationStatus, 0) }
            let lines = text(csv).split(separator: "\n", omittingEmptySubsequences: false)
            XCTAssertEqual(lines.count, 1 + writers * rows + 1, "header + rows + final newline")
            XCTAssertEqual(Set(lines.dropFirst().filter { !$0.isEmpty }).count, writers * rows, "a row was lost or repeated")
            XCTAssertTrue(lines.dropFirst().filter { !$0.isEmpty }.allSatisfy { $0.contains("\"writer \"\"") }, "a quoted cell was mangled")
        }
    }
}
