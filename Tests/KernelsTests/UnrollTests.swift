import OracleSupport
import XCTest
@testable import Kernels

/// Helpers shared by the unrolled-encoding tests.
enum UnrollFixtures {
    /// Seeded Bernoulli masks: every prunable weight kept with probability `keep`.
    static func randomlyPruned(_ architecture: Architecture, keep: Double, seed: UInt64) throws -> Network {
        let net = Network(architecture: architecture, seed: seed)
        var rng = SeededGenerator(seed: seed &+ 17)
        for spec in architecture.prunable {
            try net.setMask(spec.name, (0 ..< spec.count).map { _ in rng.uniform() < keep ? 1 : 0 })
        }
        return net
    }

    /// An oracle case's network with its pruned weights and masks loaded.
    static func oracleNetwork(_ dir: String) throws -> (Network, [String: Any]) {
        (try Oracle.network(dir), try OracleCase.expected(dir))
    }

    static func degrees(_ g: Graph) -> (inDegree: [Int64], outDegree: [Int64]) {
        ((0 ..< g.nodeCount).map { Int64(g.inDegree($0)) }, (0 ..< g.nodeCount).map { Int64(g.outDegree($0)) })
    }

    /// Compares degree arrays node by node; names the first differing node and its partition.
    static func assertDegrees(_ g: Graph, _ file: [String: SafeTensor], _ label: String,
                              file testFile: StaticString = #filePath, line: UInt = #line) throws {
        let expectedIn = try XCTUnwrap(file["in_degree"]?.integers, label)
        let expectedOut = try XCTUnwrap(file["out_degree"]?.integers, label)
        let sizes = try XCTUnwrap(file["layer_sizes"]?.integers, label)
        XCTAssertEqual(g.partitions.map { Int64($0.count) }, sizes, "\(label): layer sizes", file: testFile, line: line)
        let (gotIn, gotOut) = degrees(g)
        XCTAssertEqual(gotIn.count, expectedIn.count, label, file: testFile, line: line)
        for (name, got, want) in [("in", gotIn, expectedIn), ("out", gotOut, expectedOut)] {
            let wrong = zip(got, want).enumerated().filter { $0.element.0 != $0.element.1 }
            if let first = wrong.first {
                let p = g.partitions[g.partitionIndex(of: first.offset)]
                XCTFail("\(label): \(wrong.count) nodes differ in \(name)-degree; first node \(first.offset) (\(p.name) local \(first.offset - p.start)) has \(first.element.0), expected \(first.element.1)",
                        file: testFile, line: line)
            }
        }
    }

    /// Every edge written out by brute force from SPEC §3's wording, loop over nonzero weight
    /// and output position, in both modes; sorted by (source, target).
    static func naiveEdges(_ net: Network, compat: UnrollCompat) throws -> [(UInt32, UInt32, Float16)] {
        let plan = try UnrollPlan(net.architecture, compat: compat)
        var edges: [(UInt32, UInt32, Float16)] = []
        for layer in plan.layers {
            let w = try XCTUnwrap(net.parameters[layer.name + ".weight"]).data
            let source = plan.partitions[layer.sourcePartition]
            let target = plan.partitions[layer.targetPartition]
            switch layer.kind {
            case .conv(let c):
                let k = c.kernel, inPer = c.inChannels / c.groups, outPer = c.outChannels / c.groups
                let h = layer.inputShape[1], wd = layer.inputShape[2]
                let oh = layer.outputShape[1], ow = layer.outputShape[2]
                let padded = layer.sourcePartition == 0 && plan.inputPadding > 0
                for o in 0 ..< c.outChannels { for j in 0 ..< inPer { for a in 0 ..< k { for b in 0 ..< k {
                    let v = w[((o * inPer + j) * k + a) * k + b]
                    if v == 0 { continue }
                    let i = (o / outPer) * inPer + j
                    for y in 0 ..< oh { for x in 0 ..< ow {
                        var src: Int, dst = target.start + (o * oh + y) * ow + x
                        if layer.croppedLeftGrid {
                            // Grid of the input padded then cropped to (H+1)², ring deleted:
                            // kept padded rows/cols 1 ... H−1, renumbered from 0.
                            let pr = y * c.stride + a, pc = x * c.stride + b
                            guard pr >= 1, pr <= h - 1, pc >= 1, pc <= wd - 1 else { continue }
                            let left = (i * (h - 1) + (pr - 1)) * (wd - 1) + (pc - 1)
                            src = source.start + left
                            dst = source.start + c.inChannels * (h - 1) * (wd - 1) + (o * oh + y) * ow + x
                        } else if padded {
                            let pr = y * c.stride + a, pc = x * c.stride + b
                            src = source.start + (i * source.shape[1] + pr) * source.shape[2] + pc
                        } else {
                            let r = y * c.stride + a - c.padding, q = x * c.stride + b - c.padding
                            guard r >= 0, r < h, q >= 0, q < wd else { continue }
                            // Expand a pooled pixel to its window in the source partition.
                            for sr in layer.pool.window(r, size: source.shape[1]) { for sq in layer.pool.window(q, size: source.shape[2]) {
                                src = source.start + (i * source.shape[1] + sr) * source.shape[2] + sq
                                edges.append((UInt32(src), UInt32(dst), Float16(abs(v))))
                            } }
                            continue
                        }
                        edges.append((UInt32(src), UInt32(dst), Float16(abs(v))))
                    } }
                } } } }
            case .linear(let l):
                for o in 0 ..< l.outFeatures { for f in 0 ..< l.inFeatures {
                    let v = w[o * l.inFeatures + f]
                    if v == 0 { continue }
                    let dst = target.start + o
                    if let m = layer.flattenedShape {
                        let ch = f / (m[1] * m[2]), r = (f / m[2]) % m[1], q = f % m[2]
                        for sr in layer.pool.window(r, size: source.shape[1]) { for sq in layer.pool.window(q, size: source.shape[2]) {
                            let src = source.start + (ch * source.shape[1] + sr) * source.shape[2] + sq
                            edges.append((UInt32(src), UInt32(dst), Float16(abs(v))))
                        } }
                    } else {
                        edges.append((UInt32(source.start + f), UInt32(dst), Float16(abs(v))))
                    }
                } }
            }
        }
        edges.sort { ($0.0, $0.1) < ($1.0, $1.1) }
        return edges
    }

    static func edgeList(_ g: Graph) -> [(UInt32, UInt32, Float16)] {
        var out: [(UInt32, UInt32, Float16)] = []
        for u in 0 ..< g.nodeCount { for e in g.outOffsets[u] ..< g.outOffsets[u + 1] { out.append((UInt32(u), g.outTargets[e], g.outWeights[e])) } }
        return out
    }
}

final class UnrollTests: XCTestCase {
    /// SPEC §3 node counts for the five models on 10, 100 and 200 classes.
    func testNodeCountsOfAllModels() throws {
        let expected: [String: [Int]] = [
            "conv6": [233366, 233456, 233556], "resnet20": [191894, 191984, 192084],
            "resnet32": [306582, 306672, 306772], "wrn28_2": [478614, 478704, 478804],
            "mobilenetv2": [1676182, 1676272, 1676372],
        ]
        for (model, counts) in expected {
            for (classes, count) in zip([10, 100, 200], counts) {
                let arch = try XCTUnwrap(ModelZoo.build(model, classes: classes))
                for compat in UnrollCompat.allCases {
                    let plan = try UnrollPlan(arch, compat: compat)
                    XCTAssertEqual(plan.nodeCount, count, "\(model) \(classes) \(compat)")
                    XCTAssertEqual(plan.partitions.first?.count, 3468, model)
                    XCTAssertEqual(plan.partitions.last?.count, classes, model)
                }
            }
        }
    }

    func testPartitionNamesFollowPyTorchModulesAndShortcutsTargetBlockOutputs() throws {
        let plan = try UnrollPlan(ModelZoo.resnet(depth: 20, classes: 10))
        let names = plan.partitions.map(\.name)
        XCTAssertEqual(names.prefix(4), ["input", "conv1", "layer1.0.conv1", "layer1.0.conv2"])
        XCTAssertEqual(names.last, "linear")
        XCTAssertEqual(names.count, 21)
        XCTAssertFalse(names.contains { $0.contains("shortcut") })
        let shortcut = try XCTUnwrap(plan.layers.first { $0.name == "layer2.0.shortcut.0" })
        XCTAssertTrue(shortcut.isShortcut)
        XCTAssertEqual(plan.partitions[shortcut.sourcePartition].name, "layer1.2.conv2")
        XCTAssertEqual(plan.partitions[shortcut.targetPartition].name, "layer2.0.conv2")
        let linear = try XCTUnwrap(plan.layers.last)
        XCTAssertEqual(linear.pool, PoolGeometry(kernel: 8))
        XCTAssertEqual(linear.flattenedShape, [64, 1, 1])
        let conv6 = try UnrollPlan(ModelZoo.conv6(classes: 10))
        XCTAssertEqual(conv6.partitions.map(\.name), ["input", "convs1.0", "convs1.3", "convs1.7", "convs1.10",
                                                      "convs1.14", "convs1.17", "linear.0", "linear.3", "linear.6"])
        XCTAssertEqual(conv6.layers[2].pool, PoolGeometry(kernel: 2))
        let wrn = try UnrollPlan(ModelZoo.wideResNet(depth: 28, widen: 2, classes: 10))
        let wrnShortcut = try XCTUnwrap(wrn.layers.first { $0.name == "block2.layer.0.convShortcut" })
        XCTAssertEqual(wrn.partitions[wrnShortcut.sourcePartition].name, "block1.layer.3.conv2")
        XCTAssertEqual(wrn.partitions[wrnShortcut.targetPartition].name, "block2.layer.0.conv2")
    }

    /// `compat: .reference` reproduces the reference's edge count and every node's degrees.
    func testReferenceModeMatchesOracleNodeByNode() throws {
        var checked = 0
        for dir in OracleLocation.cases() where FileManager.default.fileExists(atPath: dir + "/mge.safetensors") {
            let (net, expected) = try UnrollFixtures.oracleNetwork(dir)
            let g = try unroll(net, compat: .reference)
            let mge = try XCTUnwrap(expected["mge"] as? [String: Any], dir)
            XCTAssertEqual(g.nodeCount, mge["nodes"] as? Int, dir)
            XCTAssertEqual(g.edgeCount, mge["edges"] as? Int, dir)
            let weightSum = g.outWeights.reduce(0.0) { $0 + Double($1) }
            let expectedSum = try XCTUnwrap(OracleCase.number(mge["weight_sum"]), dir)
            XCTAssertEqual(weightSum, expectedSum, accuracy: 1e-9 * expectedSum, dir)
            try UnrollFixtures.assertDegrees(g, SafeTensors.readDictionary(path: dir + "/mge.safetensors"), dir)
            checked += 1
        }
        XCTAssertGreaterThanOrEqual(checked, OracleLocation.source == .full ? 8 : 4)   // the subset has four
    }

    /// The default paper mode matches the independent implementation's degrees node by node.
    func testPaperModeMatchesOraclePaperDegrees() throws {
        var checked = 0
        for dir in OracleLocation.cases() where FileManager.default.fileExists(atPath: dir + "/mge_paper.safetensors") {
            let (net, _) = try UnrollFixtures.oracleNetwork(dir)
            let g = try unroll(net)
            try UnrollFixtures.assertDegrees(g, SafeTensors.readDictionary(path: dir + "/mge_paper.safetensors"), dir)
            checked += 1
        }
        XCTAssertGreaterThanOrEqual(checked, OracleLocation.source == .full ? 8 : 4)   // the subset has four
    }

    /// Number of output positions y in 0 ..< outSize whose tap a reads a real input row:
    /// 0 ≤ y·s + a − p < inSize, solved in closed form (or every y on the padded input).
    static func validPositions(tap a: Int, stride s: Int, padding p: Int, inSize: Int, outSize: Int, paddedInput: Bool) -> Int {
        if paddedInput { return outSize }
        // y ≥ ceil((p − a) / s) and y ≤ floor((inSize − 1 + p − a) / s)
        let lowNumerator = p - a
        let low = lowNumerator <= 0 ? 0 : (lowNumerator + s - 1) / s
        let highNumerator = inSize - 1 + p - a
        guard highNumerator >= 0 else { return 0 }
        let high = min(outSize - 1, highNumerator / s)
        return max(0, high - low + 1)
    }

    /// Paper mode, for every pair of partitions, has exactly as many edges as valid kernel taps
    /// counted in closed form from masks and shapes (times the pooling window), and edges only
    /// between consecutive partitions or along a shortcut (block input → block output).
    func testPaperModeEqualsClosedFormTapCountAndIsMultipartite() throws {
        var nets: [(String, Network)] = []
        for dir in OracleLocation.cases() { let (net, _) = try UnrollFixtures.oracleNetwork(dir); nets.append((dir, net)) }
        for model in ModelZoo.names {
            let arch = try XCTUnwrap(ModelZoo.build(model, classes: 100))
            nets.append((model, try UnrollFixtures.randomlyPruned(arch, keep: model == "mobilenetv2" ? 0.02 : 0.05, seed: 7)))
        }
        nets.append(("toy", try UnrollFixtures.randomlyPruned(ModelZoo.toy(), keep: 0.6, seed: 3)))
        for (label, net) in nets {
            let g = try unroll(net)
            let plan = try UnrollPlan(net.architecture)
            var expected: [[Int]: Int] = [:]
            var shortcutPairs = Set<[Int]>()
            for layer in plan.layers {
                let mask = try XCTUnwrap(net.masks[layer.name + ".weight"])
                let pair = [layer.sourcePartition, layer.targetPartition]
                if layer.isShortcut { shortcutPairs.insert(pair) }
                let window = layer.pool.kernel * layer.pool.kernel  // tiling pools without remainder here
                switch layer.kind {
                case .conv(let c):
                    let k = c.kernel
                    let padded = layer.sourcePartition == 0
                    var count = 0
                    for (index, kept) in mask.enumerated() where kept != 0 {
                        let a = (index / k) % k, b = index % k
                        count += Self.validPositions(tap: a, stride: c.stride, padding: c.padding, inSize: layer.inputShape[1],
                                                     outSize: layer.outputShape[1], paddedInput: padded)
                            * Self.validPositions(tap: b, stride: c.stride, padding: c.padding, inSize: layer.inputShape[2],
                                                  outSize: layer.outputShape[2], paddedInput: padded)
                    }
                    expected[pair, default: 0] += count * window
                case .linear:
                    expected[pair, default: 0] += mask.reduce(0) { $0 + Int($1) } * window
                }
            }
            var got: [[Int]: Int] = [:]
            var pairOfNode = [Int](repeating: 0, count: g.nodeCount)
            for (i, p) in g.partitions.enumerated() { for v in p.range { pairOfNode[v] = i } }
            for u in 0 ..< g.nodeCount {
                var previous = -1
                for e in g.outOffsets[u] ..< g.outOffsets[u + 1] {
                    let t = Int(g.outTargets[e])
                    XCTAssertGreaterThan(t, previous, "\(label): targets of \(u) not strictly ascending")
                    previous = t
                    got[[pairOfNode[u], pairOfNode[t]], default: 0] += 1
                }
            }
            XCTAssertEqual(got.filter { $0.value > 0 }, expected.filter { $0.value > 0 }, label)
            for pair in got.keys {
                let consecutive = pair[1] == pair[0] + 1
                XCTAssertTrue(consecutive || shortcutPairs.contains(pair), "\(label): edges \(pair) are not multipartite")
                if shortcutPairs.contains(pair) {
                    // Block input → block output: the block's main path starts at the same
                    // partition and the shortcut jumps over at least one of its convs.
                    XCTAssertGreaterThan(pair[1], pair[0] + 1, "\(label): shortcut \(pair)")
                    XCTAssertTrue(plan.layers.contains { !$0.isShortcut && $0.sourcePartition == pair[0] && $0.targetPartition == pair[0] + 1 },
                                  "\(label): shortcut \(pair) does not leave a block input")
                }
            }
        }
    }

    /// CONV-6 has no stride-2 convs, so the two modes give the same graph.
    func testPaperEqualsReferenceOnConv6() throws {
        let dir = try OracleLocation.directory(of: "CONV-6-CIFAR-10-erk-0.98-s0")
        let (net, _) = try UnrollFixtures.oracleNetwork(dir)
        let paper = try unroll(net), reference = try unroll(net, compat: .reference)
        XCTAssertGreaterThan(paper.edgeCount, 0)
        XCTAssertEqual(paper.outOffsets, reference.outOffsets)
        XCTAssertEqual(paper.outTargets, reference.outTargets)
        XCTAssertEqual(paper.outWeights, reference.outWeights)
        // ResNet-20 has stride-2 convs: there the modes must differ.
        let resnet = try UnrollFixtures.randomlyPruned(ModelZoo.resnet(depth: 20, classes: 10), keep: 0.05, seed: 1)
        XCTAssertNotEqual(try unroll(resnet).outTargets, try unroll(resnet, compat: .reference).outTargets)
    }

    /// Every edge and weight equals a brute-force loop over weights and output positions
    /// written from SPEC §3's text, in both modes, and the in-adjacency mirrors the out-adjacency.
    func testEdgesEqualBruteForceInBothModes() throws {
        let cases: [(String, Network)] = [
            ("toy", try UnrollFixtures.randomlyPruned(ModelZoo.toy(), keep: 0.7, seed: 5)),
            ("toy dense", Network(architecture: ModelZoo.toy(classes: 4, input: [2, 8, 8]), seed: 2)),
            ("resnet20", try UnrollFixtures.randomlyPruned(ModelZoo.resnet(depth: 20, classes: 10), keep: 0.03, seed: 2)),
            ("wrn", try UnrollFixtures.randomlyPruned(ModelZoo.wideResNet(depth: 28, widen: 2, classes: 10), keep: 0.01, seed: 2)),
            ("conv6", try UnrollFixtures.randomlyPruned(ModelZoo.conv6(classes: 10), keep: 0.002, seed: 2)),
            ("mobilenetv2", try UnrollFixtures.randomlyPruned(ModelZoo.mobileNetV2(classes: 10), keep: 0.005, seed: 2)),
        ]
        for (label, net) in cases {
            for compat in UnrollCompat.allCases {
                let g = try unroll(net, compat: compat)
                let naive = try UnrollFixtures.naiveEdges(net, compat: compat)
                let got = UnrollFixtures.edgeList(g)
                XCTAssertEqual(got.count, naive.count, "\(label) \(compat)")
                if let i = (0 ..< min(got.count, naive.count)).first(where: { got[$0] != naive[$0] }) {
                    XCTFail("\(label) \(compat): edge \(i) is \(got[i]), expected \(naive[i])")
                }
                let mirror = Graph(nodeCount: g.nodeCount, partitions: g.partitions, outOffsets: g.outOffsets,
                                   outTargets: g.outTargets, outWeights: g.outWeights)
                XCTAssertEqual(g.inOffsets, mirror.inOffsets, label)
                XCTAssertEqual(g.inSources, mirror.inSources, label)
                XCTAssertEqual(g.inWeights, mirror.inWeights, label)
            }
        }
    }

    func testMaskStatesAndErrors() throws {
        // All weights pruned: nodes stay, edges vanish.
        let empty = try UnrollFixtures.randomlyPruned(ModelZoo.toy(), keep: 0, seed: 1)
        let g = try unroll(empty)
        XCTAssertEqual(g.edgeCount, 0)
        XCTAssertEqual(g.nodeCount, 64 + 72 + 27 + 27 + 3)
        // An MLP on the raw input: no padding ring, one edge per weight.
        var b = ArchitectureBuilder(input: [1, 4, 4])
        _ = b.linear("head", b.flatten(0), out: 2)
        let arch = b.build(name: "mlp", classes: 2)
        let plan = try UnrollPlan(arch)
        XCTAssertEqual(plan.partitions.map(\.count), [16, 2])
        XCTAssertEqual(try unroll(Network(architecture: arch, seed: 0)).edgeCount, 32)
    }
}
