import BackchannelProtocol
import BackchannelStore
import Testing

extension StoreConformanceTests {
    @Test("intervals: upsert by (device, start), range reads, retention", arguments: StoreKind.allCases)
    func intervalStorage(kind: StoreKind) async throws {
        try await kind.withStore { store async throws in
            func interval(_ device: String, _ minute: Int, _ kWh: Double, kvarh: Double? = nil) -> IntervalRecord {
                IntervalRecord(
                    device: device, start: F.at(Double(minute * 60)), seconds: 900, kWh: kWh, kvarh: kvarh)
            }
            try await store.putIntervals([interval("m1", 0, 1.0), interval("m1", 15, 2.0, kvarh: 0.5)])
            try await store.putIntervals([interval("m2", 0, 9.0)])
            // A meter resending an interval replaces it instead of adding a second row.
            try await store.putIntervals([interval("m1", 15, 2.5, kvarh: 0.25), interval("m1", 30, 3.0)])
            let all = try await store.intervals(device: "m1", startingIn: F.at(0)..<F.at(3600))
            #expect(all.map(\.kWh) == [1.0, 2.5, 3.0])
            #expect(all[1].kvarh == 0.25)
            #expect(all[0].kvarh == nil)
            // The range is half-open on the start: [15 min, 30 min) holds only the 15-minute interval.
            let middle = try await store.intervals(device: "m1", startingIn: F.at(900)..<F.at(1800))
            #expect(middle.map(\.start) == [F.at(900)])
            // Retention removes whole intervals that started before the cutoff, every device's.
            #expect(try await store.pruneIntervals(before: F.at(900)) == 2)
            #expect(try await store.intervals(device: "m1", startingIn: F.at(0)..<F.at(3600)).count == 2)
            #expect(try await store.intervals(device: "m2", startingIn: F.at(0)..<F.at(3600)).isEmpty)
        }
    }

    @Test(
        "power documents: replace by key, filter by tenant, device and time, newest first",
        arguments: StoreKind.allCases)
    func powerDocuments(kind: StoreKind) async throws {
        try await kind.withStore { store async throws in
            try await store.putPowerDocuments([
                PowerDocument(
                    kind: "outage", key: "o1", tenant: "acme", device: "m1", at: F.at(10), body: ["open": true]),
                PowerDocument(kind: "outage", key: "o2", tenant: "acme", device: "m2", at: F.at(20), body: [:]),
                PowerDocument(kind: "outage", key: "o3", tenant: "globex", device: "g1", at: F.at(30), body: [:]),
                PowerDocument(kind: "tariff", key: "t1", tenant: "acme", device: nil, at: F.at(5), body: ["name": "T"]),
            ])
            try await store.putPowerDocuments([
                PowerDocument(
                    kind: "outage", key: "o1", tenant: "acme", device: "m1", at: F.at(40), body: ["open": false])
            ])
            #expect(try await store.powerDocument(kind: "outage", key: "o1")?.body == ["open": false])
            #expect(try await store.powerDocument(kind: "tariff", key: "o1") == nil)
            let acme = try await store.powerDocuments(PowerDocumentQuery(kind: "outage", tenant: "acme"))
            #expect(acme.map(\.key) == ["o1", "o2"])
            let m2 = try await store.powerDocuments(PowerDocumentQuery(kind: "outage", device: "m2"))
            #expect(m2.map(\.key) == ["o2"])
            let early = try await store.powerDocuments(PowerDocumentQuery(kind: "outage", range: F.at(0)..<F.at(30)))
            #expect(early.map(\.key) == ["o2"])
            #expect(try await store.powerDocuments(PowerDocumentQuery(kind: "outage", limit: 1)).map(\.key) == ["o1"])
            #expect(try await store.deletePowerDocument(kind: "outage", key: "o2"))
            #expect(try await store.deletePowerDocument(kind: "outage", key: "o2") == false)
            #expect(try await store.powerDocuments(PowerDocumentQuery(kind: "outage")).count == 2)
        }
    }
}
