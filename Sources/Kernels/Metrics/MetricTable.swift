// The one table of topometrics: each metric is named once here (record name, whole-graph
// function, whether it is also a per-layer metric, the paper's column and normalisation, exact or
// estimated). `topometrics`, `layerTopometrics`, `only:`, the paper's layout (PaperTable),
// compare_to_paper and the docs all read it, so the graph forms and the layouts cannot drift.

/// How the paper normalises a metric in its published table.
public enum MetricNormalisation: Character, Sendable {
    /// Divided by the node count.
    case nodes = "n"
    /// Divided by the edge count.
    case edges = "m"
    /// Written as computed.
    case none = "1"
}

/// Whether a metric's value is always exact or may be an estimate.
public enum MetricExactness: Sendable, Equatable {
    case exact
    /// Exact or estimated depending on the mode (motifs: the census or RAND-ESU). Records and
    /// CSV rows carry `<name>_estimated` (true/false) and `<name>_sample` (the sample size, or
    /// none when exact) beside the value.
    case exactOrEstimated
}

/// What a metric function computes from: the graph, the options of the call, and the shared
/// intermediate results several metrics use (computed once, on first use).
public final class MetricInputs {
    public let graph: Graph
    public let compat: MetricsCompat
    public let motifs: MotifMode
    public let lanczos: LanczosOptions
    /// Whether the undirected view carries weights (only the spectral metrics need them).
    let weightedView: Bool
    /// Whether the graph is a whole MGE, whose spectral gap goes through the normal matrix
    /// when its partitions make it bipartite (as on the implicit form); the per-layer
    /// records keep the adjacency's own solve.
    let wholeGraph: Bool

    public init(_ graph: Graph, compat: MetricsCompat = .paper, motifs: MotifMode = MotifMode.defaultMode,
                lanczos: LanczosOptions = .wholeGraph, weightedView: Bool = true, wholeGraph: Bool = false) {
        self.graph = graph; self.compat = compat; self.motifs = motifs; self.lanczos = lanczos; self.weightedView = weightedView
        self.wholeGraph = wholeGraph
    }

    public lazy var local = localConnectivity(graph, compat: compat)
    public lazy var componentCount = weakComponents(graph).count
    public lazy var view = UndirectedView(graph, weights: weightedView)
    public lazy var cuts = bridgesAndArticulationPoints(view)
    lazy var bipartiteSides = wholeGraph ? graph.bipartiteSides : nil
    /// Roots the motif estimate used; nil when the count was exact (set by the motifs function).
    public internal(set) var motifsSample: Int?
    /// What the user must be told about a value (a spectral solve short of its tolerance).
    public internal(set) var notes: [String] = []
    /// The three largest |λ| behind the spectral gap (set by the spectral_gap function).
    public internal(set) var topAbsEigenvalues: [Double]?
}

/// One topometric.
public struct MetricEntry: Sendable {
    /// The record field (`k_core`), also the `only:` name.
    public let name: String
    /// The paper's column in its published unrolled table (`k-core`); nil for nodes and edges,
    /// which the paper writes under their own names.
    public let paperColumn: String?
    public let normalisation: MetricNormalisation
    /// Also in the per-layer records of the rolled encodings (computed by the same function on
    /// each bipartite layer graph).
    public let perLayer: Bool
    public let exactness: MetricExactness
    /// Computed from edge weights (the paper's values of these come from trained weights).
    public let weighted: Bool
    /// One line for the docs and help.
    public let summary: String
    /// The whole-graph function; nil = no value (none), e.g. the spectrum of an edgeless graph.
    public let compute: @Sendable (MetricInputs) -> MetricValue?

    /// The marker field beside an estimable metric (`motifs_estimated`).
    public var estimatedField: String? { exactness == .exactOrEstimated ? name + "_estimated" : nil }
    /// The sample-size field beside an estimable metric (`motifs_sample`).
    public var sampleField: String? { exactness == .exactOrEstimated ? name + "_sample" : nil }
}

public enum MetricTable {
    /// Every whole-graph topometric in SPEC §4 order (the record's order).
    public static let all: [MetricEntry] = [
        MetricEntry(name: "nodes", paperColumn: nil, normalisation: .none, perLayer: true, exactness: .exact, weighted: false,
                    summary: "number of nodes") { .int($0.graph.nodeCount) },
        MetricEntry(name: "edges", paperColumn: nil, normalisation: .none, perLayer: true, exactness: .exact, weighted: false,
                    summary: "number of edges") { .int($0.graph.edgeCount) },
        MetricEntry(name: "sink_nodes", paperColumn: "sink_nodes", normalisation: .nodes, perLayer: false, exactness: .exact, weighted: false,
                    summary: "nodes with inputs but no outputs, outside the output layer") { .int($0.local.sink) },
        MetricEntry(name: "source_nodes", paperColumn: "source_nodes", normalisation: .nodes, perLayer: false, exactness: .exact, weighted: false,
                    summary: "nodes with outputs but no inputs, outside the input layer") { .int($0.local.source) },
        MetricEntry(name: "disconnected_nodes", paperColumn: "disc_nodes", normalisation: .nodes, perLayer: false, exactness: .exact, weighted: false,
                    summary: "nodes without any edge") { .int($0.local.disconnected) },
        MetricEntry(name: "removable_out_edges", paperColumn: "r-out", normalisation: .edges, perLayer: false, exactness: .exact, weighted: false,
                    summary: "edges into sink nodes (they reach no output)") { .int($0.local.removableOut) },
        MetricEntry(name: "removable_in_edges", paperColumn: "r-in", normalisation: .edges, perLayer: false, exactness: .exact, weighted: false,
                    summary: "edges out of source nodes (no input reaches them)") { .int($0.local.removableIn) },
        MetricEntry(name: "one_hop", paperColumn: "1-hop_nei", normalisation: .edges, perLayer: true, exactness: .exact, weighted: false,
                    summary: "mean number of out-neighbours") { .double($0.graph.nodeCount == 0 ? 0 : meanOf(oneHopSizes($0.graph))) },
        MetricEntry(name: "two_hop", paperColumn: "2-hop_nei", normalisation: .edges, perLayer: false, exactness: .exact, weighted: false,
                    summary: "mean number of nodes two steps downstream") { .double($0.graph.nodeCount == 0 ? 0 : meanOf(twoHopSizes($0.graph))) },
        MetricEntry(name: "motifs", paperColumn: "motif", normalisation: .edges, perLayer: false, exactness: .exactOrEstimated, weighted: false,
                    summary: "connected induced 4-node subgraphs: exact census or RAND-ESU estimate (motifs_estimated says which)") { inputs in
            let (value, sample) = motifValueAndSample(inputs.view, mode: inputs.motifs)
            inputs.motifsSample = sample
            return value
        },
        MetricEntry(name: "strength", paperColumn: "avg_node_strength", normalisation: .edges, perLayer: true, exactness: .exact, weighted: true,
                    summary: "mean node strength (sum of |weights|)") { .double(meanStrength($0.graph)) },
        MetricEntry(name: "k_core", paperColumn: "k-core", normalisation: .edges, perLayer: true, exactness: .exact, weighted: false,
                    summary: "mean core number") { .double($0.graph.nodeCount == 0 ? 0 : meanOf(coreNumbers($0.graph))) },
        MetricEntry(name: "cut_edges", paperColumn: "cut-edges", normalisation: .edges, perLayer: true, exactness: .exact, weighted: false,
                    summary: "bridges of the undirected graph") { .int($0.cuts.bridges) },
        MetricEntry(name: "cut_nodes", paperColumn: "cut-nodes", normalisation: .edges, perLayer: true, exactness: .exact, weighted: false,
                    summary: "articulation points of the undirected graph") { .int($0.cuts.articulationPoints.count) },
        MetricEntry(name: "components", paperColumn: "no_connected_components", normalisation: .none, perLayer: true, exactness: .exact, weighted: false,
                    summary: "weakly connected components") { .int($0.componentCount) },
        MetricEntry(name: "mean_component_size", paperColumn: "mean_connected_components", normalisation: .nodes, perLayer: true, exactness: .exact,
                    weighted: false, summary: "nodes per component") { inputs in
            .double(inputs.componentCount == 0 ? 0 : Double(inputs.graph.nodeCount) / Double(inputs.componentCount))
        },
        MetricEntry(name: "spectral_gap", paperColumn: "spectral_gap", normalisation: .none, perLayer: true, exactness: .exact, weighted: true,
                    summary: "|λ₁| − |λ₃| of the weighted adjacency (none without edges)") { inputs in
            guard inputs.graph.edgeCount > 0 else { return nil }
            let top = topAbsEigenvalues(inputs.view, weighted: true, options: inputs.lanczos, sides: inputs.bipartiteSides) {
                if let note = unconvergedNote("spectral_gap", $0, inputs.lanczos) { inputs.notes.append(note) }
            }
            inputs.topAbsEigenvalues = top
            return .double(top[0] - top[2])
        },
        MetricEntry(name: "spectral_radius", paperColumn: "spectral_radius", normalisation: .none, perLayer: true, exactness: .exact, weighted: true,
                    summary: "largest eigenvalue of the weighted Laplacian (none without edges)") { inputs in
            guard inputs.graph.edgeCount > 0 else { return nil }
            return .double(laplacianSpectralRadius(inputs.view, weighted: true, options: inputs.lanczos, sides: inputs.bipartiteSides) {
                if let note = unconvergedNote("spectral_radius", $0, inputs.lanczos) { inputs.notes.append(note) }
            })
        },
    ]

    /// The paper's metric columns in the order of its published file.
    public static let paperOrder = ["sink_nodes", "source_nodes", "disc_nodes", "r-out", "r-in", "2-hop_nei", "cut-edges", "motif",
                                    "no_connected_components", "mean_connected_components", "avg_node_strength", "1-hop_nei",
                                    "cut-nodes", "k-core", "spectral_gap", "spectral_radius"]

    /// The entry named `name`.
    public static func entry(_ name: String) -> MetricEntry? { all.first { $0.name == name } }

    /// Entries with a paper column, in the paper's column order.
    public static var paperEntries: [MetricEntry] {
        paperOrder.compactMap { column in all.first { $0.paperColumn == column } }
    }

    /// Fields written beside a metric's value: its estimate marker and sample size, if it has them.
    public static var markerFields: [String] { all.flatMap { [$0.estimatedField, $0.sampleField].compactMap { $0 } } }

    /// Record fields of a whole-graph record in order: each metric, followed by its markers.
    public static var recordFields: [String] { all.flatMap { [$0.name, $0.estimatedField, $0.sampleField].compactMap { $0 } } }
}
