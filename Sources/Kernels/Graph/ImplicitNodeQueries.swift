// Node queries (NodeQueries.swift) on the implicit MGE: each node's neighbours are generated
// from the masks and the conv geometry when a walk reaches it, never stored.

/// Hands each generated neighbour to a closure (the walks' visitor), with no buffer.
private struct VisitingSink: EdgeSink {
    let body: (Int) -> Void
    @inline(__always) mutating func emit(_ target: Int, _ weight: Float16) { body(target) }
}

extension ImplicitGraph: MultipartiteGraph {
    /// - Complexity: O(degree) generated; no allocation.
    public func forEachNeighbour(of u: Int, _ direction: EdgeDirection, _ body: (Int) -> Void) {
        withoutActuallyEscaping(body) { visit in
            var sink = VisitingSink(body: visit)
            if direction != .in { emitOut(u, &sink) }
            if direction != .out { emitIn(u, &sink) }
        }
    }

    public func sortedOutNeighbours(of u: Int) -> [Int] { outNeighbors(u) }
}

extension ImplicitGraph {
    /// The explicit `Graph` of the same network (what `unroll(_:compat:)` returns), built from
    /// this graph's generator without re-reading the network.
    /// - Complexity: O(n + m) time; `explicitByteSize` bytes.
    public func materialized() throws -> Graph { try Graph.build(from: edges, partitions: partitions) }
}
