import XCTest
@testable import Kernels

/// The random pruners in the default (paper) mode keep exactly round(p·n) weights of every layer,
/// so the sparsity asked is the sparsity got even on a small net; their masks are seeded and
/// deterministic, and a `sequential` net's layer names change neither its initial weights nor
/// its masks.
final class RandomPrunerCountTests: XCTestCase {
    func testRandomPrunersKeepExactlyTheAskedCountPerLayer() throws {
        for architecture in [ThreadCountTests.network(seed: 0).architecture, try XCTUnwrap(ModelZoo.build("resnet20", classes: 10))] {
            for pruner in [Pruner.uniform, .er, .erk] {
                for sparsity in [0.5, 0.8, 0.98] {
                    let net = Network(architecture: architecture, seed: 1)
                    let report = try prune(net, pruner, sparsity: sparsity, seed: 3)
                    for row in report.layers {
                        let p = try XCTUnwrap(row.probability, "\(pruner) \(row.parameter)")
                        let expected = Int((p * Double(row.params)).rounded(.toNearestOrEven))
                        XCTAssertEqual(row.kept, expected, "\(architecture.name) \(pruner.name) \(sparsity) \(row.parameter): p = \(p)")
                        XCTAssertEqual(net.masks[row.parameter]?.reduce(0) { $0 + Int($1) }, row.kept)
                    }
                    if case .uniform = pruner {
                        for row in report.layers { XCTAssertEqual(row.probability ?? -1, 1 - sparsity, accuracy: 1e-12) }
                    }
                    // Rounding per layer: the total is within half a weight per layer of k·N.
                    let asked = (1 - sparsity) * Double(report.params)
                    XCTAssertLessThanOrEqual(abs(Double(report.kept) - asked), 0.5 * Double(report.layers.count) + 1e-9,
                                             "\(architecture.name) \(pruner.name) \(sparsity)")
                }
            }
        }
    }

    func testExactCountMasksAreSeededAndDeterministic() throws {
        let architecture = ThreadCountTests.network(seed: 0).architecture
        for pruner in [Pruner.uniform, .er, .erk] {
            let a = Network(architecture: architecture, seed: 1), b = Network(architecture: architecture, seed: 1)
            let c = Network(architecture: architecture, seed: 1)
            try prune(a, pruner, sparsity: 0.9, seed: 4)
            try prune(b, pruner, sparsity: 0.9, seed: 4)
            try prune(c, pruner, sparsity: 0.9, seed: 5)
            XCTAssertTrue(a.masks == b.masks, "\(pruner.name): same seed, same masks")
            XCTAssertFalse(a.masks == c.masks, "\(pruner.name): another seed, other masks")
        }
    }

    /// The reference's draws stay under compat: reference (a Bernoulli draw per weight for er
    /// and erk): on a small layer the kept count then differs from round(p·n) for some seed.
    func testReferenceModeKeepsTheBernoulliDraw() throws {
        let architecture = ThreadCountTests.network(seed: 0).architecture
        var differs = false
        for seed in 0 ..< 8 {
            let net = Network(architecture: architecture, seed: 1)
            let report = try prune(net, .erk, sparsity: 0.8, seed: UInt64(seed), options: PruneOptions(compat: .reference))
            for row in report.layers where row.kept != Int(((row.probability ?? 0) * Double(row.params)).rounded(.toNearestOrEven)) {
                differs = true
            }
        }
        XCTAssertTrue(differs, "a Bernoulli draw over 8 seeds should miss round(p·n) on some layer")
    }

    func testLayerNamesChangeNeitherInitialWeightsNorMasks() throws {
        func modules(named: Bool) -> [SequentialModule] {
            [.conv(inChannels: 1, outChannels: 4, kernel: 3, stride: 1, padding: 1, groups: 1, bias: true, name: named ? "first" : nil),
             .batchNorm(name: named ? "norm" : nil), .relu, .flatten,
             .linear(inFeatures: 64, outFeatures: 3, bias: true, name: named ? "out" : nil)]
        }
        let plain = try ModelZoo.sequential(modules(named: false), input: [1, 4, 4])
        let named = try ModelZoo.sequential(modules(named: true), input: [1, 4, 4])
        XCTAssertEqual(named.parameters.map(\.name).first, "first.weight")
        for pruner in [Pruner.uniform, .er, .erk] {
            let a = Network(architecture: plain, seed: 2), b = Network(architecture: named, seed: 2)
            XCTAssertEqual(a.architecture.parameters.map { a.parameters[$0.name]?.data ?? [] },
                           b.architecture.parameters.map { b.parameters[$0.name]?.data ?? [] }, "initial state dict")
            try prune(a, pruner, sparsity: 0.7, seed: 5)
            try prune(b, pruner, sparsity: 0.7, seed: 5)
            XCTAssertEqual(a.architecture.prunable.map { a.masks[$0.name] ?? [] }, b.architecture.prunable.map { b.masks[$0.name] ?? [] },
                           "\(pruner.name) masks")
        }
    }
}
