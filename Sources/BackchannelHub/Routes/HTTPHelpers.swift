import BackchannelProtocol
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore

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
}

/// A JSON response.
func jsonResponse(_ value: some Encodable, status: HTTPResponse.Status = .ok) throws -> Response {
    let data = try WireJSON.encode(value)
    return Response(
        status: status, headers: [.contentType: "application/json"],
        body: .init(byteBuffer: ByteBuffer(bytes: data))
    )
}

/// Requires the operator bearer token on every route it guards.
struct OperatorAuthMiddleware<Context: RequestContext>: RouterMiddleware {
    let tokenHash: String?

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws
        -> Response
    {
        guard let tokenHash else {
            throw HubError(
                .forbidden, ErrorCode.forbidden, "the operator API is disabled: no operator token is configured")
        }
        guard let token = Credentials.bearer(request.headers[.authorization]),
            Credentials.matches(token, hash: tokenHash)
        else {
            throw HubError.unauthorized("missing or invalid operator token")
        }
        return try await next(request, context)
    }
}
