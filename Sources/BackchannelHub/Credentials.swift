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

    /// The salted hash of a token as stored: `s256$<salt>$<digest>`, where the salt is 16
    /// random bytes and the digest SHA-256 of salt and token, both in lowercase hex. Tokens carry
    /// 256 bits of entropy, so one round of a salted hash is not open to a dictionary attack;
    /// the salt makes equal tokens hash differently and precomputed tables useless.
    public static func hash(_ token: String) -> String {
        var rng = SystemRandomNumberGenerator()
        let salt = (0..<16).map { _ in UInt8.random(in: 0...255, using: &rng) }
        return "s256$" + hex(bytes: salt) + "$" + hex(salted(token, salt))
    }

    private static func salted(_ token: String, _ salt: [UInt8]) -> SHA256.Digest {
        var hasher = SHA256()
        hasher.update(data: salt)
        hasher.update(data: Data(token.utf8))
        return hasher.finalize()
    }

    static func hex(bytes: [UInt8]) -> String {
        bytes.map { byte in
            let s = String(byte, radix: 16)
            return s.count == 1 ? "0" + s : s
        }.joined()
    }

    private static func unhex(_ text: Substring) -> [UInt8]? {
        guard text.utf8.count % 2 == 0 else { return nil }
        var out: [UInt8] = []
        var index = text.startIndex
        while index < text.endIndex {
            let next = text.index(index, offsetBy: 2)
            guard let byte = UInt8(text[index..<next], radix: 16) else { return nil }
            out.append(byte)
            index = next
        }
        return out
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
    /// Accepts the salted form and, for records written before it, a bare hex SHA-256.
    public static func matches(_ token: String, hash expected: String) -> Bool {
        let computed: String
        let parts = expected.split(separator: "$", omittingEmptySubsequences: false)
        if parts.count == 3, parts[0] == "s256", let salt = unhex(parts[1]) {
            computed = hex(salted(token, salt))
        } else if parts.count == 1 {
            computed = hex(SHA256.hash(data: Data(token.utf8)))
        } else {
            return false
        }
        let actual = Array(computed.utf8)
        let wanted = Array((parts.count == 3 ? parts[2] : parts[0]).utf8)
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
