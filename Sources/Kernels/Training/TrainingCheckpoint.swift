import Foundation

/// A training run's state as one safetensors file, written atomically at the end of every epoch:
///
/// - `weights.<name>` F32: every state-dict entry (prunable weights as w ⊙ m, running statistics);
/// - `masks.<name>` U8: the masks (1 = kept);
/// - `momentum.<name>` F32: the SGD momentum buffers;
/// - `run.epoch` I64 `[1]`: completed epochs = the MultiStepLR position (it steps once per epoch);
/// - `run.rng` I64 `[2]`: the seed and the next epoch's index — each epoch's shuffle and
///   augmentation streams are a pure function of these (`Trainer.epochSeed`), so nothing else of
///   the generators needs saving;
/// - `run.options` F64: what must not change between the run and its resume (lr, momentum, weight
///   decay, gamma, batch, shuffle, augmentation, milestones, the data's size and classes);
/// - `run.history` F64 `[epochs, 8]` and `run.step_losses` F64: the table and step losses so far;
/// - `kernels.<name>` I64 `[2]` (optional): which kernels (dense or sparse) the run chose for a
///   sparse conv weight, as `ConvKernelChoice.choices` bits, so the resume rounds the same way.
///
/// - `dst.*` (DST runs only): `dst.options` F64 (must match), `dst.state` F64 (steps, drop rate
///   and its decay position, baseline_nonzero, adjusted_growth, DSR's threshold and increment),
///   `dst.adjustments` F64, `dst.updates` F64 `[updates, 8]`, `dst.union.<name>` U8 (every
///   weight ever active) and `dst.start.<name>` U8 (the starting masks). The momentum buffers
///   hold inactive weights' momentum as the method leaves it.
///
/// Resuming from it continues bit-identically (same seed and thread count): the state it holds is
/// everything the next epoch reads.
enum TrainingCheckpoint {
    static let formatVersion: Int64 = 1

    static func encode(_ state: TrainingState, options: TrainingOptions, data: Dataset) -> [(name: String, tensor: SafeTensor)] {
        var out: [(name: String, tensor: SafeTensor)] = [("run.format", SafeTensor(int64: [formatVersion], shape: [1]))]
        // Weights in name order of the parameters, masks and buffers likewise (deterministic bytes).
        for name in (state.parameters.keys.sorted() + state.running.keys.sorted()) {
            guard let values = state.parameters[name] ?? state.running[name] else { continue }
            out.append(("weights." + name, SafeTensor(Tensor(shape: [values.count], data: values))))
        }
        for name in state.masks.keys.sorted() {
            guard let mask = state.masks[name] else { continue }
            out.append(("masks." + name, SafeTensor(uint8: mask.map { $0 == 0 ? 0 : 1 }, shape: [mask.count])))
        }
        for name in state.optimizer.buffers.keys.sorted() {
            guard let buffer = state.optimizer.buffers[name] else { continue }
            out.append(("momentum." + name, SafeTensor(Tensor(shape: [buffer.count], data: buffer))))
        }
        out.append(("run.epoch", SafeTensor(int64: [Int64(state.completedEpochs)], shape: [1])))
        out.append(("run.rng", SafeTensor(int64: [Int64(bitPattern: options.seed), Int64(state.completedEpochs)], shape: [2])))
        let fingerprint = optionsFingerprint(options, data: data)
        out.append(("run.options", doubles(fingerprint, shape: [fingerprint.count])))
        let rows = state.history.flatMap { r in
            [Double(r.epoch), r.learningRate, r.trainLoss, r.trainAccuracy, r.testLoss, r.testAccuracy, r.seconds, r.imagesPerSecond]
        }
        out.append(("run.history", doubles(rows, shape: [state.history.count, 8])))
        out.append(("run.step_losses", doubles(state.stepLosses, shape: [state.stepLosses.count])))
        for name in state.kernelChoices.keys.sorted() {
            guard let choice = state.kernelChoices[name] else { continue }
            out.append(("kernels." + name, SafeTensor(int64: [Int64(choice.sparse), Int64(choice.known)], shape: [2])))
        }
        if let dst = state.dst {
            let o = dstFingerprint(dst.options, epochs: options.epochs)
            out.append(("dst.options", doubles(o, shape: [o.count])))
            let values = [Double(dst.steps), dst.rate, Double(dst.decaySteps), dst.baselineNonzero, dst.adjustedGrowth,
                          dst.pruneThreshold, dst.increment]
            out.append(("dst.state", doubles(values, shape: [values.count])))
            out.append(("dst.adjustments", doubles(dst.adjustments, shape: [dst.adjustments.count])))
            out.append(("dst.updates", doubles(dst.updates.flatMap(\.fields), shape: [dst.updates.count, DSTUpdateRecord.fieldCount])))
            for name in dst.union.keys.sorted() {
                guard let union = dst.union[name] else { continue }
                out.append(("dst.union." + name, SafeTensor(uint8: union, shape: [union.count])))
            }
            for name in dst.start.keys.sorted() {
                guard let start = dst.start[name] else { continue }
                out.append(("dst.start." + name, SafeTensor(uint8: start, shape: [start.count])))
            }
        }
        return out
    }

    /// The state saved at `path`, checked against the network and the run's options; `fresh` is
    /// the state a new run would start from (its masks must equal the checkpoint's).
    static func read(path: String, network: Network, options: TrainingOptions, data: Dataset, fresh: TrainingState) throws -> TrainingState {
        func fail(_ reason: String) -> TrainingError { .checkpoint(path: path, reason: reason) }
        let entries: [String: SafeTensor]
        do { entries = try SafeTensors.readDictionary(path: path) } catch let error as IOFailure { throw fail(error.description) }
        guard let format = entries["run.format"]?.integers, format == [formatVersion] else {
            throw fail("it is not an mge training checkpoint (no run.format \(formatVersion))")
        }
        func integers(_ name: String, _ count: Int) throws -> [Int64] {
            guard let values = entries[name]?.integers, values.count == count else { throw fail("\(name) is missing or malformed") }
            return values
        }
        func floats(_ name: String, count: Int) throws -> [Float] {
            guard let t = entries[name], t.dtype == .f32, t.count == count, t.shape == [count] else {
                throw fail("\(name) is missing or has the wrong size for \(network.architecture.name)")
            }
            return t.floats
        }
        var state = fresh
        let known = Set(network.architecture.parameters.map { "weights." + $0.name })
        if let stray = entries.keys.first(where: { $0.hasPrefix("weights.") && !known.contains($0) }) {
            throw fail("it holds \(stray.dropFirst(8)), which \(network.architecture.name) does not have (a checkpoint of another network)")
        }
        for spec in network.architecture.parameters {
            let values = try floats("weights." + spec.name, count: spec.count)
            if spec.isLearnable { state.parameters[spec.name] = values } else { state.running[spec.name] = values }
        }
        for spec in network.architecture.prunable {
            guard let t = entries["masks." + spec.name], t.dtype == .u8, t.count == spec.count else {
                throw fail("masks.\(spec.name) is missing or malformed")
            }
            let mask = t.bytes.map { Float($0 == 0 ? 0 : 1) }
            if fresh.dst != nil {
                // The masks moved: the network must hold the run's starting masks or its latest ones.
                let start = entries["dst.start." + spec.name]?.bytes.map { Float($0 == 0 ? 0 : 1) }
                guard mask == fresh.masks[spec.name] || start == fresh.masks[spec.name] else {
                    throw fail("its starting masks differ from the network's (\(spec.name)): it belongs to another pruned network; delete it or name another checkpoint")
                }
                state.masks[spec.name] = mask
            } else if mask != fresh.masks[spec.name] {
                if entries["dst.options"] != nil { throw fail("it was made by a dst: run; give the same dst: settings") }
                throw fail("its masks differ from the network's (\(spec.name)): it belongs to another pruned network; delete it or name another checkpoint")
            }
            if let weights = state.parameters[spec.name], zip(weights, mask).contains(where: { $0.1 == 0 && $0.0 != 0 }) {
                throw fail("weights.\(spec.name) is non-zero where its mask is 0")
            }
        }
        var buffers: [String: [Float]] = [:]
        for spec in network.architecture.parameters where spec.isLearnable {
            if entries["momentum." + spec.name] != nil { buffers[spec.name] = try floats("momentum." + spec.name, count: spec.count) }
        }
        state.optimizer = MomentumSGD(momentum: options.momentum, weightDecay: options.weightDecay, buffers: buffers)
        let epoch = try integers("run.epoch", 1)[0]
        let rng = try integers("run.rng", 2)
        guard epoch >= 1, rng[1] == epoch else { throw fail("run.epoch and run.rng disagree") }
        guard UInt64(bitPattern: rng[0]) == options.seed else {
            throw fail("it was made with seed: \(UInt64(bitPattern: rng[0])), this call has seed: \(options.seed)")
        }
        guard Int(epoch) <= options.epochs else {
            throw fail("it already holds \(epoch) epochs, more than the \(options.epochs) asked for")
        }
        let expected = optionsFingerprint(options, data: data)
        guard let saved = entries["run.options"], saved.dtype == .f64 else { throw fail("run.options is missing") }
        let savedValues = savedDoubles(saved)
        guard savedValues == expected else {
            throw fail("it was made by a call with other settings (lr, momentum, weight_decay, gamma, batch, shuffle, augment, "
                + "milestones or data differ); give the same call, or delete it to start afresh")
        }
        guard let history = entries["run.history"], history.dtype == .f64, history.shape == [Int(epoch), 8],
              let losses = entries["run.step_losses"], losses.dtype == .f64 else {
            throw fail("run.history or run.step_losses is missing or malformed")
        }
        let rows = savedDoubles(history)
        state.history = (0 ..< Int(epoch)).map { i in
            let r = Array(rows[(8 * i) ..< (8 * i + 8)])
            return EpochRecord(epoch: Int(r[0]), learningRate: r[1], trainLoss: r[2], trainAccuracy: r[3], testLoss: r[4],
                               testAccuracy: r[5], seconds: r[6], imagesPerSecond: r[7])
        }
        state.stepLosses = options.recordsSteps ? savedDoubles(losses) : []
        for spec in network.architecture.parameters where entries["kernels." + spec.name] != nil {
            let bits = try integers("kernels." + spec.name, 2)
            guard (0 ..< 8).contains(bits[0]), (0 ..< 8).contains(bits[1]) else { throw fail("kernels.\(spec.name) is malformed") }
            state.kernelChoices[spec.name] = (Int(bits[0]), Int(bits[1]))
        }
        if let dstOptions = fresh.dst?.options {
            guard let saved = entries["dst.options"], saved.dtype == .f64 else {
                throw fail("it was made without dst:; give the same call, or delete it to start afresh")
            }
            guard savedDoubles(saved) == dstFingerprint(dstOptions, epochs: options.epochs) else {
                throw fail("it was made with other dst: settings (method, update_every, drop, decay, until, growth, redistribution or prune) or another number of epochs (the drop schedule spans the run)")
            }
            guard let values = entries["dst.state"], values.dtype == .f64, values.count == 7,
                  let adjustments = entries["dst.adjustments"], adjustments.dtype == .f64,
                  let updates = entries["dst.updates"], updates.dtype == .f64, updates.shape.count == 2,
                  updates.shape[1] == DSTUpdateRecord.fieldCount else {
                throw fail("dst.state, dst.adjustments or dst.updates is missing or malformed")
            }
            let v = savedDoubles(values)
            var dst = DSTState(options: dstOptions, masks: state.masks)
            dst.steps = Int(v[0]); dst.rate = v[1]; dst.decaySteps = Int(v[2]); dst.baselineNonzero = v[3]
            dst.adjustedGrowth = v[4]; dst.pruneThreshold = v[5]; dst.increment = v[6]
            dst.adjustments = savedDoubles(adjustments)
            let rows = savedDoubles(updates), width = DSTUpdateRecord.fieldCount
            dst.updates = (0 ..< updates.shape[0]).map { DSTUpdateRecord(fields: Array(rows[(width * $0) ..< (width * $0 + width)])) }
            for spec in network.architecture.prunable {
                guard let union = entries["dst.union." + spec.name], union.dtype == .u8, union.count == spec.count,
                      let start = entries["dst.start." + spec.name], start.dtype == .u8, start.count == spec.count else {
                    throw fail("dst.union.\(spec.name) or dst.start.\(spec.name) is missing or malformed")
                }
                dst.union[spec.name] = union.bytes
                dst.start[spec.name] = start.bytes
            }
            state.dst = dst
        } else if entries["dst.options"] != nil {
            throw fail("it was made by a dst: run; give the same dst: settings")
        }
        state.completedEpochs = Int(epoch)
        return state
    }

    /// The settings a resume must share with the run that wrote the checkpoint (epochs may grow).
    private static func optionsFingerprint(_ options: TrainingOptions, data: Dataset) -> [Double] {
        let augment: Double = data.augmentation == nil ? 0 : 1
        return [options.learningRate, options.momentum, options.weightDecay, options.gamma, Double(options.batchSize),
                options.shuffle ? 1 : 0, augment, Double(data.count), Double(data.classes), Double(options.milestones.count)]
            + options.milestones.map(Double.init)
    }

    /// The DST settings a resume must share, and the run's length (the schedules span it).
    private static func dstFingerprint(_ o: DSTOptions, epochs: Int) -> [Double] {
        func index<T: CaseIterable & Equatable>(_ value: T) -> Double { Double(Array(T.allCases).firstIndex(of: value) ?? -1) }
        // The prune mode joined later: present only when it is not magnitude, so earlier checkpoints still match.
        return [index(o.method), Double(o.updateEvery), o.drop, index(o.decay), o.until, index(o.growth), index(o.redistribution), Double(epochs)]
            + (o.prune == .magnitude ? [] : [index(o.prune)])
    }

    private static func doubles(_ values: [Double], shape: [Int]) -> SafeTensor {
        SafeTensor(dtype: .f64, shape: shape, bytes: values.withUnsafeBytes { Array($0) })
    }

    private static func savedDoubles(_ t: SafeTensor) -> [Double] {
        t.bytes.withUnsafeBytes { raw in (0 ..< t.count).map { raw.loadUnaligned(fromByteOffset: 8 * $0, as: Double.self) } }
    }
}
