import XCTest
@testable import Kernels

/// Pruning one network several times: each prune replaces the masks as on a fresh network,
/// unless asked to continue from the current masks; masks, weights and reports agree.
final class PruneSemanticsTests: XCTestCase {
    private func resnet20(seed: UInt64 = 0) -> Network { Network(architecture: ModelZoo.resnet(depth: 20, classes: 10), seed: seed) }

    private func assertSameState(_ a: Network, _ b: Network, file: StaticString = #filePath, line: UInt = #line) {
        for spec in a.architecture.parameters {
            XCTAssertEqual(a.parameters[spec.name], b.parameters[spec.name], spec.name, file: file, line: line)
            XCTAssertEqual(a.masks[spec.name], b.masks[spec.name], spec.name, file: file, line: line)
        }
    }

    func testRepruningGivesWhatAFreshNetGives() throws {
        // Random then random (the uniform 0.98 → erk 0.5).
        let net = resnet20()
        try prune(net, .uniform, sparsity: 0.98)
        let report = try prune(net, .erk, sparsity: 0.5)
        let fresh = resnet20()
        let freshReport = try prune(fresh, .erk, sparsity: 0.5)
        assertSameState(net, fresh)
        XCTAssertEqual(report.kept, freshReport.kept)
        XCTAssertEqual(net.keptCount, report.kept)
        // Every kept weight is nonzero again (Kaiming draws are never exactly 0), so the graph sees them.
        for spec in net.architecture.prunable {
            let w = net.parameters[spec.name]!.data, m = net.masks[spec.name]!
            XCTAssertFalse(zip(w, m).contains { $1 == 1 && $0 == 0 }, spec.name)
        }
        // Scored, three times (as snip → erk → synflow): the last equals the fresh one.
        let scored = resnet20(seed: 3)
        try prune(scored, scoring: MagnitudeScore(keepRule: .keepTopCeilExact), name: "magnitude", sparsity: 0.99)
        try prune(scored, .erk, sparsity: 0.9)
        try prune(scored, scoring: MagnitudeScore(keepRule: .iterativeRemoveLowest(rounds: 4)), name: "magnitude", sparsity: 0.95)
        let freshScored = resnet20(seed: 3)
        try prune(freshScored, scoring: MagnitudeScore(keepRule: .iterativeRemoveLowest(rounds: 4)), name: "magnitude", sparsity: 0.95)
        assertSameState(scored, freshScored)
        // dense restores every weight.
        try prune(scored, .dense, sparsity: 0)
        assertSameState(scored, resnet20(seed: 3))
    }

    func testFromCurrentPrunesASubsetToTheTarget() throws {
        for rule in [KeepRule.keepTopFloorWithTies, .removeTopFloorKeepThreshold, .keepTopCeilExact, .iterativeRemoveLowest(rounds: 3)] {
            let net = resnet20(seed: 1)
            try prune(net, .erk, sparsity: 0.5, seed: 4)
            let before = net.masks
            let n = net.prunableCount
            let report = try prune(net, scoring: MagnitudeScore(keepRule: rule), name: "magnitude", sparsity: 0.9,
                                   options: PruneOptions(from: .current))
            for spec in net.architecture.prunable {
                XCTAssertFalse(zip(net.masks[spec.name]!, before[spec.name]!).contains { $0 == 1 && $1 == 0 }, "\(rule) revived a weight in \(spec.name)")
            }
            XCTAssertEqual(Double(report.kept), Double(n) * 0.1, accuracy: 2, "\(rule)")
            XCTAssertEqual(report.kept, net.keptCount)
        }
        let net = resnet20()
        try prune(net, .erk, sparsity: 0.9)
        let masks = net.masks
        XCTAssertThrowsError(try prune(net, .erk, sparsity: 0.95, options: PruneOptions(from: .current))) {
            XCTAssertTrue("\($0)".contains("at random"), "\($0)")
        }
        XCTAssertThrowsError(try prune(net, scoring: MagnitudeScore(keepRule: .keepTopCeilExact), name: "magnitude", sparsity: 0.5,
                                       options: PruneOptions(from: .current))) {
            XCTAssertTrue("\($0)".contains("only prune further"), "\($0)")
        }
        XCTAssertEqual(net.masks, masks)
    }

    func testLoadedWeightsAreWhatAFreshPruneStartsFrom() throws {
        let source = resnet20(seed: 7)
        let net = resnet20(seed: 0)
        try prune(net, .erk, sparsity: 0.9)
        try net.loadStateDict(source.stateDict())
        XCTAssertEqual(net.keptCount, Int(net.masks.values.reduce(0) { $0 + $1.reduce(0) { $0 + Int($1) } }))
        try prune(net, .uniform, sparsity: 0.5)
        let fresh = resnet20(seed: 7)
        try prune(fresh, .uniform, sparsity: 0.5)
        assertSameState(net, fresh)
    }

    /// ER (paper) gives back what capped layers cannot take, so totals are on target for every
    /// random pruner; reference ER keeps its shortfall and says so.
    func testRandomPrunersKeepTheTargetCount() throws {
        let arch = ModelZoo.resnet(depth: 20, classes: 10)
        for (pruner, s) in [(Pruner.er, 0.9), (.er, 0.6), (.erk, 0.9), (.erk, 0.98), (.uniform, 0.9)] {
            for seed in 0 ..< 3 as Range<UInt64> {
                let r = try prune(Network(architecture: arch, seed: 0), pruner, sparsity: s, seed: seed)
                XCTAssertLessThanOrEqual(abs(Double(r.kept) - r.target), r.tolerance, "\(pruner.name) \(s) seed \(seed)")
                XCTAssertEqual(r.warnings, [], "\(pruner.name) \(s)")
            }
        }
        let shapes = RandomPruners.weightShapes(arch)
        let p = try RandomPruners.erProbabilities(shapes, sparsity: 0.9, compat: .paper).probabilities
        let expected = shapes.reduce(0.0) { $0 + min(1, p[$1.name]!) * Double($1.shape.reduce(1, *)) }
        XCTAssertEqual(expected, 0.1 * 270_896, accuracy: 1e-6)
        let reference = try prune(Network(architecture: arch, seed: 0), .er, sparsity: 0.9, options: PruneOptions(compat: .reference))
        XCTAssertLessThan(Double(reference.kept), reference.target - reference.tolerance)
        XCTAssertTrue(reference.warnings.contains { $0.hasPrefix("kept \(reference.kept) weights where sparsity 0.9 asks for 27090") }, "\(reference.warnings)")
        let empty = try prune(Network(architecture: arch, seed: 0), .erk, sparsity: 0.9999999)
        XCTAssertEqual(empty.kept, 0)
        XCTAssertEqual(empty.warnings.first, "no layer keeps any weight: the network is empty")
    }
}
