/// Recursive-descent parser with statement-level error recovery: after an error it skips to the end
/// of the statement (keeping braces balanced), so one typo yields one diagnostic.
public struct Parser {
    /// Deepest allowed nesting of expressions and blocks; deeper input is an error, not a stack overflow.
    public static let maxDepth = 200

    public struct Result: Sendable {
        public let program: Program
        public let diagnostics: [Diagnostic]
        /// True when the only problem is that the input ended early (an open bracket, block or
        /// trailing operator): the REPL then asks for a continuation line.
        public let isIncomplete: Bool
    }

    private struct ParseError: Error {
        let message: String
        let offset: Int
        let atEnd: Bool
    }

    private let source: Source
    private let tokens: [Token]
    private var current = 0
    /// For each open bracket or block: whether newlines inside it are insignificant.
    private var newlineInsensitive: [Bool] = [false]
    private var depth = 0
    private var loopDepth = 0
    private var functionDepth = 0
    private var diagnostics: [Diagnostic] = []
    private var endedEarly = false

    private init(source: Source) {
        self.source = source
        self.tokens = Lexer.tokenize(source)
    }

    public static func parse(_ source: Source) -> Result {
        var parser = Parser(source: source)
        let statements = parser.statementList(until: .eof)
        let incomplete = parser.endedEarly && parser.diagnostics.count == 1
        return Result(program: Program(source: source, statements: statements),
                      diagnostics: parser.diagnostics, isIncomplete: incomplete)
    }

    // MARK: - Token access

    private var token: Token {
        var i = current
        if newlineInsensitive.last == true {
            while tokens[i].kind == .newline { i += 1 }
        }
        return tokens[i]
    }

    private var kind: TokenKind { token.kind }

    @discardableResult
    private mutating func advance() -> Token {
        if newlineInsensitive.last == true {
            while tokens[current].kind == .newline { current += 1 }
        }
        let t = tokens[current]
        if t.kind != .eof { current += 1 }
        return t
    }

    private mutating func match(_ k: TokenKind) -> Bool {
        if kind == k { advance(); return true }
        return false
    }

    private func text(_ t: Token) -> String {
        String(decoding: source.bytes[t.start..<t.start + t.length], as: UTF8.self)
    }

    private mutating func skipNewlines() {
        while tokens[current].kind == .newline { current += 1 }
    }

    /// `line:col` of a token, for "opened at" hints.
    private func position(of t: Token) -> String {
        let (line, column) = source.lineAndColumn(of: t.start)
        return "\(line):\(column)"
    }

    private func describe(_ t: Token) -> String {
        switch t.kind {
        case .eof: return "end of input"
        case .newline: return "end of line"
        case .string: return "a string"
        case .int, .float: return "number \(text(t))"
        default: return "'\(text(t))'"
        }
    }

    private func error(_ message: String, at t: Token) -> ParseError {
        if case .error(let lexMessage) = t.kind { return ParseError(message: lexMessage, offset: t.start, atEnd: false) }
        guard t.kind == .eof else { return ParseError(message: message, offset: t.start, atEnd: false) }
        // Point just past the last real token, so the caret sits on a visible line.
        let last = tokens.last { $0.kind != .newline && $0.kind != .eof }
        return ParseError(message: message, offset: last.map { $0.start + $0.length } ?? t.start, atEnd: true)
    }

    private func expected(_ what: String) -> ParseError {
        error("expected \(what), got \(describe(token))", at: token)
    }

    @discardableResult
    private mutating func consume(_ k: TokenKind, _ what: String) throws -> Token {
        guard kind == k else { throw expected(what) }
        return advance()
    }

    private mutating func enter(_ t: Token) throws {
        depth += 1
        if depth > Parser.maxDepth {
            throw ParseError(message: "nesting too deep (more than \(Parser.maxDepth) levels)", offset: t.start, atEnd: false)
        }
    }

    private mutating func leave(_ levels: Int = 1) { depth -= levels }

    // MARK: - Statements

    /// Parses statements up to `end` (`}` or end of input), recovering from errors statement by statement.
    private mutating func statementList(until end: TokenKind) -> [Stmt] {
        var statements: [Stmt] = []
        let savedBrackets = newlineInsensitive.count
        let savedDepth = depth
        while true {
            while tokens[current].kind == .newline || tokens[current].kind == .semicolon { current += 1 }
            if kind == end || kind == .eof { break }
            if end == .eof, kind == .rightBrace {
                record(error("unexpected '}' with no open block", at: token))
                advance()
                continue
            }
            let statementStart = current
            do {
                let parsed = try statement()
                statements.append(parsed)
                // A statement ending in a block needs no separator: `if c { return 1 } return 2`.
                switch parsed {
                case .if, .for, .while, .function, .time: break
                default: try statementEnd()
                }
            } catch let e as ParseError {
                record(e)
                newlineInsensitive.removeLast(newlineInsensitive.count - savedBrackets)
                depth = savedDepth
                synchronize(from: statementStart)
            } catch {
                // `statement()` throws only ParseError.
            }
        }
        return statements
    }

    private mutating func record(_ e: ParseError) {
        if e.atEnd {
            // Several open constructs all fail at the end of input; one message is enough.
            if endedEarly { return }
            endedEarly = true
        }
        if diagnostics.last.map({ $0.point?.offset == e.offset }) == true { return }
        diagnostics.append(Diagnostic(kind: .syntax, message: e.message, point: SourcePoint(source: source, offset: e.offset)))
    }

    /// Skips to the start of the next statement at the current block level: braces opened by the
    /// failed statement (from `start`) are skipped through to their closing brace.
    private mutating func synchronize(from start: Int) {
        var braces = 0
        for t in tokens[start..<current] {
            if t.kind == .leftBrace { braces += 1 } else if t.kind == .rightBrace { braces -= 1 }
        }
        while true {
            let k = tokens[current].kind
            switch k {
            case .eof: return
            case .newline where braces <= 0, .semicolon where braces <= 0:
                current += 1
                return
            case .leftBrace: braces += 1
            case .rightBrace:
                if braces == 0 { return }
                braces -= 1
            default: break
            }
            current += 1
        }
    }

    private mutating func statementEnd() throws {
        switch tokens[current].kind {
        case .newline, .semicolon: current += 1
        case .rightBrace, .eof: break
        default: throw expected("end of statement (newline or ';')")
        }
    }

    private mutating func statement() throws -> Stmt {
        let t = token
        switch t.kind {
        case .kwIf: return try ifStatement()
        case .kwFor: return try forStatement()
        case .kwWhile:
            advance()
            let condition = try expression()
            let body = try loopBody()
            return .while(condition, body: body, at: t.start)
        case .kwBreak, .kwContinue:
            advance()
            guard loopDepth > 0 else { throw error("'\(text(t))' outside a loop", at: t) }
            return t.kind == .kwBreak ? .break(at: t.start) : .continue(at: t.start)
        case .kwReturn:
            advance()
            guard functionDepth > 0 else { throw error("'return' outside a function", at: t) }
            switch tokens[current].kind {
            case .newline, .semicolon, .rightBrace, .eof: return .return(nil, at: t.start)
            default: return .return(try expression(), at: t.start)
            }
        case .kwFn where tokens[current + 1].kind == .identifier:
            advance()
            let name = text(advance())
            return .function(try functionRest(name: name, at: t.start))
        case .question:
            advance()
            let next = tokens[current]
            if next.kind == .identifier || keywords[text(next)] != nil {
                current += 1
                return .help(text(next), at: t.start)
            }
            return .help(nil, at: t.start)
        case .percent:
            advance()
            let command = tokens[current]
            guard command.kind == .identifier, text(command) == "time" else {
                let name = command.kind == .identifier ? text(command) : ""
                let hint = closestName(to: name, among: ["time"]).map { " (did you mean '%\($0)'?)" } ?? " (only '%time' exists)"
                throw error("unknown command '%\(name)'\(hint)", at: command)
            }
            current += 1
            return .time([try statement()], at: t.start)
        case .identifier where text(t) == "time" && tokens[current + 1].kind == .leftBrace:
            advance()
            return .time(try block(), at: t.start)
        default:
            let target = try expression()
            guard kind == .equal else { return .expression(target) }
            let equals = advance()
            skipNewlines()
            let value = try expression()
            return .assign(try assignTarget(target, equals: equals), value, at: equals.start)
        }
    }

    private func assignTarget(_ expr: Expr, equals: Token) throws -> AssignTarget {
        switch expr {
        case .variable(let name, let at):
            return .variable(name, at: at)
        case .index(let base, let index, let at):
            return .index(try assignTarget(base, equals: equals), index, at: at)
        case .field(let base, let name, let at):
            return .field(try assignTarget(base, equals: equals), name, at: at)
        default:
            throw error("cannot assign to this expression (use '==' to compare)", at: equals)
        }
    }

    private mutating func ifStatement() throws -> Stmt {
        let start = advance()
        var branches: [IfBranch] = []
        var elseBody: [Stmt]?
        branches.append(IfBranch(condition: try expression(), body: try block(after: "condition")))
        while true {
            // Allow `}` and `else` on separate lines.
            var lookahead = current
            while tokens[lookahead].kind == .newline { lookahead += 1 }
            guard tokens[lookahead].kind == .kwElse else { break }
            current = lookahead + 1
            if match(.kwIf) {
                branches.append(IfBranch(condition: try expression(), body: try block(after: "condition")))
            } else {
                elseBody = try block(after: "'else'")
                break
            }
        }
        return .if(branches, elseBody: elseBody, at: start.start)
    }

    private mutating func forStatement() throws -> Stmt {
        let start = advance()
        let name = try consume(.identifier, "a loop variable name after 'for'")
        try consume(.kwIn, "'in' after the loop variable")
        let iterable = try expression()
        let body = try loopBody()
        return .for(variable: text(name), iterable: iterable, body: body, at: start.start)
    }

    private mutating func loopBody() throws -> [Stmt] {
        loopDepth += 1
        defer { loopDepth -= 1 }
        return try block(after: "loop header")
    }

    private mutating func block(after what: String = "") throws -> [Stmt] {
        guard kind == .leftBrace else {
            if kind == .equal { throw expected("'{' after \(what) (use '==' to compare)") }
            throw expected(what.isEmpty ? "'{'" : "'{' after \(what)")
        }
        let open = advance()
        try enter(open)
        newlineInsensitive.append(false)
        let body = statementList(until: .rightBrace)
        newlineInsensitive.removeLast()
        guard tokens[current].kind == .rightBrace else {
            throw error("expected '}' to close the block opened at \(position(of: open)), got \(describe(tokens[current]))", at: tokens[current])
        }
        current += 1
        leave()
        return body
    }

    private mutating func functionRest(name: String?, at: Int) throws -> FunctionDecl {
        let open = try consume(.leftParen, "'(' to start the parameter list")
        try enter(open)
        newlineInsensitive.append(true)
        var params: [ParamDecl] = []
        while kind != .rightParen {
            let p = try consume(.identifier, "a parameter name")
            let paramName = text(p)
            if params.contains(where: { $0.name == paramName }) { throw error("duplicate parameter '\(paramName)'", at: p) }
            var defaultValue: Expr?
            if match(.colon) {
                defaultValue = try expression()
            } else if params.last?.defaultValue != nil {
                throw error("parameter '\(paramName)' needs a default value because the one before it has one", at: p)
            }
            params.append(ParamDecl(name: paramName, defaultValue: defaultValue, at: p.start))
            if !match(.comma) { break }
        }
        try consume(.rightParen, "')' after the parameters")
        newlineInsensitive.removeLast()
        leave()
        let savedLoops = loopDepth
        loopDepth = 0
        functionDepth += 1
        defer { functionDepth -= 1; loopDepth = savedLoops }
        let body = try block(after: "the parameter list")
        let close = tokens[current - 1] // the block's '}'
        return FunctionDecl(name: name, params: params, body: body, at: at, end: close.start + close.length, source: source)
    }

    // MARK: - Expressions (lowest precedence first)

    private mutating func expression() throws -> Expr {
        try enter(token)
        defer { leave() }
        return try or()
    }

    /// Left-associative chains deepen the tree one level per operator; count them against the depth limit.
    private mutating func leftChain(operators: (TokenKind) -> Bool, next: (inout Parser) throws -> Expr,
                                    build: (Token, Expr, Expr) -> Expr) throws -> Expr {
        var left = try next(&self)
        var levels = 0
        defer { leave(levels) }
        while operators(kind) {
            let op = advance()
            try enter(op)
            levels += 1
            skipNewlines()
            let right = try next(&self)
            left = build(op, left, right)
        }
        return left
    }

    private mutating func or() throws -> Expr {
        try leftChain(operators: { $0 == .kwOr }, next: { try $0.and() },
                      build: { .logical(.or, $1, $2, at: $0.start) })
    }

    private mutating func and() throws -> Expr {
        try leftChain(operators: { $0 == .kwAnd }, next: { try $0.not() },
                      build: { .logical(.and, $1, $2, at: $0.start) })
    }

    private mutating func not() throws -> Expr {
        guard kind == .kwNot else { return try comparison() }
        let op = advance()
        try enter(op)
        defer { leave() }
        return .unary(.not, try not(), at: op.start)
    }

    private static let comparisonOps: [TokenKind: BinaryOp] = [
        .equalEqual: .equal, .bangEqual: .notEqual, .less: .less, .lessEqual: .lessEqual,
        .greater: .greater, .greaterEqual: .greaterEqual,
    ]

    private mutating func comparison() throws -> Expr {
        try leftChain(operators: { Parser.comparisonOps[$0] != nil }, next: { try $0.additive() },
                      build: { .binary(Parser.comparisonOps[$0.kind] ?? .equal, $1, $2, at: $0.start) })
    }

    private mutating func additive() throws -> Expr {
        try leftChain(operators: { $0 == .plus || $0 == .minus }, next: { try $0.multiplicative() },
                      build: { .binary($0.kind == .plus ? .add : .subtract, $1, $2, at: $0.start) })
    }

    private mutating func multiplicative() throws -> Expr {
        try leftChain(operators: { $0 == .star || $0 == .slash || $0 == .percent }, next: { try $0.unary() },
                      build: { op, l, r in
                          let binary: BinaryOp = op.kind == .star ? .multiply : op.kind == .slash ? .divide : .modulo
                          return .binary(binary, l, r, at: op.start)
                      })
    }

    private mutating func unary() throws -> Expr {
        guard kind == .minus else { return try power() }
        let op = advance()
        // The one Int literal that only exists negated.
        if kind == .int, text(token).filter({ $0 != "_" }) == "9223372036854775808", tokens[current + 1].kind != .starStar {
            advance()
            return .int(Int.min, at: op.start)
        }
        try enter(op)
        defer { leave() }
        return .unary(.negate, try unary(), at: op.start)
    }

    /// `**` binds tighter than unary minus on its left (`-2 ** 2` is -4) and is right-associative.
    private mutating func power() throws -> Expr {
        let base = try postfix()
        guard kind == .starStar else { return base }
        let op = advance()
        try enter(op)
        defer { leave() }
        skipNewlines()
        return .binary(.power, base, try unary(), at: op.start)
    }

    private mutating func postfix() throws -> Expr {
        var expr = try primary()
        var levels = 0
        defer { leave(levels) }
        while true {
            let t = tokens[current] // postfix operators must be on the same line
            switch t.kind {
            case .leftParen:
                try enter(t); levels += 1
                current += 1
                expr = .call(expr, try arguments(opened: t), at: t.start)
            case .leftBracket:
                try enter(t); levels += 1
                current += 1
                newlineInsensitive.append(true)
                // `xs[i]`, or a slice `xs[a:b]` with either bound optional.
                let lower = tokens[current].kind == .colon ? nil : try expression()
                if match(.colon) {
                    let upper = tokens[current].kind == .rightBracket ? nil : try expression()
                    try consume(.rightBracket, "']' after the slice")
                    newlineInsensitive.removeLast()
                    expr = .slice(expr, lower, upper, at: t.start)
                } else if let index = lower {
                    try consume(.rightBracket, "']' after the index")
                    newlineInsensitive.removeLast()
                    expr = .index(expr, index, at: t.start)
                }
            case .dot:
                try enter(t); levels += 1
                current += 1
                let name = tokens[current]
                guard name.kind == .identifier || keywords[text(name)] != nil else { throw expected("a field name after '.'") }
                current += 1
                expr = .field(expr, text(name), at: t.start)
            default:
                return expr
            }
        }
    }

    private mutating func arguments(opened open: Token) throws -> [Argument] {
        newlineInsensitive.append(true)
        var args: [Argument] = []
        var sawKeyword = false
        while kind != .rightParen {
            let start = token
            if start.kind == .identifier, nextSignificant(after: start).kind == .colon {
                advance(); advance()
                let label = text(start)
                if args.contains(where: { $0.label == label }) { throw error("argument '\(label)' given twice", at: start) }
                args.append(Argument(label: label, value: try expression(), at: start.start))
                sawKeyword = true
            } else {
                let value = try expression()
                if sawKeyword { throw error("positional argument after keyword arguments", at: start) }
                args.append(Argument(label: nil, value: value, at: start.start))
            }
            if !match(.comma) { break }
        }
        try consume(.rightParen, "')' to close the argument list opened at \(position(of: open))")
        newlineInsensitive.removeLast()
        return args
    }

    /// The token after `t`, skipping newlines (we are inside brackets when this is used).
    private func nextSignificant(after t: Token) -> Token {
        var i = current
        while tokens[i].start <= t.start, tokens[i].kind != .eof { i += 1 }
        while tokens[i].kind == .newline { i += 1 }
        return tokens[i]
    }

    private mutating func primary() throws -> Expr {
        let t = token
        switch t.kind {
        case .int:
            advance()
            let digits = text(t).filter { $0 != "_" }
            guard let value = Int(digits) else { throw error("integer literal too large (the largest is \(Int.max))", at: t) }
            return .int(value, at: t.start)
        case .float:
            advance()
            guard let value = Double(text(t).filter { $0 != "_" }), value.isFinite else {
                throw error("float literal out of range", at: t)
            }
            return .float(value, at: t.start)
        case .string:
            advance()
            return .string(decodeStringLiteral(source.bytes[t.start..<t.start + t.length]), at: t.start)
        case .kwTrue: advance(); return .bool(true, at: t.start)
        case .kwFalse: advance(); return .bool(false, at: t.start)
        case .kwNone: advance(); return .none(at: t.start)
        case .identifier: advance(); return .variable(text(t), at: t.start)
        case .kwFn:
            advance()
            return .function(try functionRest(name: nil, at: t.start))
        case .leftParen:
            advance()
            newlineInsensitive.append(true)
            let inner = try expression()
            try consume(.rightParen, "')' to close the '(' at \(position(of: t))")
            newlineInsensitive.removeLast()
            return inner
        case .leftBracket:
            advance()
            newlineInsensitive.append(true)
            var elements: [Expr] = []
            while kind != .rightBracket {
                elements.append(try expression())
                if !match(.comma) { break }
            }
            try consume(.rightBracket, "']' to close the list opened at \(position(of: t))")
            newlineInsensitive.removeLast()
            return .list(elements, at: t.start)
        case .leftBrace:
            return try record()
        default:
            if case .error = t.kind { throw error("", at: t) }
            throw expected("an expression")
        }
    }

    private mutating func record() throws -> Expr {
        let open = advance()
        newlineInsensitive.append(true)
        var fields: [(name: String, value: Expr)] = []
        while kind != .rightBrace {
            let key = token
            let name: String
            switch key.kind {
            case .identifier: name = text(key)
            case .string: name = decodeStringLiteral(source.bytes[key.start..<key.start + key.length])
            default:
                if keywords[text(key)] != nil { name = text(key) } else { throw expected("a field name in the record") }
            }
            advance()
            try consume(.colon, "':' after the field name '\(name)'")
            if fields.contains(where: { $0.name == name }) { throw error("duplicate field '\(name)' in the record", at: key) }
            fields.append((name, try expression()))
            if !match(.comma) { break }
        }
        try consume(.rightBrace, "'}' to close the record opened at \(position(of: open))")
        newlineInsensitive.removeLast()
        return .record(fields, at: open.start)
    }
}
