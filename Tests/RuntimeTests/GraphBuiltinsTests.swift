import Foundation
import Kernels
import Lang
import OracleSupport
import XCTest
@testable import Runtime

/// The graph and metrics builtins on real networks, bound into the interpreter's globals
/// in-process (the network constructors are bound by another area).
final class GraphBuiltinsTests: XCTestCase {
    static let scratch: String = {
        let dir = NSTemporaryDirectory() + "mge-graph-tests-\(getpid())"
        try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        return dir
    }()

    /// A session with `toy` (dense toy net, seed 0), `c6` (CONV-6, ERK 0.98, seed 0) and `dir` (a scratch folder).
    func session(resnet: Bool = false) throws -> Session {
        let s = Session()
        s.interpreter.define("toy", .native(NetworkObject(Network(architecture: ModelZoo.toy(), seed: 0), modelName: "toy")))
        let c6 = Network(architecture: ModelZoo.conv6(classes: 10), seed: 0)
        try prune(c6, .erk, sparsity: 0.98, seed: 0)
        s.interpreter.define("c6", .native(NetworkObject(c6, modelName: "conv6")))
        if resnet {
            let r20 = Network(architecture: ModelZoo.resnet(depth: 20, classes: 10), seed: 0)
            try prune(r20, .erk, sparsity: 0.98, seed: 0)
            s.interpreter.define("r20", .native(NetworkObject(r20, modelName: "resnet20")))
        }
        s.interpreter.define("dir", .string(GraphBuiltinsTests.scratch))
        return s
    }

    func testUnrollMatchesTheKernelInBothModes() throws {
        let s = try session()
        XCTAssertEqual(s.run("g = unroll(c6); r = unroll(c6, compat: \"reference\")"), .ok, s.err)
        guard case .native(let g as GraphObject)? = s.interpreter.global("g"),
              case .native(let r as GraphObject)? = s.interpreter.global("r"),
              case .native(let net as NetworkObject)? = s.interpreter.global("c6") else { return XCTFail("no graphs") }
        let paper = try unroll(net.network, compat: .paper), reference = try unroll(net.network, compat: .reference)
        XCTAssertEqual(g.graph.nodeCount, 233366)
        XCTAssertEqual(g.graph.outTargets, paper.outTargets)
        XCTAssertEqual(r.graph.outTargets, reference.outTargets)
        XCTAssertEqual(g.encoding, "MGE")
        XCTAssertEqual(s.output("print(g.nodes, len(g.partitions), g.partitions[0].name)"), "233366 10 input\n")
        XCTAssertEqual(s.run("unroll(c6, compat: \"papr\")"), .runtimeError)
        XCTAssertTrue(s.err.contains("bad argument 'compat' to 'unroll' (expected \"paper\" or \"reference\", got \"papr\")"), s.err)
    }

    /// Layer names, kinds and ids as the oracle numbers them (pooling modules count on CONV-6).
    func testRolledLayersFollowTheOracleNumbering() throws {
        var checked = Set<String>()
        for dir in OracleLocation.cases() {
            let exp = try OracleCase.expected(dir)
            guard let model = exp["model"] as? String, !checked.contains(model),
                  let list = (exp["bge"] as? [String: Any])?["rolled"] as? [[String: Any]] else { continue }
            let zooName = ["CONV-6": "conv6", "Resnet-20": "resnet20", "Resnet-32": "resnet32", "Wide-Resnet-28-2": "wrn28_2"][model]
            guard let zooName, let architecture = ModelZoo.build(zooName, classes: exp["dataset"] as? String == "CIFAR-100" ? 100 : 10) else { continue }
            checked.insert(model)
            let entries = NetworkLayers.entries(architecture)
            XCTAssertEqual(entries.map(\.id), list.map { $0["layer_id"] as? Int ?? -1 }, model)
            XCTAssertEqual(entries.map(\.name), list.map { $0["layer_name"] as? String ?? "" }, model)
            XCTAssertEqual(entries.map(\.kind), list.map { $0["kind"] as? String ?? "" }, model)
        }
        if !checked.contains("CONV-6") { try OracleLocation.requireFull("the CONV-6 numbering") }
        XCTAssertTrue(checked.contains("CONV-6"), "the oracle should have a CONV-6 case")
    }

    func testRolledEncodingsIndexAndSummarise() throws {
        let s = try session()
        let out = s.output("""
        ls = rolled(c6)
        print(len(ls), ls[0].layer, ls[-1].layer, ls["linear.3"].nodes)
        sm = summary(ls)
        print(sm[2].layer_id, sm[2].kind, sm[-1].layer, sm[-1].edges)
        rc = rolled_channel(toy)
        print(rc[0].nodes, rc[0].edges, rc[3].layer, len(rc))
        print(summary(rc)[3].kind)
        """)
        XCTAssertEqual(out, "9 convs1.0 linear.6 512\n3 conv total 45222\n3 2 block.shortcut.0 5\nresidual\n", s.err)
    }

    /// The grouped computation gives exactly the kernel's single-call record.
    func testTopometricsRecordEqualsTheKernel() throws {
        let s = try session()
        XCTAssertEqual(s.run("g = unroll(toy); m = topometrics(g); e = topometrics(g, motifs: \"exact\", compat: \"reference\")"), .ok, s.err)
        guard case .native(let g as GraphObject)? = s.interpreter.global("g"),
              case .record(let m)? = s.interpreter.global("m"),
              case .record(let e)? = s.interpreter.global("e") else { return XCTFail("no record") }
        let kernel = try topometrics(g.graph)
        XCTAssertEqual(m.names, MetricTable.recordFields + ["compat"])
        for (name, value) in kernel.orderedFields {
            XCTAssertEqual(m[name], MetricsBinding.value(value), name)
        }
        let reference = try topometrics(g.graph, compat: .reference, motifs: .exact)
        XCTAssertEqual(e["sink_nodes"], .int(reference.sinkNodes ?? -1))
        XCTAssertEqual(e["motifs"], reference.motifs.map(MetricsBinding.value))
    }

    func testPerLayerTopometricsAndRamanujanMatchTheKernel() throws {
        let s = try session()
        XCTAssertEqual(s.run("t = topometrics(rolled(c6)); r = ramanujan(rolled(c6))"), .ok, s.err)
        guard case .list(let t)? = s.interpreter.global("t"), case .list(let r)? = s.interpreter.global("r"),
              case .native(let net as NetworkObject)? = s.interpreter.global("c6") else { return XCTFail("no lists") }
        let layers = try NetworkLayers.weights(net.network)
        let kernel = try layerTopometrics(layers.map(\.weight), encoding: .rolled, layerIds: layers.map(\.entry.id))
        XCTAssertEqual(t.count, 9); XCTAssertEqual(r.count, 9)
        for (row, k) in zip(t, kernel) {
            guard case .record(let rec) = row else { return XCTFail() }
            XCTAssertEqual(rec.names, LayerTopometrics.fieldNames)
            for (name, v) in k.orderedFields {
                let expected = v.map(MetricsBinding.value) ?? Value.none
                // Spectral values come from an iterative solver whose last bits differ between
                // two runs (seen at 1e-15 relative on main at 1e99305); everything else is exact.
                if case .float(let a)? = rec[name], case .float(let b) = expected, a != b {
                    XCTAssertEqual(a, b, accuracy: 1e-12 * max(abs(b), 1), "\(k.layerName) \(name)")
                } else {
                    XCTAssertEqual(rec[name], expected, "\(k.layerName) \(name)")
                }
            }
        }
        for (row, k) in zip(r, kernel) {
            guard case .record(let rec) = row else { return XCTFail() }
            XCTAssertEqual(rec.names, ["layer_id", "layer_name", "delta_r", "spectral_gap", "iterative_spectral_gap", "iterative_delta_r"])
            XCTAssertEqual(rec["delta_r"], MetricsBinding.value(k.deltaR))
            XCTAssertEqual(rec["iterative_delta_r"], MetricsBinding.value(k.iterativeDeltaR))
            for v in rec.values { if case .float(let d) = v { XCTAssertFalse(d.isNaN) } }
        }
    }

    /// The quickstart path on ResNet-20 (ERK 0.98): node count from SPEC §3, a connected core.
    func testResNet20QuickstartPath() throws {
        let s = try session(resnet: true)
        let out = s.output("""
        g = unroll(r20)
        print(g.nodes, g.edges > 1000000)
        m = topometrics(g, only: ["components", "sink_nodes", "edges"])
        print(keys(m))
        """)
        XCTAssertEqual(out, "191894 true\n[\"nodes\", \"edges\", \"sink_nodes\", \"components\", \"compat\"]\n", s.err)
    }

    func testFilesRoundTripAndRefuseCorruption() throws {
        let s = try session()
        let out = s.output("""
        g = unroll(toy)
        save(g, dir + "/toy.mgeg")
        h = load(dir + "/toy.mgeg")
        print(h.nodes == g.nodes, h.edges == g.edges, summary(h) == summary(g))
        export(g, dir + "/toy.tsv")
        export_degrees(g, dir + "/toy-degrees.safetensors")
        """)
        XCTAssertTrue(out.contains("true true true\n"), out + s.err)
        XCTAssertTrue(out.contains("wrote \(GraphBuiltinsTests.scratch)/toy.mgeg ("), out)
        let tsv = try String(contentsOfFile: GraphBuiltinsTests.scratch + "/toy.tsv", encoding: .utf8)
        XCTAssertEqual(tsv.split(separator: "\n").count, 1609)
        let degrees = try SafeTensors.readDictionary(path: GraphBuiltinsTests.scratch + "/toy-degrees.safetensors")
        XCTAssertEqual(degrees["layer_sizes"]?.integers, [64, 72, 27, 27, 3])
        // A flipped byte in the payload is refused with a reason.
        var bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: GraphBuiltinsTests.scratch + "/toy.mgeg")))
        bytes[bytes.count / 2] ^= 0xFF
        try Data(bytes).write(to: URL(fileURLWithPath: GraphBuiltinsTests.scratch + "/bad.mgeg"))
        XCTAssertEqual(s.run("load(dir + \"/bad.mgeg\")"), .runtimeError)
        XCTAssertTrue(s.err.contains("is not a valid file"), s.err)
    }

    func testDrawingsAreSVG() throws {
        let s = try session()
        let out = s.output("""
        draw(toy, dir + "/toy-all.svg", encoding: "all")
        draw(toy, dir + "/toy-rolled.svg", encoding: "rolled")
        draw(rolled_channel(toy), dir + "/toy-rc.svg")
        draw(unroll(toy), dir + "/toy-mge.svg", title: "toy")
        """)
        XCTAssertEqual(out.split(separator: "\n").filter { $0.hasPrefix("wrote ") && $0.hasSuffix(" kB)") }.count, 4, out + s.err)
        for name in ["toy-all", "toy-rolled", "toy-rc", "toy-mge"] {
            let text = try String(contentsOfFile: GraphBuiltinsTests.scratch + "/\(name).svg", encoding: .utf8)
            XCTAssertTrue(text.contains("<svg") && text.hasSuffix("</svg>\n") || text.hasSuffix("</svg>"), name)
        }
        XCTAssertEqual(s.run("draw(toy, dir + \"/x.svg\", encoding: \"rolld\")"), .runtimeError)
        XCTAssertTrue(s.err.contains("(did you mean \"rolled\"?)"), s.err)
    }

    func testAppendCSVWritesThePaperLayout() throws {
        let s = try session()
        let path = GraphBuiltinsTests.scratch + "/sweep-\(UUID().uuidString).csv"
        s.interpreter.define("path", .string(path))
        let out = s.output("""
        m = topometrics(unroll(toy), only: ["sink_nodes", "components", "two_hop"])
        print(append_csv(path, m, pruning: "erk", sparsity: 0.5, model: toy, dataset: cifar10, seed: 3))
        print(append_csv(path, normalized(m), pruning: "er", sparsity: 0.9, seed: 1, accuracy: 0.5, model: "resnet20", compat: "reference"))
        print(append_csv(path, m, pruning: "a \\"quoted\\", multi\\nline name", sparsity: 0))
        """)
        XCTAssertEqual(out, "1\n2\n3\n", s.err)
        let lines = try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n", omittingEmptySubsequences: false)
        XCTAssertEqual(lines[0], Substring(PaperTable.columns.joined(separator: ",")))
        XCTAssertTrue(lines[0].hasPrefix("accuracy,pruning,sparsity,model,dataset,seed,nodes,edges,sink_nodes"))
        let table = try ResultsCSV.read(path: path)
        XCTAssertEqual(table.header, PaperTable.columns)
        XCTAssertEqual(table.rows.count, 3)
        let rows = table.records
        XCTAssertEqual(rows[0]["model"], "toy"); XCTAssertEqual(rows[0]["pruning"], "erk"); XCTAssertEqual(rows[0]["seed"], "3")
        XCTAssertEqual(rows[0]["dataset"], "CIFAR-10"); XCTAssertEqual(rows[0]["compat"], "paper")
        XCTAssertEqual(rows[0]["nodes"], "193"); XCTAssertEqual(rows[0]["no_connected_components"], "1")
        XCTAssertEqual(rows[0]["cut-edges"], "", "fields not computed stay empty")
        XCTAssertEqual(rows[1]["model"], "Resnet-20"); XCTAssertEqual(rows[1]["compat"], "reference"); XCTAssertEqual(rows[1]["accuracy"], "0.5")
        XCTAssertEqual(rows[2]["pruning"], "a \"quoted\", multi\nline name")
    }

    func testCtrlCInterruptsAMetric() throws {
        let s = try session()
        XCTAssertEqual(s.run("g = unroll(toy)"), .ok)
        Cancellation.request()
        defer { Cancellation.reset() }
        XCTAssertEqual(s.run("topometrics(g)"), .interrupted)
    }
}
