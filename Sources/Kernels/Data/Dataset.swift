import Foundation

/// A labelled image dataset (SPEC §5), served as batches of Float NCHW tensors.
///
/// Storage is compact and batches are materialised on demand:
/// - CIFAR-10/100 and TinyImageNet keep their images as uint8 CHW (3,072 bytes each) and
///   normalise (and, for training, augment) only the samples of the batch being built;
/// - `synthetic` keeps only labels and regenerates each noise image from its own seeded stream;
/// - a dataset made from tensors is *pre-batched*: iteration yields exactly the given tensors,
///   in order, one batch per tensor, with no shuffling or augmentation.
public struct Dataset: Sendable {
    public enum Split: String, Sendable { case train, test }

    /// Display name (`CIFAR-10 train`).
    public let name: String
    public let classes: Int
    public let count: Int
    /// Per-sample shape, `[3, 32, 32]` for the image datasets.
    public let sampleShape: [Int]
    /// Training augmentation applied while batching, nil for none.
    public private(set) var augmentation: Augmentation?
    /// The per-channel normalisation applied to uint8 images, nil for datasets already in Float.
    public let normalization: Normalization?

    let storage: Storage

    enum Storage: Sendable {
        /// `pixels` holds `count` images of `sampleShape` bytes in CHW order.
        case bytes(pixels: [UInt8], labels: [Int])
        case synthetic(seed: UInt64, labels: [Int])
        case batches(images: [Tensor], labels: [[Int]])
        /// JPEG files decoded and transformed when batched (ImageNet: `Dataset.imageNet`).
        case jpegFiles(paths: [String], labels: [Int])
    }

    init(name: String, classes: Int, sampleShape: [Int], storage: Storage,
         augmentation: Augmentation?, normalization: Normalization?) {
        self.name = name
        self.classes = classes
        self.sampleShape = sampleShape
        self.storage = storage
        self.augmentation = augmentation
        self.normalization = normalization
        switch storage {
        case let .bytes(_, labels), let .synthetic(_, labels), let .jpegFiles(_, labels): count = labels.count
        case let .batches(_, labels): count = labels.reduce(0) { $0 + $1.count }
        }
    }

    /// True for datasets made from tensors: `batches` yields the given tensors as they are.
    public var isPreBatched: Bool { if case .batches = storage { return true } else { return false } }

    /// The same data with another augmentation (nil turns it off). Pre-batched datasets never augment.
    public func augmented(_ augmentation: Augmentation?) -> Dataset {
        var copy = self
        copy.augmentation = isPreBatched ? nil : augmentation
        return copy
    }

    /// The label of sample `index` (in storage order), nil when out of range.
    public func label(at index: Int) -> Int? {
        guard index >= 0, index < count else { return nil }
        switch storage {
        case let .bytes(_, labels), let .synthetic(_, labels), let .jpegFiles(_, labels): return labels[index]
        case let .batches(_, labels):
            var i = index
            for batch in labels {
                if i < batch.count { return batch[i] }
                i -= batch.count
            }
            return nil
        }
    }

    /// Every label in storage order.
    /// - Complexity: O(count).
    public var labels: [Int] {
        switch storage {
        case let .bytes(_, labels), let .synthetic(_, labels), let .jpegFiles(_, labels): return labels
        case let .batches(_, labels): return labels.flatMap { $0 }
        }
    }

    // MARK: Batching

    /// Iterates the dataset in batches of `size` (the last one may be smaller). With `shuffle`,
    /// the order is a seeded permutation; training augmentation draws from a stream of the same
    /// seed, so `seed` fixes every batch exactly. Pre-batched datasets ignore size and shuffle
    /// and yield their tensors in the given order.
    /// - Complexity: O(size · 3072) per batch; O(count) once for the shuffled order.
    public func batches(size: Int, shuffle: Bool = false, seed: UInt64 = 0) throws -> BatchSequence {
        guard size > 0 else { throw DatasetError.invalid("batch size must be positive, got \(size)") }
        var order: [Int] = []
        if !isPreBatched {
            order = Array(0 ..< count)
            if shuffle {
                var rng = SeededGenerator.stream(seed: seed, name: "data.shuffle")
                for i in stride(from: count - 1, to: 0, by: -1) {
                    let j = Int(RandomPruners.uniformIndex(below: UInt64(i + 1), &rng))
                    order.swapAt(i, j)
                }
            }
        }
        return BatchSequence(dataset: self, order: order, size: size, seed: seed)
    }

    /// The samples at `indices` (storage order) as one batch, without augmentation.
    /// - Complexity: O(indices.count · sample size).
    public func batch(indices: [Int]) throws -> Batch {
        if let bad = indices.first(where: { $0 < 0 || $0 >= count }) {
            throw DatasetError.invalid("sample index \(bad) is outside 0..<\(count) of \(name)")
        }
        var none: SeededGenerator? = nil
        return try materialize(indices, augmenting: &none)
    }

    /// Builds one batch. `rng` drives augmentation when the dataset has one.
    /// - Throws: only for a file-backed dataset, naming a file that cannot be decoded.
    func materialize(_ indices: [Int], augmenting rng: inout SeededGenerator?) throws -> Batch {
        let sampleSize = sampleShape.reduce(1, *)
        var data = [Float](repeating: 0, count: indices.count * sampleSize)
        var labels = [Int](repeating: 0, count: indices.count)
        switch storage {
        case let .bytes(pixels, allLabels):
            let channels = sampleShape[0], height = sampleShape[1], width = sampleShape[2]
            let scale = normalization ?? Normalization(mean: [Float](repeating: 0, count: channels),
                                                       std: [Float](repeating: 1, count: channels))
            for (b, index) in indices.enumerated() {
                labels[b] = allLabels[index]
                var placement = Placement.identity
                if let augmentation, var generator = rng {
                    placement = augmentation.draw(&generator)
                    rng = generator
                }
                let imageStart = index * sampleSize, outStart = b * sampleSize
                pixels.withUnsafeBufferPointer { src in
                    data.withUnsafeMutableBufferPointer { dst in
                        for c in 0 ..< channels {
                            let mean = scale.mean[c], std = scale.std[c]
                            let plane = imageStart + c * height * width
                            let outPlane = outStart + c * height * width
                            for y in 0 ..< height {
                                let sy = y + placement.dy
                                for x in 0 ..< width {
                                    let sx = (placement.flip ? width - 1 - x : x) + placement.dx
                                    // Outside the image is the zero padding of the raw (black) image,
                                    // which torchvision pads before ToTensor and Normalize.
                                    let byte: UInt8 = (sy >= 0 && sy < height && sx >= 0 && sx < width) ? src[plane + sy * width + sx] : 0
                                    dst[outPlane + y * width + x] = (Float(byte) / 255 - mean) / std
                                }
                            }
                        }
                    }
                }
            }
        case let .jpegFiles(paths, allLabels):
            for (b, index) in indices.enumerated() { labels[b] = allLabels[index] }
            try Dataset.decodeImageNet(paths, indices, normalization: normalization ?? .imageNet, display: name, into: &data)
        case let .synthetic(seed, allLabels):
            for (b, index) in indices.enumerated() {
                labels[b] = allLabels[index]
                var sampleRNG = SeededGenerator.stream(seed: seed, name: "data.synthetic.\(index)")
                for i in 0 ..< sampleSize { data[b * sampleSize + i] = Float(sampleRNG.normal()) }
            }
        case let .batches(images, batchLabels):
            // Only reached through `batch(indices:)`: gather from the concatenation.
            var starts: [Int] = []
            var running = 0
            for l in batchLabels { starts.append(running); running += l.count }
            for (b, index) in indices.enumerated() {
                var t = starts.count - 1
                while starts[t] > index { t -= 1 }
                let local = index - starts[t]
                labels[b] = batchLabels[t][local]
                for i in 0 ..< sampleSize { data[b * sampleSize + i] = images[t].data[local * sampleSize + i] }
            }
        }
        return Batch(images: Tensor(shape: [indices.count] + sampleShape, data: data), labels: labels)
    }
}

/// One batch: images `[n, C, H, W]` and their labels.
public struct Batch: Equatable, Sendable {
    public var images: Tensor
    public var labels: [Int]
    public var count: Int { labels.count }
}

/// Batches of a dataset, built one at a time as the iteration advances.
public struct BatchSequence: Sequence, Sendable {
    let dataset: Dataset
    let order: [Int]
    public let size: Int
    let seed: UInt64

    /// Number of batches one pass yields.
    public var batchCount: Int {
        if case let .batches(images, _) = dataset.storage { return images.count }
        return (order.count + size - 1) / size
    }

    public func makeIterator() -> Iterator {
        Iterator(sequence: self, position: 0,
                 augmentation: dataset.augmentation == nil ? nil : SeededGenerator.stream(seed: seed, name: "data.augment"))
    }

    public struct Iterator: IteratorProtocol {
        let sequence: BatchSequence
        var position: Int
        var augmentation: SeededGenerator?

        /// The next batch; a file-backed dataset (ImageNet) that meets an undecodable file ends
        /// the iteration here — library code iterates with `nextBatch()`, which throws instead.
        public mutating func next() -> Batch? { try? nextBatch() }

        /// The next batch, nil at the end.
        /// - Throws: `DatasetError.malformed` when a file-backed dataset meets a file it cannot decode.
        public mutating func nextBatch() throws -> Batch? {
            if case let .batches(images, labels) = sequence.dataset.storage {
                guard position < images.count else { return nil }
                defer { position += 1 }
                return Batch(images: images[position], labels: labels[position])
            }
            guard position < sequence.order.count else { return nil }
            let end = Swift.min(position + sequence.size, sequence.order.count)
            let indices = Array(sequence.order[position ..< end])
            position = end
            return try sequence.dataset.materialize(indices, augmenting: &augmentation)
        }
    }
}

/// Per-channel normalisation (x/255 − mean) / std, computed in Float32 as torchvision's
/// ToTensor + Normalize do.
public struct Normalization: Equatable, Sendable {
    public var mean: [Float]
    public var std: [Float]
    public init(mean: [Float], std: [Float]) { self.mean = mean; self.std = std }

    public static let cifar10 = Normalization(mean: [0.4914, 0.4822, 0.4465], std: [0.2023, 0.1994, 0.2010])
    public static let cifar100 = Normalization(mean: [0.5071, 0.4867, 0.4408], std: [0.2675, 0.2565, 0.2761])
    /// The reference's TinyImageNet statistics (its `tiny_imagenet.py`).
    public static let tinyImageNet = Normalization(mean: [0.48024578664982126, 0.44807218089384643, 0.3975477478649648],
                                                   std: [0.2769864069088257, 0.26906448510256, 0.282081906210584])
}

/// Training augmentation: random crop back to the original size from the image zero-padded by
/// `padding` pixels, then a horizontal flip with probability 1/2 (torchvision's
/// RandomCrop(32, padding=4) + RandomHorizontalFlip()).
public struct Augmentation: Equatable, Sendable {
    public var padding: Int
    public var horizontalFlip: Bool
    public init(padding: Int = 4, horizontalFlip: Bool = true) { self.padding = padding; self.horizontalFlip = horizontalFlip }
    public static let standard = Augmentation()

    /// Draws one sample's crop offset (each in −padding...padding) and flip.
    func draw(_ rng: inout SeededGenerator) -> Placement {
        let span = UInt64(2 * padding + 1)
        let dy = Int(RandomPruners.uniformIndex(below: span, &rng)) - padding
        let dx = Int(RandomPruners.uniformIndex(below: span, &rng)) - padding
        let flip = horizontalFlip && rng.uniform() < 0.5
        return Placement(dy: dy, dx: dx, flip: flip)
    }
}

/// Where an output pixel reads from: out(y, x) = image(y + dy, x' + dx), x' = flip ? W−1−x : x.
struct Placement: Equatable {
    var dy: Int
    var dx: Int
    var flip: Bool
    static let identity = Placement(dy: 0, dx: 0, flip: false)
}

public enum DatasetError: Error, CustomStringConvertible, Equatable {
    /// The files are absent or unreadable: what was looked for, what was wrong, where to get them.
    case missing(dataset: String, lookedFor: [String], problem: String, source: String)
    /// A file exists but its content is wrong.
    case malformed(dataset: String, path: String, problem: String, source: String)
    /// Bad arguments (tensors, sizes, labels).
    case invalid(String)

    public var description: String {
        switch self {
        case let .missing(dataset, lookedFor, problem, source):
            return "cannot load \(dataset): \(problem)\n  looked for: " + lookedFor.joined(separator: "\n              ")
                + "\n  " + source
        case let .malformed(dataset, path, problem, source):
            return "cannot load \(dataset): \(path) is malformed: \(problem)\n  " + source
        case let .invalid(reason):
            return reason
        }
    }
}

extension Dataset {
    // MARK: Synthetic and tensor datasets

    /// `n` images of standard normal noise, shape 3x32x32, labels uniform over `classes`
    /// (no normalisation or augmentation), for work without downloads.
    /// - Complexity: O(n) to draw the labels; images are generated when batched.
    public static func synthetic(classes: Int = 10, n: Int = 1024, seed: UInt64 = 0, shape: [Int] = [3, 32, 32]) throws -> Dataset {
        guard classes > 0 else { throw DatasetError.invalid("synthetic: classes must be positive, got \(classes)") }
        guard n > 0 else { throw DatasetError.invalid("synthetic: n must be positive, got \(n)") }
        guard !shape.isEmpty, shape.allSatisfy({ $0 >= 1 }), shape.reduce(1, { $0 * min($1, 1 << 24) }) <= 1 << 24 else {
            throw DatasetError.invalid("synthetic: shape must be positive sizes of at most 16M values per sample, got \(shape)")
        }
        var rng = SeededGenerator.stream(seed: seed, name: "data.synthetic.labels")
        let labels = (0 ..< n).map { _ in Int(RandomPruners.uniformIndex(below: UInt64(classes), &rng)) }
        return Dataset(name: "synthetic", classes: classes, sampleShape: shape,
                       storage: .synthetic(seed: seed, labels: labels), augmentation: nil, normalization: nil)
    }

    /// One pre-batched dataset from images `x` (`[n, …]`) and labels `y` (n of them).
    public static func fromTensors(_ x: Tensor, _ y: [Int], classes: Int? = nil) throws -> Dataset {
        try fromTensors([x], [y], classes: classes)
    }

    /// A pre-batched dataset: batch i is exactly `xs[i]` with labels `ys[i]`, in this order.
    /// `classes` defaults to the largest label + 1.
    /// - Complexity: O(total labels).
    public static func fromTensors(_ xs: [Tensor], _ ys: [[Int]], classes: Int? = nil) throws -> Dataset {
        guard !xs.isEmpty else { throw DatasetError.invalid("dataset: no image tensors given") }
        guard xs.count == ys.count else {
            throw DatasetError.invalid("dataset: \(xs.count) image tensors but \(ys.count) label lists; give one label list per tensor")
        }
        let sampleShape = Array(xs[0].shape.dropFirst())
        guard xs[0].shape.count >= 2 else {
            throw DatasetError.invalid("dataset: images must be [n, …] with a batch dimension, got shape \(xs[0].shapeDescription)")
        }
        for (i, (x, y)) in zip(xs, ys).enumerated() {
            guard Array(x.shape.dropFirst()) == sampleShape else {
                throw DatasetError.invalid("dataset: tensor \(i) has samples of shape \(Tensor.describe(Array(x.shape.dropFirst()))), tensor 0 has \(Tensor.describe(sampleShape))")
            }
            guard x.shape.first == y.count else {
                throw DatasetError.invalid("dataset: tensor \(i) holds \(x.shape.first ?? 0) samples but has \(y.count) labels")
            }
            if let bad = y.first(where: { $0 < 0 }) { throw DatasetError.invalid("dataset: label \(bad) in batch \(i) is negative") }
            if let bad = x.data.firstIndex(where: { !$0.isFinite }) {
                throw DatasetError.invalid("dataset: tensor \(i) holds a non-finite value at entry \(bad)")
            }
        }
        let largest = ys.flatMap { $0 }.max() ?? -1
        guard largest >= 0 else { throw DatasetError.invalid("dataset: no samples given") }
        let classCount = classes ?? (largest + 1)
        guard classCount > largest else {
            throw DatasetError.invalid("dataset: label \(largest) does not fit \(classCount) classes")
        }
        return Dataset(name: "tensors", classes: classCount, sampleShape: sampleShape,
                       storage: .batches(images: xs, labels: ys), augmentation: nil, normalization: nil)
    }

    /// A pre-batched dataset from a safetensors file holding `x0, y0, x1, y1, …` (images and
    /// integer labels), batch i = (x<i>, y<i>) — the layout of the oracle's `batch.safetensors`.
    /// Other entries (`logits0`, `loss0`) are ignored.
    /// - Complexity: O(file size).
    public static func fromSafeTensors(path: String, classes: Int? = nil) throws -> Dataset {
        let entries = try SafeTensors.readDictionary(path: path)
        var xs: [Tensor] = [], ys: [[Int]] = []
        while let x = entries["x\(xs.count)"] {
            guard let y = entries["y\(xs.count)"] else {
                throw DatasetError.invalid("\(path) has x\(xs.count) but no labels y\(xs.count)")
            }
            xs.append(x.tensor)
            ys.append(try labels(from: y.tensor))
        }
        guard !xs.isEmpty else { throw DatasetError.invalid("\(path) holds no x0/y0 batch") }
        return try fromTensors(xs, ys, classes: classes)
    }

    /// Labels from a tensor of integral values (as read from safetensors), refusing fractions and negatives.
    public static func labels(from tensor: Tensor) throws -> [Int] {
        try tensor.data.enumerated().map { i, v in
            guard v.isFinite, v >= 0, v == v.rounded(), v < 1e9 else {
                throw DatasetError.invalid("labels: entry \(i) is \(v), not a non-negative integer")
            }
            return Int(v)
        }
    }

    // MARK: Locations

    /// The folders datasets are looked for in by name, in order (`<root>/<name>`); `download`
    /// unpacks into the first. The front end sets them at start-up (the Runtime puts
    /// `$MGE_DATA` first); by default only `~/.mge/data`.
    nonisolated(unsafe) public static var roots: [String] = [NSHomeDirectory() + "/.mge/data"]

    /// Where a dataset called `name` is looked for when no path is given: `<root>/<name>` for
    /// each of `roots`.
    public static func defaultLocations(_ name: String) -> [String] {
        roots.map { $0 + "/" + name }
    }
}
