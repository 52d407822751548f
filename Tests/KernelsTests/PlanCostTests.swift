import XCTest
@testable import Kernels

/// `--plan`'s cost model: the counts it multiplies are the graph's own, and its stages grow
/// with the work they count. No timings: the model is a fixed function.
final class PlanCostTests: XCTestCase {
    /// The plan's counts of a pruned ResNet-20 are those of the unrolled graph, exactly, for a
    /// data-free pruner and for SNIP on a batch.
    func testFeaturesCountTheUnrolledGraphExactly() throws {
        let architecture = try XCTUnwrap(ModelZoo.build("resnet20", classes: 10))
        let data = try Dataset.synthetic(classes: 10, n: 32, seed: 0)
        for (pruner, sparsity) in [(Pruner.erk, 0.98), (.snip(), 0.99)] {
            let net = Network(architecture: architecture, seed: 0)
            try prune(net, pruner, sparsity: sparsity, seed: 0, data: data)
            let f = try PlanFeatures(net)
            let g = try unroll(net)
            XCTAssertEqual(f.edges, Double(g.edgeCount), pruner.name)
            XCTAssertEqual(f.nodes, Double(g.nodeCount), pruner.name)
            XCTAssertEqual(f.kept, Double(architecture.prunable.reduce(0) { $0 + net.kept($1.name) }), pruner.name)
            XCTAssertEqual(f.weights, Double(architecture.prunable.reduce(0) { $0 + $1.count }), pruner.name)
        }
    }

    /// More kept weights cost more in every stage that depends on them; the same network twice
    /// gives the same figures; a gradient pruner's scoring costs more than selecting at random.
    func testStagesGrowWithTheWorkTheyCount() throws {
        let architecture = try XCTUnwrap(ModelZoo.build("resnet20", classes: 10))
        func features(_ sparsity: Double) throws -> PlanFeatures {
            let net = Network(architecture: architecture, seed: 0)
            try prune(net, .uniform, sparsity: sparsity, seed: 0)
            return try PlanFeatures(net)
        }
        let dense = try features(0.5), sparse = try features(0.99)
        XCTAssertEqual(try features(0.99), sparse)
        XCTAssertGreaterThan(dense.edges, sparse.edges)
        XCTAssertEqual(dense.nodes, sparse.nodes)
        XCTAssertGreaterThan(PlanCost.unroll(dense), PlanCost.unroll(sparse))
        XCTAssertGreaterThan(PlanCost.topometrics(dense, model: "resnet20", pruner: "uniform"),
                             PlanCost.topometrics(sparse, model: "resnet20", pruner: "uniform"))
        // At 0.5 every conv runs dense: the kernel model's cost per image is higher than at 0.99.
        XCTAssertGreaterThan(dense.trainKernelNs, sparse.trainKernelNs)
        XCTAssertGreaterThan(PlanCost.trainPerImage(dense), PlanCost.trainPerImage(sparse))
        XCTAssertGreaterThan(PlanCost.trainPerImage(sparse), PlanCost.evaluatePerImage(sparse))
        XCTAssertGreaterThan(PlanCost.prune(sparse, pruner: "snip", images: 128), PlanCost.prune(sparse, pruner: "uniform", images: 0))
        XCTAssertGreaterThan(PlanCost.build(sparse), 0)
        XCTAssertTrue(PlanCost.isCalibrated(model: "resnet20", pruner: "uniform"))
        XCTAssertFalse(PlanCost.isCalibrated(model: "resnet20", pruner: "no such pruner"))
    }
}
