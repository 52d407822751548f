/// GraSP (Wang et al. 2020), SPEC §2, as the reference computes it:
///
/// - a copy of the network whose conv/linear weights are re-initialised (Kaiming normal from
///   `seed`'s "grasp.reinit" streams) unless `reinitialise` is false;
/// - `samplesPerClass` samples of every class, stacked class by class, split in halves;
/// - logits divided by T, cross-entropy, training-mode batch norm;
/// - g = ∇L(first half) + ∇L(second half) over the conv/linear weights (no graph);
/// - Hg = Σ over the halves of H·g, the exact Hessian-vector product of that half's loss
///   (double backward);
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

        let model = DifferentiableNetwork<Scalar>(network, parametersRequireGrad: false)
        let specs = network.architecture.prunable
        var weights: [Variable<Scalar>] = []
        for spec in specs {
            guard let current = network.parameters[spec.name] else { throw ModelError.missingParameter(spec.name, model: network.architecture.name) }
            let w = options.reinitialise ? Network.kaimingNormal(shape: spec.shape, seed: seed, name: "grasp.reinit." + spec.name) : current
            let leaf = Variable<Scalar>(converting: w, requiresGrad: true)
            model.parameters[spec.name] = leaf
            model.masks[spec.name] = try GradientScoring.maskConstant(alive[spec.name], shape: spec.shape)
            weights.append(leaf)
        }
        let inverseTemperature = Scalar(1 / options.temperature)
        func temperedLoss(_ batch: Batch) throws -> Variable<Scalar> {
            let logits = try model.forward(Variable(converting: batch.images), train: true)
            return try Autodiff.crossEntropy(try Autodiff.scale(logits, by: inverseTemperature), labels: batch.labels)
        }

        var gradient: [Variable<Scalar>] = []
        for half in halves {
            try Cancellation.check()
            let g = try Autodiff.grad(of: try temperedLoss(half), wrt: weights)
            gradient = gradient.isEmpty ? g : try zip(gradient, g).map { try Autodiff.accumulate($0, $1) }
        }
        var hessianGradient: [Variable<Scalar>] = []
        for half in halves {
            try Cancellation.check()
            let hg = try Autodiff.hessianVectorProduct(of: try temperedLoss(half), wrt: weights, vector: gradient).hessianVector
            hessianGradient = hessianGradient.isEmpty ? hg : try zip(hessianGradient, hg).map { try Autodiff.accumulate($0, $1) }
        }

        // The reference ranks score / (|Σ score| + 1e-10) but exports the raw −w ⊙ Hg; dividing by
        // a positive constant keeps the order, so the raw scores serve both.
        return Dictionary(uniqueKeysWithValues: zip(specs.map(\.name), zip(weights, hessianGradient).map { w, hg in
            zip(w.values, hg.values).map { Float((-$0 * $1).doubleValue) }
        }))
    }
}
