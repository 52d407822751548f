import Foundation
import OracleSupport
import XCTest
@testable import Kernels

/// PyTorch checkpoints: files written by torch.save (Tests/Fixtures/torch, made by
/// make_fixtures.py with torch 2.15 and 1.13) read to exactly the tensors the script also
/// wrote as safetensors; refused files refused with a reason and nothing run; mge's own .pt
/// files read back identically.
final class PyTorchFileTests: XCTestCase {
    static let fixtures = OracleLocation.packageRoot.appendingPathComponent("Tests/Fixtures/torch").path
    static let models = ["conv6", "resnet20", "resnet32", "wrn28_2", "mobilenetv2"]
    static let marker = "/tmp/mge-pwned-marker"

    var scratch = ""
    override func setUpWithError() throws {
        scratch = NSTemporaryDirectory() + "mge-pt-\(getpid())-\(UInt32.random(in: 0 ... .max))"
        try FileManager.default.createDirectory(atPath: scratch, withIntermediateDirectories: true)
    }
    override func tearDownWithError() throws { try? FileManager.default.removeItem(atPath: scratch) }

    /// Unpacks fixture `name` (stored as name.zst) into the scratch folder; returns its path.
    func fixture(_ name: String) throws -> String {
        let source = Self.fixtures + "/" + name + ".zst"
        let bytes = try Zstd.decompress([UInt8](try Data(contentsOf: URL(fileURLWithPath: source))), path: source)
        let path = scratch + "/" + name
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        return path
    }

    func manifest() throws -> [String: Any] {
        let data = try Data(contentsOf: URL(fileURLWithPath: Self.fixtures + "/manifest.json"))
        return try XCTUnwrap(try JSONSerialization.jsonObject(with: data) as? [String: Any])
    }

    /// Same names in the same order, same shapes, same values (as Float: the reference is F32/I64).
    func assertSameTensors(_ got: [(name: String, tensor: SafeTensor)], _ want: [(name: String, tensor: SafeTensor)],
                           _ label: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(got.map(\.name), want.map(\.name), "\(label): names", file: file, line: line)
        for (g, w) in zip(got, want) {
            XCTAssertEqual(g.tensor.shape, w.tensor.shape, "\(label): \(g.name) shape", file: file, line: line)
            XCTAssertEqual(g.tensor.floats, w.tensor.floats, "\(label): \(g.name) values", file: file, line: line)
            XCTAssertEqual(g.tensor.integers != nil, w.tensor.integers != nil, "\(label): \(g.name) integer or float", file: file, line: line)
        }
    }

    func testZipAndLegacyFilesOfTheFiveModelsReadToTheReferenceAndFitTheModels() throws {
        let kept = try XCTUnwrap(try manifest()["kept"] as? [String: Int])
        for model in Self.models {
            let reference = try SafeTensors.read(path: try fixture("\(model).reference.safetensors"))
            let zipped = try TensorFile.read(path: try fixture("\(model).zip.pt"))
            let legacy = try TensorFile.read(path: try fixture("\(model).legacy.pt"))
            assertSameTensors(zipped, reference, "\(model) zip")
            assertSameTensors(legacy, reference, "\(model) legacy")
            // Byte-identical between the formats, dtypes included (F32 weights, I64 num_batches_tracked).
            XCTAssertEqual(zipped.map { "\($0.tensor.dtype)" }, legacy.map { "\($0.tensor.dtype)" }, model)
            XCTAssertEqual(zipped.map(\.tensor.bytes), legacy.map(\.tensor.bytes), model)
            XCTAssertEqual(Set(zipped.filter { $0.name.hasSuffix("num_batches_tracked") }.map { $0.tensor.dtype }), [.i64], model)

            // The names and shapes are mge's: the state dict loads, and the zero pattern gives the masks.
            let net = Network(architecture: try XCTUnwrap(ModelZoo.build(model, classes: 10)), seed: 0)
            try net.loadStateDict(zipped)
            let (k, total) = net.setMasksFromWeights()
            XCTAssertEqual(k, kept[model], "\(model): kept weights")
            XCTAssertEqual(total, net.prunableCount)
            for spec in net.architecture.prunable {
                let w = try XCTUnwrap(net.parameters[spec.name]), mask = try XCTUnwrap(net.masks[spec.name])
                XCTAssertTrue(zip(w.data, mask).allSatisfy { ($0 != 0) == ($1 == 1) }, "\(model) \(spec.name): mask is the nonzero pattern")
            }
        }
    }

    /// float16, bfloat16, float64, protocol 4, a second torch version, a wrapper dict with a
    /// `module.` prefix and non-contiguous / offset storages: all the same tensors.
    func testEveryVariantOfResNet20ReadsToTheSameTensors() throws {
        let reference = try SafeTensors.read(path: try fixture("resnet20.reference.safetensors"))
        let versioned = try XCTUnwrap(try manifest()["versioned"] as? [String: String])
        XCTAssertEqual(versioned["torch1.13"], "1.13.1+cu117")
        for variant in ["f16.zip", "bf16.zip", "f64.zip", "protocol4.zip", "wrapped.zip", "wrapped.legacy", "torch1.13.zip", "torch1.13.legacy"] {
            let got = try TensorFile.read(path: try fixture("resnet20.\(variant).pt"))
            assertSameTensors(got, reference, variant)
        }
        // The element types arrive as safetensors types: F16 stays F16, BF16 widens to F32, F64 stays F64.
        let f16 = try TensorFile.read(path: try fixture("resnet20.f16.zip.pt"))
        XCTAssertEqual(f16.first?.tensor.dtype, .f16)
        XCTAssertEqual(try TensorFile.read(path: try fixture("resnet20.bf16.zip.pt")).first?.tensor.dtype, .f32)
        XCTAssertEqual(try TensorFile.read(path: try fixture("resnet20.f64.zip.pt")).first?.tensor.dtype, .f64)
    }

    func testSmallFileOfEveryElementTypeMatchesWhatTorchHeld() throws {
        let small = try XCTUnwrap(try manifest()["small"] as? [String: [Any]])
        for format in ["zip", "legacy"] {
            let got = try TensorFile.read(path: try fixture("small.\(format).pt"))
            XCTAssertEqual(got.map(\.name), ["w", "wt", "h", "b", "d", "n", "i", "m"])
            for (name, t) in got {
                let entry = try XCTUnwrap(small[name])
                XCTAssertEqual(t.shape, entry[0] as? [Int], "\(format) \(name)")
                XCTAssertEqual(t.floats.map(Double.init), entry[1] as? [Double], "\(format) \(name)")
            }
            XCTAssertEqual(got.first { $0.name == "m" }?.tensor.dtype, .u8, "bool reads as U8 0/1")
        }
    }

    func testMaliciousAndNonStateDictPicklesAreRefusedByNameAndRunNothing() throws {
        unlink(Self.marker)
        for (name, global) in [("malicious.zip.pt", "posix.system"), ("malicious.legacy.pt", "posix.system"),
                               ("module.zip.pt", "torch.nn.modules.linear.Linear")] {
            let path = try fixture(name)
            XCTAssertThrowsError(try TensorFile.read(path: path), name) { error in
                XCTAssertTrue("\(error)".contains("refused global \(global)"), "\(name): \(error)")
            }
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: Self.marker), "reading the malicious files ran its command")
        // Hand-made: builtins.eval through STACK_GLOBAL (protocol 4) is refused by name too.
        var evil: [UInt8] = [0x80, 4, 0x8C, 8] + Array("builtins".utf8) + [0x8C, 4] + Array("eval".utf8) + [0x93]
        evil += [0x8C, 1, 0x31, 0x85, 0x52, 0x2E] // ('1',) REDUCE STOP
        XCTAssertThrowsError(try Unpickler(allowedGlobals: PyTorchFile.allowedGlobals).load(evil)) { error in
            XCTAssertTrue("\(error)".contains("refused global builtins.eval"), "\(error)")
        }
    }

    func testTruncatedCorruptAndWrongFilesAreRefusedWithAReason() throws {
        for name in ["resnet20.zip.pt", "resnet20.legacy.pt"] {
            let valid = [UInt8](try Data(contentsOf: URL(fileURLWithPath: try fixture(name))))
            var cases: [(String, [UInt8])] = [("empty", []), ("text", Array("hello".utf8))]
            for cut in [1, 10, 100, valid.count / 3, valid.count / 2, valid.count - 1] { cases.append(("cut at \(cut)", Array(valid[0 ..< cut]))) }
            var flipped = valid
            flipped[valid.count / 2] ^= 0x5A // inside a storage: the zip's CRC catches it; legacy: values differ, see below
            if name.hasSuffix("zip.pt") { cases.append(("flipped byte", flipped)) }
            for (label, bytes) in cases {
                let path = scratch + "/bad-" + name
                try Data(bytes).write(to: URL(fileURLWithPath: path))
                XCTAssertThrowsError(try TensorFile.read(path: path), "\(name) \(label)") { error in
                    XCTAssertTrue("\(error)".contains("is not a valid file"), "\(name) \(label): \(error)")
                }
            }
        }
        // A state dict whose storage is shorter than its tensor needs.
        let short = PyTorchFile.pickle([("w", SafeTensor(Tensor(shape: [2, 2], data: [1, 2, 3, 4])))])
        let zipped = try PyTorchFile.storedZip([("archive/data.pkl", short), ("archive/data/0", [0, 0, 128, 63])])
        XCTAssertThrowsError(try PyTorchFile.decode(zipped)) { error in
            XCTAssertTrue("\(error)".contains("storage 0 holds 4 bytes"), "\(error)")
        }
        // A file that is not a state dict: a list.
        XCTAssertThrowsError(try PyTorchFile.decode(try PyTorchFile.storedZip([("archive/data.pkl", [0x80, 2, 0x5D, 0x2E])]))) { error in
            XCTAssertTrue("\(error)".contains("not a dict of tensors"), "\(error)")
        }
    }

    func testUnpicklerRefusesDeepNestingAndCyclesWithoutCrashing() throws {
        let unpickler = Unpickler(allowedGlobals: [])
        // 100 000 nested 1-tuples.
        var deep: [UInt8] = [0x80, 2, 0x4E]
        deep += [UInt8](repeating: 0x85, count: 100_000)
        deep.append(0x2E)
        XCTAssertThrowsError(try unpickler.load(deep)) { XCTAssertTrue("\($0)".contains("nested deeper"), "\($0)") }
        // A list appended to itself: l = []; l.append(l).
        let cycle: [UInt8] = [0x80, 2, 0x5D, 0x71, 0, 0x68, 0, 0x61, 0x2E]
        XCTAssertThrowsError(try unpickler.load(cycle)) { XCTAssertTrue("\($0)".contains("cycle"), "\($0)") }
        // Memo read before written, stack underflow, MARK left open.
        for bad: [UInt8] in [[0x80, 2, 0x68, 5, 0x2E], [0x80, 2, 0x85, 0x2E], [0x80, 2, 0x28, 0x4E, 0x2E]] {
            XCTAssertThrowsError(try unpickler.load(bad))
        }
    }

    /// torch.nn.utils.prune's `weight_orig` + `weight_mask`, and `weight` + `weight_mask`, load as
    /// the effective weights: the same network as the masked state dict itself.
    func testPrunedStateDictLayoutsLoadAsTheirEffectiveWeights() throws {
        let reference = try SafeTensors.read(path: try fixture("resnet20.reference.safetensors"))
        let architecture = try XCTUnwrap(ModelZoo.build("resnet20", classes: 10))
        let plain = Network(architecture: architecture, seed: 0)
        try plain.loadStateDict(reference)
        let prunable = Set(architecture.prunable.map(\.name))
        for layout in ["orig", "weight"] {
            var entries: [(name: String, tensor: SafeTensor)] = []
            for (name, t) in reference {
                guard prunable.contains(name) else { entries.append((name, t)); continue }
                // The dense weight holds 5 where the mask removes it, as an unpruned weight would.
                let dense = t.floats.map { $0 == 0 ? Float(5) : $0 }
                let mask = t.floats.map { $0 == 0 ? Float(0) : 1 }
                entries.append((layout == "orig" ? name + "_orig" : name, SafeTensor(Tensor(shape: t.shape, data: dense))))
                entries.append((name + "_mask", SafeTensor(Tensor(shape: t.shape, data: mask))))
            }
            let net = Network(architecture: architecture, seed: 1)
            try net.loadStateDict(entries)
            for spec in architecture.parameters { XCTAssertEqual(net.parameters[spec.name], plain.parameters[spec.name], "\(layout) \(spec.name)") }
        }
        // A mask whose weight is missing is still reported as an unknown parameter.
        XCTAssertThrowsError(try plain.loadStateDict(reference + [("nothing_mask", SafeTensor(Tensor(shape: [1], data: [1])))]))
    }

    func testSaveWeightsRoundTripIsIdenticalAndCarriesNumBatchesTracked() throws {
        let net = Network(architecture: try XCTUnwrap(ModelZoo.build("resnet20", classes: 10)), seed: 3)
        try net.loadStateDict(try TensorFile.read(path: try fixture("resnet20.zip.pt")))
        net.setMasksFromWeights()
        let path = scratch + "/out.pt"
        let written = TensorFile.stateDict(of: net, for: path)
        try TensorFile.write(written, path: path)
        let back = try TensorFile.read(path: path)
        XCTAssertEqual(back.map(\.name), written.map(\.name))
        XCTAssertEqual(back.map(\.tensor.bytes), written.map(\.tensor.bytes))
        XCTAssertEqual(back.map { "\($0.tensor.dtype)" }, written.map { "\($0.tensor.dtype)" })
        // PyTorch's order: weight, bias, running_mean, running_var, num_batches_tracked (Int64 0).
        let names = back.map(\.name)
        let i = try XCTUnwrap(names.firstIndex(of: "bn1.running_var"))
        XCTAssertEqual(names[i + 1], "bn1.num_batches_tracked")
        XCTAssertEqual(back[i + 1].tensor.integers, [0])
        XCTAssertEqual(back.count, net.stateDict().count + net.architecture.parameters.filter { $0.role == .runningVar }.count)
        // Same names as torch.save wrote for the same model (the fixture), and the same weights.
        XCTAssertEqual(names, try TensorFile.read(path: try fixture("resnet20.reference.safetensors")).map(\.name))
        let again = Network(architecture: net.architecture, seed: 9)
        try again.loadStateDict(back)
        for spec in net.architecture.parameters { XCTAssertEqual(again.parameters[spec.name], net.parameters[spec.name], spec.name) }
        // Written through a temporary and a rename: nothing else left in the folder.
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: scratch).filter { $0.hasPrefix(".out.pt") }, [])
    }
}
