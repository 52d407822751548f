/// Syntax tree. Every node keeps the byte offset (`at`) of the token that best locates an error in it:
/// the operator of a binary expression, the opening parenthesis of a call, the dot of a field access.

public enum UnaryOp: Sendable { case negate, not }

public enum BinaryOp: String, Sendable {
    case add = "+", subtract = "-", multiply = "*", divide = "/", modulo = "%", power = "**"
    case equal = "==", notEqual = "!=", less = "<", lessEqual = "<=", greater = ">", greaterEqual = ">="
}

public enum LogicalOp: Sendable { case and, or }

public struct Argument: Sendable {
    /// The keyword for `name: value` arguments, nil for positional ones.
    public let label: String?
    public let value: Expr
    public let at: Int
}

public indirect enum Expr: Sendable {
    case int(Int, at: Int)
    case float(Double, at: Int)
    case string(String, at: Int)
    case bool(Bool, at: Int)
    case none(at: Int)
    case variable(String, at: Int)
    case list([Expr], at: Int)
    case record([(name: String, value: Expr)], at: Int)
    case unary(UnaryOp, Expr, at: Int)
    case binary(BinaryOp, Expr, Expr, at: Int)
    case logical(LogicalOp, Expr, Expr, at: Int)
    case call(Expr, [Argument], at: Int)
    case index(Expr, Expr, at: Int)
    /// `xs[a:b]`, `xs[:b]`, `xs[a:]`: the items from a up to (not including) b.
    case slice(Expr, Expr?, Expr?, at: Int)
    case field(Expr, String, at: Int)
    /// An anonymous `fn (a) { … }`.
    case function(FunctionDecl)

    public var at: Int {
        switch self {
        case .int(_, let at), .float(_, let at), .string(_, let at), .bool(_, let at), .none(let at),
             .variable(_, let at), .list(_, let at), .record(_, let at), .unary(_, _, let at),
             .binary(_, _, _, let at), .logical(_, _, _, let at), .call(_, _, let at),
             .index(_, _, let at), .slice(_, _, _, let at), .field(_, _, let at):
            return at
        case .function(let decl):
            return decl.at
        }
    }

    /// Offset of the leftmost token: where a call's callee starts (`net` in `net.prune(…)`).
    public var start: Int {
        switch self {
        case .binary(_, let left, _, _), .logical(_, let left, _, _), .call(let left, _, _),
             .index(let left, _, _), .slice(let left, _, _, _), .field(let left, _, _):
            return left.start
        default:
            return at
        }
    }
}

/// The left side of `=`: a variable, or an element or field path rooted at one (`xs[0] = 1`, `r.a.b = 2`).
public indirect enum AssignTarget: Sendable {
    case variable(String, at: Int)
    case index(AssignTarget, Expr, at: Int)
    case field(AssignTarget, String, at: Int)
}

public struct ParamDecl: Sendable {
    public let name: String
    /// Evaluated at call time when the argument is missing.
    public let defaultValue: Expr?
    public let at: Int
}

public final class FunctionDecl: @unchecked Sendable {
    /// nil for an anonymous function.
    public let name: String?
    public let params: [ParamDecl]
    public let body: [Stmt]
    public let at: Int
    /// Byte offset just past the closing brace: `source.bytes[at..<end]` is the function's text.
    public let end: Int
    /// Functions outlive the REPL cell that defined them; errors inside them point back here.
    public let source: Source

    init(name: String?, params: [ParamDecl], body: [Stmt], at: Int, end: Int, source: Source) {
        self.name = name; self.params = params; self.body = body; self.at = at; self.end = end; self.source = source
    }

    /// The function's source text, from `fn` (or its name) to the closing brace.
    public var text: String {
        let range = max(0, min(at, source.bytes.count)) ..< max(0, min(end, source.bytes.count))
        return String(decoding: source.bytes[range.lowerBound ..< max(range.lowerBound, range.upperBound)], as: UTF8.self)
    }
}

public struct IfBranch: Sendable {
    public let condition: Expr
    public let body: [Stmt]
}

public indirect enum Stmt: Sendable {
    case expression(Expr)
    case assign(AssignTarget, Expr, at: Int)
    case `if`([IfBranch], elseBody: [Stmt]?, at: Int)
    case `for`(variable: String, iterable: Expr, body: [Stmt], at: Int)
    case `while`(Expr, body: [Stmt], at: Int)
    case `break`(at: Int)
    case `continue`(at: Int)
    case `return`(Expr?, at: Int)
    case function(FunctionDecl)
    /// `time { … }` or `%time stmt`: run the statements, then report the wall time.
    case time([Stmt], at: Int)
    /// `?name` (nil name: `?` alone lists every builtin).
    case help(String?, at: Int)

    public var at: Int {
        switch self {
        case .expression(let e): return e.at
        case .assign(_, _, let at), .if(_, _, let at), .for(_, _, _, let at), .while(_, _, let at),
             .break(let at), .continue(let at), .return(_, let at), .time(_, let at), .help(_, let at):
            return at
        case .function(let decl): return decl.at
        }
    }
}

/// A parsed program: the top-level statements of one file or REPL cell.
public struct Program: Sendable {
    public let source: Source
    public let statements: [Stmt]
}
