import Foundation

/// What `--plan` knows of a pruned network without running its stages: the counts its cost
/// model (`PlanCost`) multiplies. All are exact and cheap (a pass over the masks and the
/// unroll plan's degree count; no graph is built).
public struct PlanFeatures: Sendable, Equatable {
    /// Prunable (dense) weights, and the weights the masks keep.
    public var weights: Double
    public var kept: Double
    /// Nodes and edges of the unrolled graph (`unroll(net)`), exactly.
    public var nodes: Double
    public var edges: Double
    /// Activations of one image through the network (every node's output), for the elementwise
    /// work of training and evaluation.
    public var activations: Double
    /// `ConvKernelChoice`'s modelled nanoseconds per image of the conv kernels a training step
    /// runs (forward, input gradient, weight gradient, each on the kernel the model picks for
    /// the layer's mask) and of an evaluation (forward only), plus the linear layers' dense
    /// multiply-adds at the GEMM rate.
    public var trainKernelNs: Double
    public var evalKernelNs: Double
    /// Dense multiply-adds per image (the gradient pruners score on the dense network).
    public var denseMACs: Double
    /// Multiply-adds per image of the grouped (depthwise) convs, which have no sparse kernel
    /// and no GEMM model: they run on their own loops, counted apart (MobileNetV2).
    public var groupedMACs: Double

    /// The counts of `network` as its masks stand. `edges` from the unroll plan's degree count
    /// (`ImplicitGraph`): O(n + m) over the cores without storing an edge.
    public init(_ network: Network) throws {
        let architecture = network.architecture
        weights = Double(architecture.prunable.reduce(0) { $0 + $1.count })
        kept = Double(architecture.prunable.reduce(0) { $0 + network.kept($1.name) })
        let graph = try ImplicitGraph(network)
        nodes = Double(graph.nodeCount)
        edges = Double(graph.edgeCount)
        var activations = 0.0, train = 0.0, eval = 0.0, macs = 0.0, grouped = 0.0
        for node in architecture.nodes {
            activations += Double(node.shape.reduce(1, *))
            switch node.op {
            case .conv(let c):
                let s = architecture.nodes[node.inputs[0]].shape
                let g = ConvGeometry(batch: 1, inChannels: c.inChannels, height: s[1], width: s[2], outChannels: c.outChannels,
                                     kernel: c.kernel, stride: c.stride, padding: c.padding, groups: c.groups)
                let name = node.name + ".weight"
                let total = c.weightShape.reduce(1, *)
                let k = network.masks[name] == nil ? total : network.kept(name)
                macs += Double(total) * Double(g.outHeight * g.outWidth)
                if c.groups > 1 {
                    grouped += Double(total) * Double(g.outHeight * g.outWidth)
                    continue
                }
                for op in ConvKernelChoice.Operation.allCases {
                    let sparse = ConvKernelChoice.prefersSparse(g, kept: k, op)
                    let cost = ConvKernelChoice.modelledCost(g, kept: k, op, vectorRows: SparseConv2D.hasVectorRows(g))
                    let ns = sparse ? cost.sparse : cost.dense
                    train += ns
                    if op == .forward { eval += ns }
                }
            case .linear(let l):
                let m = Double(l.inFeatures * l.outFeatures)
                macs += m
                train += 3 * 0.0255 * m
                eval += 0.0255 * m
            default:
                break
            }
        }
        self.activations = activations
        trainKernelNs = train
        evalKernelNs = eval
        denseMACs = macs
        groupedMACs = grouped
    }

    public init(weights: Double, kept: Double, nodes: Double, edges: Double, activations: Double,
                trainKernelNs: Double, evalKernelNs: Double, denseMACs: Double, groupedMACs: Double = 0) {
        self.weights = weights; self.kept = kept; self.nodes = nodes; self.edges = edges
        self.activations = activations; self.trainKernelNs = trainKernelNs; self.evalKernelNs = evalKernelNs
        self.denseMACs = denseMACs; self.groupedMACs = groupedMACs
    }
}

/// `--plan`'s cost model: each stage of a sweep point as a fixed function of `PlanFeatures`,
/// in seconds at the machine-speed probe's reference speed (`MachineSpeed.reference`; the plan
/// multiplies by the probe now over the reference). The constants are fitted once, on this project's
/// machine kind, by scripts/calibrate-plan (`mge-bench --plan-costs`: every stage timed beside
/// its counts and the probe, least squares on the relative error); rerun it on another kind.
public enum PlanCost {
    /// Synthetic images of the plan's cheap scoring pass for the gradient pruners (snip,
    /// grasp): their masks' per-layer counts, hence the unrolled edges, from a small batch.
    public static let cheapScoringImages = 32

    // Fitted on 2026-12-06 by scripts/calibrate-plan, each stage timed once per case: CONV-6,
    // ResNet-20 and WRN-28-2 × uniform, ERK, SNIP × 0.95, 0.98, 0.99, then ResNet-32 and
    // MobileNetV2 × the same pruners × 0.98, 0.99; training 2 epochs of 256 synthetic images
    // (batch 64) with a 128-image test set. 2 cores shared with a full test suite and a graph
    // benchmark (load 4.6-6.3; the second stretch 3-8, during a build, its times scaled by the
    // ratio of the two stretches' probe medians). Seconds at the first stretch's speed (probe
    // median 13.8 ms = MachineSpeed.reference). The fit's errors are in docs/sweeps.md.
    static let buildPerWeight = 2.303e-08
    static let prunePerWeight = 5.415e-09
    /// snip: one training-mode forward and backward of the dense network, per multiply-add and image.
    static let scoringPerMAC = 1.023e-10
    /// grasp: two gradients and a Hessian-vector product per image, as this many snip passes
    /// (not calibrated: GraSP's float64 passes were not timed).
    static let graspPasses = 3.0
    static let unrollPerEdge = 1.059e-08
    static let unrollPerNode = 1.156e-07
    /// topometrics: (per edge, per node) by "model|pruner". The per-node part is mostly the
    /// eigen-solver's basis work times its restarts, whose count follows the graph's structure
    /// (CONV-6 pruned by ERK restarts far more than by uniform), so each (model, pruner) has its
    /// own pair, fitted to its three sparsities; ResNet-32's and MobileNetV2's, timed at two,
    /// take the median per-edge rate of the others and fit the per-node rate.
    static let topometricsRates: [String: (edge: Double, node: Double)] = [
        "conv6|erk": (9.09e-07, 9.06e-05), "conv6|snip": (1.41e-06, 0), "conv6|uniform": (6.2e-07, 2.93e-05),
        "mobilenetv2|erk": (7.92e-07, 1.66e-05), "mobilenetv2|snip": (7.92e-07, 3.13e-05), "mobilenetv2|uniform": (7.92e-07, 1.7e-05),
        "resnet20|erk": (6.86e-07, 4.44e-06), "resnet20|snip": (5.21e-07, 2.1e-05), "resnet20|uniform": (3.73e-07, 4.19e-06),
        "resnet32|erk": (7.92e-07, 4.57e-07), "resnet32|snip": (7.92e-07, 1.04e-05), "resnet32|uniform": (7.92e-07, 1.53e-06),
        "wrn28_2|erk": (1.22e-06, 4.47e-06), "wrn28_2|snip": (7.92e-07, 2.18e-05), "wrn28_2|uniform": (1.34e-06, 1.96e-06),
    ]
    /// A pruner without its own rates takes those of the calibrated pruner it resembles most
    /// (er: ERK's layer-wise densities; the scoring pruners: SNIP's concentrated layers).
    static let prunerStandIn = ["er": "erk", "dense": "uniform", "grasp": "snip", "synflow": "snip", "prospr": "snip"]
    /// A model outside the paper's zoo takes the rates of the zoo model it resembles most.
    static let modelStandIn = ["vgg16": "conv6", "vgg16_imagenet": "conv6", "resnet50": "resnet32", "toy": "conv6"]
    static let trainPerKernelNs = 1.274e-09
    static let trainPerGroupedMAC = 2.594e-09
    static let trainPerActivation = 1.004e-09
    static let evaluatePerKernelNs = 1.323e-09
    static let evaluatePerGroupedMAC = 6.705e-10
    static let evaluatePerActivation = 1.03e-10
    static let trainCallFixed = 0.0271

    /// The (per edge, per node) topometrics rates for `model` and `pruner`, and whether they
    /// were calibrated for that pair (else a stand-in's, or the largest of the table).
    static func topometricsRate(model: String, pruner: String) -> (rate: (edge: Double, node: Double), calibrated: Bool) {
        if let r = topometricsRates[model + "|" + pruner] { return (r, true) }
        let p = prunerStandIn[pruner] ?? pruner, m = modelStandIn[model] ?? model
        if let r = topometricsRates[m + "|" + p] { return (r, false) }
        let rows = topometricsRates.filter { $0.key.hasSuffix("|" + p) }.map(\.value)
        let all = rows.isEmpty ? Array(topometricsRates.values) : rows
        return ((all.map(\.edge).max() ?? 0, all.map(\.node).max() ?? 0), false)
    }

    /// Whether topometrics' rates were calibrated for this model and pruner.
    public static func isCalibrated(model: String, pruner: String) -> Bool {
        topometricsRate(model: model, pruner: pruner).calibrated
    }

    /// Building the network (initialising every weight).
    public static func build(_ f: PlanFeatures) -> Double { buildPerWeight * f.weights }

    /// Pruning it: selecting the masks, plus the gradient pruners' scoring on `images` images
    /// and the iterative pruners' rounds (`SweepCost.pruningSecondsPerWeight`, not calibrated here).
    public static func prune(_ f: PlanFeatures, pruner: String, images: Int) -> Double {
        var t = prunePerWeight * f.weights
        switch pruner {
        case "snip": t += scoringPerMAC * f.denseMACs * Double(images)
        case "grasp": t += graspPasses * scoringPerMAC * f.denseMACs * Double(images)
        default: t += (SweepCost.pruningSecondsPerWeight[pruner] ?? 0) * f.weights
        }
        return t
    }

    /// `unroll(net)`: building the explicit graph.
    public static func unroll(_ f: PlanFeatures) -> Double { unrollPerEdge * f.edges + unrollPerNode * f.nodes }

    /// `topometrics(g)` with its defaults: per edge and per node at the rates of the model and
    /// pruner (`topometricsRate`).
    public static func topometrics(_ f: PlanFeatures, model: String, pruner: String) -> Double {
        let r = topometricsRate(model: model, pruner: pruner).rate
        return r.edge * f.edges + r.node * f.nodes
    }

    /// A `train` call's fixed cost (setting up the state, the first steps' warm-up).
    public static func trainCall(_ f: PlanFeatures) -> Double { trainCallFixed }

    /// One training image: its conv kernels' modelled cost for the masks, its grouped convs'
    /// multiply-adds and its activations.
    public static func trainPerImage(_ f: PlanFeatures) -> Double {
        trainPerKernelNs * f.trainKernelNs + trainPerGroupedMAC * f.groupedMACs + trainPerActivation * f.activations
    }

    /// One evaluated image (forward only).
    public static func evaluatePerImage(_ f: PlanFeatures) -> Double {
        evaluatePerKernelNs * f.evalKernelNs + evaluatePerGroupedMAC * f.groupedMACs + evaluatePerActivation * f.activations
    }
}
