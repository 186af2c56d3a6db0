import ArgumentParser
import BackchannelProtocol
import BackchannelSecurity
import Foundation

/// `backchannel keys`: operator and device keys, and device trust policies.
struct KeysCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "keys",
        abstract: "Create and inspect signing and audience keys; add trusted keys to a device trust policy.",
        discussion: """
            Signing keys (Ed25519) sign commands: `send --sign-key`. Audience keys (X25519) open \
            sealed payload parts: `decrypt --key`. A trust policy tells a device which signing \
            keys may issue which commands: `simulate --trust`.
              backchannel keys generate --name utility --out utility.key
              backchannel keys show utility.key --public-out utility.pub
              backchannel keys trust --policy trust.json --key utility.pub --allow 'billing.*'
              backchannel keys generate --audience --name accounting --out accounting.key
            """,
        subcommands: [Generate.self, Show.self, Trust.self]
    )

    struct Generate: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Create a key file (mode 0600) and print its key id and public key.")

        @Option(help: "A name for people, such as utility or accounting.") var name: String
        @Option(help: "The key file to write.") var out: String
        @Flag(help: "An X25519 audience key (for sealed payloads) instead of an Ed25519 signing key.")
        var audience = false
        @Option(help: "Also write the public half (no private key) to this file.") var publicOut: String?
        @Flag(help: "Replace existing files.") var force = false

        func validate() throws {
            guard Identifier.isValid(name, maxBytes: 64) else {
                throw ValidationError("--name must be 1-64 letters, digits and . _ : -")
            }
        }

        func run() throws {
            let file = audience ? KeyFile(AudienceKey.generate(name: name)) : KeyFile(SigningKey.generate(name: name))
            do {
                try file.write(to: URL(fileURLWithPath: out), overwrite: force)
                if let publicOut { try file.publicOnly.write(to: URL(fileURLWithPath: publicOut), overwrite: force) }
            } catch {
                throw CLIError("\(error)")
            }
            printKey(file, path: out)
            if let publicOut { print("public file: \(publicOut)") }
        }
    }

    struct Show: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print a key file's name, algorithm, key id and public key (never the private key).")

        @Argument(help: "A key file.") var file: String
        @Option(help: "Write the public half to this file.") var publicOut: String?
        @Flag(help: "Print JSON (the public half).") var json = false

        func run() throws {
            let key: KeyFile
            do {
                key = try KeyFile.read(URL(fileURLWithPath: file))
                if let publicOut { try key.publicOnly.write(to: URL(fileURLWithPath: publicOut), overwrite: true) }
            } catch {
                throw CLIError("\(error)")
            }
            if json {
                try printJSON(key.publicOnly)
            } else {
                printKey(key, path: file)
            }
        }
    }

    struct Trust: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Add (or replace) a trusted signing key in a device trust policy file, creating it if absent.",
            discussion: """
                Patterns are command names, where * matches anything: 'billing.*', 'relay', '*'. \
                A new policy requires signed commands (except the --allow-unsigned names), accepts \
                signatures up to a week old with 5 minutes of clock skew.
                  backchannel keys trust --policy trust.json --key utility.pub --allow 'billing.*'
                  backchannel keys trust --policy trust.json --allow-unsigned read --allow-unsigned ping
                  backchannel keys trust --policy trust.json --require-signed false --require-signed-for 'billing.*'
                  backchannel keys trust --policy trust.json --remove utility
                """
        )

        @Option(help: "The trust policy file.") var policy: String
        @Option(help: "A key file (public or private) of the signing key to trust.") var key: String?
        @Option(help: "Or the raw Ed25519 public key in base64 (with --name).") var publicKey: String?
        @Option(help: "The name the policy gives the key (default: the key file's name).") var name: String?
        @Option(help: "A command-name pattern the key may issue; repeatable.") var allow: [String] = []
        @Option(help: "Remove the key with this name.") var remove: String?
        @Option(help: "A command-name pattern that runs unsigned; repeatable (added to the policy's list).")
        var allowUnsigned: [String] = []
        @Option(help: "A command-name pattern that must always be signed, even without --require-signed; repeatable.")
        var requireSignedFor: [String] = []
        @Option(help: "Whether commands must be signed: true or false.") var requireSigned: Bool?
        @Option(help: "Longest age of a signature, in seconds.") var maxAge: Double?
        @Option(help: "Tolerated clock difference, in seconds.") var clockSkew: Double?

        func validate() throws {
            if key != nil && publicKey != nil { throw ValidationError("give --key or --public-key, not both") }
            if (key != nil || publicKey != nil) && allow.isEmpty {
                throw ValidationError("--allow: say which commands the key may issue (for example '*')")
            }
            if publicKey != nil && name == nil { throw ValidationError("--public-key needs --name") }
            for pattern in allow + allowUnsigned + requireSignedFor where !NamePattern.isValid(pattern) {
                throw ValidationError("'\(pattern)' is not a command-name pattern")
            }
        }

        func run() throws {
            let url = URL(fileURLWithPath: policy)
            do {
                var trust = FileManager.default.fileExists(atPath: url.path) ? try TrustPolicy.read(url) : TrustPolicy()
                if let remove {
                    let before = trust.keys.count
                    trust.keys.removeAll { $0.name == remove }
                    if trust.keys.count == before { throw CLIError("no key named '\(remove)' in \(policy)") }
                    print("removed \(remove)")
                }
                if key != nil || publicKey != nil {
                    let (keyName, verifying) = try resolveKey()
                    trust.trust(.init(name: keyName, publicKey: verifying, allow: allow))
                    print("trusted \(keyName) (\(verifying.keyId)) for \(allow.joined(separator: ", "))")
                }
                for pattern in allowUnsigned where !trust.allowUnsigned.contains(pattern) {
                    trust.allowUnsigned.append(pattern)
                }
                for pattern in requireSignedFor where !trust.requireSignedFor.contains(pattern) {
                    trust.requireSignedFor.append(pattern)
                }
                if let requireSigned { trust.requireSigned = requireSigned }
                if let maxAge { trust.maxAge = maxAge }
                if let clockSkew { trust.clockSkew = clockSkew }
                try trust.write(to: url)
                print(
                    "\(policy): \(trust.keys.count) trusted keys; "
                        + (trust.requireSigned
                            ? "signatures required"
                                + (trust.allowUnsigned.isEmpty
                                    ? "" : " except for \(trust.allowUnsigned.joined(separator: ", "))")
                            : "unsigned commands accepted"
                                + (trust.requireSignedFor.isEmpty
                                    ? "" : " except for \(trust.requireSignedFor.joined(separator: ", "))"))
                )
            } catch let error as CLIError {
                throw error
            } catch {
                throw CLIError("\(error)")
            }
        }

        private func resolveKey() throws -> (String, VerifyingKey) {
            if let key {
                let file = try KeyFile.read(URL(fileURLWithPath: key))
                return (name ?? file.name, try file.verifyingKey())
            }
            return (name ?? "", try VerifyingKey(base64: publicKey ?? ""))
        }
    }
}

private func printKey(_ key: KeyFile, path: String) {
    print("name:       \(key.name)")
    print("algorithm:  \(key.algorithm.rawValue) (\(key.algorithm == .ed25519 ? "signing" : "audience"))")
    print("key id:     \(key.keyId)")
    print("public key: \(key.publicKey)")
    print("file:       \(path)\(key.isPrivate ? " (private key, keep it secret)" : " (public key)")")
}

/// Reads an audience public key given as a key file path or as base64.
func audiencePublicKey(_ text: String) throws -> AudiencePublicKey {
    if FileManager.default.fileExists(atPath: text) {
        return try KeyFile.read(URL(fileURLWithPath: text)).audiencePublicKey()
    }
    return try AudiencePublicKey(base64: text)
}
