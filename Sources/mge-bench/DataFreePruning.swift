import Foundation
import Kernels

/// Wall-clock timings of the data-free pruners (`mge-bench --data-free`, run by scripts/bench-prune).
enum DataFreePruningBenchmark {
    struct Timing: Sendable {
        var model: String
        var pruner: String
        var sparsity: Double
        var prunable: Int
        var kept: Int
        /// Median and fastest of `runs` timed calls of `prune` (network construction excluded).
        var medianSeconds: Double
        var bestSeconds: Double
        var runs: Int
    }

    /// The pruners that run without data or gradients.
    static let dataFree: [Pruner] = [.uniform, .er, .erk, .dense]

    /// Times `prune` for every model × pruner, `repeats` times each, after one untimed warm-up.
    /// `dense` runs at sparsity 0 (the only sparsity it accepts). Unknown model names throw.
    /// - Complexity: O(models · pruners · repeats · N).
    static func run(models: [String] = ModelZoo.names, pruners: [Pruner] = dataFree, sparsity: Double = 0.98,
                           repeats: Int = 5, classes: Int = 10, seed: UInt64 = 0) throws -> [Timing] {
        guard repeats > 0 else { throw PruneError.invalidOption(pruner: "bench", option: "repeats", value: "\(repeats)", requirement: "a positive count") }
        var timings: [Timing] = []
        for model in models {
            guard let architecture = ModelZoo.build(model, classes: classes) else {
                throw PruneError.invalidOption(pruner: "bench", option: "model", value: model,
                                               requirement: "one of " + ModelZoo.names.joined(separator: ", "))
            }
            let network = Network(architecture: architecture, seed: seed)
            for pruner in pruners {
                let s: Double
                if case .dense = pruner { s = 0 } else { s = sparsity }
                _ = try prune(network, pruner, sparsity: s, seed: seed)
                var seconds: [Double] = []
                var kept = 0
                let clock = ContinuousClock()
                for run in 0 ..< repeats {
                    var report: PruneReport?
                    let elapsed = try clock.measure { report = try prune(network, pruner, sparsity: s, seed: seed &+ UInt64(run)) }
                    seconds.append(Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) * 1e-18)
                    kept = report?.kept ?? 0
                }
                seconds.sort()
                timings.append(Timing(model: model, pruner: pruner.name, sparsity: s, prunable: network.prunableCount, kept: kept,
                                      medianSeconds: seconds[seconds.count / 2], bestSeconds: seconds[0], runs: repeats))
            }
        }
        return timings
    }

    /// A plain-text table of timings, one row per model × pruner.
    static func table(_ timings: [Timing]) -> String {
        var lines = ["model        pruner    sparsity   prunable      kept   median ms    best ms"]
        for t in timings {
            lines.append(String(format: "%@ %@ %8.4f %10d %9d %11.2f %10.2f",
                                t.model.padding(toLength: 12, withPad: " ", startingAt: 0),
                                t.pruner.padding(toLength: 9, withPad: " ", startingAt: 0),
                                t.sparsity, t.prunable, t.kept, t.medianSeconds * 1000, t.bestSeconds * 1000))
        }
        return lines.joined(separator: "\n")
    }
}
