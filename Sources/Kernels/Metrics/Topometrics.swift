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
/// The values are kept by record name (`MetricTable`); the typed properties read and write them.
public struct Topometrics: Sendable {
    /// Record field names in SPEC order (the `only:` vocabulary), from `MetricTable`.
    public static let fieldNames = MetricTable.all.map(\.name)
    /// Computed values by record name.
    public var values: [String: MetricValue] = [:]
    /// Roots of the motif estimate; nil when motifs were counted exactly (or not computed).
    public var motifsSample: Int?
    /// The three largest |λ| of the weighted adjacency behind `spectralGap`.
    public var topAbsEigenvalues: [Double]?
    /// Warnings about values that cannot be trusted to their usual accuracy (a spectral solve
    /// that stopped short of its tolerance); shown with the record.
    public var notes: [String] = []

    public init(nodes: Int, edges: Int) { values = ["nodes": .int(nodes), "edges": .int(edges)] }

    public var nodes: Int { get { int("nodes") ?? 0 } set { values["nodes"] = .int(newValue) } }
    public var edges: Int { get { int("edges") ?? 0 } set { values["edges"] = .int(newValue) } }
    public var sinkNodes: Int? { get { int("sink_nodes") } set { set("sink_nodes", newValue.map(MetricValue.int)) } }
    public var sourceNodes: Int? { get { int("source_nodes") } set { set("source_nodes", newValue.map(MetricValue.int)) } }
    public var disconnectedNodes: Int? { get { int("disconnected_nodes") } set { set("disconnected_nodes", newValue.map(MetricValue.int)) } }
    public var removableOutEdges: Int? { get { int("removable_out_edges") } set { set("removable_out_edges", newValue.map(MetricValue.int)) } }
    public var removableInEdges: Int? { get { int("removable_in_edges") } set { set("removable_in_edges", newValue.map(MetricValue.int)) } }
    public var oneHop: Double? { get { values["one_hop"]?.number } set { set("one_hop", newValue.map(MetricValue.double)) } }
    public var twoHop: Double? { get { values["two_hop"]?.number } set { set("two_hop", newValue.map(MetricValue.double)) } }
    /// `.int` for the exact count, `.double` for an estimate.
    public var motifs: MetricValue? { get { values["motifs"] } set { set("motifs", newValue) } }
    /// Whether `motifs` is an estimate (nil when motifs were not computed).
    public var motifsEstimated: Bool? {
        guard let m = motifs else { return nil }
        if case .int = m { return false }
        return true
    }
    public var strength: Double? { get { values["strength"]?.number } set { set("strength", newValue.map(MetricValue.double)) } }
    public var kCore: Double? { get { values["k_core"]?.number } set { set("k_core", newValue.map(MetricValue.double)) } }
    public var cutEdges: Int? { get { int("cut_edges") } set { set("cut_edges", newValue.map(MetricValue.int)) } }
    public var cutNodes: Int? { get { int("cut_nodes") } set { set("cut_nodes", newValue.map(MetricValue.int)) } }
    public var components: Int? { get { int("components") } set { set("components", newValue.map(MetricValue.int)) } }
    public var meanComponentSize: Double? { get { values["mean_component_size"]?.number } set { set("mean_component_size", newValue.map(MetricValue.double)) } }
    public var spectralGap: Double? { get { values["spectral_gap"]?.number } set { set("spectral_gap", newValue.map(MetricValue.double)) } }
    public var spectralRadius: Double? { get { values["spectral_radius"]?.number } set { set("spectral_radius", newValue.map(MetricValue.double)) } }

    private func int(_ name: String) -> Int? {
        if case let .int(i)? = values[name] { return i }
        return nil
    }
    private mutating func set(_ name: String, _ v: MetricValue?) { values[name] = v }

    /// The computed fields in SPEC order.
    public var orderedFields: [(name: String, value: MetricValue)] {
        MetricTable.all.compactMap { entry in values[entry.name].map { (entry.name, $0) } }
    }

    /// Value by record name.
    public subscript(name: String) -> MetricValue? { values[name] }
}

extension Topometrics: CustomStringConvertible {
    /// The fields in SPEC order (values written so they read back exactly), so two records with
    /// the same values print the same (the dictionary's own order varies between runs).
    public var description: String {
        let fields = orderedFields.map { "\($0.name): \($0.value)" }
        let sample = motifsSample.map { ", motifs_sample: \($0)" } ?? ""
        let top = topAbsEigenvalues.map { ", top_abs_eigenvalues: \($0)" } ?? ""
        return "Topometrics(" + fields.joined(separator: ", ") + sample + top + ")"
    }
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
    motifValueAndSample(view, mode: motifs).value
}

/// The motifs field and, for an estimate, the number of sampled roots (nil when exact).
/// - Complexity: as `motifValue`.
public func motifValueAndSample(_ view: UndirectedView, mode motifs: MotifMode) -> (value: MetricValue, sample: Int?) {
    switch motifs.resolved(censusWork: { motifCensusWork(view) }) {
    case .exact, .auto: return (.int(connectedFourSets(view)), nil)
    case let .estimate(sample):
        let roots = sample.roots(nodeCount: view.nodeCount)
        return (.double(motifEstimate(view, roots: roots)), roots.count)
    }
}

extension MotifMode {
    /// `.auto` decided by the census work W (computed only then): `.exact` when W ≤ the
    /// limit, else the reference's estimate; any other mode as it is (both graph forms).
    func resolved(censusWork: () -> Int) -> MotifMode {
        guard case let .auto(limit) = self else { return self }
        return censusWork() <= limit ? .exact : .estimate(sample: .reference(seed: 0))
    }
}

extension MotifSample {
    /// The roots this sample draws from n nodes (both graph forms).
    func roots(nodeCount n: Int) -> [Int] {
        switch self {
        case let .reference(seed): return motifSampleRoots(nodeCount: n, seed: seed)
        case let .count(c, seed): return motifSampleRoots(nodeCount: n, sample: c, seed: seed)
        case let .roots(list): return list.filter { $0 >= 0 && $0 < n }
        }
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
    func want(_ f: String) -> Bool { f == "nodes" || f == "edges" || (only?.contains(f) ?? true) }
    let inputs = MetricInputs(g, compat: compat, motifs: motifs, lanczos: lanczos,
                              weightedView: want("spectral_gap") || want("spectral_radius"), wholeGraph: true)
    var r = Topometrics(nodes: g.nodeCount, edges: g.edgeCount)
    for entry in MetricTable.all where want(entry.name) {
        r.values[entry.name] = entry.compute(inputs)
        try Cancellation.check()  // the long kernels poll it and return early
    }
    r.motifsSample = inputs.motifsSample
    r.topAbsEigenvalues = inputs.topAbsEigenvalues
    r.notes = inputs.notes
    return r
}

/// Per-layer topometrics of a bipartite (rolled / rolled-channel) layer graph plus its
/// Ramanujan metrics (SPEC §4 "Per-layer"). The metric fields are `MetricTable`'s per-layer
/// entries, in its order.
public struct LayerTopometrics: Sendable {
    /// The layer's identity, then the per-layer metrics, then the Ramanujan metrics.
    public static let identityFields = ["layer_id", "layer_name", "kind"]
    public static let ramanujanFields = ["delta_r", "iterative_spectral_gap", "iterative_delta_r"]
    public static let fieldNames = identityFields + MetricTable.all.filter(\.perLayer).map(\.name) + ramanujanFields
    public var layerId: Int
    public var layerName: String
    public var kind: String
    /// The per-layer metrics by record name; a missing one has no value (e.g. the spectrum of a
    /// layer without edges: the reference's eigen-solver fails there).
    public var values: [String: MetricValue]
    public var ramanujan: RamanujanMetrics
    /// A line per eigen-solve that stopped short of its tolerance, naming the layer (shown as
    /// `warning:` lines, as the whole graph's `Topometrics.notes`).
    public var notes: [String] = []
    public var nodes: Int { values["nodes"]?.number.map { Int($0) } ?? 0 }
    public var edges: Int { values["edges"]?.number.map { Int($0) } ?? 0 }
    public var cutEdges: Int { values["cut_edges"]?.number.map { Int($0) } ?? 0 }
    public var cutNodes: Int { values["cut_nodes"]?.number.map { Int($0) } ?? 0 }
    public var oneHop: Double { values["one_hop"]?.number ?? 0 }
    public var strength: Double { values["strength"]?.number ?? 0 }
    public var kCore: Double { values["k_core"]?.number ?? 0 }
    public var components: Int { values["components"]?.number.map { Int($0) } ?? 0 }
    public var meanComponentSize: Double { values["mean_component_size"]?.number ?? 0 }
    public var spectralGap: Double? { values["spectral_gap"]?.number }
    public var spectralRadius: Double? { values["spectral_radius"]?.number }
    public var deltaR: Double? { ramanujan.deltaR }
    public var iterativeSpectralGap: Double? { ramanujan.iterativeSpectralGap }
    public var iterativeDeltaR: Double? { ramanujan.iterativeDeltaR }

    /// Fields in `fieldNames` order; nil = missing value.
    public var orderedFields: [(name: String, value: MetricValue?)] {
        [("layer_id", .int(layerId)), ("layer_name", .string(layerName)), ("kind", .string(kind))]
            + MetricTable.all.filter(\.perLayer).map { ($0.name, values[$0.name]) }
            + [("delta_r", deltaR.map(MetricValue.double)),
               ("iterative_spectral_gap", iterativeSpectralGap.map(MetricValue.double)),
               ("iterative_delta_r", iterativeDeltaR.map(MetricValue.double))]
    }
}

/// Per-layer metrics of a bipartite layer graph whose first partition is the left side: the
/// per-layer entries of `MetricTable`, by the same functions as the whole graph's.
/// - Complexity: O(n + m) plus the eigen-solves (see `ramanujanMetrics`).
public func layerTopometrics(_ g: Graph, layerId: Int, name: String, kind: String,
                             lanczos: LanczosOptions = LanczosOptions()) -> LayerTopometrics {
    let inputs = MetricInputs(g, compat: .paper, motifs: .exact, lanczos: lanczos, weightedView: true)
    var values: [String: MetricValue] = [:]
    for entry in MetricTable.all where entry.perLayer { values[entry.name] = entry.compute(inputs) }
    let left = g.partitions.first?.count ?? g.nodeCount
    let ramanujan = ramanujanMetrics(g, leftCount: left, options: lanczos)
    return LayerTopometrics(layerId: layerId, layerName: name, kind: kind, values: values, ramanujan: ramanujan,
                            notes: (inputs.notes + ramanujan.notes).map { "layer \(name): \($0)" })
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
