import Foundation
public import Hummingbird

/// The request context of the hub's routes.
public struct HubRequestContext: RequestContext {
    /// Hummingbird's per-request storage.
    public var coreContext: CoreRequestContextStorage

    /// Creates the context for a request.
    public init(source: ApplicationRequestContextSource) {
        self.coreContext = .init(source: source)
    }

    /// The `:id` path segment, percent-decoded (device ids may contain `:`, which clients
    /// may send as `%3A`).
    func pathID(_ name: String = "id") throws -> String {
        let raw = try parameters.require(name)
        return raw.removingPercentEncoding ?? raw
    }
}
