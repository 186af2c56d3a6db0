import BackchannelPower
import BackchannelProtocol
import Foundation
import Testing

/// A 12-month schedule giving `period(hour)` in every month.
private func schedule(_ period: (Int) -> Int) -> [[Int]] {
    Array(repeating: (0..<24).map(period), count: 12)
}

/// `count` 15-minute intervals from `start`, kWh and kvarh from the interval's index.
private func quarterHours(
    from start: Timestamp, count: Int, kWh: (Int) -> Double, kvarh: ((Int) -> Double)? = nil
) -> [IntervalReading] {
    (0..<count).map { index in
        IntervalReading(
            start: start.adding(seconds: Double(index * 900)), seconds: 900, kWh: kWh(index),
            kvarh: kvarh.map { $0(index) })
    }
}

/// Off-peak (0) all day except on-peak (1) from 14:00 to 19:00 local time on weekdays.
private func touTariff(powerFactorTarget: Double? = 0.9, holidays: [LocalDate]? = nil) -> Tariff {
    Tariff(
        name: "TOU-GS", utility: "Example Electric", timeZone: "America/New_York", currency: "USD",
        periods: ["off-peak", "on-peak"],
        energyWeekdaySchedule: schedule { (14..<19).contains($0) ? 1 : 0 },
        energyWeekendSchedule: schedule { _ in 0 },
        energyRates: [dec("0.0825"), dec("0.185")], fixedChargePerMonth: dec("12.50"),
        demandChargePerKW: dec("9.87"),
        onPeakDemand: OnPeakDemandCharge(periods: [1], chargePerKW: dec("4.56")),
        powerFactor: powerFactorTarget.map { PowerFactorRule(target: $0) }, holidays: holidays)
}

/// Wednesday 2026-07-15 in New York (EDT, UTC-4): local midnight is 04:00Z; 96 intervals.
/// Interval i starts at local hour i / 4. On-peak 14:00-19:00 is i = 56..<76 (20 intervals).
/// kWh: 4.0 at i = 36 (local 09:00, off-peak), 3.0 at i = 68 (local 17:00, on-peak),
/// 2.0 elsewhere on-peak, 1.0 elsewhere off-peak. kvarh = 0.75 × kWh everywhere.
private func workedDay() throws -> [IntervalReading] {
    let energy: (Int) -> Double = { index in
        if index == 36 { return 4 }
        if index == 68 { return 3 }
        return (56..<76).contains(index) ? 2 : 1
    }
    return quarterHours(
        from: try at("2026-07-15T04:00:00Z"), count: 96, kWh: energy, kvarh: { energy($0) * 0.75 })
}

@Suite("Tariffs and bills")
struct BillingTests {
    @Test("worked example: TOU energy, fixed, demand, on-peak demand and power factor, to the cent")
    func workedExample() throws {
        let bill = try Bill.compute(
            tariff: touTariff(), intervals: workedDay(), from: at("2026-07-15T04:00:00Z"),
            to: at("2026-07-16T04:00:00Z"))
        // Off-peak: 76 intervals, 75 × 1.0 + 4.0 = 79 kWh. On-peak: 20 intervals, 19 × 2.0 + 3.0 = 41 kWh.
        // Total 120 kWh; kvarh 0.75 × 120 = 90; PF = 120 / √(120² + 90²) = 120 / 150 = 0.8.
        // Off-peak 79 × 0.0825 = 6.5175 → 6.52.
        // On-peak 41 × 0.185 = 7.585 → 7.59 (half-up; half-even would give 7.58).
        // Fixed 1 × 12.50 = 12.50.
        // Demand: largest block 4.0 kWh × 4 = 16 kW at 13:00Z (local 09:00); 16 × 9.87 = 157.92.
        // PF adjustment: 16 × 0.9 / 0.8 = 18 kW, 2 kW more; 2 × 9.87 = 19.74.
        // On-peak demand: 3.0 kWh × 4 = 12 kW at 21:00Z (local 17:00); 12 × 4.56 = 54.72.
        // PF adjustment: 12 × 0.9 / 0.8 = 13.5 kW, 1.5 kW more; 1.5 × 4.56 = 6.84.
        // Total 6.52 + 7.59 + 12.50 + 157.92 + 19.74 + 54.72 + 6.84 = 265.83.
        let expected: [(BillLineItem.Kind, String, String, String, String)] = [
            (.energy, "79", "kWh", "0.0825", "6.52"),
            (.energy, "41", "kWh", "0.185", "7.59"),
            (.fixed, "1", "month", "12.5", "12.5"),
            (.demand, "16", "kW", "9.87", "157.92"),
            (.powerFactor, "2", "kW", "9.87", "19.74"),
            (.onPeakDemand, "12", "kW", "4.56", "54.72"),
            (.powerFactor, "1.5", "kW", "4.56", "6.84"),
        ]
        try #require(bill.lineItems.count == expected.count)
        for (item, want) in zip(bill.lineItems, expected) {
            #expect(item.kind == want.0)
            #expect(item.quantity == dec(want.1))
            #expect(item.unit == want.2)
            #expect(item.rate == dec(want.3))
            #expect(item.amount == dec(want.4))
        }
        #expect(bill.lineItems[0].description == "Energy, off-peak")
        #expect(bill.lineItems[1].description == "Energy, on-peak")
        #expect(
            bill.lineItems[4].description
                == "Power-factor adjustment of demand: PF 0.8000 < 0.9, kW × 0.9 ÷ PF")
        #expect(bill.total == dec("265.83"))
        #expect(bill.energyKWh == 120)
        #expect(bill.powerFactor == 0.8)
        #expect(
            bill.maxDemand
                == DemandPeak(
                    kW: 16, start: try at("2026-07-15T13:00:00Z"), end: try at("2026-07-15T13:15:00Z")))
        #expect(bill.onPeakMaxDemand?.start == (try at("2026-07-15T21:00:00Z")))
        #expect(bill.complete && bill.missingIntervals.isEmpty && bill.intervalCount == 96)
        #expect(bill.ignoredIntervals == 0 && bill.warnings.isEmpty)
    }

    @Test("power factor exactly at the target is not adjusted; just below it is")
    func powerFactorBoundary() throws {
        let from = try at("2026-07-15T04:00:00Z")
        let to = try at("2026-07-16T04:00:00Z")
        // PF 0.8 with target 0.8: no adjustment, 265.83 - 19.74 - 6.84 = 239.25.
        let atTarget = try Bill.compute(
            tariff: touTariff(powerFactorTarget: 0.8), intervals: workedDay(), from: from, to: to)
        #expect(!atTarget.lineItems.contains { $0.kind == .powerFactor })
        #expect(atTarget.total == dec("239.25"))
        // Target 0.81 > PF 0.8: 16 × 0.81 / 0.8 = 16.2 kW, 0.2 more, 0.2 × 9.87 = 1.974 → 1.97;
        // 12 × 0.81 / 0.8 = 12.15 kW, 0.15 more, 0.15 × 4.56 = 0.684 → 0.68. 239.25 + 1.97 + 0.68 = 241.90.
        let below = try Bill.compute(
            tariff: touTariff(powerFactorTarget: 0.81), intervals: workedDay(), from: from, to: to)
        #expect(
            below.lineItems.filter { $0.kind == .powerFactor }.map(\.quantity) == [
                dec("0.2"), dec("0.15"),
            ])
        #expect(below.total == dec("241.9"))
    }

    @Test("a power-factor rule without kvarh is refused, naming what is missing")
    func powerFactorNeedsKvarh() throws {
        let readings = try workedDay().map { IntervalReading(start: $0.start, kWh: $0.kWh) }
        let text = message {
            _ = try Bill.compute(
                tariff: touTariff(), intervals: readings, from: at("2026-07-15T04:00:00Z"),
                to: at("2026-07-16T04:00:00Z"))
        }
        #expect(text?.contains("needs kvarh; 96 intervals have none") == true)
    }

    @Test("a holiday bills with the weekend schedule: everything off-peak, on-peak demand 0 kW")
    func holiday() throws {
        let bill = try Bill.compute(
            tariff: touTariff(powerFactorTarget: nil, holidays: [LocalDate("2026-07-15")]),
            intervals: workedDay(),
            from: at("2026-07-15T04:00:00Z"), to: at("2026-07-16T04:00:00Z"))
        // 120 kWh × 0.0825 = 9.90; fixed 12.50; demand 16 × 9.87 = 157.92; on-peak 0 kW → 0.00.
        // 9.90 + 12.50 + 157.92 = 180.32.
        #expect(bill.lineItems.map(\.amount) == [dec("9.9"), dec("12.5"), dec("157.92"), 0])
        #expect(bill.total == dec("180.32"))
        #expect(bill.onPeakMaxDemand == nil)
        #expect(bill.warnings.contains { $0.contains("on-peak demand is 0 kW") })
    }

    @Test(
        "an interval's period is its start's local hour, weekday or weekend, both sides of each boundary"
    )
    func periodBoundaries() throws {
        let tariff = touTariff()
        // Wednesday 2026-07-15, EDT: local 13:45 = 17:45Z, 14:00 = 18:00Z, 18:45 = 22:45Z, 19:00 = 23:00Z.
        #expect(try tariff.period(at: at("2026-07-15T17:45:00Z")) == 0)
        #expect(try tariff.period(at: at("2026-07-15T18:00:00Z")) == 1)
        #expect(try tariff.period(at: at("2026-07-15T22:45:00Z")) == 1)
        #expect(try tariff.period(at: at("2026-07-15T23:00:00Z")) == 0)
        // Saturday 2026-07-18 local 15:00 = 19:00Z: weekend, off-peak.
        #expect(try tariff.period(at: at("2026-07-18T19:00:00Z")) == 0)
        // Friday 2026-07-17 local 15:00 = 19:00Z: weekday, on-peak.
        #expect(try tariff.period(at: at("2026-07-17T19:00:00Z")) == 1)
        // Saturday 2026-07-18 local 00:30 = 04:30Z but Friday 23:30 local = 03:30Z on the 18th (UTC already
        // Saturday): the local weekday decides. Make Friday hour 23 on-peak to tell the two apart.
        var lateFriday = tariff
        lateFriday.energyWeekdaySchedule[6][23] = 1
        #expect(try lateFriday.period(at: at("2026-07-18T03:30:00Z")) == 1)
        #expect(try lateFriday.period(at: at("2026-07-18T04:30:00Z")) == 0)
    }

    @Test("DST days bill by local hour: 92 intervals on spring-forward, 100 on fall-back")
    func daylightSavingDays() throws {
        // Night (0) is local 00:00-06:00 at 0.10/kWh, day (1) the rest at 0.20/kWh, every day.
        let tariff = Tariff(
            name: "Night saver", timeZone: "America/New_York", periods: ["night", "day"],
            energyWeekdaySchedule: schedule { $0 < 6 ? 0 : 1 },
            energyWeekendSchedule: schedule { $0 < 6 ? 0 : 1 },
            energyRates: [dec("0.10"), dec("0.20")], fixedChargePerMonth: 0)
        // 2026-03-08: local midnight EST = 05:00Z, next midnight EDT = 2026-03-09T04:00Z, 23 h = 92 intervals.
        // Night: 00:00-02:00 EST (05:00Z-07:00Z, 8 intervals) + 03:00-06:00 EDT (07:00Z-10:00Z, 12) = 20 kWh → 2.00.
        // Day: 06:00-24:00 EDT = 18 h = 72 kWh → 14.40. Total 16.40.
        let spring = try Bill.compute(
            tariff: tariff,
            intervals: quarterHours(from: at("2026-03-08T05:00:00Z"), count: 92, kWh: { _ in 1 }),
            from: at("2026-03-08T05:00:00Z"), to: at("2026-03-09T04:00:00Z"))
        #expect(spring.lineItems.map(\.quantity) == [20, 72, 1])
        #expect(spring.total == dec("16.4"))
        #expect(spring.complete && spring.intervalCount == 92)
        // 2026-11-01: local midnight EDT = 04:00Z, next midnight EST = 2026-11-02T05:00Z, 25 h = 100 intervals.
        // Night: 00:00 EDT to 06:00 EST = 04:00Z-11:00Z = 7 h (01:00-02:00 twice) = 28 kWh → 2.80.
        // Day: 06:00-24:00 EST = 72 kWh → 14.40. Total 17.20.
        let fall = try Bill.compute(
            tariff: tariff,
            intervals: quarterHours(from: at("2026-11-01T04:00:00Z"), count: 100, kWh: { _ in 1 }),
            from: at("2026-11-01T04:00:00Z"), to: at("2026-11-02T05:00:00Z"))
        #expect(fall.lineItems.map(\.quantity) == [28, 72, 1])
        #expect(fall.total == dec("17.2"))
        #expect(fall.complete && fall.intervalCount == 100)
    }

    @Test("the same CSV read as starts or as ends moves energy across the 17:00 boundary")
    func conventionMovesEnergy() throws {
        // UTC tariff: off (0) before 17:00 at 0.10, on (1) from 17:00 at 0.30.
        let tariff = Tariff(
            name: "Evening", timeZone: "UTC", periods: ["off", "on"],
            energyWeekdaySchedule: schedule { $0 >= 17 ? 1 : 0 },
            energyWeekendSchedule: schedule { $0 >= 17 ? 1 : 0 },
            energyRates: [dec("0.10"), dec("0.30")], fixedChargePerMonth: 0)
        let csv = """
            timestamp,kWh
            2026-07-15T16:45:00Z,1
            2026-07-15T17:00:00Z,2
            2026-07-15T17:15:00Z,4
            """
        let from = try at("2026-07-15T16:45:00Z")
        let to = try at("2026-07-15T17:30:00Z")
        // As starts: 16:45 (off, 1), 17:00 (on, 2), 17:15 (on, 4): off 1 × 0.10 = 0.10, on 6 × 0.30 = 1.80; 1.90.
        let starts = try IntervalSeries(csv: csv, timestampConvention: .start).readings
        let byStart = try Bill.compute(tariff: tariff, intervals: starts, from: from, to: to)
        #expect(byStart.lineItems.map(\.quantity) == [1, 6, 1])
        #expect(byStart.total == dec("1.9"))
        #expect(byStart.complete && byStart.ignoredIntervals == 0)
        // As ends: starts 16:30 (before `from`, ignored), 16:45 (off, 2), 17:00 (on, 4); 17:15 missing.
        // off 2 × 0.10 = 0.20, on 4 × 0.30 = 1.20; 1.40.
        let ends = try IntervalSeries(csv: csv, timestampConvention: .end).readings
        let byEnd = try Bill.compute(tariff: tariff, intervals: ends, from: from, to: to)
        #expect(byEnd.lineItems.map(\.quantity) == [2, 4, 1])
        #expect(byEnd.total == dec("1.4"))
        #expect(byEnd.ignoredIntervals == 1)
        #expect(byEnd.missingIntervals == [try at("2026-07-15T17:15:00Z")])
        #expect(!byEnd.complete)
    }

    @Test("missing intervals are flagged and billed from what exists, never zero-filled")
    func missingIntervals() throws {
        let tariff = Tariff(
            name: "Flat", timeZone: "UTC", periods: ["all"], energyWeekdaySchedule: schedule { _ in 0 },
            energyWeekendSchedule: schedule { _ in 0 }, energyRates: [dec("0.25")], fixedChargePerMonth: 0
        )
        // 00:00, 00:15, 00:45 present with 1, 2, 4 kWh; 00:30 missing. An interval at 01:00 (= to) is ignored.
        let readings = [
            IntervalReading(start: try at("2026-07-15T00:00:00Z"), kWh: 1),
            IntervalReading(start: try at("2026-07-15T00:15:00Z"), kWh: 2),
            IntervalReading(start: try at("2026-07-15T00:45:00Z"), kWh: 4),
            IntervalReading(start: try at("2026-07-15T01:00:00Z"), kWh: 8),
        ]
        let bill = try Bill.compute(
            tariff: tariff, intervals: readings, from: at("2026-07-15T00:00:00Z"),
            to: at("2026-07-15T01:00:00Z"))
        // 1 + 2 + 4 = 7 kWh × 0.25 = 1.75.
        #expect(bill.energyKWh == 7)
        #expect(bill.total == dec("1.75"))
        #expect(bill.missingIntervals == [try at("2026-07-15T00:30:00Z")])
        #expect(!bill.complete)
        #expect(bill.ignoredIntervals == 1)
        #expect(bill.warnings.contains { $0.hasPrefix("1 intervals are missing") })
    }

    @Test(
        "5-minute data rolls up into quarter hours; an incomplete quarter hour is left out of demand")
    func fiveMinuteRollUp() throws {
        let tariff = Tariff(
            name: "Demand", timeZone: "UTC", periods: ["all"], energyWeekdaySchedule: schedule { _ in 0 },
            energyWeekendSchedule: schedule { _ in 0 }, energyRates: [dec("0.10")],
            fixedChargePerMonth: 0,
            demandChargePerKW: 10)
        let start = try at("2026-07-15T00:00:00Z")
        let kWh = [1, 1, 1, 2, 2, 2.5]
        let readings = kWh.enumerated().map {
            IntervalReading(
                start: start.adding(seconds: Double($0.offset * 300)), seconds: 300, kWh: $0.element)
        }
        let to = try at("2026-07-15T00:30:00Z")
        // Quarter hours: 1 + 1 + 1 = 3 kWh → 12 kW; 2 + 2 + 2.5 = 6.5 kWh → 26 kW at 00:15.
        // Energy 9.5 × 0.10 = 0.95; demand 26 × 10 = 260.00; total 260.95.
        let bill = try Bill.compute(tariff: tariff, intervals: readings, from: start, to: to)
        #expect(bill.maxDemand?.kW == 26)
        #expect(bill.maxDemand?.start == (try at("2026-07-15T00:15:00Z")))
        #expect(bill.total == dec("260.95"))
        #expect(bill.intervalSeconds == 300)
        // Without 00:20 (2 kWh), the second quarter hour is incomplete: demand is the first, 12 kW.
        // Energy 7.5 × 0.10 = 0.75; demand 12 × 10 = 120.00; total 120.75.
        var gappy = readings
        gappy.remove(at: 4)
        let partial = try Bill.compute(tariff: tariff, intervals: gappy, from: start, to: to)
        #expect(partial.maxDemand?.kW == 12)
        #expect(partial.total == dec("120.75"))
        #expect(partial.missingIntervals == [try at("2026-07-15T00:20:00Z")])
        #expect(partial.warnings.contains { $0.hasPrefix("1 quarter hours lack an interval") })
    }

    @Test("mixed lengths, hourly data with demand charges, and empty periods are refused")
    func refusals() throws {
        let start = try at("2026-07-15T00:00:00Z")
        let flat = Tariff(
            name: "Flat", timeZone: "UTC", periods: ["all"], energyWeekdaySchedule: schedule { _ in 0 },
            energyWeekendSchedule: schedule { _ in 0 }, energyRates: [dec("0.10")], fixedChargePerMonth: 0
        )
        var withDemand = flat
        withDemand.demandChargePerKW = 5
        let mixed = [
            IntervalReading(start: start, seconds: 300, kWh: 1),
            IntervalReading(start: start.adding(seconds: 300), seconds: 900, kWh: 1),
        ]
        #expect(
            message {
                _ = try Bill.compute(
                    tariff: flat, intervals: mixed, from: start, to: start.adding(seconds: 3600))
            }?
            .contains("mix lengths 300 s, 900 s") == true)
        let hourly = [IntervalReading(start: start, seconds: 3600, kWh: 3)]
        // Energy-only tariffs accept hourly data: 3 × 0.10 = 0.30, no demand.
        let energyOnly = try Bill.compute(
            tariff: flat, intervals: hourly, from: start, to: start.adding(seconds: 3600))
        #expect(energyOnly.total == dec("0.3") && energyOnly.maxDemand == nil)
        #expect(
            message {
                _ = try Bill.compute(
                    tariff: withDemand, intervals: hourly, from: start, to: start.adding(seconds: 3600))
            }?
            .contains("need 15-minute demand") == true)
        #expect(
            message {
                _ = try Bill.compute(
                    tariff: flat, intervals: hourly, from: start.adding(seconds: 3600),
                    to: start.adding(seconds: 7200))
            }?
            .hasPrefix("no interval starts in the billing period") == true)
        #expect(
            message { _ = try Bill.compute(tariff: flat, intervals: hourly, from: start, to: start) }?
                .contains("must be before") == true)
    }

    @Test("tariff JSON decodes exact decimal rates, and validation names the field")
    func tariffValidation() throws {
        let row = "[" + Array(repeating: "0", count: 24).joined(separator: ",") + "]"
        let rows = "[" + Array(repeating: row, count: 12).joined(separator: ",") + "]"
        let json = """
            {"name": "Flat", "timeZone": "America/New_York", "currency": "USD", "periods": ["all"],
             "energyWeekdaySchedule": \(rows), "energyWeekendSchedule": \(rows),
             "energyRates": [0.0825], "fixedChargePerMonth": 12.5, "powerFactor": {"target": 1},
             "holidays": ["2026-07-03"]}
            """
        let tariff = try Tariff(json: Data(json.utf8))
        #expect(tariff.energyRates == [dec("0.0825")])
        #expect(tariff.holidays == [try LocalDate("2026-07-03")])
        #expect(
            message { _ = try Tariff(json: Data(#"{"name": "x"}"#.utf8)) } == "tariff.timeZone: missing")

        let good = touTariff()
        func refuse(_ change: (inout Tariff) -> Void) -> String? {
            var tariff = good
            change(&tariff)
            return message { try tariff.validate() }
        }
        #expect(refuse { _ in } == nil)
        #expect(refuse { $0.energyWeekdaySchedule.removeLast() }?.contains("11 rows, need 12") == true)
        #expect(
            refuse { $0.energyWeekendSchedule[3].removeLast() }?.contains(
                "energyWeekendSchedule[3] (month 4): 23 values") == true)
        #expect(
            refuse { $0.energyWeekdaySchedule[0][5] = 2 }?.contains(
                "energyWeekdaySchedule[0][5]: period 2 does not exist") == true)
        #expect(refuse { $0.energyWeekdaySchedule[0][5] = -1 } != nil)
        #expect(refuse { $0.energyRates = [dec("0.1")] }?.contains("1 rates for 2 periods") == true)
        #expect(
            refuse { $0.energyRates[1] = dec("-0.01") }?.contains("energyRates[1]: must be ≥ 0") == true)
        #expect(refuse { $0.energyRates[1] = 0 } == nil)
        #expect(refuse { $0.fixedChargePerMonth = -1 }?.contains("fixedChargePerMonth") == true)
        #expect(refuse { $0.demandChargePerKW = -1 }?.contains("demandChargePerKW") == true)
        #expect(
            refuse { $0.onPeakDemand?.periods = [2] }?.contains("onPeakDemand.periods: period 2") == true)
        #expect(refuse { $0.timeZone = "Eastern" }?.contains("not an IANA time zone") == true)
        #expect(refuse { $0.currency = "usd" }?.contains("currency") == true)
        // Power-factor target: (0, 1], so 0 and 1.01 are refused, 1 is accepted.
        #expect(
            refuse { $0.powerFactor = PowerFactorRule(target: 0) }?.contains("outside (0, 1]") == true)
        #expect(
            refuse { $0.powerFactor = PowerFactorRule(target: 1.01) }?.contains("outside (0, 1]") == true)
        #expect(refuse { $0.powerFactor = PowerFactorRule(target: 1) } == nil)
        #expect(
            refuse { $0.holidays = [try! LocalDate("2026-07-03"), try! LocalDate("2026-07-03")] } != nil)
    }

    @Test("bills encode as JSON with exact decimal amounts")
    func billJSON() throws {
        let bill = try Bill.compute(
            tariff: touTariff(), intervals: workedDay(), from: at("2026-07-15T04:00:00Z"),
            to: at("2026-07-16T04:00:00Z"))
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let text = String(decoding: try encoder.encode(bill), as: UTF8.self)
        #expect(text.contains(#""total":265.83"#))
        #expect(text.contains(#""amount":7.59"#))
        #expect(try JSONDecoder().decode(Bill.self, from: Data(text.utf8)) == bill)
    }
}
