import XCTest
@testable import Kernels

/// Tables, the CSV reader, XGBoost and rank correlations against references made by
/// Fixtures/analysis/make_reference.py with PyPI's xgboost 1.7.4 and scipy (Python is not
/// needed to run these tests).
final class AnalysisTests: XCTestCase {
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures/analysis")

    func fixture(_ name: String) throws -> Table { try CSVReader.read(path: Self.fixtures.appendingPathComponent(name).path) }

    func testXGBoostPredictionsAndContributionsMatchPython() throws {
        let data = try fixture("xgboost_data.csv"), expected = try fixture("xgboost_expected.csv")
        let features = (0..<5).map { "f\($0)" }
        let x = FeatureMatrix(columns: try features.map { try data.numbers($0) }, rows: data.rowCount)
        XCTAssertTrue(x.values.contains { $0.isNaN }, "the fixture has missing values")
        let y = try data.numbers("y"), fold = try data.numbers("fold").map { Int($0) }
        let params = [("max_depth", "4"), ("eta", "0.1"), ("subsample", "0.8"), ("colsample_bytree", "0.9"), ("lambda", "1.0"),
                      ("min_child_weight", "1"), ("nthread", "1"), ("seed", "0"), ("verbosity", "0")]
        let cv = try CrossValidation.run(x, y, fold: fold, folds: 4, features: features, params: params, rounds: 40)
        let oof = try expected.numbers("oof")
        for r in 0..<data.rowCount { XCTAssertEqual(cv.predictions[r], oof[r], accuracy: 1e-5, "row \(r)") }
        let full = try Booster.train(x, y, features: features, params: params, rounds: 40)
        let predicted = try full.predict(x), reference = try expected.numbers("full")
        for r in 0..<data.rowCount { XCTAssertEqual(predicted[r], reference[r], accuracy: 1e-5, "row \(r)") }
        let shap = try full.contributions(x)
        let shapColumns = try (features.map { "shap_" + $0 } + ["shap_bias"]).map { try expected.numbers($0) }
        for r in 0..<data.rowCount {
            for c in 0..<6 { XCTAssertEqual(shap[r][c], shapColumns[c][r], accuracy: 1e-5, "row \(r) column \(c)") }
            XCTAssertEqual(shap[r].reduce(0, +), predicted[r], accuracy: 1e-4, "SHAP values sum to the prediction")
        }
        // The saved model predicts the same.
        let (loaded, attributes) = try Booster.load(try full.serialized(attributes: ["mge_target": "y"]), path: "memory")
        XCTAssertEqual(loaded.features, features)
        XCTAssertEqual(attributes["mge_target"], "y")
        XCTAssertEqual(try loaded.predict(x), predicted)
    }

    func testUnknownXGBoostParameterIsNamed() throws {
        let x = FeatureMatrix(rows: 4, columns: 1, values: [0, 1, 2, 3])
        XCTAssertThrowsError(try Booster.train(x, [0, 1, 2, 3], features: ["a"], params: [("max_dept", "3"), ("eta", "0.3")], rounds: 2)) {
            XCTAssertEqual($0 as? XGBoostFailure, .unknownParameters(["max_dept"]))
        }
        XCTAssertNoThrow(try Booster.train(x, [0, 1, 2, 3], features: ["a"], params: [("learning_rate", "0.3"), ("reg_lambda", "2"), ("nthread", "1")], rounds: 2))
    }

    func testRankCorrelationsMatchScipy() throws {
        let data = try fixture("pairs_data.csv"), expected = try fixture("pairs_expected.csv")
        let set = try data.numbers("set"), xs = try data.numbers("x"), ys = try data.numbers("y")
        let tau = try expected.numbers("kendall"), rho = try expected.numbers("spearman")
        for (i, s) in try expected.numbers("set").enumerated() {
            let rows = set.indices.filter { set[$0] == s }
            let x = rows.map { xs[$0] }, y = rows.map { ys[$0] }
            XCTAssertEqual(RankCorrelation.kendall(x, y), tau[i], accuracy: 1e-12, "set \(s)")
            XCTAssertEqual(RankCorrelation.spearman(x, y), rho[i], accuracy: 1e-12, "set \(s)")
        }
        XCTAssertTrue(RankCorrelation.kendall([1, 1, 1], [1, 2, 3]).isNaN, "constant side: nan, as scipy")
    }

    func testGroupedFoldsKeepGroupsTogetherAndBalance() {
        let groups = (0..<300).map { $0 / 3 }   // 100 configurations of 3 seeds
        let fold = CrossValidation.groupedFolds(groups: groups, folds: 5, seed: 7)
        for g in 0..<100 { XCTAssertEqual(Set((0..<3).map { fold[g * 3 + $0] }).count, 1, "group \(g) straddles folds") }
        let sizes = (0..<5).map { f in fold.filter { $0 == f }.count }
        XCTAssertEqual(sizes, [60, 60, 60, 60, 60])
        XCTAssertEqual(fold, CrossValidation.groupedFolds(groups: groups, folds: 5, seed: 7), "seeded")
        XCTAssertNotEqual(fold, CrossValidation.groupedFolds(groups: groups, folds: 5, seed: 8))
    }

    func testCSVReaderTypesQuotingAndRefusals() throws {
        let text = "a,b,c\r\n1,\"x, \"\"y\"\"\",\n2.5e-3,z,7\n\n-inf,\"multi\nline\",nan\n"
        let t = try CSVReader.parse(Array(text.utf8), name: "t.csv")
        XCTAssertEqual(t.names, ["a", "b", "c"])
        XCTAssertEqual(t.rowCount, 3)
        XCTAssertEqual(try t.numbers("a"), [1, 0.0025, -.infinity])
        XCTAssertEqual(try t.column("b"), .text(["x, \"y\"", "z", "multi\nline"]))
        let c = try t.numbers("c")
        XCTAssertTrue(c[0].isNaN && c[1] == 7 && c[2].isNaN)
        XCTAssertEqual(try CSVReader.parse(Array("h\n0x10\n".utf8), name: "h.csv").column("h"), .text(["0x10"]), "hex stays text")
        func refused(_ text: String, _ expected: String) {
            XCTAssertThrowsError(try CSVReader.parse(Array(text.utf8), name: "bad.csv")) { XCTAssertEqual("\($0)", expected) }
        }
        refused("a,b\n1,2\n3\n", "bad.csv:3: column 2: 1 cells but the header has 2")
        refused("a,b\n1,2,3\n", "bad.csv:2: column 3: 3 cells but the header has 2")
        refused("a,b\n1,\"open\n", "bad.csv:2: column 2: quoted cell is never closed")
        refused("a,b\n1,x\"y\n", "bad.csv:2: column 2: a quote inside an unquoted cell")
        refused("a,a\n1,2\n", "bad.csv:1: column 2: column name 'a' appears twice")
        refused("", "bad.csv:1: column 1: no header line")
    }

    func testWriteReadRoundTripAndTableOperations() throws {
        let path = NSTemporaryDirectory() + "/mge-table-\(UInt32.random(in: 0 ... .max)).csv"
        defer { unlink(path) }
        let t = try Table(names: ["k", "v", "s"], columns: [.text(["a", "b", "a"]), .number([0.1, .nan, 3]), .text(["x,1", "q\"", ""])])
        try CSVReader.write(t, to: path)
        let back = try CSVReader.read(path: path)
        XCTAssertEqual(back.names, t.names)
        XCTAssertEqual(try back.column("k"), try t.column("k"))
        XCTAssertEqual(try back.column("s"), try t.column("s"))
        let v = try back.numbers("v")
        XCTAssertTrue(v[0] == 0.1 && v[1].isNaN && v[2] == 3, "missing stays missing")
        let other = try Table(names: ["k", "w"], columns: [.text(["a", "c"]), .number([10, 20])])
        let joined = try t.join(other, on: ["k"])
        XCTAssertEqual(joined.rowCount, 2)
        XCTAssertEqual(try joined.numbers("w"), [10, 10])
        let (keys, rows) = try t.groups(by: ["k"])
        XCTAssertEqual(keys, [["a"], ["b"]])
        XCTAssertEqual(rows, [[0, 2], [1]])
        XCTAssertEqual(t.rows([0, 0, 2]).distinct().rowCount, 2)
        XCTAssertThrowsError(try t.column("nope")) { XCTAssertEqual("\($0)", "no column 'nope' (columns: k, v, s)") }
    }
}
