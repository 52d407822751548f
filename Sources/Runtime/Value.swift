import Lang

/// An object owned by the numerics (network, graph, tensor, pruner, dataset…) exposed to the language.
/// Identity semantics: assigning it to another variable shares the object.
public protocol NativeValue: AnyObject {
    /// The name used in messages and `type(x)`: "network", "graph", "pruner"…
    var typeName: String { get }
    /// Short form for the REPL display, `print` and table cells (`long: false`); `show(x)` asks for `long: true`.
    func display(long: Bool) -> String
    /// `x.name`; nil when there is no such field (the interpreter then suggests one of `fieldNames`).
    func field(_ name: String) -> Value?
    /// Field names for completion, `keys(x)` and "did you mean" hints.
    var fieldNames: [String] { get }
    /// For sequence-like objects (the per-layer graphs of `rolled(net)`): the items that
    /// `x[0]`, `x[-1]`, `len(x)` and `for item in x` see; nil for everything else.
    var elements: [Value]? { get }
}

extension NativeValue {
    public func field(_ name: String) -> Value? { nil }
    public var fieldNames: [String] { [] }
    public var elements: [Value]? { nil }
}

/// A record: fields in insertion order (display and iteration keep that order).
public struct Record: Equatable {
    public private(set) var names: [String] = []
    public private(set) var values: [Value] = []

    public init() {}

    public init(_ fields: [(String, Value)]) {
        for (name, value) in fields { self[name] = value }
    }

    public var count: Int { names.count }

    public subscript(name: String) -> Value? {
        get { names.firstIndex(of: name).map { values[$0] } }
        set {
            if let i = names.firstIndex(of: name) {
                if let newValue { values[i] = newValue } else { names.remove(at: i); values.remove(at: i) }
            } else if let newValue {
                names.append(name)
                values.append(newValue)
            }
        }
    }

    public var fields: Zip2Sequence<[String], [Value]> { zip(names, values) }
}

/// A function written in the language. It remembers the scope it was defined in (closures).
public final class UserFunction {
    public let decl: FunctionDecl
    let closure: Scope
    init(decl: FunctionDecl, closure: Scope) { self.decl = decl; self.closure = closure }
    public var name: String { decl.name ?? "<fn>" }
}

public enum Value {
    case none
    case bool(Bool)
    case int(Int)
    case float(Double)
    case string(String)
    case list([Value])
    case record(Record)
    case function(UserFunction)
    case builtin(Builtin)
    case native(any NativeValue)

    /// The type name used in messages and by `type(x)`.
    public var typeName: String {
        switch self {
        case .none: return "none"
        case .bool: return "bool"
        case .int: return "int"
        case .float: return "float"
        case .string: return "string"
        case .list: return "list"
        case .record: return "record"
        case .function, .builtin: return "function"
        case .native(let object): return object.typeName
        }
    }

    /// Truthiness (Python-like): none, false, 0, 0.0, "", [] and {} are false; everything else is true.
    public var isTruthy: Bool {
        switch self {
        case .none: return false
        case .bool(let b): return b
        case .int(let i): return i != 0
        case .float(let d): return d != 0
        case .string(let s): return !s.isEmpty
        case .list(let xs): return !xs.isEmpty
        case .record(let r): return r.count > 0
        case .function, .builtin, .native: return true
        }
    }

    /// The number as a Double, for Int and Float alike.
    public var asDouble: Double? {
        switch self {
        case .int(let i): return Double(i)
        case .float(let d): return d
        default: return nil
        }
    }
}

extension Value: Equatable {
    /// Structural equality; `1 == 1.0`; functions and native objects compare by identity.
    public static func == (a: Value, b: Value) -> Bool {
        switch (a, b) {
        case (.none, .none): return true
        case (.bool(let x), .bool(let y)): return x == y
        case (.int(let x), .int(let y)): return x == y
        case (.int, .float), (.float, .int), (.float, .float):
            return a.asDouble == b.asDouble
        case (.string(let x), .string(let y)): return x == y
        case (.list(let x), .list(let y)): return x == y
        case (.record(let x), .record(let y)): return x == y
        case (.function(let x), .function(let y)): return x === y
        case (.builtin(let x), .builtin(let y)): return x.name == y.name
        case (.native(let x), .native(let y)): return x === y
        default: return false
        }
    }
}

/// Variables of one function activation, or the globals (no parent).
final class Scope {
    var values: [String: Value] = [:]
    let parent: Scope?
    init(parent: Scope?) { self.parent = parent }

    func lookup(_ name: String) -> Value? {
        var scope: Scope? = self
        while let s = scope {
            if let v = s.values[name] { return v }
            scope = s.parent
        }
        return nil
    }

    var allNames: [String] {
        var names = Set(values.keys)
        if let parent { names.formUnion(parent.allNames) }
        return Array(names)
    }
}
