/// Node-level questions a lecturer points at: neighbourhoods, receptive fields, paths, and the
/// sink / source / isolated nodes the topometrics count (SPEC §4). Node sets are sorted id arrays.
public enum EdgeDirection: String, CaseIterable, Sendable {
    case out, `in`, both
}

extension Graph {
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
    /// - Complexity: O(nodes + edges visited).
    public func neighbourhood(of start: [Int], hops: Int, direction: EdgeDirection) -> [Int] {
        var seen = [Bool](repeating: false, count: nodeCount)
        var reached = [Bool](repeating: false, count: nodeCount)
        var frontier = start
        for v in start { seen[v] = true }
        for _ in 0 ..< max(0, hops) {
            var next: [Int] = []
            for u in frontier {
                visitNeighbours(of: u, direction) { v in
                    reached[v] = true
                    if !seen[v] { seen[v] = true; next.append(v) }
                }
            }
            if next.isEmpty { break }
            frontier = next
        }
        return (0 ..< nodeCount).filter { reached[$0] }
    }

    @inline(__always) func visitNeighbours(of u: Int, _ direction: EdgeDirection, _ body: (Int) -> Void) {
        if direction != .in { for e in outOffsets[u] ..< outOffsets[u + 1] { body(Int(outTargets[e])) } }
        if direction != .out { for e in inOffsets[u] ..< inOffsets[u + 1] { body(Int(inSources[e])) } }
    }

    /// Every node with a path to one of `targets` (or from one of them, for `.out`), the
    /// targets included. - Complexity: O(nodes + edges).
    public func reachable(from targets: [Int], direction: EdgeDirection) -> [Bool] {
        var seen = [Bool](repeating: false, count: nodeCount)
        var stack = targets
        for v in targets { seen[v] = true }
        while let u = stack.popLast() {
            visitNeighbours(of: u, direction) { v in if !seen[v] { seen[v] = true; stack.append(v) } }
        }
        return seen
    }

    /// The receptive field of `targets`: every node of the first (input) partition with a path to one of them.
    /// - Complexity: O(nodes + edges).
    public func receptiveField(of targets: [Int]) -> [Int] {
        let reaches = reachable(from: targets, direction: .in)
        return partitions.first.map { Array($0.range).filter { reaches[$0] } } ?? []
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
    /// - Complexity: O(nodes + edges) for the pruning, then O(limit · length · degree).
    public func paths(from source: Int, to target: Int, limit: Int) -> [[Int]] {
        let useful = reachable(from: [target], direction: .in)
        guard useful[source], limit > 0 else { return [] }
        var found: [[Int]] = []
        var path = [source]
        var cursor = [outOffsets[source]]
        while let u = path.last, found.count < limit {
            if u == target {
                found.append(path)
                path.removeLast(); cursor.removeLast()
                continue
            }
            let c = cursor[cursor.count - 1]
            if c == outOffsets[u + 1] { path.removeLast(); cursor.removeLast(); continue }
            cursor[cursor.count - 1] = c + 1
            let v = Int(outTargets[c])
            // A multipartite graph is acyclic; the check (O(path length)) guards other graphs.
            if useful[v] && !path.contains(v) {
                path.append(v); cursor.append(outOffsets[v])
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
