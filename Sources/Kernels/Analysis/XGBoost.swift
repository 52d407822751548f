import CXGBoost
import Foundation

public enum XGBoostFailure: Error, CustomStringConvertible, Equatable {
    case library(String)
    case unknownParameters([String])
    case badInput(String)

    public var description: String {
        switch self {
        case .library(let message): return "xgboost: \(message)"
        case .unknownParameters(let names):
            return "unknown XGBoost parameter\(names.count == 1 ? "" : "s") \(names.map { "'\($0)'" }.joined(separator: ", ")) "
                + "(see https://xgboost.readthedocs.io/en/release_1.7.0/parameter.html)"
        case .badInput(let message): return message
        }
    }
}

/// A dense row-major float matrix handed to XGBoost (NaN = missing).
public struct FeatureMatrix: Sendable {
    public let rows: Int
    public let columns: Int
    public var values: [Float]

    public init(rows: Int, columns: Int, values: [Float]) {
        precondition(values.count == rows * columns)
        self.rows = rows; self.columns = columns; self.values = values
    }

    /// Rows by column-major Double columns (a table's feature columns).
    public init(columns data: [[Double]], rows: Int) {
        self.rows = rows
        self.columns = data.count
        var values = [Float](repeating: 0, count: rows * data.count)
        for (c, column) in data.enumerated() { for r in 0..<rows { values[r * data.count + c] = Float(column[r]) } }
        self.values = values
    }

    public func rows(_ indices: [Int]) -> FeatureMatrix {
        var out = [Float]()
        out.reserveCapacity(indices.count * columns)
        for r in indices { out.append(contentsOf: values[(r * columns)..<((r + 1) * columns)]) }
        return FeatureMatrix(rows: indices.count, columns: columns, values: out)
    }
}

/// A trained gradient-boosted tree model from Debian's libxgboost (1.7), through its C API.
/// Training, prediction and TreeSHAP contributions are XGBoost's own; this only marshals data.
public final class Booster: @unchecked Sendable {
    private let handle: BoosterHandle
    /// Feature names, in the matrix's column order.
    public let features: [String]

    private init(handle: BoosterHandle, features: [String]) { self.handle = handle; self.features = features }
    deinit { XGBoosterFree(handle) }

    /// XGBoost's last error as a Swift error.
    static func check(_ status: Int32) throws {
        if status != 0 { throw XGBoostFailure.library(message(String(cString: XGBGetLastError()))) }
    }

    /// XGBoost's message without its time stamp, source location and stack trace.
    static func message(_ raw: String) -> String {
        var text = raw.components(separatedBy: "\nStack trace:").first ?? raw
        if text.hasPrefix("["), let close = text.firstIndex(of: "]") { text = String(text[text.index(after: close)...]) }
        if let range = text.range(of: #"^\s*\S+\.(cc|h|cu):\d+: "#, options: .regularExpression) { text.removeSubrange(range) }
        return text.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    static func matrix(_ x: FeatureMatrix, labels: [Float]? = nil) throws -> DMatrixHandle {
        var dmatrix: DMatrixHandle?
        try x.values.withUnsafeBufferPointer { p in
            try check(XGDMatrixCreateFromMat(p.baseAddress, bst_ulong(x.rows), bst_ulong(x.columns), Float.nan, &dmatrix))
        }
        guard let dmatrix else { throw XGBoostFailure.library("no matrix was created") }
        if let labels {
            do {
                try labels.withUnsafeBufferPointer { try check(XGDMatrixSetFloatInfo(dmatrix, "label", $0.baseAddress, bst_ulong(labels.count))) }
            } catch { XGDMatrixFree(dmatrix); throw error }
        }
        return dmatrix
    }

    /// Trains `rounds` boosting rounds on `x` → `y` with XGBoost's own parameter names and values
    /// (`max_depth`, `eta`, `subsample`, `seed`, `nthread`…, passed through as text).
    /// Parameters that XGBoost does not know are refused (it would only warn).
    /// - Complexity: XGBoost's: about O(rounds × rows × features) for `hist`.
    public static func train(_ x: FeatureMatrix, _ y: [Double], features: [String], params: [(String, String)], rounds: Int) throws -> Booster {
        guard y.count == x.rows else { throw XGBoostFailure.badInput("\(y.count) targets for \(x.rows) rows") }
        guard rounds >= 1 else { throw XGBoostFailure.badInput("rounds must be at least 1, got \(rounds)") }
        let dtrain = try matrix(x, labels: y.map(Float.init))
        defer { XGDMatrixFree(dtrain) }
        var raw: BoosterHandle?
        var matrices: [DMatrixHandle?] = [dtrain]
        try check(XGBoosterCreate(&matrices, 1, &raw))
        guard let raw else { throw XGBoostFailure.library("no booster was created") }
        let booster = Booster(handle: raw, features: features)
        // Quiet by default: unknown parameters are checked below instead of warned about.
        if !params.contains(where: { $0.0 == "verbosity" }) { try check(XGBoosterSetParam(raw, "verbosity", "0")) }
        for (name, value) in params { try check(XGBoosterSetParam(raw, name, value)) }
        for round in 0..<rounds {
            try Cancellation.check()
            try check(XGBoosterUpdateOneIter(raw, Int32(round), dtrain))
            if round == 0 {
                let unknown = try booster.unknownParameters(params.map(\.0))
                guard unknown.isEmpty else { throw XGBoostFailure.unknownParameters(unknown) }
            }
        }
        return booster
    }

    /// The names among `names` that appear nowhere in the booster's configuration (XGBoost keeps
    /// every parameter it uses there, under its canonical name; `eta`/`learning_rate` and the
    /// other aliases are accepted through their canonical names).
    private func unknownParameters(_ names: [String]) throws -> [String] {
        var length: bst_ulong = 0
        var text: UnsafePointer<CChar>?
        try Booster.check(XGBoosterSaveJsonConfig(handle, &length, &text))
        guard let text else { return [] }
        let json = String(cString: text)
        var keys = Set<String>()
        if let object = try? JSONSerialization.jsonObject(with: Data(json.utf8)) { collectKeys(object, into: &keys) }
        let aliases = ["eta": "learning_rate", "learning_rate": "eta", "gamma": "min_split_loss", "min_split_loss": "gamma",
                       "lambda": "reg_lambda", "reg_lambda": "lambda", "alpha": "reg_alpha", "reg_alpha": "alpha",
                       "random_state": "seed", "n_jobs": "nthread"]
        // `verbosity` is a global setting, kept outside the booster's configuration.
        return names.filter { $0 != "verbosity" && !keys.contains($0) && !(aliases[$0].map(keys.contains) ?? false) }
    }

    private func collectKeys(_ object: Any, into keys: inout Set<String>) {
        if let dictionary = object as? [String: Any] {
            for (key, value) in dictionary { keys.insert(key); collectKeys(value, into: &keys) }
        } else if let array = object as? [Any] {
            for value in array { collectKeys(value, into: &keys) }
        }
    }

    /// Predictions for the rows of `x` (all trees).
    public func predict(_ x: FeatureMatrix) throws -> [Double] {
        try run(x, type: 0).map(Double.init)
    }

    /// TreeSHAP contributions (XGBoost's `pred_contribs`): rows × (features + 1), the last
    /// column being the bias; each row sums to the prediction.
    public func contributions(_ x: FeatureMatrix) throws -> [[Double]] {
        let flat = try run(x, type: 2)
        let width = x.columns + 1
        guard flat.count == x.rows * width else {
            throw XGBoostFailure.library("pred_contribs gave \(flat.count) values for \(x.rows) rows of \(x.columns) features")
        }
        return (0..<x.rows).map { r in flat[(r * width)..<((r + 1) * width)].map(Double.init) }
    }

    private func run(_ x: FeatureMatrix, type: Int) throws -> [Float] {
        guard x.columns == features.count else {
            throw XGBoostFailure.badInput("the model has \(features.count) features, the data \(x.columns)")
        }
        let dmatrix = try Booster.matrix(x)
        defer { XGDMatrixFree(dmatrix) }
        let config = "{\"type\": \(type), \"training\": false, \"iteration_begin\": 0, \"iteration_end\": 0, \"strict_shape\": false}"
        var shape: UnsafePointer<bst_ulong>?
        var dims: bst_ulong = 0
        var result: UnsafePointer<Float>?
        try Booster.check(XGBoosterPredictFromDMatrix(handle, dmatrix, config, &shape, &dims, &result))
        guard let shape, let result else { return [] }
        var count = 1
        for d in 0..<Int(dims) { count *= Int(shape[d]) }
        return Array(UnsafeBufferPointer(start: result, count: count))
    }

    /// The model in XGBoost's JSON format, with the feature names and `attributes` stored in it.
    public func serialized(attributes: [String: String]) throws -> [UInt8] {
        for (key, value) in attributes { try Booster.check(XGBoosterSetAttr(handle, key, value)) }
        try setFeatureNames()
        var length: bst_ulong = 0
        var bytes: UnsafePointer<CChar>?
        try Booster.check(XGBoosterSaveModelToBuffer(handle, "{\"format\": \"json\"}", &length, &bytes))
        guard let bytes else { return [] }
        return UnsafeRawBufferPointer(start: bytes, count: Int(length)).map { $0 }
    }

    private func setFeatureNames() throws {
        let cStrings = features.map { strdup($0) }
        defer { cStrings.forEach { free($0) } }
        var pointers = cStrings.map { UnsafePointer<CChar>($0) }
        try Booster.check(XGBoosterSetStrFeatureInfo(handle, "feature_name", &pointers, bst_ulong(pointers.count)))
    }

    /// Reads a model written by `serialized` (or any XGBoost JSON/UBJSON model with feature names).
    public static func load(_ bytes: [UInt8], path: String) throws -> (Booster, attributes: [String: String]) {
        var raw: BoosterHandle?
        try check(XGBoosterCreate(nil, 0, &raw))
        guard let raw else { throw XGBoostFailure.library("no booster was created") }
        do {
            try bytes.withUnsafeBytes { try check(XGBoosterLoadModelFromBuffer(raw, $0.baseAddress, bst_ulong($0.count))) }
        } catch {
            XGBoosterFree(raw)
            throw IOFailure.corrupt(path: path, reason: "\(error)")
        }
        var count: bst_ulong = 0
        var names: UnsafeMutablePointer<UnsafePointer<CChar>?>?
        var features: [String] = []
        if XGBoosterGetStrFeatureInfo(raw, "feature_name", &count, &names) == 0, let names {
            features = (0..<Int(count)).compactMap { names[$0].map { String(cString: $0) } }
        }
        var attributes: [String: String] = [:]
        var attributeCount: bst_ulong = 0
        var keys: UnsafeMutablePointer<UnsafePointer<CChar>?>?
        if XGBoosterGetAttrNames(raw, &attributeCount, &keys) == 0, let keys {
            for i in 0..<Int(attributeCount) {
                guard let key = keys[i].map({ String(cString: $0) }) else { continue }
                var value: UnsafePointer<CChar>?
                var success: Int32 = 0
                if XGBoosterGetAttr(raw, key, &value, &success) == 0, success == 1, let value { attributes[key] = String(cString: value) }
            }
        }
        let booster = Booster(handle: raw, features: features)
        guard !features.isEmpty else { throw IOFailure.corrupt(path: path, reason: "the model has no feature names") }
        return (booster, attributes)
    }
}
