/// SNIP (Lee et al. 2019), SPEC §2: one training batch, saliency |∂L/∂m| = |g ⊙ w| of the
/// cross-entropy with training-mode batch norm, taken at masks m = 1.
///
/// The scores returned are the raw saliencies |∂L/∂m| (what the reference exports). The
/// reference divides them by their sum before ranking; a positive scale does not change the
/// ranking, so the keep rule (every score ≥ the ⌊k·N⌋-th largest) runs on the raw values.
/// `Scalar` is the arithmetic (Float in production; Double to measure Float's rounding).
struct SnipScoring<Scalar: NNScalar>: ScoreFunction {
    let options: SnipOptions
    var scope: ScoreScope { .weights }
    var keepRule: KeepRule { .keepTopFloorWithTies }

    func scores(network: Network, alive: [String: [UInt8]], data: Dataset?, seed: UInt64) throws -> [String: [Float]] {
        guard let data else { throw PruneError.needsData(pruner: "snip") }
        let batch = try PrunerData.batches(data, size: options.batch, count: 1, seed: seed)[0]
        let model = DifferentiableNetwork<Scalar>(network, parametersRequireGrad: false)
        let specs = network.architecture.prunable
        // Masks are the differentiation variables: ∂L/∂m = g ⊙ w. Weights already pruned are 0
        // in `network`, so they score 0 whatever their mask.
        let masks: [Variable<Scalar>] = try specs.map { try GradientScoring.maskLeaf(alive[$0.name], shape: $0.shape) }
        model.masks = Dictionary(uniqueKeysWithValues: zip(specs.map(\.name), masks))
        let loss = try model.loss(Variable(converting: batch.images), labels: batch.labels, train: true)
        let gradients = try Autodiff.grad(of: loss, wrt: masks)
        return Dictionary(uniqueKeysWithValues: zip(specs.map(\.name), gradients.map { $0.values.map { Float(abs($0).doubleValue) } }))
    }
}

/// Small pieces the gradient pruners share.
enum GradientScoring {
    /// A mask leaf that requires a gradient: the alive entries as 0/1, or all ones when `alive`
    /// is nil (a fresh network).
    static func maskLeaf<S: NNScalar>(_ alive: [UInt8]?, shape: [Int]) throws -> Variable<S> {
        let count = shape.reduce(1, *)
        let values: [S] = alive?.map { $0 == 0 ? 0 : 1 } ?? [S](repeating: 1, count: count)
        return try Variable(shape: shape, values: values, requiresGrad: true)
    }

    /// The mask of `name` as a constant (entries of `alive`, or ones).
    static func maskConstant<S: NNScalar>(_ alive: [UInt8]?, shape: [Int]) throws -> Variable<S> {
        let count = shape.reduce(1, *)
        let values: [S] = alive?.map { $0 == 0 ? 0 : 1 } ?? [S](repeating: 1, count: count)
        return try Variable(shape: shape, values: values)
    }
}
