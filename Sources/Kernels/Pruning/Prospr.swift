/// ProsPr (Alizadeh et al. 2022), SPEC §2, "full" (second-order) meta-gradient as the
/// reference computes it:
///
/// - masks m = 1 are leaves on every conv/linear weight; the fast parameters start as w ⊙ m
///   for those weights and as copies of every other learnable parameter (biases, batch-norm
///   affine), all of which the inner steps update;
/// - `steps` SGD steps with momentum on the fast parameters, each on a new batch, training-mode
///   batch norm, gradients recorded (create_graph) so the meta-gradient sees second order;
///   the first momentum buffer is the first gradient *detached* (PyTorch's SGD `clone().detach()`,
///   which the reference's functional SGD copies), later ones are μ·buf + g;
/// - the meta-loss is the cross-entropy of the updated fast parameters on the next batch;
/// - score = |∂meta-loss/∂m|; keep exactly the ⌈k·N⌉ largest.
struct ProsprScoring: ScoreFunction {
    let options: ProsprOptions
    var scope: ScoreScope { .weights }
    var keepRule: KeepRule { .keepTopCeilExact }

    func scores(network: Network, alive: [String: [UInt8]], data: Dataset?, seed: UInt64) throws -> [String: [Float]] {
        guard let data else { throw PruneError.needsData(pruner: "prospr") }
        let batches = try PrunerData.batches(data, size: options.batch, count: options.steps + 1, seed: seed)
        let architecture = network.architecture
        let model = DifferentiableNetwork<Float>(network, parametersRequireGrad: false)
        // The fast weights already carry w ⊙ m: the forward pass must not multiply by a mask again.
        model.masks = [:]

        let specs = architecture.prunable
        var masks: [Variable<Float>] = []
        let learnable = architecture.parameters.filter { model.parameters[$0.name] != nil }
        var fast: [Variable<Float>] = []
        for spec in learnable {
            guard let p = model.parameters[spec.name] else { continue }
            if spec.isPrunable {
                let m: Variable<Float> = try GradientScoring.maskLeaf(alive[spec.name], shape: spec.shape)
                masks.append(m)
                fast.append(try Autodiff.multiply(p.leaf(requiresGrad: false), m))
            } else {
                // A leaf so the inner gradients have a target; its own gradient is never read.
                fast.append(p.leaf(requiresGrad: true))
            }
        }
        let names = learnable.map(\.name)
        func loss(_ batch: Batch, _ parameters: [Variable<Float>]) throws -> Variable<Float> {
            try model.loss(Variable(batch.images), labels: batch.labels, train: true,
                           overrides: Dictionary(uniqueKeysWithValues: zip(names, parameters)))
        }

        let progress = Progress(label: "prospr", total: options.steps + 1, unit: "steps")
        defer { progress.finish() }
        let learningRate = Float(options.learningRate), momentum = Float(options.momentum)
        var buffers: [Variable<Float>] = []
        for step in 0 ..< options.steps {
            try Cancellation.check()
            let gradients = try Autodiff.grad(of: try loss(batches[step], fast), wrt: fast, createGraph: true)
            if momentum == 0 {
                buffers = gradients  // no momentum: plain SGD on the recorded gradient
            } else if buffers.isEmpty {
                buffers = gradients.map(\.detached)
            } else {
                buffers = try zip(buffers, gradients).map { try Autodiff.add(try Autodiff.scale($0, by: momentum), $1) }
            }
            fast = try zip(fast, buffers).map { try Autodiff.subtract($0, try Autodiff.scale($1, by: learningRate)) }
            progress.advance()
        }
        try Cancellation.check()
        let meta = try loss(batches[options.steps], fast)
        let metaGradients = try Autodiff.grad(of: meta, wrt: masks)
        progress.advance()
        return Dictionary(uniqueKeysWithValues: zip(specs.map(\.name), metaGradients.map { $0.values.map(abs) }))
    }
}
