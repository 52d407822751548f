import Foundation
import XCTest

/// `mge-script --report`: the HTML page has every statement, its output, tables and figures
/// inline, and renders in a real browser (Debian's headless Chromium); the Markdown variant
/// writes its figures beside it.
final class ReportTests: XCTestCase {
    static let script = """
        # A report test.
        #
        # # Section
        t = table({p: ["snip", "grasp", "snip", "grasp"], s: [0.5, 0.5, 0.9, 0.9], acc: [0.9, 0.8, 0.6, 0.7]})
        t
        plot(t, x: "s", y: "acc", color: "p", kind: "line", title: "accuracy", path: "line.svg")
        plot(["a", "b"], [0.5, -0.25], kind: "bar", path: "bar.svg")
        print("a < b & c")
        nosuch(1)
        """

    func makeReport(_ name: String) throws -> (URL, ProcessResult) {
        guard let binary = TestPaths.product("mge-script") else { throw XCTSkip("mge-script is not built") }
        let dir = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("mge-report-\(getpid())-\(UInt32.random(in: 0 ... .max))")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        try Self.script.write(to: dir.appendingPathComponent("a.mge"), atomically: true, encoding: .utf8)
        let result = try runProcess(binary, ["-k", "--report", name, "a.mge"], directory: dir, timeout: 60)
        return (dir, result)
    }

    func testHTMLReportRendersInChromium() throws {
        let (dir, result) = try makeReport("report.html")
        defer { try? FileManager.default.removeItem(at: dir) }
        XCTAssertEqual(result.status, 70, "the script's error is reported and sets the exit code")
        let html = try String(contentsOf: dir.appendingPathComponent("report.html"), encoding: .utf8)
        XCTAssertTrue(html.contains("<h2>Section</h2>"), html)
        XCTAssertTrue(html.contains("<p class=\"prose\">A report test.</p>"))
        XCTAssertTrue(html.contains("<th>p</th><th>s</th><th>acc</th>"), "tables as HTML tables")
        XCTAssertTrue(html.contains("a &lt; b &amp; c"), "output escaped")
        XCTAssertTrue(html.contains("undefined variable &#39;nosuch&#39;") || html.contains("undefined variable 'nosuch'"))
        XCTAssertEqual(html.components(separatedBy: "<svg ").count - 1, 2, "both figures inline")
        XCTAssertFalse(html.contains("src=\"") || html.contains("href=\""), "self-contained: no external resources")

        guard let chromium = Self.chromium else {
            throw XCTSkip("chromium is not installed (apt-get install chromium): the report was not rendered in a browser")
        }
        let dom = try Self.renderedFigures(html, in: dir, chromium: chromium)
        XCTAssertTrue(dom.stdout.contains("data-figures=\"2/2\""), "figures rendered: \(dom.stdout.prefix(300)) \(dom.stderr.suffix(500))")
        let flags = Self.chromiumFlags
        let png = dir.appendingPathComponent("page.png")
        let shot = try runProcess(chromium, flags + ["--screenshot=\(png.path)", dir.appendingPathComponent("report.html").absoluteString],
                                  directory: dir, timeout: 90)
        let bytes = (try? Data(contentsOf: png)) ?? Data()
        XCTAssertEqual(Array(bytes.prefix(4)), [0x89, 0x50, 0x4E, 0x47], "a PNG screenshot: \(shot.stderr.suffix(500))")
        XCTAssertGreaterThan(bytes.count, 20_000, "a page with figures is not blank")
    }

    static let chromium = ["/usr/bin/chromium", "/usr/bin/chromium-browser"].first(where: FileManager.default.isExecutableFile)
        .map { URL(fileURLWithPath: $0) }
    static let chromiumFlags = ["--headless", "--no-sandbox", "--disable-gpu", "--window-size=1200,2400"]

    /// Loads a copy of the page that records, once loaded, how many figures the browser laid out
    /// with a real size and drawn marks (`data-figures="all/drawn"` on the body); --dump-dom prints
    /// the DOM after that script ran.
    static func renderedFigures(_ html: String, in dir: URL, chromium: URL) throws -> ProcessResult {
        let probe = "<script>window.addEventListener('load', () => { const figs = [...document.querySelectorAll('figure svg')];"
            + " const drawn = figs.filter(s => { const b = s.getBoundingClientRect(); return b.width > 200 && b.height > 150"
            + " && s.querySelectorAll('rect,circle,line,path,text').length > 10; });"
            + " document.body.setAttribute('data-figures', figs.length + '/' + drawn.length);"
            // At natural size: as wide and tall on the page (inside its border) as the SVG's own width and height.
            + " const natural = figs.filter(s => Math.abs(s.clientWidth - s.width.baseVal.value) < 1"
            + " && Math.abs(s.clientHeight - s.height.baseVal.value) < 1);"
            + " document.body.setAttribute('data-natural', figs.length + '/' + natural.length); });</script></body>"
        let probed = dir.appendingPathComponent("probe.html")
        try html.replacingOccurrences(of: "</body>", with: probe).write(to: probed, atomically: true, encoding: .utf8)
        return try runProcess(chromium, chromiumFlags + ["--dump-dom", probed.absoluteString], directory: dir, timeout: 90)
    }

    /// examples/lecture.mge draws PNGs for slides; its report shows each of them inline (the SVG
    /// the PNG was rendered from, captioned with the PNG's path), and the browser draws all ten.
    func testLectureReportShowsEveryPNGFigure() throws {
        guard let binary = TestPaths.product("mge-script") else { throw XCTSkip("mge-script is not built") }
        let dir = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("mge-lecture-\(getpid())-\(UInt32.random(in: 0 ... .max))")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let lecture = TestPaths.packageRoot.appendingPathComponent("examples/lecture.mge").path
        let result = try runProcess(binary, ["--report", "lecture.html", lecture, dir.path], directory: dir, timeout: 120)
        XCTAssertEqual(result.status, 0, result.stderr)
        let html = try String(contentsOf: dir.appendingPathComponent("lecture.html"), encoding: .utf8)
        let captions = html.components(separatedBy: "<figcaption>").dropFirst().map { $0.prefix { $0 != "<" } }
        XCTAssertEqual(captions.count, 10, "the lecture's ten figures")
        XCTAssertTrue(captions.allSatisfy { $0.hasSuffix(".png") }, "\(captions)")
        XCTAssertEqual(html.components(separatedBy: "<figure>\n<svg ").count - 1, 10, "each figure inline as SVG")
        for caption in captions { XCTAssertTrue(FileManager.default.fileExists(atPath: String(caption)), "\(caption) written") }
        guard let chromium = Self.chromium else {
            throw XCTSkip("chromium is not installed (apt-get install chromium): the report was not rendered in a browser")
        }
        let dom = try Self.renderedFigures(html, in: dir, chromium: chromium)
        XCTAssertTrue(dom.stdout.contains("data-figures=\"10/10\""), "figures rendered: \(dom.stderr.suffix(500))")
        // The figures are up to 1,600 px wide, the page's text column 1,100: each is shown at its
        // natural size (12 px labels stay 12 px) and scrolls in its own box.
        XCTAssertTrue(dom.stdout.contains("data-natural=\"10/10\""), "figures at natural size: \(dom.stdout.components(separatedBy: "<body").dropFirst().first?.prefix(200) ?? "")")
    }

    func testMarkdownReportWritesFiguresBesideIt() throws {
        let (dir, _) = try makeReport("notes.md")
        defer { try? FileManager.default.removeItem(at: dir) }
        let md = try String(contentsOf: dir.appendingPathComponent("notes.md"), encoding: .utf8)
        XCTAssertTrue(md.contains("## Section"))
        XCTAssertTrue(md.contains("| p | s | acc |\n| --- | ---: | ---: |\n| snip | 0.5 | 0.9 |"), md)
        XCTAssertTrue(md.contains("![line.svg](notes-figures/figure-1.svg)"))
        let figure = try String(contentsOf: dir.appendingPathComponent("notes-figures/figure-2.svg"), encoding: .utf8)
        XCTAssertTrue(figure.hasPrefix("<svg "))
    }
}
