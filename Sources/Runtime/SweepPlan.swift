import Foundation
import Kernels
import Lang

// `mge-script --plan`: each point's time from what its body calls, by a fixed cost model
// (docs/sweeps.md, "Planning"). Each stage's cost is a function of counts the plan knows exactly
// and cheaply (`PlanFeatures`: weights, kept weights, the unrolled graph's nodes and edges,
// the conv kernels' modelled cost per image), with constants calibrated once on this machine
// kind (`PlanCost`, scripts/calibrate-plan), times the machine's speed now (`MachineSpeed`: the
// median of three short probes spread over the plan's own work). A point's time is the sum of:
//   build + prune        per dense weight; snip and grasp add their scoring pass (dense
//                        multiply-adds × images); synflow and prospr their scoring rounds;
//   unroll               per edge and node, when the body unrolls;
//   topometrics          per edge, and per node at a rate calibrated per (model, pruner):
//                        the eigen-solver's iterations follow the graph's structure;
//   train                when the body calls it: a call's fixed cost, epochs × images × the
//                        network's cost per training image (its conv kernels' modelled cost for
//                        its masks, and its activations), and epochs × test images × its cost
//                        per evaluated image.
// The masks are known exactly for the data-free pruners (the plan prunes each distinct case,
// which takes milliseconds); snip and grasp are run on a small synthetic batch (their per-layer
// counts, hence edges, from that cheap pass); synflow's and prospr's edges are uniform's times a
// fixed factor (a guess the plan says it makes). The body is read, not run: `train`'s epochs:,
// data, test: and batch: are known when they are literals, the point's fields (p.epochs) or
// variables the body reads; otherwise the plan says so.

/// Each point's estimate from the cost model.
final class PlanEstimator {
    let body: SweepBody
    /// The machine's speed factor the estimates are scaled by: probe seconds now over the
    /// calibration's (`MachineSpeed`), or `MGE_PLAN_SPEED`.
    private(set) var speed = 1.0
    /// This process's measured speed factor, once a plan has measured it.
    nonisolated(unsafe) private static var measuredSpeed: Double?
    /// Per distinct (model, classes, pruner, sparsity): the pruned network's counts.
    private var features: [String: PlanFeatures] = [:]
    /// What the plan could not know, one line each.
    private(set) var notes: [String] = []

    var measures: Bool { body.called.contains("topometrics") }
    var unrolls: Bool { measures || body.called.contains("unroll") }
    var prunes: Bool { body.called.contains("prune") }
    var trains: Bool { !body.trainCalls.isEmpty }

    /// Pruners whose masks the plan computes: the data-free ones exactly, snip and grasp by a
    /// cheap scoring pass on a small synthetic batch.
    static let runnable: Set<String> = ["uniform", "er", "erk", "dense", "snip", "grasp"]

    /// - Parameter speed: the machine's speed factor; nil takes `MGE_PLAN_SPEED` when it is
    /// set to a positive number (the plan at a given speed, e.g. 1 for the calibration's: the
    /// same table in every process), else measures it, once per process: the median of three
    /// probes (`MachineSpeed.probe`) spread over the plan's own work — before, halfway and
    /// after counting the cases — so one burst of load on the shared cores does not set it.
    init(points: [SweepPoint], body: SweepBody, speed: Double? = nil) {
        self.body = body
        let fixed = ProcessInfo.processInfo.environment["MGE_PLAN_SPEED"].flatMap(Double.init).flatMap { $0 > 0 && $0.isFinite ? $0 : nil }
        let known = speed ?? fixed ?? Self.measuredSpeed
        var probes: [Double] = []
        if known == nil { probes.append(MachineSpeed.probe()) }
        let distinct = Set(points.map { Self.caseKey($0.workload) }).count
        var guessed = Set<String>(), uncalibrated = Set<String>()
        for p in points {
            if known == nil, probes.count == 1, features.count >= distinct / 2 { probes.append(MachineSpeed.probe()) }
            let w = p.workload
            guard let model = w.model, let architecture = ModelZoo.build(model, classes: w.classes) else { continue }
            let pruner = Self.prunerName(w)
            let key = Self.caseKey(w)
            if features[key] != nil { continue }
            if !Self.runnable.contains(pruner) { guessed.insert(pruner) }
            if measures, !PlanCost.isCalibrated(model: model, pruner: pruner) { uncalibrated.insert("\(model) \(pruner)") }
            if let f = try? Self.prunedFeatures(architecture, pruner: pruner, sparsity: w.sparsity ?? 0, classes: w.classes) {
                features[key] = f
            }
        }
        if let known {
            self.speed = known
        } else {
            probes.append(MachineSpeed.probe())
            probes.sort()
            self.speed = probes[probes.count / 2] / MachineSpeed.reference
            Self.measuredSpeed = self.speed
        }
        if !guessed.isEmpty, unrolls {
            notes.append("\(guessed.sorted().joined(separator: ", ")): the plan does not run their scoring rounds; their edges come from a fixed factor over uniform's (SweepCost.edgeFactor), a guess per model")
        }
        if !uncalibrated.isEmpty {
            notes.append("topometrics' cost per node is not calibrated for \(uncalibrated.sorted().joined(separator: ", ")); the plan uses the largest calibrated rate of the zoo")
        }
    }

    /// A point's estimated seconds, and the part of it that is training (for the plan's table).
    func seconds(_ p: SweepPoint) -> (total: Double, train: Double?) {
        let w = p.workload
        guard let model = w.model, let f = features[Self.caseKey(w)] else { return (p.cost.seconds, nil) }
        let pruner = Self.prunerName(w)
        var total = PlanCost.build(f)
        if prunes, pruner != "dense" {
            total += PlanCost.prune(f, pruner: pruner, images: Self.scoringImages(pruner, classes: w.classes))
        }
        if unrolls { total += PlanCost.unroll(f) }
        if measures { total += PlanCost.topometrics(f, model: model, pruner: pruner) }
        var train: Double?
        if trains {
            var t = 0.0
            for call in body.trainCalls {
                let images = Self.images(call.data, call, point: p.values)
                let epochs = call.resolve(call.epochs, point: p.values)?.asDouble
                    ?? Double(images?.tiny == true ? 100 : 160) // train's own default (SPEC §5)
                // epochs: 0 cannot run: such a call sits under an `if` the point skips.
                guard epochs > 0, let images else { continue }
                t += PlanCost.trainCall(f) + epochs * Double(images.count) * PlanCost.trainPerImage(f)
                if let test = Self.images(call.test, call, point: p.values) {
                    t += epochs * Double(test.count) * PlanCost.evaluatePerImage(f)
                }
            }
            train = t * speed
            total += t
        }
        return (total * speed, train)
    }

    /// A point's estimated peak memory: `SweepCost`'s bytes per unrolled edge times the edges the
    /// plan counted.
    func bytes(_ p: SweepPoint) -> Int {
        guard unrolls, let f = features[Self.caseKey(p.workload)], f.edges > 0 else { return p.cost.bytes }
        return SweepCost.fixedBytes + Int(Double(SweepCost.bytesPerEdge) * f.edges)
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
        return lines
    }

    static func prunerName(_ w: SweepPoint.Workload) -> String {
        w.pruner ?? (w.sparsity == nil ? "dense" : "uniform")
    }

    static func caseKey(_ w: SweepPoint.Workload) -> String {
        "\(w.model ?? "")|\(w.classes)|\(prunerName(w))|\(w.sparsity ?? 0)"
    }

    /// Images a gradient pruner scores on: snip one batch of 128, grasp `samplesPerClass` per
    /// class (the point's data assumed large enough).
    static func scoringImages(_ pruner: String, classes: Int) -> Int {
        switch pruner {
        case "snip": return 128
        case "grasp": return GraspOptions().samplesPerClass * classes
        default: return 0
        }
    }

    /// The counts of `architecture` pruned by `pruner` to `sparsity`: the data-free pruners as a
    /// point runs them; snip and grasp on a small synthetic batch (`PlanCost.cheapScoringImages`);
    /// any other pruner as uniform, its edges scaled by `SweepCost.edgeFactor`.
    static func prunedFeatures(_ architecture: Architecture, pruner name: String, sparsity: Double, classes: Int) throws -> PlanFeatures {
        let network = Network(architecture: architecture, seed: 0)
        let runs = runnable.contains(name)
        guard let pruner = Pruner.named(runs ? name : "uniform") else { throw RuntimeError("unknown pruner \(name)") }
        var data: Dataset?
        if pruner.needsData {
            data = try Dataset.synthetic(classes: classes, n: max(PlanCost.cheapScoringImages, name == "grasp" ? 2 * classes : 0), seed: 0)
        }
        if pruner != .dense { try prune(network, pruner, sparsity: sparsity, seed: 0, data: data) }
        var f = try PlanFeatures(network)
        if !runs, let factor = SweepCost.edgeFactor[name] { f.edges = min(f.edges / max(1e-9, 1 - sparsity), f.edges * factor) }
        return f
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
