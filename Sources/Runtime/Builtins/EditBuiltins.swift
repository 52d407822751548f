import Foundation
import Kernels
import Lang

// Building and editing networks in the language, for teaching: module constructors (`conv`,
// `linear`, `relu`, …) and `sequential(...)`, which gives a network the zoo's builtins all take,
// and a weight's mask as a tensor (`mask`) or edited entry by entry (`set_mask`).

/// A module of a `sequential(...)` network before it is built.
public final class ModuleObject: NativeValue {
    public let module: SequentialModule
    public init(_ module: SequentialModule) { self.module = module }
    public var typeName: String { "module" }
    public func display(long: Bool) -> String { module.spelling }
}

private func moduleName(_ args: Arguments) throws -> String? {
    guard let v = args.optional("name") else { return nil }
    guard case .string(let s) = v, !s.isEmpty, !s.contains(".") else {
        throw args.bad("name", "a non-empty name without dots expected, got \(Display.inline(v))")
    }
    return s
}

let editBuiltins: [Builtin] = [
    Builtin("conv", [Param("in_channels", .int), Param("out_channels", .int), Param("kernel", .int),
                     Param("stride", .int, default: .int(1)), Param("padding", .int, default: .int(0)),
                     Param("groups", .int, default: .int(1)), Param("bias", .bool, default: .bool(false)),
                     Param("name", .optional(.string), default: Value.none)], returns: "module",
            summary: "A 2-d convolution module for sequential(...), as PyTorch's nn.Conv2d (square kernel; padding 0 unless given; no bias unless bias: true).",
            example: "conv(1, 2, 3, padding: 1);  conv(2, 2, 3, stride: 2, padding: 1, name: \"conv2\")") { args in
        .native(ModuleObject(.conv(inChannels: try args.int("in_channels"), outChannels: try args.int("out_channels"),
                                   kernel: try args.int("kernel"), stride: try args.int("stride"), padding: try args.int("padding"),
                                   groups: try args.int("groups"), bias: try args.bool("bias"), name: try moduleName(args))))
    },
    Builtin("linear", [Param("in_features", .int), Param("out_features", .int), Param("bias", .bool, default: .bool(true)),
                       Param("name", .optional(.string), default: Value.none)], returns: "module",
            summary: "A fully connected module for sequential(...), as PyTorch's nn.Linear (with bias unless bias: false).",
            example: "linear(8, 3)") { args in
        .native(ModuleObject(.linear(inFeatures: try args.int("in_features"), outFeatures: try args.int("out_features"),
                                     bias: try args.bool("bias"), name: try moduleName(args))))
    },
    Builtin("batchnorm", [Param("name", .optional(.string), default: Value.none)], returns: "module",
            summary: "A batch-norm module for sequential(...) (channels taken from the module before it).",
            example: "sequential(conv(1, 4, 3), batchnorm(), relu(), flatten(), linear(16, 2))") { args in
        .native(ModuleObject(.batchNorm(name: try moduleName(args))))
    },
    Builtin("relu", [], returns: "module", summary: "A ReLU module for sequential(...).", example: "relu()") { _ in
        .native(ModuleObject(.relu))
    },
    Builtin("maxpool", [Param("kernel", .int)], returns: "module",
            summary: "A max-pooling module (window = stride = kernel) for sequential(...).", example: "maxpool(2)") { args in
        .native(ModuleObject(.maxPool(kernel: try args.int("kernel"))))
    },
    Builtin("avgpool", [Param("kernel", .int)], returns: "module",
            summary: "An average-pooling module (window = stride = kernel) for sequential(...).", example: "avgpool(2)") { args in
        .native(ModuleObject(.avgPool(kernel: try args.int("kernel"))))
    },
    Builtin("flatten", [], returns: "module", summary: "Flattens a [C, H, W] map into a vector, for sequential(...).", example: "flatten()") { _ in
        .native(ModuleObject(.flatten))
    },
    Builtin("sequential", [.variadic("modules", .native("module")), Param("input", .optional(.list), default: Value.none),
                           Param("seed", .int, default: .int(0)), Param("name", .string, default: .string("Sequential"))],
            returns: "network",
            summary: "A small custom network from modules in order (named \"0\", \"1\", … as in PyTorch unless a module has name:); it prunes, unrolls, draws and measures like the zoo's models. input: [C, H, W] per sample (default: the smallest square input that fits); classes = the last layer's outputs.",
            example: "net = sequential(conv(1, 2, 3, padding: 1), relu(), conv(2, 2, 3, stride: 2, padding: 1), flatten(), linear(8, 3))") { args in
        let modules = try args.list("modules").map { v -> SequentialModule in
            guard case .native(let m as ModuleObject) = v else { throw args.bad("modules", "module expected, got \(v.typeName)") }
            return m.module
        }
        var input: [Int]?
        if let v = args.optional("input") {
            guard case .list(let dims) = v, dims.count == 3, case .int(let c) = dims[0], case .int(let h) = dims[1], case .int(let w) = dims[2] else {
                throw args.bad("input", "[C, H, W] expected, got \(Display.inline(v))")
            }
            input = [c, h, w]
        }
        let seed = try args.int("seed")
        guard seed >= 0 else { throw args.bad("seed", "seed must be >= 0, got \(seed)") }
        do {
            let architecture = try ModelZoo.sequential(modules, input: input, name: try args.string("name"))
            return .native(NetworkObject(Network(architecture: architecture, seed: UInt64(seed)), modelName: "sequential"))
        } catch let error as SequentialError {
            throw RuntimeError("sequential: \(error.description)")
        }
    },
    Builtin("mask", [Param("net", .native("network")), Param("name", .string)], returns: "tensor",
            summary: "The keep-mask of a conv or linear weight as a tensor of 0s and 1s with the weight's shape (name with or without \".weight\").",
            example: "m = mask(net, \"conv1.weight\");  sum(m.values)") { args in
        let net = try args.native("net", as: NetworkObject.self).network
        let (key, shape) = try MaskArguments.weight(args, net)
        let values = (net.masks[key] ?? []).map(Float.init)
        return .native(TensorObject(Tensor(shape: shape, data: values)))
    },
    Builtin("set_mask", [Param("net", .native("network")), Param("name", .string),
                         Param("where", .oneOf([.list, .native("tensor")])), Param("value", .optional(.number), default: Value.none)],
            returns: "none",
            summary: "Edits a weight's keep-mask: set_mask(net, name, [o, i, kh, kw], 0 or 1) sets one entry; set_mask(net, name, m) replaces the whole mask with a tensor (or nested list) of its shape, nonzero = kept. Masked weights become 0.",
            example: "set_mask(net, \"conv1.weight\", [0, 0, 1, 1], 0);  set_mask(net, \"conv1.weight\", tensor([0] * 18, shape: [2, 1, 3, 3]))") { args in
        let object = try args.native("net", as: NetworkObject.self)
        let net = object.network
        let (key, shape) = try MaskArguments.weight(args, net)
        var mask = net.masks[key] ?? []
        var turnedOn: [Int] = []
        if let value = args.optional("value") {
            guard case .list(let items) = args["where"] else { throw args.bad("where", "an index list [o, i, kh, kw] expected with value:") }
            var flat = 0
            guard items.count == shape.count else {
                throw args.bad("where", "\(key) has shape \(Tensor.describe(shape)): expected \(shape.count) indices, got \(items.count)")
            }
            for (item, n) in zip(items, shape) {
                guard case .int(let i) = item, i >= 0, i < n else {
                    throw args.bad("where", "index \(Display.inline(item)) out of range for \(key) of shape \(Tensor.describe(shape))")
                }
                flat = flat * n + i
            }
            guard let v = value.asDouble, v == 0 || v == 1 else { throw args.bad("value", "0 (remove) or 1 (keep) expected, got \(Display.inline(value))") }
            if v == 1 && mask[flat] == 0 { turnedOn.append(flat) }
            mask[flat] = UInt8(v)
        } else {
            let values: [Float], given: [Int]
            switch args["where"] {
            case .native(let t as TensorObject): (values, given) = (t.tensor.data, t.tensor.shape)
            default:
                var flat: [Float] = []
                given = try nestedList(args["where"], into: &flat, args)
                values = flat
            }
            guard values.count == mask.count, given.reduce(1, *) == mask.count, given == shape || given.count == 1 else {
                throw args.bad("where", "a mask of shape \(Tensor.describe(shape)) expected, got \(Tensor.describe(given))")
            }
            for (i, v) in values.enumerated() {
                let keep: UInt8 = v != 0 ? 1 : 0
                if keep == 1 && mask[i] == 0 { turnedOn.append(i) }
                mask[i] = keep
            }
        }
        // A weight kept again takes its unmasked value back (Network.setMask); one whose unmasked
        // value is itself 0 (e.g. loaded from a pruned checkpoint) still draws no edge: say so.
        try net.setMask(key, mask)
        let zeroed = turnedOn.filter { net.parameter(key)?.data[$0] == 0 }.count
        if zeroed > 0 {
            args.interpreter.writeError("note: \(zeroed) kept weight\(zeroed == 1 ? " is" : "s are") exactly 0 in the net's weights and draw\(zeroed == 1 ? "s" : "") no edge until load_weights gives \(zeroed == 1 ? "it a value" : "them values")\n")
        }
        return .none
    },
]

enum MaskArguments {
    /// The prunable weight that argument "name" names (".weight" optional) and its shape.
    static func weight(_ args: Arguments, _ net: Network) throws -> (String, [Int]) {
        let given = try args.string("name")
        let prunable = net.architecture.prunable
        for key in [given, given + ".weight"] {
            if let spec = prunable.first(where: { $0.name == key }) { return (key, spec.shape) }
        }
        let hint = closestName(to: given, among: prunable.map(\.name)).map { " (did you mean \(Display.quoted($0))?)" } ?? ""
        throw args.bad("name", "\(net.architecture.name) has no prunable weight \(Display.quoted(given))\(hint)")
    }
}
