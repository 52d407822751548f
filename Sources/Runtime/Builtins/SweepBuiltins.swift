import Foundation
import Kernels
import Lang

// Sweeps (docs/sweeps.md): `grid` builds the points, `sweep` runs a function on each and keeps
// one CSV row per point, resumable and parallel (mge-script --jobs/--shard/--merge/--plan).

let sweepBuiltins: [Builtin] = [
    Builtin("grid", [Param("where", .optional(.function), default: Value.none), .keywords("axes", .list)], returns: "list",
            summary: "The cartesian product of named axes, in the order given (the last axis varies fastest), as a list of point records; where: keeps only the points for which it returns true.",
            example: "grid(model: [resnet20, conv6], pruning: [snip, erk], sparsity: [0.9, 0.98], seed: [0, 1, 2], where: fn (p) { return p.pruning != snip or p.sparsity < 0.98 })") { args in
        let axes = try args.record("axes")
        guard axes.count > 0 else { throw RuntimeError("grid needs at least one axis, named: grid(sparsity: [0.9, 0.98], seed: [0, 1])") }
        var size = 1
        for (name, v) in axes.fields {
            func bad(_ message: String) -> RuntimeError { RuntimeError("bad argument '\(name)' to 'grid' (\(message))") }
            guard case .list(let values) = v, !values.isEmpty else { throw bad("the axis has no values") }
            var seen: [String: Int] = [:]
            for (i, value) in values.enumerated() {
                guard let cell = SweepRun.keyCell(value) else {
                    throw bad("value \(i + 1) is a \(value.typeName); an axis value must be a number, string, bool, model, pruner, dataset or function")
                }
                if let j = seen[cell] { throw bad("the value \(cell) appears twice: values \(j + 1) and \(i + 1)") }
                seen[cell] = i
            }
            size = size.multipliedReportingOverflow(by: values.count).partialValue
            guard size <= 10_000_000 else { throw args.bad("axes", "the grid would have more than 10 000 000 points") }
        }
        let lists: [[Value]] = axes.values.map { if case .list(let xs) = $0 { return xs } else { return [] } }
        let filter = args.optional("where")
        var points: [Value] = []
        var index = [Int](repeating: 0, count: lists.count)
        for _ in 0 ..< size {
            let point = Record(Array(zip(axes.names, zip(lists, index).map { $0[$1] })))
            if let filter {
                let keep = try args.interpreter.call(filter, [.record(point)])
                guard case .bool(let b) = keep else {
                    throw args.bad("where", "the where: function must return true or false, got \(keep.typeName)")
                }
                if b { points.append(.record(point)) }
            } else {
                points.append(.record(point))
            }
            // Odometer: the last axis turns fastest.
            var a = lists.count - 1
            while a >= 0 {
                index[a] += 1
                if index[a] < lists[a].count { break }
                index[a] = 0
                a -= 1
            }
        }
        return .list(points)
    },
    Builtin("sweep", [Param("points", .list), Param("path", .string), Param("f", .function),
                      Param("retry_failed", .bool, default: .bool(false)), Param("restart", .bool, default: .bool(false)),
                      Param("normalized", .bool, default: .bool(true))], returns: "list",
            summary: "Runs f on every point and appends one CSV row per point to path (the point's values, then the record f returns). The record's topometrics are written in the paper's layout (nodes, edges, the normalised metrics under the paper's column names, motifs_estimated and motifs_sample beside motif, compat) whatever other fields it holds, and those fields after them; normalized: false writes mge's raw counts instead. Axis cells follow the paper's names: a model as Resnet-20, a dataset as CIFAR-10, and an axis named pruner is written as the column pruning. Resumes: points already in the file are skipped. A point whose f raises an error is recorded in <path>.errors.csv and the sweep goes on; retry_failed: true (or mge-script --retry-failed) runs those again; the error names its file:line:col, and mge-script exits 1 when points failed. The file remembers the function (path.meta): a run whose function, or a helper or global it reads, changed since is refused before any point; restart: true (mge-script --restart) then sets the old results aside and runs every point again. Returns one record per point with a row. mge-script --jobs N, --shard i/n, --merge and --plan run it in parallel, on a cluster, or only estimate it (docs/sweeps.md).",
            example: "rows = sweep(grid(sparsity: [0.9, 0.98], seed: [0, 1]), \"sweep.csv\", fn (p) { net = conv6(seed: p.seed);  prune(net, erk, p.sparsity, seed: p.seed);  return topometrics(unroll(net)) })") { args in
        let path = try filePath(args, "path", extensions: ["csv"], what: "a CSV file")
        if case .function(let f) = args["f"], f.decl.params.count != 1 {
            throw args.bad("f", "the function must take one argument, the point; it takes \(f.decl.params.count)")
        }
        if case .function(let f) = args["f"], !returnsValue(f.decl.body) {
            throw args.bad("f", "the function has no 'return' with a value, so it returns none for every point; it must return a record, e.g. return topometrics(unroll(net))")
        }
        var points: [Record] = []
        for (i, v) in try args.list("points").enumerated() {
            guard case .record(let r) = v else {
                throw args.bad("points", "point \(i + 1) is a \(v.typeName); use grid(...) or a list of records")
            }
            points.append(r)
        }
        args.interpreter.sweepsStarted += 1
        let run = try SweepRun(interpreter: args.interpreter, points: points, path: path, body: args["f"],
                               ordinal: args.interpreter.sweepsStarted)
        if try args.bool("retry_failed") { run.settings.retryFailed = true }
        if try args.bool("restart") { run.settings.restart = true }
        run.normalized = try args.bool("normalized")
        return try run.run()
    },
]

/// Whether `body` has a `return <value>` anywhere (in its branches and loops; nested function
/// declarations return for themselves). A body without one returns none for every point, which
/// `sweep` refuses before any point runs.
private func returnsValue(_ body: [Stmt]) -> Bool {
    body.contains { statement in
        switch statement {
        case .return(let value, _): return value != nil
        case .if(let branches, let elseBody, _): return branches.contains { returnsValue($0.body) } || returnsValue(elseBody ?? [])
        case .for(_, _, let inner, _), .while(_, let inner, _), .time(let inner, _): return returnsValue(inner)
        default: return false
        }
    }
}
