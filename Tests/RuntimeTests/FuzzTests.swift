import Foundation
import Kernels
import Lang
import XCTest
@testable import Runtime

/// Feeds random and mutated programs to the parser and the evaluator. Success means: the process is
/// still alive (no trap, no stack overflow) and every diagnostic points inside its source.
/// MGE_FUZZ_COUNT (default 5000) and MGE_FUZZ_SEED change the run. The corpus holds every script test, so a
/// mutated program often builds a model or prunes one: 100,000 programs took 2,035 s of a 2,307 s suite on a
/// quiet machine (CI, 2026-12-06); 5,000 keep the suite short, and a deeper run sets MGE_FUZZ_COUNT.
final class FuzzTests: XCTestCase {
    static let fragments = [
        "x", "y", "xs", "r", "f", "g", "i", "print", "len", "range", "sort", "sum", "min", "str", "round", "keys",
        "help", "vars", "show", "type", "append", "int", "float", "time", "abs", "max", "join", "split",
        "if", "else", "for", "in", "while", "break", "continue", "fn", "return", "true", "false", "none",
        "and", "or", "not", "+", "-", "*", "/", "%", "**", "==", "!=", "<", "<=", ">", ">=", "=", "(", ")", "[",
        "]", "{", "}", ",", ":", ";", ".", "?", "%time", "\n", "\n", " ", "0", "1", "2", "-1", "3.5", "1e300",
        "9223372036854775807", "0.0", "\"s\"", "\"\\n\"", "'q'", "\"", "#", "\\", "é", "by:", "reverse:", "seed:",
    ]

    static let seeds = [
        "x = 1\ny = x + 2 * 3\nprint(x, y)",
        "fn f(a, b: 2) { return a + b }\nf(1)\nf(1, b: 3)",
        "fn fib(n) { if n < 2 { return n } return fib(n - 1) + fib(n - 2) }\nfib(8)",
        "xs = [1, 2.5, \"a\"]\nxs[0] = 3\nfor x in xs { print(x) }",
        "r = {a: 1, b: {c: [1, 2]}}\nr.b.c[1] = 5\nr\nkeys(r)",
        "i = 0\nwhile i < 10 { i = i + 1; if i % 2 == 0 { continue } if i > 7 { break } }",
        "rows = [{s: 0.9, n: 1}, {s: 0.5, n: 2}]\nsort(rows, by: \"s\")\nrows",
        "s = \"ab\" * 3 + str(2 ** 10)\nlen(s)\ns[-1]",
        "time { x = sum(range(100)) }\n%time y = max(1, 2, 3)",
        "g = fn (x) { return x * 2 }\nsort([3, 1], by: g, reverse: true)",
        "if 1 < 2 and not false or none { print(\"yes\") } else if true { } else { }",
        "?print\nhelp(len)\nvars()",
        "x = -9223372036854775807 - 1\nx % -1\n1 / 3\n7 % -2\nround(2.567, digits: 2)",
    ]

    func testFuzzParserAndEvaluator() throws {
        let environment = ProcessInfo.processInfo.environment
        let count = Int(environment["MGE_FUZZ_COUNT"] ?? "") ?? 5_000
        let seed = UInt64(environment["MGE_FUZZ_SEED"] ?? "") ?? 20_261_126
        let corpus = FuzzTests.seeds + ScriptTests.scriptPaths().compactMap {
            try? String(contentsOf: TestPaths.packageRoot.appendingPathComponent($0), encoding: .utf8)
        }
        let started = Date()
        let stats = runOnLargeStack { FuzzTests.fuzz(count: count, seed: seed, corpus: corpus) }
        let seconds = Date().timeIntervalSince(started)
        print("fuzz: \(count) programs (seed \(seed)) in \(String(format: "%.1f", seconds)) s: \(stats.syntaxErrors) syntax errors, "
              + "\(stats.ran) ran (\(stats.ok) ok, \(stats.runtimeErrors) runtime errors), 0 crashes")
        XCTAssertEqual(stats.badLocations, [], "diagnostics must point inside their source")
        XCTAssertEqual(stats.syntaxErrors + stats.ran, count)
        XCTAssertGreaterThan(stats.ran, count / 10, "the mutations should still reach the evaluator often")
        XCTAssertGreaterThan(stats.ok, 0)
    }

    struct Stats {
        var syntaxErrors = 0, ran = 0, ok = 0, runtimeErrors = 0
        var badLocations: [String] = []
    }

    static func fuzz(count: Int, seed: UInt64, corpus: [String]) -> Stats {
        var rng = SeededGenerator(seed: seed)
        var stats = Stats()
        for n in 0..<count {
            let text: String
            switch n % 4 {
            case 0: text = randomTokens(&rng)
            case 1: text = mutate(corpus.randomElement(using: &rng) ?? "", &rng, bytes: false)
            case 2: text = mutate(corpus.randomElement(using: &rng) ?? "", &rng, bytes: true)
            default: text = splice(corpus, &rng)
            }
            let source = Source(name: "fuzz", text: text)
            let parsed = Parser.parse(source)
            for d in parsed.diagnostics where !(d.point.map { $0.offset >= 0 && $0.offset <= source.bytes.count } ?? false) {
                stats.badLocations.append("\(d.headline) in \(text.debugDescription)")
            }
            guard parsed.diagnostics.isEmpty else {
                stats.syntaxErrors += 1
                continue
            }
            let interpreter = Interpreter()
            interpreter.limits.maxSteps = 3000
            interpreter.limits.maxCallDepth = 150
            interpreter.limits.maxCollectionSize = 20_000
            interpreter.write = { _ in }
            interpreter.writeError = { _ in }
            var reported: [Diagnostic] = []
            interpreter.report = { reported.append($0) }
            sandbox(interpreter)
            let outcome = interpreter.execute(parsed.program)
            stats.ran += 1
            if outcome == .ok { stats.ok += 1 } else { stats.runtimeErrors += 1 }
            for d in reported {
                _ = d.rendered() // rendering must not trap either
                if let p = d.point, p.offset < 0 || p.offset > p.source.bytes.count {
                    stats.badLocations.append("\(d.headline) in \(text.debugDescription)")
                }
            }
        }
        return stats
    }

    /// The corpus holds the script tests, whose paths the mutations turn into any path at all
    /// (a run once left `ge-script-test-sweep.csv` in the repository): every builtin that takes
    /// a file path refuses here, after its arguments are checked as usual.
    static func sandbox(_ interpreter: Interpreter) {
        for builtin in interpreter.builtins.values where builtin.params.contains(where: { $0.name == "path" }) {
            interpreter.defineBuiltin(Builtin(builtin.name, builtin.params, returns: builtin.returns, summary: builtin.summary,
                                              example: builtin.example) { _ in throw RuntimeError("no file access while fuzzing") })
        }
    }

    static func randomTokens(_ rng: inout SeededGenerator) -> String {
        let length = Int.random(in: 1...40, using: &rng)
        return (0..<length).map { _ in fragments.randomElement(using: &rng) ?? "" }.joined(separator: Bool.random(using: &rng) ? " " : "")
    }

    /// Deletes, duplicates, inserts or replaces pieces of a real program (by token fragment or raw byte).
    static func mutate(_ text: String, _ rng: inout SeededGenerator, bytes: Bool) -> String {
        var b = Array(text.utf8)
        for _ in 0..<Int.random(in: 1...4, using: &rng) {
            let i = b.isEmpty ? 0 : Int.random(in: 0..<b.count, using: &rng)
            let span = Int.random(in: 1...8, using: &rng)
            switch Int.random(in: 0..<4, using: &rng) {
            case 0: b.removeSubrange(i..<min(b.count, i + span))
            case 1: b.insert(contentsOf: Array(b[i..<min(b.count, i + span)]), at: i)
            case 2:
                let piece = bytes ? [UInt8.random(in: 0...255, using: &rng)] : Array((fragments.randomElement(using: &rng) ?? "").utf8)
                b.insert(contentsOf: piece, at: i)
            default:
                if i < b.count { b[i] = bytes ? UInt8.random(in: 0...127, using: &rng) : Array("()[]{}+-*/,:;.=\n\"".utf8).randomElement(using: &rng) ?? 0 }
            }
        }
        return String(decoding: b, as: UTF8.self)
    }

    /// Lines from several programs stitched together: valid statements in unexpected company.
    static func splice(_ corpus: [String], _ rng: inout SeededGenerator) -> String {
        var lines: [Substring] = []
        for _ in 0..<Int.random(in: 2...12, using: &rng) {
            let source = (corpus.randomElement(using: &rng) ?? "").split(separator: "\n")
            if let line = source.randomElement(using: &rng) { lines.append(line) }
        }
        return lines.joined(separator: "\n")
    }
}
