/// Buffer helpers of the gradient engine (`FirstOrderPass`) and its kernels' callers: arrays
/// filled by a kernel, base addresses that exist for empty arrays too, elementwise loops split
/// over the cores. (`Autodiff` is also the namespace the test suite's reference tape extends.)
enum Autodiff {
    /// An array of `count` values written by `body` (zeroed first when asked: backward kernels accumulate).
    @inline(__always)
    static func buffer<S: NNScalar>(_ count: Int, zeroed: Bool = false, _ body: (UnsafeMutablePointer<S>) -> Void) -> [S] {
        if count == 0 { return [] }
        return [S](unsafeUninitializedCapacity: count) { buf, initialized in
            guard let base = buf.baseAddress else { initialized = 0; return }
            if zeroed { base.initialize(repeating: 0, count: count) }
            body(base)
            initialized = count
        }
    }

    /// Never dereferenced: stands in for the base address of an empty array, which kernels loop over zero times.
    private static let emptyPlaceholder = UnsafeMutableRawPointer.allocate(byteCount: 64, alignment: 64)

    @inline(__always) static func base<T>(_ b: UnsafeBufferPointer<T>) -> UnsafePointer<T> {
        b.baseAddress ?? UnsafePointer(emptyPlaceholder.assumingMemoryBound(to: T.self))
    }

    @inline(__always) static func base<T>(_ b: UnsafeMutableBufferPointer<T>) -> UnsafeMutablePointer<T> {
        b.baseAddress ?? emptyPlaceholder.assumingMemoryBound(to: T.self)
    }

    /// Runs `body` over `0..<count` split across cores when the array is large enough to pay
    /// for the thread hop (elementwise passes over activations are memory-bound; two cores help).
    @inline(__always) static func elementwise(_ count: Int, _ body: (Range<Int>) -> Void) {
        Parallel.forChunks(count, costPerItem: 1, body)
    }

    /// `body` on the array's storage, or on nil when there is no array (an output not wanted).
    static func withOptionalPointer<S, R>(_ array: inout [S]?, _ body: (UnsafeMutablePointer<S>?) -> R) -> R {
        guard var values = array else { return body(nil) }
        array = nil  // keep the buffer uniquely referenced so writing into it does not copy
        defer { array = values }
        return values.withUnsafeMutableBufferPointer { body(base($0)) }
    }
}
