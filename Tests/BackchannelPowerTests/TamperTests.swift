import BackchannelPower
import BackchannelProtocol
import Foundation
import Testing

private let base = Timestamp(milliseconds: 1_767_225_600_000)  // 2026-01-01T00:00:00Z

private func hour(_ h: Double) -> Timestamp { base.adding(seconds: h * 3600) }
private func second(_ s: Double) -> Timestamp { base.adding(seconds: s) }

@Suite("Tamper detection")
struct TamperTests {
    @Test("the base time is 2026-01-01T00:00:00Z")
    func anchor() {
        #expect(base.description == "2026-01-01T00:00:00.000Z")
    }

    // MARK: register-backwards

    @Test("register-backwards: a drop equal to the tolerance passes, more flags")
    func registerTolerance() throws {
        var tolerances = TamperTolerances()
        tolerances.registerKWh = 0.5  // exact in binary, so "equal" is really equal
        let readings = [
            RegisterReading(device: "m1", at: hour(0), kWh: 100),
            RegisterReading(device: "m1", at: hour(1), kWh: 99.5),  // drop 0.5 = tolerance → no flag
            RegisterReading(device: "m1", at: hour(2), kWh: 98.75),  // drop 0.75 > 0.5 → flag
            RegisterReading(device: "m1", at: hour(3), kWh: 98.75),  // flat → no flag
        ]
        let flags = try TamperDetector.registerBackwards(readings, tolerances: tolerances)
        #expect(flags.count == 1)
        let flag = try #require(flags.first)
        #expect(flag.kind == .registerBackwards)
        #expect(flag.device == "m1")
        #expect(flag.at == hour(2))
        #expect(flag.severity == .critical)
        #expect(flag.detail.contains("99.5 kWh"))
        #expect(flag.detail.contains("98.75 kWh"))
    }

    @Test(
        "register-backwards default 0.001 kWh: 0.0005 passes, 0.002 flags; input order does not matter")
    func registerDefault() throws {
        // Given out of order: sorted by time, 50 → 49.9995 (−0.0005) → 49.9975 (−0.002).
        let readings = [
            RegisterReading(device: "m1", at: hour(2), kWh: 49.9975),
            RegisterReading(device: "m1", at: hour(0), kWh: 50),
            RegisterReading(device: "m1", at: hour(1), kWh: 49.9995),
        ]
        let flags = try TamperDetector.registerBackwards(readings)
        #expect(flags.map(\.at) == [hour(2)])
    }

    @Test(
        "register-backwards: a reset after the previous reading and at or before this one excuses the drop"
    )
    func registerResets() throws {
        let readings = [
            RegisterReading(device: "m2", at: hour(1), kWh: 5001),
            RegisterReading(device: "m2", at: hour(2), kWh: 3),
        ]
        func flagged(_ resets: [RegisterReset]) throws -> Bool {
            try !TamperDetector.registerBackwards(readings, resets: resets).isEmpty
        }
        #expect(try flagged([]))
        #expect(try !flagged([RegisterReset(device: "m2", at: hour(1.5))]))
        #expect(try !flagged([RegisterReset(device: "m2", at: hour(2))]))  // at the reading: inclusive
        #expect(try flagged([RegisterReset(device: "m2", at: hour(1))]))  // at the previous reading: exclusive
        #expect(try flagged([RegisterReset(device: "other", at: hour(1.5))]))  // another meter's reset
        #expect(try !flagged([RegisterReset(device: nil, at: hour(1.5))]))  // a reset of every meter
    }

    @Test("register readings from CSV, errors naming the line")
    func registerCSV() throws {
        let readings = try RegisterReading.parseCSV("device,at,kWh\nm1,2026-01-01T00:00:00Z,12.5\n")
        #expect(readings == [RegisterReading(device: "m1", at: base, kWh: 12.5)])
        #expect(throws: PowerInputError("line 2, kWh: \"lots\" is not a number")) {
            _ = try RegisterReading.parseCSV("device,at,kWh\nm1,2026-01-01T00:00:00Z,lots\n")
        }
        var bad = TamperTolerances()
        bad.registerKWh = -1
        #expect(throws: PowerInputError("tamper tolerance registerKWh must be a finite number ≥ 0")) {
            _ = try TamperDetector.registerBackwards([], tolerances: bad)
        }
    }

    // MARK: submeter-imbalance

    private func interval(_ quarter: Double, _ kWh: Double) -> IntervalReading {
        IntervalReading(start: second(quarter * 900), kWh: kWh)
    }

    @Test("submeter-imbalance: both the percent and the floor must be exceeded, equal passes")
    func imbalanceBounds() throws {
        var tolerances = TamperTolerances()
        tolerances.imbalancePercent = 25
        tolerances.imbalanceFloorKWh = 0.5
        let group = SubmeterGroup(
            master: "M",
            masterReadings: [
                interval(0, 8),  // subs 3 + 3 = 6: off 2 = 25 % of 8 exactly → passes
                interval(1, 8),  // subs 3 + 2.75 = 5.75: off 2.25 > 2 and > 0.5 → flags
                interval(2, 1),  // subs 0.25 + 0.25 = 0.5: off 0.5 (50 %) but = floor → passes
                interval(3, 1),  // subs 0.125 + 0.125 = 0.25: off 0.75 > 0.5 and > 0.25 → flags
                interval(4, 0),  // subs 0.25 + 0.25 = 0.5: master 0, off 0.5 = floor → passes
                interval(5, 0),  // subs 0.5 + 0.25 = 0.75: master 0, off 0.75 > floor → flags
            ],
            submeters: [
                "s1": [
                    interval(0, 3), interval(1, 3), interval(2, 0.25), interval(3, 0.125), interval(4, 0.25),
                    interval(5, 0.5),
                ],
                "s2": [
                    interval(0, 3), interval(1, 2.75), interval(2, 0.25), interval(3, 0.125),
                    interval(4, 0.25),
                    interval(5, 0.25),
                ],
            ])
        let check = try TamperDetector.submeterImbalance(group, tolerances: tolerances)
        #expect(check.flags.map(\.at) == [second(900), second(2700), second(4500)])
        #expect(
            check.flags.allSatisfy {
                $0.device == "M" && $0.kind == .submeterImbalance && $0.severity == .warning
            })
        #expect(check.incomplete.isEmpty)
    }

    @Test("submeter-imbalance defaults (2 %, 0.05 kWh): 1 % passes, 3 % flags; gaps are listed")
    func imbalanceDefaults() throws {
        let group = SubmeterGroup(
            master: "M",
            masterReadings: [interval(0, 10), interval(1, 10), interval(2, 10)],
            submeters: [
                "s1": [interval(0, 4.9), interval(1, 4.7), interval(2, 5), interval(3, 1)],
                // 4.9 + 5 = 9.9: off 0.1 = 1 % → passes. 4.7 + 5 = 9.7: off 0.3 = 3 % > 2 % and > 0.05 → flags.
                "s2": [interval(0, 5), interval(1, 5)],
            ])
        let check = try TamperDetector.submeterImbalance(group)
        #expect(check.flags.map(\.at) == [second(900)])
        // Quarter 2: s2 has none. Quarter 3: the master and s2 have none.
        #expect(
            check.incomplete == [
                SubmeterCheck.Gap(start: second(1800), missing: ["s2"]),
                SubmeterCheck.Gap(start: second(2700), missing: ["M", "s2"]),
            ])
    }

    @Test("submeter-imbalance input errors")
    func imbalanceErrors() {
        #expect(throws: PowerInputError("sub-meter group M: no sub-meters")) {
            _ = try TamperDetector.submeterImbalance(
                SubmeterGroup(master: "M", masterReadings: [], submeters: [:]))
        }
        #expect(throws: PowerInputError("meter s1: two intervals start at 2026-01-01T00:00:00.000Z")) {
            _ = try TamperDetector.submeterImbalance(
                SubmeterGroup(
                    master: "M", masterReadings: [], submeters: ["s1": [interval(0, 1), interval(0, 2)]]))
        }
        #expect(
            throws: PowerInputError("meter s1: interval at 2026-01-01T00:00:00.000Z: kWh must be ≥ 0")
        ) {
            _ = try TamperDetector.submeterImbalance(
                SubmeterGroup(master: "M", masterReadings: [], submeters: ["s1": [interval(0, -1)]]))
        }
    }

    // MARK: clock-jump

    @Test("clock-jump: an offset change of 5 s passes, 5.001 s flags; backwards time is critical")
    func clockJumps() throws {
        // Offsets (device − hub): 2, 7 (Δ 5 → passes), 12.001 (Δ 5.001 → warning).
        // Then device time 130 s < previous 120 + 12.001 = 132.001 s → backwards, critical.
        // Then device time 130 s again at hub 182 s: not backwards (equal), offset −52 vs −50: Δ −2 → passes.
        let samples = [
            TamperClockSample(device: "m1", deviceTime: second(2), hubTime: second(0)),
            TamperClockSample(device: "m1", deviceTime: second(67), hubTime: second(60)),
            TamperClockSample(device: "m1", deviceTime: second(132.001), hubTime: second(120)),
            TamperClockSample(device: "m1", deviceTime: second(130), hubTime: second(180)),
            TamperClockSample(device: "m1", deviceTime: second(130), hubTime: second(182)),
        ]
        let flags = try TamperDetector.clockJumps(samples)
        #expect(flags.map(\.at) == [second(120), second(180)])
        #expect(flags.map(\.severity) == [.warning, .critical])
        #expect(flags[1].detail.hasPrefix("device time went backwards"))
        // A jump the other way (clock set back 6 s while still moving forward) also flags:
        // offsets 0 then −6 → |Δ| = 6 > 5; device time 54 > 0, not backwards.
        var detector = try ClockJumpDetector()
        #expect(
            detector.add(TamperClockSample(device: "m2", deviceTime: second(0), hubTime: second(0))) == nil)
        let back = detector.add(TamperClockSample(device: "m2", deviceTime: second(54), hubTime: second(60)))
        #expect(back?.severity == .warning)
        // Devices are tracked apart: m3's first sample compares with nothing.
        #expect(
            detector.add(TamperClockSample(device: "m3", deviceTime: second(1000), hubTime: second(60))) == nil)
    }

    // MARK: dual-presence

    @Test("dual-presence: two addresses 60 s apart flag, 60.001 s apart do not, one address never")
    func dualPresence() throws {
        let contacts = [
            DeviceContact(device: "d1", address: "198.51.100.1", at: second(0)),
            DeviceContact(device: "d1", address: "203.0.113.9", at: second(60)),
            DeviceContact(device: "d2", address: "198.51.100.2", at: second(0)),
            DeviceContact(device: "d2", address: "203.0.113.9", at: second(60.001)),
            DeviceContact(device: "d3", address: "198.51.100.3", at: second(0)),
            DeviceContact(device: "d3", address: "198.51.100.3", at: second(10)),
        ]
        let flags = try TamperDetector.dualPresence(contacts)
        #expect(flags.count == 1)
        #expect(flags.first?.device == "d1")
        #expect(flags.first?.at == second(60))
        #expect(flags.first?.kind == .dualPresence)
        #expect(flags.first?.severity == .critical)
        // A clone interleaving with the real device: A, B, A at 0, 20, 40 s → two flags.
        let clone = try TamperDetector.dualPresence([
            DeviceContact(device: "d4", address: "A", at: second(40)),
            DeviceContact(device: "d4", address: "A", at: second(0)),
            DeviceContact(device: "d4", address: "B", at: second(20)),
        ])
        #expect(clone.map(\.at) == [second(20), second(40)])
    }

    @Test("tamper flags encode as the documented JSON")
    func flagJSON() throws {
        let flag = TamperFlag(
            kind: .dualPresence, device: "d1", at: base, detail: "x", severity: .critical)
        let json = String(decoding: try JSONEncoder().encode(flag), as: UTF8.self)
        #expect(json.contains(#""kind":"dual-presence""#))
        #expect(json.contains(#""at":"2026-01-01T00:00:00.000Z""#))
        #expect(try JSONDecoder().decode(TamperFlag.self, from: Data(json.utf8)) == flag)
    }
}
