import BackchannelTLS
public import Foundation
public import NIOSSL

/// Transport security of a simulated fleet against an `https` hub: the CA to trust, and the
/// devices' client certificates (mTLS). A device with a client certificate sends no bearer
/// token and is not provisioned by the simulator: provision it beforehand.
public struct FleetTLS: Sendable {
    /// PEM file of the CA the hub's certificate must chain to; nil: the system's trust roots.
    public var caFile: String?
    /// A folder of client certificates named by device: `<id>.crt` and `<id>.key` (as written
    /// by `backchannel certs device`). Devices without files there use bearer tokens.
    public var certificateDirectory: URL?
    /// One client certificate and key for every device (a fleet of one, usually).
    public var certificateFile: String?
    /// The key of ``certificateFile``.
    public var keyFile: String?

    /// No TLS settings: plain HTTP, or the system's trust roots.
    public init() {}

    /// The client certificate and key files of `device`, if it has them.
    public func clientCertificate(for device: String) -> (certificate: String, key: String)? {
        if let certificateFile, let keyFile { return (certificateFile, keyFile) }
        guard let directory = certificateDirectory else { return nil }
        let certificate = directory.appendingPathComponent("\(device).crt").path
        let key = directory.appendingPathComponent("\(device).key").path
        guard FileManager.default.fileExists(atPath: certificate), FileManager.default.fileExists(atPath: key) else {
            return nil
        }
        return (certificate, key)
    }

    /// The TLS configuration of `device`: the CA, and its client certificate if it has one.
    /// Nil when nothing is configured for it.
    public func configuration(for device: String) throws -> TLSConfiguration? {
        let client = clientCertificate(for: device)
        guard caFile != nil || client != nil else { return nil }
        return try TLSConfiguration.backchannelClient(
            caFile: caFile, certificateFile: client?.certificate, keyFile: client?.key)
    }

    /// The TLS configuration of requests made for no device (provisioning): the CA only.
    public func serverTrust() throws -> TLSConfiguration? {
        guard let caFile else { return nil }
        return try TLSConfiguration.backchannelClient(caFile: caFile)
    }
}
