import Foundation
import OracleSupport
import XCTest
@testable import Kernels

/// Builds a case's network; where cases are is `OracleLocation`'s business, reading their
/// expected.json `OracleCase`'s.
enum Oracle {
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
        let expected = try OracleCase.expected(dir)
        let model = try XCTUnwrap(modelName(expected), "unknown model in \(dir)")
        let architecture = try XCTUnwrap(ModelZoo.build(model, classes: classes(expected)))
        let net = Network(architecture: architecture, seed: 0)
        try net.loadStateDict(SafeTensors.read(path: dir + "/\(stateDict).safetensors"))
        if masks { try net.loadMasks(SafeTensors.read(path: dir + "/masks.safetensors")) }
        return net
    }
}
