import Foundation

/// Reads a case's `expected.json`, the reference's Python JSON: it spells non-finite numbers bare
/// (`NaN`, `Infinity`, `-Infinity`), which Foundation refuses, so outside strings they become
/// the strings "nan", "inf" and "-inf" (`number(_:)` maps them back).
public enum OracleCase {
    public static func expected(_ dir: String) throws -> [String: Any] {
        let data = try Data(contentsOf: URL(fileURLWithPath: dir + "/expected.json"))
        let json = try JSONSerialization.jsonObject(with: Data(quotingNonFinite(String(decoding: data, as: UTF8.self)).utf8))
        guard let object = json as? [String: Any] else { throw NotAnObject(path: dir + "/expected.json") }
        return object
    }

    /// A number of `expected.json`, including the spelled-out non-finite ones; nil for null or absent.
    public static func number(_ value: Any?) -> Double? {
        switch value {
        case let n as NSNumber: return n.doubleValue
        case let s as String: return Double(s)  // "inf", "-inf", "nan"
        default: return nil
        }
    }

    /// `text` with the bare tokens NaN, Infinity and -Infinity outside strings quoted.
    static func quotingNonFinite(_ text: String) -> String {
        var out = "", inString = false, escaped = false
        var rest = Substring(text)
        while let c = rest.first {
            if inString {
                if escaped { escaped = false } else if c == "\\" { escaped = true } else if c == "\"" { inString = false }
            } else if c == "\"" {
                inString = true
            } else if let (token, word) = [("-Infinity", "\"-inf\""), ("Infinity", "\"inf\""), ("NaN", "\"nan\"")].first(where: { rest.hasPrefix($0.0) }) {
                out += word
                rest = rest.dropFirst(token.count)
                continue
            }
            out.append(c)
            rest = rest.dropFirst()
        }
        return out
    }

    struct NotAnObject: Error, CustomStringConvertible {
        let path: String
        var description: String { "\(path) is not a JSON object" }
    }
}
