/// GraSP (Wang et al. 2020), SPEC §2, as the reference computes it:
///
/// - a copy of the network whose conv/linear weights are re-initialised (Kaiming normal from
///   `seed`'s "grasp.reinit" streams) unless `reinitialise` is false;
/// - `samplesPerClass` samples of every class, stacked class by class, split in halves;
/// - logits divided by T, cross-entropy, training-mode batch norm;
/// - g = ∇L(first half) + ∇L(second half) over the conv/linear weights (no graph);
/// - Hg = Σ over the halves of H·g, the exact Hessian-vector product of that half's loss
///   (forward-over-reverse on `FirstOrderPass`: the tangent of the gradient along g);
/// - score = −w ⊙ Hg (the reference ranks it divided by |Σ score| + 1e-10, a positive scale);
///   keep every score ≤ the ⌊s·N⌋-th largest.
struct GraspScoring<Scalar: NNScalar>: ScoreFunction {
    let options: GraspOptions
    var scope: ScoreScope { .weights }
    var keepRule: KeepRule { .removeTopFloorKeepThreshold }

    func scores(network: Network, alive: [String: [UInt8]], data: Dataset?, seed: UInt64) throws -> [String: [Float]] {
        guard let data else { throw PruneError.needsData(pruner: "grasp") }
        let sample = try PrunerData.samplesPerClass(data, perClass: options.samplesPerClass, seed: seed)
        guard sample.count >= 2 else {
            throw PruneError.badScores(pruner: "grasp", detail: "needs at least 2 samples to split in halves, \(data.name) gave \(sample.count)")
        }
        let halves = [PrunerData.slice(sample, 0 ..< sample.count / 2), PrunerData.slice(sample, sample.count / 2 ..< sample.count)]

        // The forward pass runs on w ⊙ m with every other learnable parameter as it is. The
        // variables are the weights w: ∂L/∂w = m ⊙ ∂L/∂(w⊙m), and for the Hessian in w,
        // H_w·g = m ⊙ H_(w⊙m)·(m ⊙ g), so the tangent of the effective weights is m ⊙ g.
        let architecture = network.architecture
        let specs = architecture.prunable
        var parameters: [String: [Scalar]] = [:], weights: [[Scalar]] = [], masks: [[Scalar]] = []
        for spec in architecture.parameters where spec.isLearnable && !spec.isPrunable {
            parameters[spec.name] = try network.values(spec)
        }
        for spec in specs {
            let w: [Scalar] = options.reinitialise
                ? Network.kaimingNormal(shape: spec.shape, seed: seed, name: "grasp.reinit." + spec.streamName).data.map { Scalar(Double($0)) }
                : try network.values(spec)
            let m: [Scalar] = alive[spec.name].map { a in a.map { $0 == 0 ? 0 : 1 } } ?? [Scalar](repeating: 1, count: spec.count)
            guard m.count == w.count else { throw PruneError.badScores(pruner: "grasp", detail: "mask of \(spec.name) has \(m.count) entries") }
            parameters[spec.name] = zip(w, m).map { $0 * $1 }
            weights.append(w); masks.append(m)
        }
        let names = specs.map(\.name)
        let temperature = Scalar(options.temperature)
        /// ∂L/∂w of a half's tempered loss and, given a direction v over the weights, H_w·v.
        func gradient(_ batch: Batch, direction: [[Scalar]]? = nil) throws -> (gradient: [[Scalar]], hessianVector: [[Scalar]]) {
            let tangents = direction.map { v in Dictionary(uniqueKeysWithValues: zip(names, zip(v, masks).map { zip($0, $1).map { $0 * $1 } })) }
            let (g, hv) = try FirstOrderPass<Scalar>.crossEntropyGradient(architecture, parameters: parameters, batch: batch, temperature: temperature,
                                                                          tangents: tangents, wanted: Set(names))
            func masked(_ values: [String: [Scalar]]) -> [[Scalar]] {
                zip(specs, masks).map { spec, m in values[spec.name].map { zip($0, m).map { $0 * $1 } } ?? [Scalar](repeating: 0, count: spec.count) }
            }
            return (masked(g), direction == nil ? [] : masked(hv))
        }
        func add(_ a: [[Scalar]], _ b: [[Scalar]]) -> [[Scalar]] {
            a.isEmpty ? b : zip(a, b).map { zip($0, $1).map { $0 + $1 } }
        }

        var g: [[Scalar]] = []
        for half in halves {
            try Cancellation.check()
            g = add(g, try gradient(half).gradient)
        }
        var hessianGradient: [[Scalar]] = []
        for half in halves {
            try Cancellation.check()
            hessianGradient = add(hessianGradient, try gradient(half, direction: g).hessianVector)
        }

        // The reference ranks score / (|Σ score| + 1e-10) but exports the raw −w ⊙ Hg; dividing by
        // a positive constant keeps the order, so the raw scores serve both.
        return Dictionary(uniqueKeysWithValues: zip(names, zip(weights, hessianGradient).map { w, hg in
            zip(w, hg).map { Float((-$0 * $1).doubleValue) }
        }))
    }
}
