/// Architectures as a small dataflow IR that both the executor (forward/backward) and the
/// graph encoders walk. A node is one module or functional op; `inputs` name earlier nodes.
///
/// Conventions every consumer relies on:
/// - node 0 is `.input` with per-sample shape `[3, 32, 32]`; nodes are topologically ordered;
/// - shapes are per sample: `[C, H, W]` for feature maps, `[F]` for vectors;
/// - `.add` takes `[main, shortcut]`: the main branch first. In the unrolled encoding the sum
///   lives in the main branch's partition and a shortcut conv's edges land there too;
/// - `name` is the PyTorch module name (`"layer1.0.conv1"`), parameter names are `name + ".weight"` etc.;
///   functional ops (ReLU, pooling, add, flatten) have an empty name unless PyTorch numbers them.
public enum Operation: Equatable, Sendable {
    case input
    case conv(Convolution)
    case linear(Linear)
    /// Batch norm over channels (2-d on `[C,H,W]`, 1-d on `[F]`), eps 1e-5, momentum 0.1.
    case batchNorm(channels: Int)
    case relu
    /// Max pool (PyTorch `max_pool2d`, floor mode: padding never wins the max).
    case maxPool(PoolGeometry)
    /// Average pool (PyTorch `avg_pool2d`, floor mode, padding counted as zeros in the divisor
    /// k², PyTorch's default `count_include_pad=True`); window = stride = H is a global pool.
    case avgPool(PoolGeometry)
    case flatten
    /// Elementwise sum of `[main, shortcut]`.
    case add
}

public struct Convolution: Equatable, Sendable {
    public var inChannels: Int
    public var outChannels: Int
    public var kernel: Int
    public var stride: Int
    public var padding: Int
    public var groups: Int
    public var bias: Bool
    /// PyTorch weight shape `[out, in/groups, k, k]`.
    public var weightShape: [Int] { [outChannels, inChannels / groups, kernel, kernel] }
    public var isDepthwise: Bool { groups > 1 && groups == inChannels && groups == outChannels }
}

/// A square pooling window: output (y, x) covers input rows y·stride − padding … + kernel − 1
/// (and likewise columns), clipped to the map; PyTorch's floor mode sizes the output.
public struct PoolGeometry: Equatable, Sendable {
    public var kernel: Int
    public var stride: Int
    public var padding: Int
    /// Window = stride = `kernel`, no padding (non-overlapping tiles).
    public init(kernel: Int) { self.init(kernel: kernel, stride: kernel, padding: 0) }
    public init(kernel: Int, stride: Int, padding: Int) {
        self.kernel = kernel; self.stride = stride; self.padding = padding
    }
    /// No pooling at all (the identity window).
    public static let identity = PoolGeometry(kernel: 1)
    /// ⌊(n + 2·padding − kernel) / stride⌋ + 1: the pooled side of an n-pixel side.
    public func outputSize(_ n: Int) -> Int { (n + 2 * padding - kernel) / stride + 1 }
    /// Window = stride without padding: every input pixel lies in at most one window.
    public var isTiling: Bool { kernel == stride && padding == 0 }
    /// Adjacent windows share pixels (stride < kernel).
    public var overlaps: Bool { stride < kernel }
    /// PyTorch's own limits: positive kernel and stride, 0 ≤ padding ≤ kernel / 2.
    public var isValid: Bool { kernel >= 1 && stride >= 1 && padding >= 0 && 2 * padding <= kernel }
    /// The input rows (or columns) of output row `q` that exist on an `n`-pixel side.
    @inline(__always) public func window(_ q: Int, size n: Int) -> Range<Int> {
        let start = q * stride - padding
        let low = max(start, 0)
        return low ..< max(low, min(start + kernel, n))
    }
    /// The output rows whose window holds input row `i`, clipped to `outputs` rows.
    @inline(__always) public func covering(_ i: Int, outputs: Int) -> Range<Int> {
        // q·s − p ≤ i ≤ q·s − p + k − 1  ⇔  ⌈(i + p − k + 1)/s⌉ ≤ q ≤ ⌊(i + p)/s⌋.
        let top = i + padding
        let numerator = top - kernel + 1
        let low = numerator <= 0 ? 0 : (numerator + stride - 1) / stride
        let high = top < 0 ? -1 : top / stride
        return low ..< max(low, min(high + 1, outputs))
    }
    /// `maxpool(3, stride: 2, padding: 1)` — how the language spells it.
    public func spelling(_ function: String) -> String {
        isTiling ? "\(function)(\(kernel))" : "\(function)(\(kernel), stride: \(stride), padding: \(padding))"
    }
}

public struct Linear: Equatable, Sendable {
    public var inFeatures: Int
    public var outFeatures: Int
    public var bias: Bool
    public var weightShape: [Int] { [outFeatures, inFeatures] }
}

public struct ArchitectureNode: Equatable, Sendable {
    public let id: Int
    public let name: String
    public let op: Operation
    public let inputs: [Int]
    /// Per-sample output shape.
    public let shape: [Int]
}

/// What a state-dict entry is for.
public enum ParameterRole: Equatable, Sendable {
    case weight, bias, normWeight, normBias, runningMean, runningVar
}

public struct ParameterSpec: Equatable, Sendable {
    public let name: String
    public let shape: [Int]
    public let role: ParameterRole
    /// The node that owns the parameter.
    public let node: Int
    /// Conv and linear weights (shortcuts included) are prunable; nothing else is.
    public var isPrunable: Bool { role == .weight }
    /// Learned by training: everything but the batch-norm running statistics (PyTorch's
    /// `parameters()` as opposed to its buffers).
    public var isLearnable: Bool { role != .runningMean && role != .runningVar }
    public var count: Int { shape.reduce(1, *) }
    /// Names the random stream of this parameter's initial values and random masks when it is not
    /// `name`: a `sequential` net's parameters draw from their module's position (`"3.weight"`),
    /// so naming a module changes neither its initial weights nor its masks.
    public internal(set) var stream: String? = nil
    /// The random stream key: `stream`, else the name.
    public var streamName: String { stream ?? name }
}

public struct Architecture: Sendable {
    /// Display name as the paper spells it (`"Resnet-20"`).
    public let name: String
    public let classes: Int
    public let nodes: [ArchitectureNode]
    /// State-dict entries in PyTorch's order.
    public let parameters: [ParameterSpec]

    public var output: Int { nodes.count - 1 }
    public var prunable: [ParameterSpec] { parameters.filter(\.isPrunable) }
    public func node(named name: String) -> ArchitectureNode? { nodes.first { $0.name == name } }
}

/// Builds an `Architecture` node by node, computing shapes and parameter entries.
public struct ArchitectureBuilder {
    public private(set) var nodes: [ArchitectureNode] = []
    public private(set) var parameters: [ParameterSpec] = []

    public init(input shape: [Int] = [3, 32, 32]) {
        nodes.append(ArchitectureNode(id: 0, name: "input", op: .input, inputs: [], shape: shape))
    }

    public func shape(_ x: Int) -> [Int] { nodes[x].shape }

    private mutating func add(_ name: String, _ op: Operation, _ inputs: [Int], _ shape: [Int]) -> Int {
        let id = nodes.count
        nodes.append(ArchitectureNode(id: id, name: name, op: op, inputs: inputs, shape: shape))
        return id
    }

    private mutating func param(_ owner: String, _ suffix: String, _ shape: [Int], _ role: ParameterRole, _ node: Int) {
        parameters.append(ParameterSpec(name: owner + "." + suffix, shape: shape, role: role, node: node))
    }

    public mutating func conv(_ name: String, _ x: Int, out: Int, kernel: Int = 3, stride: Int = 1,
                              padding: Int? = nil, groups: Int = 1, bias: Bool = false) -> Int {
        let s = shape(x)
        let p = padding ?? (kernel / 2)
        let h = (s[1] + 2 * p - kernel) / stride + 1
        let w = (s[2] + 2 * p - kernel) / stride + 1
        let spec = Convolution(inChannels: s[0], outChannels: out, kernel: kernel, stride: stride,
                               padding: p, groups: groups, bias: bias)
        let id = add(name, .conv(spec), [x], [out, h, w])
        param(name, "weight", spec.weightShape, .weight, id)
        if bias { param(name, "bias", [out], .bias, id) }
        return id
    }

    public mutating func linear(_ name: String, _ x: Int, out: Int, bias: Bool = true) -> Int {
        let spec = Linear(inFeatures: shape(x)[0], outFeatures: out, bias: bias)
        let id = add(name, .linear(spec), [x], [out])
        param(name, "weight", spec.weightShape, .weight, id)
        if bias { param(name, "bias", [out], .bias, id) }
        return id
    }

    public mutating func batchNorm(_ name: String, _ x: Int) -> Int {
        let c = shape(x)[0]
        let id = add(name, .batchNorm(channels: c), [x], shape(x))
        param(name, "weight", [c], .normWeight, id)
        param(name, "bias", [c], .normBias, id)
        param(name, "running_mean", [c], .runningMean, id)
        param(name, "running_var", [c], .runningVar, id)
        return id
    }

    public mutating func relu(_ x: Int, name: String = "") -> Int { add(name, .relu, [x], shape(x)) }

    /// Max pooling; `stride` defaults to `kernel` (PyTorch's `MaxPool2d` default), padding to 0.
    public mutating func maxPool(_ x: Int, kernel: Int, stride: Int? = nil, padding: Int = 0, name: String = "") -> Int {
        let g = PoolGeometry(kernel: kernel, stride: stride ?? kernel, padding: padding)
        let s = shape(x)
        return add(name, .maxPool(g), [x], [s[0], g.outputSize(s[1]), g.outputSize(s[2])])
    }

    /// Average pooling; `stride` defaults to `kernel`, padding to 0.
    public mutating func avgPool(_ x: Int, kernel: Int, stride: Int? = nil, padding: Int = 0, name: String = "") -> Int {
        let g = PoolGeometry(kernel: kernel, stride: stride ?? kernel, padding: padding)
        let s = shape(x)
        return add(name, .avgPool(g), [x], [s[0], g.outputSize(s[1]), g.outputSize(s[2])])
    }

    public mutating func flatten(_ x: Int) -> Int {
        add("", .flatten, [x], [shape(x).reduce(1, *)])
    }

    public mutating func add(main: Int, shortcut: Int) -> Int {
        add("", .add, [main, shortcut], shape(main))
    }

    public func build(name: String, classes: Int) -> Architecture {
        Architecture(name: name, classes: classes, nodes: nodes, parameters: parameters)
    }
}
