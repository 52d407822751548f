import XCTest
@testable import Lang

final class LexerTests: XCTestCase {
    private func kinds(_ text: String) -> [TokenKind] {
        Lexer.tokenize(Source(name: "t", text: text)).map(\.kind)
    }

    private func lexemes(_ text: String) -> [String] {
        let source = Source(name: "t", text: text)
        return Lexer.tokenize(source).map { String(decoding: source.bytes[$0.start..<$0.start + $0.length], as: UTF8.self) }
    }

    func testOperatorsAndPunctuation() {
        XCTAssertEqual(kinds("+ - * / % ** == != < <= > >= = ( ) [ ] { } , : ; . ?"),
                       [.plus, .minus, .star, .slash, .percent, .starStar, .equalEqual, .bangEqual, .less, .lessEqual,
                        .greater, .greaterEqual, .equal, .leftParen, .rightParen, .leftBracket, .rightBracket,
                        .leftBrace, .rightBrace, .comma, .colon, .semicolon, .dot, .question, .eof])
    }

    func testKeywordsAndIdentifiers() {
        XCTAssertEqual(kinds("if else for in while break continue fn return true false none and or not spectral_gap _x1"),
                       [.kwIf, .kwElse, .kwFor, .kwIn, .kwWhile, .kwBreak, .kwContinue, .kwFn, .kwReturn, .kwTrue,
                        .kwFalse, .kwNone, .kwAnd, .kwOr, .kwNot, .identifier, .identifier, .eof])
    }

    func testNumbers() {
        XCTAssertEqual(kinds("3 0.95 1e-3 2E+4 1_000 7."), [.int, .float, .float, .float, .int, .int, .dot, .eof])
        XCTAssertEqual(lexemes("1e-3 x"), ["1e-3", "x", ""])
        if case .error(let message) = kinds("12abc")[0] { XCTAssertEqual(message, "malformed number") } else { XCTFail() }
    }

    func testTokensPointIntoTheSource() {
        let source = Source(name: "t", text: "ab = \"cd\"")
        let tokens = Lexer.tokenize(source)
        XCTAssertEqual(tokens[0].start, 0)
        XCTAssertEqual(tokens[0].length, 2)
        XCTAssertEqual(tokens[2].start, 5)
        XCTAssertEqual(tokens[2].length, 4)
    }

    func testStringsAndEscapes() {
        let source = Source(name: "t", text: #""a\tb\n\"\\\u{e9}" 'x'"#)
        let tokens = Lexer.tokenize(source)
        XCTAssertEqual(tokens.map(\.kind), [.string, .string, .eof])
        XCTAssertEqual(decodeStringLiteral(source.bytes[tokens[0].start..<tokens[0].start + tokens[0].length]), "a\tb\n\"\\é")
        if case .error(let m) = kinds("\"open")[0] { XCTAssertEqual(m, "unterminated string") } else { XCTFail() }
        if case .error(let m) = kinds("\"a\\qb\"")[0] { XCTAssertEqual(m, "invalid escape sequence '\\q'") } else { XCTFail() }
        if case .error(let m) = kinds("\"\\u{D800}\"")[0] { XCTAssertTrue(m.hasPrefix("invalid unicode escape")) } else { XCTFail() }
    }

    func testCommentsNewlinesAndContinuation() {
        XCTAssertEqual(kinds("a # comment\n\n\nb \\\n c"), [.identifier, .newline, .identifier, .identifier, .eof])
    }

    func testUnexpectedCharacters() {
        if case .error(let m) = kinds("$")[0] { XCTAssertEqual(m, "unexpected character '$'") } else { XCTFail() }
        if case .error(let m) = kinds("!x")[0] { XCTAssertTrue(m.contains("'not'")) } else { XCTFail() }
    }

    func testLineAndColumnCountScalars() {
        let source = Source(name: "f.mge", text: "x = 1\né = y\n")
        XCTAssertEqual(source.lineAndColumn(of: 0).line, 1)
        let y = source.text.utf8.count - 2
        XCTAssertEqual(source.lineAndColumn(of: y).line, 2)
        XCTAssertEqual(source.lineAndColumn(of: y).column, 5)
        XCTAssertEqual(source.lineText(2), "é = y")
        XCTAssertEqual(source.describe(y), "f.mge:2:5")
    }

    func testClosestName() {
        XCTAssertEqual(closestName(to: "prnt", among: ["print", "len", "sort"]), "print")
        XCTAssertEqual(closestName(to: "pirnt", among: ["print", "len"]), "print")
        XCTAssertEqual(closestName(to: "spectral_gpa", among: ["spectral_gap", "spectral_radius"]), "spectral_gap")
        XCTAssertNil(closestName(to: "zzzz", among: ["print", "len"]))
    }
}
