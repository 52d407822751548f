import CArchive
import CCurl
import Foundation

/// A dataset's official archive: where it is published, its published checksum, and what the
/// loaders (CIFAR.swift, TinyImageNet.swift) expect to find once it is unpacked.
public struct DatasetArchive: Sendable {
    /// The name mge uses: `cifar10`, `cifar100`, `tinyimagenet` (also the folder it unpacks into).
    public let name: String
    /// The official archive's file name, also its name on a mirror.
    public let fileName: String
    public let officialURL: String
    /// The checksum published for the official archive (MD5: no SHA-256 is published for these).
    public let officialMD5: String
    /// The archive's size, for the question before downloading.
    public let approximateBytes: Int
    /// Files that must exist under the destination once unpacked (the archive's own top folder
    /// is kept, which the loaders accept: `<dest>/cifar-10-batches-bin/test_batch.bin`).
    public let requiredFiles: [String]

    public static let cifar10 = DatasetArchive(
        name: "cifar10", fileName: "cifar-10-binary.tar.gz", officialURL: "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz",
        officialMD5: "c32a1d4ab5d03f1284b67883e8d87530", approximateBytes: 170_052_171,
        requiredFiles: (1 ... 5).map { "cifar-10-batches-bin/data_batch_\($0).bin" } + ["cifar-10-batches-bin/test_batch.bin"])
    public static let cifar100 = DatasetArchive(
        name: "cifar100", fileName: "cifar-100-binary.tar.gz", officialURL: "https://www.cs.toronto.edu/~kriz/cifar-100-binary.tar.gz",
        officialMD5: "03b5dce01913d631647c71ecec9e9cb8", approximateBytes: 168_513_733,
        requiredFiles: ["cifar-100-binary/train.bin", "cifar-100-binary/test.bin"])
    public static let tinyImageNet = DatasetArchive(
        name: "tinyimagenet", fileName: "tiny-imagenet-200.zip", officialURL: "https://cs231n.stanford.edu/tiny-imagenet-200.zip",
        officialMD5: "90528d7ca1a48142e341f4ef8d21d0de", approximateBytes: 248_100_043,
        requiredFiles: ["tiny-imagenet-200/wnids.txt", "tiny-imagenet-200/val/val_annotations.txt"])

    public static let all = [cifar10, cifar100, tinyImageNet]

    public static func named(_ name: String) -> DatasetArchive? { all.first { $0.name == name } }
}

public enum DownloadError: Error, CustomStringConvertible, Equatable {
    case transfer(url: String, reason: String)
    case checksum(file: String, algorithm: String, expected: String, actual: String)
    case unpack(file: String, reason: String)
    case unverified(file: String, reason: String)
    case cannotWrite(path: String, reason: String)

    public var description: String {
        switch self {
        case let .transfer(url, reason): return "download of \(url) failed: \(reason)"
        case let .checksum(file, algorithm, expected, actual):
            return "\(file) does not match its published \(algorithm) checksum (expected \(expected), got \(actual)); the download was deleted"
        case let .unpack(file, reason): return "cannot unpack \(file): \(reason)"
        case let .unverified(file, reason): return "cannot check \(file) against its published checksum: \(reason)"
        case let .cannotWrite(path, reason): return "cannot write \(path): \(reason)"
        }
    }
}

/// Fetches a dataset's archive, checks it, and unpacks it into `<data root>/<name>` atomically.
///
/// - The archive comes from its official URL, or from `<mirror>/<file name>` with the checksum
///   taken from `<mirror>/SHA256SUMS` (sha256sum's format) when a mirror is set.
/// - It is downloaded to `<root>/.<file name>.part`; a cut connection or Ctrl-C leaves that
///   file, and the next call resumes it with an HTTP range request.
/// - The complete archive is checked (MD5 for the official archives, SHA-256 with a mirror),
///   unpacked into `<root>/.<name>.unpacking-<pid>`, checked for the files the loaders need, and
///   renamed to `<root>/<name>`; any failure removes the half-unpacked folder, so no half
///   dataset is ever visible. The archive is deleted once unpacked.
public enum DatasetDownload {
    /// Where archives are unpacked: the first of `Dataset.roots`.
    public static var dataRoot: String { Dataset.roots.first ?? NSHomeDirectory() + "/.mge/data" }

    /// A mirror's base URL (no trailing slash) to fetch archives from instead of the official
    /// URLs; set by the front end at start-up (the Runtime from `$MGE_DATA_MIRROR`).
    nonisolated(unsafe) public static var mirror: String?

    public enum Outcome: Equatable { case downloaded(String), alreadyPresent(String) }

    /// Downloads and unpacks `archive` into `root/<name>`; `say` gets one-line reports.
    /// - Complexity: O(archive size) time; memory a few MB.
    public static func fetch(_ archive: DatasetArchive, root: String = dataRoot, mirror: String? = mirror,
                             say: (String) -> Void = { _ in }) throws -> Outcome {
        let fm = FileManager.default
        let destination = root + "/" + archive.name
        if fm.fileExists(atPath: destination) {
            return .alreadyPresent(destination)
        }
        do { try fm.createDirectory(atPath: root, withIntermediateDirectories: true) } catch {
            throw DownloadError.cannotWrite(path: root, reason: "\(error.localizedDescription)")
        }
        let url = mirror.map { $0 + "/" + archive.fileName } ?? archive.officialURL
        let partial = root + "/." + archive.fileName + ".part"

        // The expected checksum first: a mirror without one for this file is refused up front.
        let expected: (algorithm: Digest.Algorithm, hex: String)
        if let mirror {
            let sums = try HTTPTransfer.text(mirror + "/SHA256SUMS")
            guard let hex = checksum(in: sums, for: archive.fileName) else {
                throw DownloadError.transfer(url: mirror + "/SHA256SUMS", reason: "it lists no checksum for \(archive.fileName)")
            }
            expected = (.sha256, hex)
        } else {
            expected = (.md5, archive.officialMD5)
        }

        let resumedFrom = (try? fm.attributesOfItem(atPath: partial)[.size] as? Int) ?? 0
        say(resumedFrom > 0 ? "resuming \(url) from \(resumedFrom) bytes into \(destination)"
                            : "downloading \(url) into \(destination)")
        do {
            try HTTPTransfer.download(url, to: partial, label: archive.fileName)
        } catch {
            // A cut connection, a server error or Ctrl-C keeps what arrived, to resume; a write
            // failure (full disk) drops it, so the disk is not left holding a useless part.
            let kept = (try? fm.attributesOfItem(atPath: partial)[.size] as? Int) ?? 0
            var writeFailed = false
            if case DownloadError.cannotWrite = error { writeFailed = true }
            if writeFailed || kept == 0 { unlink(partial) }
            throw error
        }

        let actual = try hexDigest(of: partial, algorithm: expected.algorithm)
        guard actual == expected.hex else {
            unlink(partial)
            throw DownloadError.checksum(file: archive.fileName, algorithm: expected.algorithm.rawValue, expected: expected.hex, actual: actual)
        }

        let staging = root + "/." + archive.name + ".unpacking-\(getpid())"
        try? fm.removeItem(atPath: staging)
        do {
            try fm.createDirectory(atPath: staging, withIntermediateDirectories: true)
            try ArchiveExtraction.extract(partial, into: staging, label: archive.fileName)
            let absent = archive.requiredFiles.filter { !fm.fileExists(atPath: staging + "/" + $0) }
            guard absent.isEmpty else {
                throw DownloadError.unpack(file: archive.fileName, reason: "it does not hold " + absent.joined(separator: ", "))
            }
            guard rename(staging, destination) == 0 else {
                throw DownloadError.cannotWrite(path: destination, reason: String(cString: strerror(errno)))
            }
        } catch {
            try? fm.removeItem(atPath: staging)
            if error is DownloadError { unlink(partial) }   // a bad archive is not resumed; Ctrl-C keeps it
            throw error
        }
        unlink(partial)
        return .downloaded(destination)
    }

    /// The checksum `sums` (sha256sum's output: `<hex>  <name>` or `<hex> *<name>`) gives `fileName`.
    static func checksum(in sums: String, for fileName: String) -> String? {
        for line in sums.split(whereSeparator: \.isNewline) {
            let fields = line.split(maxSplits: 1, whereSeparator: \.isWhitespace)
            guard fields.count == 2 else { continue }
            var name = fields[1].trimmingCharacters(in: .whitespaces)
            if name.hasPrefix("*") { name.removeFirst() }
            let hex = fields[0].lowercased()
            if name == fileName, hex.count == 64, hex.allSatisfy(\.isHexDigit) { return hex }
        }
        return nil
    }

    static func hexDigest(of path: String, algorithm: Digest.Algorithm) throws -> String {
        guard let file = fopen(path, "rb") else {
            throw DownloadError.cannotWrite(path: path, reason: String(cString: strerror(errno)))
        }
        defer { fclose(file) }
        do {
            let digest = try Digest(algorithm)
            var buffer = [UInt8](repeating: 0, count: 1 << 20)
            while true {
                let got = buffer.withUnsafeMutableBytes { fread($0.baseAddress, 1, $0.count, file) }
                if got == 0 { break }
                buffer.withUnsafeBytes { digest.update(UnsafeRawBufferPointer(rebasing: $0[0 ..< got])) }
            }
            return try digest.hexDigest()
        } catch let failure as Digest.Failure {
            throw DownloadError.unverified(file: (path as NSString).lastPathComponent, reason: failure.description)
        }
    }
}

/// HTTP(S) transfers through libcurl.
enum HTTPTransfer {
    /// The state one transfer's callbacks share (passed to C as an opaque pointer).
    final class Sink {
        let curl: UnsafeMutableRawPointer
        var file: UnsafeMutablePointer<FILE>?
        var memory: [UInt8] = []
        let resumeOffset: Int
        var received = 0
        var checkedStatus = false
        /// Set when the body is not the file's (a 416 answer to a resume that was already complete).
        var discardBody = false
        /// Why the write callback stopped the transfer, when it did.
        var failure: DownloadError?
        var progress: (any ProgressStage)?
        var progressDone = 0, progressTotal = 0
        let label: String
        let url: String

        init(curl: UnsafeMutableRawPointer, file: UnsafeMutablePointer<FILE>?, resumeOffset: Int, label: String, url: String) {
            self.curl = curl; self.file = file; self.resumeOffset = resumeOffset; self.label = label; self.url = url
        }
    }

    /// A small text file (a checksum list), in memory.
    static func text(_ url: String) throws -> String {
        let sink = try perform(url, file: nil, resumeFrom: 0, label: nil)
        return String(decoding: sink.memory, as: UTF8.self)
    }

    /// Appends the rest of `url` to the file at `path` (resuming from its current size).
    static func download(_ url: String, to path: String, label: String) throws {
        guard let file = fopen(path, "ab") else {
            throw DownloadError.cannotWrite(path: path, reason: String(cString: strerror(errno)))
        }
        let offset = Int(ftello(file))
        defer { fclose(file) }
        _ = try perform(url, file: file, resumeFrom: offset, label: label)
        guard fflush(file) == 0 else { throw DownloadError.cannotWrite(path: path, reason: String(cString: strerror(errno))) }
    }

    private static func perform(_ url: String, file: UnsafeMutablePointer<FILE>?, resumeFrom offset: Int, label: String?) throws -> Sink {
        // A write beyond the file-size limit must fail with EFBIG, not kill the process.
        signal(SIGXFSZ, SIG_IGN)
        guard let curl = curl_easy_init() else { throw DownloadError.transfer(url: url, reason: "libcurl could not start") }
        defer { curl_easy_cleanup(curl) }
        let sink = Sink(curl: curl, file: file, resumeOffset: offset, label: label ?? url, url: url)
        let context = Unmanaged.passUnretained(sink).toOpaque()
        var error = [CChar](repeating: 0, count: Int(CURL_ERROR_SIZE) + 1)
        _ = mge_curl_set_string(curl, CURLOPT_URL, url)
        _ = mge_curl_set_long(curl, CURLOPT_FOLLOWLOCATION, 1)
        _ = mge_curl_set_long(curl, CURLOPT_CONNECTTIMEOUT, 30)
        // A stalled connection (under 1 byte/s for 60 s) is given up, leaving the part to resume.
        _ = mge_curl_set_long(curl, CURLOPT_LOW_SPEED_LIMIT, 1)
        _ = mge_curl_set_long(curl, CURLOPT_LOW_SPEED_TIME, 60)
        _ = mge_curl_set_long(curl, CURLOPT_NOSIGNAL, 1)
        if offset > 0 { _ = mge_curl_set_offset(curl, CURLOPT_RESUME_FROM_LARGE, curl_off_t(offset)) }
        _ = mge_curl_set_write_function(curl) { data, size, count, context in
            let sink = Unmanaged<Sink>.fromOpaque(context!).takeUnretainedValue()
            return HTTPTransfer.receive(sink, data, size * count)
        }
        _ = mge_curl_set_pointer(curl, CURLOPT_WRITEDATA, context)
        _ = mge_curl_set_long(curl, CURLOPT_NOPROGRESS, 0)
        _ = mge_curl_set_progress_function(curl) { context, total, now, _, _ in
            let sink = Unmanaged<Sink>.fromOpaque(context!).takeUnretainedValue()
            if Cancellation.isRequested { return 1 }
            HTTPTransfer.showProgress(sink, total: Int(total), now: Int(now))
            return 0
        }
        _ = mge_curl_set_pointer(curl, CURLOPT_XFERINFODATA, context)
        let code = error.withUnsafeMutableBufferPointer { buffer -> CURLcode in
            _ = mge_curl_set_pointer(curl, CURLOPT_ERRORBUFFER, UnsafeMutableRawPointer(buffer.baseAddress!))
            return curl_easy_perform(curl)
        }
        if code == CURLE_OK, let bar = sink.progress { bar.advance(by: sink.progressTotal - sink.progressDone) }   // the last partial MB
        sink.progress?.finish()
        if let failure = sink.failure { throw failure }
        if Cancellation.isRequested { throw InterruptedError() }
        var status = 0
        _ = mge_curl_response_code(curl, &status)
        guard code == CURLE_OK else {
            let detail = String(cString: error)
            let reason = detail.isEmpty ? String(cString: curl_easy_strerror(code)) : detail
            throw DownloadError.transfer(url: url, reason: reason + (sink.received > 0 ? " after \(sink.received) bytes (run it again to resume)" : ""))
        }
        // Range not satisfiable on a resume: the part already holds the whole file.
        if status == 416 && offset > 0 { return sink }
        try checkStatus(sink, status)
        return sink
    }

    private static func checkStatus(_ sink: Sink, _ status: Int) throws {
        guard status == 200 || status == 206 else {
            throw DownloadError.transfer(url: sink.url, reason: "the server answered HTTP \(status)")
        }
    }

    /// The write callback: checks the response once, then appends. Returning less than `count`
    /// makes libcurl stop with a write error; `sink.failure` says why.
    static func receive(_ sink: Sink, _ data: UnsafeMutablePointer<CChar>?, _ count: Int) -> Int {
        if !sink.checkedStatus {
            sink.checkedStatus = true
            var status = 0
            _ = mge_curl_response_code(sink.curl, &status)
            if status == 416 && sink.resumeOffset > 0 {
                sink.discardBody = true   // the part already holds the whole file
            } else {
                do { try checkStatus(sink, status) } catch let e as DownloadError { sink.failure = e; return 0 } catch { return 0 }
                if status == 200, sink.resumeOffset > 0, let file = sink.file {
                    // The server ignored the range: start the file over.
                    guard ftruncate(fileno(file), 0) == 0, fseeko(file, 0, SEEK_SET) == 0 else {
                        sink.failure = .cannotWrite(path: sink.label, reason: String(cString: strerror(errno)))
                        return 0
                    }
                }
            }
        }
        if sink.discardBody { return count }
        guard count > 0, let data else { return count }
        if let file = sink.file {
            guard fwrite(data, 1, count, file) == count, fflush(file) == 0 else {
                sink.failure = .cannotWrite(path: sink.label, reason: String(cString: strerror(errno)))
                return 0
            }
        } else {
            guard sink.memory.count + count <= 1 << 20 else {
                sink.failure = .transfer(url: sink.url, reason: "the checksum list is larger than 1 MB")
                return 0
            }
            data.withMemoryRebound(to: UInt8.self, capacity: count) { sink.memory.append(contentsOf: UnsafeBufferPointer(start: $0, count: count)) }
        }
        sink.received += count
        return count
    }

    /// A bar in MB for file downloads, once the size is known.
    static func showProgress(_ sink: Sink, total: Int, now: Int) {
        guard sink.file != nil, total > 0 else { return }
        let whole = sink.resumeOffset + total, done = sink.resumeOffset + now
        if sink.progress == nil {
            sink.progressTotal = max(1, (whole + 999_999) / 1_000_000)
            sink.progress = Progress.begin(sink.label, total: sink.progressTotal, unit: "MB")
            sink.progressDone = sink.resumeOffset / 1_000_000
            sink.progress?.advance(by: sink.progressDone)
        }
        let mb = done / 1_000_000
        if mb > sink.progressDone { sink.progress?.advance(by: mb - sink.progressDone); sink.progressDone = mb }
    }
}

/// Unpacks tar.gz and zip archives through libarchive, refusing entries that would land
/// outside the destination (absolute paths, `..`) and anything but files and folders.
enum ArchiveExtraction {
    /// - Complexity: O(archive size).
    static func extract(_ archivePath: String, into destination: String, label: String) throws {
        guard let reader = archive_read_new() else { throw DownloadError.unpack(file: label, reason: "libarchive could not start") }
        defer { archive_read_free(reader) }
        archive_read_support_filter_all(reader)
        archive_read_support_format_tar(reader)
        archive_read_support_format_zip(reader)
        func failure(_ what: String) -> DownloadError {
            let message = archive_error_string(reader).map { String(cString: $0) } ?? "unknown error"
            return .unpack(file: label, reason: "\(what): \(message)")
        }
        guard archive_read_open_filename(reader, archivePath, 1 << 16) == ARCHIVE_OK else { throw failure("not a readable archive") }
        var entry: OpaquePointer?
        var buffer = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            try Cancellation.check()
            let status = archive_read_next_header(reader, &entry)
            if status == ARCHIVE_EOF { break }
            guard status == ARCHIVE_OK || status == ARCHIVE_WARN, let entry else { throw failure("damaged archive") }
            guard let rawName = archive_entry_pathname(entry) else { throw failure("an entry without a name") }
            let name = String(cString: rawName)
            let parts = name.split(separator: "/")
            guard !name.hasPrefix("/"), !parts.contains(".."), !parts.isEmpty else {
                throw DownloadError.unpack(file: label, reason: "entry '\(name)' would land outside the destination")
            }
            let target = destination + "/" + parts.joined(separator: "/")
            let type = archive_entry_filetype(entry)
            if type == UInt32(Glibc.S_IFDIR) {
                do { try FileManager.default.createDirectory(atPath: target, withIntermediateDirectories: true) } catch {
                    throw DownloadError.cannotWrite(path: target, reason: "\(error.localizedDescription)")
                }
                continue
            }
            guard type == UInt32(Glibc.S_IFREG) else { continue }   // links, devices: not part of a dataset
            let folder = (target as NSString).deletingLastPathComponent
            do { try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true) } catch {
                throw DownloadError.cannotWrite(path: folder, reason: "\(error.localizedDescription)")
            }
            guard let out = fopen(target, "wb") else { throw DownloadError.cannotWrite(path: target, reason: String(cString: strerror(errno))) }
            var writeError: String?
            while true {
                let got = buffer.withUnsafeMutableBytes { archive_read_data(reader, $0.baseAddress, $0.count) }
                if got == 0 { break }
                if got < 0 { fclose(out); throw failure("damaged data in '\(name)'") }
                if buffer.withUnsafeBytes({ fwrite($0.baseAddress, 1, got, out) }) != got {
                    writeError = String(cString: strerror(errno)); break
                }
            }
            if fclose(out) != 0, writeError == nil { writeError = String(cString: strerror(errno)) }
            if let writeError { throw DownloadError.cannotWrite(path: target, reason: writeError) }
        }
    }
}
