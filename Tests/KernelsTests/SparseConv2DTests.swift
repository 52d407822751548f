import XCTest
@testable import Kernels

/// The sparse conv kernels (`SparseConv2D`, and `ConvKernelChoice` which picks them or the dense
/// ones by a cost model) compute the same forward, input gradient and weight gradient as the dense im2col /
/// GEMM kernels on the masked weight, up to float summation order.
final class SparseConv2DTests: XCTestCase {
    /// Shapes covering stride 1 and 2, padding 0–2, 1x1, 3x3 and 5x5 kernels, odd sizes.
    static let geometries: [ConvGeometry] = [
        ConvGeometry(batch: 3, inChannels: 5, height: 9, width: 7, outChannels: 6, kernel: 3, stride: 1, padding: 1),
        ConvGeometry(batch: 2, inChannels: 4, height: 8, width: 8, outChannels: 7, kernel: 3, stride: 2, padding: 1),
        ConvGeometry(batch: 3, inChannels: 6, height: 7, width: 10, outChannels: 3, kernel: 3, stride: 1, padding: 0),
        ConvGeometry(batch: 2, inChannels: 8, height: 8, width: 8, outChannels: 5, kernel: 1, stride: 2, padding: 0),
        ConvGeometry(batch: 9, inChannels: 3, height: 6, width: 5, outChannels: 4, kernel: 5, stride: 2, padding: 2),
        ConvGeometry(batch: 4, inChannels: 16, height: 16, width: 16, outChannels: 16, kernel: 3, stride: 1, padding: 1),
        // Output rows of whole 8-float vectors (the Float vector paths), stride 2 included.
        ConvGeometry(batch: 3, inChannels: 5, height: 32, width: 32, outChannels: 6, kernel: 3, stride: 2, padding: 1),
        ConvGeometry(batch: 2, inChannels: 6, height: 16, width: 16, outChannels: 4, kernel: 1, stride: 2, padding: 0),
        ConvGeometry(batch: 2, inChannels: 3, height: 15, width: 17, outChannels: 5, kernel: 3, stride: 2, padding: 0),
    ]

    private func random(_ n: Int, _ rng: inout SeededGenerator) -> [Float] { (0 ..< n).map { _ in Float(rng.normal()) } }

    /// max |a − b| ≤ 1e-5 · max |b| (relative to the result's scale, so near-zero entries do not
    /// make the bound meaningless).
    /// `floor` is an absolute slack for results that are 0 up to rounding (a bias followed by
    /// batch norm has gradient 0 analytically; both passes return rounding noise of ~1e-8).
    private func assertClose(_ a: [Float], _ b: [Float], _ what: String, floor: Float = 0,
                             file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(a.count, b.count, what, file: file, line: line)
        let scale = b.map { abs($0) }.max() ?? 0
        let worst = zip(a, b).map { abs($0 - $1) }.max() ?? 0
        XCTAssertLessThanOrEqual(worst, 1e-5 * max(scale, 1e-12) + floor, "\(what): max error \(worst) at scale \(scale)", file: file, line: line)
    }

    func testSparseKernelsMatchDenseOnTheMaskedWeight() throws {
        var rng = SeededGenerator(seed: 14)
        for (case_, g) in Self.geometries.enumerated() {
            for keep in [0.08, 0.4] {
                let weightCount = g.weightShape.reduce(1, *)
                let mask: [Float] = (0 ..< weightCount).map { _ in rng.uniform() < keep ? 1 : 0 }
                let w = zip(random(weightCount, &rng), mask).map { $0 * $1 }
                let x = random(g.inputShape.reduce(1, *), &rng), dy = random(g.outputShape.reduce(1, *), &rng)
                let taps = try XCTUnwrap(mask.withUnsafeBufferPointer { SparseConvTaps(g, kept: $0) })
                XCTAssertEqual(taps.count, mask.filter { $0 != 0 }.count)
                let what = "case \(case_) keep \(keep)"

                for accumulate in [false, true] {
                    let start = accumulate ? random(g.outputShape.reduce(1, *), &rng) : [Float](repeating: .nan, count: g.outputShape.reduce(1, *))
                    var dense = accumulate ? start : [Float](repeating: 0, count: start.count), sparse = start
                    Conv2D.forward(g, x: x, weight: w, y: &dense, accumulate: accumulate)
                    SparseConv2D.forward(taps, x: x, weight: w, y: &sparse, accumulate: accumulate)
                    assertClose(sparse, dense, "forward \(what) accumulate \(accumulate)")

                    let startX = accumulate ? random(g.inputShape.reduce(1, *), &rng) : [Float](repeating: .nan, count: g.inputShape.reduce(1, *))
                    var denseX = accumulate ? startX : [Float](repeating: 0, count: startX.count), sparseX = startX
                    Conv2D.backwardInput(g, dy: dy, weight: w, dx: &denseX, accumulate: accumulate)
                    SparseConv2D.backwardInput(taps, dy: dy, weight: w, dx: &sparseX, accumulate: accumulate)
                    assertClose(sparseX, denseX, "input gradient \(what) accumulate \(accumulate)")
                }

                var denseW = [Float](repeating: 0, count: weightCount), sparseW = denseW
                Conv2D.backwardWeight(g, x: x, dy: dy, dw: &denseW)
                SparseConv2D.backwardWeight(taps, x: x, dy: dy, dw: &sparseW)
                assertClose(sparseW, zip(denseW, mask).map { $0 * $1 }, "weight gradient \(what)")
                XCTAssertTrue(zip(sparseW, mask).allSatisfy { $1 != 0 || $0 == 0 }, "masked weight gradients stay exactly 0 (\(what))")

                // Either choice computes the same conv (the dense weight gradient masked to the kept taps).
                for sparse in [false, true] {
                    var chosen = [Float](repeating: .nan, count: g.outputShape.reduce(1, *))
                    ConvKernelChoice.forward(taps, sparse: sparse, x: x, weight: w, y: &chosen, accumulate: false)
                    var reference = [Float](repeating: 0, count: chosen.count)
                    Conv2D.forward(g, x: x, weight: w, y: &reference, accumulate: false)
                    assertClose(chosen, reference, "chosen forward \(what) sparse \(sparse)")
                    var chosenX = [Float](repeating: .nan, count: g.inputShape.reduce(1, *))
                    ConvKernelChoice.backwardInput(taps, sparse: sparse, dy: dy, weight: w, dx: &chosenX, accumulate: false)
                    var referenceX = [Float](repeating: 0, count: chosenX.count)
                    Conv2D.backwardInput(g, dy: dy, weight: w, dx: &referenceX, accumulate: false)
                    assertClose(chosenX, referenceX, "chosen input gradient \(what) sparse \(sparse)")
                    var chosenW = [Float](repeating: 0, count: weightCount)
                    ConvKernelChoice.backwardWeight(taps, sparse: sparse, x: x, dy: dy, dw: &chosenW)
                    assertClose(chosenW, zip(denseW, mask).map { $0 * $1 }, "chosen weight gradient \(what) sparse \(sparse)")
                }
            }
        }
    }

    /// The kernel choice is a function of the layer alone (not of the batch): none above the density limit or for a grouped conv, and the sparse kernel is picked for the
    /// very sparse layers of the zoo's nets (where it is several times faster).
    func testKernelChoiceIsAFunctionOfTheLayer() {
        let g = ConvGeometry(batch: 128, inChannels: 64, height: 8, width: 8, outChannels: 64, kernel: 3, stride: 1, padding: 1)
        let weights = g.weightShape.reduce(1, *)
        for op in ConvKernelChoice.Operation.allCases {
            XCTAssertTrue(ConvKernelChoice.prefersSparse(g, kept: weights / 100, op), "1% kept, \(op)")
            XCTAssertFalse(ConvKernelChoice.prefersSparse(g, kept: weights / 2, op), "50% kept, \(op)")
            XCTAssertFalse(ConvKernelChoice.prefersSparse(g, kept: weights * 3 / 10, op), "at the density limit, \(op)")
            var batch = g
            batch.batch = 3
            XCTAssertEqual(ConvKernelChoice.prefersSparse(batch, kept: weights / 20, op), ConvKernelChoice.prefersSparse(g, kept: weights / 20, op),
                           "the batch size does not enter the choice (\(op))")
            var grouped = g
            grouped.groups = 64
            XCTAssertFalse(ConvKernelChoice.prefersSparse(grouped, kept: 1, op))
        }
    }

    /// Fixed chunking: the same bits with 1 or 3 threads (vector and scalar paths).
    func testSparseKernelsGiveTheSameBitsWithAnyThreadCount() throws {
        let saved = Parallel.threads
        defer { Parallel.threads = saved }
        var rng = SeededGenerator(seed: 15)
        for g in [Self.geometries[5], Self.geometries[6], Self.geometries[4]] {
            let weightCount = g.weightShape.reduce(1, *)
            let mask: [Float] = (0 ..< weightCount).map { _ in rng.uniform() < 0.2 ? 1 : 0 }
            let w = zip(random(weightCount, &rng), mask).map { $0 * $1 }
            let x = random(g.inputShape.reduce(1, *), &rng), dy = random(g.outputShape.reduce(1, *), &rng)
            let taps = try XCTUnwrap(mask.withUnsafeBufferPointer { SparseConvTaps(g, kept: $0) })
            var results: [[[Float]]] = []
            for threads in [1, 3] {
                Parallel.threads = threads
                var y = [Float](repeating: 0, count: g.outputShape.reduce(1, *))
                var dx = [Float](repeating: 0, count: g.inputShape.reduce(1, *))
                var dw = [Float](repeating: 0, count: weightCount)
                SparseConv2D.forward(taps, x: x, weight: w, y: &y, accumulate: false)
                SparseConv2D.backwardInput(taps, dy: dy, weight: w, dx: &dx, accumulate: false)
                SparseConv2D.backwardWeight(taps, x: x, dy: dy, dw: &dw)
                results.append([y, dx, dw])
            }
            XCTAssertEqual(results[0], results[1], "\(g)")
        }
    }

    /// A training-mode pass on the chosen kernels (the cost model's picks, and every layer pinned
    /// sparse) gives the dense pass's loss and, on kept weights, its gradients. Each quantity is
    /// compared with a float64 dense pass, within 1e-5 of its scale plus 4x the float32 dense
    /// pass's own distance from float64: a quantity that is 0 in exact arithmetic (the bias of
    /// a conv feeding a training-mode batch norm) is pure rounding noise in float32, which no
    /// relative tolerance can hold.
    func testFirstOrderPassWithSparseKernelsMatchesDense() throws {
        let net = try NNExecutionTests.tinyNetwork(seed: 3)
        var rng = SeededGenerator(seed: 21)
        var parameters: [String: [Float]] = [:], masks: [String: [Float]] = [:]
        for spec in net.architecture.parameters where spec.isLearnable {
            var values = try XCTUnwrap(net.parameters[spec.name]).data
            if spec.role == .weight, values.count > 20 {
                let mask: [Float] = values.map { _ in rng.uniform() < 0.15 ? 1 : 0 }
                values = zip(values, mask).map { $0 * $1 }
                masks[spec.name] = mask
            }
            parameters[spec.name] = values
        }
        XCTAssertFalse(masks.isEmpty)
        let (x, labels) = NNExecutionTests.batch(6, seed: 4)
        func run<S: NNScalar>(_: S.Type, sparse: Bool, pinned: Int? = nil) throws -> (Double, [String: [S]]) {
            let pass = try FirstOrderPass<S>(net.architecture, parameters: parameters.mapValues { $0.map { S(Double($0)) } }, runningStatistics: [:],
                                             normalisation: .batch, sparseKernels: sparse, masks: masks.mapValues { $0.map { S(Double($0)) } })
            if let pinned { pass.pinKernelChoices(masks.mapValues { _ in (pinned, 7) }) }
            let logits = try pass.forward(x.data.map { S(Double($0)) }, batch: 6)
            let (loss, seed, _) = try pass.crossEntropy(logits, labels: labels)
            return (loss, try pass.backward(seed: seed, wanted: Set(parameters.keys)).gradients)
        }
        let (exactLoss, exact) = try run(Double.self, sparse: false)
        let (denseLoss, dense) = try run(Float.self, sparse: false)
        func distance(_ a: [Float], _ b: [Double], _ m: [Float]) -> Double {
            zip(zip(a, b), m).map { abs(Double($0.0) - $0.1) * Double($1) }.max() ?? 0
        }
        for pinned in [nil, 7] {
            let (loss, gradients) = try run(Float.self, sparse: true, pinned: pinned)
            let what = pinned == nil ? "cost model's kernels" : "sparse kernels"
            XCTAssertLessThanOrEqual(abs(loss - exactLoss), 1e-6 * abs(exactLoss) + 4 * abs(denseLoss - exactLoss), "\(what): loss")
            for (name, reference) in exact {
                let gradient = try XCTUnwrap(gradients[name]), denseGradient = try XCTUnwrap(dense[name])
                // Compared on kept weights (the sparse weight gradient leaves masked ones 0; a
                // dense-run layer's are whatever the dense gradient is, which the trainer zeroes).
                let m = masks[name] ?? [Float](repeating: 1, count: reference.count)
                let scale = zip(reference, m).map { abs($0) * Double($1) }.max() ?? 0
                let noise = distance(denseGradient, reference, m), error = distance(gradient, reference, m)
                XCTAssertLessThanOrEqual(error, 1e-5 * scale + 4 * noise,
                                         "\(what) \(name): max error \(error) at scale \(scale), float32 dense pass off by \(noise)")
            }
        }
    }
}
