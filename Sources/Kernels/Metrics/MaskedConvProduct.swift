// The adjacency of an implicit MGE times a block of vectors as masked convolutions over whole
// feature maps (#23): every edge is (kept tap, output position), so A·X restricted to one
// layer is the masked conv of X's source maps (its in-edges) plus its transpose (its
// out-edges), swept tap by tap over contiguous rows instead of generating every node's row.

/// Accumulates Y += A·X (A the symmetric adjacency of a simple implicit MGE, X and Y `L`
/// lanes interleaved per node). Each layer's forward pass runs over its output channels and
/// its transpose over its input channels, one channel per chunk, so every entry is written
/// by one thread and summed in a fixed order (the result does not depend on the thread count).
/// Layers run one after another (a partition can be written by two layers: a ResNet block's
/// output by its second conv and its shortcut).
struct MaskedConvProduct {
    let graph: ImplicitGraph

    /// Only a simple graph, whose rows are exactly its out- and in-edges; the reference's
    /// quirk lays layers across partitions and goes through the generated rows.
    init?(_ graph: ImplicitGraph) {
        guard graph.isSimple else { return nil }
        for layer in graph.edges.layers {
            let spec = layer.spec
            // Tiling pools only (window = stride, no padding): an overlapping or padded pool goes
            // through the generated rows.
            guard !spec.croppedLeftGrid, spec.pool.isTiling,
                  spec.targetBase == graph.partitions[spec.targetPartition].start else { return nil }
            if case .conv = spec.kind, spec.inputShape.count != 3 || spec.outputShape.count != 3 { return nil }
        }
        self.graph = graph
    }

    /// Y += A·X over every layer.
    /// - Complexity: O(m) lane updates (each edge twice), over the cores; no memory.
    func accumulate<L: GatherLanes>(_ x: UnsafeMutablePointer<L>, into y: UnsafeMutablePointer<L>) {
        let xs = SharedMutablePointer(x), ys = SharedMutablePointer(y)
        for layer in graph.edges.layers {
            switch layer.spec.kind {
            case .conv(let conv):
                let geometry = MaskedConvGeometry(graph, layer.spec, conv)
                Parallel.forChunks(conv.outChannels, grain: 1) { _, range in
                    for o in range { convForward(layer, geometry, o, xs.base, ys.base) }
                }
                Parallel.forChunks(conv.inChannels, grain: 1) { _, range in
                    for i in range { convTranspose(layer, geometry, i, xs.base, ys.base) }
                }
            case .linear(let linear):
                Parallel.forChunks(linear.outFeatures, grain: 64) { _, range in
                    for j in range { linearForward(layer, j, xs.base, ys.base) }
                }
                Parallel.forChunks(linear.inFeatures, grain: 64) { _, range in
                    for f in range { linearTranspose(layer, f, xs.base, ys.base) }
                }
            }
        }
    }

    /// y[(o, Y, X)] += Σ over o's taps (i, a, b, w) and the pooling window of w·x[source pixel].
    private func convForward<L: GatherLanes>(_ layer: UnrolledEdges.Layer, _ g: MaskedConvGeometry, _ o: Int,
                                             _ x: UnsafeMutablePointer<L>, _ y: UnsafeMutablePointer<L>) {
        let start = layer.inTapStart[o], end = layer.inTapStart[o + 1]
        if start == end { return }
        layer.inTaps.withUnsafeBufferPointer { taps in
            // Rows in tiles, so the output rows stay in cache while the taps sweep them.
            var tile = 0
            while tile < g.outH {
                let tileEnd = min(g.outH, tile + MaskedConvGeometry.tileRows)
                for t in start ..< end {
                    let tap = taps[t]
                    g.sweep(channel: Int(tap.output), row: Int(tap.row), column: Int(tap.column), output: o,
                            rows: tile ..< tileEnd) { dst, src, count, step in
                        let w = Double(widen(tap.weight))
                        var d = dst, s = src
                        for _ in 0 ..< count {
                            var acc = y[d]
                            for dc in 0 ..< g.pool { acc = L.adding(acc, w, x[s + dc]) }
                            y[d] = acc
                            d += 1; s += step
                        }
                    }
                }
                tile = tileEnd
            }
        }
    }

    /// y[source pixel] += Σ over i's taps (o, a, b, w) of w·x[(o, Y, X)].
    private func convTranspose<L: GatherLanes>(_ layer: UnrolledEdges.Layer, _ g: MaskedConvGeometry, _ i: Int,
                                               _ x: UnsafeMutablePointer<L>, _ y: UnsafeMutablePointer<L>) {
        let start = layer.tapStart[i], end = layer.tapStart[i + 1]
        if start == end { return }
        layer.taps.withUnsafeBufferPointer { taps in
            var tile = 0
            while tile < g.outH {
                let tileEnd = min(g.outH, tile + MaskedConvGeometry.tileRows)
                for t in start ..< end {
                    let tap = taps[t]
                    g.sweep(channel: i, row: Int(tap.row), column: Int(tap.column), output: Int(tap.output),
                            rows: tile ..< tileEnd) { dst, src, count, step in
                        let w = Double(widen(tap.weight))
                        var d = dst, s = src
                        for _ in 0 ..< count {
                            let v = x[d]
                            for dc in 0 ..< g.pool { y[s + dc] = L.adding(y[s + dc], w, v) }
                            d += 1; s += step
                        }
                    }
                }
                tile = tileEnd
            }
        }
    }

    /// The source pixels of linear feature f: itself, or its pooling window in the flattened map.
    @inline(__always)
    private func pixels(_ spec: UnrolledLayer, _ f: Int, _ body: (Int) -> Void) {
        let source = graph.partitions[spec.sourcePartition]
        guard let shape = spec.flattenedShape else { return body(source.start + f) }
        let pad = spec.sourcePartition == 0 ? graph.plan.inputPadding : 0
        let k = spec.pool.kernel, gridH = source.shape[1], gridW = source.shape[2], mapW = shape[2]
        let rowIndex = f / mapW, channel = rowIndex / shape[1], r = rowIndex - channel * shape[1], c = f - rowIndex * mapW
        for dr in 0 ..< k {
            let rowStart = source.start + (channel * gridH + r * k + dr + pad) * gridW + pad
            for dc in 0 ..< k { body(rowStart + c * k + dc) }
        }
    }

    private func linearForward<L: GatherLanes>(_ layer: UnrolledEdges.Layer, _ j: Int,
                                               _ x: UnsafeMutablePointer<L>, _ y: UnsafeMutablePointer<L>) {
        let spec = layer.spec
        var acc = y[spec.targetBase + j]
        for t in layer.inTapStart[j] ..< layer.inTapStart[j + 1] {
            let tap = layer.inTaps[t], w = Double(widen(tap.weight))
            pixels(spec, Int(tap.output)) { acc = L.adding(acc, w, x[$0]) }
        }
        y[spec.targetBase + j] = acc
    }

    private func linearTranspose<L: GatherLanes>(_ layer: UnrolledEdges.Layer, _ f: Int,
                                                 _ x: UnsafeMutablePointer<L>, _ y: UnsafeMutablePointer<L>) {
        let spec = layer.spec
        for t in layer.tapStart[f] ..< layer.tapStart[f + 1] {
            let tap = layer.taps[t], w = Double(widen(tap.weight)), v = x[spec.targetBase + Int(tap.output)]
            pixels(spec, f) { y[$0] = L.adding(y[$0], w, v) }
        }
    }
}

/// Where one conv layer's taps connect, as `UnrolledEdges.emitConvInputs` lays it out: output
/// (o, Y, X) reads input (i, Y·s + a − p, X·s + b − p) through tap (a, b), expanded over the
/// pooling window on the source partition's grid (the input's padding ring included).
struct MaskedConvGeometry {
    static let tileRows = 8
    let sourceStart: Int, targetBase: Int
    let gridH: Int, gridW: Int, pool: Int, ring: Int
    let stride: Int, padding: Int
    let inH: Int, inW: Int, outH: Int, outW: Int

    init(_ graph: ImplicitGraph, _ spec: UnrolledLayer, _ conv: Convolution) {
        let source = graph.partitions[spec.sourcePartition]
        sourceStart = source.start; targetBase = spec.targetBase
        gridH = source.shape[1]; gridW = source.shape[2]; pool = spec.pool.kernel
        ring = spec.sourcePartition == 0 ? graph.plan.inputPadding : 0
        stride = conv.stride; padding = conv.padding
        inH = spec.inputShape[1]; inW = spec.inputShape[2]; outH = spec.outputShape[1]; outW = spec.outputShape[2]
    }

    /// Outputs Y in [0, out) whose tap offset a lands inside [−ring, in − 1 + ring].
    @inline(__always) func valid(_ a: Int, _ input: Int, _ output: Int) -> Range<Int> {
        let lo = -ring + padding - a, hi = input - 1 + ring + padding - a
        // ceil(lo / s) and floor(hi / s) for either sign.
        let first = lo <= 0 ? -((-lo) / stride) : (lo + stride - 1) / stride
        let last = hi >= 0 ? hi / stride : -((-hi + stride - 1) / stride)
        let lower = max(0, first)
        return lower ..< max(lower, min(output, last + 1))
    }

    /// Calls `body(dst, src, count, step)` once per output row Y in `rows` and window row: the
    /// tap connects output ids dst ..< dst + count to source pixels src, src + step, … (each the
    /// first of `pool` consecutive window columns).
    @inline(__always)
    func sweep(channel i: Int, row a: Int, column b: Int, output o: Int, rows: Range<Int>,
               _ body: (_ dst: Int, _ src: Int, _ count: Int, _ step: Int) -> Void) {
        let ys = valid(a, inH, outH), xs = valid(b, inW, outW)
        let y0 = max(ys.lowerBound, rows.lowerBound), y1 = min(ys.upperBound, rows.upperBound)
        if y0 >= y1 || xs.isEmpty { return }
        let step = stride * pool
        let firstColumn = (xs.lowerBound * stride + b - padding + ring) * pool
        for yy in y0 ..< y1 {
            let dst = targetBase + (o * outH + yy) * outW + xs.lowerBound
            let rawRow = (yy * stride + a - padding + ring) * pool
            for dr in 0 ..< pool {
                body(dst, sourceStart + (i * gridH + rawRow + dr) * gridW + firstColumn, xs.count, step)
            }
        }
    }
}
