import OracleSupport
import XCTest
@testable import Kernels

final class GraphStoreTests: XCTestCase {
    private func temporaryPath(_ suffix: String) -> String {
        NSTemporaryDirectory() + "/mge-graph-\(UInt32.random(in: 0 ... .max))" + suffix
    }

    private func assertSameGraph(_ a: Graph, _ b: Graph, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(a.nodeCount, b.nodeCount, file: file, line: line)
        XCTAssertEqual(a.partitions, b.partitions, file: file, line: line)
        XCTAssertEqual(a.outOffsets, b.outOffsets, file: file, line: line)
        XCTAssertEqual(a.outTargets, b.outTargets, file: file, line: line)
        XCTAssertEqual(a.outWeights.map(\.bitPattern), b.outWeights.map(\.bitPattern), file: file, line: line)
        XCTAssertEqual(a.inOffsets, b.inOffsets, file: file, line: line)
        XCTAssertEqual(a.inSources, b.inSources, file: file, line: line)
        XCTAssertEqual(a.inWeights.map(\.bitPattern), b.inWeights.map(\.bitPattern), file: file, line: line)
    }

    /// Low 32 bits of XXH64 match the content checksums the `zstd --check` tool wrote for
    /// the byte pattern (i·131 + 7) mod 256 of each length; chunked updates agree.
    func testXXHash64MatchesZstdFrameChecksums() {
        let vectors: [(Int, UInt64)] = [(0, 0x51d8e999), (1, 0xe858bbb7), (3, 0xee6332bb), (4, 0x4b3bb23d), (8, 0x71ce94dd),
                                        (31, 0x306b5d8f), (32, 0xbc5d6e25), (33, 0x4e1cbe9f), (63, 0x066cb6a5), (64, 0x0411632e),
                                        (100, 0xd3dc2d8f), (1000, 0xc82eb373), (4099, 0xd6a1985b)]
        XCTAssertEqual(XXHash64.hash([]), 0xEF46_DB37_51D8_E999)
        for (length, low) in vectors {
            let bytes = (0 ..< length).map { UInt8(($0 * 131 + 7) % 256) }
            let h = XXHash64.hash(bytes)
            XCTAssertEqual(h & 0xFFFF_FFFF, low, "length \(length)")
            var chunked = XXHash64()
            var i = 0, step = 1
            while i < length { let j = min(length, i + step); chunked.update(Array(bytes[i ..< j])); i = j; step = step * 3 % 37 + 1 }
            XCTAssertEqual(chunked.digest(), h, "length \(length) in chunks")
        }
    }

    func testSaveLoadRoundTrip() throws {
        let graphs = [
            try unroll(UnrollFixtures.randomlyPruned(ModelZoo.toy(), keep: 0.5, seed: 1)),
            try unroll(UnrollFixtures.randomlyPruned(ModelZoo.resnet(depth: 20, classes: 10), keep: 0.1, seed: 1), compat: .reference),
            try unroll(UnrollFixtures.randomlyPruned(ModelZoo.toy(), keep: 0, seed: 1)),
        ]
        for g in graphs {
            let path = temporaryPath(".mgeg")
            defer { unlink(path) }
            try g.save(to: path)
            assertSameGraph(g, try Graph.load(from: path))
            let size = try XCTUnwrap(FileManager.default.attributesOfItem(atPath: path)[.size] as? Int)
            if g.edgeCount > 100_000 { XCTAssertLessThan(size, g.edgeCount * 6 / 2, "compresses at least 2x against the raw payload") }
        }
    }

    /// Loads `bytes` written to a file and expects a refusal whose message contains `reason`.
    private func assertRefused(_ bytes: [UInt8], _ reason: String, _ label: String, file: StaticString = #filePath, line: UInt = #line) throws {
        let path = temporaryPath(".mgeg")
        defer { unlink(path) }
        try AtomicFile.write(bytes, to: path)
        XCTAssertThrowsError(try Graph.load(from: path), label, file: file, line: line) { error in
            // An empty reason accepts any refusal (zstd names the damage in its own words).
            XCTAssertTrue(reason.isEmpty || "\(error)".contains(reason), "\(label): \(error)", file: file, line: line)
            XCTAssertTrue("\(error)".contains("not a valid file"), "\(label): \(error)", file: file, line: line)
        }
    }

    func testTruncatedAlteredAndForeignFilesAreRefused() throws {
        let g = try unroll(UnrollFixtures.randomlyPruned(ModelZoo.resnet(depth: 20, classes: 10), keep: 0.05, seed: 4))
        let path = temporaryPath(".mgeg")
        defer { unlink(path) }
        try g.save(to: path)
        let bytes = try XCTUnwrap(FileManager.default.contents(atPath: path).map { [UInt8]($0) })
        XCTAssertGreaterThan(bytes.count, 10_000)
        for cut in [0, 7, 63, 64, 65, 1000, bytes.count / 2, bytes.count - 17, bytes.count - 9, bytes.count - 1] {
            try assertRefused(Array(bytes[0 ..< cut]), cut < 80 ? "shorter than an empty" : "truncated", "cut at \(cut)")
        }
        try assertRefused(bytes + [0], "unexpected bytes", "one byte appended")
        // Flipped bits: header field, compressed data (several places), payload checksum, end magic.
        for (offset, reason) in [(20, "header checksum"), (60, "header checksum"), (64 + 40, ""), (bytes.count / 2, ""),
                                 (bytes.count - 30, ""), (bytes.count - 12, "payload checksum"), (bytes.count - 3, "end marker")] {
            var altered = bytes
            altered[offset] ^= 0x10
            try assertRefused(altered, reason, "byte \(offset) flipped")
        }
        var wrongMagic = bytes
        wrongMagic[1] = UInt8(ascii: "X")
        try assertRefused(wrongMagic, "magic", "wrong magic")
        // A future version with a valid header checksum is refused for its version.
        var future = bytes
        future[8] = 2
        let sum = XXHash64.hash(Array(future[0 ..< 56]))
        for k in 0 ..< 8 { future[56 + k] = UInt8(truncatingIfNeeded: sum >> (8 * UInt64(k))) }
        try assertRefused(future, "version 2 is not supported", "version 2")
        var unsummedVersion = bytes
        unsummedVersion[8] = 1 &+ 1
        try assertRefused(unsummedVersion, "version", "version changed without checksum")
        XCTAssertThrowsError(try Graph.load(from: temporaryPath(".missing"))) { XCTAssertTrue("\($0)".contains("cannot read"), "\($0)") }
        // The original still loads: the refusals came from the alterations.
        assertSameGraph(g, try Graph.load(from: path))
    }

    func testSaveIntoMissingFolderFailsWithoutLeavingFiles() throws {
        let g = try unroll(Network(architecture: ModelZoo.toy(), seed: 0))
        XCTAssertThrowsError(try g.save(to: "/nonexistent-mge-dir/x.mgeg")) { XCTAssertTrue("\($0)".contains("does not exist"), "\($0)") }
    }

    /// `exportDegrees` writes the oracle's layout byte for byte (names, dtypes, shapes, order).
    func testExportDegreesReproducesOracleFileExactly() throws {
        var checked = 0
        for dir in OracleLocation.cases() where FileManager.default.fileExists(atPath: dir + "/mge.safetensors") {
            let (net, _) = try UnrollFixtures.oracleNetwork(dir)
            let path = temporaryPath(".safetensors")
            defer { unlink(path) }
            try unroll(net, compat: .reference).exportDegrees(to: path)
            let ours = try XCTUnwrap(FileManager.default.contents(atPath: path))
            let oracle = try XCTUnwrap(FileManager.default.contents(atPath: dir + "/mge.safetensors"))
            let a = try SafeTensors.read(path: path), b = try SafeTensors.read(path: dir + "/mge.safetensors")
            XCTAssertEqual(a.map(\.name), b.map(\.name), dir)
            XCTAssertEqual(a.map(\.tensor.dtype), b.map(\.tensor.dtype), dir)
            XCTAssertEqual(a.map(\.tensor.shape), b.map(\.tensor.shape), dir)
            XCTAssertEqual(a.map(\.tensor.bytes), b.map(\.tensor.bytes), dir)
            XCTAssertEqual(ours, oracle, "\(dir): files differ byte for byte")
            checked += 1
            if checked == 3 { break }
        }
        XCTAssertEqual(checked, 3)
    }

    func testEdgeListExport() throws {
        let g = try unroll(UnrollFixtures.randomlyPruned(ModelZoo.toy(), keep: 0.5, seed: 9))
        let path = temporaryPath(".tsv")
        defer { unlink(path) }
        try g.exportEdgeList(to: path)
        let text = try String(contentsOfFile: path, encoding: .utf8)
        let lines = text.split(separator: "\n")
        XCTAssertEqual(lines.first, "source\ttarget\tweight")
        XCTAssertEqual(lines.count, g.edgeCount + 1)
        var e = 0
        for u in 0 ..< g.nodeCount {
            for k in g.outOffsets[u] ..< g.outOffsets[u + 1] {
                let fields = lines[e + 1].split(separator: "\t")
                XCTAssertEqual(fields.count, 3)
                XCTAssertEqual(Int(fields[0]), u)
                XCTAssertEqual(UInt32(fields[1]), g.outTargets[k])
                XCTAssertEqual(Float16(String(fields[2])), g.outWeights[k], "weight reads back to the same half")
                e += 1
            }
        }
    }
}
