import BackchannelPower
import BackchannelProtocol
import Foundation
import Testing

/// The IEEE 1366 worked example's tree, 60 customers:
///
/// M (master)
/// ├─ B1 (branch)            30 customers
/// │  ├─ L1 (load, 10)
/// │  └─ L2 (load, 20)
/// └─ B2 (branch)            30 customers
///    ├─ L3 (load, 29)
///    ├─ MT1 (meter, default 1)
///    └─ G1 (generator, default 0)
private func ieeeTree() throws -> FeederTree {
    try FeederTree(nodes: [
        FeederNode(id: "M", role: .master),
        FeederNode(id: "B1", parent: "M", role: .branch),
        FeederNode(id: "B2", parent: "M", role: .branch),
        FeederNode(id: "L1", parent: "B1", role: .load, customers: 10),
        FeederNode(id: "L2", parent: "B1", role: .load, customers: 20),
        FeederNode(id: "L3", parent: "B2", role: .load, customers: 29),
        FeederNode(id: "MT1", parent: "B2", role: .meter),
        FeederNode(id: "G1", parent: "B2", role: .generator),
    ])
}

private func close(_ actual: Double?, _ expected: Double, within tolerance: Double = 1e-9) -> Bool {
    guard let actual else { return false }
    return abs(actual - expected) <= tolerance
}

/// The worked example's outages (CSV) over the period 2026-01-01T00:00Z – 2026-01-02T00:00Z, T = 24 h.
private let ieeeCSV = """
    device,start,end,cause
    # 1: exactly 5 min = 300 s → momentary (≤ 5 min inclusive). 10 customers.
    L1,2026-01-01T10:00:00Z,2026-01-01T10:05:00Z,recloser
    # 2: 5 min + 1 s = 301 s → sustained. 20 customers × 301/60 min = 100 1/3 customer-minutes.
    L2,2026-01-01T11:00:00Z,2026-01-01T11:05:01Z,
    # 3: 60 min at branch B2 → sustained, its 30 customers: 1800 customer-minutes.
    B2,2026-01-01T12:00:00Z,2026-01-01T13:00:00Z,tree
    # 4: 30 s → momentary. 29 customers.
    L3,2026-01-01T14:00:00Z,2026-01-01T14:00:30Z,
    # 5: straddles the start: 23:30 → 00:30, 60 min whole (sustained), 30 min inside: 10 × 30 = 300.
    L1,2025-12-31T23:30:00Z,2026-01-01T00:30:00Z,
    # 6: open since 23:00 → runs to the period end, 60 min: 20 × 60 = 1200.
    L2,2026-01-01T23:00:00Z,,
    # 7: after the period: ignored.
    L3,2026-01-02T01:00:00Z,2026-01-02T02:00:00Z,
    """

@Suite("IEEE 1366 reliability")
struct ReliabilityTests {
    @Test("worked example: SAIFI, SAIDI, CAIDI, MAIFI, ASAI and nines by hand")
    func workedExample() throws {
        let outages = try ReliabilityOutage.parseCSV(ieeeCSV)
        #expect(outages.count == 7)
        let report = try ieeeTree().reliability(
            outages: outages, periodStart: try at("2026-01-01T00:00:00Z"),
            periodEnd: try at("2026-01-02T00:00:00Z"))
        #expect(report.periodHours == 24)
        #expect(report.outagesCounted == 6)

        // System, N_T = 60, T = 24 h, N_T·T = 1440 customer-hours.
        // Sustained: #2 (20), #3 (30), #5 (10), #6 (20): Σ Nᵢ = 80.  SAIFI = 80 / 60 = 4/3.
        // Σ rᵢNᵢ = 100 1/3 + 1800 + 300 + 1200 = 3400 1/3 = 10201/3 customer-minutes.
        // SAIDI = (10201/3) / 60 = 10201/180 = 56.6722… min.
        // CAIDI = SAIDI / SAIFI = (10201/180) / (4/3) = 10201/240 = 42.5041… min.
        // Momentary: #1 (10) + #4 (29) = 39.  MAIFI = 39 / 60 = 0.65.
        // ASAI = (1440 − (10201/3)/60) / 1440 = 1 − 10201/259200 = 248999/259200 = 0.960644…
        // nines = −log10(10201/259200) = log10(25.40927…) = 1.40499…
        let system = report.system
        #expect(system.customers == 60)
        #expect(system.sustainedInterruptions == 4)
        #expect(system.momentaryInterruptions == 2)
        #expect(system.customersInterrupted == 80)
        #expect(system.momentaryCustomersInterrupted == 39)
        #expect(close(system.customerMinutes, 10201.0 / 3))
        #expect(close(system.saifi, 4.0 / 3))
        #expect(close(system.saidi, 10201.0 / 180))
        #expect(close(system.caidi, 10201.0 / 240))
        #expect(close(system.maifi, 0.65))
        #expect(close(system.asai, 248999.0 / 259200))
        #expect(close(system.nines, 1.40499, within: 1e-5))
        #expect(system.fullyAvailable == false)

        // B1, N_T = 30: sustained #2 (20), #5 (10), #6 (20): Σ Nᵢ = 50, SAIFI = 50/30 = 5/3.
        // Σ rᵢNᵢ = 100 1/3 + 300 + 1200 = 1600 1/3 = 4801/3. SAIDI = (4801/3)/30 = 4801/90 = 53.344…
        // CAIDI = (4801/3)/50 = 4801/150 = 32.0066…  MAIFI = #1 (10) / 30 = 1/3.
        // ASAI = 1 − (4801/90)/(60·24) = 1 − 4801/129600 = 124799/129600 = 0.962955…
        let b1 = try #require(report.branches.first { $0.scope == "B1" })
        #expect(b1.customers == 30)
        #expect(close(b1.saifi, 5.0 / 3))
        #expect(close(b1.saidi, 4801.0 / 90))
        #expect(close(b1.caidi, 4801.0 / 150))
        #expect(close(b1.maifi, 1.0 / 3))
        #expect(close(b1.asai, 124799.0 / 129600))

        // B2, N_T = 30: sustained #3 (30 × 60 = 1800): SAIFI 1, SAIDI 60, CAIDI 60.
        // MAIFI = #4 (29) / 30. ASAI = 1 − 60/1440 = 23/24 = 0.958333…; nines = log10(24) = 1.380211…
        let b2 = try #require(report.branches.first { $0.scope == "B2" })
        #expect(close(b2.saifi, 1))
        #expect(close(b2.saidi, 60))
        #expect(close(b2.caidi, 60))
        #expect(close(b2.maifi, 29.0 / 30))
        #expect(close(b2.asai, 23.0 / 24))
        #expect(close(b2.nines, 1.380211, within: 1e-6))

        // Least reliable branch: B2 (0.958333 < B1's 0.962955).
        #expect(report.leastReliableBranch == "B2")
        // Nodes: L2 has #2 and #6: (100 1/3 + 1200)/20 = 65.0166… min → ASAI 1 − 65.0166/1440 =
        // 0.954850, below L3/MT1/B2 (0.958333), M (0.960644), B1 (0.962955), L1 (1 − 30/1440).
        #expect(report.leastReliableNode == "L2")
        let l2 = try #require(report.nodes.first { $0.scope == "L2" })
        #expect(close(l2.saidi, (301.0 / 60 + 60)))
        // G1 serves nobody: every index undefined.
        let g1 = try #require(report.nodes.first { $0.scope == "G1" })
        #expect(g1.customers == 0)
        #expect(g1.saifi == nil && g1.asai == nil && g1.nines == nil && g1.fullyAvailable == false)
        #expect(report.nodes.map(\.scope) == ["M", "B1", "B2", "L1", "L2", "L3", "MT1", "G1"])
    }

    @Test("momentary boundary: 300 s is momentary, 301 s sustained, 300.001 s sustained")
    func momentaryBoundary() throws {
        let tree = try ieeeTree()
        let start = try at("2026-01-01T10:00:00Z")
        let dayEnd = try at("2026-01-02T00:00:00Z")
        func kinds(_ seconds: Double) throws -> (Int, Int) {
            let report = try tree.reliability(
                outages: [
                    ReliabilityOutage(device: "L1", start: start, end: start.adding(seconds: seconds))
                ],
                periodStart: try at("2026-01-01T00:00:00Z"), periodEnd: dayEnd)
            return (report.system.momentaryInterruptions, report.system.sustainedInterruptions)
        }
        #expect(try kinds(300) == (1, 0))
        #expect(try kinds(300.001) == (0, 1))
        #expect(try kinds(301) == (0, 1))
        #expect(try kinds(299.999) == (1, 0))
    }

    @Test("no sustained outage: CAIDI null, ASAI 1, nines null with the fully-available flag")
    func fullyAvailable() throws {
        // One momentary outage of L1 (10 customers) in a 24 h period.
        let start = try at("2026-01-01T10:00:00Z")
        let report = try ieeeTree().reliability(
            outages: [ReliabilityOutage(device: "L1", start: start, end: start.adding(seconds: 60))],
            periodStart: try at("2026-01-01T00:00:00Z"), periodEnd: try at("2026-01-02T00:00:00Z"))
        let system = report.system
        #expect(system.saifi == 0)
        #expect(system.saidi == 0)
        #expect(system.caidi == nil)
        // MAIFI = 10 / 60.
        #expect(close(system.maifi, 10.0 / 60))
        #expect(system.asai == 1)
        #expect(system.nines == nil)
        #expect(system.fullyAvailable)
        // JSON has null, never NaN or infinity.
        let json = String(decoding: try JSONEncoder().encode(system), as: UTF8.self)
        #expect(json.contains(#""caidi":null"#))
        #expect(json.contains(#""nines":null"#))
        #expect(json.contains(#""fullyAvailable":true"#))
        #expect(try JSONDecoder().decode(ReliabilityIndices.self, from: Data(json.utf8)) == system)
        #expect(!json.contains("nan") && !json.contains("inf"))
    }

    @Test("clipping: whole duration decides the class, minutes count inside the period only")
    func clipping() throws {
        let tree = try ieeeTree()
        let periodStart = try at("2026-01-01T00:00:00Z")
        let periodEnd = try at("2026-01-02T00:00:00Z")
        // 23:57 → 00:03 is 6 min whole → sustained, but only 3 min inside: L1 10 × 3 = 30 customer-minutes.
        let straddle = try tree.reliability(
            outages: [
                ReliabilityOutage(
                    device: "L1", start: try at("2025-12-31T23:57:00Z"), end: try at("2026-01-01T00:03:00Z"))
            ], periodStart: periodStart, periodEnd: periodEnd)
        #expect(straddle.system.sustainedInterruptions == 1)
        #expect(close(straddle.system.customerMinutes, 30))
        // An open outage that began 2 min before the period end has lasted 2 min → momentary so far.
        let recent = try tree.reliability(
            outages: [ReliabilityOutage(device: "L1", start: try at("2026-01-01T23:58:00Z"))],
            periodStart: periodStart, periodEnd: periodEnd)
        #expect(recent.system.momentaryInterruptions == 1)
        #expect(recent.system.sustainedInterruptions == 0)
        // An open outage that began before the period covers all of it: B2's 30 customers × 1440 min.
        // ASAI for B2 = 0; nines = −log10(1) = 0.
        let allDay = try tree.reliability(
            outages: [ReliabilityOutage(device: "B2", start: try at("2025-12-30T00:00:00Z"))],
            periodStart: periodStart, periodEnd: periodEnd)
        let b2 = try #require(allDay.branches.first { $0.scope == "B2" })
        #expect(close(b2.customerMinutes, 43200))
        #expect(close(b2.asai, 0))
        #expect(close(b2.nines, 0))
        // Ending exactly at the period start, or starting exactly at its end: outside.
        let touching = try tree.reliability(
            outages: [
                ReliabilityOutage(device: "L1", start: try at("2025-12-31T23:00:00Z"), end: periodStart),
                ReliabilityOutage(device: "L1", start: periodEnd, end: periodEnd.adding(seconds: 3600)),
            ], periodStart: periodStart, periodEnd: periodEnd)
        #expect(touching.outagesCounted == 0)
    }

    @Test("an outage upstream interrupts the customers of a node below it")
    func upstreamOutage() throws {
        // M out for 10 min: every node's customers are out. L3 (29): SAIDI = 29 × 10 / 29 = 10 min.
        let start = try at("2026-01-01T10:00:00Z")
        let report = try ieeeTree().reliability(
            outages: [ReliabilityOutage(device: "M", start: start, end: start.adding(seconds: 600))],
            periodStart: try at("2026-01-01T00:00:00Z"), periodEnd: try at("2026-01-02T00:00:00Z"))
        let l3 = try #require(report.nodes.first { $0.scope == "L3" })
        #expect(l3.customersInterrupted == 29)
        #expect(close(l3.saidi, 10))
        // System: 60 × 10 / 60 = 10 min, SAIFI 1.
        #expect(close(report.system.saidi, 10))
        #expect(close(report.system.saifi, 1))
    }

    @Test("least reliable: lowest ASAI, then higher SAIDI, then id")
    func ranking() {
        func make(_ scope: String, minutes: Double, hours: Double) -> ReliabilityIndices {
            ReliabilityIndices(
                scope: scope, role: .branch, customers: 10, sustainedInterruptions: 1,
                momentaryInterruptions: 0,
                customersInterrupted: 10, customerMinutes: minutes, momentaryCustomersInterrupted: 0,
                periodHours: hours)
        }
        // A: 10 customers, 600 customer-min over 24 h → SAIDI 60, ASAI 1 − 60/1440.
        // B: 1200 customer-min over 48 h → SAIDI 120, ASAI 1 − 120/2880 = the same.
        // C: 300 customer-min over 24 h → SAIDI 30, ASAI higher.
        let a = make("A", minutes: 600, hours: 24)
        let b = make("B", minutes: 1200, hours: 48)
        let c = make("C", minutes: 300, hours: 24)
        #expect(a.asai == b.asai)
        #expect(ReliabilityIndices.leastReliable([a, b, c])?.scope == "B")
        // Same ASAI and SAIDI: the smaller id.
        #expect(
            ReliabilityIndices.leastReliable([make("Z", minutes: 600, hours: 24), a])?.scope == "A")
        #expect(ReliabilityIndices.leastReliable([c])?.scope == "C")
        #expect(ReliabilityIndices.leastReliable([]) == nil)
    }

    @Test("input validation names the line or record")
    func validation() throws {
        #expect(
            message { _ = try ReliabilityOutage.parseCSV("device,start,end\nL1,yesterday,\n") }
                == "line 2, start: \"yesterday\" is not an RFC 3339 time")
        #expect(
            message {
                _ = try ReliabilityOutage.parseCSV(
                    "device,start,end\nL1,2026-01-01T10:00:00Z,2026-01-01T09:00:00Z\n")
            }
                == "line 2: end 2026-01-01T09:00:00.000Z is not after start 2026-01-01T10:00:00.000Z")
        #expect(
            message { _ = try ReliabilityOutage.parseCSV("device,start\nL1,2026-01-01T10:00:00Z\n") }?
                .hasPrefix("no column named end") == true)
        let start = try at("2026-01-01T00:00:00Z")
        #expect(
            message {
                _ = try ieeeTree().reliability(
                    outages: [ReliabilityOutage(device: "X9", start: start)], periodStart: start,
                    periodEnd: start.adding(seconds: 3600))
            } == "outage 1 at X9: device is not in the feeder tree")
        #expect(
            message { _ = try ieeeTree().reliability(outages: [], periodStart: start, periodEnd: start) }
                == "reliability: period end 2026-01-01T00:00:00.000Z is not after its start 2026-01-01T00:00:00.000Z"
        )
        let json = Data(
            #"{"outages": [{"device": "L1", "start": "2026-01-01T10:00:00Z", "end": null}]}"#.utf8)
        #expect(
            try ReliabilityOutage.decodeJSON(json) == [
                ReliabilityOutage(device: "L1", start: at("2026-01-01T10:00:00Z"))
            ])
        #expect(
            message { _ = try ReliabilityOutage.decodeJSON(Data(#"[{"device": "L1"}]"#.utf8)) }
                == "outages: [0].start is missing")
        // An outage record with an unknown start cannot be used.
        let record = OutageRecord(
            id: "L1/restored", device: "L1", start: nil, end: start, lastGasp: false)
        #expect(
            message { _ = try ReliabilityOutage(record) }
                == "outage L1/restored: the start is unknown (no last gasp and no lostAt)")
    }
}
