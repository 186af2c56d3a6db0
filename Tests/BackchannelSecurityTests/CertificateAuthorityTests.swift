import BackchannelTLS
import Crypto
import Foundation
import NIOSSL
import SwiftASN1
import Testing
import X509

/// The private CA: what it issues verifies against it (and only it), names the right things,
/// and survives a round trip through PEM files.
@Suite struct CertificateAuthorityTests {
    static func temporaryDirectory() -> CertificateDirectory {
        CertificateDirectory(
            FileManager.default.temporaryDirectory.appendingPathComponent("bc-ca-\(UUID().uuidString)"))
    }

    /// Verifies `leaf` against `root` as RFC 5280 does, plus the server identity when given.
    static func verifies(
        _ leaf: Certificate, against root: Certificate, hostname: String? = nil, ip: String? = nil
    ) async -> Bool {
        var verifier = Verifier(rootCertificates: CertificateStore([root])) {
            RFC5280Policy(validationTime: Date())
            if hostname != nil || ip != nil { ServerIdentityPolicy(serverHostname: hostname, serverIP: ip) }
        }
        if case .validCertificate = await verifier.validate(leaf: leaf, intermediates: CertificateStore()) {
            return true
        }
        return false
    }

    @Test func theCAIsACertificateAuthorityThatSignsItself() async throws {
        let ca = try CertificateAuthority.create(name: "Test CA")
        let extensions = ca.certificate.extensions
        #expect(try extensions.basicConstraints == .isCertificateAuthority(maxPathLength: 0))
        #expect(try extensions.keyUsage?.keyCertSign == true)
        #expect(ca.certificate.subject == ca.certificate.issuer)
        #expect(await Self.verifies(ca.certificate, against: ca.certificate))
        #expect(ca.summary.subject.contains("CN=Test CA"))
    }

    @Test func theHubCertificateVerifiesForItsNamesOnly() async throws {
        let ca = try CertificateAuthority.create()
        let hub = try ca.issueServerCertificate(
            dnsNames: ["localhost", "hub.example.net"], ipAddresses: ["127.0.0.1", "::1"])
        #expect(await Self.verifies(hub.certificate, against: ca.certificate, hostname: "hub.example.net"))
        #expect(await Self.verifies(hub.certificate, against: ca.certificate, hostname: "localhost"))
        #expect(await Self.verifies(hub.certificate, against: ca.certificate, ip: "127.0.0.1"))
        #expect(await Self.verifies(hub.certificate, against: ca.certificate, ip: "::1"))
        #expect(!(await Self.verifies(hub.certificate, against: ca.certificate, hostname: "other.example.net")))
        #expect(!(await Self.verifies(hub.certificate, against: ca.certificate, ip: "10.0.0.1")))
        #expect(try hub.certificate.extensions.extendedKeyUsage?.contains(.serverAuth) == true)
        #expect(try hub.certificate.extensions.basicConstraints == .notCertificateAuthority)
        #expect(hub.summary.names == ["localhost", "hub.example.net", "127.0.0.1", "::1"])
        // Not a device certificate.
        #expect(DeviceCertificate.deviceID(of: hub.certificate) == nil)
    }

    @Test func aDeviceCertificateNamesItsDeviceAndVerifiesOnlyAgainstItsCA() async throws {
        let ca = try CertificateAuthority.create()
        let device = try ca.issueDeviceCertificate(deviceID: "meter:001")
        #expect(await Self.verifies(device.certificate, against: ca.certificate))
        #expect(DeviceCertificate.deviceID(of: device.certificate) == "meter:001")
        #expect(try device.certificate.extensions.extendedKeyUsage?.contains(.clientAuth) == true)
        #expect(device.summary.names == ["urn:backchannel:device:meter:001"])
        #expect(device.summary.subject.contains("CN=meter:001"))

        let stranger = try CertificateAuthority.create(name: "Another CA")
        #expect(!(await Self.verifies(device.certificate, against: stranger.certificate)))
        // The CA certificate itself names no device.
        #expect(DeviceCertificate.deviceID(of: ca.certificate) == nil)
        // Nor does the identity survive the NIOSSL round trip wrongly.
        var serializer = DER.Serializer()
        try serializer.serialize(device.certificate)
        #expect(
            try NIOSSLCertificate(bytes: serializer.serializedBytes, format: .der).backchannelDeviceID == "meter:001")
    }

    @Test func identityFallsBackToTheCommonNameAndRefusesAmbiguity() throws {
        let key = Certificate.PrivateKey(P256.Signing.PrivateKey())
        func certificate(commonName: String, names: [GeneralName], usage: ExtendedKeyUsage.Usage = .clientAuth) throws
            -> Certificate
        {
            let subject = try DistinguishedName { CommonName(commonName) }
            return try Certificate(
                version: .v3, serialNumber: .init(), publicKey: key.publicKey, notValidBefore: Date(),
                notValidAfter: Date().addingTimeInterval(3600), issuer: subject, subject: subject,
                signatureAlgorithm: .ecdsaWithSHA256,
                extensions: try Certificate.Extensions {
                    try ExtendedKeyUsage([usage])
                    if !names.isEmpty { SubjectAlternativeNames(names) }
                }, issuerPrivateKey: key)
        }
        // Another CA's certificate without the device URI: its common name.
        #expect(DeviceCertificate.deviceID(of: try certificate(commonName: "meter-9", names: [])) == "meter-9")
        // The URI wins over the common name.
        let both = try certificate(
            commonName: "meter-9", names: [.uniformResourceIdentifier("urn:backchannel:device:m-1")])
        #expect(DeviceCertificate.deviceID(of: both) == "m-1")
        // Two devices in one certificate name none.
        let two = try certificate(
            commonName: "x",
            names: [
                .uniformResourceIdentifier("urn:backchannel:device:a"),
                .uniformResourceIdentifier("urn:backchannel:device:b"),
            ])
        #expect(DeviceCertificate.deviceID(of: two) == nil)
        // Not for client authentication, or not a device id: no one.
        #expect(
            DeviceCertificate.deviceID(of: try certificate(commonName: "m-1", names: [], usage: .serverAuth)) == nil)
        #expect(DeviceCertificate.deviceID(of: try certificate(commonName: "not a device", names: [])) == nil)
    }

    @Test func aDeviceCertificateNamesTheTenantItWasIssuedFor() async throws {
        let ca = try CertificateAuthority.create()
        let device = try ca.issueDeviceCertificate(deviceID: "meter-42", tenant: "acme")
        #expect(await Self.verifies(device.certificate, against: ca.certificate))
        #expect(
            DeviceCertificate.identity(of: device.certificate)
                == DeviceCertificateIdentity(device: "meter-42", tenant: "acme"))
        #expect(device.summary.names == ["urn:backchannel:device:meter-42", "urn:backchannel:tenant:acme"])
        var serializer = DER.Serializer()
        try serializer.serialize(device.certificate)
        #expect(
            try NIOSSLCertificate(bytes: serializer.serializedBytes, format: .der).backchannelIdentity
                == DeviceCertificateIdentity(device: "meter-42", tenant: "acme"))
        // Without a tenant: none named (the hub takes it as its system tenant's).
        let plain = try ca.issueDeviceCertificate(deviceID: "meter-42")
        #expect(
            DeviceCertificate.identity(of: plain.certificate)
                == DeviceCertificateIdentity(device: "meter-42", tenant: nil))
        #expect(throws: TLSError.self) { try ca.issueDeviceCertificate(deviceID: "m1", tenant: "bad tenant") }
        #expect(throws: TLSError.self) { try ca.issueDeviceCertificate(deviceID: "m1", tenant: "") }
        #expect(
            throws: TLSError.self,
            performing: { try ca.issueDeviceCertificate(deviceID: "m1", tenant: String(repeating: "t", count: 65)) })
    }

    @Test func aCertificateNamingTwoTenantsIdentifiesNoOne() throws {
        let key = Certificate.PrivateKey(P256.Signing.PrivateKey())
        let subject = try DistinguishedName { CommonName("m-1") }
        func certificate(_ names: [GeneralName]) throws -> Certificate {
            try Certificate(
                version: .v3, serialNumber: .init(), publicKey: key.publicKey, notValidBefore: Date(),
                notValidAfter: Date().addingTimeInterval(3600), issuer: subject, subject: subject,
                signatureAlgorithm: .ecdsaWithSHA256,
                extensions: try Certificate.Extensions {
                    try ExtendedKeyUsage([.clientAuth])
                    SubjectAlternativeNames(names)
                }, issuerPrivateKey: key)
        }
        let two = try certificate([
            .uniformResourceIdentifier("urn:backchannel:device:m-1"),
            .uniformResourceIdentifier("urn:backchannel:tenant:acme"),
            .uniformResourceIdentifier("urn:backchannel:tenant:evil"),
        ])
        #expect(DeviceCertificate.identity(of: two) == nil)
        #expect(DeviceCertificate.deviceID(of: two) == nil)
        let invalid = try certificate([.uniformResourceIdentifier("urn:backchannel:tenant:not valid")])
        #expect(DeviceCertificate.identity(of: invalid) == nil)
        // The tenant URI with the common name of another CA's certificate.
        let byName = try certificate([.uniformResourceIdentifier("urn:backchannel:tenant:acme")])
        #expect(DeviceCertificate.identity(of: byName) == DeviceCertificateIdentity(device: "m-1", tenant: "acme"))
    }

    @Test func namesThatCannotGoIntoACertificateAreRefused() throws {
        let ca = try CertificateAuthority.create()
        #expect(throws: TLSError.self) { try ca.issueDeviceCertificate(deviceID: "bad id") }
        #expect(throws: TLSError.self) { try ca.issueDeviceCertificate(deviceID: "") }
        #expect(throws: TLSError.self) { try ca.issueServerCertificate(dnsNames: ["bad_name!"]) }
        #expect(throws: TLSError.self) { try ca.issueServerCertificate(dnsNames: [], ipAddresses: ["300.1.1.1"]) }
        #expect(throws: TLSError.self) { try ca.issueServerCertificate(dnsNames: [], ipAddresses: []) }
    }

    @Test func certificatesDoNotOutliveTheirCA() throws {
        let now = Date()
        let ca = try CertificateAuthority.create(validity: 86400, now: now)
        let device = try ca.issueDeviceCertificate(deviceID: "m1", validity: 365 * 86400, now: now)
        #expect(device.certificate.notValidAfter <= ca.certificate.notValidAfter)
        #expect(device.certificate.notValidBefore < now, "back-dated for clocks running behind")
    }

    @Test func filesRoundTripKeysArePrivateAndNothingIsOverwrittenUnlessAsked() async throws {
        let directory = Self.temporaryDirectory()
        let ca = try CertificateAuthority.create()
        try PEMFiles.write(ca.certificate, to: directory.caCertificate)
        try PEMFiles.write(ca.privateKey, to: directory.caKey)
        let loaded = try directory.loadAuthority()
        #expect(loaded.certificate == ca.certificate)

        let device = try loaded.issueDeviceCertificate(deviceID: "m1")
        try PEMFiles.write(device, certificate: directory.deviceCertificate("m1"), key: directory.deviceKey("m1"))
        let attributes = try FileManager.default.attributesOfItem(atPath: directory.deviceKey("m1").path)
        #expect((attributes[.posixPermissions] as? NSNumber)?.intValue == 0o600)
        let keyAttributes = try FileManager.default.attributesOfItem(atPath: directory.caKey.path)
        #expect((keyAttributes[.posixPermissions] as? NSNumber)?.intValue == 0o600)
        #expect(try PEMFiles.certificates(at: directory.deviceCertificate("m1").path) == [device.certificate])
        #expect(await Self.verifies(device.certificate, against: loaded.certificate))

        let again = try loaded.issueDeviceCertificate(deviceID: "m1")
        #expect(throws: TLSError.self) {
            try PEMFiles.write(again, certificate: directory.deviceCertificate("m1"), key: directory.deviceKey("m1"))
        }
        #expect(try PEMFiles.certificates(at: directory.deviceCertificate("m1").path) == [device.certificate])
        try PEMFiles.write(
            again, certificate: directory.deviceCertificate("m1"), key: directory.deviceKey("m1"), overwrite: true)
        #expect(try PEMFiles.certificates(at: directory.deviceCertificate("m1").path) == [again.certificate])
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: directory.devices.path).filter {
            $0.hasSuffix(".tmp")
        }
        #expect(leftovers.isEmpty)
    }

    @Test func tlsConfigurationsRefuseAKeyThatIsNotTheCertificates() throws {
        let directory = Self.temporaryDirectory()
        let ca = try CertificateAuthority.create()
        try PEMFiles.write(ca.certificate, to: directory.caCertificate)
        let hub = try ca.issueServerCertificate()
        let other = try ca.issueServerCertificate()
        try PEMFiles.write(hub.certificate, to: directory.hubCertificate)
        try PEMFiles.write(other.privateKey, to: directory.hubKey)
        #expect(throws: TLSError.self) {
            try TLSConfiguration.backchannelServer(
                certificateChainFile: directory.hubCertificate.path, privateKeyFile: directory.hubKey.path)
        }
        #expect(throws: TLSError.self) {
            try TLSConfiguration.backchannelClient(certificateFile: directory.hubCertificate.path)
        }
        #expect(throws: TLSError.self) {
            try TLSConfiguration.backchannelClient(caFile: directory.url.appendingPathComponent("missing.crt").path)
        }
        try PEMFiles.write(hub.privateKey, to: directory.hubKey, overwrite: true)
        let server = try TLSConfiguration.backchannelServer(
            certificateChainFile: directory.hubCertificate.path, privateKeyFile: directory.hubKey.path,
            clientCAFile: directory.caCertificate.path)
        #expect(server.certificateVerification == .optionalVerification, "client certificates asked for, not required")
        #expect(server.minimumTLSVersion == .tlsv12)
    }
}
