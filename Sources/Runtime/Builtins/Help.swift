import Lang

/// Text for `help(x)`, `?name` and `help()`.
enum Help {
    static func builtin(_ b: Builtin) -> String {
        var lines = [b.signature, "  " + b.summary]
        let typed = b.params.map { "\($0.name): \($0.type.name)" }
        if !typed.isEmpty { lines.append("  arguments: " + typed.joined(separator: ", ")) }
        lines.append("  example: " + b.example)
        return lines.joined(separator: "\n")
    }

    static func function(_ f: UserFunction) -> String {
        let params = f.decl.params.map { p -> String in
            p.defaultValue == nil ? p.name : "\(p.name): …"
        }
        return "fn \(f.name)(\(params.joined(separator: ", ")))\n  defined at \(f.decl.source.describe(f.decl.at))"
    }

    static let syntax: [String: String] = [
        "if": "if cond { … } else if other { … } else { … }\n  Runs the first block whose condition is true (none, false, 0, \"\", [] and {} are false).",
        "else": "if cond { … } else { … }\n  The block run when no condition of an if is true.",
        "for": "for x in xs { … }\n  Runs the block once per item of a list, character of a string or field name of a record.\n  example: for i in range(3) { print(i) }",
        "in": "for x in xs { … }\n  Separates the loop variable from what it iterates over.",
        "while": "while cond { … }\n  Runs the block while the condition is true.\n  example: n = 3; while n > 0 { n = n - 1 }",
        "break": "break\n  Leaves the innermost loop.",
        "continue": "continue\n  Skips to the next iteration of the innermost loop.",
        "fn": "fn name(a, b: 2) { return a + b }\n  Defines a function; parameters with ': value' are optional. 'fn (x) { … }' is an anonymous function.\n  example: fn add(a, b: 1) { return a + b }; add(2, b: 3)",
        "return": "return value\n  Leaves the function with a value (none when omitted).",
        "and": "a and b\n  b when a is true, else a (b is not evaluated then).",
        "or": "a or b\n  a when a is true, else b.",
        "not": "not a\n  true when a is false.",
        "true": "true, false: the two bool values.",
        "false": "true, false: the two bool values.",
        "none": "none\n  The absence of a value; expression statements that give none display nothing.",
    ]

    /// Help for a name as typed after `?`; nil when the name is unknown.
    static func text(forName name: String, in interpreter: Interpreter, scope: Scope) -> String? {
        if let v = scope.lookup(name) { return text(for: v, name: name) }
        if let c = interpreter.constants[name] {
            return "\(c.name): \(c.value.typeName) (constant)\n  \(c.summary)"
        }
        if let b = interpreter.builtins[name] { return builtin(b) }
        return syntax[name]
    }

    static func text(for value: Value, name: String?) -> String {
        switch value {
        case .builtin(let b): return builtin(b)
        case .function(let f): return function(f)
        default:
            let label = name.map { "\($0): " } ?? ""
            return "\(label)\(value.typeName) = \(Display.inline(value))"
        }
    }

    static func overview(_ interpreter: Interpreter) -> String {
        let builtins = interpreter.builtins.values.sorted { $0.name < $1.name }
        let width = builtins.map(\.name.count).max() ?? 0
        var lines = ["builtins (?name or help(name) for details):"]
        for b in builtins { lines.append("  " + b.name.padding(width) + "  " + b.summary) }
        let constants = interpreter.constants.values.sorted { $0.name < $1.name }
        if !constants.isEmpty {
            lines.append("constants:")
            let cwidth = constants.map(\.name.count).max() ?? 0
            for c in constants { lines.append("  " + c.name.padding(cwidth) + "  " + c.summary) }
        }
        lines.append("syntax: " + syntax.keys.sorted().joined(separator: " ") + "  (?keyword for details)")
        return lines.joined(separator: "\n")
    }
}

extension String {
    func padding(_ width: Int) -> String { self + String(repeating: " ", count: max(0, width - count)) }
}
