import BackchannelHub
import BackchannelProtocol
import BackchannelStore
import Foundation
import Testing

/// Races opened deterministically with a gated store.
@Suite struct RaceTests {
    func poll(_ hub: Hub, _ request: PollRequest, token: String) async throws -> PollResponse {
        let data = try await hub.poll(body: try WireJSON.encode(request), authorization: "Bearer \(token)")
        return try WireJSON.decode(PollResponse.self, from: data)
    }

    @Test func workSubmittedWhileAHeldPollRechecksTheQueueWakesIt() async throws {
        let clock = ManualHubClock(Timestamp(milliseconds: 1_800_000_000_000))
        let (hub, store) = try gatedHub(clock: clock)
        let token = try await hub.provision(ProvisionDeviceRequest(id: "m1")).token
        _ = try await poll(hub, makePoll("m1", seq: 1), token: token)
        let held = Task { try await poll(hub, makePoll("m1", seq: 2, wait: 20), token: token) }
        try await waitUntil("held") { hub.metrics.snapshot.heldPolls == 1 }

        // A scheduled command wakes the held poll, which re-reads the queue; pause it there.
        store.pendingGate.arm()
        var later = SubmitCommandRequest(name: "later", args: [:])
        later.notBefore = clock.now().adding(seconds: 600)
        _ = try await hub.submit(later, to: "m1")
        try await waitUntil("the re-check is in progress") { store.pendingGate.entered }
        // A command due now arrives during that re-check.
        let now = try await hub.submit(SubmitCommandRequest(name: "now", args: [:]), to: "m1").command
        store.pendingGate.open()

        let started = ContinuousClock.now
        let response = try await held.value
        #expect(response.requests.map(\.id) == [now.id])
        #expect(ContinuousClock.now - started < .seconds(10), "woken by the submit, not by the wait's end")
    }

    @Test func aTokenRotatedWhileTheSessionLoadsTakesEffect() async throws {
        let clock = ManualHubClock(Timestamp(milliseconds: 1_800_000_000_000))
        let (hub, store) = try gatedHub(clock: clock)
        let oldToken = try await hub.provision(ProvisionDeviceRequest(id: "m1")).token
        store.deviceGate.arm()
        let first = Task { try? await poll(hub, makePoll("m1", seq: 1), token: oldToken) }
        try await waitUntil("the session load is in progress") { store.deviceGate.entered }
        let newToken = try await hub.rotateToken(device: "m1").token
        store.deviceGate.open()
        _ = await first.value

        await #expect(throws: HubError.self, "the rotated-out token stops working") {
            _ = try await poll(hub, makePoll("m1", seq: 2), token: oldToken)
        }
        #expect(try await poll(hub, makePoll("m1", seq: 3), token: newToken).seq == 3)
    }

    @Test func aCommandWaitEndsWhenTheHubShutsDown() async throws {
        let h = try HubHarness(systemClock: true) { $0.maxWait = 60 }
        try await h.provision("m1")
        let command = try await h.submit("ping", to: "m1")
        let started = ContinuousClock.now
        let waiting = Task { try await h.hub.command(command.id, waitingUpTo: 60) }
        try await waitUntil("the wait is subscribed") { h.hub.metrics.snapshot.commandsSubmitted == 1 }
        h.hub.shutdown()
        let view = try await waiting.value
        #expect(view.state == .queued)
        #expect(ContinuousClock.now - started < .seconds(30))
    }
}
