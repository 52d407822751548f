import XCTest
@testable import Kernels

/// Node queries on the implicit MGE (#23): the same answers as on the explicit form of the same
/// net (ids, order, degrees, paths), the walks checked against a plain stack search, and a
/// 224×224 VGG-16 answered without any edge list.
final class ImplicitNodeQueriesTests: XCTestCase {
    /// Nodes worth asking about in every partition: its first and last node, the corners of a
    /// feature map (borders, where padding cuts kernels), its centre, and a middle channel.
    static func probes(_ g: any MultipartiteGraph) -> [Int] {
        var out: [Int] = []
        for (p, part) in g.partitions.enumerated() {
            out += [part.start, part.start + part.count - 1]
            if part.shape.count == 3 {
                let (c, h, w) = (part.shape[0], part.shape[1], part.shape[2])
                for coordinates in [[0, 0, w - 1], [c - 1, h - 1, 0], [c / 2, h / 2, w / 2], [c / 3, 0, w / 2]] {
                    if let v = g.node(partition: p, coordinates: coordinates) { out.append(v) }
                }
            } else {
                out.append(part.start + part.count / 2)
            }
        }
        return out
    }

    /// Reachability by a plain stack search with a flag per node (the walk the sweep replaces).
    static func stackReachable(_ g: any MultipartiteGraph, from targets: [Int], _ direction: EdgeDirection) -> [Int] {
        var seen = [Bool](repeating: false, count: g.nodeCount)
        var stack = targets
        for v in targets { seen[v] = true }
        while let u = stack.popLast() {
            g.forEachNeighbour(of: u, direction) { v in if !seen[v] { seen[v] = true; stack.append(v) } }
        }
        return seen.indices.filter { seen[$0] }
    }

    /// Every query on both forms of ResNet-20 (both compat modes: the reference's stride-2
    /// quirk puts edges against the id order, which the sweep must follow back), CONV-6 (max
    /// pooling) and VGG-16 CIFAR (pooled stages, a linear classifier).
    func testEveryQueryEqualsTheExplicitForm() throws {
        let cases: [(String, Double, [UnrollCompat])] = [("resnet20", 0.05, UnrollCompat.allCases), ("conv6", 0.02, [.paper]),
                                                         ("vgg16", 0.004, [.paper])]
        for (name, keep, modes) in cases {
            let net = try ImplicitGraphTests.network(name, keep: keep)
            for compat in modes {
                let g = try unroll(net, compat: compat)
                let h = try ImplicitGraph(net, compat: compat)
                let label = "\(name) \(compat)"
                XCTAssertEqual(h.sinks, g.sinks, label)
                XCTAssertEqual(h.sources, g.sources, label)
                XCTAssertEqual(h.isolated, g.isolated, label)
                let probes = Self.probes(g)
                XCTAssertEqual(probes, Self.probes(h), label)
                for v in probes {
                    let at = "\(label) node \(v)"
                    XCTAssertTrue(h.coordinates(of: v) == g.coordinates(of: v), at)
                    XCTAssertEqual(h.inDegree(v), g.inDegree(v), at)
                    XCTAssertEqual(h.outDegree(v), g.outDegree(v), at)
                    XCTAssertEqual(h.sortedOutNeighbours(of: v), g.sortedOutNeighbours(of: v), at)
                    for direction in EdgeDirection.allCases {
                        for hops in [1, 2] {
                            XCTAssertEqual(h.neighbourhood(of: [v], hops: hops, direction: direction),
                                           g.neighbourhood(of: [v], hops: hops, direction: direction), "\(at) \(direction) \(hops)")
                        }
                    }
                    let field = g.receptiveField(of: [v])
                    XCTAssertEqual(h.receptiveField(of: [v]), field, at)
                    let input = g.partitions[0].range
                    XCTAssertEqual(field, Self.stackReachable(g, from: [v], .in).filter { input.contains($0) }, "\(at): sweep vs stack")
                    XCTAssertEqual(h.reachable(from: [v], direction: .out), g.reachable(from: [v], direction: .out), at)
                    let down = h.reachableBits(from: [v], direction: .out).members(in: 0 ..< h.nodeCount)
                    XCTAssertEqual(down, Self.stackReachable(h, from: [v], .out), "\(at): sweep vs stack, downstream")
                }
                // Several nodes at once (a set), and paths from input pixels to a deep node.
                XCTAssertEqual(h.receptiveField(of: Array(probes.suffix(6))), g.receptiveField(of: Array(probes.suffix(6))), label)
                let target = g.partitions[g.partitions.count - 2].start + 1
                var compared = 0
                for source in g.receptiveField(of: [target]).prefix(40) {
                    let paths = g.paths(from: source, to: target, limit: 5)
                    XCTAssertEqual(h.paths(from: source, to: target, limit: 5), paths, "\(label) paths from \(source)")
                    if !paths.isEmpty { compared += 1 }
                }
                XCTAssertGreaterThan(compared, 0, "\(label): no path compared")
            }
        }
    }

    /// A graph whose edges run both ways in id order (no MGE has one — even the reference's
    /// quirk keeps every edge ascending — but the walks are written for any graph): the sweep
    /// takes the nodes it marks behind itself from its stack, and reaches what a plain stack
    /// search reaches, in both directions, from single nodes and sets.
    func testSweepFollowsEdgesAgainstTheIdOrder() throws {
        final class Digraph: MultipartiteGraph {
            let out: [[Int]], into: [[Int]]
            var nodeCount: Int { out.count }
            let partitions: [Partition]
            init(nodes: Int, edges: Int, seed: UInt64) {
                var rng = SeededGenerator(seed: seed)
                var out = [[Int]](repeating: [], count: nodes), into = out
                for _ in 0 ..< edges {
                    let u = Int(rng.uniform() * Double(nodes)) % nodes, v = Int(rng.uniform() * Double(nodes)) % nodes
                    out[u].append(v); into[v].append(u)
                }
                self.out = out.map { $0.sorted() }; self.into = into
                partitions = [Partition(name: "a", start: 0, count: nodes / 2, shape: [nodes / 2]),
                              Partition(name: "b", start: nodes / 2, count: nodes - nodes / 2, shape: [nodes - nodes / 2])]
            }
            func partitionIndex(of v: Int) -> Int { v < partitions[1].start ? 0 : 1 }
            func inDegree(_ v: Int) -> Int { into[v].count }
            func outDegree(_ v: Int) -> Int { out[v].count }
            func forEachNeighbour(of u: Int, _ direction: EdgeDirection, _ body: (Int) -> Void) {
                if direction != .in { out[u].forEach(body) }
                if direction != .out { into[u].forEach(body) }
            }
            func sortedOutNeighbours(of u: Int) -> [Int] { out[u] }
        }
        for (nodes, edges) in [(300, 200), (300, 400), (1000, 900)] {
            let g = Digraph(nodes: nodes, edges: edges, seed: UInt64(edges))
            var nonTrivial = 0
            for start in [[0], [nodes / 2], [nodes - 1], [3, nodes - 7], Array(stride(from: 0, to: nodes, by: 97))] {
                for direction in EdgeDirection.allCases {
                    let swept = g.reachableBits(from: start, direction: direction).members(in: 0 ..< nodes)
                    XCTAssertEqual(swept, Self.stackReachable(g, from: start, direction), "\(nodes)/\(edges) from \(start) \(direction)")
                    if swept.count > start.count + 5 { nonTrivial += 1 }
                }
            }
            XCTAssertGreaterThan(nonTrivial, 3, "walks that went somewhere")
        }
    }

    /// VGG-16 at 224×224, ERK-pruned without data: a deep node's degree, neighbours and
    /// receptive field come from the generator; the graph holds a small fraction of what the
    /// edge list would take, and the walk adds one bit per node. The receptive field lies in
    /// the window the conv and pool geometry allows and equals a plain stack search's.
    func testDeepNodeOfVGG16At224WithoutTheEdgeList() throws {
        let arch = try XCTUnwrap(ModelZoo.build("vgg16_imagenet", classes: 1000))
        let net = Network(architecture: arch, seed: 0)
        try prune(net, .erk, sparsity: 0.995, seed: 1)
        let h = try ImplicitGraph(net)
        XCTAssertLessThan(h.byteSize * 8, h.explicitByteSize, "held \(h.byteSize) B vs an edge list of \(h.explicitByteSize) B")
        let p = try XCTUnwrap(h.partitions.firstIndex { $0.name == "features.28" })
        XCTAssertEqual(h.partitions[p].shape, [512, 14, 14])
        XCTAssertEqual(h.partitions[0].shape, [3, 226, 226], "input with its padding ring")
        var checkedFields = 0
        for channel in 0 ..< 512 {
            let v = try XCTUnwrap(h.node(partition: p, coordinates: [channel, 0, 0]))
            let into = h.neighbourhood(of: [v], hops: 1, direction: .in)
            let from = h.neighbourhood(of: [v], hops: 1, direction: .out)
            XCTAssertEqual(into, Array(Set(h.inNeighbors(v))).sorted())
            XCTAssertEqual(h.inNeighbors(v).count, h.inDegree(v))
            XCTAssertEqual(h.outNeighbors(v).count, h.outDegree(v))
            for u in into.prefix(20) { XCTAssertTrue(h.outNeighbors(u).contains(v), "edge \(u)→\(v) both ways") }
            for w in from.prefix(20) { XCTAssertTrue(h.inNeighbors(w).contains(v), "edge \(v)→\(w) both ways") }
            guard h.inDegree(v) > 0, checkedFields < 3 else { continue }
            let field = h.receptiveField(of: [v])
            XCTAssertFalse(field.isEmpty)
            // Output (0, 0) of conv5_3 reads unpadded input rows/columns -90…105 (ten 3×3 convs
            // with padding 1, four 2×2 pools), i.e. 0…106 of the padded input.
            for u in field {
                let (q, c) = h.coordinates(of: u)
                XCTAssertEqual(q, 0)
                XCTAssertTrue(c[1] <= 106 && c[2] <= 106, "input node \(c) outside the window")
            }
            XCTAssertEqual(field, Self.stackReachable(h, from: [v], .in).filter { h.partitions[0].range.contains($0) })
            checkedFields += 1
        }
        XCTAssertEqual(checkedFields, 3, "deep nodes with in-edges")
    }
}
