import CBLAS
import Foundation

/// How fast this machine runs the kernels now, as one number: the seconds of a fixed probe
/// kernel, spread over the kernels' threads as a sweep's work is. `--plan` scales its cost
/// model (`PlanCost`, seconds at `reference`) by probe / `reference`, so its figures follow the
/// machine's current speed (other processes on the shared cores) while everything else about
/// them is a fixed function of the sweep.
///
/// The probe mixes what a sweep point spends its time on: an sgemm (training's and the
/// pruners' convolutions) and a gather over a table larger than the caches (the eigen-solver's
/// sparse products, unroll and the graph metrics). Its median was 13.8 ms on the 2 shared cores
/// at load 4.6–6.3 (from 3.4 to 25 ms, probe to probe); `probe` returns the median of its
/// repetitions, so a burst of load in one of them does not move it (a burst over the whole
/// probe does: `--plan` takes the median of three probes spread over its own work).
public enum MachineSpeed {
    /// Gather table: 2 M doubles (16 MB) read through 2 M pseudo-random indices (8 MB).
    static let tableSize = 1 << 21
    static let gathers = 1 << 21
    /// sgemm size and count per repetition.
    static let gemmSize = 128
    static let gemmCount = 8

    private static let tables: (values: [Double], indices: [Int32], a: [Float], b: [Float]) = {
        var rng = SeededGenerator(seed: 7)
        let values = (0 ..< tableSize).map { _ in rng.uniform() }
        let indices = (0 ..< gathers).map { _ in Int32(truncatingIfNeeded: Int(rng.next() % UInt64(tableSize))) }
        let n = gemmSize * gemmSize
        let a = (0 ..< n).map { _ in Float(rng.uniform() - 0.5) }
        let b = (0 ..< n).map { _ in Float(rng.uniform() - 0.5) }
        return (values, indices, a, b)
    }()

    /// One repetition of the probe kernel, seconds (wall).
    static func once() -> Double {
        let t = tables
        let chunks = 16, per = gathers / chunks, n = Int32(gemmSize)
        let start = DispatchTime.now().uptimeNanoseconds
        var sums = [Double](repeating: 0, count: chunks + gemmCount)
        sums.withUnsafeMutableBufferPointer { out in
            let sums = out
            t.values.withUnsafeBufferPointer { v in
            t.indices.withUnsafeBufferPointer { idx in
            t.a.withUnsafeBufferPointer { a in
            t.b.withUnsafeBufferPointer { b in
                Parallel.forChunks(chunks + gemmCount, grain: 1) { _, range in
                    for c in range {
                        if c < chunks {
                            var s = 0.0
                            for i in c * per ..< (c + 1) * per { s += v[Int(idx[i])] }
                            sums[c] = s
                        } else {
                            var y = [Float](repeating: 0, count: gemmSize * gemmSize)
                            y.withUnsafeMutableBufferPointer { y in
                                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1, a.baseAddress, n,
                                            b.baseAddress, n, 0, y.baseAddress, n)
                            }
                            sums[c] = Double(y[0])
                        }
                    }
                }
            }}}}
        }
        let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        // Keep the work observable (the sums are otherwise dead).
        if sums.reduce(0, +).isNaN { return seconds * 2 }
        return seconds
    }

    /// Median seconds of `repetitions` runs of the probe kernel after one warm-up run.
    public static func probe(repetitions: Int = 25) -> Double {
        _ = once()
        var times = (0 ..< max(1, repetitions)).map { _ in once() }
        times.sort()
        return times[times.count / 2]
    }

    /// The probe's median of the calibration runs of `PlanCost` (scripts/calibrate-plan), on
    /// this project's machine kind: what a factor of 1 means.
    public static let reference = 0.01382
}
