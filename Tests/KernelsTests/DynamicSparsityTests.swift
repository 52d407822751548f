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
    static func referenceRun(_ method: DSTMethod, epochs: Int = 2, every: Int = 3) throws -> (Network, TrainingResult) {
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

    /// One update each: the masks agree but for float32 near-ties at the cut (measured 99.98%).
    func testOneSNFSAndRigLUpdateMatchesTheOriginals() throws {
        try compare(try Self.reference(), "one", epochs: 1, every: 5, updates: 1, agreement: 0.999, activeAgreement: 0.998)
    }

    /// Three updates over 10 steps: float32 differences between two implementations grow with the
    /// SGD steps between updates (the losses stay within 1e-3 of PyTorch's) and move choices near
    /// the cut; measured 97.8% (RigL) and 96.9-97.1% (SNFS; it varies with the timed conv kernel choice) of
    /// positions, every RigL layer count exact.
    func testThreeSNFSAndRigLUpdatesStayCloseToTheOriginals() throws {
        try compare(try Self.reference(), "three", epochs: 2, every: 3, updates: 3, agreement: 0.96, activeAgreement: 0.83)
    }

    func compare(_ reference: [String: SafeTensor], _ config: String, epochs: Int, every: Int, updates: Int,
                 agreement minimum: Double, activeAgreement minimumActive: Double) throws {
        let reference = Dictionary(uniqueKeysWithValues: reference.filter { $0.key.hasPrefix(config + ".") }
            .map { (String($0.key.dropFirst(config.count + 1)), $0.value) })
        for method in [DSTMethod.snfs, .rigl] {
            let (net, result) = try Self.referenceRun(method, epochs: epochs, every: every)
            XCTAssertEqual(result.updates.count, updates, "\(method): updates")
            XCTAssertEqual(reference["\(method.rawValue).updates"]?.integers, [Int64(updates)])
            var equal = 0, total = 0, kept = 0, expectedKept = 0
            for spec in net.architecture.prunable {
                let expected = try XCTUnwrap(reference["\(method.rawValue).\(spec.name)"], spec.name).bytes
                let ours = try XCTUnwrap(net.masks[spec.name])
                equal += zip(ours, expected).filter { $0 == $1 }.count
                total += ours.count
                let count = ours.reduce(0) { $0 + Int($1) }, expectedCount = expected.reduce(0) { $0 + Int($1) }
                kept += count; expectedKept += expectedCount
                if method == .rigl { XCTAssertEqual(count, expectedCount, "RigL keeps \(spec.name)'s count") }
                let w = try XCTUnwrap(net.parameters[spec.name]).data
                XCTAssertFalse(zip(w, ours).contains { $0.1 == 0 && $0.0 != 0 }, "\(spec.name): an inactive weight is not 0")
            }
            // Masks are compared over the active positions (most inactive ones agree trivially).
            let agreement = Double(equal) / Double(total)
            var activeAgreement = 0, active = 0
            for spec in net.architecture.prunable {
                let expected = try XCTUnwrap(reference["\(method.rawValue).\(spec.name)"]).bytes
                for (a, b) in zip(try XCTUnwrap(net.masks[spec.name]), expected) where a != 0 || b != 0 {
                    active += 1; if a == b { activeAgreement += 1 }
                }
            }
            let activeShare = Double(activeAgreement) / Double(active)
            print("DynamicSparsityTests: \(method) masks after \(updates) update(s) equal at \(agreement) of positions, \(activeShare) of the "
                + "positions active in either; kept \(kept) vs \(expectedKept)")
            XCTAssertGreaterThanOrEqual(agreement, minimum, "\(method)")
            XCTAssertGreaterThanOrEqual(activeShare, minimumActive, "\(method)")
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
        refused({ _ in }, network: Network(architecture: ModelZoo.resnet(depth: 20, classes: 10), seed: 3), "needs a pruned network")
        XCTAssertEqual(net.masks, masks)
        for (name, t) in before { XCTAssertEqual(net.parameters[name]?.data, t.data, name) }
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
