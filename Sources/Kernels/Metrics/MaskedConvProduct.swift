// The adjacency of an implicit MGE times a block of vectors as masked convolutions over whole
// feature maps (#23): every edge is (kept tap, output position), so A·X restricted to one
// layer is the masked conv of X's source maps (its in-edges) plus its transpose (its
// out-edges), swept tap by tap over contiguous rows instead of generating every node's row.
// A pooled layer (any window, stride and padding: VGG's 2×2 tiles, ResNet-50's overlapping,
// padded 3×3/2 stem pool) pools X's source maps once per product — each pooled pixel the sum
// of its window — runs the conv on the pooled map, and scatters the transpose's pooled sums
// back over the windows: the same matrix (every MGE edge of a pooled layer is (tap, output,
// window pixel)), the pooling done once per pixel instead of once per tap.

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
            guard !spec.croppedLeftGrid, spec.targetBase == graph.partitions[spec.targetPartition].start else { return nil }
            if case .conv = spec.kind, spec.inputShape.count != 3 || spec.outputShape.count != 3 { return nil }
            if spec.pool != .identity {
                // A pooled map (`UnrollPlan` never pools the padded input).
                guard PooledMap(graph, spec) != nil else { return nil }
            }
        }
        self.graph = graph
    }

    /// Y += A·X over every layer. With `from` (a flag per partition), only the entries of X on
    /// flagged partitions are read: a layer's forward pass runs when its source partition is
    /// flagged, its transpose when its target is (one side of a bipartite graph's product).
    /// - Complexity: O(m) lane updates (each edge twice, once with `from`; a pooled layer's per
    ///   pooled pixel, plus its window sums), over the cores; a pooled layer holds one pooled
    ///   map of `L` lanes while it runs.
    func accumulate<L: GatherLanes>(_ x: UnsafeMutablePointer<L>, into y: UnsafeMutablePointer<L>, from: [Bool]? = nil) {
        let xs = SharedMutablePointer(x), ys = SharedMutablePointer(y)
        for layer in graph.edges.layers {
            let spec = layer.spec
            let forward = from?[spec.sourcePartition] ?? true, transpose = from?[spec.targetPartition] ?? true
            if !forward && !transpose { continue }
            // The layer's source values: X's own entries, or its pooled map (then the forward
            // pass reads the window sums, the transpose writes pooled sums that are scattered
            // over the windows afterwards).
            let pooled = spec.pool == .identity ? nil : PooledMap(graph, spec)
            let buffer: UnsafeMutablePointer<L>? = pooled.map { UnsafeMutablePointer<L>.allocate(capacity: $0.count) }
            defer { buffer?.deallocate() }
            let bs = buffer.map { SharedMutablePointer($0) }
            if let pooled, let bs, forward {
                Parallel.forChunks(pooled.channels, grain: 1) { _, range in
                    for c in range { pooled.gather(channel: c, from: xs.base, into: bs.base) }
                }
            }
            let source = bs?.base ?? xs.base
            switch spec.kind {
            case .conv(let conv):
                let geometry = MaskedConvGeometry(graph, spec, conv, pooled: pooled != nil)
                if forward {
                    Parallel.forChunks(conv.outChannels, grain: 1) { _, range in
                        for o in range { convForward(layer, geometry, o, source, ys.base) }
                    }
                }
                if !transpose { continue }
                if let bs { Parallel.forChunks(pooled?.count ?? 0, grain: 8192) { _, r in for v in r { bs[v] = L() } } }
                let sink = bs?.base ?? ys.base
                Parallel.forChunks(conv.inChannels, grain: 1) { _, range in
                    for i in range { convTranspose(layer, geometry, i, xs.base, sink) }
                }
            case .linear(let linear):
                let direct = pooled != nil
                if forward {
                    Parallel.forChunks(linear.outFeatures, grain: 64) { _, range in
                        for j in range { linearForward(layer, j, source, direct, xs.base, ys.base) }
                    }
                }
                if !transpose { continue }
                if let bs { Parallel.forChunks(pooled?.count ?? 0, grain: 8192) { _, r in for v in r { bs[v] = L() } } }
                let sink = bs?.base ?? ys.base
                Parallel.forChunks(linear.inFeatures, grain: 64) { _, range in
                    for f in range { linearTranspose(layer, f, direct, xs.base, sink) }
                }
            }
            if let pooled, let bs {
                Parallel.forChunks(pooled.channels, grain: 1) { _, range in
                    for c in range { pooled.scatter(channel: c, from: bs.base, into: ys.base) }
                }
            }
        }
    }

    /// y[(o, Y, X)] += Σ over o's taps (i, a, b, w) of w·x[source pixel] (x: the source
    /// partition's values, or the pooled map).
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
                            y[d] = L.adding(y[d], w, x[s])
                            d += 1; s += step
                        }
                    }
                }
                tile = tileEnd
            }
        }
    }

    /// y[source pixel] += Σ over i's taps (o, a, b, w) of w·x[(o, Y, X)] (y: the source
    /// partition's values, or the pooled map's sums).
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
                            y[s] = L.adding(y[s], w, x[d])
                            d += 1; s += step
                        }
                    }
                }
                tile = tileEnd
            }
        }
    }

    /// The entry feature f of a linear layer reads: its index in the pooled map (`direct`), else
    /// the source partition's pixel (a flattened map, the input's padding ring skipped) or unit.
    @inline(__always)
    private func featureIndex(_ spec: UnrolledLayer, _ f: Int, direct: Bool) -> Int {
        if direct { return f }
        let source = graph.partitions[spec.sourcePartition]
        guard let shape = spec.flattenedShape else { return source.start + f }
        let pad = spec.sourcePartition == 0 ? graph.plan.inputPadding : 0
        let gridH = source.shape[1], gridW = source.shape[2], mapW = shape[2]
        let rowIndex = f / mapW, channel = rowIndex / shape[1], r = rowIndex - channel * shape[1], c = f - rowIndex * mapW
        return source.start + (channel * gridH + r + pad) * gridW + pad + c
    }

    private func linearForward<L: GatherLanes>(_ layer: UnrolledEdges.Layer, _ j: Int, _ source: UnsafeMutablePointer<L>, _ direct: Bool,
                                               _ x: UnsafeMutablePointer<L>, _ y: UnsafeMutablePointer<L>) {
        let spec = layer.spec
        var acc = y[spec.targetBase + j]
        for t in layer.inTapStart[j] ..< layer.inTapStart[j + 1] {
            let tap = layer.inTaps[t]
            acc = L.adding(acc, Double(widen(tap.weight)), source[featureIndex(spec, Int(tap.output), direct: direct)])
        }
        y[spec.targetBase + j] = acc
    }

    private func linearTranspose<L: GatherLanes>(_ layer: UnrolledEdges.Layer, _ f: Int, _ direct: Bool,
                                                 _ x: UnsafeMutablePointer<L>, _ sink: UnsafeMutablePointer<L>) {
        let spec = layer.spec
        let entry = featureIndex(spec, f, direct: direct)
        var acc = sink[entry]
        for t in layer.tapStart[f] ..< layer.tapStart[f + 1] {
            let tap = layer.taps[t]
            acc = L.adding(acc, Double(widen(tap.weight)), x[spec.targetBase + Int(tap.output)])
        }
        sink[entry] = acc
    }
}

/// A layer's pooled input map (`channels` × `height` × `width`, the conv's input or the map a
/// linear layer flattens) over its source partition: pooled pixel (c, r, q) covers the
/// partition's rows `pool.window(r)` and columns `pool.window(q)`, clipped to the map, exactly
/// as `UnrolledEdges.emitConvInputs` / `emitLinearInputs` expand it.
struct PooledMap {
    let pool: PoolGeometry
    let sourceStart: Int, gridH: Int, gridW: Int, ring: Int
    let channels: Int, height: Int, width: Int
    var count: Int { channels * height * width }

    init?(_ graph: ImplicitGraph, _ spec: UnrolledLayer) {
        let source = graph.partitions[spec.sourcePartition]
        let shape: [Int]
        switch spec.kind {
        case .conv: shape = spec.inputShape
        case .linear:
            guard let f = spec.flattenedShape else { return nil }
            shape = f
        }
        guard source.shape.count == 3, shape.count == 3, shape[0] == source.shape[0] else { return nil }
        pool = spec.pool
        sourceStart = source.start; gridH = source.shape[1]; gridW = source.shape[2]
        ring = spec.sourcePartition == 0 ? graph.plan.inputPadding : 0
        // The generator expands a conv's pooled pixel on the whole grid and a linear layer's
        // inside the ring; a pooled input (ring > 0) does not occur, and is left to the rows.
        guard ring == 0 else { return nil }
        channels = shape[0]; height = shape[1]; width = shape[2]
    }

    /// pooled[(c, r, q)] = Σ x over the window, for every (r, q) of channel c.
    @inline(__always)
    func gather<L: GatherLanes>(channel c: Int, from x: UnsafeMutablePointer<L>, into pooled: UnsafeMutablePointer<L>) {
        for r in 0 ..< height {
            let rows = pool.window(r, size: gridH)
            for q in 0 ..< width {
                var s = L()
                for sr in rows {
                    let rowStart = sourceStart + (c * gridH + sr) * gridW
                    for sc in pool.window(q, size: gridW) { s += x[rowStart + sc] }
                }
                pooled[(c * height + r) * width + q] = s
            }
        }
    }

    /// y[pixel] += pooled[(c, r, q)] for every window (r, q) of channel c holding the pixel.
    @inline(__always)
    func scatter<L: GatherLanes>(channel c: Int, from pooled: UnsafeMutablePointer<L>, into y: UnsafeMutablePointer<L>) {
        for r in 0 ..< height {
            let rows = pool.window(r, size: gridH)
            for q in 0 ..< width {
                let v = pooled[(c * height + r) * width + q]
                for sr in rows {
                    let rowStart = sourceStart + (c * gridH + sr) * gridW
                    for sc in pool.window(q, size: gridW) { y[rowStart + sc] += v }
                }
            }
        }
    }
}

/// Where one conv layer's taps connect, as `UnrolledEdges.emitConvInputs` lays it out: output
/// (o, Y, X) reads input (i, Y·s + a − p, X·s + b − p) through tap (a, b), on the source
/// partition's grid (the input's padding ring included) or on the layer's pooled map.
struct MaskedConvGeometry {
    static let tileRows = 8
    let sourceStart: Int, targetBase: Int
    let gridH: Int, gridW: Int, ring: Int
    let stride: Int, padding: Int
    let inH: Int, inW: Int, outH: Int, outW: Int

    /// `pooled`: the layer reads its `PooledMap` (index 0 = pooled pixel (0, 0, 0)).
    init(_ graph: ImplicitGraph, _ spec: UnrolledLayer, _ conv: Convolution, pooled: Bool) {
        inH = spec.inputShape[1]; inW = spec.inputShape[2]; outH = spec.outputShape[1]; outW = spec.outputShape[2]
        targetBase = spec.targetBase
        stride = conv.stride; padding = conv.padding
        if pooled {
            sourceStart = 0; gridH = inH; gridW = inW; ring = 0
        } else {
            let source = graph.partitions[spec.sourcePartition]
            sourceStart = source.start
            gridH = source.shape[1]; gridW = source.shape[2]
            ring = spec.sourcePartition == 0 ? graph.plan.inputPadding : 0
        }
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

    /// Calls `body(dst, src, count, step)` once per output row Y in `rows`: the tap connects
    /// output ids dst ..< dst + count to source entries src, src + step, ….
    @inline(__always)
    func sweep(channel i: Int, row a: Int, column b: Int, output o: Int, rows: Range<Int>,
               _ body: (_ dst: Int, _ src: Int, _ count: Int, _ step: Int) -> Void) {
        let ys = valid(a, inH, outH), xs = valid(b, inW, outW)
        let y0 = max(ys.lowerBound, rows.lowerBound), y1 = min(ys.upperBound, rows.upperBound)
        if y0 >= y1 || xs.isEmpty { return }
        let firstColumn = xs.lowerBound * stride + b - padding + ring
        for yy in y0 ..< y1 {
            let dst = targetBase + (o * outH + yy) * outW + xs.lowerBound
            let row = yy * stride + a - padding + ring
            body(dst, sourceStart + (i * gridH + row) * gridW + firstColumn, xs.count, stride)
        }
    }
}
