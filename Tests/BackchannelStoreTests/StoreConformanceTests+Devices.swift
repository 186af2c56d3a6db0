import BackchannelProtocol
import BackchannelStore
import Testing

extension StoreConformanceTests {
    @Test("insertDevice stores every field; device(id:) reads it back", arguments: StoreKind.allCases)
    func insertAndGetDevice(kind: StoreKind) async throws {
        try await kind.withStore { store async throws in
            let device = DeviceRecord(
                id: "meter-7", name: "North feeder", labels: ["site": "north", "type": "meter"], tokenHash: "ab12",
                createdAt: F.t0, lastSeenAt: F.at(-60))
            try await store.insertDevice(device)
            #expect(store.writeCount == 1)
            #expect(try await store.device(id: "meter-7") == device)
            #expect(try await store.device(id: "meter-8") == nil)
            try await store.insertDevice(F.device("bare"))
            #expect(try await store.device(id: "bare") == F.device("bare"))
            #expect(store.writeCount == 2)
        }
    }

    @Test("inserting an existing device id is a conflict and changes nothing", arguments: StoreKind.allCases)
    func duplicateDevice(kind: StoreKind) async throws {
        try await kind.withStore { store async throws in
            try await store.insertDevice(F.device("d1", name: "first"))
            await expectStoreError({ $0.isConflict && !$0.isUnknownDevice }) {
                try await store.insertDevice(F.device("d1", name: "second"))
            }
            #expect(try await store.device(id: "d1")?.name == "first")
            #expect(store.writeCount == 1)
        }
    }

    @Test("devices are listed by id, page by page, after a cursor", arguments: StoreKind.allCases)
    func devicePages(kind: StoreKind) async throws {
        try await kind.withStore { store async throws in
            for id in ["d3", "d1", "d5", "d2", "d4"] { try await store.insertDevice(F.device(id)) }
            #expect(try await store.devices(after: nil, limit: 2).map(\.id) == ["d1", "d2"])
            #expect(try await store.devices(after: "d2", limit: 2).map(\.id) == ["d3", "d4"])
            #expect(try await store.devices(after: "d4", limit: 2).map(\.id) == ["d5"])
            #expect(try await store.devices(after: "d5", limit: 2).isEmpty)
            #expect(try await store.devices(after: "d25", limit: 10).map(\.id) == ["d3", "d4", "d5"])
            #expect(
                try await store.devices(after: nil, limit: 10) == ["d1", "d2", "d3", "d4", "d5"].map { F.device($0) })
            #expect(try await store.devices(after: nil, limit: 0).isEmpty)
        }
    }

    @Test("setTokenHash replaces the hash, and reports unknown devices", arguments: StoreKind.allCases)
    func tokenHash(kind: StoreKind) async throws {
        try await kind.withStore(devices: Self.devices) { store async throws in
            let writes = store.writeCount
            #expect(try await store.setTokenHash("new-hash", device: "dev-1"))
            #expect(try await store.device(id: "dev-1")?.tokenHash == "new-hash")
            #expect(try await store.device(id: "dev-2")?.tokenHash == "hash-dev-2")
            #expect(store.writeCount == writes + 1)
            #expect(try await store.setTokenHash("x", device: "ghost") == false)
            #expect(store.writeCount == writes + 1)
            #expect(try await store.device(id: "ghost") == nil)
        }
    }

    @Test("recordLastSeen updates a batch in one write and skips unknown devices", arguments: StoreKind.allCases)
    func lastSeen(kind: StoreKind) async throws {
        try await kind.withStore(devices: ["dev-1", "dev-2", "dev-3"]) { store async throws in
            let writes = store.writeCount
            try await store.recordLastSeen(["dev-1": F.at(10), "dev-2": F.at(20), "ghost": F.at(30)])
            #expect(store.writeCount == writes + 1)
            #expect(try await store.device(id: "dev-1")?.lastSeenAt == F.at(10))
            #expect(try await store.device(id: "dev-2")?.lastSeenAt == F.at(20))
            #expect(try await store.device(id: "dev-3")?.lastSeenAt == nil)
            #expect(try await store.device(id: "ghost") == nil)

            try await store.recordLastSeen([:])
            try await store.recordLastSeen(["ghost": F.at(40)])
            #expect(store.writeCount == writes + 1)

            try await store.recordLastSeen(["dev-1": F.at(50)])
            #expect(try await store.device(id: "dev-1")?.lastSeenAt == F.at(50))
            #expect(store.writeCount == writes + 2)
        }
    }

    /// Memory and SQLite disagree here: SQLite keeps the latest time and writes nothing for a
    /// stale or repeated batch; the memory store overwrites and counts a write. See the report.
    @Test(
        "recordLastSeen never moves lastSeenAt backwards and writes nothing when nothing changes",
        arguments: StoreKind.allCases)
    func lastSeenIsMonotonic(kind: StoreKind) async throws {
        try await kind.withStore(devices: Self.devices) { store async throws in
            try await store.recordLastSeen(["dev-1": F.at(50)])
            let writes = store.writeCount
            try await store.recordLastSeen(["dev-1": F.at(10)])  // a stale batch, e.g. from a slower flush
            #expect(try await store.device(id: "dev-1")?.lastSeenAt == F.at(50))
            try await store.recordLastSeen(["dev-1": F.at(50)])  // the same time again
            #expect(store.writeCount == writes)
        }
    }
}
