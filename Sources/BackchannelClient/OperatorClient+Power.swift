import AsyncHTTPClient
import BackchannelProtocol
public import Foundation
public import NIOHTTP1

extension OperatorClient {
    /// Calls a power-application route (`/v1/power/…`) and returns the body as the hub sent it:
    /// JSON, CSV or XML.
    ///
    /// - Parameters:
    ///   - path: the path after `/v1/power`, such as `/outages`.
    ///   - query: query parameters; nil values are left out.
    ///   - body: a JSON body for PUT and POST.
    /// - Throws: ``OperatorClientError`` with the hub's error for a non-2xx answer.
    public func power(
        _ method: HTTPMethod, _ path: String, query: [String: String?] = [:], body: Data? = nil, timeout: Double = 60
    ) async throws -> Data {
        let (status, data) = try await raw(
            method, url("/v1/power" + path, query: query), body: body, timeout: timeout, absolute: true)
        guard (200..<300).contains(status) else {
            throw OperatorClientError(status: status, body: try? WireJSON.decode(ErrorBody.self, from: data))
        }
        return data
    }
}
