import BackchannelProtocol
import BackchannelStore
import Foundation
import Testing

extension StoreConformanceTests {
    @Test("sweep: a lapsed lease requeues; redelivery increments the attempt", arguments: StoreKind.allCases)
    func sweepLeaseLapse(kind: StoreKind) async throws {
        try await kind.withStore(devices: Self.devices) { store async throws in
            let command = try await store.submitNew(F.command(maxAttempts: 3))
            try await store.poll(at: F.at(1), accept: 1, lease: 30)  // lease until 31

            let writes = store.writeCount
            #expect(try await store.sweep(at: F.at(30.999), limit: 100) == ExchangePlan())
            #expect(store.writeCount == writes, "a sweep with nothing due writes nothing")

            let plan = try await store.sweep(at: F.at(31), limit: 100)
            #expect(store.writeCount == writes + 1)
            let requeued = try #require(try await store.command(id: command.id))
            #expect(plan.updated == [requeued])
            #expect(requeued.state == .queued)
            #expect(requeued.attempt == 1)
            #expect(requeued.leaseExpiresAt == nil)
            #expect(plan.transitions.map(\.event) == ["lease-lapsed"])

            let again = try await store.poll(at: F.at(40), accept: 1, lease: 30)
            #expect(again.plan.dispatched.map(\.attempt) == [2])
            #expect(again.plan.dispatched.first?.logicalRequest.attempt == 2)
            #expect(
                try await store.history(command: command.id).map(\.event)
                    == ["submit", "dispatch", "lease-lapsed", "dispatch"])

            // A late ack of the first delivery still counts after the requeue.
            _ = try await store.sweep(at: F.at(70), limit: 100)
            try await store.poll(at: F.at(71), acks: [command.id])
            #expect(try await store.command(id: command.id)?.state == .acked)
        }
    }

    @Test(
        "sweep: the lease lapsing on the last attempt fails the command as undeliverable", arguments: StoreKind.allCases
    )
    func sweepUndeliverable(kind: StoreKind) async throws {
        try await kind.withStore(devices: Self.devices) { store async throws in
            let command = try await store.submitNew(F.command(maxAttempts: 2))
            for round in 0..<2 {
                let start = Double(round * 100)
                try await store.poll(at: F.at(start + 1), accept: 1, lease: 30)
                _ = try await store.sweep(at: F.at(start + 31), limit: 100)
            }
            let failed = try #require(try await store.command(id: command.id))
            #expect(failed.state == .failed)
            #expect(failed.attempt == 2)
            #expect(failed.outcome?.code == OutcomeCode.undeliverable)
            #expect(failed.finishedAt == F.at(131))
            #expect(try await store.poll(at: F.at(200), accept: 1).plan.dispatched.isEmpty)
            #expect(try await store.pendingCount(device: "dev-1") == 0)
        }
    }

    @Test(
        "sweep: expiry of QUEUED and DISPATCHED commands, expiry winning over a lapsed lease",
        arguments: StoreKind.allCases)
    func sweepExpiry(kind: StoreKind) async throws {
        try await kind.withStore(devices: Self.devices) { store async throws in
            let queued = try await store.submitNew(F.command(device: "dev-2", created: 0, ttl: 50))
            let sent = try await store.submitNew(F.command(device: "dev-1", created: 1, ttl: 20))  // expires at 21
            try await store.poll(at: F.at(2), accept: 1, lease: 30)  // lease until 32

            let first = try await store.sweep(at: F.at(21), limit: 100)
            #expect(first.updated.map(\.id) == [sent.id])
            #expect(try await store.command(id: sent.id)?.state == .expired)
            #expect(try await store.command(id: sent.id)?.outcome?.code == OutcomeCode.expired)

            _ = try await store.sweep(at: F.at(60), limit: 100)
            let expired = try #require(try await store.command(id: queued.id))
            #expect(expired.state == .expired)
            #expect(expired.finishedAt == F.at(60))
            #expect(try await store.history(command: queued.id).last?.event == "expire")
            #expect(try await store.sweep(at: F.at(1000), limit: 100) == ExchangePlan())
        }
    }

    @Test("sweep: an ACKED command without a result times out", arguments: StoreKind.allCases)
    func sweepTimeout(kind: StoreKind) async throws {
        try await kind.withStore(devices: Self.devices) { store async throws in
            let command = try await store.submitNew(F.command(ttl: 10, timeoutSeconds: 60))
            try await store.poll(at: F.at(1), accept: 1)
            try await store.poll(at: F.at(2), acks: [command.id])  // result due at 62; expiry no longer applies
            #expect(try await store.sweep(at: F.at(61), limit: 100) == ExchangePlan())
            let plan = try await store.sweep(at: F.at(62), limit: 100)
            #expect(plan.transitions.map(\.to) == [.timedOut])
            let timedOut = try #require(try await store.command(id: command.id))
            #expect(timedOut.state == .timedOut)
            #expect(timedOut.outcome?.code == OutcomeCode.timedOut)
            #expect(timedOut.resultDeadline == nil)
        }
    }

    @Test("sweep handles at most `limit` commands per call", arguments: StoreKind.allCases)
    func sweepLimit(kind: StoreKind) async throws {
        try await kind.withStore(devices: Self.devices) { store async throws in
            for i in 0..<3 { try await store.submitNew(F.command(created: Double(i), ttl: 10)) }
            let writes = store.writeCount
            #expect(try await store.sweep(at: F.at(100), limit: 2).updated.count == 2)
            #expect(try await store.sweep(at: F.at(100), limit: 2).updated.count == 1)
            #expect(try await store.sweep(at: F.at(100), limit: 2).updated.isEmpty)
            #expect(store.writeCount == writes + 2)
            #expect(try await store.commands(CommandQuery(state: .expired)).count == 3)
        }
    }

    @Test(
        "nextDeadline is the earliest expiry, lease or result deadline of open commands", arguments: StoreKind.allCases)
    func nextDeadline(kind: StoreKind) async throws {
        try await kind.withStore(devices: Self.devices) { store async throws in
            #expect(try await store.nextDeadline() == nil)
            let a = try await store.submitNew(F.command(device: "dev-1", created: 0, ttl: 500))
            let b = try await store.submitNew(F.command(device: "dev-2", created: 1, ttl: 300))
            #expect(try await store.nextDeadline() == F.at(301))

            try await store.poll("dev-1", at: F.at(10), accept: 1, lease: 30)  // a: lease until 40
            #expect(try await store.nextDeadline() == F.at(40))
            try await store.poll("dev-1", at: F.at(20), acks: [a.id])  // a: result due at 80
            #expect(try await store.nextDeadline() == F.at(80))
            try await store.poll("dev-1", at: F.at(21), results: [F.result(a.id)])
            #expect(try await store.nextDeadline() == F.at(301))
            _ = try await store.cancel(command: b.id, at: F.at(22), reason: nil)
            #expect(try await store.nextDeadline() == nil)
        }
    }

    @Test("uplink is listed newest first, filtered by kind, paged with a seq cursor", arguments: StoreKind.allCases)
    func uplinkListing(kind: StoreKind) async throws {
        try await kind.withStore(devices: Self.devices) { store async throws in
            try await store.poll(at: F.at(1), uplink: [F.uplink("r1"), F.uplink("e1", kind: .event, name: "alarm")])
            try await store.poll(
                at: F.at(2),
                uplink: [F.uplink("r2", data: ["kwh": 2.5]), F.uplink("e2", kind: .event), F.uplink("r3")])
            try await store.poll("dev-2", at: F.at(3), uplink: [F.uplink("x1")])

            let all = try await store.uplink(device: "dev-1", kind: nil, after: nil, limit: 10)
            #expect(all.map(\.item.id) == ["r3", "e2", "r2", "e1", "r1"])
            #expect(all.allSatisfy { $0.device == "dev-1" })
            #expect(zip(all, all.dropFirst()).allSatisfy { $0.seq > $1.seq })
            #expect(all.first { $0.item.id == "r2" }?.item == F.uplink("r2", data: ["kwh": 2.5]))
            #expect(all.first { $0.item.id == "e1" }?.item == F.uplink("e1", kind: .event, name: "alarm"))
            #expect(all.first { $0.item.id == "e1" }?.receivedAt == F.at(1))
            #expect(all.first { $0.item.id == "e2" }?.receivedAt == F.at(2))
            #expect(all.first?.view.receivedAt == F.at(2))

            #expect(
                try await store.uplink(device: "dev-1", kind: .reading, after: nil, limit: 10).map(\.item.id) == [
                    "r3", "r2", "r1",
                ])
            #expect(
                try await store.uplink(device: "dev-1", kind: .event, after: nil, limit: 10).map(\.item.id) == [
                    "e2", "e1",
                ])
            #expect(try await store.uplink(device: "dev-2", kind: nil, after: nil, limit: 10).map(\.item.id) == ["x1"])
            #expect(try await store.uplink(device: "ghost", kind: nil, after: nil, limit: 10).isEmpty)

            var pages: [[String]] = []
            var cursor: Int64?
            while pages.count < 10 {
                let page = try await store.uplink(device: "dev-1", kind: nil, after: cursor, limit: 2)
                if page.isEmpty { break }
                pages.append(page.map(\.item.id))
                cursor = page.last?.seq
            }
            #expect(pages == [["r3", "e2"], ["r2", "e1"], ["r1"]])
            let readingsAfterR3 = try await store.uplink(device: "dev-1", kind: .reading, after: all[0].seq, limit: 1)
            #expect(readingsAfterR3.map(\.item.id) == ["r2"])
        }
    }

    @Test(
        "writeCount grows by exactly one per changing operation and not at all otherwise", arguments: StoreKind.allCases
    )
    func writeCount(kind: StoreKind) async throws {
        try await kind.withStore { store async throws in
            var expected: UInt64 = 0
            func check(_ changes: Bool, _ what: String, sourceLocation: SourceLocation = #_sourceLocation) {
                if changes { expected += 1 }
                #expect(store.writeCount == expected, "\(what)", sourceLocation: sourceLocation)
            }
            check(false, "a new store")
            try await store.insertDevice(F.device("dev-1")); check(true, "insertDevice")
            _ = try? await store.insertDevice(F.device("dev-1")); check(false, "insertDevice conflict")
            _ = try await store.setTokenHash("h2", device: "dev-1"); check(true, "setTokenHash")
            _ = try await store.setTokenHash("h2", device: "ghost"); check(false, "setTokenHash unknown")
            try await store.recordLastSeen(["dev-1": F.at(1)]); check(true, "recordLastSeen")
            try await store.recordLastSeen([:]); check(false, "recordLastSeen empty")
            let command = try await store.submitNew(F.command(key: "k")); check(true, "submit")
            _ = try await store.submit(F.command(id: "other", key: "k")); check(false, "submit idempotent")
            _ = try? await store.submit(F.command(device: "ghost")); check(false, "submit unknown device")
            try await store.submitNew(F.command(id: "second", created: 1)); check(true, "submit second")
            try await store.poll(at: F.at(2), accept: 1); check(true, "exchange dispatching")
            try await store.poll(at: F.at(3), accept: 1); check(true, "exchange dispatching again")
            try await store.poll(at: F.at(4), accept: 1); check(false, "exchange with nothing to do")
            try await store.poll(at: F.at(5), acks: [command.id], results: [F.result(command.id)], accept: 1)
            check(true, "exchange with an ack and a result")
            try await store.poll(at: F.at(6), uplink: [F.uplink("u1"), F.uplink("u2")]); check(true, "uplink")
            try await store.poll(at: F.at(7), uplink: [F.uplink("u1")]); check(false, "stored uplink again")
            _ = try await store.cancel(command: "second", at: F.at(8), reason: nil); check(true, "cancel")
            _ = try await store.cancel(command: "second", at: F.at(9), reason: nil); check(false, "cancel terminal")
            _ = try await store.cancel(command: "ghost", at: F.at(9), reason: nil); check(false, "cancel unknown")
            try await store.submitNew(F.command(id: "third", created: 10, ttl: 5)); check(true, "submit third")
            _ = try await store.sweep(at: F.at(100), limit: 10); check(true, "sweep")
            _ = try await store.sweep(at: F.at(100), limit: 10); check(false, "sweep nothing due")
            _ = try await store.device(id: "dev-1")
            _ = try await store.devices(after: nil, limit: 10)
            _ = try await store.commands(CommandQuery())
            _ = try await store.history(command: command.id)
            _ = try await store.pendingCount(device: "dev-1")
            _ = try await store.pendingWork(device: "dev-1", horizon: F.at(100), now: F.at(100))
            _ = try await store.nextDeadline()
            _ = try await store.uplink(device: "dev-1", kind: nil, after: nil, limit: 10)
            check(false, "reads")
        }
    }
}
