import Foundation

/// What one sweep point is expected to cost before it runs: for `--plan`, for balancing shards
/// and for keeping `--jobs` workers inside the machine's memory.
///
/// The model: a point prunes, unrolls and measures one network, so its time and peak memory grow
/// with the edges of the unrolled graph, edges ≈ (dense unrolled edges of the model) × (1 − sparsity).
/// The coefficients were measured on the development machine (2 cores, scripts/bench-sweep):
/// full topometrics of CONV-6 and ResNet-20 at several sparsities, peak RSS from /proc.
public struct PointCost: Equatable, Sendable {
    public var seconds: Double
    public var bytes: Int
    /// false when the point names no model the zoo knows (the figures are then a default guess).
    public var known: Bool
}

public enum SweepCost {
    /// Fixed time per point (building the network, interpreter work) and time per unrolled edge.
    public static let fixedSeconds = 0.05
    public static let secondsPerEdge = 0.70e-6
    /// Resident memory of the process before the point, and bytes per unrolled edge at the peak.
    public static let fixedBytes = 150 << 20
    public static let bytesPerEdge = 180
    /// Used for a point whose model is not known.
    public static let unknown = PointCost(seconds: 1, bytes: 256 << 20, known: false)

    /// Edges of a model's unrolled graph with every weight kept: each conv weight connects one
    /// input position to one output position per output pixel; each linear weight is one edge.
    /// nil for a name the zoo does not know.
    /// - Complexity: O(layers).
    public static func denseUnrolledEdges(model: String, classes: Int = 10) -> Int? {
        guard let architecture = ModelZoo.build(model, classes: classes) else { return nil }
        var edges = 0
        for p in architecture.prunable {
            let shape = architecture.nodes[p.node].shape
            let positions = shape.count == 3 ? shape[1] * shape[2] : 1
            edges += p.count * positions
        }
        return edges
    }

    /// The cost of pruning `model` to `sparsity` and measuring its unrolled graph.
    public static func estimate(model: String?, sparsity: Double?, classes: Int = 10) -> PointCost {
        guard let model, let dense = denseUnrolledEdges(model: model, classes: classes) else { return unknown }
        let density = min(1, max(0, 1 - (sparsity ?? 0)))
        let edges = Double(dense) * density
        return PointCost(seconds: fixedSeconds + secondsPerEdge * edges,
                         bytes: fixedBytes + Int(Double(bytesPerEdge) * edges), known: true)
    }

    /// Splits points into `count` disjoint shards of nearly equal estimated time, the same way on
    /// every machine: longest point first onto the shard with the least time so far (ties: lowest
    /// point index, lowest shard). Returns each point's shard, 0-based.
    /// - Complexity: O(p log p + p·count).
    public static func shards(costs: [Double], count: Int) -> [Int] {
        let order = costs.indices.sorted { costs[$0] != costs[$1] ? costs[$0] > costs[$1] : $0 < $1 }
        var load = [Double](repeating: 0, count: max(1, count))
        var shard = [Int](repeating: 0, count: costs.count)
        for i in order {
            var best = 0
            for s in load.indices where load[s] < load[best] { best = s }
            shard[i] = best
            load[best] += costs[i]
        }
        return shard
    }

    /// Memory the machine can still give (MemAvailable), or nil when /proc/meminfo is unreadable.
    public static func availableBytes() -> Int? {
        guard let text = try? String(contentsOfFile: "/proc/meminfo", encoding: .utf8) else { return nil }
        for line in text.split(separator: "\n") where line.hasPrefix("MemAvailable:") {
            let parts = line.split(separator: " ")
            if parts.count >= 2, let kb = Int(parts[1]) { return kb * 1024 }
        }
        return nil
    }
}
