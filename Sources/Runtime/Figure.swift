import Foundation
import Kernels

/// A drawn figure not yet written anywhere: what `draw(x)` and `plot(…)` return without a path.
/// The REPL shows its size, a notebook shows it inline, `--report` embeds it, `save(fig, "x.png")`
/// (or .svg) writes it.
public final class FigureObject: NativeValue {
    public let svg: String
    public let title: String
    public init(svg: String, title: String) { self.svg = svg; self.title = title }

    public var typeName: String { "figure" }

    /// Pixel size from the SVG's own width and height.
    public var size: (width: Int, height: Int) {
        let s = GraphDrawing.size(of: svg) ?? (0, 0)
        return (Int(s.width.rounded()), Int(s.height.rounded()))
    }

    public func display(long: Bool) -> String {
        let (w, h) = size
        let name = title.isEmpty ? "" : " \(Display.quoted(title))"
        return "<figure\(name) \(w)×\(h) px; save(fig, \"fig.png\") writes it>"
    }

    public func field(_ name: String) -> Value? {
        switch name {
        case "width": return .int(size.width)
        case "height": return .int(size.height)
        case "title": return .string(title)
        case "svg": return .string(svg)
        default: return nil
        }
    }

    public var fieldNames: [String] { ["width", "height", "title", "svg"] }
}

enum Figures {
    /// Writes an SVG figure to the checked argument `name` (.svg as text, .png through librsvg
    /// at the figure's own size), reports it (`wrote x.png (41 kB)`) and hands it to the report.
    static func write(_ svg: String, _ args: Arguments, _ name: String, fallbackSize: (Double, Double)) throws {
        try write(svg, to: try filePath(args, name, extensions: ["svg", "png"], what: "a figure"), args, fallbackSize: fallbackSize)
    }

    /// Writes an SVG figure to a checked `path` (see `write(_:_:_:fallbackSize:)`).
    static func write(_ svg: String, to path: String, _ args: Arguments, fallbackSize: (Double, Double)) throws {
        if (path as NSString).pathExtension.lowercased() == "png" {
            let size = GraphDrawing.size(of: svg) ?? fallbackSize
            try cancellable(isWrite: true) { try GraphDrawing.writePNG(svg, width: Int(size.width.rounded()), height: Int(size.height.rounded()), to: path) }
        } else {
            try cancellable(isWrite: true) { try GraphDrawing.write(svg, to: path) }
        }
        reportWrite(path, file: path, args)
        args.interpreter.figureWritten?(path, svg)
    }

    /// A PNG rendering of the figure at its own size (for notebooks, beside a large SVG); nil when it cannot be made.
    static func png(_ svg: String) -> [UInt8]? {
        guard let size = GraphDrawing.size(of: svg), size.width >= 1, size.height >= 1 else { return nil }
        let path = NSTemporaryDirectory() + "/mge-figure-\(getpid())-\(UUID().uuidString).png"
        defer { unlink(path) }
        guard (try? GraphDrawing.writePNG(svg, width: Int(size.width.rounded()), height: Int(size.height.rounded()), to: path)) != nil,
              let data = FileManager.default.contents(atPath: path) else { return nil }
        return Array(data)
    }
}
