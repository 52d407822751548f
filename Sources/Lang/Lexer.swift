/// Token kinds. A token is only a kind plus a byte range into its `Source` (Lua / Crafting Interpreters style).
public enum TokenKind: Hashable, Sendable {
    case identifier, int, float, string
    // keywords
    case kwIf, kwElse, kwFor, kwIn, kwWhile, kwBreak, kwContinue, kwFn, kwReturn
    case kwTrue, kwFalse, kwNone, kwAnd, kwOr, kwNot
    // punctuation
    case leftParen, rightParen, leftBracket, rightBracket, leftBrace, rightBrace
    case comma, colon, semicolon, dot, equal, question
    case plus, minus, star, slash, percent, starStar
    case equalEqual, bangEqual, less, lessEqual, greater, greaterEqual
    case newline, eof
    /// A lexical error; the message is what the parser reports.
    case error(String)
}

public struct Token: Sendable {
    public let kind: TokenKind
    public let start: Int
    public let length: Int
}

let keywords: [String: TokenKind] = [
    "if": .kwIf, "else": .kwElse, "for": .kwFor, "in": .kwIn, "while": .kwWhile,
    "break": .kwBreak, "continue": .kwContinue, "fn": .kwFn, "return": .kwReturn,
    "true": .kwTrue, "false": .kwFalse, "none": .kwNone, "and": .kwAnd, "or": .kwOr, "not": .kwNot,
]

/// Every reserved word, for completion and for "did you mean" hints.
public let reservedWords: [String] = keywords.keys.sorted()

/// Turns source bytes into tokens. Newlines are tokens (statement separators); the parser decides
/// where they are insignificant (inside brackets). Consecutive newlines collapse into one token.
public struct Lexer {
    private let bytes: [UInt8]
    private var position = 0

    public init(source: Source) { self.bytes = source.bytes }

    public static func tokenize(_ source: Source) -> [Token] {
        var lexer = Lexer(source: source)
        var tokens: [Token] = []
        while true {
            let token = lexer.next()
            if token.kind == .newline, tokens.last?.kind == .newline { continue }
            tokens.append(token)
            if token.kind == .eof { return tokens }
        }
    }

    private func peek(_ ahead: Int = 0) -> UInt8 {
        position + ahead < bytes.count ? bytes[position + ahead] : 0
    }

    private func isIdentifierStart(_ c: UInt8) -> Bool {
        (c >= 97 && c <= 122) || (c >= 65 && c <= 90) || c == 95 || c >= 0x80
    }
    private func isDigit(_ c: UInt8) -> Bool { c >= 48 && c <= 57 }

    public mutating func next() -> Token {
        skipSpaceAndComments()
        let start = position
        guard position < bytes.count else { return Token(kind: .eof, start: bytes.count, length: 0) }
        let c = bytes[position]
        position += 1
        func make(_ kind: TokenKind) -> Token { Token(kind: kind, start: start, length: position - start) }
        switch c {
        case UInt8(ascii: "\n"): return make(.newline)
        case UInt8(ascii: "("): return make(.leftParen)
        case UInt8(ascii: ")"): return make(.rightParen)
        case UInt8(ascii: "["): return make(.leftBracket)
        case UInt8(ascii: "]"): return make(.rightBracket)
        case UInt8(ascii: "{"): return make(.leftBrace)
        case UInt8(ascii: "}"): return make(.rightBrace)
        case UInt8(ascii: ","): return make(.comma)
        case UInt8(ascii: ":"): return make(.colon)
        case UInt8(ascii: ";"): return make(.semicolon)
        case UInt8(ascii: "?"): return make(.question)
        case UInt8(ascii: "+"): return make(.plus)
        case UInt8(ascii: "-"): return make(.minus)
        case UInt8(ascii: "/"): return make(.slash)
        case UInt8(ascii: "%"): return make(.percent)
        case UInt8(ascii: "."): return make(.dot)
        case UInt8(ascii: "*"):
            if peek() == UInt8(ascii: "*") { position += 1; return make(.starStar) }
            return make(.star)
        case UInt8(ascii: "="):
            if peek() == UInt8(ascii: "=") { position += 1; return make(.equalEqual) }
            return make(.equal)
        case UInt8(ascii: "!"):
            if peek() == UInt8(ascii: "=") { position += 1; return make(.bangEqual) }
            return make(.error("unexpected character '!' (use 'not' for negation)"))
        case UInt8(ascii: "<"):
            if peek() == UInt8(ascii: "=") { position += 1; return make(.lessEqual) }
            return make(.less)
        case UInt8(ascii: ">"):
            if peek() == UInt8(ascii: "=") { position += 1; return make(.greaterEqual) }
            return make(.greater)
        case UInt8(ascii: "\""), UInt8(ascii: "'"):
            return string(quote: c, start: start)
        default:
            if isDigit(c) { return number(start: start) }
            if isIdentifierStart(c) {
                while position < bytes.count, isIdentifierStart(bytes[position]) || isDigit(bytes[position]) { position += 1 }
                let word = String(decoding: bytes[start..<position], as: UTF8.self)
                return make(keywords[word] ?? .identifier)
            }
            let shown = c >= 0x20 && c < 0x7F ? String(UnicodeScalar(c)) : "\\u{\(String(c, radix: 16))}"
            return make(.error("unexpected character '\(shown)'"))
        }
    }

    private mutating func skipSpaceAndComments() {
        while position < bytes.count {
            switch bytes[position] {
            case UInt8(ascii: " "), UInt8(ascii: "\t"), UInt8(ascii: "\r"):
                position += 1
            case UInt8(ascii: "#"):
                while position < bytes.count, bytes[position] != UInt8(ascii: "\n") { position += 1 }
            case UInt8(ascii: "\\") where peek(1) == UInt8(ascii: "\n"):
                position += 2 // explicit line continuation
            default:
                return
            }
        }
    }

    private mutating func number(start: Int) -> Token {
        var isFloat = false
        func digits() { while position < bytes.count, isDigit(bytes[position]) || bytes[position] == UInt8(ascii: "_") { position += 1 } }
        digits()
        if peek() == UInt8(ascii: "."), isDigit(peek(1)) {
            isFloat = true
            position += 1
            digits()
        }
        if peek() == UInt8(ascii: "e") || peek() == UInt8(ascii: "E") {
            let sign = peek(1) == UInt8(ascii: "+") || peek(1) == UInt8(ascii: "-") ? 1 : 0
            if isDigit(peek(1 + sign)) {
                isFloat = true
                position += 1 + sign
                digits()
            }
        }
        if position < bytes.count, isIdentifierStart(bytes[position]) {
            while position < bytes.count, isIdentifierStart(bytes[position]) || isDigit(bytes[position]) { position += 1 }
            return Token(kind: .error("malformed number"), start: start, length: position - start)
        }
        return Token(kind: isFloat ? .float : .int, start: start, length: position - start)
    }

    private mutating func string(quote: UInt8, start: Int) -> Token {
        while position < bytes.count {
            let c = bytes[position]
            if c == quote {
                position += 1
                return Token(kind: .string, start: start, length: position - start)
            }
            if c == UInt8(ascii: "\n") { break }
            if c == UInt8(ascii: "\\") {
                let escapeStart = position
                position += 1
                guard position < bytes.count else { break }
                let e = bytes[position]
                position += 1
                switch e {
                case UInt8(ascii: "n"), UInt8(ascii: "t"), UInt8(ascii: "r"), UInt8(ascii: "0"),
                     UInt8(ascii: "\\"), UInt8(ascii: "\""), UInt8(ascii: "'"):
                    continue
                case UInt8(ascii: "u"):
                    if decodeUnicodeEscape(at: position) == nil {
                        return Token(kind: .error("invalid unicode escape (write \\u{1F600})"), start: escapeStart, length: position - escapeStart)
                    }
                    while position < bytes.count, bytes[position] != UInt8(ascii: "}") { position += 1 }
                    position += 1
                default:
                    let shown = e >= 0x20 && e < 0x7F ? String(UnicodeScalar(e)) : "?"
                    return Token(kind: .error("invalid escape sequence '\\\(shown)'"), start: escapeStart, length: 2)
                }
                continue
            }
            position += 1
        }
        return Token(kind: .error("unterminated string"), start: start, length: position - start)
    }

    /// Parses `{hex}` at `offset` (just after `\u`), returning the scalar.
    private func decodeUnicodeEscape(at offset: Int) -> Unicode.Scalar? {
        guard offset < bytes.count, bytes[offset] == UInt8(ascii: "{") else { return nil }
        var i = offset + 1
        var value: UInt32 = 0
        var count = 0
        while i < bytes.count, bytes[i] != UInt8(ascii: "}") {
            guard count < 8, let digit = hexValue(bytes[i]) else { return nil }
            value = value * 16 + digit
            count += 1
            i += 1
        }
        guard i < bytes.count, count > 0 else { return nil }
        return Unicode.Scalar(value)
    }
}

private func hexValue(_ c: UInt8) -> UInt32? {
    switch c {
    case 48...57: return UInt32(c - 48)
    case 97...102: return UInt32(c - 87)
    case 65...70: return UInt32(c - 55)
    default: return nil
    }
}

/// The value of a string token (quotes removed, escapes decoded). The lexer has already validated it.
public func decodeStringLiteral(_ bytes: ArraySlice<UInt8>) -> String {
    let inner = bytes.dropFirst().dropLast()
    var out = [UInt8]()
    out.reserveCapacity(inner.count)
    var i = inner.startIndex
    while i < inner.endIndex {
        let c = inner[i]
        i += 1
        guard c == UInt8(ascii: "\\"), i < inner.endIndex else { out.append(c); continue }
        let e = inner[i]
        i += 1
        switch e {
        case UInt8(ascii: "n"): out.append(10)
        case UInt8(ascii: "t"): out.append(9)
        case UInt8(ascii: "r"): out.append(13)
        case UInt8(ascii: "0"): out.append(0)
        case UInt8(ascii: "u"):
            var value: UInt32 = 0
            i += 1 // "{"
            while i < inner.endIndex, inner[i] != UInt8(ascii: "}") { value = value * 16 + (hexValue(inner[i]) ?? 0); i += 1 }
            i += 1 // "}"
            let scalar = Unicode.Scalar(value) ?? "\u{FFFD}"
            out.append(contentsOf: Array(String(Character(scalar)).utf8))
        default: out.append(e)
        }
    }
    return String(decoding: out, as: UTF8.self)
}
