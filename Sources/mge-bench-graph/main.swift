// Benchmarks for the unrolled graph encoding and its storage; driven by scripts/bench-graph.
//
//   mge-bench-graph unroll MODEL SPARSITY [paper|reference]
//   mge-bench-graph store MODEL SPARSITY FOLDER
//   mge-bench-graph draw FOLDER
//
// Masks are ER-style: layer l keeps each weight with probability min(1, ε·Σshape/Πshape),
// ε found by bisection so the expected kept count is (1 − sparsity)·N; seeded, so every run
// builds the same graph.
import Foundation
import Kernels

func fail(_ message: String) -> Never {
    FileHandle.standardError.write(Data((message + "\n").utf8))
    exit(2)
}

func seconds(_ body: () throws -> Void) rethrows -> Double {
    let start = DispatchTime.now().uptimeNanoseconds
    try body()
    return Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
}

func erPruned(_ model: String, sparsity: Double, seed: UInt64 = 0) throws -> Network {
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
        let p = min(1, lo * r)
        try net.setMask(spec.name, (0 ..< spec.count).map { _ in rng.uniform() < p ? 1 : 0 })
    }
    return net
}

let args = Array(CommandLine.arguments.dropFirst())
guard let command = args.first else { fail("usage: mge-bench-graph unroll|store|draw ...") }
do {
    switch command {
    case "unroll":
        guard args.count >= 3, let sparsity = Double(args[2]) else { fail("usage: unroll MODEL SPARSITY [paper|reference]") }
        guard let compat = UnrollCompat(rawValue: args.count > 3 ? args[3] : "paper") else { fail("compat is paper or reference") }
        let net = try erPruned(args[1], sparsity: sparsity)
        var graph: Graph?
        let t = try seconds { graph = try unroll(net, compat: compat) }
        guard let g = graph else { fail("no graph") }
        print(String(format: "model=%@ sparsity=%.2f compat=%@ nodes=%d edges=%d unroll_s=%.3f bytes_per_edge=%.2f graph_MB=%.1f",
                     args[1], sparsity, compat.rawValue, g.nodeCount, g.edgeCount, t,
                     Double(g.byteSize) / Double(max(1, g.edgeCount)), Double(g.byteSize) / 1_048_576))
    case "store":
        guard args.count >= 4, let sparsity = Double(args[2]) else { fail("usage: store MODEL SPARSITY FOLDER") }
        let g = try unroll(try erPruned(args[1], sparsity: sparsity))
        let path = args[3] + "/bench-\(args[1])-\(sparsity).mgeg"
        defer { unlink(path) }
        let save = try seconds { try g.save(to: path) }
        var back: Graph?
        let load = try seconds { back = try Graph.load(from: path) }
        guard let loaded = back, loaded.edgeCount == g.edgeCount, loaded.outTargets == g.outTargets else { fail("round trip differs") }
        let size = (try FileManager.default.attributesOfItem(atPath: path)[.size] as? Int) ?? 0
        let payload = 4 * g.nodeCount + 6 * g.edgeCount
        print(String(format: "model=%@ sparsity=%.2f edges=%d file_MB=%.1f file_bytes_per_edge=%.2f ratio_vs_payload=%.2f ratio_vs_memory=%.2f save_s=%.3f load_s=%.3f save_Medges_per_s=%.1f load_Medges_per_s=%.1f",
                     args[1], sparsity, g.edgeCount, Double(size) / 1_048_576, Double(size) / Double(max(1, g.edgeCount)),
                     Double(payload) / Double(size), Double(g.byteSize) / Double(size), save, load,
                     Double(g.edgeCount) / save / 1e6, Double(g.edgeCount) / load / 1e6))
    default:
        fail("unknown command \(command)")
    }
} catch {
    fail("error: \(error)")
}
