import Foundation
import XCTest
@testable import Kernels

/// One file reader under fuzzing. Adding a reader is one `FuzzTarget` in `ReaderFuzzTests.targets`:
/// a small valid file, how to read a file, and (optionally) where its binary header fields are.
struct FuzzTarget {
    var name: String
    /// The file name the reader is given (some readers look files up by name in a folder).
    var fileName: String
    /// A valid file; reading it must succeed.
    var valid: [UInt8]
    /// Reads the file at `path` as a user's builtin would; throws to refuse it.
    var read: (_ path: String) throws -> Void
    /// Binary header fields (offset, width in bytes, little-endian unless `bigEndian`) that
    /// are rewritten to huge, negative, zero and off-by-one values.
    var fields: [(offset: Int, width: Int)] = []
    var bigEndian = false
    /// Recomputes what a checksum would catch (e.g. a header hash), so rewritten fields reach the parser.
    var reseal: (([UInt8]) -> [UInt8])? = nil
    /// Every strict prefix of the valid file must be refused (false where a shorter file can be valid).
    var truncationsAreInvalid = true
    /// Extra format-aware variants (e.g. a text header with its numbers rewritten).
    var variants: (([UInt8]) -> [(String, [UInt8])])? = nil
}

/// Fuzzes every file reader: the valid file truncated at every point of its first bytes and
/// evenly beyond, bytes flipped (denser in the header), header fields rewritten, format-aware
/// variants, and random files. Each input must be read or refused with a reason; a crash ends
/// the test process. About a thousand inputs per reader, deterministic (fixed seeds).
final class ReaderFuzzTests: XCTestCase {
    struct Outcome { var inputs = 0, refused = 0, accepted = 0 }

    static func mutations(of target: FuzzTarget, seed: UInt64) -> [(label: String, bytes: [UInt8], mustRefuse: Bool)] {
        let valid = target.valid, n = valid.count
        var rng = SeededGenerator(seed: seed)
        var out: [(String, [UInt8], Bool)] = []
        // Truncations: every length through the first 96 bytes, then 64 evenly spaced, then n − 1.
        var lengths = Set(0 ..< min(n, 96))
        for k in 0 ..< 64 { lengths.insert(n * k / 64) }
        lengths.insert(max(n - 1, 0))
        for length in lengths.sorted() where length < n {
            out.append(("truncated to \(length)", Array(valid[0 ..< length]), target.truncationsAreInvalid))
        }
        // Byte flips: 300 single bytes (half in the first 128), 60 runs of 2–16 random bytes.
        for i in 0 ..< 300 {
            let position = i % 2 == 0 ? Int.random(in: 0 ..< min(n, 128), using: &rng) : Int.random(in: 0 ..< n, using: &rng)
            var bytes = valid
            bytes[position] ^= UInt8.random(in: 1 ... 255, using: &rng)
            out.append(("byte \(position) flipped", bytes, false))
        }
        for _ in 0 ..< 60 {
            let start = Int.random(in: 0 ..< n, using: &rng), length = Int.random(in: 2 ... 16, using: &rng)
            var bytes = valid
            for p in start ..< min(n, start + length) { bytes[p] = UInt8.random(in: 0 ... 255, using: &rng) }
            out.append(("bytes \(start)..<\(start + length) randomised", bytes, false))
        }
        // Header fields: huge, negative (two's complement), zero, ±1 and the boundary values.
        for (offset, width) in target.fields where offset + width <= n {
            let current = (0 ..< width).reduce(UInt64(0)) { acc, k in
                let byte = UInt64(valid[offset + (target.bigEndian ? k : width - 1 - k)])
                return acc << 8 | byte
            }
            let mask: UInt64 = width == 8 ? .max : (1 << UInt64(8 * width)) - 1
            let values: [UInt64] = [mask, mask >> 1, (mask >> 1) + 1, 1 << UInt64(8 * width - 3), 0, 1,
                                    current &+ 1, current &- 1, current &* 2, current / 2].map { $0 & mask }
            for value in Set(values) where value != current {
                var bytes = valid
                for k in 0 ..< width {
                    let shift = UInt64(8 * (target.bigEndian ? width - 1 - k : k))
                    bytes[offset + k] = UInt8(truncatingIfNeeded: value >> shift)
                }
                out.append(("field @\(offset) = \(value)", bytes, false))
            }
        }
        if let variants = target.variants { out += variants(valid).map { ($0.0, $0.1, false) } }
        // A resealed copy of every mutation so far, when the format has a checksum to get past.
        if let reseal = target.reseal {
            out += out.compactMap { label, bytes, _ in bytes.count == n ? (label + ", resealed", reseal(bytes), false) : nil }
        }
        // Random files: lengths up to twice the valid one, and the valid first 16 bytes + random rest.
        for i in 0 ..< 40 {
            let length = Int.random(in: 0 ... 2 * n, using: &rng)
            var bytes = (0 ..< length).map { _ in UInt8.random(in: 0 ... 255, using: &rng) }
            if i % 2 == 1 { for p in 0 ..< min(16, length, n) { bytes[p] = valid[p] } }
            out.append(("random \(length) bytes", bytes, false))
        }
        return out
    }

    /// Runs every mutation of `target` through its reader; returns how many were read and refused.
    static func fuzz(_ target: FuzzTarget, seed: UInt64 = 1) throws -> Outcome {
        let dir = NSTemporaryDirectory() + "mge-fuzz-\(getpid())-\(target.name.filter(\.isLetter))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/" + target.fileName
        try Data(target.valid).write(to: URL(fileURLWithPath: path))
        XCTAssertNoThrow(try target.read(path), "\(target.name): the valid file must be read")
        var outcome = Outcome()
        for (label, bytes, mustRefuse) in mutations(of: target, seed: seed) {
            try Data(bytes).write(to: URL(fileURLWithPath: path))
            outcome.inputs += 1
            do {
                try target.read(path)
                outcome.accepted += 1
                XCTAssertFalse(mustRefuse, "\(target.name): \(label) was accepted")
            } catch {
                outcome.refused += 1
                XCTAssertFalse("\(error)".isEmpty, "\(target.name): \(label) refused without a reason")
            }
        }
        print("fuzz \(target.name): \(outcome.inputs) inputs, \(outcome.refused) refused with a reason, \(outcome.accepted) read, 0 crashes")
        return outcome
    }

    func testSafeTensorsReader() throws { _ = try Self.fuzz(FuzzTargets.safeTensors()) }
    func testGraphFileReader() throws { _ = try Self.fuzz(FuzzTargets.graphFile()) }
    func testCIFAR10Reader() throws { _ = try Self.fuzz(FuzzTargets.cifar(classes: 10)) }
    func testCIFAR100Reader() throws { _ = try Self.fuzz(FuzzTargets.cifar(classes: 100)) }
    func testJPEGReader() throws { _ = try Self.fuzz(FuzzTargets.jpeg()) }
    func testTinyImageNetAnnotationsReader() throws { _ = try Self.fuzz(FuzzTargets.tinyImageNetAnnotations()) }
    func testTinyImageNetClassListReader() throws { _ = try Self.fuzz(FuzzTargets.tinyImageNetClassList()) }
    func testAnalysisCSVReader() throws { _ = try Self.fuzz(FuzzTargets.analysisCSV()) }
    func testAnalysisCSVZstdReader() throws { _ = try Self.fuzz(FuzzTargets.analysisCSVZstd()) }
    func testResultsCSVReader() throws { _ = try Self.fuzz(FuzzTargets.resultsCSV()) }
    func testPyTorchZipReader() throws { _ = try Self.fuzz(try FuzzTargets.pyTorch("zip")) }
    func testPyTorchLegacyReader() throws { _ = try Self.fuzz(try FuzzTargets.pyTorch("legacy")) }

    /// The compressed seed is the plain one: the .zst path reads the same table.
    func testAnalysisCSVZstdSeedIsThePlainSeed() throws {
        let dir = NSTemporaryDirectory() + "mge-fuzz-zst-\(getpid())"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try Data(FuzzTargets.csvSeedZstd).write(to: URL(fileURLWithPath: dir + "/x.csv.zst"))
        let table = try CSVReader.read(path: dir + "/x.csv.zst")
        // Compared as text: the empty accuracy cell is NaN, which is not equal to itself.
        XCTAssertEqual("\(table)", "\(try CSVReader.parse(Array(FuzzTargets.csvSeed.utf8), name: "seed"))")
        XCTAssertEqual(table.rowCount, 4)
        XCTAssertEqual(try table.column("note").text(at: 1), "says \"hi\"\nsecond line")
    }

    /// A carriage return after a closing quote ends the row only before a newline: `"a"\rb` is
    /// refused, not read as the cells "a" and "" with the b swallowed as a comma.
    func testCSVCarriageReturnAfterClosingQuoteMustEndTheLine() throws {
        XCTAssertThrowsError(try CSVReader.parse(Array("x,y\n\"a\"\rb,c\n".utf8), name: "t")) { error in
            XCTAssertTrue("\(error)".contains("text after the closing quote"), "\(error)")
        }
        let crlf = try CSVReader.parse(Array("x,y\r\n\"a\",\"b\"\r\n".utf8), name: "t")
        XCTAssertEqual(try crlf.column("y").text(at: 0), "b")
    }

    /// The file from the issue: 100 bytes whose header declares an F64 tensor of shape [2^61]
    /// (2^64 bytes, which wraps to 0 in unchecked arithmetic). Refused, nothing allocated.
    func testSafeTensorsHeaderDeclaringTwoToTheSixtyOneIsRefused() throws {
        var header = Array(#"{"x":{"dtype":"F64","shape":[2305843009213693952],"data_offsets":[0,0]}}"#.utf8)
        while (8 + header.count) < 100 { header.append(0x20) }
        var bytes: [UInt8] = []
        var length = UInt64(header.count)
        for _ in 0 ..< 8 { bytes.append(UInt8(length & 0xFF)); length >>= 8 }
        bytes += header
        XCTAssertEqual(bytes.count, 100)
        let path = NSTemporaryDirectory() + "mge-fuzz-2p61-\(getpid()).safetensors"
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        defer { try? FileManager.default.removeItem(atPath: path) }
        XCTAssertThrowsError(try SafeTensors.read(path: path)) { error in
            XCTAssertTrue("\(error)".contains("too large to exist"), "\(error)")
        }
    }
}

/// The readers under fuzzing, each with a small valid file.
enum FuzzTargets {
    /// A torch.save file (small.<format>.pt: one tensor of every element type, non-contiguous
    /// included). The legacy format has no checksum, so its mutations reach the unpickler and
    /// the tensor rebuilding; the zip's mutations mostly meet its CRCs and headers.
    static func pyTorch(_ format: String) throws -> FuzzTarget {
        let source = PyTorchFileTests.fixtures + "/small.\(format).pt.zst"
        let valid = try Zstd.decompress([UInt8](try Data(contentsOf: URL(fileURLWithPath: source))), path: source)
        // Zip: the first local header's sizes, name and extra lengths.
        let fields: [(offset: Int, width: Int)] = format == "zip" ? [(18, 4), (22, 4), (26, 2), (28, 2)] : []
        return FuzzTarget(name: "pytorch-\(format)", fileName: "x.pt", valid: valid,
                          read: { path in for (_, t) in try TensorFile.read(path: path) { _ = t.floats; _ = t.tensor } },
                          fields: fields)
    }

    static func safeTensors() -> FuzzTarget {
        let tensors: [(name: String, tensor: SafeTensor)] = [
            ("w", SafeTensor(Tensor(shape: [2, 3], data: [1, 2, 3, 4, 5, 6]))),
            ("ids", SafeTensor(int64: [1, 2, 3, 4], shape: [4])),
            ("mask", SafeTensor(uint8: [1, 0, 1, 1, 0], shape: [5])),
            ("scalar", SafeTensor(int32: [7], shape: [])),
        ]
        let valid = SafeTensors.encode(tensors)
        return FuzzTarget(name: "safetensors", fileName: "x.safetensors", valid: valid,
                          read: { path in
                              for (_, t) in try SafeTensors.read(path: path) { _ = t.floats; _ = t.tensor }
                          },
                          fields: [(0, 8)], variants: safeTensorsHeaderVariants)
    }

    /// Every number in the JSON header replaced by huge, negative, fractional and exponent
    /// forms, and the dtype names replaced, with the length prefix kept consistent.
    static func safeTensorsHeaderVariants(_ valid: [UInt8]) -> [(String, [UInt8])] {
        let length = valid[0 ..< 8].reversed().reduce(0) { $0 << 8 | Int($1) }
        let header = String(decoding: valid[8 ..< 8 + length], as: UTF8.self)
        let data = Array(valid[(8 + length)...])
        func file(_ text: String) -> [UInt8] {
            var bytes: [UInt8] = []
            var n = UInt64(text.utf8.count)
            for _ in 0 ..< 8 { bytes.append(UInt8(n & 0xFF)); n >>= 8 }
            return bytes + Array(text.utf8) + data
        }
        var out: [(String, [UInt8])] = []
        // Runs of digits in the header: (range, text).
        var numbers: [(range: Range<String.Index>, text: String)] = []
        var i = header.startIndex
        while i < header.endIndex {
            guard header[i].isASCII, header[i].isNumber else { i = header.index(after: i); continue }
            let start = i
            while i < header.endIndex, header[i].isASCII, header[i].isNumber { i = header.index(after: i) }
            numbers.append((start ..< i, String(header[start ..< i])))
        }
        let replacements = ["2305843009213693952", "9223372036854775807", "9223372036854775808", "18446744073709551615",
                            "-1", "-9223372036854775808", "1e30", "2.5", "0", "true", "null", "\"3\"", "[]"]
        for match in numbers {
            for replacement in replacements {
                var text = header
                text.replaceSubrange(match.range, with: replacement)
                out.append(("number \(match.text) → \(replacement)", file(text)))
            }
        }
        for (old, new) in [("F32", "F128"), ("I64", "BOOL"), ("\"shape\"", "\"shap\""), ("data_offsets", "offsets"), ("{", "["), ("U8", "F64")] {
            if let range = header.range(of: old) {
                var text = header
                text.replaceSubrange(range, with: new)
                out.append(("\(old) → \(new)", file(text)))
            }
        }
        return out
    }

    static func graphFile() throws -> FuzzTarget {
        let edges: [(Int, Int, Float)] = [(0, 3, 0.5), (0, 4, -1), (1, 4, 2), (2, 3, 0.25), (3, 5, 1), (4, 5, -0.5)]
        let graph = makeGraph(n: 6, edges: edges, partitions: [Partition(name: "in", start: 0, count: 3, shape: [3]),
                                                               Partition(name: "hidden", start: 3, count: 2, shape: [1, 2]),
                                                               Partition(name: "out", start: 5, count: 1, shape: [1])])
        let path = NSTemporaryDirectory() + "mge-fuzz-valid-\(getpid()).mgeg"
        try graph.save(to: path)
        defer { try? FileManager.default.removeItem(atPath: path) }
        let valid = try [UInt8](Data(contentsOf: URL(fileURLWithPath: path)))
        // Header: magic 8, version 4, flags 4, nodes 8, edges 8, partitions 8, payload 8, compressed 8, checksum 8.
        let offsets: [Int] = [8, 12, 16, 24, 32, 40, 48, 56, valid.count - 16]
        let widths: [Int] = [4, 4, 8, 8, 8, 8, 8, 8, 8]
        return FuzzTarget(name: ".mgeg", fileName: "g.mgeg", valid: valid, read: { _ = try Graph.load(from: $0) },
                          fields: zip(offsets, widths).map { (offset: $0, width: $1) },
                          reseal: { bytes in
                              var sealed = bytes
                              var hash = XXHash64.hash(Array(bytes[0 ..< 56]))
                              for k in 56 ..< 64 { sealed[k] = UInt8(hash & 0xFF); hash >>= 8 }
                              return sealed
                          })
    }

    /// Three records of the official binary layout; the reader gets the folder holding them.
    static func cifar(classes: Int) -> FuzzTarget {
        let labelBytes = classes == 10 ? 1 : 2
        var valid: [UInt8] = []
        for r in 0 ..< 3 {
            if classes == 100 { valid.append(UInt8(r * 5)) }    // coarse label
            valid.append(UInt8(r * 3 % classes))
            valid += (0 ..< 3072).map { (k: Int) -> UInt8 in UInt8(truncatingIfNeeded: k * 7 + r) }
        }
        precondition(valid.count == 3 * (3072 + labelBytes))
        return FuzzTarget(name: "CIFAR-\(classes) .bin", fileName: classes == 10 ? "test_batch.bin" : "test.bin", valid: valid,
                          read: { path in
                              let folder = (path as NSString).deletingLastPathComponent
                              let data = classes == 10 ? try Dataset.cifar10(path: folder, split: .test)
                                  : try Dataset.cifar100(path: folder, split: .test)
                              for batch in try data.batches(size: 2, shuffle: false, seed: 0) { _ = batch.labels }
                          },
                          fields: [(0, 1), (1, 1), (3073, 1), (3074, 1)], truncationsAreInvalid: false)
    }

    /// A 64x64 JPEG as TinyImageNet ships them; its frame header's height and width are rewritten.
    static func jpeg() throws -> FuzzTarget {
        let pixels = (0 ..< 12_288).map { (i: Int) -> UInt8 in UInt8(truncatingIfNeeded: i * 13 / 3) }
        let valid = try JPEG.encode(pixels, width: 64, height: 64)
        var fields: [(offset: Int, width: Int)] = []
        var sof = -1
        for i in 0 ..< valid.count - 1 where valid[i] == 0xFF && valid[i + 1] == 0xC0 { sof = i; break }
        if sof >= 0 {
            let offsets: [Int] = [sof + 2, sof + 5, sof + 7, sof + 9]   // length, height, width, components
            let widths: [Int] = [2, 2, 2, 1]
            for k in 0 ..< 4 { fields.append((offset: offsets[k], width: widths[k])) }
        }
        return FuzzTarget(name: "JPEG", fileName: "x.JPEG", valid: valid,
                          read: { path in
                              let bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: path)))
                              _ = AreaResize.rgbToPlanar(try JPEG.decode(bytes), size: 32)
                          },
                          fields: fields, bigEndian: true)
    }

    /// A TinyImageNet folder of two classes and two validation images; `write` puts the fuzzed
    /// file in place of one of its text files.
    static func tinyImageNetFolder(_ dir: String) throws {
        let fm = FileManager.default
        try fm.createDirectory(atPath: dir + "/val/images", withIntermediateDirectories: true)
        let image = try JPEG.encode((0 ..< 12_288).map { (i: Int) -> UInt8 in UInt8(i % 251) }, width: 64, height: 64)
        for name in ["val_0.JPEG", "val_1.JPEG"] { try Data(image).write(to: URL(fileURLWithPath: dir + "/val/images/" + name)) }
        if !fm.fileExists(atPath: dir + "/wnids.txt") { try Data(tinyWnids.utf8).write(to: URL(fileURLWithPath: dir + "/wnids.txt")) }
        let annotations = dir + "/val/val_annotations.txt"
        if !fm.fileExists(atPath: annotations) { try Data(tinyAnnotations.utf8).write(to: URL(fileURLWithPath: annotations)) }
    }

    static let tinyWnids = "n01443537\nn01629819\n"
    static let tinyAnnotations = "val_0.JPEG\tn01629819\t0\t32\t44\t62\nval_1.JPEG\tn01443537\t52\t55\t57\t59\n"

    static func tinyImageNetAnnotations() -> FuzzTarget {
        tinyImageNetText(name: "TinyImageNet val_annotations.txt", at: "val/val_annotations.txt", valid: tinyAnnotations)
    }

    static func tinyImageNetClassList() -> FuzzTarget {
        tinyImageNetText(name: "TinyImageNet wnids.txt", at: "wnids.txt", valid: tinyWnids)
    }

    /// A target for one text file of a TinyImageNet folder: the fuzzed file replaces the one at
    /// `relativePath` in an otherwise valid folder, which the loader then reads.
    static func tinyImageNetText(name: String, at relativePath: String, valid: String) -> FuzzTarget {
        FuzzTarget(name: name, fileName: (relativePath as NSString).lastPathComponent, valid: Array(valid.utf8),
                   read: { path in
                       let root = (path as NSString).deletingLastPathComponent + "/tiny"
                       try tinyImageNetFolder(root)
                       try FileManager.default.copyItemReplacing(path, root + "/" + relativePath)
                       _ = try Dataset.tinyImageNet(path: root, split: .test)
                   },
                   truncationsAreInvalid: false)
    }
}

extension FuzzTargets {
    /// Quoted cells with a comma, doubled quotes and a newline; an empty cell, inf and nan.
    static let csvSeed = "model,pruning_algorithm,sparsity,accuracy,note\n"
        + "resnet20,snip,0.9,91.25,\"plain\"\n"
        + "resnet20,\"grasp, iterative\",0.95,88.5,\"says \"\"hi\"\"\nsecond line\"\n"
        + "vgg16,erk,0.98,,\n"
        + "wrn-28-10,synflow,9.5e-01,inf,nan\n"

    /// `csvSeed` compressed by the zstd command-line tool (`zstd -19`: one frame with its content size and checksum).
    static let csvSeedZstd: [UInt8] = [
        0x28, 0xB5, 0x2F, 0xFD, 0x24, 0xC2, 0x95, 0x04, 0x00, 0xD2, 0x8A, 0x20, 0x17, 0x90, 0xCD, 0x01, 0x60, 0x7F, 0x29, 0xE0,
        0x52, 0x93, 0xE9, 0x5B, 0xA1, 0xF8, 0xFF, 0x0B, 0x80, 0x82, 0xBE, 0x5A, 0xD8, 0x95, 0x13, 0x3A, 0xAB, 0xB5, 0xB3, 0x69,
        0x4E, 0x62, 0x08, 0xD6, 0x10, 0x92, 0xA4, 0x5C, 0x6B, 0xBA, 0xFA, 0x1C, 0x88, 0x00, 0x29, 0x82, 0x76, 0x6A, 0x65, 0x22,
        0x8F, 0x6F, 0x1E, 0x04, 0x63, 0xD3, 0xC2, 0x6D, 0x6E, 0x00, 0xD3, 0x6E, 0xD9, 0x5F, 0x88, 0xEC, 0x20, 0x02, 0x5F, 0xE9,
        0x0B, 0x08, 0x92, 0x06, 0xEE, 0xC4, 0x4F, 0x7D, 0x1F, 0x03, 0x19, 0xBD, 0x3A, 0x43, 0x6C, 0xD6, 0x16, 0x61, 0x1A, 0x85,
        0x40, 0x24, 0x99, 0x08, 0x43, 0x46, 0xDC, 0x9F, 0x43, 0xF1, 0xB6, 0x7F, 0x7D, 0xED, 0x73, 0x9D, 0xD5, 0xA2, 0x2E, 0x2D,
        0x8B, 0x66, 0xF5, 0xF8, 0x5D, 0xA3, 0x4F, 0xC8, 0x79, 0xEC, 0x8E, 0x35, 0x55, 0x58, 0x73, 0x4B, 0x1E, 0x65, 0x5B, 0xC6,
        0x41, 0x01, 0x04, 0x00, 0x02, 0xC1, 0x03, 0xA0, 0x45, 0x15, 0x82, 0x33, 0x36, 0x15, 0x05, 0x69, 0xEC, 0x53, 0x0D,
    ]

    /// The analysis reader (`read_csv`): a prefix of a CSV can be a valid CSV.
    static func analysisCSV() -> FuzzTarget {
        FuzzTarget(name: "analysis CSV", fileName: "x.csv", valid: Array(csvSeed.utf8),
                   read: { path in
                       let table = try CSVReader.read(path: path)
                       for c in 0 ..< table.columnCount where table.rowCount > 0 { _ = table.columns[c].text(at: table.rowCount - 1) }
                   },
                   truncationsAreInvalid: false, variants: csvVariants)
    }

    /// The analysis reader's `.csv.zst` path: every prefix of the frame is refused (truncated or bad magic).
    /// Fields: frame header descriptor, content size (one byte here), first block header.
    static func analysisCSVZstd() -> FuzzTarget {
        FuzzTarget(name: "analysis CSV .zst", fileName: "x.csv.zst", valid: csvSeedZstd,
                   read: { _ = try CSVReader.read(path: $0) },
                   fields: [(0, 4), (4, 1), (5, 1), (6, 3)])
    }

    /// The results reader (sweep rows, `append_csv`), the same seed and variants.
    static func resultsCSV() -> FuzzTarget {
        FuzzTarget(name: "results CSV", fileName: "results.csv", valid: Array(csvSeed.utf8),
                   read: { path in
                       let table = try ResultsCSV.read(path: path)
                       for row in table.rows { XCTAssertEqual(row.count, table.header.count) }
                   },
                   truncationsAreInvalid: false, variants: csvVariants)
    }

    /// CSV-aware variants: huge and odd cells, embedded quotes and line breaks, ragged rows,
    /// byte-order marks, NULs and invalid UTF-8, many columns, empty files.
    static func csvVariants(_ valid: [UInt8]) -> [(String, [UInt8])] {
        let text = String(decoding: valid, as: UTF8.self)
        let header = "model,pruning_algorithm,sparsity,accuracy,note\n"
        func row(_ cells: String) -> (String, [UInt8]) { ("row " + String(cells.prefix(40)), Array((header + cells + "\n").utf8)) }
        var out: [(String, [UInt8])] = [
            ("empty", []), ("one newline", Array("\n".utf8)), ("only a BOM", [0xEF, 0xBB, 0xBF]),
            ("BOM + seed", [0xEF, 0xBB, 0xBF] + valid), ("header only", Array(header.utf8)),
            ("header without newline", Array(header.dropLast().utf8)),
            ("CRLF line ends", Array(text.replacingOccurrences(of: "\n", with: "\r\n").utf8)),
            ("CR line ends", Array(text.replacingOccurrences(of: "\n", with: "\r").utf8)),
            ("blank lines between rows", Array(text.replacingOccurrences(of: "\n", with: "\n\n").utf8)),
            ("duplicate column", Array(text.replacingOccurrences(of: "accuracy", with: "sparsity").utf8)),
            ("a lone quote", Array("\"".utf8)), ("an empty quoted cell", Array("\"\"".utf8)), ("commas only", Array(",,,,".utf8)),
            ("10,000 columns", Array((String(repeating: "c,", count: 9_999) + "c\n" + String(repeating: "1,", count: 9_999) + "1\n").utf8)),
            ("NUL in a cell", Array(header.utf8) + Array("a\0b,snip,0.9,1,x\n".utf8)),
            ("invalid UTF-8", Array(header.utf8) + [0xFF, 0xFE, 0x2C, 0xC3, 0x2C, 0x31, 0x2C, 0x32, 0x2C, 0xE2, 0x82, 0x0A]),
        ]
        for cells in [
            "a,b,1,2,\"unclosed", "a,b,1,2,\"x\"y", "a,b,1,2,x\"y", "a,b,1,2,\"x\"\rb", "a,b,1,2,\"x\"\r", "a,b,1,2,\"\"\"\"\"\"",
            "a,b,1,2", "a,b,1,2,3,4", "a,b,1,2,", "a,b,1,2,3,", ",,,,", "a,b,1e999,-1e-999,-0", "a,b,0x1p3,nan,-inf",
            "a,b,.,e5,+", "a,b,--1,1e,1.2.3", "a,b,infinity,-nan,+inf", "a,b, 1 ,  ,\" 2 \"",
            "a,b," + String(repeating: "9", count: 63) + "," + String(repeating: "9", count: 64) + "," + String(repeating: "1", count: 400),
            "a,b,1,2," + String(repeating: "x", count: 200_000),
            "a,b,1,2,\"" + String(repeating: "\"\"\n,\r", count: 20_000) + "\"",
            "a,\"b\nc\nd\",1,2,\"\r\n\"",
        ] { out.append(row(cells)) }
        return out
    }
}

extension FileManager {
    func copyItemReplacing(_ source: String, _ destination: String) throws {
        try? removeItem(atPath: destination)
        try copyItem(atPath: source, toPath: destination)
    }
}
