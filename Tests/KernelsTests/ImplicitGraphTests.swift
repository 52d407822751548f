import XCTest
@testable import Kernels

/// The implicit MGE against the explicit one (#23 part 3): same nodes, degrees and neighbour
/// lists, and the same topometrics record — integers identical, floats within 1e-9 of their
/// own scale (the Lanczos start vectors and iterations are the same; only the strength sum
/// is accumulated in another order).
final class ImplicitGraphTests: XCTestCase {
    /// Every CIFAR model of the zoo, Bernoulli-pruned (sparse enough for a fast test).
    static let cases: [(String, Double)] = [("conv6", 0.01), ("resnet20", 0.03), ("resnet32", 0.01),
                                            ("wrn28_2", 0.002), ("mobilenetv2", 0.004), ("vgg16", 0.002)]

    static func network(_ name: String, keep: Double) throws -> Network {
        let arch = try XCTUnwrap(ModelZoo.build(name, classes: 10))
        return try UnrollFixtures.randomlyPruned(arch, keep: keep, seed: 3)
    }

    func testSameNodesDegreesAndNeighbours() throws {
        for compat in UnrollCompat.allCases {
            let net = try Self.network("resnet20", keep: 0.05)
            let g = try unroll(net, compat: compat)
            let h = try ImplicitGraph(net, compat: compat)
            XCTAssertEqual(h.nodeCount, g.nodeCount)
            XCTAssertEqual(h.edgeCount, g.edgeCount)
            XCTAssertEqual(h.partitions, g.partitions)
            var list = EdgeList()
            for v in 0 ..< g.nodeCount {
                XCTAssertEqual(h.outDegree(v), g.outDegree(v))
                XCTAssertEqual(h.inDegree(v), g.inDegree(v))
                h.outEdges(of: v, into: &list)
                let o = g.outOffsets[v] ..< g.outOffsets[v + 1]
                guard list.targets == Array(g.outTargets[o]), list.weights == Array(g.outWeights[o]) else {
                    return XCTFail("\(compat): out-edges of node \(v) differ")
                }
                h.inEdges(of: v, into: &list)
                let i = g.inOffsets[v] ..< g.inOffsets[v + 1]
                guard list.targets == Array(g.inSources[i]), list.weights == Array(g.inWeights[i]) else {
                    return XCTFail("\(compat): in-edges of node \(v) differ")
                }
            }
            // The undirected view generated row by row is the stored one, flags included.
            let view = UndirectedView(g), generated = h.undirectedView(weights: true)
            XCTAssertEqual(generated.offsets, view.offsets)
            XCTAssertEqual(generated.neighbors, view.neighbors)
            XCTAssertEqual(generated.weights, view.weights)
            XCTAssertEqual(generated.multiBits, view.multiBits, "\(compat): multi-pair flags")
            XCTAssertLessThan(h.byteSize * 10, g.byteSize, "\(compat): implicit form not small")
        }
    }

    /// Every field on ResNet-20 in both modes (exact motifs, the whole-graph Lanczos, and the
    /// estimator on a fixed sample).
    func testTopometricsEqualExplicitOnResNet20InBothModes() throws {
        let net = try Self.network("resnet20", keep: 0.03)
        for compat in UnrollCompat.allCases {
            let metricsCompat: MetricsCompat = compat == .paper ? .paper : .reference
            let g = try unroll(net, compat: compat)
            let h = try ImplicitGraph(net, compat: compat)
            let label = "resnet20 \(compat)"
            let explicit = try topometrics(g, compat: metricsCompat, motifs: .defaultMode, lanczos: .wholeGraph)
            let implicit = try topometrics(h, compat: metricsCompat, motifs: .defaultMode, lanczos: .wholeGraph)
            Self.assertSameRecord(explicit, implicit, label)
            XCTAssertEqual(explicit.motifs.map { if case .int = $0 { return true } else { return false } }, true, "\(label): exact census")
            let sample = MotifMode.estimate(sample: .count(40, seed: 5))
            XCTAssertEqual(motifValue(UndirectedView(g, weights: false), mode: sample), motifValue(h, mode: sample), label)
        }
    }

    /// The graph-walking fields on every other CIFAR model in both modes (the spectral and motif
    /// fields, whose cost grows with the edges, are held equal on ResNet-20 above; the whole
    /// record on these models takes tens of minutes).
    func testWalkedFieldsEqualExplicitOnEveryCIFARModelInBothModes() throws {
        let fields: Set<String> = ["sink_nodes", "source_nodes", "disconnected_nodes", "removable_out_edges",
                                   "removable_in_edges", "one_hop", "strength", "k_core", "components"]
        for (name, keep) in Self.cases where name != "resnet20" {
            let net = try Self.network(name, keep: keep)
            for compat in UnrollCompat.allCases {
                let metricsCompat: MetricsCompat = compat == .paper ? .paper : .reference
                let g = try unroll(net, compat: compat)
                let h = try ImplicitGraph(net, compat: compat)
                let a = try topometrics(g, compat: metricsCompat, motifs: .defaultMode, only: fields)
                let b = try topometrics(h, compat: metricsCompat, motifs: .defaultMode, only: fields)
                let fa = a.orderedFields.filter { fields.contains($0.name) }, fb = b.orderedFields.filter { fields.contains($0.name) }
                XCTAssertEqual(fa.count, fields.count, "\(name) \(compat): every asked field computed")
                XCTAssertEqual(fa.map(\.name), fb.map(\.name), "\(name) \(compat)")
                for (x, y) in zip(fa, fb) {
                    switch (x.value, y.value) {
                    case let (.int(i), .int(j)): XCTAssertEqual(i, j, "\(name) \(compat): \(x.name)")
                    case let (.double(u), .double(v)):
                        XCTAssertLessThanOrEqual(abs(u - v), 1e-9 * max(abs(u), 1e-300), "\(name) \(compat): \(x.name)")
                    default: XCTFail("\(name) \(compat): \(x.name) has kinds \(x.value) and \(y.value)")
                    }
                }
            }
        }
    }

    /// On the bipartite zoo models (CONV-6, MobileNetV2, VGG-16) the motif estimator counts
    /// rather than enumerates; its per-root counts equal ESU's in both forms, root by root.
    func testTriangleFreeMotifCountsEqualESUOnBipartiteModels() throws {
        var bipartite: [String] = []
        for (name, keep) in Self.cases {
            let net = try Self.network(name, keep: keep * 4)
            let h = try ImplicitGraph(net, compat: .paper)
            guard h.layerColouring != nil else { continue }
            bipartite.append(name)
            let g = try unroll(net, compat: .paper)
            let view = UndirectedView(g, weights: false)
            XCTAssertTrue(isBipartite(view), name)
            let roots = motifSampleRoots(nodeCount: g.nodeCount, sample: 60, seed: 11)
            let esu = esuRootCounts(view, roots: roots)
            XCTAssertGreaterThan(esu.reduce(0, +), 0, "\(name): the sample sees motifs")
            XCTAssertEqual(rootCounts(view, roots: roots), esu, "\(name): explicit")
            XCTAssertEqual(rootCounts(h, roots: roots), esu, "\(name): implicit")
        }
        XCTAssertEqual(bipartite, ["conv6", "mobilenetv2", "vgg16"])
    }

    /// two_hop through translation classes equals the count over every node, on every CIFAR
    /// model in both modes, with masks dense enough that border taps exist on every layer;
    /// and the classes do stand for many nodes (the test would otherwise prove nothing).
    func testTwoHopClassesEqualEveryNodeCountOnEveryCIFARModel() throws {
        for (name, keep) in Self.cases {
            let net = try Self.network(name, keep: min(0.5, keep * 10))
            for compat in UnrollCompat.allCases {
                let h = try ImplicitGraph(net, compat: compat)
                let classes = h.isSimple ? TwoHopClasses(h) : TwoHopClasses(everyNodeOf: h)
                let counted = twoHopCount(h, classes: true, progress: nil)
                XCTAssertEqual(counted.total, twoHopTotal(h, classes: false), "\(name) \(compat)")
                XCTAssertTrue(counted.classesHeld, "\(name) \(compat): the classes failed their self-check")
                if compat == .paper {
                    XCTAssertLessThan(classes.nodes.count * 2, h.nodeCount, "\(name): few classes")
                }
            }
        }
    }

    /// Cut edges and nodes of the O(n)-memory DFS (rows generated again on resume), and every
    /// node's core number (level-order peeling), equal the explicit form's on every CIFAR
    /// model in both modes.
    func testCutEdgesNodesAndCoresEqualExplicitOnEveryCIFARModel() throws {
        for (name, keep) in Self.cases {
            let net = try Self.network(name, keep: keep)
            for compat in UnrollCompat.allCases {
                let g = try unroll(net, compat: compat)
                let h = try ImplicitGraph(net, compat: compat)
                let a = bridgesAndArticulationPoints(UndirectedView(g, weights: false)), b = bridgesAndArticulationPoints(h)
                XCTAssertEqual(a.bridges, b.bridges, "\(name) \(compat): cut edges")
                XCTAssertEqual(a.articulationPoints.count, b.articulationPoints, "\(name) \(compat): cut nodes")
                XCTAssertGreaterThan(a.bridges + a.articulationPoints.count, 0, "\(name) \(compat): nothing to compare")
                XCTAssertEqual(coreNumbers(g), coreNumbers(h), "\(name) \(compat): core numbers")
            }
        }
    }

    /// The block product as masked convolutions equals the product over generated rows (the
    /// explicit form's matrix) on every CIFAR model, adjacency and Laplacian, for 3 and 6
    /// vectors (both lane widths), to rounding of the vector's own scale.
    func testMaskedConvProductEqualsRowProductOnEveryCIFARModel() throws {
        for (name, keep) in Self.cases {
            let net = try Self.network(name, keep: min(0.5, keep * 10))
            let h = try ImplicitGraph(net)
            XCTAssertNotNil(MaskedConvProduct(h), "\(name): no convolutional product")
            var rng = SeededGenerator(seed: 9)
            for laplacian in [false, true] {
                for b in [3, 6] {
                    let conv = ImplicitSymmetricOperator(h, laplacian: laplacian)
                    let rows = ImplicitSymmetricOperator(h, laplacian: laplacian, convolutional: false)
                    let (worst, scale) = compareBlockProducts(n: h.nodeCount, width: b, rng: &rng,
                                                              { conv.apply(block: $0, $1, count: $2) }, { rows.apply(block: $0, $1, count: $2) })
                    // The operator checks its first product on sampled rows and falls back to
                    // generated rows on a mismatch: it must still be convolutional here.
                    XCTAssertNotNil(conv.convolutional, "\(name): the sampled-row check rejected the product")
                    XCTAssertGreaterThan(scale, 0, name)
                    XCTAssertLessThanOrEqual(worst, 1e-12 * scale, "\(name) laplacian=\(laplacian) b=\(b)")
                }
            }
        }
    }

    /// On the bipartite zoo models the spectral gap runs on one side's normal matrix BᵀB: the
    /// one-sided masked-conv products equal the explicit rows' (to rounding), both forms find
    /// the same sides and the same gap (1e-9 of |λ|₁: the same iterations), and the gap is the
    /// adjacency's own (its full solve) within the whole-graph tolerance, 2e-5·|λ|₁.
    func testBipartiteGapEqualsExplicitAndFullSolveOnBipartiteModels() throws {
        var tested: [String] = []
        for (name, keep) in Self.cases {
            let net = try Self.network(name, keep: min(0.5, keep * 10))
            let h = try ImplicitGraph(net)
            guard let sides = h.bipartiteSides else { continue }
            tested.append(name)
            let g = try unroll(net)
            let explicitSides = try XCTUnwrap(g.bipartiteSides, name)
            XCTAssertEqual(explicitSides.ranges, sides.ranges, name)
            let view = UndirectedView(g)
            // One application of BᵀB, 6 vectors, both forms.
            var rng = SeededGenerator(seed: 4)
            let conv = ImplicitSymmetricOperator(h, laplacian: false)
            let implicitNormal = NormalOperator(conv, sides: sides)
            let explicitNormal = NormalOperator(SymmetricGraphOperator(view: view), sides: sides)
            let (worst, scale) = compareBlockProducts(n: sides.count, width: 6, rng: &rng,
                                                      { implicitNormal.apply(block: $0, $1, count: $2) },
                                                      { explicitNormal.apply(block: $0, $1, count: $2) })
            XCTAssertNotNil(conv.convolutional, "\(name): the sampled-row check rejected the one-sided product")
            XCTAssertGreaterThan(scale, 0, name)
            XCTAssertLessThanOrEqual(worst, 1e-12 * scale, "\(name): BᵀB products")
            // The gap: both forms, and the adjacency's own solve.
            let a = try topometrics(g, only: ["spectral_gap"]), c = try topometrics(h, only: ["spectral_gap"])
            let top = try XCTUnwrap(a.topAbsEigenvalues), gap = try XCTUnwrap(a.spectralGap)
            XCTAssertEqual(top[0], top[1], "\(name): ±σ₁")
            XCTAssertEqual(try XCTUnwrap(c.spectralGap), gap, accuracy: 1e-9 * top[0], "\(name): implicit vs explicit")
            let full = topAbsEigenvalues(view, options: .wholeGraph)
            XCTAssertEqual(gap, full[0] - full[2], accuracy: 2e-5 * full[0], "\(name): normal matrix vs adjacency")
            XCTAssertEqual(top[0], full[0], accuracy: 1e-5 * full[0], "\(name): σ₁")
        }
        XCTAssertEqual(tested, ["conv6", "mobilenetv2", "vgg16"], "the bipartite zoo models")
    }

    /// A spectral solve cut short is reported on the implicit form's record as on the explicit
    /// form's (the bipartite gap and the Laplacian radius alike).
    func testUnconvergedSolveIsReportedOnTheImplicitForm() throws {
        let net = try Self.network("conv6", keep: 0.05)
        let h = try ImplicitGraph(net), g = try unroll(net)
        var short = LanczosOptions.wholeGraph
        short.maxRestarts = 0; short.basisSize = 8; short.tolerance = 1e-14; short.radiusSteps = 3; short.bracketTolerance = 1e-14
        let fields: Set<String> = ["spectral_gap", "spectral_radius"]
        let a = try topometrics(g, only: fields, lanczos: short), b = try topometrics(h, only: fields, lanczos: short)
        XCTAssertEqual(a.notes.map { $0.prefix(16) }, ["spectral_gap: th", "spectral_radius:"])
        XCTAssertEqual(b.notes, a.notes)
        XCTAssertEqual(try topometrics(h, only: fields).notes, [])
    }

    static func assertSameRecord(_ a: Topometrics, _ b: Topometrics, _ label: String) {
        let fa = a.orderedFields, fb = b.orderedFields
        XCTAssertEqual(fa.map(\.name), fb.map(\.name), label)
        XCTAssertEqual(fa.count, Topometrics.fieldNames.count, "\(label): every field computed")
        let scale = a.topAbsEigenvalues?.first ?? 1
        for (x, y) in zip(fa, fb) {
            switch (x.value, y.value) {
            case let (.int(i), .int(j)): XCTAssertEqual(i, j, "\(label): \(x.name)")
            case let (.double(u), .double(v)):
                // Spectral values are held to the spectrum's scale (a gap can be tiny).
                let own = x.name.hasPrefix("spectral") ? scale : max(abs(u), 1e-300)
                XCTAssertLessThanOrEqual(abs(u - v), 1e-9 * own, "\(label): \(x.name) \(u) vs \(v)")
            default: XCTFail("\(label): \(x.name) has kinds \(x.value) and \(y.value)")
            }
        }
    }
}
