// RAND-ESU's per-root quantity — connected 4-node sets whose smallest id is the root — counted
// instead of enumerated, on triangle-free graphs (every bipartite MGE: VGG, CONV-6, MobileNetV2,
// ResNet-50 at 224). ESU walks every such set: Θ(d³) per root for degree d, 15 minutes on
// ResNet-50 at 224 (d ≈ 300; 70 s counted). Without triangles the sets fall into three shapes seen from the
// root v, and each shape is a product of counts over v's neighbours N (ids above v) and the
// nodes x two steps away (ids above v, outside N[v]), with c(x) = |N(x) ∩ N|:
//   three neighbours of v ............................ C(|N|, 3)
//   two neighbours a, b and one x touching a or b .... Σ_x C(|N|, 2) − C(|N| − c(x), 2)
//   one neighbour a, then {x, y} with {a, x, y} connected (no triangle: x, y both on a, or a
//   path a–x–y) ..................................... Σ_a C(d⁺(a), 2) + Σ_x c(x)·(d⁺(x) − c(x))
// where d⁺(u) counts u's neighbours above v. Equal to ESU's count root by root (tested on
// every bipartite zoo model and on random bipartite graphs).

/// Neighbour rows as the triangle-free count reads them.
protocol MotifRows {
    /// `u`'s neighbours, each once, in any order, into `row` (cleared first).
    func fill(_ u: Int, _ row: inout [UInt32])
    /// How many of `u`'s neighbours have an id above `v` (`u` not adjacent to `v`).
    func neighboursAbove(_ u: Int, _ v: Int) -> Int
}

/// Per-root counts of connected 4-node sets with smallest id = root, on a triangle-free graph
/// of `n` nodes whose rows `makeRows()` reads (one reader per thread).
/// - Complexity: O(Σ_{a ∈ N⁺(v)} d(a)) row entries per root v plus one `neighboursAbove` per
///   distinct second neighbour — O(d²) instead of ESU's O(d³); 4 bytes per node per thread.
func triangleFreeRootCounts<R: MotifRows>(nodeCount n: Int, roots: [Int], makeRows: () -> R) -> [Int] {
    var result = [Int](repeating: 0, count: roots.count)
    @inline(__always) func pairs(_ k: Int) -> Int { k * (k - 1) / 2 }
    // Scratch per thread, not per chunk: a chunk is one root, and c(x) is n counters (39 MB on
    // ResNet-50 at 224, whose page faults would cost more than the root's count).
    let threads = max(1, min(Parallel.threads, roots.count))
    let common = UnsafeMutablePointer<Int32>.allocate(capacity: threads * n)   // c(x); zero between roots
    common.initialize(repeating: 0, count: threads * n)
    defer { common.deallocate() }
    let readers = (0 ..< threads).map { _ in makeRows() }, scratch = (0 ..< threads).map { _ in TriangleFreeScratch() }
    let shared = SharedMutablePointer(common)
    result.withUnsafeMutableBufferPointer { rp in
        let res = SharedMutablePointer(rp.baseAddress!)
        Parallel.forChunks(roots.count, grain: 1, threads: threads) { t, range in
            let rows = readers[t], s = scratch[t], c = shared.base + t * n
            for ri in range {
                if Cancellation.isRequested { break }   // partial result; the caller checks
                let v = roots[ri]
                guard v >= 0 && v < n else { continue }
                rows.fill(v, &s.rowV)
                var k = 0, total = 0
                for a in s.rowV where Int(a) > v {
                    k += 1
                    rows.fill(Int(a), &s.rowA)
                    var above = 0
                    for x in s.rowA where Int(x) > v {
                        above += 1
                        if c[Int(x)] == 0 { s.touched.append(x) }
                        c[Int(x)] += 1
                    }
                    total += pairs(above)
                }
                total += k * (k - 1) * (k - 2) / 6
                let kPairs = pairs(k)
                for x in s.touched {
                    let cx = Int(c[Int(x)])
                    total += kPairs - pairs(k - cx) + cx * (rows.neighboursAbove(Int(x), v) - cx)
                    c[Int(x)] = 0
                }
                s.touched.removeAll(keepingCapacity: true)
                res[ri] = total
            }
        }
    }
    return result
}

/// One thread's row buffers and the second neighbours it touched.
final class TriangleFreeScratch { var touched: [UInt32] = [], rowV: [UInt32] = [], rowA: [UInt32] = [] }

/// Rows of a stored undirected view (sorted, so "above v" is a binary search).
struct ViewMotifRows: MotifRows {
    let view: UndirectedView
    func fill(_ u: Int, _ row: inout [UInt32]) {
        row.removeAll(keepingCapacity: true)
        row.append(contentsOf: view.neighbors[view.offsets[u] ..< view.offsets[u + 1]])
    }
    func neighboursAbove(_ u: Int, _ v: Int) -> Int {
        var lo = view.offsets[u], hi = view.offsets[u + 1]
        let end = hi
        while lo < hi {
            let mid = (lo + hi) / 2
            if Int(view.neighbors[mid]) > v { hi = mid } else { lo = mid + 1 }
        }
        return end - lo
    }
}

/// Whether the view is bipartite (hence triangle-free): breadth-first 2-colouring.
/// - Complexity: O(n + m) time, n bytes + the queue.
func isBipartite(_ view: UndirectedView) -> Bool {
    let n = view.nodeCount
    var colour = [UInt8](repeating: 2, count: n)
    var queue: [Int32] = []
    for s in 0 ..< n where colour[s] == 2 {
        colour[s] = 0
        queue.removeAll(keepingCapacity: true)
        queue.append(Int32(s))
        var head = 0
        while head < queue.count {
            let u = Int(queue[head]); head += 1
            for e in view.offsets[u] ..< view.offsets[u + 1] {
                let w = Int(view.neighbors[e])
                if colour[w] == 2 { colour[w] = 1 - colour[u]; queue.append(Int32(w)) }
                else if colour[w] == colour[u] { return false }
            }
        }
    }
    return true
}

/// Per-root counts of connected 4-node sets with smallest id = root, as `esuRootCounts`:
/// counted on a bipartite view, enumerated otherwise.
/// - Complexity: O(n + m) for the colouring, then O(d²) per root when bipartite, else ESU's.
public func rootCounts(_ view: UndirectedView, roots: [Int]) -> [Int] {
    guard isBipartite(view) else { return esuRootCounts(view, roots: roots) }
    return triangleFreeRootCounts(nodeCount: view.nodeCount, roots: roots) { ViewMotifRows(view: view) }
}

/// A 2-colouring of partitions such that every pair in `pairs` joins two colours (nil when
/// there is none, or a pair joins a partition to itself): breadth-first, lowest partition of
/// each component coloured 0. The graph is then bipartite, its sides the colour classes.
/// - Complexity: O(partitions + pairs).
func partitionColouring(partitionCount p: Int, pairs: [(Int, Int)]) -> [UInt8]? {
    var adjacent = [[Int]](repeating: [], count: p)
    for (a, b) in pairs {
        if a == b { return nil }
        adjacent[a].append(b); adjacent[b].append(a)
    }
    var colour = [UInt8](repeating: 2, count: p)
    for s in 0 ..< p where colour[s] == 2 {
        colour[s] = 0
        var stack = [s]
        while let u = stack.popLast() {
            for w in adjacent[u] {
                if colour[w] == 2 { colour[w] = 1 - colour[u]; stack.append(w) }
                else if colour[w] == colour[u] { return nil }
            }
        }
    }
    return colour
}

/// Counts emitted neighbours above `bound`.
struct AboveCounter: EdgeSink {
    let bound: Int
    var count = 0
    @inline(__always) mutating func emit(_ x: Int, _ weight: Float16) { if x > bound { count += 1 } }
}

/// Rows of a simple implicit MGE, generated (each neighbour once: its out- and in-edges).
/// "Neighbours above v" is read off the layout where it can be: a node's out-edges (in-edges)
/// land in the partitions its partition's layers write (read), so when that whole id span lies
/// above v (at or below v) the count is the out-degree (zero) without generating the row.
struct ImplicitMotifRows: MotifRows {
    let graph: ImplicitGraph
    /// Per partition, the hull of the id ranges its out-edges and its in-edges can reach.
    let outSpan: [Range<Int>], inSpan: [Range<Int>]

    init(_ graph: ImplicitGraph) {
        self.graph = graph
        let parts = graph.partitions
        var out = [Range<Int>](repeating: 0 ..< 0, count: parts.count), inn = out
        func hull(_ a: Range<Int>, _ b: Range<Int>) -> Range<Int> {
            a.isEmpty ? b : min(a.lowerBound, b.lowerBound) ..< max(a.upperBound, b.upperBound)
        }
        for l in graph.plan.layers {
            out[l.sourcePartition] = hull(out[l.sourcePartition], parts[l.targetPartition].range)
            inn[l.targetPartition] = hull(inn[l.targetPartition], parts[l.sourcePartition].range)
        }
        outSpan = out; inSpan = inn
    }

    func fill(_ u: Int, _ row: inout [UInt32]) {
        var sink = TargetAppender(targets: [])
        swap(&sink.targets, &row)
        sink.targets.removeAll(keepingCapacity: true)
        graph.emitOut(u, &sink)
        graph.emitIn(u, &sink)
        swap(&sink.targets, &row)
    }

    func neighboursAbove(_ u: Int, _ v: Int) -> Int {
        let p = graph.partitionIndex(of: u)
        return above(outSpan[p], graph.outDegree(u), v) { graph.emitOut(u, &$0) }
            + above(inSpan[p], graph.inDegree(u), v) { graph.emitIn(u, &$0) }
    }

    /// One direction's neighbours above v: from the span when it lies on one side of v.
    @inline(__always) private func above(_ span: Range<Int>, _ degree: Int, _ v: Int,
                                         generate: (inout AboveCounter) -> Void) -> Int {
        if span.isEmpty || span.upperBound <= v + 1 { return 0 }
        if span.lowerBound > v { return degree }
        var counter = AboveCounter(bound: v)
        generate(&counter)
        return counter.count
    }
}

extension ImplicitGraph {
    /// The partition 2-colouring its layers allow (nil when a layer joins two partitions of one
    /// colour, or the graph is not simple): a superset of the pairs its edges join, so a
    /// colouring makes the graph bipartite.
    var layerColouring: [UInt8]? {
        guard isSimple else { return nil }
        return partitionColouring(partitionCount: partitions.count,
                                  pairs: plan.layers.map { ($0.sourcePartition, $0.targetPartition) })
    }
}

/// Per-root counts over generated rows, as `rootCounts(view, roots:)`: counted when the layers
/// make the graph bipartite, else enumerated (`esuRootCounts`).
func rootCounts(_ g: ImplicitGraph, roots: [Int]) -> [Int] {
    guard g.layerColouring != nil else { return esuRootCounts(g, roots: roots) }
    return triangleFreeRootCounts(nodeCount: g.nodeCount, roots: roots) { ImplicitMotifRows(g) }
}
