import BackchannelAgent
import BackchannelHub
import BackchannelProtocol
import Foundation
import HTTPTypes
import HummingbirdWSClient
import Logging
import Synchronization
import Testing

/// The instant channel: a device on a WebSocket gets the same logical messages as the poll,
/// pushed as they arrive, and is present while connected; instant commands reach it.
@Suite struct DeviceSocketTests {
    @Test func aConnectedDeviceGetsInstantCommandsPushedAndAnswersOnTheSocket() async throws {
        let h = try HubHarness(systemClock: true)
        let token = try await h.provision("ws-1")
        let live = try await LiveHub.start(h.hub)
        let port = live.port
        let received = Mutex<[PollResponse]>([])
        var configuration = WebSocketClientConfiguration(maxFrameSize: 1 << 20)
        configuration.additionalHeaders = [
            .authorization: "Bearer \(token)", HTTPField.Name("X-Backchannel-Device")!: "ws-1",
        ]
        var logger = Logger(label: "test.ws")
        logger.logLevel = .critical
        let client = Task {
            try await WebSocketClient.connect(
                url: "ws://127.0.0.1:\(port)/v1/ws", configuration: configuration, logger: logger
            ) { inbound, outbound, _ in
                // The device's first poll, on the socket.
                let hello = makePoll("ws-1", seq: 1)
                try await outbound.write(.text(String(decoding: try WireJSON.encode(hello), as: UTF8.self)))
                var seq: Int64 = 1
                for try await message in inbound.messages(maxSize: 1 << 20) {
                    guard case .text(let text) = message,
                        let response = try? WireJSON.decode(PollResponse.self, from: Data(text.utf8))
                    else { continue }
                    received.withLock { $0.append(response) }
                    // Run every command at once: ack and result in one frame.
                    for request in response.requests {
                        seq += 1
                        let answer = makePoll(
                            "ws-1", seq: seq, acks: [request.id],
                            results: [LogicalResult(id: request.id, status: .succeeded, data: ["tripped": true])])
                        try await outbound.write(.text(String(decoding: try WireJSON.encode(answer), as: UTF8.self)))
                    }
                }
            }
        }
        defer { client.cancel() }
        try await waitUntil("the first answer on the socket") { received.withLock { $0.contains { $0.seq == 1 } } }
        try await waitUntil("the hub holds the socket's push poll") { h.hub.metrics.snapshot.heldPolls == 1 }
        #expect(h.hub.presence.view("ws-1")?.inferred == .online)
        #expect(h.hub.presence.view("ws-1")?.errorAt == nil, "no deadline while connected")

        // An instant command is pushed down the socket and reported delivered.
        let (view, _) = try await h.hub.submit(
            SubmitCommandRequest(name: "trip", args: [:], delivery: .instant), to: "ws-1")
        #expect([MessageState.acked, .succeeded].contains(view.state))
        let done = try await h.hub.command(view.id, waitingUpTo: 10)
        #expect(done.state == .succeeded)
        #expect(done.outcome?.data == ["tripped": true])
        #expect(received.withLock { $0.contains { $0.requests.map(\.id) == [view.id] && $0.seq == 0 } }, "pushed")
        await live.stop()
    }

    @Test func theAgentRunsItsWholeSessionOverTheSocket() async throws {
        let h = try HubHarness(systemClock: true)
        let token = try await h.provision("ws-agent")
        let live = try await LiveHub.start(h.hub)
        var configuration = AgentConfiguration(
            hubURL: live.url, deviceID: "ws-agent", token: token,
            stateDirectory: FileManager.default.temporaryDirectory.appendingPathComponent("bc-wsa-\(UUID().uuidString)")
        )
        configuration.channel = .webSocket
        var logger = Logger(label: "test.ws-agent")
        logger.logLevel = .critical
        let agent = try Agent(configuration: configuration, logger: logger)
        await agent.register("read") { _ in .succeeded(["kWh": 42]) }
        let loop = Task { await agent.run() }
        try await waitUntil("the socket's push poll is held") { h.hub.metrics.snapshot.heldPolls == 1 }
        // Instant, queued, and the agent's own reading, all over the socket.
        let (instant, _) = try await h.hub.submit(
            SubmitCommandRequest(name: "read", args: [:], delivery: .instant), to: "ws-agent")
        #expect([MessageState.acked, .succeeded].contains(instant.state))
        let queued = try await h.submit("read", to: "ws-agent")
        #expect(try await h.hub.command(queued.id, waitingUpTo: 10).state == .succeeded)
        try await agent.emit(.reading, name: "meter", data: ["kWh": 42])
        try await waitUntil("the reading is stored") {
            try await !h.hub.uplink(device: "ws-agent", kind: .reading, cursor: nil, limit: 1).items.isEmpty
        }
        #expect(h.hub.presence.view("ws-agent")?.inferred == .online)
        loop.cancel()
        await loop.value
        await live.stop()
    }

    @Test func operatorsSubscribeToPresenceChangesOverAWebSocket() async throws {
        let h = try HubHarness(systemClock: true)
        let token = try await h.provision("m1")
        _ = try await h.provision("m2")
        let live = try await LiveHub.start(h.hub)
        var configuration = WebSocketClientConfiguration()
        configuration.additionalHeaders = [.authorization: "Bearer \(HubHarness.operatorToken)"]
        var logger = Logger(label: "test.ws")
        logger.logLevel = .critical
        let seen = Mutex<[HubEvent]>([])
        let subscriber = Task {
            try await WebSocketClient.connect(
                url: "ws://127.0.0.1:\(live.port)/v1/presence/ws?device=m1", configuration: configuration,
                logger: logger
            ) { inbound, _, _ in
                for try await message in inbound.messages(maxSize: 1 << 20) {
                    guard case .text(let text) = message,
                        let event = try? WireJSON.decode(HubEvent.self, from: Data(text.utf8))
                    else { continue }
                    seen.withLock { $0.append(event) }
                    return
                }
            }
        }
        defer { subscriber.cancel() }
        // Poll until the subscription is in place and the change reaches it (m2's is filtered out).
        var seq: Int64 = 0
        try await waitUntil("m1's presence change arrives on the socket") {
            seq += 1
            var poll = makePoll("m1", seq: seq)
            poll.presence = PresenceReport(state: seq % 2 == 0 ? .restricted : .available)
            _ = try await h.poll(poll, token: token)
            return !seen.withLock { $0.isEmpty }
        }
        let event = try #require(seen.withLock { $0.first })
        #expect(event.type == .devicePresence)
        #expect(event.device == "m1")
        await live.stop()
    }

    @Test func aSocketWithoutTheRightTokenIsNotOpened() async throws {
        let h = try HubHarness(systemClock: true)
        _ = try await h.provision("ws-1")
        let live = try await LiveHub.start(h.hub)
        var configuration = WebSocketClientConfiguration()
        configuration.additionalHeaders = [
            .authorization: "Bearer wrong", HTTPField.Name("X-Backchannel-Device")!: "ws-1",
        ]
        var logger = Logger(label: "test.ws")
        logger.logLevel = .critical
        await #expect(throws: (any Error).self) {
            try await WebSocketClient.connect(
                url: "ws://127.0.0.1:\(live.port)/v1/ws", configuration: configuration, logger: logger
            ) { _, _, _ in }
        }
        await live.stop()
    }
}
