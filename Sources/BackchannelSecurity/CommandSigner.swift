public import BackchannelProtocol
import Foundation

/// Signs commands with an issuer's Ed25519 key.
///
/// The signature covers ``SignedCommandFields/canonicalBytes``: its kind, the command's id, the target
/// device, name, args, notBefore, expiresAt, and the signature's own issuedAt and nonce. Each
/// signature gets a fresh random nonce, so the same command signed twice is two commands to a
/// device, and one signed command delivered twice is a replay.
public struct CommandSigner: Sendable {
    /// The issuer's key.
    public let key: SigningKey

    /// Creates a signer.
    public init(key: SigningKey) {
        self.key = key
    }

    /// Signs a set of fields exactly as given (their `issuedAt` and `nonce` included).
    public func sign(_ fields: SignedCommandFields) -> CommandSignature {
        CommandSignature(
            keyId: key.keyId, issuedAt: fields.issuedAt, nonce: fields.nonce,
            signature: key.signature(for: fields.canonicalBytes).base64EncodedString()
        )
    }

    /// Signs a command with a fresh nonce, issued `issuedAt` (default now).
    ///
    /// - Parameters:
    ///   - id: the command id (operator commands) or the sender's `ref` (rendezvous requests).
    ///   - target: the device that runs it, without `device:`.
    ///   - kind: `.peer` for a rendezvous request (then `id` is its `ref`).
    public func sign(
        kind: SignedCommandFields.Kind = .operator, id: String, target: String, name: String, args: JSONValue,
        notBefore: Timestamp? = nil, expiresAt: Timestamp, issuedAt: Timestamp = .now()
    ) -> CommandSignature {
        sign(
            SignedCommandFields(
                kind: kind, id: id, target: target, name: name, args: args, notBefore: notBefore, expiresAt: expiresAt,
                issuedAt: issuedAt, nonce: Self.makeNonce()
            )
        )
    }

    /// Signs an operator submission for `device`, filling in what a signed command must give.
    ///
    /// A missing `id` becomes a new ``MessageID``, missing `args` become `{}`, and a `ttl` (or
    /// the default of `defaultTTL` seconds) becomes an absolute `expiresAt`, since the hub must
    /// deliver exactly the signed values.
    public func sign(
        _ request: inout SubmitCommandRequest, for device: String, now: Timestamp = .now(),
        defaultTTL: Double = 24 * 3600
    ) {
        if request.id == nil { request.id = MessageID.make(at: now) }
        if request.args == nil { request.args = .object([:]) }
        if request.expiresAt == nil {
            request.expiresAt = now.adding(seconds: request.ttl ?? defaultTTL)
            request.ttl = nil
        }
        request.signature = sign(
            id: request.id!, target: device, name: request.name, args: request.args!, notBefore: request.notBefore,
            expiresAt: request.expiresAt!, issuedAt: now
        )
    }

    /// 16 random bytes in base64url without padding (22 characters).
    public static func makeNonce() -> String {
        var rng = SystemRandomNumberGenerator()
        let bytes = (0..<16).map { _ in UInt8.random(in: 0...255, using: &rng) }
        return Base64URL.encode(bytes)
    }
}

/// Base64url without padding (RFC 4648 §5).
enum Base64URL {
    static func encode(_ bytes: some Sequence<UInt8>) -> String {
        Data(bytes).base64EncodedString()
            .replacingOccurrences(of: "+", with: "-")
            .replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }
}
