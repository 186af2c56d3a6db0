import BackchannelHub
import BackchannelProtocol
import BackchannelSQLite
import BackchannelStore
import Foundation
import Testing

/// Expiry, lease lapse and redelivery, execution timeouts and `notBefore`, on a manual clock.
@Suite struct DeadlineTests {
    @Test func aCommandNotAcknowledgedByExpiresAtExpires() async throws {
        let h = try HubHarness()
        let token = try await h.provision("m1")
        let command = try await h.submit("read", to: "m1") { $0.ttl = 10 }
        h.clock.advance(seconds: 9.999)
        #expect(await h.hub.sweepDeadlines().isEmpty, "nothing expires before expiresAt")
        h.clock.advance(seconds: 0.001)
        let transitions = await h.hub.sweepDeadlines()
        #expect(transitions.map(\.to) == [.expired])
        let view = try await h.hub.command(command.id)
        #expect(view.state == .expired)
        #expect(view.outcome?.code == OutcomeCode.expired)
        #expect(view.history?.map(\.to) == [.queued, .expired])
        // An expired command is never delivered.
        let response = try await h.poll(makePoll("m1", seq: 1), token: token)
        #expect(response.requests.isEmpty)
    }

    @Test func aDispatchedCommandExpiresToo() async throws {
        let h = try HubHarness { $0.leaseSeconds = 60 }
        let token = try await h.provision("m1")
        let command = try await h.submit("read", to: "m1") { $0.ttl = 10 }
        _ = try await h.poll(makePoll("m1", seq: 1), token: token)
        h.clock.advance(seconds: 11)
        await h.hub.sweepDeadlines()
        #expect(try await h.hub.command(command.id).state == .expired)
    }

    @Test func aLapsedLeaseIsRedeliveredWithTheNextAttempt() async throws {
        let h = try HubHarness { $0.leaseSeconds = 5 }
        let token = try await h.provision("m1")
        let command = try await h.submit("relay", to: "m1") { $0.args = ["state": "open"] }
        let first = try await h.poll(makePoll("m1", seq: 1), token: token)
        #expect(first.requests.map(\.attempt) == [1])
        #expect(first.ackWithin == 5)
        // The response is lost: no ack. Before the lease lapses nothing is redelivered.
        h.clock.advance(seconds: 4)
        await h.hub.sweepDeadlines()
        #expect(try await h.poll(makePoll("m1", seq: 2), token: token).requests.isEmpty)
        h.clock.advance(seconds: 1)
        await h.hub.sweepDeadlines()
        #expect(try await h.hub.command(command.id).state == .queued)
        let second = try await h.poll(makePoll("m1", seq: 3), token: token)
        #expect(second.requests.map(\.id) == [command.id])
        #expect(second.requests.map(\.attempt) == [2])
        _ = try await h.poll(
            makePoll(
                "m1", seq: 4, acks: [command.id],
                results: [LogicalResult(id: command.id, status: .succeeded, data: ["relay": "open"])]),
            token: token
        )
        let view = try await h.hub.command(command.id)
        #expect(view.state == .succeeded)
        #expect(view.outcome?.data == ["relay": "open"])
        #expect(view.history?.map(\.event) == ["submit", "dispatch", "lease-lapsed", "dispatch", "ack", "result"])
    }

    @Test func theLastLapsedAttemptFailsAsUndeliverable() async throws {
        let h = try HubHarness { $0.leaseSeconds = 1 }
        let token = try await h.provision("m1")
        let command = try await h.submit("ping", to: "m1") { $0.maxAttempts = 2 }
        for seq in 1...2 {
            #expect(try await h.poll(makePoll("m1", seq: Int64(seq)), token: token).requests.count == 1)
            h.clock.advance(seconds: 1)
            await h.hub.sweepDeadlines()
        }
        let view = try await h.hub.command(command.id)
        #expect(view.state == .failed)
        #expect(view.outcome?.code == OutcomeCode.undeliverable)
        #expect(view.attempt == 2)
        #expect(try await h.poll(makePoll("m1", seq: 3), token: token).requests.isEmpty)
    }

    @Test func anAcknowledgedCommandWithoutAResultTimesOut() async throws {
        let h = try HubHarness()
        let token = try await h.provision("m1")
        let command = try await h.submit("read", to: "m1") { $0.timeout = 30 }
        _ = try await h.poll(makePoll("m1", seq: 1), token: token)
        _ = try await h.poll(makePoll("m1", seq: 2, acks: [command.id]), token: token)
        h.clock.advance(seconds: 29)
        await h.hub.sweepDeadlines()
        #expect(try await h.hub.command(command.id).state == .acked)
        h.clock.advance(seconds: 1)
        await h.hub.sweepDeadlines()
        #expect(try await h.hub.command(command.id).state == .timedOut)
        // A result that arrives later is recorded in history without changing the state.
        _ = try await h.poll(
            makePoll("m1", seq: 3, results: [LogicalResult(id: command.id, status: .succeeded)]), token: token
        )
        let view = try await h.hub.command(command.id)
        #expect(view.state == .timedOut)
        #expect(view.history?.last?.event == "late-result")
    }

    @Test func notBeforeHoldsDispatchUntilItsTime() async throws {
        let h = try HubHarness { $0.dispatchLead = 0 }
        let token = try await h.provision("m1")
        let at = h.clock.now().adding(seconds: 60)
        let command = try await h.submit("relay", to: "m1") {
            $0.args = ["state": "close"]
            $0.notBefore = at
        }
        #expect(try await h.poll(makePoll("m1", seq: 1), token: token).requests.isEmpty)
        h.clock.advance(seconds: 59.999)
        #expect(try await h.poll(makePoll("m1", seq: 2), token: token).requests.isEmpty)
        h.clock.advance(seconds: 0.001)
        let due = try await h.poll(makePoll("m1", seq: 3), token: token)
        #expect(due.requests.map(\.id) == [command.id])
        #expect(due.requests.first?.notBefore == at)
    }

    @Test func scheduledCommandsAreDispatchedAheadByTheLeadWindow() async throws {
        let h = try HubHarness { $0.dispatchLead = 30 }
        let token = try await h.provision("m1")
        let at = h.clock.now().adding(seconds: 60)
        let command = try await h.submit("start", to: "m1") { $0.notBefore = at }
        #expect(try await h.poll(makePoll("m1", seq: 1), token: token).requests.isEmpty, "60 s ahead: not yet")
        h.clock.advance(seconds: 30)
        let early = try await h.poll(makePoll("m1", seq: 2), token: token)
        #expect(early.requests.map(\.id) == [command.id], "30 s ahead: delivered for the device to hold")
        #expect(early.requests.first?.notBefore == at)
    }

    @Test func cancelingADeliveredCommandTellsTheDevice() async throws {
        let h = try HubHarness()
        let token = try await h.provision("m1")
        let queued = try await h.submit("ping", to: "m1")
        let view = try await h.hub.cancel(queued.id, reason: "operator changed their mind")
        #expect(view.state == .canceled)
        #expect(
            try await h.poll(makePoll("m1", seq: 1), token: token).requests.isEmpty,
            "a canceled command is not delivered")

        let delivered = try await h.submit("relay", to: "m1") { $0.args = ["state": "open"] }
        #expect(try await h.poll(makePoll("m1", seq: 2), token: token).requests.map(\.id) == [delivered.id])
        _ = try await h.hub.cancel(delivered.id, reason: nil)
        let next = try await h.poll(makePoll("m1", seq: 3), token: token)
        #expect(next.cancel == [delivered.id])
        #expect(try await h.poll(makePoll("m1", seq: 4), token: token).cancel.isEmpty, "announced once")
        await #expect(throws: HubError.self) { _ = try await h.hub.cancel(delivered.id, reason: nil) }
    }
}
