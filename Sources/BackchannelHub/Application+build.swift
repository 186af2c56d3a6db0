import BackchannelStore
public import Foundation
import HTTPTypes
public import Hummingbird
import HummingbirdCore
import HummingbirdTLS
import HummingbirdWebSocket
import Logging
import NIOCore
import ServiceLifecycle

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
        server: hubServer(hub: hub),
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
        CampaignReconciler(hub: hub), AuditFlusher(hub: hub), PowerScheduler(hub: hub),
        ShutdownSignaller(hub: hub))
    return app
}

/// The hub's HTTP/1.1 server with WebSocket upgrades, over TLS when configured, guarded by the
/// connection limits: a cap on open connections, a deadline for a new connection's handshake
/// and first request head, and an idle timeout between requests and within one.
func hubServer(hub: Hub) -> HTTPServerBuilder {
    let limits = hub.configuration.connectionLimits
    let tls = hub.configuration.tls
    let gate = ConnectionGate(cap: limits.maxConnections)
    return HTTPServerBuilder { responder in
        let base = HTTP1WebSocketUpgradeChannel(
            responder: responder,
            configuration: .init(
                http1: .init(
                    additionalChannelHandlers: [FirstRequestMarker()],
                    idleTimeout: timeAmount(seconds: limits.idleTimeout)),
                ws: .init(maxFrameSize: hub.configuration.maxBodyBytes))
        ) { request, channel, _ in
            ConnectionGuard.firstRequestArrived(on: channel)
            return await hub.shouldUpgrade(request, channel: channel)
        }
        let firstRequest = timeAmount(seconds: limits.requestHeadTimeout)
        guard let tls else {
            return GuardedChildChannel(
                base: base, gate: gate, firstRequestTimeout: firstRequest, identifiesDevices: false)
        }
        return GuardedChildChannel(
            base: try TLSChannel(base, tlsConfiguration: try tls.makeServerConfiguration()), gate: gate,
            firstRequestTimeout: firstRequest, identifiesDevices: tls.clientCAFile != nil)
    }
}

/// A time amount from seconds with a fraction.
private func timeAmount(seconds: Double) -> TimeAmount {
    .nanoseconds(Int64((max(0, seconds) * 1_000_000_000).rounded()))
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
    hub.addPowerRoutes(to: router)
    hub.addDashboardRoutes(to: router)
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
