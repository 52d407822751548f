import Foundation
import OracleSupport
import XCTest
@testable import Kernels

final class DatasetTests: XCTestCase {
    private var folders: [String] = []

    override func tearDown() {
        for f in folders { try? FileManager.default.removeItem(atPath: f) }
        folders = []
    }

    private func tempFolder() throws -> String {
        let path = NSTemporaryDirectory() + "mge-data-\(UInt32.random(in: 0 ... .max))"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        folders.append(path)
        return path
    }

    /// Records of `labelBytes` + 3,072 random pixel bytes; returns (file bytes, labels, pixels).
    private func records(_ n: Int, labels: (Int) -> [UInt8], rng: inout SeededGenerator) -> (bytes: [UInt8], pixels: [[UInt8]]) {
        var bytes: [UInt8] = [], pixels: [[UInt8]] = []
        for i in 0 ..< n {
            let image = (0 ..< 3072).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
            bytes += labels(i) + image
            pixels.append(image)
        }
        return (bytes, pixels)
    }

    private func write(_ bytes: [UInt8], _ path: String) {
        XCTAssertTrue(FileManager.default.createFile(atPath: path, contents: Data(bytes)), path)
    }

    private func normalised(_ byte: UInt8, _ c: Int, _ n: Normalization) -> Float { (Float(byte) / 255 - n.mean[c]) / n.std[c] }

    /// A 5 + 1 file CIFAR-10 folder with 3 records per train file and 2 in the test file.
    private func makeCIFAR10(_ dir: String) -> (labels: [Int], pixels: [[UInt8]]) {
        var rng = SeededGenerator(seed: 1)
        var labels: [Int] = [], pixels: [[UInt8]] = []
        for b in 1 ... 5 {
            let r = records(3, labels: { [UInt8((b * 3 + $0) % 10)] }, rng: &rng)
            write(r.bytes, dir + "/data_batch_\(b).bin")
            labels += (0 ..< 3).map { (b * 3 + $0) % 10 }
            pixels += r.pixels
        }
        write(records(2, labels: { [UInt8($0 + 7)] }, rng: &rng).bytes, dir + "/test_batch.bin")
        return (labels, pixels)
    }

    func testCIFAR10ReadsLabelsPixelsAndNormalisation() throws {
        let dir = try tempFolder()
        let written = makeCIFAR10(dir)
        let train = try Dataset.cifar10(path: dir, split: .train, augment: false)
        XCTAssertEqual(train.count, 15)
        XCTAssertEqual(train.classes, 10)
        XCTAssertEqual(train.labels, written.labels)
        XCTAssertNil(train.augmentation)
        let batch = try train.batch(indices: [0, 7, 14])
        XCTAssertEqual(batch.images.shape, [3, 3, 32, 32])
        XCTAssertEqual(batch.labels, [written.labels[0], written.labels[7], written.labels[14]])
        for (b, index) in [0, 7, 14].enumerated() {
            for k in 0 ..< 3072 {
                let expected = normalised(written.pixels[index][k], k / 1024, .cifar10)
                XCTAssertEqual(batch.images.data[b * 3072 + k], expected)
                if batch.images.data[b * 3072 + k] != expected { return }
            }
        }
        // Spot values computed by hand: byte 0 in channel 0 is −0.4914/0.2023, byte 255 in channel 2 is 0.5535/0.2010.
        XCTAssertEqual(normalised(0, 0, .cifar10), Float(-0.4914) / Float(0.2023))
        XCTAssertEqual(normalised(255, 2, .cifar10), (Float(1) - Float(0.4465)) / Float(0.2010))

        let test = try Dataset.cifar10(path: dir, split: .test)
        XCTAssertEqual(test.labels, [7, 8])
        XCTAssertNil(test.augmentation, "the test split is not augmented")
        XCTAssertEqual(try Dataset.cifar10(path: dir).augmentation, .standard, "the train split augments by default")

        // The archive's own folder name is found under a parent.
        let parent = try tempFolder()
        try FileManager.default.createDirectory(atPath: parent + "/cifar-10-batches-bin", withIntermediateDirectories: true)
        _ = makeCIFAR10(parent + "/cifar-10-batches-bin")
        XCTAssertEqual(try Dataset.cifar10(path: parent).count, 15)
    }

    func testCIFAR100UsesFineLabels() throws {
        let dir = try tempFolder()
        var rng = SeededGenerator(seed: 2)
        let train = records(4, labels: { [UInt8($0 % 20), UInt8(90 + $0)] }, rng: &rng)
        write(train.bytes, dir + "/train.bin")
        write(records(1, labels: { _ in [3, 42] }, rng: &rng).bytes, dir + "/test.bin")
        let data = try Dataset.cifar100(path: dir, augment: false)
        XCTAssertEqual(data.classes, 100)
        XCTAssertEqual(data.labels, [90, 91, 92, 93])
        let batch = try data.batch(indices: [2])
        for k in stride(from: 0, to: 3072, by: 97) {
            XCTAssertEqual(batch.images.data[k], normalised(train.pixels[2][k], k / 1024, .cifar100))
        }
        XCTAssertEqual(try Dataset.cifar100(path: dir, split: .test).labels, [42])
    }

    func testMalformedAndMissingCIFARAreRefusedWithReasons() throws {
        let dir = try tempFolder()
        _ = makeCIFAR10(dir)
        // Truncated: 10 bytes short of whole records.
        var bytes = [UInt8](FileManager.default.contents(atPath: dir + "/data_batch_3.bin")!)
        bytes.removeLast(10)
        write(bytes, dir + "/data_batch_3.bin")
        XCTAssertThrowsError(try Dataset.cifar10(path: dir)) { error in
            let text = "\(error)"
            for phrase in ["data_batch_3.bin", "2 complete records and 3063 bytes over", "truncated", "https://www.cs.toronto.edu/~kriz/cifar.html", "binary version"] {
                XCTAssertTrue(text.contains(phrase), "'\(text)' lacks '\(phrase)'")
            }
        }
        // Empty file.
        write([], dir + "/data_batch_3.bin")
        XCTAssertThrowsError(try Dataset.cifar10(path: dir)) { XCTAssertTrue("\($0)".contains("0 bytes"), "\($0)") }
        // A label out of range.
        var rng = SeededGenerator(seed: 3)
        write(records(2, labels: { [$0 == 1 ? 12 : 0] }, rng: &rng).bytes, dir + "/data_batch_3.bin")
        XCTAssertThrowsError(try Dataset.cifar10(path: dir)) { XCTAssertTrue("\($0)".contains("record 1 has label 12"), "\($0)") }
        // A missing file: named, with the list of what was looked for.
        try FileManager.default.removeItem(atPath: dir + "/data_batch_5.bin")
        XCTAssertThrowsError(try Dataset.cifar10(path: dir)) { error in
            let text = "\(error)"
            XCTAssertTrue(text.contains("lacks data_batch_5.bin"), text)
            XCTAssertTrue(text.contains("looked for: " + dir + "/data_batch_1.bin"), text)
            XCTAssertTrue(text.contains(dir + "/cifar-10-batches-bin/test_batch.bin") == false, "test files are not needed for train: \(text)")
        }
        // Nothing there at all.
        let empty = try tempFolder()
        XCTAssertThrowsError(try Dataset.cifar100(path: empty)) { error in
            let text = "\(error)"
            XCTAssertTrue(text.contains(empty + "/train.bin") && text.contains(empty + "/cifar-100-binary/train.bin"), text)
            XCTAssertTrue(text.contains("cifar-100-binary.tar.gz"), text)
        }
    }

    /// Augmented samples are the original shifted by (dy, dx) in −4…4 with zero (black) padding,
    /// optionally mirrored; both flips and several offsets occur; the seed fixes them.
    func testAugmentationCropsShiftAndFlipsMirror() throws {
        let dir = try tempFolder()
        let written = makeCIFAR10(dir)
        let data = try Dataset.cifar10(path: dir)
        let n = Normalization.cifar10
        var seenFlip = Set<Bool>(), seenShift = Set<[Int]>()
        for seed: UInt64 in 0 ..< 6 {
            for batch in try data.batches(size: 15, seed: seed) {
                for b in 0 ..< batch.count {
                    let original = written.pixels[b]
                    let out = Array(batch.images.data[(b * 3072) ..< ((b + 1) * 3072)])
                    var found: Placement?
                    search: for flip in [false, true] {
                        for dy in -4 ... 4 {
                            for dx in -4 ... 4 {
                                var ok = true
                                check: for c in 0 ..< 3 {
                                    for y in 0 ..< 32 {
                                        for x in 0 ..< 32 {
                                            let sy = y + dy, sx = (flip ? 31 - x : x) + dx
                                            let byte: UInt8 = (0 ..< 32).contains(sy) && (0 ..< 32).contains(sx) ? original[c * 1024 + sy * 32 + sx] : 0
                                            if out[c * 1024 + y * 32 + x] != normalised(byte, c, n) { ok = false; break check }
                                        }
                                    }
                                }
                                if ok { found = Placement(dy: dy, dx: dx, flip: flip); break search }
                            }
                        }
                    }
                    let placement = try XCTUnwrap(found, "sample \(b) (seed \(seed)) is no crop/flip of its image")
                    seenFlip.insert(placement.flip)
                    seenShift.insert([placement.dy, placement.dx])
                }
            }
        }
        XCTAssertEqual(seenFlip, [false, true])
        XCTAssertGreaterThan(seenShift.count, 20)
        let a = Array(try data.batches(size: 4, shuffle: true, seed: 9))
        let b = Array(try data.batches(size: 4, shuffle: true, seed: 9))
        let c = Array(try data.batches(size: 4, shuffle: true, seed: 10))
        XCTAssertEqual(a, b)
        XCTAssertNotEqual(a, c)
    }

    func testShuffledBatchesCoverEverySampleOnce() throws {
        let dir = try tempFolder()
        let written = makeCIFAR10(dir)
        let data = try Dataset.cifar10(path: dir, augment: false)
        let sequence = try data.batches(size: 4, shuffle: true, seed: 3)
        let batches = Array(sequence)
        XCTAssertEqual(batches.map(\.count), [4, 4, 4, 3])
        XCTAssertEqual(sequence.batchCount, 4)
        XCTAssertEqual(batches.flatMap(\.labels).sorted(), written.labels.sorted())
        // Each served image is one of the originals, each used once.
        var used = Set<Int>()
        for batch in batches {
            for b in 0 ..< batch.count {
                let first = batch.images.data[b * 3072]
                let matches = (0 ..< 15).filter { normalised(written.pixels[$0][0], 0, .cifar10) == first && !used.contains($0) }
                let index = try XCTUnwrap(matches.first(where: { i in
                    (0 ..< 3072).allSatisfy { batch.images.data[b * 3072 + $0] == normalised(written.pixels[i][$0], $0 / 1024, .cifar10) }
                }))
                used.insert(index)
            }
        }
        XCTAssertEqual(used.count, 15)
        let ordered = Array(try data.batches(size: 15))
        XCTAssertEqual(ordered[0].labels, written.labels, "without shuffle the order is the files' order")
        XCTAssertThrowsError(try data.batches(size: 0))
    }

    func testSyntheticIsSeededNoiseWithUniformLabels() throws {
        let data = try Dataset.synthetic(classes: 10, n: 1024, seed: 0)
        XCTAssertEqual(data.count, 1024)
        XCTAssertEqual(data.sampleShape, [3, 32, 32])
        XCTAssertTrue(data.labels.allSatisfy { (0 ..< 10).contains($0) })
        XCTAssertEqual(Set(data.labels).count, 10)
        let batches = Array(try data.batches(size: 128))
        XCTAssertEqual(batches.count, 8)
        let values = batches.flatMap(\.images.data).map(Double.init)
        let mean = values.reduce(0, +) / Double(values.count)
        let std = (values.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(values.count)).squareRoot()
        XCTAssertEqual(mean, 0, accuracy: 0.01)
        XCTAssertEqual(std, 1, accuracy: 0.01)
        XCTAssertEqual(Array(try Dataset.synthetic(seed: 0).batches(size: 64)), Array(try data.batches(size: 64)))
        XCTAssertNotEqual(try Dataset.synthetic(seed: 1).labels, data.labels)
        XCTAssertThrowsError(try Dataset.synthetic(classes: 0))
        XCTAssertThrowsError(try Dataset.synthetic(n: 0))
    }

    func testTensorDatasetsServeTheGivenBatchesInOrder() throws {
        let x0 = Tensor(shape: [2, 3, 32, 32], data: (0 ..< 6144).map { Float($0) })
        let x1 = Tensor(shape: [1, 3, 32, 32], data: (0 ..< 3072).map { -Float($0) })
        let data = try Dataset.fromTensors([x0, x1], [[4, 1], [2]])
        XCTAssertEqual(data.classes, 5)
        XCTAssertEqual(data.count, 3)
        XCTAssertTrue(data.isPreBatched)
        for (size, shuffle) in [(128, false), (1, true)] {
            let batches = Array(try data.batches(size: size, shuffle: shuffle, seed: 5))
            XCTAssertEqual(batches, [Batch(images: x0, labels: [4, 1]), Batch(images: x1, labels: [2])])
        }
        XCTAssertNil(data.augmented(.standard).augmentation, "pre-batched data is never augmented")
        XCTAssertEqual(try data.batch(indices: [2]).images, x1)
        XCTAssertEqual(data.label(at: 1), 1)
        XCTAssertThrowsError(try Dataset.fromTensors([x0], [[1]])) { XCTAssertTrue("\($0)".contains("2 samples but has 1 labels"), "\($0)") }
        XCTAssertThrowsError(try Dataset.fromTensors([x0, x1], [[1, 2]]))
        XCTAssertThrowsError(try Dataset.fromTensors(x0, [1, -1]))
        XCTAssertThrowsError(try Dataset.fromTensors(x0, [1, 7], classes: 5))
        XCTAssertThrowsError(try Dataset.fromTensors([x0, Tensor(zeros: [1, 3, 16, 16])], [[0, 0], [0]]))
        XCTAssertEqual(try Dataset.labels(from: Tensor(shape: [3], data: [0, 9, 2])), [0, 9, 2])
        XCTAssertThrowsError(try Dataset.labels(from: Tensor(shape: [1], data: [1.5])))
    }

    // MARK: TinyImageNet

    func testAreaResizeMatchesPILBoxOnTwoByTwoBlocks() {
        var rng = SeededGenerator(seed: 4)
        let rgb = (0 ..< 64 * 64 * 3).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
        let out = AreaResize.rgbToPlanar(JPEG.Image(width: 64, height: 64, rgb: rgb), size: 32)
        for c in 0 ..< 3 {
            for y in 0 ..< 32 {
                for x in 0 ..< 32 {
                    func p(_ yy: Int, _ xx: Int) -> Int { Int(rgb[(yy * 64 + xx) * 3 + c]) }
                    let top = (p(2 * y, 2 * x) + p(2 * y, 2 * x + 1) + 1) / 2
                    let bottom = (p(2 * y + 1, 2 * x) + p(2 * y + 1, 2 * x + 1) + 1) / 2
                    XCTAssertEqual(Int(out[c * 1024 + y * 32 + x]), (top + bottom + 1) / 2)
                }
            }
        }
        // A non-integer factor averages by overlap: 3 → 2 gives [a + b/2, b/2 + c] / 1.5.
        let row = AreaResize.weights(from: 3, to: 2)
        XCTAssertEqual(row[0].map(\.0), [0, 1])
        XCTAssertEqual(row[0].map(\.1), [2.0 / 3, 1.0 / 3])
    }

    /// A 64x64 RGB image of four flat quadrants, so JPEG reproduces it almost exactly.
    private func quadrants(_ colours: [[UInt8]]) -> [UInt8] {
        var rgb = [UInt8](repeating: 0, count: 64 * 64 * 3)
        for y in 0 ..< 64 {
            for x in 0 ..< 64 {
                let q = (y < 32 ? 0 : 2) + (x < 32 ? 0 : 1)
                for c in 0 ..< 3 { rgb[(y * 64 + x) * 3 + c] = colours[q][c] }
            }
        }
        return rgb
    }

    func testTinyImageNetTreeDecodesResizesAndLabels() throws {
        let root = try tempFolder() + "/tiny-imagenet-200"
        let fm = FileManager.default
        // wnids.txt out of sorted order: labels follow the sorted order, as ImageFolder's do.
        let wnids = ["n03000000", "n01000000", "n02000000"]
        try fm.createDirectory(atPath: root + "/val/images", withIntermediateDirectories: true)
        write(Array((wnids.joined(separator: "\n") + "\n").utf8), root + "/wnids.txt")
        let palette: [[UInt8]] = [[200, 30, 30], [30, 200, 30], [30, 30, 200], [128, 128, 128]]
        for (k, wnid) in wnids.enumerated() {
            let dir = root + "/train/" + wnid + "/images"
            try fm.createDirectory(atPath: dir, withIntermediateDirectories: true)
            for i in 0 ..< 2 {
                let colours = (0 ..< 4).map { palette[($0 + k + i) % 4] }
                write(try JPEG.encode(quadrants(colours), width: 64, height: 64, quality: 100), dir + "/\(wnid)_\(i).JPEG")
            }
            write(Array("\(wnid)_0.JPEG\t0\t0\t63\t63\n".utf8), root + "/train/" + wnid + "/\(wnid)_boxes.txt")
        }
        // Validation: one grayscale image, annotations out of order.
        write(try JPEG.encode([UInt8](repeating: 77, count: 64 * 64), width: 64, height: 64, components: 1, quality: 100),
              root + "/val/images/val_1.JPEG")
        write(try JPEG.encode(quadrants(palette), width: 64, height: 64, quality: 100), root + "/val/images/val_0.JPEG")
        write(Array("val_1.JPEG\tn03000000\t0\t0\t10\t10\nval_0.JPEG\tn01000000\t1\t1\t5\t5\n".utf8), root + "/val/val_annotations.txt")

        let train = try Dataset.tinyImageNet(path: root, augment: false)
        XCTAssertEqual(train.classes, 3)
        XCTAssertEqual(train.count, 6)
        XCTAssertEqual(train.labels, [0, 0, 1, 1, 2, 2], "n01 → 0, n02 → 1, n03 → 2")
        XCTAssertEqual(train.augmentation, nil)
        XCTAssertEqual(try Dataset.tinyImageNet(path: root).augmentation, .standard)
        let n = Normalization.tinyImageNet
        // Sample 0 is n01000000_0: wnid index 1 in wnids.txt, so k = 1, i = 0.
        let batch = try train.batch(indices: [0])
        for (q, (y, x)) in [(0, 0), (0, 31), (31, 0), (31, 31)].enumerated() {
            // Quadrant centres (8 pixels in from the 16-pixel quadrant edges) are flat after 64→32.
            let yy = y == 0 ? 8 : 24, xx = x == 0 ? 8 : 24
            for c in 0 ..< 3 {
                let value = batch.images.data[c * 1024 + yy * 32 + xx]
                let byte = (value * n.std[c] + n.mean[c]) * 255
                XCTAssertEqual(byte, Float(palette[(q + 1) % 4][c]), accuracy: 2.5, "quadrant \(q) channel \(c)")
            }
        }

        let val = try Dataset.tinyImageNet(path: root, split: .test)
        XCTAssertEqual(val.labels, [0, 2], "ordered by label, then file name")
        XCTAssertNil(val.augmentation)
        let gray = try val.batch(indices: [1])
        for c in 0 ..< 3 {
            XCTAssertEqual((gray.images.data[c * 1024 + 500] * n.std[c] + n.mean[c]) * 255, 77, accuracy: 1.5, "grayscale expands to RGB")
        }
        // The parent folder works too.
        XCTAssertEqual(try Dataset.tinyImageNet(path: (root as NSString).deletingLastPathComponent, augment: false).count, 6)

        // A corrupt JPEG is refused with its path.
        write([0xFF, 0xD8, 0xFF, 0x00, 1, 2, 3], root + "/train/n02000000/images/n02000000_1.JPEG")
        XCTAssertThrowsError(try Dataset.tinyImageNet(path: root)) { error in
            XCTAssertTrue("\(error)".contains("n02000000_1.JPEG") && "\(error)".contains("not a decodable JPEG"), "\(error)")
        }
        // An annotation naming an unknown class.
        write(Array("val_0.JPEG\tn09999999\t0\t0\t1\t1\n".utf8), root + "/val/val_annotations.txt")
        XCTAssertThrowsError(try Dataset.tinyImageNet(path: root, split: .test)) { XCTAssertTrue("\($0)".contains("n09999999"), "\($0)") }
        // Nothing there: the files looked for and the archive's address.
        let empty = try tempFolder()
        XCTAssertThrowsError(try Dataset.tinyImageNet(path: empty)) { error in
            let text = "\(error)"
            XCTAssertTrue(text.contains(empty + "/wnids.txt") && text.contains(empty + "/tiny-imagenet-200/train"), text)
            XCTAssertTrue(text.contains("https://cs231n.stanford.edu/tiny-imagenet-200.zip") && text.contains("download(\"tinyimagenet\")"), text)
        }
    }

    /// Datasets are looked for under each root the front end set; `download` unpacks into the first.
    func testDefaultLocationsFollowTheRoots() {
        let saved = Dataset.roots
        defer { Dataset.roots = saved }
        XCTAssertTrue(Dataset.defaultLocations("cifar10").last?.hasSuffix("/.mge/data/cifar10") ?? false, "\(Dataset.roots)")
        Dataset.roots = ["/a", "/b"]
        XCTAssertEqual(Dataset.defaultLocations("cifar10"), ["/a/cifar10", "/b/cifar10"])
        XCTAssertEqual(DatasetDownload.dataRoot, "/a")
    }
}

final class DatasetOracleBatchTests: XCTestCase {
    /// The oracle's `batch.safetensors` (x0, y0, … as the reference's pruners saw them) serves
    /// its batches unchanged and in order.
    func testOracleBatchFilesServeTheirBatchesInOrder() throws {
        let dir = try OracleLocation.directory(of: "Resnet-20-CIFAR-10-prospr-0.98-s0")
        let raw = try SafeTensors.readDictionary(path: dir + "/batch.safetensors")
        let data = try Dataset.fromSafeTensors(path: dir + "/batch.safetensors")
        let batches = Array(try data.batches(size: 512, shuffle: true, seed: 1))
        XCTAssertEqual(batches.count, 4)
        for (i, batch) in batches.enumerated() {
            XCTAssertEqual(batch.images, raw["x\(i)"]?.tensor)
            XCTAssertEqual(batch.labels, raw["y\(i)"]?.integers?.map { Int($0) })
        }
        XCTAssertLessThanOrEqual(data.classes, 10)
        let snip = try Dataset.fromSafeTensors(path: OracleLocation.directory(of: "Resnet-20-CIFAR-10-snip-0.98-s0") + "/batch.safetensors")
        XCTAssertEqual(snip.count, 128)
        XCTAssertThrowsError(try Dataset.fromSafeTensors(path: dir + "/masks.safetensors")) { XCTAssertTrue("\($0)".contains("no x0/y0")) }
    }
}
