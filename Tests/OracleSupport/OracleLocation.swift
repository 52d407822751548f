import CZstd
import Foundation
import XCTest

/// The one place every test finds the reference implementation's oracle cases.
///
/// Where the cases come from, first match wins:
/// 1. `$MGE_ORACLE`, when set and a directory;
/// 2. `../shared/oracle` beside the repository;
/// 3. the compact subset shipped in `Tests/Fixtures/oracle` (five ResNet-20 cases, each file
///    zstd-compressed), unpacked once into `.build/oracle-subset/`.
///
/// Tests iterate `cases()` (whatever is present) or ask for one case by name with `directory(of:)`,
/// which skips the test with one line when only the subset is present and it lacks that case.
/// With `MGE_REQUIRE_ORACLE=1` (set by `.ci/run`) the full oracle is mandatory: a missing oracle
/// or case fails instead of skipping. At the end of the run one line says how many cases were checked.
public enum OracleLocation {
    public enum Source: Sendable { case full, subset }

    /// The package root (this file is Tests/OracleSupport/OracleLocation.swift).
    public static let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent()

    public static var required: Bool { ProcessInfo.processInfo.environment["MGE_REQUIRE_ORACLE"] == "1" }

    /// Where the full oracle would be found, whether or not it exists.
    public static var fullRoot: String {
        if let env = ProcessInfo.processInfo.environment["MGE_ORACLE"], !env.isEmpty { return env }
        return packageRoot.deletingLastPathComponent().appendingPathComponent("shared/oracle").path
    }

    private struct Resolved { let root: String; let source: Source; let problem: String? }

    private static let resolved: Resolved = {
        Summary.shared.register()
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: fullRoot, isDirectory: &isDirectory), isDirectory.boolValue {
            return Resolved(root: fullRoot, source: .full, problem: nil)
        }
        let target = packageRoot.appendingPathComponent(".build/oracle-subset").path
        do {
            try unpackSubset(from: packageRoot.appendingPathComponent("Tests/Fixtures/oracle").path, to: target)
            return Resolved(root: target, source: .subset, problem: nil)
        } catch {
            return Resolved(root: target, source: .subset, problem: "the oracle subset could not be unpacked: \(error)")
        }
    }()

    public static var root: String { resolved.root }
    public static var source: Source { resolved.source }

    /// Every case folder present (full paths, sorted). Fails the calling test when no case can be
    /// found, or when the full oracle is required and absent.
    public static func cases(file: StaticString = #filePath, line: UInt = #line) -> [String] {
        if let problem = resolved.problem { XCTFail(problem, file: file, line: line); return [] }
        if required && source != .full {
            XCTFail("MGE_REQUIRE_ORACLE=1 but there is no full oracle at \(fullRoot)", file: file, line: line)
        }
        let names = ((try? FileManager.default.contentsOfDirectory(atPath: root)) ?? [])
            .filter { FileManager.default.fileExists(atPath: root + "/" + $0 + "/expected.json") }.sorted()
        XCTAssertFalse(names.isEmpty, "no oracle cases under \(root)", file: file, line: line)
        Summary.shared.checked(names)
        return names.map { root + "/" + $0 }
    }

    /// The folder of the named case. When it is absent: with the subset only, throws XCTSkip (one
    /// line naming the case); with the full oracle, or when it is required, throws a failure.
    public static func directory(of name: String) throws -> String {
        let dir = root + "/" + name
        if FileManager.default.fileExists(atPath: dir + "/expected.json") {
            Summary.shared.checked([name])
            return dir
        }
        if source == .subset && !required {
            Summary.shared.skipped()
            throw XCTSkip("needs oracle case \(name), which only the full oracle has (../shared/oracle or $MGE_ORACLE)")
        }
        throw OracleMissing(description: "oracle case \(name) missing under \(root)")
    }

    /// The folders of those named cases that are present. Absent ones fail with the full oracle
    /// (or when it is required); with the subset they are left out with one printed line, and
    /// the test is skipped when none is present.
    public static func directories(of names: [String]) throws -> [String] {
        var present: [String] = [], absent: [String] = []
        for name in names {
            if FileManager.default.fileExists(atPath: root + "/" + name + "/expected.json") { present.append(name) } else { absent.append(name) }
        }
        if !absent.isEmpty {
            if source == .full || required { throw OracleMissing(description: "oracle cases missing under \(root): \(absent.joined(separator: ", "))") }
            if present.isEmpty { return [try directory(of: absent[0])] }
            print("oracle: \(absent.joined(separator: ", ")) only in the full oracle; checking \(present.joined(separator: ", "))")
        }
        Summary.shared.checked(present)
        return present.map { root + "/" + $0 }
    }

    /// Skips (subset only) or fails (full oracle required) a test that needs every case.
    public static func requireFull(_ why: String) throws {
        if source == .full { return }
        if required { throw OracleMissing(description: "MGE_REQUIRE_ORACLE=1 but there is no full oracle at \(fullRoot)") }
        Summary.shared.skipped()
        throw XCTSkip("needs the full oracle (\(why)); only the compact subset is present")
    }

    struct OracleMissing: Error, CustomStringConvertible { let description: String }

    // MARK: - The compact subset

    /// Decompresses every `<case>/<file>.zst` under `source` into `target/<case>/<file>`, once:
    /// a complete unpacking is renamed into place, so an interrupted one is redone next time.
    static func unpackSubset(from source: String, to target: String) throws {
        let fm = FileManager.default
        let stamp = target + "/.complete"
        if fm.fileExists(atPath: stamp) { return }
        let staging = target + ".partial-\(getpid())"
        try? fm.removeItem(atPath: staging)
        for name in try fm.contentsOfDirectory(atPath: source).sorted() {
            let caseDir = source + "/" + name
            try fm.createDirectory(atPath: staging + "/" + name, withIntermediateDirectories: true)
            for file in try fm.contentsOfDirectory(atPath: caseDir) where file.hasSuffix(".zst") {
                let compressed = try Data(contentsOf: URL(fileURLWithPath: caseDir + "/" + file))
                try decompress(compressed, name: file).write(to: URL(fileURLWithPath: staging + "/" + name + "/" + String(file.dropLast(4))))
            }
        }
        try Data().write(to: URL(fileURLWithPath: staging + "/.complete"))
        try? fm.removeItem(atPath: target)
        try fm.createDirectory(atPath: (target as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        try fm.moveItem(atPath: staging, toPath: target)
    }

    /// One zstd frame whose header records its content size (as `zstd` writes it).
    public static func decompress(_ compressed: Data, name: String) throws -> Data {
        try compressed.withUnsafeBytes { (input: UnsafeRawBufferPointer) throws -> Data in
            let size = ZSTD_getFrameContentSize(input.baseAddress, input.count)
            guard size != ZSTD_CONTENTSIZE_ERROR, size != ZSTD_CONTENTSIZE_UNKNOWN, size < 1 << 32 else {
                throw OracleMissing(description: "\(name): not a zstd frame with a recorded size")
            }
            var output = Data(count: Int(size))
            let written = output.withUnsafeMutableBytes { ZSTD_decompress($0.baseAddress, $0.count, input.baseAddress, input.count) }
            guard ZSTD_isError(written) == 0, written == Int(size) else {
                throw OracleMissing(description: "\(name): " + String(cString: ZSTD_getErrorName(written)))
            }
            return output
        }
    }

    // MARK: - The end-of-run line

    /// Counts case checks and skips, and prints one line when the test bundle finishes.
    final class Summary: NSObject, XCTestObservation, @unchecked Sendable {
        static let shared = Summary()
        private let lock = NSLock()
        private var names = Set<String>(), uses = 0, skips = 0, registered = false

        func register() {
            lock.lock(); defer { lock.unlock() }
            if registered { return }
            registered = true
            XCTestObservationCenter.shared.addTestObserver(self)
        }
        func checked(_ list: [String]) { lock.lock(); names.formUnion(list.map { ($0 as NSString).lastPathComponent }); uses += list.count; lock.unlock() }
        func skipped() { lock.lock(); skips += 1; lock.unlock() }

        func testBundleDidFinish(_ testBundle: Bundle) {
            lock.lock(); defer { lock.unlock() }
            let origin = OracleLocation.source == .full ? "full oracle at \(OracleLocation.root)"
                : "compact subset (Tests/Fixtures/oracle; the full oracle is ../shared/oracle or $MGE_ORACLE)"
            print("oracle: \(names.count) cases checked \(uses) times from the \(origin); \(skips) tests skipped for want of the full oracle")
        }
    }
}
