import Foundation
import OracleSupport
import XCTest
@testable import Kernels

/// Whole-network MGE metrics against the oracle: for every case with `mge.safetensors`, load
/// the pruned weights and masks, unroll in reference mode (degrees checked against the
/// oracle's), compute every topometric with the exact motif count, and compare with
/// `checkMGEMetrics` (integers exact, means 1e-9 relative, spectral values 1e-4 relative of
/// |λ|₁, the exact motif count within 5σ of the reference's RAND-ESU estimate, σ estimated
/// from per-root ESU counts on the reference's own sample size).
final class MGEOracleMetricsTests: XCTestCase {
    func testWholeNetworkMetricsMatchOracle() throws {
        let cases = OracleLocation.cases().filter { FileManager.default.fileExists(atPath: $0 + "/mge.safetensors") }
        XCTAssertFalse(cases.isEmpty, "no oracle case has mge.safetensors")
        var lines: [String] = []
        for dir in cases {
            let c = (dir as NSString).lastPathComponent
            let exp = try OracleCase.expected(dir)
            guard let expected = exp["mge"] as? [String: Any] else { XCTFail("\(c): no mge record"); continue }
            let start = Date()
            let network = try Oracle.network(dir)
            let g = try unroll(network, compat: .reference)
            // The encoding itself first: per-node degrees as the oracle stores them.
            let degrees = try SafeTensors.readDictionary(path: dir + "/mge.safetensors")
            let inDegrees = (0 ..< g.nodeCount).map { Int64(g.inDegree($0)) }
            let outDegrees = (0 ..< g.nodeCount).map { Int64(g.outDegree($0)) }
            XCTAssertEqual(degrees["in_degree"]?.integers, inDegrees, "\(c): in-degrees")
            XCTAssertEqual(degrees["out_degree"]?.integers, outDegrees, "\(c): out-degrees")
            XCTAssertEqual(degrees["layer_sizes"]?.integers, g.partitions.map { Int64($0.count) }, "\(c): partition sizes")
            let built = Date()
            let m = try topometrics(g, compat: .reference, motifs: .exact)
            let computed = Date()
            let view = UndirectedView(g)
            let rootCounts = esuRootCounts(view, roots: motifSampleRoots(nodeCount: g.nodeCount, seed: 0))
            checkMGEMetrics(m, expected: expected, motifRootCounts: rootCounts)

            // Worst relative errors, for the report.
            func num(_ k: String) -> Double? { OracleCase.number(expected[k]) }
            var worstMean = 0.0
            for (k, v) in [("one_hop", m.oneHop), ("two_hop", m.twoHop), ("strength", m.strength), ("k_core", m.kCore),
                           ("mean_component_size", m.meanComponentSize)] {
                if let v, let e = num(k) { worstMean = max(worstMean, relErr(v, e)) }
            }
            let top = (expected["top3_abs_eigs"] as? [NSNumber])?.map(\.doubleValue)
            let scale = top?.first ?? m.topAbsEigenvalues?.first ?? 1
            var gapErr = Double.nan, radiusErr = Double.nan
            if let v = m.spectralGap, let e = num("spectral_gap") { gapErr = abs(v - e) / scale }
            if let v = m.spectralRadius, let e = num("spectral_radius") { radiusErr = relErr(v, e) }
            let intsExact = [("nodes", m.nodes), ("edges", m.edges), ("sink_nodes", m.sinkNodes ?? -1),
                             ("source_nodes", m.sourceNodes ?? -1), ("disconnected_nodes", m.disconnectedNodes ?? -1),
                             ("removable_out_edges", m.removableOutEdges ?? -1), ("removable_in_edges", m.removableInEdges ?? -1),
                             ("cut_edges", m.cutEdges ?? -1), ("cut_nodes", m.cutNodes ?? -1), ("components", m.components ?? -1)]
                .allSatisfy { num($0.0) == Double($0.1) }
            let motifs = m.motifs?.number ?? .nan, estimate = num("motifs_estimate") ?? .nan
            let mean = Double(rootCounts.reduce(0, +)) / Double(max(rootCounts.count, 1))
            let variance = rootCounts.reduce(0.0) { $0 + (Double($1) - mean) * (Double($1) - mean) } / Double(max(rootCounts.count - 1, 1))
            let sigma = Double(g.nodeCount) * (variance / Double(max(rootCounts.count, 1))).squareRoot()
            lines.append(String(format: "%@: integers %@, means %.1e, gap %.1e, radius %.1e, motifs %.0f vs est %.0f (%.2fσ); unroll %.1f s, metrics %.1f s",
                                c, intsExact ? "exact" : "DIFFER", worstMean, gapErr, radiusErr, motifs, estimate,
                                abs(motifs - estimate) / max(sigma, 1e-300), built.timeIntervalSince(start),
                                computed.timeIntervalSince(built)))
            let seconds = computed.timeIntervalSince(start)
            if seconds > 60 { print("note: \(c) took \(Int(seconds)) s (over the 60 s budget)") }
        }
        print("oracle MGE metrics:\n" + lines.joined(separator: "\n"))
    }
}
