import BackchannelStore
public import Foundation
import HTTPTypes
public import Hummingbird
import HummingbirdWebSocket
import Logging
import NIOCore
public import ServiceLifecycle

/// Builds the hub's HTTP application: device endpoint, operator API, OpenAPI document,
/// metrics, health, plus the sweeper and last-seen flusher services.
///
/// Both `backchannel hub` and the tests call this.
public func buildApplication(
    hub: Hub,
    onServerRunning: @escaping @Sendable (any Channel) async -> Void = { _ in }
) -> some ApplicationProtocol {
    let router = buildRouter(hub: hub)
    var app = Application(
        router: router,
        server: .http1WebSocketUpgrade(
            configuration: .init(ws: .init(maxFrameSize: hub.configuration.maxBodyBytes))
        ) { request, _, _ in
            await hub.shouldUpgrade(request)
        },
        configuration: .init(
            address: .hostname(hub.configuration.host, port: hub.configuration.port),
            serverName: "backchannel",
            backlog: hub.configuration.listenBacklog
        ),
        onServerRunning: onServerRunning,
        logger: hub.logger
    )
    app.addServices(
        DeadlineSweeper(hub: hub), LastSeenFlusher(hub: hub), PresenceMonitor(hub: hub), AlarmTicker(hub: hub),
        CampaignReconciler(hub: hub),
        ShutdownSignaller(hub: hub))
    return app
}

/// The hub's router, for tests that drive it without a socket.
public func buildRouter(hub: Hub) -> Router<HubRequestContext> {
    let router = Router(context: HubRequestContext.self)
    router.add(middleware: ErrorMiddleware())
    router.get("/healthz") { _, _ -> Response in
        try jsonResponse(["status": "ok"])
    }
    router.get("/metrics") { _, _ -> Response in
        Response(
            status: .ok, headers: [.contentType: "text/plain; version=0.0.4"],
            body: .init(byteBuffer: ByteBuffer(string: hub.metrics.render(storeWrites: hub.store.writeCount)))
        )
    }
    router.get("/openapi.json") { _, _ -> Response in
        Response(
            status: .ok, headers: [.contentType: "application/json"],
            body: .init(byteBuffer: ByteBuffer(bytes: OpenAPIDocument.data))
        )
    }
    hub.addPollRoutes(to: router)
    hub.addRESTRoutes(to: router)
    if let artifacts = hub.artifacts {
        hub.addArtifactRoutes(to: router, artifacts: artifacts, maxUploadBytes: hub.configuration.maxArtifactBytes)
    }
    hub.addOperatorRoutes(to: router)
    return router
}

/// Wakes held long-polls and ends event streams when graceful shutdown begins, so the server
/// can drain quickly.
struct ShutdownSignaller: Service {
    let hub: Hub

    func run() async throws {
        try? await gracefulShutdown()
        hub.shutdown()
    }
}

/// The OpenAPI 3 document served at `/openapi.json`.
public enum OpenAPIDocument {
    /// The document's bytes.
    public static let data: Data = {
        guard let url = Bundle.module.url(forResource: "openapi", withExtension: "json"),
            let data = try? Data(contentsOf: url)
        else { return Data("{}".utf8) }
        return data
    }()
}
