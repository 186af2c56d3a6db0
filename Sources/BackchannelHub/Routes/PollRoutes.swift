import BackchannelProtocol
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import Synchronization

extension Hub {
    /// `POST /v1/poll`: the device endpoint.
    func addPollRoutes(to router: Router<HubRequestContext>) {
        router.post("/v1/poll") { request, _ -> Response in
            let body: Data
            do {
                if let type = request.headers[.contentType], !type.lowercased().hasPrefix("application/json") {
                    throw HubError(
                        .unsupportedMediaType, ErrorCode.unsupportedMediaType, "Content-Type must be application/json"
                    )
                }
                body = try await request.collectBody(limit: self.configuration.maxBodyBytes)
            } catch {
                self.metrics.rejectedPolls.add(1, ordering: .relaxed)
                throw error
            }
            let response = try await self.poll(body: body, authorization: request.headers[.authorization])
            return Response(
                status: .ok, headers: [.contentType: "application/json"],
                body: .init(byteBuffer: ByteBuffer(bytes: response))
            )
        }
    }
}
