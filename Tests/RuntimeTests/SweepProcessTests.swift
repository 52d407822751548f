import Foundation
import Kernels
import XCTest

/// Sweeps driven through the built `mge-script`, as a user runs them: killed and resumed,
/// split into shards and merged, run in worker processes. Each test works in its own folder.
final class SweepProcessTests: XCTestCase {
    var folder: URL!
    var binary: URL!

    override func setUpWithError() throws {
        binary = try XCTUnwrap(TestPaths.product("mge-script"), "build mge-script first (swift build)")
        folder = FileManager.default.temporaryDirectory.appendingPathComponent("mge-sweep-test-\(getpid())-\(name.filter(\.isLetter))")
        try? FileManager.default.removeItem(at: folder)
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(at: folder)
    }

    /// 24 points of a few milliseconds of interpreter work each; point n = 5 throws.
    static let script = """
        points = grid(n: range(0, 12), kind: ["a", "b"])
        rows = sweep(points, "results.csv", fn (p) {
            if p.n == 5 and p.kind == "b" { error("point " + str(p.n) + p.kind + " fails on purpose") }
            s = 0
            for i in range(40000) { s = s + (i % (p.n + 2)) }
            return {total: s, root: sqrt(p.n + 0.5), label: p.kind + "," + str(p.n)}
        })
        print(len(rows))
        """

    func write(_ text: String, _ name: String = "sweep.mge") throws {
        try text.write(to: folder.appendingPathComponent(name), atomically: true, encoding: .utf8)
    }

    func run(_ arguments: [String], in directory: URL? = nil, environment: [String: String] = [:]) throws -> ProcessResult {
        try runProcess(binary, arguments + ["sweep.mge"], directory: directory ?? folder, timeout: 120, environment: environment)
    }

    func table(_ name: String, in directory: URL? = nil) throws -> ResultsCSV.Table {
        try ResultsCSV.read(path: (directory ?? folder).appendingPathComponent(name).path)
    }

    func text(_ name: String, in directory: URL? = nil) throws -> String {
        try String(contentsOf: (directory ?? folder).appendingPathComponent(name), encoding: .utf8)
    }

    /// An uninterrupted one-process run in a folder of its own: the reference.
    func referenceRun() throws -> URL {
        let reference = folder.appendingPathComponent("reference")
        try FileManager.default.createDirectory(at: reference, withIntermediateDirectories: true)
        try Self.script.write(to: reference.appendingPathComponent("sweep.mge"), atomically: true, encoding: .utf8)
        let result = try run([], in: reference)
        XCTAssertEqual(result.status, 1, "a point failed: " + result.stderr)
        XCTAssertEqual(result.stdout, "23\n")
        return reference
    }

    func testThrowingPointIsRecordedAndTheSweepFinishes() throws {
        try write(Self.script)
        let first = try run([])
        XCTAssertEqual(first.status, 1, "a point failed: the exit status says so. " + first.stderr)
        XCTAssertEqual(first.stdout, "23\n")
        XCTAssertEqual(try table("results.csv").rows.count, 23)
        // The error names the line and column in the body, in the file and in the terminal.
        XCTAssertEqual(try text("results.errors.csv"), "n,kind,error\n5,b,sweep.mge:3:37: point 5b fails on purpose\n")
        XCTAssertTrue(first.stderr.contains("FAILED: sweep.mge:3:37: point 5b fails on purpose"), first.stderr)
        XCTAssertTrue(first.stderr.contains("24 run, 0 skipped, 1 failed (see results.errors.csv)"), first.stderr)
        XCTAssertTrue(first.stderr.contains("mge-script: 1 sweep point failed (the errors, with file:line:col, are in results.errors.csv)"), first.stderr)
        // A re-run skips everything, the failed point included, and says so; the point still has
        // no row, so the status stays 1. --retry-failed runs only that one.
        let again = try run([])
        XCTAssertEqual(again.status, 1, again.stderr)
        XCTAssertTrue(again.stderr.contains("resuming: 24 of 24 points already done (1 of them failed earlier"), again.stderr)
        XCTAssertTrue(again.stderr.contains("0 run, 24 skipped"), again.stderr)
        let retry = try run(["--retry-failed"])
        XCTAssertTrue(retry.stderr.contains("1 run, 23 skipped"), retry.stderr)
        XCTAssertEqual(try table("results.csv").rows.count, 23)
        // The body edited (the failure fixed): refused before any point, even with --retry-failed,
        // since the 23 rows were computed by the old body; --restart runs every point again.
        try write(Self.script.replacingOccurrences(of: "p.n == 5 and", with: "p.n == 99 and"))
        let refused = try run(["--retry-failed"])
        XCTAssertEqual(refused.status, 70, refused.stderr)
        XCTAssertTrue(refused.stderr.contains("computed by a different sweep function"), refused.stderr)
        XCTAssertTrue(refused.stderr.contains("restart: true"), refused.stderr)
        XCTAssertEqual(refused.stdout, "")
        XCTAssertEqual(try table("results.csv").rows.count, 23, "a refused run writes nothing")
        let fixed = try run(["--restart"])
        XCTAssertEqual(fixed.status, 0, fixed.stderr)
        XCTAssertEqual(fixed.stdout, "24\n", fixed.stderr)
        XCTAssertTrue(fixed.stderr.contains("24 run, 0 skipped, 0 failed"), fixed.stderr)
        XCTAssertEqual(try table("results.csv").rows.count, 24)
        XCTAssertEqual(try table("results.before-restart.csv").rows.count, 23, "the old rows are set aside, not lost")
        XCTAssertFalse(FileManager.default.fileExists(atPath: folder.appendingPathComponent("results.errors.csv").path))
        // --restart with the body unchanged resumes as usual.
        let resumed = try run(["--restart"])
        XCTAssertTrue(resumed.stderr.contains("0 run, 24 skipped"), resumed.stderr)
    }

    /// SIGKILL at random moments (some runs with --jobs 2), resumed until the sweep completes:
    /// every row parses, no duplicate, none lost, values as in an uninterrupted run.
    ///
    /// The moments follow this machine's speed now (a fraction of the uninterrupted run's wall
    /// time, moved later while kills land before any row is written), so a loaded machine does
    /// not turn every attempt into a kill during start-up; the sweep then runs to its end. At least
    /// one kill must land between rows of a run that had written some, else nothing was tested.
    func testKilledAtRandomMomentsAndResumedEqualsAnUninterruptedRun() throws {
        let started = Date()
        let reference = try referenceRun()
        let duration = max(0.05, Date().timeIntervalSince(started))
        try write(Self.script)
        var generator = SystemRandomNumberGenerator()
        var kills = 0, midRunKills = 0, earliest = 0.01
        func rows() throws -> Int {
            FileManager.default.fileExists(atPath: folder.appendingPathComponent("results.csv").path) ? try table("results.csv").rows.count : 0
        }
        for attempt in 0 ..< 60 where midRunKills < 6 {
            let before = try rows()
            let process = Process()
            process.executableURL = binary
            process.arguments = (attempt % 3 == 2 ? ["--jobs", "2"] : []) + ["sweep.mge"]
            process.currentDirectoryURL = folder
            process.standardOutput = FileHandle.nullDevice
            process.standardError = FileHandle.nullDevice
            try process.run()
            let latest = max(earliest * 2, 0.7 * duration)
            usleep(UInt32(Double.random(in: earliest ... latest, using: &generator) * 1e6))
            var killed = false
            if process.isRunning {
                kill(process.processIdentifier, SIGKILL)
                killed = true
                kills += 1
            }
            process.waitUntilExit()
            let after = try rows()
            // Every intermediate file parses and holds no duplicate.
            if after > 0 {
                let keys = try table("results.csv").rows.map { $0[0] + "," + $0[1] }
                XCTAssertEqual(Set(keys).count, keys.count, "a duplicate row after kill \(kills)")
            }
            if killed, after > before, after < 23 { midRunKills += 1 }
            if killed, after == before { earliest = min(0.5 * duration, earliest * 1.5) }  // killed during start-up: later next time
            if !killed, midRunKills > 0 { break }
            if !killed {
                // Finished before any kill landed mid-run: start again from nothing.
                for name in ["results.csv", "results.errors.csv", "results.csv.meta"] { try? FileManager.default.removeItem(at: folder.appendingPathComponent(name)) }
            }
        }
        XCTAssertGreaterThan(midRunKills, 0, "no kill landed while the sweep was writing rows (\(kills) kills): the test did not test anything")
        // Resume to the end, uninterrupted (status 1: one point fails on purpose).
        let last = try run([])
        XCTAssertEqual(last.status, 1, last.stderr)
        let got = try table("results.csv"), want = try table("results.csv", in: reference)
        XCTAssertEqual(got.header, want.header)
        XCTAssertEqual(got.rows.count, 23)
        XCTAssertEqual(Set(got.rows.map { $0[0] + "," + $0[1] }).count, 23, "duplicate rows")
        XCTAssertEqual(got.rows.map { $0.joined(separator: "|") }.sorted(), want.rows.map { $0.joined(separator: "|") }.sorted())
        XCTAssertEqual(try table("results.errors.csv").rows, try table("results.errors.csv", in: reference).rows)
        print("sweep kill test: \(kills) kills, \(midRunKills) of them between rows, before the sweep finished")
    }

    /// Three shards run separately and merged give the one-process file, byte for byte.
    func testThreeShardsMergedEqualTheOneProcessRun() throws {
        let reference = try referenceRun()
        try write(Self.script)
        let merge0 = try run(["--merge"])
        XCTAssertEqual(merge0.status, 70)
        XCTAssertTrue(merge0.stderr.contains("no shard files"), merge0.stderr)
        var shardRows = 0
        for i in 1 ... 3 {
            let result = try run(["--shard", "\(i)/3"])
            let failingShard = try table("results.shard-\(i)-of-3.csv").rows.count + ((try? table("results.shard-\(i)-of-3.errors.csv").rows.count) ?? 0)
                > table("results.shard-\(i)-of-3.csv").rows.count
            XCTAssertEqual(result.status, failingShard ? 1 : 0, result.stderr)
            shardRows += try table("results.shard-\(i)-of-3.csv").rows.count
            if i == 2 {
                let early = try run(["--merge"])
                XCTAssertEqual(early.status, 70, "a merge with a shard missing must refuse")
                XCTAssertTrue(early.stderr.contains("no file for shard 3"), early.stderr)
            }
        }
        XCTAssertEqual(shardRows, 23, "the shards are disjoint and cover the grid")
        let merged = try run(["--merge"])
        XCTAssertEqual(merged.status, 1, "the merged sweep has a failed point: " + merged.stderr)
        XCTAssertEqual(merged.stdout, "23\n")
        XCTAssertEqual(try text("results.csv"), try text("results.csv", in: reference))
        XCTAssertEqual(try text("results.errors.csv"), try text("results.errors.csv", in: reference))
        // A point in two shards is refused, with nothing merged.
        let one = try text("results.shard-1-of-3.csv").split(separator: "\n")[1]
        let two = folder.appendingPathComponent("results.shard-2-of-3.csv")
        try (try String(contentsOf: two, encoding: .utf8) + one + "\n").write(to: two, atomically: true, encoding: .utf8)
        try FileManager.default.removeItem(at: folder.appendingPathComponent("results.csv"))
        let duplicate = try run(["--merge"])
        XCTAssertEqual(duplicate.status, 70)
        XCTAssertTrue(duplicate.stderr.contains("in more than one shard"), duplicate.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: folder.appendingPathComponent("results.csv").path))
    }

    /// --jobs 2 writes the same rows as --jobs 1 (in the order the points finish).
    func testJobsTwoWritesTheRowsOfJobsOne() throws {
        let reference = try referenceRun()
        try write(Self.script)
        let result = try run(["--jobs", "2"])
        XCTAssertEqual(result.status, 1, result.stderr)
        XCTAssertEqual(result.stdout, "23\n")
        let got = try table("results.csv"), want = try table("results.csv", in: reference)
        XCTAssertEqual(got.header, want.header)
        XCTAssertEqual(got.rows.map { $0.joined(separator: "|") }.sorted(), want.rows.map { $0.joined(separator: "|") }.sorted())
        XCTAssertEqual(try text("results.errors.csv"), try text("results.errors.csv", in: reference))
    }

    func testPlanRunsNothing() throws {
        try write("""
            rows = sweep(grid(model: [resnet20, conv6], sparsity: [0.9, 0.98]), "results.csv", fn (p) { error("ran"); return {x: 1} })
            print("after")
            """)
        let plan = try run(["--plan", "--shards", "2"])
        XCTAssertEqual(plan.status, 0, plan.stderr)
        XCTAssertTrue(plan.stdout.contains("4 points, 0 already done, 4 to run"), plan.stdout)
        XCTAssertTrue(plan.stdout.contains("Resnet-20  0.98"), plan.stdout)
        XCTAssertTrue(plan.stdout.contains("1 process:"), plan.stdout)
        XCTAssertTrue(plan.stdout.contains("2 shards:"), plan.stdout)
        XCTAssertFalse(plan.stdout.contains("after"), "the plan stops the script")
        XCTAssertFalse(FileManager.default.fileExists(atPath: folder.appendingPathComponent("results.csv").path))
        XCTAssertFalse(FileManager.default.fileExists(atPath: folder.appendingPathComponent("results.errors.csv").path))
    }

    /// A plan's rows: the axis cells of each point, with its estimated seconds and the part of
    /// them that is training.
    static func planRows(_ stdout: String) -> [(cells: [String], total: Double, train: Double)] {
        func seconds(_ text: String) -> Double? {
            let parts = text.split(separator: " ")
            if parts.count == 2, let v = Double(parts[0]), let unit = ["s": 1.0, "ms": 1e-3, "µs": 1e-6][String(parts[1])] { return v * unit }
            let m = text.split(separator: "m")
            if m.count == 2, let minutes = Double(m[0]), let rest = Double(m[1].dropLast()) { return minutes * 60 + rest }
            return nil
        }
        var rows: [(cells: [String], total: Double, train: Double)] = []
        for line in stdout.split(separator: "\n") where line.hasPrefix("  ") {
            let columns = line.split(separator: " ", omittingEmptySubsequences: true).map(String.init)
            // cells..., total (2 tokens or 1), train (2 or 1), memory (2)
            var values: [Double] = [], i = 0, cells: [String] = []
            while i < columns.count {
                if i + 1 < columns.count, let v = seconds(columns[i] + " " + columns[i + 1]) { values.append(v); i += 2; continue }
                if columns[i].contains("m"), columns[i].hasSuffix("s"), let v = seconds(columns[i]) { values.append(v); i += 1; continue }
                if values.isEmpty { cells.append(columns[i]) }
                i += 1
            }
            if values.count == 2 { rows.append((cells, values[0], values[1])) }
        }
        return rows
    }

    /// The plan counts training when the body trains: epochs × the data's images (a dataset
    /// call on a point's field sized by its split: TinyImageNet's 100,000 images against
    /// CIFAR-10's 50,000), plus a test: set's evaluation after every epoch. Structural checks
    /// only (ratios of one plan's own estimates), never timings.
    func testPlanCountsTrainingByEpochsImagesAndTestSet() throws {
        let script = """
            small = synthetic(n: 32)
            rows = sweep(grid(model: [resnet20], dataset: [cifar10, tinyimagenet], sparsity: [0.99], epochs: [1, 3]), "results.csv", fn (p) {
                net = p.model(seed: 0)
                prune(net, erk, p.sparsity, seed: 0)
                if p.epochs > 0 { train(net, p.dataset(), epochs: p.epochs, batch: 32, test: TEST) }
                return {x: 1}
            })
            """
        try write(script.replacingOccurrences(of: "TEST", with: "small"))
        let plan = try run(["--plan"])
        XCTAssertEqual(plan.status, 0, plan.stderr)
        XCTAssertTrue(plan.stdout.contains("build + prune + train (what the function calls)"), plan.stdout)
        XCTAssertFalse(plan.stdout.contains("note:"), "the plan sizes every train argument here: " + plan.stdout)
        let rows = Self.planRows(plan.stdout)
        XCTAssertEqual(rows.count, 4, plan.stdout)
        func train(_ dataset: String, _ epochs: String) -> Double {
            rows.first { $0.cells.contains(dataset) && $0.cells.last == epochs }?.train ?? .nan
        }
        for dataset in ["CIFAR-10", "tinyimagenet"] {
            XCTAssertGreaterThan(train(dataset, "1"), 0, plan.stdout)
            // 3 epochs cost 3x one, less one fixed cost (small beside a 50,000-image epoch).
            // The table rounds to 0.1 s above a minute: compare against that, not a ratio's digits.
            let one = train(dataset, "1"), three = train(dataset, "3")
            XCTAssertTrue(three > 2.5 * one && three <= 3 * one + 0.2, "3 epochs \(three) s vs 1 epoch \(one) s: " + plan.stdout)
        }
        let tiny = train("tinyimagenet", "1"), cifar = train("CIFAR-10", "1")
        XCTAssertTrue(tiny > 1.8 * cifar && tiny <= 2 * cifar + 0.2, "TinyImageNet \(tiny) s vs CIFAR-10 \(cifar) s: " + plan.stdout)
        for row in rows { XCTAssertGreaterThanOrEqual(row.total, row.train, plan.stdout) }
        // A 10,000-image test set evaluated after each epoch adds to the training's time.
        try write(script.replacingOccurrences(of: "TEST", with: "cifar10(split: \"test\")").replacingOccurrences(of: "p.dataset()", with: "small"))
        let evaluated = Self.planRows(try run(["--plan"]).stdout)
        try write(script.replacingOccurrences(of: ", test: TEST", with: "").replacingOccurrences(of: "p.dataset()", with: "small"))
        let plain = Self.planRows(try run(["--plan"]).stdout)
        XCTAssertEqual(evaluated.count, 4)
        XCTAssertEqual(plain.count, 4)
        for (e, p) in zip(evaluated, plain) {
            // 32 training images per epoch against 10,000 evaluated: evaluation dominates.
            XCTAssertGreaterThan(e.train, 5 * p.train, "\(e) vs \(p)")
        }
    }

    /// The plan is a fixed function of the sweep times the machine's speed: at a given speed
    /// (MGE_PLAN_SPEED) two processes print the same table; twice the speed factor doubles every
    /// time; more kept weights cost more (lower sparsity, ERK's denser early layers over
    /// uniform's unrolled edges), and more epochs more training. Never a timing.
    func testPlanIsDeterministicAndOrdered() throws {
        try write("""
            data = synthetic(n: 64)
            rows = sweep(grid(model: [resnet20], pruner: [uniform, erk], sparsity: [0.9, 0.99], epochs: [1, 2]), "results.csv", fn (p) {
                net = p.model(seed: 0)
                prune(net, p.pruner, p.sparsity, seed: 0)
                train(net, data, epochs: p.epochs, batch: 32)
                return topometrics(unroll(net))
            })
            """)
        func plan(_ speed: String) throws -> (text: String, rows: [(cells: [String], total: Double, train: Double)]) {
            let result = try run(["--plan"], environment: ["MGE_PLAN_SPEED": speed])
            XCTAssertEqual(result.status, 0, result.stderr)
            // The totals line names the load average and the --jobs line the memory available,
            // which move between the runs.
            let text = result.stdout.split(separator: "\n").filter { !$0.contains("load ") && !$0.contains("available") }.joined(separator: "\n")
            return (text, Self.planRows(result.stdout))
        }
        let first = try plan("1"), second = try plan("1"), doubled = try plan("2")
        XCTAssertEqual(first.text, second.text)
        XCTAssertEqual(first.rows.count, 8, first.text)
        XCTAssertTrue(first.text.contains("build + prune + unroll + topometrics + train"), first.text)
        XCTAssertFalse(first.text.contains("note:"), "resnet20 by uniform and erk is calibrated: " + first.text)
        // Printed with 2 decimals below a minute, 0.1 s above: twice the speed factor is twice
        // the printed time up to that rounding.
        for (a, b) in zip(first.rows, doubled.rows) {
            let resolution = a.total >= 30 ? 0.1 : 0.01
            XCTAssertLessThanOrEqual(abs(b.total - 2 * a.total), 3 * resolution, "\(a) vs \(b)")
        }
        func row(_ pruner: String, _ sparsity: String, _ epochs: String) -> (total: Double, train: Double) {
            let r = first.rows.first { $0.cells.contains(pruner) && $0.cells.contains(sparsity) && $0.cells.last == epochs }
            return (r?.total ?? .nan, r?.train ?? .nan)
        }
        for pruner in ["uniform", "erk"] {
            for epochs in ["1", "2"] {
                XCTAssertGreaterThan(row(pruner, "0.9", epochs).total, row(pruner, "0.99", epochs).total, first.text)
            }
            for sparsity in ["0.9", "0.99"] {
                XCTAssertGreaterThan(row(pruner, sparsity, "2").train, row(pruner, sparsity, "1").train, first.text)
            }
        }
    }

    /// The case: a global the body reads (epochs: 1 became 5) changes its results, so
    /// the file is refused before any point runs; restart: true reruns it. Shards computed by
    /// different bodies are not merged.
    func testEditedBodyIsRefusedBeforeAnyPointAndRestartRerunsIt() throws {
        let script = """
            epochs = 1
            scale = fn (x) { return x * epochs }
            rows = sweep(grid(n: [1, 2, 3]), "results.csv", fn (p) {
                print("ran", p.n)
                return {y: scale(p.n)}
            })
            print(rows[-1].y)
            """
        try write(script)
        XCTAssertEqual(try run([]).stdout, "ran 1\nran 2\nran 3\n3\n")
        let meta = try text("results.csv.meta")
        XCTAssertTrue(meta.contains("function: sweep.mge:3:"), meta)
        // Edits elsewhere in the script (a comment, a line above) do not count.
        try write("# a comment\n" + script + "\nprint(\"after\")")
        let same = try run([])
        XCTAssertEqual(same.stdout, "3\nafter\n", same.stderr)
        XCTAssertTrue(same.stderr.contains("resuming: 3 of 3 points already done"), same.stderr)
        for edited in [script.replacingOccurrences(of: "epochs = 1", with: "epochs = 5"),
                       script.replacingOccurrences(of: "x * epochs", with: "x * epochs * 2"),
                       script.replacingOccurrences(of: "print(\"ran\", p.n)", with: "print(\"run\", p.n)")] {
            try write(edited)
            let refused = try run([])
            XCTAssertEqual(refused.status, 70, refused.stderr)
            XCTAssertEqual(refused.stdout, "", "refused before any point")
            XCTAssertTrue(refused.stderr.contains("results.csv holds 3 rows computed by a different sweep function"), refused.stderr)
            XCTAssertTrue(refused.stderr.contains("Give another file name to keep both, or pass restart: true"), refused.stderr)
        }
        try write(script.replacingOccurrences(of: "epochs = 1", with: "epochs = 5").replacingOccurrences(of: "\n})", with: "\n}, restart: true)"))
        let restarted = try run([])
        XCTAssertEqual(restarted.status, 0, restarted.stderr)
        XCTAssertEqual(restarted.stdout, "ran 1\nran 2\nran 3\n15\n")
        XCTAssertEqual(try table("results.csv").rows.map { $0[1] }, ["5", "10", "15"])
        XCTAssertEqual(try table("results.before-restart.csv").rows.map { $0[1] }, ["1", "2", "3"])

        // Shards of different bodies: --merge refuses, naming the shard.
        try write(script)
        XCTAssertEqual(try run(["--shard", "1/2"]).status, 0)
        try write(script.replacingOccurrences(of: "epochs = 1", with: "epochs = 7"))
        XCTAssertEqual(try run(["--shard", "2/2"]).status, 0)
        let merge = try run(["--merge"])
        XCTAssertEqual(merge.status, 70, merge.stderr)
        XCTAssertTrue(merge.stderr.contains("results.shard-1-of-2.csv (body"), merge.stderr)
        XCTAssertTrue(merge.stderr.contains("nothing was merged"), merge.stderr)
    }

    /// Ctrl-C (SIGINT) during a sweep: it stops between points and still prints its summary.
    func testInterruptedSweepPrintsItsSummary() throws {
        try write("""
            rows = sweep(grid(n: range(0, 4000)), "results.csv", fn (p) {
                s = 0
                for i in range(20000) { s = s + i }
                return {s: s + p.n}
            })
            """)
        let process = Process()
        process.executableURL = binary
        process.arguments = ["sweep.mge"]
        process.currentDirectoryURL = folder
        let errors = Pipe()
        process.standardOutput = FileHandle.nullDevice
        process.standardError = errors
        try process.run()
        // Interrupt once some rows exist.
        let results = folder.appendingPathComponent("results.csv").path
        for _ in 0 ..< 600 where ((try? FileManager.default.attributesOfItem(atPath: results))?[.size] as? Int ?? 0) < 200 { usleep(20_000) }
        kill(process.processIdentifier, SIGINT)
        let stderr = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        XCTAssertEqual(process.terminationStatus, 130, stderr)
        XCTAssertTrue(stderr.contains("sweep results.csv: interrupted after "), stderr)
        XCTAssertTrue(stderr.contains("run the same command again to resume"), stderr)
    }

    func testUsageErrors() throws {
        try write(Self.script)
        for bad in [["--jobs", "0"], ["--shard", "4/3"], ["--shard", "x"], ["--shard", "1/2", "--merge"], ["--jobs"]] {
            let result = try run(bad)
            XCTAssertEqual(result.status, 64, "\(bad): \(result.stderr)")
        }
    }
}
