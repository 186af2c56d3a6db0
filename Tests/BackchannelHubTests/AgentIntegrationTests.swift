import BackchannelAgent
import BackchannelHub
import BackchannelProtocol
import BackchannelSQLite
import BackchannelStore
import Foundation
import Hummingbird
import Logging
import NIOCore
import ServiceLifecycle
import Synchronization
import Testing

/// The device agent against a real hub on loopback.
@Suite struct AgentIntegrationTests {
    static func agent(_ live: LiveHub, _ device: String, token: String, directory: URL, longPoll: Double = 5) throws
        -> Agent
    {
        var configuration = AgentConfiguration(
            hubURL: live.url, deviceID: device, token: token, stateDirectory: directory)
        configuration.longPoll = longPoll
        configuration.backoffBase = 0.05
        configuration.backoffMax = 0.2
        var logger = Logger(label: "test.agent")
        logger.logLevel = ProcessInfo.processInfo.environment["AGENT_LOG"] == nil ? .critical : .trace
        return try Agent(configuration: configuration, logger: logger)
    }

    static func temporaryDirectory() -> URL {
        FileManager.default.temporaryDirectory.appendingPathComponent("bc-agent-\(UUID().uuidString)")
    }

    @Test func aCommandReachesTheAgentAndItsResultComesBack() async throws {
        let h = try HubHarness(systemClock: true)
        let token = try await h.provision("m1")
        let live = try await LiveHub.start(h.hub)
        let agent = try Self.agent(live, "m1", token: token, directory: Self.temporaryDirectory())
        await agent.register("read") { request in .succeeded(["kWh": 42.5, "echo": request.args["x"] ?? .null]) }
        let loop = Task { await agent.run() }
        try await agent.emit(.reading, name: "meter", data: ["kWh": 42.4])

        let command = try await h.submit("read", to: "m1") { $0.args = ["x": "y"] }
        let finished = try await h.hub.command(command.id, waitingUpTo: 10)
        #expect(finished.state == .succeeded)
        #expect(finished.outcome?.data == ["kWh": 42.5, "echo": "y"])
        try await waitUntil("the reading is stored") {
            try await h.store.uplink(device: "m1", kind: .reading, after: nil, limit: 10).count == 1
        }
        #expect(await agent.outboxCount == 0)
        // Unknown commands are rejected by the agent, not run.
        let unknown = try await h.hub.command(try await h.submit("explode", to: "m1").id, waitingUpTo: 10)
        #expect(unknown.state == .rejected)
        #expect(unknown.outcome?.code == OutcomeCode.unknownCommand)
        loop.cancel()
        await loop.value
        await live.stop()
    }

    @Test func readingsTakenDuringAHubOutageAreDeliveredOnceAfterIt() async throws {
        let directory = Self.temporaryDirectory()
        let first = try HubHarness(systemClock: true)
        let token = try await first.provision("m1")
        let live = try await LiveHub.start(first.hub)
        let agent = try Self.agent(live, "m1", token: token, directory: directory, longPoll: 1)
        let loop = Task { await agent.run() }
        try await agent.emit(.reading, name: "meter", data: ["n": 0])
        try await waitUntil("the first reading is delivered") { await agent.outboxCount == 0 }

        // The hub goes away; the device keeps measuring.
        await live.stop()
        var ids: [String] = []
        for n in 1...20 { ids.append(try await agent.emit(.reading, name: "meter", data: ["n": .number(Double(n))])) }
        try await waitUntil("the agent notices the outage") { await agent.stats.failures > 0 }
        #expect(await agent.outboxCount == 20)

        // The hub comes back on the same port with the same database.
        var configuration = first.hub.configuration
        configuration.port = live.port
        let again = try HubHarness(directory: first.directory, systemClock: true) { $0 = configuration }
        let back = try await LiveHub.start(again.hub)
        try await waitUntil("the outbox drains", timeout: 20) { await agent.outboxCount == 0 }
        let stored = try await again.store.uplink(device: "m1", kind: .reading, after: nil, limit: 100).map(\.item.id)
        #expect(stored.count == 21, "each reading stored exactly once")
        #expect(Set(stored).isSuperset(of: ids))
        loop.cancel()
        await loop.value
        await back.stop()
    }

    @Test func theOutboxSurvivesADeviceRestart() async throws {
        let directory = Self.temporaryDirectory()
        let h = try HubHarness(systemClock: true)
        let token = try await h.provision("m1")
        let live = try await LiveHub.start(h.hub)
        do {
            // Readings taken by an agent that never got to poll.
            let offline = try Self.agent(live, "m1", token: token, directory: directory)
            for n in 1...5 { try await offline.emit(.reading, name: "meter", data: ["n": .number(Double(n))]) }
        }
        let restarted = try Self.agent(live, "m1", token: token, directory: directory)
        #expect(await restarted.outboxCount == 5)
        let loop = Task { await restarted.run() }
        try await waitUntil("the outbox drains") { await restarted.outboxCount == 0 }
        #expect(try await h.store.uplink(device: "m1", kind: nil, after: nil, limit: 100).count == 5)
        loop.cancel()
        await loop.value
        await live.stop()
    }

    @Test func aCommandInterruptedByADeviceRestartIsReportedNotRerun() async throws {
        let directory = Self.temporaryDirectory()
        let h = try HubHarness(systemClock: true)
        let token = try await h.provision("m1")
        let live = try await LiveHub.start(h.hub)
        let runs = Atomic<Int>(0)
        let first = try Self.agent(live, "m1", token: token, directory: directory)
        await first.register("upgrade") { _ in
            runs.add(1, ordering: .relaxed)
            try await Task.sleep(for: .seconds(3600))
            return .succeeded()
        }
        let command = try await h.submit("upgrade", to: "m1")
        let loop = Task { await first.run() }
        try await waitUntil("the command starts") { runs.load(ordering: .relaxed) == 1 }
        loop.cancel()  // the device dies mid-execution
        await loop.value

        let second = try Self.agent(live, "m1", token: token, directory: directory)
        await second.register("upgrade") { _ in
            runs.add(1, ordering: .relaxed)
            return .succeeded()
        }
        let again = Task { await second.run() }
        let view = try await h.hub.command(command.id, waitingUpTo: 10)
        #expect(view.state == .failed)
        #expect(view.outcome?.code == OutcomeCode.interrupted)
        #expect(runs.load(ordering: .relaxed) == 1, "never run twice")
        again.cancel()
        await again.value
        await live.stop()
    }

    @Test func aDeviceThatLostItsSequenceCounterCatchesUp() async throws {
        let h = try HubHarness(systemClock: true)
        let token = try await h.provision("m1")
        let live = try await LiveHub.start(h.hub)
        // The hub has seen sequence numbers up to 5000 from this device.
        _ = try await h.poll(makePoll("m1", seq: 5000, uplink: [reading("old")]), token: token)
        let agent = try Self.agent(live, "m1", token: token, directory: Self.temporaryDirectory(), longPoll: 0)
        let declared = PresenceReport(state: .restricted, note: "critical process online, offline at 13:03")
        try await agent.declare(declared)
        try await agent.emit(.reading, name: "meter", data: ["n": 1])
        #expect(try await agent.exchange() == 0, "409 makes the agent jump its counter and poll again")
        _ = try await agent.exchange()
        #expect(await agent.outboxCount == 0)
        // The presence declared in the refused poll was sent again with the accepted one.
        #expect(try await h.hub.device("m1").presence == declared)
        await live.stop()
    }

    @Test func itemsTheHubWouldRefuseNeverEnterTheOutbox() async throws {
        let h = try HubHarness(systemClock: true)
        let token = try await h.provision("m1")
        let live = try await LiveHub.start(h.hub)
        let agent = try Self.agent(live, "m1", token: token, directory: Self.temporaryDirectory())
        await #expect(throws: ValidationFailure.self) { try await agent.emit(.event, name: "pq sag", data: ["v": 1]) }
        await #expect(throws: ValidationFailure.self) {
            try await agent.emit(.reading, name: "waveform", data: .string(String(repeating: "x", count: 70_000)))
        }
        await #expect(throws: ValidationFailure.self) {
            try await agent.declare(PresenceReport(state: .restricted, note: String(repeating: "n", count: 2000)))
        }
        #expect(await agent.outboxCount == 0)
        await live.stop()
    }

    @Test func anItemTheHubRefusesIsSetAsideAndTheRestFlows() async throws {
        // This hub is stricter than the agent's defaults: data at most 2 levels deep.
        let h = try HubHarness(systemClock: true) { $0.limits.maxJSONDepth = 2 }
        let token = try await h.provision("m1")
        let live = try await LiveHub.start(h.hub)
        let directory = Self.temporaryDirectory()
        let agent = try Self.agent(live, "m1", token: token, directory: directory, longPoll: 1)
        await agent.register("ping") { _ in .succeeded() }
        let deep = try await agent.emit(.event, name: "pq.sag", data: ["a": ["b": ["c": 1]]])
        try await agent.emit(.reading, name: "meter", data: ["kWh": 1])
        let loop = Task { await agent.run() }
        let command = try await h.submit("ping", to: "m1")
        #expect(try await h.hub.command(command.id, waitingUpTo: 10).state == .succeeded, "commands still flow")
        try await waitUntil("the valid reading is stored") {
            try await h.store.uplink(device: "m1", kind: .reading, after: nil, limit: 10).count == 1
        }
        #expect(await agent.outboxCount == 0)
        #expect(await agent.stats.deadLettered == 1)
        let dead = try String(contentsOf: directory.appendingPathComponent("dead-letter.jsonl"), encoding: .utf8)
        #expect(dead.contains(deep), "the refused item is kept for a person to look at")
        loop.cancel()
        await loop.value
        await live.stop()
    }

    @Test func resultsTooLargeForTheProtocolAreReportedAsSuch() async throws {
        let h = try HubHarness(systemClock: true)
        let token = try await h.provision("m1")
        let live = try await LiveHub.start(h.hub)
        let agent = try Self.agent(live, "m1", token: token, directory: Self.temporaryDirectory())
        await agent.register("dump") { _ in .succeeded(["blob": .string(String(repeating: "z", count: 300_000))]) }
        await agent.register("chatty") { _ in
            CommandReply(status: .failed, code: "bad code!", detail: String(repeating: "d", count: 10_000))
        }
        let loop = Task { await agent.run() }
        let dump = try await h.hub.command(try await h.submit("dump", to: "m1").id, waitingUpTo: 10)
        #expect(dump.state == .failed)
        #expect(dump.outcome?.code == "result_too_large")
        let chatty = try await h.hub.command(try await h.submit("chatty", to: "m1").id, waitingUpTo: 10)
        #expect(chatty.state == .failed)
        #expect(chatty.outcome?.code == OutcomeCode.handlerError)
        #expect((chatty.outcome?.detail?.utf8.count ?? 0) < 4200)
        loop.cancel()
        await loop.value
        await live.stop()
    }
}
