import Foundation

/// What one sweep point is expected to cost before it runs, by fixed coefficients that are the
/// same on every machine: for balancing shards and for keeping `--jobs` workers inside the
/// machine's memory. (`--plan`'s times come from `PlanCost`, a finer model times the machine's
/// speed now; it falls back on these for a point naming no model it knows.)
///
/// The model: a point prunes, unrolls and measures one network, so its time and peak memory grow
/// with the edges of the unrolled graph, edges ≈ (dense unrolled edges of the model) × (1 − sparsity)
/// × (how much denser than uniform the pruner leaves the large early layers), plus the pruner's
/// own scoring work for the iterative pruners. Time coefficients: fitted to a 30-point ResNet-20
/// sweep (uniform, ERK, SynFlow × 0.95, 0.98 × 5 seeds) on the development machine, 2 cores
/// shared with other builds at load 4–6 (the same sweep took half the time at load 2).
/// Memory: peak RSS (/usr/bin/time) of CONV-6, ResNet-20, ResNet-32 and WRN-28-2 points
/// (scripts/bench-sweep cost). MobileNetV2 is not fitted (a point ran for minutes).
public struct PointCost: Equatable, Sendable {
    public var seconds: Double
    public var bytes: Int
    /// false when the point names no model the zoo knows (the figures are then a default guess).
    public var known: Bool
}

public enum SweepCost {
    /// Fixed time per point (process-side work, building and pruning the network) and time per unrolled edge.
    public static let fixedSeconds = 1.0
    public static let secondsPerEdge = 1.0e-6
    /// Resident memory of the process at a point's start, and bytes per unrolled edge at its peak.
    public static let fixedBytes = 220 << 20
    public static let bytesPerEdge = 48
    /// Unrolled edges relative to uniform pruning at the same sparsity (measured on ResNet-20:
    /// ERK 1.7–1.8x, SynFlow 3.0x; snip, grasp and prospr assumed between).
    public static let edgeFactor: [String: Double] = ["erk": 1.75, "er": 1.75, "synflow": 3.0, "snip": 2.0, "grasp": 2.0, "prospr": 2.0]
    /// Scoring time per dense weight of the iterative pruners (SynFlow's 100 rounds: about 19 µs
    /// per weight on ResNet-20; prospr's meta-gradient steps assumed alike).
    public static let pruningSecondsPerWeight: [String: Double] = ["synflow": 19e-6, "prospr": 19e-6]
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

    /// The cost of pruning `model` with `pruner` to `sparsity` and measuring its unrolled graph.
    public static func estimate(model: String?, sparsity: Double?, pruner: String? = nil, classes: Int = 10) -> PointCost {
        guard let model, let architecture = ModelZoo.build(model, classes: classes),
              let dense = denseUnrolledEdges(model: model, classes: classes) else { return unknown }
        let edges = edges(dense: dense, sparsity: sparsity, pruner: pruner)
        let weights = Double(architecture.prunable.reduce(0) { $0 + $1.count })
        let scoring = (pruner.flatMap { pruningSecondsPerWeight[$0] } ?? 0) * weights
        return PointCost(seconds: fixedSeconds + secondsPerEdge * edges + scoring,
                         bytes: fixedBytes + Int(Double(bytesPerEdge) * edges), known: true)
    }

    /// Unrolled edges expected of `dense` edges pruned by `pruner` to `sparsity`.
    public static func edges(dense: Int, sparsity: Double?, pruner: String?) -> Double {
        let density = min(1, max(0, 1 - (sparsity ?? 0)))
        let factor = pruner.flatMap { edgeFactor[$0] } ?? 1
        return min(Double(dense), Double(dense) * density * factor)
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
