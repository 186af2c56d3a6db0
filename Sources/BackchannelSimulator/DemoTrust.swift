public import BackchannelSecurity
public import Foundation

/// The demo's end-to-end trust: a utility signing key, and a meter trust policy under which
/// `billing.*` commands run only when the utility signed them; every other command runs as it
/// always did.
public enum DemoTrust {
    /// The demo's keys and policy.
    public struct Files: Sendable {
        /// The utility's signing key (`send --sign-key`).
        public var utilityKey: URL
        /// The meters' trust policy.
        public var policy: URL
        /// The policy as read.
        public var trustPolicy: TrustPolicy
    }

    /// Loads the demo's key and policy from `directory`, creating them on first use:
    /// `keys/utility.key` (0600) and `trust.json`.
    public static func prepare(in directory: URL) throws -> Files {
        let keyURL = directory.appendingPathComponent("keys/utility.key")
        let policyURL = directory.appendingPathComponent("trust.json")
        let key: SigningKey
        if FileManager.default.fileExists(atPath: keyURL.path) {
            key = try KeyFile.read(keyURL).signingKey()
        } else {
            key = SigningKey.generate(name: "utility")
            try KeyFile(key).write(to: keyURL)
        }
        if FileManager.default.fileExists(atPath: policyURL.path) {
            let policy = try TrustPolicy.read(policyURL)
            if policy.key(id: key.keyId) != nil {
                return Files(utilityKey: keyURL, policy: policyURL, trustPolicy: policy)
            }
        }
        var policy = TrustPolicy()
        policy.requireSigned = false
        policy.requireSignedFor = ["billing.*"]
        policy.trust(.init(name: "utility", publicKey: key.publicKey, allow: ["*"]))
        try policy.write(to: policyURL)
        return Files(utilityKey: keyURL, policy: policyURL, trustPolicy: policy)
    }
}
