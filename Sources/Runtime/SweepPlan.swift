import Foundation
import Kernels
import Lang

// `mge-script --plan`: each point's time from what its body calls, measured now on this machine
// (docs/sweeps.md, "Planning"). A point's time is the sum of:
//   build + prune        timed: the plan builds and prunes each distinct (model, classes, pruner,
//                        sparsity) once, as the point will (snip and grasp on synthetic images);
//                        synflow and prospr from two timed SynFlow rounds per dense weight;
//   unroll               timed on that pruned network, when the body unrolls;
//   topometrics          when the body calls it: timed once per (model, pruner) on its sparsest
//                        graph in the sweep, scaled to the other sparsities by the square root of
//                        the edge ratio. Most of its time is the eigen-solver's, whose convergence
//                        no count of the graph predicts (CONV-6 pruned by ERK takes 2-3x uniform's
//                        time at fewer edges; CONV-6 at 0.99 as long as at 0.98), so it is timed
//                        per pruner, not counted;
//   train                when the body calls it: a fresh network's fixed cost, epochs × images
//                        × the model's seconds per training image, and epochs × test images ×
//                        its seconds per evaluated image, timed on synthetic data.
// The body is read, not run: `train`'s epochs:, data, test: and batch: are known when they are
// literals, the point's fields (p.epochs) or variables the body reads; otherwise the plan says so.

/// The probes' results, and each point's estimate from them.
final class PlanEstimator {
    let body: SweepBody
    let calibration: SweepCost.Calibration?
    /// Per distinct (model, classes, pruner, sparsity): build + prune seconds, unroll seconds and
    /// the unrolled edges, from pruning the model as the point will; for the sparsest sparsity
    /// of each (model, classes, pruner), topometrics' seconds on that graph.
    private struct Case { var buildPrune: Double; var unroll: Double?; var edges: Double; var measure: Double? }
    private var cases: [String: Case] = [:]
    /// Per (model, classes, pruner): the case whose topometrics were timed.
    private var probes: [String: Case] = [:]
    /// Topometrics' time grows as edges^exponent between sparsities of one model and pruner
    /// (fitted to CONV-6, ResNet-20 and WRN-28-2 by uniform, ERK and SNIP at 0.98 vs 0.99:
    /// exponents from −0.3 to 1.0, median 0.47; docs/sweeps.md).
    static let edgeExponent = 0.5
    /// The plan unrolls (and times) graphs of at most this many edges.
    static let largestProbe = 40e6
    /// Training per model: a call's fixed cost (a fresh network's first steps), seconds per
    /// training image and per evaluated image, at the densities probed (ascending density).
    private var trainPerImage: [String: [(density: Double, seconds: Double, overhead: Double, evaluation: Double)]] = [:]
    /// What the plan could not know, one line each.
    private(set) var notes: [String] = []

    var measures: Bool { body.called.contains("topometrics") }
    var unrolls: Bool { measures || body.called.contains("unroll") }
    var prunes: Bool { body.called.contains("prune") }
    var trains: Bool { !body.trainCalls.isEmpty }

    /// Pruners the plan runs to know a point's masks: the data-free ones without scoring rounds,
    /// and snip and grasp on synthetic images (one scoring pass each).
    static let runnable: Set<String> = ["uniform", "er", "erk", "dense", "snip", "grasp"]

    init(points: [SweepPoint], body: SweepBody) {
        self.body = body
        calibration = try? SweepCost.calibrate()
        // Each (model, classes, pruner)'s sparsest case is the one whose topometrics are timed.
        var sparsest: [String: Double] = [:]
        var guessed = Set<String>()
        for p in points {
            let w = p.workload
            guard w.model != nil else { continue }
            let pruner = w.pruner ?? (w.sparsity == nil ? "dense" : "uniform")
            guard Self.runnable.contains(pruner), (pruner != "grasp" || w.classes <= 100) else {
                guessed.insert(pruner)
                // Its time comes from uniform's graph at the same sparsity.
                var uniform = w
                uniform.pruner = "uniform"
                sparsest[Self.groupKey(uniform)] = max(sparsest[Self.groupKey(uniform)] ?? 0, w.sparsity ?? 0)
                continue
            }
            sparsest[Self.groupKey(w)] = max(sparsest[Self.groupKey(w)] ?? 0, w.sparsity ?? 0)
        }
        var wanted: [SweepPoint.Workload] = points.map(\.workload)
        for (group, sparsity) in sparsest {
            let parts = group.split(separator: "|", omittingEmptySubsequences: false).map(String.init)
            if parts.count == 3, let classes = Int(parts[1]) {
                wanted.append(SweepPoint.Workload(model: parts[0], pruner: parts[2], sparsity: sparsity, classes: classes))
            }
        }
        for w in wanted {
            guard let model = w.model, let architecture = ModelZoo.build(model, classes: w.classes) else { continue }
            let pruner = w.pruner ?? (w.sparsity == nil ? "dense" : "uniform")
            guard Self.runnable.contains(pruner), (pruner != "grasp" || w.classes <= 100) else { continue }
            let key = Self.caseKey(w)
            if cases[key] != nil { continue }
            let probe = measures && sparsest[Self.groupKey(w)] == (w.sparsity ?? 0)
            if let c = try? Self.prunedCase(architecture, pruner: pruner, sparsity: w.sparsity ?? 0, classes: w.classes,
                                            unroll: unrolls, measure: probe) {
                cases[key] = c
                if probe { probes[Self.groupKey(w)] = c }
            }
        }
        if !guessed.isEmpty, unrolls {
            notes.append("\(guessed.sorted().joined(separator: ", ")): the plan does not run them; their edges come from a fixed factor over uniform's (SweepCost.edgeFactor), a guess per model")
        }
        if trains {
            // Per model: the sweep's lowest and highest sparsity (interpolated between by density).
            var sparsities: [String: Set<Double>] = [:]
            for p in points { if let m = p.workload.model { sparsities[m, default: []].insert(p.workload.sparsity ?? 0) } }
            let batch = points.lazy.compactMap { p in self.body.trainCalls.lazy.compactMap { $0.resolve($0.batch, point: p.values)?.asDouble }.first }.first
            for (model, set) in sparsities.sorted(by: { $0.key < $1.key }) {
                let sorted = set.sorted()
                let probe = sorted.count > 2 ? [sorted[0], sorted[sorted.count - 1]] : sorted
                var measured: [(density: Double, seconds: Double, overhead: Double, evaluation: Double)] = []
                for s in probe {
                    if let t = try? Self.probeTraining(model: model, sparsity: s, batch: Int(batch ?? 128)) {
                        measured.append((1 - s, t.perImage, t.overhead, t.evaluation))
                    }
                }
                trainPerImage[model] = measured.sorted { $0.density < $1.density }
            }
        }
    }

    /// A point's estimated seconds, and the part of it that is training (for the plan's table).
    func seconds(_ p: SweepPoint) -> (total: Double, train: Double?) {
        let w = p.workload
        guard let model = w.model, let architecture = ModelZoo.build(model, classes: w.classes),
              let dense = SweepCost.denseUnrolledEdges(model: model, classes: w.classes) else { return (p.cost.seconds, nil) }
        let weights = Double(architecture.prunable.reduce(0) { $0 + $1.count })
        var total = 0.0
        let known = cases[Self.caseKey(w)]
        if let known {
            total += known.buildPrune
        } else if let c = calibration {
            total += weights * c.buildSecondsPerWeight
            if prunes { total += weights * (w.pruner.flatMap { SweepCost.scoringRounds[$0] } ?? 0) * c.roundSecondsPerWeight }
        } else {
            total += SweepCost.fixedSeconds
        }
        if unrolls {
            var graph = w
            var edges = known?.edges ?? 0, unroll = known?.unroll
            if known == nil {
                // A pruner the plan does not run: uniform's graph at the same sparsity, its edges
                // scaled by the pruner's factor.
                graph.pruner = "uniform"
                edges = SweepCost.edges(dense: dense, sparsity: w.sparsity, pruner: w.pruner)
                if let base = cases[Self.caseKey(graph)], let u = base.unroll, base.edges > 0 { unroll = u * edges / base.edges }
            }
            total += unroll ?? 0
            if measures {
                if let probe = probes[Self.groupKey(graph)], let seconds = probe.measure, probe.edges > 0 {
                    total += seconds * pow(max(1, edges) / probe.edges, Self.edgeExponent)
                } else {
                    total += (calibration?.measureSeconds ?? 0) + (calibration?.secondsPerEdge ?? SweepCost.secondsPerEdge) * edges
                }
            }
        }
        var train: Double?
        if trains {
            var t = 0.0
            for call in body.trainCalls {
                let images = Self.images(call.data, call, point: p.values)
                let epochs = call.resolve(call.epochs, point: p.values)?.asDouble
                    ?? Double(images?.tiny == true ? 100 : 160) // train's own default (SPEC §5)
                // epochs: 0 cannot run: such a call sits under an `if` the point skips.
                guard epochs > 0, let cost = trainCost(model: model, density: 1 - (w.sparsity ?? 0)), let images else { continue }
                t += cost.overhead + epochs * Double(images.count) * cost.perImage
                if let test = Self.images(call.test, call, point: p.values) {
                    t += epochs * Double(test.count) * cost.evaluation
                }
            }
            train = t
            total += t
        }
        return (total, train)
    }

    /// A point's estimated peak memory: `SweepCost`'s bytes per unrolled edge times the edges the
    /// plan counted (the static estimate's edges for a pruner it does not run).
    func bytes(_ p: SweepPoint) -> Int {
        guard unrolls, let known = cases[Self.caseKey(p.workload)], known.edges > 0 else { return p.cost.bytes }
        return SweepCost.fixedBytes + Int(Double(SweepCost.bytesPerEdge) * known.edges)
    }

    /// What the plan cannot know about this body, said once above the table.
    func limitations(_ points: [SweepPoint]) -> [String] {
        var lines = notes
        guard let first = points.first else { return lines }
        for (i, call) in body.trainCalls.enumerated() {
            let which = body.trainCalls.count > 1 ? "train call \(i + 1)" : "train"
            if Self.images(call.data, call, point: first.values) == nil {
                lines.append("\(which): its data is not a variable, point field or dataset call the plan can size; its training is not counted")
            }
            if call.test != nil, Self.images(call.test, call, point: first.values) == nil {
                lines.append("\(which): its test: set is not one the plan can size; its evaluation is not counted")
            }
            if call.epochs != nil, call.resolve(call.epochs, point: first.values) == nil {
                lines.append("\(which): epochs: is computed in the body; the plan counts train's default (160; 100 for TinyImageNet)")
            }
        }
        if trains, trainPerImage.values.contains(where: \.isEmpty) || trainPerImage.isEmpty {
            lines.append("a training probe failed; training is not counted for those models")
        }
        return lines
    }

    private func trainCost(model: String, density: Double) -> (overhead: Double, perImage: Double, evaluation: Double)? {
        guard let probes = trainPerImage[model], let first = probes.first, let last = probes.last else { return nil }
        if probes.count == 1 || last.density == first.density { return (first.overhead, first.seconds, first.evaluation) }
        let t = (density - first.density) / (last.density - first.density)
        func between(_ a: Double, _ b: Double) -> Double { max(0, a + t * (b - a)) }
        return (between(first.overhead, last.overhead), between(first.seconds, last.seconds), between(first.evaluation, last.evaluation))
    }

    static func caseKey(_ w: SweepPoint.Workload) -> String {
        groupKey(w) + "|\(w.sparsity ?? 0)"
    }

    static func groupKey(_ w: SweepPoint.Workload) -> String {
        "\(w.model ?? "")|\(w.classes)|\(w.pruner ?? (w.sparsity == nil ? "dense" : "uniform"))"
    }

    /// Builds and prunes the model as a point does (snip and grasp on synthetic images), timed;
    /// with `unroll`, unrolls it (timed) and counts its edges; with `measure`, times
    /// topometrics on the graph.
    private static func prunedCase(_ architecture: Architecture, pruner name: String, sparsity: Double, classes: Int,
                                   unroll: Bool, measure: Bool) throws -> Case {
        guard let pruner = Pruner.named(name) else { throw RuntimeError("unknown pruner \(name)") }
        var data: Dataset?
        if pruner.needsData {
            let n = name == "grasp" ? 30 * classes : 256
            data = try Dataset.synthetic(classes: classes, n: n, seed: 0)
        }
        let start = DispatchTime.now().uptimeNanoseconds
        let network = Network(architecture: architecture, seed: 0)
        if pruner != .dense { try prune(network, pruner, sparsity: sparsity, seed: 0, data: data) }
        let built = DispatchTime.now().uptimeNanoseconds
        var edges = 0.0
        for p in architecture.prunable {
            let shape = architecture.nodes[p.node].shape
            let positions = shape.count == 3 ? shape[1] * shape[2] : 1
            edges += Double(network.kept(p.name) * positions)
        }
        var result = Case(buildPrune: Double(built - start) / 1e9, unroll: nil, edges: edges, measure: nil)
        // A larger graph (a dense CONV-6 is 240 M edges) would take the plan minutes and
        // gigabytes: its point is then estimated per edge.
        guard unroll, edges <= Self.largestProbe else { return result }
        let graph = try Kernels.unroll(network)
        result.unroll = Double(DispatchTime.now().uptimeNanoseconds - built) / 1e9
        result.edges = Double(graph.edgeCount)
        if measure {
            let start = DispatchTime.now().uptimeNanoseconds
            _ = try topometrics(graph)
            result.measure = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        }
        return result
    }

    /// Training cost of `model` pruned (uniform) to `sparsity`: three epochs of one batch of
    /// synthetic images on a fresh network, as a point trains one, then one evaluation of the
    /// batch. The two warm epochs give the seconds per image (their mean: one step alone varied
    /// 2x with the load); the rest of the training's wall time (the first steps' warm-up,
    /// setting up) is the call's fixed cost.
    static func probeTraining(model: String, sparsity: Double, batch: Int) throws -> (overhead: Double, perImage: Double, evaluation: Double) {
        guard let architecture = ModelZoo.build(model, classes: 10) else { throw RuntimeError("unknown model \(model)") }
        let network = Network(architecture: architecture, seed: 0)
        if sparsity > 0 { try prune(network, .uniform, sparsity: sparsity, seed: 0) }
        let images = max(8, min(batch, 128))
        let data = try Dataset.synthetic(classes: 10, n: images, seed: 0)
        var options = TrainingOptions.recipe(for: architecture, data: data)
        options.epochs = 3
        options.batchSize = images
        let start = DispatchTime.now().uptimeNanoseconds
        let result = try Trainer(network: network, data: data, options: options).run()
        let trained = DispatchTime.now().uptimeNanoseconds
        _ = try Evaluation.evaluate(network, on: data)
        let evaluation = Double(DispatchTime.now().uptimeNanoseconds - trained) / 1e9
        let wall = Double(trained - start) / 1e9
        let warm = result.history.dropFirst().map(\.seconds)
        guard !warm.isEmpty else { throw RuntimeError("the training probe ran no warm epoch") }
        let epoch = warm.reduce(0, +) / Double(warm.count)
        return (max(0, wall - 3 * epoch), epoch / Double(images), evaluation / Double(images))
    }

    /// Images a train call's data (or test: set) holds, when known without running the body.
    static func images(_ e: Expr?, _ call: SweepBody.TrainCall, point: Record) -> (count: Int, tiny: Bool)? {
        guard let e else { return nil }
        if let value = call.resolve(e, point: point) {
            switch value {
            case .native(let d as DatasetObject): return (d.dataset.count, d.dataset.name.hasPrefix("TinyImageNet"))
            case .builtin(let b): return trainingSplit(b.name, split: nil)
            default: return nil
            }
        }
        guard case .call(let callee, let arguments, _) = e else { return nil }
        func literal(_ label: String, position: Int) -> Expr? {
            arguments.first { $0.label == label }?.value ?? (arguments.filter { $0.label == nil }.dropFirst(position).first?.value)
        }
        // The dataset function: named (cifar10(...)) or a point's field (p.dataset(...)).
        var name: String?
        if case .variable(let n, _) = callee { name = n }
        if case .builtin(let b)? = call.resolve(callee, point: point) { name = b.name }
        guard let name else { return nil }
        if name == "synthetic" {
            guard let n = literal("n", position: 1) else { return (1024, false) }
            if case .int(let count, _) = n { return (count, false) }
            return nil
        }
        var split: String?
        if case .string(let s, _)? = literal("split", position: 1) { split = s }
        return trainingSplit(name, split: split)
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
