/// One module of a `sequential(...)` network, as PyTorch's `nn.Sequential` would hold it.
public enum SequentialModule: Equatable, Sendable {
    case conv(inChannels: Int, outChannels: Int, kernel: Int, stride: Int, padding: Int, groups: Int, bias: Bool, name: String?)
    case linear(inFeatures: Int, outFeatures: Int, bias: Bool, name: String?)
    case batchNorm(name: String?)
    case relu
    case maxPool(kernel: Int)
    case avgPool(kernel: Int)
    case flatten

    /// `conv(1, 2, 3, padding: 1)` — how the language spells it, for messages.
    public var spelling: String {
        switch self {
        case let .conv(i, o, k, s, p, g, _, _):
            return "conv(\(i), \(o), \(k)\(s != 1 ? ", stride: \(s)" : "")\(p != 0 ? ", padding: \(p)" : "")\(g != 1 ? ", groups: \(g)" : ""))"
        case let .linear(i, o, _, _): return "linear(\(i), \(o))"
        case .batchNorm: return "batchnorm()"
        case .relu: return "relu()"
        case .maxPool(let k): return "maxpool(\(k))"
        case .avgPool(let k): return "avgpool(\(k))"
        case .flatten: return "flatten()"
        }
    }
}

public struct SequentialError: Error, CustomStringConvertible, Equatable {
    public let description: String
    init(_ d: String) { description = d }
}

extension ModelZoo {
    /// Largest network `sequential` builds (parameters), so a typo cannot allocate gigabytes.
    public static let sequentialParameterLimit = 50_000_000

    /// A custom network from modules applied in order, named as PyTorch's `nn.Sequential` names
    /// them (`"0"`, `"1"`, …) unless a module carries its own name. Every shape is checked:
    /// channels and features must chain, feature maps must stay at least 1×1.
    /// `input` is the per-sample `[C, H, W]`; when nil, the smallest square input (up to
    /// 256×256) whose shapes chain is chosen, with C from the first conv.
    /// - Complexity: O(modules · 256) when inferring the input, else O(modules).
    public static func sequential(_ modules: [SequentialModule], input: [Int]?, name: String = "Sequential") throws -> Architecture {
        guard !modules.isEmpty else { throw SequentialError("a network needs at least one module") }
        if let input { return try buildSequential(modules, input: input, name: name) }
        guard case let .conv(channels, _, _, _, _, _, _, _)? = modules.first else {
            throw SequentialError("give input: [C, H, W] (it can only be inferred when the first module is a conv)")
        }
        var lastError: SequentialError?
        for side in 1 ... 256 {
            do { return try buildSequential(modules, input: [channels, side, side], name: name) } catch let e as SequentialError {
                lastError = e
            }
        }
        // At the largest size every kernel fits: what is left is a structural mistake.
        throw SequentialError("no square input up to 256×256 fits these modules; give input: [C, H, W]"
                              + (lastError.map { " (at 256×256: \($0.description))" } ?? ""))
    }

    static func buildSequential(_ modules: [SequentialModule], input: [Int], name: String) throws -> Architecture {
        guard input.count == 3, input.allSatisfy({ $0 >= 1 }), input.reduce(1, *) <= 16_777_216 else {
            throw SequentialError("input must be [C, H, W] with positive sizes (at most 16M values), got \(input)")
        }
        var b = ArchitectureBuilder(input: input)
        var x = 0
        var parameters = 0
        var seen = Set<String>()
        var positional: [String: String] = [:]  // module name -> its position, the random streams' key
        func moduleName(_ given: String?, _ index: Int) throws -> String {
            let n = given ?? String(index)
            guard !n.isEmpty, n != "input", !seen.contains(n) else { throw SequentialError("module #\(index + 1): name \"\(n)\" is empty, reserved or used twice") }
            seen.insert(n)
            positional[n] = String(index)
            return n
        }
        for (index, module) in modules.enumerated() {
            let shape = b.shape(x)
            let at = "module #\(index + 1) \(module.spelling)"
            switch module {
            case let .conv(i, o, k, s, p, g, bias, given):
                guard shape.count == 3 else { throw SequentialError("\(at) needs a [C, H, W] feature map, got a vector of \(shape[0])") }
                guard i == shape[0] else { throw SequentialError("\(at) expects \(i) input channels, the previous module gives \(shape[0])") }
                guard o >= 1, k >= 1, s >= 1, p >= 0, g >= 1, i % g == 0, o % g == 0 else {
                    throw SequentialError("\(at): channels, kernel, stride and groups must be positive, padding >= 0, groups dividing both channel counts")
                }
                let h = (shape[1] + 2 * p - k) / s + 1, w = (shape[2] + 2 * p - k) / s + 1
                guard shape[1] + 2 * p >= k, shape[2] + 2 * p >= k, h >= 1, w >= 1 else {
                    throw SequentialError("\(at): a \(k)×\(k) kernel does not fit the \(shape[1])×\(shape[2]) map padded by \(p)")
                }
                guard g == 1 || (g == i && g == o) else { throw SequentialError("\(at): only groups 1 or depthwise (groups = in = out) are supported") }
                parameters += o * (i / g) * k * k
                x = b.conv(try moduleName(given, index), x, out: o, kernel: k, stride: s, padding: p, groups: g, bias: bias)
            case let .linear(i, o, bias, given):
                guard shape.count == 1 else { throw SequentialError("\(at) needs a vector; put flatten() before it (the map is \(shape))") }
                guard i == shape[0] else { throw SequentialError("\(at) expects \(i) input features, the previous module gives \(shape[0])") }
                guard o >= 1 else { throw SequentialError("\(at): out features must be positive") }
                parameters += o * i
                x = b.linear(try moduleName(given, index), x, out: o, bias: bias)
            case .batchNorm(let given):
                x = b.batchNorm(try moduleName(given, index), x)
            case .relu:
                x = b.relu(x)
            case .maxPool(let k), .avgPool(let k):
                guard shape.count == 3 else { throw SequentialError("\(at) needs a [C, H, W] feature map") }
                guard k >= 1, shape[1] / k >= 1, shape[2] / k >= 1 else { throw SequentialError("\(at): a \(k)×\(k) window does not fit the \(shape[1])×\(shape[2]) map") }
                if case .maxPool = module { x = b.maxPool(x, kernel: k) } else { x = b.avgPool(x, kernel: k) }
            case .flatten:
                if shape.count == 3 { x = b.flatten(x) }
            }
            guard parameters <= sequentialParameterLimit else { throw SequentialError("more than \(sequentialParameterLimit) weights") }
        }
        let out = b.shape(x)
        guard out.count == 1 else { throw SequentialError("the last module gives a \(out) map; end with flatten() and a linear layer (the outputs are its classes)") }
        guard b.parameters.contains(where: \.isPrunable) else { throw SequentialError("the network has no conv or linear layer") }
        let built = b.build(name: name, classes: out[0])
        // Parameters draw their initial values and random masks from their module's position,
        // so naming a module changes neither.
        let streamed = built.parameters.map { spec -> ParameterSpec in
            var spec = spec
            let owner = built.nodes[spec.node].name
            if let position = positional[owner], position != owner {
                spec.stream = position + spec.name.dropFirst(owner.count)
            }
            return spec
        }
        return Architecture(name: built.name, classes: built.classes, nodes: built.nodes, parameters: streamed)
    }
}
