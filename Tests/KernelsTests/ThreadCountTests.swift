import XCTest
@testable import Kernels

/// Results must not depend on how many threads compute them: a `--jobs N` sweep worker runs with
/// cores / N threads and must write the rows one process writes. Each pruner's scores and masks,
/// and a graph's topometrics, with 1 thread and with 2 (and 3, more than this machine's cores),
/// compared bit for bit.
final class ThreadCountTests: XCTestCase {
    override func tearDown() { Parallel.threads = Parallel.cores }

    /// Stride-1 3×3 convs (the shifted GEMM path), a stride-2 conv (im2col), BN, a linear
    /// layer, and batches large enough that the weight gradient has several chunks.
    static func network(seed: UInt64) -> Network {
        var b = ArchitectureBuilder(input: [3, 32, 32])
        var x = b.conv("c1", 0, out: 8, stride: 1, bias: true)
        x = b.relu(b.batchNorm("b1", x))
        x = b.conv("c2", x, out: 8, stride: 2)
        x = b.relu(b.batchNorm("b2", x))
        x = b.conv("c3", x, out: 12, stride: 1)
        x = b.relu(b.batchNorm("b3", x))
        x = b.avgPool(x, kernel: 16)
        x = b.flatten(x)
        _ = b.linear("fc", x, out: 10)
        return Network(architecture: b.build(name: "threads32", classes: 10), seed: seed)
    }

    private func pruned(_ pruner: Pruner, threads: Int, data: Dataset) throws -> (masks: [String: [UInt8]], scores: [[Float]]) {
        Parallel.threads = threads
        let net = Self.network(seed: 3)
        let report = try prune(net, pruner, sparsity: 0.9, seed: 5, data: data, options: PruneOptions(keepScores: true))
        return (net.masks, try XCTUnwrap(report.scores).map(\.tensor.data))
    }

    func testGradientPrunersGiveTheSameScoresAndMasksWithAnyThreadCount() throws {
        let data = try Dataset.synthetic(classes: 10, n: 200, seed: 4)
        let pruners: [(String, Pruner)] = [
            ("snip", .snip(SnipOptions(batch: 40))),
            ("grasp", .grasp(GraspOptions(samplesPerClass: 4))),
            ("synflow", .synflow(SynflowOptions(rounds: 5))),
            ("prospr", .prospr(ProsprOptions(steps: 2, batch: 40))),
        ]
        for (name, pruner) in pruners {
            let one = try pruned(pruner, threads: 1, data: data)
            for threads in [2, 3] {
                let many = try pruned(pruner, threads: threads, data: data)
                let differing = zip(one.scores.joined(), many.scores.joined()).filter { $0.bitPattern != $1.bitPattern }.count
                XCTAssertEqual(one.scores.map(\.count), many.scores.map(\.count), name)
                XCTAssertEqual(differing, 0, "\(name): scores with 1 and \(threads) threads must be bit-identical")
                XCTAssertTrue(one.masks == many.masks, "\(name): masks with 1 and \(threads) threads")
            }
        }
    }

    func testTopometricsAreTheSameWithAnyThreadCount() throws {
        let net = Self.network(seed: 8)
        try prune(net, .erk, sparsity: 0.7, seed: 2)
        let graph = try unroll(net)
        Parallel.threads = 1
        let one = try topometrics(graph)
        for threads in [2, 3] {
            Parallel.threads = threads
            let many = try topometrics(graph)
            XCTAssertEqual("\(one)", "\(many)", "topometrics with 1 and \(threads) threads")
        }
    }

    /// A net sparse enough (ERK 0.95) that the cost model runs some convs on the sparse kernels.
    static func sparseNetwork() throws -> Network {
        let architecture = try ModelZoo.sequential([
            .conv(inChannels: 3, outChannels: 32, kernel: 3, stride: 1, padding: 1, groups: 1, bias: false, name: nil), .batchNorm(name: nil), .relu,
            .conv(inChannels: 32, outChannels: 64, kernel: 3, stride: 2, padding: 1, groups: 1, bias: false, name: nil), .batchNorm(name: nil), .relu,
            .conv(inChannels: 64, outChannels: 64, kernel: 3, stride: 2, padding: 1, groups: 1, bias: false, name: nil), .batchNorm(name: nil), .relu,
            .avgPool(kernel: 8), .flatten, .linear(inFeatures: 64, outFeatures: 10, bias: true, name: nil),
        ], input: [3, 32, 32])
        let net = Network(architecture: architecture, seed: 3)
        try prune(net, .erk, sparsity: 0.95, seed: 1)
        return net
    }

    /// Training (forward, backward, SGD on the chosen dense or sparse kernels) and evaluation
    /// give the same bits with 1, 2 and 3 threads: a `--jobs` worker trains what one process does.
    func testTrainingAndEvaluationGiveTheSameBitsWithAnyThreadCount() throws {
        let data = try Dataset.synthetic(classes: 10, n: 64, seed: 6)
        var runs: [(weights: [[Float]], evaluation: EvaluationResult)] = []
        for threads in [1, 2, 3] {
            Parallel.threads = threads
            let net = try Self.sparseNetwork()
            var options = TrainingOptions.recipe(for: net.architecture, data: data)
            options.epochs = 1; options.batchSize = 32; options.seed = 2
            _ = try Trainer(network: net, data: data, options: options).run()
            let weights = net.architecture.parameters.map { net.parameters[$0.name]?.data ?? [] }
            runs.append((weights, try Evaluation.evaluate(net, on: data)))
        }
        for (i, threads) in [2, 3].enumerated() {
            XCTAssertTrue(runs[i + 1].weights == runs[0].weights, "trained weights with 1 and \(threads) threads")
            XCTAssertEqual(runs[i + 1].evaluation.loss.bitPattern, runs[0].evaluation.loss.bitPattern, "evaluate loss with 1 and \(threads) threads")
        }
        XCTAssertTrue(runs[0].evaluation.loss.isFinite)
    }

    func testDeterministicReductionCombinesChunksInOrder() {
        // Summing 1e16, then many 1s, in chunk order: a different grouping would give another
        // Double. The result must be the same for every thread count.
        let values = [1e16] + [Double](repeating: 1, count: 9_999)
        var sums: [Double] = []
        for threads in [1, 2, 3, 4] {
            Parallel.threads = threads
            sums.append(Parallel.reduce(values.count, grain: 100, 0.0,
                                        partial: { r in r.reduce(0.0) { $0 + values[$1] } }, combine: +))
        }
        let sequentialByChunk = stride(from: 0, to: values.count, by: 100)
            .map { c in (c ..< min(values.count, c + 100)).reduce(0.0) { $0 + values[$1] } }
            .reduce(0.0, +)
        XCTAssertEqual(Set(sums), [sequentialByChunk])
    }
}
