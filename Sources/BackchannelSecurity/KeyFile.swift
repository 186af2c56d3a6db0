public import Foundation

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// A key as `backchannel keys` stores it: one JSON object per file.
///
/// ```json
/// {"version":1,"algorithm":"ed25519","name":"utility","keyId":"ed25519:…",
///  "publicKey":"<base64, 32 bytes>","privateKey":"<base64, 32 bytes>"}
/// ```
///
/// A private key file has `privateKey` and is written with mode 0600; a public key file (what
/// you hand to devices and to the people who trust you) has no `privateKey`.
public struct KeyFile: Sendable, Hashable, Codable {
    /// The format version, 1.
    public var version: Int
    /// `ed25519` (signing) or `x25519` (audience).
    public var algorithm: KeyAlgorithm
    /// A name for people.
    public var name: String
    /// The key id, derived from the public key.
    public var keyId: String
    /// The raw public key, base64.
    public var publicKey: String
    /// The raw private key, base64; absent in a public key file.
    public var privateKey: String?

    /// The file of a signing key, private half included.
    public init(_ key: SigningKey) {
        self.version = 1
        self.algorithm = .ed25519
        self.name = key.name
        self.keyId = key.keyId
        self.publicKey = key.publicKey.base64
        self.privateKey = key.rawRepresentation.base64EncodedString()
    }

    /// The file of an audience key, private half included.
    public init(_ key: AudienceKey) {
        self.version = 1
        self.algorithm = .x25519
        self.name = key.name
        self.keyId = key.keyId
        self.publicKey = key.publicKey.base64
        self.privateKey = key.rawRepresentation.base64EncodedString()
    }

    /// Whether the file holds a private key.
    public var isPrivate: Bool { privateKey != nil }

    /// The same key without its private half.
    public var publicOnly: KeyFile {
        var copy = self
        copy.privateKey = nil
        return copy
    }

    /// The signing key, for an `ed25519` private key file.
    public func signingKey() throws(SecurityError) -> SigningKey {
        guard algorithm == .ed25519, let privateKey, let raw = Data(base64Encoded: privateKey) else {
            throw .invalidKeyFile("'\(name)' is not an Ed25519 private key file")
        }
        return try SigningKey(name: name, rawRepresentation: raw)
    }

    /// The public key, for an `ed25519` key file.
    public func verifyingKey() throws(SecurityError) -> VerifyingKey {
        guard algorithm == .ed25519 else { throw .invalidKeyFile("'\(name)' is not an Ed25519 key") }
        return try VerifyingKey(base64: publicKey)
    }

    /// The audience key, for an `x25519` private key file.
    public func audienceKey() throws(SecurityError) -> AudienceKey {
        guard algorithm == .x25519, let privateKey, let raw = Data(base64Encoded: privateKey) else {
            throw .invalidKeyFile("'\(name)' is not an X25519 (audience) private key file")
        }
        return try AudienceKey(name: name, rawRepresentation: raw)
    }

    /// The audience public key, for an `x25519` key file.
    public func audiencePublicKey() throws(SecurityError) -> AudiencePublicKey {
        guard algorithm == .x25519 else { throw .invalidKeyFile("'\(name)' is not an X25519 (audience) key") }
        return try AudiencePublicKey(base64: publicKey)
    }

    /// Checks the version, that the keys decode, that the private half matches the public one,
    /// and that `keyId` is the public key's id.
    public func validate() throws(SecurityError) {
        guard version == 1 else { throw .invalidKeyFile("unknown key file version \(version)") }
        let derived: String
        switch algorithm {
        case .ed25519:
            derived = try verifyingKey().keyId
            if isPrivate, try signingKey().keyId != derived {
                throw .invalidKeyFile("the private key of '\(name)' does not match its public key")
            }
        case .x25519:
            derived = try audiencePublicKey().keyId
            if isPrivate, try audienceKey().keyId != derived {
                throw .invalidKeyFile("the private key of '\(name)' does not match its public key")
            }
        }
        guard keyId == derived else { throw .invalidKeyFile("keyId of '\(name)' is not its public key's id") }
    }

    /// Reads and validates a key file.
    public static func read(_ url: URL) throws(SecurityError) -> KeyFile {
        let data: Data
        do { data = try Data(contentsOf: url) } catch { throw .io("cannot read \(url.path)") }
        let file: KeyFile
        do { file = try JSONDecoder().decode(KeyFile.self, from: data) } catch {
            throw .invalidKeyFile("\(url.path) is not a Backchannel key file")
        }
        try file.validate()
        return file
    }

    /// Writes the file: mode 0600 when it holds a private key, 0644 otherwise. It refuses to
    /// replace an existing file unless `overwrite` is set.
    public func write(to url: URL, overwrite: Bool = false) throws(SecurityError) {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        guard var data = try? encoder.encode(self) else { throw .io("cannot encode the key file") }
        data.append(0x0A)
        if !overwrite, FileManager.default.fileExists(atPath: url.path) {
            throw .io("\(url.path) exists; not replacing a key file")
        }
        try PrivateFile.write(data, to: url, mode: isPrivate ? 0o600 : 0o644)
    }
}

/// Crash-safe file replacement with a chosen mode from the moment the file exists.
enum PrivateFile {
    /// Replaces `url` with `data`: a temporary file created with `mode` in the same directory,
    /// fsynced, renamed over the target, and the directory fsynced.
    static func write(_ data: Data, to url: URL, mode: mode_t) throws(SecurityError) {
        let directory = url.deletingLastPathComponent()
        do {
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        } catch {
            throw .io("cannot create \(directory.path)")
        }
        let temporary = directory.appendingPathComponent(".\(url.lastPathComponent).\(UUID().uuidString).tmp")
        let fd = open(temporary.path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode)
        guard fd >= 0 else { throw .io("cannot create \(temporary.path): errno \(errno)") }
        var ok = data.withUnsafeBytes { buffer -> Bool in
            var offset = 0
            while offset < buffer.count {
                let written = systemWrite(fd, buffer.baseAddress! + offset, buffer.count - offset)
                if written < 0 {
                    if errno == EINTR { continue }
                    return false
                }
                offset += written
            }
            return true
        }
        ok = ok && fchmod(fd, mode) == 0 && fsync(fd) == 0
        close(fd)
        guard ok, rename(temporary.path, url.path) == 0 else {
            unlink(temporary.path)
            throw .io("cannot write \(url.path): errno \(errno)")
        }
        let dirfd = open(directory.path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if dirfd >= 0 {
            _ = fsync(dirfd)
            close(dirfd)
        }
    }
}

private func systemWrite(_ fd: Int32, _ buffer: UnsafeRawPointer, _ count: Int) -> Int { write(fd, buffer, count) }
