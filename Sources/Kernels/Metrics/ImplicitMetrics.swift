import Dispatch

// The topometrics of an implicit MGE (#23): the same algorithms as on the explicit `Graph`
// and `UndirectedView`, fed by edges generated per node from the masks and the geometry.
// Every integer equals the explicit form's; every float agrees to rounding (same Lanczos
// start vectors and iterations, same summation order per node).

/// Per-thread scratch for a parallel pass (indexed by the scheduler's thread number).
private func scratchPerThread() -> [ImplicitScratch] { (0 ..< Parallel.threads).map { _ in ImplicitScratch() } }

/// Σ w over emitted edges.
struct WeightSum: EdgeSink {
    var sum = 0.0
    @inline(__always) mutating func emit(_ target: Int, _ weight: Float16) { sum += Double(widen(weight)) }
}

/// Σ w·x[target] over emitted edges, `L` lanes at a time (the block product).
struct LaneProduct<L: GatherLanes>: EdgeSink {
    let x: UnsafeMutablePointer<L>
    var s = L()
    @inline(__always) mutating func emit(_ target: Int, _ weight: Float16) { s = L.adding(s, Double(widen(weight)), x[target]) }
}

/// Σ |w·x[target]| over emitted edges, `L` lanes at a time (a row product's rounding scale).
struct AbsoluteLaneSum<L: GatherLanes>: EdgeSink {
    let x: UnsafeMutablePointer<L>
    var s = L()
    @inline(__always) mutating func emit(_ target: Int, _ weight: Float16) {
        var v = x[target]
        for c in 0 ..< L.scalarCount { v[c] = abs(v[c]) }
        s = L.adding(s, Double(widen(weight)), v)
    }
}

/// Counts targets not yet stamped, stamping them.
struct StampCounter: EdgeSink {
    let mark: UnsafeMutablePointer<UInt32>
    let stamp: UInt32
    var count = 0
    @inline(__always) mutating func emit(_ target: Int, _ weight: Float16) {
        if mark[target] != stamp { mark[target] = stamp; count += 1 }
    }
}

/// Appends targets to a list (unsorted).
struct TargetAppender: EdgeSink {
    var targets: [UInt32]
    @inline(__always) mutating func emit(_ target: Int, _ weight: Float16) { targets.append(UInt32(truncatingIfNeeded: target)) }
}

/// Sink/source/disconnected counts and removable edges from the degree arrays.
/// - Complexity: O(n).
public func localConnectivity(_ g: ImplicitGraph, compat: MetricsCompat)
    -> (sink: Int, source: Int, disconnected: Int, removableOut: Int, removableIn: Int) {
    localConnectivity(nodeCount: g.nodeCount, inDegree: { g.inDegree($0) }, outDegree: { g.outDegree($0) },
                      firstPartition: g.partitions.first?.count ?? 0,
                      lastPartition: g.partitions.last?.count ?? 0, compat: compat)
}

/// Σ_v |{v} ∪ N⁺(v)| (distinct), as `oneHopSizes` summed.
/// - Complexity: O(n + m) generation over the cores.
public func oneHopTotal(_ g: ImplicitGraph) -> Int {
    // No self-loop or repeated target: every out-edge adds one distinct node.
    if g.isSimple { return g.nodeCount + g.edgeCount }
    return Parallel.reduce(g.nodeCount, grain: 4096, 0, partial: { range in
        // The thread's number is not known here: one list per chunk (reused inside it).
        var list = EdgeList()
        var total = 0
        for v in range {
            g.outEdges(of: v, into: &list)
            var c = 1
            var last: UInt32 = .max
            for t in list.targets {
                if t != last && Int(t) != v { c += 1 }
                last = t
            }
            total += c
        }
        return total
    }, combine: +)
}

/// Σ_v of the closed 2-hop out-neighbourhood size, as `twoHopSizes` summed. On a simple
/// graph each node is counted through its translation class (`TwoHopClasses`): one
/// representative per (partition, channel, row class, column class), times the class size;
/// `classes: false` counts every node (the reference the classes are tested against). Polls
/// `Cancellation` per chunk (partial result; the caller checks).
/// - Complexity: O(Σ_{v∈R} Σ_{u∈N⁺(v)} (1 + outdeg(u))) generation over the representatives R
///   (on VGG-16 at 224 about 1 in 20 nodes; every node where no symmetry is proved); one
///   n-entry stamp array per thread.
public func twoHopTotal(_ g: ImplicitGraph, classes: Bool = true, progress: (any ProgressStage)? = nil) -> Int {
    twoHopCount(g, classes: classes, progress: progress).total
}

/// `twoHopTotal` and whether the translation classes passed their self-check (false: the
/// total was counted over every node instead).
func twoHopCount(_ g: ImplicitGraph, classes: Bool, progress: (any ProgressStage)?) -> (total: Int, classesHeld: Bool) {
    let n = g.nodeCount
    let work = classes && g.isSimple ? TwoHopClasses(g) : TwoHopClasses(everyNodeOf: g)
    let items = work.nodes.count
    let threads = Parallel.threads
    var stamps = [[UInt32]](repeating: [], count: threads)
    var totals = [Int](repeating: 0, count: threads)
    var classesHold = true
    let scratch = scratchPerThread()
    /// |{v} ∪ N⁺(v) ∪ N⁺(N⁺(v))|, distinct nodes counted by stamps (no sorting).
    func count(_ v: Int, _ stamp: UInt32, _ mark: UnsafeMutablePointer<UInt32>, _ first: inout TargetAppender) -> Int {
        mark[v] = stamp
        first.targets.removeAll(keepingCapacity: true)
        g.emitOut(v, &first)
        var counter = StampCounter(mark: mark, stamp: stamp)
        for u in first.targets { counter.emit(Int(u), 0) }
        for u in first.targets { g.emitOut(Int(u), &counter) }
        return 1 + counter.count
    }
    stamps.withUnsafeMutableBufferPointer { sp in
    totals.withUnsafeMutableBufferPointer { tp in
        let stp = SharedMutablePointer(sp.baseAddress!)
        let tot = SharedMutablePointer(tp.baseAddress!)
        Parallel.forChunks(items, grain: 64, threads: threads) { t, range in
            if Cancellation.isRequested { return }
            if stp[t].isEmpty { stp[t] = [UInt32](repeating: UInt32.max, count: n) }
            let s = scratch[t]
            var sum = 0, covered = 0
            stp[t].withUnsafeMutableBufferPointer { mark in
                var first = TargetAppender(targets: [])
                swap(&first.targets, &s.out.targets)
                for item in range {
                    let m = work.multiplicity(item)
                    sum += count(work.node(item), UInt32(item), mark.baseAddress!, &first) * m
                    covered += m
                }
                swap(&first.targets, &s.out.targets)
            }
            tot[t] += sum
            progress?.advance(by: covered)
        }
        // The classes rest on the generator's geometry as `AxisReach` reads it; a geometry it
        // misreads would give a wrong count silently. Sampled nodes of every classed partition
        // are counted themselves and against their representative; any difference sends the
        // whole count through every node.
        if Cancellation.isRequested || work.samples.isEmpty { return }
        if stp[0].isEmpty { stp[0] = [UInt32](repeating: UInt32.max, count: n) }
        stp[0].withUnsafeMutableBufferPointer { mark in
            var first = TargetAppender(targets: [])
            var stamp = UInt32(items)
            for (v, item) in work.samples {
                let own = count(v, stamp, mark.baseAddress!, &first)
                let represented = count(work.node(item), stamp + 1, mark.baseAddress!, &first)
                stamp += 2
                if own != represented { classesHold = false; return }
            }
        }
    }}
    if !classesHold { return (twoHopTotal(g, classes: false), false) }
    return (totals.reduce(0, +), true)
}

/// One conv layer's geometry along one axis (rows or columns), as `UnrolledEdges.emitConv`
/// maps a node's coordinate to the outputs its taps reach: through the layer's pool (any
/// window, stride and padding) to the pooled pixels whose windows hold it, then through the
/// conv's taps.
private struct AxisReach {
    /// Padding ring of the source partition (the input's only), the pool (`.identity`: none),
    /// kernel extent, stride, padding, pooled input extent and output extent.
    let ring: Int, pool: PoolGeometry, kernel: Int, stride: Int, padding: Int, input: Int, output: Int

    /// The pooled coordinates whose windows hold raw coordinate r, unclipped; nil when a
    /// window the translation would bring in or take out is clipped by the pooled map's edge.
    private func pooled(_ r: Int) -> ClosedRange<Int>? {
        let x = r - ring
        if pool == .identity { return x ... x }
        // q·s − p ≤ x ≤ q·s − p + k − 1 ⇔ ⌈(x + p − k + 1)/s⌉ ≤ q ≤ ⌊(x + p)/s⌋.
        let top = x + pool.padding, low = top - pool.kernel + 1
        guard top >= 0 else { return nil }
        let first = low <= 0 ? -((-low) / pool.stride) : (low + pool.stride - 1) / pool.stride, last = top / pool.stride
        guard first >= 0, first <= last, last < input else { return nil }
        return first ... last
    }

    /// Whether every kernel row (or column) at raw coordinate r lands on an output through
    /// every window holding r, and every such window is whole: then no tap or window is
    /// clipped at r, whatever the mask, and r + T (T a multiple of the pool's and the conv's
    /// strides' product) reaches the same pattern shifted.
    func unclipped(_ r: Int) -> Bool {
        guard let q = pooled(r) else { return false }
        return q.lowerBound + padding - (kernel - 1) >= 0 && q.upperBound + padding < stride * output
    }

    /// The output coordinates r's taps can reach (a superset; empty when no kernel row's
    /// offset is a multiple of the stride), for an unclipped r.
    func reached(_ r: Int) -> Range<Int> {
        guard let q = pooled(r) else { return 0 ..< 0 }
        return (q.lowerBound + padding - kernel + 1 + stride - 1) / stride ..< (q.upperBound + padding) / stride + 1
    }

    /// Pixels of the source per output pixel along this axis: pool stride × conv stride.
    var shift: Int { pool.stride * stride }
}

/// The work of `twoHopTotal`: nodes whose 2-hop counts are computed, and how many nodes each
/// stands for.
///
/// Why classes exist: an edge is (kept tap, output position), so moving a node of a conv's
/// input by T pixels, T a multiple of pool·stride, moves its out-neighbours by T/(pool·stride)
/// — provided no tap is clipped at the map's border either before or after the move. Along
/// one axis, a coordinate is *interior* when no kernel row of any reading layer is clipped
/// there, nor at any coordinate those rows reach in the layers after (two hops); clipping is
/// separable (a tap (a, b) is valid iff row a and column b are), so two nodes of one channel
/// whose rows are both interior and ≡ mod T, and whose columns likewise (or equal), have 2-hop
/// sets that are translates — the same count. T is the lcm of pool·stride products over the
/// two-hop paths; a partition reached along two paths with different products, read through
/// a linear layer (a flattened map has no translation), or any non-conv geometry, gets no
/// classes: every node is counted.
struct TwoHopClasses {
    /// Nodes counted (representatives, or every node of a partition without classes) and
    /// their multiplicities.
    private(set) var nodes: [Int32] = []
    private(set) var weights: [Int32] = []
    /// Nodes of classed partitions with the item of their representative (the self-check).
    private(set) var samples: [(node: Int, item: Int)] = []
    /// Every node counted once when `weights` is empty.
    @inline(__always) func node(_ item: Int) -> Int { Int(nodes[item]) }
    @inline(__always) func multiplicity(_ item: Int) -> Int { weights.isEmpty ? 1 : Int(weights[item]) }

    init(everyNodeOf g: ImplicitGraph) {
        nodes = (0 ..< g.nodeCount).map { Int32(truncatingIfNeeded: $0) }
    }

    /// - Complexity: O(n) at most (a class table per partition axis, a list of representatives).
    init(_ g: ImplicitGraph) {
        for (p, part) in g.partitions.enumerated() {
            if let axes = TwoHopClasses.axisClasses(g, partition: p) {
                let h = part.shape[1], w = part.shape[2], first = nodes.count
                for c in 0 ..< part.shape[0] {
                    for (row, rm) in axes.rows {
                        for (column, cm) in axes.columns {
                            nodes.append(Int32(part.start + (c * h + row) * w + column))
                            weights.append(Int32(rm * cm))
                        }
                    }
                }
                // 32 seeded nodes of the partition, and the item standing for each.
                var rng = SeededGenerator(seed: UInt64(p))
                for _ in 0 ..< 32 {
                    let local = Int(rng.next() % UInt64(part.count))
                    let c = local / (h * w), r = local / w % h, column = local % w
                    samples.append((part.start + local,
                                    first + (c * axes.rows.count + axes.rowClass[r]) * axes.columns.count + axes.columnClass[column]))
                }
            } else {
                for v in part.start ..< part.start + part.count {
                    nodes.append(Int32(truncatingIfNeeded: v))
                    weights.append(1)
                }
            }
        }
    }

    /// Per axis of partition p, the representative coordinates and the number of coordinates
    /// each stands for; nil when p has no proven symmetry.
    static func axisClasses(_ g: ImplicitGraph, partition p: Int)
        -> (rows: [(Int, Int)], columns: [(Int, Int)], rowClass: [Int], columnClass: [Int])? {
        let plan = g.plan, part = g.partitions[p]
        guard g.isSimple, part.shape.count == 3, !g.edges.readers[p].isEmpty else { return nil }
        /// The layer's reach along axis a (1: rows, 2: columns), if it is a plain conv.
        func reach(_ l: Int, _ axis: Int) -> AxisReach? {
            let spec = plan.layers[l]
            guard case .conv(let conv) = spec.kind, !spec.croppedLeftGrid, spec.flattenedShape == nil,
                  spec.inputShape.count == 3, spec.outputShape.count == 3,
                  g.partitions[spec.targetPartition].shape == spec.outputShape,
                  spec.targetBase == g.partitions[spec.targetPartition].start else { return nil }
            return AxisReach(ring: spec.sourcePartition == 0 ? g.plan.inputPadding : 0, pool: spec.pool,
                             kernel: conv.kernel, stride: conv.stride, padding: conv.padding,
                             input: spec.inputShape[axis], output: spec.outputShape[axis])
        }
        // The shift each reached partition undergoes per pixel of p, the same along every path.
        var divisor: [Int: Int] = [:]
        func reachOnce(_ q: Int, _ d: Int) -> Bool {
            if let e = divisor[q], e != d { return false }
            divisor[q] = d
            return true
        }
        var hops: [(first: Int, second: [Int])] = []
        for l1 in g.edges.readers[p] {
            guard let r1 = reach(l1, 1) else { return nil }
            let q = plan.layers[l1].targetPartition, d1 = r1.shift
            guard reachOnce(q, d1) else { return nil }
            var second: [Int] = []
            for l2 in g.edges.readers[q] {
                guard let r2 = reach(l2, 1), reachOnce(plan.layers[l2].targetPartition, d1 * r2.shift) else { return nil }
                second.append(l2)
            }
            hops.append((l1, second))
        }
        let period = divisor.values.reduce(1) { a, b in a / gcd(a, b) * b }
        func classes(_ axis: Int) -> (reps: [(Int, Int)], classOf: [Int])? {
            var reps: [(Int, Int)] = []
            var classOf: [Int] = []
            var phaseSlot = [Int](repeating: -1, count: period)
            for r in 0 ..< part.shape[axis] {
                var interior = true
                check: for hop in hops {
                    guard let r1 = reach(hop.first, axis) else { return nil }
                    guard r1.unclipped(r) else { interior = false; break check }
                    for y in r1.reached(r) {
                        for l2 in hop.second {
                            guard let r2 = reach(l2, axis) else { return nil }
                            guard r2.unclipped(y) else { interior = false; break check }
                        }
                    }
                }
                if !interior {
                    classOf.append(reps.count)
                    reps.append((r, 1))
                } else if phaseSlot[r % period] < 0 {
                    phaseSlot[r % period] = reps.count
                    classOf.append(reps.count)
                    reps.append((r, 1))
                } else {
                    classOf.append(phaseSlot[r % period])
                    reps[phaseSlot[r % period]].1 += 1
                }
            }
            return (reps, classOf)
        }
        guard let rows = classes(1), let columns = classes(2) else { return nil }
        return (rows.reps, columns.reps, rows.classOf, columns.classOf)
    }
}

private func gcd(_ a: Int, _ b: Int) -> Int { b == 0 ? a : gcd(b, a % b) }

/// Mean over nodes of (Σ in-weights + Σ out-weights) = 2·Σw / n.
/// - Complexity: O(n + m) generation over the cores.
public func meanStrength(_ g: ImplicitGraph) -> Double {
    guard g.nodeCount > 0 else { return 0 }
    let s = Parallel.reduce(g.nodeCount, grain: 4096, 0.0, partial: { range in
        var sink = WeightSum()
        for v in range { g.emitOut(v, &sink) }
        return sink.sum
    }, combine: +)
    return 2 * s / Double(g.nodeCount)
}

/// Core numbers with degree = in + out, as `coreNumbers(Graph)` (core numbers are unique, so
/// any peeling order gives the same array). Peels level by level — at level k every node of
/// degree k is removed, in id order, and the neighbours it drops to k follow — instead of
/// Batagelj–Zaversnik's global degree order: a node's generated neighbours are near each
/// other in id (conv taps), so walking nodes in id order keeps the degree array in cache
/// (the bin sort visits nodes in degree order: a cache miss per edge, 438 s on VGG-16 at 224).
/// - Complexity: O(n·(kmax + 1) + m) time (a parallel scan per level, each edge generated once
///   from each end), O(n) memory.
public func coreNumbers(_ g: ImplicitGraph, progress: (any ProgressStage)? = nil) -> [Int32] {
    let n = g.nodeCount
    var deg = [Int32](repeating: 0, count: n)
    for v in 0 ..< n { deg[v] = Int32(g.outDegree(v) + g.inDegree(v)) }
    deg.withUnsafeMutableBufferPointer { dbuf in
        guard let dp = dbuf.baseAddress else { return }
        let shared = SharedMutablePointer(dp)
        var removed = 0
        var k: Int32 = 0
        var frontier: [Int32] = [], next: [Int32] = []
        while removed < n {
            if Cancellation.isRequested { return }
            // Nodes still in the graph all have degree ≥ k; those at exactly k go now.
            let level = k
            frontier = Parallel.reduce(n, grain: 1 << 16, [Int32](), partial: { range in
                var found: [Int32] = []
                for v in range where shared[v] == level { found.append(Int32(v)) }
                return found
            }, combine: { $0 + $1 })
            while !frontier.isEmpty {
                var peel = CorePeel(deg: dp, k: k, dropped: next)
                for v in frontier {
                    g.emitOut(Int(v), &peel)
                    g.emitIn(Int(v), &peel)
                }
                removed += frontier.count
                progress?.advance(by: frontier.count)
                swap(&frontier, &peel.dropped)
                next = peel.dropped
                next.removeAll(keepingCapacity: true)
            }
            k += 1
        }
    }
    return deg
}

/// Removes one node at level k: every neighbour above k loses one degree, and one that
/// reaches k is peeled next at this level.
struct CorePeel: EdgeSink {
    let deg: UnsafeMutablePointer<Int32>
    let k: Int32
    var dropped: [Int32]
    @inline(__always) mutating func emit(_ u: Int, _ weight: Float16) {
        let d = deg[u]
        if d > k {
            deg[u] = d - 1
            if d - 1 == k { dropped.append(Int32(truncatingIfNeeded: u)) }
        }
    }
}

/// Union–find over the emitted edges of node u.
struct UnionSink: EdgeSink {
    let sets: UnionFind
    var u: Int32
    @inline(__always) mutating func emit(_ target: Int, _ weight: Float16) { sets.union(u, Int32(target)) }
}

/// Number of weakly connected components (union–find over generated out-edges).
/// - Complexity: O(n + m·α(n)) time, O(n) memory.
public func weakComponentCount(_ g: ImplicitGraph) -> Int {
    let n = g.nodeCount
    let parent = UnionFind.run(nodeCount: n) { uf in
        var sink = UnionSink(sets: uf, u: 0)
        for u in 0 ..< n {
            if u & 0xFFFF == 0 && Cancellation.isRequested { return }
            sink.u = Int32(u)
            g.emitOut(u, &sink)
        }
    }
    var count = 0
    for v in 0 ..< n where parent[v] == Int32(v) { count += 1 }
    return count
}

/// One resumption of a DFS frame: walks node u's row from entry `cursor` on, lowering low[u]
/// over visited neighbours, and stops at the first unvisited one (the next tree child). The
/// generator cannot stop early, so the entries after it are skipped and met again when the
/// frame resumes.
struct DFSResume: EdgeSink {
    let disc: UnsafeMutablePointer<Int32>
    var low: Int32
    /// The frame's parent (-1 at the root) and whether the tree edge into u is a multi pair.
    let parent: Int
    let cursor: Int
    var index = 0
    /// The first unvisited neighbour at or after the cursor and its entry, or -1.
    var child = -1
    var childEntry = -1
    @inline(__always) mutating func emit(_ w: Int, _ weight: Float16) {
        defer { index += 1 }
        if index < cursor || child >= 0 { return }
        visit(w, multi: false)
        if child >= 0 { childEntry = index }
    }
    @inline(__always) mutating func visit(_ w: Int, multi: Bool) {
        let d = disc[w]
        if d < 0 { child = w; return }
        // The single tree edge back to the parent is not a back edge.
        if w == parent && !multi { return }
        if d < low { low = d }
    }
}

/// Bridges and articulation points of the undirected view (the iterative Hopcroft–Tarjan DFS
/// of `bridgesAndArticulationPoints`), over generated rows. A frame keeps only its node and a
/// cursor into its row; the row is generated again each time the frame resumes (after each
/// tree child), so memory stays O(n) however long the DFS path grows (on VGG-16 at 224 it
/// runs through nearly every node: keeping the rows took 20 GB).
/// - Complexity: O(Σ_v (1 + children(v))·d(v)) ≤ O(n + 2m)·(1 + max children) generation,
///   about 2(n + m) in practice; ≈ 18 bytes per node.
public func bridgesAndArticulationPoints(_ g: ImplicitGraph, progress: (any ProgressStage)? = nil)
    -> (bridges: Int, articulationPoints: Int) {
    let n = g.nodeCount
    var disc = [Int32](repeating: -1, count: n)
    var low = [Int32](repeating: 0, count: n)
    var isCut = [Bool](repeating: false, count: n)
    var stackNode = [Int32](repeating: 0, count: n)
    var stackTreeMulti = [Bool](repeating: false, count: n)   // the tree edge into the frame's node
    var stackCursor = [Int32](repeating: 0, count: n)
    let s = ImplicitScratch()
    let simple = g.isSimple
    var bridges = 0
    var time: Int32 = 0
    var visited = 0
    disc.withUnsafeMutableBufferPointer { discBuffer in
        let dp = discBuffer.baseAddress ?? UnsafeMutablePointer(bitPattern: 8)!
        /// Resumes frame `top`: returns the next tree child (-1: the row is done) and whether
        /// the edge to it is a multi pair, after lowering low[u] over the entries passed.
        func resume(_ top: Int) -> (child: Int, multi: Bool) {
            let u = Int(stackNode[top])
            let parent = top > 0 ? Int(stackNode[top - 1]) : -1
            var r = DFSResume(disc: dp, low: low[u], parent: parent, cursor: Int(stackCursor[top]))
            var multi = false
            if simple {
                // Out- and in-edges, each pair once: no merge (the DFS visits them in another
                // order than the explicit form's, which leaves bridges and cut nodes unchanged).
                g.emitOut(u, &r)
                g.emitIn(u, &r)
            } else {
                g.undirectedRow(of: u, s, weights: false)
                let row = s.row.neighbors
                var e = r.cursor
                while e < row.count {
                    r.visit(Int(row[e]), multi: s.row.multi[e])
                    if r.child >= 0 { r.childEntry = e; multi = s.row.multi[e]; break }
                    e += 1
                }
            }
            low[u] = r.low
            stackCursor[top] = Int32(r.child >= 0 ? r.childEntry + 1 : 0)
            return (r.child, multi)
        }
        for root in 0 ..< n where dp[root] < 0 {
            if Cancellation.isRequested { break }
            var top = 0
            stackNode[0] = Int32(root); stackTreeMulti[0] = false; stackCursor[0] = 0
            dp[root] = time; low[root] = time; time += 1
            visited += 1
            var rootChildren = 0
            while top >= 0 {
                let u = Int(stackNode[top])
                let next = resume(top)
                if next.child >= 0 {
                    let w = next.child
                    dp[w] = time; low[w] = time; time += 1
                    visited += 1
                    if visited & 0xFFFF == 0 {
                        progress?.advance(by: 0x10000)
                        if Cancellation.isRequested { return }
                    }
                    top += 1
                    stackNode[top] = Int32(w); stackTreeMulti[top] = next.multi; stackCursor[top] = 0
                    if u == root { rootChildren += 1 }
                } else {
                    top -= 1
                    if top >= 0 {
                        let p = Int(stackNode[top])
                        if low[u] < low[p] { low[p] = low[u] }
                        if low[u] > dp[p] && !stackTreeMulti[top + 1] { bridges += 1 }
                        if p != root && low[u] >= dp[p] { isCut[p] = true }
                    }
                }
            }
            if rootChildren >= 2 { isCut[root] = true }
        }
    }
    if Cancellation.isRequested { return (bridges, 0) }
    var cuts = 0
    for v in 0 ..< n where isCut[v] { cuts += 1 }
    return (bridges, cuts)
}

/// W = Σ_{uv∈E} min(d_u, d_v) over the undirected view, as `motifCensusWork(view)`.
/// - Complexity: O(n + m) generation over the cores.
func motifCensusWork(_ g: ImplicitGraph, degrees: [Int32]) -> Int {
    Parallel.reduce(g.nodeCount, grain: 4096, 0, partial: { range in
        let s = ImplicitScratch()
        var work = 0
        for u in range {
            g.undirectedRow(of: u, s, weights: false)
            let du = Int(degrees[u])
            for v in s.row.neighbors {
                if Int(v) >= u { break }
                work += min(du, Int(degrees[Int(v)]))
            }
        }
        return work
    }, combine: +)
}

/// Counts emitted neighbours above the root that are not stamped (the last ESU level).
struct ESUCounter: EdgeSink {
    let mark: UnsafeMutablePointer<UInt32>
    let stamp: UInt32
    let root: Int
    var count = 0
    @inline(__always) mutating func emit(_ x: Int, _ weight: Float16) {
        if x > root && mark[x] != stamp { count += 1 }
    }
}

/// Per-root ESU counts (as `esuRootCounts(view, roots:)`) over generated rows. On a simple
/// graph a row is the node's out- and in-edges as generated (each neighbour once, unsorted):
/// ESU counts each connected set once whatever order an extension set is taken in, so the
/// counts are the sorted view's, without sorting, merging or copying the rows of the last level.
/// - Complexity: as `esuRootCounts`, plus the generation of every row it reads.
func esuRootCounts(_ g: ImplicitGraph, roots: [Int]) -> [Int] {
    let n = g.nodeCount
    let simple = g.isSimple
    var result = [Int](repeating: 0, count: roots.count)
    result.withUnsafeMutableBufferPointer { rp in
        let res = SharedMutablePointer(rp.baseAddress!)
        Parallel.forChunks(roots.count, grain: 1) { _, range in
            var markV = [UInt32](repeating: UInt32.max, count: n)
            var markW = [UInt32](repeating: UInt32.max, count: n)
            var stampW: UInt32 = 0
            var ext2: [UInt32] = []
            var above: [UInt32] = []
            let s = ImplicitScratch()
            var rowV = TargetAppender(targets: []), rowW = TargetAppender(targets: [])
            /// u's row of the undirected view, into `row`.
            func fill(_ u: Int, _ row: inout TargetAppender) {
                row.targets.removeAll(keepingCapacity: true)
                if simple {
                    g.emitOut(u, &row)
                    g.emitIn(u, &row)
                } else {
                    g.undirectedRow(of: u, s, weights: false)
                    row.targets.append(contentsOf: s.row.neighbors)
                }
            }
            markV.withUnsafeMutableBufferPointer { mv in
            markW.withUnsafeMutableBufferPointer { mw in
                for ri in range {
                    if Cancellation.isRequested { break }
                    let v = roots[ri]
                    guard v >= 0 && v < n else { continue }
                    let sv = UInt32(ri)
                    fill(v, &rowV)
                    let nv = rowV.targets
                    mv[v] = sv
                    for x in nv { mv[Int(x)] = sv }
                    // The root's extension: its neighbours above it (in row order).
                    above.removeAll(keepingCapacity: true)
                    for x in nv where Int(x) > v { above.append(x) }
                    var total = 0
                    for i in above.indices {
                        let w1 = Int(above[i])
                        stampW &+= 1
                        if stampW == UInt32.max { for k in 0 ..< n { mw[k] = UInt32.max }; stampW = 0 }
                        fill(w1, &rowW)
                        let n1 = rowW.targets
                        mw[w1] = stampW
                        for x in n1 { mw[Int(x)] = stampW }
                        mw[v] = stampW
                        for x in nv { mw[Int(x)] = stampW }
                        ext2.removeAll(keepingCapacity: true)
                        ext2.append(contentsOf: above[(i + 1)...])
                        for x in n1 where Int(x) > v && mv[Int(x)] != sv { ext2.append(x) }
                        for j in 0 ..< ext2.count {
                            let w2 = Int(ext2[j])
                            total += ext2.count - j - 1
                            if simple {
                                var counter = ESUCounter(mark: mw.baseAddress!, stamp: stampW, root: v)
                                g.emitOut(w2, &counter)
                                g.emitIn(w2, &counter)
                                total += counter.count
                            } else {
                                g.undirectedRow(of: w2, s, weights: false)
                                for x in s.row.neighbors where Int(x) > v && mw[Int(x)] != stampW { total += 1 }
                            }
                        }
                    }
                    res[ri] = total
                }
            }}
        }
    }
    return result
}

/// The motifs field under `mode`, as `motifValue(view, mode:)`: the exact census (on a view
/// built from generated rows, since the census needs the whole adjacency) when chosen, else
/// the RAND-ESU estimate over generated rows.
public func motifValue(_ g: ImplicitGraph, mode motifs: MotifMode) -> MetricValue {
    switch motifs.resolved(censusWork: { motifCensusWork(g, degrees: g.undirectedDegrees()) }) {
    case .exact, .auto: return .int(connectedFourSets(g.undirectedView(weights: false)))
    case let .estimate(sample):
        let roots = sample.roots(nodeCount: g.nodeCount)
        guard !roots.isEmpty else { return .double(0) }
        let counts = rootCounts(g, roots: roots)
        return .double(Double(counts.reduce(0, +)) * Double(g.nodeCount) / Double(roots.count))
    }
}

/// The symmetric weighted adjacency (or Laplacian) of the implicit MGE's undirected view:
/// the same matrix as `SymmetricGraphOperator(view: UndirectedView(graph))`, its rows
/// generated per product (masked conv and conv-transpose taps) instead of stored.
final class ImplicitSymmetricOperator: LaneGroupProduct, SidedProduct, @unchecked Sendable {
    let graph: ImplicitGraph
    let laplacian: Bool
    let diagonal: [Double]
    let workspace = BlockWorkspace()
    let scratch: [ImplicitScratch]
    /// The product as masked convolutions (a simple graph), else rows generated per node.
    private(set) var convolutional: MaskedConvProduct?
    /// Whether a product has been checked against generated rows (once per operator), and a
    /// one-sided product (`sidedProduct`).
    private var convolutionChecked = false, sidedChecked = false
    let accumulator = BlockWorkspace()

    init(_ graph: ImplicitGraph, laplacian: Bool, convolutional: Bool = true) {
        self.graph = graph
        self.laplacian = laplacian
        self.convolutional = convolutional ? MaskedConvProduct(graph) : nil
        let scratch = scratchPerThread()
        self.scratch = scratch
        var d = [Double](repeating: 0, count: laplacian ? graph.nodeCount : 0)
        if laplacian {
            d.withUnsafeMutableBufferPointer { dp in
                let p = SharedMutablePointer(dp.baseAddress ?? UnsafeMutablePointer(bitPattern: 8)!)
                Parallel.forChunks(graph.nodeCount, grain: 4096) { t, range in
                    for v in range {
                        if graph.isSimple {
                            var sink = WeightSum()
                            graph.emitOut(v, &sink)
                            graph.emitIn(v, &sink)
                            p[v] = sink.sum
                        } else {
                            graph.undirectedRow(of: v, scratch[t], weights: true)
                            var s = 0.0
                            for w in scratch[t].row.weights { s += Double(w) }
                            p[v] = s
                        }
                    }
                }
            }
        }
        diagonal = d
    }

    /// Whether the view has any entry (a graph of self-loops only has none).
    func hasEntries() -> Bool {
        let s = ImplicitScratch()
        for v in 0 ..< graph.nodeCount where graph.outDegree(v) > 0 {
            graph.undirectedRow(of: v, s, weights: false)
            if !s.row.neighbors.isEmpty { return true }
        }
        return false
    }

    /// Y = M X for `count` column-major vectors, in groups of up to eight lanes like
    /// `SymmetricGraphOperator.apply(block:)`: as masked convolutions on a simple graph
    /// (`MaskedConvProduct`), else over generated rows (the explicit form's summation order).
    /// - Complexity: O(n + m) per group.
    func apply(block x: UnsafePointer<Double>, _ y: UnsafeMutablePointer<Double>, count b: Int) {
        applyInLaneGroups(block: x, y, count: b)
    }

    var dimension: Int { graph.nodeCount }

    func product<L: GatherLanes>(_ xi: UnsafeMutablePointer<L>, _ y: UnsafeMutablePointer<Double>, width w: Int) {
        let n = graph.nodeCount
        let yp = SharedMutablePointer(y)
        let xs = SharedMutablePointer(xi)
        let lap = laplacian, graph = self.graph, scratch = self.scratch
        if let convolutional {
            let acc = accumulator.interleaved(L.self, n: n)
            Parallel.forChunks(n, grain: 8192) { _, r in for v in r { acc[v] = L() } }
            convolutional.accumulate(xi, into: acc)
            if !convolutionChecked {
                // A layer geometry the sweep misreads would give a wrong spectrum silently: the
                // first product is checked on sampled rows against the generator, and a
                // mismatch sends every product through generated rows.
                convolutionChecked = true
                if !agreesWithGeneratedRows(xi, acc, width: w) {
                    self.convolutional = nil
                    return product(xi, y, width: w)
                }
            }
            let accs = SharedMutablePointer(acc)
            diagonal.withUnsafeBufferPointer { dg in
                Parallel.forChunks(n, grain: 8192) { _, r in
                    for u in r {
                        var s = accs[u]
                        if lap { s = L.adding(L.adding(L(), dg[u], xs[u]), -1, s) }
                        for c in 0 ..< w { yp[c * n + u] = s[c] }
                    }
                }
            }
            return
        }
        diagonal.withUnsafeBufferPointer { dg in
            Parallel.forChunks(n, grain: 2048) { t, r in
                let xi = xs.base
                let sc = scratch[t]
                for u in r {
                    var s = Self.generatedRowSum(graph, u, xi, sc)
                    if lap { s = L.adding(L.adding(L(), dg[u], xi[u]), -1, s) }
                    for c in 0 ..< w { yp[c * n + u] = s[c] }
                }
            }
        }
    }

    /// Whether `acc` (A·X by masked convolutions) equals the generated rows' sums on 4096
    /// rows spread over `rows` (default: the whole graph), to 1e-9 of each row's Σ|w·x|.
    /// - Complexity: O(Σ d) over the sampled rows.
    private func agreesWithGeneratedRows<L: GatherLanes>(_ xi: UnsafeMutablePointer<L>, _ acc: UnsafeMutablePointer<L>, width w: Int,
                                                         rows: [Range<Int>]? = nil) -> Bool {
        let ranges = rows ?? [0 ..< graph.nodeCount]
        let step = max(1, ranges.reduce(0) { $0 + $1.count } / 4096)
        var skip = 0
        for r in ranges {
            var u = r.lowerBound + skip
            while u < r.upperBound {
                var sink = LaneProduct<L>(x: xi)
                graph.emitOut(u, &sink)
                graph.emitIn(u, &sink)
                var scale = AbsoluteLaneSum<L>(x: xi)
                graph.emitOut(u, &scale)
                graph.emitIn(u, &scale)
                for c in 0 ..< w where abs(sink.s[c] - acc[u][c]) > 1e-9 * scale.s[c] + 1e-300 { return false }
                u += step
            }
            skip = u - r.upperBound
        }
        return true
    }

    // MARK: One side of a bipartition (`BipartiteSpectrum.swift`)

    var nodeCount: Int { graph.nodeCount }

    /// As `SymmetricGraphOperator.sidedProduct`: masked convolutions with only the layers'
    /// directions that read the opposite side (checked once against generated rows, as the
    /// whole product is), else generated rows of the side's nodes.
    func sidedProduct<L: GatherLanes>(_ x: UnsafeMutablePointer<L>, into y: UnsafeMutablePointer<L>,
                                      sides: BipartiteSides, working: Bool) {
        let rows = sides.ranges(working: working)
        let xs = SharedMutablePointer(x), ys = SharedMutablePointer(y)
        if let convolutional {
            forEachNode(in: rows) { ys[$0] = L() }
            convolutional.accumulate(x, into: y, from: sides.onSide.map { $0 != working })
            if !sidedChecked {
                sidedChecked = true
                if !agreesWithGeneratedRows(x, y, width: L.scalarCount, rows: rows) {
                    self.convolutional = nil
                    return sidedProduct(x, into: y, sides: sides, working: working)
                }
            }
            return
        }
        let graph = self.graph, scratch = self.scratch
        for r in rows {
            Parallel.forChunks(r.count, grain: 2048) { t, chunk in
                for i in chunk { ys[r.lowerBound + i] = Self.generatedRowSum(graph, r.lowerBound + i, xs.base, scratch[t]) }
            }
        }
    }

    /// Σ_w a_uw x[w] over u's generated row: on a simple graph its out- and in-edges (a masked
    /// conv and its transpose) summed in generation order (rounding-level differences from
    /// the sorted view only), else the merged undirected row.
    @inline(__always)
    private static func generatedRowSum<L: GatherLanes>(_ graph: ImplicitGraph, _ u: Int, _ x: UnsafeMutablePointer<L>,
                                                         _ scratch: ImplicitScratch) -> L {
        if graph.isSimple {
            var sink = LaneProduct<L>(x: x)
            graph.emitOut(u, &sink)
            graph.emitIn(u, &sink)
            return sink.s
        }
        graph.undirectedRow(of: u, scratch, weights: true)
        let nb = scratch.row.neighbors, wt = scratch.row.weights
        var s = L()
        for e in nb.indices { s = L.adding(s, Double(wt[e]), x[Int(nb[e])]) }
        return s
    }

    /// The dense matrix (row-major), for dimensions under the dense threshold.
    func dense() -> [Double] {
        let n = graph.nodeCount
        var a = [Double](repeating: 0, count: n * n)
        let s = ImplicitScratch()
        for v in 0 ..< n {
            graph.undirectedRow(of: v, s, weights: true)
            for (k, u) in s.row.neighbors.enumerated() { a[v * n + Int(u)] = laplacian ? -Double(s.row.weights[k]) : Double(s.row.weights[k]) }
            if laplacian { a[v * n + v] = diagonal[v] }
        }
        return a
    }

    /// `observe(vectors)` after every block product (benchmarks count and time them).
    func eigenvalues(k: Int, target: EigenTarget, options: LanczosOptions, observe: ((Int) -> Void)? = nil) -> EigenResult {
        graphEigenvalues(dimension: graph.nodeCount, dense: { dense() }, k: k, target: target, options: options) { x, y, b in
            apply(block: x, y, count: b)
            observe?(b)
        }
    }
}

extension LanczosOptions {
    /// These options with the basis shrunk (to no fewer than 32 vectors) where 8·n·(basis + 8)
    /// bytes would exceed a fifth of the memory. (The restart combines the kept Ritz vectors
    /// in place, so the basis is the solver's only n-sized storage besides the product's two
    /// interleaved copies.)
    public func fitting(nodeCount n: Int) -> LanczosOptions {
        var o = self
        let budget = CheckedSize.physicalMemory / 5, perVector = 8 * max(n, 1)
        if perVector * (o.basisSize + 8) > budget { o.basisSize = max(32, budget / perVector - 8) }
        return o
    }
}

/// Three largest |λ| of the weighted adjacency, descending (as `topAbsEigenvalues(view)`).
/// `observe(vectors)` is called after every block product.
public func topAbsEigenvalues(_ g: ImplicitGraph, count: Int = 3, options: LanczosOptions = LanczosOptions(),
                              observe: ((Int) -> Void)? = nil, solved: ((EigenResult) -> Void)? = nil) -> [Double] {
    let op = ImplicitSymmetricOperator(g, laplacian: false)
    if !op.hasEntries() { return [Double](repeating: 0, count: count) }
    if count == 3, let sides = g.bipartiteSides, sides.count > options.denseThreshold {
        return bipartiteTopAbsEigenvalues(op, sides: sides, options: options.fitting(nodeCount: sides.count), observe: observe, solved: solved)
    }
    let options = options.fitting(nodeCount: g.nodeCount)
    let r = op.eigenvalues(k: count, target: .largestMagnitude, options: options, observe: observe)
    solved?(r)
    var a = r.values.map { abs($0) }.sorted(by: >)
    while a.count < count { a.append(0) }
    return a
}

/// Largest eigenvalue of the weighted Laplacian (as `laplacianSpectralRadius(view)` on the
/// whole graph: started ±1 by side when the partitions 2-colour). `observe(vectors)` is called
/// after every product.
public func laplacianSpectralRadius(_ g: ImplicitGraph, options: LanczosOptions = LanczosOptions(),
                                    observe: ((Int) -> Void)? = nil, solved: ((EigenResult) -> Void)? = nil) -> Double {
    let op = ImplicitSymmetricOperator(g, laplacian: true)
    if !op.hasEntries() { return 0 }
    let r = laplacianRadius(dimension: g.nodeCount, dense: { op.dense() }, diagonal: op.diagonal, sides: g.bipartiteSides, options: options) { x, y, b in
        op.apply(block: x, y, count: b)
        observe?(b)
    }
    solved?(r)
    return r.values.first ?? 0
}

/// Seconds per block product of `vectors` random vectors with the adjacency, as masked
/// convolutions and as generated rows (nil where the graph has no convolutional product),
/// and the largest relative difference between the two (benchmarks).
public func blockProductSeconds(_ g: ImplicitGraph, vectors: Int = 4, repeats: Int = 1) -> (convolutional: Double?, rows: Double, difference: Double) {
    let n = g.nodeCount
    var rng = SeededGenerator(seed: 1)
    let x = (0 ..< n * vectors).map { _ in rng.uniform() - 0.5 }
    var y1 = [Double](repeating: 0, count: n * vectors), y2 = y1
    func time(_ op: ImplicitSymmetricOperator, _ y: inout [Double]) -> Double {
        let start = DispatchTime.now().uptimeNanoseconds
        for _ in 0 ..< repeats { x.withUnsafeBufferPointer { xp in y.withUnsafeMutableBufferPointer { op.apply(block: xp.baseAddress!, $0.baseAddress!, count: vectors) } } }
        return Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9 / Double(repeats)
    }
    let rows = time(ImplicitSymmetricOperator(g, laplacian: false, convolutional: false), &y2)
    let conv = MaskedConvProduct(g) == nil ? nil : time(ImplicitSymmetricOperator(g, laplacian: false), &y1)
    var scale = 0.0, diff = 0.0
    for i in y2.indices { scale = max(scale, abs(y2[i])); diff = max(diff, abs(y1[i] - y2[i])) }
    return (conv, rows, conv == nil ? 0 : diff / max(scale, 1e-300))
}

/// All (or `only`) topometrics of an implicit MGE: the same record as `topometrics(Graph)`
/// on `unroll(net)` of the same network (integers identical, floats to rounding), in O(n +
/// weights) memory. Each metric reports its progress as a stage; Ctrl-C is polled inside the
/// long passes and checked between metrics.
/// - Throws: `TopometricsError.unknownField`; `InterruptedError` when cancelled.
/// - Complexity: the explicit form's, with each edge generated (a few ns) instead of read.
public func topometrics(_ g: ImplicitGraph, compat: MetricsCompat = .paper, motifs: MotifMode = MotifMode.defaultMode,
                        only: Set<String>? = nil, lanczos: LanczosOptions = .wholeGraph) throws -> Topometrics {
    if let only { for f in only where !Topometrics.fieldNames.contains(f) { throw TopometricsError.unknownField(f) } }
    func want(_ f: String) -> Bool { only?.contains(f) ?? true }
    var r = Topometrics(nodes: g.nodeCount, edges: g.edgeCount)
    let n = g.nodeCount
    func stage<T>(_ name: String, total: Int = 1, _ body: (any ProgressStage) throws -> T) throws -> T {
        let p = Progress.begin(name, total: total, unit: total > 1 ? "nodes" : "")
        defer { p.finish() }
        let v = try body(p)
        try Cancellation.check()
        return v
    }
    if want("sink_nodes") || want("source_nodes") || want("disconnected_nodes") || want("removable_out_edges") || want("removable_in_edges") {
        let l = localConnectivity(g, compat: compat)
        if want("sink_nodes") { r.sinkNodes = l.sink }
        if want("source_nodes") { r.sourceNodes = l.source }
        if want("disconnected_nodes") { r.disconnectedNodes = l.disconnected }
        if want("removable_out_edges") { r.removableOutEdges = l.removableOut }
        if want("removable_in_edges") { r.removableInEdges = l.removableIn }
    }
    if want("one_hop") { r.oneHop = try stage("one_hop") { _ in n == 0 ? 0 : Double(oneHopTotal(g)) / Double(n) } }
    if want("two_hop") { r.twoHop = try stage("two_hop", total: n) { p in n == 0 ? 0 : Double(twoHopTotal(g, progress: p)) / Double(n) } }
    if want("strength") { r.strength = try stage("strength") { _ in meanStrength(g) } }
    if want("k_core") {
        r.kCore = try stage("k_core", total: n) { p in n == 0 ? 0 : meanOf(coreNumbers(g, progress: p)) }
    }
    if want("components") || want("mean_component_size") {
        let c = try stage("components") { _ in weakComponentCount(g) }
        if want("components") { r.components = c }
        if want("mean_component_size") { r.meanComponentSize = c == 0 ? 0 : Double(n) / Double(c) }
    }
    if want("cut_edges") || want("cut_nodes") {
        let b = try stage("cut edges and nodes", total: n) { p in bridgesAndArticulationPoints(g, progress: p) }
        if want("cut_edges") { r.cutEdges = b.bridges }
        if want("cut_nodes") { r.cutNodes = b.articulationPoints }
    }
    if want("motifs") { r.motifs = try stage("motifs") { _ in motifValue(g, mode: motifs) } }
    // The gap's Lanczos basis holds (basis + block) vectors of its dimension: where that
    // exceeds a fifth of the memory `topAbsEigenvalues` shrinks it (to no fewer than 32
    // vectors; never on the CIFAR models, whose records stay identical to the explicit
    // form's). The radius keeps four n-vectors whatever the graph (`laplacianLargestEigenvalue`).
    var notes: [String] = []
    if want("spectral_gap"), g.edgeCount > 0 {
        let top = try stage("spectral_gap") { _ in
            topAbsEigenvalues(g, options: lanczos, solved: { if let note = unconvergedNote("spectral_gap", $0, lanczos) { notes.append(note) } })
        }
        r.topAbsEigenvalues = top
        r.spectralGap = top[0] - top[2]
    }
    if want("spectral_radius"), g.edgeCount > 0 {
        r.spectralRadius = try stage("spectral_radius") { _ in
            laplacianSpectralRadius(g, options: lanczos, solved: {
                if let note = unconvergedNote("spectral_radius", $0, lanczos) { notes.append(note) }
            })
        }
    }
    r.notes = notes
    return r
}
