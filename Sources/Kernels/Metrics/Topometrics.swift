import Dispatch

// The topometrics record (SPEC §4) for a whole multipartite graph and per bipartite layer.

/// A metric value in a record.
public enum MetricValue: Sendable, Equatable, CustomStringConvertible {
    case int(Int)
    case double(Double)
    case string(String)

    /// Numeric value (nil for strings).
    public var number: Double? {
        switch self {
        case let .int(i): return Double(i)
        case let .double(d): return d
        case .string: return nil
        }
    }
    public var description: String {
        switch self {
        case let .int(i): return String(i)
        case let .double(d): return String(d)
        case let .string(s): return s
        }
    }
}

/// Which behaviour to follow where the reference deviates from the paper.
public enum MetricsCompat: String, Sendable {
    /// sink/source counts exclude exactly the output/input partitions; removable edges
    /// likewise.
    case paper
    /// sink = #{out=0, in>0} − P_L and source = #{out>0, in=0} − P₀ (disconnected input or
    /// output nodes still subtracted); removable_out counts sinks with index < n−1−P_L and
    /// removable_in sources with index > P₀ (the reference's off-by-one).
    case reference
}

/// Roots of the RAND-ESU motif estimate.
public enum MotifSample: Sendable, Equatable {
    /// ⌊0.001·n⌋ roots (at least 1; the reference's NaN for a zero sample is avoided), drawn
    /// uniformly without replacement by a seeded generator.
    case reference(seed: UInt64)
    /// `count` roots drawn by a seeded generator.
    case count(Int, seed: UInt64)
    /// Explicit roots (deterministic estimate).
    case roots([Int])
}

/// How to obtain the motifs field.
public enum MotifMode: Sendable, Equatable {
    /// Exact number of weakly connected induced 4-node subgraphs (combinatorial census,
    /// `motifCensus`).
    case exact
    /// RAND-ESU estimate Σ_roots count(root) · n / |roots| (`esuRootCounts`).
    case estimate(sample: MotifSample)
    /// `.exact` when the census work W = Σ_{uv∈E} min(d_u, d_v) (computed in O(m)) is at most
    /// `maxCensusWork`, else `.estimate(sample: .reference(seed: 0))`.
    case auto(maxCensusWork: Int)

    /// The default: `.auto(maxCensusWork: 500_000_000)`.
    ///
    /// Why: the census costs ≈ 3.5 ns per unit of W on two cores, so below 5·10⁸ (≈ 2 s; every
    /// oracle case at sparsity ≥ 0.95 is far below) the exact count is affordable and preferred
    /// (SPEC: "an exact count is better where affordable"); above it the census alone would
    /// outgrow the 10 s budget of all topometrics, and the reference's estimator is used. The
    /// kind of the result tells which was used: `.int` for exact, `.double` for an estimate.
    public static let defaultMode: MotifMode = .auto(maxCensusWork: 500_000_000)
}

/// W = Σ_{uv∈E} min(d_u, d_v) over the undirected view: the work of `motifCensus`.
/// - Complexity: O(n + m).
public func motifCensusWork(_ view: UndirectedView) -> Int {
    var work = 0
    view.offsets.withUnsafeBufferPointer { off in
    view.neighbors.withUnsafeBufferPointer { nb in
        for u in 0 ..< view.nodeCount {
            let du = off[u + 1] - off[u]
            for e in off[u] ..< off[u + 1] {
                let v = Int(nb[e])
                if v >= u { break }
                work += min(du, off[v + 1] - off[v])
            }
        }
    }}
    return work
}

public enum TopometricsError: Error, Equatable, CustomStringConvertible {
    case unknownField(String)
    public var description: String {
        switch self {
        case let .unknownField(f):
            return "unknown topometric '\(f)'; known: \(Topometrics.fieldNames.joined(separator: ", "))"
        }
    }
}

/// Whole-graph topometrics (SPEC §4). Fields are nil when not requested through `only:`.
public struct Topometrics: Sendable {
    /// Record field names in SPEC order.
    public static let fieldNames = ["nodes", "edges", "sink_nodes", "source_nodes", "disconnected_nodes",
                                    "removable_out_edges", "removable_in_edges", "one_hop", "two_hop",
                                    "motifs", "strength", "k_core", "cut_edges", "cut_nodes", "components",
                                    "mean_component_size", "spectral_gap", "spectral_radius"]
    public var nodes: Int
    public var edges: Int
    public var sinkNodes: Int?
    public var sourceNodes: Int?
    public var disconnectedNodes: Int?
    public var removableOutEdges: Int?
    public var removableInEdges: Int?
    public var oneHop: Double?
    public var twoHop: Double?
    /// `.int` for the exact count, `.double` for an estimate.
    public var motifs: MetricValue?
    public var strength: Double?
    public var kCore: Double?
    public var cutEdges: Int?
    public var cutNodes: Int?
    public var components: Int?
    public var meanComponentSize: Double?
    public var spectralGap: Double?
    public var spectralRadius: Double?
    /// The three largest |λ| of the weighted adjacency behind `spectralGap`.
    public var topAbsEigenvalues: [Double]?

    /// The computed fields in SPEC order.
    public var orderedFields: [(name: String, value: MetricValue)] {
        var out: [(name: String, value: MetricValue)] = []
        func add(_ name: String, _ v: MetricValue?) { if let v { out.append((name, v)) } }
        add("nodes", .int(nodes)); add("edges", .int(edges))
        add("sink_nodes", sinkNodes.map(MetricValue.int)); add("source_nodes", sourceNodes.map(MetricValue.int))
        add("disconnected_nodes", disconnectedNodes.map(MetricValue.int))
        add("removable_out_edges", removableOutEdges.map(MetricValue.int))
        add("removable_in_edges", removableInEdges.map(MetricValue.int))
        add("one_hop", oneHop.map(MetricValue.double)); add("two_hop", twoHop.map(MetricValue.double))
        add("motifs", motifs)
        add("strength", strength.map(MetricValue.double)); add("k_core", kCore.map(MetricValue.double))
        add("cut_edges", cutEdges.map(MetricValue.int)); add("cut_nodes", cutNodes.map(MetricValue.int))
        add("components", components.map(MetricValue.int))
        add("mean_component_size", meanComponentSize.map(MetricValue.double))
        add("spectral_gap", spectralGap.map(MetricValue.double))
        add("spectral_radius", spectralRadius.map(MetricValue.double))
        return out
    }

    /// Value by record name.
    public subscript(name: String) -> MetricValue? { orderedFields.first { $0.name == name }?.value }
}

/// Sink/source/disconnected counts and removable edges (SPEC §4 "local connectivity").
/// - Complexity: O(n).
public func localConnectivity(_ g: Graph, compat: MetricsCompat)
    -> (sink: Int, source: Int, disconnected: Int, removableOut: Int, removableIn: Int) {
    let n = g.nodeCount
    return localConnectivity(nodeCount: n, inDegree: { g.inDegree($0) }, outDegree: { g.outDegree($0) },
                             firstPartition: g.partitions.first?.count ?? 0,
                             lastPartition: g.partitions.last?.count ?? 0, compat: compat)
}

/// The same from degree sequences alone (node ids in graph order).
/// - Complexity: O(n).
public func localConnectivity(nodeCount n: Int, inDegree: (Int) -> Int, outDegree: (Int) -> Int,
                              firstPartition p0: Int, lastPartition pL: Int, compat: MetricsCompat)
    -> (sink: Int, source: Int, disconnected: Int, removableOut: Int, removableIn: Int) {
    var sinks = 0, sources = 0, disc = 0, rOut = 0, rIn = 0
    var sinksOutside = 0, sourcesOutside = 0
    for v in 0 ..< n {
        let i = inDegree(v), o = outDegree(v)
        if i == 0 && o == 0 { disc += 1; continue }
        if o == 0 {
            sinks += 1
            let inside = v >= n - pL
            if !inside { sinksOutside += 1 }
            switch compat {
            case .paper: if !inside { rOut += i }
            case .reference: if v < n - 1 - pL { rOut += i }
            }
        } else if i == 0 {
            sources += 1
            let inside = v < p0
            if !inside { sourcesOutside += 1 }
            switch compat {
            case .paper: if !inside { rIn += o }
            case .reference: if v > p0 { rIn += o }
            }
        }
    }
    switch compat {
    case .paper: return (sinksOutside, sourcesOutside, disc, rOut, rIn)
    case .reference: return (sinks - pL, sources - p0, disc, rOut, rIn)
    }
}

/// Mean of an Int32 array as Double (exact integer sum).
func meanOf(_ a: [Int32]) -> Double {
    guard !a.isEmpty else { return 0 }
    var s = 0
    for x in a { s += Int(x) }
    return Double(s) / Double(a.count)
}

/// The motifs field under `mode` (`.int` exact, `.double` estimate). Returns an estimate of
/// whatever was counted when cancelled (callers check `Cancellation` afterwards).
/// - Complexity: see `motifCensus` / `esuRootCounts`; `.auto` adds O(n + m).
public func motifValue(_ view: UndirectedView, mode motifs: MotifMode) -> MetricValue {
    let n = view.nodeCount
    var mode = motifs
    if case let .auto(limit) = motifs {
        mode = motifCensusWork(view) <= limit ? .exact : .estimate(sample: .reference(seed: 0))
    }
    switch mode {
    case .exact, .auto: return .int(connectedFourSets(view))
    case let .estimate(sample):
        let roots: [Int]
        switch sample {
        case let .reference(seed): roots = motifSampleRoots(nodeCount: n, seed: seed)
        case let .count(c, seed): roots = motifSampleRoots(nodeCount: n, sample: c, seed: seed)
        case let .roots(list): roots = list.filter { $0 >= 0 && $0 < n }
        }
        return .double(motifEstimate(view, roots: roots))
    }
}

/// All (or `only`) topometrics of a directed multipartite graph (SPEC §4).
///
/// - Parameters:
///   - compat: `.paper` (default) or `.reference` behaviour of the sink/source/removable counts.
///   - motifs: `.exact`, a RAND-ESU estimate, or `.auto` (the default, see `MotifMode.defaultMode`).
///   - only: record names to compute (nil = all); `nodes` and `edges` are always filled.
///   - lanczos: eigen-solver options (default `LanczosOptions.wholeGraph`).
/// - Throws: `TopometricsError.unknownField` for a name not in `Topometrics.fieldNames`;
///   `InterruptedError` when `Cancellation` was requested (checked between metrics; the
///   long kernels poll it and return early).
/// - Complexity: O(n + m) for every metric except two_hop (O(Σ_v Σ_{u∈N⁺(v)} d⁺(u))),
///   motifs (see `motifCensus` / `esuRootCounts`) and the spectral values (Lanczos,
///   O((n + m)·iterations)). Memory: the undirected view, 16 bytes per edge, when a metric
///   needs it.
public func topometrics(_ g: Graph, compat: MetricsCompat = .paper, motifs: MotifMode = MotifMode.defaultMode,
                        only: Set<String>? = nil, lanczos: LanczosOptions = .wholeGraph) throws -> Topometrics {
    if let only { for f in only where !Topometrics.fieldNames.contains(f) { throw TopometricsError.unknownField(f) } }
    func want(_ f: String) -> Bool { only?.contains(f) ?? true }
    var r = Topometrics(nodes: g.nodeCount, edges: g.edgeCount)
    let n = g.nodeCount
    if want("sink_nodes") || want("source_nodes") || want("disconnected_nodes") || want("removable_out_edges") || want("removable_in_edges") {
        let l = localConnectivity(g, compat: compat)
        if want("sink_nodes") { r.sinkNodes = l.sink }
        if want("source_nodes") { r.sourceNodes = l.source }
        if want("disconnected_nodes") { r.disconnectedNodes = l.disconnected }
        if want("removable_out_edges") { r.removableOutEdges = l.removableOut }
        if want("removable_in_edges") { r.removableInEdges = l.removableIn }
    }
    if want("one_hop") { r.oneHop = n == 0 ? 0 : meanOf(oneHopSizes(g)) }
    if want("two_hop") { r.twoHop = n == 0 ? 0 : meanOf(twoHopSizes(g)); try Cancellation.check() }
    if want("strength") { r.strength = meanStrength(g) }
    if want("k_core") { r.kCore = n == 0 ? 0 : meanOf(coreNumbers(g)) }
    if want("components") || want("mean_component_size") {
        let c = weakComponents(g).count
        if want("components") { r.components = c }
        if want("mean_component_size") { r.meanComponentSize = c == 0 ? 0 : Double(n) / Double(c) }
    }
    let needView = want("cut_edges") || want("cut_nodes") || want("motifs") || want("spectral_gap") || want("spectral_radius")
    guard needView else { return r }
    try Cancellation.check()
    let view = UndirectedView(g, weights: want("spectral_gap") || want("spectral_radius"))
    if want("cut_edges") || want("cut_nodes") {
        let b = bridgesAndArticulationPoints(view)
        if want("cut_edges") { r.cutEdges = b.bridges }
        if want("cut_nodes") { r.cutNodes = b.articulationPoints.count }
        try Cancellation.check()
    }
    if want("motifs") {
        r.motifs = motifValue(view, mode: motifs)
        try Cancellation.check()
    }
    // A graph without edges has no spectrum to speak of: none, as in the per-layer records.
    if want("spectral_gap"), g.edgeCount > 0 {
        let top = topAbsEigenvalues(view, weighted: true, options: lanczos)
        try Cancellation.check()
        r.topAbsEigenvalues = top
        r.spectralGap = top[0] - top[2]
    }
    if want("spectral_radius"), g.edgeCount > 0 {
        r.spectralRadius = laplacianSpectralRadius(view, weighted: true, options: lanczos)
        try Cancellation.check()
    }
    return r
}

/// Per-layer topometrics of a bipartite (rolled / rolled-channel) layer graph plus its
/// Ramanujan metrics (SPEC §4 "Per-layer").
public struct LayerTopometrics: Sendable {
    public static let fieldNames = ["layer_id", "layer_name", "kind", "nodes", "edges", "cut_edges", "cut_nodes",
                                    "one_hop", "strength", "k_core", "components", "mean_component_size",
                                    "spectral_gap", "spectral_radius", "delta_r", "iterative_spectral_gap",
                                    "iterative_delta_r"]
    public var layerId: Int
    public var layerName: String
    public var kind: String
    public var nodes: Int
    public var edges: Int
    public var cutEdges: Int
    public var cutNodes: Int
    public var oneHop: Double
    public var strength: Double
    public var kCore: Double
    public var components: Int
    public var meanComponentSize: Double
    /// nil for a layer without edges (the reference's eigen-solver fails there and the
    /// record has no value).
    public var spectralGap: Double?
    public var spectralRadius: Double?
    public var ramanujan: RamanujanMetrics
    public var deltaR: Double? { ramanujan.deltaR }
    public var iterativeSpectralGap: Double? { ramanujan.iterativeSpectralGap }
    public var iterativeDeltaR: Double? { ramanujan.iterativeDeltaR }

    /// Fields in SPEC order; nil = missing value.
    public var orderedFields: [(name: String, value: MetricValue?)] {
        [("layer_id", .int(layerId)), ("layer_name", .string(layerName)), ("kind", .string(kind)),
         ("nodes", .int(nodes)), ("edges", .int(edges)), ("cut_edges", .int(cutEdges)), ("cut_nodes", .int(cutNodes)),
         ("one_hop", .double(oneHop)), ("strength", .double(strength)), ("k_core", .double(kCore)),
         ("components", .int(components)), ("mean_component_size", .double(meanComponentSize)),
         ("spectral_gap", spectralGap.map(MetricValue.double)), ("spectral_radius", spectralRadius.map(MetricValue.double)),
         ("delta_r", deltaR.map(MetricValue.double)),
         ("iterative_spectral_gap", iterativeSpectralGap.map(MetricValue.double)),
         ("iterative_delta_r", iterativeDeltaR.map(MetricValue.double))]
    }
}

/// Per-layer metrics of a bipartite layer graph whose first partition is the left side.
/// - Complexity: O(n + m) plus the eigen-solves (see `ramanujanMetrics`).
public func layerTopometrics(_ g: Graph, layerId: Int, name: String, kind: String,
                             lanczos: LanczosOptions = LanczosOptions()) -> LayerTopometrics {
    let n = g.nodeCount
    let view = UndirectedView(g)
    let b = bridgesAndArticulationPoints(view)
    let comps = weakComponents(g).count
    let hasEdges = g.edgeCount > 0  // spectral values of an edgeless graph are none, as in `topometrics`
    let top = hasEdges ? topAbsEigenvalues(view, weighted: true, options: lanczos) : []
    let left = g.partitions.first?.count ?? n
    return LayerTopometrics(
        layerId: layerId, layerName: name, kind: kind, nodes: n, edges: g.edgeCount,
        cutEdges: b.bridges, cutNodes: b.articulationPoints.count,
        oneHop: n == 0 ? 0 : meanOf(oneHopSizes(g)), strength: meanStrength(g),
        kCore: n == 0 ? 0 : meanOf(coreNumbers(g)), components: comps,
        meanComponentSize: comps == 0 ? 0 : Double(n) / Double(comps),
        spectralGap: hasEdges ? top[0] - top[2] : nil,
        spectralRadius: hasEdges ? laplacianSpectralRadius(view, weighted: true, options: lanczos) : nil,
        ramanujan: ramanujanMetrics(g, leftCount: left, options: lanczos))
}

/// Which per-layer encoding.
public enum LayerEncoding: String, Sendable {
    case rolled
    case rolledChannel = "rolled_channel"
}

/// Per-layer metrics of every layer, in the given order.
/// - Parameter layerIds: the record's `layer_id` per layer; default: the position. (The
///   reference numbers its module list, pooling layers included, so CONV-6's ids are
///   0, 1, 3, 4, 6, 7, 9, 10, 11.)
/// - Throws: `RolledEncodingError` for a malformed layer.
public func layerTopometrics(_ layers: [LayerWeight], encoding: LayerEncoding, layerIds: [Int]? = nil,
                             lanczos: LanczosOptions = LanczosOptions()) throws -> [LayerTopometrics] {
    try layers.enumerated().map { i, l in
        let g = encoding == .rolled ? try rolledGraph(l) : try rolledChannelGraph(l)
        let id = layerIds.flatMap { i < $0.count ? $0[i] : nil } ?? i
        return layerTopometrics(g, layerId: id, name: l.name, kind: l.kind, lanczos: lanczos)
    }
}
