import BackchannelHub
import BackchannelProtocol
import BackchannelSQLite
import BackchannelStore
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import NIOCore
import ServiceLifecycle
import Testing

/// A hub over a real SQLite file in a fresh temporary directory, with a controllable clock.
struct HubHarness {
    let hub: Hub
    let store: SQLiteMessageStore
    let clock: ManualHubClock
    let directory: URL
    static let operatorToken = "test-operator-token-0123456789"

    init(
        directory: URL? = nil,
        systemClock: Bool = false,
        configure: (inout HubConfiguration) -> Void = { _ in }
    ) throws {
        let directory =
            directory ?? FileManager.default.temporaryDirectory.appendingPathComponent("bc-hub-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        self.directory = directory
        self.store = try SQLiteMessageStore(path: directory.appendingPathComponent("hub.sqlite").path)
        self.clock = ManualHubClock(Timestamp(milliseconds: 1_800_000_000_000))
        var configuration = HubConfiguration()
        configuration.port = 0
        configuration.operatorTokenHash = Credentials.hash(Self.operatorToken)
        configuration.devicePollRate = 0
        configuration.pollJitter = 0
        configure(&configuration)
        var logger = Logger(label: "test.hub")
        logger.logLevel = .warning
        self.hub = Hub(
            configuration: configuration, store: store, clock: systemClock ? SystemHubClock() : clock, logger: logger
        )
    }

    /// Provisions a device and returns its token.
    @discardableResult
    func provision(_ id: String) async throws -> String {
        try await hub.provision(ProvisionDeviceRequest(id: id)).token
    }

    /// Submits a command to a device.
    @discardableResult
    func submit(_ name: String, to device: String, _ configure: (inout SubmitCommandRequest) -> Void = { _ in })
        async throws -> CommandView
    {
        var request = SubmitCommandRequest(name: name, args: [:])
        configure(&request)
        return try await hub.submit(request, to: device).command
    }

    /// Posts a poll through the hub core and decodes the response.
    func poll(_ request: PollRequest, token: String) async throws -> PollResponse {
        let data = try await hub.poll(body: try WireJSON.encode(request), authorization: "Bearer \(token)")
        return try WireJSON.decode(PollResponse.self, from: data)
    }
}

/// A poll request with sensible defaults for tests.
func makePoll(
    _ device: String, seq: Int64, acks: [String] = [], results: [LogicalResult] = [], uplink: [UplinkItem] = [],
    accept: Int = 10, wait: Double = 0
) -> PollRequest {
    PollRequest(
        device: device, seq: seq, sentAt: Timestamp(milliseconds: 1_800_000_000_000), acks: acks, results: results,
        uplink: uplink, accept: accept, wait: wait
    )
}

/// A reading uplink item.
func reading(_ id: String, kWh: Double = 1) -> UplinkItem {
    UplinkItem(
        id: id, kind: .reading, name: "meter", at: Timestamp(milliseconds: 1_800_000_000_000),
        data: ["kWh": .number(kWh)]
    )
}

/// Waits until `condition` holds, checking every 10 ms, failing after `timeout` seconds.
func waitUntil(
    _ what: String, timeout: Double = 10, sourceLocation: SourceLocation = #_sourceLocation,
    _ condition: () async throws -> Bool
) async throws {
    let deadline = ContinuousClock.now + .milliseconds(Int64(timeout * 1000))
    while ContinuousClock.now < deadline {
        if try await condition() { return }
        try await Task.sleep(for: .milliseconds(10))
    }
    Issue.record("timed out after \(timeout)s waiting for: \(what)", sourceLocation: sourceLocation)
    throw TimeoutError(what: what)
}

struct TimeoutError: Error {
    var what: String
}

/// A hub application served on a real loopback socket, for long-poll, agent and SSE tests.
final class LiveHub: Sendable {
    let hub: Hub
    let url: String
    let port: Int
    private let group: ServiceGroup
    private let task: Task<Void, any Error>

    private init(hub: Hub, url: String, port: Int, group: ServiceGroup, task: Task<Void, any Error>) {
        self.hub = hub
        self.url = url
        self.port = port
        self.group = group
        self.task = task
    }

    /// Starts serving `hub` (on its configuration's port; 0 picks one).
    static func start(_ hub: Hub) async throws -> LiveHub {
        let (ports, announce) = AsyncStream.makeStream(of: Int.self)
        let app = buildApplication(hub: hub) { channel in
            announce.yield(channel.localAddress?.port ?? 0)
            announce.finish()
        }
        var logger = Logger(label: "test.group")
        logger.logLevel = .warning
        let group = ServiceGroup(configuration: .init(services: [app], logger: logger))
        let task = Task { try await group.run() }
        guard let port = await ports.first(where: { _ in true }), port > 0 else {
            task.cancel()
            throw TimeoutError(what: "hub did not start")
        }
        return LiveHub(hub: hub, url: "http://127.0.0.1:\(port)", port: port, group: group, task: task)
    }

    /// Stops the server gracefully and waits for it.
    func stop() async {
        await group.triggerGracefulShutdown()
        _ = try? await task.value
    }
}
