// Synthetic multipartite graphs shaped like unrolled CNNs, for benchmarks and tests of the
// metrics at realistic sizes (not the MGE encoder: no pooling, no reference quirks).

/// One convolution of a synthetic layered graph.
public struct SyntheticConv: Sendable {
    /// Index of the partition it reads (0 = the padded input).
    public var source: Int
    public var outChannels: Int
    public var kernel: Int
    public var stride: Int
    /// When set, the edges go into this existing partition (a shortcut into a block output)
    /// instead of creating a new one.
    public var into: Int?
    public init(source: Int, outChannels: Int, kernel: Int = 3, stride: Int = 1, into: Int? = nil) {
        self.source = source; self.outChannels = outChannels; self.kernel = kernel; self.stride = stride; self.into = into
    }
}

/// A layered graph: partition 0 is a `[C, H+2, W+2]` padded input; each conv (padding
/// kernel/2) keeps each weight with probability `density` and adds an edge per kept weight and
/// output pixel whose tap is inside the source map (the padded input keeps all taps); a final
/// linear layer over the global average pool adds H·W edges per kept weight.
/// - Complexity: O(n + m) time and memory.
public func syntheticLayeredGraph(input: [Int], convs: [SyntheticConv], classes: Int,
                                  density: Double, seed: UInt64) -> Graph {
    var rng = SeededGenerator(seed: seed)
    var shapes: [[Int]] = [[input[0], input[1] + 2, input[2] + 2]]
    var starts: [Int] = [0]
    var total = shapes[0].reduce(1, *)
    var src: [UInt32] = [], tgt: [UInt32] = [], wts: [Float16] = []
    for (ci, c) in convs.enumerated() {
        let s = shapes[c.source]
        let padded = c.source == 0
        let pad = padded ? 0 : c.kernel / 2
        let hIn = padded ? s[1] - 2 : s[1]
        let hOut = (hIn + 2 * (c.kernel / 2) - c.kernel) / c.stride + 1
        let outIndex: Int
        if let into = c.into { outIndex = into } else {
            shapes.append([c.outChannels, hOut, hOut]); starts.append(total)
            total += c.outChannels * hOut * hOut; outIndex = shapes.count - 1
        }
        _ = ci
        let k = c.kernel, cin = s[0]
        var kept: [(i: Int, a: Int, b: Int, w: Float16)] = []
        for o in 0 ..< c.outChannels {
            kept.removeAll(keepingCapacity: true)
            for i in 0 ..< cin { for a in 0 ..< k { for b in 0 ..< k where rng.uniform() < density {
                kept.append((i, a, b, Float16(Float(0.01 + rng.uniform()))))
            } } }
            for y in 0 ..< hOut { for x in 0 ..< hOut {
                let t = UInt32(starts[outIndex] + (o * hOut + y) * hOut + x)
                for q in kept {
                    let yy = y * c.stride + q.a - pad, xx = x * c.stride + q.b - pad
                    if yy < 0 || xx < 0 || yy >= s[1] || xx >= s[2] { continue }
                    src.append(UInt32(starts[c.source] + (q.i * s[1] + yy) * s[2] + xx)); tgt.append(t); wts.append(q.w)
                }
            } }
        }
    }
    // Linear over the global average pool of the last partition.
    let last = shapes.count - 1, ls = shapes[last]
    let linStart = total
    total += classes
    for j in 0 ..< classes {
        for ch in 0 ..< ls[0] where rng.uniform() < density {
            let w = Float16(Float(0.01 + rng.uniform()))
            for p in 0 ..< ls[1] * ls[2] {
                src.append(UInt32(starts[last] + ch * ls[1] * ls[2] + p)); tgt.append(UInt32(linStart + j)); wts.append(w)
            }
        }
    }
    shapes.append([classes]); starts.append(linStart)
    // Stable counting sort by source, then sort each source's targets.
    var offsets = [Int](repeating: 0, count: total + 1)
    for s in src { offsets[Int(s) + 1] += 1 }
    for v in 0 ..< total { offsets[v + 1] += offsets[v] }
    var cursor = offsets
    var ot = [UInt32](repeating: 0, count: src.count), ow = [Float16](repeating: 0, count: src.count)
    for e in 0 ..< src.count { let s = Int(src[e]); ot[cursor[s]] = tgt[e]; ow[cursor[s]] = wts[e]; cursor[s] += 1 }
    src = []; tgt = []; wts = []
    for v in 0 ..< total where offsets[v + 1] - offsets[v] > 1 {
        let r = offsets[v] ..< offsets[v + 1]
        let pairs = zip(ot[r], ow[r]).sorted { $0.0 < $1.0 }
        for (i, p) in pairs.enumerated() { ot[r.lowerBound + i] = p.0; ow[r.lowerBound + i] = p.1 }
    }
    let parts = shapes.enumerated().map { i, s in
        Partition(name: i == 0 ? "input" : "p\(i)", start: starts[i], count: s.reduce(1, *), shape: s)
    }
    return Graph(nodeCount: total, partitions: parts, outOffsets: offsets, outTargets: ot, outWeights: ow)
}

/// A ResNet-20-shaped layered graph for CIFAR (191,894 nodes, as the MGE): conv1, three
/// stages of three blocks (widths 16, 32, 64; stride 2 entering stages 2 and 3), 1×1
/// shortcuts at the stage changes, and a linear layer to `classes`.
/// - Complexity: O(n + m).
public func syntheticResNet20Graph(density: Double, classes: Int = 10, seed: UInt64 = 0) -> Graph {
    var convs: [SyntheticConv] = [SyntheticConv(source: 0, outChannels: 16)]
    var current = 1, partitions = 1
    for (stage, width) in [16, 32, 64].enumerated() {
        for block in 0 ..< 3 {
            let stride = (stage > 0 && block == 0) ? 2 : 1
            convs.append(SyntheticConv(source: current, outChannels: width, stride: stride)); partitions += 1
            let mid = partitions
            convs.append(SyntheticConv(source: mid, outChannels: width)); partitions += 1
            let out = partitions
            if stride != 1 { convs.append(SyntheticConv(source: current, outChannels: width, kernel: 1, stride: stride, into: out)) }
            current = out
        }
    }
    return syntheticLayeredGraph(input: [3, 32, 32], convs: convs, classes: classes, density: density, seed: seed)
}
