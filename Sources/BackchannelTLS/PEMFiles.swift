public import Foundation
import SwiftASN1
public import X509

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Reads and writes certificates and keys as PEM files. Key files are created with mode 0600
/// and certificate files with 0644; neither replaces an existing file unless asked to.
public enum PEMFiles {
    /// Writes `certificate` to `url`.
    public static func write(_ certificate: Certificate, to url: URL, overwrite: Bool = false) throws(TLSError) {
        let pem: String
        do {
            pem = try certificate.serializeAsPEM().pemString
        } catch {
            throw .invalidCertificate("cannot encode the certificate for \(url.path)")
        }
        try write(Data((pem + "\n").utf8), to: url, mode: 0o644, overwrite: overwrite)
    }

    /// Writes `key` to `url` (PKCS #8), readable by the owner only.
    public static func write(_ key: Certificate.PrivateKey, to url: URL, overwrite: Bool = false) throws(TLSError) {
        let pem: String
        do {
            pem = try key.serializeAsPEM().pemString
        } catch {
            throw .invalidKey("cannot encode the private key for \(url.path)")
        }
        try write(Data((pem + "\n").utf8), to: url, mode: 0o600, overwrite: overwrite)
    }

    /// Writes an issued certificate and its key.
    public static func write(
        _ issued: IssuedCertificate, certificate: URL, key: URL, overwrite: Bool = false
    ) throws(TLSError) {
        try refuseExisting([certificate, key], overwrite: overwrite)
        try write(issued.privateKey, to: key, overwrite: overwrite)
        try write(issued.certificate, to: certificate, overwrite: overwrite)
    }

    /// Throws ``TLSError/Code/fileExists`` for the first of `urls` that exists, unless `overwrite`.
    public static func refuseExisting(_ urls: [URL], overwrite: Bool) throws(TLSError) {
        guard !overwrite else { return }
        for url in urls where FileManager.default.fileExists(atPath: url.path) {
            throw .fileExists(url.path)
        }
    }

    /// The certificates in a PEM file, in order (a leaf, then its intermediates).
    public static func certificates(at path: String) throws(TLSError) -> [Certificate] {
        let text = try read(path)
        let documents: [PEMDocument]
        do {
            documents = try PEMDocument.parseMultiple(pemString: text)
        } catch {
            throw .invalidCertificate("\(path) is not a PEM file")
        }
        var certificates: [Certificate] = []
        for document in documents where document.discriminator == "CERTIFICATE" {
            do {
                certificates.append(try Certificate(pemDocument: document))
            } catch {
                throw .invalidCertificate("\(path) holds a certificate that cannot be parsed")
            }
        }
        guard !certificates.isEmpty else { throw .invalidCertificate("\(path) holds no certificate") }
        return certificates
    }

    /// The private key in a PEM file (PKCS #8, SEC 1 or PKCS #1).
    public static func privateKey(at path: String) throws(TLSError) -> Certificate.PrivateKey {
        let text = try read(path)
        do {
            return try Certificate.PrivateKey(pemEncoded: text)
        } catch {
            throw .invalidKey("\(path) is not a PEM private key")
        }
    }

    private static func read(_ path: String) throws(TLSError) -> String {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw .io("cannot read \(path)")
        }
        return String(decoding: data, as: UTF8.self)
    }

    /// Writes `data` through a temporary file created with `mode` in the same directory, then
    /// renames it into place: a reader never sees half a file, a key is never world-readable.
    private static func write(_ data: Data, to url: URL, mode: mode_t, overwrite: Bool) throws(TLSError) {
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
        // Without `overwrite`, link() fails if the target appeared meanwhile; rename() replaces.
        let placed = ok && (overwrite ? rename(temporary.path, url.path) == 0 : link(temporary.path, url.path) == 0)
        let failure = errno
        unlink(temporary.path)
        guard placed else {
            if failure == EEXIST { throw .fileExists(url.path) }
            throw .io("cannot write \(url.path): errno \(failure)")
        }
    }
}

#if canImport(Glibc)
    private let systemWrite = Glibc.write
#elseif canImport(Darwin)
    private let systemWrite = Darwin.write
#endif

/// The files of a certificate directory made by `backchannel certs init`:
///
/// ```
/// <dir>/ca.crt  ca.key              the private CA (keep ca.key offline once devices are issued)
/// <dir>/hub.crt hub.key             the hub's server certificate
/// <dir>/devices/<id>.crt <id>.key   device client certificates
/// ```
public struct CertificateDirectory: Sendable {
    /// The directory.
    public let url: URL

    /// Names a certificate directory.
    public init(_ url: URL) { self.url = url }

    /// The CA certificate: what the hub (for devices) and agents (for the hub) trust.
    public var caCertificate: URL { url.appendingPathComponent("ca.crt") }
    /// The CA's private key.
    public var caKey: URL { url.appendingPathComponent("ca.key") }
    /// The hub's certificate.
    public var hubCertificate: URL { url.appendingPathComponent("hub.crt") }
    /// The hub's private key.
    public var hubKey: URL { url.appendingPathComponent("hub.key") }
    /// The folder of device certificates.
    public var devices: URL { url.appendingPathComponent("devices", isDirectory: true) }
    /// A device's certificate.
    public func deviceCertificate(_ id: String) -> URL { devices.appendingPathComponent("\(id).crt") }
    /// A device's private key.
    public func deviceKey(_ id: String) -> URL { devices.appendingPathComponent("\(id).key") }

    /// Loads the CA (certificate and key).
    public func loadAuthority() throws(TLSError) -> CertificateAuthority {
        guard let certificate = try PEMFiles.certificates(at: caCertificate.path).first else {
            throw .invalidCertificate("\(caCertificate.path) holds no certificate")
        }
        return try CertificateAuthority(certificate: certificate, privateKey: try PEMFiles.privateKey(at: caKey.path))
    }
}
