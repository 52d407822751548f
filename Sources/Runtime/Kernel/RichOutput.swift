import Foundation
import Kernels

/// A value as a Jupyter MIME bundle: text/plain always (what the REPL shows), text/html for
/// records, lists of records and tables, image/svg+xml for figures (with image/png beside
/// when the SVG is large, so a notebook stays light to render). nil for `none`.
enum RichOutput {
    /// Rows of a table shown in HTML (the REPL's short form shows 10; a notebook scrolls).
    static let tableRows = 50
    /// An SVG larger than this also gets a PNG rendering.
    static let largeSVG = 1 << 20

    static func bundle(_ value: Value) -> [String: Any]? {
        guard let text = Display.cell(value) else { return nil }
        var bundle: [String: Any] = ["text/plain": text]
        switch value {
        case .native(let figure as FigureObject):
            bundle["image/svg+xml"] = figure.svg
            if figure.svg.utf8.count > largeSVG, let png = Figures.png(figure.svg) {
                bundle["image/png"] = Data(png).base64EncodedString()
            }
        case .native(let native):
            if let table = TableObject.of(native) { bundle["text/html"] = html(table.table) }
        case .record(let r) where r.count > 0:
            bundle["text/html"] = html(header: ["field", "value"], rows: r.fields.map { [$0, cellText($1)] }, numeric: [false, false])
        case .list(let items) where !items.isEmpty && items.allSatisfy({ if case .record = $0 { return true }; return false }):
            var columns: [String] = []
            for case .record(let r) in items { for name in r.names where !columns.contains(name) { columns.append(name) } }
            let rows = items.map { item -> [String] in
                guard case .record(let r) = item else { return [] }
                return columns.map { r[$0].map(cellText) ?? "" }
            }
            let numeric = columns.map { name in items.allSatisfy { item in
                guard case .record(let r) = item else { return false }
                switch r[name] { case .int?, .float?, nil, Value.none?: return true; default: return false }
            } }
            bundle["text/html"] = html(header: columns, rows: rows, numeric: numeric)
        default:
            break
        }
        return bundle
    }

    /// Display metadata: a figure's images at their natural size (`width`/`height` in px, and
    /// `unconfined`, which JupyterLab reads as "do not shrink to the cell's width"), so 12 px
    /// labels stay 12 px and a wide figure scrolls instead.
    static func metadata(_ value: Value) -> [String: Any] {
        guard case .native(let figure as FigureObject) = value else { return [:] }
        let (width, height) = figure.size
        let size: [String: Any] = ["width": width, "height": height, "unconfined": true]
        return ["image/svg+xml": size, "image/png": size]
    }

    /// The figures of a list of figures (what `draw(…, split: k)` returns), shown one display each; nil for anything else.
    static func figures(_ value: Value) -> [Value]? {
        guard case .list(let items) = value, !items.isEmpty,
              items.allSatisfy({ if case .native(let n) = $0 { return n is FigureObject }; return false }) else { return nil }
        return items
    }

    static func cellText(_ value: Value) -> String {
        switch value {
        case .string(let s): return s
        case .float(let d): return Display.tableFloat(d)
        case .native(let object): return object.display(long: false)
        default: return Display.inline(value)
        }
    }

    static func html(_ table: Table) -> String {
        let shown = min(table.rowCount, tableRows)
        let rows = (0..<shown).map { r in table.columns.map { TableObject.cell($0, r) } }
        var out = "<div class=\"mge-shape\">table \(grouped(table.rowCount)) rows × \(table.columnCount) columns</div>\n"
        out += html(header: table.names, rows: rows, numeric: table.columns.map(\.isNumeric))
        if shown < table.rowCount { out += "<div>… \(grouped(table.rowCount - shown)) more rows (show(t) prints all)</div>\n" }
        return out
    }

    /// A plain HTML table; numeric columns right-aligned. Wide tables scroll inside their own box.
    static func html(header: [String], rows: [[String]], numeric: [Bool]) -> String {
        var out = "<div style=\"overflow-x: auto; max-width: 100%\">\n<table>\n<thead><tr>"
        out += header.map { "<th>\(Report.escape($0))</th>" }.joined() + "</tr></thead>\n<tbody>\n"
        for row in rows {
            out += "<tr>" + row.enumerated().map { i, cell in
                let align = i < numeric.count && numeric[i] ? " style=\"text-align: right\"" : " style=\"text-align: left\""
                return "<td\(align)>\(Report.escape(cell))</td>"
            }.joined() + "</tr>\n"
        }
        return out + "</tbody>\n</table>\n</div>\n"
    }
}
