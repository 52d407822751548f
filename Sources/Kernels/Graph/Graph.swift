/// A named block of consecutive node ids: one layer's nodes in a multipartite encoding.
public struct Partition: Equatable, Sendable {
    /// Layer name in PyTorch terms (`"input"`, `"conv1"`, `"layer1.0.conv2"`, `"linear"`).
    public var name: String
    /// First node id of the partition.
    public var start: Int
    /// Number of nodes.
    public var count: Int
    /// Feature-map shape `[C, H, W]` (or `[F]` for a linear output) the nodes enumerate,
    /// channel-major then row-major.
    public var shape: [Int]

    public init(name: String, start: Int, count: Int, shape: [Int]) {
        self.name = name; self.start = start; self.count = count; self.shape = shape
    }
    public var range: Range<Int> { start ..< start + count }
}

/// A directed, weighted graph stored as CSR out-adjacency plus CSR in-adjacency.
///
/// Memory: 8 bytes per node per direction for offsets, and per edge 4 (target) + 2 (half
/// weight) + 4 (source in the in-adjacency) = 10 bytes; 200 M edges fit in 2 GB.
/// Node ids are 32-bit; edges of a node are sorted by neighbour id in both directions.
/// Parallel edges are allowed (the reference's stride-2 quirk produces none, but
/// nothing here relies on their absence).
public final class Graph: @unchecked Sendable {
    public let nodeCount: Int
    public let partitions: [Partition]
    /// `outOffsets[v] ..< outOffsets[v+1]` indexes `outTargets`/`outWeights`.
    public let outOffsets: [Int]
    public let outTargets: [UInt32]
    public let outWeights: [Float16]
    /// `inOffsets[v] ..< inOffsets[v+1]` indexes `inSources`/`inWeights`.
    public let inOffsets: [Int]
    public let inSources: [UInt32]
    public let inWeights: [Float16]

    public var edgeCount: Int { outTargets.count }

    /// Builds the in-adjacency from a CSR out-adjacency by counting sort.
    /// - Precondition: `outOffsets.count == nodeCount + 1`, targets `< nodeCount`,
    ///   each node's targets sorted ascending (then the in-lists come out sorted too).
    /// - Complexity: O(n + m) time, O(n + m) extra memory.
    public init(nodeCount: Int, partitions: [Partition], outOffsets: [Int],
                outTargets: [UInt32], outWeights: [Float16]) {
        precondition(outOffsets.count == nodeCount + 1 && outTargets.count == outWeights.count)
        self.nodeCount = nodeCount
        self.partitions = partitions
        self.outOffsets = outOffsets
        self.outTargets = outTargets
        self.outWeights = outWeights
        var counts = [Int](repeating: 0, count: nodeCount + 1)
        for t in outTargets { counts[Int(t) + 1] += 1 }
        for v in 0 ..< nodeCount { counts[v + 1] += counts[v] }
        self.inOffsets = counts
        var cursor = counts
        var sources = [UInt32](repeating: 0, count: outTargets.count)
        var weights = [Float16](repeating: 0, count: outTargets.count)
        outTargets.withUnsafeBufferPointer { tgt in
            outWeights.withUnsafeBufferPointer { w in
                sources.withUnsafeMutableBufferPointer { src in
                    weights.withUnsafeMutableBufferPointer { iw in
                        for u in 0 ..< nodeCount {
                            for e in outOffsets[u] ..< outOffsets[u + 1] {
                                let t = Int(tgt[e])
                                let slot = cursor[t]
                                src[slot] = UInt32(u)
                                iw[slot] = w[e]
                                cursor[t] = slot + 1
                            }
                        }
                    }
                }
            }
        }
        self.inSources = sources
        self.inWeights = weights
    }

    /// Wraps CSR arrays already built in both directions (the unrolled encoder fills the
    /// out-adjacency in parallel and transposes it in parallel, see `Graph.fromOutAdjacency`).
    /// - Precondition: both adjacencies hold the same edges, offsets have `nodeCount + 1`
    ///   entries, ids `< nodeCount`, each node's neighbours sorted ascending.
    /// - Complexity: O(1) (the arrays are shared, not copied).
    public init(nodeCount: Int, partitions: [Partition],
                outOffsets: [Int], outTargets: [UInt32], outWeights: [Float16],
                inOffsets: [Int], inSources: [UInt32], inWeights: [Float16]) {
        precondition(outOffsets.count == nodeCount + 1 && inOffsets.count == nodeCount + 1
                     && outTargets.count == outWeights.count && inSources.count == inWeights.count
                     && outTargets.count == inSources.count)
        self.nodeCount = nodeCount
        self.partitions = partitions
        self.outOffsets = outOffsets
        self.outTargets = outTargets
        self.outWeights = outWeights
        self.inOffsets = inOffsets
        self.inSources = inSources
        self.inWeights = inWeights
    }

    @inlinable public func outDegree(_ v: Int) -> Int { outOffsets[v + 1] - outOffsets[v] }
    @inlinable public func inDegree(_ v: Int) -> Int { inOffsets[v + 1] - inOffsets[v] }

    /// The partition holding node `v`, by binary search. - Complexity: O(log p)
    public func partitionIndex(of v: Int) -> Int {
        var lo = 0, hi = partitions.count - 1
        while lo < hi {
            let mid = (lo + hi + 1) / 2
            if partitions[mid].start <= v { lo = mid } else { hi = mid - 1 }
        }
        return lo
    }

    /// Approximate bytes held by the adjacency arrays.
    public var byteSize: Int {
        (outOffsets.count + inOffsets.count) * 8 + edgeCount * (4 + 2 + 4 + 2)
    }
}
