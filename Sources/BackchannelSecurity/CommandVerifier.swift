public import BackchannelProtocol
public import Foundation

/// Why a device refused a command: an ``OutcomeCode`` and a sentence.
public struct CommandRejection: Sendable, Hashable, Error, CustomStringConvertible {
    /// `unsigned`, `unknown_issuer`, `bad_signature`, `issuer_not_allowed`, `outside_window` or `replay`.
    public var code: String
    /// What was wrong, for people.
    public var detail: String

    /// Creates a rejection.
    public init(code: String, detail: String) {
        self.code = code
        self.detail = detail
    }

    public var description: String { "\(code): \(detail)" }
}

/// A command the verifier let through.
public struct CommandAcceptance: Sendable, Hashable {
    /// The trusted key's name, or nil for an unsigned command the policy lets run.
    public var issuer: String?
    /// What the nonce ledger must remember once the command is taken; nil for unsigned ones.
    public var nonce: NonceLedger.Entry?

    /// Creates an acceptance.
    public init(issuer: String?, nonce: NonceLedger.Entry?) {
        self.issuer = issuer
        self.nonce = nonce
    }

    /// An unsigned command let through (or no policy at all): nothing to remember.
    public static let unsigned = CommandAcceptance(issuer: nil, nonce: nil)
}

/// Checks commands against a device's ``TrustPolicy`` and remembers signed ones in its
/// ``NonceLedger``.
///
/// The checks, in order, each ending in its own rejection code:
///
/// 1. No signature: accepted when the policy lets the name run unsigned, else `unsigned`.
/// 2. The key id is not in the policy: `unknown_issuer`.
/// 3. The signature is malformed or does not verify over the canonical bytes: `bad_signature`.
/// 4. The key may not issue this name: `issuer_not_allowed`.
/// 5. Time: issued more than `clockSkew` in the future or more than `maxAge` (+ skew) ago,
///    already expired, expiring before it was issued or after `maxLifetime`, `notBefore` at or
///    after `expiresAt`, or expiring at or before the nonce ledger's horizon: `outside_window`.
/// 6. The nonce was accepted before: `replay`.
///
/// Not thread-safe: one owner (the agent's actor) at a time.
public final class CommandVerifier {
    /// The policy.
    public let policy: TrustPolicy
    /// The accepted nonces.
    public let ledger: NonceLedger

    /// Creates a verifier over a policy and the nonce ledger in `directory`.
    public init(policy: TrustPolicy, directory: URL) throws(SecurityError) {
        try policy.validate()
        self.policy = policy
        self.ledger = try NonceLedger(directory: directory)
    }

    /// Checks a delivered command for `device` at `now` (the device's clock). Reads the nonce
    /// ledger but does not change it: call ``remember(_:now:)`` once the command is taken.
    public func verify(_ request: LogicalRequest, device: String, now: Timestamp) -> Result<
        CommandAcceptance, CommandRejection
    > {
        // A rendezvous request's signature covers the sender's ref, not the hub's id. The origin
        // is the hub's word, so the kind it implies is part of what is verified: an operator's
        // command delivered as a rendezvous request (or the reverse) does not verify.
        let kind: SignedCommandFields.Kind = request.origin.hasPrefix("device:") ? .peer : .operator
        return verify(
            kind: kind, id: kind == .peer ? request.ref : request.id, target: device, name: request.name,
            args: request.args, notBefore: request.notBefore,
            expiresAt: request.expiresAt, signature: request.signature, acceptedAs: request.id, now: now)
    }

    /// Checks a command given as its parts; see ``verify(_:device:now:)``.
    ///
    /// - Parameters:
    ///   - kind: operator command or rendezvous request, as delivered.
    ///   - id: the id the signature should cover (nil when the delivery lacks it).
    ///   - acceptedAs: the id the device will run it under, recorded with the nonce.
    public func verify(
        kind: SignedCommandFields.Kind = .operator, id: String?, target: String, name: String, args: JSONValue,
        notBefore: Timestamp?, expiresAt: Timestamp,
        signature: CommandSignature?, acceptedAs: String, now: Timestamp
    ) -> Result<CommandAcceptance, CommandRejection> {
        func reject(_ code: String, _ detail: String) -> Result<CommandAcceptance, CommandRejection> {
            .failure(CommandRejection(code: code, detail: detail))
        }
        guard let signature else {
            if policy.acceptsUnsigned(name) { return .success(CommandAcceptance(issuer: nil, nonce: nil)) }
            return reject(OutcomeCode.unsigned, "'\(name)' must be signed by a trusted key")
        }
        guard let (entry, key) = policy.key(id: signature.keyId) else {
            return reject(OutcomeCode.unknownIssuer, "the key \(Self.printable(signature.keyId)) is not trusted")
        }
        guard (try? signature.validate()) != nil, let raw = Data(base64Encoded: signature.signature), let id else {
            return reject(OutcomeCode.badSignature, "the signature is malformed")
        }
        let fields = SignedCommandFields(
            kind: kind, id: id, target: target, name: name, args: args, notBefore: notBefore, expiresAt: expiresAt,
            issuedAt: signature.issuedAt, nonce: signature.nonce)
        guard key.isValidSignature(raw, for: fields.canonicalBytes) else {
            return reject(
                OutcomeCode.badSignature, "the signature of '\(entry.name)' does not match this command as delivered")
        }
        guard entry.allow.contains(where: { NamePattern.matches($0, name) }) else {
            return reject(OutcomeCode.issuerNotAllowed, "'\(entry.name)' may not issue '\(name)'")
        }
        if let problem = windowProblem(
            issuedAt: signature.issuedAt, notBefore: notBefore, expiresAt: expiresAt, now: now)
        {
            return reject(OutcomeCode.outsideWindow, problem)
        }
        if let seen = ledger.entry(keyId: signature.keyId, nonce: signature.nonce) {
            return reject(
                OutcomeCode.replay,
                "this signed command was accepted before (as \(seen.id)); a signed command runs at most once")
        }
        return .success(
            CommandAcceptance(
                issuer: entry.name,
                nonce: NonceLedger.Entry(
                    keyId: signature.keyId, nonce: signature.nonce, id: acceptedAs, expiresAt: expiresAt)
            )
        )
    }

    /// Remembers an accepted command's nonce, durably (nothing for an unsigned one).
    public func remember(_ acceptance: CommandAcceptance, now: Timestamp) throws(SecurityError) {
        guard let nonce = acceptance.nonce else { return }
        try ledger.record(nonce, now: now)
    }

    /// What is wrong with the command's times, or nil.
    func windowProblem(issuedAt: Timestamp, notBefore: Timestamp?, expiresAt: Timestamp, now: Timestamp) -> String? {
        let skew = policy.clockSkew
        if issuedAt.seconds(since: now) > skew {
            return "issued at \(issuedAt), more than \(Int(skew)) s ahead of the device's clock (\(now))"
        }
        if now.seconds(since: issuedAt) > policy.maxAge + skew {
            return "issued at \(issuedAt), more than \(Int(policy.maxAge)) s before \(now)"
        }
        if expiresAt <= issuedAt { return "expires at \(expiresAt), not after it was issued (\(issuedAt))" }
        if expiresAt.seconds(since: issuedAt) > policy.maxLifetime {
            return "a signed lifetime of more than \(Int(policy.maxLifetime)) s"
        }
        if now > expiresAt { return "expired at \(expiresAt) (device clock \(now))" }
        if let notBefore, notBefore >= expiresAt { return "notBefore \(notBefore) is not before expiresAt" }
        if let horizon = ledger.horizon, expiresAt <= horizon {
            return "expires at \(expiresAt), before the nonce ledger's horizon \(horizon)"
        }
        return nil
    }

    /// A key id as given, cut short and limited to printable ASCII, for messages.
    static func printable(_ text: String) -> String {
        String(String.UnicodeScalarView(text.unicodeScalars.prefix(80).filter { $0.isASCII && $0.value >= 0x20 }))
    }
}
