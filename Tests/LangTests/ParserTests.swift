import XCTest
@testable import Lang

final class ParserTests: XCTestCase {
    private func parse(_ text: String) -> Parser.Result { Parser.parse(Source(name: "t", text: text)) }

    private func statements(_ text: String, file: StaticString = #filePath, line: UInt = #line) -> [Stmt] {
        let result = parse(text)
        XCTAssertEqual(result.diagnostics.map(\.message), [], file: file, line: line)
        return result.program.statements
    }

    private func expression(_ text: String) -> Expr? {
        guard case .expression(let e)? = statements(text).first else { return nil }
        return e
    }

    /// A compact rendering of an expression tree to compare precedence and associativity.
    private func tree(_ e: Expr) -> String {
        switch e {
        case .int(let i, _): return "\(i)"
        case .float(let d, _): return "\(d)"
        case .string(let s, _): return "\"\(s)\""
        case .bool(let b, _): return "\(b)"
        case .none: return "none"
        case .variable(let n, _): return n
        case .list(let xs, _): return "[" + xs.map(tree).joined(separator: " ") + "]"
        case .record(let fs, _): return "{" + fs.map { "\($0.name):\(tree($0.value))" }.joined(separator: " ") + "}"
        case .unary(let op, let x, _): return "(\(op == .negate ? "-" : "not") \(tree(x)))"
        case .binary(let op, let l, let r, _): return "(\(op.rawValue) \(tree(l)) \(tree(r)))"
        case .logical(let op, let l, let r, _): return "(\(op == .and ? "and" : "or") \(tree(l)) \(tree(r)))"
        case .call(let f, let args, _): return "(call \(tree(f))" + args.map { " " + ($0.label.map { "\($0):" } ?? "") + tree($0.value) }.joined() + ")"
        case .index(let b, let i, _): return "(index \(tree(b)) \(tree(i)))"
        case .slice(let b, let lo, let hi, _): return "(slice \(tree(b)) \(lo.map(tree) ?? "_") \(hi.map(tree) ?? "_"))"
        case .field(let b, let n, _): return "(. \(tree(b)) \(n))"
        case .function(let d): return "(fn \(d.params.map(\.name).joined(separator: " ")))"
        }
    }

    private func assertTree(_ text: String, _ expected: String, file: StaticString = #filePath, line: UInt = #line) {
        guard let e = expression(text) else { return XCTFail("no expression in \(text)", file: file, line: line) }
        XCTAssertEqual(tree(e), expected, file: file, line: line)
    }

    func testPrecedence() {
        assertTree("1 + 2 * 3", "(+ 1 (* 2 3))")
        assertTree("1 - 2 - 3", "(- (- 1 2) 3)")
        assertTree("2 ** 3 ** 2", "(** 2 (** 3 2))")
        assertTree("-2 ** 2", "(- (** 2 2))")
        assertTree("2 ** -1", "(** 2 (- 1))")
        assertTree("a < b + 1 and not c or d", "(or (and (< a (+ b 1)) (not c)) d)")
        assertTree("not a == b", "(not (== a b))")
        assertTree("x % 2 == 0", "(== (% x 2) 0)")
    }

    func testPostfixChains() {
        assertTree("m.spectral_gap", "(. m spectral_gap)")
        assertTree("xs[-1]", "(index xs (- 1))")
        assertTree("f(a)(b).c[0]", "(index (. (call (call f a) b) c) 0)")
        assertTree("prune(net, snip, 0.95, seed: 1)", "(call prune net snip 0.95 seed:1)")
        assertTree("m[\"gap\"]", "(index m \"gap\")")
        assertTree("xs[0:5]", "(slice xs 0 5)")
        assertTree("xs[:-1]", "(slice xs _ (- 1))")
        assertTree("xs[a + 1:]", "(slice xs (+ a 1) _)")
        assertTree("xs[:]", "(slice xs _ _)")
    }

    func testLiterals() {
        assertTree("[1, 2.5, \"a\", true, none]", "[1 2.5 \"a\" true none]")
        assertTree("{sparsity: 0.9, \"two words\": 1, if: 2}", "{sparsity:0.9 two words:1 if:2}")
        assertTree("[\n1,\n2,\n]", "[1 2]")
        assertTree("{}", "{}")
        assertTree("fn (a, b: 1) { return a }", "(fn a b)")
    }

    func testStatements() {
        let s = statements("x = 1; y = [x]\nfn f(a, b: 2) { return a + b }\nfor i in xs { continue }\nwhile c { break }\nif a { } else if b { } else { }\ntime { x }\n%time y\n?print\n?")
        XCTAssertEqual(s.count, 10)
        guard case .assign(.variable("x", _), _, _) = s[0] else { return XCTFail() }
        guard case .function(let decl) = s[2] else { return XCTFail() }
        XCTAssertEqual(decl.name, "f")
        XCTAssertEqual(decl.params.map(\.name), ["a", "b"])
        XCTAssertNil(decl.params[0].defaultValue)
        XCTAssertNotNil(decl.params[1].defaultValue)
        guard case .for(let v, _, _, _) = s[3], v == "i" else { return XCTFail() }
        guard case .if(let branches, let elseBody, _) = s[5] else { return XCTFail() }
        XCTAssertEqual(branches.count, 2)
        XCTAssertNotNil(elseBody)
        guard case .time(let body, _) = s[6], body.count == 1 else { return XCTFail() }
        guard case .time = s[7] else { return XCTFail() }
        guard case .help("print", _) = s[8] else { return XCTFail() }
        guard case .help(nil, _) = s[9] else { return XCTFail() }
    }

    func testAssignmentTargets() {
        let s = statements("xs[0] = 1\nr.a.b = 2")
        guard case .assign(.index(.variable("xs", _), _, _), _, _) = s[0] else { return XCTFail() }
        guard case .assign(.field(.field(.variable("r", _), "a", _), "b", _), _, _) = s[1] else { return XCTFail() }
    }

    func testOneTypoOneMessage() {
        let r = parse("x = (1 +\ny = 2\nprint(x")
        XCTAssertEqual(r.diagnostics.count, 2, r.diagnostics.map(\.headline).joined(separator: "\n"))
        let nested = parse("fn f() {\n  x = [1,, 2]\n  return x\n}\nprint(f())")
        XCTAssertEqual(nested.diagnostics.map(\.headline), ["t:2:10: error: expected an expression, got ','"])
    }

    func testIncompleteInputIsFlaggedForContinuation() {
        XCTAssertTrue(parse("if x {").isIncomplete)
        XCTAssertTrue(parse("f(1,").isIncomplete)
        XCTAssertTrue(parse("x = 1 +").isIncomplete)
        XCTAssertTrue(parse("r = {a: 1,\n").isIncomplete)
        XCTAssertFalse(parse("x = )").isIncomplete)
        XCTAssertFalse(parse("x = 1").isIncomplete)
        XCTAssertFalse(parse("\"open").isIncomplete)
    }

    func testDiagnosticRendering() {
        let r = parse("x = 1\ny = (2 +\t)\n")
        XCTAssertEqual(r.diagnostics.first?.rendered(),
                       "t:2:10: error: expected an expression, got ')'\n    y = (2 +\t)\n            \t^\n")
    }

    func testDeepNestingIsAnErrorNotACrash() {
        for (open, close) in [("(", ")"), ("[", "]"), ("-", ""), ("not ", ""), ("{a: ", "}")] {
            let text = "x = " + String(repeating: open, count: 5000) + "1" + String(repeating: close, count: 5000)
            let r = parse(text)
            XCTAssertTrue(r.diagnostics.first?.message.hasPrefix("nesting too deep") == true, "\(open): \(r.diagnostics.map(\.message))")
        }
        let blocks = String(repeating: "if x {\n", count: 3000) + String(repeating: "}\n", count: 3000)
        XCTAssertTrue(parse(blocks).diagnostics.first?.message.hasPrefix("nesting too deep") == true)
        let chain = "x = 1" + String(repeating: " + 1", count: 5000)
        XCTAssertTrue(parse(chain).diagnostics.first?.message.hasPrefix("nesting too deep") == true)
        let calls = "f" + String(repeating: "()", count: 5000)
        XCTAssertTrue(parse(calls).diagnostics.first?.message.hasPrefix("nesting too deep") == true)
        XCTAssertEqual(parse("x = " + String(repeating: "(", count: 150) + "1" + String(repeating: ")", count: 150)).diagnostics.count, 0)
    }
}
