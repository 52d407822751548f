import Kernels
import Lang
import XCTest
@testable import Runtime

/// Runs source in a fresh (or given) interpreter on a large stack, capturing output and diagnostics.
struct Session {
    let interpreter: Interpreter
    private final class Sink { var out = ""; var err = "" }
    private let sink = Sink()

    init(_ interpreter: Interpreter = Interpreter()) {
        self.interpreter = interpreter
        let sink = self.sink
        interpreter.write = { sink.out += $0 }
        interpreter.writeError = { sink.err += $0 }
    }

    var out: String { sink.out }
    var err: String { sink.err }

    @discardableResult
    func run(_ text: String, keepGoing: Bool = false) -> RunOutcome {
        let interpreter = self.interpreter
        return runOnLargeStack { interpreter.run(source: text, name: "t", keepGoing: keepGoing) }
    }

    /// Output of `text` alone.
    func output(_ text: String) -> String {
        let before = sink.out.count
        run(text)
        return String(sink.out.dropFirst(before))
    }
}

final class EvaluatorTests: XCTestCase {
    private func output(_ text: String) -> String { Session().output(text) }

    private func error(_ text: String) -> String {
        let s = Session()
        XCTAssertNotEqual(s.run(text), .ok, text)
        return s.err.split(separator: "\n").first.map(String.init) ?? ""
    }

    func testNumbersAndOperators() {
        XCTAssertEqual(output("1 + 2 * 3; 7 / 2; 7 % 3; -7 % 3; 2 ** 10; 2 ** -2; 1e-3; 3.0; 0.1 + 0.2"),
                       "7\n3.5\n1\n2\n1024\n0.25\n0.001\n3.0\n0.30000000000000004\n")
        XCTAssertEqual(output("print(type(4 / 2), type(7 % 2), type(2 ** 3), type(2.0 ** 3))"), "float int int float\n")
    }

    func testIntOverflowIsAnErrorNotATrap() {
        for text in ["9223372036854775807 + 1", "-9223372036854775807 - 2", "3037000500 * 3037000500", "2 ** 63",
                     "x = -9223372036854775807 - 1; -x", "x = -9223372036854775807 - 1; abs(x)"] {
            XCTAssertTrue(error(text).contains("integer overflow"), text)
        }
        XCTAssertEqual(output("x = -9223372036854775807 - 1; x % -1; x / -1"), "0\n9.223372036854776e+18\n")
    }

    func testFloatFormattingRoundTrips() {
        for d in [0.1, 3.0, 1e-7, 1e16, 123.456, -0.0, 2.5e-300, Double.pi] {
            XCTAssertEqual(Double(Display.float(d)), d)
        }
        XCTAssertEqual(Display.float(0.1), "0.1")
        XCTAssertEqual(Display.float(3.0), "3.0")
        XCTAssertEqual(Display.float(1e-7), "1e-07")
    }

    func testStringsListsRecords() {
        XCTAssertEqual(output(#"print("a" + "b", len("héllo"), "x" * 2, ["a\"", 1, 2.5], {k: "v"})"#),
                       "ab 5 xx [\"a\\\"\", 1, 2.5] {k: \"v\"}\n")
        XCTAssertEqual(output("xs = [1, 2, 3]; xs[-1]; xs[0] = 9; xs; r = {a: {b: 1}}; r.a.b = 2; r[\"a\"]"),
                       "3\n[9, 2, 3]\nfield  value\nb      2\n")
    }

    func testControlFlowAndFunctions() {
        XCTAssertEqual(output("""
            fn fib(n) { if n < 2 { return n } return fib(n - 1) + fib(n - 2) }
            s = 0
            for i in range(10) { if i == 7 { break } if i % 2 == 0 { continue } s = s + fib(i) }
            s
            n = 0; while n < 3 { n = n + 1 }; n
            fn add(a, b: a * 2) { return a + b }
            print(add(1), add(1, 1), add(b: 0, a: 5))
            """), "8\n3\n3 2 5\n")
    }

    func testGlobalsPersistBetweenRuns() {
        let s = Session()
        s.run("x = 41")
        s.run("fn inc(v) { return v + 1 }")
        XCTAssertEqual(s.output("inc(x)"), "42\n")
        XCTAssertEqual(s.interpreter.globalNames, ["inc", "x"])
    }

    func testRuntimeErrorCarriesLocationAndCallStack() {
        let s = Session()
        XCTAssertEqual(s.run("fn g(x) {\n  return x + \"s\"\n}\nfn f(y) { return g(y) }\nf(1)"), .runtimeError)
        XCTAssertEqual(s.err, """
            t:2:12: error: cannot add int and string (use str() to convert the number)
                  return x + "s"
                           ^
              in g() called at t:4:18
              in f() called at t:5:1

            """)
    }

    func testKeepGoingRunsEveryStatement() {
        let s = Session()
        XCTAssertEqual(s.run("print(1)\nnope\nprint(2)\n1 / 0\nprint(3)", keepGoing: true), .runtimeError)
        XCTAssertEqual(s.out, "1\n2\n3\n")
        XCTAssertEqual(s.err.components(separatedBy: ": error: ").count - 1, 2)
    }

    func testSuggestions() {
        XCTAssertTrue(error("spars = 1\nprint(sprs)").hasSuffix("undefined variable 'sprs' (did you mean 'spars'?)"))
        XCTAssertTrue(error("r = {spectral_gap: 1}\nr.spectral_gp").hasSuffix("(did you mean 'spectral_gap'?)"))
        XCTAssertTrue(error("sort([1], revrse: true)").hasSuffix("unknown keyword argument 'revrse' to 'sort' (did you mean 'reverse'?)"))
    }

    func testCallDepthLimit() {
        let s = Session()
        s.interpreter.limits.maxCallDepth = 100
        XCTAssertEqual(s.run("fn f(n) { return f(n + 1) }\nf(0)"), .runtimeError)
        XCTAssertTrue(s.err.contains("stack overflow (more than 100 nested calls)"))
        XCTAssertTrue(s.err.contains("more calls"), "long traces are abbreviated")
        XCTAssertLessThan(s.err.split(separator: "\n").count, 30)
    }

    func testDeepValuesDisplayWithoutOverflow() {
        let s = Session()
        XCTAssertEqual(s.run("x = []\nfor i in range(20000) { x = [x] }\ns = str(x)\nok = x == x"), .ok)
        guard case .string(let text)? = s.interpreter.global("s") else { return XCTFail() }
        XCTAssertTrue(text.contains("[…]"))
    }

    func testStepLimitStopsInfiniteLoops() {
        let s = Session()
        s.interpreter.limits.maxSteps = 1000
        XCTAssertEqual(s.run("while true { }"), .runtimeError)
        XCTAssertTrue(s.err.contains("step limit exceeded"))
    }

    func testCancellationFlagInterruptsLoops() {
        let s = Session()
        Cancellation.request()
        defer { Cancellation.reset() }
        XCTAssertEqual(s.run("x = 1\nwhile true { x = x + 1 }"), .interrupted)
        Cancellation.reset()
        XCTAssertEqual(s.output("x"), "1\n", "the loop never ran: the flag was already set")
    }

    func testCancellationFromAnotherThread() {
        let s = Session()
        DispatchQueue.global().asyncAfter(deadline: .now() + 0.3) { Cancellation.request() }
        defer { Cancellation.reset() }
        let start = Date()
        XCTAssertEqual(s.run("for i in range(1000000000000) { }"), .interrupted)
        XCTAssertLessThan(Date().timeIntervalSince(start), 10)
    }

    func testTimeReportsOnErrorStream() {
        let s = Session()
        XCTAssertEqual(s.run("time { x = 1; x }\n%time y = 2"), .ok)
        XCTAssertEqual(s.out, "1\n")
        XCTAssertEqual(s.err.components(separatedBy: "time: ").count - 1, 2)
    }

    func testHelpForEveryBuiltin() {
        let s = Session()
        for name in s.interpreter.builtins.keys {
            let text = s.output("?\(name)")
            XCTAssertTrue(text.hasPrefix(name + "("), text)
            XCTAssertTrue(text.contains("example: "), text)
        }
        XCTAssertTrue(s.output("help()").contains("  print"))
    }

    func testRequiredNamesAreBuiltins() {
        let names = Set(Interpreter().builtins.keys)
        for required in ["print", "len", "str", "int", "float", "round", "abs", "min", "max", "sum", "sort", "range",
                         "keys", "vars", "help", "time", "show"] {
            XCTAssertTrue(names.contains(required), required)
        }
    }

    func testTables() {
        XCTAssertEqual(output("{a: 1, long_name: \"x\"}"), "field      value\na          1\nlong_name  x\n")
        XCTAssertEqual(output("[{n: 1, s: \"a\"}, {n: 10, s: \"bb\"}]"), " n  s\n 1  a\n10  bb\n")
    }
}
