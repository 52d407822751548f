import XCTest
@testable import Kernels

/// Every differentiable operation against central finite differences in Double, first order
/// (gradients) and second order (Hessian-vector products by double backward against finite
/// differences of gradients). Inputs are random normals; steps h = 1e-6 (gradients) and 1e-5
/// (HVPs) keep truncation (~h²) and rounding (~1e-16/h) errors near 1e-10 relative, far below
/// the tolerances (1e-6 relative to the largest entry), while any wrong rule is off by O(1).
final class AutodiffTests: XCTestCase {
    typealias V = Variable<Double>

    static func random(_ shape: [Int], seed: UInt64, scale: Double = 1) -> V {
        var rng = SeededGenerator(seed: seed)
        let count = shape.reduce(1, *)
        return try! V(shape: shape, values: (0 ..< count).map { _ in rng.normal() * scale }, requiresGrad: true)  // test data
    }

    static func replacing(_ v: V, index: Int, by delta: Double) -> V {
        var values = v.values
        values[index] += delta
        return try! V(shape: v.shape, values: values, requiresGrad: true)  // test data
    }

    /// Max |a − b| / max(max|b|, 1e-3).
    static func relativeError(_ a: [Double], _ b: [Double]) -> Double {
        let scale = max(b.map(abs).max() ?? 0, 1e-3)
        return zip(a, b).map { abs($0 - $1) }.max().map { $0 / scale } ?? 0
    }

    /// Checks ∂f/∂xᵢ for every input against central differences, and the Hessian-vector product
    /// (double backward) against (∇f(x + εv) − ∇f(x − εv)) / 2ε for a random direction v.
    func check(_ name: String, _ inputs: [V], secondOrder: Bool = true, tolerance: Double = 1e-6,
               file: StaticString = #filePath, line: UInt = #line, _ f: ([V]) throws -> V) throws {
        let y = try f(inputs)
        XCTAssertEqual(y.count, 1, "\(name): f must be scalar", file: file, line: line)
        let grads = try Autodiff.grad(of: y, wrt: inputs)
        let h = 1e-6
        for (k, x) in inputs.enumerated() {
            var numeric = [Double](repeating: 0, count: x.count)
            for i in 0 ..< x.count {
                var plus = inputs, minus = inputs
                plus[k] = Self.replacing(x, index: i, by: h)
                minus[k] = Self.replacing(x, index: i, by: -h)
                numeric[i] = (try f(plus).values[0] - f(minus).values[0]) / (2 * h)
            }
            let error = Self.relativeError(grads[k].values, numeric)
            XCTAssertLessThanOrEqual(error, tolerance, "\(name): gradient of input \(k)", file: file, line: line)
        }
        guard secondOrder else { return }
        let directions = inputs.enumerated().map { Self.random($0.element.shape, seed: 1000 + UInt64($0.offset)).detached }
        let (_, hv) = try Autodiff.hessianVectorProduct(of: y, wrt: inputs, vector: directions)
        let eps = 1e-5
        func gradientAt(_ t: Double) throws -> [V] {
            let moved = try zip(inputs, directions).map { x, v in
                try V(shape: x.shape, values: zip(x.values, v.values).map { $0 + t * $1 }, requiresGrad: true)
            }
            return try Autodiff.grad(of: try f(moved), wrt: moved)
        }
        let gp = try gradientAt(eps), gm = try gradientAt(-eps)
        for k in 0 ..< inputs.count {
            let numeric = zip(gp[k].values, gm[k].values).map { ($0 - $1) / (2 * eps) }
            let error = Self.relativeError(hv[k].values, numeric)
            XCTAssertLessThanOrEqual(error, tolerance, "\(name): Hessian-vector product for input \(k)", file: file, line: line)
        }
    }

    /// f = Σ r ⊙ y² for a fixed random r: makes every op's second derivative non-trivial.
    func squaredProbe(_ y: V, seed: UInt64 = 99) throws -> V {
        try Autodiff.dot(try Autodiff.multiply(y, y), Self.random(y.shape, seed: seed).detached)
    }

    func testConvolutionAllGeometries() throws {
        // (batch, cin, h, w, cout, k, stride, pad, groups)
        let cases = [(2, 3, 5, 5, 4, 3, 1, 1, 1), (2, 2, 7, 6, 3, 3, 2, 1, 1), (1, 4, 5, 5, 6, 3, 1, 1, 2),
                     (2, 3, 6, 6, 3, 3, 2, 1, 3), (2, 4, 4, 4, 5, 1, 1, 0, 1), (1, 2, 5, 5, 2, 1, 2, 0, 1),
                     (1, 2, 6, 6, 3, 3, 2, 0, 1), (1, 2, 4, 4, 2, 3, 1, 2, 1),
                     // Stride 1 runs without im2col (Conv2D.shiftedForward): unpadded, even and large kernels, non-square.
                     (2, 3, 6, 5, 2, 3, 1, 0, 1), (1, 2, 5, 4, 3, 2, 1, 0, 1), (2, 2, 7, 5, 3, 5, 1, 2, 1)]
        for (i, c) in cases.enumerated() {
            let (n, cin, h, w, cout, k, s, p, g) = c
            let x = Self.random([n, cin, h, w], seed: UInt64(i)), wt = Self.random([cout, cin / g, k, k], seed: UInt64(50 + i))
            try check("conv2d \(c)", [x, wt]) { v in try squaredProbe(try Autodiff.conv2d(v[0], v[1], stride: s, padding: p, groups: g)) }
        }
    }

    func testConvolutionGradientOpsAreDifferentiable() throws {
        let geometry = ConvGeometry(batch: 2, inChannels: 3, height: 5, width: 5, outChannels: 2, kernel: 3, stride: 2, padding: 1)
        let dy = Self.random(geometry.outputShape, seed: 1), w = Self.random(geometry.weightShape, seed: 2)
        let x = Self.random(geometry.inputShape, seed: 3)
        try check("conv2dBackwardInput", [dy, w]) { v in try squaredProbe(try Autodiff.conv2dBackwardInput(v[0], v[1], geometry)) }
        try check("conv2dBackwardWeight", [x, dy]) { v in try squaredProbe(try Autodiff.conv2dBackwardWeight(v[0], v[1], geometry)) }
        let stride1 = ConvGeometry(batch: 2, inChannels: 4, height: 4, width: 4, outChannels: 4, kernel: 3, stride: 1, padding: 1, groups: 2)
        try check("conv2dBackwardInput stride 1 grouped", [Self.random(stride1.outputShape, seed: 4), Self.random(stride1.weightShape, seed: 5)]) { v in
            try squaredProbe(try Autodiff.conv2dBackwardInput(v[0], v[1], stride1))
        }
    }

    func testMatmulAllTranspositions() throws {
        for ta in [false, true] {
            for tb in [false, true] {
                let a = Self.random(ta ? [4, 3] : [3, 4], seed: 1), b = Self.random(tb ? [5, 4] : [4, 5], seed: 2)
                try check("matmul \(ta) \(tb)", [a, b]) { v in try squaredProbe(try Autodiff.matmul(v[0], v[1], transposeA: ta, transposeB: tb)) }
            }
        }
    }

    func testBatchNormTrainingTwoAndOneDimensional() throws {
        for shape in [[3, 2, 3, 3], [5, 4]] {
            let x = Self.random(shape, seed: 1), gamma = Self.random([shape[1]], seed: 2), beta = Self.random([shape[1]], seed: 3)
            try check("batchNorm \(shape)", [x, gamma, beta]) { v in
                try squaredProbe(try Autodiff.batchNorm(v[0], gamma: v[1], beta: v[2]).output)
            }
        }
    }

    func testPoolingReluSoftmaxCrossEntropyAndElementwise() throws {
        let x = Self.random([2, 3, 4, 4], seed: 1)
        try check("relu", [x]) { v in try squaredProbe(try Autodiff.relu(v[0])) }
        try check("maxPool2d", [x]) { v in try squaredProbe(try Autodiff.maxPool2d(v[0], kernel: 2)) }
        try check("avgPool2d", [x]) { v in try squaredProbe(try Autodiff.avgPool2d(v[0], kernel: 2)) }
        try check("global avgPool2d", [x]) { v in try squaredProbe(try Autodiff.avgPool2d(v[0], kernel: 4)) }
        // Overlapping, padded windows (ResNet-50's stem pool) on an odd, non-square map: a pixel
        // in two windows collects both gradients.
        let odd = Self.random([2, 3, 7, 6], seed: 4)
        for pool in [PoolGeometry(kernel: 3, stride: 2, padding: 1), PoolGeometry(kernel: 3, stride: 1, padding: 1)] {
            try check("maxPool2d \(pool)", [odd]) { v in try squaredProbe(try Autodiff.maxPool2d(v[0], pool: pool)) }
            try check("avgPool2d \(pool)", [odd]) { v in try squaredProbe(try Autodiff.avgPool2d(v[0], pool: pool)) }
        }
        let z = Self.random([4, 5], seed: 2)
        try check("softmax", [z]) { v in try squaredProbe(try Autodiff.softmax(v[0])) }
        try check("crossEntropy", [z]) { v in try Autodiff.crossEntropy(v[0], labels: [0, 4, 2, 2]) }
        try check("crossEntropy / T", [z]) { v in try Autodiff.crossEntropy(try Autodiff.scale(v[0], by: 1 / 3.0), labels: [1, 0, 3, 2]) }
        let a = Self.random([2, 3, 2], seed: 3), b = Self.random([2, 3, 2], seed: 4), s = Self.random([3], seed: 5)
        try check("add/subtract/multiply", [a, b]) { v in
            try squaredProbe(try Autodiff.multiply(try Autodiff.add(v[0], v[1]), try Autodiff.subtract(v[0], v[1])))
        }
        try check("channelAffine", [a, s, b.detached.leaf()].prefix(2) + [Self.random([3], seed: 6)]) { v in
            try squaredProbe(try Autodiff.channelAffine(v[0], scale: v[1], shift: v[2]))
        }
        try check("sum/expand channels", [a]) { v in
            try squaredProbe(try Autodiff.expandChannels(try Autodiff.sumChannels(v[0], axis: 1), to: [2, 3, 2], axis: 1))
        }
        let positive = try V(shape: [4], values: [0.5, 1.5, 2.0, 3.0], requiresGrad: true)
        try check("rsqrt", [positive]) { v in try squaredProbe(try Autodiff.reciprocalSquareRoot(v[0], epsilon: 1e-5)) }
        try check("reshape/broadcast", [a]) { v in
            try squaredProbe(try Autodiff.add(try Autodiff.reshape(v[0], to: [6, 2]), try Autodiff.broadcast(try Autodiff.sum(v[0]), to: [6, 2])))
        }
    }

    func testMisuseThrowsClearErrors() throws {
        let x = Self.random([2, 3, 4, 4], seed: 1)
        XCTAssertThrowsError(try Autodiff.conv2d(x, Self.random([4, 2, 3, 3], seed: 2), padding: 1)) { XCTAssertTrue("\($0)".contains("conv2d"), "\($0)") }
        XCTAssertThrowsError(try Autodiff.conv2d(x, Self.random([4, 3, 3, 3], seed: 2), groups: 2)) { XCTAssertTrue("\($0)".contains("groups"), "\($0)") }
        XCTAssertThrowsError(try Autodiff.add(x, Self.random([2, 3], seed: 2)))
        XCTAssertThrowsError(try Autodiff.crossEntropy(Self.random([2, 3], seed: 2), labels: [0, 3])) { XCTAssertTrue("\($0)".contains("label 3"), "\($0)") }
        XCTAssertThrowsError(try Autodiff.crossEntropy(Self.random([2, 3], seed: 2), labels: [0]))
        XCTAssertThrowsError(try Autodiff.matmul(Self.random([2, 3], seed: 2), Self.random([2, 3], seed: 3)))
        XCTAssertThrowsError(try V(shape: [2, 2], values: [1, 2, 3]))
    }

    func testGradientOfUnusedVariableIsZeroAndGraphIsReusable() throws {
        let a = Self.random([3], seed: 1), b = Self.random([3], seed: 2)
        let y = try Autodiff.dot(a, a)
        let first = try Autodiff.grad(of: y, wrt: [a, b])
        let second = try Autodiff.grad(of: y, wrt: [a])
        XCTAssertEqual(first[1].values, [0, 0, 0])
        XCTAssertEqual(first[0].values, a.values.map { 2 * $0 })
        XCTAssertEqual(second[0].values, first[0].values)
    }
}
