// The spectral gap of a bipartite MGE through its normal matrix. A chain of layers (VGG,
// CONV-6), and a ResNet whose shortcuts skip an odd number of partitions (ResNet-50's
// bottlenecks), colour their partitions in two classes with every edge between classes:
// A = [[0, Bᵀ], [B, 0]] with B the edges from side S to the other side, and A's eigenvalues are
// ±σᵢ(B) (and zeros). So |λ|₁ = |λ|₂ = σ₁, |λ|₃ = σ₂: the gap is σ₁ − σ₂, the top two
// eigenvalues of BᵀB = (A²)_SS. Lanczos on BᵀB works on vectors half as long, and its
// wanted values stand out more: relative gap (σ₁² − σ₂²)/σ₂² ≈ 2δ/σ against A's
// δ/(2σ) with both ends of ±σ to resolve — on ResNet-50 at 224 the gap needs 77 products
// instead of 269 (docs/scale.md). One product of BᵀB costs one of A: two one-sided products,
// each reading every edge once.

/// The two sides of a bipartite graph as whole partitions, and the numbering of the side the
/// normal matrix works on (its vectors hold that side's nodes in id order).
struct BipartiteSides: Sendable {
    /// Whether each partition lies on the working side.
    let onSide: [Bool]
    /// The working side's id ranges (its partitions, in id order) and the index of each
    /// range's first node in a working-side vector.
    let ranges: [Range<Int>], offsets: [Int]
    /// The other side's id ranges.
    let otherRanges: [Range<Int>]
    /// Nodes on the working side.
    let count: Int

    /// Sides from the partition pairs the edges join (nil unless they 2-colour the
    /// partitions); the working side is the colour with fewer nodes (colour 0 on a tie).
    init?(partitions: [Partition], pairs: [(Int, Int)]) {
        guard !partitions.isEmpty, let colour = partitionColouring(partitionCount: partitions.count, pairs: pairs) else { return nil }
        var size = [0, 0]
        for (p, c) in zip(partitions, colour) { size[Int(c)] += p.count }
        let working: UInt8 = size[1] < size[0] ? 1 : 0
        onSide = colour.map { $0 == working }
        var r: [Range<Int>] = [], o: [Int] = [], other: [Range<Int>] = [], total = 0
        for (p, on) in zip(partitions, onSide) where p.count > 0 {
            if on { r.append(p.range); o.append(total); total += p.count } else { other.append(p.range) }
        }
        ranges = r; offsets = o; otherRanges = other; count = total
    }

    /// The id ranges of the working side (`working`) or of the other side.
    func ranges(working: Bool) -> [Range<Int>] { working ? ranges : otherRanges }
}

/// A symmetric graph operator that can take its product one side of a bipartition at a time.
protocol SidedProduct {
    /// Nodes of the whole graph.
    var nodeCount: Int { get }
    /// y[u] = Σ_w a_uw x[w] for every node u on the working side (`working`) or the other
    /// side; only the opposite side's entries of x are read, only u's entries of y written.
    func sidedProduct<L: GatherLanes>(_ x: UnsafeMutablePointer<L>, into y: UnsafeMutablePointer<L>,
                                      sides: BipartiteSides, working: Bool)
}

/// Runs `body` on the ids of `ranges` in chunks over the cores.
func forEachNode(in ranges: [Range<Int>], _ body: (Int) -> Void) {
    for r in ranges {
        Parallel.forChunks(r.count, grain: 2048) { _, c in for i in c { body(r.lowerBound + i) } }
    }
}

/// BᵀB on the working side's vectors: scatter into the whole graph's numbering, a one-sided
/// product to the other side, one back, gather.
final class NormalOperator<Base: SidedProduct>: LaneGroupProduct, @unchecked Sendable {
    let base: Base
    let sides: BipartiteSides
    let workspace = BlockWorkspace()
    private let whole = BlockWorkspace(), middle = BlockWorkspace()

    init(_ base: Base, sides: BipartiteSides) { self.base = base; self.sides = sides }

    var dimension: Int { sides.count }

    func product<L: GatherLanes>(_ xi: UnsafeMutablePointer<L>, _ y: UnsafeMutablePointer<Double>, width w: Int) {
        let n = base.nodeCount, m = sides.count
        let x = SharedMutablePointer(whole.interleaved(L.self, n: n))
        let t = SharedMutablePointer(middle.interleaved(L.self, n: n))
        let xs = SharedMutablePointer(xi), yp = SharedMutablePointer(y)
        // Every entry defined (the products read only the opposite side, but no garbage may
        // ever reach a sum).
        Parallel.forChunks(n, grain: 8192) { _, r in for v in r { x[v] = L(); t[v] = L() } }
        for (range, offset) in zip(sides.ranges, sides.offsets) {
            Parallel.forChunks(range.count, grain: 8192) { _, r in for i in r { x[range.lowerBound + i] = xs[offset + i] } }
        }
        base.sidedProduct(x.base, into: t.base, sides: sides, working: false)
        base.sidedProduct(t.base, into: x.base, sides: sides, working: true)
        for (range, offset) in zip(sides.ranges, sides.offsets) {
            Parallel.forChunks(range.count, grain: 8192) { _, r in
                for i in r {
                    let s = x[range.lowerBound + i]
                    for c in 0 ..< w { yp[c * m + offset + i] = s[c] }
                }
            }
        }
    }

    func apply(block x: UnsafePointer<Double>, _ y: UnsafeMutablePointer<Double>, count b: Int) {
        applyInLaneGroups(block: x, y, count: b)
    }
}

/// The three largest |λ| of a bipartite graph's adjacency from the top two eigenvalues of
/// its normal matrix: [σ₁, σ₁, σ₂] (σ = √μ, a rounding-negative μ read as 0).
/// - Complexity: as `symmetricEigenvalues` on `sides.count` unknowns.
func bipartiteTopAbsEigenvalues<Base: SidedProduct>(_ base: Base, sides: BipartiteSides, options: LanczosOptions,
                                                    observe: ((Int) -> Void)? = nil, solved: ((EigenResult) -> Void)? = nil) -> [Double] {
    let op = NormalOperator(base, sides: sides)
    let r = symmetricEigenvalues(dimension: sides.count, k: 2, target: .largestAlgebraic, options: options) { x, y, b in
        op.apply(block: x, y, count: b)
        observe?(b)
    }
    solved?(r)
    let sigma = r.values.map { max(0, $0).squareRoot() }
    let s1 = sigma.first ?? 0, s2 = sigma.count > 1 ? sigma[1] : 0
    return [s1, s1, s2]
}

extension Graph {
    /// Partition pairs (source, target) joined by at least one edge.
    /// - Complexity: O(n + m), a binary search only when a target leaves the partition of the
    ///   previous one.
    var edgePartitionPairs: [(Int, Int)] {
        var pairs: [(Int, Int)] = []
        for (s, part) in partitions.enumerated() {
            var seen = [Bool](repeating: false, count: partitions.count)
            var last = 0 ..< 0
            for v in part.range {
                for e in outOffsets[v] ..< outOffsets[v + 1] where !last.contains(Int(outTargets[e])) {
                    let q = partitionIndex(of: Int(outTargets[e]))
                    last = partitions[q].range
                    if !seen[q] { seen[q] = true; pairs.append((s, q)) }
                }
            }
        }
        return pairs
    }

    /// The bipartition of its partitions the edges allow (nil: none).
    var bipartiteSides: BipartiteSides? { BipartiteSides(partitions: partitions, pairs: edgePartitionPairs) }
}

extension ImplicitGraph {
    /// Partition pairs (source, target) joined by at least one edge, as
    /// `Graph.edgePartitionPairs`: every layer's candidate target partitions are looked for
    /// among the out-edges of its source partition's nodes, which stops as soon as all are
    /// found (at once, unless a layer has no edge at all; then its source is scanned whole).
    /// - Complexity: O(Σ over source partitions of the edges generated until every candidate
    ///   is seen).
    var edgePartitionPairs: [(Int, Int)] {
        var candidates = [Set<Int>](repeating: [], count: partitions.count)
        for l in plan.layers {
            candidates[l.sourcePartition].insert(partitionIndex(of: l.targetBase))
            candidates[l.sourcePartition].insert(partitionIndex(of: l.targetBase + max(0, l.outputCount - 1)))
        }
        var pairs: [(Int, Int)] = []
        var list = EdgeList()
        for (s, part) in partitions.enumerated() where !candidates[s].isEmpty {
            var missing = candidates[s], found = Set<Int>()
            for v in part.range {
                list.clear()
                emitOut(v, &list)
                for t in list.targets {
                    let q = partitionIndex(of: Int(t))
                    if found.insert(q).inserted { missing.remove(q) }
                }
                if missing.isEmpty { break }
            }
            pairs += found.sorted().map { (s, $0) }
        }
        return pairs
    }

    /// The bipartition of its partitions the edges allow, as `Graph.bipartiteSides`.
    var bipartiteSides: BipartiteSides? { BipartiteSides(partitions: partitions, pairs: edgePartitionPairs) }
}

extension SymmetricGraphOperator: SidedProduct {
    var nodeCount: Int { view.nodeCount }

    func sidedProduct<L: GatherLanes>(_ x: UnsafeMutablePointer<L>, into y: UnsafeMutablePointer<L>,
                                      sides: BipartiteSides, working: Bool) {
        let xs = SharedMutablePointer(x), ys = SharedMutablePointer(y)
        let view = self.view, weighted = self.weighted
        forEachNode(in: sides.ranges(working: working)) { u in
            var s = L()
            for e in view.offsets[u] ..< view.offsets[u + 1] {
                s = L.adding(s, weighted ? Double(view.weights[e]) : 1, xs[Int(view.neighbors[e])])
            }
            ys[u] = s
        }
    }
}
