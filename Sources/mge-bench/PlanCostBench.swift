import Foundation
import Kernels

/// `mge-bench --plan-costs` (scripts/calibrate-plan): each stage of a sweep point timed beside
/// the counts `PlanFeatures` gives and the machine-speed probe measured just before it — the
/// data `PlanCost`'s constants are fitted to. One line per measurement, `key=value` fields.
///
///   case:  model pruner sparsity probe weights kept nodes edges features_s build_s prune_s
///          unroll_s topometrics_s (snip/grasp: also cheap_edges, the edges of the plan's cheap
///          scoring pass, and cheap_s its time)
///   train: model pruner sparsity probe activations train_kernel_ns eval_kernel_ns wall_s
///          (train(net, 256 synthetic images, epochs: 2, batch: 64, test: 128 images))
///          epoch1_s epoch2_s eval_s
enum PlanCostBench {
    static func seconds(_ body: () throws -> Void) rethrows -> Double {
        let start = DispatchTime.now().uptimeNanoseconds
        try body()
        return Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
    }

    /// `--probe-check N`: whether the probe follows the machine's speed: N rounds of (probe,
    /// topometrics of ResNet-20 uniform 0.98, one training epoch of 256 images, probe).
    static func probeCheck(rounds: Int) throws {
        guard let architecture = ModelZoo.build("resnet20", classes: 10) else { return }
        let net = Network(architecture: architecture, seed: 0)
        try prune(net, .uniform, sparsity: 0.98, seed: 0)
        let g = try unroll(net)
        let data = try Dataset.synthetic(classes: 10, n: 256, seed: 0)
        var options = TrainingOptions.recipe(for: architecture, data: data)
        options.epochs = 1
        options.batchSize = 64
        for _ in 0 ..< rounds {
            let before = MachineSpeed.probe()
            let topo = try seconds { _ = try topometrics(g) }
            let train = try seconds { _ = try Trainer(network: Network(architecture: architecture, seed: 0), data: data, options: options).run() }
            print("probe-check probe=\(before) topometrics_s=\(topo) train_s=\(train) probe_after=\(MachineSpeed.probe()) load=\((try? String(contentsOfFile: "/proc/loadavg", encoding: .utf8))?.split(separator: " ").first ?? "?")")
            fflush(stdout)
        }
    }

    static func run(models: [String], pruners: [String], sparsities: [Double], measure: Bool, train: Bool) throws {
        let data = try Dataset.synthetic(classes: 10, n: 256, seed: 0)
        let test = try Dataset.synthetic(classes: 10, n: 128, seed: 1)
        for model in models {
            guard let architecture = ModelZoo.build(model, classes: 10) else { print("unknown model \(model)"); continue }
            for pruner in pruners {
                guard let p = Pruner.named(pruner) else { print("unknown pruner \(pruner)"); continue }
                for sparsity in sparsities {
                    let probe = MachineSpeed.probe()
                    var network: Network?
                    let build = seconds { network = Network(architecture: architecture, seed: 0) }
                    guard let net = network else { continue }
                    let pruneSeconds = try seconds { try prune(net, p, sparsity: sparsity, seed: 0, data: p.needsData ? data : nil) }
                    var features: PlanFeatures?
                    let featureSeconds = try seconds { features = try PlanFeatures(net) }
                    guard let f = features else { continue }
                    var line = "case model=\(model) pruner=\(pruner) sparsity=\(sparsity) probe=\(probe) weights=\(f.weights) kept=\(f.kept)"
                        + " nodes=\(f.nodes) edges=\(f.edges) dense_macs=\(f.denseMACs) grouped_macs=\(f.groupedMACs) features_s=\(featureSeconds) build_s=\(build) prune_s=\(pruneSeconds)"
                    if p.needsData {
                        let cheap = Network(architecture: architecture, seed: 0)
                        let small = try Dataset.synthetic(classes: 10, n: PlanCost.cheapScoringImages, seed: 0)
                        let cheapSeconds = try seconds { try prune(cheap, p, sparsity: sparsity, seed: 0, data: small) }
                        line += " cheap_edges=\(try PlanFeatures(cheap).edges) cheap_s=\(cheapSeconds)"
                    }
                    if measure {
                        var graph: Graph?
                        let unrollSeconds = try seconds { graph = try unroll(net) }
                        guard let g = graph else { continue }
                        let topo = try seconds { _ = try topometrics(g) }
                        line += " unroll_s=\(unrollSeconds) topometrics_s=\(topo) probe_after=\(MachineSpeed.probe())"
                    }
                    print(line)
                    fflush(stdout)
                    if train {
                        let probe = MachineSpeed.probe()
                        var options = TrainingOptions.recipe(for: architecture, data: data)
                        options.epochs = 2
                        options.batchSize = 64
                        var result: TrainingResult?
                        let wall = try seconds { result = try Trainer(network: net, data: data, options: options, test: test).run() }
                        let eval = try seconds { _ = try Evaluation.evaluate(net, on: test) }
                        let epochs = result?.history.map(\.seconds) ?? []
                        print("train model=\(model) pruner=\(pruner) sparsity=\(sparsity) probe=\(probe) activations=\(f.activations)"
                              + " train_kernel_ns=\(f.trainKernelNs) eval_kernel_ns=\(f.evalKernelNs) grouped_macs=\(f.groupedMACs) weights=\(f.weights) wall_s=\(wall)"
                              + " epoch1_s=\(epochs.first ?? .nan) epoch2_s=\(epochs.last ?? .nan) eval_s=\(eval) probe_after=\(MachineSpeed.probe())")
                        fflush(stdout)
                    }
                }
            }
        }
    }
}
