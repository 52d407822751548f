import Foundation
import Kernels
import XCTest

/// Same script, same bits: a sparse training run in separate mge-script processes — one of them
/// beside two busy processes competing for the cores — writes byte-identical weight files and
/// prints the same evaluate loss. (When the dense/sparse conv kernel was chosen by timing both,
/// the choice, hence the rounding, followed the machine's load.) The net is small so the three
/// runs take seconds, and sparse enough that the cost model puts some layers on the sparse kernels
/// (checked, so the test keeps covering both kernels).
final class TrainingDeterminismTests: XCTestCase {
    private var scratch = ""

    override func setUpWithError() throws {
        scratch = NSTemporaryDirectory() + "/mge-determinism-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: scratch, withIntermediateDirectories: true)
    }

    override func tearDown() { try? FileManager.default.removeItem(atPath: scratch) }

    static let modules = "conv(3, 32, 3, padding: 1), batchnorm(), relu(), maxpool(2), conv(32, 64, 3, padding: 1), batchnorm(), relu(), "
        + "maxpool(2), conv(64, 64, 3, padding: 1), batchnorm(), relu(), avgpool(8), flatten(), linear(64, 10)"

    private func script(weights: String) -> String {
        """
        net = sequential(\(Self.modules), input: [3, 32, 32], seed: 3)
        prune(net, erk, 0.95, seed: 1)
        d = synthetic(classes: 10, n: 128, seed: 2)
        train(net, d, epochs: 1, batch: 64, lr: 0.05, seed: 4)
        print(evaluate(net, d).loss)
        save_weights(net, "\(weights)")
        """
    }

    /// Runs the script in a new mge-script process; returns its output and the weight file's bytes.
    private func run(_ binary: URL, name: String) throws -> (output: String, weights: Data) {
        let weights = scratch + "/\(name).safetensors", file = scratch + "/\(name).mge", out = scratch + "/\(name).out"
        try script(weights: weights).write(toFile: file, atomically: true, encoding: .utf8)
        FileManager.default.createFile(atPath: out, contents: nil)
        let p = Process()
        p.executableURL = binary
        p.arguments = [file]
        p.standardOutput = try FileHandle(forWritingTo: URL(fileURLWithPath: out))
        p.standardError = p.standardOutput
        try p.run()
        p.waitUntilExit()
        let output = (try? String(contentsOfFile: out, encoding: .utf8)) ?? ""
        XCTAssertEqual(p.terminationStatus, 0, "\(name): \(output)")
        // Everything printed but the "wrote <path>" line, which names this run's file.
        let printed = output.split(separator: "\n").filter { !$0.hasPrefix("wrote ") }.joined(separator: "\n")
        return (printed, try Data(contentsOf: URL(fileURLWithPath: weights)))
    }

    /// Two processes that spin on the cores until terminated (bounded: killed after the run, and
    /// they stop by themselves after 120 s).
    private func busyProcesses() throws -> [Process] {
        try (0 ..< 2).map { _ in
            let p = Process()
            p.executableURL = URL(fileURLWithPath: "/bin/sh")
            p.arguments = ["-c", "end=$(($(date +%s) + 120)); while [ $(date +%s) -lt $end ]; do :; done"]
            try p.run()
            return p
        }
    }

    func testSparseTrainingGivesTheSameBytesInEveryProcessAtAnyLoad() throws {
        guard let binary = TestPaths.product("mge-script") else { throw XCTSkip("mge-script is not built") }

        // The cost model puts some conv of the pruned net on the sparse kernels.
        let architecture = try ModelZoo.sequential([
            .conv(inChannels: 3, outChannels: 32, kernel: 3, stride: 1, padding: 1, groups: 1, bias: false, name: nil), .batchNorm(name: nil), .relu, .maxPool(kernel: 2),
            .conv(inChannels: 32, outChannels: 64, kernel: 3, stride: 1, padding: 1, groups: 1, bias: false, name: nil), .batchNorm(name: nil), .relu, .maxPool(kernel: 2),
            .conv(inChannels: 64, outChannels: 64, kernel: 3, stride: 1, padding: 1, groups: 1, bias: false, name: nil), .batchNorm(name: nil), .relu,
            .avgPool(kernel: 8), .flatten, .linear(inFeatures: 64, outFeatures: 10, bias: true, name: nil),
        ], input: [3, 32, 32])
        let net = Network(architecture: architecture, seed: 3)
        try prune(net, .erk, sparsity: 0.95, seed: 1)
        var sparseLayers = 0
        for node in architecture.nodes {
            guard case let .conv(c) = node.op, let mask = net.masks[node.name + ".weight"] else { continue }
            let s = architecture.nodes[node.inputs[0]].shape
            let g = ConvGeometry(batch: 64, inChannels: c.inChannels, height: s[1], width: s[2], outChannels: c.outChannels,
                                 kernel: c.kernel, stride: c.stride, padding: c.padding)
            let kept = mask.reduce(0) { $0 + Int($1) }
            if ConvKernelChoice.Operation.allCases.contains(where: { ConvKernelChoice.prefersSparse(g, kept: kept, $0) }) { sparseLayers += 1 }
        }
        XCTAssertGreaterThan(sparseLayers, 0, "no layer of the test net runs on the sparse kernels: the test would not cover them")

        let first = try run(binary, name: "first")
        let second = try run(binary, name: "second")
        let busy = try busyProcesses()
        defer { for p in busy where p.isRunning { p.terminate() } }
        let loaded = try run(binary, name: "loaded")
        for p in busy { p.terminate(); p.waitUntilExit() }

        XCTAssertTrue(first.output.contains("total   56800  2840"), first.output)  // pruned as intended
        XCTAssertEqual(second.output, first.output, "evaluate loss of a second process")
        XCTAssertEqual(loaded.output, first.output, "evaluate loss of a process beside two busy ones")
        XCTAssertTrue(second.weights == first.weights, "weight files of two processes differ")
        XCTAssertTrue(loaded.weights == first.weights, "weight file of a process beside two busy ones differs")
    }
}
