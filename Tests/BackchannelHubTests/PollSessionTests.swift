import BackchannelHub
import BackchannelProtocol
import BackchannelSQLite
import BackchannelStore
import Foundation
import HTTPTypes
import Testing

/// The session rules of `POST /v1/poll`: retries, sequence conflicts, supersession, long-poll.
@Suite struct PollSessionTests {
    @Test func retriedSequenceNumberGetsTheIdenticalResponse() async throws {
        let h = try HubHarness()
        let token = try await h.provision("m1")
        let command = try await h.submit("read", to: "m1")
        let body = try WireJSON.encode(makePoll("m1", seq: 1, uplink: [reading("r1")]))
        let first = try await h.hub.poll(body: body, authorization: "Bearer \(token)")
        h.clock.advance(seconds: 5)
        let again = try await h.hub.poll(body: body, authorization: "Bearer \(token)")
        #expect(again == first)
        let response = try WireJSON.decode(PollResponse.self, from: first)
        #expect(response.requests.map(\.id) == [command.id])
        #expect(response.stored == ["r1"])
        // The retry dispatched nothing more: still the first attempt, one dispatch in history.
        let view = try await h.hub.command(command.id)
        #expect(view.attempt == 1)
        #expect(view.history?.filter { $0.event == "dispatch" }.count == 1)
        #expect(h.hub.metrics.snapshot.replayedPolls == 1)
    }

    @Test func retryIsAnsweredFromTheStoreAfterAHubRestart() async throws {
        let h = try HubHarness()
        let token = try await h.provision("m1")
        try await h.submit("read", to: "m1")
        let body = try WireJSON.encode(makePoll("m1", seq: 7, uplink: [reading("r1")]))
        let first = try await h.hub.poll(body: body, authorization: "Bearer \(token)")
        // A new hub process over the same database file.
        let restarted = try HubHarness(directory: h.directory)
        let again = try await restarted.hub.poll(body: body, authorization: "Bearer \(token)")
        #expect(again == first)
    }

    @Test func reusedSequenceNumberWithADifferentBodyIsAConflict() async throws {
        let h = try HubHarness()
        let token = try await h.provision("m1")
        _ = try await h.poll(makePoll("m1", seq: 3, uplink: [reading("a")]), token: token)
        await #expect(throws: HubError.self) {
            _ = try await h.poll(makePoll("m1", seq: 3, uplink: [reading("b")]), token: token)
        }
        do {
            _ = try await h.poll(makePoll("m1", seq: 2), token: token)
            Issue.record("an older sequence number was accepted")
        } catch let error as HubError {
            #expect(error.status.code == 409)
            #expect(error.body.code == ErrorCode.sequenceConflict)
            #expect(error.body.lastSeq == 3)
        }
        // Nothing from the rejected request was stored.
        let stored = try await h.store.uplink(device: "m1", kind: nil, after: nil, limit: 10)
        #expect(stored.map(\.item.id) == ["a"])
    }

    @Test func aNewerPollSupersedesAHeldOne() async throws {
        let h = try HubHarness(systemClock: true)
        let token = try await h.provision("m1")
        let started = ContinuousClock.now
        let held = Task { try await h.poll(makePoll("m1", seq: 1, wait: 30), token: token) }
        try await waitUntil("the first poll is held") { h.hub.metrics.snapshot.heldPolls == 1 }
        let command = try await h.submit("read", to: "m1")
        // The submit woke the held poll; wait for it to finish before superseding the next one.
        let delivered = try await held.value
        #expect(delivered.requests.map(\.id) == [command.id])

        let second = Task { try await h.poll(makePoll("m1", seq: 2, acks: [command.id], wait: 30), token: token) }
        try await waitUntil("the second poll is held") { h.hub.metrics.snapshot.heldPolls == 1 }
        let third = try await h.poll(makePoll("m1", seq: 3), token: token)
        let superseded = try await second.value
        #expect(superseded.superseded == true)
        #expect(superseded.requests.isEmpty)
        #expect(third.superseded == nil)
        #expect(ContinuousClock.now - started < .seconds(15), "supersession must answer at once, not at the wait's end")
        #expect(h.hub.metrics.snapshot.supersededPolls == 1)
        // The superseded poll's ack was stored before it was held.
        #expect(try await h.hub.command(command.id).state == .acked)
    }

    @Test func aLongPollIsWokenByAnEnqueue() async throws {
        let h = try HubHarness(systemClock: true)
        let token = try await h.provision("m1")
        let held = Task { () -> (PollResponse, Duration) in
            let start = ContinuousClock.now
            let response = try await h.poll(makePoll("m1", seq: 1, wait: 30), token: token)
            return (response, ContinuousClock.now - start)
        }
        try await waitUntil("the poll is held") { h.hub.metrics.snapshot.heldPolls == 1 }
        let submittedAt = ContinuousClock.now
        let command = try await h.submit("relay", to: "m1") { $0.args = ["state": "open"] }
        let (response, _) = try await held.value
        let latency = ContinuousClock.now - submittedAt
        #expect(response.requests.map(\.id) == [command.id])
        #expect(response.requests.first?.args == ["state": "open"])
        #expect(latency < .seconds(2), "an enqueue must answer the held poll at once (took \(latency))")
    }

    @Test func aLongPollEndsEmptyWhenTheWaitRunsOut() async throws {
        let h = try HubHarness(systemClock: true)
        let token = try await h.provision("m1")
        let start = ContinuousClock.now
        let response = try await h.poll(makePoll("m1", seq: 1, wait: 0.3), token: token)
        #expect(response.requests.isEmpty)
        #expect(response.superseded == nil)
        #expect(ContinuousClock.now - start >= .milliseconds(250))
    }

    @Test func emptyPollsWriteNothingToTheStore() async throws {
        let h = try HubHarness()
        let token = try await h.provision("m1")
        _ = try await h.poll(makePoll("m1", seq: 1), token: token)
        let before = h.store.writeCount
        for seq in 2...101 {
            h.clock.advance(seconds: 1)
            let response = try await h.poll(makePoll("m1", seq: Int64(seq)), token: token)
            #expect(response.requests.isEmpty)
        }
        #expect(h.store.writeCount == before, "100 empty polls must cost zero store writes")
        #expect(h.hub.metrics.snapshot.emptyPolls >= 100)
        // Last-seen was kept in memory meanwhile, and one flush writes it in one transaction.
        #expect(try await h.hub.device("m1").lastSeenAt == h.clock.now())
        await h.hub.flushLastSeen()
        #expect(h.store.writeCount == before + 1)
        #expect(try await h.store.device(id: "m1")?.lastSeenAt == h.clock.now())
        // The counter does count: a poll that carries data writes.
        _ = try await h.poll(makePoll("m1", seq: 200, uplink: [reading("x")]), token: token)
        #expect(h.store.writeCount == before + 2)
    }

    @Test func moreSaysThereIsWorkBeyondAccept() async throws {
        let h = try HubHarness()
        let token = try await h.provision("m1")
        var ids: [String] = []
        for _ in 0..<3 { ids.append(try await h.submit("ping", to: "m1").id) }
        let first = try await h.poll(makePoll("m1", seq: 1, accept: 2), token: token)
        #expect(first.requests.map(\.id) == Array(ids.prefix(2)))
        #expect(first.more)
        #expect(first.nextPollAfter == 0)
        let second = try await h.poll(makePoll("m1", seq: 2, acks: first.requests.map(\.id), accept: 2), token: token)
        #expect(second.requests.map(\.id) == [ids[2]])
        #expect(!second.more)
        let none = try await h.poll(makePoll("m1", seq: 3, accept: 0), token: token)
        #expect(none.requests.isEmpty)
    }

    @Test func aCommandSentToAHeldPollIsStampedWhenItIsSent() async throws {
        let h = try HubHarness { $0.leaseSeconds = 20 }
        let token = try await h.provision("m1")
        let held = Task { try await h.poll(makePoll("m1", seq: 1, wait: 30), token: token) }
        try await waitUntil("the poll is held") { h.hub.metrics.snapshot.heldPolls == 1 }
        h.clock.advance(seconds: 15)  // the poll has been held for a while
        let command = try await h.submit("ping", to: "m1")
        let response = try await held.value
        #expect(response.requests.map(\.id) == [command.id])
        let view = try await h.hub.command(command.id)
        let dispatch = try #require(view.history?.first { $0.event == "dispatch" })
        #expect(dispatch.at == h.clock.now(), "dispatched now, not when the poll arrived")
        #expect(dispatch.at >= view.createdAt)
        #expect(view.leaseExpiresAt == h.clock.now().adding(seconds: 20), "the full lease from the moment it is sent")
    }

    @Test func cancelNoticesSurviveAHeldPollThatCarriedData() async throws {
        let h = try HubHarness(systemClock: true)
        let token = try await h.provision("m1")
        let command = try await h.submit("relay", to: "m1") { $0.args = ["state": "open"] }
        #expect(try await h.poll(makePoll("m1", seq: 1), token: token).requests.count == 1)
        _ = try await h.hub.cancel(command.id, reason: nil)
        // The next poll carries a reading and waits; no work arrives, but the notice must.
        let response = try await h.poll(makePoll("m1", seq: 2, uplink: [reading("r1")], wait: 0.2), token: token)
        #expect(response.cancel == [command.id])
        #expect(response.stored == ["r1"])
        #expect(try await h.poll(makePoll("m1", seq: 3), token: token).cancel.isEmpty)
    }

    @Test func moreIsTrueWhenWorkWaitsForADeviceThatAcceptsNone() async throws {
        let h = try HubHarness()
        let token = try await h.provision("m1")
        try await h.submit("ping", to: "m1")
        let busy = try await h.poll(makePoll("m1", seq: 1, accept: 0), token: token)
        #expect(busy.requests.isEmpty)
        #expect(busy.more)
        #expect(busy.nextPollAfter > 0, "a device taking no work is not told to poll again at once")
        let withData = try await h.poll(makePoll("m1", seq: 2, uplink: [reading("r")], accept: 0), token: token)
        #expect(withData.more)
        #expect(withData.nextPollAfter > 0)
    }
}
