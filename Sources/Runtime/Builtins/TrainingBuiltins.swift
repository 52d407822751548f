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
                      Param("steps", .bool, default: .bool(false)),
                      Param("dst", .optional(.string), default: Value.none), Param("update_every", .optional(.int), default: Value.none),
                      Param("drop", .optional(.float), default: Value.none), Param("decay", .optional(.string), default: Value.none),
                      Param("until", .optional(.float), default: Value.none), Param("growth", .optional(.string), default: Value.none),
                      Param("redistribution", .optional(.string), default: Value.none), Param("prune", .optional(.string), default: Value.none),
                      Param("observe", .optional(.function), default: Value.none)],
            returns: "record",
            summary: "Trains net on data with SGD as PyTorch's optim.SGD + MultiStepLR (SPEC §5 defaults: lr 0.1, momentum 0.9, batch 128, "
                + "weight_decay 1e-4 (5e-4 for WRN-28-2) on every parameter, 160 epochs with x0.1 (gamma) at milestones [80, 120]; "
                + "TinyImageNet 100 epochs, [30, 60, 80]), BN in training mode, shuffled, the dataset's own augmentation (crop + flip on "
                + "training splits; augment: false turns it off). Pruned weights stay exactly 0. test: a dataset evaluated after each epoch. "
                + "checkpoint: a file written atomically after every epoch; the same call again resumes from it (resume: false starts afresh "
                + "and overwrites it). steps: true adds "
                + "step_losses. Datasets made by dataset(...) are served as given, in order. Returns {epochs, table, step_losses}; "
                + "Ctrl-C stops at the next batch, the net and the checkpoint keep the last finished epoch. "
                + "dst: rigl|snfs|dsr|set|itop trains a pruned net with dynamic sparse training (its masks are the start and end as the "
                + "final topology), each method's defaults overridable: update_every (steps), drop (fraction of active weights per update), "
                + "decay (cosine|constant|linear), until (fraction of the run after which masks freeze), growth (random|momentum|gradient), "
                + "redistribution (none|momentum|nonzero), prune (magnitude|negativity: set's default is sparselearning's shipped SET prune, "
                + "magnitude_and_negativity_prune, which keeps at most ceil(r/2) of a layer's most negative weights and regrows the rest at random; "
                + "prune: \"magnitude\" drops only the smallest |w|); r.updates has one row per mask update (step, epoch, drop, removed, grown, kept, "
                + "turnover, explored). observe: fn (net, step) { return {...} } is called after each update; its records are r.observed.",
            example: "r = train(net, cifar10(), epochs: 2, test: cifar10(split: \"test\"), checkpoint: \"run.ckpt\");  r.table\n"
                + "net = resnet20();  prune(net, erk, 0.95);  r = train(net, cifar10(), epochs: 5, dst: \"rigl\", "
                + "observe: fn (net, step) { return topometrics(unroll(net)) });  plot(r.observed, x: \"step\", y: \"density\")") { args in
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
        var observedRows: [Value] = []
        if let observe = args.optional("observe") {
            let interpreter = args.interpreter
            observer.onUpdate = { record, _ in
                let value = try interpreter.call(observe, [.native(net), .int(record.step)])
                switch value {
                case .none: return
                case .record(let fields):
                    var row = Record([("step", .int(record.step)), ("epoch", .int(record.epoch))])
                    for (name, v) in fields.fields where name != "step" && name != "epoch" { row[name] = v }
                    observedRows.append(.record(row))
                default:
                    throw args.bad("observe", "the function must return a record (or none), it returned a \(value.typeName)")
                }
            }
        }
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
        } catch {
            observer.close()
            throw error
        }
        observer.close()
        var record = Record([("epochs", .int(result.history.count)), ("table", .native(TableObject(trainingTable(result.history))))])
        if options.recordsSteps { record["step_losses"] = .list(result.stepLosses.map(Value.float)) }
        if let checkpoint { record["checkpoint"] = .string(checkpoint) }
        if options.dst != nil {
            record["updates"] = .native(TableObject(updatesTable(result.updates)))
            if args.optional("observe") != nil {
                let names = observedRows.reduce(into: [String]()) { names, row in
                    if case .record(let r) = row { for name in r.names where !names.contains(name) { names.append(name) } }
                }
                let columns = try names.map { name in
                    try column(observedRows.map { row in if case .record(let r) = row { return r[name] ?? .none }; return .none },
                               name: name, args: args, blame: "observe")
                }
                record["observed"] = .native(TableObject(try tableError(args, "observe") { try Table(names: names, columns: columns) }))
            }
        }
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
    options.dst = try dstOptions(args, network)
    return options
}

/// The DST settings of a train call: the method's defaults with the call's keywords applied;
/// each refusal names its keyword.
private func dstOptions(_ args: Arguments, _ network: Network) throws -> DSTOptions? {
    let keywords = ["update_every", "drop", "decay", "until", "growth", "redistribution", "prune", "observe"]
    guard case .string(let name)? = args.optional("dst") else {
        if let given = keywords.first(where: { args.optional($0) != nil }) {
            throw args.bad(given, "\(given): applies to dynamic sparse training; give dst: as well")
        }
        return nil
    }
    func choice<T: RawRepresentable & CaseIterable>(_ keyword: String, _ text: String) throws -> T where T.RawValue == String {
        guard let value = T(rawValue: text) else {
            let names = T.allCases.map { "\"\($0.rawValue)\"" }.joined(separator: ", ")
            throw args.bad(keyword, "one of \(names) expected, got \"\(text)\"")
        }
        return value
    }
    let method: DSTMethod = try choice("dst", name)
    guard network.masks.values.contains(where: { $0.contains(0) }) else {
        throw args.bad("dst", "dynamic sparse training needs a pruned network (its masks are the starting topology), the net is dense; "
            + "prune it first, e.g. prune(net, erk, 0.9)")
    }
    var options = DSTOptions.defaults(for: method)
    if case .int(let every)? = args.optional("update_every") {
        guard every >= 1 else { throw args.bad("update_every", "update_every must be at least 1, got \(every)") }
        options.updateEvery = every
    }
    if let drop = args.optional("drop")?.asDouble {
        guard drop > 0, drop < 1 else { throw args.bad("drop", "drop must be in (0, 1), got \(Display.float(drop))") }
        options.drop = drop
    }
    if let until = args.optional("until")?.asDouble {
        guard until > 0, until <= 1 else { throw args.bad("until", "until must be in (0, 1], got \(Display.float(until))") }
        options.until = until
    }
    if case .string(let decay)? = args.optional("decay") { options.decay = try choice("decay", decay) }
    if case .string(let growth)? = args.optional("growth") { options.growth = try choice("growth", growth) }
    if case .string(let redistribution)? = args.optional("redistribution") {
        options.redistribution = try choice("redistribution", redistribution)
    }
    if case .string(let prune)? = args.optional("prune") { options.prune = try choice("prune", prune) }
    if options.prune == .negativity, method != .set, method != .snfs {
        throw args.bad("prune", "prune: \"negativity\" is sparselearning's per-layer SET prune (set, snfs); \(method.rawValue) prunes "
            + (method == .dsr ? "by its global magnitude threshold" : "by magnitude"))
    }
    if (method == .rigl || method == .itop) && options.redistribution != .none {
        throw args.bad("redistribution", "\(method.rawValue) keeps every layer's count; redistribution must be \"none\"")
    }
    if let observe = args.optional("observe") {
        guard case .function(let f) = observe, f.decl.params.count == 2 else {
            let got: String
            if case .function(let f) = observe { got = "a function of \(f.decl.params.count) argument\(f.decl.params.count == 1 ? "" : "s")" } else {
                got = "a builtin"
            }
            throw args.bad("observe", "a function of two arguments (net, step) expected, got \(got)")
        }
    }
    return options
}

/// One row per DST mask update.
private func updatesTable(_ updates: [DSTUpdateRecord]) -> Table {
    let names = ["step", "epoch", "drop", "removed", "grown", "kept", "turnover", "explored"]
    let columns: [Column] = [.number(updates.map { Double($0.step) }), .number(updates.map { Double($0.epoch) }),
                             .number(updates.map(\.drop)), .number(updates.map { Double($0.removed) }),
                             .number(updates.map { Double($0.grown) }), .number(updates.map { Double($0.kept) }),
                             .number(updates.map(\.turnover)), .number(updates.map(\.explored))]
    return (try? Table(names: names, columns: columns)) ?? Table()
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
    /// The `observe:` function, called after each DST mask update.
    var onUpdate: ((DSTUpdateRecord, Network) throws -> Void)?
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

    func masksUpdated(_ record: DSTUpdateRecord, network: Network) throws {
        try onUpdate?(record, network)
    }

    func close() {
        bar?.finish()
        bar = nil
    }
}
