import Foundation
import XCTest
import OracleSupport
@testable import Kernels

/// Every consumer of the metrics reads `MetricTable`: the record's fields, `only:`, the per-layer
/// record, the paper's layout, and the table in docs/results.md.
final class MetricTableTests: XCTestCase {
    func testRecordAndLayoutsComeFromTheTable() {
        XCTAssertEqual(Topometrics.fieldNames, MetricTable.all.map(\.name))
        XCTAssertEqual(Set(MetricTable.all.map(\.name)).count, MetricTable.all.count, "a metric named twice")
        // Every metric but nodes and edges has a paper column, each column once, in the paper's order.
        let columns = MetricTable.all.compactMap(\.paperColumn)
        XCTAssertEqual(Set(columns), Set(MetricTable.paperOrder))
        XCTAssertEqual(columns.count, MetricTable.paperOrder.count)
        XCTAssertEqual(PaperTable.metricColumns.map(\.column), MetricTable.paperOrder)
        XCTAssertEqual(PaperTable.markerColumns.map(\.after), ["motif"])
        XCTAssertEqual(MetricTable.markerFields, ["motifs_estimated", "motifs_sample"])
        XCTAssertEqual(LayerTopometrics.fieldNames.filter { !LayerTopometrics.identityFields.contains($0) && !LayerTopometrics.ramanujanFields.contains($0) },
                       MetricTable.all.filter(\.perLayer).map(\.name))
        XCTAssertEqual(PaperTable.weightedColumns, ["avg_node_strength", "spectral_gap", "spectral_radius"])
    }

    /// The per-layer record is the whole-graph functions applied to the layer graph.
    func testPerLayerValuesAreTheWholeGraphFunctions() throws {
        let parts = [Partition(name: "in", start: 0, count: 3, shape: [3]), Partition(name: "out", start: 3, count: 2, shape: [2])]
        let g = makeGraph(n: 5, edges: [(0, 3, 1), (1, 3, 0.5), (2, 4, 2), (1, 4, -1)], partitions: parts)
        let layer = layerTopometrics(g, layerId: 0, name: "fc", kind: "linear", lanczos: .wholeGraph)
        let whole = try topometrics(g, lanczos: .wholeGraph)
        for entry in MetricTable.all where entry.perLayer {
            XCTAssertEqual(layer.values[entry.name], whole[entry.name], entry.name)
        }
    }

    /// The estimate marker: false with the exact census, true with the sample size of an estimate.
    func testMotifsMarker() throws {
        let parts = [Partition(name: "in", start: 0, count: 3, shape: [3]), Partition(name: "out", start: 3, count: 2, shape: [2])]
        let g = makeGraph(n: 5, edges: [(0, 3, 1), (1, 3, 0.5), (2, 4, 2), (1, 4, -1)], partitions: parts)
        let exact = try topometrics(g, motifs: .auto(maxCensusWork: 1_000_000), only: ["motifs"])
        XCTAssertEqual(exact.motifsEstimated, false)
        XCTAssertNil(exact.motifsSample)
        let estimate = try topometrics(g, motifs: .auto(maxCensusWork: 0), only: ["motifs"])
        XCTAssertEqual(estimate.motifsEstimated, true)
        XCTAssertEqual(estimate.motifsSample, 1)  // max(1, ⌊0.001 · 5⌋)
        let roots = try topometrics(g, motifs: .estimate(sample: .roots([0, 1, 2])), only: ["motifs"])
        XCTAssertEqual(roots.motifsSample, 3)
    }

    /// docs/results.md lists the table; it must say what the table says.
    func testDocsTableMatches() throws {
        let path = OracleLocation.packageRoot.appendingPathComponent("docs/results.md").path
        let text = try String(contentsOfFile: path, encoding: .utf8)
        var documented: [String: [String]] = [:]
        for line in text.split(separator: "\n") where line.hasPrefix("| ") {
            let cells = line.split(separator: "|").map { $0.trimmingCharacters(in: .whitespaces) }
            if let name = cells.first, MetricTable.entry(name) != nil { documented[name] = Array(cells) }
        }
        XCTAssertEqual(Set(documented.keys), Set(MetricTable.all.map(\.name)))
        for entry in MetricTable.all {
            guard let cells = documented[entry.name], cells.count >= 5 else { continue }
            XCTAssertEqual(cells[1], entry.paperColumn ?? entry.name, entry.name)
            let per: String
            switch entry.normalisation { case .nodes: per = "nodes"; case .edges: per = "edges"; case .none: per = "–" }
            XCTAssertEqual(cells[2], per, entry.name)
            XCTAssertEqual(cells[3], entry.perLayer ? "yes" : "no", entry.name)
            XCTAssertEqual(cells[4].hasPrefix("exact or estimated"), entry.exactness == .exactOrEstimated, entry.name)
            XCTAssertEqual(cells[4].contains("weighted"), entry.weighted, entry.name)
        }
    }
}
