import Foundation

/// Which unrolled encoding to build (SPEC §3).
public enum UnrollCompat: String, CaseIterable, Sendable {
    /// The paper's definition: every valid kernel tap of every nonzero weight is an edge
    /// between the pixels it connects.
    case paper
    /// The Python reference's output, including its stride-2 quirk: a 3x3 stride-2 conv (other
    /// than on the padded input) reads only the top-left (H−1)² pixels of each channel, and
    /// its left and right nodes are laid at shifted ids (see `UnrolledLayer.croppedLeftGrid`).
    case reference
}

public enum UnrollError: Error, CustomStringConvertible, Equatable {
    case unsupported(layer: String, reason: String)
    case missingWeight(String)

    public var description: String {
        switch self {
        case let .unsupported(layer, reason): return "cannot unroll layer '\(layer)': \(reason)"
        case let .missingWeight(name): return "the network has no weight '\(name)'"
        }
    }
}

/// One conv or linear module as the unrolled encoding sees it: which partition feeds it,
/// through which pooling and flattening, and where its edges land.
public struct UnrolledLayer: Equatable, Sendable {
    public enum Kind: Equatable, Sendable {
        case conv(Convolution)
        case linear(Linear)
    }
    /// PyTorch module name; the weight is `name + ".weight"`.
    public let name: String
    public let kind: Kind
    /// Index of the partition its input is traced to (through BN, ReLU, pooling, flatten, add).
    public let sourcePartition: Int
    /// Index of the partition holding its outputs: its own, or for a shortcut conv the block
    /// output's (the `.add` main branch's partition).
    public let targetPartition: Int
    public let isShortcut: Bool
    /// The pooling between the source partition and the layer's input (`.identity`: none). A
    /// chain of tiling pools (window = stride, no padding) composes into one by multiplying
    /// windows; an overlapping or padded pool must be the only one of its chain.
    public let pool: PoolGeometry
    /// For a linear layer fed through `flatten`, the `[C, H, W]` map that was flattened
    /// (after pooling); nil when the input is already a vector.
    public let flattenedShape: [Int]?
    /// The layer's per-sample input shape (after pooling) and output shape.
    public let inputShape: [Int]
    public let outputShape: [Int]
    /// Reference quirk: left nodes are the top-left (H−1)×(W−1) pixels of each channel,
    /// numbered on that smaller grid and laid on the source partition's first ids.
    public let croppedLeftGrid: Bool
    /// Global id of the layer's output unit 0: the target partition's start, except under the
    /// quirk, where it is `source.start + C·(H−1)·(W−1)` (shifted back into the source partition).
    public let targetBase: Int

    public var outputCount: Int { outputShape.reduce(1, *) }
}

/// The node layout and layer wiring of an unrolled encoding, computed from the architecture
/// alone (no weights): partitions in architecture order, one per non-shortcut conv/linear.
public struct UnrollPlan: Sendable {
    public let compat: UnrollCompat
    public let partitions: [Partition]
    public let layers: [UnrolledLayer]
    /// Zero-padding ring kept around the input partition (the first convs' padding).
    public let inputPadding: Int
    public var nodeCount: Int { partitions.last.map { $0.start + $0.count } ?? 0 }

    /// Traces every conv/linear input through BN, ReLU, pooling, flatten and `.add` to the
    /// partition it reads. - Complexity: O(nodes of the architecture).
    public init(_ architecture: Architecture, compat: UnrollCompat = .paper) throws {
        self.compat = compat
        let nodes = architecture.nodes
        guard let first = nodes.first, first.op == .input, first.shape.count == 3 else {
            throw UnrollError.unsupported(layer: "input", reason: "node 0 must be an input of shape [C, H, W]")
        }
        var consumers = [[Int]](repeating: [], count: nodes.count)
        for node in nodes { for i in node.inputs { consumers[i].append(node.id) } }

        // A shortcut conv feeds, through BN/ReLU only and as the sole consumer at each step,
        // the second (shortcut) input of an `.add`.
        func shortcutAdd(of conv: Int) -> Int? {
            var current = conv
            while consumers[current].count == 1 {
                let next = nodes[consumers[current][0]]
                switch next.op {
                case .batchNorm, .relu: current = next.id
                case .add: return (next.inputs.count == 2 && next.inputs[1] == current && next.inputs[0] != current) ? next.id : nil
                default: return nil
                }
            }
            return nil
        }

        struct Value { var partition: Int; var pool: PoolGeometry; var flattened: [Int]? }
        var values = [Value?](repeating: nil, count: nodes.count)
        // Marks a shortcut conv's output (and its BN): it only flows into its `.add`.
        let shortcutValue = -1
        var names = ["input"], shapes = [first.shape]
        values[0] = Value(partition: 0, pool: .identity, flattened: nil)
        struct Pending { var node: ArchitectureNode; var kind: UnrolledLayer.Kind; var source: Value; var target: Int?; var add: Int? }
        var pending: [Pending] = []

        for node in nodes.dropFirst() {
            guard let x = node.inputs.first, let input = values[x] else {
                throw UnrollError.unsupported(layer: node.name, reason: "its input is not traced to a partition")
            }
            switch node.op {
            case .batchNorm, .relu: break
            default:
                guard input.partition != shortcutValue else {
                    throw UnrollError.unsupported(layer: node.name, reason: "it reads a shortcut conv outside the shortcut's `.add`")
                }
            }
            switch node.op {
            case .input:
                throw UnrollError.unsupported(layer: node.name, reason: "only node 0 may be an input")
            case .conv(let spec):
                guard input.flattened == nil else { throw UnrollError.unsupported(layer: node.name, reason: "a conv cannot read a flattened vector") }
                if let add = shortcutAdd(of: node.id) {
                    pending.append(Pending(node: node, kind: .conv(spec), source: input, target: nil, add: add))
                    values[node.id] = Value(partition: shortcutValue, pool: .identity, flattened: nil)
                } else {
                    pending.append(Pending(node: node, kind: .conv(spec), source: input, target: names.count, add: nil))
                    values[node.id] = Value(partition: names.count, pool: .identity, flattened: nil)
                    names.append(node.name); shapes.append(node.shape)
                }
            case .linear(let spec):
                guard shortcutAdd(of: node.id) == nil else { throw UnrollError.unsupported(layer: node.name, reason: "linear shortcuts are not supported") }
                pending.append(Pending(node: node, kind: .linear(spec), source: input, target: names.count, add: nil))
                values[node.id] = Value(partition: names.count, pool: .identity, flattened: nil)
                names.append(node.name); shapes.append(node.shape)
            case .batchNorm, .relu:
                values[node.id] = input
            case .maxPool(let k), .avgPool(let k):
                guard input.flattened == nil, shapes[input.partition].count == 3, k.isValid else {
                    throw UnrollError.unsupported(layer: node.name, reason: "pooling needs a [C, H, W] map")
                }
                let composed: PoolGeometry
                if input.pool == .identity {
                    composed = k
                } else if input.pool.isTiling && k.isTiling {
                    composed = PoolGeometry(kernel: input.pool.kernel * k.kernel)
                } else {
                    throw UnrollError.unsupported(layer: node.name, reason: "it pools an already pooled map, and one of the two pools overlaps or pads (only window = stride pools compose)")
                }
                values[node.id] = Value(partition: input.partition, pool: composed, flattened: nil)
            case .flatten:
                var v = input
                if v.flattened == nil, nodes[x].shape.count == 3 { v.flattened = nodes[x].shape }
                values[node.id] = v
            case .add:
                // The sum lives in the main branch's partition; an identity shortcut adds no
                // edges and a shortcut conv's edges are routed there below.
                guard node.inputs.count == 2 else { throw UnrollError.unsupported(layer: node.name, reason: "`.add` takes [main, shortcut]") }
                values[node.id] = input
            }
        }

        // The input keeps the padding ring of the convs that read it directly.
        var padding = 0
        for p in pending where p.source.partition == 0 && p.source.pool == .identity && p.source.flattened == nil {
            if case .conv(let c) = p.kind { padding = max(padding, c.padding) }
        }
        self.inputPadding = padding
        shapes[0] = [first.shape[0], first.shape[1] + 2 * padding, first.shape[2] + 2 * padding]
        var parts: [Partition] = []
        var start = 0
        for (name, shape) in zip(names, shapes) {
            let count = shape.reduce(1, *)
            parts.append(Partition(name: name, start: start, count: count, shape: shape))
            start += count
        }
        self.partitions = parts

        var layers: [UnrolledLayer] = []
        for p in pending {
            let name = p.node.name
            let source = p.source
            let target: Int
            if let t = p.target {
                target = t
            } else if let add = p.add, let sum = values[add] {
                target = sum.partition
            } else {
                throw UnrollError.unsupported(layer: name, reason: "the shortcut's `.add` is not traced")
            }
            guard let inputShape = p.node.inputs.first.map({ nodes[$0].shape }) else {
                throw UnrollError.unsupported(layer: name, reason: "no input")
            }
            let sourceShape = source.partition == 0 ? first.shape : shapes[source.partition]
            let outputShape = p.node.shape
            guard parts[target].count == outputShape.reduce(1, *) else {
                throw UnrollError.unsupported(layer: name, reason: "output \(outputShape) does not fill partition '\(parts[target].name)' \(parts[target].shape)")
            }
            var cropped = false
            switch p.kind {
            case .conv(let conv):
                guard sourceShape.count == 3, inputShape.count == 3, sourceShape[0] == inputShape[0],
                      source.pool.outputSize(sourceShape[1]) == inputShape[1], source.pool.outputSize(sourceShape[2]) == inputShape[2],
                      conv.inChannels == inputShape[0], conv.groups >= 1, conv.inChannels % conv.groups == 0,
                      conv.outChannels % conv.groups == 0 else {
                    throw UnrollError.unsupported(layer: name, reason: "input \(inputShape) does not match partition '\(parts[source.partition].name)' \(sourceShape) pooled by \(source.pool.spelling("pool"))")
                }
                if source.partition == 0, padding > 0, source.pool != .identity {
                    throw UnrollError.unsupported(layer: name, reason: "pooling the padded input is not supported")
                }
                if source.partition == 0, source.pool == .identity, conv.padding != padding {
                    throw UnrollError.unsupported(layer: name, reason: "convs reading the input must share one padding")
                }
                let readsPaddedInput = source.partition == 0 && padding > 0
                if compat == .reference, conv.kernel == 3, conv.stride == 2, !readsPaddedInput {
                    guard source.pool == .identity else {
                        throw UnrollError.unsupported(layer: name, reason: "the reference's stride-2 layout is not defined after pooling")
                    }
                    cropped = true
                }
            case .linear(let linear):
                let features = source.flattened.map { $0.reduce(1, *) } ?? sourceShape.reduce(1, *)
                guard features == linear.inFeatures, source.flattened != nil || source.pool == .identity else {
                    throw UnrollError.unsupported(layer: name, reason: "\(linear.inFeatures) input features, but partition '\(parts[source.partition].name)' gives \(features)")
                }
                if let f = source.flattened {
                    guard sourceShape.count == 3, f.count == 3, f[0] == sourceShape[0],
                          source.pool.outputSize(sourceShape[1]) == f[1], source.pool.outputSize(sourceShape[2]) == f[2] else {
                        throw UnrollError.unsupported(layer: name, reason: "flattened map \(f) does not match partition \(sourceShape) pooled by \(source.pool.spelling("pool"))")
                    }
                    if source.partition == 0, padding > 0, source.pool != .identity {
                        throw UnrollError.unsupported(layer: name, reason: "pooling the padded input is not supported")
                    }
                }
            }
            let base: Int
            if cropped {
                base = parts[source.partition].start + inputShape[0] * (inputShape[1] - 1) * (inputShape[2] - 1)
            } else {
                base = parts[target].start
            }
            layers.append(UnrolledLayer(name: name, kind: p.kind, sourcePartition: source.partition, targetPartition: target,
                                        isShortcut: p.add != nil, pool: source.pool, flattenedShape: source.flattened,
                                        inputShape: inputShape, outputShape: outputShape, croppedLeftGrid: cropped,
                                        targetBase: base))
        }
        self.layers = layers
    }
}

/// Builds the unrolled multipartite encoding (MGE, SPEC §3) of `network` in its current mask
/// state: one partition for the (padded) input and one per conv/linear output, an edge per
/// valid kernel tap of every nonzero weight, weight |w| rounded to half precision.
/// - Complexity: O(n + m) time over the cores, memory 12 bytes per edge + 16 per node
///   (no intermediate edge list).
public func unroll(_ network: Network, compat: UnrollCompat = .paper) throws -> Graph {
    let plan = try UnrollPlan(network.architecture, compat: compat)
    let generator = try UnrolledEdges(plan: plan, network: network)
    return try Graph.build(from: generator, partitions: plan.partitions)
}

/// A nonzero weight as the generator walks it: output unit, kernel row and column, |w| in half.
struct Tap {
    var output: Int32
    var row: Int16
    var column: Int16
    var weight: Float16
}

/// The out-edges of every MGE node, generated on demand from the weights.
struct UnrolledEdges: BidirectionalEdgeGenerator {
    /// A class, so that taking a layer per generated node costs one reference count, not one
    /// per array (the implicit MGE generates every node's edges many times).
    final class Layer {
        let spec: UnrolledLayer
        /// `taps[tapStart[i] ..< tapStart[i + 1]]` are the nonzero weights reading input
        /// channel (conv) or feature (linear) `i`, sorted so that their targets come out
        /// ascending: by output unit, then kernel row descending, then column descending.
        let tapStart: [Int]
        let taps: [Tap]
        /// `inTaps[inTapStart[o] ..< inTapStart[o + 1]]` are the nonzero weights of output
        /// channel (conv) or unit (linear) `o`, with `Tap.output` holding the input channel or
        /// feature, sorted by (input, row, column) so that sources come out ascending.
        let inTapStart: [Int]
        let inTaps: [Tap]
        init(spec: UnrolledLayer, tapStart: [Int], taps: [Tap], inTapStart: [Int], inTaps: [Tap]) {
            self.spec = spec; self.tapStart = tapStart; self.taps = taps; self.inTapStart = inTapStart; self.inTaps = inTaps
        }
    }

    let nodeCount: Int
    let partitions: [Partition]
    let inputPadding: Int
    let layers: [Layer]
    /// Layers reading each partition, ordered by their first target id.
    let readers: [[Int]]
    /// Partitions whose nodes' out-edges may come unsorted (they need a sort): their readers'
    /// target ranges overlap, or a reader pools with overlapping windows (a pixel then feeds
    /// several pooled pixels, whose targets interleave).
    let interleaved: [Bool]
    /// Layers with an output unit in each partition, ordered by their source partition.
    let writers: [[Int]]
    /// Partitions with two writers reading one source partition (their in-edge ranges overlap).
    let writersInterleaved: [Bool]
    /// Partitions whose nodes' in-edges may come unsorted: `writersInterleaved`, or a writer
    /// pools with overlapping windows (adjacent windows' rows interleave).
    let inUnsorted: [Bool]
    /// Some layer reads an overlapping pool through more than one tap per pooled pixel pair (a
    /// k > 1 conv or a linear layer), so one pixel reaches one target through two windows:
    /// the MGE then has repeated (source, target) pairs, each a parallel edge (SPEC §3: every
    /// pooled edge becomes one edge per window pixel).
    let hasRepeatedPairs: Bool

    init(plan: UnrollPlan, network: Network) throws {
        nodeCount = plan.nodeCount
        partitions = plan.partitions
        inputPadding = plan.inputPadding
        var layers: [Layer] = []
        for spec in plan.layers {
            guard let weight = network.parameters[spec.name + ".weight"] else { throw UnrollError.missingWeight(spec.name + ".weight") }
            layers.append(UnrolledEdges.prepare(spec, weight.data))
        }
        self.layers = layers
        var readers = [[Int]](repeating: [], count: plan.partitions.count)
        for (i, l) in plan.layers.enumerated() { readers[l.sourcePartition].append(i) }
        var interleaved = [Bool](repeating: false, count: plan.partitions.count)
        for p in readers.indices {
            readers[p].sort { plan.layers[$0].targetBase < plan.layers[$1].targetBase }
            for (a, b) in zip(readers[p], readers[p].dropFirst())
            where plan.layers[a].targetBase + plan.layers[a].outputCount > plan.layers[b].targetBase {
                interleaved[p] = true
            }
            if readers[p].contains(where: { plan.layers[$0].pool.overlaps }) { interleaved[p] = true }
        }
        self.readers = readers
        self.interleaved = interleaved
        // Under the reference's quirk a layer's outputs straddle two partitions.
        var writers = [[Int]](repeating: [], count: plan.partitions.count)
        for (i, l) in plan.layers.enumerated() {
            for (p, part) in plan.partitions.enumerated()
            where part.start < l.targetBase + l.outputCount && l.targetBase < part.start + part.count {
                writers[p].append(i)
            }
        }
        var writersInterleaved = [Bool](repeating: false, count: plan.partitions.count)
        for p in writers.indices {
            writers[p].sort { plan.layers[$0].sourcePartition < plan.layers[$1].sourcePartition }
            for (a, b) in zip(writers[p], writers[p].dropFirst())
            where plan.layers[a].sourcePartition == plan.layers[b].sourcePartition {
                writersInterleaved[p] = true
            }
        }
        self.writers = writers
        self.writersInterleaved = writersInterleaved
        inUnsorted = writers.indices.map { p in writersInterleaved[p] || writers[p].contains { plan.layers[$0].pool.overlaps } }
        hasRepeatedPairs = plan.layers.contains { l in
            guard l.pool.overlaps else { return false }
            if case .conv(let c) = l.kind { return c.kernel > 1 }
            return l.flattenedShape != nil
        }
    }

    /// Groups the nonzero weights by the input channel or feature they read.
    /// - Complexity: O(weights).
    static func prepare(_ spec: UnrolledLayer, _ w: [Float]) -> Layer {
        var byInput: [[Tap]]
        switch spec.kind {
        case .conv(let c):
            let k = c.kernel, inPerGroup = c.inChannels / c.groups, outPerGroup = c.outChannels / c.groups
            byInput = [[Tap]](repeating: [], count: c.inChannels)
            for o in 0 ..< c.outChannels {
                let group = o / outPerGroup
                for j in 0 ..< inPerGroup {
                    let i = group * inPerGroup + j
                    for a in stride(from: k - 1, through: 0, by: -1) {
                        for b in stride(from: k - 1, through: 0, by: -1) {
                            let v = w[((o * inPerGroup + j) * k + a) * k + b]
                            if v != 0 { byInput[i].append(Tap(output: Int32(o), row: Int16(a), column: Int16(b), weight: Float16(abs(v)))) }
                        }
                    }
                }
            }
        case .linear(let l):
            byInput = [[Tap]](repeating: [], count: l.inFeatures)
            for o in 0 ..< l.outFeatures {
                for f in 0 ..< l.inFeatures {
                    let v = w[o * l.inFeatures + f]
                    if v != 0 { byInput[f].append(Tap(output: Int32(o), row: 0, column: 0, weight: Float16(abs(v)))) }
                }
            }
        }
        var tapStart = [0]
        tapStart.reserveCapacity(byInput.count + 1)
        for list in byInput { tapStart.append(tapStart.last! + list.count) }
        // Regroup by output, ordered by (input, row, column): walking inputs in order and each
        // input's taps (rows and columns descending) backwards keeps that order per output.
        let outputs: Int
        switch spec.kind {
        case .conv(let c): outputs = c.outChannels
        case .linear(let l): outputs = l.outFeatures
        }
        var byOutput = [[Tap]](repeating: [], count: outputs)
        for (input, list) in byInput.enumerated() {
            var k = list.count
            // Runs of one output are contiguous in `list`; reverse each run.
            while k > 0 {
                var j = k - 1
                while j > 0 && list[j - 1].output == list[k - 1].output { j -= 1 }
                for tap in list[j ..< k].reversed() {
                    byOutput[Int(tap.output)].append(Tap(output: Int32(input), row: tap.row, column: tap.column, weight: tap.weight))
                }
                k = j
            }
        }
        var inTapStart = [0]
        inTapStart.reserveCapacity(outputs + 1)
        for list in byOutput { inTapStart.append(inTapStart.last! + list.count) }
        return Layer(spec: spec, tapStart: tapStart, taps: byInput.flatMap { $0 },
                     inTapStart: inTapStart, inTaps: byOutput.flatMap { $0 })
    }

    func mayEmitUnsorted(_ node: Int) -> Bool { interleaved[partitionIndex(of: node)] }

    @inline(__always) func partitionIndex(of v: Int) -> Int {
        var lo = 0, hi = partitions.count - 1
        while lo < hi {
            let mid = (lo + hi + 1) / 2
            if partitions[mid].start <= v { lo = mid } else { hi = mid - 1 }
        }
        return lo
    }

    func emitOutEdges<S: EdgeSink>(of node: Int, into sink: inout S) {
        let p = partitionIndex(of: node)
        let part = partitions[p]
        let local = node - part.start
        // Only the input partition is padded; its nodes are in padded coordinates.
        let pad = p == 0 ? inputPadding : 0
        for l in readers[p] {
            let layer = layers[l]
            switch layer.spec.kind {
            case .conv(let conv): emitConv(layer, conv, part, local, pad, &sink)
            case .linear: emitLinear(layer, part, local, pad, &sink)
            }
        }
    }

    func mayEmitInUnsorted(_ node: Int) -> Bool { inUnsorted[partitionIndex(of: node)] }

    func emitInEdges<S: EdgeSink>(of node: Int, into sink: inout S) {
        for l in writers[partitionIndex(of: node)] {
            let layer = layers[l]
            let local = node - layer.spec.targetBase
            guard local >= 0, local < layer.spec.outputCount else { continue }
            let source = partitions[layer.spec.sourcePartition]
            let pad = layer.spec.sourcePartition == 0 ? inputPadding : 0
            switch layer.spec.kind {
            case .conv(let conv): emitConvInputs(layer, conv, source, local, pad, &sink)
            case .linear: emitLinearInputs(layer, source, local, pad, &sink)
            }
        }
    }

    /// Sources of output unit (o, y, x): every nonzero W[o, i, a, b] whose input pixel
    /// (i, y·s + a − p, x·s + b − p) exists, expanded over its pooling window, in the order
    /// (channel, kernel row, window row, kernel column, window column) — id order unless the
    /// pool's windows overlap (then `inUnsorted` has the caller sort). Parallel edges of one
    /// source come in (kernel row, kernel column) order, i.e. pooled (row, column) ascending, as
    /// `emitConv` emits them.
    @inline(__always)
    private func emitConvInputs<S: EdgeSink>(_ layer: Layer, _ conv: Convolution, _ source: Partition, _ local: Int, _ pad: Int, _ sink: inout S) {
        let spec = layer.spec
        let outH = spec.outputShape[1], outW = spec.outputShape[2], outPlane = outH * outW
        let o = local / outPlane
        let rest = local - o * outPlane
        let y = rest / outW, x = rest - (rest / outW) * outW
        let inH = spec.inputShape[1], inW = spec.inputShape[2]
        let top = y * conv.stride - conv.padding, left = x * conv.stride - conv.padding
        let base = source.start
        if spec.pool != .identity {
            // A pooled map (never the padded input): pooled pixel (r, c) stands for its window.
            let pool = spec.pool, gridH = source.shape[1], gridW = source.shape[2]
            layer.inTaps.withUnsafeBufferPointer { taps in
                var t = layer.inTapStart[o]
                let end = layer.inTapStart[o + 1]
                while t < end {
                    let channel = Int(taps[t].output), row = Int(taps[t].row)
                    var runEnd = t + 1
                    while runEnd < end && Int(taps[runEnd].output) == channel && Int(taps[runEnd].row) == row { runEnd += 1 }
                    let r = top + row
                    if r >= 0 && r < inH {
                        for sr in pool.window(r, size: gridH) {
                            let rowStart = base + (channel * gridH + sr) * gridW
                            for u in t ..< runEnd {
                                let c = left + Int(taps[u].column)
                                guard c >= 0 && c < inW else { continue }
                                for sc in pool.window(c, size: gridW) { sink.emit(rowStart + sc, taps[u].weight) }
                            }
                        }
                    }
                    t = runEnd
                }
            }
            return
        }
        // Rows and columns of the grid the left nodes are numbered on, and the valid range
        // of input coordinates: the real map, the padded input, or the reference's cropped grid.
        let gridH: Int, gridW: Int, low: Int, highRow: Int, highColumn: Int, offset: Int
        if spec.croppedLeftGrid {
            gridH = inH - 1; gridW = inW - 1; low = 0; highRow = inH - 2; highColumn = inW - 2; offset = 0
        } else {
            gridH = source.shape[1]; gridW = source.shape[2]
            low = -pad; highRow = inH - 1 + pad; highColumn = inW - 1 + pad; offset = pad
        }
        layer.inTaps.withUnsafeBufferPointer { taps in
            var t = layer.inTapStart[o]
            let end = layer.inTapStart[o + 1]
            while t < end {
                let channel = Int(taps[t].output), row = Int(taps[t].row)
                var runEnd = t + 1
                while runEnd < end && Int(taps[runEnd].output) == channel && Int(taps[runEnd].row) == row { runEnd += 1 }
                let r = top + row
                if r >= low && r <= highRow {
                    let rowStart = base + (channel * gridH + r + offset) * gridW
                    for u in t ..< runEnd {
                        let c = left + Int(taps[u].column)
                        guard c >= low && c <= highColumn else { continue }
                        sink.emit(rowStart + c + offset, taps[u].weight)
                    }
                }
                t = runEnd
            }
        }
    }

    /// Sources of linear unit j: every feature f with W[j, f] ≠ 0, expanded over its pooling
    /// window when f comes from a flattened map, in id order (features ascending when windows
    /// overlap; parallel edges of one source in feature order, as `emitLinear` emits them).
    @inline(__always)
    private func emitLinearInputs<S: EdgeSink>(_ layer: Layer, _ source: Partition, _ local: Int, _ pad: Int, _ sink: inout S) {
        let spec = layer.spec
        let base = source.start
        layer.inTaps.withUnsafeBufferPointer { taps in
            let end = layer.inTapStart[local + 1]
            guard let f = spec.flattenedShape else {
                for t in layer.inTapStart[local] ..< end { sink.emit(base + Int(taps[t].output), taps[t].weight) }
                return
            }
            let pool = spec.pool, gridH = source.shape[1], gridW = source.shape[2], mapW = f[2]
            // The real map inside the padding ring (the input partition's ring is never pooled).
            let realH = gridH - 2 * pad, realW = gridW - 2 * pad
            var t = layer.inTapStart[local]
            while t < end {
                // A run of features on one row (channel c, pooled row r) of the flattened map.
                let rowIndex = Int(taps[t].output) / mapW
                var runEnd = t + 1
                while runEnd < end && Int(taps[runEnd].output) / mapW == rowIndex { runEnd += 1 }
                let channel = rowIndex / f[1], r = rowIndex - channel * f[1]
                for sr in pool.window(r, size: realH) {
                    let rowStart = base + (channel * gridH + sr + pad) * gridW + pad
                    for u in t ..< runEnd {
                        let c = Int(taps[u].output) - rowIndex * mapW
                        for sc in pool.window(c, size: realW) { sink.emit(rowStart + sc, taps[u].weight) }
                    }
                }
                t = runEnd
            }
        }
    }

    /// Targets of source pixel `local` through one conv: every nonzero W[o, i, a, b] of its
    /// channel i that places it at a valid output. Through a pool, once per pooled pixel whose
    /// window holds it, pooled (row, column) ascending.
    @inline(__always)
    private func emitConv<S: EdgeSink>(_ layer: Layer, _ conv: Convolution, _ part: Partition, _ local: Int, _ pad: Int, _ sink: inout S) {
        let spec = layer.spec
        let inH = spec.inputShape[1], inW = spec.inputShape[2]
        var channel: Int, rows: Range<Int>, columns: Range<Int>
        if spec.croppedLeftGrid {
            let gridW = inW - 1, plane = (inH - 1) * gridW
            guard local < spec.inputShape[0] * plane else { return }
            channel = local / plane
            let rest = local - channel * plane
            let row = rest / gridW
            let column = rest - row * gridW
            rows = row ..< row + 1; columns = column ..< column + 1
        } else {
            let h = part.shape[1], w = part.shape[2], plane = h * w
            channel = local / plane
            let rest = local - channel * plane
            let row = rest / w - pad
            let column = rest % w - pad
            if spec.pool != .identity {
                rows = spec.pool.covering(row, outputs: inH)
                columns = spec.pool.covering(column, outputs: inW)
            } else {
                rows = row ..< row + 1; columns = column ..< column + 1
            }
        }
        let outH = spec.outputShape[1], outW = spec.outputShape[2], outPlane = outH * outW
        let s = conv.stride
        let base = spec.targetBase
        let start = layer.tapStart[channel], end = layer.tapStart[channel + 1]
        layer.taps.withUnsafeBufferPointer { taps in
            for row in rows {
                for column in columns {
                    let shiftedRow = row + conv.padding, shiftedColumn = column + conv.padding
                    for t in start ..< end {
                        let tap = taps[t]
                        // Output (y, x) reads input (y·s + a − p, x·s + b − p) through tap (a, b).
                        let ny = shiftedRow - Int(tap.row), nx = shiftedColumn - Int(tap.column)
                        guard ny >= 0, nx >= 0 else { continue }
                        let y: Int, x: Int
                        if s == 1 {
                            y = ny; x = nx
                        } else {
                            y = ny / s; x = nx / s
                            guard y * s == ny, x * s == nx else { continue }
                        }
                        guard y < outH, x < outW else { continue }
                        sink.emit(base + Int(tap.output) * outPlane + y * outW + x, tap.weight)
                    }
                }
            }
        }
    }

    @inline(__always)
    private func emitLinear<S: EdgeSink>(_ layer: Layer, _ part: Partition, _ local: Int, _ pad: Int, _ sink: inout S) {
        let spec = layer.spec
        if let f = spec.flattenedShape {
            let h = part.shape[1], w = part.shape[2], plane = h * w
            let channel = local / plane
            let rest = local - channel * plane
            let row = rest / w - pad, column = rest % w - pad
            guard row >= 0, column >= 0 else { return }
            if spec.pool == .identity {
                guard row < f[1], column < f[2] else { return }
                emitFeature((channel * f[1] + row) * f[2] + column, layer, &sink)
            } else {
                // Once per pooled pixel whose window holds this one, features ascending.
                for r in spec.pool.covering(row, outputs: f[1]) {
                    for c in spec.pool.covering(column, outputs: f[2]) {
                        emitFeature((channel * f[1] + r) * f[2] + c, layer, &sink)
                    }
                }
            }
        } else {
            emitFeature(local, layer, &sink)
        }
    }

    /// Every nonzero weight reading feature `feature` of a linear layer, outputs ascending.
    @inline(__always)
    private func emitFeature<S: EdgeSink>(_ feature: Int, _ layer: Layer, _ sink: inout S) {
        let base = layer.spec.targetBase
        layer.taps.withUnsafeBufferPointer { taps in
            for t in layer.tapStart[feature] ..< layer.tapStart[feature + 1] {
                sink.emit(base + Int(taps[t].output), taps[t].weight)
            }
        }
    }
}
