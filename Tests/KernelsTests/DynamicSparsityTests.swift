import Foundation
import OracleSupport
import XCTest
@testable import Kernels

/// Dynamic sparse training against the originals (Tests/Fixtures/dst/make_reference.py: SNFS by
/// sparselearning's Masking as shipped, RigL by its rules, on the masked ResNet-20 and batches of
/// TrainingTests), and the run's bookkeeping, resume and refusals.
final class DynamicSparsityTests: XCTestCase {
    static let fixture = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("../Fixtures/dst/dst-reference.safetensors.zst").standardizedFileURL

    static func reference(_ url: URL = fixture) throws -> [String: SafeTensor] {
        let bytes = try OracleLocation.decompress(try Data(contentsOf: url), name: url.lastPathComponent)
        let entries = try SafeTensors.decode([UInt8](bytes), path: url.path)
        return Dictionary(entries.map { ($0.name, $0.tensor) }, uniquingKeysWith: { a, _ in a })
    }

    /// The reference's run: TrainingTests' masked ResNet-20 and 5 batches, 2 epochs, lr 0.01, constant.
    static func runReference(_ method: DSTMethod, epochs: Int = 2, every: Int = 3) throws -> (Network, TrainingResult) {
        let entries = try TrainingTests.reference()
        let net = Network(architecture: ModelZoo.resnet(depth: 20, classes: 10), seed: 9)
        try net.loadStateDict(TrainingTests.group(entries, "init"))
        try net.loadMasks(TrainingTests.group(entries, "masks"))
        let (xs, ys) = TrainingTests.batches()
        let data = try Dataset.fromTensors(xs, ys, classes: 10)
        var options = TrainingOptions.recipe(for: net.architecture, data: data)
        options.epochs = epochs; options.milestones = []; options.learningRate = 0.01
        var dst = DSTOptions.defaults(for: method)
        dst.updateEvery = every
        options.dst = dst
        return (net, try Trainer(network: net, data: data, options: options).run())
    }

    /// One update each: the masks agree but for float32 near-ties at the cut (measured 99.99%).
    func testOneSNFSAndRigLUpdateMatchesTheOriginals() throws {
        try compare(try Self.reference(), "one", epochs: 1, every: 5, updates: 1, agreement: 0.999, activeAgreement: 0.998)
    }

    /// Three updates over 10 steps. Here no float32 implementation can reach the 98%:
    /// PyTorch run again from initial weights perturbed by a float32 rounding (±1e-7 relative)
    /// agrees with itself at only ~96.8% (SNFS) and ~98.7% (RigL) of positions (float32 against
    /// float64: 96.8% / 98.5%) — the choices near the cut follow the rounding and every differing
    /// choice moves the weights the next update sees. So mge is held to PyTorch's own distance:
    /// at least as close to the reference as the perturbed reference, less one point (measured
    /// 97.2% SNFS, 97.8% RigL), every RigL layer count exact.
    func testThreeSNFSAndRigLUpdatesAreAsCloseToTheOriginalsAsTheOriginalsToThemselves() throws {
        try compare(try Self.reference(), "three", epochs: 2, every: 3, updates: 3, agreement: 0.96, activeAgreement: 0.83,
                    withinPerturbed: 0.01)
    }

    /// Share of positions where two sets of masks (by layer name) agree.
    static func agreement(_ a: [String: [UInt8]], _ b: [String: [UInt8]]) -> Double {
        var equal = 0, total = 0
        for (name, x) in a { guard let y = b[name] else { continue }; equal += zip(x, y).filter { $0 == $1 }.count; total += x.count }
        return Double(equal) / Double(max(total, 1))
    }

    func compare(_ reference: [String: SafeTensor], _ config: String, epochs: Int, every: Int, updates: Int,
                 agreement minimum: Double, activeAgreement minimumActive: Double, withinPerturbed: Double? = nil) throws {
        let reference = Dictionary(uniqueKeysWithValues: reference.filter { $0.key.hasPrefix(config + ".") }
            .map { (String($0.key.dropFirst(config.count + 1)), $0.value) })
        for method in [DSTMethod.snfs, .rigl] {
            let (net, result) = try Self.runReference(method, epochs: epochs, every: every)
            XCTAssertEqual(result.updates.count, updates, "\(method): updates")
            XCTAssertEqual(reference["\(method.rawValue).updates"]?.integers, [Int64(updates)])
            var kept = 0, expectedKept = 0
            var expectedMasks: [String: [UInt8]] = [:], perturbedMasks: [String: [UInt8]] = [:]
            for spec in net.architecture.prunable {
                let expected = try XCTUnwrap(reference["\(method.rawValue).\(spec.name)"], spec.name).bytes
                expectedMasks[spec.name] = expected
                perturbedMasks[spec.name] = reference["\(method.rawValue)-perturbed.\(spec.name)"]?.bytes
                let ours = try XCTUnwrap(net.masks[spec.name])
                let count = ours.reduce(0) { $0 + Int($1) }, expectedCount = expected.reduce(0) { $0 + Int($1) }
                kept += count; expectedKept += expectedCount
                if method == .rigl { XCTAssertEqual(count, expectedCount, "RigL keeps \(spec.name)'s count") }
                let w = try XCTUnwrap(net.parameters[spec.name]).data
                XCTAssertFalse(zip(w, ours).contains { $0.1 == 0 && $0.0 != 0 }, "\(spec.name): an inactive weight is not 0")
            }
            let agreement = Self.agreement(net.masks, expectedMasks)
            // Also over the active positions (most inactive ones agree trivially).
            var activeAgreement = 0, active = 0
            for (name, expected) in expectedMasks {
                for (a, b) in zip(try XCTUnwrap(net.masks[name]), expected) where a != 0 || b != 0 {
                    active += 1; if a == b { activeAgreement += 1 }
                }
            }
            let activeShare = Double(activeAgreement) / Double(active)
            print("DynamicSparsityTests: \(method) masks after \(updates) update(s) equal at \(agreement) of positions, \(activeShare) of the "
                + "positions active in either; kept \(kept) vs \(expectedKept)")
            XCTAssertGreaterThanOrEqual(agreement, minimum, "\(method)")
            XCTAssertGreaterThanOrEqual(activeShare, minimumActive, "\(method)")
            if let withinPerturbed {
                XCTAssertEqual(perturbedMasks.count, expectedMasks.count, "\(method): the fixture's perturbed run")
                let own = Self.agreement(perturbedMasks, expectedMasks)
                print("DynamicSparsityTests: \(method) PyTorch against itself perturbed by ±1e-7: \(own) of positions")
                XCTAssertGreaterThanOrEqual(agreement, own - withinPerturbed, "\(method): further from the original than its own rounding noise")
            }
            // SNFS's total drifts with its floor()ed, redistributed regrowth; RigL's never moves.
            if method == .rigl { XCTAssertEqual(kept, expectedKept) } else { XCTAssertLessThan(abs(kept - expectedKept), 30, "snfs: total kept") }
        }
    }

    /// 40 images, batch 16: 3 steps per epoch.
    static func run(_ method: DSTMethod, epochs: Int, every: Int = 2, checkpoint: String? = nil, net: Network? = nil,
                    observer: TrainingObserver? = nil) throws -> (Network, TrainingResult) {
        let data = TrainingTests.byteDataset()
        let net = try net ?? TrainingTests.prunedNet()
        var options = TrainingOptions.options(net, data, epochs: epochs)
        var dst = DSTOptions.defaults(for: method)
        dst.updateEvery = every
        options.dst = dst
        return (net, try Trainer(network: net, data: data, options: options, checkpoint: checkpoint).run(observer: observer))
    }

    func testEveryMethodMovesTheMasksAndRecordsEachUpdate() throws {
        let start = try TrainingTests.prunedNet()
        let startKept = start.masks.values.reduce(0) { $0 + $1.reduce(0) { $0 + Int($1) } }
        let total = start.masks.values.reduce(0) { $0 + $1.count }
        for method in DSTMethod.allCases {
            final class Watch: TrainingObserver {
                var calls: [(Int, Int)] = []
                func epochStarted(epoch: Int, of epochs: Int, batches: Int) {}
                func stepFinished(loss: Double, images: Int) {}
                func epochFinished(_ record: EpochRecord) {}
                func masksUpdated(_ record: DSTUpdateRecord, network: Network) throws {
                    calls.append((record.step, network.masks.values.reduce(0) { $0 + $1.reduce(0) { $0 + Int($1) } }))
                }
            }
            let watch = Watch()
            let (net, result) = try Self.run(method, epochs: 2, observer: watch)
            // 6 steps: sparselearning after steps 2, 4, 6; RigL at steps 0, 2, 4 (≤ 0.75·6).
            XCTAssertEqual(result.updates.map(\.step), method == .rigl ? [0, 2, 4] : [2, 4, 6], "\(method)")
            XCTAssertEqual(watch.calls.map(\.0), result.updates.map(\.step), "\(method): one observation per update")
            XCTAssertEqual(watch.calls.map(\.1), result.updates.map(\.kept), "\(method): the observed net holds the update's masks")
            var previous = Double(startKept) / Double(total)
            for u in result.updates {
                XCTAssertGreaterThanOrEqual(u.explored, previous, "\(method): explored never decreases")
                previous = u.explored
                XCTAssertGreaterThan(u.grown, 0, "\(method): connections grow")
                XCTAssertEqual(u.turnover, Double(u.grown) / Double(u.kept), accuracy: 1e-12)
            }
            XCTAssertGreaterThan(previous, Double(startKept) / Double(total), "\(method): explored grows")
            let kept = net.masks.values.reduce(0) { $0 + $1.reduce(0) { $0 + Int($1) } }
            XCTAssertEqual(kept, result.updates.last?.kept)
            XCTAssertTrue(net.masks != start.masks, "\(method): the net holds the moved masks")
            if method == .rigl || method == .itop {
                for (name, mask) in net.masks {
                    XCTAssertEqual(mask.reduce(0) { $0 + Int($1) }, start.masks[name]?.reduce(0) { $0 + Int($1) }, "\(method) \(name)")
                }
            } else {
                XCTAssertLessThan(abs(kept - startKept), startKept / 50, "\(method): the kept count stays about the same")
            }
            for (name, mask) in net.masks {
                let w = try XCTUnwrap(net.parameters[name]).data
                XCTAssertFalse(zip(w, mask).contains { $0.1 == 0 && $0.0 != 0 }, "\(method) \(name): an inactive weight is not 0")
            }
        }
    }

    func testResumedDSTRunIsBitIdenticalToAnUninterruptedOne() throws {
        final class StopInSecondEpoch: TrainingObserver {
            var steps = 0
            func epochStarted(epoch: Int, of epochs: Int, batches: Int) {}
            func stepFinished(loss: Double, images: Int) { steps += 1; if steps == 5 { Cancellation.request() } }
            func epochFinished(_ record: EpochRecord) {}
        }
        defer { Cancellation.reset() }
        for method in [DSTMethod.snfs, .rigl, .dsr] {
            let (straight, uninterrupted) = try Self.run(method, epochs: 2)
            let path = NSTemporaryDirectory() + "mge-dst-\(getpid())-\(method).ckpt"
            defer { try? FileManager.default.removeItem(atPath: path) }
            try? FileManager.default.removeItem(atPath: path)
            // Interrupted in epoch 2 (after the update at step 4): the net and the checkpoint keep epoch 1.
            let interrupted = try TrainingTests.prunedNet()
            let startMasks = interrupted.masks
            XCTAssertThrowsError(try Self.run(method, epochs: 2, checkpoint: path, net: interrupted, observer: StopInSecondEpoch())) {
                XCTAssertTrue($0 is InterruptedError, "\($0)")
            }
            Cancellation.reset()
            XCTAssertNotEqual(interrupted.masks, startMasks, "\(method): epoch 1's update is in the net")
            let (resumedNet, resumed) = try Self.run(method, epochs: 2, checkpoint: path)
            XCTAssertEqual(resumed.resumedEpochs, 1, "\(method)")
            XCTAssertEqual(resumed.updates, uninterrupted.updates, "\(method)")
            XCTAssertTrue(resumedNet.masks == straight.masks, "\(method): masks differ after resuming")
            for spec in straight.architecture.parameters {
                XCTAssertTrue(resumedNet.parameters[spec.name]?.data == straight.parameters[spec.name]?.data, "\(method) \(spec.name) differs")
            }
            // The finished run's net (holding the final masks) is recognised by the checkpoint.
            var options = TrainingOptions.options(resumedNet, TrainingTests.byteDataset(), epochs: 2)
            var dst = DSTOptions.defaults(for: method)
            dst.updateEvery = 2
            options.dst = dst
            XCTAssertEqual(try Trainer(network: resumedNet, data: TrainingTests.byteDataset(), options: options, checkpoint: path).completedEpochs, 2)
        }
    }

    func testBadSettingsAreRefusedBeforeAnyStep() throws {
        let data = TrainingTests.byteDataset()
        let net = try TrainingTests.prunedNet()
        let before = net.parameters, masks = net.masks
        func refused(_ change: (inout DSTOptions) -> Void, network: Network? = nil, _ expected: String) {
            var options = TrainingOptions.options(net, data, epochs: 1)
            var dst = DSTOptions.defaults(for: .rigl)
            change(&dst)
            options.dst = dst
            XCTAssertThrowsError(try Trainer(network: network ?? net, data: data, options: options)) {
                XCTAssertTrue("\($0)".contains(expected), "\($0)")
            }
        }
        refused({ $0.updateEvery = 0 }, "update_every must be at least 1")
        refused({ $0.drop = 0 }, "drop must be in (0, 1)")
        refused({ $0.drop = 1 }, "drop must be in (0, 1)")
        refused({ $0.until = 0 }, "until must be in (0, 1]")
        refused({ $0.until = 1.5 }, "until must be in (0, 1]")
        refused({ $0.redistribution = .momentum }, "redistribution must be")
        refused({ $0.prune = .negativity }, "prune: \"negativity\" is sparselearning's per-layer SET prune")
        refused({ _ in }, network: Network(architecture: ModelZoo.resnet(depth: 20, classes: 10), seed: 3), "needs a pruned network")
        XCTAssertEqual(net.masks, masks)
        for (name, t) in before { XCTAssertEqual(net.parameters[name]?.data, t.data, name) }
    }

    /// sparselearning's magnitude_and_negativity_prune as shipped (SET's default): r = ceil(0.7·6)
    /// = 5; the ceil(2 + 2.5) = 5 smallest |w| go (the two inactive, 0.05, 0.1, −0.2), then all
    /// but the ceil(2.5) = 3 most negative (−0.4, −0.2, −0.05): only −0.4 stays.
    func testSETPrunesAsSparselearningShipsIt() {
        var mask: [Float] = [1, 1, 1, 1, 1, 1, 0, 0]
        DSTState.negativityPrune(&mask, [0.5, -0.4, 0.3, -0.2, 0.1, -0.05, 0, 0], zeros: 2, numRemove: 5)
        XCTAssertEqual(mask, [0, 1, 0, 0, 0, 0, 0, 0])
        XCTAssertEqual(DSTOptions.defaults(for: .set).prune, .negativity)
        XCTAssertEqual(DSTOptions.defaults(for: .snfs).prune, .magnitude)
    }

    func testSparselearningCosineDecayFollowsPyTorchsRecursion() {
        // CosineAnnealingLR(0.5, T_max 10, eta_min 0.005): closed form within rounding.
        var state = DSTState(options: DSTOptions.defaults(for: .snfs), masks: ["w": [1, 0]])
        for step in 1 ... 10 {
            _ = state.maskingStepTaken(totalSteps: 10)
            let closed = 0.005 + (0.5 - 0.005) * (1 + cos(Double.pi * Double(step) / 10)) / 2
            XCTAssertEqual(state.rate, closed, accuracy: 1e-12, "step \(step)")
        }
    }
}

private extension TrainingOptions {
    static func options(_ net: Network, _ data: Dataset, epochs: Int) -> TrainingOptions {
        TrainingTests.options(net, data, epochs: epochs)
    }
}
