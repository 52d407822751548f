import OracleSupport
import XCTest
@testable import Kernels

/// The gradient pruners against every oracle case of theirs: `init` weights loaded, the exact
/// `batch.safetensors` inputs served through `Dataset.fromSafeTensors`, then prune and compare.
final class GradientPrunerOracleTests: XCTestCase {
    struct Case {
        let dir: String
        let label: String
        let network: Network
        let data: Dataset?
        let sparsity: Double
        let oracleMasks: [String: [UInt8]]
        let oracleScores: [String: [Float]]?
    }

    static func load(_ pruner: String) throws -> [Case] {
        var cases: [Case] = []
        for dir in OracleLocation.cases() where dir.contains("-\(pruner)-") {
            let expected = try OracleCase.expected(dir)
            let net = try Oracle.network(dir, stateDict: "init", masks: false)
            let batchPath = dir + "/batch.safetensors"
            let data = FileManager.default.fileExists(atPath: batchPath) ? try Dataset.fromSafeTensors(path: batchPath) : nil
            let masks = try SafeTensors.readDictionary(path: dir + "/masks.safetensors").mapValues { $0.floats.map { $0 != 0 ? UInt8(1) : 0 } }
            let scoresPath = dir + "/scores.safetensors"
            let scores = FileManager.default.fileExists(atPath: scoresPath)
                ? try SafeTensors.readDictionary(path: scoresPath).mapValues(\.tensor.data) : nil
            cases.append(Case(dir: dir, label: String(dir.split(separator: "/").last ?? ""), network: net, data: data,
                              sparsity: try XCTUnwrap(OracleCase.number(expected["sparsity"])), oracleMasks: masks, oracleScores: scores))
        }
        if cases.isEmpty { try OracleLocation.requireFull("the subset has no \(pruner) case") }
        XCTAssertFalse(cases.isEmpty, "no oracle case for \(pruner)")
        return cases
    }

    /// Fraction of prunable weights whose keep/remove decision equals the oracle's, and the kept counts.
    static func agreement(_ net: Network, _ oracle: [String: [UInt8]]) throws -> (fraction: Double, ours: Int, theirs: Int) {
        var same = 0, total = 0, ours = 0, theirs = 0
        for spec in net.architecture.prunable {
            let a = try XCTUnwrap(net.masks[spec.name]), b = try XCTUnwrap(oracle[spec.name], spec.name)
            for i in 0 ..< a.count { same += a[i] == b[i] ? 1 : 0; ours += Int(a[i]); theirs += Int(b[i]) }
            total += a.count
        }
        return (Double(same) / Double(max(total, 1)), ours, theirs)
    }

    /// Per layer ‖ours − oracle‖/‖oracle‖ (worst over layers), over all layers together, and
    /// the largest per-element |Δ| relative to the largest |oracle| of all layers.
    static func scoreErrors(_ report: PruneReport, _ oracle: [String: [Float]]) throws -> (worstLayer: Double, global: Double, elementOfMax: Double, worstName: String) {
        var worst = 0.0, worstName = "", d = 0.0, r = 0.0, maxDiff = 0.0, maxRef = 0.0
        for (name, tensor) in try XCTUnwrap(report.scores) {
            let b = try XCTUnwrap(oracle[name], name)
            var dl = 0.0, rl = 0.0
            for (x, y) in zip(tensor.data, b) {
                let diff = Double(x) - Double(y)
                dl += diff * diff; rl += Double(y) * Double(y)
                maxDiff = max(maxDiff, abs(diff)); maxRef = max(maxRef, abs(Double(y)))
            }
            let rel = (dl / max(rl, .leastNonzeroMagnitude)).squareRoot()
            if rel > worst { worst = rel; worstName = name }
            d += dl; r += rl
        }
        return (worst, (d / r).squareRoot(), maxDiff / maxRef, worstName)
    }

    func measure(_ pruner: Pruner, scoring: (any ScoreFunction)? = nil) throws {
        for c in try Self.load(pruner.name) {
            let clock = ContinuousClock()
            var report: PruneReport?
            let elapsed = try clock.measure {
                if let scoring {
                    report = try prune(c.network, scoring: scoring, name: pruner.name, sparsity: c.sparsity, seed: 0, data: c.data, options: PruneOptions(keepScores: true))
                } else {
                    report = try prune(c.network, pruner, sparsity: c.sparsity, seed: 0, data: c.data, options: PruneOptions(keepScores: true))
                }
            }
            let r = try XCTUnwrap(report)
            let (fraction, ours, theirs) = try Self.agreement(c.network, c.oracleMasks)
            var line = "\(c.label): mask agreement \(fraction) kept ours \(ours) oracle \(theirs) time \(elapsed)"
            if let scores = c.oracleScores {
                let e = try Self.scoreErrors(r, scores)
                line += " scores worst-layer \(e.worstLayer) (\(e.worstName)) global \(e.global) elem/max \(e.elementOfMax)"
            }
            print(line)
        }
    }

    /// SNIP, both cases. Scores: the oracle is PyTorch float32, which is itself 1.6e-3
    /// (ResNet-20) and 5.4e-3 (ResNet-32) away from float64 per layer in relative ℓ2
    /// (NNOracleTests), so per-element 1e-3 is not meaningful; the rule is per layer
    /// ‖ours − oracle‖/‖oracle‖ ≤ 1e-2 and over all layers ≤ 5e-3 (measured: worst layer 1.4e-3 /
    /// 3.0e-3 ResNet-20, 5.2e-3 / 6.3e-3 ResNet-32 depending on the BLAS kernels; all layers 3.6e-4–8.3e-4
    /// and 3.2e-3–4.0e-3). Masks: ≥ 99.9% (measured 99.993–99.996% and 99.988–99.990%).
    func testSnipMatchesOracle() throws {
        try check(.snip(), masks: 0.999, scoreLayer: 1e-2, scoreGlobal: 5e-3)
    }

    /// GraSP on the exported `init` weights (`reinitialise: false`: the oracle's scores are
    /// −w ⊙ Hg of exactly those weights — they match our float64 computation on them to the
    /// oracle's own float32 error, which re-initialised weights would not). The oracle's scores are
    /// raw (not divided by |Σ| + 1e-10). PyTorch float32 is 4.2e-3 per layer from float64 here
    /// (measured with torch on the oracle inputs), so the same per-layer rule as SNIP: ≤ 1e-2 per
    /// layer, ≤ 5e-3 over all layers (measured 2.5e-3 worst layer, 1.6e-3 all layers).
    /// Masks ≥ 99.9% (measured 99.996%).
    func testGraspMatchesOracle() throws {
        try check(.grasp(GraspOptions(reinitialise: false)), masks: 0.999, scoreLayer: 1e-2, scoreGlobal: 5e-3)
    }

    /// SynFlow, 100 rounds. Measured agreement 99.608%, and that is the ceiling: the published
    /// SynFlow code (torch.nn.utils.prune), run on the same `init` weights on a CPU in float32 or
    /// float64, gives masks exactly 99.608% equal to the oracle's, and ours equal that code's on
    /// every weight (ReferenceCodePrunerTests). The oracle came from a run we cannot reproduce
    /// (a GPU's arithmetic perturbs this iterative ranking: emulating TF32 convolutions moves
    /// 0.5% of the masks). The bound tested is what holds.
    func testSynflowMatchesOracle() throws {
        try check(.synflow(), masks: 0.995, scoreLayer: nil, scoreGlobal: nil)
    }

    /// ProsPr, 3 steps on the oracle's four batches of 128. Measured 98.69%. The float32
    /// meta-gradient through three lr-0.5 steps (the inner loss climbs 3.49 → 7.47) is dominated
    /// by rounding: PyTorch's own float32 and float64 runs of the published algorithm on these
    /// inputs agree on only 98.67% of the masks (per-layer ‖Δ‖/‖·‖ of the meta-gradients ≈ 1),
    /// PyTorch float32 reaches 99.39% of the oracle and float64 98.70%. Our double-precision
    /// path equals PyTorch float64 on every weight (ReferenceCodePrunerTests).
    func testProsprMatchesOracle() throws {
        try check(.prospr(), masks: 0.98, scoreLayer: nil, scoreGlobal: nil)
    }

    func check(_ pruner: Pruner, masks minimum: Double, scoreLayer: Double?, scoreGlobal: Double?) throws {
        for c in try Self.load(pruner.name) {
            let report = try prune(c.network, pruner, sparsity: c.sparsity, seed: 0, data: c.data, options: PruneOptions(keepScores: true))
            let (fraction, ours, theirs) = try Self.agreement(c.network, c.oracleMasks)
            var line = "oracle \(c.label): mask agreement \(fraction), kept \(ours) (oracle \(theirs))"
            XCTAssertGreaterThanOrEqual(fraction, minimum, c.label)
            if let scoreLayer, let scoreGlobal {
                let scores = try XCTUnwrap(c.oracleScores, "\(c.label) has no scores.safetensors")
                let e = try Self.scoreErrors(report, scores)
                line += ", scores worst layer \(e.worstLayer) (\(e.worstName)), all layers \(e.global), max element error / max score \(e.elementOfMax)"
                XCTAssertLessThanOrEqual(e.worstLayer, scoreLayer, "\(c.label) \(e.worstName)")
                XCTAssertLessThanOrEqual(e.global, scoreGlobal, c.label)
            }
            print(line)
        }
    }
}
