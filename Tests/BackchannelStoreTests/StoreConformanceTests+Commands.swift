import BackchannelProtocol
import BackchannelStore
import Testing

extension StoreConformanceTests {
    @Test("submit stores a QUEUED command with its creation entry", arguments: StoreKind.allCases)
    func submitStores(kind: StoreKind) async throws {
        try await kind.withStore(devices: Self.devices) { store async throws in
            let writes = store.writeCount
            let command = F.command(
                args: ["register": 40001, "scale": 0.1, "tags": ["a", nil, true]], notBefore: F.at(5), key: "k1")
            let result = try await store.submit(command)
            #expect(result == .created(command))
            #expect(result.record == command)
            #expect(store.writeCount == writes + 1)
            #expect(try await store.command(id: command.id) == command)
            #expect(try await store.history(command: command.id) == [TransitionRecord.created(command)])
            #expect(try await store.command(id: "missing") == nil)
            #expect(try await store.history(command: "missing").isEmpty)
        }
    }

    @Test("submit to an unknown device fails and stores nothing", arguments: StoreKind.allCases)
    func submitUnknownDevice(kind: StoreKind) async throws {
        try await kind.withStore(devices: Self.devices) { store async throws in
            let writes = store.writeCount
            let command = F.command(device: "ghost")
            await expectStoreError(\.isUnknownDevice) { _ = try await store.submit(command) }
            #expect(try await store.command(id: command.id) == nil)
            #expect(store.writeCount == writes)
        }
    }

    @Test("a reused command id is a conflict", arguments: StoreKind.allCases)
    func submitDuplicateID(kind: StoreKind) async throws {
        try await kind.withStore(devices: Self.devices) { store async throws in
            try await store.submitNew(F.command(id: "c1"))
            let writes = store.writeCount
            await expectStoreError(\.isConflict) { _ = try await store.submit(F.command(id: "c1", name: "other")) }
            #expect(try await store.command(id: "c1")?.name == "read")
            #expect(store.writeCount == writes)
        }
    }

    @Test(
        "idempotency: same key and command → existing, no write; different command → mismatch",
        arguments: StoreKind.allCases)
    func idempotency(kind: StoreKind) async throws {
        try await kind.withStore(devices: Self.devices) { store async throws in
            let original = try await store.submitNew(F.command(id: "c1", args: ["n": 1], key: "k1"))
            let writes = store.writeCount

            let again = try await store.submit(F.command(id: "c2", args: ["n": 1], created: 5, key: "k1"))
            #expect(again == .existing(original))
            #expect(store.writeCount == writes)
            #expect(try await store.command(id: "c2") == nil)
            #expect(try await store.commands(CommandQuery()).map(\.id) == ["c1"])

            await expectStoreError(\.isIdempotencyMismatch) {
                _ = try await store.submit(F.command(id: "c3", args: ["n": 2], key: "k1"))
            }
            await expectStoreError(\.isIdempotencyMismatch) {
                _ = try await store.submit(F.command(id: "c4", name: "relay", args: ["n": 1], key: "k1"))
            }
            #expect(store.writeCount == writes)

            // The key is scoped to the device; commands without a key never collide.
            #expect(
                try await store.submit(F.command(id: "c5", device: "dev-2", args: ["n": 1], key: "k1")).record.id
                    == "c5")
            try await store.submitNew(F.command(id: "c6"))
            try await store.submitNew(F.command(id: "c7"))
            #expect(store.writeCount == writes + 3)

            // The existing command is returned in its current state.
            _ = try await store.cancel(command: "c1", at: F.at(9), reason: nil)
            let later = try await store.submit(F.command(id: "c8", args: ["n": 1], key: "k1"))
            #expect(later.record.state == .canceled)
            #expect(later.record.id == "c1")
        }
    }

    @Test(
        "commands are listed newest first, filtered by device and state, paged with `before`",
        arguments: StoreKind.allCases)
    func listCommands(kind: StoreKind) async throws {
        try await kind.withStore(devices: Self.devices) { store async throws in
            var ids: [String] = []
            for i in 0..<5 {
                ids.append(try await store.submitNew(F.command(device: "dev-1", created: Double(i))).id)
            }
            let other = try await store.submitNew(F.command(device: "dev-2", created: 10)).id
            _ = try await store.cancel(command: ids[1], at: F.at(20), reason: nil)
            _ = try await store.cancel(command: ids[3], at: F.at(20), reason: nil)

            let newestFirst = Array(ids.reversed())
            #expect(try await store.commands(CommandQuery(device: "dev-1")).map(\.id) == newestFirst)
            #expect(try await store.commands(CommandQuery()).map(\.id) == [other] + newestFirst)
            #expect(try await store.commands(CommandQuery(device: "dev-2")).map(\.id) == [other])
            #expect(try await store.commands(CommandQuery(device: "ghost")).isEmpty)
            #expect(try await store.commands(CommandQuery(state: .canceled)).map(\.id) == [ids[3], ids[1]])
            #expect(
                try await store.commands(CommandQuery(device: "dev-1", state: .queued)).map(\.id) == [
                    ids[4], ids[2], ids[0],
                ])
            #expect(try await store.commands(CommandQuery(device: "dev-2", state: .canceled)).isEmpty)

            var pages: [[String]] = []
            var cursor: String?
            repeat {
                let page = try await store.commands(CommandQuery(device: "dev-1", before: cursor, limit: 2)).map(\.id)
                if page.isEmpty { break }
                pages.append(page)
                cursor = page.last
            } while pages.count < 10
            #expect(pages == [[ids[4], ids[3]], [ids[2], ids[1]], [ids[0]]])
            #expect(try await store.commands(CommandQuery(state: .queued, before: ids[2])).map(\.id) == [ids[0]])

            let listed = try await store.commands(CommandQuery(device: "dev-1", state: .canceled, limit: 1))
            #expect(listed == [try await store.command(id: ids[3])!])
        }
    }

    @Test("cancel: notFound, canceled with the previous state, then alreadyTerminal", arguments: StoreKind.allCases)
    func cancel(kind: StoreKind) async throws {
        try await kind.withStore(devices: Self.devices) { store async throws in
            #expect(try await store.cancel(command: "ghost", at: F.at(1), reason: nil) == .notFound)

            let queued = try await store.submitNew(F.command(created: 0))
            let writes = store.writeCount
            let result = try await store.cancel(command: queued.id, at: F.at(10), reason: "wrong meter")
            guard case .canceled(let record, let previous) = result else {
                Issue.record("expected canceled, got \(result)")
                return
            }
            #expect(previous == .queued)
            #expect(record.state == .canceled)
            #expect(record.finishedAt == F.at(10))
            #expect(
                record.outcome == CommandOutcome(code: OutcomeCode.canceled, retryable: false, detail: "wrong meter"))
            #expect(try await store.command(id: queued.id) == record)
            #expect(store.writeCount == writes + 1)
            let last = try await store.history(command: queued.id).last
            #expect(
                last
                    == TransitionRecord(
                        command: queued.id, device: "dev-1", at: F.at(10), from: .queued, to: .canceled,
                        event: "cancel",
                        attempt: 0, detail: "wrong meter"))

            #expect(try await store.cancel(command: queued.id, at: F.at(11), reason: nil) == .alreadyTerminal(record))
            #expect(store.writeCount == writes + 1)
            #expect(try await store.history(command: queued.id).count == 2)

            let sent = try await store.submitNew(F.command(created: 1))
            try await store.poll(at: F.at(2), accept: 1)
            let second = try await store.cancel(command: sent.id, at: F.at(3), reason: nil)
            guard case .canceled(let canceled, .dispatched) = second else {
                Issue.record("expected canceled from DISPATCHED, got \(second)")
                return
            }
            #expect(canceled.attempt == 1)
            #expect(canceled.leaseExpiresAt == nil)
        }
    }

    @Test("pendingCount counts the device's commands that are not terminal", arguments: StoreKind.allCases)
    func pendingCount(kind: StoreKind) async throws {
        try await kind.withStore(devices: Self.devices) { store async throws in
            #expect(try await store.pendingCount(device: "dev-1") == 0)
            let a = try await store.submitNew(F.command(created: 0))
            let b = try await store.submitNew(F.command(created: 1))
            let c = try await store.submitNew(F.command(created: 2))
            try await store.submitNew(F.command(created: 3))
            try await store.submitNew(F.command(device: "dev-2", created: 4))
            try await store.poll(at: F.at(5), accept: 2)  // a, b dispatched
            try await store.poll(at: F.at(6), acks: [b.id])  // b acked
            _ = try await store.cancel(command: c.id, at: F.at(7), reason: nil)
            try await store.poll(at: F.at(8), results: [F.result(a.id)])  // a succeeded
            #expect(try await store.pendingCount(device: "dev-1") == 2)
            #expect(try await store.pendingCount(device: "dev-2") == 1)
            #expect(try await store.pendingCount(device: "ghost") == 0)
        }
    }

    @Test(
        "pendingWork: due now, the next notBefore beyond the horizon, expired ones ignored",
        arguments: StoreKind.allCases)
    func pendingWork(kind: StoreKind) async throws {
        try await kind.withStore(devices: Self.devices) { store async throws in
            let now = F.at(100)
            #expect(
                try await store.pendingWork(device: "dev-1", horizon: now, now: now)
                    == PendingWork(dueNow: false, nextNotBefore: nil))

            try await store.submitNew(F.command(created: 0, ttl: 50))  // expired by now
            try await store.submitNew(F.command(created: 1, ttl: 500, notBefore: F.at(300)))
            try await store.submitNew(F.command(created: 2, ttl: 500, notBefore: F.at(200)))
            try await store.submitNew(F.command(created: 3, ttl: 150, notBefore: F.at(400)))  // expires before notBefore... still listed until swept
            #expect(try await store.pendingWork(device: "dev-1", horizon: now, now: now).dueNow == false)
            #expect(try await store.pendingWork(device: "dev-1", horizon: now, now: now).nextNotBefore == F.at(200))
            #expect(
                try await store.pendingWork(device: "dev-1", horizon: F.at(200), now: now)
                    == PendingWork(dueNow: true, nextNotBefore: F.at(300)))
            #expect(
                try await store.pendingWork(device: "dev-1", horizon: F.at(250), now: now).nextNotBefore == F.at(300))
            #expect(
                try await store.pendingWork(device: "dev-2", horizon: F.at(1000), now: now)
                    == PendingWork(dueNow: false, nextNotBefore: nil))

            let due = try await store.submitNew(F.command(created: 4, ttl: 500))
            #expect(try await store.pendingWork(device: "dev-1", horizon: now, now: now).dueNow)
            try await store.poll(at: now, accept: 1)
            #expect(try await store.command(id: due.id)?.state == .dispatched)
            #expect(try await store.pendingWork(device: "dev-1", horizon: now, now: now).dueNow == false)
        }
    }
}
