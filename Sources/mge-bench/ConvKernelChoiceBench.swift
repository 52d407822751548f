import Foundation
import Kernels

/// `mge-bench --conv-kernels`: times the dense (`Conv2D`) and sparse (`SparseConv2D`) kernels of
/// every conv shape of ResNet-20/32, WRN-28-2 and CONV-6 at several kept fractions, on one
/// thread, in CPU time (less sensitive than wall time to other processes on the cores). It is
/// how the cost model of `ConvKernelChoice` was calibrated: rerun it on a new machine kind and
/// compare the `model` column (the cost model's pick) with the `faster` column (the measured one).
/// Output: one CSV row per (shape, operation, density).
enum ConvKernelChoiceBench {
    /// (in, out, size, kernel, stride, padding): the groups = 1 convs of the zoo's CIFAR nets.
    static let shapes: [(Int, Int, Int, Int, Int, Int)] = [
        (3, 16, 32, 3, 1, 1), (16, 16, 32, 3, 1, 1), (16, 32, 32, 3, 2, 1), (32, 32, 16, 3, 1, 1),
        (32, 64, 16, 3, 2, 1), (64, 64, 8, 3, 1, 1), (16, 32, 32, 1, 2, 0), (32, 64, 16, 1, 2, 0),  // ResNet-20/32
        (16, 32, 32, 3, 1, 1), (32, 32, 32, 3, 1, 1), (32, 64, 32, 3, 2, 1), (64, 64, 16, 3, 1, 1),
        (64, 128, 16, 3, 2, 1), (128, 128, 8, 3, 1, 1), (16, 32, 32, 1, 1, 0), (64, 128, 16, 1, 2, 0),  // WRN-28-2
        (3, 64, 32, 3, 1, 1), (64, 64, 32, 3, 1, 1), (64, 128, 16, 3, 1, 1), (128, 128, 16, 3, 1, 1),
        (128, 256, 8, 3, 1, 1), (256, 256, 8, 3, 1, 1),  // CONV-6
        (16, 16, 14, 3, 1, 1), (32, 32, 7, 3, 1, 1), (64, 64, 4, 3, 1, 1),  // rows not of whole 8-float vectors
    ]
    static let densities = [0.01, 0.02, 0.05, 0.1, 0.15, 0.2, 0.3]

    /// Median CPU seconds of `body` over `runs` runs after one warm-up.
    static func cpuTime(_ runs: Int, _ body: () -> Void) -> Double {
        body()
        var times: [Double] = []
        for _ in 0 ..< runs {
            let c0 = cpuNow()
            body()
            times.append(cpuNow() - c0)
        }
        return median(times)
    }

    static func run(runs: Int, batch: Int) {
        Parallel.threads = 1
        print("op,in,out,size,kernel,stride,padding,density,kept,dense_ms,sparse_ms,faster,model")
        for (cin, cout, size, k, s, p) in shapes {
            let g = ConvGeometry(batch: batch, inChannels: cin, height: size, width: size, outChannels: cout, kernel: k,
                                 stride: s, padding: p)
            let weightCount = g.weightShape.reduce(1, *)
            let x = randomTensor(g.inputShape, seed: 1).data, dy = randomTensor(g.outputShape, seed: 2).data
            let w = randomTensor(g.weightShape, seed: 3).data
            var y = [Float](repeating: 0, count: g.outputShape.reduce(1, *))
            var dx = [Float](repeating: 0, count: g.inputShape.reduce(1, *))
            var dw = [Float](repeating: 0, count: weightCount)
            let dense: [Double] = [
                cpuTime(runs) { Conv2D.forward(g, x: x, weight: w, y: &y) },
                cpuTime(runs) { Conv2D.backwardInput(g, dy: dy, weight: w, dx: &dx) },
                cpuTime(runs) { Conv2D.backwardWeight(g, x: x, dy: dy, dw: &dw) },
            ]
            for density in densities {
                var rng = SeededGenerator(seed: 4)
                let mask: [Float] = (0 ..< weightCount).map { _ in rng.uniform() < density ? 1 : 0 }
                guard let taps = mask.withUnsafeBufferPointer({ SparseConvTaps(g, kept: $0) }) else { continue }
                let masked = zip(w, mask).map { $0 * $1 }
                let sparse: [Double] = [
                    cpuTime(runs) { SparseConv2D.forward(taps, x: x, weight: masked, y: &y, accumulate: false) },
                    cpuTime(runs) { SparseConv2D.backwardInput(taps, dy: dy, weight: masked, dx: &dx, accumulate: false) },
                    cpuTime(runs) { SparseConv2D.backwardWeight(taps, x: x, dy: dy, dw: &dw) },
                ]
                for (op, name) in ["forward", "input", "weight"].enumerated() {
                    let model = ConvKernelChoice.prefersSparse(g, kept: taps.count, ConvKernelChoice.Operation(rawValue: op) ?? .forward)
                    print(String(format: "%@,%d,%d,%d,%d,%d,%d,%.2f,%d,%.3f,%.3f,%@,%@", name, cin, cout, size, k, s, p, density,
                                 taps.count, dense[op] * 1e3, sparse[op] * 1e3, sparse[op] < dense[op] ? "sparse" : "dense",
                                 model ? "sparse" : "dense"))
                }
            }
        }
    }
}
