import Crypto
public import Foundation

/// The algorithm of a key: Ed25519 signs commands, X25519 receives sealed payload parts.
public enum KeyAlgorithm: String, Sendable, Hashable, Codable, CaseIterable {
    /// Ed25519 (RFC 8032): operators and devices sign commands with it.
    case ed25519
    /// X25519 (RFC 7748): an audience of sealed payloads (HPKE recipient).
    case x25519
}

/// Key identifiers: the algorithm, a colon, and the first 16 bytes of SHA-256 of the raw
/// 32-byte public key in lowercase hex, such as `ed25519:9f86d081884c7d659a2feaa0c55ad015`.
public enum KeyID {
    /// The key id of a raw public key.
    public static func make(_ algorithm: KeyAlgorithm, publicKey: some DataProtocol) -> String {
        let digest = SHA256.hash(data: publicKey)
        return algorithm.rawValue + ":" + Hex.encode(Array(digest.prefix(16)))
    }
}

/// Lowercase hex.
enum Hex {
    static func encode(_ bytes: some Sequence<UInt8>) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var out: [UInt8] = []
        for byte in bytes {
            out.append(digits[Int(byte >> 4)])
            out.append(digits[Int(byte & 0x0F)])
        }
        return String(decoding: out, as: UTF8.self)
    }
}

/// An Ed25519 public key that verifies command signatures.
public struct VerifyingKey: Sendable, Hashable {
    /// The raw 32-byte public key.
    public let rawRepresentation: Data
    /// The key id, `ed25519:…`.
    public let keyId: String

    /// Creates a key from its raw 32 bytes.
    public init(rawRepresentation: some DataProtocol) throws(SecurityError) {
        let raw = Data(rawRepresentation)
        guard (try? Curve25519.Signing.PublicKey(rawRepresentation: raw)) != nil else {
            throw .invalidKey("an Ed25519 public key is 32 bytes")
        }
        self.rawRepresentation = raw
        self.keyId = KeyID.make(.ed25519, publicKey: raw)
    }

    /// Creates a key from its raw 32 bytes in base64.
    public init(base64: String) throws(SecurityError) {
        guard let raw = Data(base64Encoded: base64) else { throw .invalidKey("the public key is not base64") }
        try self.init(rawRepresentation: raw)
    }

    /// The raw key in base64 (standard alphabet, padded).
    public var base64: String { rawRepresentation.base64EncodedString() }

    /// Whether `signature` is a valid Ed25519 signature of `bytes` by this key.
    public func isValidSignature(_ signature: some DataProtocol, for bytes: some DataProtocol) -> Bool {
        guard let key = try? Curve25519.Signing.PublicKey(rawRepresentation: rawRepresentation) else { return false }
        return key.isValidSignature(Data(signature), for: Data(bytes))
    }
}

/// An Ed25519 private key that signs commands: an operator's, or a device's for the rendezvous
/// requests it sends.
public struct SigningKey: Sendable {
    /// A name for people, such as `utility`.
    public let name: String
    let key: Curve25519.Signing.PrivateKey

    /// Creates a key from its raw 32-byte private key (the RFC 8032 seed).
    public init(name: String, rawRepresentation: some DataProtocol) throws(SecurityError) {
        guard let key = try? Curve25519.Signing.PrivateKey(rawRepresentation: Data(rawRepresentation)) else {
            throw .invalidKey("an Ed25519 private key is 32 bytes")
        }
        self.name = name
        self.key = key
    }

    /// A new random key.
    public static func generate(name: String) -> SigningKey {
        let key = Curve25519.Signing.PrivateKey()
        // The raw form of a generated key is always valid.
        return try! SigningKey(name: name, rawRepresentation: key.rawRepresentation)
    }

    /// The public half.
    public var publicKey: VerifyingKey {
        // A private key's public half is always a valid public key.
        try! VerifyingKey(rawRepresentation: key.publicKey.rawRepresentation)
    }

    /// The key id, `ed25519:…`.
    public var keyId: String { publicKey.keyId }

    /// The raw 32-byte private key.
    public var rawRepresentation: Data { key.rawRepresentation }

    /// The 64-byte Ed25519 signature of `bytes`.
    public func signature(for bytes: some DataProtocol) -> Data {
        // Signing fails only when the platform's random source does; that cannot be recovered from.
        try! key.signature(for: Data(bytes))
    }
}

/// An X25519 public key: an audience that sealed payload parts are encrypted to.
public struct AudiencePublicKey: Sendable, Hashable {
    /// The raw 32-byte public key.
    public let rawRepresentation: Data
    /// The key id, `x25519:…`.
    public let keyId: String

    /// Creates a key from its raw 32 bytes.
    public init(rawRepresentation: some DataProtocol) throws(SecurityError) {
        let raw = Data(rawRepresentation)
        guard (try? Curve25519.KeyAgreement.PublicKey(rawRepresentation: raw)) != nil else {
            throw .invalidKey("an X25519 public key is 32 bytes")
        }
        self.rawRepresentation = raw
        self.keyId = KeyID.make(.x25519, publicKey: raw)
    }

    /// Creates a key from its raw 32 bytes in base64.
    public init(base64: String) throws(SecurityError) {
        guard let raw = Data(base64Encoded: base64) else { throw .invalidKey("the public key is not base64") }
        try self.init(rawRepresentation: raw)
    }

    /// The raw key in base64 (standard alphabet, padded).
    public var base64: String { rawRepresentation.base64EncodedString() }

    var cryptoKey: Curve25519.KeyAgreement.PublicKey {
        // Checked in init.
        try! Curve25519.KeyAgreement.PublicKey(rawRepresentation: rawRepresentation)
    }
}

/// An X25519 private key: an audience (accounting, the company) that opens the sealed payload
/// parts addressed to it.
public struct AudienceKey: Sendable {
    /// A name for people, such as `accounting`.
    public let name: String
    let key: Curve25519.KeyAgreement.PrivateKey

    /// Creates a key from its raw 32-byte private key.
    public init(name: String, rawRepresentation: some DataProtocol) throws(SecurityError) {
        guard let key = try? Curve25519.KeyAgreement.PrivateKey(rawRepresentation: Data(rawRepresentation)) else {
            throw .invalidKey("an X25519 private key is 32 bytes")
        }
        self.name = name
        self.key = key
    }

    /// A new random key.
    public static func generate(name: String) -> AudienceKey {
        let key = Curve25519.KeyAgreement.PrivateKey()
        return try! AudienceKey(name: name, rawRepresentation: key.rawRepresentation)
    }

    /// The public half, which devices seal to.
    public var publicKey: AudiencePublicKey {
        try! AudiencePublicKey(rawRepresentation: key.publicKey.rawRepresentation)
    }

    /// The key id, `x25519:…`.
    public var keyId: String { publicKey.keyId }

    /// The raw 32-byte private key.
    public var rawRepresentation: Data { key.rawRepresentation }
}
