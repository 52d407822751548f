import Kernels
import Lang

/// An implicit MGE (#23): the network's masks, weights and geometry, with every node's
/// neighbours generated on demand. `unroll(net, implicit: true)` makes one, and `unroll`
/// chooses it by itself when the explicit edge list would not fit in half the memory.
public final class ImplicitGraphObject: NativeValue {
    public let graph: ImplicitGraph
    /// The compat modes that produced it, stage by stage (as `GraphObject.modes`).
    public let modes: [(stage: String, compat: String)]
    /// Why the implicit form was used ("asked", or the memory the edge list would need).
    public let reason: String

    public init(_ graph: ImplicitGraph, modes: [(stage: String, compat: String)], reason: String) {
        self.graph = graph; self.modes = modes; self.reason = reason
    }

    public var typeName: String { "graph" }

    /// Why `builtin` (one that needs every edge: save, export, a large draw) refuses this graph,
    /// with the size the edge list would take and how to make it.
    public func edgeListNeeded(by builtin: String) -> String {
        "an MGE with its edge list expected, got an implicit MGE: '\(builtin)' needs every edge, which as an edge list would take "
            + "\(formatBytes(graph.explicitByteSize)) (\(grouped(graph.edgeCount)) edges); unroll(net, implicit: false) makes it if that fits. "
            + "Node queries, topometrics, summary and export_degrees work on both forms"
    }

    /// The explicit form of this graph for a drawing, when its edge list fits in half the memory
    /// (the rule `unroll` chooses by); nil otherwise.
    /// - Complexity: O(n + m) time and 12 bytes per edge.
    public func materializedForDrawing() throws -> Graph? {
        guard graph.explicitByteSize <= CheckedSize.physicalMemory / 2 else { return nil }
        let graph = self.graph
        return try cancellable { try graph.materialized() }
    }

    public func display(long: Bool) -> String {
        let parts = graph.partitions
        var text = "MGE (implicit: \(reason); \(formatBytes(graph.byteSize)) held, the edge list would take "
            + "\(formatBytes(graph.explicitByteSize)))  \(grouped(graph.nodeCount)) nodes  \(grouped(graph.edgeCount)) edges  "
            + "\(parts.count) partitions"
        if let first = parts.first, let last = parts.last {
            text += " (\(first.name) \(Tensor.describe(first.shape)) … \(last.name) \(Tensor.describe(last.shape)))"
        }
        guard long else { return text }
        for p in parts {
            text += "\n  \(p.name)  \(Tensor.describe(p.shape))  nodes \(p.start)…\(p.start + p.count - 1)"
        }
        return text
    }

    public var fieldNames: [String] { ["nodes", "edges", "partitions", "encoding", "implicit"] }

    public func field(_ name: String) -> Value? {
        switch name {
        case "nodes": return .int(graph.nodeCount)
        case "edges": return .int(graph.edgeCount)
        case "encoding": return .string("MGE")
        case "implicit": return .bool(true)
        case "partitions":
            return .list(graph.partitions.map { p in
                .record(Record([("name", .string(p.name)), ("start", .int(p.start)), ("size", .int(p.count)),
                                ("shape", .list(p.shape.map(Value.int)))]))
            })
        default: return nil
        }
    }
}

extension ImplicitGraphObject: Summarizable {
    /// The same table as an explicit MGE's summary: one row per partition, then the total.
    public func summary() throws -> Value {
        var rows: [Value] = graph.partitions.map { p in
            var inEdges = 0, outEdges = 0
            for v in p.range { inEdges += graph.inDegree(v); outEdges += graph.outDegree(v) }
            return .record(Record([("partition", .string(p.name)), ("shape", .string(Tensor.describe(p.shape))),
                                   ("nodes", .int(p.count)), ("in_edges", .int(inEdges)), ("out_edges", .int(outEdges))]))
        }
        rows.append(.record(Record([("partition", .string("total")), ("shape", .string("")), ("nodes", .int(graph.nodeCount)),
                                    ("in_edges", .int(graph.edgeCount)), ("out_edges", .int(graph.edgeCount))])))
        return .list(rows)
    }
}
