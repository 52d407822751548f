import XCTest
@testable import Kernels

final class MetricsTopometricsTests: XCTestCase {
    /// The bit-level Float16 → Float conversion of the metrics equals Swift's for all 2¹⁶ patterns.
    func testHalfWideningIsExact() {
        for b in 0 ... UInt16.max {
            let h = Float16(bitPattern: b)
            let w = widen(h), f = Float(h)
            if f.isNaN { XCTAssertTrue(w.isNaN, "\(b)") } else { XCTAssertEqual(w.bitPattern, f.bitPattern, "\(b)") }
        }
    }

    /// input {0,1,2} → hidden {3,4,5} → output {6,7}:
    /// 0→3, 1→3, 3→6, 4→7 (4 is a source outside the input), 5 is disconnected,
    /// 2 is a disconnected input node, 1→5? no: 1→4? no. Node 3 → also sink? no (3→6).
    func smallGraph() -> Graph {
        let parts = [Partition(name: "in", start: 0, count: 3, shape: [3]), Partition(name: "h", start: 3, count: 3, shape: [3]),
                     Partition(name: "out", start: 6, count: 2, shape: [2])]
        // Add a sink in the hidden layer: 1→5 makes 5 a sink (in 1, out 0).
        return makeGraph(n: 8, edges: [(0, 3, 1), (1, 3, 0.5), (3, 6, 2), (4, 7, 1), (4, 6, 1), (1, 5, 1)], partitions: parts)
    }

    func testLocalConnectivityPaperAndReference() throws {
        let g = smallGraph()
        // sinks (out 0, in > 0): 5, 6, 7; sources (out > 0, in 0): 0, 1, 4; disconnected: 2.
        let paper = localConnectivity(g, compat: .paper)
        XCTAssertEqual(paper.sink, 1); XCTAssertEqual(paper.source, 1); XCTAssertEqual(paper.disconnected, 1)
        XCTAssertEqual(paper.removableOut, 1)   // sink 5: in-degree 1
        XCTAssertEqual(paper.removableIn, 2)    // source 4: out-degree 2
        let ref = localConnectivity(g, compat: .reference)
        XCTAssertEqual(ref.sink, 3 - 2); XCTAssertEqual(ref.source, 3 - 3)
        XCTAssertEqual(ref.removableOut, 0)     // index < n − 1 − P_L = 5 excludes node 5
        XCTAssertEqual(ref.removableIn, 2)      // index > P₀ = 3 keeps node 4
    }

    func testOnlyAndUnknownField() throws {
        let g = smallGraph()
        let t = try topometrics(g, only: ["components", "one_hop"])
        XCTAssertEqual(t.orderedFields.map(\.name), ["nodes", "edges", "one_hop", "components"])
        XCTAssertEqual(t.components, 2)          // {0,1,3,4,5,6,7} (4 joins via 6) and {2}
        XCTAssertNil(t.spectralGap)
        XCTAssertThrowsError(try topometrics(g, only: ["bogus"])) { e in
            XCTAssertEqual(e as? TopometricsError, .unknownField("bogus"))
        }
    }

    func testFullRecordOnSyntheticLayeredGraph() throws {
        let g = syntheticLayeredGraph(input: [1, 3, 3], convs: [SyntheticConv(source: 0, outChannels: 2),
                                                                SyntheticConv(source: 1, outChannels: 2),
                                                                SyntheticConv(source: 1, outChannels: 2, kernel: 1, into: 2)],
                                      classes: 2, density: 0.35, seed: 5)
        let t = try topometrics(g, compat: .reference)
        XCTAssertEqual(t.orderedFields.map(\.name), Topometrics.fieldNames)
        let adj = undirectedSets(g)
        // Exact motifs vs brute force.
        var brute = 0
        let n = g.nodeCount
        for a in 0 ..< n { for b in a + 1 ..< n { for c in b + 1 ..< n { for d in c + 1 ..< n {
            let s = [a, b, c, d]; var seen: Set<Int> = [a], st = [a]
            while let p = st.popLast() { for q in s where !seen.contains(q) && adj[p].contains(q) { seen.insert(q); st.append(q) } }
            if seen.count == 4 { brute += 1 }
        } } } }
        XCTAssertEqual(t.motifs, .int(brute))
        let est = try topometrics(g, motifs: .estimate(sample: .roots(Array(0 ..< n))), only: ["motifs"])
        XCTAssertEqual(est.motifs?.number ?? -1, Double(brute), accuracy: 1e-6)
        // Spectral values vs dense LAPACK.
        let v = UndirectedView(g)
        let dense = denseSymmetricEigenvalues(SymmetricGraphOperator(view: v).dense(), n: n)!.map(abs).sorted(by: >)
        XCTAssertEqual(t.spectralGap ?? -1, dense[0] - dense[2], accuracy: 1e-9)
        let lap = denseSymmetricEigenvalues(SymmetricGraphOperator(view: v, laplacian: true).dense(), n: n)!.max()!
        XCTAssertEqual(t.spectralRadius ?? -1, lap, accuracy: 1e-9)
        XCTAssertEqual(t.meanComponentSize ?? -1, Double(n) / Double(t.components ?? 1), accuracy: 1e-12)
        // Forced Lanczos agrees with the dense path.
        var o = LanczosOptions(); o.denseThreshold = 0; o.basisSize = 16
        let tl = try topometrics(g, only: ["spectral_gap", "spectral_radius"], lanczos: o)
        XCTAssertEqual(tl.spectralGap ?? -1, dense[0] - dense[2], accuracy: 1e-8)
        XCTAssertEqual(tl.spectralRadius ?? -1, lap, accuracy: 1e-8)
    }

    func testSyntheticResNet20Shape() {
        let g = syntheticResNet20Graph(density: 0.02, seed: 1)
        XCTAssertEqual(g.nodeCount, 191_894)
        XCTAssertEqual(g.partitions.count, 21)
        XCTAssertEqual(g.partitions.first?.count, 3468)
        XCTAssertEqual(g.partitions.last?.count, 10)
        for v in stride(from: 0, to: g.nodeCount, by: 997) {
            let r = g.outOffsets[v] ..< g.outOffsets[v + 1]
            XCTAssertEqual(Array(g.outTargets[r]), g.outTargets[r].sorted())
        }
    }

}

final class MetricsMGEOracleHelperTests: XCTestCase {
    func testAutoMotifModeChoosesByWork() throws {
        let g = randomGraph(n: 30, edgeProbability: 0.1, seed: 9)
        let exact = try topometrics(g, only: ["motifs"])
        XCTAssertEqual(exact.motifs, .int(connectedFourSets(UndirectedView(g))))
        let est = try topometrics(g, motifs: .auto(maxCensusWork: 0), only: ["motifs"])
        guard case .double = est.motifs else { return XCTFail("expected an estimate, got \(String(describing: est.motifs))") }
    }

    /// The MGE oracle check, self-consistently: the lead enables the real comparison with
    /// `checkMGEMetrics(try topometrics(unroll(net, compat: .reference), compat: .reference,
    /// motifs: .exact), expected: exp["mge"] as! [String: Any], motifRootCounts: …)` once the
    /// unrolled encoder lands.
    func testCheckMGEMetricsHelperOnSyntheticGraph() throws {
        let g = syntheticResNet20Graph(density: 0.01, seed: 3)
        let m = try topometrics(g, compat: .reference, motifs: .exact)
        var exp: [String: Any] = [:]
        for (k, v) in m.orderedFields { if let x = v.number { exp[k] = NSNumber(value: x) } }
        exp["top3_abs_eigs"] = (m.topAbsEigenvalues ?? []).map { NSNumber(value: $0) }
        let roots = motifSampleRoots(nodeCount: g.nodeCount, sample: 500, seed: 1)
        let counts = esuRootCounts(UndirectedView(g), roots: roots)
        let est = Double(counts.reduce(0, +)) * Double(g.nodeCount) / Double(roots.count)
        exp["motifs_estimate"] = NSNumber(value: est)
        checkMGEMetrics(m, expected: exp, motifRootCounts: counts)
    }
}
