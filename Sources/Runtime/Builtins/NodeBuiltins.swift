import Foundation
import Kernels
import Lang

// Pointing at nodes of a graph: `node`, `neighbors`, `degree`, `receptive_field`, `paths`,
// `sinks`, `sources`, `isolated`. They give node sets that `draw(g, path, highlight: …)` draws.
// Each works on both MGE forms (an explicit `Graph` or an `ImplicitGraph`, whose neighbours are
// generated when a walk reaches them) through `MultipartiteGraph`, with the same answers.

/// A set of nodes of one graph, sorted by id.
public final class NodeSetObject: NativeValue {
    /// The stored or the implicit graph the ids belong to (compared by identity).
    public let graph: any MultipartiteGraph
    public let nodes: [Int]
    /// A line the display adds (receptive_field: the padding ring it reached but did not count).
    public let note: String?

    public init(_ graph: any MultipartiteGraph, _ nodes: [Int], note: String? = nil) { self.graph = graph; self.nodes = nodes; self.note = note }

    public var typeName: String { "nodes" }

    /// `layer1.0.conv1 (0, 3, 4)`: partition name and coordinates in its shape.
    func describe(_ v: Int) -> String {
        let (p, coordinates) = graph.coordinates(of: v)
        return "\(graph.partitions[p].name) (\(coordinates.map(String.init).joined(separator: ", ")))"
    }

    public func display(long: Bool) -> String {
        if nodes.count == 1 { return "node \(nodes[0]): \(describe(nodes[0]))" }
        var perPartition: [(String, Int)] = []
        for v in nodes {
            let name = graph.partitions[graph.partitionIndex(of: v)].name
            if perPartition.last?.0 == name { perPartition[perPartition.count - 1].1 += 1 } else { perPartition.append((name, 1)) }
        }
        var text = "\(grouped(nodes.count)) node\(nodes.count == 1 ? "" : "s")"
        if !perPartition.isEmpty { text += ": " + perPartition.map { "\($0.0) \(grouped($0.1))" }.joined(separator: ", ") }
        if let note { text += "  (\(note))" }
        if long { text += nodes.map { "\n  \($0)  \(describe($0))" }.joined() }
        return text
    }

    public var fieldNames: [String] { ["count", "ids", "nodes"] }

    public func field(_ name: String) -> Value? {
        switch name {
        case "count": return .int(nodes.count)
        case "ids": return .list(nodes.map(Value.int))
        case "nodes":
            return .list(nodes.map { v in
                let (p, coordinates) = graph.coordinates(of: v)
                return .record(Record([("id", .int(v)), ("partition", .string(graph.partitions[p].name)),
                                       ("index", .list(coordinates.map(Value.int))),
                                       ("in", .int(graph.inDegree(v))), ("out", .int(graph.outDegree(v)))]))
            })
        default: return nil
        }
    }

    /// Each node as a one-node set: `for n in sinks(g) { … }`, `s[0]`.
    public var elements: [Value]? { nodes.map { .native(NodeSetObject(graph, [$0])) } }
}

private let nodeOrId = ValueType.oneOf([.native("nodes"), .int])

let nodeBuiltins: [Builtin] = [
    Builtin("node", [Param("g", .native("graph")), Param("partition", .string), .variadic("index", .int)], returns: "nodes",
            summary: "Names one node: the partition (layer) and its coordinates in the partition's shape — (c, y, x) for a feature map (the input's include its padding ring), (c, kh, kw) for a rolled layer's kernel entries, (i) for a vector.",
            example: "n = node(g, \"layer1.0.conv1\", 0, 3, 4);  node(g, \"linear\", 2)") { args in
        let g = try NodeArguments.graph(args)
        let name = try args.string("partition")
        let parts = g.partitions
        guard let p = parts.firstIndex(where: { $0.name == name }) else {
            let hint = closestName(to: name, among: parts.map(\.name)).map { " (did you mean \(Display.quoted($0))?)" } ?? ""
            throw args.bad("partition", "the graph has no partition \(Display.quoted(name))\(hint)")
        }
        let index = try args.list("index").map { v -> Int in if case .int(let i) = v { return i }; return -1 }
        let shape = parts[p].shape
        guard let v = g.node(partition: p, coordinates: index) else {
            let dims = shape.count == 3 ? "(c, y, x)" : "(i)"
            throw args.bad("index", "\(name) has shape \(Tensor.describe(shape)): expected \(shape.count) coordinates \(dims) within it, got (\(index.map(String.init).joined(separator: ", ")))")
        }
        return .native(NodeSetObject(g, [v]))
    },
    Builtin("neighbors", [Param("g", .native("graph")), Param("n", nodeOrId), Param("hops", .int, default: .int(1)),
                          Param("direction", .string, default: .string("out"))], returns: "nodes",
            summary: "The nodes reached from n in 1 to hops steps along edges: direction \"out\" (downstream), \"in\" (upstream) or \"both\".",
            example: "neighbors(g, n, hops: 2, direction: \"in\")") { args in
        let (g, start) = try NodeArguments.graphAndNodes(args, "n")
        let hops = try args.int("hops")
        guard (0 ... 10_000).contains(hops) else { throw args.bad("hops", "expected 0 to 10000, got \(hops)") }
        let text = try args.string("direction")
        guard let direction = EdgeDirection(rawValue: text) else {
            throw args.bad("direction", "expected \"out\", \"in\" or \"both\", got \(Display.quoted(text))")
        }
        return .native(NodeSetObject(g, g.neighbourhood(of: start, hops: hops, direction: direction)))
    },
    Builtin("degree", [Param("g", .native("graph")), Param("n", nodeOrId)], returns: "record",
            summary: "In- and out-degree of a node: {in, out}; for a set of several nodes, one record per node.",
            example: "degree(g, node(g, \"conv1\", 0, 2, 2))") { args in
        let (g, nodes) = try NodeArguments.graphAndNodes(args, "n")
        let records = nodes.map { v in Value.record(Record([("in", .int(g.inDegree(v))), ("out", .int(g.outDegree(v)))])) }
        if nodes.count == 1 { return records[0] }
        return .list(nodes.map { v in .record(Record([("node", .int(v)), ("in", .int(g.inDegree(v))), ("out", .int(g.outDegree(v)))])) })
    },
    Builtin("receptive_field", [Param("g", .native("graph")), Param("n", nodeOrId), Param("padding", .bool, default: .bool(false))],
            returns: "nodes",
            summary: "Every input pixel (node of the first partition) with a path to n: the part of the image n can see through the kept weights. "
                + "The zero-padding ring of an unrolled input is not image: the nodes of it that n reaches are named in the display but not counted; padding: true includes them.",
            example: "rf = receptive_field(g, node(g, \"linear\", 0));  len(rf);  draw(g, \"rf.svg\", highlight: rf)") { args in
        let (g, nodes) = try NodeArguments.graphAndNodes(args, "n")
        let field = g.receptiveField(of: nodes)
        let padding = NodeArguments.inputPadding(args)
        let (image, ring) = g.separatingPaddingRing(field, padding: padding)
        if try args.bool("padding") {
            let note = ring.isEmpty ? nil : "\(grouped(ring.count)) of them in the zero-padding ring"
            return .native(NodeSetObject(g, field, note: note))
        }
        let note = ring.isEmpty ? nil : "+ \(grouped(ring.count)) padding-ring node\(ring.count == 1 ? "" : "s") reached, not counted; padding: true includes them"
        return .native(NodeSetObject(g, image, note: note))
    },
    Builtin("paths", [Param("g", .native("graph")), Param("from", nodeOrId), Param("to", nodeOrId), Param("limit", .int, default: .int(10))],
            returns: "list",
            summary: "Up to limit directed paths from one node to another, each a node set in path order (depth-first, in id order); [] when none exists.",
            example: "ps = paths(g, node(g, \"input\", 0, 1, 1), node(g, \"linear\", 0), limit: 3);  draw(g, \"p.svg\", highlight: ps)") { args in
        let (g, from) = try NodeArguments.graphAndNodes(args, "from", single: true)
        let (_, to) = try NodeArguments.graphAndNodes(args, "to", single: true, graph: g)
        let limit = try args.int("limit")
        guard (1 ... 100_000).contains(limit) else { throw args.bad("limit", "expected 1 to 100000, got \(limit)") }
        return .list(g.paths(from: from[0], to: to[0], limit: limit).map { .native(NodeSetObject(g, $0.sorted())) })
    },
    Builtin("sinks", [Param("g", .native("graph"))], returns: "nodes",
            summary: "Sink nodes (SPEC §4): edges in but none out, outside the last partition — work that never reaches the output.",
            example: "len(sinks(g));  draw(g, \"sinks.svg\", highlight: sinks(g))") { args in
        let g = try NodeArguments.graph(args)
        return .native(NodeSetObject(g, g.sinks))
    },
    Builtin("sources", [Param("g", .native("graph"))], returns: "nodes",
            summary: "Source nodes (SPEC §4): edges out but none in, outside the first partition — units that see nothing of the input.",
            example: "sources(g).count") { args in
        let g = try NodeArguments.graph(args)
        return .native(NodeSetObject(g, g.sources))
    },
    Builtin("isolated", [Param("g", .native("graph"))], returns: "nodes",
            summary: "Nodes without any edge (in the input: padding and pixels every kept weight misses).",
            example: "isolated(g).count") { args in
        let g = try NodeArguments.graph(args)
        return .native(NodeSetObject(g, g.isolated))
    },
]

enum NodeArguments {
    /// The graph argument "g" and the nodes of argument `name` (a node set of that graph or a node id).
    /// The graph argument "g": an explicit MGE (or a layer's graph), or an implicit MGE.
    static func graph(_ args: Arguments) throws -> any MultipartiteGraph {
        if case .native(let implicit as ImplicitGraphObject) = args["g"] { return implicit.graph }
        return try args.native("g", as: GraphObject.self).graph
    }

    /// The width of the zero-padding ring of the unrolled input of graph argument "g" (0 when unknown).
    static func inputPadding(_ args: Arguments) -> Int {
        switch args["g"] {
        case .native(let implicit as ImplicitGraphObject): return implicit.graph.plan.inputPadding
        case .native(let g as GraphObject): return g.plan?.inputPadding ?? 0
        default: return 0
        }
    }

    static func graphAndNodes(_ args: Arguments, _ name: String, single: Bool = false,
                              graph: (any MultipartiteGraph)? = nil) throws -> (any MultipartiteGraph, [Int]) {
        let g = try graph ?? Self.graph(args)
        let nodes: [Int]
        switch args[name] {
        case .int(let v):
            guard v >= 0, v < g.nodeCount else { throw args.bad(name, "node id \(v) out of range (the graph has \(grouped(g.nodeCount)) nodes)") }
            nodes = [v]
        case .native(let s as NodeSetObject):
            guard s.graph === g else { throw args.bad(name, "the node set belongs to another graph") }
            nodes = s.nodes
        default:
            throw args.bad(name, "nodes or int expected, got \(args[name].typeName)")
        }
        if single && nodes.count != 1 { throw args.bad(name, "one node expected, got a set of \(nodes.count)") }
        if nodes.isEmpty { throw args.bad(name, "the node set is empty") }
        return (g, nodes)
    }
}
