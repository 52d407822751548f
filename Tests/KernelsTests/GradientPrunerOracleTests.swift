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
        for dir in Oracle.cases() where dir.contains("-\(pruner)-") {
            let expected = try Oracle.expected(dir)
            let model = try XCTUnwrap(Oracle.modelName(expected))
            let arch = try XCTUnwrap(ModelZoo.build(model, classes: Oracle.classes(expected)))
            let net = Network(architecture: arch, seed: 0)
            try net.loadStateDict(SafeTensors.read(path: dir + "/init.safetensors"))
            let batchPath = dir + "/batch.safetensors"
            let data = FileManager.default.fileExists(atPath: batchPath) ? try Dataset.fromSafeTensors(path: batchPath) : nil
            let masks = try SafeTensors.readDictionary(path: dir + "/masks.safetensors").mapValues { $0.floats.map { $0 != 0 ? UInt8(1) : 0 } }
            let scoresPath = dir + "/scores.safetensors"
            let scores = FileManager.default.fileExists(atPath: scoresPath)
                ? try SafeTensors.readDictionary(path: scoresPath).mapValues(\.tensor.data) : nil
            cases.append(Case(dir: dir, label: String(dir.split(separator: "/").last ?? ""), network: net, data: data,
                              sparsity: try XCTUnwrap(Oracle.number(expected["sparsity"])), oracleMasks: masks, oracleScores: scores))
        }
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

    func measure(_ pruner: Pruner) throws {
        Progress.forceEnabled = false
        for c in try Self.load(pruner.name) {
            let clock = ContinuousClock()
            var report: PruneReport?
            let elapsed = try clock.measure {
                report = try prune(c.network, pruner, sparsity: c.sparsity, seed: 0, data: c.data, options: PruneOptions(keepScores: true))
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

    func testMeasureSnip() throws { try measure(.snip()) }
    func testMeasureGrasp() throws { try measure(.grasp(GraspOptions(reinitialise: false))) }
    func testMeasureSynflow() throws { try measure(.synflow()) }
    func testMeasureProspr() throws { try measure(.prospr()) }
}
