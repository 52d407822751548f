// Rolled and rolled-channel encodings (SPEC §3): one bipartite graph per conv/linear layer.

/// One prunable layer's weight, independent of any network type.
public struct LayerWeight: Sendable {
    /// PyTorch module name, e.g. `"layer1.0.conv1"`.
    public var name: String
    /// `"conv"`, `"linear"` or `"residual"` (a shortcut conv); only reported, except that
    /// `"linear"` requires a 2-D shape.
    public var kind: String
    /// `[out, in/groups, kh, kw]` for a conv, `[out, in]` for a linear layer.
    public var shape: [Int]
    /// Convolution groups: 1, or `in == out` channels (depthwise).
    public var groups: Int
    /// Weights in PyTorch (row-major) order.
    public var values: [Float]
    /// Optional keep-mask (1 = kept), same length as `values`.
    public var mask: [UInt8]?

    public init(name: String, kind: String, shape: [Int], groups: Int = 1, values: [Float], mask: [UInt8]? = nil) {
        self.name = name; self.kind = kind; self.shape = shape; self.groups = groups
        self.values = values; self.mask = mask
    }
}

public enum RolledEncodingError: Error, Equatable, CustomStringConvertible {
    case badShape(layer: String, shape: [Int])
    case valueCount(layer: String, expected: Int, got: Int)
    case maskCount(layer: String, expected: Int, got: Int)
    case unsupportedGroups(layer: String, groups: Int, inChannels: Int, outChannels: Int)

    public var description: String {
        switch self {
        case let .badShape(l, s): return "\(l): weight shape \(s) is neither [out, in] nor [out, in, kh, kw] with positive sizes"
        case let .valueCount(l, e, g): return "\(l): shape needs \(e) values, got \(g)"
        case let .maskCount(l, e, g): return "\(l): shape needs \(e) mask entries, got \(g)"
        case let .unsupportedGroups(l, g, i, o):
            return "\(l): groups = \(g) with \(i) input and \(o) output channels (only 1 or depthwise in = out = groups)"
        }
    }
}

extension LayerWeight {
    /// Validated geometry: out channels, per-group in channels, kernel area.
    func geometry() throws -> (out: Int, inPerGroup: Int, kh: Int, kw: Int) {
        let ok2 = shape.count == 2, ok4 = shape.count == 4
        guard (ok2 || ok4), shape.allSatisfy({ $0 > 0 }), groups >= 1,
              !(kind == "linear" && !ok2) else {
            throw RolledEncodingError.badShape(layer: name, shape: shape)
        }
        let out = shape[0], inPG = shape[1]
        let kh = ok4 ? shape[2] : 1, kw = ok4 ? shape[3] : 1
        let total = out * inPG * kh * kw
        guard values.count == total else { throw RolledEncodingError.valueCount(layer: name, expected: total, got: values.count) }
        if let m = mask, m.count != total { throw RolledEncodingError.maskCount(layer: name, expected: total, got: m.count) }
        if groups != 1 && !(inPG == 1 && groups == out) {
            throw RolledEncodingError.unsupportedGroups(layer: name, groups: groups, inChannels: inPG * groups, outChannels: out)
        }
        return (out, inPG, kh, kw)
    }

    /// The effective weight (0 where the mask removes it).
    @inline(__always) func effective(_ i: Int) -> Float {
        if let m = mask, m[i] == 0 { return 0 }
        return values[i]
    }
}

/// Builds a two-partition graph from a left-major list of (left, right, weight) triples
/// already sorted by left then right.
private func bipartite(name: String, left: Int, leftShape: [Int], right: Int,
                       offsets: [Int], targets: [UInt32], weights: [Float16]) -> Graph {
    var full = offsets
    for _ in 0 ..< right { full.append(offsets[offsets.count - 1]) }
    return Graph(nodeCount: left + right,
                 partitions: [Partition(name: name + ".in", start: 0, count: left, shape: leftShape),
                              Partition(name: name, start: left, count: right, shape: [right])],
                 outOffsets: full, outTargets: targets, outWeights: weights)
}

/// Rolled encoding: left = the `in/groups · kh · kw` entries of a flattened kernel in the order
/// of `W.reshape(out, −1)` (in-channel, kernel row, column); right = `out`; edge `l → left + o`
/// iff `W[o, l] ≠ 0` (and the mask keeps it), weight |w| rounded to Float16. A linear layer
/// has left = in features. A depthwise weight `[C, 1, kh, kw]` gives kh·kw left nodes.
/// - Complexity: O(|W|) time, O(|W|) memory at most.
public func rolledGraph(_ layer: LayerWeight) throws -> Graph {
    let g = try layer.geometry()
    let left = g.inPerGroup * g.kh * g.kw, right = g.out
    var offsets = [Int](repeating: 0, count: left + 1)
    var targets: [UInt32] = []
    var weights: [Float16] = []
    for l in 0 ..< left {
        for o in 0 ..< right {
            let w = layer.effective(o * left + l)
            if w != 0 { targets.append(UInt32(left + o)); weights.append(Float16(abs(w))) }
        }
        offsets[l + 1] = targets.count
    }
    let leftShape = layer.shape.count == 4 ? [g.inPerGroup, g.kh, g.kw] : [left]
    return bipartite(name: layer.name, left: left, leftShape: leftShape, right: right,
                     offsets: offsets, targets: targets, weights: weights)
}

/// Rolled-channel encoding: left = C_in, right = C_out; edge `i → C_in + o` iff the kernel
/// `W[o, i, :, :]` has a nonzero (kept) entry, weight ‖W[o, i]‖₂ (summed in Double, rounded
/// to Float then to Float16, as the reference's float32 norm stored as float16). Depthwise
/// (groups = in = out): channel j → j only. A linear layer is encoded as in `rolledGraph`.
/// - Complexity: O(|W|) time.
public func rolledChannelGraph(_ layer: LayerWeight) throws -> Graph {
    let g = try layer.geometry()
    if layer.shape.count == 2 { return try rolledGraph(layer) }
    let depthwise = layer.groups != 1
    let cin = depthwise ? g.out : g.inPerGroup, cout = g.out
    let area = g.kh * g.kw
    var offsets = [Int](repeating: 0, count: cin + 1)
    var targets: [UInt32] = []
    var weights: [Float16] = []
    for i in 0 ..< cin {
        let outs = depthwise ? i ..< i + 1 : 0 ..< cout
        for o in outs {
            let base = depthwise ? o * area : (o * g.inPerGroup + i) * area
            var s = 0.0
            var nonzero = false
            for t in 0 ..< area {
                let w = layer.effective(base + t)
                if w != 0 { nonzero = true; s += Double(w) * Double(w) }
            }
            if nonzero { targets.append(UInt32(cin + o)); weights.append(Float16(Float(s.squareRoot()))) }
        }
        offsets[i + 1] = targets.count
    }
    return bipartite(name: layer.name, left: cin, leftShape: [cin], right: cout,
                     offsets: offsets, targets: targets, weights: weights)
}
