public import BackchannelTLS
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
public import NIOSSL

/// Transport security of the hub: the certificate it serves and, for mutual TLS, the CA whose
/// client certificates identify devices.
///
/// With ``clientCAFile`` set, the hub asks every client for a certificate but does not require
/// one: a device presenting a certificate issued by that CA is identified by it, and the bearer
/// token remains the alternative for devices without one.
public struct HubTLSConfiguration: Sendable, Hashable {
    /// PEM file with the hub's certificate, followed by any intermediates.
    public var certificateChainFile: String
    /// PEM file with the hub certificate's private key.
    public var privateKeyFile: String
    /// PEM file with the CA (or CAs) that issue device client certificates; nil disables mTLS.
    public var clientCAFile: String?

    /// Creates a configuration from the PEM files of the hub's certificate and key.
    public init(certificateChainFile: String, privateKeyFile: String, clientCAFile: String? = nil) {
        self.certificateChainFile = certificateChainFile
        self.privateKeyFile = privateKeyFile
        self.clientCAFile = clientCAFile
    }
}

/// Connection-level limits of the hub's HTTP server, against slow and numerous clients.
public struct HubConnectionLimits: Sendable, Hashable {
    /// Most connections open at once (TLS or not, WebSockets included). A connection beyond it is
    /// closed as soon as it is accepted; earlier ones are unaffected. It must exceed
    /// ``HubConfiguration/maxHeldPolls``, since every held long-poll keeps a connection.
    public var maxConnections: Int = 60_000
    /// Seconds a new connection has to finish its TLS handshake and send its first complete
    /// request head (slowloris: a client trickling its header is cut off).
    public var requestHeadTimeout: Double = 20
    /// Seconds a connection may go without a complete request head, or without body bytes while
    /// a request body is coming, before it is closed: idle between requests (keep-alive), or a
    /// client trickling its next request in. A request being answered (a held long-poll, an
    /// event stream) is not idle.
    public var idleTimeout: Double = 75

    /// Creates the default limits.
    public init() {}
}

extension HubTLSConfiguration {
    /// Reads the files into a server TLS configuration (TLS 1.2 at least; with a client CA,
    /// client certificates are asked for, optional, and verified against it).
    ///
    /// - Throws: ``BackchannelTLS/TLSError`` naming the file that cannot be read or does not fit.
    public func makeServerConfiguration() throws(TLSError) -> TLSConfiguration {
        try TLSConfiguration.backchannelServer(
            certificateChainFile: certificateChainFile, privateKeyFile: privateKeyFile, clientCAFile: clientCAFile)
    }
}

/// What a device request authenticates with: its bearer token, or the device and tenant named
/// by the client certificate the connection was verified with (mTLS).
///
/// A connection with a device certificate speaks for that device only: a request on it for
/// another device is refused, whatever token it carries. The certificate authenticates the
/// device only if the device is provisioned in the certificate's tenant (a certificate naming
/// no tenant counts as one of the hub's system tenant), so a tenant that provisions another
/// tenant's device id first does not get that device's certificate holder.
public struct DeviceCredential: Sendable, Hashable, CustomStringConvertible {
    private enum Kind: Sendable, Hashable {
        case bearer(String?)
        case certificate(device: String, tenant: String?)
    }
    private let kind: Kind

    /// The `Authorization` header of the request (`Bearer <device token>`), or nil.
    public static func bearer(_ authorization: String?) -> DeviceCredential { .init(kind: .bearer(authorization)) }

    /// The device named by the connection's verified client certificate, and the tenant it names
    /// (nil: none, the hub's system tenant).
    public static func certificate(device: String, tenant: String? = nil) -> DeviceCredential {
        .init(kind: .certificate(device: device, tenant: tenant))
    }

    /// The device the client certificate names, for a certificate credential.
    public var certificateDevice: String? {
        if case .certificate(let device, _) = kind { device } else { nil }
    }

    /// What kind of credential this is, without the token.
    public var description: String {
        switch kind {
        case .bearer(let authorization): authorization == nil ? "no credential" : "bearer token"
        case .certificate(let device, _): "client certificate of \(device)"
        }
    }

    /// Checks the credential for `device`, whose session (token hash, tenant) is `session`; a
    /// certificate naming no tenant is taken as one of `systemTenant`.
    ///
    /// Every device authentication (polls of every binding, REST reads, downloads, the device
    /// WebSocket) comes here.
    func authenticate(_ device: String, session: DeviceSession, systemTenant: String) throws(HubError) {
        switch kind {
        case .certificate(let named, let tenant):
            guard named == device else {
                throw HubError.unauthorized("the client certificate is for another device")
            }
            // Says nothing of the tenant the device is provisioned in.
            guard (tenant ?? systemTenant) == session.tenant else {
                throw HubError.unauthorized("the client certificate was not issued for this device's tenant")
            }
        case .bearer(let authorization):
            guard let token = Credentials.bearer(authorization), Credentials.matches(token, hash: session.tokenHash)
            else {
                throw HubError.unauthorized()
            }
        }
    }
}

extension Hub {
    /// The credential of a device request: the device and tenant of the connection's client
    /// certificate when mTLS is on and one was presented, else the `Authorization` header.
    func deviceCredential(_ authorization: String?, on channel: any Channel) async -> DeviceCredential {
        if configuration.tls?.clientCAFile != nil,
            let identity = await ConnectionGuard.certificateIdentity(on: channel)
        {
            return .certificate(device: identity.device, tenant: identity.tenant)
        }
        return .bearer(authorization)
    }

    /// The credential of a routed device request; see ``deviceCredential(_:on:)``.
    func deviceCredential(_ request: Request, _ context: HubRequestContext) async -> DeviceCredential {
        await deviceCredential(request.headers[.authorization], on: context.channel)
    }
}
