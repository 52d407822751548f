import Foundation
import Kernels
import OracleSupport
import XCTest
@testable import Runtime

/// The network, prune and data builtins against the oracle cases (`../shared/oracle`, or
/// `$MGE_ORACLE`), run in-process, and the messages that depend on the environment
/// (default dataset locations), run as a child process with a controlled environment.
final class NetworkBuiltinTests: XCTestCase {
    private func oracleCase(_ name: String) throws -> String { try OracleLocation.directory(of: name) }

    /// An integer field of expected.json.
    private func expectedInt(_ dir: String, _ key: String) throws -> Int {
        try XCTUnwrap(try OracleCase.expected(dir)[key] as? Int, "\(key) in \(dir)")
    }

    /// Runs `source` in a fresh interpreter; fails the test on an error.
    private func run(_ source: String, file: StaticString = #filePath, line: UInt = #line) -> String {
        let session = Session()
        XCTAssertEqual(session.run(source), .ok, session.err, file: file, line: line)
        return session.out
    }

    /// The snip case's init weights and batch: the training-mode loss is the reference's `loss0`.
    func testOracleSnipLossMatchesReference() throws {
        let dir = try oracleCase("Resnet-20-CIFAR-10-snip-0.98-s0")
        let out = run("""
            net = resnet20(dataset: cifar10)
            load_weights(net, "\(dir)/init.safetensors")
            b = load_tensors("\(dir)/batch.safetensors")
            print(b.x0.shape, b.y0.count, b.loss0.values[0])
            print(loss(net, b.x0, b.y0))
            logits = forward(net, b.x0, train: true).values
            worst = 0
            ref = b.logits0.values
            for i in range(len(ref)) { worst = max(worst, abs(logits[i] - ref[i])) }
            print(worst)
            """)
        let lines = out.split(separator: "\n").map(String.init)
        XCTAssertEqual(lines.count, 3, out)
        guard lines.count == 3 else { return }
        XCTAssertTrue(lines[0].hasPrefix("[128, 3, 32, 32] 128 "), lines[0])
        let reference = try XCTUnwrap(Double(lines[0].split(separator: " ").last.map(String.init) ?? ""))
        let ours = try XCTUnwrap(Double(lines[1]))
        XCTAssertEqual(ours, reference, accuracy: 1e-4 * abs(reference), "loss \(ours) vs reference \(reference)")
        let worst = try XCTUnwrap(Double(lines[2]))
        XCTAssertLessThan(worst, 1e-3, "training-mode logits differ from the reference's logits0 by \(worst)")
    }

    /// Loading the oracle's pruned weights and masks reproduces its counts, and save → load
    /// round-trips them exactly.
    func testOracleWeightsAndMasksLoadAndRoundTrip() throws {
        for dir in try OracleLocation.directories(of: ["Resnet-20-CIFAR-10-erk-0.98-s0", "Resnet-32-CIFAR-100-snip-0.98-s0", "CONV-6-CIFAR-10-erk-0.98-s0"]) {
            let name = (dir as NSString).lastPathComponent
            let kept = try expectedInt(dir, "kept_params")
            let prunable = try expectedInt(dir, "prunable_params")
            let model = name.hasPrefix("Resnet-20") ? "resnet20" : name.hasPrefix("Resnet-32") ? "resnet32" : "conv6"
            let dataset = name.contains("CIFAR-100") ? "cifar100" : "cifar10"
            let tmp = NSTemporaryDirectory() + "mge-netbuiltins-\(getpid())-\(model)"
            defer { try? FileManager.default.removeItem(atPath: tmp + "-m.safetensors"); try? FileManager.default.removeItem(atPath: tmp + "-w.safetensors") }
            let out = run("""
                net = \(model)(dataset: \(dataset))
                load_weights(net, "\(dir)/weights.safetensors")
                load_masks(net, "\(dir)/masks.safetensors")
                print(net.kept, net.prunable, summary(net)[-1].kept)
                save_masks(net, "\(tmp)-m.safetensors")
                save_weights(net, "\(tmp)-w.safetensors")
                other = \(model)(dataset: \(dataset), seed: 9)
                load_masks(other, "\(tmp)-m.safetensors")
                load_weights(other, "\(tmp)-w.safetensors")
                x = batches(synthetic(n: 2), 2)[0].x
                print(other.kept, forward(other, x).values == forward(net, x).values)
                """)
            let lines = out.split(separator: "\n").filter { !$0.hasPrefix("wrote ") }.map(String.init)
            XCTAssertEqual(lines, ["\(kept) \(prunable) \(kept)", "\(kept) true"], name)
        }
    }

    /// A mismatched file leaves the network as it was and names the parameter and both shapes.
    func testMismatchedWeightsLeaveTheNetworkUnchanged() throws {
        let dir = try oracleCase("Resnet-32-CIFAR-100-snip-0.98-s0")
        let session = Session()
        XCTAssertEqual(session.run("net = resnet32(classes: 10)\nk = net.kept\n"), .ok)
        XCTAssertNotEqual(session.run("load_masks(net, \"\(dir)/masks.safetensors\")"), .ok)
        XCTAssertTrue(session.err.contains("parameter 'linear.weight' has shape 100×64, expected 10×64"), session.err)
        XCTAssertEqual(session.output("print(net.kept == k, density(net))"), "true 1.0\n")
    }

    /// Without data:, a data-driven pruner looks in the default locations and says what is missing.
    func testPruneWithoutDataNamesTheMissingFiles() throws {
        let binary = try XCTUnwrap(TestPaths.product("mge-script"), "build mge-script first")
        let empty = NSTemporaryDirectory() + "mge-empty-home-\(getpid())"
        try FileManager.default.createDirectory(atPath: empty, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: empty) }
        let process = Process()
        process.executableURL = binary
        process.arguments = ["-"]
        var environment = ProcessInfo.processInfo.environment
        environment["HOME"] = empty
        environment["MGE_DATA"] = empty + "/data"
        process.environment = environment
        let input = Pipe(), output = Pipe(), errors = Pipe()
        process.standardInput = input; process.standardOutput = output; process.standardError = errors
        try process.run()
        input.fileHandleForWriting.write(Data("net = resnet20()\nprune(net, snip, 0.9)\n".utf8))
        try input.fileHandleForWriting.close()
        let err = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        XCTAssertEqual(process.terminationStatus, 70)
        XCTAssertTrue(err.contains("prune: snip scores weights on training data; no data: was given and cifar10 is not available"), err)
        XCTAssertTrue(err.contains(empty + "/data/cifar10/data_batch_1.bin"), err)
        XCTAssertTrue(err.contains("cs.toronto.edu"), err)
        XCTAssertTrue(err.contains("download(\"cifar10\") fetches it (170.1 MB) into \(empty)/data/cifar10"), err)
        XCTAssertTrue(err.contains("data: synthetic(classes: 10)"), err)
    }

    /// CIFAR files of the right names but the wrong size are refused with the reason.
    func testMalformedCIFARIsRefused() throws {
        let dir = NSTemporaryDirectory() + "mge-bad-cifar-\(getpid())"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try Data(repeating: 7, count: 3074).write(to: URL(fileURLWithPath: dir + "/test_batch.bin"))
        let session = Session()
        XCTAssertNotEqual(session.run("cifar10(\"\(dir)\", split: \"test\")"), .ok)
        XCTAssertTrue(session.err.contains("test_batch.bin is malformed: its 3074 bytes are not a whole number of 3073-byte records"), session.err)

        try Data(repeating: 3, count: 3073 * 2).write(to: URL(fileURLWithPath: dir + "/test_batch.bin"))
        let ok = Session()
        XCTAssertEqual(ok.output("d = cifar10(\"\(dir)\", split: \"test\"); print(d.count, d.classes, batches(d, 2)[0].y.values)"),
                       "2 10 [3.0, 3.0]\n", ok.err)
    }

    /// A Ctrl-C before prune returns leaves the network unchanged (the front end reports it).
    func testInterruptedPruneLeavesTheNetworkUnchanged() throws {
        let session = Session()
        XCTAssertEqual(session.run("net = resnet20()"), .ok)
        Cancellation.request()
        defer { Cancellation.reset() }
        XCTAssertEqual(session.run("prune(net, erk, 0.9)"), .interrupted)
        Cancellation.reset()
        XCTAssertEqual(session.output("print(density(net))"), "1.0\n")
    }

    /// The gradient pruners are passed through to the kernels with their keywords and prune:
    /// the table's kept count is the network's, at least half of its 168 weights (the tie rules
    /// may keep more: grasp keeps 96 here) and fewer than all.
    func testGradientPrunersPassThrough() throws {
        let session = Session()
        XCTAssertEqual(session.run("net = toy(classes: 3)\nd = dataset(tensor([0.1] * 144, shape: [4, 1, 6, 6]), [0, 1, 2, 0])"), .ok)
        for call in ["prune(net, snip, 0.5, data: d, batch: 4)", "prune(net, synflow, 0.5, rounds: 2)",
                     "prune(net, grasp, 0.5, data: d, samples_per_class: 1, T: 2, reinit: false)",
                     "prune(net, prospr, 0.5, data: d, steps: 1, lr: 0.1, momentum: 0.5, batch: 4)"] {
            XCTAssertEqual(session.run("t = \(call)"), .ok, "\(call): \(session.err)")
            XCTAssertEqual(session.output("print(t[-1].kept == net.kept, t[-1].params, net.kept >= 84 and net.kept < 168)"),
                           "true 168 true\n", call)
            _ = session.run("net = toy(classes: 3)")
        }
    }

    /// Every network, prune and data builtin has help with a summary and an example.
    func testHelpIsFilledIn() {
        let interpreter = Interpreter()
        for name in ["conv6", "resnet20", "resnet32", "wrn28_2", "mobilenetv2", "toy", "params", "density", "forward", "loss",
                     "load_weights", "save_weights", "load_masks", "save_masks", "load_tensors", "save_tensors", "tensor",
                     "prune", "cifar10", "cifar100", "tinyimagenet", "synthetic", "dataset", "batches"] {
            guard let b = interpreter.builtins[name] else { XCTFail("no builtin \(name)"); continue }
            XCTAssertGreaterThan(b.summary.count, 20, name)
            XCTAssertTrue(b.example.contains(name) || name == "tensor", "\(name): example \(b.example)")
        }
        for name in Pruner.names { XCTAssertNotNil(interpreter.constants[name], name) }
    }
}
