public import X509

/// The identity a verified device certificate carries: the device, and the tenant it was
/// issued for.
public struct DeviceCertificateIdentity: Sendable, Hashable {
    /// The device id.
    public var device: String
    /// The tenant named by the certificate's `urn:backchannel:tenant:<t>` URI; nil when it names
    /// none (the hub takes such a certificate as one of its system tenant).
    public var tenant: String?

    /// Pairs a device id with the tenant of its certificate.
    public init(device: String, tenant: String?) {
        self.device = device
        self.tenant = tenant
    }
}

/// How a client certificate names a device and its tenant, and how the hub reads them back.
///
/// A device certificate carries the device id twice: as the subject's common name and as the
/// URI `urn:backchannel:device:<id>` in its subject alternative names. The URI wins when
/// present; a certificate from another CA without it is read by its common name.
///
/// It may also carry the URI `urn:backchannel:tenant:<t>`: the tenant the device was issued
/// for. The hub accepts the certificate only for a device provisioned in that tenant (a
/// certificate without it counts as one of the hub's system tenant), so an admin of another
/// tenant who provisions the same device id first does not get the device.
public enum DeviceCertificate {
    /// The prefix of the device URI in a certificate's subject alternative names.
    public static let uriPrefix = "urn:backchannel:device:"
    /// The prefix of the tenant URI in a certificate's subject alternative names.
    public static let tenantURIPrefix = "urn:backchannel:tenant:"

    /// The URI naming `deviceID` in a certificate.
    public static func uri(for deviceID: String) -> String { uriPrefix + deviceID }

    /// The URI naming `tenant` in a certificate.
    public static func tenantURI(for tenant: String) -> String { tenantURIPrefix + tenant }

    /// The device a client certificate identifies, or nil when it identifies none; see
    /// ``identity(of:)``.
    public static func deviceID(of certificate: Certificate) -> String? {
        identity(of: certificate)?.device
    }

    /// The device and tenant a client certificate identifies, or nil when it identifies none: it
    /// must allow client authentication (no extended key usage, or one with `clientAuth`), name
    /// a valid device id, and name at most one tenant, a valid one.
    ///
    /// The caller has verified the certificate against the devices' CA: this reads the names only.
    public static func identity(of certificate: Certificate) -> DeviceCertificateIdentity? {
        let extensions = certificate.extensions
        if let usage = try? extensions.extendedKeyUsage, !usage.contains(.clientAuth) { return nil }
        if case .some(.isCertificateAuthority) = try? extensions.basicConstraints { return nil }
        var deviceURIs: [String] = []
        var tenantURIs: [String] = []
        if let names = try? extensions.subjectAlternativeNames {
            for name in names {
                guard case .uniformResourceIdentifier(let uri) = name else { continue }
                if uri.hasPrefix(uriPrefix) {
                    deviceURIs.append(String(uri.dropFirst(uriPrefix.count)))
                } else if uri.hasPrefix(tenantURIPrefix) {
                    tenantURIs.append(String(uri.dropFirst(tenantURIPrefix.count)))
                }
            }
        }
        // Two different tenant URIs name no one tenant: such a certificate identifies no one.
        let tenant = tenantURIs.first
        if let tenant, !(tenantURIs.allSatisfy({ $0 == tenant }) && isValidTenant(tenant)) { return nil }
        // Two different device URIs name no one device.
        if let first = deviceURIs.first {
            guard deviceURIs.allSatisfy({ $0 == first }), isValidDeviceID(first) else { return nil }
            return DeviceCertificateIdentity(device: first, tenant: tenant)
        }
        let commonNames = certificate.subject.flatMap { $0 }.filter { $0.type == .RDNAttributeType.commonName }
        guard commonNames.count == 1, let name = String(commonNames[0].value), isValidDeviceID(name) else {
            return nil
        }
        return DeviceCertificateIdentity(device: name, tenant: tenant)
    }

    /// Whether `tenant` is a tenant name: 1-64 characters of `A-Z a-z 0-9 . _ : -` (what the hub
    /// accepts as a device's tenant).
    public static func isValidTenant(_ tenant: String) -> Bool {
        tenant.utf8.count <= 64 && isValidDeviceID(tenant)
    }

    /// Whether `id` is a device id: 1-128 characters of `A-Z a-z 0-9 . _ : -` (the protocol's
    /// identifier rule).
    public static func isValidDeviceID(_ id: String) -> Bool {
        (1...128).contains(id.utf8.count)
            && id.utf8.allSatisfy { byte in
                (byte >= 0x30 && byte <= 0x39) || (byte >= 0x41 && byte <= 0x5A) || (byte >= 0x61 && byte <= 0x7A)
                    || byte == 0x2E || byte == 0x5F || byte == 0x3A || byte == 0x2D
            }
    }
}
