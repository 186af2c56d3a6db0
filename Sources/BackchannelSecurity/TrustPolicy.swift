public import Foundation

/// What a device accepts: which keys may issue which commands, whether unsigned commands run,
/// and the time window a signed command must fall in.
///
/// Stored as JSON (see `docs/protocol.md`, "Signed commands"):
///
/// ```json
/// {"version":1,"requireSigned":true,"allowUnsigned":["read","ping"],"requireSignedFor":[],
///  "maxAge":604800,"clockSkew":300,"maxLifetime":2678400,
///  "keys":[{"name":"utility","publicKey":"<base64>","allow":["billing.*"]}]}
/// ```
///
/// Name patterns are exact names, or contain `*`, which matches any run of characters:
/// `billing.*` matches `billing.reset`, `*` matches every name.
public struct TrustPolicy: Sendable, Hashable, Codable {
    /// One trusted issuer.
    public struct Key: Sendable, Hashable, Codable {
        /// A name for people, such as `utility`.
        public var name: String
        /// The raw Ed25519 public key, base64.
        public var publicKey: String
        /// The key id; derived from `publicKey` when absent, checked when present.
        public var keyId: String?
        /// The command names this key may issue (patterns).
        public var allow: [String]

        /// Creates an entry.
        public init(name: String, publicKey: VerifyingKey, allow: [String]) {
            self.name = name
            self.publicKey = publicKey.base64
            self.keyId = publicKey.keyId
            self.allow = allow
        }
    }

    /// The format version, 1.
    public var version: Int = 1
    /// Whether a command must be signed to run (unless its name matches `allowUnsigned`).
    /// When false, unsigned commands run as if there were no policy; signed ones are still checked.
    public var requireSigned: Bool = true
    /// Names that run unsigned even when `requireSigned` is set (patterns).
    public var allowUnsigned: [String] = []
    /// Names that never run unsigned, even when `requireSigned` is false (patterns): the way to
    /// protect a few commands (`billing.*`) and leave the rest as they were.
    public var requireSignedFor: [String] = []
    /// Longest time, in seconds, between a signature's `issuedAt` and the device receiving it.
    public var maxAge: Double = 7 * 24 * 3600
    /// Tolerated difference, in seconds, between the issuer's clock and the device's.
    public var clockSkew: Double = 300
    /// Longest signed lifetime (`expiresAt - issuedAt`), in seconds. It bounds how long the device
    /// must remember a nonce.
    public var maxLifetime: Double = 31 * 24 * 3600
    /// The trusted issuers.
    public var keys: [Key] = []

    /// An empty policy: nothing signed is trusted and unsigned commands are refused.
    public init() {}

    /// The trusted key with this id, if any.
    public func key(id: String) -> (entry: Key, key: VerifyingKey)? {
        for entry in keys {
            guard let key = try? VerifyingKey(base64: entry.publicKey), key.keyId == id else { continue }
            return (entry, key)
        }
        return nil
    }

    /// Whether an unsigned command with this name runs.
    public func acceptsUnsigned(_ name: String) -> Bool {
        if requireSignedFor.contains(where: { NamePattern.matches($0, name) }) { return false }
        return !requireSigned || allowUnsigned.contains { NamePattern.matches($0, name) }
    }

    /// Adds a key, replacing one with the same name or key id.
    public mutating func trust(_ entry: Key) {
        keys.removeAll { $0.name == entry.name || ($0.keyId != nil && $0.keyId == entry.keyId) }
        keys.append(entry)
    }

    /// Checks the version, the numbers, every key and every pattern.
    public func validate() throws(SecurityError) {
        guard version == 1 else { throw .invalidPolicy("unknown trust policy version \(version)") }
        guard maxAge > 0, clockSkew >= 0, maxLifetime > 0 else {
            throw .invalidPolicy("maxAge and maxLifetime must be positive, clockSkew not negative")
        }
        var ids = Set<String>()
        for (index, entry) in keys.enumerated() {
            let key: VerifyingKey
            do { key = try VerifyingKey(base64: entry.publicKey) } catch {
                throw .invalidPolicy("keys[\(index)] (\(entry.name)): \(error.reason)")
            }
            if let id = entry.keyId, id != key.keyId {
                throw .invalidPolicy("keys[\(index)] (\(entry.name)): keyId is not the public key's id")
            }
            guard ids.insert(key.keyId).inserted else {
                throw .invalidPolicy("keys[\(index)] (\(entry.name)): the same key is listed twice")
            }
            for pattern in entry.allow where !NamePattern.isValid(pattern) {
                throw .invalidPolicy("keys[\(index)] (\(entry.name)): '\(pattern)' is not a name pattern")
            }
        }
        for pattern in allowUnsigned where !NamePattern.isValid(pattern) {
            throw .invalidPolicy("allowUnsigned: '\(pattern)' is not a name pattern")
        }
        for pattern in requireSignedFor where !NamePattern.isValid(pattern) {
            throw .invalidPolicy("requireSignedFor: '\(pattern)' is not a name pattern")
        }
    }

    /// Reads and validates a policy file.
    public static func read(_ url: URL) throws(SecurityError) -> TrustPolicy {
        let data: Data
        do { data = try Data(contentsOf: url) } catch { throw .io("cannot read \(url.path)") }
        return try decode(data, source: url.path)
    }

    /// Decodes and validates a policy.
    public static func decode(_ data: Data, source: String = "trust policy") throws(SecurityError) -> TrustPolicy {
        let policy: TrustPolicy
        do { policy = try JSONDecoder().decode(TrustPolicy.self, from: data) } catch {
            throw .invalidPolicy("\(source) is not a trust policy: \(error)")
        }
        try policy.validate()
        return policy
    }

    /// The policy as pretty-printed JSON.
    public func encoded() throws(SecurityError) -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        guard var data = try? encoder.encode(self) else { throw .io("cannot encode the trust policy") }
        data.append(0x0A)
        return data
    }

    /// Writes the policy (mode 0644), replacing the file atomically.
    public func write(to url: URL) throws(SecurityError) {
        try validate()
        try PrivateFile.write(try encoded(), to: url, mode: 0o644)
    }

    enum CodingKeys: String, CodingKey {
        case version, requireSigned, allowUnsigned, requireSignedFor, maxAge, clockSkew, maxLifetime, keys
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let defaults = TrustPolicy()
        version = try c.decodeIfPresent(Int.self, forKey: .version) ?? 1
        requireSigned = try c.decodeIfPresent(Bool.self, forKey: .requireSigned) ?? defaults.requireSigned
        allowUnsigned = try c.decodeIfPresent([String].self, forKey: .allowUnsigned) ?? []
        requireSignedFor = try c.decodeIfPresent([String].self, forKey: .requireSignedFor) ?? []
        maxAge = try c.decodeIfPresent(Double.self, forKey: .maxAge) ?? defaults.maxAge
        clockSkew = try c.decodeIfPresent(Double.self, forKey: .clockSkew) ?? defaults.clockSkew
        maxLifetime = try c.decodeIfPresent(Double.self, forKey: .maxLifetime) ?? defaults.maxLifetime
        keys = try c.decodeIfPresent([Key].self, forKey: .keys) ?? []
    }
}

/// Command-name patterns: `*` matches any run of characters (including none); every other
/// character matches itself.
public enum NamePattern {
    /// Whether `pattern` matches `name`.
    public static func matches(_ pattern: String, _ name: String) -> Bool {
        let p = Array(pattern.utf8)
        let n = Array(name.utf8)
        // Iterative wildcard matching with backtracking to the last star.
        var i = 0
        var j = 0
        var star = -1
        var mark = 0
        while j < n.count {
            if i < p.count, p[i] != UInt8(ascii: "*"), p[i] == n[j] {
                i += 1
                j += 1
            } else if i < p.count, p[i] == UInt8(ascii: "*") {
                star = i
                mark = j
                i += 1
            } else if star >= 0 {
                i = star + 1
                mark += 1
                j = mark
            } else {
                return false
            }
        }
        while i < p.count, p[i] == UInt8(ascii: "*") { i += 1 }
        return i == p.count
    }

    /// Whether `pattern` is usable: 1-64 bytes of command-name characters and `*`.
    public static func isValid(_ pattern: String) -> Bool {
        let bytes = pattern.utf8
        guard !bytes.isEmpty, bytes.count <= 64 else { return false }
        return bytes.allSatisfy { byte in
            (byte >= 0x30 && byte <= 0x39) || (byte >= 0x41 && byte <= 0x5A) || (byte >= 0x61 && byte <= 0x7A)
                || byte == 0x2E || byte == 0x5F || byte == 0x3A || byte == 0x2D || byte == 0x2A
        }
    }
}
