import XCTest
@testable import Kernels

/// The tape-free pass against the autodiff tape on the tiny network that has every operation
/// (NNExecutionTests.tinyArchitecture): logits, gradients in both batch-norm modes, and
/// Hessian-vector products (forward-over-reverse against the tape's double backward), in Double
/// to 1e-10 and in Float to Float rounding.
final class FirstOrderPassTests: XCTestCase {
    /// The tiny network with non-trivial running statistics, its learnable parameters and a batch.
    static func setUp<S: NNScalar>(_: S.Type) throws -> (Network, DifferentiableNetwork<S>, [String], [S], [Int]) {
        let net = try NNExecutionTests.tinyNetwork(seed: 4)
        for spec in net.architecture.parameters where spec.role == .runningMean || spec.role == .runningVar {
            let isVariance = spec.role == .runningVar
            let values: [Float] = (0 ..< spec.count).map { i in
                let t = 0.1 * Double(i)
                return Float(isVariance ? 0.5 + t : t - 0.2)
            }
            try net.setParameter(spec.name, Tensor(shape: spec.shape, data: values))
        }
        let model = DifferentiableNetwork<S>(net, parametersRequireGrad: true)
        model.masks = [:]
        let names = net.architecture.parameters.map(\.name).filter { model.parameters[$0] != nil }
        let (x, labels) = NNExecutionTests.batch(5, seed: 11)
        return (net, model, names, x.data.map { S(Double($0)) }, labels)
    }

    static func pass<S: NNScalar>(_ model: DifferentiableNetwork<S>, _ names: [String],
                                  _ normalisation: FirstOrderPass<S>.Normalisation) throws -> FirstOrderPass<S> {
        var parameters: [String: [S]] = [:]
        for name in names { parameters[name] = model.parameters[name]?.values }
        return try FirstOrderPass<S>(model.architecture, parameters: parameters, runningStatistics: model.runningStatistics,
                                     normalisation: normalisation)
    }

    static func error<S: NNScalar>(_ a: [S], _ b: [S]) -> Double {
        AutodiffTests.relativeError(a.map(\.doubleValue), b.map(\.doubleValue))
    }

    func testLogitsAndGradientsMatchTheTapeInBothBatchNormModes() throws {
        let (_, model, names, x, labels) = try Self.setUp(Double.self)
        let input = Variable<Double>(uncheckedShape: [labels.count, 3, 8, 8], values: x, node: nil)
        for train in [true, false] {
            let pass = try Self.pass(model, names, train ? .batch : .running)
            let logits = try pass.forward(x, batch: labels.count)
            let tapeLogits = try model.forward(input, train: train)
            XCTAssertLessThanOrEqual(Self.error(logits, tapeLogits.values), 1e-12, "train \(train): logits")
            let loss = try Autodiff.crossEntropy(tapeLogits, labels: labels)
            // Evaluation mode gives no batch-norm weight gradients; compare the rest.
            let wanted = names.filter { train || !$0.hasPrefix("b") || !$0.hasSuffix(".weight") }
            let expected = try Autodiff.grad(of: loss, wrt: wanted.compactMap { model.parameters[$0] })
            let (value, seed, seedTangent) = try pass.crossEntropy(logits, labels: labels)
            XCTAssertNil(seedTangent)
            XCTAssertEqual(value, loss.values[0], accuracy: 1e-12)
            let gradients = try pass.backward(seed: seed, wanted: Set(wanted)).gradients
            for (name, e) in zip(wanted, expected) {
                XCTAssertLessThanOrEqual(Self.error(try XCTUnwrap(gradients[name], name), e.values), 1e-10, "train \(train): \(name)")
            }
        }
    }

    func testHessianVectorProductsMatchTheTapesDoubleBackward() throws {
        try checkHessianVectorProducts(Double.self, tolerance: 1e-10)
        try checkHessianVectorProducts(Float.self, tolerance: 1e-5)
    }

    func checkHessianVectorProducts<S: NNScalar>(_ type: S.Type, tolerance: Double) throws {
        let (_, model, names, x, labels) = try Self.setUp(S.self)
        let leaves = names.compactMap { model.parameters[$0] }
        let directions = leaves.enumerated().map { k, p in
            AutodiffTests.random(p.shape, seed: 900 + UInt64(k)).values.map { S($0) }
        }
        let input = Variable<S>(uncheckedShape: [labels.count, 3, 8, 8], values: x, node: nil)
        let loss = try model.loss(input, labels: labels, train: true)
        let vector = try zip(leaves, directions).map { try Variable<S>(shape: $0.shape, values: $1) }
        let (expectedGradient, expectedHv) = try Autodiff.hessianVectorProduct(of: loss, wrt: leaves, vector: vector)

        let pass = try Self.pass(model, names, .batch)
        let logits = try pass.forward(x, batch: labels.count, parameterTangents: Dictionary(uniqueKeysWithValues: zip(names, directions)))
        let (_, seed, seedTangent) = try pass.crossEntropy(logits, labels: labels)
        let (gradients, hv) = try pass.backward(seed: seed, seedTangent: seedTangent, wanted: Set(names))
        // Errors relative to the largest entry over all parameters: a bias right before batch
        // norm has a zero gradient and Hv, so its own scale is rounding noise.
        func worst(_ got: [String: [S]], _ expected: [Variable<S>]) throws -> Double {
            let scale = max(expected.flatMap(\.values).map { abs($0.doubleValue) }.max() ?? 0, 1e-3)
            var worst = 0.0
            for (k, name) in names.enumerated() {
                let g = try XCTUnwrap(got[name], name)
                worst = max(worst, zip(g, expected[k].values).map { abs(($0 - $1).doubleValue) }.max() ?? 0)
            }
            return worst / scale
        }
        XCTAssertLessThanOrEqual(try worst(gradients, expectedGradient), tolerance, "\(S.self) gradient")
        XCTAssertLessThanOrEqual(try worst(hv, expectedHv), tolerance, "\(S.self) Hv")
    }

    func testTangentsNeedTrainingModeAndMatchingShapes() throws {
        let (_, model, names, x, labels) = try Self.setUp(Double.self)
        let running = try Self.pass(model, names, .running)
        XCTAssertThrowsError(try running.forward(x, batch: labels.count, parameterTangents: [:]))
        let pass = try Self.pass(model, names, .batch)
        XCTAssertThrowsError(try pass.forward(x, batch: labels.count, parameterTangents: ["c1.weight": [1, 2]]))
        XCTAssertThrowsError(try pass.forward(Array(x.dropLast()), batch: labels.count))
        XCTAssertThrowsError(try pass.backward(seed: [1], wanted: []), "backward before forward")
    }
}
