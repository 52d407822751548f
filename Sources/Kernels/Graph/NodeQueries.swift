/// Node-level questions a lecturer points at: neighbourhoods, receptive fields, paths, and the
/// sink / source / isolated nodes the topometrics count (SPEC §4). Node sets are sorted id arrays.
/// They are written once over `MultipartiteGraph`, which the stored `Graph` and the generated
/// `ImplicitGraph` (ImplicitNodeQueries.swift) both satisfy, so both forms give the same answers.
public enum EdgeDirection: String, CaseIterable, Sendable {
    case out, `in`, both
}

/// What the node queries need of a graph laid out in named partitions: its node layout, the
/// degrees and the neighbours of one node — read from the edge list or generated.
public protocol MultipartiteGraph: AnyObject {
    var nodeCount: Int { get }
    var partitions: [Partition] { get }
    /// The partition holding node `v`.
    func partitionIndex(of v: Int) -> Int
    func inDegree(_ v: Int) -> Int
    func outDegree(_ v: Int) -> Int
    /// Calls `body` with every neighbour of `u` along `direction` (out-edges' targets, in-edges'
    /// sources, or both), once per edge, in an unspecified order.
    func forEachNeighbour(of u: Int, _ direction: EdgeDirection, _ body: (Int) -> Void)
    /// `u`'s out-neighbours ascending, once per edge (parallel edges repeat), as the out-CSR holds them.
    func sortedOutNeighbours(of u: Int) -> [Int]
}

extension Graph: MultipartiteGraph {
    public func forEachNeighbour(of u: Int, _ direction: EdgeDirection, _ body: (Int) -> Void) {
        if direction != .in { for e in outOffsets[u] ..< outOffsets[u + 1] { body(Int(outTargets[e])) } }
        if direction != .out { for e in inOffsets[u] ..< inOffsets[u + 1] { body(Int(inSources[e])) } }
    }

    public func sortedOutNeighbours(of u: Int) -> [Int] { outTargets[outOffsets[u] ..< outOffsets[u + 1]].map { Int($0) } }
}

/// One bit per node: the visited sets of the walks below (n/8 bytes, where a `[Bool]` takes n
/// and an id list up to 8n — it matters on an implicit graph of 10⁷ nodes).
public struct NodeBits {
    public private(set) var words: [UInt64]
    public init(count: Int) { words = [UInt64](repeating: 0, count: (count + 63) / 64) }
    @inline(__always) public func contains(_ v: Int) -> Bool { words[v >> 6] & (1 << UInt64(v & 63)) != 0 }
    /// Sets `v`'s bit; true when it was not set.
    @inline(__always) @discardableResult public mutating func insert(_ v: Int) -> Bool {
        let bit: UInt64 = 1 << UInt64(v & 63)
        if words[v >> 6] & bit != 0 { return false }
        words[v >> 6] |= bit
        return true
    }
    /// The set nodes in `range`, ascending. - Complexity: O(range / 64 + members).
    public func members(in range: Range<Int>) -> [Int] {
        var out: [Int] = []
        var v = range.lowerBound
        while v < range.upperBound {
            let w = words[v >> 6] >> UInt64(v & 63)
            if w == 0 { v = (v | 63) + 1; continue }
            v += w.trailingZeroBitCount
            if v < range.upperBound { out.append(v) }
            v += 1
        }
        return out
    }
}

extension MultipartiteGraph {
    /// The node of `partition` at `coordinates` in its shape (`[c, y, x]` for a feature map,
    /// `[i]` for a vector); nil when out of range.
    public func node(partition p: Int, coordinates: [Int]) -> Int? {
        let shape = partitions[p].shape
        guard coordinates.count == shape.count else { return nil }
        var local = 0
        for (i, n) in zip(coordinates, shape) {
            guard i >= 0, i < n else { return nil }
            local = local * n + i
        }
        return partitions[p].start + local
    }

    /// Coordinates of node `v` in its partition's shape (the inverse of `node(partition:coordinates:)`).
    public func coordinates(of v: Int) -> (partition: Int, coordinates: [Int]) {
        let p = partitionIndex(of: v)
        var local = v - partitions[p].start
        var out = [Int](repeating: 0, count: partitions[p].shape.count)
        for (i, n) in partitions[p].shape.enumerated().reversed() {
            out[i] = local % max(n, 1)
            local /= max(n, 1)
        }
        return (p, out)
    }

    /// Nodes reached from `start` in 1 to `hops` steps along `direction` (the start nodes
    /// themselves only if reached again), sorted.
    /// - Complexity: O(nodes / 64 + edges visited); two bits per node plus the frontier.
    public func neighbourhood(of start: [Int], hops: Int, direction: EdgeDirection) -> [Int] {
        var seen = NodeBits(count: nodeCount)
        var reached = NodeBits(count: nodeCount)
        var frontier = start
        for v in start { seen.insert(v) }
        for _ in 0 ..< max(0, hops) {
            var next: [Int] = []
            for u in frontier {
                forEachNeighbour(of: u, direction) { v in
                    reached.insert(v)
                    if seen.insert(v) { next.append(v) }
                }
            }
            if next.isEmpty { break }
            frontier = next
        }
        return reached.members(in: 0 ..< nodeCount)
    }

    /// Every node with a path to one of `targets` (`.in`) or from one of them (`.out`, `.both`:
    /// along edges either way), the targets included, as one bit per node.
    ///
    /// `.in` and `.out` sweep the ids once, against and along the edges: in a multipartite
    /// encoding every edge runs from a lower to a higher id (layer by layer), so a node is
    /// expanded when the sweep reaches it, after everything it is reached from. An edge against
    /// the id order (the reference's stride-2 quirk lays a layer's outputs inside its input's
    /// partition) marks a node the sweep has passed; that node is expanded at once from a stack.
    /// - Complexity: O(nodes / 64 + edges of the reached nodes) time; n/8 bytes, plus the stack
    ///   of nodes reached against the id order (none in paper mode).
    public func reachableBits(from targets: [Int], direction: EdgeDirection) -> NodeBits {
        var seen = NodeBits(count: nodeCount)
        for v in targets { seen.insert(v) }
        guard direction != .both else {
            var stack = targets
            while let u = stack.popLast() {
                forEachNeighbour(of: u, .both) { v in if seen.insert(v) { stack.append(v) } }
            }
            return seen
        }
        guard let lowest = targets.min(), let highest = targets.max() else { return seen }
        let descending = direction == .in
        var stack: [Int] = []
        var v = descending ? highest : lowest
        // `passed(w)`: the sweep at `v` has gone by `w` (it will not expand it any more).
        @inline(__always) func passed(_ w: Int, _ v: Int) -> Bool { descending ? w >= v : w <= v }
        while descending ? v >= 0 : v < nodeCount {
            if seen.words[v >> 6] == 0 {  // skip a whole empty word
                v = descending ? (v & ~63) - 1 : (v | 63) + 1
                continue
            }
            if seen.contains(v) {
                let at = v
                forEachNeighbour(of: at, direction) { w in
                    if seen.insert(w) && passed(w, at) { stack.append(w) }
                }
                while let u = stack.popLast() {
                    forEachNeighbour(of: u, direction) { w in
                        if seen.insert(w) && passed(w, at) { stack.append(w) }
                    }
                }
            }
            v += descending ? -1 : 1
        }
        return seen
    }

    /// `reachableBits` as a flag per node.
    /// - Complexity: O(nodes + edges of the reached nodes).
    public func reachable(from targets: [Int], direction: EdgeDirection) -> [Bool] {
        let bits = reachableBits(from: targets, direction: direction)
        return (0 ..< nodeCount).map { bits.contains($0) }
    }

    /// The receptive field of `targets`: every node of the first (input) partition with a path
    /// to one of them. On an implicit graph the in-edges are generated layer by layer as the
    /// sweep walks back; nothing of size O(edges) is held.
    /// - Complexity: O(nodes / 64 + edges into the nodes that reach `targets`); n/8 bytes.
    public func receptiveField(of targets: [Int]) -> [Int] {
        guard let input = partitions.first else { return [] }
        return reachableBits(from: targets, direction: .in).members(in: input.range)
    }

    /// Splits nodes of the input partition into image pixels and nodes of the zero-padding ring
    /// `padding` wide around each channel (the unrolled input keeps the first convs' padding:
    /// they are constant zeros, not pixels of the image). Nodes of other partitions count as image.
    /// - Complexity: O(nodes given).
    public func separatingPaddingRing(_ nodes: [Int], padding: Int) -> (image: [Int], ring: [Int]) {
        guard padding > 0, let input = partitions.first, input.shape.count == 3 else { return (nodes, []) }
        let (h, w) = (input.shape[1], input.shape[2])
        var image: [Int] = [], ring: [Int] = []
        for v in nodes {
            guard input.range.contains(v) else { image.append(v); continue }
            let k = v - input.start, r = (k % (h * w)) / w, c = k % w
            if r < padding || r >= h - padding || c < padding || c >= w - padding { ring.append(v) } else { image.append(v) }
        }
        return (image, ring)
    }

    /// Up to `limit` directed paths from `source` to `target`, each as its node ids in order,
    /// found depth-first in id order. Only nodes that can still reach `target` are entered, so
    /// every branch explored ends in a path.
    /// - Complexity: O(nodes / 64 + edges) for the pruning, then O(limit · length · degree);
    ///   the out-neighbours of the nodes on the current path are held.
    public func paths(from source: Int, to target: Int, limit: Int) -> [[Int]] {
        let useful = reachableBits(from: [target], direction: .in)
        guard useful.contains(source), limit > 0 else { return [] }
        var found: [[Int]] = []
        var path = [source]
        var rows = [sortedOutNeighbours(of: source)]
        var cursor = [0]
        while let u = path.last, found.count < limit {
            if u == target {
                found.append(path)
                path.removeLast(); rows.removeLast(); cursor.removeLast()
                continue
            }
            let c = cursor[cursor.count - 1]
            let row = rows[rows.count - 1]
            if c == row.count { path.removeLast(); rows.removeLast(); cursor.removeLast(); continue }
            cursor[cursor.count - 1] = c + 1
            let v = row[c]
            // A multipartite graph is acyclic; the check (O(path length)) guards other graphs.
            if useful.contains(v) && !path.contains(v) {
                path.append(v); rows.append(sortedOutNeighbours(of: v)); cursor.append(0)
            }
        }
        return found
    }

    /// Sinks (SPEC §4): out-degree 0, in-degree > 0, outside the last partition.
    public var sinks: [Int] {
        let last = partitions.last?.start ?? nodeCount
        return (0 ..< last).filter { outDegree($0) == 0 && inDegree($0) > 0 }
    }

    /// Sources (SPEC §4): in-degree 0, out-degree > 0, outside the first partition.
    public var sources: [Int] {
        let first = partitions.first.map { $0.start + $0.count } ?? 0
        return (first ..< nodeCount).filter { inDegree($0) == 0 && outDegree($0) > 0 }
    }

    /// Nodes without any edge.
    public var isolated: [Int] { (0 ..< nodeCount).filter { inDegree($0) == 0 && outDegree($0) == 0 } }
}
