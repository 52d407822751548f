import Foundation

/// The settings of one training run (SPEC §5's recipe by default, each overridable).
public struct TrainingOptions: Sendable, Equatable {
    public var epochs: Int
    public var learningRate: Double
    public var momentum: Double
    public var weightDecay: Double
    /// Epochs (0-based counts of completed epochs) at which the learning rate is multiplied by `gamma`.
    public var milestones: [Int]
    public var gamma: Double
    public var batchSize: Int
    public var seed: UInt64
    /// A fresh seeded order every epoch. Datasets made from tensors are always served as given.
    public var shuffle: Bool
    /// nil keeps the dataset's own augmentation (the training splits crop + flip); true / false
    /// turns crop + flip on / off.
    public var augment: Bool?
    /// Keep every step's loss in `TrainingResult.stepLosses`.
    public var recordsSteps: Bool
    /// Dynamic sparse training: the masks move (nil: they stay fixed).
    public var dst: DSTOptions? = nil

    /// SPEC §5 for `architecture` trained on `data`: SGD lr 0.1, momentum 0.9, batch 128, weight
    /// decay 1e-4 (5e-4 for WRN-28-2); CIFAR (and any other data) 160 epochs with ×0.1 at 80 and
    /// 120; TinyImageNet 100 epochs with ×0.1 at 30, 60, 80 (20, 60, 80 for CONV-6); shuffled.
    public static func recipe(for architecture: Architecture, data: Dataset) -> TrainingOptions {
        let tiny = data.name.hasPrefix("TinyImageNet")
        let conv6 = architecture.name == "CONV-6"
        return TrainingOptions(epochs: tiny ? 100 : 160, learningRate: 0.1, momentum: 0.9,
                               weightDecay: architecture.name.hasPrefix("Wide-Resnet") ? 5e-4 : 1e-4,
                               milestones: tiny ? (conv6 ? [20, 60, 80] : [30, 60, 80]) : [80, 120], gamma: 0.1,
                               batchSize: 128, seed: 0, shuffle: !data.isPreBatched, augment: nil, recordsSteps: false)
    }

    /// The options' own consistency (independent of the network and data).
    func validate() throws {
        guard epochs >= 1 else { throw TrainingError.invalid("epochs must be at least 1, got \(epochs)") }
        guard learningRate > 0, learningRate.isFinite else { throw TrainingError.invalid("lr must be > 0, got \(learningRate)") }
        guard momentum >= 0, momentum < 1 else { throw TrainingError.invalid("momentum must be in [0, 1), got \(momentum)") }
        guard weightDecay >= 0, weightDecay.isFinite else { throw TrainingError.invalid("weight_decay must be >= 0, got \(weightDecay)") }
        guard gamma > 0, gamma.isFinite else { throw TrainingError.invalid("gamma must be > 0, got \(gamma)") }
        guard batchSize >= 1 else { throw TrainingError.invalid("batch must be at least 1, got \(batchSize)") }
        if let bad = milestones.first(where: { $0 < 1 }) { throw TrainingError.invalid("milestones must be epochs >= 1, got \(bad)") }
        guard milestones == milestones.sorted() else { throw TrainingError.invalid("milestones must be increasing, got \(milestones)") }
        try dst?.validate()
    }
}

/// One epoch's row of the training table.
public struct EpochRecord: Sendable, Equatable {
    public var epoch: Int
    public var learningRate: Double
    public var trainLoss: Double
    public var trainAccuracy: Double
    /// NaN when no test set was given.
    public var testLoss: Double
    public var testAccuracy: Double
    public var seconds: Double
    public var imagesPerSecond: Double
}

public struct TrainingResult: Sendable {
    /// Every completed epoch, resumed ones included.
    public var history: [EpochRecord]
    /// Every step's loss in order (when `recordsSteps`), resumed epochs included.
    public var stepLosses: [Double]
    /// The epochs a checkpoint already held when this run started (0 for a fresh run).
    public var resumedEpochs: Int
    /// Every mask update of a DST run, resumed ones included (empty without DST).
    public var updates: [DSTUpdateRecord] = []
}

/// What a training run reports as it goes (the language draws a progress bar from it).
public protocol TrainingObserver: AnyObject {
    func epochStarted(epoch: Int, of epochs: Int, batches: Int)
    func stepFinished(loss: Double, images: Int)
    func epochFinished(_ record: EpochRecord)
    /// After a DST mask update, outside the timed steps; `network` holds the weights and masks
    /// of that moment. Throwing stops the run (the network is restored to the last epoch).
    func masksUpdated(_ record: DSTUpdateRecord, network: Network) throws
}

public extension TrainingObserver {
    func masksUpdated(_ record: DSTUpdateRecord, network: Network) throws {}
}

public enum TrainingError: Error, CustomStringConvertible, Equatable {
    /// Options or data that cannot be used; raised before any step.
    case invalid(String)
    /// A checkpoint that cannot be resumed; raised before any step.
    case checkpoint(path: String, reason: String)
    /// A checkpoint path that could not be written after the first epoch; raised before any step.
    case unwritableCheckpoint(reason: String)
    /// Training diverged: the step (1-based within the epoch) and the checkpoint that holds the
    /// last good state (the network holds the same weights).
    case nonFiniteLoss(epoch: Int, step: Int, checkpoint: String?, checkpointEpoch: Int)

    public var description: String {
        switch self {
        case let .invalid(reason): return reason
        case let .checkpoint(path, reason): return "cannot resume from \(path): \(reason)"
        case let .unwritableCheckpoint(reason): return "the checkpoint cannot be written: \(reason)"
        case let .nonFiniteLoss(epoch, step, checkpoint, checkpointEpoch):
            let kept: String
            if let checkpoint, checkpointEpoch > 0 {
                kept = "the last good state (after epoch \(checkpointEpoch)) is in \(checkpoint) and in the network"
            } else if checkpointEpoch > 0 {
                kept = "the network holds the weights after epoch \(checkpointEpoch)"
            } else {
                kept = "the network is unchanged"
            }
            return "training diverged: the loss is not finite at epoch \(epoch), step \(step) (try a smaller lr); \(kept)"
        }
    }
}

/// Everything a training run changes, in the form the steps use: learnable parameters (prunable
/// weights as w ⊙ m), running statistics, masks as 0/1 floats, the optimiser's momentum buffers,
/// and how far the run has come. A checkpoint is exactly this.
struct TrainingState {
    var parameters: [String: [Float]]
    var running: [String: [Float]]
    var masks: [String: [Float]]
    var optimizer: MomentumSGD
    var completedEpochs: Int
    var history: [EpochRecord]
    var stepLosses: [Double]
    /// Which conv layers run on the sparse kernels (`FirstOrderPass.kernelChoices`): the cost
    /// model's picks, recorded in checkpoints so a resume uses the kernels (hence the rounding)
    /// of the run it continues, even under a build whose model picks otherwise.
    var kernelChoices: [String: (sparse: Int, known: Int)] = [:]
    /// Dynamic sparse training's own state (nil: fixed masks).
    var dst: DSTState?

    init(_ network: Network, options: TrainingOptions) {
        (parameters, running) = network.engineParameters()
        masks = network.masks.mapValues { $0.map { $0 == 0 ? 0 : 1 } }
        optimizer = MomentumSGD(momentum: options.momentum, weightDecay: options.weightDecay)
        completedEpochs = 0
        history = []
        stepLosses = []
        if let options = options.dst { dst = DSTState(options: options, masks: masks) }
    }

    /// Writes the masks (moved by DST, else unchanged), parameters and running statistics into `network`.
    func write(into network: Network) throws {
        if dst != nil {
            for (name, mask) in masks { try network.setMask(name, mask.map { $0 == 0 ? 0 : 1 }) }
        }
        for spec in network.architecture.parameters {
            guard let values = parameters[spec.name] ?? running[spec.name] else { continue }
            try network.setParameter(spec.name, Tensor(shape: spec.shape, data: values))
        }
    }
}

/// Trains a network with SGD (PyTorch's `optim.SGD` + `MultiStepLR`, batch norm in training mode,
/// masks enforced) on the tape-free `FirstOrderPass`.
///
/// Everything that can be wrong is checked in `init`, before any step, and leaves the network
/// unchanged. During `run` the network is written at the end of every epoch (and the checkpoint
/// with it), so after a Ctrl-C or a diverging loss it holds the last completed epoch's state —
/// the same as the checkpoint.
public final class Trainer {
    public let options: TrainingOptions
    private let network: Network
    private let data: Dataset
    private let test: Dataset?
    private let checkpointPath: String?
    private var state: TrainingState
    private let learnable: [ParameterSpec]
    private let schedule: MultiStepSchedule

    /// - Parameters:
    ///   - checkpoint: the file written after every epoch; when it exists and `resume` is true the
    ///     run continues from it, when `resume` is false it is overwritten after the first epoch.
    /// - Throws: `TrainingError.invalid` for options or data that do not fit the network or a
    ///   checkpoint that cannot be written, `TrainingError.checkpoint` for a checkpoint that is not
    ///   this run's.
    public init(network: Network, data: Dataset, options: TrainingOptions, test: Dataset? = nil, checkpoint: String? = nil,
                resume: Bool = true) throws {
        try options.validate()
        if options.dst != nil, !network.masks.values.contains(where: { $0.contains(0) }) {
            throw TrainingError.invalid("dst needs a pruned network (its masks are the starting topology), \(network.architecture.name) is dense; prune it first")
        }
        try Self.checkFit(data, network, role: "training data", options: options)
        if let test { try Self.checkFit(test, network, role: "test data", options: nil) }
        self.options = options
        self.network = network
        var data = data
        if let augment = options.augment { data = data.augmented(augment ? .standard : nil) }
        self.data = data
        self.test = test
        self.checkpointPath = checkpoint
        learnable = network.architecture.parameters.filter(\.isLearnable)
        schedule = MultiStepSchedule(initial: options.learningRate, milestones: options.milestones, gamma: options.gamma)
        var state = TrainingState(network, options: options)
        if let checkpoint {
            if resume, FileManager.default.fileExists(atPath: checkpoint) {
                state = try TrainingCheckpoint.read(path: checkpoint, network: network, options: options, data: data, fresh: state)
            } else {
                // Refuse now a checkpoint that could not be written after the first epoch.
                do { _ = try AtomicFile.temporaryPath(beside: checkpoint) } catch let error as IOFailure {
                    throw TrainingError.unwritableCheckpoint(reason: "\(error)")
                }
            }
        }
        self.state = state
    }

    /// Epochs a checkpoint already holds (0 for a fresh run).
    public var completedEpochs: Int { state.completedEpochs }

    /// Refuses data whose samples or classes do not fit the network, and batches that training-mode
    /// batch norm cannot normalise (a single sample reaching a batch norm over features).
    private static func checkFit(_ data: Dataset, _ network: Network, role: String, options: TrainingOptions?) throws {
        let architecture = network.architecture
        try Evaluation.checkFit(data, architecture, subject: "the \(role) (\(data.name))",
                                classesHint: " (build it with classes: \(data.classes) or dataset: …)")
        guard let options else { return }
        let sizes: [Int]
        if case let .batches(_, labels) = data.storage { sizes = labels.map(\.count) } else {
            let remainder = data.count % options.batchSize
            sizes = [min(options.batchSize, data.count)] + (remainder > 0 ? [remainder] : [])
        }
        // Training-mode batch norm needs two values per channel: batch × (values per sample and channel).
        let smallestPlane = architecture.nodes.compactMap { node -> Int? in
            if case .batchNorm = node.op { return node.shape.dropFirst().reduce(1, *) }
            return nil
        }.min()
        if let smallestPlane, let smallest = sizes.min(), smallest * smallestPlane < 2 {
            throw TrainingError.invalid("a batch of \(smallest) sample of the \(role) cannot be normalised by \(architecture.name)'s "
                + "training-mode batch norm; choose a batch size that leaves no single sample over")
        }
    }

    /// Trains the remaining epochs. Checks `Cancellation` at every batch boundary.
    /// - Complexity: epochs × (one forward + backward per batch), plus a forward over `test` per epoch.
    public func run(observer: TrainingObserver? = nil) throws -> TrainingResult {
        let resumed = state.completedEpochs
        if resumed > 0 { try state.write(into: network) }
        // Observing a DST update writes a mid-epoch state into the network: put the last
        // finished epoch back if the run stops.
        var networkAhead = false
        do {
            try runEpochs(observer: observer, networkAhead: &networkAhead)
        } catch {
            if networkAhead { try? state.write(into: network) }
            throw error
        }
        return TrainingResult(history: state.history, stepLosses: state.stepLosses, resumedEpochs: resumed, updates: state.dst?.updates ?? [])
    }

    private func runEpochs(observer: TrainingObserver?, networkAhead: inout Bool) throws {
        let prunable = network.architecture.prunable.map(\.name)
        var totalSteps = 0
        if options.dst != nil {
            totalSteps = options.epochs * (try data.batches(size: options.batchSize, shuffle: false, seed: 0).batchCount)
        }
        while state.completedEpochs < options.epochs {
            let epoch = state.completedEpochs
            let learningRate = schedule.learningRate(epoch: epoch)
            let batches = try data.batches(size: options.batchSize, shuffle: options.shuffle && !data.isPreBatched,
                                           seed: Self.epochSeed(options.seed, epoch: epoch))
            observer?.epochStarted(epoch: epoch + 1, of: options.epochs, batches: batches.batchCount)
            var working = state
            let start = Date()
            var lossSum = 0.0, correct = 0, seen = 0, step = 0
            var iterator = batches.makeIterator()
            while let batch = try iterator.nextBatch() {
                try Cancellation.check()
                step += 1
                var update: (step: Int, before: [String: [Float]], drop: Double)?
                let loss: Double, right: Int
                if let dst = working.dst, dst.options.isRigL, dst.rigLUpdatesNow(totalSteps: totalSteps) {
                    // RigL: this batch's dense gradient moves the masks; no SGD step.
                    let fraction = dst.rigLFraction(totalSteps: totalSteps)
                    let result = try Self.step(&working, batch, architecture: network.architecture, learnable: learnable,
                                               learningRate: learningRate, mode: .gradientOnly)
                    (loss, right) = (result.loss, result.correct)
                    if loss.isFinite {
                        let before = working.masks
                        var rng = SeededGenerator.stream(seed: options.seed, name: "dst.update.\(dst.steps)")
                        DSTState.rigLUpdate(names: prunable, fraction: fraction, weights: &working.parameters, masks: &working.masks,
                                            momentum: &working.optimizer, gradients: result.gradients, growth: dst.options.growth, rng: &rng)
                        update = (dst.steps, before, fraction)
                    }
                    working.dst?.steps += 1
                } else {
                    let masking = working.dst.map { !$0.options.isRigL } ?? false
                    let result = try Self.step(&working, batch, architecture: network.architecture, learnable: learnable,
                                               learningRate: learningRate, mode: masking ? .dense : .masked)
                    (loss, right) = (result.loss, result.correct)
                    if working.dst?.options.isRigL == true { working.dst?.steps += 1 }
                    if masking, loss.isFinite, var dst = working.dst {
                        if dst.maskingStepTaken(totalSteps: totalSteps) {
                            let before = working.masks
                            var rng = SeededGenerator.stream(seed: options.seed, name: "dst.update.\(dst.steps)")
                            dst.truncate(names: prunable, weights: &working.parameters, masks: &working.masks,
                                         momentum: working.optimizer, gradients: result.gradients, rng: &rng)
                            update = (dst.steps, before, dst.rate)
                        }
                        working.dst = dst
                    }
                }
                if let update, var dst = working.dst {
                    dst.record(step: update.step, before: update.before, after: working.masks, epoch: epoch + 1, drop: update.drop)
                    working.dst = dst
                    // A layer whose kept count moved gets the cost model's choice for its new count
                    // (a recorded choice holds only for the count it was made for).
                    for (name, mask) in working.masks where working.kernelChoices[name] != nil {
                        let kept = { (m: [Float]) in m.reduce(0) { $0 + ($1 != 0 ? 1 : 0) } }
                        if let old = update.before[name], kept(old) != kept(mask) { working.kernelChoices[name] = nil }
                    }
                    if let observer, let record = dst.updates.last {
                        try working.write(into: network)
                        networkAhead = true
                        try observer.masksUpdated(record, network: network)
                    }
                }
                guard loss.isFinite else {
                    throw TrainingError.nonFiniteLoss(epoch: epoch + 1, step: step, checkpoint: checkpointPath,
                                                      checkpointEpoch: state.completedEpochs)
                }
                if options.recordsSteps { working.stepLosses.append(loss) }
                lossSum += loss * Double(batch.count)
                correct += right
                seen += batch.count
                observer?.stepFinished(loss: loss, images: batch.count)
            }
            let seconds = Date().timeIntervalSince(start)
            var record = EpochRecord(epoch: epoch + 1, learningRate: learningRate, trainLoss: lossSum / Double(max(seen, 1)),
                                     trainAccuracy: Double(correct) / Double(max(seen, 1)), testLoss: .nan, testAccuracy: .nan,
                                     seconds: seconds, imagesPerSecond: Double(seen) / max(seconds, 1e-9))
            if let test {
                let result = try Evaluation.evaluate(network.architecture, parameters: working.parameters,
                                                     runningStatistics: working.running, data: test)
                record.testLoss = result.loss
                record.testAccuracy = result.accuracy
            }
            working.history.append(record)
            working.completedEpochs = epoch + 1
            if let checkpointPath {
                try SafeTensors.write(TrainingCheckpoint.encode(working, options: options, data: data), path: checkpointPath)
            }
            state = working
            try state.write(into: network)
            networkAhead = false
            observer?.epochFinished(record)
        }
    }

    /// What one batch does: a masked SGD step (fixed masks, RigL between updates), an SGD step on
    /// dense gradients followed by re-masking (sparselearning's Masking: inactive weights'
    /// momentum fills), or only the dense gradient (RigL's update step).
    enum StepMode { case masked, dense, gradientOnly }

    /// One SGD step on `batch`: forward and backward in training-mode batch norm, the running
    /// statistics folded in, every learnable parameter updated. Returns the batch's mean loss
    /// (NaN / infinite leaves `state` untouched) and how many samples were classified right.
    /// - Returns: the batch's mean loss, how many samples were classified right, and (modes
    ///   `.dense` and `.gradientOnly`) the prunable weights' dense gradients.
    static func step(_ state: inout TrainingState, _ batch: Batch, architecture: Architecture, learnable: [ParameterSpec],
                     learningRate: Double, mode: StepMode = .masked) throws -> (loss: Double, correct: Int, gradients: [String: [Float]]) {
        let n = batch.count
        let pass = try FirstOrderPass<Float>(architecture, parameters: state.parameters, runningStatistics: state.running,
                                             normalisation: .batch, sparseKernels: true, masks: state.masks,
                                             denseWeightGradients: mode != .masked)
        pass.pinKernelChoices(state.kernelChoices)
        defer { state.kernelChoices = pass.kernelChoices }
        let logits = try pass.forward(batch.images.data, batch: n)
        let (loss, seed, _) = try pass.crossEntropy(logits, labels: batch.labels)
        guard loss.isFinite else { return (loss, 0, [:]) }
        let correct = Evaluation.correct(logits, labels: batch.labels)
        let gradients = try pass.backward(seed: seed, wanted: Set(learnable.map(\.name))).gradients
        let prunableGradients = mode == .masked ? [:] : gradients.filter { state.masks[$0.key] != nil }
        if mode == .gradientOnly { return (loss, correct, prunableGradients) }
        state.running = try pass.updatedRunningStatistics()
        for spec in learnable {
            guard var values = state.parameters.removeValue(forKey: spec.name), let gradient = gradients[spec.name],
                  gradient.count == values.count else {
                throw ModelError.missingParameter(spec.name, model: architecture.name)
            }
            if mode == .dense {
                // torch.optim.SGD on the dense gradient, then Masking.apply_mask.
                state.optimizer.step(spec.name, parameter: &values, gradient: gradient, mask: nil, learningRate: learningRate)
                if let mask = state.masks[spec.name] { for i in 0 ..< values.count { values[i] *= mask[i] } }
            } else {
                state.optimizer.step(spec.name, parameter: &values, gradient: gradient, mask: state.masks[spec.name], learningRate: learningRate)
            }
            state.parameters[spec.name] = values
        }
        return (loss, correct, prunableGradients)
    }

    /// The shuffle / augmentation seed of epoch `epoch` (0-based): a pure function of the run's
    /// seed and the epoch, so a resumed run draws the same batches as an uninterrupted one.
    static func epochSeed(_ seed: UInt64, epoch: Int) -> UInt64 {
        var rng = SeededGenerator.stream(seed: seed, name: "train.epoch.\(epoch)")
        return rng.next()
    }
}
