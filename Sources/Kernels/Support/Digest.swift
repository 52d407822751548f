import CCrypto

/// MD5 and SHA-256, streamed, for checking downloaded archives against their published
/// checksums: OpenSSL's libcrypto through its EVP digest interface.
public final class Digest {
    public enum Algorithm: String, Sendable {
        case md5 = "MD5", sha256 = "SHA-256"
    }

    /// libcrypto refused the algorithm or the context (e.g. MD5 under a FIPS-only configuration).
    public struct Failure: Error, CustomStringConvertible {
        public let description: String
    }

    private let context: OpaquePointer
    private var finished = false
    private var updateFailed = false

    public init(_ algorithm: Algorithm) throws {
        guard let context = EVP_MD_CTX_new() else { throw Failure(description: "libcrypto could not allocate a digest context") }
        self.context = context
        let md = algorithm == .md5 ? EVP_md5() : EVP_sha256()
        guard EVP_DigestInit_ex(context, md, nil) == 1 else {
            throw Failure(description: "libcrypto refused \(algorithm.rawValue): " + Digest.lastError())
        }
    }

    deinit { EVP_MD_CTX_free(context) }

    /// Feeds `bytes`.
    /// - Complexity: O(bytes).
    public func update(_ bytes: UnsafeRawBufferPointer) {
        if bytes.count > 0, EVP_DigestUpdate(context, bytes.baseAddress, bytes.count) != 1 { updateFailed = true }
    }

    public func update(_ bytes: [UInt8]) { bytes.withUnsafeBytes { update($0) } }

    /// The digest as lowercase hex; the digest is finished (further updates are not counted).
    public func hexDigest() throws -> String {
        guard !finished else { throw Failure(description: "the digest was already finished") }
        guard !updateFailed else { throw Failure(description: "libcrypto could not take the data: " + Digest.lastError()) }
        finished = true
        var out = [UInt8](repeating: 0, count: Int(EVP_MAX_MD_SIZE))
        var length: UInt32 = 0
        guard EVP_DigestFinal_ex(context, &out, &length) == 1 else {
            throw Failure(description: "libcrypto could not finish the digest: " + Digest.lastError())
        }
        let hex = Array("0123456789abcdef".utf8)
        return String(decoding: out[0 ..< Int(length)].flatMap { [hex[Int($0 >> 4)], hex[Int($0 & 15)]] }, as: UTF8.self)
    }

    /// The digest of `bytes`, as lowercase hex.
    public static func hex(_ algorithm: Algorithm, _ bytes: [UInt8]) throws -> String {
        let digest = try Digest(algorithm)
        digest.update(bytes)
        return try digest.hexDigest()
    }

    private static func lastError() -> String {
        let code = ERR_get_error()
        guard code != 0 else { return "no reason given" }
        var text = [CChar](repeating: 0, count: 256)
        ERR_error_string_n(code, &text, text.count)
        return String(cString: text)
    }
}
