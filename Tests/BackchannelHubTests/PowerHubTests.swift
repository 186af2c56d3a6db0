import BackchannelPower
import BackchannelProtocol
import BackchannelSQLite
import BackchannelStore
import Foundation
import Testing

@testable import BackchannelHub

/// The power applications inside the hub: what polls feed them, what they store, and what
/// survives a restart. End-to-end behaviour with real devices is in Tests/e2e/test_power.py.
@Suite struct PowerHubTests {
    static let t0 = Timestamp(milliseconds: 1_800_000_000_000)

    static func event(_ id: String, _ name: String, at: Timestamp = t0, _ data: JSONValue) -> UplinkItem {
        UplinkItem(id: id, kind: .event, name: name, at: at, data: data)
    }

    static func interval(_ id: String, start: Timestamp, kWh: Double) -> UplinkItem {
        UplinkItem(
            id: id, kind: .reading, name: "interval", at: start.adding(seconds: 900),
            data: ["start": .string(start.description), "seconds": 900, "kWh": .number(kWh), "kvarh": 0.25])
    }

    @Test func intervalReadingsBecomeIntervalDataAndAResendReplaces() async throws {
        let h = try HubHarness()
        let token = try await h.provision("m1")
        let q0 = Self.t0
        let q1 = Self.t0.adding(seconds: 900)
        let refused = UplinkItem(
            id: "iv-bad", kind: .reading, name: "interval", at: q0, data: ["start": "yesterday", "kWh": 1])
        _ = try await h.poll(
            makePoll(
                "m1", seq: 1,
                uplink: [Self.interval("iv-0", start: q0, kWh: 1.5), Self.interval("iv-1", start: q1, kWh: 2), refused]),
            token: token)
        var stored = try await h.store.intervals(device: "m1", startingIn: q0..<q0.adding(seconds: 3600))
        #expect(stored.map(\.kWh) == [1.5, 2])
        #expect(stored.map(\.kvarh) == [0.25, 0.25])
        // The refused item is still stored as uplink: nothing a device sent is lost.
        let uplink = try await h.store.uplink(device: "m1", kind: .reading, after: nil, limit: 10)
        #expect(Set(uplink.map(\.item.id)) == ["iv-0", "iv-1", "iv-bad"])
        // The meter corrects an interval: the same start replaces it.
        _ = try await h.poll(
            makePoll("m1", seq: 2, uplink: [Self.interval("iv-1b", start: q1, kWh: 2.25)]), token: token)
        stored = try await h.store.intervals(device: "m1", startingIn: q0..<q0.adding(seconds: 3600))
        #expect(stored.map(\.kWh) == [1.5, 2.25])
    }

    @Test func anEnergyRegisterGoingBackwardsIsFlaggedButABillingResetIsNot() async throws {
        let h = try HubHarness()
        let token = try await h.provision("m1")
        func meter(_ id: String, _ kWh: Double, at seconds: Double, resetAt: Double? = nil) -> UplinkItem {
            var data: [String: JSONValue] = ["kWh": .number(kWh), "kW": 1]
            if let resetAt { data["resetAt"] = .string(Self.t0.adding(seconds: resetAt).description) }
            return UplinkItem(
                id: id, kind: .reading, name: "meter", at: Self.t0.adding(seconds: seconds), data: .object(data))
        }
        _ = try await h.poll(makePoll("m1", seq: 1, uplink: [meter("r1", 1000, at: 0)]), token: token)
        _ = try await h.poll(makePoll("m1", seq: 2, uplink: [meter("r2", 1000.0005, at: 60)]), token: token)
        #expect(try await h.hub.tamperFlags(tenant: "default", device: "m1", limit: 10).isEmpty)
        // 1000.0005 → 990: 10 kWh less, far beyond the 0.001 kWh tolerance.
        _ = try await h.poll(makePoll("m1", seq: 3, uplink: [meter("r3", 990, at: 120)]), token: token)
        let flags = try await h.hub.tamperFlags(tenant: "default", device: "m1", limit: 10)
        #expect(flags.map(\.kind) == [.registerBackwards])
        #expect(flags.first?.severity == .critical)
        // A billing reset between the readings explains the drop to zero.
        _ = try await h.poll(makePoll("m1", seq: 4, uplink: [meter("r4", 0, at: 180, resetAt: 170)]), token: token)
        #expect(try await h.hub.tamperFlags(tenant: "default", device: "m1", limit: 10).count == 1)
    }

    @Test func oneIdentityPollingFromTwoPlacesIsFlagged() async throws {
        let h = try HubHarness()
        let token = try await h.provision("m1")
        try await Hub.$contactAddress.withValue("192.0.2.10") {
            _ = try await h.poll(makePoll("m1", seq: 1), token: token)
        }
        h.clock.advance(seconds: 61)
        // 61 s later from elsewhere: outside the 60 s window, a move and not a clone.
        try await Hub.$contactAddress.withValue("198.51.100.7") {
            _ = try await h.poll(makePoll("m1", seq: 2), token: token)
        }
        h.clock.advance(seconds: 5)
        try await Hub.$contactAddress.withValue("192.0.2.10") {
            _ = try await h.poll(makePoll("m1", seq: 3), token: token)
        }
        try await waitUntil("the dual-presence flag is stored") {
            try await !h.hub.tamperFlags(tenant: "default", device: "m1", limit: 10).isEmpty
        }
        let flags = try await h.hub.tamperFlags(tenant: "default", device: "m1", limit: 10)
        #expect(flags.map(\.kind) == [.dualPresence])
        #expect(flags.first?.detail.contains("198.51.100.7") == true)
    }

    @Test func anOutageWithoutRestorationClosesWhenTheDeviceIsHeardFromAgain() async throws {
        let h = try HubHarness()
        let token = try await h.provision("m1")
        let subscription = h.hub.events.subscribe()
        _ = try await h.poll(
            makePoll("m1", seq: 1, uplink: [Self.event("lg", "power.lost", ["at": .string(Self.t0.description)])]),
            token: token)
        #expect(try await h.hub.outages(tenant: "default", device: "m1", openOnly: true, limit: 10).count == 1)

        // A poll inside the last-gasp grace (the dying meter's capacitor) does not close it.
        h.clock.advance(seconds: Hub.lastGaspGrace)
        _ = try await h.poll(makePoll("m1", seq: 2), token: token)
        #expect(try await h.hub.outages(tenant: "default", device: "m1", openOnly: true, limit: 10).count == 1)
        h.clock.advance(seconds: 50)
        _ = try await h.poll(makePoll("m1", seq: 3), token: token)
        let records = try await h.hub.outages(tenant: "default", device: "m1", openOnly: false, limit: 10)
        #expect(records.count == 1)
        #expect(records.first?.restoredBy == .contact)
        #expect(records.first?.end == Self.t0.adding(seconds: Hub.lastGaspGrace + 50))
        // The late power.restored revises the end of the same record instead of adding one.
        let restoredAt = Self.t0.adding(seconds: 30)
        _ = try await h.poll(
            makePoll(
                "m1", seq: 4,
                uplink: [
                    Self.event(
                        "pr", "power.restored", at: restoredAt,
                        ["at": .string(restoredAt.description), "lostAt": .string(Self.t0.description)])
                ]),
            token: token)
        let revised = try await h.hub.outages(tenant: "default", device: "m1", openOnly: false, limit: 10)
        #expect(revised.count == 1)
        #expect(revised.first?.end == restoredAt)
        #expect(revised.first?.restoredBy == .powerRestored)
        // Subscribers to the event stream were told each change (the stream ends at shutdown).
        h.hub.shutdown()
        var told: [String] = []
        for await event in subscription where event.type == .power { told.append(event.detail ?? "") }
        #expect(told == ["outage.opened", "outage.closed", "outage.revised"])
    }

    @Test func anOutageSentAgainAfterAHubRestartIsAppliedOnce() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("bc-hub-\(UUID().uuidString)")
        var h = try HubHarness(directory: directory)
        let token = try await h.provision("m1")
        let restoredAt = Self.t0.adding(seconds: 40)
        let restored = [
            Self.event(
                "pr", "power.restored", at: restoredAt,
                ["at": .string(restoredAt.description), "lostAt": .string(Self.t0.description)])
        ]
        _ = try await h.poll(
            makePoll("m1", seq: 1, uplink: [Self.event("lg", "power.lost", ["at": .string(Self.t0.description)])]),
            token: token)
        _ = try await h.poll(makePoll("m1", seq: 2, uplink: restored), token: token)
        // The hub restarts before the device heard back; the device sends the restoration again.
        h = try HubHarness(directory: directory)
        h.clock.advance(seconds: 60)
        _ = try await h.poll(makePoll("m1", seq: 3, uplink: restored), token: token)
        let records = try await h.hub.outages(tenant: "default", device: "m1", openOnly: false, limit: 10)
        #expect(records.count == 1)
        #expect(records.first?.lastGasp == true, "a second pass would rewrite it as a restoration without last gasp")
        #expect(records.first?.end == restoredAt)
    }

    @Test func eventsWithBadContentDoNotFailThePoll() async throws {
        let h = try HubHarness()
        let token = try await h.provision("m1")
        let later = Self.t0.adding(seconds: 60)
        let items = [
            Self.event("p1", "price", ["price": "cheap"]),
            // Restored before it was lost: refused by the outage tracker.
            Self.event(
                "r1", "power.restored", ["at": .string(Self.t0.description), "lostAt": .string(later.description)]),
            Self.event("q1", "pq", ["kind": 12]),
        ]
        let response = try await h.poll(makePoll("m1", seq: 1, uplink: items), token: token)
        #expect(Set(response.stored) == ["p1", "r1", "q1"])
        #expect(try await h.hub.outages(tenant: "default", device: "m1", openOnly: false, limit: 10).isEmpty)
    }

    static func flat(_ name: String, rate: Decimal) -> Tariff {
        Tariff(
            name: name, timeZone: "UTC", periods: ["all"],
            energyWeekdaySchedule: Array(repeating: Array(repeating: 0, count: 24), count: 12),
            energyWeekendSchedule: Array(repeating: Array(repeating: 0, count: 24), count: 12), energyRates: [rate],
            fixedChargePerMonth: 0)
    }

    @Test func supplierOffersPushedOrPolledAreComparedOnTheDevicesOwnProfile() async throws {
        let h = try HubHarness()
        let meter = try await h.provision("m1")
        let supplier = try await h.provision("supplier-beta")
        // Four quarter hours of 1 kWh: 4 kWh.
        let intervals = (0..<4).map {
            Self.interval("iv-\($0)", start: Self.t0.adding(seconds: Double($0) * 900), kWh: 1)
        }
        _ = try await h.poll(makePoll("m1", seq: 1, uplink: intervals), token: meter)
        // Alpha pushes its offer through the API; Beta's own device polls the hub with its offer.
        _ = try await h.hub.putOffer(
            SupplierOffer(supplier: "Alpha", offerID: "A1", tariff: Self.flat("Alpha flat", rate: 0.20)),
            tenant: "default", source: "operator:test")
        let offer = try WireJSON.decode(
            JSONValue.self,
            from: WireJSON.encode(
                SupplierOffer(supplier: "Beta", offerID: "B1", tariff: Self.flat("Beta flat", rate: 0.15))))
        _ = try await h.poll(
            makePoll("supplier-beta", seq: 1, uplink: [Self.event("o1", "supplier.offer", offer)]), token: supplier)
        #expect(
            Set(try await h.hub.offers(tenant: "default").map(\.source)) == ["operator:test", "device:supplier-beta"])

        // Alpha: 4 kWh × 0.20 = 0.80; Beta: 4 × 0.15 = 0.60, an average of 0.15 ≤ the 0.50 ceiling.
        let period = (from: Self.t0, to: Self.t0.adding(seconds: 3600))
        let chosen = try await h.hub.chooseSupplier(
            device: "m1",
            SupplierChoiceBody(
                from: period.from, to: period.to, ceilingPerKWh: 0.5, currentSupplier: nil, offers: nil, send: nil),
            tenant: "default", origin: "operator:test")
        #expect(chosen.choice.decision == .switchSupplier)
        #expect(chosen.choice.ranking.map(\.total) == [0.60, 0.80])
        let switchCommand = try #require(chosen.command)
        #expect(switchCommand.name == "switch-supplier")
        #expect(switchCommand.args["supplier"] == "Beta")
        #expect(switchCommand.args["offerID"] == "B1")

        // Every offer above a 0.10 ceiling: reduce consumption instead.
        let reduced = try await h.hub.chooseSupplier(
            device: "m1",
            SupplierChoiceBody(
                from: period.from, to: period.to, ceilingPerKWh: 0.10, currentSupplier: nil, offers: nil, send: nil),
            tenant: "default", origin: "operator:test")
        #expect(reduced.choice.decision == .reduceConsumption)
        #expect(reduced.command?.name == "reduce-consumption")
    }

    @Test func subMetersThatDoNotAddUpToTheirMasterAreFlagged() async throws {
        let h = try HubHarness()
        let start = Timestamp(milliseconds: Self.t0.milliseconds / 900_000 * 900_000)
        // A master meter with two sub-meters; over two quarter hours the master reads 10 kWh each,
        // the sub-meters 4 + 5.9 = 9.9 (1 % off: within the 2 % tolerance) and then 4 + 5 = 9
        // (10 % off and 1 kWh > the 0.05 kWh floor: flagged).
        let readings: [String: [Double]] = ["main": [10, 10], "sub-a": [4, 4], "sub-b": [5.9, 5]]
        for (seq, id) in ["main", "sub-a", "sub-b"].enumerated() {
            let token = try await h.provision(id)
            var uplink = readings[id]!.enumerated().map { index, kWh in
                Self.interval("iv-\(index)", start: start.adding(seconds: Double(index) * 900), kWh: kWh)
            }
            let role: JSONValue = id == "main" ? "master" : "meter"
            var declaration: [String: JSONValue] = ["role": role]
            if id != "main" { declaration["parent"] = "main" }
            uplink.append(Self.event("t", "topology", .object(declaration)))
            _ = try await h.poll(makePoll(id, seq: Int64(seq + 1), uplink: uplink), token: token)
        }
        h.clock.advance(seconds: 3600)
        await h.hub.checkSubmeterBalance()
        let flags = try await h.hub.tamperFlags(tenant: "default", device: "main", limit: 10)
        #expect(flags.map(\.kind) == [.submeterImbalance])
        #expect(flags.first?.at == start.adding(seconds: 900))
    }

    @Test func aBrokenTopologyDeclarationIsReportedNotFatal() async throws {
        let h = try HubHarness()
        for (seq, (id, parent)) in [("a", "b"), ("b", "a"), ("c", "ghost"), ("d", "c")].enumerated() {
            let token = try await h.provision(id)
            _ = try await h.poll(
                makePoll(
                    id, seq: Int64(seq + 1),
                    uplink: [Self.event("t", "topology", ["role": "branch", "parent": .string(parent)])]),
                token: token)
        }
        let view = try await h.hub.topology(tenant: "default")
        #expect(view.nodes.count == 4)
        #expect(view.problems.contains("c: parent ghost has not declared itself"))
        #expect(view.problems.contains { $0.contains("closes a cycle") })
        // d stays under c; c and one of the cycle became roots.
        #expect(view.nodes.first { $0.id == "d" }?.parent == "c")
        #expect(view.roots.contains("c"))
    }

    @Test func aPolicySetWhileThePriceIsHighShedsAtOnce() async throws {
        let h = try HubHarness()
        try await h.provision("m1")
        // The price arrives before any policy exists: nothing to decide.
        #expect(try await h.hub.updatePrice(0.9, at: h.clock.now(), source: "operator:test", tenant: "default").isEmpty)
        h.clock.advance(seconds: 10)
        let schedule = PriceLimitSchedule(timeZone: "UTC", defaultLimit: 0.5, windows: [])
        let policy = try await h.hub.putSheddingPolicy(device: "m1", schedule: schedule, tenant: "default")
        #expect(policy.controller.state == .shed)
        let log = try await h.hub.sheddingDecisions(tenant: "default", device: "m1", limit: 10)
        #expect(log.map(\.decision.action) == [.shed])
        #expect(log.first?.source == "policy set; last price from operator:test")
        let command = try #require(log.first?.command)
        #expect(try await h.hub.command(command).name == "shed")
    }

    @Test func aShedLoadIsRestoredAfterAHubRestart() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("bc-hub-\(UUID().uuidString)")
        var h = try HubHarness(directory: directory)
        try await h.provision("m1")
        let schedule = PriceLimitSchedule(timeZone: "UTC", defaultLimit: 0.5, windows: [])
        _ = try await h.hub.putSheddingPolicy(device: "m1", schedule: schedule, tenant: "default")
        let shed = try await h.hub.updatePrice(0.9, at: h.clock.now(), source: "test", tenant: "default")
        #expect(shed.map(\.decision.action) == [.shed])
        let shedCommand = try #require(shed.first?.command)
        #expect(try await h.hub.command(shedCommand).name == "shed")

        // A new hub on the same database knows the load is shed: a lower price restores it.
        h = try HubHarness(directory: directory)
        h.clock.advance(seconds: 60)
        let restored = try await h.hub.updatePrice(0.4, at: h.clock.now(), source: "test", tenant: "default")
        #expect(restored.map(\.decision.action) == [.restore])
        #expect(restored.first?.decision.reason.contains("is below the 0.50") == true)
        let restoreCommand = try #require(restored.first?.command)
        #expect(try await h.hub.command(restoreCommand).name == "restore")
        let log = try await h.hub.sheddingDecisions(tenant: "default", device: "m1", limit: 10)
        #expect(log.map(\.decision.action) == [.restore, .shed])
    }
}
