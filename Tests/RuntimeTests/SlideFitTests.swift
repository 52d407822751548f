import Foundation
@testable import Kernels
import XCTest
@testable import Runtime

/// Figures that fit: every figure `draw` produces, over presets, fonts, sizes and encodings of
/// ResNet-20 and the toy, has no two texts on top of each other, no text off the canvas and no
/// text cut with "…" (boxes from the layout's own width estimate); every refusal names a fix,
/// and the fix it names lays out.
final class SlideFitTests: XCTestCase {
    /// A session with `toy` (dense) and `r20` (ResNet-20, ERK 98 %, seed 0).
    func session() throws -> Session {
        let s = Session()
        s.interpreter.define("toy", .native(NetworkObject(Network(architecture: ModelZoo.toy(), seed: 0), modelName: "toy")))
        let r20 = Network(architecture: ModelZoo.resnet(depth: 20, classes: 10), seed: 0)
        try prune(r20, .erk, sparsity: 0.98, seed: 0)
        s.interpreter.define("r20", .native(NetworkObject(r20, modelName: "resnet20")))
        return s
    }

    /// Runs `code`; its outcome and what it wrote to stderr.
    @discardableResult
    static func attempt(_ s: Session, _ code: String) -> (outcome: RunOutcome, err: String) {
        let mark = s.err.count
        let outcome = s.run(code)
        return (outcome, String(s.err.dropFirst(mark)))
    }

    struct Text { var string: String; var x0, x1, y0, y1, size: Double }

    /// The figure's texts as boxes: the layout's width estimate, ascent 0.8 em, descent 0.2 em.
    static func texts(_ svg: String) throws -> (width: Double, height: Double, texts: [Text]) {
        func attribute(_ name: String, _ tag: Substring) -> String? {
            guard let r = tag.range(of: " \(name)=\"") else { return nil }
            return String(tag[r.upperBound...].prefix { $0 != "\"" })
        }
        let header = try XCTUnwrap(svg.range(of: "<svg").map { svg[$0.lowerBound...].prefix { $0 != ">" } })
        let width = Double(attribute("width", header) ?? "") ?? 0, height = Double(attribute("height", header) ?? "") ?? 0
        var out: [Text] = []
        for piece in svg.components(separatedBy: "<text").dropFirst() {
            guard let close = piece.range(of: ">"), let end = piece.range(of: "</text>") else { continue }
            let tag = piece[..<close.lowerBound]
            let string = String(piece[close.upperBound ..< end.lowerBound])
                .replacingOccurrences(of: "&lt;", with: "<").replacingOccurrences(of: "&gt;", with: ">")
                .replacingOccurrences(of: "&quot;", with: "\"").replacingOccurrences(of: "&amp;", with: "&")
            let x = Double(attribute("x", tag) ?? "") ?? .nan, y = Double(attribute("y", tag) ?? "") ?? .nan
            let size = Double(attribute("font-size", tag) ?? "") ?? 0
            let w = DrawingCanvas.textWidth(string, size: size)
            let anchor = attribute("text-anchor", tag) ?? "start"
            let x0 = anchor == "middle" ? x - w / 2 : anchor == "end" ? x - w : x
            out.append(Text(string: string, x0: x0, x1: x0 + w, y0: y - 0.8 * size, y1: y + 0.2 * size, size: size))
        }
        return (width, height, out)
    }

    /// No text overlaps another, leaves the canvas, is cut or is smaller than `minimumSize`.
    static func checkFits(_ svg: String, minimumSize: Double, _ what: String, file: StaticString = #filePath, line: UInt = #line) throws {
        let (width, height, texts) = try texts(svg)
        XCTAssertFalse(texts.isEmpty, what, file: file, line: line)
        for t in texts {
            XCTAssertFalse(t.string.contains("…"), "\(what): '\(t.string)' is cut", file: file, line: line)
            XCTAssertGreaterThanOrEqual(t.size, minimumSize, "\(what): '\(t.string)' is \(t.size) px", file: file, line: line)
            XCTAssertTrue(t.x0 >= -0.5 && t.x1 <= width + 0.5 && t.y0 >= -0.5 && t.y1 <= height + 0.5,
                          "\(what): '\(t.string)' leaves the \(width)×\(height) canvas", file: file, line: line)
        }
        let sorted = texts.sorted { $0.x0 < $1.x0 }
        for (i, a) in sorted.enumerated() {
            for b in sorted[(i + 1)...] {
                if b.x0 >= a.x1 - 0.5 { break }
                if a.y0 < b.y1 - 0.5 && b.y0 < a.y1 - 0.5 {
                    XCTFail("\(what): '\(a.string)' and '\(b.string)' overlap", file: file, line: line)
                }
            }
        }
    }

    /// The figures a statement `fig = draw(…)` made (one, or the list `split:` returns).
    static func figures(_ s: Session) throws -> [FigureObject] {
        switch s.interpreter.lookupGlobal("fig") {
        case .native(let f as FigureObject)?: return [f]
        case .list(let items)?: return items.compactMap { if case .native(let f as FigureObject) = $0 { return f }; return nil }
        default: return []
        }
    }

    func testEveryFigureFitsOrTheRefusalNamesAFixThatFits() throws {
        let s = try session()
        let settings = ["preset: \"slide\"", "preset: \"slide\", font_size: 28", "font_size: 20", "width: 800, height: 600, font_size: 16",
                        "width: 1200, height: 700, font_size: 24"]
        var fitted = 0, refused = 0
        for net in ["toy", "r20"] {
            for encoding in ["unrolled", "rolled", "rolled_channel", "all"] {
                for setting in settings {
                    let call = "draw(\(net), encoding: \"\(encoding)\", \(setting)"
                    let minimum = setting.contains("slide") ? 24.0 : 12.0
                    let first = SlideFitTests.attempt(s, "fig = \(call))")
                    if first.outcome == .ok {
                        fitted += 1
                        for f in try SlideFitTests.figures(s) { try SlideFitTests.checkFits(f.svg, minimumSize: minimum, call) }
                        continue
                    }
                    refused += 1
                    let message = first.err
                    XCTAssertTrue(message.contains("does not fit"), "\(call): \(message)")
                    // "It fits with font_size: 18, or with split: 2 (…)": each named fix lays out.
                    guard let range = message.range(of: "It fits with ") else {
                        XCTAssertTrue(message.contains("Nothing close fits") && message.contains("layers:"), "\(call): \(message)")
                        continue
                    }
                    // The message's first line ends the advice (the source line and caret follow).
                    let fixes = message[range.upperBound...].prefix { $0 != "\n" }.components(separatedBy: ", or with ")
                    XCTAssertFalse(fixes.isEmpty, message)
                    for fix in fixes {
                        let argument = fix.components(separatedBy: " (")[0].trimmingCharacters(in: .whitespacesAndNewlines)
                        // The fix replaces the setting it names.
                        var parts = setting.components(separatedBy: ", ").filter { p in
                            !argument.components(separatedBy: ", ").contains { $0.split(separator: ":")[0] == p.split(separator: ":")[0] }
                        }
                        if argument.hasPrefix("width") || argument.hasPrefix("font_size") {
                            // A preset sets all three; keep its other two.
                            if parts.contains("preset: \"slide\"") {
                                if !argument.hasPrefix("font_size") && !setting.contains("font_size") { parts.append("font_size: 24") }
                            }
                        }
                        let fixed = "draw(\(net), encoding: \"\(encoding)\", " + (parts + [argument]).joined(separator: ", ")
                        let again = SlideFitTests.attempt(s, "fig = \(fixed))")
                        XCTAssertEqual(again.outcome, .ok, "\(call) → \(fixed): \(again.err)")
                        for f in try SlideFitTests.figures(s) { try SlideFitTests.checkFits(f.svg, minimumSize: 12, fixed) }
                    }
                }
            }
        }
        XCTAssertGreaterThan(fitted, 10)
        XCTAssertGreaterThan(refused, 0)
    }

    /// The case: ResNet-20's three encodings at font 28 on 1920×1080 piled labels on
    /// top of each other; now refused, naming fixes; layers: and split: give slides that fit.
    func testResNet20OnSlides() throws {
        let s = try session()
        XCTAssertEqual(s.run("draw(r20, encoding: \"all\", preset: \"slide\", font_size: 28)"), .runtimeError)
        XCTAssertTrue(s.err.contains("does not fit at 1920×1080 px with font_size 28"), s.err)
        XCTAssertTrue(s.err.contains("It fits with "), s.err)

        XCTAssertEqual(s.run("fig = draw(r20, encoding: \"all\", preset: \"slide\", layers: \"1:6\")"), .ok, s.err)
        let six = try SlideFitTests.figures(s)
        XCTAssertEqual(six.count, 1)
        try SlideFitTests.checkFits(six[0].svg, minimumSize: 24, "layers 1:6")
        XCTAssertTrue(six[0].svg.contains("layers 1–6 of 22"), "the title says which layers")

        XCTAssertEqual(s.run("fig = draw(r20, preset: \"slide\", split: 3)"), .ok, s.err)
        let parts = try SlideFitTests.figures(s)
        XCTAssertEqual(parts.count, 3)
        for (i, f) in parts.enumerated() {
            try SlideFitTests.checkFits(f.svg, minimumSize: 24, "part \(i + 1)")
            XCTAssertEqual(f.size.width, 1920); XCTAssertEqual(f.size.height, 1080)
        }
        XCTAssertTrue(parts[0].title.hasSuffix("layers 1–8 of 22"), parts[0].title)
        XCTAssertTrue(parts[2].title.hasSuffix("layers 16–22 of 22"), parts[2].title)

        // With a path: numbered files.
        let dir = NSTemporaryDirectory() + "mge-slides-\(getpid())"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        s.interpreter.define("dir", .string(dir))
        let out = s.output("draw(r20, dir + \"/r20.svg\", encoding: \"rolled\", preset: \"slide\", split: 2)")
        XCTAssertEqual(out.split(separator: "\n").filter { $0.hasPrefix("wrote ") }.count, 2, out + s.err)
        for i in 1 ... 2 { XCTAssertTrue(FileManager.default.fileExists(atPath: dir + "/r20-\(i).svg"), out) }

        // Bad selections say what was expected.
        for (arguments, expected) in [("layers: \"0:6\"", "bad argument 'layers' to 'draw' (expected \"a:b\" with 1 ≤ a ≤ b ≤ 22 (the network's layers, counted from 1), got \"0:6\")"),
                                      ("layers: \"6:3\"", "got \"6:3\""), ("layers: \"x\"", "got \"x\""), ("split: 0", "bad argument 'split' to 'draw' (expected 1 to 22 figures"),
                                      ("layers: \"1:4\", split: 5", "expected 1 to 4 figures")] {
            let result = SlideFitTests.attempt(s, "draw(r20, \(arguments))")
            XCTAssertEqual(result.outcome, .runtimeError, arguments)
            XCTAssertTrue(result.err.contains(expected), "\(arguments): \(result.err)")
        }
    }

    /// layers: and split: on a graph value and a layer list.
    func testGraphsAndLayerListsTakeLayersAndSplit() throws {
        let s = try session()
        XCTAssertEqual(s.run("fig = draw(unroll(toy), layers: \"2:3\")"), .ok, s.err)
        XCTAssertEqual(try SlideFitTests.figures(s).count, 1)
        XCTAssertEqual(s.run("fig = draw(rolled(toy), split: 2)"), .ok, s.err)
        XCTAssertEqual(try SlideFitTests.figures(s).count, 2)
    }
}
