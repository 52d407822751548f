import OracleSupport
import XCTest
@testable import Kernels

/// Logits, loss and SNIP saliencies of the oracle's snip cases, recomputed from `init` weights
/// (all masks 1: SNIP scores the dense network) with training-mode batch norm.
///
/// Tolerance rules and why:
/// - logits: max |Δ| ≤ 1e-4 · max |logit| of the batch (single logits can sit near 0); loss: 1e-4 relative.
/// - saliency |g ⊙ w|: the oracle is float32 and these nets' early-layer gradients are
///   ill-conditioned in float32: PyTorch's own float32 result is 1.6e-3 (ResNet-20) and 5.4e-3
///   (ResNet-32) away from its float64 result, per layer in relative ℓ2 (measured; our Double
///   evaluation agrees with PyTorch float64 to 1e-13). So per layer we require
///   ‖ours − oracle‖/‖oracle‖ ≤ 1e-2 in Float and in Double, over all layers together ≤ 5e-3
///   (measured: 3.6e-4 ResNet-20, 3.2e-3 ResNet-32, where the oracle itself is 3.6e-3 from
///   exact), and the decision SNIP takes from the scores — the kept top 2% — must agree with the
///   oracle's masks on ≥ 99% of kept weights.
final class NNOracleTests: XCTestCase {
    struct SnipCase {
        let dir: String
        let network: Network
        let x: Tensor
        let labels: [Int]
        let logits: Tensor
        let loss: Float
        let scores: [String: Tensor]
    }

    static func snipCases() throws -> [SnipCase] {
        var cases: [SnipCase] = []
        for dir in OracleLocation.cases() where dir.contains("-snip-") {
            let net = try Oracle.network(dir, stateDict: "init", masks: false)
            let batch = try SafeTensors.readDictionary(path: dir + "/batch.safetensors")
            let scores = try SafeTensors.readDictionary(path: dir + "/scores.safetensors").mapValues(\.tensor)
            let labels = try XCTUnwrap(batch["y0"]?.integers).map { Int($0) }
            cases.append(SnipCase(dir: dir, network: net, x: try XCTUnwrap(batch["x0"]).tensor, labels: labels,
                                  logits: try XCTUnwrap(batch["logits0"]).tensor,
                                  loss: try XCTUnwrap(batch["loss0"]).tensor.data[0], scores: scores))
        }
        if OracleLocation.source == .full {
            XCTAssertEqual(cases.count, 2, "expected the ResNet-20 and ResNet-32 snip cases")
        } else {
            XCTAssertEqual(cases.count, 1, "expected the subset's ResNet-20 snip case")
        }
        return cases
    }

    func testSnipLogitsAndLossMatchOracle() throws {
        for c in try Self.snipCases() {
            let logits = try Execution.forward(c.network, x: c.x, train: true)
            XCTAssertEqual(logits.shape, c.logits.shape)
            let scale = c.logits.data.map(abs).max() ?? 1
            let worst = zip(logits.data, c.logits.data).map { abs($0 - $1) }.max() ?? .infinity
            print("oracle logits \(c.dir.split(separator: "/").last!): max |Δ| / max|logit| = \(worst / scale)")
            XCTAssertLessThanOrEqual(worst / scale, 1e-4, c.dir)
            let loss = try Execution.loss(c.network, x: c.x, labels: c.labels)
            print("oracle loss: ours \(loss) oracle \(c.loss) rel \(abs(loss - c.loss) / abs(c.loss))")
            XCTAssertEqual(loss, c.loss, accuracy: 1e-4 * abs(c.loss), c.dir)
        }
    }

    /// Relative ℓ2 distance ‖a − b‖ / ‖b‖.
    static func relative(_ a: [Double], _ b: [Double]) -> Double {
        var d = 0.0, r = 0.0
        for i in 0 ..< min(a.count, b.count) { d += (a[i] - b[i]) * (a[i] - b[i]); r += b[i] * b[i] }
        return (d / max(r, .leastNonzeroMagnitude)).squareRoot()
    }

    func testSnipSaliencyMatchesOracle() throws {
        for c in try Self.snipCases() {
            let label = String(c.dir.split(separator: "/").last ?? "")
            let (loss, grads) = try Execution.lossAndGradients(c.network, x: c.x, labels: c.labels)
            XCTAssertEqual(loss, c.loss, accuracy: 1e-4 * abs(c.loss))
            let maskGrads = try Execution.maskGradients(c.network, x: c.x, labels: c.labels)
            // The same computation in Double through the same generic code.
            let model64 = DifferentiableNetwork<Double>(c.network, parametersRequireGrad: false, masksRequireGrad: true)
            let loss64 = try model64.loss(Variable(converting: c.x), labels: c.labels)
            let names = c.network.architecture.prunable.map(\.name)
            let grads64 = try Autodiff.grad(of: loss64, wrt: names.compactMap { model64.masks[$0] })
            XCTAssertEqual(grads64.count, names.count)

            var all32: [Double] = [], all64: [Double] = [], allOracle: [Double] = []
            var worst32 = 0.0, worst64 = 0.0, worstMaskPath = 0.0
            for (name, g64) in zip(names, grads64) {
                let oracle = try XCTUnwrap(c.scores[name], name).data.map(Double.init)
                let g = try XCTUnwrap(grads[name]), w = try XCTUnwrap(c.network.parameters[name])
                let ours32 = zip(g.data, w.data).map { abs(Double($0) * Double($1)) }
                let viaMask = try XCTUnwrap(maskGrads[name]).data.map { abs(Double($0)) }
                let ours64 = g64.values.map(abs)
                let r32 = Self.relative(ours32, oracle), r64 = Self.relative(ours64, oracle)
                let rMask = Self.relative(viaMask, ours32)
                XCTAssertLessThanOrEqual(r32, 1e-2, "\(label) \(name) Float")
                XCTAssertLessThanOrEqual(r64, 1e-2, "\(label) \(name) Double")
                XCTAssertLessThanOrEqual(rMask, 1e-5, "\(label) \(name): |∂L/∂m| and |g⊙w| must agree")
                worst32 = max(worst32, r32); worst64 = max(worst64, r64); worstMaskPath = max(worstMaskPath, rMask)
                all32 += ours32; all64 += ours64; allOracle += oracle
            }
            let global32 = Self.relative(all32, allOracle), global64 = Self.relative(all64, allOracle)
            XCTAssertLessThanOrEqual(global32, 5e-3, label)
            XCTAssertLessThanOrEqual(global64, 5e-3, label)

            // SNIP's decision: keep the top k, k = the oracle's kept count.
            let masks = try SafeTensors.readDictionary(path: c.dir + "/masks.safetensors")
            let oracleKept = try names.flatMap { try XCTUnwrap(masks[$0]).floats }.map { $0 != 0 }
            let k = oracleKept.filter { $0 }.count
            let threshold = all32.sorted(by: >)[max(k - 1, 0)]
            let agree = zip(all32, oracleKept).filter { $0.0 >= threshold && $0.1 }.count
            XCTAssertGreaterThanOrEqual(Double(agree) / Double(max(k, 1)), 0.99, label)
            print("oracle saliency \(label): worst layer rel-ℓ2 Float \(worst32), Double \(worst64); all layers Float \(global32), Double \(global64); mask path vs weight path \(worstMaskPath); top-\(k) agreement \(agree)/\(k)")
        }
    }
}
