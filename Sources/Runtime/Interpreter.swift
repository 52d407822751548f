import Foundation
import Kernels
import Lang

/// How one `run` ended. Scripts map these to exit codes (0, 65, 70).
public enum RunOutcome: Equatable {
    case ok, syntaxError, runtimeError, interrupted
}

/// A located runtime error on its way up to `run`.
struct Failure: Error {
    let diagnostic: Diagnostic
    let interrupted: Bool
}

/// The tree-walking evaluator. Globals persist between `run` calls (REPL cells, `mge -i`).
public final class Interpreter {
    public struct Limits {
        /// Active user-function calls; deeper recursion is an error ("stack overflow"), not a crash.
        public var maxCallDepth = 2000
        /// Largest list or string (in items or bytes) that `+`, `*` and `range` may build.
        public var maxCollectionSize = 100_000_000
        /// Stop after this many loop iterations plus calls (fuzzing); nil for no limit.
        public var maxSteps: Int?
        public init() {}
    }

    public var limits = Limits()
    /// Program output (print, displayed values, help).
    /// Both first clear a progress or activity line left on the terminal, so text never starts mid-bar.
    public var write: (String) -> Void = { text in
        ProgressBar.clearPartialLine()
        fputs(text, stdout)
    }
    /// Reports that are not program output: `time`, "interrupted", diagnostics.
    public var writeError: (String) -> Void = { text in
        ProgressBar.clearPartialLine()
        fflush(stdout)
        fputs(text, stderr)
    }
    /// Called for each syntax or runtime error; renders to `writeError` unless replaced.
    public var report: ((Diagnostic) -> Void)?
    /// Set by a builtin that failed for want of a dataset `download` can fetch ("cifar10"); the
    /// REPL offers the download. Front ends clear it before each statement.
    public var missingDataset: String?

    /// How `sweep` runs (set by mge-script's --jobs/--shard/--merge/--plan), and how many
    /// sweep calls have started (a `--jobs` worker serves the one with its ordinal).
    public var sweepSettings = SweepSettings()
    var sweepsStarted = 0
    /// Points without a row (failed now or earlier) when each sweep's errors file was last
    /// written, by errors file: mge-script then exits non-zero and names them.
    public internal(set) var sweepFailures: [String: Int] = [:]
    /// Called before each top-level statement runs, with its source offset (`mge-script --report` cells).
    public var statementStarted: ((Int) -> Void)?
    /// Shows a top-level expression's value instead of `write(Display.cell(value))` when set
    /// (the report renders tables as HTML).
    public var displayValue: ((Value) -> Void)?
    /// Called with each figure a builtin writes (path, SVG text): the report puts them inline.
    public var figureWritten: ((String, String) -> Void)?

    let globals = Scope(parent: nil)
    public private(set) var builtins: [String: Builtin] = [:]
    public private(set) var constants: [String: Constant] = [:]

    private struct Frame {
        let name: String
        let callSite: SourcePoint
    }
    private var callStack: [Frame] = []
    /// The source whose offsets the code now running refers to (changes inside user functions).
    private var source = Source(name: "<none>", text: "")
    /// Offset of the builtin call being evaluated, so callbacks and errors inside it point at the call.
    private var builtinCallSite = 0
    private var steps = 0

    public init() {
        for area in BuiltinRegistry.areas { for b in area { builtins[b.name] = b } }
        for area in BuiltinRegistry.constantAreas { for c in area { constants[c.name] = c } }
    }

    // MARK: - Public API

    /// Parses and runs one file or REPL cell. Displays the value of top-level expression statements.
    /// With `keepGoing`, a runtime error in one top-level statement does not stop the next ones.
    @discardableResult
    public func run(source text: String, name: String, keepGoing: Bool = false) -> RunOutcome {
        run(Source(name: name, text: text), keepGoing: keepGoing)
    }

    @discardableResult
    public func run(_ source: Source, keepGoing: Bool = false) -> RunOutcome {
        let parsed = Parser.parse(source)
        if !parsed.diagnostics.isEmpty {
            parsed.diagnostics.forEach(emit)
            return .syntaxError
        }
        return execute(parsed.program, keepGoing: keepGoing)
    }

    /// Runs an already parsed program (the REPL parses first to decide about continuation lines).
    public func execute(_ program: Program, keepGoing: Bool = false) -> RunOutcome {
        var outcome = RunOutcome.ok
        steps = 0
        for statement in program.statements {
            callStack.removeAll()
            source = program.source
            statementStarted?(statement.at)
            do {
                _ = try execute(statement, in: globals, topLevel: true)
            } catch let failure as Failure {
                if failure.interrupted { return .interrupted } // the front end says so in its own way
                emit(failure.diagnostic)
                outcome = .runtimeError
                if !keepGoing { return outcome }
            } catch {
                emit(Diagnostic(kind: .runtime, message: "\(error)", point: SourcePoint(source: program.source, offset: statement.at)))
                outcome = .runtimeError
                if !keepGoing { return outcome }
            }
        }
        return outcome
    }

    private func emit(_ diagnostic: Diagnostic) {
        if let report { report(diagnostic) } else { writeError(diagnostic.rendered()) }
    }

    /// Binds a global variable (for hosts and tests).
    public func define(_ name: String, _ value: Value) { globals.values[name] = value }

    public func global(_ name: String) -> Value? { globals.values[name] }

    /// Names of the user's global variables, sorted.
    public var globalNames: [String] { globals.values.keys.sorted() }

    /// Adds or replaces a builtin (the registry's builtins are added at init).
    public func defineBuiltin(_ builtin: Builtin) { builtins[builtin.name] = builtin }

    /// Adds a constant at run time (the registry's constants are added at init).
    public func defineConstant(_ constant: Constant) { constants[constant.name] = constant }

    /// Calls a function value with positional arguments, from inside a builtin (e.g. `sort(by: f)`).
    public func call(_ function: Value, _ arguments: [Value]) throws -> Value {
        try callValue(function, arguments.map { CallArgument(label: nil, value: $0) }, at: builtinCallSite)
    }

    /// Every name visible at top level: variables, constants, builtins.
    public var visibleNames: [String] {
        Array(Set(globals.values.keys).union(constants.keys).union(builtins.keys)).sorted()
    }

    /// Looks a name up the way a top-level expression would, without side effects.
    public func lookupGlobal(_ name: String) -> Value? {
        globals.lookup(name) ?? constants[name]?.value ?? builtins[name].map(Value.builtin)
    }

    // MARK: - Errors

    private func fail(_ message: String, at offset: Int) -> Failure {
        Failure(diagnostic: Diagnostic(kind: .runtime, message: message, point: SourcePoint(source: source, offset: offset),
                                       trace: traceLines()), interrupted: false)
    }

    private func interrupted(at offset: Int) -> Failure {
        Failure(diagnostic: Diagnostic(kind: .runtime, message: "interrupted", point: SourcePoint(source: source, offset: offset)),
                interrupted: true)
    }

    /// One line per active user-function call, innermost first; long recursions are abbreviated.
    private func traceLines() -> [String] {
        let lines = callStack.reversed().map { "  in \($0.name)() called at \($0.callSite.description)" }
        guard lines.count > 20 else { return lines }
        return Array(lines.prefix(10)) + ["  … \(lines.count - 20) more calls …"] + Array(lines.suffix(10))
    }

    /// Polled at every loop iteration and call: Ctrl-C and the fuzzing step budget.
    @inline(__always)
    private func tick(_ offset: Int) throws {
        steps += 1
        if Cancellation.isRequested { throw interrupted(at: offset) }
        if let max = limits.maxSteps, steps > max { throw fail("step limit exceeded (\(max) steps)", at: offset) }
    }

    // MARK: - Statements

    private enum Flow {
        case normal, breakLoop, continueLoop
        case returned(Value)
    }

    private func execute(_ block: [Stmt], in scope: Scope, topLevel: Bool = false) throws -> Flow {
        for statement in block {
            let flow = try execute(statement, in: scope, topLevel: topLevel)
            if case .normal = flow { continue }
            return flow
        }
        return .normal
    }

    private func execute(_ statement: Stmt, in scope: Scope, topLevel: Bool) throws -> Flow {
        switch statement {
        case .expression(let expr):
            let value = try evaluate(expr, in: scope)
            if topLevel {
                if let displayValue { displayValue(value) } else if let text = Display.cell(value) { write(text + "\n") }
            }
            return .normal

        case .assign(let target, let valueExpr, _):
            let value = try evaluate(valueExpr, in: scope)
            try assign(target, value, in: scope)
            return .normal

        case .if(let branches, let elseBody, _):
            for branch in branches where try evaluate(branch.condition, in: scope).isTruthy {
                return try execute(branch.body, in: scope)
            }
            if let elseBody { return try execute(elseBody, in: scope) }
            return .normal

        case .while(let condition, let body, let at):
            while try evaluate(condition, in: scope).isTruthy {
                try tick(at)
                switch try execute(body, in: scope) {
                case .breakLoop: return .normal
                case .returned(let v): return .returned(v)
                case .normal, .continueLoop: continue
                }
            }
            return .normal

        case .for(let variable, let iterable, let body, let at):
            try checkAssignable(variable, at: at)
            if let bounds = try rangeBounds(iterable, in: scope) {
                for i in stride(from: bounds.start, to: bounds.stop, by: bounds.step) {
                    try tick(at)
                    scope.values[variable] = .int(i)
                    switch try execute(body, in: scope) {
                    case .breakLoop: return .normal
                    case .returned(let v): return .returned(v)
                    case .normal, .continueLoop: continue
                    }
                }
                return .normal
            }
            let items = try iterationItems(try evaluate(iterable, in: scope), at: iterable.at)
            for item in items {
                try tick(at)
                scope.values[variable] = item
                switch try execute(body, in: scope) {
                case .breakLoop: return .normal
                case .returned(let v): return .returned(v)
                case .normal, .continueLoop: continue
                }
            }
            return .normal

        case .break: return .breakLoop
        case .continue: return .continueLoop
        case .return(let expr, _):
            return .returned(try expr.map { try evaluate($0, in: scope) } ?? .none)

        case .function(let decl):
            let name = decl.name ?? "<fn>"
            try checkAssignable(name, at: decl.at)
            scope.values[name] = .function(UserFunction(decl: decl, closure: scope))
            return .normal

        case .time(let body, _):
            let start = DispatchTime.now().uptimeNanoseconds
            let flow = try execute(body, in: scope, topLevel: topLevel)
            let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
            writeError("time: \(formatDuration(seconds))\n")
            return flow

        case .help(let name, let at):
            guard let name else {
                write((Display.helpWidth.map { Display.wrap(Help.overview(self), width: $0) } ?? Help.overview(self)) + "\n")
                return .normal
            }
            guard let text = Help.text(forName: name, in: self, scope: scope) else {
                throw fail("no help for '\(name)'\(suggestion(for: name, in: scope))", at: at)
            }
            write((Display.helpWidth.map { Display.wrap(text, width: $0) } ?? text) + "\n")
            return .normal
        }
    }

    /// For `for i in range(…)`: the loop runs over the bounds without building the list.
    private func rangeBounds(_ iterable: Expr, in scope: Scope) throws -> (start: Int, stop: Int, step: Int)? {
        guard case .call(.variable("range", let nameAt), let argExprs, _) = iterable,
              case .builtin(let range)? = try? lookup("range", in: scope, at: nameAt), range.name == "range"
        else { return nil }
        let args = try argExprs.map { CallArgument(label: $0.label, value: try evaluate($0.value, in: scope), at: $0.at) }
        do {
            let values = try range.check(args)
            return try CoreBuiltins.rangeBounds(Arguments(builtin: range, values: values, interpreter: self,
                                                              keywords: Set(args.compactMap(\.label))))
        } catch let error as RuntimeError {
            throw fail(error.message, at: nameAt)
        }
    }

    private func iterationItems(_ value: Value, at: Int) throws -> [Value] {
        switch value {
        case .list(let items): return items
        case .string(let s): return s.map { .string(String($0)) }
        case .record(let r): return r.names.map(Value.string)
        case .native(let object) where object.elements != nil: return object.elements ?? []
        case .int: throw fail("cannot iterate over an int (use range(n))", at: at)
        default: throw fail("cannot iterate over a \(value.typeName)", at: at)
        }
    }

    // MARK: - Assignment

    private func checkAssignable(_ name: String, at: Int) throws {
        if constants[name] != nil { throw fail("cannot assign to constant '\(name)'", at: at) }
    }

    private enum PathStep {
        case index(Value, at: Int)
        case field(String, at: Int)
    }

    private func assign(_ target: AssignTarget, _ value: Value, in scope: Scope) throws {
        var path: [PathStep] = []
        var node = target
        while true {
            switch node {
            case .variable(let name, let at):
                try checkAssignable(name, at: at)
                if path.isEmpty {
                    scope.values[name] = value
                    return
                }
                // Element assignment updates the variable where it lives (a global from inside a function too).
                var owner: Scope? = scope
                while let s = owner, s.values[name] == nil { owner = s.parent }
                guard let home = owner, var root = home.values[name] else {
                    throw fail("undefined variable '\(name)'\(suggestion(for: name, in: scope))", at: at)
                }
                home.values[name] = Value.none // keep the root uniquely referenced while it is mutated
                defer { home.values[name] = root }
                try update(&root, path.reversed()[...], with: value)
                return
            case .index(let base, let indexExpr, let at):
                path.append(.index(try evaluate(indexExpr, in: scope), at: at))
                node = base
            case .field(let base, let name, let at):
                path.append(.field(name, at: at))
                node = base
            }
        }
    }

    private func update(_ container: inout Value, _ path: ArraySlice<PathStep>, with value: Value) throws {
        guard let step = path.first else {
            container = value
            return
        }
        let rest = path.dropFirst()
        switch (container, step) {
        case (.list(var items), .index(let key, let at)):
            let i = try listIndex(key, count: items.count, at: at)
            container = .none
            defer { container = .list(items) }
            try update(&items[i], rest, with: value)
        case (.record(var record), .index(.string(let name), let at)), (.record(var record), .field(let name, let at)):
            var field: Value
            if let existing = record[name] {
                field = existing
            } else if rest.isEmpty {
                field = .none
            } else {
                throw fail("record has no field '\(name)'\(fieldSuggestion(name, record.names))", at: at)
            }
            container = .none
            record[name] = Value.none
            try update(&field, rest, with: value)
            record[name] = field
            container = .record(record)
        case (.record, .index(let key, let at)):
            throw fail("record keys are strings, got \(key.typeName)", at: at)
        case (_, .index(_, let at)):
            throw fail("cannot assign to an element of a \(container.typeName)", at: at)
        case (_, .field(let name, let at)):
            throw fail("cannot assign to field '\(name)' of a \(container.typeName)", at: at)
        }
    }

    // MARK: - Expressions

    private func lookup(_ name: String, in scope: Scope, at: Int) throws -> Value {
        if let v = scope.lookup(name) { return v }
        if let c = constants[name] { return c.value }
        if let b = builtins[name] { return .builtin(b) }
        throw fail("undefined variable '\(name)'\(suggestion(for: name, in: scope))", at: at)
    }

    private func suggestion(for name: String, in scope: Scope) -> String {
        let candidates = scope.allNames + Array(constants.keys) + Array(builtins.keys) + reservedWords
        return closestName(to: name, among: candidates).map { " (did you mean '\($0)'?)" } ?? ""
    }

    private func fieldSuggestion(_ name: String, _ names: [String]) -> String {
        closestName(to: name, among: names).map { " (did you mean '\($0)'?)" } ?? ""
    }

    private func evaluate(_ expr: Expr, in scope: Scope) throws -> Value {
        switch expr {
        case .int(let i, _): return .int(i)
        case .float(let d, _): return .float(d)
        case .string(let s, _): return .string(s)
        case .bool(let b, _): return .bool(b)
        case .none: return .none
        case .variable(let name, let at): return try lookup(name, in: scope, at: at)
        case .list(let items, _):
            return .list(try items.map { try evaluate($0, in: scope) })
        case .record(let fields, _):
            var record = Record()
            for (name, valueExpr) in fields { record[name] = try evaluate(valueExpr, in: scope) }
            return .record(record)
        case .unary(let op, let operand, let at):
            let value = try evaluate(operand, in: scope)
            switch op {
            case .not: return .bool(!value.isTruthy)
            case .negate:
                do { return try Operators.negate(value) } catch let e as RuntimeError { throw fail(e.message, at: at) }
            }
        case .binary(let op, let left, let right, let at):
            let a = try evaluate(left, in: scope)
            let b = try evaluate(right, in: scope)
            do {
                return try Operators.binary(op, a, b, maxSize: limits.maxCollectionSize)
            } catch let e as RuntimeError {
                throw fail(e.message, at: at)
            }
        case .logical(let op, let left, let right, _):
            let a = try evaluate(left, in: scope)
            switch op {
            case .and: return a.isTruthy ? try evaluate(right, in: scope) : a
            case .or: return a.isTruthy ? a : try evaluate(right, in: scope)
            }
        case .call(let calleeExpr, let argExprs, _):
            let callee = try evaluate(calleeExpr, in: scope)
            var args: [CallArgument] = []
            args.reserveCapacity(argExprs.count)
            for a in argExprs { args.append(CallArgument(label: a.label, value: try evaluate(a.value, in: scope), at: a.at)) }
            // Errors and call-stack lines point at the start of the call: `prune(…)` rather than its '('.
            return try callValue(callee, args, at: calleeExpr.start)
        case .index(let baseExpr, let keyExpr, let at):
            return try index(try evaluate(baseExpr, in: scope), try evaluate(keyExpr, in: scope), at: at)
        case .slice(let baseExpr, let lowerExpr, let upperExpr, let at):
            let base = try evaluate(baseExpr, in: scope)
            return try slice(base, try lowerExpr.map { try evaluate($0, in: scope) }, try upperExpr.map { try evaluate($0, in: scope) }, at: at)
        case .field(let baseExpr, let name, let at):
            return try field(try evaluate(baseExpr, in: scope), name, at: at)
        case .function(let decl):
            return .function(UserFunction(decl: decl, closure: scope))
        }
    }

    private func listIndex(_ key: Value, count: Int, at: Int) throws -> Int {
        guard case .int(let i) = key else { throw fail("list index must be an int, got \(key.typeName)", at: at) }
        let resolved = i < 0 ? i + count : i
        guard resolved >= 0, resolved < count else {
            throw fail("index \(i) out of range (list has \(count) item\(count == 1 ? "" : "s"))", at: at)
        }
        return resolved
    }

    private func index(_ base: Value, _ key: Value, at: Int) throws -> Value {
        switch base {
        case .list(let items):
            return items[try listIndex(key, count: items.count, at: at)]
        case .string(let s):
            guard case .int(let i) = key else { throw fail("string index must be an int, got \(key.typeName)", at: at) }
            let count = s.count
            let resolved = i < 0 ? i + count : i
            guard resolved >= 0, resolved < count else {
                throw fail("index \(i) out of range (string has \(count) character\(count == 1 ? "" : "s"))", at: at)
            }
            return .string(String(s[s.index(s.startIndex, offsetBy: resolved)]))
        case .native(let table as TableObject):
            // One row, without building every row's record as `elements` would.
            if case .string(let name) = key { return try field(base, name, at: at) }
            return .record(table.row(try listIndex(key, count: table.table.rowCount, at: at)))
        case .native(let set as NodeSetObject):
            // One node, without wrapping every node as `elements` would.
            if case .string(let name) = key { return try field(base, name, at: at) }
            return .native(NodeSetObject(set.graph, [set.nodes[try listIndex(key, count: set.nodes.count, at: at)]]))
        case .native(let object) where object.elements != nil:
            if case .string(let name) = key { return try field(base, name, at: at) }
            let items = object.elements ?? []
            return items[try listIndex(key, count: items.count, at: at)]
        case .record, .native:
            guard case .string(let name) = key else { throw fail("\(base.typeName) keys are strings, got \(key.typeName)", at: at) }
            return try field(base, name, at: at)
        default:
            throw fail("cannot index a \(base.typeName) value", at: at)
        }
    }

    /// `xs[a:b]` as in Python: negative bounds count from the end, bounds past either end are
    /// clamped, `a >= b` gives an empty result. Lists, strings and layer lists.
    private func slice(_ base: Value, _ lower: Value?, _ upper: Value?, at: Int) throws -> Value {
        func bound(_ v: Value?, _ count: Int, default d: Int) throws -> Int {
            guard let v, v != .none else { return d }
            guard case .int(let i) = v else { throw fail("slice bounds must be ints, got \(v.typeName)", at: at) }
            return min(max(i < 0 ? i + count : i, 0), count)
        }
        func range(_ count: Int) throws -> Range<Int> {
            let a = try bound(lower, count, default: 0), b = try bound(upper, count, default: count)
            return a < b ? a ..< b : a ..< a
        }
        switch base {
        case .list(let items): return .list(Array(items[try range(items.count)]))
        case .string(let s):
            let chars = Array(s)
            return .string(String(chars[try range(chars.count)]))
        case .native(let set as NodeSetObject):  // a node set stays a node set
            return .native(NodeSetObject(set.graph, Array(set.nodes[try range(set.nodes.count)])))
        case .native(let object) where object.elements != nil:
            let items = object.elements ?? []
            return .list(Array(items[try range(items.count)]))
        default:
            throw fail("cannot slice a \(base.typeName) value (lists, strings, layer lists and node sets can be sliced)", at: at)
        }
    }

    private func field(_ base: Value, _ name: String, at: Int) throws -> Value {
        switch base {
        case .record(let r):
            if let v = r[name] { return v }
            throw fail("record has no field '\(name)'\(fieldSuggestion(name, r.names))", at: at)
        case .native(let object):
            if let v = object.field(name) { return v }
            throw fail("\(object.typeName) has no field '\(name)'\(fieldSuggestion(name, object.fieldNames))", at: at)
        default:
            throw fail("\(base.typeName) value has no field '\(name)'", at: at)
        }
    }

    // MARK: - Calls

    /// The builtin being run, if any (so only the outermost call shows an activity line).
    private var activeBuiltin: String?

    private func callValue(_ callee: Value, _ args: [CallArgument], at: Int) throws -> Value {
        try tick(at)
        switch callee {
        case .builtin(let builtin):
            let savedSite = builtinCallSite
            builtinCallSite = at
            defer { builtinCallSite = savedSite }
            // A call running longer than a second shows that it is still running (top-level
            // calls only: a builtin calling back into the language is already covered).
            let activity = activeBuiltin == nil ? Activity.begin(builtin.name) : nil
            let outer = activeBuiltin
            activeBuiltin = builtin.name
            defer { activity?.end(); activeBuiltin = outer }
            do {
                let values = try builtin.check(args)
                return try builtin.body(Arguments(builtin: builtin, values: values, interpreter: self,
                                                  keywords: Set(args.compactMap(\.label))))
            } catch let error as RuntimeError {
                throw fail(error.message, at: Interpreter.offendingArgument(error.message, args, params: builtin.params.map(\.name), callee: builtin.name) ?? at)
            } catch is InterruptedError {
                throw interrupted(at: at) // a kernel saw the Ctrl-C flag
            } catch let failure as Failure {
                throw failure
            } catch {
                throw fail("\(builtin.name): \(error)", at: at)
            }
        case .function(let function):
            return try callUser(function, args, at: at)
        default:
            throw fail("cannot call a \(callee.typeName) value", at: at)
        }
    }

    /// Where an argument error of a call to `callee` points: the argument its message names
    /// (`bad argument #2`, `bad argument 'seed'`, `unknown keyword argument 'sed'`, `… given
    /// twice`, the first surplus one of `too many arguments`); nil (the callee) otherwise.
    static func offendingArgument(_ message: String, _ args: [CallArgument], params: [String], callee: String) -> Int? {
        guard message.contains(" to '\(callee)'") else { return nil }
        let positional = args.filter { $0.label == nil }
        func labelled(_ name: String) -> Int? { args.first { $0.label == name }?.at }
        if message.hasPrefix("too many arguments") {
            return positional.count > params.count ? positional[params.count].at : nil
        }
        if let r = message.range(of: "argument '") {
            let name = message[r.upperBound...].prefix { $0 != "'" }
            return labelled(String(name))
        }
        if message.hasPrefix("bad argument #"), let n = Int(message.dropFirst("bad argument #".count).prefix { $0.isNumber }), n >= 1 {
            if n - 1 < positional.count { return positional[n - 1].at }
            if n - 1 < params.count { return labelled(params[n - 1]) }
        }
        return nil
    }

    private func callUser(_ function: UserFunction, _ args: [CallArgument], at: Int) throws -> Value {
        let decl = function.decl
        guard callStack.count < limits.maxCallDepth else {
            throw fail("stack overflow (more than \(limits.maxCallDepth) nested calls)", at: at)
        }
        let slots: [Value?]
        do {
            slots = try bindArguments(args, paramNames: decl.params.map(\.name), variadicIndex: nil, callee: function.name)
        } catch let error as RuntimeError {
            throw fail(error.message, at: Interpreter.offendingArgument(error.message, args, params: decl.params.map(\.name), callee: function.name) ?? at)
        }
        for (i, param) in decl.params.enumerated() where slots[i] == nil && param.defaultValue == nil {
            throw fail("missing argument #\(i + 1) '\(param.name)' to '\(function.name)'", at: at)
        }
        let scope = Scope(parent: function.closure)
        callStack.append(Frame(name: function.name, callSite: SourcePoint(source: source, offset: at)))
        let callerSource = source
        source = decl.source
        defer {
            callStack.removeLast()
            source = callerSource
        }
        for (i, param) in decl.params.enumerated() {
            if let given = slots[i] {
                scope.values[param.name] = given
            } else if let defaultExpr = param.defaultValue {
                scope.values[param.name] = try evaluate(defaultExpr, in: scope)
            }
        }
        if case .returned(let value) = try execute(decl.body, in: scope) { return value }
        return .none
    }
}
