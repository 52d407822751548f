import Foundation
import Kernels

/// How `mge-script` asked the script's sweeps to run (its --jobs/--shard/--merge/--plan flags).
/// The REPL and plain scripts use the defaults: every point in this process.
public struct SweepSettings {
    public enum Mode: Equatable {
        /// Run the points (in this process, or in `jobs` worker processes).
        case run
        /// Print each point's estimated cost and the totals, run nothing, and stop the script.
        case plan
        /// Join the shard files into the results file instead of running.
        case merge
        /// A worker process started by `--jobs`: serve the points of the `ordinal`-th sweep call.
        case worker(ordinal: Int)
    }
    public var mode: Mode = .run
    public var jobs = 1
    /// This process's slice of the grid (1-based index, count).
    public var shard: (index: Int, count: Int)?
    /// Shard count the plan shows totals for (`--plan --shards n`).
    public var planShards: Int?
    /// Run again the points recorded in the errors file.
    public var retryFailed = false
    /// When the results file was written by a different body: set it aside and run every point.
    public var restart = false
    /// The script file, which `--jobs` workers run again up to the sweep.
    public var scriptPath: String?
    /// The arguments after the script's file (its `args`), which workers are given too.
    public var scriptArguments: [String] = []
    public init() {}
}

/// One point of a sweep: its record (the body's argument) and its identity in the CSV (the cells
/// of its axes: networks, pruners and functions by name, numbers as the language prints them).
struct SweepPoint {
    let values: Record
    let keys: [String]
    /// The model, pruner and sparsity the point names (what its cost is estimated from).
    let workload: Workload
    let cost: PointCost

    struct Workload {
        var model: String?, pruner: String?, sparsity: Double?
        /// The model's outputs, from a dataset or `classes` field (10 when none).
        var classes = 10
    }

    var label: String { zip(values.names, keys).map { "\($0)=\($1)" }.joined(separator: " ") }
}

/// What running one point gave.
enum PointResult {
    case ok(names: [String], cells: [String], seconds: Double)
    case failed(message: String, seconds: Double)

    var seconds: Double {
        switch self { case .ok(_, _, let s), .failed(_, let s): return s }
    }
}

/// The sweep behind `sweep(points, path, fn)`: resumes from the results file, records failures
/// in `<results>.errors.csv`, and runs the rest here, in worker processes, or as one shard.
final class SweepRun {
    let interpreter: Interpreter
    var settings: SweepSettings
    let points: [SweepPoint]
    /// The axes' CSV columns: the grid's names, except `pruner`, written as the paper's `pruning`.
    let axes: [String]
    /// The grid's own axis names (the fields of each point's record).
    let axisFields: [String]
    /// The axis columns of the files this process writes: `axes`, or those of an existing
    /// results file written before `pruner` became `pruning`.
    var fileAxes: [String]
    /// Write raw counts under mge's names instead of the paper's normalised columns.
    var normalized = true
    let body: Value
    /// The body's fingerprint and train calls (SweepBody.swift).
    let bodyInfo: SweepBody
    let resultsPath: String
    let ordinal: Int
    /// Where this process writes: the results file, or its shard file.
    let targetPath: String
    var errorsPath: String { Self.errorsPath(targetPath) }
    /// Field columns after the axes, known from the file or from the first point that ran.
    var fields: [String]?
    /// Points with a row, and recorded errors (key line → message).
    var done: [String: [String]] = [:]
    var errors: [String: String] = [:]
    /// Whether this run has recorded its body in the target's meta file.
    var metaWritten = false

    init(interpreter: Interpreter, points: [Record], path: String, body: Value, ordinal: Int) throws {
        self.interpreter = interpreter
        self.settings = interpreter.sweepSettings
        self.body = body
        self.bodyInfo = SweepBody(body)
        self.resultsPath = path
        self.ordinal = ordinal
        guard let first = points.first else {
            throw RuntimeError("bad argument #1 to 'sweep' (the grid has no points; nothing would run)")
        }
        axisFields = first.names
        axes = Self.axisColumns(first.names)
        fileAxes = axes
        guard !axes.isEmpty else { throw RuntimeError("bad argument #1 to 'sweep' (points have no fields; use grid(name: [values], …))") }
        var seen: [String: Int] = [:]
        var built: [SweepPoint] = []
        for (i, p) in points.enumerated() {
            guard p.names == axisFields else {
                throw RuntimeError("bad argument #1 to 'sweep' (point \(i + 1) has fields \(p.names.joined(separator: ", ")); the first has \(axisFields.joined(separator: ", ")))")
            }
            var keys: [String] = []
            for (name, v) in p.fields {
                guard let cell = Self.keyCell(v) else {
                    throw RuntimeError("bad argument #1 to 'sweep' (point \(i + 1): '\(name)' is a \(v.typeName); an axis value must be a number, string, bool, model, pruner, dataset or function)")
                }
                keys.append(cell)
            }
            let line = keys.joined(separator: "\u{1F}")
            if let j = seen[line] {
                throw RuntimeError("bad argument #1 to 'sweep' (points \(j + 1) and \(i + 1) are the same point: \(zip(axes, keys).map { "\($0)=\($1)" }.joined(separator: " ")))")
            }
            seen[line] = i
            let workload = Self.workload(p)
            built.append(SweepPoint(values: p, keys: keys, workload: workload,
                                    cost: SweepCost.estimate(model: workload.model, sparsity: workload.sparsity, pruner: workload.pruner,
                                                             classes: workload.classes)))
        }
        self.points = built
        if let shard = settings.shard {
            targetPath = Self.shardPath(path, index: shard.index, count: shard.count)
        } else {
            targetPath = path
        }
    }

    /// A point's identity from its axis cells. Model and dataset names count in either spelling
    /// (`resnet20` and `Resnet-20`), so a results file written before the paper's spellings resumes.
    static func key(_ keys: [String]) -> String {
        keys.map { PaperTable.modelLabel($0) ?? PaperTable.datasetLabel($0) ?? $0 }.joined(separator: "\u{1F}")
    }

    /// The axes' column names: the paper's `pruning` for an axis named `pruner` (unless the grid
    /// also has a `pruning` axis).
    static func axisColumns(_ names: [String]) -> [String] {
        names.map { $0 == "pruner" && !names.contains("pruning") ? "pruning" : $0 }
    }

    // MARK: - Naming

    /// `results.csv` → `results.errors.csv`.
    static func errorsPath(_ path: String) -> String { stem(path) + ".errors.csv" }

    /// `results.csv` → `results.csv.meta`: which body computed the file (SweepMeta).
    static func metaPath(_ path: String) -> String { path + ".meta" }

    /// `results.csv` → `results.shard-2-of-3.csv`.
    static func shardPath(_ path: String, index: Int, count: Int) -> String { stem(path) + ".shard-\(index)-of-\(count).csv" }

    static func stem(_ path: String) -> String { path.hasSuffix(".csv") ? String(path.dropLast(4)) : path }

    /// A point's CSV identity for one axis value; nil for values that have none (lists, graphs…).
    static func keyCell(_ v: Value) -> String? {
        switch v {
        // Models and datasets as the paper spells them (Resnet-20, CIFAR-10), as append_csv writes them.
        case .builtin(let b) where ModelZoo.names.contains(b.name): return PaperTable.modelLabel(b.name) ?? b.name
        case .builtin(let b) where PaperTable.datasetLabel(b.name) != nil: return PaperTable.datasetLabel(b.name) ?? b.name
        case .builtin(let b): return b.name
        case .function(let f): return f.name
        case .native(let p as PrunerObject): return p.pruner.name
        case .native(let n as NetworkObject): return PaperTable.modelLabel(n.modelName) ?? n.modelName
        case .native(let d as DatasetObject):
            // "CIFAR-10 train" names the split too; the column wants the dataset.
            return PaperTable.datasetLabel(String(d.dataset.name.split(separator: " ").first ?? "")) ?? d.dataset.name
        case .string(let s): return s.contains("\n") ? nil : s
        case .int, .float, .bool: return Display.plain(v)
        case .none: return ""
        default: return nil
        }
    }

    /// What the point's cost is estimated from: the model it names (a model builtin, a network or
    /// a name), its pruner, its `sparsity` and its dataset (the class count).
    static func workload(_ p: Record) -> SweepPoint.Workload {
        var model: String?, pruner: String?, sparsity: Double?, classes = 10
        for (name, v) in p.fields {
            switch v {
            case .builtin(let b) where ModelZoo.names.contains(b.name): model = b.name
            case .builtin(let b) where datasetClassCounts[b.name] != nil: classes = datasetClassCounts[b.name] ?? classes
            case .native(let n as NetworkObject): model = n.modelName
            case .native(let q as PrunerObject): pruner = q.pruner.name
            case .native(let d as DatasetObject): classes = d.dataset.classes
            case .string(let s) where ModelZoo.names.contains(s): model = s
            case .string(let s) where datasetClassCounts[s] != nil: classes = datasetClassCounts[s] ?? classes
            default: break
            }
            if name == "sparsity", let d = v.asDouble { sparsity = d }
            if name == "classes", case .int(let c) = v, c >= 1, c <= 100_000 { classes = c }
        }
        return SweepPoint.Workload(model: model, pruner: pruner, sparsity: sparsity, classes: classes)
    }

    // MARK: - Running

    /// Runs the sweep as the settings say and returns its results (one record per point with a row).
    func run() throws -> Value {
        switch settings.mode {
        case .plan:
            try loadExisting()
            let changed = bodyChange()
            if changed != nil { done = [:]; errors = [:] }
            plan(bodyChanged: changed)
            fflush(stdout)
            exit(0)
        case .merge:
            try merge()
            return try results()
        case .worker(let target) where target == ordinal:
            serve() // never returns
        case .worker:
            // An earlier sweep of the script: the coordinator already ran it; only read it.
            try loadExisting()
            return try results()
        case .run:
            try loadExisting()
            try checkBody()
            if fileAxes != axisFields {
                interpreter.writeError("note: the axis 'pruner' is written as the paper's column 'pruning' (name the axis pruning: to have one name throughout)\n")
            }
            let mine = settings.shard.map { shard in
                let owner = SweepCost.shards(costs: points.map(\.cost.seconds), count: shard.count)
                return points.indices.filter { owner[$0] == shard.index - 1 }
            } ?? Array(points.indices)
            let pending = mine.filter { i in
                let k = Self.key(points[i].keys)
                return done[k] == nil && (errors[k] == nil || settings.retryFailed)
            }
            try execute(pending, of: mine.count, previouslyFailed: mine.filter { i in
                let k = Self.key(points[i].keys)
                return done[k] == nil && errors[k] != nil && !settings.retryFailed
            }.count)
            return try results()
        }
    }

    /// Reads the target's rows and errors, refusing files written by a different sweep.
    func loadExisting() throws {
        if let contents = try SweepFiles.read(targetPath) {
            let start = Array(contents.header.prefix(axes.count))
            if start == axisFields, start != axes {
                // Written before the `pruner` axis became the paper's `pruning` column: keep its layout.
                fileAxes = axisFields
            } else if start != axes {
                throw RuntimeError("\(targetPath) was written by a different sweep: its columns start \(start.joined(separator: ",")), this sweep's axes are \(axes.joined(separator: ",")); give another file name")
            }
            fields = Array(contents.header.dropFirst(axes.count))
            for row in contents.rows { done[Self.key(Array(row.prefix(axes.count)))] = row }
        }
        if let contents = try SweepFiles.read(errorsPath) {
            if contents.header == axisFields + ["error"], axisFields != axes, fileAxes == axisFields || done.isEmpty {
                fileAxes = axisFields
            } else if contents.header != fileAxes + ["error"] {
                throw RuntimeError("\(errorsPath) was written by a different sweep: its columns are \(contents.header.joined(separator: ",")), expected \((fileAxes + ["error"]).joined(separator: ","))")
            }
            for row in contents.rows { errors[Self.key(Array(row.prefix(axes.count)))] = row.last ?? "" }
        }
        for k in done.keys { errors[k] = nil }
    }

    /// Runs `pending` (indices into `points`) and records each outcome as it arrives; `total`
    /// points are this process's, `previouslyFailed` of the skipped ones have only an error.
    /// Prints a summary (also when interrupted) and adds the points left without a row to
    /// `interpreter.sweepFailures`, which makes mge-script exit non-zero.
    func execute(_ pending: [Int], of total: Int, previouslyFailed: Int = 0) throws {
        let start = Date()
        let skipped = total - pending.count
        if skipped > 0 {
            let failedNote = previouslyFailed > 0 ? " (\(previouslyFailed) of them failed earlier: --retry-failed or retry_failed: true runs them again)" : ""
            interpreter.writeError("sweep \(targetPath): resuming: \(skipped) of \(total) points already done\(failedNote), \(pending.count) to run\n")
        }
        let progress = ProgressBar(label: "sweep", total: pending.count, unit: "points")
        var failed = 0, ran = 0
        var slowest: (seconds: Double, index: Int)?
        var firstFailure: (index: Int, message: String)?
        let available = SweepCost.availableBytes()
        // Nothing is written until one point's record has been checked against the results file
        // (`checkFirstRow`): failures before it are held in memory, so a sweep refused for its
        // fields leaves no trace in either file.
        var held: [(Int, PointResult)] = []
        var checked = false
        func finish(_ i: Int, _ result: PointResult) throws {
            if !checked {
                guard case .ok(let names, _, _) = result else { held.append((i, result)); return }
                try checkFirstRow(names)
                checked = true
                let before = held
                held = []
                for (j, r) in before { try store(j, r) }
            }
            try store(i, result)
        }
        func store(_ i: Int, _ result: PointResult) throws {
            let stored = try record(i, result)
            ran += 1
            if case .failed(let message, _) = stored {
                failed += 1
                if firstFailure == nil { firstFailure = (i, message) }
            }
            if stored.seconds > (slowest?.seconds ?? -1) { slowest = (stored.seconds, i) }
            if failed > 0 { progress.setNote("\(failed) failed") }
            progress.advance()
            if !progress.isDrawing {
                let outcome: String
                switch stored {
                case .ok: outcome = formatDuration(stored.seconds)
                case .failed(let message, _): outcome = "FAILED: \(message)"
                }
                interpreter.writeError("sweep [\(ran)/\(pending.count)] \(points[i].label)  \(outcome)\n")
            }
        }
        func summarize(interrupted: Bool) {
            progress.finish()
            var summary = "sweep \(targetPath): \(interrupted ? "interrupted after " : "")\(ran) run, \(skipped) skipped, \(failed) failed"
            let earlier = settings.retryFailed ? 0 : previouslyFailed
            if earlier > 0 { summary += ", \(earlier) failed earlier" }
            if failed + earlier > 0 { summary += " (see \(errorsPath))" }
            summary += ", wall \(formatDuration(Date().timeIntervalSince(start)))"
            if let slowest { summary += ", slowest \(points[slowest.index].label) \(formatDuration(slowest.seconds))" }
            if interrupted { summary += "; run the same command again to resume" }
            interpreter.writeError(summary + "\n")
            if let firstFailure, progress.isDrawing || failed > 1 {
                interpreter.writeError("  first failure: \(points[firstFailure.index].label): \(firstFailure.message)\n")
            }
            interpreter.sweepFailures[errorsPath] = failed + earlier
        }
        do {
            // A point that can never fit in memory is refused before anything runs.
            var runnable: [Int] = []
            for i in pending {
                if let available, points[i].cost.known, points[i].cost.bytes > available {
                    try store(i, .failed(message: "refused: needs about \(formatBytes(points[i].cost.bytes)) of memory, the machine has \(formatBytes(available)) available", seconds: 0))
                } else {
                    runnable.append(i)
                }
            }
            if settings.jobs > 1, runnable.count > 1 {
                try runInWorkers(runnable, available: available, finish: finish)
            } else {
                for i in runnable {
                    try Cancellation.check()
                    try finish(i, try runHere(i))
                }
            }
            for (j, r) in held { try store(j, r) } // every point failed: nothing to check them against
            held = []
        } catch let error where Self.isInterruption(error) {
            // The points held back (none had a row yet to check the file against) are kept:
            // their errors are as true as if the run had ended.
            if !held.isEmpty, (try? SweepFiles.read(targetPath)) == nil {
                for (j, r) in held { try? store(j, r) }
            }
            summarize(interrupted: true)
            throw error
        } catch {
            progress.finish()
            throw error
        }
        summarize(interrupted: false)
    }

    static func isInterruption(_ error: Error) -> Bool {
        if error is InterruptedError { return true }
        if let failure = error as? Failure { return failure.interrupted }
        return false
    }

    /// The first row about to be written, checked before anything is: its fields must be those of
    /// the results file (when it has a header), must not repeat an axis, and must not be empty.
    func checkFirstRow(_ names: [String]) throws {
        if names.isEmpty {
            throw RuntimeError("the sweep's function returned an empty record; it must return the fields to write, e.g. topometrics(g) or {accuracy: a}")
        }
        if let fields, fields != names, names.filter({ !PaperTable.markerColumns.flatMap(\.columns).contains($0) }) == fields {
            throw RuntimeError("\(targetPath) was written before mge marked motif estimates: its rows lack \(PaperTable.markerColumns.flatMap(\.columns).joined(separator: " and ")) (whether each motif value is an estimate), which new rows have; give another file name")
        }
        if let fields, fields != names {
            throw RuntimeError("\(targetPath) was written by a different sweep: the function returned the fields \(names.joined(separator: ",")), but \(targetPath) has the columns \(fields.joined(separator: ",")); give another file name")
        }
        let clash = names.filter { axes.contains($0) || axisFields.contains($0) }
        guard clash.isEmpty else {
            throw RuntimeError("the function's record has the field \(clash.map { "'\($0)'" }.joined(separator: ", ")), which is also an axis of the grid; rename one of them")
        }
    }

    /// Calls the body on one point in this process. Errors in the body become a failed result;
    /// Ctrl-C and a body that returns no record stop the sweep.
    func runHere(_ i: Int) throws -> PointResult {
        let savedError = interpreter.writeError, savedProgress = ProgressBar.forceEnabled
        interpreter.writeError = { _ in } // per-call timing notes would scroll the sweep's bar away
        ProgressBar.forceEnabled = false
        defer { interpreter.writeError = savedError; ProgressBar.forceEnabled = savedProgress }
        let start = Date()
        let value: Value
        do {
            value = try interpreter.call(body, [.record(points[i].values)])
        } catch let failure as Failure {
            if failure.interrupted { throw failure }
            // Where in the body (or a function it called): file:line:col, as the terminal shows
            // errors; the file by its name alone, so the rows do not depend on where the script
            // was run from (shards on other nodes, slurm-sweep's absolute paths).
            let located = failure.diagnostic.point.map { point -> String in
                let (line, column) = point.source.lineAndColumn(of: point.offset)
                return "\((point.source.name as NSString).lastPathComponent):\(line):\(column): \(failure.diagnostic.message)"
            } ?? failure.diagnostic.message
            return .failed(message: located, seconds: Date().timeIntervalSince(start))
        } catch let error as InterruptedError {
            throw error
        } catch {
            return .failed(message: "\(error)", seconds: Date().timeIntervalSince(start))
        }
        let seconds = Date().timeIntervalSince(start)
        guard case .record(let r) = value else {
            throw RuntimeError("the sweep's function returned \(value.typeName) for \(points[i].label); it must return a record, e.g. topometrics(g)")
        }
        do {
            let (names, cells) = try Self.row(r, normalized: normalized)
            return .ok(names: names, cells: cells, seconds: seconds)
        } catch let error as RuntimeError {
            return .failed(message: error.message, seconds: seconds)
        }
    }

    /// The record's columns and cells: its topometrics in the paper's layout (nodes, edges, the
    /// normalised metrics under the paper's column names with motifs_estimated/motifs_sample
    /// beside motif, compat) whatever else it holds, then its other fields in its order. With
    /// `normalized` false the metrics keep mge's names and raw counts. A record without
    /// topometrics is written field by field.
    static func row(_ r: Record, normalized: Bool = true) throws -> ([String], [String]) {
        var names: [String] = [], cells: [String] = []
        var rest: [(name: String, value: Value)] = r.fields.map { ($0.0, $0.1) }
        if let layout = try MetricsBinding.paperLayout(r, normalized: normalized, blame: { RuntimeError("the returned record: \($0)") }) {
            for (name, v) in layout.metrics.fields {
                names.append(name)
                if normalized, let d = v.asDouble {
                    cells.append(PaperTable.cell(d, column: name))
                } else {
                    cells.append(MetricsBinding.csvCell(v) ?? "")
                }
            }
            rest = layout.extras
        }
        for (name, v) in rest {
            guard let cell = MetricsBinding.csvCell(v) else {
                throw RuntimeError("the returned record's field '\(name)' is a \(v.typeName); a CSV cell holds a number, string, bool or none")
            }
            names.append(name)
            cells.append(cell)
        }
        return (names, cells)
    }

    /// Writes one outcome: a row in the target, or a line in the errors file. Returns the outcome
    /// as stored (a row whose columns differ from the others becomes a failure).
    @discardableResult
    func record(_ i: Int, _ result: PointResult) throws -> PointResult {
        let point = points[i]
        let k = Self.key(point.keys)
        try writeMetaOnce()
        switch result {
        case .ok(let names, let cells, let seconds):
            // The first row was checked against the file (`checkFirstRow`); a later point whose
            // record has other fields is that point's failure.
            if let fields, fields != names {
                let message = "the function returned the fields \(names.joined(separator: ",")), but \(targetPath) has the columns \(fields.joined(separator: ","))"
                return try record(i, .failed(message: message, seconds: seconds))
            }
            if fields == nil { fields = names }
            try SweepFiles.append(targetPath, header: fileAxes + names, row: point.keys + cells)
            done[k] = point.keys + cells
            if errors.removeValue(forKey: k) != nil { try rewriteErrors() }
            return result
        case .failed(let message, _):
            let flat = message.replacingOccurrences(of: "\n", with: " ")
            let existed = errors[k] != nil
            errors[k] = flat
            if existed { try rewriteErrors() } else { try SweepFiles.append(errorsPath, header: fileAxes + ["error"], row: point.keys + [flat]) }
            return result
        }
    }
    func rewriteErrors() throws {
        let rows = points.compactMap { p in errors[Self.key(p.keys)].map { p.keys + [$0] } }
        if rows.isEmpty {
            unlink(errorsPath)
        } else {
            try SweepFiles.rewrite(errorsPath, header: fileAxes + ["error"], rows: rows)
        }
    }

    /// The results as records in grid order: the point's own values, then its row's cells
    /// (numbers as numbers, empty cells as none).
    func results() throws -> Value {
        var out: [Value] = []
        for p in points {
            guard let row = done[Self.key(p.keys)], let fields else { continue }
            var r = p.values
            for (name, cell) in zip(fields, row.dropFirst(axes.count)) { r[name] = Self.parse(cell) }
            out.append(.record(r))
        }
        return .list(out)
    }

    static func parse(_ cell: String) -> Value {
        if cell.isEmpty { return .none }
        if let i = Int(cell) { return .int(i) }
        if let d = Double(cell), cell.first != "n", cell.first != "i" { return .float(d) }
        return .string(cell)
    }
}

/// The sweep's files through the one results writer (ResultsCSV: whole rows under a lock, fsync'd).
enum SweepFiles {
    /// The table, or nil when the file does not exist or is empty. A file whose last row lacks
    /// its line end (the machine stopped mid-write) is refused rather than read short.
    static func read(_ path: String) throws -> ResultsCSV.Table? {
        guard let attributes = try? FileManager.default.attributesOfItem(atPath: path),
              let size = attributes[.size] as? Int, size > 0 else { return nil }
        let table = try ResultsCSV.read(path: path)
        if let handle = FileHandle(forReadingAtPath: path) {
            defer { try? handle.close() }
            try? handle.seek(toOffset: UInt64(size - 1))
            if handle.readData(ofLength: 1) != Data("\n".utf8) {
                throw RuntimeError("the last row of \(path) is incomplete (the machine stopped while writing it?); delete that line and run again")
            }
        }
        return table.header.isEmpty ? nil : table
    }

    static func append(_ path: String, header: [String], row: [String]) throws {
        try ResultsCSV.append(path: path, columns: header, row: Dictionary(zip(header, row), uniquingKeysWith: { first, _ in first }))
    }

    static func rewrite(_ path: String, header: [String], rows: [[String]]) throws {
        try ResultsCSV.write(ResultsCSV.Table(header: header, rows: rows), to: path)
    }
}

/// "512 MB", "1.5 GB".
func formatBytes(_ bytes: Int) -> String {
    let b = Double(bytes)
    if bytes >= 1 << 30 { return String(format: "%.1f GB", b / Double(1 << 30)) }
    if bytes >= 1 << 20 { return String(format: "%.0f MB", b / Double(1 << 20)) }
    return String(format: "%.0f kB", b / 1024)
}
