import XCTest
@testable import Kernels

final class ResultsCSVTests: XCTestCase {
    func scratch() -> String { NSTemporaryDirectory() + "/mge-csv-\(UInt32.random(in: 0 ... .max)).csv" }

    func testHeaderOnceStableColumnsAndQuoting() throws {
        let path = scratch()
        defer { unlink(path) }
        XCTAssertEqual(try ResultsCSV.append(path: path, columns: ["a", "b"], row: ["a": "1", "b": "x,y"], countRows: true), 1)
        // Columns come from the existing header, whatever the caller passes now.
        XCTAssertEqual(try ResultsCSV.append(path: path, columns: ["b", "a"], row: ["b": "2"], countRows: true), 2)
        XCTAssertThrowsError(try ResultsCSV.append(path: path, columns: [], row: ["c": "3"])) {
            XCTAssertTrue("\($0)".contains("'c'"), "\($0)")
        }
        XCTAssertNil(try ResultsCSV.append(path: path, columns: [], row: ["a": "line1\nline2", "b": "say \"hi\""]))
        let text = String(decoding: FileManager.default.contents(atPath: path) ?? Data(), as: UTF8.self)
        XCTAssertEqual(text, "a,b\n1,\"x,y\"\n,2\n\"line1\nline2\",\"say \"\"hi\"\"\"\n")
        let table = try ResultsCSV.read(path: path)
        XCTAssertEqual(table.header, ["a", "b"])
        XCTAssertEqual(table.rows, [["1", "x,y"], ["", "2"], ["line1\nline2", "say \"hi\""]])
        // The embedded newline is one row, not two.
        XCTAssertEqual(try ResultsCSV.append(path: path, columns: [], row: ["a": "4"], countRows: true), 4)
    }

    func testReaderFollowsRFC4180AndRefusesCorruptText() throws {
        func parse(_ s: String) throws -> ResultsCSV.Table { try ResultsCSV.parseTable(Array(s.utf8), path: "t.csv") }
        XCTAssertEqual(try parse("a,b\r\n1,\"\"\r\n\"\",2").rows, [["1", ""], ["", "2"]])
        XCTAssertEqual(try parse("a,b\n1,\n").rows, [["1", ""]])
        XCTAssertEqual(try parse("").header, [])
        XCTAssertEqual(try parse("a,b\n1,2\n\n3,4\n").rows, [["1", "2"], ["3", "4"]], "a blank line is no row")
        XCTAssertThrowsError(try parse("a,b\n1\n")) { XCTAssertEqual("\($0)", "t.csv is not a valid file: line 2, column 2: 1 cells but the header has 2") }
        XCTAssertThrowsError(try parse("a,b\n\"1,2\n")) { XCTAssertTrue("\($0)".contains("line 2, column 1: quoted cell is never closed"), "\($0)") }
        XCTAssertThrowsError(try parse("a,b\n1,x\"y\n")) { XCTAssertTrue("\($0)".contains("a quote inside an unquoted cell"), "\($0)") }
        XCTAssertThrowsError(try parse("a,a\n1,2\n")) { XCTAssertTrue("\($0)".contains("column name 'a' appears twice"), "\($0)") }
        // Round trip of awkward cells.
        let cells = ["", ",", "\"", "\n", "\r\n", "é,\"x\"", "plain"]
        let text = CSVReader.record(cells.indices.map { "c\($0)" }) + CSVReader.record(cells)
        XCTAssertEqual(try parse(text).rows, [cells])
        // One empty cell is written quoted, so a one-column table keeps its empty rows.
        XCTAssertEqual(CSVReader.record([""]), "\"\"\n")
        XCTAssertEqual(try parse(CSVReader.record(["a"]) + CSVReader.record([""]) + CSVReader.record(["x"])).rows, [[""], ["x"]])
    }

    func testCutShortLastRowDoesNotSwallowTheNextRow() throws {
        let path = scratch()
        defer { unlink(path) }
        try Data("a,b\n1,2\n3".utf8).write(to: URL(fileURLWithPath: path))
        try ResultsCSV.append(path: path, columns: [], row: ["a": "5", "b": "6"])
        XCTAssertEqual(String(decoding: FileManager.default.contents(atPath: path) ?? Data(), as: UTF8.self), "a,b\n1,2\n3\n5,6\n")
        XCTAssertThrowsError(try ResultsCSV.read(path: path)) { XCTAssertTrue("\($0)".contains("line 3"), "\($0)") }
    }

    /// The row count an append returns is the reader's: blank lines are not rows.
    func testAppendCountsRowsAsTheReaderDoes() throws {
        let path = scratch()
        defer { unlink(path) }
        try Data("a,b\r\n1,2\r\n\r\n\n\"x\ny\",3\n".utf8).write(to: URL(fileURLWithPath: path))
        XCTAssertEqual(try ResultsCSV.append(path: path, columns: [], row: ["a": "4"], countRows: true), 3)
        XCTAssertEqual(try ResultsCSV.read(path: path).rows, [["1", "2"], ["x\ny", "3"], ["4", ""]])
    }

    /// Writers on separate open file descriptions contend for the lock exactly as separate
    /// processes do (flock locks belong to the open file description). Processes are checked
    /// by ScriptProcessTests.
    func testConcurrentWritersLoseNoRow() throws {
        let path = scratch()
        defer { unlink(path) }
        let writers = 4, perWriter = 250
        let failures = Failures()
        DispatchQueue.concurrentPerform(iterations: writers) { w in
            for i in 0 ..< perWriter {
                do { try ResultsCSV.append(path: path, columns: ["writer", "i", "text"], row: ["writer": "\(w)", "i": "\(i)", "text": "a \"quoted\", multi\nline cell \(w)-\(i)"]) } catch { failures.add("\(error)") }
            }
        }
        XCTAssertEqual(failures.list, [])
        let table = try ResultsCSV.read(path: path)
        XCTAssertEqual(table.rows.count, writers * perWriter)
        XCTAssertEqual(Set(table.rows.map { "\($0[0])-\($0[1])" }).count, writers * perWriter)
        XCTAssertTrue(table.rows.allSatisfy { $0[2] == "a \"quoted\", multi\nline cell \($0[0])-\($0[1])" })
    }

    func testPaperNormalisation() {
        let m: [String: Double] = ["nodes": 100, "edges": 1000, "sink_nodes": 5, "two_hop": 300,
                                   "components": 4, "mean_component_size": 25, "spectral_gap": 1.5]
        let cols = Dictionary(uniqueKeysWithValues: PaperTable.normalized(m).map { ($0.column, $0.value) })
        XCTAssertEqual(cols["sink_nodes"], 0.05)
        XCTAssertEqual(cols["2-hop_nei"], 0.3)
        XCTAssertEqual(cols["no_connected_components"], 4)
        XCTAssertEqual(cols["mean_connected_components"], 0.25)
        XCTAssertEqual(cols["spectral_gap"], 1.5)
        XCTAssertNil(cols["cut-edges"])
        XCTAssertEqual(PaperTable.columns.count, 27)  // the paper's 24, motifs_estimated and motifs_sample, compat
    }

    func testPaperColumnsAndConventionsMatchThePublishedFile() throws {
        // The published header (graph_metrics/unrolled/unrolled.csv), written out here so the
        // test runs without ../shared.
        let published = "accuracy,pruning,sparsity,model,dataset,seed,nodes,edges,sink_nodes,source_nodes,disc_nodes,r-out,r-in,2-hop_nei,cut-edges,motif,no_connected_components,mean_connected_components,avg_node_strength,1-hop_nei,cut-nodes,k-core,spectral_gap,spectral_radius"
        XCTAssertEqual(PaperTable.paperColumns.joined(separator: ","), published)
        XCTAssertEqual(PaperTable.columns.last, "compat")
        XCTAssertEqual(PaperTable.modelLabel("resnet20"), "Resnet-20")
        XCTAssertEqual(PaperTable.modelLabel("Wide-Resnet-28-2"), "Wide-Resnet-28-2")
        XCTAssertEqual(PaperTable.modelLabel("wrn28_2"), "Wide-Resnet-28-2")
        XCTAssertNil(PaperTable.modelLabel("toy"))
        XCTAssertEqual(PaperTable.datasetLabel("cifar10"), "CIFAR-10")
        XCTAssertEqual(PaperTable.datasetLabel("CIFAR-100"), "CIFAR-100")
        XCTAssertEqual(PaperTable.datasetLabel("tinyimagenet"), "tinyimagenet")
        let row = try PaperTable.row(PaperTable.Run(accuracy: 0.25, pruning: "erk", sparsity: 0.9, model: "resnet20", dataset: "cifar10", seed: 2, compat: "reference"),
                                     metrics: [("nodes", 10), ("edges", 20), ("no_connected_components", 1), ("sink_nodes", 0.0078125), ("spectral_gap", .nan)])
        XCTAssertEqual(row, ["accuracy": "0.25", "pruning": "erk", "sparsity": "0.9", "model": "Resnet-20", "dataset": "CIFAR-10", "seed": "2",
                             "compat": "reference", "nodes": "10", "edges": "20", "no_connected_components": "1", "sink_nodes": "0.0078125", "spectral_gap": ""])
        for (run, column) in [(PaperTable.Run(sparsity: 1), "sparsity"), (PaperTable.Run(sparsity: 2.5), "sparsity"), (PaperTable.Run(sparsity: -0.1), "sparsity"),
                              (PaperTable.Run(accuracy: 7), "accuracy"), (PaperTable.Run(seed: -4), "seed"), (PaperTable.Run(compat: "papr"), "compat")] {
            XCTAssertThrowsError(try PaperTable.validated(run)) { XCTAssertEqual(($0 as? PaperTable.Invalid)?.column, column) }
        }
        XCTAssertNoThrow(try PaperTable.validated(PaperTable.Run(accuracy: 1, sparsity: 0)))
    }
}

/// Errors gathered from concurrent work.
final class Failures: @unchecked Sendable {
    private let lock = NSLock()
    private var items: [String] = []
    func add(_ s: String) { lock.lock(); items.append(s); lock.unlock() }
    var list: [String] { lock.lock(); defer { lock.unlock() }; return items }
}
