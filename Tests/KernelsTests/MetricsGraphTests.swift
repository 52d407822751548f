import XCTest
@testable import Kernels

/// Each algorithm against a brute force written here, on small random graphs (with parallel
/// and antiparallel edges, isolated nodes and several components).
final class MetricsGraphTests: XCTestCase {
    let seeds: [UInt64] = Array(1 ... 12)

    func graphs() -> [Graph] {
        seeds.map { s in
            let n = 8 + Int(s % 5) * 7
            return randomGraph(n: n, edgeProbability: [0.04, 0.08, 0.15, 0.3][Int(s % 4)], seed: s, multi: s % 3 == 0)
        }
    }

    func bruteComponents(_ adj: [Set<Int>], removed: Int = -1) -> Int {
        var seen = [Bool](repeating: false, count: adj.count)
        var c = 0
        for s in 0 ..< adj.count where !seen[s] && s != removed {
            c += 1
            var stack = [s]; seen[s] = true
            while let x = stack.popLast() {
                for y in adj[x] where !seen[y] && y != removed { seen[y] = true; stack.append(y) }
            }
        }
        return c
    }

    func testUndirectedViewMergesPairsAndKeepsFirstWeight() {
        // 0→1 (w 1), 0→1 (w 2), 1→0 (w 3), 2→1 (w 4), 1→2 (w 5), 3→3 self-loop.
        let g = makeGraph(n: 4, edges: [(0, 1, 1), (0, 1, 2), (1, 0, 3), (2, 1, 4), (1, 2, 5), (3, 3, 6)])
        let v = UndirectedView(g)
        XCTAssertEqual(v.offsets, [0, 1, 3, 4, 4])
        XCTAssertEqual(v.neighbors, [1, 0, 2, 1])
        XCTAssertEqual(v.weights, [1, 1, 5, 5])   // pair {0,1}: first 0→1; pair {1,2}: 1→2
        XCTAssertTrue(v.isMulti(0)); XCTAssertTrue(v.isMulti(1)); XCTAssertTrue(v.isMulti(2)); XCTAssertTrue(v.isMulti(3))
    }

    func testComponents() {
        for g in graphs() {
            let adj = undirectedSets(g)
            XCTAssertEqual(weakComponents(g).count, bruteComponents(adj))
        }
    }

    func testBridgesAndArticulationPoints() {
        for g in graphs() {
            let adj = undirectedSets(g)
            var mult: [Int: Int] = [:]
            for u in 0 ..< g.nodeCount {
                for e in g.outOffsets[u] ..< g.outOffsets[u + 1] {
                    let v = Int(g.outTargets[e]); if u == v { continue }
                    mult[min(u, v) * 10_000 + max(u, v), default: 0] += 1
                }
            }
            let base = bruteComponents(adj)
            var bridges = 0
            for (key, m) in mult where m == 1 {
                var a2 = adj
                let u = key / 10_000, v = key % 10_000
                a2[u].remove(v); a2[v].remove(u)
                if bruteComponents(a2) > base { bridges += 1 }
            }
            var aps: [Int] = []
            for v in 0 ..< g.nodeCount {
                let without = bruteComponents(adj, removed: v)
                let baseWithout = adj[v].isEmpty ? base - 1 : base
                if without > baseWithout { aps.append(v) }
            }
            let r = bridgesAndArticulationPoints(UndirectedView(g))
            XCTAssertEqual(r.bridges, bridges)
            XCTAssertEqual(r.articulationPoints, aps)
        }
    }

    func testBridgesOnPathStarAndCycle() {
        // A path 0-1-2-3 plus a cycle 4-5-6 joined by 3→4, and 7↔8 antiparallel.
        let g = makeGraph(n: 9, edges: [(0, 1, 1), (1, 2, 1), (2, 3, 1), (4, 5, 1), (5, 6, 1), (6, 4, 1), (3, 4, 1), (7, 8, 1), (8, 7, 1)])
        let r = bridgesAndArticulationPoints(UndirectedView(g))
        XCTAssertEqual(r.bridges, 4)
        XCTAssertEqual(r.articulationPoints, [1, 2, 3, 4])
    }

    func testCoreNumbers() {
        for g in graphs() {
            let n = g.nodeCount
            // degree with multiplicity = in + out.
            var nbrs = [[Int]](repeating: [], count: n)
            for u in 0 ..< n { for e in g.outOffsets[u] ..< g.outOffsets[u + 1] {
                let v = Int(g.outTargets[e]); nbrs[u].append(v); nbrs[v].append(u)
            } }
            var core = [Int](repeating: 0, count: n)
            var k = 0
            while true {
                var alive = [Bool](repeating: true, count: n)
                var changed = true
                while changed {
                    changed = false
                    for v in 0 ..< n where alive[v] {
                        let d = nbrs[v].filter { alive[$0] }.count
                        if d < k { alive[v] = false; changed = true }
                    }
                }
                if !alive.contains(true) { break }
                for v in 0 ..< n where alive[v] { core[v] = k }
                k += 1
            }
            XCTAssertEqual(coreNumbers(g).map(Int.init), core)
        }
    }

    func testNeighbourhoodsAndStrength() {
        for g in graphs() {
            let n = g.nodeCount
            var out = [Set<Int>](repeating: [], count: n)
            for u in 0 ..< n { for e in g.outOffsets[u] ..< g.outOffsets[u + 1] { out[u].insert(Int(g.outTargets[e])) } }
            let one = (0 ..< n).map { out[$0].union([$0]).count }
            let two = (0 ..< n).map { v -> Int in
                var s = out[v].union([v]); for u in out[v] { s.formUnion(out[u]) }; return s.count
            }
            XCTAssertEqual(oneHopSizes(g).map(Int.init), one)
            XCTAssertEqual(twoHopSizes(g).map(Int.init), two)
            var strength = [Double](repeating: 0, count: n)
            for u in 0 ..< n { for e in g.outOffsets[u] ..< g.outOffsets[u + 1] {
                let w = Double(g.outWeights[e]); strength[u] += w; strength[Int(g.outTargets[e])] += w
            } }
            XCTAssertEqual(meanStrength(g), strength.reduce(0, +) / Double(n), accuracy: 1e-12)
        }
    }

    func bruteConnectedFourSets(_ adj: [Set<Int>], minRoot: Int? = nil) -> Int {
        let n = adj.count
        var c = 0
        for a in 0 ..< n { for b in a + 1 ..< n { for x in b + 1 ..< n { for y in x + 1 ..< n {
            if let r = minRoot, a != r { continue }
            let s = [a, b, x, y]
            var seen: Set<Int> = [a], stack = [a]
            while let p = stack.popLast() { for q in s where !seen.contains(q) && adj[p].contains(q) { seen.insert(q); stack.append(q) } }
            if seen.count == 4 { c += 1 }
        } } } }
        return c
    }

    /// The triangle-free count (bipartite graphs) equals brute force root by root; a graph with
    /// a triangle is not taken for bipartite.
    func testTriangleFreeRootCountsAgainstBruteForce() {
        for s in 30 ... 41 as ClosedRange<UInt64> {
            var rng = SeededGenerator(seed: s)
            let left = 6 + Int(s % 4), right = 5 + Int(s % 3), n = left + right
            var edges: [(Int, Int, Float)] = []
            // Sides interleaved in id order, so roots see neighbours on both sides of them.
            let side = (0 ..< n).map { ($0 * 7 + Int(s)) % n < left }
            for u in 0 ..< n { for w in 0 ..< n where side[u] && !side[w] {
                if Double.random(in: 0 ..< 1, using: &rng) < [0.2, 0.4, 0.7][Int(s % 3)] {
                    edges.append(u < w ? (u, w, 1) : (w, u, 1))
                }
            } }
            let g = makeGraph(n: n, edges: edges)
            let view = UndirectedView(g, weights: false), adj = undirectedSets(g)
            XCTAssertTrue(isBipartite(view))
            let roots = Array(0 ..< n)
            let counted = triangleFreeRootCounts(nodeCount: n, roots: roots) { ViewMotifRows(view: view) }
            XCTAssertEqual(counted, roots.map { bruteConnectedFourSets(adj, minRoot: $0) }, "seed \(s)")
            XCTAssertEqual(rootCounts(view, roots: roots), counted)
        }
        let triangle = makeGraph(n: 5, edges: [(0, 1, 1), (1, 2, 1), (0, 2, 1), (2, 3, 1), (3, 4, 1)])
        XCTAssertFalse(isBipartite(UndirectedView(triangle)))
    }

    func testMotifsExactAndESUAgainstBruteForce() {
        for (i, g) in graphs().enumerated() {
            let adj = undirectedSets(g)
            let v = UndirectedView(g)
            let expected = bruteConnectedFourSets(adj)
            XCTAssertEqual(connectedFourSets(v), expected, "graph \(i)")
            let roots = Array(0 ..< g.nodeCount)
            let per = esuRootCounts(v, roots: roots)
            XCTAssertEqual(per.reduce(0, +), expected)
            for r in [0, g.nodeCount / 2] { XCTAssertEqual(per[r], bruteConnectedFourSets(adj, minRoot: r)) }
            XCTAssertEqual(motifEstimate(v, roots: roots), Double(expected), accuracy: 1e-6)
        }
        // Dense graphs with many triangles, 4-cycles and 4-cliques.
        for s in 20 ... 23 as ClosedRange<UInt64> {
            let g = randomGraph(n: 16, edgeProbability: 0.35, seed: s)
            XCTAssertEqual(connectedFourSets(UndirectedView(g)), bruteConnectedFourSets(undirectedSets(g)))
        }
        // K5: every 4-set connected.
        var k5: [(Int, Int, Float)] = []
        for a in 0 ..< 5 { for b in a + 1 ..< 5 { k5.append((a, b, 1)) } }
        let c = motifCensus(UndirectedView(makeGraph(n: 5, edges: k5)))
        XCTAssertEqual(c.cliques4, 5); XCTAssertEqual(c.triangles, 10); XCTAssertEqual(c.connectedSets, 5)
    }

    func testSampleRootsDeterministicAndDistinct() {
        let a = motifSampleRoots(nodeCount: 191_894, seed: 7)
        XCTAssertEqual(a.count, 191)
        XCTAssertEqual(Set(a).count, 191)
        XCTAssertEqual(a, motifSampleRoots(nodeCount: 191_894, seed: 7))
        XCTAssertNotEqual(a, motifSampleRoots(nodeCount: 191_894, seed: 8))
        XCTAssertTrue(a.allSatisfy { $0 >= 0 && $0 < 191_894 })
    }
}
