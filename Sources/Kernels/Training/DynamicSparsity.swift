import Foundation

/// A dynamic sparse training (DST) method: the masks move during training (drop some
/// connections, grow others) while the number of kept weights stays (about) the same.
public enum DSTMethod: String, CaseIterable, Sendable {
    case rigl, snfs, dsr, set, itop
}

/// How the drop fraction changes over the run.
public enum DSTDecay: String, CaseIterable, Sendable { case cosine, constant, linear }

/// Which inactive connections grow: uniformly at random, the largest |momentum|, the largest
/// |dense gradient|.
public enum DSTGrowth: String, CaseIterable, Sendable { case random, momentum, gradient }

/// How the regrowth is shared among layers (sparselearning's redistribution; `none` keeps each
/// layer's share proportional to its size).
public enum DSTRedistribution: String, CaseIterable, Sendable { case none, momentum, nonzero }

/// How sparselearning's per-layer prune picks the removed weights: `magnitude` (magnitude_prune:
/// the smallest |w|) or `negativity` (magnitude_and_negativity_prune, its `SET` mode as shipped:
/// the ceil(r/2) smallest |w| go, then every weight but the ceil(r/2) most negative).
public enum DSTPrune: String, CaseIterable, Sendable { case magnitude, negativity }

/// The settings of dynamic sparse training: each method's original rules and defaults, every
/// one overridable.
///
/// Two families of update rules:
/// - **Masking** (set, snfs, dsr, itop): sparselearning's `Masking.step` — after every SGD step
///   whose 1-based number is a multiple of `updateEvery` the masks are updated; the drop rate
///   decays once per step; gradients are dense (weights are re-masked after each step), so the
///   momentum buffers of inactive weights fill.
/// - **RigL**: google-research/rigl's `SparseRigLOptimizer` — at 0-based steps 0, ΔT, 2ΔT, …
///   (while step ≤ until·T) the step's batch gives a dense gradient, the masks are updated and
///   no SGD step is taken; gradients of inactive weights are masked.
public struct DSTOptions: Sendable, Equatable {
    public var method: DSTMethod
    /// Steps between mask updates (ΔT / prune_every_k_steps).
    public var updateEvery: Int
    /// The fraction of active weights removed per update (before decay).
    public var drop: Double
    public var decay: DSTDecay
    /// The fraction of the run after which the masks freeze.
    public var until: Double
    public var growth: DSTGrowth
    public var redistribution: DSTRedistribution
    /// sparselearning's prune mode (set and snfs; DSR prunes by its global threshold, RigL and
    /// ITOP by magnitude).
    public var prune: DSTPrune = .magnitude

    /// The original defaults: RigL (ΔT 100, drop 0.3 cosine until 0.75, gradient growth); SNFS,
    /// SET and DSR as the seed repository's sparselearning sets them (prune rate 0.5 cosine /
    /// 0.7 constant / 0.3 constant; momentum / random / random growth; momentum / none / nonzero
    /// redistribution; every 100 steps); ITOP's CIFAR RigL-ITOP (every 4000 steps, drop 0.5
    /// cosine, gradient growth).
    public static func defaults(for method: DSTMethod) -> DSTOptions {
        switch method {
        case .rigl: return DSTOptions(method: method, updateEvery: 100, drop: 0.3, decay: .cosine, until: 0.75, growth: .gradient, redistribution: .none)
        case .snfs: return DSTOptions(method: method, updateEvery: 100, drop: 0.5, decay: .cosine, until: 1, growth: .momentum, redistribution: .momentum)
        case .set: return DSTOptions(method: method, updateEvery: 100, drop: 0.7, decay: .constant, until: 1, growth: .random, redistribution: .none,
                                     prune: .negativity)
        case .dsr: return DSTOptions(method: method, updateEvery: 100, drop: 0.3, decay: .constant, until: 1, growth: .random, redistribution: .nonzero)
        case .itop: return DSTOptions(method: method, updateEvery: 4000, drop: 0.5, decay: .cosine, until: 1, growth: .gradient, redistribution: .none)
        }
    }

    /// RigL's rules (update instead of a step) rather than sparselearning's (update after a step).
    var isRigL: Bool { method == .rigl }

    func validate() throws {
        guard updateEvery >= 1 else { throw TrainingError.invalid("update_every must be at least 1, got \(updateEvery)") }
        guard drop > 0, drop < 1 else { throw TrainingError.invalid("drop must be in (0, 1), got \(drop)") }
        guard until > 0, until <= 1 else { throw TrainingError.invalid("until must be in (0, 1], got \(until)") }
        if method == .rigl || method == .itop, redistribution != .none {
            throw TrainingError.invalid("\(method.rawValue) keeps every layer's count; redistribution must be \"none\", got \"\(redistribution.rawValue)\"")
        }
        if prune == .negativity, method != .set, method != .snfs {
            throw TrainingError.invalid("prune: \"negativity\" is sparselearning's per-layer SET prune (set, snfs); \(method.rawValue) prunes "
                + (method == .dsr ? "by its global magnitude threshold" : "by magnitude"))
        }
    }
}

/// One mask update of a DST run.
public struct DSTUpdateRecord: Sendable, Equatable {
    /// Steps taken before the update (RigL: the 0-based step it replaced; sparselearning: the
    /// 1-based step it followed).
    public var step: Int
    /// The 1-based epoch it happened in.
    public var epoch: Int
    /// The drop fraction in effect.
    public var drop: Double
    /// Connections active before and not after, inactive before and active after, active after.
    public var removed: Int
    public var grown: Int
    public var kept: Int
    /// grown / kept: the fraction of the active weights replaced since the previous update.
    public var turnover: Double
    /// ITOP's Rs: the fraction of prunable weights that have ever been active.
    public var explored: Double

    static let fieldCount = 8
    var fields: [Double] { [Double(step), Double(epoch), drop, Double(removed), Double(grown), Double(kept), turnover, explored] }
    init(step: Int, epoch: Int, drop: Double, removed: Int, grown: Int, kept: Int, turnover: Double, explored: Double) {
        self.step = step; self.epoch = epoch; self.drop = drop; self.removed = removed; self.grown = grown; self.kept = kept
        self.turnover = turnover; self.explored = explored
    }
    init(fields r: [Double]) {
        self.init(step: Int(r[0]), epoch: Int(r[1]), drop: r[2], removed: Int(r[3]), grown: Int(r[4]), kept: Int(r[5]),
                  turnover: r[6], explored: r[7])
    }
}

/// Everything a DST run carries between steps besides weights, masks and momentum (all of it in
/// the checkpoint): the drop rate's decay position, sparselearning's growth bookkeeping, DSR's
/// global threshold, the union of every mask so far (explored), and the updates so far.
struct DSTState {
    var options: DSTOptions
    /// Steps taken (SGD steps and RigL's update steps alike).
    var steps: Int = 0
    /// sparselearning's `prune_rate` after `steps` decay steps.
    var rate: Double
    /// CosineAnnealingLR's `last_epoch` (steps of the decay so far).
    var decaySteps: Int = 0
    /// sparselearning's `baseline_nonzero`: the starting masks' kept count.
    var baselineNonzero: Double
    var adjustedGrowth: Double = 0
    var adjustments: [Double] = []
    /// DSR's global_magnitude_prune state.
    var pruneThreshold: Double = 0.001
    var increment: Double = 0.2
    /// 1 where a weight has ever been active.
    var union: [String: [UInt8]]
    /// The run's starting masks (a resume accepts a network holding them or the latest masks).
    var start: [String: [UInt8]]
    var updates: [DSTUpdateRecord] = []

    init(options: DSTOptions, masks: [String: [Float]]) {
        self.options = options
        rate = options.drop
        baselineNonzero = Double(masks.values.reduce(0) { $0 + $1.reduce(0) { $0 + ($1 != 0 ? 1 : 0) } })
        union = masks.mapValues { $0.map { $0 != 0 ? 1 : 0 } }
        start = union
    }

    var explored: Double {
        var ever = 0, total = 0
        for mask in union.values { ever += mask.reduce(0) { $0 + Int($1) }; total += mask.count }
        return Double(ever) / Double(max(total, 1))
    }

    // MARK: Schedule

    /// RigL: whether the step about to be taken (0-based `steps`) is a mask update.
    func rigLUpdatesNow(totalSteps: Int) -> Bool {
        steps % options.updateEvery == 0 && Double(steps) <= options.until * Double(totalSteps)
    }

    /// Masking: after one more SGD step, advance the decay; true when that step is followed by a
    /// mask update.
    mutating func maskingStepTaken(totalSteps: Int) -> Bool {
        steps += 1
        advanceDecay(totalSteps: totalSteps)
        return steps % options.updateEvery == 0 && Double(steps) <= options.until * Double(totalSteps)
    }

    /// sparselearning's decay, stepped once per SGD step: `CosineDecay` (PyTorch's
    /// CosineAnnealingLR in its recursive form, eta_min 0.005, T_max = the run's steps),
    /// `LinearDecay`, or none.
    private mutating func advanceDecay(totalSteps: Int) {
        let base = options.drop, t = Double(max(totalSteps, 1)), etaMin = 0.005
        decaySteps += 1
        let e = decaySteps
        switch options.decay {
        case .constant: break
        case .linear: rate -= base / t
        case .cosine:
            let period = 2 * max(totalSteps, 1)
            if ((e - 1 - max(totalSteps, 1)) % period + period) % period == 0 {
                rate = rate + (base - etaMin) * (1 - cos(Double.pi / t)) / 2
            } else {
                rate = (1 + cos(Double.pi * Double(e) / t)) / (1 + cos(Double.pi * Double(e - 1) / t)) * (rate - etaMin) + etaMin
            }
        }
    }

    /// RigL's drop fraction at 0-based step `steps`: f(t) = drop/2·(1 + cos(π t/(until·T))) for
    /// cosine, drop·(1 − t/(until·T)) for linear, drop for constant.
    func rigLFraction(totalSteps: Int) -> Double {
        let end = options.until * Double(totalSteps)
        let t = min(Double(steps), end)
        switch options.decay {
        case .constant: return options.drop
        case .cosine: return 0.5 * options.drop * (1 + cos(Double.pi * t / max(end, 1e-300)))
        case .linear: return options.drop * (1 - t / max(end, 1e-300))
        }
    }

    // MARK: Updates

    /// Records an update from the masks before and after it, and folds the new masks into the union.
    mutating func record(step: Int, before: [String: [Float]], after: [String: [Float]], epoch: Int, drop: Double) {
        var removed = 0, grown = 0, kept = 0
        for (name, new) in after {
            guard let old = before[name] else { continue }
            var ever = union[name] ?? [UInt8](repeating: 0, count: new.count)
            for i in 0 ..< new.count {
                let was = old[i] != 0, now = new[i] != 0
                if was && !now { removed += 1 }
                if now && !was { grown += 1 }
                if now { kept += 1; ever[i] = 1 }
            }
            union[name] = ever
        }
        updates.append(DSTUpdateRecord(step: step, epoch: epoch, drop: drop, removed: removed, grown: grown, kept: kept,
                                       turnover: Double(grown) / Double(max(kept, 1)), explored: explored))
    }

    /// RigL's update of every layer, in place: drop the int(n·f) smallest |w| among the active,
    /// grow as many of the largest |dense gradient| among the connections not kept after the drop
    /// (a connection dropped and regrown keeps its weight and momentum; a new one starts at 0
    /// with zero momentum). Ties go to the lower flat index (no noise). Per-layer counts unchanged.
    /// - Complexity: O(n log n) per layer of n weights.
    static func rigLUpdate(names: [String], fraction: Double, weights: inout [String: [Float]], masks: inout [String: [Float]],
                           momentum: inout MomentumSGD, gradients: [String: [Float]], growth: DSTGrowth, rng: inout SeededGenerator) {
        for name in names {
            guard var mask = masks[name], var w = weights[name] else { continue }
            let active = (0 ..< mask.count).filter { mask[$0] != 0 }
            // TensorFlow casts n_ones to float32 and truncates.
            let nPrune = Int(Float(active.count) * Float(fraction))
            guard nPrune > 0 else { continue }
            let byMagnitude = active.sorted { abs(w[$0]) != abs(w[$1]) ? abs(w[$0]) > abs(w[$1]) : $0 < $1 }
            var kept = [Bool](repeating: false, count: mask.count)
            for i in byMagnitude.prefix(active.count - nPrune) { kept[i] = true }
            let candidates = (0 ..< mask.count).filter { !kept[$0] }
            let grown = growthOrder(candidates, growth: growth, scores: growth == .momentum ? momentum.buffers[name] : gradients[name],
                                    rng: &rng).prefix(nPrune)
            var new = kept
            for i in grown { new[i] = true }
            var buffer = momentum.buffers[name]
            for i in 0 ..< mask.count {
                let wasActive = mask[i] != 0
                if !new[i] || !wasActive {
                    w[i] = 0
                    buffer?[i] = 0
                }
                mask[i] = new[i] ? 1 : 0
            }
            if let buffer { momentum.setBuffer(name, buffer) }
            weights[name] = w
            masks[name] = mask
        }
    }

    /// `candidates` in growth order: largest |score| first (ties: lower index), or a seeded shuffle.
    private static func growthOrder(_ candidates: [Int], growth: DSTGrowth, scores: [Float]?, rng: inout SeededGenerator) -> [Int] {
        guard growth != .random, let scores else {
            var order = candidates
            for i in stride(from: order.count - 1, to: 0, by: -1) {
                let j = Int(rng.next() % UInt64(i + 1))
                order.swapAt(i, j)
            }
            return order
        }
        return candidates.sorted { abs(scores[$0]) != abs(scores[$1]) ? abs(scores[$0]) > abs(scores[$1]) : $0 < $1 }
    }

    /// sparselearning's `Masking.truncate_weights` (SET, SNFS, DSR) or ITOP's (per-layer
    /// magnitude prune and exactly as many grown), in place. `weights` are the current weights
    /// (zero where inactive), `gradients` the last batch's dense gradients.
    /// - Complexity: O(n log n) per layer of n weights (plus up to 1000 passes of the
    ///   redistribution loop over the layers).
    mutating func truncate(names: [String], weights: inout [String: [Float]], masks: inout [String: [Float]],
                           momentum: MomentumSGD, gradients: [String: [Float]], rng: inout SeededGenerator) {
        let layers = names.filter { masks[$0] != nil && weights[$0] != nil }
        guard !layers.isEmpty else { return }
        func count(_ m: [Float]) -> Double { Double(m.reduce(0) { $0 + ($1 != 0 ? 1 : 0) }) }
        let growth = options.growth
        let growthScores: (String) -> [Float]? = { name in
            switch growth {
            case .momentum: return momentum.buffers[name]
            case .gradient: return gradients[name]
            case .random: return nil
            }
        }
        if options.method == .itop {
            for name in layers {
                guard var mask = masks[name], var w = weights[name] else { continue }
                let nonzeros = count(mask), zeros = Double(mask.count) - nonzeros
                let numRemove = (rate * nonzeros).rounded(.up)
                if numRemove > 0 { Self.magnitudePrune(&mask, w, k: Int((zeros + numRemove).rounded(.up))) }
                let regrow = Int(nonzeros - count(mask))
                Self.grow(&mask, regrow: regrow, growth: options.growth, scores: growthScores(name), rng: &rng)
                for i in 0 ..< w.count where mask[i] == 0 { w[i] = 0 }
                masks[name] = mask; weights[name] = w
            }
            return
        }
        // gather_statistics
        var variance: [String: Double] = [:], nonzeros: [String: Double] = [:], zeros: [String: Double] = [:]
        var totalVariance = 0.0
        for name in layers {
            guard let mask = masks[name], let w = weights[name] else { continue }
            let v: Double
            switch options.redistribution {
            case .momentum:
                var sum = 0.0, n = 0
                if let b = momentum.buffers[name] { for i in 0 ..< mask.count where mask[i] != 0 { sum += Double(abs(b[i])); n += 1 } }
                v = n == 0 ? .nan : sum / Double(n)
            case .nonzero: v = Double(w.reduce(0) { $0 + ($1 != 0 ? 1 : 0) })
            case .none: v = Double(mask.count) / baselineNonzero
            }
            variance[name] = v
            if !v.isNaN { totalVariance += v }
            nonzeros[name] = count(mask)
            zeros[name] = Double(mask.count) - count(mask)
        }
        if totalVariance != 0 { for name in layers { variance[name, default: 0] /= totalVariance } }
        // adjust_prune_rate
        var rates: [String: Double] = [:]
        for name in layers {
            rates[name] = rate
            let size = Double(masks[name]?.count ?? 1)
            let sparsity = (zeros[name] ?? 0) / size
            if sparsity < 0.2 {
                let expectedVsActual = (1.0 / Double(layers.count)) / (variance[name] ?? .nan)
                if expectedVsActual < 1 { rates[name] = min(sparsity, rate) }
            }
        }
        // prune
        var totalRemoved = 0.0
        if options.method == .dsr {
            totalRemoved = globalMagnitudePrune(layers, rate: rates[layers[layers.count - 1]] ?? rate, weights: weights,
                                                masks: &masks, nonzeros: nonzeros)
        } else {
            for name in layers {
                guard var mask = masks[name], let w = weights[name] else { continue }
                let numRemove = ((rates[name] ?? rate) * (nonzeros[name] ?? 0)).rounded(.up)
                if numRemove == 0 {
                    mask = w.map { $0 != 0 ? 1 : 0 }
                } else if options.prune == .negativity {
                    Self.negativityPrune(&mask, w, zeros: zeros[name] ?? 0, numRemove: numRemove)
                } else {
                    Self.magnitudePrune(&mask, w, k: Int(((zeros[name] ?? 0) + numRemove).rounded(.up)))
                }
                totalRemoved += (nonzeros[name] ?? 0) - count(mask)
                masks[name] = mask
            }
        }
        // calc_growth_redistribution, with its overgrowth loop
        var regrowth: [String: Double] = [:]
        var residual = 9999.0, meanResidual = 0.0, iterations = 0
        while residual > 0 && iterations < 1000 {
            residual = 0
            for name in layers {
                let numRemove = ((rates[name] ?? rate) * (nonzeros[name] ?? 0)).rounded(.up)
                let maxRegrowth = (zeros[name] ?? 0) + numRemove
                var r: Double
                if let previous = regrowth[name] { r = previous } else {
                    let share = ((variance[name] ?? 0) * (totalRemoved + adjustedGrowth)).rounded(.up)
                    r = share.isFinite ? share : 0
                }
                r += meanResidual
                if r > 0.99 * maxRegrowth {
                    regrowth[name] = 0.99 * maxRegrowth
                    residual += r - 0.99 * maxRegrowth
                } else {
                    regrowth[name] = r
                }
            }
            meanResidual = regrowth.isEmpty ? 0 : residual / Double(regrowth.count)
            iterations += 1
        }
        if options.method == .dsr {
            for name in layers {
                let expectedRemoved = baselineNonzero * (rates[name] ?? rate)
                regrowth[name] = expectedRemoved == 0 ? 0 : ((totalRemoved / expectedRemoved) * (regrowth[name] ?? 0)).rounded(.down)
            }
        }
        // growth, then apply_mask
        var totalNonzeroNew = 0.0
        for name in layers {
            guard var mask = masks[name], var w = weights[name] else { continue }
            let r = (regrowth[name] ?? 0).rounded(.down)
            Self.grow(&mask, regrow: r.isFinite ? Int(r) : 0, growth: options.growth, scores: growthScores(name), rng: &rng)
            totalNonzeroNew += count(mask)
            for i in 0 ..< w.count where mask[i] == 0 { w[i] = 0 }
            masks[name] = mask; weights[name] = w
        }
        // the residual smoothing of future growth
        adjustments.append(baselineNonzero - totalNonzeroNew)
        let mean = adjustments.reduce(0, +) / Double(adjustments.count)
        adjustedGrowth = 0.25 * adjustedGrowth + 0.75 * (baselineNonzero - totalNonzeroNew) + mean
    }

    /// sparselearning's magnitude_prune: the k smallest |w| of the whole tensor (inactive ones,
    /// being 0, first; ties to the lower index) get mask 0.
    private static func magnitudePrune(_ mask: inout [Float], _ w: [Float], k: Int) {
        let order = (0 ..< w.count).sorted { abs(w[$0]) != abs(w[$1]) ? abs(w[$0]) < abs(w[$1]) : $0 < $1 }
        for i in order.prefix(max(0, min(k, w.count))) { mask[i] = 0 }
    }

    /// sparselearning's magnitude_and_negativity_prune (prune mode `SET`), as shipped: the
    /// ceil(zeros + r/2) smallest |w| get mask 0, then every weight but the ceil(r/2) most
    /// negative (signed ascending order; ties to the lower index) — so at most ceil(r/2) of the
    /// layer stay and the regrowth refills the rest.
    /// - Complexity: O(n log n) for n weights.
    static func negativityPrune(_ mask: inout [Float], _ w: [Float], zeros: Double, numRemove: Double) {
        magnitudePrune(&mask, w, k: Int((zeros + numRemove / 2).rounded(.up)))
        let half = Int((numRemove / 2).rounded(.up))
        let ascending = (0 ..< w.count).sorted { w[$0] != w[$1] ? w[$0] < w[$1] : $0 < $1 }
        for i in ascending.dropFirst(half) { mask[i] = 0 }
    }

    /// sparselearning's growth functions: random_growth (each inactive connection grows with
    /// probability regrow / inactive), momentum_growth / ITOP's gradient_growth (the `regrow`
    /// largest |score| among inactive connections).
    private static func grow(_ mask: inout [Float], regrow: Int, growth: DSTGrowth, scores: [Float]?, rng: inout SeededGenerator) {
        guard regrow > 0 else { return }
        if growth == .random || scores == nil {
            let inactive = mask.reduce(0) { $0 + ($1 == 0 ? 1 : 0) }
            guard inactive > 0 else { return }
            let p = Double(regrow) / Double(inactive)
            for i in 0 ..< mask.count where rng.uniform() < p { mask[i] = 1 }
            return
        }
        guard let scores else { return }
        // |score| · (mask == 0), sorted descending over the whole tensor.
        let masked = (0 ..< mask.count).map { mask[$0] == 0 ? abs(scores[$0]) : 0 }
        let order = (0 ..< mask.count).sorted { masked[$0] != masked[$1] ? masked[$0] > masked[$1] : $0 < $1 }
        for i in order.prefix(regrow) { mask[i] = 1 }
    }

    /// sparselearning's global_magnitude_prune (DSR): a global |w| threshold adapted until the
    /// removed count is within 2% of ceil(rate · baseline); returns the removed count.
    private mutating func globalMagnitudePrune(_ layers: [String], rate: Double, weights: [String: [Float]],
                                               masks: inout [String: [Float]], nonzeros: [String: Double]) -> Double {
        let tolerance = 0.02
        let toKill = (rate * baselineNonzero).rounded(.up)
        var totalRemoved = 0.0, previous = 0.0
        while totalRemoved < toKill * (1 - tolerance) || totalRemoved > toKill * (1 + tolerance) {
            totalRemoved = 0
            let threshold = Float(pruneThreshold)
            for name in layers {
                guard let w = weights[name] else { continue }
                let remain = w.reduce(0) { $0 + (abs($1) > threshold ? 1 : 0) }
                totalRemoved += (nonzeros[name] ?? 0) - Double(remain)
            }
            if previous == totalRemoved { break }
            previous = totalRemoved
            if totalRemoved > toKill * (1 + tolerance) {
                pruneThreshold *= 1 - increment
                increment *= 0.99
            } else if totalRemoved < toKill * (1 - tolerance) {
                pruneThreshold *= 1 + increment
                increment *= 0.99
            }
        }
        let threshold = Float(pruneThreshold)
        for name in layers {
            guard let w = weights[name] else { continue }
            masks[name] = w.map { abs($0) > threshold ? 1 : 0 }
        }
        return Double(Int(totalRemoved))
    }
}
