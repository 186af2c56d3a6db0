public import X509

/// How a client certificate names a device, and how the hub reads the name back.
///
/// A device certificate carries the device id twice: as the subject's common name and as the
/// URI `urn:backchannel:device:<id>` in its subject alternative names. The URI wins when
/// present; a certificate from another CA without it is read by its common name.
public enum DeviceCertificate {
    /// The prefix of the device URI in a certificate's subject alternative names.
    public static let uriPrefix = "urn:backchannel:device:"

    /// The URI naming `deviceID` in a certificate.
    public static func uri(for deviceID: String) -> String { uriPrefix + deviceID }

    /// The device a client certificate identifies, or nil when it identifies none: it must allow
    /// client authentication (no extended key usage, or one with `clientAuth`) and name a valid
    /// device id.
    ///
    /// The caller has verified the certificate against the devices' CA: this reads the name only.
    public static func deviceID(of certificate: Certificate) -> String? {
        let extensions = certificate.extensions
        if let usage = try? extensions.extendedKeyUsage, !usage.contains(.clientAuth) { return nil }
        if case .some(.isCertificateAuthority) = try? extensions.basicConstraints { return nil }
        if let names = try? extensions.subjectAlternativeNames {
            let uris = names.compactMap { name -> String? in
                guard case .uniformResourceIdentifier(let uri) = name, uri.hasPrefix(uriPrefix) else { return nil }
                return String(uri.dropFirst(uriPrefix.count))
            }
            // Two different device URIs name no one device.
            if let first = uris.first {
                return uris.allSatisfy({ $0 == first }) && isValidDeviceID(first) ? first : nil
            }
        }
        let commonNames = certificate.subject.flatMap { $0 }.filter { $0.type == .RDNAttributeType.commonName }
        guard commonNames.count == 1, let name = String(commonNames[0].value), isValidDeviceID(name) else {
            return nil
        }
        return name
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
