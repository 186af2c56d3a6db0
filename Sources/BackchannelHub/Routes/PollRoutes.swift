import BackchannelProtocol
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import Synchronization

extension Hub {
    /// `POST /v1/poll`: the device endpoint.
    func addPollRoutes(to router: Router<HubRequestContext>) {
        router.get("/v1/poll") { request, _ -> Response in
            guard request.uri.queryParameters["wsdl"] != nil else {
                throw HubError(.methodNotAllowed, ErrorCode.malformed, "POST a poll here, or GET ?wsdl for the WSDL")
            }
            return self.wsdl(for: request)
        }
        router.get("/v1/backchannel.wsdl") { request, _ -> Response in self.wsdl(for: request) }
        router.get("/v1/ws") { _, _ -> Response in
            // Reached only when the WebSocket upgrade was refused or not asked for.
            throw HubError(
                .upgradeRequired, ErrorCode.unauthorized,
                "open a WebSocket here with X-Backchannel-Device: <id> and the device's bearer token or client certificate"
            )
        }
        router.post("/v1/poll") { request, context -> Response in
            let type = request.headers[.contentType]?.lowercased()
            if let type, type.hasPrefix("application/soap+xml") || type.hasPrefix("text/xml") {
                let credential = try await self.deviceCredential(request, context)
                return await Hub.$contactAddress.withValue(context.remoteAddress) {
                    await self.soapPoll(request, credential: credential)
                }
            }
            let body: Data
            do {
                if let type, !type.hasPrefix("application/json") {
                    throw HubError(
                        .unsupportedMediaType, ErrorCode.unsupportedMediaType,
                        "Content-Type must be application/json, or application/soap+xml for the SOAP 1.2 binding"
                    )
                }
                body = try await request.collectBody(limit: self.configuration.maxBodyBytes)
            } catch {
                self.metrics.rejectedPolls.add(1, ordering: .relaxed)
                throw error
            }
            let credential = try await self.deviceCredential(request, context)
            let response = try await Hub.$contactAddress.withValue(context.remoteAddress) {
                try await self.poll(body: body, credential: credential)
            }
            return Response(
                status: .ok, headers: [.contentType: "application/json"],
                body: .init(byteBuffer: ByteBuffer(bytes: response))
            )
        }
    }
}
