import Foundation

/// What one sweep point is expected to cost before it runs: for `--plan`, for balancing shards
/// and for keeping `--jobs` workers inside the machine's memory.
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

    /// Per-unit costs measured on this machine, now (`--plan`): the static coefficients above are
    /// one machine at one load, while a plan must match the wall time the sweep is about to take.
    public struct Calibration: Sendable {
        /// Building and pruning (uniform) a ResNet-20, seconds per dense weight.
        public var buildSecondsPerWeight: Double
        /// Unrolling and measuring: seconds per graph, and per unrolled edge.
        public var measureSeconds: Double
        public var secondsPerEdge: Double
        /// One SynFlow round, seconds per dense weight.
        public var roundSecondsPerWeight: Double

        /// The time of one point: build + prune, the pruner's scoring rounds, unroll + topometrics.
        public func seconds(model: String?, sparsity: Double?, pruner: String?, classes: Int = 10) -> Double? {
            guard let model, let architecture = ModelZoo.build(model, classes: classes),
                  let dense = denseUnrolledEdges(model: model, classes: classes) else { return nil }
            let edges = SweepCost.edges(dense: dense, sparsity: sparsity, pruner: pruner)
            let weights = Double(architecture.prunable.reduce(0) { $0 + $1.count })
            let rounds = pruner.flatMap { scoringRounds[$0] } ?? 0
            return weights * (buildSecondsPerWeight + rounds * roundSecondsPerWeight) + measureSeconds + edges * secondsPerEdge
        }
    }

    /// Scoring passes of the iterative pruners, in SynFlow rounds (SynFlow's 100; ProsPr's three
    /// meta-gradient steps over a 512 batch counted as alike, as `pruningSecondsPerWeight` does).
    public static let scoringRounds: [String: Double] = ["synflow": 100, "prospr": 100]

    /// Measures `Calibration` with ResNet-20: build + uniform 0.98; unroll + full topometrics at
    /// 0.98 (twice: the first warms up) and at 0.9 (two sizes, for the part per graph and the part
    /// per edge); two SynFlow rounds (about 3 s on 2 quiet cores).
    public static func calibrate() throws -> Calibration {
        guard let architecture = ModelZoo.build("resnet20", classes: 10) else {
            throw CalibrationError(description: "the zoo has no resnet20")
        }
        let weights = Double(architecture.prunable.reduce(0) { $0 + $1.count })
        func seconds(_ work: () throws -> Void) rethrows -> Double {
            let start = DispatchTime.now().uptimeNanoseconds
            try work()
            return Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        }
        var net: Network?
        let build = try seconds {
            let n = Network(architecture: architecture, seed: 0)
            try prune(n, .uniform, sparsity: 0.98, seed: 0)
            net = n
        }
        guard let net else { throw CalibrationError(description: "no network") }
        func measure(_ net: Network) throws -> (seconds: Double, edges: Double) {
            var edges = 0
            let t = try seconds {
                let g = try unroll(net)
                edges = g.edgeCount
                _ = try topometrics(g)
            }
            return (t, Double(edges))
        }
        // Once to warm up: a fresh process's first graph pays for first-touch page faults and
        // thread start-up that the points of a running sweep do not (the plan came out 30% high).
        _ = try measure(net)
        let small = try measure(net)
        let denser = Network(architecture: architecture, seed: 0)
        try prune(denser, .uniform, sparsity: 0.9, seed: 0)
        let large = try measure(denser)
        let perEdge = large.edges > small.edges ? max(0, (large.seconds - small.seconds) / (large.edges - small.edges))
                                                : small.seconds / max(1, small.edges)
        let synflow = try seconds {
            try prune(Network(architecture: architecture, seed: 0), .synflow(SynflowOptions(rounds: 2)), sparsity: 0.98, seed: 0)
        }
        return Calibration(buildSecondsPerWeight: build / weights,
                           measureSeconds: max(0, small.seconds - perEdge * small.edges), secondsPerEdge: perEdge,
                           roundSecondsPerWeight: max(0, synflow - build) / 2 / weights)
    }

    public struct CalibrationError: Error, CustomStringConvertible {
        public let description: String
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
