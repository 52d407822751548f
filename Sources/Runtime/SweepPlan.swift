import Foundation
import Kernels
import Lang

// `mge-script --plan`: each point's time from probes of the sweep's own models, measured now on
// this machine (docs/sweeps.md, "Planning"). A point's time is the sum of what its body does:
//   build + prune        the ResNet-20 probe's seconds per dense weight (SweepCost.calibrate),
//                        plus the iterative pruners' scoring rounds;
//   unroll + topometrics only when the body calls them: seconds per unrolled edge measured on
//                        the point's own model (a probe graph at the sweep's highest sparsity),
//                        times the point's unrolled edges — counted exactly by pruning the model
//                        for the data-free pruners (uniform, er, erk, dense), from the pruner's
//                        edge factor otherwise;
//   train                only when the body calls it: epochs × images × the model's seconds per
//                        training image, timed on synthetic data at the point's sparsity.
// The body is read, not run: `train`'s epochs:, data and batch: are known when they are
// literals, the point's fields (p.epochs) or variables the body reads; otherwise the plan says so.

/// The probes' results, and each point's estimate from them.
final class PlanEstimator {
    let body: SweepBody
    let calibration: SweepCost.Calibration?
    /// Unroll + topometrics per model: seconds per unrolled edge (from two uniform graphs), and
    /// per (model, pruner) one probe graph at the sweep's highest sparsity: its seconds and edges.
    /// Topometrics' time follows the graph's structure more than its edges (CONV-6 pruned by ERK
    /// measures 2.7x slower than by uniform at fewer edges), so each data-free pruner is probed.
    private var measurePerEdge: [String: Double] = [:]
    private var measureProbe: [String: (seconds: Double, edges: Double)] = [:]
    /// Training per model: a call's fixed cost (a fresh network's first steps) and seconds per
    /// image, at the densities probed (ascending density).
    private var trainPerImage: [String: [(density: Double, seconds: Double, overhead: Double)]] = [:]
    /// Unrolled edges of (model, classes, pruner, sparsity) counted by pruning.
    private var exactEdges: [String: Double] = [:]
    /// What the plan could not know, one line each.
    private(set) var notes: [String] = []

    var measures: Bool { body.called.contains("topometrics") || body.called.contains("unroll") }
    var prunes: Bool { body.called.contains("prune") }
    var trains: Bool { !body.trainCalls.isEmpty }

    /// Pruners whose masks need no data and no scoring rounds: the plan prunes with them to
    /// count a point's edges exactly.
    static let dataFree: Set<String> = ["uniform", "er", "erk", "dense"]

    init(points: [SweepPoint], body: SweepBody) {
        self.body = body
        calibration = try? SweepCost.calibrate()
        let known = points.filter { $0.workload.model != nil }
        // Exact edges for the data-free pruners (cheap: one build and prune per distinct case).
        if measures {
            for p in known {
                let w = p.workload
                guard let model = w.model, let pruner = w.pruner ?? (w.sparsity == nil ? "dense" : nil),
                      Self.dataFree.contains(pruner) else { continue }
                let key = Self.edgeKey(w)
                if exactEdges[key] == nil, let edges = try? Self.countEdges(model: model, classes: w.classes, pruner: pruner, sparsity: w.sparsity ?? 0) {
                    exactEdges[key] = edges
                }
            }
            // Per model, uniform graphs at its highest sparsity in the sweep (the cheapest, at
            // least 0.9) and at twice that density: seconds per edge. Per data-free pruner of the
            // sweep, one graph at that highest sparsity.
            var sparsest: [String: Double] = [:], pruners: [String: Set<String>] = [:]
            for p in known {
                guard let m = p.workload.model else { continue }
                sparsest[m] = max(sparsest[m] ?? 0, p.workload.sparsity ?? 0)
                pruners[m, default: []].insert(p.workload.pruner.map { Self.dataFree.contains($0) ? $0 : "uniform" } ?? "uniform")
            }
            for (model, sparsity) in sparsest.sorted(by: { $0.key < $1.key }) {
                let sparse = min(0.999, max(sparsity, 0.9)), denser = 1 - 2 * (1 - sparse)
                guard let a = try? Self.probeMeasure(model: model, pruner: "uniform", sparsity: sparse),
                      let b = try? Self.probeMeasure(model: model, pruner: "uniform", sparsity: denser) else { continue }
                measurePerEdge[model] = b.edges > a.edges ? max(0, (b.seconds - a.seconds) / (b.edges - a.edges)) : a.seconds / max(1, a.edges)
                measureProbe[model + "|uniform"] = a
                for pruner in (pruners[model] ?? []).sorted() where pruner != "uniform" {
                    if let c = try? Self.probeMeasure(model: model, pruner: pruner, sparsity: sparse) { measureProbe[model + "|" + pruner] = c }
                }
            }
        }
        if trains {
            // Per model: the sweep's lowest and highest sparsity (interpolated between by density).
            var sparsities: [String: Set<Double>] = [:]
            for p in known { if let m = p.workload.model { sparsities[m, default: []].insert(p.workload.sparsity ?? 0) } }
            let batch = points.lazy.compactMap { p in self.body.trainCalls.lazy.compactMap { $0.resolve($0.batch, point: p.values)?.asDouble }.first }.first
            for (model, set) in sparsities.sorted(by: { $0.key < $1.key }) {
                let sorted = set.sorted()
                let probe = sorted.count > 2 ? [sorted[0], sorted[sorted.count - 1]] : sorted
                var measured: [(density: Double, seconds: Double, overhead: Double)] = []
                for s in probe {
                    if let t = try? Self.probeTraining(model: model, sparsity: s, batch: Int(batch ?? 128)) {
                        measured.append((1 - s, t.perImage, t.overhead))
                    }
                }
                trainPerImage[model] = measured.sorted { $0.0 < $1.0 }
            }
        }
    }

    /// A point's estimated seconds, and the parts it is made of (for the plan's table).
    func seconds(_ p: SweepPoint) -> (total: Double, train: Double?) {
        let w = p.workload
        guard let model = w.model, let architecture = ModelZoo.build(model, classes: w.classes),
              let dense = SweepCost.denseUnrolledEdges(model: model, classes: w.classes) else { return (p.cost.seconds, nil) }
        let weights = Double(architecture.prunable.reduce(0) { $0 + $1.count })
        var total = 0.0
        if let c = calibration {
            total += weights * c.buildSecondsPerWeight
            if prunes { total += weights * (w.pruner.flatMap { SweepCost.scoringRounds[$0] } ?? 0) * c.roundSecondsPerWeight }
        } else {
            total += SweepCost.fixedSeconds
        }
        if measures {
            let edges = exactEdges[Self.edgeKey(w)] ?? SweepCost.edges(dense: dense, sparsity: w.sparsity, pruner: w.pruner)
            let probed = w.pruner.map { Self.dataFree.contains($0) ? $0 : "uniform" } ?? "uniform"
            if let perEdge = measurePerEdge[model], let probe = measureProbe[model + "|" + probed] ?? measureProbe[model + "|uniform"] {
                total += max(0.2 * probe.seconds, probe.seconds + perEdge * (edges - probe.edges))
            } else {
                total += (calibration?.measureSeconds ?? 0) + (calibration?.secondsPerEdge ?? SweepCost.secondsPerEdge) * edges
            }
        }
        var train: Double?
        if trains {
            var t = 0.0
            for call in body.trainCalls {
                let images = Self.images(call, point: p.values)
                let epochs = call.resolve(call.epochs, point: p.values)?.asDouble
                    ?? Double(images?.tiny == true ? 100 : 160) // train's own default (SPEC §5)
                guard let cost = trainCost(model: model, density: 1 - (w.sparsity ?? 0)), let images else { continue }
                t += cost.overhead + epochs * Double(images.count) * cost.perImage
            }
            train = t
            total += t
        }
        return (total, train)
    }

    /// What the plan cannot know about this body, said once above the table.
    func limitations(_ points: [SweepPoint]) -> [String] {
        var lines = notes
        guard let first = points.first else { return lines }
        for (i, call) in body.trainCalls.enumerated() {
            let which = body.trainCalls.count > 1 ? "train call \(i + 1)" : "train"
            if Self.images(call, point: first.values) == nil {
                lines.append("\(which): its data is not a variable, point field or dataset call the plan can size; its training is not counted")
            }
            if call.epochs != nil, call.resolve(call.epochs, point: first.values) == nil {
                lines.append("\(which): epochs: is computed in the body; the plan counts train's default (160; 100 for TinyImageNet)")
            }
        }
        if trains, trainPerImage.values.contains(where: \.isEmpty) || trainPerImage.isEmpty {
            lines.append("a training probe failed; training is not counted for those models")
        }
        if prunes, points.contains(where: { $0.workload.pruner.map { !Self.dataFree.contains($0) && SweepCost.scoringRounds[$0] == nil } ?? false }) {
            lines.append("snip and grasp score on data: their edges come from a fixed factor (2x uniform), which is only a guess per model")
        }
        return lines
    }

    private func trainCost(model: String, density: Double) -> (overhead: Double, perImage: Double)? {
        guard let probes = trainPerImage[model], let first = probes.first, let last = probes.last else { return nil }
        if probes.count == 1 || last.density == first.density { return (first.overhead, first.seconds) }
        let t = (density - first.density) / (last.density - first.density)
        return (max(0, first.overhead + t * (last.overhead - first.overhead)), max(0, first.seconds + t * (last.seconds - first.seconds)))
    }

    static func edgeKey(_ w: SweepPoint.Workload) -> String {
        "\(w.model ?? "")|\(w.classes)|\(w.pruner ?? "")|\(w.sparsity ?? 0)"
    }

    /// Unrolled edges of `model` pruned by a data-free pruner: each kept conv weight once per
    /// output pixel, each kept linear weight once.
    static func countEdges(model: String, classes: Int, pruner: String, sparsity: Double) throws -> Double {
        guard let architecture = ModelZoo.build(model, classes: classes), let kind = Pruner.named(pruner) else { return 0 }
        let network = Network(architecture: architecture, seed: 0)
        if kind != .dense { try prune(network, kind, sparsity: sparsity, seed: 0) }
        var edges = 0.0
        for p in architecture.prunable {
            let shape = architecture.nodes[p.node].shape
            let positions = shape.count == 3 ? shape[1] * shape[2] : 1
            edges += Double(network.kept(p.name) * positions)
        }
        return edges
    }

    /// Seconds of unroll + topometrics on `model` pruned by a data-free pruner to `sparsity`, and the graph's edges.
    static func probeMeasure(model: String, pruner: String, sparsity: Double) throws -> (seconds: Double, edges: Double) {
        guard let architecture = ModelZoo.build(model, classes: 10), let kind = Pruner.named(pruner) else { throw RuntimeError("unknown model \(model)") }
        let network = Network(architecture: architecture, seed: 0)
        if kind != .dense { try prune(network, kind, sparsity: sparsity, seed: 0) }
        let start = DispatchTime.now().uptimeNanoseconds
        let graph = try unroll(network)
        _ = try topometrics(graph)
        let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        return (seconds, Double(graph.edgeCount))
    }

    /// Training cost of `model` pruned (uniform) to `sparsity`: two epochs of one batch of
    /// synthetic images on a fresh network, as a point trains one. The second, warm epoch gives
    /// the seconds per image; the rest of the wall time (the first steps' warm-up, setting up)
    /// is the call's fixed cost.
    static func probeTraining(model: String, sparsity: Double, batch: Int) throws -> (overhead: Double, perImage: Double) {
        guard let architecture = ModelZoo.build(model, classes: 10) else { throw RuntimeError("unknown model \(model)") }
        let network = Network(architecture: architecture, seed: 0)
        if sparsity > 0 { try prune(network, .uniform, sparsity: sparsity, seed: 0) }
        let images = max(8, min(batch, 128))
        let data = try Dataset.synthetic(classes: 10, n: images, seed: 0)
        var options = TrainingOptions.recipe(for: architecture, data: data)
        options.epochs = 2
        options.batchSize = images
        let start = DispatchTime.now().uptimeNanoseconds
        let result = try Trainer(network: network, data: data, options: options).run()
        let wall = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        guard let last = result.history.last else { throw RuntimeError("the training probe ran no epoch") }
        return (max(0, wall - 2 * last.seconds), last.seconds / Double(images))
    }

    /// Images a train call's data holds, when known without running the body.
    static func images(_ call: SweepBody.TrainCall, point: Record) -> (count: Int, tiny: Bool)? {
        guard let e = call.data else { return nil }
        if let value = call.resolve(e, point: point) {
            switch value {
            case .native(let d as DatasetObject): return (d.dataset.count, d.dataset.name.hasPrefix("TinyImageNet"))
            case .builtin(let b): return trainingSplit(b.name, split: nil)
            default: return nil
            }
        }
        if case .call(.variable(let name, _), let arguments, _) = e {
            func literal(_ label: String, position: Int) -> Expr? {
                arguments.first { $0.label == label }?.value ?? (arguments.filter { $0.label == nil }.dropFirst(position).first?.value)
            }
            if name == "synthetic" {
                guard let n = literal("n", position: 1) else { return (1024, false) }
                if case .int(let count, _) = n { return (count, false) }
                return nil
            }
            var split: String?
            if case .string(let s, _)? = literal("split", position: 1) { split = s }
            return trainingSplit(name, split: split)
        }
        return nil
    }

    /// The image count of a disk dataset's split (the standard files).
    static func trainingSplit(_ name: String, split: String?) -> (count: Int, tiny: Bool)? {
        let test = split.map { $0 != "train" } ?? false
        switch name {
        case "cifar10", "cifar100": return (test ? 10_000 : 50_000, false)
        case "tinyimagenet": return (test ? 10_000 : 100_000, true)
        default: return nil
        }
    }
}
