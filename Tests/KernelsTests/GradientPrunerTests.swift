import XCTest
@testable import Kernels

/// The four gradient pruners on small networks: each score against an independent
/// computation (finite differences in Double, or a literal unrolled double backward), the
/// keep rules end to end, data handling, determinism, and that `network` is left as it was.
final class GradientPrunerTests: XCTestCase {
    typealias V = Variable<Double>


    /// A small network on CIFAR-shaped input with every kind of scored parameter (conv with
    /// and without bias, BN, linear with bias), cheap enough for debug builds.
    static func small32(classes: Int = 10, seed: UInt64 = 1) -> Network {
        var b = ArchitectureBuilder(input: [3, 32, 32])
        var x = b.conv("c1", 0, out: 4, stride: 2, bias: true)
        x = b.relu(b.batchNorm("b1", x))
        x = b.conv("c2", x, out: 6, stride: 2)
        x = b.relu(b.batchNorm("b2", x))
        x = b.avgPool(x, kernel: 8)
        x = b.flatten(x)
        _ = b.linear("fc", x, out: classes)
        return Network(architecture: b.build(name: "small32", classes: classes), seed: seed)
    }

    // MARK: SNIP

    func testSnipScoresAreAbsoluteGradientTimesWeightOnTheFirstBatch() throws {
        let net = try NNExecutionTests.tinyNetwork(seed: 5)
        let (x, labels) = NNExecutionTests.batch(6, seed: 9)
        let (x2, labels2) = NNExecutionTests.batch(6, seed: 10)
        let data = try Dataset.fromTensors([x, x2], [labels, labels2], classes: 3)
        let before = net.parameters
        let scores = try SnipScoring<Float>(options: SnipOptions()).scores(network: net, alive: [:], data: data, seed: 0)
        let gradients = try Execution.gradients(net, x: x, labels: labels)
        for spec in net.architecture.prunable {
            let g = try XCTUnwrap(gradients[spec.name]).data, w = try XCTUnwrap(before[spec.name]).data
            let expected = zip(g, w).map { abs(Double($0) * Double($1)) }
            XCTAssertLessThanOrEqual(AutodiffTests.relativeError(try XCTUnwrap(scores[spec.name]).map(Double.init), expected), 1e-5, spec.name)
        }
        XCTAssertEqual(net.parameters, before, "scoring must not touch the network")
    }

    func testSnipPruneKeepsTheTopFloorWithTiesAndIsDeterministic() throws {
        let data = try Dataset.synthetic(classes: 10, n: 300, seed: 4)
        let a = Self.small32(), b = Self.small32()
        let report = try prune(a, .snip(SnipOptions(batch: 64)), sparsity: 0.9, seed: 7, data: data, options: PruneOptions(keepScores: true))
        try prune(b, .snip(SnipOptions(batch: 64)), sparsity: 0.9, seed: 7, data: data)
        XCTAssertEqual(a.masks, b.masks, "same seed, same masks")
        let flat = try XCTUnwrap(report.scores).flatMap(\.tensor.data)
        let k = Int((Double(flat.count) * 0.1).rounded(.down))
        let threshold = try XCTUnwrap(ScoreSelection.kthLargest(flat, k))
        XCTAssertEqual(report.kept, flat.filter { $0 >= threshold }.count)
        XCTAssertGreaterThanOrEqual(report.kept, k)
        let c = Self.small32()
        try prune(c, .snip(SnipOptions(batch: 64)), sparsity: 0.9, seed: 8, data: data)
        XCTAssertNotEqual(a.masks, c.masks, "another seed draws another batch")
    }

    // MARK: GraSP

    /// −w ⊙ Hg with the Hessian-gradient product checked by central differences of the gradient.
    /// With masks (every third weight pruned): the scores equal −w ⊙ Hg computed on the tape
    /// (weights as leaves, masks as constants, Hg by double backward), to Double rounding.
    func testGraspWithMasksMatchesTheTapesDoubleBackward() throws {
        let net = try NNExecutionTests.tinyNetwork(seed: 12)
        let (x, labels) = NNExecutionTests.batch(8, seed: 13)
        let data = try Dataset.fromTensors(x, labels, classes: 3)
        let specs = net.architecture.prunable
        var alive: [String: [UInt8]] = [:]
        for spec in specs { alive[spec.name] = (0 ..< spec.count).map { $0 % 3 == 0 ? 0 : 1 } }
        let options = GraspOptions(samplesPerClass: 2, temperature: 3, reinitialise: false)
        let scores = try GraspScoring<Double>(options: options).scores(network: net, alive: alive, data: data, seed: 0)

        let sample = try PrunerData.samplesPerClass(data, perClass: 2, seed: 0)
        let halves = [PrunerData.slice(sample, 0 ..< 3), PrunerData.slice(sample, 3 ..< 6)]
        let model = DifferentiableNetwork<Double>(net, parametersRequireGrad: false)
        var leaves: [V] = []
        for spec in specs {
            let leaf = V(converting: try XCTUnwrap(net.parameters[spec.name]), requiresGrad: true)
            model.parameters[spec.name] = leaf
            model.masks[spec.name] = try V(shape: spec.shape, values: try XCTUnwrap(alive[spec.name]).map { $0 == 0 ? 0 : 1 })
            leaves.append(leaf)
        }
        func loss(_ half: Batch) throws -> V {
            try Autodiff.crossEntropy(try Autodiff.scale(try model.forward(V(converting: half.images), train: true), by: 1.0 / 3), labels: half.labels)
        }
        var g = leaves.map { [Double](repeating: 0, count: $0.count) }
        for half in halves { g = zip(g, try Autodiff.grad(of: try loss(half), wrt: leaves)).map { zip($0, $1.values).map(+) } }
        let vector = try zip(leaves, g).map { try V(shape: $0.shape, values: $1) }
        var hg = g.map { [Double](repeating: 0, count: $0.count) }
        for half in halves {
            let product = try Autodiff.hessianVectorProduct(of: try loss(half), wrt: leaves, vector: vector).hessianVector
            hg = zip(hg, product).map { zip($0, $1.values).map(+) }
        }
        for (k, spec) in specs.enumerated() {
            let expected = zip(leaves[k].values, hg[k]).map { -$0 * $1 }
            let got = try XCTUnwrap(scores[spec.name]).map(Double.init)
            // Scores come back as Float.
            XCTAssertLessThanOrEqual(AutodiffTests.relativeError(got, expected), 1e-6, spec.name)
        }
    }

    func testGraspScoreIsMinusWeightTimesHessianGradient() throws {
        let net = try NNExecutionTests.tinyNetwork(seed: 6)
        let (x, labels) = NNExecutionTests.batch(8, seed: 11)
        let data = try Dataset.fromTensors(x, labels, classes: 3)
        let options = GraspOptions(samplesPerClass: 2, temperature: 3, reinitialise: false)
        let scores = try GraspScoring<Float>(options: options).scores(network: net, alive: [:], data: data, seed: 0)

        // Independent: the sample the pruner takes, the gradient g, and Hg = (∇L(w+εg) − ∇L(w−εg))/2ε per half.
        let sample = try PrunerData.samplesPerClass(data, perClass: 2, seed: 0)
        XCTAssertEqual(sample.labels, sample.labels.sorted(), "samples are stacked class by class")
        XCTAssertEqual(sample.count, 6)
        let halves = [PrunerData.slice(sample, 0 ..< 3), PrunerData.slice(sample, 3 ..< 6)]
        let names = net.architecture.prunable.map(\.name)
        func gradient(_ half: Batch, shift: [[Double]], by epsilon: Double) throws -> [[Double]] {
            let model = DifferentiableNetwork<Double>(net, parametersRequireGrad: false)
            var leaves: [V] = []
            for (name, d) in zip(names, shift) {
                let w = try XCTUnwrap(model.parameters[name])
                let leaf = try V(shape: w.shape, values: zip(w.values, d).map { $0 + epsilon * $1 }, requiresGrad: true)
                model.parameters[name] = leaf; leaves.append(leaf)
            }
            let logits = try model.forward(V(converting: half.images), train: true)
            let loss = try Autodiff.crossEntropy(try Autodiff.scale(logits, by: 1.0 / 3), labels: half.labels)
            return try Autodiff.grad(of: loss, wrt: leaves).map(\.values)
        }
        let zero = names.map { name in [Double](repeating: 0, count: net.parameters[name]?.count ?? 0) }
        var g = zero
        for half in halves { g = zip(g, try gradient(half, shift: zero, by: 0)).map { zip($0, $1).map(+) } }
        var hg = zero
        let h = 1e-5
        for half in halves {
            let plus = try gradient(half, shift: g, by: h), minus = try gradient(half, shift: g, by: -h)
            hg = zip(hg, zip(plus, minus)).map { acc, pm in zip(acc, zip(pm.0, pm.1)).map { $0 + ($1.0 - $1.1) / (2 * h) } }
        }
        for (i, name) in names.enumerated() {
            let w = try XCTUnwrap(net.parameters[name]).data
            let expected = zip(w, hg[i]).map { -Double($0) * $1 }
            let error = AutodiffTests.relativeError(try XCTUnwrap(scores[name]).map(Double.init), expected)
            XCTAssertLessThanOrEqual(error, 2e-3, "\(name) (Float scores against a Double finite difference)")
        }
    }

    func testGraspReinitialisesBySeedUnlessToldNotTo() throws {
        let data = try Dataset.synthetic(classes: 10, n: 200, seed: 2)
        let net = Self.small32()
        let before = net.parameters
        let options = GraspOptions(samplesPerClass: 3)
        let a = try GraspScoring<Float>(options: options).scores(network: net, alive: [:], data: data, seed: 1)
        let b = try GraspScoring<Float>(options: options).scores(network: net, alive: [:], data: data, seed: 1)
        let kept = try GraspScoring<Float>(options: GraspOptions(samplesPerClass: 3, reinitialise: false)).scores(network: net, alive: [:], data: data, seed: 1)
        XCTAssertEqual(a, b, "same seed, same re-initialisation and samples")
        XCTAssertNotEqual(a, kept, "re-initialised weights score differently")
        XCTAssertEqual(net.parameters, before, "grasp scores a copy")
        let firstNet = Self.small32(), second = Self.small32()
        let first = try prune(firstNet, .grasp(options), sparsity: 0.8, seed: 3, data: data)
        try prune(second, .grasp(options), sparsity: 0.8, seed: 3, data: data)
        XCTAssertEqual(firstNet.masks, second.masks, "same seed, same masks")
        XCTAssertGreaterThanOrEqual(first.kept, first.params - Int((Double(first.params) * 0.8).rounded(.down)))
    }

    func testSamplesPerClassStopsWhenEveryClassIsFull() throws {
        // Labels 0,1,0,2,1,0,2,2 with 2 per class: the first two of each class, stacked by class.
        let labels = [0, 1, 0, 2, 1, 0, 2, 2]
        let x = Tensor(shape: [8, 1, 1, 1], data: (0 ..< 8).map(Float.init))
        let data = try Dataset.fromTensors(x, labels, classes: 3)
        let sample = try PrunerData.samplesPerClass(data, perClass: 2, seed: 0)
        XCTAssertEqual(sample.labels, [0, 0, 1, 1, 2, 2])
        XCTAssertEqual(sample.images.data, [0, 2, 1, 4, 3, 6])
        // A class short of samples contributes what it has.
        let few = try PrunerData.samplesPerClass(data, perClass: 3, seed: 0)
        XCTAssertEqual(few.labels, [0, 0, 0, 1, 1, 2, 2, 2])
    }

    // MARK: SynFlow

    /// |θ ⊙ ∂R/∂θ| on the linearised network (|θ| everywhere, eval-mode BN, all-ones input),
    /// ∂R/∂θ by central differences.
    func testSynflowScoresAgainstFiniteDifferences() throws {
        let net = try NNExecutionTests.tinyNetwork(seed: 8)
        // Non-trivial running statistics: synflow takes their absolute values too.
        for spec in net.architecture.parameters where spec.role == .runningMean {
            try net.setParameter(spec.name, Tensor(shape: spec.shape, data: (0 ..< spec.count).map { Float($0 % 3) * -0.2 }))
        }
        let before = net.parameters
        let scored = ScoredPruning.scoredParameters(net.architecture, .weightsAndBiases)
        var alive: [String: [UInt8]] = [:]
        for spec in scored { alive[spec.name] = (0 ..< spec.count).map { $0 % 5 == 0 ? 0 : 1 } }
        let scores = try SynflowScoring<Double>(options: SynflowOptions()).scores(network: net, alive: alive, data: nil, seed: 0)
        XCTAssertEqual(net.parameters, before, "synflow must leave the signs (and everything else) alone")

        func flow(_ override: String, _ index: Int, _ delta: Double) throws -> Double {
            let model = DifferentiableNetwork<Double>(net, parametersRequireGrad: false)
            for (name, p) in model.parameters {
                var v = p.values.map(abs)
                if let a = alive[name] { for i in v.indices where a[i] == 0 { v[i] = 0 } }
                if name == override { v[index] += delta }
                model.parameters[name] = try V(shape: p.shape, values: v)
            }
            model.masks = [:]
            for (name, values) in model.runningStatistics { model.runningStatistics[name] = values.map(abs) }
            let out = try model.forward(V.constant(1, shape: [1, 3, 8, 8]), train: false)
            return out.values.reduce(0, +)
        }
        let h = 1e-6
        for spec in scored {
            let theta = try XCTUnwrap(before[spec.name]).data.map { abs(Double($0)) }
            let a = try XCTUnwrap(alive[spec.name])
            var expected = [Double](repeating: 0, count: spec.count)
            for i in 0 ..< spec.count where a[i] != 0 {
                expected[i] = abs(theta[i] * (try flow(spec.name, i, h) - flow(spec.name, i, -h)) / (2 * h))
            }
            XCTAssertLessThanOrEqual(AutodiffTests.relativeError(try XCTUnwrap(scores[spec.name]).map(Double.init), expected), 1e-6, spec.name)
        }
    }

    func testSynflowRemovesExactlyPerRoundOverWeightsAndBiasesAndMasksWeightsOnly() throws {
        let net = Self.small32()
        let before = net.parameters
        let report = try prune(net, .synflow(SynflowOptions(rounds: 10)), sparsity: 0.9, seed: 0, options: PruneOptions(keepScores: true))
        // Replay the schedule: N over weights and biases, round(a·alive) removed per round.
        let scored = ScoredPruning.scoredParameters(net.architecture, .weightsAndBiases)
        var alive = scored.reduce(0) { $0 + $1.count }
        let perRound = 1 - Foundation.pow(0.1, 0.1)
        for _ in 0 ..< 10 { alive -= pythonRound(perRound * Double(alive)) }
        let biasesScored = scored.filter { $0.role == .bias }.reduce(0) { $0 + $1.count }
        XCTAssertLessThanOrEqual(report.kept, alive)
        XCTAssertGreaterThanOrEqual(report.kept, alive - biasesScored)
        XCTAssertEqual(report.layers.map(\.parameter), net.architecture.prunable.map(\.name), "masks cover weights only")
        for spec in net.architecture.prunable {
            let w = try XCTUnwrap(net.parameters[spec.name]).data, w0 = try XCTUnwrap(before[spec.name]).data
            let m = try XCTUnwrap(net.masks[spec.name])
            for i in 0 ..< w.count { XCTAssertEqual(w[i], m[i] == 0 ? 0 : w0[i], "signs restored, pruned zeroed") }
        }
        let again = Self.small32()
        try prune(again, .synflow(SynflowOptions(rounds: 10)), sparsity: 0.9, seed: 0)
        XCTAssertEqual(again.masks, net.masks)
    }

    // MARK: ProsPr

    /// The reference's computation written out literally: fast parameters w⊙m and copies of the
    /// rest, `steps` SGD steps with the gradient recorded, first momentum buffer detached, meta
    /// loss on the next batch, one double backward through everything.
    static func unrolledMetaGradient(_ net: Network, batches: [(Tensor, [Int])], lr: Double, momentum: Double) throws -> [[Double]] {
        let model = DifferentiableNetwork<Double>(net, parametersRequireGrad: false)
        model.masks = [:]
        let learnable = net.architecture.parameters.filter { model.parameters[$0.name] != nil }
        var masks: [V] = []
        var fast: [V] = []
        for spec in learnable {
            let p = try XCTUnwrap(model.parameters[spec.name])
            if spec.isPrunable {
                let m = V.constant(1, shape: spec.shape).leaf()
                masks.append(m)
                fast.append(try Autodiff.multiply(p, m))
            } else {
                fast.append(p.leaf())
            }
        }
        let names = learnable.map(\.name)
        var buffers: [V] = []
        for (x, labels) in batches.dropLast() {
            let loss = try model.loss(V(converting: x), labels: labels, overrides: Dictionary(uniqueKeysWithValues: zip(names, fast)))
            let grads = try Autodiff.grad(of: loss, wrt: fast, createGraph: true)
            if momentum == 0 { buffers = grads }
            else if buffers.isEmpty { buffers = grads.map(\.detached) }
            else { buffers = try zip(buffers, grads).map { try Autodiff.add(try Autodiff.scale($0, by: momentum), $1) } }
            fast = try zip(fast, buffers).map { try Autodiff.subtract($0, try Autodiff.scale($1, by: lr)) }
        }
        let (x, labels) = batches[batches.count - 1]
        let meta = try model.loss(V(converting: x), labels: labels, overrides: Dictionary(uniqueKeysWithValues: zip(names, fast)))
        return try Autodiff.grad(of: meta, wrt: masks).map(\.values)
    }

    func testProsprMetaGradientEqualsTheLiterallyUnrolledOne() throws {
        let net = try NNExecutionTests.tinyNetwork(seed: 9)
        let batches = (0 ..< 4).map { NNExecutionTests.batch(5, seed: 30 + UInt64($0)) }
        let data = try Dataset.fromTensors(batches.map(\.0), batches.map(\.1), classes: 3)
        let names = net.architecture.prunable.map(\.name)
        for (momentum, lr) in [(0.9, 0.5), (0.0, 0.3)] {
            let options = ProsprOptions(steps: 3, learningRate: lr, momentum: momentum, batch: 5)
            let adjoint = try ProsprScoring<Double>(options: options).metaGradients(network: net, alive: [:], data: data, seed: 0)
            let unrolled = try Self.unrolledMetaGradient(net, batches: batches, lr: lr, momentum: momentum)
            for (name, expected) in zip(names, unrolled) {
                let error = AutodiffTests.relativeError(try XCTUnwrap(adjoint[name]), expected)
                XCTAssertLessThanOrEqual(error, 1e-10, "momentum \(momentum): \(name)")
            }
        }
    }

    /// The unrolled reference itself against central differences in the masks (so the
    /// adjoint, equal to it, is the true derivative of the meta-loss).
    func testProsprMetaGradientAgainstFiniteDifferences() throws {
        let net = try NNExecutionTests.tinyNetwork(seed: 10)
        let batches = (0 ..< 3).map { NNExecutionTests.batch(4, seed: 40 + UInt64($0)) }
        let data = try Dataset.fromTensors(batches.map(\.0), batches.map(\.1), classes: 3)
        let options = ProsprOptions(steps: 2, learningRate: 0.5, momentum: 0.9, batch: 4)
        let adjoint = try ProsprScoring<Double>(options: options).metaGradients(network: net, alive: [:], data: data, seed: 0)

        // The meta-loss as a function of the masks, forward only (first buffer = the gradient's value).
        func metaLoss(_ name: String, _ index: Int, _ delta: Double) throws -> Double {
            let model = DifferentiableNetwork<Double>(net, parametersRequireGrad: false)
            model.masks = [:]
            let learnable = net.architecture.parameters.filter { model.parameters[$0.name] != nil }
            var p = try learnable.map { spec -> [Double] in
                var v = try XCTUnwrap(model.parameters[spec.name]).values
                if spec.name == name { v[index] *= 1 + delta }
                return v
            }
            var buffer: [[Double]] = []
            for (x, labels) in batches.dropLast() {
                let leaves = try zip(learnable, p).map { try V(shape: $0.shape, values: $1, requiresGrad: true) }
                let loss = try model.loss(V(converting: x), labels: labels, overrides: Dictionary(uniqueKeysWithValues: zip(learnable.map(\.name), leaves)))
                let g = try Autodiff.grad(of: loss, wrt: leaves).map(\.values)
                buffer = buffer.isEmpty ? g : zip(buffer, g).map { zip($0, $1).map { 0.9 * $0 + $1 } }
                p = zip(p, buffer).map { zip($0, $1).map { $0 - 0.5 * $1 } }
            }
            let leaves = try zip(learnable, p).map { try V(shape: $0.shape, values: $1) }
            let (x, labels) = batches[batches.count - 1]
            return try model.loss(V(converting: x), labels: labels, overrides: Dictionary(uniqueKeysWithValues: zip(learnable.map(\.name), leaves))).values[0]
        }
        // The detached first buffer makes the finite difference see a path the meta-gradient
        // omits (through g₀), so compare against the literal unrolled computation for the
        // derivative and check that the full derivative differs: the detach is real.
        let unrolled = try Self.unrolledMetaGradient(net, batches: batches, lr: 0.5, momentum: 0.9)
        let names = net.architecture.prunable.map(\.name)
        for (name, expected) in zip(names, unrolled) {
            XCTAssertLessThanOrEqual(AutodiffTests.relativeError(try XCTUnwrap(adjoint[name]), expected), 1e-10, name)
        }
        let h = 1e-6
        let name = names[0]
        let count = try XCTUnwrap(net.parameters[name]).count
        let total = try (0 ..< count).map { i in (try metaLoss(name, i, h) - metaLoss(name, i, -h)) / (2 * h) }
        XCTAssertGreaterThan(AutodiffTests.relativeError(try XCTUnwrap(adjoint[name]), total), 1e-4,
                             "the detached first buffer drops a term the full derivative has")
    }

    func testProsprPruneKeepsExactlyCeilAndIsDeterministic() throws {
        let data = try Dataset.synthetic(classes: 10, n: 100, seed: 5)
        let options = ProsprOptions(steps: 2, batch: 16)
        let a = Self.small32(), b = Self.small32()
        let report = try prune(a, .prospr(options), sparsity: 0.9, seed: 2, data: data)
        try prune(b, .prospr(options), sparsity: 0.9, seed: 2, data: data)
        XCTAssertEqual(report.kept, Int((Double(report.params) * 0.1).rounded(.up)))
        XCTAssertEqual(a.masks, b.masks)
    }
}
