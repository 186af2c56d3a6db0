public import AsyncHTTPClient
public import BackchannelProtocol
public import Foundation
import NIOCore
import NIOHTTP1
public import NIOSSL

/// Sends physical requests to a hub. One client can serve many agents (a simulator fleet).
public final class HubClient: Sendable {
    /// The HTTP client.
    public let http: HTTPClient
    private let ownsClient: Bool

    /// A client shared by every agent that is not given one. It lives as long as the process.
    public static let shared = HubClient(connections: 64)

    /// Creates a client with its own connection pool, sized for `connections` concurrent polls.
    ///
    /// A refused or failed connection fails the poll at once (no silent connect retries), so
    /// the agent's own backoff governs how often an unreachable hub is tried. `tls` is the
    /// default for requests that bring none (an agent's ``AgentConfiguration/tls`` wins).
    public init(connections: Int = 64, tls: TLSConfiguration? = nil) {
        var configuration = HTTPClient.Configuration()
        configuration.tlsConfiguration = tls
        configuration.connectionPool.concurrentHTTP1ConnectionsPerHostSoftLimit = max(8, connections)
        configuration.connectionPool.retryConnectionEstablishment = false
        configuration.timeout.connect = .seconds(10)
        configuration.decompression = .disabled
        self.http = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
        self.ownsClient = true
    }

    /// Uses an existing HTTP client; the caller shuts it down.
    public init(http: HTTPClient) {
        self.http = http
        self.ownsClient = false
    }

    /// Shuts the client down if it owns its connection pool.
    public func shutdown() async throws {
        if ownsClient { try await http.shutdown() }
    }

    /// The outcome of one HTTP exchange with the hub.
    public enum Reply: Sendable {
        /// 200 with a response body.
        case ok(PollResponse)
        /// Any other status, with the error body when the hub sent one.
        case failure(status: Int, body: ErrorBody?, retryAfter: Double?)
    }

    /// Posts a poll body to `<hub>/v1/poll`, in the given binding.
    ///
    /// - Parameters:
    ///   - token: the device's bearer token; empty to send none (the client certificate of
    ///     `tls` identifies the device).
    ///   - tls: the TLS settings for an `https` hub (trusted CA, client certificate); nil uses
    ///     the client's own.
    public func poll(
        hubURL: String, token: String, body: Data, timeout: Double, encoding: WireEncoding = .json,
        tls: TLSConfiguration? = nil
    ) async throws -> Reply {
        var request = HTTPClientRequest(url: hubURL.trimmingSuffix("/") + "/v1/poll")
        request.method = .POST
        request.tlsConfiguration = tls
        request.headers.add(name: "Content-Type", value: encoding == .soap ? SOAP.contentType : "application/json")
        if !token.isEmpty { request.headers.add(name: "Authorization", value: "Bearer \(token)") }
        request.body = .bytes(ByteBuffer(bytes: body))
        let response = try await http.execute(request, timeout: .milliseconds(Int64(timeout * 1000)))
        let buffer = try await response.body.collect(upTo: 16 << 20)
        let data = Data(buffer.readableBytesView)
        let retryAfter = response.headers.first(name: "Retry-After").flatMap(Double.init)
        let status = Int(response.status.code)
        let isSOAP =
            response.headers.first(name: "Content-Type")?.lowercased().hasPrefix("application/soap+xml") == true
        if isSOAP {
            if status == 200 {
                do {
                    return .ok(try SOAPCodec.decodeResponse(data))
                } catch {
                    return .failure(status: status, body: error.errorBody, retryAfter: retryAfter)
                }
            }
            return .failure(
                status: status, body: SOAPFault.parse(data, status: status)?.errorBody, retryAfter: retryAfter)
        }
        if status == 200 {
            return .ok(try WireJSON.decode(PollResponse.self, from: data))
        }
        return .failure(status: status, body: try? WireJSON.decode(ErrorBody.self, from: data), retryAfter: retryAfter)
    }
}

extension String {
    func trimmingSuffix(_ suffix: String) -> String {
        var value = self
        while value.hasSuffix(suffix) { value.removeLast(suffix.count) }
        return value
    }
}
