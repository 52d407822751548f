import Foundation
import Kernels
import Lang

/// A notebook-style record of one script run (`mge-script --report out.html script.mge`): each
/// top-level statement with the comments above it, its printed and displayed output (tables as
/// tables), errors, and every figure it drew. Renders as one self-contained HTML page (figures
/// inline as SVG) or as Markdown with the figures in a folder beside it.
public final class Report {
    enum Output {
        case text(String)
        case table(Table)
        case figure(path: String, svg: String)
        case error(String)
    }

    struct Cell {
        /// Comment lines before the statement, without their `#`.
        var prose: [String]
        var code: String
        var outputs: [Output] = []
    }

    let source: Source
    private(set) var cells: [Cell] = []
    /// Offsets of the lines where statements are, in order (from parsing the source once). A
    /// statement's cell is its whole line(s); statements sharing a line (`a; b`) share a cell.
    private let starts: [Int]
    private var currentStart = -1
    /// Tables show at most this many rows in a report.
    static let tableRows = 25

    public init(source: Source) {
        self.source = source
        let bytes = source.bytes
        starts = Array(Set(Parser.parse(source).program.statements.map { Report.lineStart(bytes, $0.at) })).sorted()
    }

    /// The offset where the line holding `offset` starts (statements report an offset inside them).
    static func lineStart(_ bytes: [UInt8], _ offset: Int) -> Int {
        var i = min(max(0, offset), bytes.count)
        while i > 0, bytes[i - 1] != UInt8(ascii: "\n") { i -= 1 }
        return i
    }

    /// Hooks the interpreter's output so this report sees it (and still passes it on).
    public func attach(to interpreter: Interpreter) {
        let write = interpreter.write, writeError = interpreter.writeError
        interpreter.statementStarted = { [unowned self] offset in self.startCell(at: offset) }
        interpreter.write = { [unowned self] text in write(text); self.append(.text(text)) }
        interpreter.displayValue = { [unowned self, unowned interpreter] value in
            if let figures = RichOutput.figures(value) {
                for figure in figures { interpreter.displayValue?(figure) }
            } else if case .native(let figure as FigureObject) = value {
                write(figure.display(long: false) + "\n")
                self.append(.figure(path: figure.title.isEmpty ? "figure" : figure.title, svg: figure.svg))
            } else if case .native(let table as TableObject) = value {
                write(table.display(long: false) + "\n")
                self.append(.table(table.table))
            } else if let text = Display.cell(value) {
                write(text + "\n")
                self.append(.text(text + "\n"))
            }
        }
        interpreter.report = { [unowned self] diagnostic in
            let text = diagnostic.rendered()
            writeError(text)
            self.append(.error(text))
        }
        interpreter.figureWritten = { [unowned self] path, svg in self.append(.figure(path: path, svg: svg)) }
    }

    private func startCell(at statementOffset: Int) {
        let bytes = source.bytes
        let offset = Report.lineStart(bytes, statementOffset)
        guard offset != currentStart else { return }
        currentStart = offset
        let index = starts.firstIndex(of: offset) ?? 0
        let end = index + 1 < starts.count ? starts[index + 1] : bytes.count
        // Comment lines between statements belong to the statement below them.
        let previousEnd = index > 0 ? codeEnd(from: starts[index - 1], to: offset) : 0
        let lead = String(decoding: bytes[previousEnd..<offset], as: UTF8.self)
        let prose = lead.split(separator: "\n", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
            .filter { $0.hasPrefix("#") }.map { String($0.dropFirst()).trimmingCharacters(in: .whitespaces) }
        let code = String(decoding: bytes[offset..<codeEnd(from: offset, to: end)], as: UTF8.self)
        let trimmed = code.trimmingCharacters(in: .whitespacesAndNewlines)
        // Statements without output run together in one code block, as in a notebook cell.
        if prose.isEmpty, let last = cells.last, last.outputs.isEmpty, !last.code.isEmpty {
            cells[cells.count - 1].code += "\n" + trimmed
        } else {
            cells.append(Cell(prose: prose, code: trimmed))
        }
    }

    /// The end of a statement's code: trailing blank and comment-only lines before `end` are cut.
    private func codeEnd(from start: Int, to end: Int) -> Int {
        let text = String(decoding: source.bytes[start..<end], as: UTF8.self)
        var lines = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        while lines.count > 1, let last = lines.last, last.trimmingCharacters(in: .whitespaces).isEmpty || last.trimmingCharacters(in: .whitespaces).hasPrefix("#") {
            lines.removeLast()
        }
        return start + lines.joined(separator: "\n").utf8.count
    }

    private func append(_ output: Output) {
        if cells.isEmpty { cells.append(Cell(prose: [], code: "")) }
        if case .text(let more) = output, case .text(let text)? = cells[cells.count - 1].outputs.last {
            cells[cells.count - 1].outputs[cells[cells.count - 1].outputs.count - 1] = .text(text + more)
        } else {
            cells[cells.count - 1].outputs.append(output)
        }
    }

    // MARK: - Rendering

    /// Writes the report: `.md` as Markdown (figures into `<name>-figures/`), anything else as HTML.
    public func write(to path: String, title: String) throws {
        if path.lowercased().hasSuffix(".md") {
            let url = URL(fileURLWithPath: path)
            let folderName = url.deletingPathExtension().lastPathComponent + "-figures"
            let folder = url.deletingLastPathComponent().appendingPathComponent(folderName).path
            let (text, figures) = markdown(title: title, figureFolder: folderName)
            if !figures.isEmpty { try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true) }
            for (name, svg) in figures { try AtomicFile.write(Array(svg.utf8), to: folder + "/" + name) }
            try AtomicFile.write(Array(text.utf8), to: path)
        } else {
            try AtomicFile.write(Array(html(title: title).utf8), to: path)
        }
    }

    static func escape(_ s: String) -> String {
        s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;").replacingOccurrences(of: ">", with: "&gt;")
    }

    static let style = """
        body { font-family: "DejaVu Sans", Helvetica, Arial, sans-serif; max-width: 1100px; margin: 2em auto; padding: 0 1em; color: #222; }
        h1 { font-size: 1.6em; } .prose { margin: 1.4em 0 0.4em; line-height: 1.45; }
        pre { margin: 0.3em 0; padding: 0.6em 0.8em; overflow-x: auto; font-size: 13px; line-height: 1.35; }
        pre.code { background: #f3f4f6; border-left: 3px solid #4C72B0; }
        pre.out { background: #fff; border-left: 3px solid #ddd; }
        pre.error { background: #fdecea; border-left: 3px solid #C44E52; color: #8a1c1c; }
        table { border-collapse: collapse; font-size: 13px; margin: 0.4em 0; }
        th, td { padding: 2px 10px; border-bottom: 1px solid #e3e3e3; } th { text-align: left; background: #f7f7f7; }
        td.num { text-align: right; font-variant-numeric: tabular-nums; } .shape { color: #666; font-size: 12px; }
        figure { margin: 0.6em 0; overflow-x: auto; } figure svg { border: 1px solid #eee; }
        .wide { overflow-x: auto; }
        figcaption { color: #666; font-size: 12px; }
        """

    func html(title: String) -> String {
        var out = "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>\(Report.escape(title))</title>\n"
            + "<style>\n\(Report.style)\n</style>\n</head>\n<body>\n<h1>\(Report.escape(title))</h1>\n"
        for cell in cells {
            if !cell.prose.isEmpty {
                let paragraphs = cell.prose.split(separator: "", omittingEmptySubsequences: true).map { $0.joined(separator: " ") }
                for p in paragraphs {
                    // `# ## Heading` comments become headings.
                    if p.hasPrefix("#") {
                        out += "<h2>\(Report.escape(p.drop { $0 == "#" }.trimmingCharacters(in: .whitespaces)))</h2>\n"
                    } else {
                        out += "<p class=\"prose\">\(Report.escape(p))</p>\n"
                    }
                }
            }
            if !cell.code.isEmpty { out += "<pre class=\"code\">\(Report.escape(cell.code))</pre>\n" }
            for output in cell.outputs {
                switch output {
                case .text(let text): out += "<pre class=\"out\">\(Report.escape(text.trimmingCharacters(in: .newlines)))</pre>\n"
                case .error(let text): out += "<pre class=\"error\">\(Report.escape(text.trimmingCharacters(in: .newlines)))</pre>\n"
                case .table(let table): out += htmlTable(table)
                case .figure(let path, let svg):
                    out += "<figure>\n\(svg)<figcaption>\(Report.escape(path))</figcaption>\n</figure>\n"
                }
            }
        }
        return out + "</body>\n</html>\n"
    }

    private func htmlTable(_ table: Table) -> String {
        let shown = min(table.rowCount, Report.tableRows)
        var out = "<div class=\"shape\">table \(grouped(table.rowCount)) rows × \(table.columnCount) columns</div>\n<div class=\"wide\"><table>\n<tr>"
        out += table.names.map { "<th>\(Report.escape($0))</th>" }.joined() + "</tr>\n"
        for r in 0..<shown {
            out += "<tr>" + table.columns.map { c in
                "<td\(c.isNumeric ? " class=\"num\"" : "")>\(Report.escape(TableObject.cell(c, r)))</td>"
            }.joined() + "</tr>\n"
        }
        out += "</table></div>\n"
        if shown < table.rowCount { out += "<div class=\"shape\">… \(grouped(table.rowCount - shown)) more rows</div>\n" }
        return out
    }

    func markdown(title: String, figureFolder: String) -> (String, [(String, String)]) {
        var out = "# \(title)\n\n"
        var figures: [(String, String)] = []
        for cell in cells {
            if !cell.prose.isEmpty {
                out += cell.prose.split(separator: "", omittingEmptySubsequences: true).map { lines -> String in
                    let p = lines.joined(separator: " ")
                    return p.hasPrefix("#") ? "## " + p.drop { $0 == "#" }.trimmingCharacters(in: .whitespaces) : p
                }.joined(separator: "\n\n") + "\n\n"
            }
            if !cell.code.isEmpty { out += "```\n\(cell.code)\n```\n\n" }
            for output in cell.outputs {
                switch output {
                case .text(let text), .error(let text):
                    out += "```text\n\(text.trimmingCharacters(in: .newlines))\n```\n\n"
                case .table(let table):
                    let shown = min(table.rowCount, Report.tableRows)
                    out += "_table \(grouped(table.rowCount)) rows × \(table.columnCount) columns_\n\n"
                    out += "| " + table.names.map(Report.markdownCell).joined(separator: " | ") + " |\n"
                    out += "|" + table.columns.map { $0.isNumeric ? " ---: |" : " --- |" }.joined() + "\n"
                    for r in 0..<shown {
                        out += "| " + table.columns.map { Report.markdownCell(TableObject.cell($0, r)) }.joined(separator: " | ") + " |\n"
                    }
                    if shown < table.rowCount { out += "\n_… \(grouped(table.rowCount - shown)) more rows_\n" }
                    out += "\n"
                case .figure(let path, let svg):
                    let name = "figure-\(figures.count + 1).svg"
                    figures.append((name, svg))
                    out += "![\(path)](\(figureFolder)/\(name))\n\n"
                }
            }
        }
        return (out, figures)
    }

    static func markdownCell(_ s: String) -> String {
        s.replacingOccurrences(of: "|", with: "\\|").replacingOccurrences(of: "\n", with: " ")
    }
}
