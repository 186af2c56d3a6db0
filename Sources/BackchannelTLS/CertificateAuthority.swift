import Crypto
public import Foundation
import SwiftASN1
public import X509

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// A private certificate authority: it issues the hub's server certificate and the devices'
/// client certificates, and both sides trust only it.
///
/// Keys are P-256; certificates are X.509 v3 signed with ECDSA-SHA256. Every certificate is
/// back-dated by ``backdating`` so that a device whose clock runs a little behind still
/// accepts a certificate issued a moment ago.
public struct CertificateAuthority: Sendable {
    /// The CA's self-signed certificate: what clients and the hub trust.
    public let certificate: Certificate
    /// The CA's signing key.
    public let privateKey: Certificate.PrivateKey

    /// Seconds certificates are back-dated by, for clocks running behind.
    public static let backdating: TimeInterval = 3600

    /// Uses an existing CA certificate and its key.
    ///
    /// - Throws: ``TLSError/Code/invalidKey`` when the key is not the certificate's, and
    ///   ``TLSError/Code/invalidCertificate`` when the certificate is not a CA.
    public init(certificate: Certificate, privateKey: Certificate.PrivateKey) throws(TLSError) {
        guard privateKey.publicKey == certificate.publicKey else {
            throw .invalidKey("the CA key does not belong to the CA certificate")
        }
        guard case .isCertificateAuthority = (try? certificate.extensions.basicConstraints) ?? nil else {
            throw .invalidCertificate("the CA certificate is not marked as a certificate authority")
        }
        self.certificate = certificate
        self.privateKey = privateKey
    }

    /// Creates a new CA with a fresh P-256 key and a self-signed certificate.
    ///
    /// - Parameters:
    ///   - name: the CA's common name.
    ///   - validity: seconds the CA certificate is valid (default ten years).
    ///   - now: the issue time.
    public static func create(
        name: String = "Backchannel CA", validity: TimeInterval = 3650 * 86400, now: Date = Date()
    ) throws(TLSError) -> CertificateAuthority {
        let key = Certificate.PrivateKey(P256.Signing.PrivateKey())
        do {
            let subject = try DistinguishedName {
                OrganizationName("Backchannel")
                CommonName(name)
            }
            let certificate = try Certificate(
                version: .v3, serialNumber: Certificate.SerialNumber(), publicKey: key.publicKey,
                notValidBefore: now.addingTimeInterval(-backdating), notValidAfter: now.addingTimeInterval(validity),
                issuer: subject, subject: subject, signatureAlgorithm: .ecdsaWithSHA256,
                extensions: try Certificate.Extensions {
                    Critical(BasicConstraints.isCertificateAuthority(maxPathLength: 0))
                    Critical(KeyUsage(keyCertSign: true, cRLSign: true))
                    SubjectKeyIdentifier(hash: key.publicKey)
                },
                issuerPrivateKey: key)
            return try CertificateAuthority(certificate: certificate, privateKey: key)
        } catch let error as TLSError {
            throw error
        } catch {
            throw .invalidCertificate("cannot create the CA certificate: \(error)")
        }
    }

    /// Issues the hub's server certificate (extended key usage `serverAuth`), valid for the
    /// given DNS names and IP addresses.
    ///
    /// - Parameters:
    ///   - commonName: the subject's common name; default the first DNS name.
    ///   - dnsNames: the names clients reach the hub by.
    ///   - ipAddresses: the addresses clients reach the hub by (IPv4 or IPv6 text).
    ///   - validity: seconds the certificate is valid (default 825 days).
    ///   - now: the issue time.
    public func issueServerCertificate(
        commonName: String? = nil, dnsNames: [String] = ["localhost"], ipAddresses: [String] = ["127.0.0.1", "::1"],
        validity: TimeInterval = 825 * 86400, now: Date = Date()
    ) throws(TLSError) -> IssuedCertificate {
        guard !dnsNames.isEmpty || !ipAddresses.isEmpty else {
            throw .invalidName("a server certificate needs at least one DNS name or IP address")
        }
        var names: [GeneralName] = []
        for name in dnsNames {
            guard Self.isDNSName(name) else { throw .invalidName("not a DNS name: \(name)") }
            names.append(.dnsName(name.lowercased()))
        }
        for address in ipAddresses {
            guard let bytes = IPAddress.bytes(address) else { throw .invalidName("not an IP address: \(address)") }
            names.append(.ipAddress(ASN1OctetString(contentBytes: bytes[...])))
        }
        return try issue(
            commonName: commonName ?? dnsNames.first ?? ipAddresses[0], alternativeNames: names, usage: .serverAuth,
            validity: validity, now: now)
    }

    /// Issues a device's client certificate (extended key usage `clientAuth`): subject common
    /// name the device id, and the URI `urn:backchannel:device:<id>` as its alternative name,
    /// with `urn:backchannel:tenant:<tenant>` when a tenant is given.
    ///
    /// - Parameters:
    ///   - deviceID: the device id, as provisioned in the hub.
    ///   - tenant: the tenant the device is provisioned in; the hub accepts the certificate only
    ///     for a device of that tenant. Nil names none: the hub takes it as its system tenant's.
    ///   - validity: seconds the certificate is valid (default five years).
    ///   - now: the issue time.
    public func issueDeviceCertificate(
        deviceID: String, tenant: String? = nil, validity: TimeInterval = 1825 * 86400, now: Date = Date()
    ) throws(TLSError) -> IssuedCertificate {
        guard DeviceCertificate.isValidDeviceID(deviceID) else {
            throw .invalidName("not a device id (1-128 of A-Z a-z 0-9 . _ : -): \(deviceID)")
        }
        var names: [GeneralName] = [.uniformResourceIdentifier(DeviceCertificate.uri(for: deviceID))]
        if let tenant {
            guard DeviceCertificate.isValidTenant(tenant) else {
                throw .invalidName("not a tenant (1-64 of A-Z a-z 0-9 . _ : -): \(tenant)")
            }
            names.append(.uniformResourceIdentifier(DeviceCertificate.tenantURI(for: tenant)))
        }
        return try issue(
            commonName: deviceID, alternativeNames: names, usage: .clientAuth, validity: validity, now: now)
    }

    private func issue(
        commonName: String, alternativeNames: [GeneralName], usage: ExtendedKeyUsage.Usage, validity: TimeInterval,
        now: Date
    ) throws(TLSError) -> IssuedCertificate {
        guard validity > 0 else { throw .invalidCertificate("the validity must be positive") }
        let key = Certificate.PrivateKey(P256.Signing.PrivateKey())
        let notAfter = min(now.addingTimeInterval(validity), certificate.notValidAfter)
        do {
            let subject = try DistinguishedName {
                OrganizationName("Backchannel")
                CommonName(commonName)
            }
            let issuerKeyID = try certificate.extensions.subjectKeyIdentifier?.keyIdentifier
            let leaf = try Certificate(
                version: .v3, serialNumber: Certificate.SerialNumber(), publicKey: key.publicKey,
                notValidBefore: now.addingTimeInterval(-Self.backdating), notValidAfter: notAfter,
                issuer: certificate.subject, subject: subject, signatureAlgorithm: .ecdsaWithSHA256,
                extensions: try Certificate.Extensions {
                    Critical(BasicConstraints.notCertificateAuthority)
                    Critical(KeyUsage(digitalSignature: true))
                    try ExtendedKeyUsage([usage])
                    SubjectAlternativeNames(alternativeNames)
                    SubjectKeyIdentifier(hash: key.publicKey)
                    if let issuerKeyID { AuthorityKeyIdentifier(keyIdentifier: issuerKeyID) }
                },
                issuerPrivateKey: privateKey)
            return IssuedCertificate(certificate: leaf, privateKey: key)
        } catch {
            throw .invalidCertificate("cannot issue a certificate for \(commonName): \(error)")
        }
    }

    /// Whether `name` is a DNS name (letters, digits, hyphens, dots; an optional leading `*.`).
    static func isDNSName(_ name: String) -> Bool {
        var labels = name.split(separator: ".", omittingEmptySubsequences: false)
        if labels.first == "*" && labels.count > 1 { labels.removeFirst() }
        guard !labels.isEmpty, name.utf8.count <= 253 else { return false }
        return labels.allSatisfy { label in
            (1...63).contains(label.utf8.count) && label.first != "-" && label.last != "-"
                && label.utf8.allSatisfy { byte in
                    (byte >= 0x30 && byte <= 0x39) || (byte >= 0x41 && byte <= 0x5A) || (byte >= 0x61 && byte <= 0x7A)
                        || byte == 0x2D
                }
        }
    }
}

/// A certificate issued by a ``CertificateAuthority``, with its private key.
public struct IssuedCertificate: Sendable {
    /// The certificate.
    public let certificate: Certificate
    /// Its private key.
    public let privateKey: Certificate.PrivateKey

    /// Pairs a certificate with its key.
    public init(certificate: Certificate, privateKey: Certificate.PrivateKey) {
        self.certificate = certificate
        self.privateKey = privateKey
    }
}

/// Parses IPv4 and IPv6 addresses written as text.
enum IPAddress {
    /// The address's network-order bytes: 4 for IPv4, 16 for IPv6; nil if it is not an address.
    static func bytes(_ text: String) -> [UInt8]? {
        var v4 = in_addr()
        if inet_pton(AF_INET, text, &v4) == 1 {
            return withUnsafeBytes(of: &v4) { Array($0) }
        }
        var v6 = in6_addr()
        if inet_pton(AF_INET6, text, &v6) == 1 {
            return withUnsafeBytes(of: &v6) { Array($0) }
        }
        return nil
    }
}
