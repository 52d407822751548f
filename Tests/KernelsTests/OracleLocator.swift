import Foundation
import OracleSupport
import XCTest
@testable import Kernels

/// Reads oracle cases; where they are is OracleLocation's business (the full oracle, or the
/// compact subset shipped in Tests/Fixtures/oracle).
enum Oracle {
    static var root: String { OracleLocation.root }

    /// Every case folder present, sorted; fails the test when there is none.
    static func cases(file: StaticString = #filePath, line: UInt = #line) -> [String] {
        OracleLocation.cases(file: file, line: line)
    }

    /// The named case's folder; skips the test (one line) when only the subset is present and lacks it.
    static func directory(of name: String) throws -> String { try OracleLocation.directory(of: name) }

    static func expected(_ dir: String) throws -> [String: Any] {
        let data = try Data(contentsOf: URL(fileURLWithPath: dir + "/expected.json"))
        // The reference wrote Python's JSON, which spells ±Infinity and NaN bare; Foundation
        // refuses those, so they become the strings "-inf", "inf" and "nan" (see `number(_:)`).
        var text = String(decoding: data, as: UTF8.self)
        text = text.replacingOccurrences(of: "-Infinity", with: "\"-inf\"")
            .replacingOccurrences(of: "Infinity", with: "\"inf\"")
            .replacingOccurrences(of: "NaN", with: "\"nan\"")
        return (try JSONSerialization.jsonObject(with: Data(text.utf8))) as? [String: Any] ?? [:]
    }

    /// A number of `expected.json`, including the spelled-out infinities; nil for null.
    static func number(_ value: Any?) -> Double? {
        switch value {
        case let n as NSNumber: return n.doubleValue
        case let s as String: return Double(s)  // "inf", "-inf", "nan"
        default: return nil
        }
    }

    /// Maps the oracle's model and dataset names to mge's.
    static func modelName(_ expected: [String: Any]) -> String? {
        switch expected["model"] as? String {
        case "CONV-6": return "conv6"
        case "Resnet-20": return "resnet20"
        case "Resnet-32": return "resnet32"
        case "Wide-Resnet-28-2": return "wrn28_2"
        case "MobileNetV2": return "mobilenetv2"
        default: return nil
        }
    }

    static func classes(_ expected: [String: Any]) -> Int {
        switch expected["dataset"] as? String {
        case "CIFAR-100": return 100
        case "TinyImageNet", "Tiny-ImageNet": return 200
        default: return 10
        }
    }

    /// The case's model with one of its state dicts loaded (`"init"` or `"weights"`) and,
    /// when asked, its masks.
    static func network(_ dir: String, stateDict: String = "weights", masks: Bool = true) throws -> Network {
        let expected = try self.expected(dir)
        let model = try XCTUnwrap(modelName(expected), "unknown model in \(dir)")
        let architecture = try XCTUnwrap(ModelZoo.build(model, classes: classes(expected)))
        let net = Network(architecture: architecture, seed: 0)
        try net.loadStateDict(SafeTensors.read(path: dir + "/\(stateDict).safetensors"))
        if masks { try net.loadMasks(SafeTensors.read(path: dir + "/masks.safetensors")) }
        return net
    }
}
