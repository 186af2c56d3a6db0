public import Foundation

/// An end-to-end signature over a command, made by whoever issued it (an operator, or a device
/// that originates a rendezvous request) and checked by the device that runs it.
///
/// The hub stores and forwards the signature unchanged; it cannot make one. The signature is
/// Ed25519 over ``SignedCommandFields/canonicalBytes``.
public struct CommandSignature: Sendable, Hashable, Codable {
    /// The issuer's key id: `ed25519:` and the first 16 bytes of SHA-256 of the raw 32-byte
    /// public key, in lowercase hex.
    public var keyId: String
    /// When the issuer signed (issuer's clock).
    public var issuedAt: Timestamp
    /// A random single-use value (at least 16 bytes, base64url), remembered by the device so a
    /// replayed command is refused.
    public var nonce: String
    /// The 64-byte Ed25519 signature, base64 (standard alphabet, padded).
    public var signature: String

    /// Creates a signature value.
    public init(keyId: String, issuedAt: Timestamp, nonce: String, signature: String) {
        self.keyId = keyId
        self.issuedAt = issuedAt
        self.nonce = nonce
        self.signature = signature
    }

    /// Checks lengths and alphabets; the cryptography is checked by the device.
    public func validate(field: String = "signature") throws(ValidationFailure) {
        guard keyId.utf8.count <= 128, keyId.hasPrefix("ed25519:") else {
            throw ValidationFailure(field: "\(field).keyId", reason: "must be 'ed25519:' and a hex key hash")
        }
        guard (16...128).contains(nonce.utf8.count),
            nonce.utf8.allSatisfy({ Self.base64URL.contains($0) })
        else {
            throw ValidationFailure(field: "\(field).nonce", reason: "must be 16-128 base64url characters")
        }
        guard signature.utf8.count <= 128, Data(base64Encoded: signature)?.count == 64 else {
            throw ValidationFailure(field: "\(field).signature", reason: "must be a base64 64-byte Ed25519 signature")
        }
    }

    private static let base64URL = Set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_".utf8)
}

/// The fields a command signature covers, and their canonical byte form.
///
/// The canonical form is a JSON object with exactly these members, keys sorted by their bytes,
/// no whitespace, timestamps in the wire form (`2026-11-27T14:35:00.123Z`), an absent
/// `notBefore` written as `null`, and `args` written the same way (keys sorted, no whitespace,
/// numbers as integers when integral, strings escaping only `"`, `\` and control characters).
/// `v` is the format version, `2`; `kind` says whether `id` is an operator command's id or a
/// rendezvous request's `ref`, so a hub cannot deliver one as the other.
public struct SignedCommandFields: Sendable, Hashable {
    /// What was signed: an operator's command or a device's rendezvous request.
    public enum Kind: String, Sendable, Hashable {
        /// A command submitted through the operator API (`id` is the command id).
        case `operator`
        /// A rendezvous request from another device (`id` is the sender's `ref`).
        case peer
    }

    /// Operator command or rendezvous request.
    public var kind: Kind
    /// The command's id (operator commands) or the sender's `ref` (rendezvous requests).
    public var id: String
    /// The device that runs it (`<id>`, without `device:`).
    public var target: String
    /// The command name.
    public var name: String
    /// The arguments, a JSON object.
    public var args: JSONValue
    /// Not to start before.
    public var notBefore: Timestamp?
    /// Not to start after.
    public var expiresAt: Timestamp
    /// When it was signed.
    public var issuedAt: Timestamp
    /// The signature's nonce.
    public var nonce: String

    /// Creates the field set.
    public init(
        kind: Kind = .operator, id: String, target: String, name: String, args: JSONValue, notBefore: Timestamp?,
        expiresAt: Timestamp, issuedAt: Timestamp, nonce: String
    ) {
        self.kind = kind
        self.id = id
        self.target = target
        self.name = name
        self.args = args
        self.notBefore = notBefore
        self.expiresAt = expiresAt
        self.issuedAt = issuedAt
        self.nonce = nonce
    }

    /// The bytes that are signed.
    public var canonicalBytes: [UInt8] {
        let members: [String: JSONValue] = [
            "v": .number(2),
            "kind": .string(kind.rawValue),
            "id": .string(id),
            "target": .string(target),
            "name": .string(name),
            "args": args,
            "notBefore": notBefore.map { .string($0.description) } ?? .null,
            "expiresAt": .string(expiresAt.description),
            "issuedAt": .string(issuedAt.description),
            "nonce": .string(nonce),
        ]
        var out: [UInt8] = []
        CanonicalJSON.write(.object(members), into: &out)
        return out
    }
}

/// Deterministic JSON for signing: sorted keys, no whitespace, minimal string escapes.
public enum CanonicalJSON {
    /// The canonical bytes of a value.
    public static func bytes(_ value: JSONValue) -> [UInt8] {
        var out: [UInt8] = []
        write(value, into: &out)
        return out
    }

    static func write(_ value: JSONValue, into out: inout [UInt8]) {
        switch value {
        case .null: out.append(contentsOf: "null".utf8)
        case .bool(let flag): out.append(contentsOf: (flag ? "true" : "false").utf8)
        case .number(let number): out.append(contentsOf: format(number).utf8)
        case .string(let text): writeString(text, into: &out)
        case .array(let items):
            out.append(UInt8(ascii: "["))
            for (index, item) in items.enumerated() {
                if index > 0 { out.append(UInt8(ascii: ",")) }
                write(item, into: &out)
            }
            out.append(UInt8(ascii: "]"))
        case .object(let members):
            out.append(UInt8(ascii: "{"))
            let keys = members.keys.sorted { Array($0.utf8).lexicographicallyPrecedes(Array($1.utf8)) }
            for (index, key) in keys.enumerated() {
                if index > 0 { out.append(UInt8(ascii: ",")) }
                writeString(key, into: &out)
                out.append(UInt8(ascii: ":"))
                write(members[key] ?? .null, into: &out)
            }
            out.append(UInt8(ascii: "}"))
        }
    }

    /// Integral values within ±2^53 as plain integers; others in Swift's shortest round-trip form.
    static func format(_ number: Double) -> String {
        if number.isFinite, number == number.rounded(), abs(number) <= 9_007_199_254_740_992 {
            return String(Int64(number))
        }
        return number.isFinite ? "\(number)" : "null"
    }

    static func writeString(_ text: String, into out: inout [UInt8]) {
        out.append(UInt8(ascii: "\""))
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "\""): out.append(contentsOf: #"\""#.utf8)
            case UInt8(ascii: "\\"): out.append(contentsOf: #"\\"#.utf8)
            case 0x0A: out.append(contentsOf: #"\n"#.utf8)
            case 0x0D: out.append(contentsOf: #"\r"#.utf8)
            case 0x09: out.append(contentsOf: #"\t"#.utf8)
            case 0..<0x20:
                let hex = Array("0123456789abcdef".utf8)
                out.append(contentsOf: #"\u00"#.utf8)
                out.append(hex[Int(byte >> 4)])
                out.append(hex[Int(byte & 0x0F)])
            default: out.append(byte)
            }
        }
        out.append(UInt8(ascii: "\""))
    }
}
