public import BackchannelProtocol
import Foundation
public import Hummingbird
import NIOCore

/// The request context of the hub's routes.
public struct HubRequestContext: RequestContext {
    /// Hummingbird's per-request storage.
    public var coreContext: CoreRequestContextStorage
    /// The authenticated operator, set by the operator middleware.
    public var principal: OperatorPrincipal?
    /// The client's address, for the audit log.
    public var remoteAddress: String?
    /// The connection the request arrived on (for the device its client certificate names).
    let channel: any Channel

    /// Creates the context for a request.
    public init(source: ApplicationRequestContextSource) {
        self.coreContext = .init(source: source)
        self.remoteAddress = source.channel.remoteAddress?.ipAddress
        self.channel = source.channel
    }

    /// The operator, who must hold `permission` (403 otherwise).
    func require(_ permission: Permission) throws(HubError) -> OperatorPrincipal {
        guard let principal else { throw HubError.unauthorized("missing or invalid operator token") }
        guard principal.may(permission) else {
            throw HubError(
                .forbidden, ErrorCode.forbidden,
                "role '\(principal.role.rawValue)' may not do this (\(permission.rawValue))")
        }
        return principal
    }

    /// The `:id` path segment, percent-decoded (device ids may contain `:`, which clients
    /// may send as `%3A`).
    func pathID(_ name: String = "id") throws -> String {
        let raw = try parameters.require(name)
        return raw.removingPercentEncoding ?? raw
    }
}
