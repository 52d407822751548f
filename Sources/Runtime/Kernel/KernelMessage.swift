import CCrypto
import Foundation

/// A Jupyter connection file (written by the client that starts the kernel): where to bind the
/// five channels and the key that signs every message.
struct ConnectionInfo {
    var transport: String
    var ip: String
    var shellPort: Int, controlPort: Int, stdinPort: Int, iopubPort: Int, heartbeatPort: Int
    var key: [UInt8]
    var signatureScheme: String

    static func read(_ path: String) throws -> ConnectionInfo {
        guard let data = FileManager.default.contents(atPath: path) else { throw KernelError("cannot read the connection file \(path)") }
        guard let json = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else {
            throw KernelError("\(path) is not a JSON connection file")
        }
        func port(_ name: String) throws -> Int {
            guard let p = json[name] as? Int, p > 0, p < 65536 else { throw KernelError("\(path): \(name) missing or not a port number") }
            return p
        }
        let scheme = json["signature_scheme"] as? String ?? "hmac-sha256"
        guard scheme == "hmac-sha256" else { throw KernelError("\(path): signature_scheme \(scheme) is not supported (hmac-sha256 is)") }
        return ConnectionInfo(transport: json["transport"] as? String ?? "tcp", ip: json["ip"] as? String ?? "127.0.0.1",
                              shellPort: try port("shell_port"), controlPort: try port("control_port"), stdinPort: try port("stdin_port"),
                              iopubPort: try port("iopub_port"), heartbeatPort: try port("hb_port"),
                              key: Array((json["key"] as? String ?? "").utf8), signatureScheme: scheme)
    }

    func endpoint(_ port: Int) -> String {
        transport == "ipc" ? "ipc://\(ip)-\(port)" : "\(transport)://\(ip):\(port)"
    }
}

struct KernelError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// One protocol message: the four JSON parts, and the routing identities it came with.
struct KernelMessage {
    var identities: [[UInt8]]
    var header: [String: Any]
    var parentHeader: [String: Any]
    var metadata: [String: Any]
    var content: [String: Any]

    var type: String { header["msg_type"] as? String ?? "" }

    static let delimiter = Array("<IDS|MSG>".utf8)
    static let protocolVersion = "5.3"

    /// A new message answering (or caused by) `parent`, from this kernel's `session`.
    init(type: String, content: [String: Any], parent: KernelMessage?, session: String, identities: [[UInt8]] = []) {
        self.identities = identities
        header = ["msg_id": UUID().uuidString.lowercased(), "session": session, "username": "mge",
                  "date": KernelMessage.timestamp(), "msg_type": type, "version": KernelMessage.protocolVersion]
        parentHeader = parent?.header ?? [:]
        metadata = [:]
        self.content = content
    }

    private init(identities: [[UInt8]], header: [String: Any], parentHeader: [String: Any], metadata: [String: Any], content: [String: Any]) {
        self.identities = identities; self.header = header; self.parentHeader = parentHeader; self.metadata = metadata; self.content = content
    }

    nonisolated(unsafe) private static let dateFormatter: ISO8601DateFormatter = {
        let f = ISO8601DateFormatter()
        f.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return f
    }()
    private static let dateLock = NSLock()

    static func timestamp() -> String { dateLock.withLock { dateFormatter.string(from: Date()) } }

    /// The wire form: identities, `<IDS|MSG>`, the HMAC-SHA256 of the four JSON parts, the parts.
    func frames(signedWith key: [UInt8]) -> [[UInt8]] {
        let parts = [header, parentHeader, metadata, content].map(KernelMessage.json)
        return identities + [KernelMessage.delimiter, Array(KernelMessage.signature(parts, key: key).utf8)] + parts
    }

    /// Parses a received multipart message and checks its signature; nil (the message is dropped)
    /// when it is malformed or its signature does not match.
    static func parse(_ frames: [[UInt8]], key: [UInt8]) -> KernelMessage? {
        guard let d = frames.firstIndex(of: delimiter), frames.count >= d + 6 else { return nil }
        let parts = Array(frames[(d + 2)...(d + 5)])
        let expected = signature(parts, key: key)
        guard constantTimeEqual(Array(expected.utf8), frames[d + 1]) else { return nil }
        func object(_ bytes: [UInt8]) -> [String: Any]? {
            (try? JSONSerialization.jsonObject(with: Data(bytes))) as? [String: Any]
        }
        guard let header = object(parts[0]), let parent = object(parts[1]), let metadata = object(parts[2]), let content = object(parts[3]) else { return nil }
        return KernelMessage(identities: Array(frames[..<d]), header: header, parentHeader: parent, metadata: metadata, content: content)
    }

    static func json(_ object: [String: Any]) -> [UInt8] {
        Array((try? JSONSerialization.data(withJSONObject: object, options: [.withoutEscapingSlashes])) ?? Data("{}".utf8))
    }

    /// Lower-case hex HMAC-SHA256 of the parts; "" when the key is empty (signing is off).
    static func signature(_ parts: [[UInt8]], key: [UInt8]) -> String {
        guard !key.isEmpty else { return "" }
        // The one-shot HMAC() (the streaming HMAC_CTX calls are deprecated in OpenSSL 3); joining
        // the parts costs little next to sending them, even with a figure inside.
        let data = parts.flatMap { $0 }
        var digest = [UInt8](repeating: 0, count: 32)
        var length: UInt32 = 0
        guard HMAC(EVP_sha256(), key, Int32(key.count), data, data.count, &digest, &length) != nil else { return "" }
        return digest.prefix(Int(length)).map { String(format: "%02x", $0) }.joined()
    }

    /// Compares without an early exit, so the time taken does not reveal how much matched.
    static func constantTimeEqual(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        guard a.count == b.count else { return false }
        var difference: UInt8 = 0
        for i in a.indices { difference |= a[i] ^ b[i] }
        return difference == 0
    }
}
