import OracleSupport
import XCTest
@testable import Kernels

final class ModelTests: XCTestCase {
    func testResNet20ParameterCounts() throws {
        let net = Network(architecture: ModelZoo.resnet(depth: 20, classes: 10), seed: 0)
        XCTAssertEqual(net.parameterCount, 272_474)
        XCTAssertEqual(net.prunableCount, 270_896)
        XCTAssertEqual(net.architecture.prunable.count, 22)
    }

    /// torchvision's vgg16 (138,357,544 parameters for 1000 classes, its state-dict names) and
    /// the CIFAR variant with BN (14,728,266 for 10 classes); counted from the architecture
    /// alone (no 0.5 GB of weights allocated).
    func testVGG16ParameterCountsAndNames() throws {
        let imagenet = try XCTUnwrap(ModelZoo.build("vgg16_imagenet", classes: 1000))
        XCTAssertEqual(imagenet.parameters.filter(\.isLearnable).reduce(0) { $0 + $1.count }, 138_357_544)
        XCTAssertEqual(imagenet.prunable.map(\.name).prefix(3), ["features.0.weight", "features.2.weight", "features.5.weight"])
        XCTAssertEqual(imagenet.prunable.map(\.name).suffix(3), ["classifier.0.weight", "classifier.3.weight", "classifier.6.weight"])
        XCTAssertEqual(imagenet.nodes[0].shape, [3, 224, 224])
        let cifar = try XCTUnwrap(ModelZoo.build("vgg16", classes: 10))
        XCTAssertEqual(cifar.parameters.filter(\.isLearnable).reduce(0) { $0 + $1.count }, 14_728_266)
        XCTAssertEqual(cifar.prunable.count, 14)
        XCTAssertEqual(cifar.prunable.last?.name, "classifier.weight")
    }

    func testSameSeedSameWeightsAndKaimingScale() {
        let a = Network(architecture: ModelZoo.conv6(classes: 10), seed: 3)
        let b = Network(architecture: ModelZoo.conv6(classes: 10), seed: 3)
        let c = Network(architecture: ModelZoo.conv6(classes: 10), seed: 4)
        XCTAssertEqual(a.parameters["convs1.7.weight"], b.parameters["convs1.7.weight"])
        XCTAssertNotEqual(a.parameters["convs1.7.weight"], c.parameters["convs1.7.weight"])
        // std of N(0, 2/fan_in) for linear.0 (fan_in 4096) over 1M samples: within 1%.
        let w = a.parameters["linear.0.weight"]!.data.map(Double.init)
        let std = (w.reduce(0) { $0 + $1 * $1 } / Double(w.count)).squareRoot()
        XCTAssertEqual(std, (2.0 / 4096).squareRoot(), accuracy: 0.01 * (2.0 / 4096).squareRoot())
    }

    /// Every oracle `init`, `weights` and `masks` file loads into its model by name and shape.
    func testOracleStateDictsLoad() throws {
        for dir in OracleLocation.cases() {
            let expected = try OracleCase.expected(dir)
            _ = try Oracle.network(dir, stateDict: "init", masks: false)
            let net = try Oracle.network(dir)
            XCTAssertEqual(net.prunableCount, expected["prunable_params"] as? Int, dir)
            XCTAssertEqual(net.keptCount, expected["kept_params"] as? Int, dir)
        }
    }

    func testRefusesWrongShapeUnknownAndMissingNames() throws {
        let net = Network(architecture: ModelZoo.resnet(depth: 20, classes: 10), seed: 0)
        var dict = net.stateDict()
        dict[0].tensor.shape = [dict[0].tensor.count]
        XCTAssertThrowsError(try net.loadStateDict(dict)) { error in
            XCTAssertTrue("\(error)".contains("conv1.weight"), "\(error)")
        }
        dict = net.stateDict()
        dict.append(("extra.weight", SafeTensor(Tensor(zeros: [1]))))
        XCTAssertThrowsError(try net.loadStateDict(dict)) { XCTAssertTrue("\($0)".contains("extra.weight")) }
        dict = net.stateDict()
        dict.removeLast()
        XCTAssertThrowsError(try net.loadStateDict(dict)) { XCTAssertTrue("\($0)".contains("linear.bias")) }
    }

    func testSafeTensorsRoundTripAndCorruption() throws {
        let net = Network(architecture: ModelZoo.resnet(depth: 20, classes: 10), seed: 1)
        let path = NSTemporaryDirectory() + "/mge-rt-\(UInt32.random(in: 0 ... .max)).safetensors"
        defer { unlink(path) }
        try SafeTensors.write(net.stateDict(), path: path)
        let back = Network(architecture: net.architecture, seed: 2)
        try back.loadStateDict(SafeTensors.read(path: path))
        XCTAssertEqual(back.parameters, net.parameters)
        var bytes = [UInt8](FileManager.default.contents(atPath: path)!)
        bytes.removeLast(10)
        try AtomicFile.write(bytes, to: path)
        XCTAssertThrowsError(try SafeTensors.read(path: path)) { XCTAssertTrue("\($0)".contains("outside the data"), "\($0)") }
    }
}
