import XCTest
@testable import Kernels

final class CSVTableTests: XCTestCase {
    func testHeaderOnceStableColumnsAndQuoting() throws {
        let path = NSTemporaryDirectory() + "/mge-csv-\(UInt32.random(in: 0 ... .max)).csv"
        defer { unlink(path) }
        XCTAssertEqual(try CSVTable.append(path: path, columns: ["a", "b"], row: ["a": "1", "b": "x,y"]), 1)
        // Columns come from the existing header, whatever the caller passes now.
        XCTAssertEqual(try CSVTable.append(path: path, columns: ["b", "a"], row: ["b": "2"]), 2)
        XCTAssertThrowsError(try CSVTable.append(path: path, columns: [], row: ["c": "3"])) {
            XCTAssertTrue("\($0)".contains("'c'"), "\($0)")
        }
        let text = String(decoding: FileManager.default.contents(atPath: path)!, as: UTF8.self)
        XCTAssertEqual(text, "a,b\n1,\"x,y\"\n,2\n")
        XCTAssertEqual(CSVTable.parseLine("1,\"x,y\",\"q\"\"\""), ["1", "x,y", "q\""])
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
        XCTAssertEqual(PaperTable.columns.count, 24)
    }
}
