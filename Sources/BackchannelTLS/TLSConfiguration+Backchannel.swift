import Foundation
public import NIOSSL
import SwiftASN1
import X509

extension TLSConfiguration {
    /// The hub's server configuration: its certificate chain and key, and for mutual TLS the CA
    /// that issues device certificates.
    ///
    /// With a client CA, clients are asked for a certificate but need not present one (the bearer
    /// token remains the alternative); one that is presented must verify against that CA or the
    /// handshake fails. TLS 1.2 at least.
    ///
    /// - Throws: ``TLSError`` naming the file that cannot be read or does not fit.
    public static func backchannelServer(
        certificateChainFile: String, privateKeyFile: String, clientCAFile: String? = nil
    ) throws(TLSError) -> TLSConfiguration {
        let chain = try PEMFiles.certificates(at: certificateChainFile)
        let key = try PEMFiles.privateKey(at: privateKeyFile)
        guard key.publicKey == chain[0].publicKey else {
            throw .invalidKey("\(privateKeyFile) is not the key of the certificate in \(certificateChainFile)")
        }
        var configuration = TLSConfiguration.makeServerConfiguration(
            certificateChain: try niossl(chain, file: certificateChainFile).map { .certificate($0) },
            privateKey: .privateKey(try niossl(key, file: privateKeyFile)))
        configuration.minimumTLSVersion = .tlsv12
        if let clientCAFile {
            let roots = try PEMFiles.certificates(at: clientCAFile)
            configuration.trustRoots = .certificates(try niossl(roots, file: clientCAFile))
            configuration.certificateVerification = .optionalVerification
            configuration.sendCANameList = true
        }
        return configuration
    }

    /// A client configuration for reaching an `https` hub: trust only `caFile` when given (else
    /// the system's roots), check the hub's name against its certificate, and present a client
    /// certificate when one is given.
    ///
    /// - Throws: ``TLSError`` naming the file that cannot be read or does not fit; a certificate
    ///   without its key (or the reverse) is refused.
    public static func backchannelClient(
        caFile: String? = nil, certificateFile: String? = nil, keyFile: String? = nil
    ) throws(TLSError) -> TLSConfiguration {
        var configuration = TLSConfiguration.makeClientConfiguration()
        configuration.minimumTLSVersion = .tlsv12
        configuration.certificateVerification = .fullVerification
        if let caFile {
            let roots = try PEMFiles.certificates(at: caFile)
            configuration.trustRoots = .certificates(try niossl(roots, file: caFile))
        }
        switch (certificateFile, keyFile) {
        case (nil, nil):
            break
        case (let certificateFile?, let keyFile?):
            let chain = try PEMFiles.certificates(at: certificateFile)
            let key = try PEMFiles.privateKey(at: keyFile)
            guard key.publicKey == chain[0].publicKey else {
                throw .invalidKey("\(keyFile) is not the key of the certificate in \(certificateFile)")
            }
            configuration.certificateChain = try niossl(chain, file: certificateFile).map { .certificate($0) }
            configuration.privateKey = .privateKey(try niossl(key, file: keyFile))
        case (.some(let file), nil), (nil, .some(let file)):
            throw .invalidKey("\(file): a client certificate needs both its certificate and its key")
        }
        return configuration
    }

    private static func niossl(_ certificates: [Certificate], file: String) throws(TLSError) -> [NIOSSLCertificate] {
        var converted: [NIOSSLCertificate] = []
        for certificate in certificates { converted.append(try niossl(certificate, file: file)) }
        return converted
    }

    private static func niossl(_ certificate: Certificate, file: String) throws(TLSError) -> NIOSSLCertificate {
        do {
            var serializer = DER.Serializer()
            try serializer.serialize(certificate)
            return try NIOSSLCertificate(bytes: serializer.serializedBytes, format: .der)
        } catch {
            throw .invalidCertificate("\(file) holds a certificate TLS cannot use")
        }
    }

    private static func niossl(_ key: Certificate.PrivateKey, file: String) throws(TLSError) -> NIOSSLPrivateKey {
        do {
            return try NIOSSLPrivateKey(bytes: Array(key.serializeAsPEM().pemString.utf8), format: .pem)
        } catch {
            throw .invalidKey("\(file) holds a key TLS cannot use")
        }
    }
}

extension NIOSSLCertificate {
    /// The device this (verified) client certificate identifies; see ``DeviceCertificate``.
    public var backchannelDeviceID: String? { backchannelIdentity?.device }

    /// The device and tenant this (verified) client certificate identifies; see
    /// ``DeviceCertificate/identity(of:)``.
    public var backchannelIdentity: DeviceCertificateIdentity? {
        guard let der = try? toDERBytes(), let certificate = try? Certificate(derEncoded: der) else { return nil }
        return DeviceCertificate.identity(of: certificate)
    }
}
