// Benchmarks for the unrolled graph encoding and its storage; driven by scripts/bench-graph.
//
//   mge-bench-graph unroll MODEL SPARSITY [paper|reference]
//   mge-bench-graph store MODEL SPARSITY FOLDER
//   mge-bench-graph draw FOLDER
//   mge-bench-graph product MODEL SPARSITY            (seconds per block product, implicit MGE;
//                                                      MGE_VECTORS=k also times a k-vector product)
//   mge-bench-graph spectral MODEL SPARSITY gap|radius (products the eigensolver needs)
//   mge-bench-graph motifs MODEL SPARSITY ROOTS       (seconds of the motif estimate per root)
//   mge-bench-graph metrics MODEL SPARSITY [each|full] [er|uniform]
//     each: time every metric group separately (benchmarkTopometrics);
//     full: one topometrics(g) call; prints time and peak RSS (getrusage).
//     Masks here come from the real pruners: prune(net, .er / .uniform, sparsity:, seed: 0).
//
// Masks are ER-style: layer l keeps each weight with probability min(1, ε·Σshape/Πshape),
// ε found by bisection so the expected kept count is (1 − sparsity)·N; seeded, so every run
// builds the same graph.
import Foundation
import Kernels
import Runtime

// The same start-up as mge and mge-script (OpenBLAS kernels for the spectral solver's GEMMs).
Startup.prepare()

func fail(_ message: String) -> Never {
    FileHandle.standardError.write(Data((message + "\n").utf8))
    exit(2)
}

func seconds(_ body: () throws -> Void) rethrows -> Double {
    let start = DispatchTime.now().uptimeNanoseconds
    try body()
    return Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
}

/// Random masks: `er` (per-layer keep probability ∝ Σshape/Πshape) or `uniform` (every
/// weight kept with probability 1 − sparsity).
func pruned(_ model: String, sparsity: Double, masks: String = "er", seed: UInt64 = 0) throws -> Network {
    guard let arch = ModelZoo.build(model, classes: 10) else { fail("unknown model \(model); one of \(ModelZoo.names.joined(separator: ", "))") }
    let net = Network(architecture: arch, seed: seed)
    let layers = arch.prunable
    let total = Double(layers.reduce(0) { $0 + $1.count })
    let raw = layers.map { Double($0.shape.reduce(0, +)) / Double($0.count) }
    func kept(_ epsilon: Double) -> Double { zip(layers, raw).reduce(0) { $0 + min(1, epsilon * $1.1) * Double($1.0.count) } }
    var lo = 0.0, hi = 1e9
    for _ in 0 ..< 200 { let mid = (lo + hi) / 2; if kept(mid) < (1 - sparsity) * total { lo = mid } else { hi = mid } }
    var rng = SeededGenerator(seed: seed &+ 101)
    for (spec, r) in zip(layers, raw) {
        let p = masks == "uniform" ? 1 - sparsity : min(1, lo * r)
        try net.setMask(spec.name, (0 ..< spec.count).map { _ in rng.uniform() < p ? 1 : 0 })
    }
    return net
}

/// Per-layer bipartite encodings (SPEC §3 rolled and rolled-channel), a small stand-in so the
/// figures can be drawn before the real rolled encoders are merged; the figures only need
/// their two-partition `Graph` shape.
func perLayerGraphs(_ net: Network, channels: Bool) -> [Graph] {
    net.architecture.prunable.compactMap { spec -> Graph? in
        guard let w = net.parameters[spec.name]?.data else { return nil }
        let layer = String(spec.name.dropLast(".weight".count))
        let outputs = spec.shape[0], perOutput = spec.count / outputs
        let inputs = spec.shape.count > 1 ? spec.shape[1] : 1, kernel = perOutput / max(1, inputs)
        let node = net.architecture.nodes[spec.node]
        let depthwise: Bool = { if case .conv(let c) = node.op { return c.isDepthwise } else { return false } }()
        let leftCount = channels ? (depthwise ? outputs : inputs) : perOutput
        var adjacency = [[(UInt32, Float16)]](repeating: [], count: leftCount)
        for o in 0 ..< outputs {
            if channels {
                for i in 0 ..< inputs {
                    let block = w[(o * inputs + i) * kernel ..< (o * inputs + i + 1) * kernel]
                    let norm = block.reduce(0) { $0 + $1 * $1 }.squareRoot()
                    if norm > 0 { adjacency[depthwise ? o : i].append((UInt32(leftCount + o), Float16(norm))) }
                }
            } else {
                for j in 0 ..< perOutput where w[o * perOutput + j] != 0 {
                    adjacency[j].append((UInt32(leftCount + o), Float16(abs(w[o * perOutput + j]))))
                }
            }
        }
        var offsets = [0], targets: [UInt32] = [], weights: [Float16] = []
        for list in adjacency { targets += list.map(\.0); weights += list.map(\.1); offsets.append(targets.count) }
        offsets += [Int](repeating: targets.count, count: outputs)
        let parts = [Partition(name: layer + " in", start: 0, count: leftCount, shape: [leftCount]),
                     Partition(name: layer, start: leftCount, count: outputs, shape: [outputs])]
        return Graph(nodeCount: leftCount + outputs, partitions: parts, outOffsets: offsets, outTargets: targets, outWeights: weights)
    }
}

func drawFigures(into folder: String) throws {
    let toy = Network(architecture: ModelZoo.toy(), seed: 1)
    var rng = SeededGenerator(seed: 5)
    for spec in toy.architecture.prunable {
        try toy.setMask(spec.name, (0 ..< spec.count).map { _ in rng.uniform() < 0.45 ? 1 : 0 })
    }
    let unrolled = try unroll(toy)
    let figures: [(String, String)] = [
        ("toy-encodings.svg", GraphDrawing.svg(panels: [
            .multipartite(unrolled, title: "Unrolled (MGE): one node per pixel"),
            .layers(perLayerGraphs(toy, channels: false), title: "Rolled: kernel entries → channels"),
            .layers(perLayerGraphs(toy, channels: true), title: "Rolled-channel: channels → channels"),
        ], title: "Three encodings of the toy net (55% of weights pruned)")),
        ("toy-paper-vs-reference.svg", GraphDrawing.svg(panels: [
            .multipartite(unrolled, title: "paper"),
            .multipartite(try unroll(toy, compat: .reference), title: "reference (stride-2 quirk)"),
        ], title: "Unrolled toy net: paper vs reference layout")),
        ("resnet20-unrolled.svg", GraphDrawing.svg(try unroll(try pruned("resnet20", sparsity: 0.98)), title: "ResNet-20, 98% sparse (ER), unrolled")),
        ("resnet20-rolled.svg", GraphDrawing.svg(layers: perLayerGraphs(try pruned("resnet20", sparsity: 0.98), channels: true),
                                                  title: "ResNet-20, 98% sparse (ER), rolled-channel per layer")),
    ]
    for (name, svg) in figures {
        try GraphDrawing.write(svg, to: folder + "/" + name)
        print("wrote \(folder)/\(name) (\(svg.utf8.count / 1024) KB)")
    }
}

let args = Array(CommandLine.arguments.dropFirst())
guard let command = args.first else { fail("usage: mge-bench-graph unroll|store|draw ...") }
do {
    switch command {
    case "unroll":
        guard args.count >= 3, let sparsity = Double(args[2]) else { fail("usage: unroll MODEL SPARSITY [paper|reference] [er|uniform]") }
        let masks = args.count > 4 ? args[4] : "er"
        guard masks == "er" || masks == "uniform" else { fail("masks are er or uniform") }
        guard let compat = UnrollCompat(rawValue: args.count > 3 ? args[3] : "paper") else { fail("compat is paper or reference") }
        let net = try pruned(args[1], sparsity: sparsity, masks: masks)
        var graph: Graph?
        let t = try seconds { graph = try unroll(net, compat: compat) }
        guard let g = graph else { fail("no graph") }
        print(String(format: "model=%@ sparsity=%.2f masks=%@ compat=%@ nodes=%ld edges=%ld unroll_s=%.3f bytes_per_edge=%.2f graph_MB=%.1f",
                     args[1], sparsity, masks, compat.rawValue, g.nodeCount, g.edgeCount, t,
                     Double(g.byteSize) / Double(max(1, g.edgeCount)), Double(g.byteSize) / 1_048_576))
    case "store":
        guard args.count >= 4, let sparsity = Double(args[2]) else { fail("usage: store MODEL SPARSITY FOLDER [er|uniform]") }
        let g = try unroll(try pruned(args[1], sparsity: sparsity, masks: args.count > 4 ? args[4] : "er"))
        let path = args[3] + "/bench-\(args[1])-\(sparsity).mgeg"
        defer { unlink(path) }
        let save = try seconds { try g.save(to: path) }
        var back: Graph?
        let load = try seconds { back = try Graph.load(from: path) }
        guard let loaded = back, loaded.edgeCount == g.edgeCount, loaded.outTargets == g.outTargets else { fail("round trip differs") }
        let size = (try FileManager.default.attributesOfItem(atPath: path)[.size] as? Int) ?? 0
        let payload = 4 * g.nodeCount + 6 * g.edgeCount
        print(String(format: "model=%@ sparsity=%.2f edges=%ld file_MB=%.1f file_bytes_per_edge=%.2f ratio_vs_payload=%.2f ratio_vs_memory=%.2f save_s=%.3f load_s=%.3f save_Medges_per_s=%.1f load_Medges_per_s=%.1f",
                     args[1], sparsity, g.edgeCount, Double(size) / 1_048_576, Double(size) / Double(max(1, g.edgeCount)),
                     Double(payload) / Double(size), Double(g.byteSize) / Double(size), save, load,
                     Double(g.edgeCount) / save / 1e6, Double(g.edgeCount) / load / 1e6))
    case "metrics":
        guard args.count >= 3, let sparsity = Double(args[2]) else { fail("usage: metrics MODEL SPARSITY [each|full] [er|uniform]") }
        let mode = args.count > 3 ? args[3] : "full"
        let masks = args.count > 4 ? args[4] : "er"
        guard let arch = ModelZoo.build(args[1], classes: 10) else { fail("unknown model \(args[1])") }
        let net = Network(architecture: arch, seed: 0)
        try prune(net, masks == "uniform" ? .uniform : .er, sparsity: sparsity, seed: 0)
        var graph: Graph?
        let tu = try seconds { graph = try unroll(net) }
        guard let g = graph else { fail("no graph") }
        func peakMB() -> Double {
            var u = rusage(); getrusage(RUSAGE_SELF.rawValue, &u); return Double(u.ru_maxrss) / 1024
        }
        var line = String(format: "model=%@ sparsity=%.2f masks=%@ nodes=%ld edges=%ld unroll_s=%.3f graph_rss_MB=%.0f",
                          args[1], sparsity, masks, g.nodeCount, g.edgeCount, tu, peakMB())
        if mode == "spectral" {
            let view = UndirectedView(g)
            let op = SymmetricGraphOperator(view: view)
            let n = g.nodeCount
            var x = [Double](repeating: 1, count: 8 * n), y = [Double](repeating: 0, count: 8 * n)
            for i in 0 ..< 8 * n { x[i] = Double(i % 7) }
            let t1 = seconds { for _ in 0 ..< 5 { x.withUnsafeBufferPointer { xp in y.withUnsafeMutableBufferPointer { op.apply(xp.baseAddress!, $0.baseAddress!) } } } } / 5
            line += String(format: " spmv_row_ms=%.1f", t1 * 1000)
            func cpuSeconds() -> Double { var t = timespec(); clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t); return Double(t.tv_sec) + Double(t.tv_nsec) / 1e9 }
            for b in [1, 4, 8] {
                let c0 = cpuSeconds()
                let t = seconds { for _ in 0 ..< 5 { x.withUnsafeBufferPointer { xp in y.withUnsafeMutableBufferPointer { op.apply(block: xp.baseAddress!, $0.baseAddress!, count: b) } } } } / 5
                line += String(format: " spmm%d_ms=%.1f(cpu %.1f)", b, t * 1000, (cpuSeconds() - c0) / 5 * 1000)
            }
            let env = ProcessInfo.processInfo.environment
            let tol = Double(env["MGE_TOL"] ?? "") ?? 1e-9
            let basis = Int(env["MGE_BASIS"] ?? "") ?? 40
            let blocks = (env["MGE_BLOCKS"] ?? "1,2,3,4").split(separator: ",").compactMap { Int($0) }
            for b in blocks {
                var o = LanczosOptions(); o.blockSize = b; o.tolerance = tol; o.basisSize = basis
                if b == 1 { o.checkMultiplicity = false }
                var r: EigenResult?
                let t = seconds { r = graphEigenvalues(op, k: Int(env["MGE_K"] ?? "") ?? 3, target: .largestMagnitude, options: o) }
                if let r { line += String(format: " gap_b%d_s=%.2f(passes=%d,%@)", b, t, r.passes, r.values.map { String(format: "%.6f", $0) }.joined(separator: "/")) }
            }
            for b in blocks where b != 3 {
                var o = LanczosOptions(); o.blockSize = b; o.checkMultiplicity = false; o.tolerance = tol; o.basisSize = basis
                var r: EigenResult?
                let lop = SymmetricGraphOperator(view: view, laplacian: true)
                let t = seconds { r = graphEigenvalues(lop, k: 1, target: .largestAlgebraic, options: o) }
                if let r { line += String(format: " rad_b%d_s=%.2f(passes=%d,%.6f)", b, t, r.passes, r.values[0]) }
            }
        } else if mode == "each" {
            for (name, s) in benchmarkTopometrics(g) { line += String(format: " %@=%.3f", name, s) }
        } else {
            var r: Topometrics?
            let t = try seconds { r = try topometrics(g) }
            line += String(format: " topometrics_s=%.3f", t)
            if let r { for (name, v) in r.orderedFields where name != "nodes" && name != "edges" { line += " \(name)=\(v)" } }
        }
        line += String(format: " peak_rss_MB=%.0f", peakMB())
        print(line)
    case "topo":
        // One form's full topometrics, metric group by metric group, with ERK masks (the real
        // pruner), e.g. `topo vgg16_imagenet 0.98 implicit`; prints seconds per group and the
        // process's peak RSS. Classes: 1000 for the ImageNet models, else 10.
        guard args.count >= 4, let sparsity = Double(args[2]), ["implicit", "explicit"].contains(args[3]) else {
            fail("usage: topo MODEL SPARSITY implicit|explicit [paper|reference] [field,field,...]")
        }
        let compat = UnrollCompat(rawValue: args.count > 4 ? args[4] : "paper") ?? .paper
        let fields = args.count > 5 ? args[5].split(separator: ",").map(String.init) : Topometrics.fieldNames
        guard let arch = ModelZoo.build(args[1], classes: ModelZoo.imagenetNames.contains(args[1]) ? 1000 : 10) else { fail("unknown model \(args[1])") }
        let net = Network(architecture: arch, seed: 0)
        try prune(net, .erk, sparsity: sparsity, seed: 0)
        func peakMB() -> Double { var u = rusage(); getrusage(RUSAGE_SELF.rawValue, &u); return Double(u.ru_maxrss) / 1024 }
        let metricsCompat: MetricsCompat = compat == .paper ? .paper : .reference
        // MGE_LANCZOS_TRACE=1: the eigensolver prints its wanted Ritz pairs, products and
        // seconds per phase at every convergence test (the options are otherwise the default).
        var lanczos = LanczosOptions.wholeGraph
        if ProcessInfo.processInfo.environment["MGE_LANCZOS_TRACE"] == "1" { lanczos.trace = { print("    lanczos " + $0); fflush(stdout) } }
        let groups: [[String]] = [["sink_nodes", "source_nodes", "disconnected_nodes", "removable_out_edges", "removable_in_edges"],
                                  ["one_hop"], ["two_hop"], ["strength"], ["k_core"], ["components", "mean_component_size"],
                                  ["cut_edges", "cut_nodes"], ["motifs"], ["spectral_gap"], ["spectral_radius"]]
        var line = String(format: "model=%@ sparsity=%.3f form=%@ compat=%@ net_rss_MB=%.0f", args[1], sparsity, args[3], compat.rawValue, peakMB())
        var total = 0.0
        let compute: (Set<String>) throws -> Topometrics
        if args[3] == "implicit" {
            var built: ImplicitGraph?
            let t = try seconds { built = try ImplicitGraph(net, compat: compat) }
            guard let h = built else { fail("no graph") }
            total += t
            line += String(format: " nodes=%ld edges=%ld unroll_s=%.2f held_MB=%.1f explicit_MB=%.0f", h.nodeCount, h.edgeCount, t,
                           Double(h.byteSize) / 1_048_576, Double(h.explicitByteSize) / 1_048_576)
            compute = { try topometrics(h, compat: metricsCompat, only: $0, lanczos: lanczos) }
        } else {
            var built: Graph?
            let t = try seconds { built = try unroll(net, compat: compat) }
            guard let g = built else { fail("no graph") }
            total += t
            line += String(format: " nodes=%ld edges=%ld unroll_s=%.2f held_MB=%.0f", g.nodeCount, g.edgeCount, t, Double(g.byteSize) / 1_048_576)
            compute = { try topometrics(g, compat: metricsCompat, only: $0, lanczos: lanczos) }
        }
        print(line); fflush(stdout)
        for group in groups {
            let wanted = group.filter { fields.contains($0) }
            guard !wanted.isEmpty else { continue }
            var r: Topometrics?
            let t = try seconds { r = try compute(Set(wanted)) }
            total += t
            var out = "  " + wanted[0].padding(toLength: 20, withPad: " ", startingAt: 0)
                + String(format: " %9.2f s  peak_rss_MB=%.0f ", t, peakMB())
            if let r { for (name, v) in r.orderedFields where wanted.contains(name) { out += " \(name)=\(v)" } }
            print(out); fflush(stdout)
            for note in r?.notes ?? [] { print("    warning: " + note) }
        }
        print(String(format: "total_s=%.1f peak_rss_MB=%.0f", total, peakMB()))
    case "product", "spectral", "motifs":
        // `product MODEL SPARSITY`: seconds per block product of four vectors with the implicit
        // MGE's adjacency, as masked convolutions and as generated rows (and their difference);
        // `spectral MODEL SPARSITY gap|radius`: runs the whole-graph eigensolver printing the
        // products done and the time so far every 10 products. ERK masks, seed 0.
        guard args.count >= 3, let sparsity = Double(args[2]) else { fail("usage: \(command) MODEL SPARSITY [gap|radius]") }
        guard let arch = ModelZoo.build(args[1], classes: ModelZoo.imagenetNames.contains(args[1]) ? 1000 : 10) else { fail("unknown model \(args[1])") }
        let net = Network(architecture: arch, seed: 0)
        try prune(net, .erk, sparsity: sparsity, seed: 0)
        let g = try ImplicitGraph(net)
        print("model=\(args[1]) sparsity=\(sparsity) nodes=\(g.nodeCount) edges=\(g.edgeCount)"); fflush(stdout)
        if command == "motifs" {
            // `motifs MODEL SPARSITY ROOTS`: the RAND-ESU estimate on ROOTS sampled roots, and
            // the time the reference's ⌊0.001·n⌋ roots would take at that rate.
            let roots = args.count > 3 ? Int(args[3]) ?? 20 : 20
            var value: MetricValue?
            let t = seconds { value = motifValue(g, mode: .estimate(sample: .count(roots, seed: 0))) }
            print(String(format: "roots=%d seconds=%.1f per_root_s=%.3f reference_roots=%d extrapolated_s=%.0f", roots, t, t / Double(roots),
                         g.nodeCount / 1000, t / Double(roots) * Double(g.nodeCount / 1000)) + " estimate=\(value.map { "\($0)" } ?? "none")")
        } else if command == "product" {
            let r = blockProductSeconds(g)
            if let v = ProcessInfo.processInfo.environment["MGE_VECTORS"].flatMap(Int.init) {
                let one = blockProductSeconds(g, vectors: v)
                print(String(format: "vectors=%d conv_product_s=%@", v, one.convolutional.map { String(format: "%.3f", $0) } ?? "none"))
            }
            print(String(format: "conv_product_s=%@ row_product_s=%.3f relative_difference=%.2e", r.convolutional.map { String(format: "%.3f", $0) } ?? "none", r.rows, r.difference))
        } else {
            // (The gap fits the basis to the vectors it works on itself: one side's nodes on a
            // bipartite graph.)
            var lanczos = LanczosOptions.wholeGraph
            // Diagnostics: MGE_TOL / MGE_BASIS / MGE_MAX_RESTARTS / MGE_BLOCK / MGE_BRACKET override the options,
            // MGE_LANCZOS_TRACE=1 prints the wanted Ritz pairs at every convergence test.
            let env = ProcessInfo.processInfo.environment
            if let t = env["MGE_TOL"].flatMap(Double.init) { lanczos.tolerance = t }
            if let b = env["MGE_BASIS"].flatMap(Int.init) { lanczos.basisSize = b }
            if let r = env["MGE_MAX_RESTARTS"].flatMap(Int.init) { lanczos.maxRestarts = r }
            if let b = env["MGE_BLOCK"].flatMap(Int.init) { lanczos.blockSize = b }
            if let b = env["MGE_BRACKET"].flatMap(Double.init) { lanczos.bracketTolerance = b }
            if env["MGE_LANCZOS_TRACE"] == "1" { lanczos.trace = { print("  lanczos " + $0); fflush(stdout) } }
            let start = DispatchTime.now().uptimeNanoseconds
            var products = 0
            let observe: (Int) -> Void = { _ in
                products += 1
                if products % 10 == 0 {
                    print(String(format: "  products=%d elapsed_s=%.1f", products, Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9)); fflush(stdout)
                }
            }
            let value: String
            if args.count > 3 && args[3] == "radius" {
                var bracket = ""
                let radius = laplacianSpectralRadius(g, options: lanczos, observe: observe) { r in
                    bracket = String(format: " lower=%.10f upper=%.10f converged=%@", r.lowerBound ?? .nan, r.upperBound ?? .nan, r.converged ? "yes" : "no")
                }
                value = String(format: "spectral_radius=%.10f", radius) + bracket
            } else {
                value = "top_abs=\(topAbsEigenvalues(g, options: lanczos, observe: observe))"
            }
            print(String(format: "%@ basis=%d products=%d seconds=%.1f", value, lanczos.basisSize, products, Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9))
        }
    case "draw":
        guard args.count >= 2 else { fail("usage: draw FOLDER") }
        try drawFigures(into: args[1])
    default:
        fail("unknown command \(command)")
    }
} catch {
    fail("error: \(error)")
}
