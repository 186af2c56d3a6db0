public import Foundation
import SwiftASN1
public import X509

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// What a certificate says, for people: subject, alternative names, validity.
public struct CertificateSummary: Sendable, Hashable, CustomStringConvertible {
    /// The subject, as `O=…,CN=…`.
    public var subject: String
    /// The subject alternative names: DNS names, IP addresses and URIs, as text.
    public var names: [String]
    /// The end of the validity period.
    public var notValidAfter: Date

    /// Summarises `certificate`.
    public init(_ certificate: Certificate) {
        subject = certificate.subject.description
        notValidAfter = certificate.notValidAfter
        names =
            ((try? certificate.extensions.subjectAlternativeNames) ?? nil).map { names in
                names.map { name -> String in
                    switch name {
                    case .dnsName(let dns): dns
                    case .uniformResourceIdentifier(let uri): uri
                    case .ipAddress(let octets): Self.ipText(Array(octets.bytes))
                    default: "\(name)"
                    }
                }
            } ?? []
    }

    /// `subject, valid until …; names: …`.
    public var description: String {
        let until = ISO8601DateFormatter().string(from: notValidAfter)
        return "\(subject), valid until \(until)" + (names.isEmpty ? "" : "; names: " + names.joined(separator: ", "))
    }

    private static func ipText(_ bytes: [UInt8]) -> String {
        if bytes.count == 4 { return bytes.map(String.init).joined(separator: ".") }
        guard bytes.count == 16 else { return bytes.map { String($0, radix: 16) }.joined(separator: ":") }
        var text = [CChar](repeating: 0, count: 64)
        var address = in6_addr()
        withUnsafeMutableBytes(of: &address) { $0.copyBytes(from: bytes) }
        guard inet_ntop(AF_INET6, &address, &text, socklen_t(text.count)) != nil else { return "?" }
        return String(decoding: text.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}

extension IssuedCertificate {
    /// A summary of the certificate.
    public var summary: CertificateSummary { CertificateSummary(certificate) }
}

extension CertificateAuthority {
    /// A summary of the CA certificate.
    public var summary: CertificateSummary { CertificateSummary(certificate) }
}
