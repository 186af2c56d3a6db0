import BackchannelAgent
import BackchannelHub
import BackchannelProtocol
import BackchannelSQLite
import BackchannelSecurity
import BackchannelSimulator
import Foundation
import GRDB
import Logging
import Testing

/// Multi-audience sealed readings: a meter seals billing for accounting and power quality for
/// the company; the hub stores and forwards ciphertext it cannot read.
@Suite struct SealedPayloadTests {
    @Test func theAccountingKeyReadsBillingButNotPowerQuality() async throws {
        let h = try HubHarness(systemClock: true)
        let token = try await h.provision("m1")
        let live = try await LiveHub.start(h.hub)
        let accounting = AudienceKey.generate(name: "accounting")
        let company = AudienceKey.generate(name: "company")
        var configuration = AgentConfiguration(
            hubURL: live.url, deviceID: "m1", token: token, stateDirectory: AgentIntegrationTests.temporaryDirectory())
        configuration.longPoll = 5
        var logger = Logger(label: "test.meter")
        logger.logLevel = .critical
        let meter = try await SimulatedMeter(
            configuration: configuration, model: MeterModel(seed: 7, interval: 3600), logger: logger,
            sealing: MeterSealing(billing: accounting.publicKey, powerQuality: company.publicKey))
        let loop = Task { await meter.run() }
        // run() takes one reading at once; this is a second.
        let id = try await meter.emitReading()
        try await waitUntil("the sealed readings are stored") {
            try await h.hub.uplink(device: "m1", kind: .reading, cursor: nil, limit: 10).items.count == 2
        }
        loop.cancel()
        await loop.value
        await live.stop()

        // What the hub holds: the sealed form only, no meter values or their names.
        let database = try DatabaseQueue(path: h.store.path)
        let stored = try await database.read { db in
            try String.fetchAll(db, sql: "SELECT data FROM uplink WHERE device_id = 'm1'")
        }
        try database.close()
        #expect(stored.count == 2)
        for data in stored {
            #expect(data.contains(#""sealed":2"#))
            for name in ["kWh", "\"kW\"", "\"V\"", "\"A\"", "\"PF\"", "relay"] { #expect(!data.contains(name)) }
        }

        // The operator API returns the same ciphertext; each key opens its own part only.
        let items = try await h.hub.uplink(device: "m1", kind: .reading, cursor: nil, limit: 10).items
        let item = try #require(items.first { $0.id == id })
        let payload = try #require(SealedPayload(item.data))
        #expect(payload.parts.map(\.label) == ["billing", "powerQuality"])
        let forAccounting = payload.open(
            with: accounting, device: "m1", itemID: id, kind: item.kind, name: item.name, at: item.at)
        let billing = try #require(forAccounting["billing"])
        #expect(billing["kWh"]?.doubleValue != nil)
        #expect(billing["V"] == nil)
        #expect(forAccounting["powerQuality"] == nil)
        #expect(forAccounting.closed.map(\.label) == ["powerQuality"])
        #expect(forAccounting.closed.first?.to == company.keyId)
        let forCompany = payload.open(
            with: company, device: "m1", itemID: id, kind: item.kind, name: item.name, at: item.at)
        #expect(forCompany["powerQuality"]?["V"]?.doubleValue != nil)
        #expect(forCompany["billing"] == nil)

        // What `backchannel decrypt --key accounting.key --device m1` shows.
        let decrypted = SealedReader.open(items, with: accounting)
        #expect(decrypted.count == 2)
        for entry in decrypted {
            let opening = try #require(entry.opening)
            #expect(opening.opened.map(\.label) == ["billing"])
            #expect(opening.closed.map(\.label) == ["powerQuality"])
        }
        // A part moved into the other reading does not open there.
        let other = try #require(items.first { $0.id != id })
        var swapped = try #require(SealedPayload(other.data))
        swapped.parts[0] = payload.parts[0]
        #expect(
            swapped.open(
                with: accounting, device: "m1", itemID: other.id, kind: other.kind, name: other.name, at: other.at
            ).opened.isEmpty)
    }
}
