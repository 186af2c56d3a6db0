import BackchannelProtocol
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import Synchronization

extension Request {
    /// Collects the body, answering 413 beyond `limit` bytes.
    func collectBody(limit: Int) async throws -> Data {
        if let length = headers[.contentLength].flatMap(Int.init), length > limit {
            throw HubError.tooLarge(limit: limit)
        }
        do {
            let buffer = try await body.collect(upTo: limit)
            return Data(buffer.readableBytesView)
        } catch is NIOTooManyBytesError {
            throw HubError.tooLarge(limit: limit)
        }
    }

    /// Decodes a JSON body, answering 400 with the offending field.
    func decodeJSON<T: Decodable>(_ type: T.Type, limit: Int) async throws -> T {
        let data = try await collectBody(limit: limit)
        do {
            return try WireJSON.decode(type, from: data)
        } catch {
            throw HubError.malformed(WireJSON.describe(error))
        }
    }

    /// A query parameter as an integer in a range.
    func intQuery(_ name: String, default value: Int, range: ClosedRange<Int>) throws -> Int {
        guard let text = uri.queryParameters.get(name) else { return value }
        guard let number = Int(text), range.contains(number) else {
            throw HubError.malformed("\(name): must be an integer from \(range.lowerBound) to \(range.upperBound)")
        }
        return number
    }

    /// A query parameter as a number of seconds in a range.
    func secondsQuery(_ name: String, range: ClosedRange<Double>) throws -> Double? {
        guard let text = uri.queryParameters.get(name) else { return nil }
        guard let number = Double(text), range.contains(number) else {
            throw HubError.malformed(
                "\(name): must be a number of seconds from \(range.lowerBound) to \(range.upperBound)")
        }
        return number
    }

    /// An optional string query parameter.
    func query(_ name: String) -> String? {
        uri.queryParameters.get(name).flatMap { $0.isEmpty ? nil : $0 }
    }

    /// An RFC 3339 time from the query, or nil when absent.
    func timeQuery(_ name: String) throws(HubError) -> Timestamp? {
        guard let text = query(name) else { return nil }
        guard let time = Timestamp(rfc3339: text) else {
            throw HubError.malformed("\(name): not an RFC 3339 time with a time zone")
        }
        return time
    }

    /// A boolean from the query (`true`/`false`), false when absent.
    func boolQuery(_ name: String) throws(HubError) -> Bool {
        guard let text = query(name) else { return false }
        switch text {
        case "true", "1": return true
        case "false", "0": return false
        default: throw HubError.malformed("\(name): must be true or false")
        }
    }
}

/// A JSON response.
func jsonResponse(_ value: some Encodable, status: HTTPResponse.Status = .ok) throws -> Response {
    let data = try WireJSON.encode(value)
    return Response(
        status: status, headers: [.contentType: "application/json"],
        body: .init(byteBuffer: ByteBuffer(bytes: data))
    )
}

/// Guards the operator API: resolves the bearer token to an operator (401 otherwise), applies
/// the per-operator rate limit (429 with `Retry-After`), and writes the audit log: every request
/// that changes something, every read of metering data, and every refusal.
///
/// Routes then check the role (`context.require`) and the tenant (`Hub.checkDevice` …).
struct OperatorGate: RouterMiddleware {
    let hub: Hub

    func handle(
        _ request: Request, context: HubRequestContext,
        next: (Request, HubRequestContext) async throws -> Response
    ) async throws -> Response {
        // The route's pattern is the action; the concrete path (cut to 256 bytes, so a huge URL
        // cannot bloat the log) is the target.
        var path = request.uri.path
        while path.count > 1 && path.hasSuffix("/") { path.removeLast() }
        let action = "\(request.method.rawValue) \(context.endpointPath ?? String(path.prefix(256)))"
        let target = String(path.utf8.prefix(256)) ?? String(path.prefix(64))
        let remote = context.remoteAddress
        let systemTenant = hub.configuration.systemTenant
        func entry(_ actor: String, _ tenant: String?, _ outcome: String, _ status: Int) -> AuditEntry {
            AuditEntry(
                seq: 0, at: hub.clock.now(), actor: actor, tenant: tenant ?? systemTenant, action: action,
                target: target, outcome: outcome, status: status, remote: remote)
        }
        guard let token = Credentials.bearer(request.headers[.authorization]),
            let who = try await hub.operators.principal(token: token)
        else {
            hub.metrics.operatorRejections.add(1, ordering: .relaxed)
            hub.audit.enqueue(entry("anonymous", nil, ErrorCode.unauthorized, 401))
            throw HubError.unauthorized("missing or invalid operator token")
        }
        if let wait = hub.operatorLimiter.take(who.name, now: hub.clock.now()) {
            hub.audit.enqueue(entry(who.actor, who.tenant, ErrorCode.rateLimited, 429))
            throw HubError.rateLimited(retryAfter: wait)
        }
        var context = context
        context.principal = who
        let changes = request.method != .get && request.method != .head
        // Metering data, and live streams (which carry it to roles that may read it).
        let readsData = path.hasSuffix("/uplink") || path.hasSuffix("/export") || path.hasSuffix("/events")
        do {
            let response = try await next(request, context)
            if changes {
                await hub.audit.record(entry(who.actor, who.tenant, "ok", Int(response.status.code)))
            } else if readsData {
                hub.audit.enqueue(entry(who.actor, who.tenant, "ok", Int(response.status.code)))
            }
            return response
        } catch let error as HubError {
            if error.status == .forbidden || error.hidesOtherTenant {
                hub.metrics.operatorRejections.add(1, ordering: .relaxed)
                let outcome = error.hidesOtherTenant ? "other_tenant" : ErrorCode.forbidden
                hub.audit.enqueue(entry(who.actor, who.tenant, outcome, Int(error.status.code)))
            } else if changes {
                await hub.audit.record(entry(who.actor, who.tenant, error.body.code, Int(error.status.code)))
            }
            throw error
        }
    }
}
