import Foundation

/// A small HTTP/1.1 server on 127.0.0.1 (an ephemeral port) for the download tests: serves
/// files from memory, honours `Range: bytes=N-`, and can cut a response short or answer with an
/// error status. One connection at a time, each closed after its response.
final class LocalHTTPServer: @unchecked Sendable {
    struct Request: Equatable { let path: String; let rangeStart: Int? }

    private let lock = NSLock()
    private var files: [String: [UInt8]] = [:]
    private var cuts: [String: Int] = [:]
    private var failures: [String: Int] = [:]
    private var log: [Request] = []
    private let listener: Int32
    let port: UInt16
    var base: String { "http://127.0.0.1:\(port)" }

    init() throws {
        let listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard listener >= 0 else { throw ServerError("socket: \(String(cString: strerror(errno)))") }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = 0
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(listener, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0, listen(listener, 8) == 0 else { close(listener); throw ServerError("bind/listen: \(String(cString: strerror(errno)))") }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(listener, $0, &length) }
        }
        self.listener = listener
        port = UInt16(bigEndian: address.sin_port)
        let thread = Thread { [self] in acceptLoop() }
        thread.start()
    }

    struct ServerError: Error, CustomStringConvertible { let description: String; init(_ d: String) { description = d } }

    func serve(_ path: String, _ bytes: [UInt8]) { lock.lock(); files[path] = bytes; lock.unlock() }
    /// The next response for `path` sends only its first `bytes` bytes of body, then closes.
    func cutNext(_ path: String, after bytes: Int) { lock.lock(); cuts[path] = bytes; lock.unlock() }
    func fail(_ path: String, status: Int) { lock.lock(); failures[path] = status; lock.unlock() }
    var requests: [Request] { lock.lock(); defer { lock.unlock() }; return log }

    /// Wakes the accept loop, which then closes the listener itself: closing it here could hand
    /// its descriptor number to the next test's server while this loop still accepts on it.
    func stop() { shutdown(listener, Int32(SHUT_RDWR)) }

    private func acceptLoop() {
        while true {
            let connection = accept(listener, nil, nil)
            if connection < 0 { if errno == EINTR { continue }; close(listener); return }
            handle(connection)
            close(connection)
        }
    }

    private func handle(_ connection: Int32) {
        var received: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while !received.containsHeaderEnd {
            let got = chunk.withUnsafeMutableBytes { recv(connection, $0.baseAddress, $0.count, 0) }
            if got <= 0 { return }
            received += chunk[0 ..< got]
        }
        let lines = String(decoding: received, as: UTF8.self).components(separatedBy: "\r\n")
        let requestLine = lines.first?.split(separator: " ") ?? []
        guard requestLine.count >= 2 else { return }
        let path = String(requestLine[1])
        var rangeStart: Int?
        for line in lines where line.lowercased().hasPrefix("range: bytes=") {
            rangeStart = Int(line.dropFirst("range: bytes=".count).prefix { $0.isNumber })
        }
        lock.lock()
        log.append(Request(path: path, rangeStart: rangeStart))
        let file = files[path], failure = failures[path], cut = cuts.removeValue(forKey: path)
        lock.unlock()

        if let failure { return respond(connection, status: failure, headers: [:], body: Array("server error\n".utf8)) }
        guard let file else { return respond(connection, status: 404, headers: [:], body: Array("not found\n".utf8)) }
        var status = 200, body = file[...]
        var headers: [String: String] = [:]
        if let start = rangeStart {
            guard start < file.count else {
                return respond(connection, status: 416, headers: ["Content-Range": "bytes */\(file.count)"], body: [])
            }
            status = 206
            body = file[start...]
            headers["Content-Range"] = "bytes \(start)-\(file.count - 1)/\(file.count)"
        }
        respond(connection, status: status, headers: headers, body: Array(body), cutAfter: cut)
    }

    private func respond(_ connection: Int32, status: Int, headers: [String: String], body: [UInt8], cutAfter: Int? = nil) {
        let reasons = [200: "OK", 206: "Partial Content", 404: "Not Found", 416: "Range Not Satisfiable", 500: "Internal Server Error", 503: "Service Unavailable"]
        var head = "HTTP/1.1 \(status) \(reasons[status] ?? "Status")\r\nContent-Length: \(body.count)\r\nConnection: close\r\n"
        for (k, v) in headers { head += "\(k): \(v)\r\n" }
        head += "\r\n"
        let payload = Array(head.utf8) + body[0 ..< min(body.count, cutAfter ?? body.count)]
        var sent = 0
        while sent < payload.count {
            let n = payload.withUnsafeBytes { Glibc.send(connection, $0.baseAddress! + sent, payload.count - sent, Int32(MSG_NOSIGNAL)) }
            if n <= 0 { return }
            sent += n
        }
    }
}

private extension Array where Element == UInt8 {
    var containsHeaderEnd: Bool {
        guard count >= 4 else { return false }
        for i in 0 ... count - 4 where self[i] == 13 && self[i + 1] == 10 && self[i + 2] == 13 && self[i + 3] == 10 { return true }
        return false
    }
}
