import XCTest
@testable import Kernels

/// Model execution on a tiny network that has every operation of the five models (conv with
/// bias, stride 2, depthwise, 1x1, shortcut conv, add, BN 2-d and 1-d, ReLU, max and average
/// pool, flatten, linear), checked in Double against central finite differences: gradients,
/// Hessian-vector products, and the gradient with respect to masks through unrolled SGD steps
/// (ProsPr). Tolerances as in AutodiffTests (1e-6 relative to the largest entry).
final class NNExecutionTests: XCTestCase {
    typealias V = Variable<Double>

    static func tinyArchitecture() -> Architecture {
        var b = ArchitectureBuilder(input: [3, 8, 8])
        var x = b.conv("c1", 0, out: 4, bias: true)
        x = b.relu(b.batchNorm("b1", x))
        let r1 = x
        x = b.conv("c2", x, out: 4, stride: 2, groups: 4)
        x = b.relu(b.batchNorm("b2", x))
        x = b.conv("c3", x, out: 6, kernel: 1, padding: 0)
        let shortcut = b.conv("sc", r1, out: 6, kernel: 1, stride: 2, padding: 0)
        x = b.relu(b.add(main: x, shortcut: shortcut))
        x = b.maxPool(x, kernel: 2)
        x = b.avgPool(x, kernel: 2)
        x = b.flatten(x)
        x = b.linear("l1", x, out: 5)
        x = b.relu(b.batchNorm("b3", x))
        _ = b.linear("l2", x, out: 3)
        return b.build(name: "tiny", classes: 3)
    }

    static func tinyNetwork(seed: UInt64 = 1) throws -> Network {
        let net = Network(architecture: tinyArchitecture(), seed: seed)
        // Non-trivial BN affine parameters and biases, so their gradients are exercised too.
        var rng = SeededGenerator(seed: seed + 100)
        for spec in net.architecture.parameters where spec.role == .bias || spec.role == .normWeight || spec.role == .normBias {
            let base: Double = spec.role == .normWeight ? 1 : 0
            try net.setParameter(spec.name, Tensor(shape: spec.shape, data: (0 ..< spec.count).map { _ in Float(base + 0.3 * rng.normal()) }))
        }
        return net
    }

    static func batch(_ n: Int, seed: UInt64) -> (Tensor, [Int]) {
        var rng = SeededGenerator(seed: seed)
        let x = Tensor(shape: [n, 3, 8, 8], data: (0 ..< n * 192).map { _ in Float(rng.normal()) })
        return (x, (0 ..< n).map { _ in Int(rng.next() % 3) })
    }

    static func leaves(_ model: DifferentiableNetwork<Double>) -> [(String, V)] {
        model.architecture.parameters.compactMap { spec in model.parameters[spec.name].map { (spec.name, $0) } }
    }

    /// ∂L/∂θ for every learnable parameter and Hv, in training and evaluation mode.
    func testNetworkGradientAndHessianVectorProductAgainstFiniteDifferences() throws {
        let net = try Self.tinyNetwork()
        // Running statistics away from 0/1 so evaluation mode is not the identity.
        for spec in net.architecture.parameters where spec.role == .runningMean || spec.role == .runningVar {
            try net.setParameter(spec.name, Tensor(shape: spec.shape, data: (0 ..< spec.count).map { Float(spec.role == .runningVar ? 0.5 + 0.1 * Double($0) : 0.1 * Double($0)) }))
        }
        let (xt, labels) = Self.batch(4, seed: 7)
        let model = DifferentiableNetwork<Double>(net)
        let x = V(converting: xt)
        let params = Self.leaves(model)
        for train in [true, false] {
            func loss(_ values: [V]) throws -> V {
                try model.loss(x, labels: labels, train: train, overrides: Dictionary(uniqueKeysWithValues: zip(params.map(\.0), values)))
            }
            let inputs = params.map(\.1)
            let y = try loss(inputs)
            let grads = try Autodiff.grad(of: y, wrt: inputs)
            let h = 1e-6
            var worst = 0.0
            for (k, p) in inputs.enumerated() {
                var numeric = [Double](repeating: 0, count: p.count)
                for i in 0 ..< p.count {
                    var plus = inputs, minus = inputs
                    plus[k] = AutodiffTests.replacing(p, index: i, by: h)
                    minus[k] = AutodiffTests.replacing(p, index: i, by: -h)
                    numeric[i] = (try loss(plus).values[0] - loss(minus).values[0]) / (2 * h)
                }
                let error = AutodiffTests.relativeError(grads[k].values, numeric)
                worst = max(worst, error)
                XCTAssertLessThanOrEqual(error, 1e-6, "train \(train): gradient of \(params[k].0)")
            }
            let directions = inputs.enumerated().map { AutodiffTests.random($0.element.shape, seed: 500 + UInt64($0.offset)).detached }
            let (_, hv) = try Autodiff.hessianVectorProduct(of: y, wrt: inputs, vector: directions)
            let eps = 1e-5
            func gradient(at t: Double) throws -> [V] {
                let moved = try zip(inputs, directions).map { p, v in try V(shape: p.shape, values: zip(p.values, v.values).map { $0 + t * $1 }, requiresGrad: true) }
                return try Autodiff.grad(of: try loss(moved), wrt: moved)
            }
            let gp = try gradient(at: eps), gm = try gradient(at: -eps)
            var worstHv = 0.0
            for k in 0 ..< inputs.count {
                let numeric = zip(gp[k].values, gm[k].values).map { ($0 - $1) / (2 * eps) }
                let error = AutodiffTests.relativeError(hv[k].values, numeric)
                worstHv = max(worstHv, error)
                XCTAssertLessThanOrEqual(error, 1e-6, "train \(train): Hv of \(params[k].0)")
            }
            print("tiny net train=\(train): gradient vs FD \(worst), Hv vs FD \(worstHv)")
        }
    }

    /// ProsPr: 2 SGD steps with momentum on fast weights w⊙m, meta-loss on the next batch,
    /// ∂(meta-loss)/∂m through the unrolled steps (reverse over reverse) against finite differences.
    func testMaskGradientThroughUnrolledSGDAgainstFiniteDifferences() throws {
        let net = try Self.tinyNetwork(seed: 3)
        let batches = (0 ..< 3).map { Self.batch(4, seed: 20 + UInt64($0)) }
        let model = DifferentiableNetwork<Double>(net, parametersRequireGrad: false, masksRequireGrad: true)
        let prunable = net.architecture.prunable.map(\.name)

        func metaLoss(_ masks: [V], createGraph: Bool) throws -> V {
            model.masks = Dictionary(uniqueKeysWithValues: zip(prunable, masks))
            var weights = try prunable.map { name in try XCTUnwrap(model.parameters[name]) }
            var momentum: [V]? = nil
            for (x, labels) in batches.dropLast() {
                // Step 0's weights are constants: make them leaves so the inner gradient has a target.
                let current = weights.map { $0.requiresGrad ? $0 : $0.leaf() }
                let loss = try model.loss(V(converting: x), labels: labels, overrides: Dictionary(uniqueKeysWithValues: zip(prunable, current)))
                let grads = try Autodiff.grad(of: loss, wrt: current, createGraph: createGraph)
                let buffer = try momentum.map { try zip($0, grads).map { try Autodiff.add(try Autodiff.scale($0, by: 0.9), $1) } } ?? grads
                momentum = buffer
                weights = try zip(current, buffer).map { try Autodiff.subtract($0, try Autodiff.scale($1, by: 0.5)) }
            }
            let (x, labels) = batches[batches.count - 1]
            return try model.loss(V(converting: x), labels: labels, overrides: Dictionary(uniqueKeysWithValues: zip(prunable, weights)))
        }

        let masks = try prunable.map { try XCTUnwrap(model.masks[$0]) }
        let meta = try metaLoss(masks, createGraph: true)
        let analytic = try Autodiff.grad(of: meta, wrt: masks)
        let h = 1e-6
        var worst = 0.0
        for (k, m) in masks.enumerated() {
            var numeric = [Double](repeating: 0, count: m.count)
            for i in 0 ..< m.count {
                var plus = masks, minus = masks
                plus[k] = AutodiffTests.replacing(m, index: i, by: h)
                minus[k] = AutodiffTests.replacing(m, index: i, by: -h)
                numeric[i] = (try metaLoss(plus, createGraph: false).values[0] - metaLoss(minus, createGraph: false).values[0]) / (2 * h)
            }
            let error = AutodiffTests.relativeError(analytic[k].values, numeric)
            worst = max(worst, error)
            XCTAssertLessThanOrEqual(error, 1e-6, "meta-gradient of mask \(prunable[k])")
        }
        // First-order (no graph through the inner gradients) must differ: the test sees second order.
        let firstOrder = try Autodiff.grad(of: try metaLoss(masks, createGraph: false), wrt: masks)
        XCTAssertGreaterThan(AutodiffTests.relativeError(firstOrder[0].values, analytic[0].values), 1e-3)
        print("unrolled SGD meta-gradient vs FD: \(worst)")
    }

    func testMaskedWeightsStayZeroAndGetZeroGradient() throws {
        let net = try Self.tinyNetwork()
        var rng = SeededGenerator(seed: 5)
        for spec in net.architecture.prunable {
            try net.setMask(spec.name, (0 ..< spec.count).map { _ in rng.uniform() < 0.5 ? 0 : 1 })
        }
        let (x, labels) = Self.batch(4, seed: 9)
        let grads = try Execution.gradients(net, x: x, labels: labels)
        for spec in net.architecture.prunable {
            let mask = try XCTUnwrap(net.masks[spec.name]), g = try XCTUnwrap(grads[spec.name])
            XCTAssertTrue(zip(mask, g.data).allSatisfy { $0 == 1 || $1 == 0 }, "\(spec.name): masked gradient must be exactly 0")
            XCTAssertTrue(zip(mask, g.data).contains { $0 == 1 && $1 != 0 }, "\(spec.name): kept weights get gradients")
            // An SGD update through the network's setter keeps masked weights at exactly 0.
            let w = try XCTUnwrap(net.parameters[spec.name])
            try net.setParameter(spec.name, Tensor(shape: w.shape, data: zip(w.data, g.data).map { $0 - 0.1 * $1 + 0.01 }))
            XCTAssertTrue(zip(mask, try XCTUnwrap(net.parameters[spec.name]).data).allSatisfy { $0 == 1 || $1 == 0 })
        }
        // The forward multiplies by the mask: garbage in masked positions of an override changes nothing.
        let model = DifferentiableNetwork<Float>(net, parametersRequireGrad: false)
        let reference = try model.forward(Variable(x), train: true)
        var overrides: [String: Variable<Float>] = [:]
        for spec in net.architecture.prunable {
            let mask = try XCTUnwrap(net.masks[spec.name]), w = try XCTUnwrap(net.parameters[spec.name])
            overrides[spec.name] = Variable(Tensor(shape: w.shape, data: zip(mask, w.data).map { $0 == 0 ? 1e3 : $1 }))
        }
        XCTAssertEqual(try model.forward(Variable(x), train: true, overrides: overrides).values, reference.values)
    }

    func testFloatPathAgreesWithDoublePath() throws {
        let net = try Self.tinyNetwork(seed: 4)
        let (x, labels) = Self.batch(6, seed: 11)
        let grads32 = try Execution.gradients(net, x: x, labels: labels)
        let model = DifferentiableNetwork<Double>(net)
        let params = Self.leaves(model)
        let grads64 = try Autodiff.grad(of: try model.loss(V(converting: x), labels: labels), wrt: params.map(\.1))
        // Relative to the largest entry of the whole gradient: l1.bias feeds a training-mode batch
        // norm, so its gradient is exactly 0 and Float32 leaves only rounding there.
        let scale = grads64.flatMap { $0.values.map(abs) }.max() ?? 1
        for ((name, _), g64) in zip(params, grads64) {
            let g32 = try XCTUnwrap(grads32[name]).data.map(Double.init)
            XCTAssertLessThanOrEqual((zip(g32, g64.values).map { abs($0 - $1) }.max() ?? 0) / scale, 1e-3, name)
        }
    }

    func testTrainingForwardUpdatesRunningStatisticsLikePyTorch() throws {
        var b = ArchitectureBuilder(input: [2, 3, 3])
        let bn = b.batchNorm("bn", 0)
        _ = b.linear("fc", b.flatten(bn), out: 2)
        let net = Network(architecture: b.build(name: "bn-only", classes: 2), seed: 0)
        var rng = SeededGenerator(seed: 3)
        let x = Tensor(shape: [4, 2, 3, 3], data: (0 ..< 72).map { _ in Float(2 + 3 * rng.normal()) })
        _ = try Execution.forward(net, x: x, train: true)
        for c in 0 ..< 2 {
            var values: [Double] = []
            for n in 0 ..< 4 { for i in 0 ..< 9 { values.append(Double(x.data[(n * 2 + c) * 9 + i])) } }
            let mean = values.reduce(0, +) / 36
            let unbiased = values.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / 35
            XCTAssertEqual(Double(try XCTUnwrap(net.parameters["bn.running_mean"]).data[c]), 0.1 * mean, accuracy: 1e-5)
            XCTAssertEqual(Double(try XCTUnwrap(net.parameters["bn.running_var"]).data[c]), 0.9 + 0.1 * unbiased, accuracy: 1e-5)
        }
        // Evaluation mode uses them and changes nothing.
        let before = net.parameters
        _ = try Execution.forward(net, x: x, train: false)
        XCTAssertEqual(net.parameters, before)
        // loss/gradients leave running statistics alone.
        _ = try Execution.gradients(net, x: x, labels: [0, 1, 1, 0])
        XCTAssertEqual(net.parameters, before)
    }

    func testBadInputsThrow() throws {
        let net = try Self.tinyNetwork()
        let (x, labels) = Self.batch(2, seed: 1)
        XCTAssertThrowsError(try Execution.forward(net, x: Tensor(zeros: [2, 3, 9, 8]), train: false)) { XCTAssertTrue("\($0)".contains("input"), "\($0)") }
        XCTAssertThrowsError(try Execution.loss(net, x: x, labels: [0]))
        XCTAssertThrowsError(try Execution.gradients(net, x: x, labels: labels.map { _ in 3 })) { XCTAssertTrue("\($0)".contains("label"), "\($0)") }
        XCTAssertThrowsError(try Execution.forward(net, x: Tensor(zeros: [1, 3, 8, 8]), train: true)) { XCTAssertTrue("\($0)".contains("batchNorm"), "\($0)") }
        let model = DifferentiableNetwork<Float>(net)
        XCTAssertThrowsError(try model.forward(Variable(x), train: false, overrides: ["nope.weight": Variable(x)]))
    }

    /// Every model of the zoo runs forward and backward (shapes, finite values); a small batch of 2.
    func testAllZooModelsRunForwardAndBackward() throws {
        for name in ModelZoo.names {
            let arch = try XCTUnwrap(ModelZoo.build(name, classes: 10))
            let net = Network(architecture: arch, seed: 1)
            var rng = SeededGenerator(seed: 2)
            let x = Tensor(shape: [2, 3, 32, 32], data: (0 ..< 2 * 3072).map { _ in Float(rng.normal()) })
            let logits = try Execution.forward(net, x: x, train: false)
            XCTAssertEqual(logits.shape, [2, 10], name)
            XCTAssertTrue(logits.data.allSatisfy(\.isFinite), name)
            let grads = try Execution.gradients(net, x: x, labels: [3, 7])
            XCTAssertEqual(grads.count, arch.parameters.filter { $0.role != .runningMean && $0.role != .runningVar }.count, name)
            for spec in arch.prunable {
                let g = try XCTUnwrap(grads[spec.name], "\(name) \(spec.name)")
                XCTAssertTrue(g.data.allSatisfy(\.isFinite) && g.data.contains { $0 != 0 }, "\(name) \(spec.name)")
            }
        }
    }
}
