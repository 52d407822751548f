import Foundation
import Kernels

// Pruning at initialisation: the pruners as constants (`snip`, `erk`…) and `prune`.

/// The pruners as constants, in the paper's order, with their reference defaults.
let pruneConstants: [Constant] = [
    Constant("snip", .native(PrunerObject(.snip())),
             summary: "SNIP: keeps the weights with the largest |g ⊙ w| on one training batch (batch: 128)."),
    Constant("grasp", .native(PrunerObject(.grasp())),
             summary: "GraSP: Hessian-gradient scores on samples_per_class: 25 per class, T: 200, reinit: true."),
    Constant("synflow", .native(PrunerObject(.synflow())),
             summary: "SynFlow: data-free iterative synaptic-flow pruning over rounds: 100."),
    Constant("prospr", .native(PrunerObject(.prospr())),
             summary: "ProsPr: meta-gradient through steps: 3 SGD steps (lr: 0.5, momentum: 0.9, batch: 512)."),
    Constant("uniform", .native(PrunerObject(.uniform)),
             summary: "Random pruning with one global ranking over all conv/linear weights and biases."),
    Constant("er", .native(PrunerObject(.er)),
             summary: "Erdős–Rényi random pruning: per-layer density proportional to Σshape/Πshape."),
    Constant("erk", .native(PrunerObject(.erk)),
             summary: "Erdős–Rényi-kernel random pruning (dense-layer rule for layers whose density would exceed 1)."),
    Constant("dense", .native(PrunerObject(.dense)),
             summary: "Keeps every weight (sparsity must be 0)."),
]

/// The pruner-specific keywords of `prune` and the pruners they apply to.
private let prunerKeywords: [(keyword: String, pruners: [String])] = [
    ("batch", ["snip", "prospr"]),
    ("samples_per_class", ["grasp"]),
    ("T", ["grasp"]),
    ("reinit", ["grasp"]),
    ("rounds", ["synflow"]),
    ("steps", ["prospr"]),
    ("lr", ["prospr"]),
    ("momentum", ["prospr"]),
]

let pruneBuiltins: [Builtin] = [
    Builtin("prune",
            [Param("net", .native("network")), Param("pruner", .native("pruner")), Param("sparsity", .float),
             Param("seed", .int, default: .int(0)), Param("data", .optional(.native("dataset")), default: Value.none),
             Param("batch", .optional(.int), default: Value.none), Param("scores", .bool, default: .bool(false)),
             Param("compat", .string, default: .string("paper")),
             Param("from", .string, default: .string("unpruned")),
             Param("samples_per_class", .optional(.int), default: Value.none), Param("T", .optional(.float), default: Value.none),
             Param("reinit", .optional(.bool), default: Value.none), Param("rounds", .optional(.int), default: Value.none),
             Param("steps", .optional(.int), default: Value.none), Param("lr", .optional(.float), default: Value.none),
             Param("momentum", .optional(.float), default: Value.none)],
            returns: "table",
            summary: "Prunes a network at initialisation to a sparsity in [0, 1) (fraction removed) and returns the per-layer table "
                + "(t.layers, t.total, t[-1]; {table, scores} with scores: true). The new masks replace the old ones: every prune "
                + "scores the weights the net was initialised or loaded with, as if it had never been pruned, so pruning one net "
                + "several times gives what a fresh net would; from: \"current\" instead prunes further from the current masks "
                + "(iterative pruning; score-based pruners only). density(net), the table, unroll and save_weights always agree on "
                + "what is kept. A warning under the table says when a layer keeps no weight or the kept count misses the target "
                + "beyond the pruner's randomness. Table builtins (filter, write_csv, plot, fit…) take the table as its layer "
                + "rows only (layer, params, kept, density; the total stays at t.total). snip, grasp, prospr score on data: (default: the training split matching the "
                + "model's classes); pruner keywords default to the reference's (?snip, ?grasp…). On an error or Ctrl-C the "
                + "network is unchanged.",
            example: "prune(net, erk, 0.98, seed: 1);  prune(net, snip, 0.95, data: synthetic(), batch: 64);  prune(net, snip, 0.99, from: \"current\");  write_csv(prune(net, erk, 0.9), \"layers.csv\")") { args in
        let net = try args.native("net", as: NetworkObject.self).network
        let pruner = try configuredPruner(args)
        let sparsity = try args.double("sparsity")
        var data: Dataset?
        if case .native(let object as DatasetObject)? = args.optional("data") { data = object.dataset }
        // The kernel's checks, before default data is loaded, each blamed on its argument.
        do { try pruner.check(sparsity: sparsity, network: net, data: data) } catch let error as PruneError {
            throw blame(error, pruner, args)
        }
        let seed = try args.int("seed")
        guard seed >= 0 else { throw args.bad("seed", "seed must be >= 0, got \(seed)") }
        let compat: PruneCompat
        switch try args.string("compat") {
        case "paper": compat = .paper
        case "reference": compat = .reference
        case let other: throw args.bad("compat", "\"paper\" or \"reference\" expected, got \(Display.quoted(other))")
        }
        let from: PruneStart
        switch try args.string("from") {
        case "unpruned": from = .unpruned
        case "current": from = .current
        case let other: throw args.bad("from", "\"unpruned\" (replace the masks) or \"current\" (prune further from them) expected, got \(Display.quoted(other))")
        }
        if data == nil, pruner.needsData {
            data = try defaultTrainingData(for: net, pruner: pruner.name, args.interpreter)
        }

        let options = PruneOptions(compat: compat, from: from, keepScores: try args.bool("scores"))
        let report: PruneReport
        do {
            report = try prune(net, pruner, sparsity: sparsity, seed: UInt64(seed), data: data, options: options)
        } catch let error as PruneError {
            throw blame(error, pruner, args)
        }
        let table = Value.native(PruneTableObject(report))
        guard try args.bool("scores") else { return table }
        var scores = Record()
        for (name, tensor) in report.scores ?? [] { scores[name] = .native(TensorObject(tensor)) }
        return .record(Record([("table", table), ("scores", .record(scores))]))
    },
]

/// A refusal of `prune` in the language's words: one about an argument names it.
private func blame(_ error: PruneError, _ pruner: Pruner, _ args: Arguments) -> RuntimeError {
    switch error {
    case let .invalidOption(_, option, value, requirement):
        return args.bad(option, "\(option) = \(value) is invalid for \(pruner.name); it needs \(requirement)")
    case .invalidSparsity, .denseWithSparsity:
        return args.bad("sparsity", "\(error)")
    case .emptyDataset:
        return args.bad("data", "\(error)")
    case let .tooManyClasses(dataset, classes, model, modelClasses):
        return args.bad("data", "dataset \(dataset) has \(classes) classes but \(model) has \(modelClasses) outputs; build the model with classes: \(classes)")
    case let .needsData(name):
        return RuntimeError("prune: \(name) scores weights on training data; pass data: (e.g. cifar10() or synthetic())")
    default:
        return RuntimeError("prune: \(error)")
    }
}

/// The chosen pruner with the given keywords applied; a keyword for another pruner is an error.
/// Its values are checked with the rest by `Pruner.check`.
private func configuredPruner(_ args: Arguments) throws -> Pruner {
    var pruner = try args.native("pruner", as: PrunerObject.self).pruner
    for (keyword, pruners) in prunerKeywords where args.optional(keyword) != nil && !pruners.contains(pruner.name) {
        let own = prunerKeywords.filter { $0.pruners.contains(pruner.name) }.map(\.keyword)
        let takes = own.isEmpty ? "\(pruner.name) takes none" : "\(pruner.name) takes " + own.joined(separator: ", ")
        throw args.bad(keyword, "'\(keyword)' is a \(pruners.joined(separator: " and ")) keyword and does not apply to \(pruner.name); \(takes)")
    }
    func int(_ name: String) -> Int? { if case .int(let i)? = args.optional(name) { return i }; return nil }
    func double(_ name: String) -> Double? { args.optional(name)?.asDouble }
    switch pruner {
    case .snip(var o):
        if let b = int("batch") { o.batch = b }
        pruner = .snip(o)
    case .grasp(var o):
        if let n = int("samples_per_class") { o.samplesPerClass = n }
        if let t = double("T") { o.temperature = t }
        if case .bool(let r)? = args.optional("reinit") { o.reinitialise = r }
        pruner = .grasp(o)
    case .synflow(var o):
        if let r = int("rounds") { o.rounds = r }
        pruner = .synflow(o)
    case .prospr(var o):
        if let s = int("steps") { o.steps = s }
        if let lr = double("lr") { o.learningRate = lr }
        if let m = double("momentum") { o.momentum = m }
        if let b = int("batch") { o.batch = b }
        pruner = .prospr(o)
    case .uniform, .er, .erk, .dense:
        break
    }
    return pruner
}

/// The training split of the dataset whose class count matches the network (SPEC §2), or an
/// error naming the files looked for and suggesting `data: synthetic()`.
/// A missing dataset that `download` can fetch is noted on the interpreter (`missingDataset`),
/// so the REPL can offer the download.
private func defaultTrainingData(for net: Network, pruner: String, _ interpreter: Interpreter) throws -> Dataset {
    let classes = net.architecture.classes
    let suggestion = "or pass data: synthetic(classes: \(classes)) to score on noise, or data: cifar10(\"path/to/folder\")"
    let loader: () throws -> Dataset
    let name: String
    switch classes {
    case 10: (name, loader) = ("cifar10", { try Dataset.cifar10() })
    case 100: (name, loader) = ("cifar100", { try Dataset.cifar100() })
    case 200: (name, loader) = ("tinyimagenet", { try Dataset.tinyImageNet() })
    default:
        throw RuntimeError("prune: \(pruner) scores weights on training data and no dataset has \(classes) classes; pass data: synthetic(classes: \(classes)) or a dataset")
    }
    do {
        return try loader()
    } catch let error as DatasetError {
        var hint = ""
        if case .missing = error, let archive = DatasetArchive.named(name) {
            interpreter.missingDataset = archive.name
            hint = "\n  " + downloadHint(archive)
        }
        throw RuntimeError("prune: \(pruner) scores weights on training data; no data: was given and \(name) is not available: \(error)\(hint)\n  \(suggestion)")
    }
}
