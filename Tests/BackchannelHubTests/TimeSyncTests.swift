import BackchannelAgent
import BackchannelHub
import BackchannelProtocol
import Foundation
import Logging
import Synchronization
import Testing

/// Clock offsets measured by the hub, and commands executed at an exact time on skewed devices.
@Suite struct TimeSyncTests {
    @Test func theHubComputesTheDeviceClockOffsetFromFourTimestamps() async throws {
        let h = try HubHarness()
        let token = try await h.provision("m1")
        // The device's clock runs 30 s ahead of the hub's; the network takes 20 ms each way.
        let skew = 30.0
        var first = makePoll("m1", seq: 1)
        first.sentAt = h.clock.now().adding(seconds: skew)
        h.clock.advance(seconds: 0.02)
        let response = try await h.poll(first, token: token)
        let t3 = response.sentAt.adding(seconds: skew + 0.02)
        var second = makePoll("m1", seq: 2)
        second.sentAt = t3
        second.clockSample = ClockSample(seq: 1, receivedAt: t3)
        _ = try await h.poll(second, token: token)
        let device = try await h.hub.device("m1")
        let offset = try #require(device.clockOffset)
        let delay = try #require(device.clockDelay)
        #expect(abs(offset - skew) < 0.002, "offset \(offset)")
        #expect(abs(delay - 0.04) < 0.002, "delay \(delay)")
        // A sample for an exchange the hub does not remember is ignored.
        var stale = makePoll("m1", seq: 3)
        stale.clockSample = ClockSample(seq: 1, receivedAt: t3.adding(seconds: 999))
        _ = try await h.poll(stale, token: token)
        #expect(try await h.hub.device("m1").clockOffset == offset)
    }

    /// Two generators whose clocks are off by +30 s and −30 s start at T and T + 60 s, in that
    /// order, each within 250 ms of its target on the hub's clock.
    @Test(.timeLimit(.minutes(3))) func skewedGeneratorsStartOnTheHubsTime() async throws {
        let h = try HubHarness(systemClock: true) { $0.dispatchLead = 30 }
        let live = try await LiveHub.start(h.hub)
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("bc-gen-\(UUID().uuidString)")
        let started = Mutex<[String: Timestamp]>([:])
        var agents: [Agent] = []
        for (id, skew) in [("gen-1", 30.0), ("gen-2", -30.0)] {
            var configuration = AgentConfiguration(
                hubURL: live.url, deviceID: id, token: try await h.provision(id),
                stateDirectory: root.appendingPathComponent(id))
            configuration.longPoll = 10
            configuration.deviceClock = { Timestamp.now().adding(seconds: skew) }
            var logger = Logger(label: "test.\(id)")
            logger.logLevel = .critical
            let agent = try Agent(configuration: configuration, logger: logger)
            await agent.register("start") { _ in
                // The hub runs on the system clock: this is the start time on the hub's clock.
                started.withLock { $0[id] = Timestamp.now() }
                return .succeeded(["started": true])
            }
            agents.append(agent)
        }
        let loops = agents.map { agent in Task { await agent.run() } }
        defer { for loop in loops { loop.cancel() } }
        // A few exchanges first, so each agent knows its offset.
        try await waitUntil("both generators have polled") {
            let one = try await h.hub.device("gen-1").clockOffset
            let two = try await h.hub.device("gen-2").clockOffset
            return one != nil && two != nil
        }
        #expect(abs((try await h.hub.device("gen-1").clockOffset ?? 0) - 30) < 0.5)
        #expect(abs((try await h.hub.device("gen-2").clockOffset ?? 0) + 30) < 0.5)

        let t = Timestamp.now().adding(seconds: 4)
        let one = try await h.submit("start", to: "gen-1") { $0.notBefore = t }
        let two = try await h.submit("start", to: "gen-2") { $0.notBefore = t.adding(seconds: 60) }
        let first = try await h.hub.command(one.id, waitingUpTo: 30)
        let second = try await h.hub.command(two.id, waitingUpTo: 60)
        let second2 = second.state.isTerminal ? second : try await h.hub.command(two.id, waitingUpTo: 60)
        #expect(first.state == .succeeded)
        #expect(second2.state == .succeeded)
        let times = started.withLock { $0 }
        let at1 = try #require(times["gen-1"])
        let at2 = try #require(times["gen-2"])
        #expect(at1 < at2, "gen 1 starts before gen 2")
        #expect(abs(at1.seconds(since: t)) < 0.25, "gen 1 started \(at1.seconds(since: t)) s from T")
        #expect(
            abs(at2.seconds(since: t.adding(seconds: 60))) < 0.25,
            "gen 2 started \(at2.seconds(since: t.adding(seconds: 60))) s from T+60")
        await live.stop()
    }
}
