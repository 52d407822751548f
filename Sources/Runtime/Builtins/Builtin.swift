import Lang

/// An error raised by a builtin body. The interpreter adds the call's location and the call stack.
public struct RuntimeError: Error {
    public let message: String
    public init(_ message: String) { self.message = message }
}

/// What a builtin parameter accepts. Checking happens before the body runs and produces
/// Lua-style messages: "bad argument #2 to 'prune' (pruner expected, got string)".
public indirect enum ValueType {
    case any, bool, int, string, list, record, function
    /// Int or Float, passed through unchanged.
    case number
    /// Int or Float, passed as Float.
    case float
    /// A native object whose `typeName` is this ("network", "graph", "pruner"…).
    case native(String)
    case optional(ValueType)
    case oneOf([ValueType])

    public var name: String {
        switch self {
        case .any: return "value"
        case .bool: return "bool"
        case .int: return "int"
        case .float: return "float"
        case .number: return "number"
        case .string: return "string"
        case .list: return "list"
        case .record: return "record"
        case .function: return "function"
        case .native(let typeName): return typeName
        case .optional(let inner): return "\(inner.name) or none"
        case .oneOf(let types): return types.map(\.name).joined(separator: " or ")
        }
    }

    /// The value as the body will see it, or nil when the type does not match.
    public func accept(_ value: Value) -> Value? {
        switch (self, value) {
        case (.any, _): return value
        case (.bool, .bool), (.int, .int), (.string, .string), (.list, .list), (.record, .record),
             (.function, .function), (.function, .builtin), (.number, .int), (.number, .float), (.float, .float):
            return value
        case (.float, .int(let i)): return .float(Double(i))
        case (.native(let wanted), .native(let object)): return object.typeName == wanted ? value : nil
        case (.optional, .none): return value
        case (.optional(let inner), _): return inner.accept(value)
        case (.oneOf(let types), _):
            for t in types { if let v = t.accept(value) { return v } }
            return nil
        default: return nil
        }
    }
}

public struct Param {
    public let name: String
    public let type: ValueType
    /// nil: the argument is required.
    public let defaultValue: Value?
    /// Soaks up every remaining positional argument; the body receives them as a list.
    public let isVariadic: Bool
    /// Soaks up every keyword argument no other parameter names (`grid(model: [...], seed: [...])`);
    /// the body receives them as a record in call order.
    public let isKeywords: Bool

    public init(_ name: String, _ type: ValueType, default defaultValue: Value? = nil) {
        self.name = name; self.type = type; self.defaultValue = defaultValue; self.isVariadic = false; self.isKeywords = false
    }

    public static func variadic(_ name: String, _ type: ValueType) -> Param {
        Param(name: name, type: type, defaultValue: .list([]), isVariadic: true, isKeywords: false)
    }

    public static func keywords(_ name: String, _ type: ValueType) -> Param {
        Param(name: name, type: type, defaultValue: .record(Record()), isVariadic: false, isKeywords: true)
    }

    private init(name: String, type: ValueType, defaultValue: Value?, isVariadic: Bool, isKeywords: Bool) {
        self.name = name; self.type = type; self.defaultValue = defaultValue; self.isVariadic = isVariadic; self.isKeywords = isKeywords
    }
}

/// A function implemented in Swift. Add one by appending to an area array (see `CoreBuiltins.swift`)
/// and listing that array in `BuiltinRegistry.areas`.
public struct Builtin {
    public let name: String
    public let params: [Param]
    /// Shown by help after "->": "graph", "record", "none"…
    public let returns: String
    public let summary: String
    public let example: String
    public let body: (Arguments) throws -> Value

    public init(_ name: String, _ params: [Param] = [], returns: String, summary: String, example: String,
                body: @escaping (Arguments) throws -> Value) {
        self.name = name; self.params = params; self.returns = returns
        self.summary = summary; self.example = example; self.body = body
    }

    /// `prune(net, pruner, sparsity, seed: 0) -> record`
    public var signature: String {
        let list = params.map { p -> String in
            if p.isVariadic { return "\(p.name)..." }
            if p.isKeywords { return "\(p.name): ..." }
            if let d = p.defaultValue { return "\(p.name): \(Display.inline(d))" }
            return p.name
        }
        return "\(name)(\(list.joined(separator: ", "))) -> \(returns)"
    }
}

/// A global name bound to a fixed value (`cifar10`, `snip`…); assigning to it is an error.
public struct Constant {
    public let name: String
    public let value: Value
    public let summary: String
    public init(_ name: String, _ value: Value, summary: String) { self.name = name; self.value = value; self.summary = summary }
}

/// Every builtin and constant, assembled from per-area arrays. Add an area by appending its array here.
public enum BuiltinRegistry {
    public static var areas: [[Builtin]] {
        [coreBuiltins, sharedBuiltins, networkBuiltins, pruneBuiltins, dataBuiltins, graphBuiltins, nodeBuiltins, editBuiltins, metricsBuiltins, sweepBuiltins,
         tableBuiltins, analysisBuiltins, plotBuiltins, trainingBuiltins]
    }
    public static var constantAreas: [[Constant]] {
        [pruneConstants, [Constant("args", .list([]), summary: ScriptRunner.scriptArgumentsSummary)]]
    }
}

/// The checked arguments of one builtin call, one per parameter (variadic ones as a list).
public struct Arguments {
    public let builtin: Builtin
    public let values: [Value]
    /// The interpreter running the call: its output, and `call` for user callbacks.
    public let interpreter: Interpreter
    /// Parameters the caller named (`rounds: 3`): messages name them rather than number them.
    public let keywords: Set<String>

    public init(builtin: Builtin, values: [Value], interpreter: Interpreter, keywords: Set<String> = []) {
        self.builtin = builtin; self.values = values; self.interpreter = interpreter; self.keywords = keywords
    }

    public subscript(name: String) -> Value {
        guard let i = builtin.params.firstIndex(where: { $0.name == name }) else { return .none }
        return values[i]
    }

    /// An error blamed on one argument: "bad argument #2 to 'round' (digits must be >= 0)",
    /// or "bad argument 'rounds' to 'prune' (…)" when the caller named it.
    public func bad(_ name: String, _ message: String) -> RuntimeError {
        if keywords.contains(name) { return RuntimeError("bad argument '\(name)' to '\(builtin.name)' (\(message))") }
        let position = (builtin.params.firstIndex(where: { $0.name == name }) ?? 0) + 1
        return RuntimeError("bad argument #\(position) to '\(builtin.name)' (\(message))")
    }

    private func wrongType(_ name: String, _ wanted: String) -> RuntimeError {
        RuntimeError("internal error: builtin '\(builtin.name)' read argument '\(name)' as \(wanted) but it is \(self[name].typeName)")
    }

    public func int(_ name: String) throws -> Int {
        if case .int(let i) = self[name] { return i }
        throw wrongType(name, "int")
    }

    public func double(_ name: String) throws -> Double {
        if let d = self[name].asDouble { return d }
        throw wrongType(name, "number")
    }

    public func string(_ name: String) throws -> String {
        if case .string(let s) = self[name] { return s }
        throw wrongType(name, "string")
    }

    public func bool(_ name: String) throws -> Bool {
        if case .bool(let b) = self[name] { return b }
        throw wrongType(name, "bool")
    }

    public func list(_ name: String) throws -> [Value] {
        if case .list(let xs) = self[name] { return xs }
        throw wrongType(name, "list")
    }

    public func record(_ name: String) throws -> Record {
        if case .record(let r) = self[name] { return r }
        throw wrongType(name, "record")
    }

    public func native<T: NativeValue>(_ name: String, as type: T.Type) throws -> T {
        if case .native(let object) = self[name], let typed = object as? T { return typed }
        // An implicit MGE passes the "graph" type check but holds no edge list to write.
        if T.self == GraphObject.self, case .native(let implicit as ImplicitGraphObject) = self[name] {
            throw bad(name, implicit.edgeListNeeded(by: builtin.name))
        }
        throw wrongType(name, String(describing: T.self))
    }

    /// A table argument: a `TableObject`, or any table-valued native (prune's table) as a table of its rows.
    public func table(_ name: String) throws -> TableObject {
        if case .native(let object) = self[name], let table = TableObject.of(object) { return table }
        throw wrongType(name, "table")
    }

    /// nil when the argument is `none`.
    public func optional(_ name: String) -> Value? {
        if case .none = self[name] { return nil }
        return self[name]
    }
}

/// One argument at a call site, already evaluated.
struct CallArgument {
    let label: String?
    let value: Value
    /// Where the argument is written (nil for calls made from Swift), so an error about it points there.
    var at: Int? = nil
}

/// Matches call arguments to parameters: positional first, then keywords; reports unknown keywords
/// (with a suggestion), duplicates, missing and surplus arguments. Type checking is left to the caller.
/// Returns one slot per parameter; nil means "not given" (the caller applies defaults).
func bindArguments(_ args: [CallArgument], paramNames: [String], variadicIndex: Int?, keywordsIndex: Int? = nil,
                   callee: String) throws -> [Value?] {
    var slots = [Value?](repeating: nil, count: paramNames.count)
    var rest: [Value] = []
    var position = 0
    for arg in args where arg.label == nil {
        if let v = variadicIndex, position >= v {
            rest.append(arg.value)
            continue
        }
        guard position < paramNames.count, position != keywordsIndex else {
            let positional = args.filter { $0.label == nil }.count
            throw RuntimeError("too many arguments to '\(callee)' (expected at most \(paramNames.count), got \(positional))")
        }
        slots[position] = arg.value
        position += 1
    }
    if let v = variadicIndex, !rest.isEmpty || position > v { slots[v] = .list(rest) }
    var extra = Record()
    for arg in args {
        guard let label = arg.label else { continue }
        if let k = keywordsIndex, paramNames.firstIndex(of: label) == nil || paramNames.firstIndex(of: label) == k {
            guard extra[label] == nil else { throw RuntimeError("argument '\(label)' to '\(callee)' given twice") }
            extra[label] = arg.value
            continue
        }
        guard let i = paramNames.firstIndex(of: label), i != variadicIndex else {
            let hint = closestName(to: label, among: paramNames).map { " (did you mean '\($0)'?)" } ?? ""
            throw RuntimeError("unknown keyword argument '\(label)' to '\(callee)'\(hint)")
        }
        guard slots[i] == nil else { throw RuntimeError("argument '\(label)' to '\(callee)' given twice") }
        slots[i] = arg.value
    }
    if let k = keywordsIndex, extra.count > 0 { slots[k] = .record(extra) }
    return slots
}

extension Builtin {
    /// Binds and type-checks `args`, filling in defaults.
    func check(_ args: [CallArgument]) throws -> [Value] {
        let variadic = params.firstIndex(where: \.isVariadic)
        let keywords = params.firstIndex(where: \.isKeywords)
        let slots = try bindArguments(args, paramNames: params.map(\.name), variadicIndex: variadic,
                                      keywordsIndex: keywords, callee: name)
        var values: [Value] = []
        values.reserveCapacity(params.count)
        for (i, param) in params.enumerated() {
            guard let given = slots[i] else {
                guard let d = param.defaultValue else {
                    throw RuntimeError("missing argument #\(i + 1) '\(param.name)' to '\(name)'")
                }
                values.append(d)
                continue
            }
            let byKeyword = args.contains { $0.label == param.name }
            let which = byKeyword ? "'\(param.name)'" : "#\(i + 1)"
            if param.isVariadic, case .list(let items) = given {
                var checked: [Value] = []
                for (k, item) in items.enumerated() {
                    guard let v = param.type.accept(item) else {
                        throw RuntimeError("bad argument #\(i + k + 1) to '\(name)' (\(param.type.name) expected, got \(item.typeName))")
                    }
                    checked.append(v)
                }
                values.append(.list(checked))
                continue
            }
            if param.isKeywords, case .record(let fields) = given {
                var checked = Record()
                for (label, item) in fields.fields {
                    guard let v = param.type.accept(item) else {
                        throw RuntimeError("bad argument '\(label)' to '\(name)' (\(param.type.name) expected, got \(item.typeName))")
                    }
                    checked[label] = v
                }
                values.append(.record(checked))
                continue
            }
            guard let v = param.type.accept(given) else {
                throw RuntimeError("bad argument \(which) to '\(name)' (\(param.type.name) expected, got \(given.typeName))")
            }
            values.append(v)
        }
        return values
    }
}
