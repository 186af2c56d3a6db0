import BackchannelProtocol
import BackchannelStore
import Foundation
import Testing

extension StoreConformanceTests {
    static func memo(_ seq: Int64) -> ExchangeMemo {
        ExchangeMemo(seq: seq, requestHash: "req-\(seq)", response: Data("response \(seq)".utf8))
    }

    @Test("uplink is stored once per (device, id): newlyStored vs stored", arguments: StoreKind.allCases)
    func uplinkOnce(kind: StoreKind) async throws {
        try await kind.withStore(devices: Self.devices) { store async throws in
            var writes = store.writeCount
            let first = try await store.poll(at: F.at(1), uplink: [F.uplink("u1"), F.uplink("u2", kind: .event)])
            #expect(first.stored == ["u1", "u2"])
            #expect(first.newlyStored == ["u1", "u2"])
            #expect(first.wrote)
            #expect(store.writeCount == writes + 1)
            writes = store.writeCount

            let second = try await store.poll(at: F.at(2), uplink: [F.uplink("u1"), F.uplink("u3")])
            #expect(second.stored == ["u1", "u3"])
            #expect(second.newlyStored == ["u3"])
            #expect(store.writeCount == writes + 1)
            writes = store.writeCount

            let resent = try await store.poll(at: F.at(3), uplink: [F.uplink("u2", data: ["changed": true])])
            #expect(resent.stored == ["u2"])
            #expect(resent.newlyStored == [])
            #expect(!resent.wrote)
            #expect(store.writeCount == writes)
            let u2 = try await store.uplink(device: "dev-1", kind: .event, after: nil, limit: 10)
            #expect(u2.map(\.item) == [F.uplink("u2", kind: .event)], "the first copy is kept")
            #expect(u2.first?.receivedAt == F.at(1))

            let otherDevice = try await store.poll("dev-2", at: F.at(4), uplink: [F.uplink("u1")])
            #expect(otherDevice.newlyStored == ["u1"])
            #expect(try await store.uplink(device: "dev-1", kind: nil, after: nil, limit: 10).count == 3)
        }
    }

    @Test("acks and results move commands and append history", arguments: StoreKind.allCases)
    func acksAndResults(kind: StoreKind) async throws {
        try await kind.withStore(devices: Self.devices) { store async throws in
            let command = try await store.submitNew(F.command(created: 0, timeoutSeconds: 60))
            let dispatch = try await store.poll(at: F.at(1), accept: 1, lease: 30)
            #expect(dispatch.plan.dispatched.map(\.id) == [command.id])
            #expect(try await store.command(id: command.id) == dispatch.plan.dispatched.first)

            let writes = store.writeCount
            let ack = try await store.poll(at: F.at(2), acks: [command.id])
            #expect(ack.wrote)
            #expect(store.writeCount == writes + 1)
            let acked = try #require(try await store.command(id: command.id))
            #expect(acked.state == .acked)
            #expect(acked.ackedAt == F.at(2))
            #expect(acked.resultDeadline == F.at(62))
            #expect(acked.leaseExpiresAt == nil)
            #expect(ack.plan.updated == [acked])

            let report = LogicalResult(
                id: command.id, status: .failed, code: "relay_stuck", retryable: true, detail: "contact welded",
                data: ["position": "closed"], finishedAt: F.at(2.5))
            let result = try await store.poll(at: F.at(3), results: [report])
            let done = try #require(try await store.command(id: command.id))
            #expect(result.plan.updated == [done])
            #expect(done.state == .failed)
            #expect(done.finishedAt == F.at(3))
            #expect(
                done.outcome
                    == CommandOutcome(
                        status: .failed, code: "relay_stuck", retryable: true, detail: "contact welded",
                        data: ["position": "closed"]))

            let history = try await store.history(command: command.id)
            #expect(history.map(\.event) == ["submit", "dispatch", "ack", "result"])
            #expect(history.map(\.from) == [nil, .queued, .dispatched, .acked])
            #expect(history.map(\.to) == [.queued, .dispatched, .acked, .failed])
            #expect(history.map(\.at) == [F.t0, F.at(1), F.at(2), F.at(3)])
            #expect(history.map(\.attempt) == [0, 1, 1, 1])
            #expect(
                Array(history.dropFirst()) == dispatch.plan.transitions + ack.plan.transitions + result.plan.transitions
            )

            // A repeated result changes nothing and writes nothing; a contradicting one is recorded as late.
            let repeatWrites = store.writeCount
            let repeated = try await store.poll(at: F.at(4), results: [report])
            #expect(!repeated.wrote)
            #expect(store.writeCount == repeatWrites)
            let late = try await store.poll(at: F.at(5), results: [F.result(command.id, .succeeded)])
            #expect(late.wrote)
            #expect(try await store.command(id: command.id) == done)
            #expect(try await store.history(command: command.id).last?.event == "late-result")
        }
    }

    @Test("dispatch takes at most `accept` in creation order and reports `more`", arguments: StoreKind.allCases)
    func dispatchOrder(kind: StoreKind) async throws {
        try await kind.withStore(devices: Self.devices) { store async throws in
            // Ids sort the other way round from creation: dispatch must follow creation.
            try await store.submitNew(F.command(id: "c-3", created: 1))
            try await store.submitNew(F.command(id: "c-2", created: 2))
            try await store.submitNew(F.command(id: "c-1", created: 3))
            try await store.submitNew(F.command(id: "c-0", device: "dev-2", created: 0))

            let none = try await store.poll(at: F.at(10), accept: 0)
            #expect(none.plan.dispatched.isEmpty)
            #expect(none.plan.more)
            #expect(!none.wrote)

            let first = try await store.poll(at: F.at(10), accept: 2, lease: 20)
            #expect(first.plan.dispatched.map(\.id) == ["c-3", "c-2"])
            #expect(first.plan.more)
            #expect(first.plan.dispatched.allSatisfy { $0.leaseExpiresAt == F.at(30) && $0.attempt == 1 })
            for record in first.plan.dispatched {
                #expect(try await store.command(id: record.id) == record)
            }

            let second = try await store.poll(at: F.at(11), accept: 2)
            #expect(second.plan.dispatched.map(\.id) == ["c-1"])
            #expect(!second.plan.more)
            let third = try await store.poll(at: F.at(12), accept: 2)
            #expect(third.plan.dispatched.isEmpty)
            #expect(!third.wrote)
            #expect(try await store.command(id: "c-0")?.state == .queued)
        }
    }

    @Test(
        "dispatch honours notBefore within the lead horizon, and skips expired commands", arguments: StoreKind.allCases)
    func dispatchHorizon(kind: StoreKind) async throws {
        try await kind.withStore(devices: Self.devices) { store async throws in
            let scheduled = try await store.submitNew(F.command(created: 0, notBefore: F.at(200)))
            let expiring = try await store.submitNew(F.command(created: 1, ttl: 99))  // expires at 100

            let early = try await store.poll(at: F.at(100), accept: 5, lead: 99.999)
            #expect(early.plan.dispatched.isEmpty)
            #expect(!early.plan.more)
            #expect(!early.wrote)
            #expect(try await store.command(id: expiring.id)?.state == .queued, "expiry is the sweep's job")

            let lead = try await store.poll(at: F.at(100), accept: 5, lead: 100)
            #expect(lead.plan.dispatched.map(\.id) == [scheduled.id])
            #expect(lead.plan.dispatched.first?.logicalRequest.notBefore == F.at(200))
        }
    }

    @Test("acks and results naming another device's command are ignored", arguments: StoreKind.allCases)
    func otherDevicesCommands(kind: StoreKind) async throws {
        try await kind.withStore(devices: Self.devices) { store async throws in
            let theirs = try await store.submitNew(F.command(device: "dev-2"))
            try await store.poll("dev-2", at: F.at(1), accept: 1)
            let before = try await store.command(id: theirs.id)
            let writes = store.writeCount

            let outcome = try await store.poll(
                "dev-1", at: F.at(2), acks: [theirs.id, "ghost"], results: [F.result(theirs.id)])
            #expect(outcome.plan.ignored == [theirs.id, "ghost", theirs.id])
            #expect(outcome.plan.transitions.isEmpty)
            #expect(!outcome.wrote)
            #expect(store.writeCount == writes)
            #expect(try await store.command(id: theirs.id) == before)
            #expect(try await store.history(command: theirs.id).count == 2)
        }
    }

    @Test("the memo is stored on the device only when the exchange changed something", arguments: StoreKind.allCases)
    func memoStored(kind: StoreKind) async throws {
        try await kind.withStore(devices: Self.devices) { store async throws in
            let calls = CallCounter()
            let command = try await store.submitNew(F.command())
            let first = try await store.poll(at: F.at(1), accept: 1) { outcome in
                calls.tick()
                #expect(outcome.plan.dispatched.map(\.id) == [command.id])
                return Self.memo(1)
            }
            #expect(first.wrote)
            #expect(calls.value == 1)
            #expect(try await store.device(id: "dev-1")?.lastExchange == Self.memo(1))
            #expect(try await store.device(id: "dev-2")?.lastExchange == nil)

            let writes = store.writeCount
            let empty = try await store.poll(at: F.at(2), accept: 5) { _ in
                calls.tick()
                return Self.memo(2)
            }
            #expect(!empty.wrote)
            #expect(empty.plan == ExchangePlan())
            #expect(empty.stored.isEmpty && empty.newlyStored.isEmpty)
            #expect(calls.value == 1, "no memo is built for an exchange that changes nothing")
            #expect(store.writeCount == writes)
            #expect(try await store.device(id: "dev-1")?.lastExchange == Self.memo(1))

            let uplinkOnly = try await store.poll(at: F.at(3), uplink: [F.uplink("u1")]) { _ in Self.memo(3) }
            #expect(uplinkOnly.wrote)
            #expect(try await store.device(id: "dev-1")?.lastExchange == Self.memo(3))
            #expect(store.writeCount == writes + 1)
        }
    }

    @Test("a throwing memo closure leaves nothing stored", arguments: StoreKind.allCases)
    func memoThrows(kind: StoreKind) async throws {
        try await kind.withStore(devices: Self.devices) { store async throws in
            let command = try await store.submitNew(F.command())
            try await store.poll(at: F.at(1), uplink: [F.uplink("u0")]) { _ in Self.memo(1) }
            let writes = store.writeCount
            let before = try await store.command(id: command.id)

            await #expect(throws: MemoFailed.self) {
                try await store.poll(at: F.at(2), uplink: [F.uplink("u1")], accept: 1) { _ in throw MemoFailed() }
            }
            #expect(store.writeCount == writes)
            #expect(try await store.command(id: command.id) == before)
            #expect(try await store.history(command: command.id).count == 1)
            #expect(try await store.uplink(device: "dev-1", kind: nil, after: nil, limit: 10).map(\.item.id) == ["u0"])
            #expect(try await store.device(id: "dev-1")?.lastExchange == Self.memo(1))

            // The same exchange succeeds afterwards, as if the failed one never happened.
            let retry = try await store.poll(at: F.at(3), uplink: [F.uplink("u1")], accept: 1) { _ in Self.memo(2) }
            #expect(retry.newlyStored == ["u1"])
            #expect(retry.plan.dispatched.map(\.id) == [command.id])
            #expect(try await store.device(id: "dev-1")?.lastExchange == Self.memo(2))
        }
    }

    @Test("a result for a command never delivered is ignored", arguments: StoreKind.allCases)
    func resultForQueued(kind: StoreKind) async throws {
        try await kind.withStore(devices: Self.devices) { store async throws in
            let command = try await store.submitNew(F.command())
            let outcome = try await store.poll(at: F.at(1), acks: [command.id], results: [F.result(command.id)])
            #expect(outcome.plan.ignored == [command.id, command.id])
            #expect(!outcome.wrote)
            #expect(try await store.command(id: command.id)?.state == .queued)
        }
    }
}
