// Benchmarks of the numeric kernels (run by scripts/bench-nn, always in release):
// ResNet-20 forward+backward on a batch of 128, conv layers against OpenBLAS sgemm's own rate.
// With `--prune NAME` (scripts/bench-prune): one pruner's time and peak memory instead;
// with `--data-free`: the data-free pruners on every model; with `--conv-kernels`: dense
// against sparse conv kernels per layer shape and density (how `ConvKernelChoice` was calibrated).
import Foundation
import Kernels
import Runtime

func now() -> Double {
    var t = timespec()
    clock_gettime(CLOCK_MONOTONIC, &t)
    return Double(t.tv_sec) + Double(t.tv_nsec) * 1e-9
}

func median(_ xs: [Double]) -> Double {
    let s = xs.sorted()
    return s.isEmpty ? .nan : (s.count % 2 == 1 ? s[s.count / 2] : (s[s.count / 2 - 1] + s[s.count / 2]) / 2)
}

func cpuNow() -> Double {
    var t = timespec()
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t)
    return Double(t.tv_sec) + Double(t.tv_nsec) * 1e-9
}

/// Median CPU seconds (all threads) of the last `timeIt` runs: less sensitive than wall time
/// to other processes competing for the cores.
var lastCPUMedian = 0.0

/// Median seconds of `body` over `runs` runs after one warm-up.
func timeIt(runs: Int, _ body: () throws -> Void) rethrows -> Double {
    try body()
    var times: [Double] = [], cpu: [Double] = []
    for _ in 0 ..< runs {
        let t0 = now(), c0 = cpuNow()
        try body()
        times.append(now() - t0); cpu.append(cpuNow() - c0)
    }
    lastCPUMedian = median(cpu)
    return median(times)
}

/// A new array of `shape`'s size written by `body` (zeroed first for kernels that accumulate).
func output(_ shape: [Int], zeroed: Bool = false, _ body: (UnsafeMutablePointer<Float>) -> Void) -> [Float] {
    let count = shape.reduce(1, *)
    return [Float](unsafeUninitializedCapacity: count) { buffer, initialized in
        guard let base = buffer.baseAddress else { initialized = 0; return }
        if zeroed { base.initialize(repeating: 0, count: count) }
        body(base)
        initialized = count
    }
}

func peakMemoryMB() -> Double {
    var usage = rusage()
    getrusage(RUSAGE_SELF.rawValue, &usage)
    return Double(usage.ru_maxrss) / 1024  // kilobytes on Linux
}

func randomTensor(_ shape: [Int], seed: UInt64) -> Tensor {
    var rng = SeededGenerator(seed: seed)
    return Tensor(shape: shape, data: (0 ..< shape.reduce(1, *)).map { _ in Float(rng.normal()) })
}

Startup.prepare()  // as mge and mge-script: OpenBLAS kernels, allocator settings
Progress.reporter = nil  // no bars in the figures
print("OpenBLAS kernels: \(BLASKernels.coreName)")
let arguments = CommandLine.arguments
let runs = arguments.firstIndex(of: "--runs").flatMap { Int(arguments[$0 + 1]) } ?? 7
let model = arguments.firstIndex(of: "--model").map { arguments[$0 + 1] } ?? "resnet20"
let batch = 128

if arguments.contains("--conv-kernels") {
    ConvKernelChoiceBench.run(runs: max(1, runs), batch: arguments.firstIndex(of: "--batch").flatMap { Int(arguments[$0 + 1]) } ?? batch)
    exit(0)
}

if let i = arguments.firstIndex(of: "--probe-check") {
    do { try PlanCostBench.probeCheck(rounds: Int(arguments[i + 1]) ?? 5) } catch { print("error: \(error)"); exit(1) }
    exit(0)
}

if arguments.contains("--plan-costs") {
    func list(_ flag: String, _ fallback: [String]) -> [String] {
        arguments.firstIndex(of: flag).map { arguments[$0 + 1].split(separator: ",").map(String.init) } ?? fallback
    }
    do {
        try PlanCostBench.run(models: list("--models", ["conv6", "resnet20", "wrn28_2"]), pruners: list("--pruners", ["uniform", "erk", "snip"]),
                              sparsities: list("--sparsities", ["0.98", "0.99"]).compactMap(Double.init),
                              measure: !arguments.contains("--no-measure"), train: arguments.contains("--train"))
    } catch {
        print("error: \(error)")
        exit(1)
    }
    exit(0)
}

if arguments.contains("--data-free") {
    do {
        print(DataFreePruningBenchmark.table(try DataFreePruningBenchmark.run(repeats: max(1, runs))))
        exit(0)
    } catch {
        FileHandle.standardError.write("mge-bench: \(error)\n".data(using: .utf8)!)
        exit(1)
    }
}

// `--prune NAME`: time one pruner on the model at `--sparsity` (default 0.98) on synthetic
// CIFAR-shaped data, then exit. One pruner per process, so the peak memory is that pruner's.
if let index = arguments.firstIndex(of: "--prune") {
    let name = index + 1 < arguments.count ? arguments[index + 1] : ""
    let sparsity = arguments.firstIndex(of: "--sparsity").flatMap { Double(arguments[$0 + 1]) } ?? 0.98
    do {
        guard var pruner = Pruner.named(name) else {
            throw NNError.invalidArgument(operation: "mge-bench", detail: "unknown pruner \(name); one of \(Pruner.names.joined(separator: ", "))")
        }
        if let b = arguments.firstIndex(of: "--batch").flatMap({ Int(arguments[$0 + 1]) }) {
            switch pruner {
            case .snip: pruner = .snip(SnipOptions(batch: b))
            case let .prospr(o): pruner = .prospr(ProsprOptions(steps: o.steps, learningRate: o.learningRate, momentum: o.momentum, batch: b))
            default: break
            }
        }
        guard let arch = ModelZoo.build(model, classes: 10) else { throw NNError.invalidArgument(operation: "mge-bench", detail: "unknown model \(model)") }
        let data = try Dataset.synthetic(classes: 10, n: 4096, seed: 1)
        var seconds: [Double] = []
        var kept = 0
        for run in 0 ..< max(1, runs) {
            let network = Network(architecture: arch, seed: 0)
            let t0 = now()
            let report = try prune(network, pruner, sparsity: sparsity, seed: UInt64(run), data: data)
            seconds.append(now() - t0)
            kept = report.kept
        }
        print(String(format: "%@ %@ %.2f: median %.2f s, best %.2f s over %d runs, kept %d, peak resident memory %.0f MB",
                     model, name, sparsity, median(seconds), seconds.min() ?? .nan, seconds.count, kept, peakMemoryMB()))
        exit(0)
    } catch {
        FileHandle.standardError.write("mge-bench: \(error)\n".data(using: .utf8)!)
        exit(1)
    }
}

do {
    guard let arch = ModelZoo.build(model, classes: 10) else { throw NNError.invalidArgument(operation: "mge-bench", detail: "unknown model \(model)") }
    let network = Network(architecture: arch, seed: 0)
    let x = randomTensor([batch, 3, 32, 32], seed: 1)
    var rng = SeededGenerator(seed: 2)
    let labels = (0 ..< batch).map { _ in Int(rng.next() % 10) }

    let train = try timeIt(runs: runs) { _ = try Execution.lossAndGradients(network, x: x, labels: labels) }
    print(String(format: "%@ forward+backward batch %d: median %.1f ms, %.0f images/s (CPU time %.1f ms over %d cores)", model, batch,
                 train * 1e3, Double(batch) / train, lastCPUMedian * 1e3, Parallel.threads))
    if arguments.contains("--train-only") { exit(0) }  // for profiling the training step alone
    let inference = try timeIt(runs: runs) { _ = try Execution.forward(network, x: x, train: false) }
    print(String(format: "%@ forward (eval) batch %d: median %.1f ms, %.0f images/s", model, batch, inference * 1e3, Double(batch) / inference))

    // OpenBLAS's own rate on a square GEMM, on the same threads setting the kernels use.
    let n = 1024
    let a = randomTensor([n, n], seed: 3), b = randomTensor([n, n], seed: 4)
    var c = [Float](repeating: 0, count: n * n)
    let gemmOne = timeIt(runs: 5) {
        a.data.withUnsafeBufferPointer { pa in b.data.withUnsafeBufferPointer { pb in c.withUnsafeMutableBufferPointer { pc in
            Float.gemm(transposeA: false, transposeB: false, m: n, n: n, k: n, alpha: 1, a: pa.baseAddress!, lda: n,
                       b: pb.baseAddress!, ldb: n, beta: 0, c: pc.baseAddress!, ldc: n)
        } } }
    }
    let gemmFlops = 2 * Double(n * n * n) / gemmOne
    print(String(format: "sgemm %dx%dx%d, one thread: %.1f GFLOP/s (x%d cores = %.1f peak)", n, n, n, gemmFlops / 1e9,
                 Parallel.threads, gemmFlops * Double(Parallel.threads) / 1e9))

    // Conv layers of ResNet-20 (forward, input gradient, weight gradient) in GFLOP/s.
    for (cin, cout, size, stride) in [(16, 16, 32, 1), (32, 32, 16, 1), (64, 64, 8, 1), (16, 32, 32, 2)] {
        let g = ConvGeometry(batch: batch, inChannels: cin, height: size, width: size, outChannels: cout, kernel: 3,
                             stride: stride, padding: 1)
        let xs = randomTensor(g.inputShape, seed: 5).data, ws = randomTensor(g.weightShape, seed: 6).data
        let dy = randomTensor(g.outputShape, seed: 7).data
        let flops = 2 * Double(g.batch * g.outChannels * g.outHeight * g.outWidth * cin * 9)
        // Each kernel into a fresh output array, as the gradient engine calls them.
        let f = timeIt(runs: runs) {
            _ = output(g.outputShape) { y in Conv2D.forward(g, x: xs, weight: ws, y: y) }
        }
        let bi = timeIt(runs: runs) {
            _ = output(g.inputShape, zeroed: true) { dx in Conv2D.backwardInput(g, dy: dy, weight: ws, dx: dx) }
        }
        let bw = timeIt(runs: runs) {
            _ = output(g.weightShape, zeroed: true) { dw in Conv2D.backwardWeight(g, x: xs, dy: dy, dw: dw) }
        }
        print(String(format: "conv %d->%d %dx%d s%d: forward %.1f, input grad %.1f, weight grad %.1f GFLOP/s (%.0f%%, %.0f%%, %.0f%% of sgemm peak)",
                     cin, cout, size, size, stride, flops / f / 1e9, flops / bi / 1e9, flops / bw / 1e9,
                     100 * flops / f / (gemmFlops * Double(Parallel.threads)),
                     100 * flops / bi / (gemmFlops * Double(Parallel.threads)),
                     100 * flops / bw / (gemmFlops * Double(Parallel.threads))))
    }
    print(String(format: "peak resident memory: %.0f MB", peakMemoryMB()))
} catch {
    FileHandle.standardError.write("mge-bench: \(error)\n".data(using: .utf8)!)
    exit(1)
}
