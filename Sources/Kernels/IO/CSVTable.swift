import Foundation

/// Appends rows to a CSV file whose columns are fixed by its header.
///
/// The header is written with the first row; later rows must use those columns (a missing
/// value is left empty, an unknown column is refused so a sweep never silently drops data).
/// Every append rewrites the file through `AtomicFile`, so an interrupted run leaves either
/// the old file or the new one, never half a row.
public enum CSVTable {
    public enum Failure: Error, CustomStringConvertible {
        case unknownColumns(path: String, columns: [String], header: [String])
        public var description: String {
            switch self {
            case let .unknownColumns(path, columns, header):
                return "\(path) has no column \(columns.map { "'\($0)'" }.joined(separator: ", ")) (its header: \(header.joined(separator: ",")))"
            }
        }
    }

    /// Appends `row` (column name → already formatted cell). Returns the number of data rows now in the file.
    /// - Complexity: O(file size) per append.
    @discardableResult
    public static func append(path: String, columns: [String], row: [String: String]) throws -> Int {
        var text = ""
        var header = columns
        if FileManager.default.fileExists(atPath: path) {
            guard let data = FileManager.default.contents(atPath: path) else {
                throw IOFailure.cannotRead(path: path, reason: "permission denied or not a file")
            }
            text = String(decoding: data, as: UTF8.self)
            if let first = text.split(separator: "\n", maxSplits: 1, omittingEmptySubsequences: false).first, !first.isEmpty {
                header = parseLine(String(first))
            }
        }
        let unknown = row.keys.filter { !header.contains($0) }.sorted()
        guard unknown.isEmpty else { throw Failure.unknownColumns(path: path, columns: unknown, header: header) }
        if text.isEmpty { text = header.map(escape).joined(separator: ",") + "\n" }
        if !text.hasSuffix("\n") { text += "\n" }
        text += header.map { escape(row[$0] ?? "") }.joined(separator: ",") + "\n"
        try AtomicFile.write(Array(text.utf8), to: path)
        return text.split(separator: "\n").count - 1
    }

    static func escape(_ cell: String) -> String {
        guard cell.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" }) else { return cell }
        return "\"" + cell.replacingOccurrences(of: "\"", with: "\"\"") + "\""
    }

    /// Splits one CSV line, honouring double-quoted cells.
    static func parseLine(_ line: String) -> [String] {
        var cells: [String] = []
        var cell = ""
        var quoted = false
        var chars = Array(line)
        if chars.last == "\r" { chars.removeLast() }
        var i = 0
        while i < chars.count {
            let c = chars[i]
            if quoted {
                if c == "\"" {
                    if i + 1 < chars.count, chars[i + 1] == "\"" { cell.append("\""); i += 1 } else { quoted = false }
                } else { cell.append(c) }
            } else if c == "\"" { quoted = true } else if c == "," { cells.append(cell); cell = "" } else { cell.append(c) }
            i += 1
        }
        cells.append(cell)
        return cells
    }
}

/// The paper's published dataset layout (SPEC §4): normalised topometrics under its column names.
public enum PaperTable {
    /// (our field, paper column, divisor) — divisor `n` = nodes, `m` = edges, `1` = raw.
    public static let metricColumns: [(field: String, column: String, per: Character)] = [
        ("sink_nodes", "sink_nodes", "n"), ("source_nodes", "source_nodes", "n"),
        ("disconnected_nodes", "disc_nodes", "n"), ("removable_out_edges", "r-out", "m"),
        ("removable_in_edges", "r-in", "m"), ("two_hop", "2-hop_nei", "m"), ("cut_edges", "cut-edges", "m"),
        ("motifs", "motif", "m"), ("components", "no_connected_components", "1"),
        ("mean_component_size", "mean_connected_components", "n"), ("strength", "avg_node_strength", "m"),
        ("one_hop", "1-hop_nei", "m"), ("cut_nodes", "cut-nodes", "m"), ("k_core", "k-core", "m"),
        ("spectral_gap", "spectral_gap", "1"), ("spectral_radius", "spectral_radius", "1"),
    ]

    /// Columns describing the run, after the metrics.
    public static let runColumns = ["accuracy", "pruning", "sparsity", "model", "dataset", "seed", "nodes", "edges"]

    public static var columns: [String] { metricColumns.map(\.column) + runColumns }

    /// Normalises raw topometrics (field → value, with `nodes` and `edges`) into paper columns.
    /// Fields not present (e.g. computed with `only:`) are left out.
    public static func normalized(_ metrics: [String: Double]) -> [(column: String, value: Double)] {
        let n = metrics["nodes"] ?? .nan, m = metrics["edges"] ?? .nan
        return metricColumns.compactMap { entry in
            guard let v = metrics[entry.field] else { return nil }
            let divisor = entry.per == "n" ? n : entry.per == "m" ? m : 1
            return (entry.column, divisor == 0 ? .nan : v / divisor)
        }
    }
}
