import Foundation
import Kernels

// `mge-script --jobs N`: the points of a sweep run in N worker processes. Each worker is
// `mge-script --sweep-worker <ordinal> script.mge`: it runs the script again up to the same
// sweep call, announces the sweep's fingerprint, then runs the points it is sent and replies
// with their rows; only the coordinator writes the files.

extension SweepRun {
    /// Identity of the sweep a worker reached: axes and every point's cells (FNV-1a 64).
    var fingerprint: String {
        var hash: UInt64 = 0xcbf29ce484222325
        for byte in (axes + points.map { Self.key($0.keys) }).joined(separator: "\n").utf8 {
            hash = (hash ^ UInt64(byte)) &* 0x100000001b3
        }
        return "\(ordinal):\(points.count):\(String(hash, radix: 16))"
    }

    func runInWorkers(_ indices: [Int], available: Int?, finish: (Int, PointResult) throws -> Void) throws {
        guard let script = settings.scriptPath, script != "-" else {
            throw RuntimeError("--jobs needs the script in a file (workers run it again); it was read from stdin")
        }
        let executable = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        // The workers share the cores (cores / jobs threads each, so N workers never oversubscribe
        // them); no result depends on the thread count (Parallel's chunks are fixed by the problem
        // and OpenBLAS runs one thread), so the rows are those of one process.
        let threads = max(1, Parallel.cores / settings.jobs)
        let pool = WorkerPool(executable: executable,
                              arguments: ["--sweep-worker", String(ordinal), "--sweep-threads", String(threads), script]
                                  + settings.scriptArguments,
                              environment: ["OPENBLAS_NUM_THREADS": "1"])
        let expected = fingerprint
        try pool.run(indices.map { WorkerPool.Job(id: $0, bytes: points[$0].cost.bytes) },
                     workers: settings.jobs, memoryBudget: available.map { $0 * 9 / 10 },
                     checkReady: { got in
                         got == expected ? nil : "a worker process reached a different sweep (fingerprint \(got), expected \(expected)): the script must build the same points every time it runs"
                     },
                     started: { _ in },
                     finished: { i, outcome in
                         switch outcome {
                         case .died(let reason):
                             try finish(i, .failed(message: reason, seconds: 0))
                         case .reply(let text):
                             try finish(i, try Self.decodeReply(text))
                         }
                     })
    }

    /// The worker side: announce the sweep, then run each point index read from stdin and
    /// reply with its row or error. Exits when stdin closes.
    func serve() -> Never {
        interpreter.write = { _ in } // stdout carries the protocol
        ProgressBar.forceEnabled = false
        fputs(WorkerPool.readyLine(fingerprint), stdout)
        fflush(stdout)
        while let line = readLine() {
            guard let i = Int(line.trimmingCharacters(in: .whitespaces)), points.indices.contains(i) else { continue }
            var reply: [String: Any]
            do {
                switch try runHere(i) {
                case .ok(let names, let cells, let seconds): reply = ["names": names, "cells": cells, "seconds": seconds]
                case .failed(let message, let seconds): reply = ["error": message, "seconds": seconds]
                }
            } catch let failure as Failure where !failure.interrupted {
                reply = ["fatal": failure.diagnostic.message]
            } catch let error as RuntimeError {
                reply = ["fatal": error.message]
            } catch {
                exit(130)
            }
            let data = (try? JSONSerialization.data(withJSONObject: reply)) ?? Data("{\"error\":\"unencodable reply\"}".utf8)
            fputs(WorkerPool.doneLine(String(decoding: data, as: UTF8.self)), stdout)
            fflush(stdout)
        }
        exit(0)
    }

    static func decodeReply(_ text: String) throws -> PointResult {
        guard let object = try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any] else {
            return .failed(message: "the worker's reply could not be read", seconds: 0)
        }
        let seconds = object["seconds"] as? Double ?? 0
        if let fatal = object["fatal"] as? String { throw RuntimeError(fatal) }
        if let message = object["error"] as? String { return .failed(message: message, seconds: seconds) }
        guard let names = object["names"] as? [String], let cells = object["cells"] as? [String], names.count == cells.count else {
            return .failed(message: "the worker's reply had no row", seconds: seconds)
        }
        return .ok(names: names, cells: cells, seconds: seconds)
    }
}
