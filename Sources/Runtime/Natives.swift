import Kernels

// The kernel objects the language hands around. Each wraps one Kernels value, names its type
// for messages ("bad argument #1 to 'unroll' (network expected, got graph)"), and exposes a
// few read-only fields. Builtins that create or consume them live in `Builtins/`.

/// Formats counts as `272,474` so large graphs stay readable.
func grouped(_ n: Int) -> String {
    let digits = String(n.magnitude)
    var out = ""
    for (i, c) in digits.enumerated() {
        if i > 0, (digits.count - i) % 3 == 0 { out.append(",") }
        out.append(c)
    }
    return n < 0 ? "-" + out : out
}

/// `1 input channel`, `16 input channels`.
func counted(_ n: Int, _ singular: String, _ plural: String? = nil) -> String {
    "\(grouped(n)) \(n == 1 ? singular : plural ?? singular + "s")"
}

/// A network: architecture, weights and masks. Shared by reference, like a PyTorch module.
public final class NetworkObject: NativeValue {
    public let network: Network
    /// The language's name for the model (`resnet20`).
    public let modelName: String

    public init(_ network: Network, modelName: String) { self.network = network; self.modelName = modelName }

    public var typeName: String { "network" }

    /// One line; the long form (`show(net)`) adds the per-layer table of `summary(net)`.
    public func display(long: Bool) -> String {
        let density = Double(network.keptCount) / Double(max(network.prunableCount, 1))
        let line = "\(network.architecture.name)  \(network.architecture.classes) classes  \(grouped(network.parameterCount)) params  "
            + "density \(Display.float((density * 10000).rounded() / 10000))"
        return long ? line + Display.longSummary(self) : line
    }

    public var fieldNames: [String] { ["model", "name", "classes", "params", "prunable", "kept", "density"] }

    public func field(_ name: String) -> Value? {
        switch name {
        case "model": return .string(modelName)
        case "name": return .string(network.architecture.name)
        case "classes": return .int(network.architecture.classes)
        case "params": return .int(network.parameterCount)
        case "prunable": return .int(network.prunableCount)
        case "kept": return .int(network.keptCount)
        case "density": return .float(Double(network.keptCount) / Double(max(network.prunableCount, 1)))
        default: return nil
        }
    }
}

/// A graph encoding: the whole-network MGE or one layer's bipartite graph.
public final class GraphObject: NativeValue {
    public let graph: Graph
    /// "MGE", "rolled" or "rolled-channel".
    public let encoding: String
    /// The layer a bipartite graph encodes (empty for an MGE).
    public let layerName: String
    /// The layer's kind ("conv"/"linear") for per-layer encodings.
    public let layerKind: String
    /// How an unrolled graph was laid out (padding ring, shortcut layers), for drawings; nil
    /// for per-layer graphs and graphs loaded from files.
    public let plan: UnrollPlan?
    /// For a per-layer graph: every layer of its network in order (drawings colour it as in
    /// the network's other figures); empty when unknown.
    public let networkLayers: [String]

    /// The compat modes that produced the graph, stage by stage (`prune`, `unroll`); empty
    /// for a graph whose origin is unknown (loaded from a file).
    public let modes: [(stage: String, compat: String)]

    /// The network the graph was made from and its `version` then (nil: loaded from a file).
    private weak var source: Network?
    private let sourceVersion: Int

    public init(_ graph: Graph, encoding: String, layerName: String = "", layerKind: String = "",
                modes: [(stage: String, compat: String)] = [], plan: UnrollPlan? = nil, networkLayers: [String] = [],
                source: Network? = nil) {
        self.graph = graph; self.encoding = encoding; self.layerName = layerName; self.layerKind = layerKind
        self.modes = modes; self.plan = plan; self.networkLayers = networkLayers
        self.source = source; sourceVersion = source?.version ?? 0
    }

    /// Set when the network the graph was made from has changed since (pruned, trained, loaded
    /// into): the graph still shows the old edges. Shown by the display and `draw`.
    public var staleness: String? {
        guard let source, source.version != sourceVersion else { return nil }
        return "stale: its network changed after this graph was made; make the graph again to see the change"
    }

    public var typeName: String { "graph" }

    /// One line naming what the nodes are; the long form (`show(g)`) adds the partition table.
    public func display(long: Bool) -> String {
        let parts = graph.partitions
        var text: String
        if !layerName.isEmpty, parts.count == 2 {
            // A rolled layer: its two sides by name.
            let left = parts[0], right = parts[1]
            let leftSide = encoding == "rolled-channel" || left.shape.count != 3
                ? counted(left.count, layerKind == "linear" ? "input feature" : "input channel")
                : counted(left.count, "kernel entry", "kernel entries") + " (\(Tensor.describe(left.shape)))"
            let rightSide = counted(right.count, layerKind == "linear" ? "output feature" : "output channel")
            text = "\(encoding) \(layerName)  \(leftSide) → \(rightSide)  \(grouped(graph.edgeCount)) edges"
        } else {
            text = "\(encoding)\(layerName.isEmpty ? "" : " " + layerName)  \(grouped(graph.nodeCount)) nodes  "
                + "\(grouped(graph.edgeCount)) edges  \(parts.count) partitions"
            if let first = parts.first, let last = parts.last {
                text += " (\(first.name) \(Tensor.describe(first.shape)) … \(last.name) \(Tensor.describe(last.shape)))"
            }
        }
        if let staleness { text += "  (\(staleness))" }
        return long ? text + Display.longSummary(self) : text
    }

    public var fieldNames: [String] { ["nodes", "edges", "partitions", "encoding", "layer"] }

    public func field(_ name: String) -> Value? {
        switch name {
        case "nodes": return .int(graph.nodeCount)
        case "edges": return .int(graph.edgeCount)
        case "encoding": return .string(encoding)
        case "layer": return .string(layerName)
        case "partitions":
            return .list(graph.partitions.map { p in
                .record(Record([("name", .string(p.name)), ("start", .int(p.start)), ("size", .int(p.count)),
                                ("shape", .list(p.shape.map(Value.int)))]))
            })
        default: return nil
        }
    }
}

/// The per-layer bipartite graphs of one network, indexable by position (`ls[0]`, `ls[-1]`)
/// and by layer name (`ls["layer1.0.conv1"]`), in the network's order.
public final class LayersObject: NativeValue {
    public let layers: [GraphObject]
    public let encoding: String
    /// The oracle's layer ids (they count pooling modules on CONV-6), in order.
    public let layerIds: [Int]

    public init(_ layers: [GraphObject], encoding: String, layerIds: [Int]) {
        self.layers = layers; self.encoding = encoding; self.layerIds = layerIds
    }

    public var typeName: String { "layers" }

    public func display(long: Bool) -> String {
        let edges = layers.reduce(0) { $0 + $1.graph.edgeCount }
        var text = "\(layers.count) \(encoding) layers  \(grouped(edges)) edges"
        if long {
            text += "\n" + layers.map { $0.display(long: false) }.joined(separator: "\n")
        }
        return text
    }

    public var elements: [Value]? { layers.map { .native($0) } }
    public var fieldNames: [String] { layers.map(\.layerName) }
    public func field(_ name: String) -> Value? { layers.first { $0.layerName == name }.map { .native($0) } }
}

/// A dense float tensor (weights, batches, scores).
public final class TensorObject: NativeValue {
    public let tensor: Tensor
    public init(_ tensor: Tensor) { self.tensor = tensor }

    public var typeName: String { "tensor" }

    public func display(long: Bool) -> String {
        let shown = long ? tensor.data.count : min(tensor.data.count, 6)
        let values = tensor.data.prefix(shown).map { Display.float(Double($0)) }.joined(separator: ", ")
        return "tensor \(tensor.shapeDescription) [\(values)\(shown < tensor.data.count ? ", …" : "")]"
    }

    public var fieldNames: [String] { ["shape", "count", "values"] }

    public func field(_ name: String) -> Value? {
        switch name {
        case "shape": return .list(tensor.shape.map(Value.int))
        case "count": return .int(tensor.count)
        case "values": return .list(tensor.data.map { .float(Double($0)) })
        default: return nil
        }
    }
}

/// A pruning algorithm with its hyperparameters (`snip`, `synflow`…).
public final class PrunerObject: NativeValue {
    public let pruner: Pruner
    public init(_ pruner: Pruner) { self.pruner = pruner }
    public var typeName: String { "pruner" }
    public func display(long: Bool) -> String { "pruner \(pruner.name)" }
    public var fieldNames: [String] { ["name"] }
    public func field(_ name: String) -> Value? { name == "name" ? .string(pruner.name) : nil }
}

/// A dataset: CIFAR, TinyImageNet, synthetic, or tensors served in order.
public final class DatasetObject: NativeValue {
    public let dataset: Dataset
    public init(_ dataset: Dataset) { self.dataset = dataset }
    public var typeName: String { "dataset" }
    public func display(long: Bool) -> String {
        "dataset \(dataset.name)  \(grouped(dataset.count)) samples  \(dataset.classes) classes  \(Tensor.describe(dataset.sampleShape))"
    }
    public var fieldNames: [String] { ["name", "classes", "count", "shape"] }
    public func field(_ name: String) -> Value? {
        switch name {
        case "name": return .string(dataset.name)
        case "classes": return .int(dataset.classes)
        case "count": return .int(dataset.count)
        case "shape": return .list(dataset.sampleShape.map(Value.int))
        default: return nil
        }
    }
}

/// Natives that `summary(x)` can tabulate (networks, graphs, layer lists).
public protocol Summarizable: NativeValue {
    /// A record or a list of records: the REPL prints either as an aligned table.
    func summary() throws -> Value
}

/// What `prune` returns: the per-layer table ending with the total row. Indexes and iterates
/// like that list of rows (`t[-1]`, `len(t)`, `for row in t`), and has `.layers` (the rows
/// without the total), `.total` (the total row), `.warnings` (the footer's lines as strings).
/// Shows the table, then its footer when the result is not what was asked (a layer with no
/// weight, a kept count off its target).
/// As a table for the table builtins (`filter`, `write_csv`, `plot`, …) it is its layer rows only
/// (columns layer, params, kept, density): the total row would count every weight twice in a sum
/// or a plot, and stays at `.total`. Not a `TableObject`: a table's elements are its rows and its
/// fields its columns (`t.kept`), where this one's elements end with the total and its fields
/// are `.layers`, `.total` and `.warnings`.
public final class PruneTableObject: TableValued {
    public let report: PruneReport
    public let layerRows: [Value]
    public let totalRow: Value
    public let table: Table

    public init(_ report: PruneReport) {
        self.report = report
        layerRows = report.layers.map { layer in
            .record(Record([("layer", .string(layer.layer)), ("params", .int(layer.params)), ("kept", .int(layer.kept)),
                            ("density", .float(rounded4(layer.kept, layer.params)))]))
        }
        totalRow = .record(Record([("layer", .string("total")), ("params", .int(report.params)), ("kept", .int(report.kept)),
                                   ("density", .float(rounded4(report.kept, report.params)))]))
        // The same values as the rows (density rounded as shown). Four distinct names, equal lengths:
        // the initializer cannot throw.
        table = (try? Table(names: ["layer", "params", "kept", "density"],
                            columns: [.text(report.layers.map(\.layer)), .number(report.layers.map { Double($0.params) }),
                                      .number(report.layers.map { Double($0.kept) }),
                                      .number(report.layers.map { rounded4($0.kept, $0.params) })])) ?? Table()
    }

    public var typeName: String { "table" }

    public func display(long: Bool) -> String {
        var text = Display.recordTable(layerRows + [totalRow], long: long)
        for line in report.warnings { text += "\nwarning: " + line }
        return text
    }

    public var elements: [Value]? { layerRows + [totalRow] }
    public var fieldNames: [String] { ["layers", "total", "warnings"] }
    public func field(_ name: String) -> Value? {
        switch name {
        case "layers": return .list(layerRows)
        case "total": return totalRow
        case "warnings": return .list(report.warnings.map { .string($0) })
        default: return nil
        }
    }
}
