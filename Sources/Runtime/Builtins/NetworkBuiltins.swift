import Foundation
import Kernels

// Networks and tensors in the language: the model zoo (`resnet20(dataset: cifar100, seed: 1)`),
// counts, forward / loss, and safetensors files for weights, masks and plain tensors.

/// The language's model builders, in the order `help()` lists them: (name, default classes, what it is).
private let zooModels: [(name: String, defaultClasses: Int, summary: String, example: String)] = [
    ("conv6", 10, "CONV-6: six 3x3 convs (64, 128, 256) with BN and max pooling, then a 256-256 MLP; biases everywhere.",
     "net = conv6(dataset: cifar10)"),
    ("resnet20", 10, "CIFAR ResNet-20 (3 stages of 3 basic blocks, 1x1-conv shortcuts); 272,474 parameters for 10 classes.",
     "net = resnet20();  net = resnet20(dataset: cifar100, seed: 1)"),
    ("resnet32", 10, "CIFAR ResNet-32 (3 stages of 5 basic blocks, 1x1-conv shortcuts).",
     "net = resnet32(classes: 100)"),
    ("wrn28_2", 10, "Wide-ResNet-28-2 (pre-activation, widths 32, 64, 128).",
     "net = wrn28_2(dataset: cifar10, seed: 3)"),
    ("mobilenetv2", 10, "MobileNetV2 for 32x32 inputs (inverted residual blocks with depthwise convs).",
     "net = mobilenetv2(dataset: tinyimagenet)"),
    ("vgg16", 10, "VGG-16. With dataset: imagenet (or a dataset of 3x224x224 images) it is torchvision's vgg16 on 3x224x224 inputs: thirteen 3x3 convs with biases in five max-pooled stages, then classifier.0/3/6 (25088→4096→4096→classes; dropout is the identity at evaluation), 138,357,544 parameters for 1000 classes, torchvision's state-dict names; its MGE has about 15 G dense edges, so unroll picks the implicit form (docs/scale.md). Otherwise the common CIFAR variant on 3x32x32: thirteen 3x3 convs with BN (64 to 512) in five max-pooled stages, then one linear layer (features.0 … classifier); 14,728,266 parameters for 10 classes.",
     "net = vgg16(dataset: cifar10);  net = vgg16(dataset: imagenet);  prune(net, erk, 0.98);  topometrics(unroll(net))"),
    ("vgg16_imagenet", 1000, "The same network as vgg16(dataset: imagenet) (torchvision's vgg16 on 3x224x224), under its earlier name.",
     "net = vgg16_imagenet()"),
    ("resnet50", 1000, "torchvision's resnet50 (v1.5) on 3x224x224 inputs (ImageNet): conv1 7x7/2, bn1, relu, maxpool 3x3/2 pad 1, layer1…layer4 of [3, 4, 6, 3] bottleneck blocks (1x1, 3x3 with the stride, 1x1 ×4; downsample.0/.1 on each layer's first block), avgpool, fc 2048→classes; 25,557,032 parameters for 1000 classes, torchvision's state-dict names (load_weights reads torchvision's .pt files). Its MGE has about 4 G dense edges: unroll picks the implicit form (docs/scale.md).",
     "net = resnet50(dataset: imagenet);  prune(net, erk, 0.9);  m = topometrics(unroll(net))"),
    ("toy", 3, "A tiny residual conv net on 1x6x6 inputs (3 classes by default), small enough to draw every node.",
     "net = toy();  forward(net, tensor([0.5] * 72, shape: [2, 1, 6, 6]))"),
]

/// The dataset builtins a model's `dataset:` keyword accepts by name, with their class counts.
let datasetClassCounts: [String: Int] = ["cifar10": 10, "cifar100": 100, "tinyimagenet": 200, "imagenet": 1000]

/// The per-sample input shape each `dataset:` builtin stands for (TinyImageNet is resized to 32x32).
private let datasetInputShapes: [String: [Int]] = ["cifar10": [3, 32, 32], "cifar100": [3, 32, 32], "tinyimagenet": [3, 32, 32],
                                                   "imagenet": [3, 224, 224]]

/// Models with a variant for 3x224x224 inputs, chosen by `dataset:` (`vgg16(dataset: imagenet)`).
private let imagenetVariants: [String: String] = ["vgg16": "vgg16_imagenet"]

/// Largest class count a model may be built for (a bigger one is almost surely a typo and would
/// allocate an enormous last layer).
private let maxClasses = 100_000

let networkBuiltins: [Builtin] = zooModels.map(modelBuiltin) + [
    Builtin("params", [Param("net", .native("network"))], returns: "int",
            summary: "Number of learnable parameters (weights, biases, BN affine), as PyTorch counts them; pruned weights still count.",
            example: "params(resnet20())  # 272474") { args in
        .int(try args.native("net", as: NetworkObject.self).network.parameterCount)
    },
    Builtin("density", [Param("net", .native("network"))], returns: "float",
            summary: "Fraction of the prunable (conv and linear) weights that are kept: 1.0 before pruning.",
            example: "prune(net, erk, 0.98);  density(net)  # about 0.02") { args in
        let net = try args.native("net", as: NetworkObject.self).network
        return .float(Double(net.keptCount) / Double(max(net.prunableCount, 1)))
    },
    Builtin("forward", [Param("net", .native("network")), Param("x", .native("tensor")), Param("train", .bool, default: .bool(false))],
            returns: "tensor",
            summary: "Logits [N, classes] for inputs x [N, C, H, W]. train: true uses batch statistics and updates the BN running statistics.",
            example: "b = batches(synthetic(), 8, limit: 1)[0];  logits = forward(net, b.x);  logits.shape") { args in
        let net = try args.native("net", as: NetworkObject.self)
        let x = try args.native("x", as: TensorObject.self).tensor
        try checkInput(x, of: net, args)
        do {
            return .native(TensorObject(try Execution.forward(net.network, x: x, train: try args.bool("train"))))
        } catch let error as NNError {
            throw args.bad("x", error.description)
        }
    },
    Builtin("loss", [Param("net", .native("network")), Param("x", .native("tensor")),
                     Param("y", .oneOf([.native("tensor"), .list]))], returns: "float",
            summary: "Mean cross-entropy of the network on inputs x and labels y (a tensor or a list of ints), BN in training mode; running statistics unchanged.",
            example: "b = load_tensors(\"batch.safetensors\");  loss(net, b.x0, b.y0)") { args in
        let net = try args.native("net", as: NetworkObject.self)
        let x = try args.native("x", as: TensorObject.self).tensor
        try checkInput(x, of: net, args)
        let labels = try labelList(args, "y")
        guard labels.count == x.shape[0] else {
            throw args.bad("y", "\(labels.count) labels for a batch of \(x.shape[0]) inputs")
        }
        let classes = net.network.architecture.classes
        if let bad = labels.first(where: { $0 >= classes }) {
            throw args.bad("y", "label \(bad) does not fit \(net.network.architecture.name)'s \(classes) classes (0–\(classes - 1))")
        }
        do {
            return .float(Double(try Execution.loss(net.network, x: x, labels: labels)))
        } catch let error as NNError {
            throw args.bad("x", error.description)
        }
    },
    Builtin("load_weights", [Param("net", .native("network")), Param("path", .string)], returns: "none",
            summary: "Loads a full state dict (PyTorch names) from a safetensors file or a PyTorch torch.save file (.pt/.pth: zip or legacy format; a state dict, or one under state_dict/model/net; a DataParallel 'module.' prefix is dropped; F32/F16/BF16/F64 weights). Every parameter must be there with its shape, else nothing changes. A .pt file is read without running anything it holds: a pickled class or function (os.system…) is refused by name. The loaded weights become the ones prune scores; masked weights stay zero. Kept weights that are exactly zero (a pruned checkpoint) are reported: masks_from_weights makes the masks say so.",
            example: "load_weights(net, \"init.safetensors\");  load_weights(net, \"resnet20_erk_0.98.pt\");  masks_from_weights(net)") { args in
        let result = try loadIntoNetwork(args, "load_weights") { try $0.loadStateDict($1) }
        let net = try args.native("net", as: NetworkObject.self).network
        var zeros = 0
        for spec in net.architecture.prunable {
            guard let mask = net.masks[spec.name], let w = net.parameters[spec.name] else { continue }
            for i in 0 ..< mask.count where mask[i] != 0 && w.data[i] == 0 { zeros += 1 }
        }
        if zeros > 0 {
            args.interpreter.writeError("note: \(zeros) weights the masks keep are exactly 0 in \(try args.string("path")) (a pruned checkpoint?): density counts them, unroll draws no edge for them; masks_from_weights(net), load_masks or prune make the masks say what is kept\n")
        }
        return result
    },
    Builtin("save_weights", [Param("net", .native("network")), Param("path", .string)], returns: "none",
            summary: "Writes the state dict (PyTorch names, F32, masked weights 0 as a pruned PyTorch model holds them, BN running statistics) atomically: a safetensors file, or for .pt/.pth a torch.save zip file that torch.load(path, weights_only=True) reads as an OrderedDict, with each BN's num_batches_tracked as Int64 0.",
            example: "save_weights(net, \"pruned.safetensors\");  save_weights(net, \"pruned.pt\")") { args in
        let net = try args.native("net", as: NetworkObject.self).network
        try writeTensors(args, "path", TensorFile.stateDict(of: net, for: try filePath(args, "path")))
        return .none
    },
    Builtin("masks_from_weights", [Param("net", .native("network"))], returns: "float",
            summary: "Sets the mask of every conv/linear weight from its zero pattern (nonzero = kept), for weights loaded from an already-pruned checkpoint; returns the density and prints kept / total.",
            example: "load_weights(net, \"resnet20_erk_0.98.pt\");  masks_from_weights(net)  # about 0.02") { args in
        let (kept, total) = try args.native("net", as: NetworkObject.self).network.setMasksFromWeights()
        args.interpreter.write("masks from weights: \(kept) of \(total) prunable weights kept\n")
        return .float(Double(kept) / Double(max(total, 1)))
    },
    Builtin("load_masks", [Param("net", .native("network")), Param("path", .string)], returns: "none",
            summary: "Loads one mask per conv/linear weight (nonzero = kept) from a safetensors file and zeroes the removed weights; all or nothing.",
            example: "load_masks(net, \"masks.safetensors\");  density(net)") { args in
        try loadIntoNetwork(args, "load_masks") { try $0.loadMasks($1) }
    },
    Builtin("save_masks", [Param("net", .native("network")), Param("path", .string)], returns: "none",
            summary: "Writes the masks (U8, 1 = kept, one per conv/linear weight) to a safetensors file, atomically.",
            example: "save_masks(net, \"masks.safetensors\")") { args in
        let net = try args.native("net", as: NetworkObject.self).network
        try writeTensors(args, "path", net.maskDict())
        return .none
    },
    Builtin("load_tensors", [Param("path", .string)], returns: "record",
            summary: "Every tensor of a safetensors file, as a record of tensors in file order (integer types become floats).",
            example: "b = load_tensors(\"batch.safetensors\");  b.x0.shape") { args in
        let path = try filePath(args, "path")
        var record = Record()
        for (name, t) in try readTensors(args, "path", path) { record[name] = .native(TensorObject(t.tensor)) }
        return .record(record)
    },
    Builtin("save_tensors", [Param("path", .string), Param("tensors", .record)], returns: "none",
            summary: "Writes a record of tensors (or lists of numbers) to a safetensors file as F32, atomically.",
            example: "save_tensors(\"out.safetensors\", {logits: forward(net, b.x)})") { args in
        var entries: [(name: String, tensor: SafeTensor)] = []
        for (name, value) in try args.record("tensors").fields {
            guard let t = tensorValue(value) else {
                throw args.bad("tensors", "field '\(name)' is a \(value.typeName); tensors or lists of numbers expected")
            }
            entries.append((name, SafeTensor(t)))
        }
        try writeTensors(args, "path", entries)
        return .none
    },
    Builtin("tensor", [Param("values", .list), Param("shape", .optional(.list), default: Value.none)], returns: "tensor",
            summary: "A Float tensor from a list of numbers (or nested lists of equal lengths); shape: reshapes the flat values.",
            example: "tensor([[1, 2], [3, 4]]);  tensor([0.5] * 72, shape: [2, 1, 6, 6])") { args in
        var flat: [Float] = []
        let nestedShape = try nestedList(args["values"], into: &flat, args)
        guard case .list(let dims)? = args.optional("shape") else {
            return .native(TensorObject(Tensor(shape: nestedShape, data: flat)))
        }
        var shape: [Int] = []
        for d in dims {
            guard case .int(let n) = d, n >= 0 else { throw args.bad("shape", "dimensions must be non-negative ints, got \(Display.inline(d))") }
            shape.append(n)
        }
        let (count, overflow) = shape.reduce((1, false)) { acc, d in
            let (p, o) = acc.0.multipliedReportingOverflow(by: d); return (p, acc.1 || o)
        }
        guard !overflow, count == flat.count else {
            throw args.bad("shape", "shape \(Tensor.describe(shape)) needs \(overflow ? "too many" : String(count)) values, got \(flat.count)")
        }
        return .native(TensorObject(Tensor(shape: shape, data: flat)))
    },
]

private func modelBuiltin(_ model: (name: String, defaultClasses: Int, summary: String, example: String)) -> Builtin {
    Builtin(model.name, [Param("classes", .optional(.int), default: Value.none),
                         Param("dataset", .optional(.oneOf([.function, .native("dataset")])), default: Value.none),
                         Param("seed", .int, default: .int(0))],
            returns: "network",
            summary: model.summary + " classes: or dataset: (cifar10, cifar100, tinyimagenet, imagenet or a dataset value) set the outputs (default \(model.defaultClasses)); seed: fixes the Kaiming-normal initialisation.",
            example: model.example) { args in
        var classes: Int?
        if case .int(let c)? = args.optional("classes") {
            guard c >= 1, c <= maxClasses else { throw args.bad("classes", "classes must be in 1...\(maxClasses), got \(c)") }
            classes = c
        }
        if let data = args.optional("dataset") {
            let (fromData, label) = try datasetClasses(data, args)
            if let c = classes, c != fromData {
                throw args.bad("classes", "classes: \(c) disagrees with dataset \(label), which has \(fromData) classes; give one of them")
            }
            classes = fromData
        }
        let seed = try args.int("seed")
        guard seed >= 0 else { throw args.bad("seed", "seed must be >= 0, got \(seed)") }
        // The dataset's image size picks the variant: a 224 model refuses 32x32 data and back.
        var zooName = model.name
        var defaultClasses = model.defaultClasses
        if let data = args.optional("dataset"), let (shape, label) = datasetInputShape(data) {
            if shape == [3, 224, 224], let variant = imagenetVariants[model.name] {
                zooName = variant
                defaultClasses = 1000
            }
            let modelShape = ModelZoo.build(zooName, classes: 1)?.nodes.first?.shape ?? []
            let imagenetShape = [3, 224, 224]
            if modelShape != shape && (modelShape == imagenetShape || shape == imagenetShape) {
                let spell = { (s: [Int]) in s.map(String.init).joined(separator: "x") }
                throw args.bad("dataset", "\(model.name) takes \(spell(modelShape)) inputs, but \(label) has \(spell(shape)) images"
                               + (modelShape == imagenetShape ? " (the CIFAR-sized models: resnet20, resnet32, vgg16(dataset: cifar10), …)"
                                                              : " (the ImageNet-sized models: resnet50, vgg16(dataset: imagenet))"))
            }
        }
        guard let architecture = ModelZoo.build(zooName, classes: classes ?? defaultClasses) else {
            throw RuntimeError("internal error: the model zoo does not know '\(model.name)'")
        }
        return .native(NetworkObject(Network(architecture: architecture, seed: UInt64(seed)), modelName: zooName))
    }
}

/// The per-sample image shape a `dataset:` argument stands for, with its name for messages;
/// nil when it says nothing about images (a dataset of other tensors).
private func datasetInputShape(_ value: Value) -> (shape: [Int], label: String)? {
    switch value {
    case .builtin(let b): return datasetInputShapes[b.name].map { ($0, b.name) }
    case .native(let object as DatasetObject):
        let shape = object.dataset.sampleShape
        return shape.count == 3 ? (shape, object.dataset.name) : nil
    default: return nil
    }
}

/// The class count a model's `dataset:` argument stands for, and how to name it in messages.
private func datasetClasses(_ value: Value, _ args: Arguments) throws -> (Int, String) {
    switch value {
    case .builtin(let b):
        if let c = datasetClassCounts[b.name] { return (c, b.name) }
        throw args.bad("dataset", "cifar10, cifar100, tinyimagenet, imagenet or a dataset expected, got builtin '\(b.name)'")
    case .native(let object as DatasetObject):
        return (object.dataset.classes, object.dataset.name)
    default:
        throw args.bad("dataset", "cifar10, cifar100, tinyimagenet, imagenet or a dataset expected, got \(value.typeName)")
    }
}

extension NetworkObject: Summarizable {
    /// One row per conv/linear layer (its weight: shape, count, kept, density), then a total row.
    public func summary() throws -> Value {
        let arch = network.architecture
        var rows: [Value] = []
        for spec in arch.prunable {
            let node = arch.nodes[spec.node]
            let kind: String
            switch node.op {
            case .conv(let c): kind = c.isDepthwise ? "conv dw" : (c.groups > 1 ? "conv g\(c.groups)" : "conv")
            case .linear: kind = "linear"
            default: kind = "weight"
            }
            let kept = network.kept(spec.name)
            rows.append(.record(Record([("layer", .string(node.name)), ("kind", .string(kind)),
                                        ("shape", .string(Tensor.describe(spec.shape))), ("params", .int(spec.count)),
                                        ("kept", .int(kept)), ("density", .float(rounded4(kept, spec.count)))])))
        }
        rows.append(.record(Record([("layer", .string("total")), ("kind", .string("")), ("shape", .string("")),
                                    ("params", .int(network.prunableCount)), ("kept", .int(network.keptCount)),
                                    ("density", .float(rounded4(network.keptCount, network.prunableCount)))])))
        return .list(rows)
    }
}

/// kept / total rounded to 4 decimals, for tables.
func rounded4(_ kept: Int, _ total: Int) -> Double {
    total == 0 ? 0 : (Double(kept) / Double(total) * 10_000).rounded() / 10_000
}

/// Checks that x is a batch of the network's inputs: `[N] + input shape`, N ≥ 1.
private func checkInput(_ x: Tensor, of net: NetworkObject, _ args: Arguments) throws {
    let input = net.network.architecture.nodes.first?.shape ?? []
    guard x.shape.count == input.count + 1, Array(x.shape.dropFirst()) == input, x.shape[0] > 0 else {
        throw args.bad("x", "input has shape \(Tensor.describe(x.shape)), \(net.network.architecture.name) expects N×\(Tensor.describe(input)) with N ≥ 1")
    }
    if let i = x.data.firstIndex(where: { !$0.isFinite }) {
        throw args.bad("x", "input holds a non-finite value at entry \(i)")
    }
}

/// Reads the safetensors file of argument "path" into argument "net" with `load`; entries that
/// do not fit the network (missing, unknown, mis-shaped) are refused naming the file and the model.
private func loadIntoNetwork(_ args: Arguments, _ builtin: String,
                     _ load: (Network, [(name: String, tensor: SafeTensor)]) throws -> Void) throws -> Value {
    let net = try args.native("net", as: NetworkObject.self).network
    let path = try filePath(args, "path")
    let entries = try readTensors(args, "path", path)
    do { try load(net, entries) } catch let error as ModelError {
        throw RuntimeError("\(builtin): \(path) does not fit \(net.architecture.name): \(error)")
    }
    return .none
}
