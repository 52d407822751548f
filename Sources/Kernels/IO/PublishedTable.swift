import Foundation

/// The paper's published unrolled-MGE table (`graph_metrics/unrolled/unrolled.csv` of its
/// code repository, Apache-2.0), shipped with mge as `data/paper/unrolled.csv.zst`, so a
/// computed row can be put beside the published rows of the same configuration.
///
/// Found in `folder` (set by the front end at start-up, the Runtime from `$MGE_PAPER_DATA`) as
/// `unrolled.csv.zst` (or `.csv`), else in `data/paper/` of the first
/// folder above the running executable that has one (the repository of a `swift build`), else
/// in `data/paper/` under the current folder.
public enum PublishedTable {
    public static let fileName = "unrolled.csv.zst"

    /// One published row: the run's description and its metric cells, as the paper wrote them.
    public struct Row: Equatable, Sendable {
        public var cells: [String: String]
        public func number(_ column: String) -> Double? { cells[column].flatMap(Double.init) }
    }

    /// A folder searched first, when set.
    nonisolated(unsafe) public static var folder: String?

    /// The folders searched, in order.
    public static func searchedFolders() -> [String] {
        var folders: [String] = folder.map { [$0] } ?? []
        var dir = URL(fileURLWithPath: executablePath()).deletingLastPathComponent()
        for _ in 0 ..< 6 {
            folders.append(dir.appendingPathComponent("data/paper").path)
            let parent = dir.deletingLastPathComponent()
            if parent.path == dir.path { break }
            dir = parent
        }
        folders.append(FileManager.default.currentDirectoryPath + "/data/paper")
        return folders
    }

    /// The first readable copy of the table, compressed or plain.
    public static func locate() -> String? {
        for folder in searchedFolders() {
            for name in [fileName, "unrolled.csv"] where FileManager.default.isReadableFile(atPath: folder + "/" + name) {
                return folder + "/" + name
            }
        }
        return nil
    }

    nonisolated(unsafe) private static var cache: (path: String, table: ResultsCSV.Table)?
    private static let lock = NSLock()

    /// The parsed table (read once per process). Exact duplicate rows of the published file
    /// (47 of its 2,337) are kept once.
    public static func load() throws -> ResultsCSV.Table {
        lock.lock(); defer { lock.unlock() }
        guard let path = locate() else {
            throw IOFailure.cannotRead(path: fileName, reason: "the paper's table was not found in "
                + searchedFolders().joined(separator: ", "))
        }
        if let cache, cache.path == path { return cache.table }
        guard let data = FileManager.default.contents(atPath: path) else {
            throw IOFailure.cannotRead(path: path, reason: "permission denied or not a file")
        }
        let bytes = path.hasSuffix(".zst") ? try Zstd.decompress(Array(data), path: path) : Array(data)
        var table = try ResultsCSV.parseTable(bytes, path: path)
        let missing = PaperTable.paperColumns.filter { !table.header.contains($0) }
        guard missing.isEmpty else {
            throw IOFailure.corrupt(path: path, reason: "no column \(missing.joined(separator: ", ")) (not the paper's unrolled table)")
        }
        var seen = Set<[String]>()
        table.rows = table.rows.filter { seen.insert($0).inserted }
        cache = (path, table)
        return table
    }

    /// The published rows of one configuration (model and dataset in either spelling; seed nil = every seed).
    /// Sparsity matches to 1e-9.
    public static func rows(pruning: String, sparsity: Double, model: String, dataset: String, seed: Int? = nil) throws -> [Row] {
        let table = try load()
        let modelLabel = PaperTable.modelLabel(model) ?? model
        let datasetLabel = PaperTable.datasetLabel(dataset) ?? dataset
        return table.records.filter { r in
            r["pruning"] == pruning && r["model"] == modelLabel && r["dataset"] == datasetLabel
                && (r["sparsity"].flatMap(Double.init).map { abs($0 - sparsity) < 1e-9 } ?? false)
                && (seed == nil || r["seed"] == String(seed ?? 0))
        }
        .sorted { ($0["seed"] ?? "") < ($1["seed"] ?? "") }
        .map { Row(cells: $0) }
    }

    /// The distinct values of a column (for "did you mean" and for saying what exists).
    public static func values(of column: String) throws -> [String] {
        let table = try load()
        guard let i = table.column(column) else { return [] }
        return Array(Set(table.rows.map { $0[i] })).sorted()
    }

    static func executablePath() -> String {
        (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments.first ?? "."
    }
}
