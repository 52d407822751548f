import Foundation
import Kernels

// Training and evaluation: `train(net, data, …)` with SPEC §5's recipe as defaults, `evaluate(net, data)`.

let trainingBuiltins: [Builtin] = [
    Builtin("train", [Param("net", .native("network")), Param("data", .native("dataset")),
                      Param("epochs", .optional(.int), default: Value.none), Param("lr", .optional(.float), default: Value.none),
                      Param("momentum", .optional(.float), default: Value.none), Param("weight_decay", .optional(.float), default: Value.none),
                      Param("milestones", .optional(.list), default: Value.none), Param("gamma", .optional(.float), default: Value.none),
                      Param("batch", .optional(.int), default: Value.none), Param("seed", .int, default: .int(0)),
                      Param("augment", .optional(.bool), default: Value.none), Param("shuffle", .optional(.bool), default: Value.none),
                      Param("test", .optional(.native("dataset")), default: Value.none),
                      Param("checkpoint", .optional(.string), default: Value.none), Param("resume", .bool, default: .bool(true)),
                      Param("steps", .bool, default: .bool(false))],
            returns: "record",
            summary: "Trains net on data with SGD as PyTorch's optim.SGD + MultiStepLR (SPEC §5 defaults: lr 0.1, momentum 0.9, batch 128, "
                + "weight_decay 1e-4 (5e-4 for WRN-28-2) on every parameter, 160 epochs with x0.1 (gamma) at milestones [80, 120]; "
                + "TinyImageNet 100 epochs, [30, 60, 80]), BN in training mode, shuffled, the dataset's own augmentation (crop + flip on "
                + "training splits; augment: false turns it off). Pruned weights stay exactly 0. test: a dataset evaluated after each epoch. "
                + "checkpoint: a file written atomically after every epoch; the same call again resumes from it (resume: false starts afresh "
                + "and overwrites it). steps: true adds "
                + "step_losses. Datasets made by dataset(...) are served as given, in order. Returns {epochs, table, step_losses}; "
                + "Ctrl-C stops at the next batch, the net and the checkpoint keep the last finished epoch.",
            example: "r = train(net, cifar10(), epochs: 2, test: cifar10(split: \"test\"), checkpoint: \"run.ckpt\");  r.table") { args in
        let net = try args.native("net", as: NetworkObject.self)
        let data = try args.native("data", as: DatasetObject.self).dataset
        let options = try trainingOptions(args, net.network, data)
        var test: Dataset?
        if let value = args.optional("test"), case .native(let object as DatasetObject) = value { test = object.dataset }
        var checkpoint: String?
        if args.optional("checkpoint") != nil { checkpoint = try filePath(args, "checkpoint") }
        let trainer: Trainer
        do {
            trainer = try Trainer(network: net.network, data: data, options: options, test: test, checkpoint: checkpoint,
                                  resume: try args.bool("resume"))
        } catch let error as TrainingError {
            switch error {
            case .checkpoint, .unwritableCheckpoint: throw args.bad("checkpoint", error.description)
            default: throw RuntimeError("train: \(error)")
            }
        }
        if trainer.completedEpochs > 0, let checkpoint {
            args.interpreter.writeError("train: resuming from \(checkpoint) after epoch \(trainer.completedEpochs) of \(options.epochs)\n")
        }
        let observer = TrainingProgress()
        let result: TrainingResult
        do {
            result = try trainer.run(observer: observer)
        } catch let error as TrainingError {
            observer.close()
            throw RuntimeError("train: \(error)")
        } catch let error as InterruptedError {
            observer.close()
            let done = trainer.completedEpochs
            let kept = done == 0 ? "no epoch finished; the network is unchanged"
                : "the network holds epoch \(done)" + (checkpoint.map { " as does \($0)" } ?? "")
            args.interpreter.writeError("train: interrupted; \(kept)\n")
            throw error
        }
        observer.close()
        var record = Record([("epochs", .int(result.history.count)), ("table", .native(TableObject(trainingTable(result.history))))])
        if options.recordsSteps { record["step_losses"] = .list(result.stepLosses.map(Value.float)) }
        if let checkpoint { record["checkpoint"] = .string(checkpoint) }
        return .record(record)
    },
    Builtin("evaluate", [Param("net", .native("network")), Param("data", .native("dataset"))], returns: "record",
            summary: "Accuracy and mean cross-entropy of net on every sample of data, BN in evaluation mode (running statistics), never "
                + "augmented: {accuracy, loss, n}.",
            example: "evaluate(net, cifar10(split: \"test\"))  # {accuracy: 0.91…, loss: 0.3…, n: 10000}") { args in
        let net = try args.native("net", as: NetworkObject.self).network
        let data = try args.native("data", as: DatasetObject.self).dataset
        let progress = ProgressBar(label: "evaluate", total: data.count, unit: "images")
        defer { progress.finish() }
        let result: EvaluationResult
        do {
            result = try Evaluation.evaluate(net, on: data) { progress.advance(by: $0) }
        } catch let error as TrainingError {
            throw args.bad("data", error.description)
        }
        return .record(Record([("accuracy", .float(result.accuracy)), ("loss", .float(result.loss)), ("n", .int(result.count))]))
    },
]

/// The recipe for the net and data with the call's keywords applied; bad values blamed on their keyword.
private func trainingOptions(_ args: Arguments, _ network: Network, _ data: Dataset) throws -> TrainingOptions {
    var options = TrainingOptions.recipe(for: network.architecture, data: data)
    if case .int(let epochs)? = args.optional("epochs") {
        guard epochs >= 1, epochs <= 1_000_000 else { throw args.bad("epochs", "epochs must be in 1...1000000, got \(epochs)") }
        options.epochs = epochs
    }
    func positive(_ name: String, allowZero: Bool = false, below: Double = .infinity) throws -> Double? {
        guard let value = args.optional(name)?.asDouble else { return nil }
        guard value.isFinite, allowZero ? value >= 0 : value > 0, value < below else {
            let range = (allowZero ? ">= 0" : "> 0") + (below.isFinite ? " and < \(Display.float(below))" : "")
            throw args.bad(name, "\(name) must be \(range), got \(Display.float(value))")
        }
        return value
    }
    if let lr = try positive("lr") { options.learningRate = lr }
    if let momentum = try positive("momentum", allowZero: true, below: 1) { options.momentum = momentum }
    if let decay = try positive("weight_decay", allowZero: true) { options.weightDecay = decay }
    if let gamma = try positive("gamma") { options.gamma = gamma }
    if case .list(let items)? = args.optional("milestones") {
        var milestones: [Int] = []
        for (i, item) in items.enumerated() {
            guard case .int(let m) = item, m >= 1 else {
                throw args.bad("milestones", "epochs >= 1 expected, item \(i) is \(Display.inline(item))")
            }
            if let last = milestones.last, m < last { throw args.bad("milestones", "milestones must not decrease (\(last) then \(m))") }
            milestones.append(m)
        }
        options.milestones = milestones
    }
    if case .int(let batch)? = args.optional("batch") {
        if data.isPreBatched {
            // Served as given: batch: may only restate the size of the given batches.
            let sizes = try data.batches(size: 1).map(\.count)
            guard sizes.dropLast().allSatisfy({ $0 == batch }), (sizes.last ?? 0) <= batch else {
                let given = Set(sizes).sorted().map(String.init).joined(separator: ", ")
                throw args.bad("batch", "a dataset made by dataset(...) is served in the batches it was given (of \(given) samples), "
                    + "not in batches of \(batch); build it with other batches instead")
            }
        }
        guard batch >= 1, batch <= 1_000_000 else { throw args.bad("batch", "batch must be in 1...1000000, got \(batch)") }
        options.batchSize = batch
    }
    let seed = try args.int("seed")
    guard seed >= 0 else { throw args.bad("seed", "seed must be >= 0, got \(seed)") }
    options.seed = UInt64(seed)
    if case .bool(let shuffle)? = args.optional("shuffle") {
        if shuffle && data.isPreBatched {
            throw args.bad("shuffle", "a dataset made by dataset(...) is served as given, in order; it cannot be shuffled")
        }
        options.shuffle = shuffle
    }
    if case .bool(let augment)? = args.optional("augment") {
        if augment && data.isPreBatched {
            throw args.bad("augment", "a dataset made by dataset(...) is served as given; it cannot be augmented")
        }
        options.augment = augment
    }
    options.recordsSteps = try args.bool("steps")
    return options
}

/// One row per epoch; the test columns only when a test set was evaluated.
private func trainingTable(_ history: [EpochRecord]) -> Table {
    let hasTest = history.contains { !$0.testLoss.isNaN }
    var names = ["epoch", "lr", "train_loss", "train_accuracy"]
    var columns: [Column] = [.number(history.map { Double($0.epoch) }), .number(history.map(\.learningRate)),
                             .number(history.map(\.trainLoss)), .number(history.map(\.trainAccuracy))]
    if hasTest {
        names += ["test_loss", "test_accuracy"]
        columns += [.number(history.map(\.testLoss)), .number(history.map(\.testAccuracy))]
    }
    names += ["seconds", "images_per_s"]
    columns += [.number(history.map(\.seconds)), .number(history.map(\.imagesPerSecond))]
    // Names are distinct and columns equally long by construction.
    return (try? Table(names: names, columns: columns)) ?? Table()
}

/// The progress bars of a training run, one per epoch: batches, rate and ETA, with the running
/// loss and images/s as the bar's note. The only place training draws anything.
private final class TrainingProgress: TrainingObserver {
    private var bar: ProgressBar?
    private var started = Date()
    private var images = 0
    private var lossSum = 0.0
    private var steps = 0

    func epochStarted(epoch: Int, of epochs: Int, batches: Int) {
        bar?.finish()
        bar = ProgressBar(label: "epoch \(epoch)/\(epochs)", total: batches, unit: "batches")
        bar?.showWhileWaiting()
        started = Date(); images = 0; lossSum = 0; steps = 0
    }

    func stepFinished(loss: Double, images count: Int) {
        images += count; lossSum += loss; steps += 1
        let rate = Double(images) / max(Date().timeIntervalSince(started), 1e-9)
        bar?.setNote(String(format: "loss %.4f  %.0f img/s", lossSum / Double(steps), rate))
        bar?.advance(by: 1)
    }

    func epochFinished(_ record: EpochRecord) {
        var note = String(format: "loss %.4f  acc %.4f  %.0f img/s", record.trainLoss, record.trainAccuracy, record.imagesPerSecond)
        if !record.testAccuracy.isNaN { note += String(format: "  test acc %.4f", record.testAccuracy) }
        bar?.setNote(note)
        close()
    }

    func close() {
        bar?.finish()
        bar = nil
    }
}
