import Foundation
import Lang

/// The general-purpose builtins. Other areas (networks, graphs…) live in their own arrays,
/// listed next to this one in `BuiltinRegistry.areas`.
let coreBuiltins: [Builtin] = [
    Builtin("print", [.variadic("values", .any), Param("sep", .string, default: .string(" "))], returns: "none",
            summary: "Writes the values separated by sep (one space) and a newline; strings are written raw.",
            example: "print(\"sparsity\", 0.95)") { args in
        let text = try args.list("values").map(Display.plain).joined(separator: args.string("sep"))
        args.interpreter.write(text + "\n")
        return .none
    },
    Builtin("show", [Param("x", .any)], returns: "none",
            summary: "Writes the long form of a value: full tables, every detail of native objects.",
            example: "show(topometrics(g))") { args in
        args.interpreter.write((Display.cell(args["x"], long: true) ?? "none") + "\n")
        return .none
    },
    Builtin("len", [Param("x", .oneOf([.string, .list, .record, .native("layers"), .native("table"), .native("nodes")]))], returns: "int",
            summary: "Number of characters of a string, items of a list or layer list, fields of a record, nodes of a node set, or rows of a table (prune's table: its rows, total included).",
            example: "len([1, 2, 3])  # 3") { args in
        switch args["x"] {
        case .string(let s): return .int(s.count)
        case .list(let xs): return .int(xs.count)
        case .record(let r): return .int(r.count)
        case .native(let table as TableObject): return .int(table.table.rowCount)
        case .native(let set as NodeSetObject): return .int(set.nodes.count)
        case .native(let object): return .int(object.elements?.count ?? 0)
        default: return .int(0)
        }
    },
    Builtin("type", [Param("x", .any)], returns: "string",
            summary: "The type name of a value: int, float, string, list, record, function, network…",
            example: "type(0.5)  # \"float\"") { args in
        .string(args["x"].typeName)
    },
    Builtin("str", [Param("x", .any)], returns: "string",
            summary: "The value as print would write it.",
            example: "\"n=\" + str(3)") { args in
        .string(Display.plain(args["x"]))
    },
    Builtin("int", [Param("x", .oneOf([.number, .string, .bool]))], returns: "int",
            summary: "Converts to an Int: Floats are truncated toward zero, strings parsed.",
            example: "int(2.9)  # 2") { args in
        switch args["x"] {
        case .int(let i): return .int(i)
        case .bool(let b): return .int(b ? 1 : 0)
        case .float(let d):
            guard let i = Int(exactly: d.rounded(.towardZero)) else { throw args.bad("x", "\(Display.float(d)) has no int value") }
            return .int(i)
        case .string(let s):
            guard let i = Int(s.trimmingCharacters(in: .whitespaces)) else { throw args.bad("x", "cannot convert \(Display.quoted(s)) to int") }
            return .int(i)
        default: return .none
        }
    },
    Builtin("float", [Param("x", .oneOf([.number, .string, .bool]))], returns: "float",
            summary: "Converts to a Float; strings are parsed (\"1e-3\", \"inf\").",
            example: "float(\"0.95\")") { args in
        switch args["x"] {
        case .int(let i): return .float(Double(i))
        case .float(let d): return .float(d)
        case .bool(let b): return .float(b ? 1 : 0)
        case .string(let s):
            guard let d = Double(s.trimmingCharacters(in: .whitespaces)) else { throw args.bad("x", "cannot convert \(Display.quoted(s)) to float") }
            return .float(d)
        default: return .none
        }
    },
    Builtin("round", [Param("x", .number), Param("digits", .optional(.int), default: Value.none)], returns: "number",
            summary: "Rounds to the nearest Int, or to `digits` decimals as a Float; halves go to the even neighbour.",
            example: "round(2.7)  # 3;  round(3.14159, digits: 2)  # 3.14") { args in
        let x = args["x"]
        guard case .int(let digits)? = args.optional("digits") else {
            guard case .float(let d) = x else { return x }
            guard let i = Int(exactly: d.rounded(.toNearestOrEven)) else { throw args.bad("x", "\(Display.float(d)) has no int value") }
            return .int(i)
        }
        guard case .float(let d) = x else { return x }
        guard abs(digits) <= 308 else { return .float(digits > 0 ? d : 0) }
        let scale = pow(10.0, Double(digits))
        let scaled = (d * scale).rounded(.toNearestOrEven) / scale
        return .float(scaled.isFinite ? scaled : d)
    },
    Builtin("abs", [Param("x", .number)], returns: "number",
            summary: "Absolute value.",
            example: "abs(-3)  # 3") { args in
        switch args["x"] {
        case .int(let i):
            guard i != Int.min else { throw RuntimeError("integer overflow in abs") }
            return .int(abs(i))
        case .float(let d): return .float(abs(d))
        default: return .none
        }
    },
    Builtin("min", [.variadic("values", .any)], returns: "value",
            summary: "The smallest of the arguments, or of the items of a single list argument.",
            example: "min(3, 1, 2);  min([0.9, 0.5])") { args in
        try extreme(args, wantSmaller: true)
    },
    Builtin("max", [.variadic("values", .any)], returns: "value",
            summary: "The largest of the arguments, or of the items of a single list argument.",
            example: "max(3, 1, 2);  max([0.9, 0.5])") { args in
        try extreme(args, wantSmaller: false)
    },
    Builtin("sum", [Param("xs", .list), Param("start", .number, default: .int(0))], returns: "number",
            summary: "start plus every item of the list (Ints stay Ints).",
            example: "sum([1, 2, 3])  # 6") { args in
        var total = args["start"]
        for item in try args.list("xs") {
            total = try Operators.add(total, item, maxSize: args.interpreter.limits.maxCollectionSize)
        }
        return total
    },
    Builtin("sort", [Param("xs", .list), Param("by", .optional(.oneOf([.string, .function])), default: Value.none),
                     Param("reverse", .bool, default: .bool(false))], returns: "list",
            summary: "A sorted copy of a list; by: a record field name or a key function.",
            example: "sort(rows, by: \"sparsity\", reverse: true)") { args in
        let items = try args.list("xs")
        var keys = items
        switch args["by"] {
        case .string(let field):
            keys = try items.map { item in
                guard case .record(let r) = item else { throw args.bad("by", "sorting by field '\(field)' needs records, got \(item.typeName)") }
                guard let v = r[field] else { throw args.bad("by", "a record has no field '\(field)'") }
                return v
            }
        case .function, .builtin:
            keys = try items.map { try args.interpreter.call(args["by"], [$0]) }
        default: break
        }
        let reverse = try args.bool("reverse")
        let order = try Array(items.indices).sorted { i, j in
            let c = try Operators.compare(keys[i], keys[j])
            return reverse ? c > 0 : c < 0
        }
        return .list(order.map { items[$0] })
    },
    Builtin("range", [Param("start", .int), Param("stop", .optional(.int), default: Value.none), Param("step", .int, default: .int(1))],
            returns: "list",
            summary: "Ints from start (0 when only one argument is given) up to, not including, stop.",
            example: "range(3)  # [0, 1, 2];  range(10, 0, -3)  # [10, 7, 4, 1]") { args in
        let (start, stop, step) = try CoreBuiltins.rangeBounds(args)
        let count = stride(from: start, to: stop, by: step).underestimatedCount
        guard count <= args.interpreter.limits.maxCollectionSize else {
            throw RuntimeError("range too large (\(count) items; loop over it with 'for' instead)")
        }
        return .list(stride(from: start, to: stop, by: step).map(Value.int))
    },
    Builtin("keys", [Param("x", .any)], returns: "list",
            summary: "The field names of a record or native object, in order.",
            example: "keys({a: 1, b: 2})  # [\"a\", \"b\"]") { args in
        switch args["x"] {
        case .record(let r): return .list(r.names.map(Value.string))
        case .native(let object): return .list(object.fieldNames.map(Value.string))
        case let other: throw args.bad("x", "record expected, got \(other.typeName)")
        }
    },
    Builtin("values", [Param("x", .record)], returns: "list",
            summary: "The field values of a record, in order.",
            example: "values({a: 1, b: 2})  # [1, 2]") { args in
        .list(try args.record("x").values)
    },
    Builtin("append", [Param("xs", .list), Param("x", .any)], returns: "list",
            summary: "A copy of the list with x added at the end.",
            example: "xs = append(xs, 4)") { args in
        var items = try args.list("xs")
        items.append(args["x"])
        return .list(items)
    },
    Builtin("join", [Param("xs", .list), Param("sep", .string, default: .string(""))], returns: "string",
            summary: "The items written as print would, separated by sep.",
            example: "join([1, 2, 3], \", \")  # \"1, 2, 3\"") { args in
        .string(try args.list("xs").map(Display.plain).joined(separator: args.string("sep")))
    },
    Builtin("split", [Param("s", .string), Param("sep", .optional(.string), default: Value.none)], returns: "list",
            summary: "The parts of a string between separators (runs of whitespace by default).",
            example: "split(\"a,b\", \",\")  # [\"a\", \"b\"]") { args in
        let s = try args.string("s")
        guard case .string(let sep)? = args.optional("sep") else {
            return .list(s.split(whereSeparator: { $0.isWhitespace }).map { .string(String($0)) })
        }
        guard !sep.isEmpty else { throw args.bad("sep", "empty separator") }
        return .list(s.components(separatedBy: sep).map(Value.string))
    },
    Builtin("vars", [], returns: "list",
            summary: "The global variables as a table of name, type and value.",
            example: "vars()") { args in
        let interpreter = args.interpreter
        return .list(interpreter.globalNames.compactMap { name in
            guard let v = interpreter.global(name) else { return nil }
            return .record(Record([("name", .string(name)), ("type", .string(v.typeName)), ("value", .string(Display.inline(v)))]))
        })
    },
    Builtin("help", [Param("x", .any, default: Value.none)], returns: "none",
            summary: "Describes a builtin, function or value (help(\"name\") or ?name); help() lists everything.",
            example: "help(round);  ?round") { args in
        let interpreter = args.interpreter
        switch args["x"] {
        case .none:
            interpreter.write(Help.overview(interpreter) + "\n")
        case .string(let name):
            guard let text = Help.text(forName: name, in: interpreter, scope: interpreter.globals) else {
                let hint = closestName(to: name, among: interpreter.visibleNames + reservedWords).map { " (did you mean '\($0)'?)" } ?? ""
                throw RuntimeError("no help for '\(name)'\(hint)")
            }
            interpreter.write(text + "\n")
        case let value:
            interpreter.write(Help.text(for: value, name: nil) + "\n")
        }
        return .none
    },
    Builtin("time", [Param("f", .function)], returns: "value",
            summary: "Calls f() and reports the wall time on stderr; also written `time { block }` or `%time stmt`.",
            example: "time { topometrics(g) };  %time x = slow();  time(fn () { return 1 })") { args in
        let start = DispatchTime.now().uptimeNanoseconds
        let result = try args.interpreter.call(args["f"], [])
        let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        args.interpreter.writeError("time: \(formatDuration(seconds))\n")
        return result
    },
    mathBuiltin("sqrt", "Square root.", "sqrt(2.0)", sqrt),
    mathBuiltin("exp", "e to the power x.", "exp(1)", exp),
    mathBuiltin("log", "Natural logarithm.", "log(10)", log),
    Builtin("floor", [Param("x", .number)], returns: "int",
            summary: "The largest Int not greater than x.",
            example: "floor(2.7)  # 2") { args in
        try roundedToInt(args, .down)
    },
    Builtin("ceil", [Param("x", .number)], returns: "int",
            summary: "The smallest Int not less than x.",
            example: "ceil(2.1)  # 3") { args in
        try roundedToInt(args, .up)
    },
    Builtin("assert", [Param("condition", .any), Param("message", .string, default: .string("assertion failed"))], returns: "none",
            summary: "Stops with an error when the condition is false.",
            example: "assert(len(xs) > 0, \"empty input\")") { args in
        guard args["condition"].isTruthy else { throw RuntimeError(try args.string("message")) }
        return .none
    },
    Builtin("error", [Param("message", .string)], returns: "none",
            summary: "Stops with an error carrying the message.",
            example: "error(\"sparsity must be below 1\")") { args in
        throw RuntimeError(try args.string("message"))
    },
]

private func mathBuiltin(_ name: String, _ summary: String, _ example: String, _ f: @escaping (Double) -> Double) -> Builtin {
    Builtin(name, [Param("x", .float)], returns: "float", summary: summary, example: example) { args in
        .float(f(try args.double("x")))
    }
}

private func roundedToInt(_ args: Arguments, _ rule: FloatingPointRoundingRule) throws -> Value {
    if case .int = args["x"] { return args["x"] }
    let d = try args.double("x")
    guard let i = Int(exactly: d.rounded(rule)) else { throw args.bad("x", "\(Display.float(d)) has no int value") }
    return .int(i)
}

private func extreme(_ args: Arguments, wantSmaller: Bool) throws -> Value {
    var items = try args.list("values")
    if items.count == 1, case .list(let inner) = items[0] { items = inner }
    guard var best = items.first else {
        throw RuntimeError("bad argument #1 to '\(args.builtin.name)' (empty list)")
    }
    for item in items.dropFirst() {
        let c = try Operators.compare(item, best)
        if wantSmaller ? c < 0 : c > 0 { best = item }
    }
    return best
}

enum CoreBuiltins {
    /// The bounds of `range(start, stop, step)`; shared with the `for` loop, which iterates without a list.
    static func rangeBounds(_ args: Arguments) throws -> (start: Int, stop: Int, step: Int) {
        var start = try args.int("start")
        var stop = 0
        if case .int(let s)? = args.optional("stop") { stop = s } else { (start, stop) = (0, start) }
        let step = try args.int("step")
        guard step != 0 else { throw args.bad("step", "step must not be zero") }
        return (start, stop, step)
    }
}
