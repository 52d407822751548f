import Foundation
import Kernels
import XCTest
@testable import Runtime

/// The path rule, hostile files and Ctrl-C, through the builtins a user types.
final class FileBuiltinTests: XCTestCase {
    private var folder = ""

    override func setUpWithError() throws {
        folder = NSTemporaryDirectory() + "mge-files-\(getpid())-\(UInt32.random(in: 0 ... .max))"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
    }

    override func tearDown() {
        try? FileManager.default.removeItem(atPath: folder)
        Cancellation.reset()
    }

    /// `~` is expanded by every builtin that takes a path, the graph ones included. (Foundation
    /// takes the home folder from the password database, not $HOME, so the files go to the real
    /// home under unique hidden names and are removed.)
    func testTildeIsExpandedForEveryPathBuiltin() throws {
        let tag = ".mge-test-\(getpid())-\(UInt32.random(in: 0 ... .max))"
        let names = ["g.mgeg", "g.tsv", "d.safetensors", "g.svg", "w.safetensors", "m.safetensors", "t.safetensors"]
        let home = NSHomeDirectory()
        defer { for n in names { try? FileManager.default.removeItem(atPath: "\(home)/\(tag)-\(n)") } }
        let session = Session()
        XCTAssertEqual(session.run("""
            p = "~/\(tag)-"
            net = toy()
            prune(net, erk, 0.5)
            g = unroll(net)
            save(g, p + "g.mgeg")
            export(g, p + "g.tsv")
            export_degrees(g, p + "d.safetensors")
            draw(g, p + "g.svg")
            save_weights(net, p + "w.safetensors")
            save_masks(net, p + "m.safetensors")
            save_tensors(p + "t.safetensors", {a: [1, 2]})
            h = load(p + "g.mgeg")
            load_weights(net, p + "w.safetensors")
            load_masks(net, p + "m.safetensors")
            print(h.nodes == g.nodes, load_tensors(p + "t.safetensors").a.shape)
            """), .ok, session.err)
        XCTAssertTrue(session.out.hasSuffix("true [2]\n"), session.out)
        for n in names { XCTAssertTrue(FileManager.default.fileExists(atPath: "\(home)/\(tag)-\(n)"), n) }
    }

    /// The file from the issue (an F64 tensor of shape [2^61] in 100 bytes) is refused by
    /// load_tensors with the reason, and the session goes on.
    func testHugeShapeHeaderIsRefusedAndTheSessionSurvives() throws {
        var header = Array(#"{"x":{"dtype":"F64","shape":[2305843009213693952],"data_offsets":[0,0]}}"#.utf8)
        while 8 + header.count < 100 { header.append(0x20) }
        var bytes: [UInt8] = []
        var length = UInt64(header.count)
        for _ in 0 ..< 8 { bytes.append(UInt8(length & 0xFF)); length >>= 8 }
        try Data(bytes + header).write(to: URL(fileURLWithPath: folder + "/huge.safetensors"))
        let session = Session()
        XCTAssertEqual(session.run("x = 1\nt = load_tensors(\"\(folder)/huge.safetensors\")"), .runtimeError)
        XCTAssertTrue(session.err.contains("entry 'x' has shape [2305843009213693952], too large to exist"), session.err)
        XCTAssertEqual(session.output("print(x)"), "1\n")
    }

    /// Devices and folders are refused by name instead of being read forever.
    func testNonRegularFilesAreRefused() {
        let session = Session()
        XCTAssertEqual(session.run("load_tensors(\"/dev/zero\")"), .runtimeError)
        XCTAssertTrue(session.err.contains("cannot read /dev/zero: not a regular file"), session.err)
        XCTAssertEqual(session.run("load_weights(toy(), \"\(folder)\")"), .runtimeError)
        XCTAssertTrue(session.err.contains("not a regular file"), session.err)
    }
}
