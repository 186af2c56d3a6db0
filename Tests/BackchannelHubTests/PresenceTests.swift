import BackchannelHub
import BackchannelProtocol
import BackchannelSQLite
import BackchannelStore
import Foundation
import Testing

/// The hub's presence service: contact, the deadline contract on per-device timers, goodbye,
/// refresh, history and restore.
@Suite struct PresenceTests {
    @Test func aPollMakesTheDeviceOnlineAndStatesTheContract() async throws {
        let h = try HubHarness { $0.pollInterval = 30 }
        let token = try await h.provision("m1")
        #expect(try await h.hub.device("m1").presenceState == .unknown)
        let response = try await h.poll(makePoll("m1", seq: 1), token: token)
        let contactBy = try #require(response.contactBy)
        #expect(contactBy == response.sentAt.adding(seconds: response.nextPollAfter))
        let view = try #require(h.hub.presence.view("m1"))
        #expect(view.inferred == .online)
        #expect(view.available)
        #expect(view.contactBy == contactBy)
        #expect(view.errorAt == contactBy.adding(seconds: h.hub.configuration.presenceGrace))
        #expect(try await h.hub.device("m1").presenceState == .online)
    }

    @Test func aMissedDeadlineIsPresenceErrorAtItsOwnTimeWithoutASweep() async throws {
        // Real time: a 0.4 s poll interval and a 0.3 s grace; the device polls once, then goes silent.
        let h = try HubHarness(systemClock: true) {
            $0.pollInterval = 0.4
            $0.presenceGrace = 0.3
            $0.sweepInterval = 3600  // no sweep could be what fires it
        }
        let token = try await h.provision("m1")
        let live = try await LiveHub.start(h.hub)
        defer { Task { await live.stop() } }
        let events = h.hub.events.subscribe()
        let response = try await h.poll(makePoll("m1", seq: 1), token: token)
        let errorAt = try #require(h.hub.presence.view("m1")?.errorAt)
        var fired: HubEvent?
        for await event in events where event.type == .devicePresence && event.detail == "presence-error" {
            fired = event
            break
        }
        let event = try #require(fired)
        #expect(event.device == "m1")
        // It fired at the device's deadline (timer), not on some periodic tick.
        #expect(event.at >= errorAt)
        // Generous bound: a loaded CI machine may be late, but there is no periodic pass to wait for.
        #expect(event.at.seconds(since: errorAt) < 2, "fired \(event.at.seconds(since: errorAt)) s late")
        #expect(errorAt == response.contactBy?.adding(seconds: 0.3))
        #expect(h.hub.presence.view("m1")?.inferred == .presenceError)
        #expect(!(h.hub.presence.view("m1")?.available ?? true))
        // The next poll brings it back online.
        _ = try await h.poll(makePoll("m1", seq: 2), token: token)
        #expect(h.hub.presence.view("m1")?.inferred == .online)
    }

    @Test func aHeldLongPollKeepsTheDevicePresent() async throws {
        let h = try HubHarness(systemClock: true) {
            $0.pollInterval = 0.2
            $0.presenceGrace = 0.1
        }
        let token = try await h.provision("m1")
        let live = try await LiveHub.start(h.hub)
        defer { Task { await live.stop() } }
        _ = try await h.poll(makePoll("m1", seq: 1), token: token)
        // Held for 1.5 s, far past the first deadline: no presence-error while connected.
        let held = try await h.poll(makePoll("m1", seq: 2, wait: 1.5), token: token)
        #expect(h.hub.presence.view("m1")?.inferred == .online)
        let detail = try await h.hub.presenceDetail("m1")
        #expect(!detail.history.contains { $0.to == .presenceError })
        #expect(held.contactBy != nil)
    }

    @Test func aGoodbyeIsUnavailableAndDeclarationsAreKept() async throws {
        let h = try HubHarness()
        let token = try await h.provision("m1")
        var poll = makePoll("m1", seq: 1)
        poll.presence = PresenceReport(
            state: .restricted, note: "critical process online, offline at 13:03", status: ["load": 82.5])
        _ = try await h.poll(poll, token: token)
        var view = try #require(h.hub.presence.view("m1"))
        #expect(view.inferred == .online)
        #expect(!view.available, "restricted is online but not available")
        #expect(view.declared?.status?["load"] == 82.5)
        poll = makePoll("m1", seq: 2)
        poll.presence = PresenceReport(state: .unavailable, note: "maintenance")
        _ = try await h.poll(poll, token: token)
        view = try #require(h.hub.presence.view("m1"))
        #expect(view.inferred == .unavailable)
        #expect(view.errorAt == nil, "no deadline after a goodbye")
        let history = try await h.hub.presenceDetail("m1").history
        #expect(history.map(\.reason) == ["goodbye", "contact"])
        #expect(history.first?.note == "maintenance")
        #expect(
            try await h.hub.presencePage(state: .unavailable, available: nil, cursor: nil, limit: 10).items.map(
                \.device) == ["m1"])
    }

    @Test func refreshAsksTheDeviceAndAnswersAHeldPoll() async throws {
        let h = try HubHarness(systemClock: true)
        let token = try await h.provision("m1")
        let live = try await LiveHub.start(h.hub)
        defer { Task { await live.stop() } }
        _ = try await h.poll(makePoll("m1", seq: 1), token: token)
        let started = ContinuousClock.now
        async let held = h.poll(makePoll("m1", seq: 2, wait: 30), token: token)
        try await waitUntil("the poll is held") { h.hub.metrics.snapshot.heldPolls == 1 }
        #expect(try await h.hub.refreshPresence("m1").refreshRequested)
        let answer = try await held
        #expect(answer.refreshPresence == true)
        #expect(ContinuousClock.now - started < .seconds(10))
        // Until the device declares, every answer asks; the declaration clears it.
        #expect(try await h.poll(makePoll("m1", seq: 3), token: token).refreshPresence == true)
        var poll = makePoll("m1", seq: 4)
        poll.presence = PresenceReport(state: .available)
        #expect(try await h.poll(poll, token: token).refreshPresence == nil)
        #expect(h.hub.presence.view("m1")?.refreshRequested == false)
        await #expect(throws: HubError.self) { _ = try await h.hub.refreshPresence("ghost") }
    }

    @Test func presenceSurvivesARestartWithAFreshDeadline() async throws {
        let h = try HubHarness()
        let token = try await h.provision("m1")
        var poll = makePoll("m1", seq: 1)
        poll.presence = PresenceReport(state: .availableOn, note: "generator running")
        _ = try await h.poll(poll, token: token)
        await h.hub.flushPresence()
        // A new hub process over the same database, an hour later.
        let restarted = try HubHarness(directory: h.directory)
        restarted.clock.advance(seconds: 3600)
        let live = try await LiveHub.start(restarted.hub)
        defer { Task { await live.stop() } }
        try await waitUntil("presence restored") { restarted.hub.presence.view("m1") != nil }
        let view = try #require(restarted.hub.presence.view("m1"))
        #expect(view.inferred == .online)
        #expect(view.declared?.note == "generator running")
        // The deadline that passed while the hub was down is moved past now.
        #expect((view.errorAt ?? .now()) > restarted.clock.now())
    }
}
