public import BackchannelProtocol
import Foundation
public import HTTPTypes
public import Hummingbird
import Logging

/// An error answered to a client as JSON `{code, message}` with an HTTP status.
///
/// The message never contains payloads, secrets or stack traces.
public struct HubError: Error, HTTPResponseError, Sendable, CustomStringConvertible {
    /// The HTTP status.
    public let status: HTTPResponse.Status
    /// The JSON body.
    public let body: ErrorBody
    /// Whether this 404 hides a record of another tenant (recorded in the audit log; the
    /// client sees an ordinary 404).
    private(set) var hidesOtherTenant = false

    init(
        _ status: HTTPResponse.Status, _ code: String, _ message: String, lastSeq: Int64? = nil,
        retryAfter: Double? = nil
    ) {
        self.status = status
        self.body = ErrorBody(code: code, message: message, lastSeq: lastSeq, retryAfter: retryAfter)
    }

    public var description: String { "\(status.code) \(body.code): \(body.message)" }

    /// The same error, marked as hiding another tenant's record.
    static func hidden(_ error: HubError) -> HubError {
        var marked = error
        marked.hidesOtherTenant = true
        return marked
    }

    /// 400: the request could not be understood.
    static func malformed(_ message: String) -> HubError { HubError(.badRequest, ErrorCode.malformed, message) }
    /// 401: missing or wrong credential.
    static func unauthorized(_ message: String = "missing or invalid bearer token") -> HubError {
        HubError(.unauthorized, ErrorCode.unauthorized, message)
    }
    /// 404: the device is not provisioned.
    static func unknownDevice(_ id: String) -> HubError {
        HubError(.notFound, ErrorCode.unknownDevice, "device '\(id)' is not provisioned")
    }
    /// 404: no such resource.
    static func notFound(_ message: String) -> HubError { HubError(.notFound, ErrorCode.notFound, message) }
    /// 409: stale or reused sequence number.
    static func sequenceConflict(_ message: String, lastSeq: Int64) -> HubError {
        HubError(.conflict, ErrorCode.sequenceConflict, message, lastSeq: lastSeq)
    }
    /// 409: instant delivery is impossible now: the device holds no connection, is not available,
    /// or did not acknowledge in time (the command, if one was stored, is CANCELED).
    static func deviceUnavailable(_ device: String, command: String? = nil) -> HubError {
        HubError(
            .conflict, OutcomeCode.deviceUnavailable,
            command.map { "device '\(device)' did not acknowledge instant command \($0) in time; it was canceled" }
                ?? "device '\(device)' is not connected and available for instant delivery")
    }
    /// 409: the resource exists or its state forbids the operation.
    static func conflict(_ message: String) -> HubError { HubError(.conflict, ErrorCode.conflict, message) }
    /// 413: body too large.
    static func tooLarge(limit: Int) -> HubError {
        HubError(.contentTooLarge, ErrorCode.tooLarge, "request body exceeds \(limit) bytes")
    }
    /// 429: slow down.
    static func rateLimited(retryAfter: Double) -> HubError {
        HubError(.tooManyRequests, ErrorCode.rateLimited, "too many requests", retryAfter: retryAfter)
    }
    /// 503: cannot serve now.
    static func unavailable(_ message: String, retryAfter: Double) -> HubError {
        HubError(.serviceUnavailable, ErrorCode.unavailable, message, retryAfter: retryAfter)
    }
    /// 500: internal failure; nothing from the request was stored.
    static let `internal` = HubError(
        .internalServerError, ErrorCode.internal, "internal error; nothing in this request was stored")

    public func response(from request: Request, context: some RequestContext) throws -> Response {
        var headers = HTTPFields()
        headers[.contentType] = "application/json"
        if status == .unauthorized {
            headers[.wwwAuthenticate] = "Bearer"
        }
        if let retryAfter = body.retryAfter {
            headers[.retryAfter] = String(Int(retryAfter.rounded(.up)))
        }
        let data = (try? WireJSON.encode(body)) ?? Data()
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }
}

/// Turns any error that is not already a `HubError` into a JSON 500, and logs it.
struct ErrorMiddleware<Context: RequestContext>: RouterMiddleware {
    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws
        -> Response
    {
        do {
            return try await next(request, context)
        } catch let error as HubError {
            throw error
        } catch let error as HTTPError {
            throw HubError(
                error.status, error.status == .notFound ? ErrorCode.notFound : ErrorCode.malformed,
                error.body ?? "\(error.status)")
        } catch let error as any HTTPResponseError {
            throw HubError(error.status, ErrorCode.malformed, "\(error.status)")
        } catch {
            context.logger.error("request failed", metadata: ["error": "\(String(reflecting: type(of: error)))"])
            throw HubError.internal
        }
    }
}
