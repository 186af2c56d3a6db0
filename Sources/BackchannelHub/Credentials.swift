import Crypto
import Foundation

/// Bearer-token generation, hashing and constant-time comparison.
public enum Credentials {
    /// A new random token: `bct_` and 32 random bytes in base64url (256 bits).
    public static func makeToken() -> String {
        var rng = SystemRandomNumberGenerator()
        let bytes = (0..<32).map { _ in UInt8.random(in: 0...255, using: &rng) }
        let base64 = Data(bytes).base64EncodedString()
            .replacingOccurrences(of: "+", with: "-")
            .replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
        return "bct_" + base64
    }

    /// Hex SHA-256 of a token. Tokens carry 256 bits of entropy, so a plain hash is not
    /// open to dictionary attack.
    public static func hash(_ token: String) -> String {
        hex(SHA256.hash(data: Data(token.utf8)))
    }

    /// Hex SHA-256 of bytes.
    static func hex(_ digest: SHA256.Digest) -> String {
        digest.map { byte in
            let s = String(byte, radix: 16)
            return s.count == 1 ? "0" + s : s
        }.joined()
    }

    /// Hex SHA-256 of a body, used to recognise a retried request.
    static func hash(bytes: some Sequence<UInt8>) -> String {
        var hasher = SHA256()
        hasher.update(data: Array(bytes))
        return hex(hasher.finalize())
    }

    /// Compares a presented token with a stored hash in time independent of where they differ.
    public static func matches(_ token: String, hash expected: String) -> Bool {
        let actual = Array(hash(token).utf8)
        let wanted = Array(expected.utf8)
        guard actual.count == wanted.count else { return false }
        var difference: UInt8 = 0
        for i in 0..<actual.count { difference |= actual[i] ^ wanted[i] }
        return difference == 0
    }

    /// The token from an `Authorization: Bearer <token>` header value.
    static func bearer(_ header: String?) -> String? {
        guard let header, header.count > 7, header.prefix(7).lowercased() == "bearer " else { return nil }
        let token = header.dropFirst(7).trimmingCharacters(in: .whitespaces)
        return token.isEmpty ? nil : token
    }
}
