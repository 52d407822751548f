import Foundation
import Kernels
import Lang

// What a sweep knows of its function before running it: a fingerprint of what it computes (so a
// results file written by another body is refused rather than resumed into), and the `train`
// calls it makes (so `--plan` can count training in).

/// The sweep's function, looked at statically (no point runs).
struct SweepBody {
    /// FNV-1a 64 of the function's source text and of every name it reads from outside — a user
    /// function by its own text (recursively), a number, string or list by its value — so editing
    /// the body, a helper it calls, or a global such as `epochs = 5` it reads changes the hash,
    /// while edits elsewhere in the script (comments, prints, lines above) do not.
    let hash: String
    /// `file:line:col` of the function, for messages.
    let location: String
    /// The body's (and its helpers') `train(…)` calls, as far as they can be read without running.
    let trainCalls: [TrainCall]
    /// Names the body (and its helpers) call: the plan counts unroll + topometrics only when
    /// they are called.
    let called: Set<String>

    /// A `train(net, data, epochs: …)` call: each argument as an expression, resolved against
    /// a point (`p.epochs`) or the globals when the plan asks.
    struct TrainCall {
        let epochs: Expr?
        let data: Expr?
        let batch: Expr?
        /// The `test:` set, evaluated after every epoch.
        let test: Expr?
        /// The function's parameter (the point) and the scope its free names resolve in.
        let pointName: String?
        let closure: Scope
    }

    init(_ value: Value) {
        guard case .function(let f) = value else {
            // A builtin as the body: its name is all there is to it.
            let name = Display.inline(value)
            hash = Self.fnv(name)
            location = name
            trainCalls = []
            called = []
            return
        }
        var text = ""
        var calls: [TrainCall] = []
        var visited: Set<ObjectIdentifier> = []
        var called: Set<String> = []
        Self.describe(f, into: &text, calls: &calls, called: &called, visited: &visited)
        hash = Self.fnv(text)
        location = SourcePoint(source: f.decl.source, offset: f.decl.at).description
        trainCalls = calls
        self.called = called
    }

    static func fnv(_ text: String) -> String {
        var hash: UInt64 = 0xcbf29ce484222325
        for byte in text.utf8 { hash = (hash ^ UInt64(byte)) &* 0x100000001b3 }
        let hex = String(hash, radix: 16)
        return String(repeating: "0", count: 16 - hex.count) + hex
    }

    /// Appends the function's text and, for each free name, `name=<value>` to `text`.
    private static func describe(_ f: UserFunction, into text: inout String, calls: inout [TrainCall], called: inout Set<String>,
                                 visited: inout Set<ObjectIdentifier>) {
        guard visited.insert(ObjectIdentifier(f)).inserted else { return }
        text += f.decl.text + "\n"
        var reads: [String] = [], bound = Set(f.decl.params.map(\.name))
        var found = Found()
        walk(f.decl.body, reads: &reads, bound: &bound, train: &found)
        called.formUnion(found.called)
        for (epochs, data, batch, test) in found.train {
            calls.append(TrainCall(epochs: epochs, data: data, batch: batch, test: test, pointName: f.decl.params.first?.name, closure: f.closure))
        }
        var seen: Set<String> = []
        for name in reads where !bound.contains(name) && seen.insert(name).inserted {
            guard let value = f.closure.lookup(name) else { continue } // a builtin or constant
            switch value {
            case .function(let g):
                text += "\(name)=fn\n"
                describe(g, into: &text, calls: &calls, called: &called, visited: &visited)
            default:
                text += "\(name)=\(stableText(value))\n"
            }
        }
    }

    /// A value's text that does not change between runs of the same script (networks by model,
    /// datasets by name and size; not by their changing weights).
    static func stableText(_ value: Value) -> String {
        switch value {
        case .native(let d as DatasetObject): return d.display(long: false)
        case .native(let object): return object.typeName + ":" + (SweepRun.keyCell(value) ?? "")
        case .list(let items): return "[" + items.map(stableText).joined(separator: ",") + "]"
        case .record(let r): return "{" + r.fields.map { "\($0):\(stableText($1))" }.joined(separator: ",") + "}"
        case .function(let f): return f.decl.text
        default: return Display.inline(value)
        }
    }

    // MARK: - The walk

    /// What the walk collects besides the names read: the `train` calls' arguments and the
    /// names of everything called.
    struct Found {
        var train: [(epochs: Expr?, data: Expr?, batch: Expr?, test: Expr?)] = []
        var called: Set<String> = []
    }

    private static func walk(_ block: [Stmt], reads: inout [String], bound: inout Set<String>, train: inout Found) {
        for statement in block {
            switch statement {
            case .expression(let e): walk(e, reads: &reads, bound: &bound, train: &train)
            case .assign(let target, let e, _):
                walk(e, reads: &reads, bound: &bound, train: &train)
                var t = target
                while true {
                    switch t {
                    case .variable(let name, _):
                        bound.insert(name)
                    case .index(let inner, let i, _):
                        walk(i, reads: &reads, bound: &bound, train: &train)
                        t = inner
                        continue
                    case .field(let inner, _, _):
                        t = inner
                        continue
                    }
                    break
                }
            case .if(let branches, let elseBody, _):
                for b in branches {
                    walk(b.condition, reads: &reads, bound: &bound, train: &train)
                    walk(b.body, reads: &reads, bound: &bound, train: &train)
                }
                walk(elseBody ?? [], reads: &reads, bound: &bound, train: &train)
            case .for(let variable, let iterable, let body, _):
                walk(iterable, reads: &reads, bound: &bound, train: &train)
                bound.insert(variable)
                walk(body, reads: &reads, bound: &bound, train: &train)
            case .while(let condition, let body, _):
                walk(condition, reads: &reads, bound: &bound, train: &train)
                walk(body, reads: &reads, bound: &bound, train: &train)
            case .return(let e, _):
                if let e { walk(e, reads: &reads, bound: &bound, train: &train) }
            case .function(let decl):
                if let name = decl.name { bound.insert(name) }
                var inner = bound.union(decl.params.map(\.name))
                walk(decl.body, reads: &reads, bound: &inner, train: &train)
            case .time(let body, _):
                walk(body, reads: &reads, bound: &bound, train: &train)
            case .break, .continue, .help:
                break
            }
        }
    }

    private static func walk(_ e: Expr, reads: inout [String], bound: inout Set<String>, train: inout Found) {
        switch e {
        case .int, .float, .string, .bool, .none: break
        case .variable(let name, _): reads.append(name)
        case .list(let items, _): for x in items { walk(x, reads: &reads, bound: &bound, train: &train) }
        case .record(let fields, _): for f in fields { walk(f.value, reads: &reads, bound: &bound, train: &train) }
        case .unary(_, let x, _): walk(x, reads: &reads, bound: &bound, train: &train)
        case .binary(_, let a, let b, _), .logical(_, let a, let b, _), .index(let a, let b, _):
            walk(a, reads: &reads, bound: &bound, train: &train)
            walk(b, reads: &reads, bound: &bound, train: &train)
        case .slice(let a, let b, let c, _):
            walk(a, reads: &reads, bound: &bound, train: &train)
            if let b { walk(b, reads: &reads, bound: &bound, train: &train) }
            if let c { walk(c, reads: &reads, bound: &bound, train: &train) }
        case .field(let x, _, _): walk(x, reads: &reads, bound: &bound, train: &train)
        case .call(let callee, let arguments, _):
            walk(callee, reads: &reads, bound: &bound, train: &train)
            for a in arguments { walk(a.value, reads: &reads, bound: &bound, train: &train) }
            if case .variable(let name, _) = callee, !bound.contains(name) { train.called.insert(name) }
            if case .variable("train", _) = callee, !bound.contains("train") {
                let positional = arguments.filter { $0.label == nil }.map(\.value)
                func named(_ label: String) -> Expr? { arguments.first { $0.label == label }?.value }
                train.train.append((named("epochs"), named("data") ?? (positional.count > 1 ? positional[1] : nil), named("batch"), named("test")))
            }
        case .function(let decl):
            var inner = bound.union(decl.params.map(\.name))
            walk(decl.body, reads: &reads, bound: &inner, train: &train)
        }
    }
}

extension SweepBody.TrainCall {
    /// An argument's value for one point, when it can be known without running the body: a
    /// literal, the point's field (`p.epochs`), or a variable the function reads from outside.
    func resolve(_ e: Expr?, point: Record) -> Value? {
        guard let e else { return nil }
        switch e {
        case .int(let i, _): return .int(i)
        case .float(let d, _): return .float(d)
        case .field(.variable(let name, _), let field, _) where name == pointName: return point[field]
        case .variable(let name, _) where name != pointName: return closure.lookup(name)
        default: return nil
        }
    }
}

/// `results.csv.meta`: which body computed `results.csv` (and its errors file), as lines
/// `key: value`. A sidecar rather than a line in the CSV so the results stay a plain table for
/// read_csv, pandas and R; shard files get their own (`results.shard-i-of-n.csv.meta`), and
/// --merge writes the merged file's.
enum SweepMeta {
    static func read(_ path: String) -> [String: String]? {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { return nil }
        var fields: [String: String] = [:]
        for line in text.split(separator: "\n") where !line.hasPrefix("#") {
            guard let colon = line.firstIndex(of: ":") else { continue }
            fields[String(line[..<colon])] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
        }
        return fields
    }

    static func write(_ path: String, body: SweepBody) throws {
        let text = """
            # which sweep function wrote \((path as NSString).lastPathComponent.dropLast(5)); mge refuses to resume it with another
            body: \(body.hash)
            function: \(body.location)

            """
        let temporary = path + ".tmp-\(getpid())"
        do {
            try text.write(toFile: temporary, atomically: false, encoding: .utf8)
            guard rename(temporary, path) == 0 else { throw RuntimeError("cannot write \(path): \(String(cString: strerror(errno)))") }
        } catch let error as RuntimeError {
            unlink(temporary)
            throw error
        } catch {
            unlink(temporary)
            throw RuntimeError("cannot write \(path): \(error.localizedDescription)")
        }
    }
}

extension SweepRun {
    var metaPath: String { Self.metaPath(targetPath) }

    /// When the target (or its errors file) holds results of a different body: the hash and
    /// location it was written with. nil when it holds none, has no meta (written before mge
    /// kept one), or the body is the same.
    func bodyChange() -> (hash: String, location: String)? {
        guard !done.isEmpty || !errors.isEmpty, let meta = SweepMeta.read(metaPath),
              let hash = meta["body"], hash != bodyInfo.hash else { return nil }
        return (hash, meta["function"] ?? "?")
    }

    /// Refuses, before any point runs, to resume a file another body wrote; with restart the
    /// old files are set aside (`results.before-restart.csv`) and every point runs again.
    func checkBody() throws {
        guard let old = bodyChange() else { return }
        let what = "\(done.count) row\(done.count == 1 ? "" : "s")\(errors.isEmpty ? "" : " and \(errors.count) errors")"
        guard settings.restart else {
            throw RuntimeError("""
                \(targetPath) holds \(what) computed by a different sweep function (body \(old.hash), \(old.location)); \
                this one (body \(bodyInfo.hash), \(bodyInfo.location)) was changed since, so its results would not be comparable. \
                Give another file name to keep both, or pass restart: true to sweep (mge-script --restart) to set the old results \
                aside and run every point again
                """)
        }
        let aside = Self.stem(targetPath) + ".before-restart.csv"
        for (from, to) in [(targetPath, aside), (errorsPath, Self.errorsPath(aside))] where FileManager.default.fileExists(atPath: from) {
            unlink(to)
            guard rename(from, to) == 0 else { throw RuntimeError("cannot move \(from) aside to \(to): \(String(cString: strerror(errno)))") }
        }
        unlink(metaPath)
        interpreter.writeError("sweep \(targetPath): the function changed since its \(what) were computed; restart: moved them to \(aside), running every point\n")
        done = [:]
        errors = [:]
        fields = nil
    }

    /// Records this body as the target's before its first row or error is written.
    func writeMetaOnce() throws {
        guard !metaWritten else { return }
        if SweepMeta.read(metaPath)?["body"] != bodyInfo.hash { try SweepMeta.write(metaPath, body: bodyInfo) }
        metaWritten = true
    }
}
