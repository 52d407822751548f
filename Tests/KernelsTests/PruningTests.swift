import XCTest
@testable import Kernels

final class PruningTests: XCTestCase {
    private func resnet20(seed: UInt64 = 0) -> Network { Network(architecture: ModelZoo.resnet(depth: 20, classes: 10), seed: seed) }

    func testNamesAndReferenceDefaults() {
        XCTAssertEqual(Pruner.names, ["snip", "grasp", "synflow", "prospr", "uniform", "er", "erk", "dense"])
        for name in Pruner.names { XCTAssertEqual(Pruner.named(name)?.name, name) }
        XCTAssertNil(Pruner.named("magnitude"))
        XCTAssertEqual(Pruner.named("grasp"), .grasp(GraspOptions(samplesPerClass: 25, temperature: 200, reinitialise: true)))
        XCTAssertEqual(Pruner.named("synflow"), .synflow(SynflowOptions(rounds: 100)))
        XCTAssertEqual(Pruner.named("prospr"), .prospr(ProsprOptions(steps: 3, learningRate: 0.5, momentum: 0.9, batch: 512)))
        XCTAssertEqual(Pruner.named("snip"), .snip(SnipOptions(batch: 128)))
        XCTAssertEqual(Pruner.synflow().keepRule, .iterativeRemoveLowest(rounds: 100))
    }

    /// Bad input throws a clear error and leaves weights and masks as they were.
    func testRefusalsLeaveTheNetworkUnchanged() throws {
        let net = resnet20()
        let before = net.parameters, masksBefore = net.masks
        let data = try Dataset.synthetic(classes: 10, n: 8)
        let cases: [(Pruner, Double, Dataset?, String)] = [
            (.erk, 1.0, nil, "[0, 1)"), (.erk, -0.1, nil, "[0, 1)"), (.uniform, .nan, nil, "[0, 1)"),
            (.dense, 0.5, nil, "dense keeps every weight"),
            (.snip(), 0.9, nil, "none was given"),
            (.snip(SnipOptions(batch: 0)), 0.9, data, "batch"),
            (.synflow(SynflowOptions(rounds: 0)), 0.9, nil, "rounds"),
            (.prospr(ProsprOptions(momentum: 1)), 0.9, data, "momentum"),
            (.snip(), 0.9, try Dataset.synthetic(classes: 100, n: 8), "100 classes"),
            (.erk, 0.9, try Dataset.synthetic(classes: 100, n: 8), "100 classes"),
            (.grasp(GraspOptions(samplesPerClass: 0)), 0.9, data, "samples_per_class"),
            (.grasp(), 0.9, nil, "none was given"),
            (.prospr(), 0.9, nil, "none was given"),
        ]
        for (pruner, sparsity, data, phrase) in cases {
            XCTAssertThrowsError(try prune(net, pruner, sparsity: sparsity, data: data), "\(pruner) \(sparsity)") { error in
                XCTAssertTrue("\(error)".contains(phrase), "\(pruner): '\(error)' lacks '\(phrase)'")
            }
            XCTAssertEqual(net.parameters, before)
            XCTAssertEqual(net.masks, masksBefore)
        }
    }

    /// compat: reference (SPEC §2, the reference's rule); the default keeps round(k·n) per layer
    /// (RandomPrunerCountTests).
    func testUniformRemovesExactlyRoundSNOverWeightsAndBiases() throws {
        let net = Network(architecture: ModelZoo.conv6(classes: 10), seed: 0)
        let weights = net.prunableCount
        let biases = net.architecture.parameters.filter { $0.role == .bias }.reduce(0) { $0 + $1.count }
        for s in [0.5, 0.9, 0.98] {
            let report = try prune(net, .uniform, sparsity: s, seed: 3, options: PruneOptions(compat: .reference))
            let total = weights + biases
            let expected = total - Int((s * Double(total)).rounded(.toNearestOrEven))
            XCTAssertEqual(report.biasesRanked, biases)
            XCTAssertEqual(report.kept + (report.biasesKept ?? -1), expected)
            XCTAssertEqual(report.kept, net.keptCount)
            XCTAssertEqual(report.params, weights)
            // Masked weights are zero on the network.
            for spec in net.architecture.prunable {
                let w = net.parameters[spec.name]!.data, m = net.masks[spec.name]!
                XCTAssertFalse(zip(w, m).contains { $1 == 0 && $0 != 0 }, spec.name)
            }
        }
    }

    func testSameSeedSameMaskDifferentSeedDifferentMask() throws {
        for pruner in [Pruner.uniform, .er, .erk] {
            let a = resnet20(), b = resnet20(), c = resnet20()
            try prune(a, pruner, sparsity: 0.9, seed: 7)
            try prune(b, pruner, sparsity: 0.9, seed: 7)
            try prune(c, pruner, sparsity: 0.9, seed: 8)
            XCTAssertEqual(a.masks, b.masks, "\(pruner)")
            XCTAssertNotEqual(a.masks, c.masks, "\(pruner)")
            for spec in a.architecture.prunable where spec.count > 500 && a.masks[spec.name]!.contains(0) {
                XCTAssertNotEqual(a.masks[spec.name], c.masks[spec.name], "\(pruner) \(spec.name) repeats across seeds")
            }
        }
    }

    func testDenseKeepsEverything() throws {
        let net = resnet20()
        try prune(net, .uniform, sparsity: 0.5)
        let report = try prune(net, .dense, sparsity: 0)
        XCTAssertEqual(report.kept, net.prunableCount)
        XCTAssertEqual(net.keptCount, net.prunableCount)
    }

    /// ER: p = ε·Σshape/Πshape; paper ε solves Σ ε·Σshape = k·N; the reference search lands one step past it.
    func testERProbabilities() throws {
        let shapes = RandomPruners.weightShapes(ModelZoo.resnet(depth: 20, classes: 10))
        let n = shapes.reduce(0.0) { $0 + Double($1.shape.reduce(1, *)) }
        let sums = shapes.reduce(0.0) { $0 + Double($1.shape.reduce(0, +)) }
        let paper = try RandomPruners.erProbabilities(shapes, sparsity: 0.95, compat: .paper)
        XCTAssertEqual(paper.epsilon * sums, 0.05 * n, accuracy: 1e-6)
        XCTAssertEqual(paper.probabilities["conv1.weight"]!, paper.epsilon * 25 / 432, accuracy: 1e-12)
        let reference = try RandomPruners.erProbabilities(shapes, sparsity: 0.95, compat: .reference)
        // Replayed by hand from the reference's loop: 72 steps end at ε = 8.0978228655…
        XCTAssertEqual(reference.epsilon, 8.097822865542915, accuracy: 1e-9)
        XCTAssertGreaterThan(abs(reference.epsilon * sums - 0.05 * n), 5, "the reference's ε is one update past the tolerance")
    }

    /// ERK: the iterative rule makes the layer(s) with the largest raw density dense one round at a time.
    func testERKDenseLayerRule() {
        // raw densities: a = 2/1 = 2 (one weight), b = (10+10)/100 = 0.2, c = (100+100)/10000 = 0.02.
        let shapes: [(name: String, shape: [Int])] = [("a", [1, 1]), ("b", [10, 10]), ("c", [100, 100])]
        let (epsilon, p) = RandomPruners.erkProbabilities(shapes, sparsity: 0.5)
        XCTAssertEqual(p["a"], 1)
        // After a is dense: ε = (0.5·100 + 0.5·10000 − 0.5·1) / (0.2·100 + 0.02·10000) = 5049.5 / 220 ≈ 22.95,
        // so b's 0.2·ε = 4.59 > 1 and b goes dense in the next round: ε = (0.5·10000 − 0.5·1 − 0.5·100) / (0.02·10000).
        XCTAssertEqual(p["b"], 1)
        let final = (0.5 * 10000 - 0.5 * 1 - 0.5 * 100) / (0.02 * 10000)
        XCTAssertEqual(epsilon, final, accuracy: 1e-12)
        XCTAssertEqual(p["c"]!, final * 0.02, accuracy: 1e-12)
        // The expected kept count then equals k·N.
        XCTAssertEqual(1 + 100 + p["c"]! * 10000, 0.5 * 10101, accuracy: 1e-9)
    }

    func testReportRowsAndScores() throws {
        let net = resnet20()
        let report = try prune(net, .erk, sparsity: 0.98, seed: 1, options: PruneOptions(keepScores: true))
        XCTAssertEqual(report.layers.map(\.layer).first, "conv1")
        XCTAssertEqual(report.layers.count, 22)
        XCTAssertEqual(report.params, 270_896)
        XCTAssertNotNil(report.epsilon)
        // Paper mode: each layer's scores rank its weights (a random permutation), every kept
        // weight above every removed one, exactly round(p·n) kept.
        let scores = try XCTUnwrap(report.scores)
        for (row, score) in zip(report.layers, scores) {
            XCTAssertEqual(row.parameter, score.name)
            let p = try XCTUnwrap(row.probability)
            let mask = net.masks[row.parameter]!
            XCTAssertEqual(Set(score.tensor.data).count, mask.count, "\(row.layer): scores are a permutation")
            let kept = zip(score.tensor.data, mask).filter { $1 == 1 }.map(\.0), removed = zip(score.tensor.data, mask).filter { $1 == 0 }.map(\.0)
            XCTAssertGreaterThan(kept.min() ?? .infinity, removed.max() ?? -.infinity, row.layer)
            XCTAssertEqual(kept.count, Int((p * Double(mask.count)).rounded(.toNearestOrEven)), row.layer)
        }
        // Reference mode: ERK's scores are the uniform draws, kept exactly where the draw is below p.
        let referenceNet = resnet20()
        let reference = try prune(referenceNet, .erk, sparsity: 0.98, seed: 1, options: PruneOptions(compat: .reference, keepScores: true))
        for (row, score) in zip(reference.layers, try XCTUnwrap(reference.scores)) {
            let p = try XCTUnwrap(row.probability)
            XCTAssertEqual(referenceNet.masks[row.parameter]!, score.tensor.data.map { Double($0) < p ? 1 : 0 }, row.layer)
        }
        for s in [0.3, 0.9] {
            for compat in [PruneCompat.paper, .reference] {
                let plain = resnet20(), scored = resnet20()
                try prune(plain, .uniform, sparsity: s, seed: 1, options: PruneOptions(compat: compat))
                let uniform = try prune(scored, .uniform, sparsity: s, seed: 1, options: PruneOptions(compat: compat, keepScores: true))
                XCTAssertEqual(plain.masks, scored.masks, "keeping scores must not change the mask")
                let scores = try XCTUnwrap(uniform.scores)
                // Reference: one global ranking over weights and biases; paper: one per layer.
                let groups = compat == .reference ? [scores.flatMap { $0.tensor.data }] : scores.map(\.tensor.data)
                for ranks in groups { XCTAssertEqual(Set(ranks).count, ranks.count, "uniform scores are a permutation (\(compat))") }
                // Every kept weight outranks every removed one (of its layer, in paper mode).
                var worst: (keptMin: Float, removedMax: Float) = (.infinity, -.infinity)
                for (name, tensor) in scores where name.hasSuffix(".weight") {
                    var keptMin = Float.infinity, removedMax = -Float.infinity
                    for (score, m) in zip(tensor.data, scored.masks[name]!) {
                        if m == 1 { keptMin = min(keptMin, score) } else { removedMax = max(removedMax, score) }
                    }
                    if compat == .paper { XCTAssertGreaterThan(keptMin, removedMax, name) }
                    worst = (min(worst.keptMin, keptMin), max(worst.removedMax, removedMax))
                }
                if compat == .reference { XCTAssertGreaterThan(worst.keptMin, worst.removedMax) }
            }
        }
    }

    // MARK: The score-function seam, driven by a data-free magnitude score (MagnitudeScore, below)


    func testScoreDriverAppliesEachKeepRule() throws {
        let s = 0.9
        for rule in [KeepRule.keepTopFloorWithTies, .removeTopFloorKeepThreshold, .keepTopCeilExact, .iterativeRemoveLowest(rounds: 5)] {
            let net = resnet20(seed: 2)
            let original = net.parameters
            let n = net.prunableCount
            let report = try prune(net, scoring: MagnitudeScore(keepRule: rule), name: "magnitude", sparsity: s)
            let magnitudes = net.architecture.prunable.flatMap { original[$0.name]!.data.map { abs($0) } }
            switch rule {
            case .keepTopFloorWithTies:
                XCTAssertEqual(report.kept, Int(Double(n) * (1 - s)))
                let keptMin = zip(magnitudes, net.architecture.prunable.flatMap { net.masks[$0.name]! }).filter { $1 == 1 }.map(\.0).min()!
                XCTAssertEqual(magnitudes.filter { $0 >= keptMin }.count, report.kept)
            case .removeTopFloorKeepThreshold:
                // Keeps everything up to the ⌊s·N⌋-th largest score: the largest ones go, so the
                // kept weights are the small ones (GraSP removes high scores).
                XCTAssertEqual(report.kept, n - Int(Double(n) * s) + 1)
            case .keepTopCeilExact:
                XCTAssertEqual(report.kept, Int((Double(n) * (1 - s)).rounded(.up)))
            case .iterativeRemoveLowest:
                var alive = n
                let a = 1 - pow(1 - s, 1.0 / 5)
                for _ in 0 ..< 5 { alive -= Int((a * Double(alive)).rounded(.toNearestOrEven)) }
                XCTAssertEqual(report.kept, alive)
            }
            XCTAssertEqual(report.kept, net.keptCount)
        }
    }

    private struct Broken: ScoreFunction {
        var scope: ScoreScope = .weights
        var keepRule: KeepRule = .keepTopCeilExact
        var poison: Float
        func scores(network: Network, alive: [String: [UInt8]], data: Dataset?, seed: UInt64) throws -> [String: [Float]] {
            var out: [String: [Float]] = [:]
            for spec in network.architecture.prunable { out[spec.name] = [Float](repeating: 1, count: spec.count) }
            out["layer2.0.conv1.weight"]![3] = poison
            return out
        }
    }

    func testNonFiniteScoresAreRefusedAndNetUnchanged() {
        let net = resnet20()
        let masks = net.masks
        XCTAssertThrowsError(try prune(net, scoring: Broken(poison: .nan), name: "broken", sparsity: 0.5)) {
            XCTAssertTrue("\($0)".contains("layer2.0.conv1.weight"), "\($0)")
        }
        XCTAssertEqual(net.masks, masks)
    }
}

/// |w| scores over the weights, for driving the score-based pruning seam without data; dead
/// entries score 0, as synflow's masked weights do, and the driver ranks alive ones only.
struct MagnitudeScore: ScoreFunction {
    var scope: ScoreScope = .weights
    var keepRule: KeepRule
    func scores(network: Network, alive: [String: [UInt8]], data: Dataset?, seed: UInt64) throws -> [String: [Float]] {
        var out: [String: [Float]] = [:]
        for spec in ScoredPruning.scoredParameters(network.architecture, scope) {
            out[spec.name] = zip(network.parameters[spec.name]!.data, alive[spec.name]!).map { $1 == 0 ? 0 : abs($0) }
        }
        return out
    }
}
