import Foundation
import OracleSupport
import XCTest
@testable import Kernels

/// The ImageNet models and data (#23 deliverable 1): pooling with any window, stride and padding
/// against PyTorch, torchvision's ResNet-50 names and counts, a torchvision state dict loaded and
/// run, the MGE of an overlapping pool in both forms, and the ILSVRC folder reader against PIL +
/// torchvision's transform. Fixtures: Tests/Fixtures/imagenet (make_fixtures.py).
final class ImageNetModelTests: XCTestCase {
    static let fixtures = OracleLocation.packageRoot.appendingPathComponent("Tests/Fixtures/imagenet").path

    static func tensors(_ name: String) throws -> [String: SafeTensor] {
        var path = fixtures + "/" + name
        if name.hasSuffix(".zst") {
            let bytes = try Zstd.decompress([UInt8](try Data(contentsOf: URL(fileURLWithPath: path))), path: path)
            path = NSTemporaryDirectory() + "mge-imagenet-\(getpid())-" + name.dropLast(4)
            try Data(bytes).write(to: URL(fileURLWithPath: path))
        }
        defer { if name.hasSuffix(".zst") { try? FileManager.default.removeItem(atPath: path) } }
        return Dictionary(uniqueKeysWithValues: try SafeTensors.read(path: path).map { ($0.name, $0.tensor) })
    }

    static func manifest() throws -> [String: Any] {
        let data = try Data(contentsOf: URL(fileURLWithPath: fixtures + "/manifest.json"))
        return try XCTUnwrap(try JSONSerialization.jsonObject(with: data) as? [String: Any])
    }

    /// The reduced torchvision bottleneck ResNet of the fixtures: blocks [1, 1, 1, 1], width 8, 3×32×32.
    static func smallBottleneck(classes: Int = 10) -> Architecture {
        ModelZoo.bottleneckResNet(blocks: [1, 1, 1, 1], width: 8, input: [3, 32, 32], classes: classes, name: "small")
    }

    // MARK: Models

    /// torchvision's totals and resnet50's state-dict names and shapes, in order.
    func testResNet50AndVGG16MatchTorchvision() throws {
        let manifest = try Self.manifest()
        let resnet = try XCTUnwrap(ModelZoo.build("resnet50", classes: 1000))
        XCTAssertEqual(resnet.parameters.filter(\.isLearnable).reduce(0) { $0 + $1.count }, 25_557_032)
        XCTAssertEqual(manifest["resnet50_parameters"] as? Int, 25_557_032)
        let keys = try XCTUnwrap(manifest["resnet50_state_dict"] as? [[Any]])
        XCTAssertEqual(resnet.parameters.map(\.name), keys.map { $0[0] as? String ?? "" })
        XCTAssertEqual(resnet.parameters.map(\.shape), keys.map { $0[1] as? [Int] ?? [] })
        XCTAssertEqual(resnet.nodes[0].shape, [3, 224, 224])
        XCTAssertEqual(resnet.prunable.count, 54)
        let pool = try XCTUnwrap(resnet.node(named: "maxpool"))
        XCTAssertEqual(pool.op, .maxPool(PoolGeometry(kernel: 3, stride: 2, padding: 1)))
        XCTAssertEqual(pool.shape, [64, 56, 56])
        XCTAssertEqual(resnet.nodes.last?.shape, [1000])
        let vgg = try XCTUnwrap(ModelZoo.build("vgg16_imagenet", classes: 1000))
        XCTAssertEqual(vgg.parameters.filter(\.isLearnable).reduce(0) { $0 + $1.count }, 138_357_544)
        XCTAssertEqual(manifest["vgg16_parameters"] as? Int, 138_357_544)
        XCTAssertEqual(Self.smallBottleneck().parameters.filter(\.isLearnable).reduce(0) { $0 + $1.count },
                       manifest["bottleneck_parameters"] as? Int)
    }

    // MARK: Pooling

    /// torch's max_pool2d / avg_pool2d (float64) forward and backward on 2×3×9×10 maps.
    func testPoolingMatchesPyTorch() throws {
        let t = try Self.tensors("pooling.safetensors")
        let cases: [(String, Bool, PoolGeometry)] = [
            ("max_3_2_1", true, PoolGeometry(kernel: 3, stride: 2, padding: 1)),
            ("max_3_1_1", true, PoolGeometry(kernel: 3, stride: 1, padding: 1)),
            ("max_2_2_0", true, PoolGeometry(kernel: 2)),
            ("max_3_3_1", true, PoolGeometry(kernel: 3, stride: 3, padding: 1)),
            ("avg_3_2_1", false, PoolGeometry(kernel: 3, stride: 2, padding: 1)),
        ]
        for (name, isMax, pool) in cases {
            let x = try XCTUnwrap(t[name + ".x"]), g = try XCTUnwrap(t[name + ".g"])
            let y = try XCTUnwrap(t[name + ".y"]), dx = try XCTUnwrap(t[name + ".dx"])
            let (n, c, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
            XCTAssertEqual(y.shape, [n, c, pool.outputSize(h), pool.outputSize(w)], name)
            let xs = x.doubles, gs = g.doubles
            var out = [Double](repeating: 0, count: y.count), grad = [Double](repeating: 0, count: x.count)
            if isMax {
                var index = [Int32](repeating: 0, count: y.count)
                Pooling.maxForward(x: xs, planes: n * c, height: h, width: w, pool: pool, y: &out, argmax: &index)
                Pooling.scatterAdd(dy: gs, index: index, count: gs.count, dx: &grad)
                XCTAssertEqual(out, y.doubles, "\(name): forward")  // a max is exact
            } else {
                Pooling.averageForward(x: xs, planes: n * c, height: h, width: w, pool: pool, y: &out)
                Pooling.averageBackward(dy: gs, planes: n * c, height: h, width: w, pool: pool, dx: &grad)
                for (a, b) in zip(out, y.doubles) { XCTAssertEqual(a, b, accuracy: 1e-14, "\(name): forward") }
            }
            // Overlapping windows add several gradients into one pixel; sums in another order.
            for (a, b) in zip(grad, dx.doubles) { XCTAssertEqual(a, b, accuracy: 1e-13, "\(name): backward") }
        }
    }

    /// A torchvision bottleneck ResNet state dict (.pt, torchvision's own Bottleneck modules and
    /// names) loads through load_weights' reader and gives torch's eval logits, train-mode loss
    /// and gradients (the stem's gradient flows back through the 3×3/2 pad-1 max pool).
    func testTorchvisionStateDictLoadsAndRunsAsInPyTorch() throws {
        let bytes = try Zstd.decompress([UInt8](try Data(contentsOf: URL(fileURLWithPath: Self.fixtures + "/bottleneck.pt.zst"))), path: "bottleneck.pt.zst")
        let path = NSTemporaryDirectory() + "mge-bottleneck-\(getpid()).pt"
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        defer { try? FileManager.default.removeItem(atPath: path) }
        let net = Network(architecture: Self.smallBottleneck(), seed: 0)
        try net.loadStateDict(try TensorFile.read(path: path))
        let reference = try Self.tensors("bottleneck.reference.safetensors")
        let xRef = try XCTUnwrap(reference["x"])
        let x = Tensor(shape: xRef.shape, data: xRef.doubles.map(Float.init))
        let logits = try Execution.forward(net, x: x, train: false)
        let want = try XCTUnwrap(reference["logits"]).doubles
        let scale = want.map(abs).max() ?? 1
        for (a, b) in zip(logits.data, want) { XCTAssertEqual(Double(a), b, accuracy: 1e-4 * scale, "eval logits") }
        let labels = try XCTUnwrap(reference["labels"]).doubles.map { Int($0) }
        let loss = try Execution.loss(net, x: x, labels: labels)
        XCTAssertEqual(Double(loss), try XCTUnwrap(reference["loss"]).doubles[0], accuracy: 1e-4)
        // Gradients in float64 on the same pass (float32 rounding is amplified by the
        // training-mode BN of 1×1 maps over a batch of 2, so hold the exact arithmetic instead).
        var parameters: [String: [Double]] = [:]
        for spec in net.architecture.parameters where spec.isLearnable {
            parameters[spec.name] = try XCTUnwrap(net.parameters[spec.name]).data.map(Double.init)
        }
        let names = ["conv1.weight", "layer1.0.conv1.weight", "layer1.0.downsample.0.weight", "fc.weight"]
        let gradients = try FirstOrderPass<Double>.crossEntropyGradient(net.architecture, parameters: parameters,
                                                                        batch: Batch(images: x, labels: labels), wanted: Set(names)).gradients
        for name in names {
            let got = try XCTUnwrap(gradients[name]), expected = try XCTUnwrap(reference["grad." + name]).doubles
            XCTAssertEqual(got.count, expected.count, name)
            let own = expected.map(abs).max() ?? 1
            for (a, b) in zip(got, expected) { XCTAssertEqual(a, b, accuracy: 1e-9 * own, "gradient of \(name)") }
        }
    }

    // MARK: The MGE of an overlapping pool

    /// conv → max pool 3×3/2 pad 1 → 3×3 conv (so one pixel reaches one output through two
    /// windows: parallel edges) → max pool 3×3/2 pad 1 → 1×1 conv → avg pool 3/2/1 → flatten →
    /// linear (parallel edges again). Explicit edges = SPEC §3's wording enumerated naively;
    /// implicit = explicit, neighbour lists and every topometrics field.
    func testOverlappingPoolMGEBothFormsAgree() throws {
        var b = ArchitectureBuilder(input: [2, 12, 12])
        var x = b.relu(b.conv("c1", 0, out: 3, bias: true))
        x = b.maxPool(x, kernel: 3, stride: 2, padding: 1)
        x = b.relu(b.conv("c2", x, out: 4))
        x = b.maxPool(x, kernel: 3, stride: 2, padding: 1)
        x = b.conv("c3", x, out: 3, kernel: 1, padding: 0)
        x = b.avgPool(x, kernel: 3, stride: 2, padding: 1)
        x = b.flatten(x)
        _ = b.linear("fc", x, out: 5)
        let net = try UnrollFixtures.randomlyPruned(b.build(name: "pooled", classes: 5), keep: 0.6, seed: 4)
        let g = try unroll(net)
        let naive = try UnrollFixtures.naiveEdges(net, compat: .paper).sorted { ($0.0, $0.1, Float($0.2)) < ($1.0, $1.1, Float($1.2)) }
        let stored = UnrollFixtures.edgeList(g).sorted { ($0.0, $0.1, Float($0.2)) < ($1.0, $1.1, Float($1.2)) }
        XCTAssertEqual(stored.count, naive.count)
        XCTAssertTrue(zip(stored, naive).allSatisfy { $0.0 == $1.0 && $0.1 == $1.1 && $0.2 == $1.2 }, "edges differ from SPEC §3's enumeration")
        var pairs = Set<UInt64>(), repeated = 0
        for e in stored where !pairs.insert(UInt64(e.0) << 32 | UInt64(e.1)).inserted { repeated += 1 }
        XCTAssertGreaterThan(repeated, 0, "the 3×3 conv after an overlapping pool makes parallel edges")
        let h = try ImplicitGraph(net)
        XCTAssertFalse(h.isSimple)
        XCTAssertEqual(h.edgeCount, g.edgeCount)
        var list = EdgeList()
        for v in 0 ..< g.nodeCount {
            h.outEdges(of: v, into: &list)
            let o = g.outOffsets[v] ..< g.outOffsets[v + 1]
            guard list.targets == Array(g.outTargets[o]), list.weights == Array(g.outWeights[o]) else { return XCTFail("out-edges of \(v) differ") }
            h.inEdges(of: v, into: &list)
            let i = g.inOffsets[v] ..< g.inOffsets[v + 1]
            guard list.targets == Array(g.inSources[i]), list.weights == Array(g.inWeights[i]) else { return XCTFail("in-edges of \(v) differ") }
        }
        let explicit = try topometrics(g, compat: .paper, motifs: .defaultMode, lanczos: .wholeGraph)
        let implicit = try topometrics(h, compat: .paper, motifs: .defaultMode, lanczos: .wholeGraph)
        ImplicitGraphTests.assertSameRecord(explicit, implicit, "overlapping pools")
    }

    /// A pruned reduced ResNet-50: its pool feeds only 1×1 convs, so the MGE stays simple (the
    /// implicit form's fast paths) although the pooled partition's rows come out unsorted; every
    /// topometrics field equals the explicit form's.
    func testPrunedBottleneckImplicitEqualsExplicit() throws {
        let net = try UnrollFixtures.randomlyPruned(Self.smallBottleneck(), keep: 0.05, seed: 2)
        let g = try unroll(net)
        let h = try ImplicitGraph(net)
        XCTAssertTrue(h.isSimple)
        XCTAssertEqual(h.edgeCount, g.edgeCount)
        let explicit = try topometrics(g, compat: .paper, motifs: .defaultMode, lanczos: .wholeGraph)
        let implicit = try topometrics(h, compat: .paper, motifs: .defaultMode, lanczos: .wholeGraph)
        ImplicitGraphTests.assertSameRecord(explicit, implicit, "pruned bottleneck")
    }

    /// The implicit form's fast paths take overlapping and padded pools (ResNet-50's stem
    /// 3×3/2 pad 1; a 3×3/1 pad-1 average pool; a 2×2 tile before a flatten): on a reduced
    /// ResNet-50 and on a plain net where each such pool feeds 1×1 convs (so the MGE stays
    /// simple), the masked-conv product — pooled once, conv, transpose scattered over the
    /// windows — equals the product over generated rows (adjacency and Laplacian, both lane
    /// widths) to rounding, is kept by its own sampled-row check, and two_hop's translation
    /// classes cover the pooled partitions and equal the count over every node; every
    /// topometrics field equals the explicit form's.
    func testOverlappingPaddedPoolFastPathsEqualGeneratedRows() throws {
        var b = ArchitectureBuilder(input: [2, 20, 20])
        var x = b.relu(b.conv("c1", 0, out: 3))
        x = b.maxPool(x, kernel: 3, stride: 2, padding: 1)
        x = b.relu(b.conv("c2", x, out: 4, kernel: 1, padding: 0))
        x = b.avgPool(x, kernel: 3, stride: 1, padding: 1)
        x = b.relu(b.conv("c3", x, out: 3, kernel: 1, padding: 0))
        x = b.relu(b.conv("c4", x, out: 4, stride: 2))
        x = b.maxPool(x, kernel: 2)
        x = b.flatten(x)
        _ = b.linear("fc", x, out: 5)
        let plain = try UnrollFixtures.randomlyPruned(b.build(name: "padded pools", classes: 5), keep: 0.5, seed: 6)
        let bottleneck = try UnrollFixtures.randomlyPruned(Self.smallBottleneck(), keep: 0.2, seed: 2)
        for (label, net) in [("padded pools", plain), ("bottleneck", bottleneck)] {
            let h = try ImplicitGraph(net)
            XCTAssertTrue(h.isSimple, label)
            XCTAssertNotNil(MaskedConvProduct(h), "\(label): no convolutional product")
            var rng = SeededGenerator(seed: 9)
            for laplacian in [false, true] {
                for width in [3, 6] {
                    let conv = ImplicitSymmetricOperator(h, laplacian: laplacian)
                    let rows = ImplicitSymmetricOperator(h, laplacian: laplacian, convolutional: false)
                    let (worst, scale) = compareBlockProducts(n: h.nodeCount, width: width, rng: &rng,
                                                              { conv.apply(block: $0, $1, count: $2) }, { rows.apply(block: $0, $1, count: $2) })
                    XCTAssertNotNil(conv.convolutional, "\(label): the sampled-row check rejected the product")
                    XCTAssertGreaterThan(scale, 0, label)
                    XCTAssertLessThanOrEqual(worst, 1e-12 * scale, "\(label) laplacian=\(laplacian) width=\(width)")
                }
            }
            // Every partition read through an overlapping or padded pool has classes.
            for layer in h.plan.layers where !layer.pool.isTiling && layer.pool != .identity {
                XCTAssertNotNil(TwoHopClasses.axisClasses(h, partition: layer.sourcePartition),
                                "\(label): no classes for '\(h.partitions[layer.sourcePartition].name)', read through a padded pool")
            }
            let classes = TwoHopClasses(h)
            XCTAssertLessThan(classes.nodes.count * 2, h.nodeCount, "\(label): few classes")
            let counted = twoHopCount(h, classes: true, progress: nil)
            XCTAssertTrue(counted.classesHeld, "\(label): the classes failed their self-check")
            XCTAssertEqual(counted.total, twoHopTotal(h, classes: false), label)
            let g = try unroll(net)
            let explicit = try topometrics(g, compat: .paper, motifs: .defaultMode, lanczos: .wholeGraph)
            let implicit = try topometrics(h, compat: .paper, motifs: .defaultMode, lanczos: .wholeGraph)
            ImplicitGraphTests.assertSameRecord(explicit, implicit, label)
        }
    }

    /// The MGE edge count of a dense reduced ResNet-50 (blocks [1, 1, 1, 1], width 4, 3×32×32)
    /// against a closed form per layer: a dense conv has C_in·C_out·T(rows)·T(columns) edges,
    /// T the number of (tap, output) pairs landing on a real pixel along one axis; reading the
    /// 3×3/2 pad-1 pooled map, a 1×1 conv's T is the pooled windows' total size 3n/2 − 1.
    func testDenseBottleneckEdgeCountHasClosedForm() throws {
        let arch = ModelZoo.bottleneckResNet(blocks: [1, 1, 1, 1], width: 4, input: [3, 32, 32], classes: 10, name: "dense")
        let net = Network(architecture: arch, seed: 0)
        // T along one axis of an n-pixel input (n even): 7x7/2 on the kept padded input: k·n/2;
        // 3x3/1 pad 1: 3n − 2; 3x3/2 pad 1: 3(n/2) − 1; 1x1 stride s: n/s.
        func stem(_ n: Int) -> Int { 7 * (n / 2) }
        func three(_ n: Int, _ s: Int) -> Int { s == 1 ? 3 * n - 2 : 3 * (n / 2) - 1 }
        var expected = 3 * 4 * stem(32) * stem(32)              // conv1: 3 → 4, 32 → 16
        let pooled = 3 * 16 / 2 - 1                              // maxpool 16 → 8, windows 2 + 3 + … + 3
        var n = 8, inC = 4
        for (stage, planes) in [4, 8, 16, 32].enumerated() {
            let s = stage == 0 ? 1 : 2
            let t1 = stage == 0 ? pooled : n                     // layer1 reads the pooled map
            expected += inC * planes * t1 * t1                  // conv1 1x1
            expected += planes * planes * three(n, s) * three(n, s)  // conv2 3x3 stride s
            let m = n / s
            expected += planes * planes * 4 * m * m             // conv3 1x1
            let tDown = stage == 0 ? pooled : m                  // downsample 1x1 stride s
            expected += inC * planes * 4 * tDown * tDown
            inC = planes * 4; n = m
        }
        expected += 128 * 10 * n * n                             // fc over the global average pool
        XCTAssertEqual(n, 1)
        let g = try unroll(net)
        XCTAssertEqual(g.edgeCount, expected)
        XCTAssertEqual(try ImplicitGraph(net).edgeCount, expected)
    }

    // MARK: ILSVRC folder and transform

    /// The tiny ILSVRC-layout folder: classes are the sorted wnid folders, samples sorted by
    /// label then file name, and each batch is PIL's decode + torchvision's Resize(256) +
    /// CenterCrop(224) (the fixture, computed once with Pillow 13) normalised with ImageNet's
    /// statistics. Both decode with libjpeg-turbo's default (islow) IDCT and resize with PIL's
    /// antialiased bilinear filter in fixed point, so the bytes should agree exactly; a 1-level
    /// difference (another libjpeg-turbo build) is tolerated on at most 1 % of the values.
    func testImageNetFolderMatchesTorchvisionTransform() throws {
        let expected = try Self.tensors("transform.safetensors.zst")
        for (split, names) in [(Dataset.Split.train, ["train/n01440764/a.JPEG", "train/n01440764/b.JPEG", "train/n02102040/c.JPEG", "train/n02102040/d.JPEG"]),
                               (.test, ["val/n01440764/e.JPEG", "val/n02102040/f.JPEG"])] {
            let data = try Dataset.imageNet(path: Self.fixtures + "/folder", split: split)
            XCTAssertEqual(data.classes, 2)
            XCTAssertEqual(data.sampleShape, [3, 224, 224])
            XCTAssertEqual(data.labels, names.map { $0.contains("n01440764") ? 0 : 1 })
            let batch = try data.batch(indices: Array(0 ..< names.count))
            let mean = Normalization.imageNet.mean, std = Normalization.imageNet.std
            let plane = 224 * 224, sample = 3 * plane
            for (i, name) in names.enumerated() {
                let bytes = try XCTUnwrap(expected[name]).doubles
                XCTAssertEqual(bytes.count, sample)
                var off = 0, worst = 0.0
                for k in 0 ..< sample {
                    let c = k / plane
                    let level = (Double(batch.images.data[i * sample + k]) * Double(std[c]) + Double(mean[c])) * 255
                    let d = abs(level - bytes[k])
                    worst = max(worst, d)
                    if d > 0.01 { off += 1 }
                }
                XCTAssertLessThanOrEqual(worst, 1.01, "\(name): pixel levels")
                XCTAssertLessThanOrEqual(off, sample / 100, "\(name): \(off) values off by one level")
            }
        }
    }

    func testMissingImageNetSaysWhatAndWhere() throws {
        let empty = NSTemporaryDirectory() + "mge-no-imagenet-\(getpid())"
        try FileManager.default.createDirectory(atPath: empty, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: empty) }
        XCTAssertThrowsError(try Dataset.imageNet(path: empty, split: .test)) { error in
            let text = "\(error)"
            XCTAssertTrue(text.contains(empty + "/val/<wnid>/*.JPEG"), text)
            XCTAssertTrue(text.contains("ImageFolder layout"), text)
        }
        // A class folder without images is named.
        try FileManager.default.createDirectory(atPath: empty + "/train/n01440764", withIntermediateDirectories: true)
        XCTAssertThrowsError(try Dataset.imageNet(path: empty, split: .train)) { XCTAssertTrue("\($0)".contains("n01440764 has no JPEG"), "\($0)") }
        // A file that is not a JPEG is named when its batch is read.
        try Data("not a jpeg".utf8).write(to: URL(fileURLWithPath: empty + "/train/n01440764/x.JPEG"))
        let data = try Dataset.imageNet(path: empty, split: .train)
        XCTAssertThrowsError(try data.batch(indices: [0])) { XCTAssertTrue("\($0)".contains("x.JPEG"), "\($0)") }
        var iterator = try data.batches(size: 1).makeIterator()
        XCTAssertThrowsError(try iterator.nextBatch())
    }

    func testSyntheticTakesAShape() throws {
        let d = try Dataset.synthetic(classes: 1000, n: 3, seed: 1, shape: [3, 224, 224])
        let b = try d.batch(indices: [0, 2])
        XCTAssertEqual(b.images.shape, [2, 3, 224, 224])
        XCTAssertTrue(b.labels.allSatisfy { $0 >= 0 && $0 < 1000 })
        // The default shape keeps the CIFAR-sized noise it always gave.
        XCTAssertEqual(try Dataset.synthetic(seed: 1).batch(indices: [0]).images.shape, [1, 3, 32, 32])
        XCTAssertThrowsError(try Dataset.synthetic(shape: [3, 0, 4]))
    }
}

extension SafeTensor {
    /// The values as Double (float64 exactly; other types through `floats`).
    var doubles: [Double] {
        guard dtype == .f64 else { return floats.map(Double.init) }
        return bytes.withUnsafeBytes { raw in (0 ..< count).map { raw.loadUnaligned(fromByteOffset: 8 * $0, as: Double.self) } }
    }
}
