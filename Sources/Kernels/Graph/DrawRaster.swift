import CRsvg
import Foundation

extension GraphDrawing {
    /// Renders an SVG figure to a PNG of `width` pixels (height in proportion) through librsvg
    /// and cairo, written to a temporary file beside `path` and renamed into place.
    /// - Complexity: O(pixels + SVG elements).
    public static func writePNG(_ svg: String, width: Int, height: Int, to path: String) throws {
        guard width > 0, height > 0, width <= 16_000, height <= 16_000 else {
            throw IOFailure.cannotWrite(path: path, reason: "a \(width)×\(height) image is out of range (1 to 16,000 px a side)")
        }
        let temp = try AtomicFile.temporaryPath(beside: path)
        var error = [CChar](repeating: 0, count: 512)
        let bytes = Array(svg.utf8)
        let status = bytes.withUnsafeBufferPointer { data in
            mge_render_svg_to_png(data.baseAddress, data.count, Int32(width), Int32(height), temp, &error, error.count)
        }
        guard status == 0 else {
            unlink(temp)
            throw IOFailure.cannotWrite(path: path, reason: String(decoding: error.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self))
        }
        if rename(temp, path) != 0 {
            let reason = String(cString: strerror(errno))
            unlink(temp)
            throw IOFailure.cannotWrite(path: path, reason: reason)
        }
    }

    /// The `width` and `height` attributes of a figure made by `svg(...)`.
    public static func size(of svg: String) -> (width: Double, height: Double)? {
        func attribute(_ name: String) -> Double? {
            guard let r = svg.range(of: " \(name)=\"") else { return nil }
            let rest = svg[r.upperBound...]
            guard let end = rest.firstIndex(of: "\"") else { return nil }
            return Double(rest[..<end])
        }
        guard let w = attribute("width"), let h = attribute("height") else { return nil }
        return (w, h)
    }
}
