import OracleSupport
import XCTest
@testable import Kernels

/// uniform, er and erk against the reference's oracle masks. The reference's RNG is not ours,
/// so masks cannot match bit for bit; instead every layer's kept count, ours and the oracle's,
/// must lie within 4 binomial standard deviations of the keep probability SPEC §2 gives, and
/// the totals must follow the reference's counting rule.
final class PruningOracleTests: XCTestCase {
    private static let cases = ["Resnet-20-CIFAR-10-er-0.95-s0", "Resnet-20-CIFAR-10-erk-0.98-s0", "Resnet-20-CIFAR-10-uniform-0.98-s0",
                                "CONV-6-CIFAR-10-erk-0.98-s0", "Wide-Resnet-28-2-CIFAR-10-erk-0.98-s0"]

    private struct Case {
        var dir: String
        var expected: [String: Any]
        var architecture: Architecture
        var pruner: Pruner
        var sparsity: Double
        var oracleMasks: [String: [UInt8]]
    }

    private func load(_ dir: String) throws -> Case {
        let name = (dir as NSString).lastPathComponent
        let expected = try OracleCase.expected(dir)
        let model = try XCTUnwrap(Oracle.modelName(expected), name)
        let architecture = try XCTUnwrap(ModelZoo.build(model, classes: Oracle.classes(expected)))
        let pruner = try XCTUnwrap(Pruner.named(expected["pruning"] as? String ?? ""), name)
        let sparsity = try XCTUnwrap(OracleCase.number(expected["sparsity"]))
        var masks: [String: [UInt8]] = [:]
        for (key, tensor) in try SafeTensors.read(path: dir + "/masks.safetensors") {
            masks[key] = tensor.floats.map { $0 != 0 ? 1 : 0 }
        }
        return Case(dir: dir, expected: expected, architecture: architecture, pruner: pruner, sparsity: sparsity, oracleMasks: masks)
    }

    /// Per-layer keep probability from SPEC §2 (er in reference mode: that is how the oracle was made).
    private func probabilities(_ c: Case, compat: PruneCompat) throws -> [String: Double] {
        let shapes = RandomPruners.weightShapes(c.architecture)
        switch c.pruner {
        case .er: return try RandomPruners.erProbabilities(shapes, sparsity: c.sparsity, compat: compat).probabilities.mapValues { min($0, 1) }
        case .erk: return RandomPruners.erkProbabilities(shapes, sparsity: c.sparsity).probabilities
        default:
            let total = ScoredPruning.scoredParameters(c.architecture, .weightsAndBiases).reduce(0) { $0 + $1.count }
            let kept = total - pythonRound(c.sparsity * Double(total))
            return Dictionary(uniqueKeysWithValues: shapes.map { ($0.name, Double(kept) / Double(total)) })
        }
    }

    /// z-scores of every layer's kept count and of the total, given probabilities.
    private func zScores(_ masks: [String: [UInt8]], _ p: [String: Double], _ architecture: Architecture,
                         label: String) -> (layers: [Double], total: Double) {
        var zs: [Double] = []
        var kept = 0.0, mean = 0.0, variance = 0.0
        for spec in architecture.prunable {
            let n = Double(spec.count)
            let q = p[spec.name] ?? -1
            let k = Double((masks[spec.name] ?? []).reduce(0) { $0 + Int($1) })
            kept += k; mean += n * q; variance += n * q * (1 - q)
            if q >= 1 {
                XCTAssertEqual(k, n, "\(label) \(spec.name) has probability 1 but is not dense")
                continue
            }
            zs.append((k - n * q) / (n * q * (1 - q)).squareRoot())
        }
        return (zs, variance > 0 ? (kept - mean) / variance.squareRoot() : 0)
    }

    func testOracleCasesArePresent() throws {
        for dir in try OracleLocation.directories(of: Self.cases) {
            XCTAssertTrue(FileManager.default.fileExists(atPath: dir + "/masks.safetensors"), dir)
        }
    }

    func testLayerDensitiesWithinFourSigmaOfSpec() throws {
        var summary: [String] = []
        for dir in try OracleLocation.directories(of: Self.cases) {
            let c = try load(dir)
            let name = (dir as NSString).lastPathComponent
            let p = try probabilities(c, compat: .reference)

            // The oracle's own masks, and its expected.json densities, agree with the spec's probability.
            let densities = try XCTUnwrap(c.expected["layer_density"] as? [String: Any], name)
            for spec in c.architecture.prunable {
                let mask = try XCTUnwrap(c.oracleMasks[spec.name], "\(name) \(spec.name)")
                let d = try XCTUnwrap(OracleCase.number(densities[spec.name]), "\(name) \(spec.name)")
                XCTAssertEqual(Double(mask.reduce(0) { $0 + Int($1) }) / Double(spec.count), d, accuracy: 1e-6, "\(name) \(spec.name)")
            }
            let oracle = zScores(c.oracleMasks, p, c.architecture, label: name + " oracle")

            // Ours: same probabilities, same statistical bar.
            let net = Network(architecture: c.architecture, seed: 0)
            let report = try prune(net, c.pruner, sparsity: c.sparsity, seed: 0, options: PruneOptions(compat: .reference))
            for row in report.layers { XCTAssertEqual(row.probability ?? -1, p[row.parameter] ?? -2, accuracy: 1e-12, row.layer) }
            let ours = zScores(net.masks, p, c.architecture, label: name + " ours")

            for (who, z) in [("oracle", oracle), ("ours", ours)] {
                for value in z.layers { XCTAssertLessThan(abs(value), 4, "\(name) \(who) layer z = \(value)") }
                XCTAssertLessThan(abs(z.total), 4, "\(name) \(who) total z = \(z.total)")
            }
            let expectedKept = c.expected["kept_params"] as? Int ?? -1
            summary.append(String(format: "%@: oracle kept %d (max |z| %.2f, total z %+.2f); ours kept %d (max |z| %.2f, total z %+.2f)",
                                  name, expectedKept, oracle.layers.map(abs).max() ?? 0, oracle.total,
                                  report.kept, ours.layers.map(abs).max() ?? 0, ours.total))

            if case .uniform = c.pruner {
                // N − round(s·N) over weights + biases: the weight-only count falls short by the kept biases.
                let ranked = ScoredPruning.scoredParameters(c.architecture, .weightsAndBiases)
                let total = ranked.reduce(0) { $0 + $1.count }
                let biases = ranked.filter { $0.role == .bias }.reduce(0) { $0 + $1.count }
                let keptOverall = total - pythonRound(c.sparsity * Double(total))
                XCTAssertEqual(report.kept + (report.biasesKept ?? -1), keptOverall)
                XCTAssertLessThanOrEqual(expectedKept, keptOverall, name)
                XCTAssertGreaterThanOrEqual(expectedKept, keptOverall - biases, name)
                summary.append("  uniform rule: N = \(total) (\(biases) biases), N − round(s·N) = \(keptOverall); oracle weights kept \(expectedKept), ours \(report.kept) + \(report.biasesKept ?? 0) biases")
            }
        }
        print(summary.joined(separator: "\n"))
    }

    /// ER in paper mode: exact ε, our masks within 4σ of its probabilities too.
    func testERPaperModeWithinFourSigma() throws {
        let c = try load(OracleLocation.directory(of: "Resnet-20-CIFAR-10-er-0.95-s0"))
        let p = try probabilities(c, compat: .paper)
        let net = Network(architecture: c.architecture, seed: 0)
        let report = try prune(net, .er, sparsity: c.sparsity, seed: 5)
        let z = zScores(net.masks, p, c.architecture, label: "er paper")
        for value in z.layers { XCTAssertLessThan(abs(value), 4) }
        XCTAssertLessThan(abs(z.total), 4)
        let sums = RandomPruners.weightShapes(c.architecture).reduce(0.0) { $0 + Double($1.shape.reduce(0, +)) }
        XCTAssertEqual(try XCTUnwrap(report.epsilon) * sums, 0.05 * Double(net.prunableCount), accuracy: 1e-6)
    }
}
