import CArchive
import Foundation
import XCTest
@testable import Kernels

/// `DatasetDownload` against a local HTTP server on 127.0.0.1 (LocalHTTPServer) acting as
/// `$MGE_DATA_MIRROR`: small archives in the official layouts, checked against its SHA256SUMS.
/// No external host is contacted.
final class DownloadTests: XCTestCase {
    private var server: LocalHTTPServer!
    private var root = ""

    override func setUpWithError() throws {
        server = try LocalHTTPServer()
        root = NSTemporaryDirectory() + "mge-download-\(getpid())-\(UInt32.random(in: 0 ... .max))"
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
    }

    override func tearDown() {
        server.stop()
        try? FileManager.default.removeItem(atPath: root)
        Cancellation.reset()
    }

    /// Serves `archive` under its official name with a SHA256SUMS listing `checksum` (default: its own).
    private func publish(_ archive: DatasetArchive, _ bytes: [UInt8], checksum: String? = nil) {
        server.serve("/" + archive.fileName, bytes)
        server.serve("/SHA256SUMS", Array("\(checksum ?? (try? Digest.hex(.sha256, bytes)) ?? "")  \(archive.fileName)\n".utf8))
    }

    private func leftovers() throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: root).sorted()
    }

    func testCIFAR10ArchiveIsFetchedCheckedAndUnpacked() throws {
        let archive = try TestArchives.cifar(classes: 10, records: 3)
        publish(.cifar10, archive)
        let outcome = try DatasetDownload.fetch(.cifar10, root: root, mirror: server.base)
        XCTAssertEqual(outcome, .downloaded(root + "/cifar10"))
        XCTAssertEqual(try leftovers(), ["cifar10"], "no part file or staging folder is left")
        let test = try Dataset.cifar10(path: root + "/cifar10", split: .test)
        XCTAssertEqual(test.count, 3)
        XCTAssertEqual(try Dataset.cifar10(path: root + "/cifar10", split: .train).count, 15)
        XCTAssertEqual(server.requests.map(\.path), ["/SHA256SUMS", "/cifar-10-binary.tar.gz"])
        XCTAssertEqual(try DatasetDownload.fetch(.cifar10, root: root, mirror: server.base), .alreadyPresent(root + "/cifar10"))
    }

    func testCIFAR100AndTinyImageNetArchives() throws {
        publish(.cifar100, try TestArchives.cifar(classes: 100, records: 4))
        XCTAssertEqual(try DatasetDownload.fetch(.cifar100, root: root, mirror: server.base), .downloaded(root + "/cifar100"))
        XCTAssertEqual(try Dataset.cifar100(path: root + "/cifar100", split: .test).count, 4)

        publish(.tinyImageNet, try TestArchives.tinyImageNet())
        XCTAssertEqual(try DatasetDownload.fetch(.tinyImageNet, root: root, mirror: server.base), .downloaded(root + "/tinyimagenet"))
        let val = try Dataset.tinyImageNet(path: root + "/tinyimagenet", split: .test)
        XCTAssertEqual(val.count, 2)
        XCTAssertEqual(try Dataset.tinyImageNet(path: root + "/tinyimagenet", split: .train).count, 4)
        XCTAssertEqual(try leftovers(), ["cifar100", "tinyimagenet"])
    }

    /// The connection is cut after 40% of the archive: the part stays, no dataset appears; the
    /// next call asks for the rest with a range request and completes.
    func testCutDownloadResumes() throws {
        let archive = try TestArchives.cifar(classes: 10, records: 8)
        publish(.cifar10, archive)
        let cut = archive.count * 2 / 5
        server.cutNext("/" + DatasetArchive.cifar10.fileName, after: cut)
        XCTAssertThrowsError(try DatasetDownload.fetch(.cifar10, root: root, mirror: server.base)) { error in
            XCTAssertTrue("\(error)".contains("run it again to resume"), "\(error)")
        }
        let part = root + "/.cifar-10-binary.tar.gz.part"
        XCTAssertEqual(try leftovers(), [".cifar-10-binary.tar.gz.part"])
        XCTAssertEqual(try FileManager.default.attributesOfItem(atPath: part)[.size] as? Int, cut)

        XCTAssertEqual(try DatasetDownload.fetch(.cifar10, root: root, mirror: server.base), .downloaded(root + "/cifar10"))
        let ranges = server.requests.filter { $0.path == "/cifar-10-binary.tar.gz" }.map(\.rangeStart)
        XCTAssertEqual(ranges, [nil, cut])
        XCTAssertEqual(try Dataset.cifar10(path: root + "/cifar10", split: .test).count, 8)
        XCTAssertEqual(try leftovers(), ["cifar10"])
    }

    func testChecksumMismatchLeavesNothing() throws {
        let archive = try TestArchives.cifar(classes: 10, records: 2)
        let digest = try Digest.hex(.sha256, archive)
        publish(.cifar10, archive, checksum: String(repeating: "ab", count: 32))
        XCTAssertThrowsError(try DatasetDownload.fetch(.cifar10, root: root, mirror: server.base)) { error in
            XCTAssertEqual(error as? DownloadError, .checksum(file: "cifar-10-binary.tar.gz", algorithm: "SHA-256",
                                                               expected: String(repeating: "ab", count: 32), actual: digest))
        }
        XCTAssertEqual(try leftovers(), [])
    }

    func testMirrorWithoutChecksumIsRefused() throws {
        server.serve("/cifar-10-binary.tar.gz", try TestArchives.cifar(classes: 10, records: 2))
        server.serve("/SHA256SUMS", Array("\(String(repeating: "0", count: 64))  other.tar.gz\n".utf8))
        XCTAssertThrowsError(try DatasetDownload.fetch(.cifar10, root: root, mirror: server.base)) { error in
            XCTAssertTrue("\(error)".contains("lists no checksum for cifar-10-binary.tar.gz"), "\(error)")
        }
        XCTAssertEqual(try leftovers(), [])
    }

    func testServerErrorLeavesNothing() throws {
        publish(.cifar10, try TestArchives.cifar(classes: 10, records: 2))
        server.fail("/cifar-10-binary.tar.gz", status: 500)
        XCTAssertThrowsError(try DatasetDownload.fetch(.cifar10, root: root, mirror: server.base)) { error in
            XCTAssertTrue("\(error)".contains("the server answered HTTP 500"), "\(error)")
        }
        XCTAssertEqual(try leftovers(), [])
        server.fail("/SHA256SUMS", status: 503)
        XCTAssertThrowsError(try DatasetDownload.fetch(.cifar10, root: root, mirror: server.base)) { error in
            XCTAssertTrue("\(error)".contains("SHA256SUMS failed: the server answered HTTP 503"), "\(error)")
        }
    }

    /// A full disk, as the file-size limit (RLIMIT_FSIZE, 64 kB) makes it: writes fail with
    /// EFBIG like they would with ENOSPC. Refused with the reason, nothing left behind.
    func testFullDiskLeavesNothing() throws {
        let archive = try TestArchives.cifar(classes: 10, records: 12)   // ~220 kB of noise
        XCTAssertGreaterThan(archive.count, 128 << 10)
        publish(.cifar10, archive)
        var saved = rlimit()
        getrlimit(Int32(RLIMIT_FSIZE.rawValue), &saved)
        var limit = saved
        limit.rlim_cur = 64 << 10
        XCTAssertEqual(setrlimit(Int32(RLIMIT_FSIZE.rawValue), &limit), 0)
        defer { var restore = saved; setrlimit(Int32(RLIMIT_FSIZE.rawValue), &restore) }
        XCTAssertThrowsError(try DatasetDownload.fetch(.cifar10, root: root, mirror: server.base)) { error in
            XCTAssertTrue("\(error)".contains("cannot write") && "\(error)".contains("too large"), "\(error)")
        }
        XCTAssertEqual(try leftovers(), [])
    }

    /// An archive whose entry climbs out of the destination is refused before anything is visible.
    func testArchiveEscapingTheDestinationIsRefused() throws {
        let bytes = try TestArchives.make(zip: false, [("../evil.txt", Array("x".utf8)), ("cifar-10-batches-bin/test_batch.bin", [0])])
        publish(.cifar10, bytes)
        XCTAssertThrowsError(try DatasetDownload.fetch(.cifar10, root: root, mirror: server.base)) { error in
            XCTAssertTrue("\(error)".contains("would land outside the destination"), "\(error)")
        }
        XCTAssertEqual(try leftovers(), [])
        XCTAssertFalse(FileManager.default.fileExists(atPath: (root as NSString).deletingLastPathComponent + "/evil.txt"))
    }

    /// An archive without the files the loader needs is refused, and no dataset appears.
    func testArchiveWithoutTheLayoutIsRefused() throws {
        publish(.cifar10, try TestArchives.make(zip: false, [("cifar-10-batches-bin/readme.html", Array("hi".utf8))]))
        XCTAssertThrowsError(try DatasetDownload.fetch(.cifar10, root: root, mirror: server.base)) { error in
            XCTAssertTrue("\(error)".contains("does not hold cifar-10-batches-bin/data_batch_1.bin"), "\(error)")
        }
        XCTAssertEqual(try leftovers(), [])
    }

    func testChecksumListParsing() {
        let hex = String(repeating: "a", count: 64)
        XCTAssertEqual(DatasetDownload.checksum(in: "\(hex)  x.zip\n\(hex.uppercased()) *cifar-10-binary.tar.gz\n", for: "cifar-10-binary.tar.gz"), hex)
        XCTAssertNil(DatasetDownload.checksum(in: "abc  cifar-10-binary.tar.gz", for: "cifar-10-binary.tar.gz"))
    }

    /// The official entries name the archives the loaders expect, with their published MD5s.
    func testOfficialArchives() {
        XCTAssertEqual(DatasetArchive.all.map(\.fileName), ["cifar-10-binary.tar.gz", "cifar-100-binary.tar.gz", "tiny-imagenet-200.zip"])
        XCTAssertEqual(DatasetArchive.all.map(\.officialMD5), ["c32a1d4ab5d03f1284b67883e8d87530", "03b5dce01913d631647c71ecec9e9cb8",
                                                              "90528d7ca1a48142e341f4ef8d21d0de"])
        XCTAssertTrue(DatasetArchive.all.allSatisfy { $0.officialURL.hasPrefix("https://") && $0.officialURL.hasSuffix("/" + $0.fileName) })
    }
}

/// Known-answer tests of the digests (FIPS 180-2 and RFC 1321 vectors), whole and in pieces.
final class DigestTests: XCTestCase {
    func testKnownAnswers() throws {
        XCTAssertEqual(try Digest.hex(.sha256, []), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        XCTAssertEqual(try Digest.hex(.sha256, Array("abc".utf8)), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        XCTAssertEqual(try Digest.hex(.sha256, Array("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq".utf8)),
                       "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1")
        XCTAssertEqual(try Digest.hex(.md5, []), "d41d8cd98f00b204e9800998ecf8427e")
        XCTAssertEqual(try Digest.hex(.md5, Array("abc".utf8)), "900150983cd24fb0d6963f7d28e17f72")
        XCTAssertEqual(try Digest.hex(.md5, Array("12345678901234567890123456789012345678901234567890123456789012345678901234567890".utf8)),
                       "57edf4a22be3c955ac49da2e2107b67a")
        let million = [UInt8](repeating: 0x61, count: 1_000_000)
        XCTAssertEqual(try Digest.hex(.sha256, million), "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0")
        XCTAssertEqual(try Digest.hex(.md5, million), "7707d6ae4e027c70eea2a935c2296f21")
        // Pieces of every awkward size give the same digest.
        let sha = try Digest(.sha256), md5 = try Digest(.md5)
        var offset = 0, step = 1
        while offset < million.count {
            let end = min(million.count, offset + step)
            sha.update(Array(million[offset ..< end])); md5.update(Array(million[offset ..< end]))
            offset = end; step = step % 131 + 7
        }
        XCTAssertEqual(try sha.hexDigest(), "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0")
        XCTAssertEqual(try md5.hexDigest(), "7707d6ae4e027c70eea2a935c2296f21")
        XCTAssertThrowsError(try md5.hexDigest(), "a finished digest is not finished twice")
    }
}

/// Small archives in the official layouts, written with libarchive.
enum TestArchives {
    /// `cifar-10-binary.tar.gz` (cifar-10-batches-bin/data_batch_1..5.bin, test_batch.bin,
    /// batches.meta.txt) or `cifar-100-binary.tar.gz` (cifar-100-binary/train.bin, test.bin, …),
    /// `records` random records per file.
    static func cifar(classes: Int, records: Int) throws -> [UInt8] {
        var rng = SeededGenerator(seed: UInt64(classes * 1000 + records))
        func file() -> [UInt8] {
            var bytes: [UInt8] = []
            for _ in 0 ..< records {
                if classes == 100 { bytes.append(UInt8.random(in: 0 ..< 20, using: &rng)) }
                bytes.append(UInt8.random(in: 0 ..< UInt8(classes), using: &rng))
                for _ in 0 ..< 3072 { bytes.append(UInt8.random(in: 0 ... 255, using: &rng)) }
            }
            return bytes
        }
        if classes == 10 {
            var entries = [("cifar-10-batches-bin/batches.meta.txt", Array("airplane\nautomobile\n".utf8))]
            for i in 1 ... 5 { entries.append(("cifar-10-batches-bin/data_batch_\(i).bin", file())) }
            entries.append(("cifar-10-batches-bin/test_batch.bin", file()))
            return try make(zip: false, entries)
        }
        return try make(zip: false, [("cifar-100-binary/fine_label_names.txt", Array("apple\n".utf8)),
                                     ("cifar-100-binary/train.bin", file()), ("cifar-100-binary/test.bin", file())])
    }

    /// `tiny-imagenet-200.zip`: two classes of two training images, two validation images.
    static func tinyImageNet() throws -> [UInt8] {
        let wnids = ["n01443537", "n01629819"]
        var entries: [(String, [UInt8])] = [("tiny-imagenet-200/wnids.txt", Array((wnids.joined(separator: "\n") + "\n").utf8))]
        for (c, wnid) in wnids.enumerated() {
            for i in 0 ..< 2 {
                let image = try JPEG.encode((0 ..< 12_288).map { (k: Int) -> UInt8 in UInt8(truncatingIfNeeded: k * (c + 2) + i * 17) }, width: 64, height: 64)
                entries.append(("tiny-imagenet-200/train/\(wnid)/images/\(wnid)_\(i).JPEG", image))
            }
            entries.append(("tiny-imagenet-200/train/\(wnid)/\(wnid)_boxes.txt", Array("\(wnid)_0.JPEG\t0\t0\t63\t63\n".utf8)))
        }
        for i in 0 ..< 2 {
            let image = try JPEG.encode((0 ..< 12_288).map { (k: Int) -> UInt8 in UInt8(truncatingIfNeeded: k + i * 40) }, width: 64, height: 64)
            entries.append(("tiny-imagenet-200/val/images/val_\(i).JPEG", image))
        }
        entries.append(("tiny-imagenet-200/val/val_annotations.txt",
                        Array("val_0.JPEG\tn01629819\t0\t0\t63\t63\nval_1.JPEG\tn01443537\t0\t0\t63\t63\n".utf8)))
        return try make(zip: true, entries)
    }

    struct Failure: Error, CustomStringConvertible { let description: String }

    /// A tar.gz (or zip) of regular files, in memory.
    static func make(zip: Bool, _ entries: [(String, [UInt8])]) throws -> [UInt8] {
        guard let writer = archive_write_new() else { throw Failure(description: "archive_write_new") }
        defer { archive_write_free(writer) }
        if zip { archive_write_set_format_zip(writer) } else {
            archive_write_set_format_pax_restricted(writer)
            archive_write_add_filter_gzip(writer)
        }
        // libarchive keeps both pointers until the archive is closed, so they are allocated here.
        let capacity = 64 << 20
        let storage = UnsafeMutableRawPointer.allocate(byteCount: capacity, alignment: 16)
        let used = UnsafeMutablePointer<Int>.allocate(capacity: 1)
        used.pointee = 0
        defer { storage.deallocate(); used.deallocate() }
        let opened = archive_write_open_memory(writer, storage, capacity, used)
        guard opened == ARCHIVE_OK else { throw Failure(description: String(cString: archive_error_string(writer))) }
        for (name, bytes) in entries {
            guard let entry = archive_entry_new() else { throw Failure(description: "archive_entry_new") }
            defer { archive_entry_free(entry) }
            archive_entry_set_pathname(entry, name)
            archive_entry_set_size(entry, la_int64_t(bytes.count))
            archive_entry_set_filetype(entry, UInt32(Glibc.S_IFREG))
            archive_entry_set_perm(entry, 0o644)
            guard archive_write_header(writer, entry) == ARCHIVE_OK,
                  bytes.withUnsafeBytes({ archive_write_data(writer, $0.baseAddress, $0.count) }) == bytes.count || bytes.isEmpty else {
                throw Failure(description: String(cString: archive_error_string(writer)))
            }
        }
        guard archive_write_close(writer) == ARCHIVE_OK else { throw Failure(description: String(cString: archive_error_string(writer))) }
        return Array(UnsafeRawBufferPointer(start: storage, count: used.pointee))
    }
}
