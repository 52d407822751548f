import Foundation
import Kernels

/// Wall-clock seconds of each metric group on `g` (for `scripts/bench-metrics`), in SPEC order, plus
/// the undirected view's construction ("undirected_view"). Each group is timed separately.
public func benchmarkTopometrics(_ g: Graph, compat: MetricsCompat = .paper,
                                 motifs: MotifMode = MotifMode.defaultMode,
                                 lanczos: LanczosOptions = .wholeGraph) -> [(name: String, seconds: Double)] {
    func time(_ body: () -> Void) -> Double {
        let t0 = DispatchTime.now().uptimeNanoseconds
        body()
        return Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9
    }
    var out: [(name: String, seconds: Double)] = []
    out.append(("local_connectivity", time { _ = localConnectivity(g, compat: compat) }))
    out.append(("one_hop", time { _ = oneHopSizes(g) }))
    out.append(("two_hop", time { _ = twoHopSizes(g) }))
    out.append(("strength", time { _ = meanStrength(g) }))
    out.append(("k_core", time { _ = coreNumbers(g) }))
    out.append(("components", time { _ = weakComponents(g) }))
    var view: UndirectedView?
    out.append(("undirected_view", time { view = UndirectedView(g) }))
    guard let v = view else { return out }
    out.append(("cut_edges_cut_nodes", time { _ = bridgesAndArticulationPoints(v) }))
    out.append(("motifs", time { _ = motifValue(v, mode: motifs) }))
    // Through `topometrics`, which takes a bipartite MGE's gap on one side's normal matrix.
    out.append(("spectral_gap", time { _ = try? topometrics(g, only: ["spectral_gap"], lanczos: lanczos) }))
    out.append(("spectral_radius", time { _ = laplacianSpectralRadius(v, options: lanczos) }))
    return out
}
