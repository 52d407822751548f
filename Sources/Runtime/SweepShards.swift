import Foundation
import Kernels

// `mge-script --plan` (estimates, nothing runs) and `mge-script --merge` (the shard files of
// `--shard i/n` joined into the results file, every point exactly once).

extension SweepRun {
    /// Prints each point's estimated time and peak memory and the totals for one process,
    /// `--jobs N` and n shards.
    func plan(bodyChanged: (hash: String, location: String)? = nil) {
        let out = interpreter.write
        if let old = bodyChanged {
            out("note: \(targetPath) was computed by a different sweep function (body \(old.hash), \(old.location)); running would be refused unless restart: true (then every point runs again, as planned below)\n")
        }
        // Times from the cost model (PlanCost) at this machine's speed now (the median of
        // three probes spread over the plan's work); the
        // static coefficients, which shards and memory use, are one machine at one load.
        // SweepPlan.swift says what each part of a point's time is.
        let load = Self.loadAverage()
        let estimator = PlanEstimator(points: points, body: bodyInfo)
        var estimates: [String: (total: Double, train: Double?)] = [:]
        for p in points { estimates[Self.key(p.keys)] = estimator.seconds(p) }
        func seconds(_ p: SweepPoint) -> Double { estimates[Self.key(p.keys)]?.total ?? p.cost.seconds }
        let todo = points.filter { done[Self.key($0.keys)] == nil }
        out("plan for \(targetPath): \(points.count) points, \(points.count - todo.count) already done, \(todo.count) to run\n")
        let parts = ["build", estimator.prunes ? "prune" : nil, estimator.measures ? "unroll + topometrics" : nil,
                     estimator.trains ? "train" : nil].compactMap { $0 }
        out("each point: \(parts.joined(separator: " + ")) (what the function calls)\n")
        for line in estimator.limitations(points) { out("  note: \(line)\n") }
        let widths = axes.indices.map { a in max(axes[a].count, points.map { $0.keys[a].count }.max() ?? 0) }
        func pad(_ s: String, _ w: Int) -> String { s + String(repeating: " ", count: max(0, w - s.count)) }
        let trainHeader = estimator.trains ? "  of it train" : ""
        out("  " + zip(axes, widths).map { pad($0, $1) }.joined(separator: "  ") + "  est. time \(trainHeader)  est. memory\n")
        for p in points {
            let status = done[Self.key(p.keys)] != nil ? "done" : p.cost.known ? "" : "(model unknown: default guess)"
            let cells = zip(p.keys, widths).map { pad($0, $1) }.joined(separator: "  ")
            let train = estimator.trains ? "  " + pad(estimates[Self.key(p.keys)]?.train.map(formatDuration) ?? "?", 11) : ""
            out("  \(cells)  \(pad(formatDuration(seconds(p)), 10))\(train)  \(pad(formatBytes(estimator.bytes(p)), 10))  \(status)\n")
        }
        let costs = todo.map(seconds)
        let jobs = settings.jobs > 1 ? settings.jobs : Parallel.cores
        out("totals (\(todo.count) points to run; times from the cost model at this machine's speed now: \(String(format: "%.2f", estimator.speed))x the calibration's, load \(load)):\n")
        out("  1 process:  \(formatDuration(costs.reduce(0, +)))\n")
        let perWorker = Self.jobsSlowdown(jobs: jobs, cores: Parallel.cores)
        let makespan = Self.listSchedule(costs.map { $0 * perWorker }, slots: min(jobs, Parallel.cores))
        let peak = todo.map(estimator.bytes).sorted(by: >).prefix(jobs).reduce(0, +)
        let available = SweepCost.availableBytes().map { " of \(formatBytes($0)) available" } ?? ""
        out("  --jobs \(jobs):  \(formatDuration(makespan)), peak memory about \(formatBytes(peak))\(available)\n")
        if let n = settings.planShards ?? settings.shard?.count {
            let owner = SweepCost.shards(costs: points.map(\.cost.seconds), count: n)
            var load = [Double](repeating: 0, count: n)
            for (i, p) in points.enumerated() where done[Self.key(p.keys)] == nil { load[owner[i]] += seconds(p) }
            out("  \(n) shards:  \(formatDuration(load.max() ?? 0)) (the largest shard; \(formatDuration(load.min() ?? 0)) the smallest)\n")
        }
    }

    /// The 1-minute load average, as /proc/loadavg gives it ("?" when unreadable).
    static func loadAverage() -> String {
        (try? String(contentsOfFile: "/proc/loadavg", encoding: .utf8))?.split(separator: " ").first.map(String.init) ?? "?"
    }

    /// A point runs this much slower beside other workers than alone, since the workers share the
    /// cores (measured on 2 cores, ResNet-20 uniform 0.98: --jobs 2 gave 1.53x the points/s of
    /// --jobs 1, i.e. each point 1.3x slower; scripts/bench-sweep jobs).
    static func jobsSlowdown(jobs: Int, cores: Int) -> Double {
        jobs <= 1 ? 1 : 1.3
    }

    /// Finishing time of `costs` handed out in order to the first free of `slots` workers.
    static func listSchedule(_ costs: [Double], slots: Int) -> Double {
        var free = [Double](repeating: 0, count: max(1, slots))
        for c in costs {
            let i = free.indices.min { free[$0] < free[$1] } ?? 0
            free[i] += c
        }
        return free.max() ?? 0
    }

    /// Joins `<results>.shard-i-of-n.csv` (and their errors files) into the results file, in grid
    /// order, after checking every point is there exactly once.
    func merge() throws {
        let dir = URL(fileURLWithPath: resultsPath).deletingLastPathComponent().path
        let base = URL(fileURLWithPath: Self.stem(resultsPath)).lastPathComponent + ".shard-"
        let names = (try? FileManager.default.contentsOfDirectory(atPath: dir.isEmpty ? "." : dir)) ?? []
        var shardFiles: [(index: Int, count: Int, path: String)] = []
        for name in names where name.hasPrefix(base) && name.hasSuffix(".csv") && !name.hasSuffix(".errors.csv") {
            let middle = name.dropFirst(base.count).dropLast(4).split(separator: "-")
            guard middle.count == 3, middle[1] == "of", let i = Int(middle[0]), let n = Int(middle[2]) else { continue }
            shardFiles.append((i, n, (dir.isEmpty ? "" : dir + "/") + name))
        }
        let counts = Set(shardFiles.map(\.count))
        guard let n = counts.first else {
            throw RuntimeError("--merge: no shard files \(Self.stem(resultsPath)).shard-i-of-n.csv beside \(resultsPath); run the shards first (mge-script --shard i/n)")
        }
        guard counts.count == 1 else {
            throw RuntimeError("--merge: shard files of different splits (\(counts.sorted().map { "of-\($0)" }.joined(separator: ", "))) beside \(resultsPath); remove the stale ones")
        }
        var rows: [String: [String]] = [:]
        var fromShard: [String: Int] = [:]
        var duplicates: [String] = []
        // Rows already in the results file count too (a merge after a partial merge).
        if let existing = try SweepFiles.read(resultsPath) {
            guard Array(existing.header.prefix(axes.count)) == axes else {
                throw RuntimeError("\(resultsPath) was written by a different sweep: its columns start \(existing.header.prefix(axes.count).joined(separator: ",")), this sweep's axes are \(axes.joined(separator: ","))")
            }
            fields = Array(existing.header.dropFirst(axes.count))
            for row in existing.rows { rows[Self.key(Array(row.prefix(axes.count)))] = row }
        }
        // Every shard must have been computed by this script's function (and the file merged
        // into, if any): rows of different bodies would not be comparable.
        var otherBodies: [String] = []
        for path in shardFiles.map(\.path) + [resultsPath] {
            if let hash = SweepMeta.read(Self.metaPath(path))?["body"], hash != bodyInfo.hash { otherBodies.append("\(path) (body \(hash))") }
        }
        guard otherBodies.isEmpty else {
            throw RuntimeError("--merge: \(otherBodies.joined(separator: ", ")) computed by a different sweep function than this script's (body \(bodyInfo.hash), \(bodyInfo.location)); nothing was merged. Rerun those shards with this script (--restart), or merge with the script that ran them")
        }
        let before = rows
        for shard in shardFiles.sorted(by: { $0.index < $1.index }) {
            guard let contents = try SweepFiles.read(shard.path) else { continue }
            let shardFields = Array(contents.header.dropFirst(axes.count))
            guard Array(contents.header.prefix(axes.count)) == axes, fields == nil || fields == shardFields else {
                throw RuntimeError("--merge: \(shard.path) has the columns \(contents.header.joined(separator: ",")), expected \((axes + (fields ?? shardFields)).joined(separator: ","))")
            }
            fields = shardFields
            for row in contents.rows {
                let k = Self.key(Array(row.prefix(axes.count)))
                if before[k] != nil { continue } // merged earlier
                if let other = fromShard[k] {
                    duplicates.append("\(row.prefix(axes.count).joined(separator: " ")) (shards \(other) and \(shard.index))")
                }
                fromShard[k] = shard.index
                rows[k] = row
            }
        }
        guard duplicates.isEmpty else {
            throw RuntimeError("--merge: \(duplicates.count) points are in more than one shard, e.g. \(duplicates.prefix(3).joined(separator: "; ")); nothing was merged")
        }
        var failed: [String: String] = [:]
        for shard in shardFiles {
            if let contents = try SweepFiles.read(Self.errorsPath(shard.path)) {
                for row in contents.rows { failed[Self.key(Array(row.prefix(axes.count)))] = row.last ?? "" }
            }
        }
        let missing = points.filter { rows[Self.key($0.keys)] == nil && failed[Self.key($0.keys)] == nil }
        guard missing.isEmpty else {
            let present = Set(shardFiles.map(\.index))
            let absent = (1 ... n).filter { !present.contains($0) }
            let hint = absent.isEmpty ? "did every shard finish?" : "no file for shard \(absent.prefix(5).map(String.init).joined(separator: ", "))\(absent.count > 5 ? ", …" : "")"
            throw RuntimeError("--merge: \(missing.count) of \(points.count) points have no row and no error (\(hint)), e.g. \(missing.prefix(3).map(\.label).joined(separator: "; ")); nothing was merged")
        }
        guard let fields else { throw RuntimeError("--merge: the shard files hold no rows (every point failed: see their .errors.csv files)") }
        let gridKeys = Set(points.map { Self.key($0.keys) })
        var ordered = points.compactMap { rows[Self.key($0.keys)] }
        ordered += rows.filter { !gridKeys.contains($0.key) }.sorted { $0.key < $1.key }.map(\.value)
        try SweepMeta.write(Self.metaPath(resultsPath), body: bodyInfo)
        metaWritten = true
        try SweepFiles.rewrite(resultsPath, header: axes + fields, rows: ordered)
        done = [:]
        for row in ordered { done[Self.key(Array(row.prefix(axes.count)))] = row }
        errors = failed.filter { done[$0.key] == nil }
        try rewriteErrors()
        let failures = errors.isEmpty ? "" : "; \(errors.count) points failed (see \(errorsPath))"
        interpreter.sweepFailures[errorsPath] = errors.count
        interpreter.writeError("merged \(shardFiles.count) shard files of \(n) into \(resultsPath): \(ordered.count) rows\(failures)\n")
    }
}
