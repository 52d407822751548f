import Foundation
import Lang

/// Arithmetic and comparison. Int arithmetic is checked: overflow is an error, never a trap.
enum Operators {
    static func binary(_ op: BinaryOp, _ a: Value, _ b: Value, maxSize: Int) throws -> Value {
        switch op {
        case .add: return try add(a, b, maxSize: maxSize)
        case .subtract: return try arithmetic(op, a, b, int: { $0.subtractingReportingOverflow($1) }, float: -)
        case .multiply: return try multiply(a, b, maxSize: maxSize)
        case .divide:
            guard let x = a.asDouble, let y = b.asDouble else { throw mismatch("divide", a, b) }
            guard y != 0 else { throw RuntimeError("division by zero") }
            return .float(x / y)
        case .modulo: return try modulo(a, b)
        case .power: return try power(a, b)
        case .equal: return .bool(a == b)
        case .notEqual: return .bool(a != b)
        case .less: return .bool(try compare(a, b) < 0)
        case .lessEqual: return .bool(try compare(a, b) <= 0)
        case .greater: return .bool(try compare(a, b) > 0)
        case .greaterEqual: return .bool(try compare(a, b) >= 0)
        }
    }

    static func negate(_ v: Value) throws -> Value {
        switch v {
        case .int(let i):
            let (r, overflow) = (0).subtractingReportingOverflow(i)
            if overflow { throw RuntimeError("integer overflow in unary '-'") }
            return .int(r)
        case .float(let d): return .float(-d)
        default: throw RuntimeError("cannot negate a \(v.typeName)")
        }
    }

    private static func mismatch(_ verb: String, _ a: Value, _ b: Value) -> RuntimeError {
        var hint = ""
        if case .string = a, b.asDouble != nil, verb == "add" { hint = " (use str() to convert the number)" }
        if case .string = b, a.asDouble != nil, verb == "add" { hint = " (use str() to convert the number)" }
        return RuntimeError("cannot \(verb) \(a.typeName) and \(b.typeName)\(hint)")
    }

    private static func arithmetic(_ op: BinaryOp, _ a: Value, _ b: Value,
                                   int: (Int, Int) -> (partialValue: Int, overflow: Bool),
                                   float: (Double, Double) -> Double) throws -> Value {
        switch (a, b) {
        case (.int(let x), .int(let y)):
            let (r, overflow) = int(x, y)
            if overflow { throw RuntimeError("integer overflow in '\(op.rawValue)'") }
            return .int(r)
        default:
            guard let x = a.asDouble, let y = b.asDouble else {
                let verb = op == .add ? "add" : op == .subtract ? "subtract" : "multiply"
                throw mismatch(verb, a, b)
            }
            return .float(float(x, y))
        }
    }

    static func add(_ a: Value, _ b: Value, maxSize: Int) throws -> Value {
        switch (a, b) {
        case (.string(let x), .string(let y)):
            guard x.utf8.count + y.utf8.count <= maxSize else { throw tooLarge("string") }
            return .string(x + y)
        case (.list(let x), .list(let y)):
            guard x.count + y.count <= maxSize else { throw tooLarge("list") }
            return .list(x + y)
        case (.int, .int), (.int, .float), (.float, .int), (.float, .float):
            return try arithmetic(.add, a, b, int: { $0.addingReportingOverflow($1) }, float: +)
        default:
            throw mismatch("add", a, b)
        }
    }

    private static func tooLarge(_ what: String) -> RuntimeError {
        RuntimeError("\(what) too large")
    }

    private static func multiply(_ a: Value, _ b: Value, maxSize: Int) throws -> Value {
        switch (a, b) {
        case (.string(let s), .int(let n)), (.int(let n), .string(let s)):
            if s.isEmpty || n <= 0 { return .string("") }
            guard s.utf8.count <= maxSize / n else { throw tooLarge("string") }
            return .string(String(repeating: s, count: n))
        case (.list(let xs), .int(let n)), (.int(let n), .list(let xs)):
            if xs.isEmpty || n <= 0 { return .list([]) }
            guard xs.count <= maxSize / n else { throw tooLarge("list") }
            var out: [Value] = []
            out.reserveCapacity(xs.count * n)
            for _ in 0..<n { out += xs }
            return .list(out)
        default:
            return try arithmetic(.multiply, a, b, int: { $0.multipliedReportingOverflow(by: $1) }, float: *)
        }
    }

    /// Floored modulo (the result has the divisor's sign), as in Python and Lua: `-7 % 3 == 2`.
    private static func modulo(_ a: Value, _ b: Value) throws -> Value {
        switch (a, b) {
        case (.int(let x), .int(let y)):
            guard y != 0 else { throw RuntimeError("modulo by zero") }
            let (r, overflow) = x.remainderReportingOverflow(dividingBy: y)
            if overflow { return .int(0) } // Int.min % -1
            return .int(r != 0 && (r < 0) != (y < 0) ? r + y : r)
        default:
            guard let x = a.asDouble, let y = b.asDouble else { throw mismatch("take the modulo of", a, b) }
            guard y != 0 else { throw RuntimeError("modulo by zero") }
            let r = fmod(x, y)
            return .float(r != 0 && (r < 0) != (y < 0) ? r + y : r)
        }
    }

    /// Int ** non-negative Int stays Int (checked); a negative exponent gives a Float.
    private static func power(_ a: Value, _ b: Value) throws -> Value {
        if case .int(var base) = a, case .int(var exponent) = b, exponent >= 0 {
            var result = 1
            while exponent > 0 {
                if exponent & 1 == 1 {
                    let (r, o) = result.multipliedReportingOverflow(by: base)
                    if o { throw RuntimeError("integer overflow in '**'") }
                    result = r
                }
                exponent >>= 1
                if exponent > 0 {
                    let (sq, o) = base.multipliedReportingOverflow(by: base)
                    if o { throw RuntimeError("integer overflow in '**'") }
                    base = sq
                }
            }
            return .int(result)
        }
        guard let x = a.asDouble, let y = b.asDouble else { throw mismatch("raise", a, b) }
        if x == 0, y < 0 { throw RuntimeError("division by zero") }
        return .float(pow(x, y))
    }

    /// -1, 0 or 1 for numbers (Int and Float mixed) and strings; other pairs cannot be ordered.
    static func compare(_ a: Value, _ b: Value) throws -> Int {
        switch (a, b) {
        case (.int(let x), .int(let y)): return x < y ? -1 : (x == y ? 0 : 1)
        case (.string(let x), .string(let y)): return x < y ? -1 : (x == y ? 0 : 1)
        default:
            guard let x = a.asDouble, let y = b.asDouble else {
                throw RuntimeError("cannot compare \(a.typeName) with \(b.typeName)")
            }
            return x < y ? -1 : (x == y ? 0 : 1)
        }
    }
}
