import XCTest
@testable import Kernels

final class MetricsSpectralTests: XCTestCase {
    /// Undirected graph from an edge list, all weights w.
    func undirected(_ n: Int, _ pairs: [(Int, Int)], weight: Float = 1) -> UndirectedView {
        UndirectedView(makeGraph(n: n, edges: pairs.map { ($0.0, $0.1, weight) }))
    }

    var forceLanczos: LanczosOptions { var o = LanczosOptions(); o.denseThreshold = 0; o.basisSize = 20; return o }

    func testCompleteBipartite() {
        let a = 7, b = 11
        var pairs: [(Int, Int)] = []
        for i in 0 ..< a { for j in 0 ..< b { pairs.append((i, a + j)) } }
        let v = undirected(a + b, pairs)
        let top = topAbsEigenvalues(v, options: forceLanczos)
        XCTAssertEqual(top[0], (77.0).squareRoot(), accuracy: 1e-9)
        XCTAssertEqual(top[1], (77.0).squareRoot(), accuracy: 1e-9)
        XCTAssertEqual(top[2], 0, accuracy: 1e-9)
        XCTAssertEqual(spectralGap(v, options: forceLanczos), (77.0).squareRoot(), accuracy: 1e-9)
        // Laplacian of K_{a,b}: largest eigenvalue a + b.
        XCTAssertEqual(laplacianSpectralRadius(v, options: forceLanczos), Double(a + b), accuracy: 1e-8)
    }

    /// A layered graph whose partitions 2-colour (a chain plus a skip over an odd number of
    /// partitions): the normal-matrix solve on one side gives the adjacency's three largest
    /// |λ| (dense LAPACK), the whole-graph topometrics take it, and a skip over an even number
    /// of partitions (a triangle of partitions) has no sides.
    func testBipartiteNormalMatrixAgainstDense() throws {
        let sizes = [60, 80, 70, 90]
        var parts: [Partition] = [], start = 0
        for (i, c) in sizes.enumerated() { parts.append(Partition(name: "p\(i)", start: start, count: c, shape: [c])); start += c }
        var rng = SeededGenerator(seed: 9)
        func edges(_ a: Int, _ b: Int, _ p: Double) -> [(Int, Int, Float)] {
            var e: [(Int, Int, Float)] = []
            for u in parts[a].range { for w in parts[b].range where Double.random(in: 0 ..< 1, using: &rng) < p {
                e.append((u, w, Float.random(in: -1 ... 1, using: &rng)))
            } }
            return e
        }
        let chain = edges(0, 1, 0.1) + edges(1, 2, 0.1) + edges(2, 3, 0.1)
        let g = makeGraph(n: start, edges: chain + edges(0, 3, 0.02), partitions: parts)
        let sides = try XCTUnwrap(g.bipartiteSides)
        XCTAssertEqual(sides.count, 130, "the working side is the smaller colour: partitions 0 and 2")
        let view = UndirectedView(g)
        let dense = denseSymmetricEigenvalues(SymmetricGraphOperator(view: view).dense(), n: start)!.map { abs($0) }.sorted(by: >)
        var o = LanczosOptions(); o.denseThreshold = 10; o.tolerance = 1e-11
        let top = bipartiteTopAbsEigenvalues(SymmetricGraphOperator(view: view), sides: sides, options: o)
        for i in 0 ..< 3 { XCTAssertEqual(top[i], dense[i], accuracy: 1e-8 * dense[0], "|λ|\(i + 1)") }
        // The whole-graph record takes this path (with a dense threshold below the side) and
        // agrees with the adjacency's spectrum within the whole-graph tolerance.
        var whole = LanczosOptions.wholeGraph; whole.denseThreshold = 10
        let record = try topometrics(g, only: ["spectral_gap"], lanczos: whole)
        XCTAssertEqual(try XCTUnwrap(record.spectralGap), dense[0] - dense[2], accuracy: 2e-5 * dense[0])
        XCTAssertNil(makeGraph(n: start, edges: chain + edges(0, 2, 0.02), partitions: parts).bipartiteSides)
    }

    /// A solve cut short (no restart allowed, a tight tolerance) is reported on the record,
    /// naming the field and its residual; a converged one is not (the implicit form:
    /// ImplicitGraphTests.testUnconvergedSolveIsReportedOnTheImplicitForm).
    func testUnconvergedSolveIsReported() throws {
        let g = makeGraph(n: 600, edges: (0 ..< 599).map { ($0, $0 + 1, Float(1 + $0 % 7)) })
        var short = LanczosOptions.wholeGraph
        short.maxRestarts = 0; short.basisSize = 8; short.tolerance = 1e-14; short.denseThreshold = 10
        short.radiusSteps = 3; short.bracketTolerance = 1e-14
        let r = try topometrics(g, only: ["spectral_gap", "spectral_radius"], lanczos: short)
        XCTAssertEqual(r.notes.count, 2, "\(r.notes)")
        XCTAssertTrue(r.notes.allSatisfy { $0.contains("relative residual") }, "\(r.notes)")
        XCTAssertTrue(r.notes.contains { $0.hasPrefix("spectral_radius:") && $0.contains("lies in [") && $0.contains("certified") }, "\(r.notes)")
        XCTAssertEqual(try topometrics(g, only: ["spectral_gap", "spectral_radius"]).notes, [])
        // A per-layer record names its layer (the Ramanujan solves report as well).
        let parts = [Partition(name: "in", start: 0, count: 300, shape: [300]), Partition(name: "out", start: 300, count: 300, shape: [300])]
        var rng = SeededGenerator(seed: 4)
        var edges: [(Int, Int, Float)] = []
        for u in 0 ..< 300 { for _ in 0 ..< 4 { edges.append((u, 300 + Int.random(in: 0 ..< 300, using: &rng), Float.random(in: 0.1 ... 1, using: &rng))) } }
        let layer = makeGraph(n: 600, edges: edges, partitions: parts)
        let cut = layerTopometrics(layer, layerId: 0, name: "conv1", kind: "conv", lanczos: short)
        XCTAssertTrue(cut.notes.contains { $0.hasPrefix("layer conv1: spectral_gap:") }, "\(cut.notes)")
        XCTAssertTrue(cut.notes.contains { $0.hasPrefix("layer conv1: spectral_radius:") }, "\(cut.notes)")
        XCTAssertTrue(cut.notes.contains { $0.hasPrefix("layer conv1: delta_r's μ:") }, "\(cut.notes)")
        XCTAssertEqual(layerTopometrics(layer, layerId: 0, name: "conv1", kind: "conv").notes, [])
    }

    /// The bracketed Laplacian radius against dense LAPACK: the certified bracket [θ, U] holds
    /// λ_max at every product count (bipartite or not, a ±1 start or a random one), the solve
    /// converges to the residual tolerance, and on a grid — a band at the top, eigenvalues
    /// 4 + 2cos(πi/(k+1)) + 2cos(πj/(k+1)) crowding the infinite grid's 8, where the power
    /// iterate's bound settles, 1.3e-3 above — the bracket ends it with the midpoint within
    /// half its width. Negative weights (no MGE has them) get no upper bound.
    func testBracketedLaplacianRadiusAgainstDense() throws {
        var rng = SeededGenerator(seed: 12)
        func weightedGraph(_ n: Int, bipartite: Bool, signed: Bool = false) -> Graph {
            var e: [(Int, Int, Float)] = []
            for u in 0 ..< n { for w in u + 1 ..< n where (!bipartite || (u < n / 2) != (w < n / 2)) && Double.random(in: 0 ..< 1, using: &rng) < 0.03 {
                e.append((u, w, Float.random(in: 0.1 ... 2, using: &rng) * (signed && u % 3 == 0 ? -1 : 1)))
            } }
            let parts = bipartite ? [Partition(name: "a", start: 0, count: n / 2, shape: [n / 2]),
                                     Partition(name: "b", start: n / 2, count: n - n / 2, shape: [n - n / 2])] : nil
            return makeGraph(n: n, edges: e, partitions: parts)
        }
        for (n, bipartite, signed) in [(400, true, false), (400, false, false), (700, true, false), (400, false, true)] {
            let g = weightedGraph(n, bipartite: bipartite, signed: signed)
            let view = UndirectedView(g)
            let exact = try XCTUnwrap(denseSymmetricEigenvalues(SymmetricGraphOperator(view: view, laplacian: true).dense(), n: n)?.max())
            let sides = g.bipartiteSides
            XCTAssertEqual(sides != nil, bipartite)
            for steps in [1, 5, 20, 60] {
                var o = LanczosOptions(); o.denseThreshold = 0; o.radiusSteps = steps; o.bracketTolerance = 0
                var result: EigenResult?
                _ = laplacianSpectralRadius(view, options: o, sides: sides) { result = $0 }
                let r = try XCTUnwrap(result)
                let low = try XCTUnwrap(r.lowerBound), high = try XCTUnwrap(r.upperBound)
                if signed { XCTAssertEqual(high, .infinity) }
                XCTAssertLessThanOrEqual(low, exact * (1 + 1e-12), "n \(n) bipartite \(bipartite) steps \(steps)")
                XCTAssertGreaterThanOrEqual(high, exact * (1 - 1e-12), "n \(n) bipartite \(bipartite) steps \(steps)")
            }
            var o = LanczosOptions(); o.denseThreshold = 0
            XCTAssertEqual(laplacianSpectralRadius(view, options: o, sides: sides), exact, accuracy: 1e-8 * exact)
        }
        let k = 60
        var grid: [(Int, Int)] = []
        for i in 0 ..< k { for j in 0 ..< k {
            if i + 1 < k { grid.append((i * k + j, (i + 1) * k + j)) }
            if j + 1 < k { grid.append((i * k + j, i * k + j + 1)) }
        } }
        let top = 4 + 4 * cos(Double.pi / Double(k + 1))
        var whole = LanczosOptions.wholeGraph; whole.denseThreshold = 0; whole.tolerance = 1e-14   // only the bracket can end it
        whole.bracketTolerance = 3e-3
        var result: EigenResult?
        let value = laplacianSpectralRadius(undirected(k * k, grid), options: whole, sides: nil) { result = $0 }
        let r = try XCTUnwrap(result)
        XCTAssertTrue(r.converged)
        let low = try XCTUnwrap(r.lowerBound), high = try XCTUnwrap(r.upperBound)
        XCTAssertLessThanOrEqual(high - low, 3e-3 * low)
        XCTAssertTrue(low <= top && top <= high, "\(low) ≤ \(top) ≤ \(high)")
        XCTAssertEqual(value, top, accuracy: 1.5e-3 * top)
    }

    func testPathAndCycle() {
        let n = 500
        let path = undirected(n, (0 ..< n - 1).map { ($0, $0 + 1) })
        let r = graphEigenvalues(SymmetricGraphOperator(view: path), k: 4, target: .largestAlgebraic, options: forceLanczos)
        for k in 1 ... 4 {
            XCTAssertEqual(r.values[k - 1], 2 * cos(Double.pi * Double(k) / Double(n + 1)), accuracy: 1e-8)
        }
        // Cycle: 2cos(2πk/n) with multiplicity 2 for 0 < k < n/2; top by magnitude for even n:
        // 2 (k = 0), −2 (k = n/2), then 2cos(2π/n) twice.
        let cyc = undirected(n, (0 ..< n).map { ($0, ($0 + 1) % n) })
        let c = graphEigenvalues(SymmetricGraphOperator(view: cyc), k: 4, target: .largestMagnitude, options: forceLanczos)
        let mags = c.values.map { abs($0) }.sorted(by: >)
        XCTAssertEqual(mags[0], 2, accuracy: 1e-9)
        XCTAssertEqual(mags[1], 2, accuracy: 1e-9)
        XCTAssertEqual(mags[2], 2 * cos(2 * Double.pi / Double(n)), accuracy: 1e-9)
        XCTAssertEqual(mags[3], 2 * cos(2 * Double.pi / Double(n)), accuracy: 1e-9, "repeated eigenvalue found")
    }

    func testLaplacianOfCompleteGraph() {
        let n = 40
        var pairs: [(Int, Int)] = []
        for i in 0 ..< n { for j in i + 1 ..< n { pairs.append((i, j)) } }
        let v = undirected(n, pairs)
        XCTAssertEqual(laplacianSpectralRadius(v, options: forceLanczos), Double(n), accuracy: 1e-8)
        // Adjacency of K_n: n−1 once, −1 with multiplicity n−1.
        let top = topAbsEigenvalues(v, options: forceLanczos)
        XCTAssertEqual(top[0], Double(n - 1), accuracy: 1e-8)
        XCTAssertEqual(top[1], 1, accuracy: 1e-8)
        XCTAssertEqual(top[2], 1, accuracy: 1e-8)
    }

    /// Two identical components: every eigenvalue doubles, so |λ|₁ = |λ|₂ = |λ|₃ = |λ|₄ and the gap is 0.
    func testRepeatedTopEigenvalue() {
        var pairs: [(Int, Int)] = []
        let m = 60
        var rng = SeededGenerator(seed: 3)
        for i in 0 ..< m { for j in i + 1 ..< m where Double.random(in: 0 ..< 1, using: &rng) < 0.1 {
            pairs.append((i, j)); pairs.append((m + i, m + j))
        } }
        let v = undirected(2 * m, pairs)
        let top = topAbsEigenvalues(v, count: 3, options: forceLanczos)
        let dense = denseSymmetricEigenvalues(SymmetricGraphOperator(view: v).dense(), n: 2 * m)!.map { abs($0) }.sorted(by: >)
        for i in 0 ..< 3 { XCTAssertEqual(top[i], dense[i], accuracy: 1e-8) }
    }

    /// The whole-graph setting (basis 80: convergence tested after every block from 40 vectors
    /// on, Cholesky-QR block orthonormalisation) and eight-lane products (b = 8, one 64-byte
    /// lane group) against dense LAPACK, on graphs large enough to restart.
    func testWholeGraphOptionsAndEightLaneBlocksAgainstDense() {
        for seed in 11 ... 13 as ClosedRange<UInt64> {
            let n = 500 + Int(seed) * 23
            let g = randomGraph(n: n, edgeProbability: 0.01, seed: seed, multi: seed % 2 == 0)
            let v = UndirectedView(g)
            for (lap, block) in [(false, 0), (true, 0), (false, 8), (true, 6)] {
                var o = LanczosOptions.wholeGraph
                o.denseThreshold = 0
                o.blockSize = block
                assertTopThreeMatchDense(v, laplacian: lap, options: o, accuracy: o.tolerance, "seed \(seed) lap \(lap) b \(block)")
            }
        }
    }

    func testRandomAgainstDense() {
        for seed in 1 ... 6 as ClosedRange<UInt64> {
            let n = 120 + Int(seed) * 17
            let g = randomGraph(n: n, edgeProbability: 0.03, seed: seed, multi: seed % 2 == 0)
            let v = UndirectedView(g)
            for lap in [false, true] {
                assertTopThreeMatchDense(v, laplacian: lap, options: forceLanczos, accuracy: 1e-9, "seed \(seed) lap \(lap)")
            }
        }
    }

    /// The three eigenvalues of largest magnitude (adjacency) or largest (Laplacian) of `v`
    /// against dense LAPACK, to `accuracy`·|λ₁|, and every residual ≤ options.tolerance·|λ₁|.
    func assertTopThreeMatchDense(_ v: UndirectedView, laplacian lap: Bool, options: LanczosOptions, accuracy: Double,
                                  _ label: String, file: StaticString = #filePath, line: UInt = #line) {
        let op = SymmetricGraphOperator(view: v, laplacian: lap)
        guard let dense = denseSymmetricEigenvalues(op.dense(), n: v.nodeCount) else { return XCTFail("LAPACK failed", file: file, line: line) }
        let target: EigenTarget = lap ? .largestAlgebraic : .largestMagnitude
        let r = graphEigenvalues(op, k: 3, target: target, options: options)
        XCTAssertTrue(r.converged, label, file: file, line: line)
        let expect = lap ? Array(dense.sorted(by: >).prefix(3)) : Array(dense.sorted { abs($0) > abs($1) }.prefix(3))
        for i in 0 ..< 3 {
            XCTAssertEqual(abs(r.values[i]), abs(expect[i]), accuracy: accuracy * abs(expect[0]), label, file: file, line: line)
        }
        for res in r.residuals { XCTAssertLessThanOrEqual(res, options.tolerance * abs(expect[0]), label, file: file, line: line) }
    }

    func testDisconnectedAndEmpty() {
        // Isolated nodes plus one edge of weight 0.5: eigenvalues ±0.5, gap 0.5.
        let v = UndirectedView(makeGraph(n: 400, edges: [(3, 200, 0.5)]))
        var o = forceLanczos; o.basisSize = 12
        XCTAssertEqual(spectralGap(v, options: o), 0.5, accuracy: 1e-12)
        XCTAssertEqual(laplacianSpectralRadius(v, options: o), 1.0, accuracy: 1e-12)
        let empty = UndirectedView(makeGraph(n: 10, edges: []))
        XCTAssertEqual(spectralGap(empty), 0)
        XCTAssertEqual(laplacianSpectralRadius(empty), 0)
    }
}
