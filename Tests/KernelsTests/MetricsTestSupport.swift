import OracleSupport
import XCTest
@testable import Kernels

/// Builds a Graph from a directed edge list (sources, targets, weights); edges are sorted by
/// (source, target) keeping the given order among equal pairs.
func makeGraph(n: Int, edges: [(Int, Int, Float)], partitions: [Partition]? = nil) -> Graph {
    let sorted = edges.enumerated().sorted { a, b in
        (a.element.0, a.element.1, a.offset) < (b.element.0, b.element.1, b.offset)
    }.map { $0.element }
    var offsets = [Int](repeating: 0, count: n + 1)
    for e in sorted { offsets[e.0 + 1] += 1 }
    for i in 0 ..< n { offsets[i + 1] += offsets[i] }
    let parts = partitions ?? [Partition(name: "all", start: 0, count: n, shape: [n])]
    return Graph(nodeCount: n, partitions: parts, outOffsets: offsets,
                 outTargets: sorted.map { UInt32($0.1) }, outWeights: sorted.map { Float16($0.2) })
}

/// A random directed graph (no self-loops unless asked); parallel and antiparallel edges
/// appear when `multi` is set.
func randomGraph(n: Int, edgeProbability p: Double, seed: UInt64, multi: Bool = false,
                 forwardOnly: Bool = false) -> Graph {
    var rng = SeededGenerator(seed: seed)
    var edges: [(Int, Int, Float)] = []
    for u in 0 ..< n {
        for v in 0 ..< n where u != v {
            if forwardOnly && v < u { continue }
            if Double.random(in: 0 ..< 1, using: &rng) < p {
                edges.append((u, v, Float.random(in: 0.05 ... 2, using: &rng)))
                if multi && Double.random(in: 0 ..< 1, using: &rng) < 0.2 {
                    edges.append((u, v, Float.random(in: 0.05 ... 2, using: &rng)))
                }
            }
        }
    }
    return makeGraph(n: n, edges: edges)
}

/// Undirected simple adjacency sets (self-loops dropped) for brute-force checks.
func undirectedSets(_ g: Graph) -> [Set<Int>] {
    var adj = [Set<Int>](repeating: [], count: g.nodeCount)
    for u in 0 ..< g.nodeCount {
        for e in g.outOffsets[u] ..< g.outOffsets[u + 1] {
            let v = Int(g.outTargets[e])
            if u != v { adj[u].insert(v); adj[v].insert(u) }
        }
    }
    return adj
}

func relErr(_ a: Double, _ b: Double, scale: Double? = nil) -> Double {
    abs(a - b) / max(scale ?? max(abs(a), abs(b)), 1e-300)
}


/// Applies two block products to the same `width` random vectors of length `n` (uniform in
/// [−0.5, 0.5)): the largest entrywise difference of the results and the second's largest
/// magnitude (callers hold the one to rounding of the other).
func compareBlockProducts(n: Int, width: Int, rng: inout SeededGenerator,
                          _ first: (UnsafePointer<Double>, UnsafeMutablePointer<Double>, Int) -> Void,
                          _ second: (UnsafePointer<Double>, UnsafeMutablePointer<Double>, Int) -> Void)
    -> (worst: Double, scale: Double) {
    let x = (0 ..< n * width).map { _ in rng.uniform() - 0.5 }
    var y1 = [Double](repeating: 0, count: n * width), y2 = y1
    x.withUnsafeBufferPointer { xp in
        y1.withUnsafeMutableBufferPointer { first(xp.baseAddress!, $0.baseAddress!, width) }
        y2.withUnsafeMutableBufferPointer { second(xp.baseAddress!, $0.baseAddress!, width) }
    }
    var worst = 0.0
    for i in y1.indices { worst = max(worst, abs(y1[i] - y2[i])) }
    return (worst, y2.reduce(0) { max($0, abs($1)) })
}
