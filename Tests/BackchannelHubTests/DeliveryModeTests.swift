import BackchannelAgent
import BackchannelHub
import BackchannelProtocol
import Foundation
import HTTPTypes
import Logging
import Testing

/// The three delivery modes: queued (store and forward), instant (delivered now or refused now)
/// and whenAvailable (held until the device is available, or EXPIRED).
@Suite struct DeliveryModeTests {
    static func instant(_ name: String = "trip") -> SubmitCommandRequest {
        SubmitCommandRequest(name: name, args: [:], delivery: .instant)
    }

    @Test func instantToADeviceThatIsNotConnectedFailsAtOnceAndStoresNothing() async throws {
        let h = try HubHarness()
        let token = try await h.provision("m1")
        _ = try await h.poll(makePoll("m1", seq: 1), token: token)  // online, but not holding a poll
        do {
            _ = try await h.hub.submit(Self.instant(), to: "m1")
            Issue.record("an instant command was accepted for a device that is not connected")
        } catch {
            #expect(error.status.code == 409)
            #expect(error.body.code == OutcomeCode.deviceUnavailable)
        }
        #expect(try await h.hub.commands(device: "m1", state: nil, cursor: nil, limit: 10).items.isEmpty)
    }

    @Test func instantToALongPollingAgentIsReportedDelivered() async throws {
        let h = try HubHarness(systemClock: true)
        let token = try await h.provision("m1")
        let live = try await LiveHub.start(h.hub)
        var configuration = AgentConfiguration(
            hubURL: live.url, deviceID: "m1", token: token,
            stateDirectory: FileManager.default.temporaryDirectory.appendingPathComponent(
                "bc-inst-\(UUID().uuidString)"))
        configuration.longPoll = 20
        var logger = Logger(label: "test.m1")
        logger.logLevel = .critical
        let agent = try Agent(configuration: configuration, logger: logger)
        await agent.register("trip") { _ in .succeeded(["tripped": true]) }
        let loop = Task { await agent.run() }
        try await waitUntil("the agent holds a long-poll") { h.hub.metrics.snapshot.heldPolls == 1 }
        let (view, created) = try await h.hub.submit(Self.instant(), to: "m1")
        #expect(created)
        #expect([MessageState.acked, .succeeded].contains(view.state), "delivered means acknowledged: \(view.state)")
        #expect(view.delivery == .instant)
        loop.cancel()
        await loop.value
        await live.stop()
    }

    @Test func instantNotAcknowledgedInTimeIsCanceledAndReportedUnavailable() async throws {
        let h = try HubHarness(systemClock: true) { $0.instantTimeout = 0.5 }
        let token = try await h.provision("m1")
        _ = try await h.poll(makePoll("m1", seq: 1), token: token)
        // A device that holds a poll, takes the command, and never acknowledges it.
        async let held = h.poll(makePoll("m1", seq: 2, wait: 30), token: token)
        try await waitUntil("held") { h.hub.metrics.snapshot.heldPolls == 1 }
        do {
            _ = try await h.hub.submit(Self.instant(), to: "m1")
            Issue.record("an unacknowledged instant command was reported delivered")
        } catch {
            #expect(error.body.code == OutcomeCode.deviceUnavailable)
            #expect(error.body.message.contains("canceled"))
        }
        let delivered = try await held
        let id = try #require(delivered.requests.first?.id)
        let view = try await h.hub.command(id)
        #expect(view.state == .canceled, "ended, not left in transit")
        // The device is told to abort it in its next answer.
        #expect(try await h.poll(makePoll("m1", seq: 3), token: token).cancel == [id])
    }

    @Test func whenAvailableWaitsForAvailabilityThenIsDelivered() async throws {
        let h = try HubHarness()
        let token = try await h.provision("m1")
        var poll = makePoll("m1", seq: 1)
        poll.presence = PresenceReport(state: .restricted, note: "critical process online")
        _ = try await h.poll(poll, token: token)
        var request = SubmitCommandRequest(name: "upgrade", args: [:], delivery: .whenAvailable)
        request.ttl = 3600
        let command = try await h.hub.submit(request, to: "m1").command
        // Online but restricted: not delivered, and a queued command still is.
        let queued = try await h.submit("read", to: "m1")
        let restricted = try await h.poll(makePoll("m1", seq: 2), token: token)
        #expect(restricted.requests.map(\.id) == [queued.id])
        #expect(!restricted.more)
        poll = makePoll("m1", seq: 3)
        poll.presence = PresenceReport(state: .available)
        let available = try await h.poll(poll, token: token)
        #expect(available.requests.map(\.id) == [command.id])
        #expect(available.requests.first?.name == "upgrade")
    }

    @Test func heldWhenAvailableCommandsDoNotBlockLaterQueuedOnes() async throws {
        // SQLite store: the candidates the store reads must not be only the held ones.
        let h = try HubHarness()
        let token = try await h.provision("m1")
        var poll = makePoll("m1", seq: 1, accept: 1)
        poll.presence = PresenceReport(state: .restricted)
        _ = try await h.poll(poll, token: token)
        for _ in 0..<3 {
            _ = try await h.hub.submit(
                SubmitCommandRequest(name: "upgrade", args: [:], delivery: .whenAvailable), to: "m1")
        }
        let read = try await h.submit("read", to: "m1")
        let answer = try await h.poll(makePoll("m1", seq: 2, accept: 1), token: token)
        #expect(answer.requests.map(\.id) == [read.id])
        #expect(!answer.more, "the held ones are not 'more' while the device is restricted")
    }

    @Test func whenAvailableExpiresIfTheDeviceNeverBecomesAvailable() async throws {
        let h = try HubHarness()
        let token = try await h.provision("m1")
        var poll = makePoll("m1", seq: 1)
        poll.presence = PresenceReport(state: .restricted)
        _ = try await h.poll(poll, token: token)
        var request = SubmitCommandRequest(name: "upgrade", args: [:], delivery: .whenAvailable)
        request.ttl = 60
        let command = try await h.hub.submit(request, to: "m1").command
        #expect(try await h.poll(makePoll("m1", seq: 2), token: token).requests.isEmpty)
        h.clock.advance(seconds: 61)
        await h.hub.sweepDeadlines()
        let view = try await h.hub.command(command.id)
        #expect(view.state == .expired)
        #expect(view.attempt == 0, "never delivered")
    }
}
