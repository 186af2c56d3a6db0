import BackchannelPower
import BackchannelProtocol
import Foundation
import Testing

/// 15-minute intervals from 2026-07-15T00:00Z with the given kWh (`nil` leaves a gap).
private func profile(_ kWh: [Double?], kvarh: Double? = nil) throws -> [IntervalReading] {
    let start = try at("2026-07-15T00:00:00Z")
    return kWh.enumerated().compactMap { index, value in
        value.map {
            IntervalReading(start: start.adding(seconds: Double(index * 900)), kWh: $0, kvarh: kvarh)
        }
    }
}

@Suite("Load reports")
struct LoadReportTests {
    @Test("worked example: one device over an hour")
    func device() throws {
        // kWh 1, 2, 3, 2 → kW 4, 8, 12, 8; peak 12 kW at 00:30. kvarh 0.5 each → 2.
        // 8 kWh over 1 h with data → average 8 kW; load factor 8 / 12 = 0.66666… → 0.6667.
        let report = try LoadReport.compute(
            device: "meter-a", intervals: profile([1, 2, 3, 2], kvarh: 0.5),
            from: at("2026-07-15T00:00:00Z"),
            to: at("2026-07-15T01:00:00Z"))
        #expect(report.kWh == 8)
        #expect(report.kvarh == 2)
        #expect(
            report.peak
                == DemandPeak(
                    kW: 12, start: try at("2026-07-15T00:30:00Z"), end: try at("2026-07-15T00:45:00Z")))
        #expect(report.averageKW == 8)
        #expect(report.loadFactor == dec("0.6667"))
        #expect(report.hoursWithData == 1 && report.periodHours == 1)
        #expect(report.intervalCount == 4 && report.missingCount == 0 && report.warnings.isEmpty)
    }

    @Test("the average uses only the hours with data; missing intervals are counted, not zero")
    func missingData() throws {
        // 00:15 missing: kWh 1 + 3 + 2 = 6 over 3 × 0.25 = 0.75 h → 8 kW (over the whole hour it would be 6 kW).
        // Peak 12 kW; load factor 8 / 12 = 0.6667. Average with data in 1/3-hour steps: 6 / 0.75 = 8 exactly.
        let report = try LoadReport.compute(
            device: "meter-a", intervals: profile([1, nil, 3, 2]), from: at("2026-07-15T00:00:00Z"),
            to: at("2026-07-15T01:00:00Z"))
        #expect(report.kWh == 6)
        #expect(report.kvarh == nil)
        #expect(report.averageKW == 8)
        #expect(report.hoursWithData == dec("0.75") && report.periodHours == 1)
        #expect(report.missingCount == 1)
        #expect(report.missingIntervals == [try at("2026-07-15T00:15:00Z")])
        #expect(report.intervalCount == 3)
        #expect(!report.warnings.isEmpty)
    }

    @Test("average kW rounds half-up to 0.001, load factor to 0.0001")
    func rounding() throws {
        // kWh 1, 1, 1.0001 → 3.0001 kWh over 0.75 h = 4.000133… kW → 4.000.
        // Peak 1.0001 × 4 = 4.0004 kW; load factor 4.000133… / 4.0004 = 0.99993… → 0.9999.
        let report = try LoadReport.compute(
            device: "m", intervals: profile([1, 1, 1.0001]), from: at("2026-07-15T00:00:00Z"),
            to: at("2026-07-15T00:45:00Z"))
        #expect(report.averageKW == 4)
        #expect(report.peak?.kW == dec("4.0004"))
        #expect(report.loadFactor == dec("0.9999"))
    }

    @Test("a device with no data: counted as all missing, no average, no load factor")
    func noData() throws {
        let from = try at("2026-07-15T00:00:00Z")
        let to = try at("2026-07-15T01:00:00Z")
        let report = try LoadReport.compute(
            device: "m", intervals: [], from: from, to: to, intervalSeconds: 900)
        #expect(
            report.missingCount == 4 && report.averageKW == nil && report.loadFactor == nil
                && report.peak == nil)
        #expect(throws: PowerInputError.self) {
            _ = try LoadReport.compute(device: "m", intervals: [], from: from, to: to)
        }
        // All-zero load: peak 0 kW, so no load factor (0 / 0), and a warning says why.
        let idle = try LoadReport.compute(
            device: "m", intervals: profile([0, 0]), from: from, to: from.adding(seconds: 1800))
        #expect(idle.peak?.kW == 0 && idle.loadFactor == nil && idle.averageKW == 0)
        #expect(idle.warnings.contains { $0.contains("no load factor") })
    }

    @Test("worked example: group coincident peak and sum of non-coincident peaks")
    func group() throws {
        // A: kWh 1, 2, 3, 2 → kW 4, 8, 12, 8 (peak 12 at 00:30).
        // B: kWh 3, 2, 1, 1 → kW 12, 8, 4, 4 (peak 12 at 00:00).
        // Sums per quarter hour: 16, 16, 16, 12 → coincident peak 16 kW at 00:00 (the earliest of equals).
        // Sum of non-coincident peaks 12 + 12 = 24 kW; diversity 24 / 16 = 1.5. Energy 8 + 7 = 15 kWh.
        // B: average 7 kW, load factor 7 / 12 = 0.58333… → 0.5833.
        let report = try GroupLoadReport.compute(
            group: "feeder-1",
            members: [
                DeviceIntervals(device: "a", intervals: profile([1, 2, 3, 2])),
                DeviceIntervals(device: "b", intervals: profile([3, 2, 1, 1])),
            ], from: at("2026-07-15T00:00:00Z"), to: at("2026-07-15T01:00:00Z"))
        #expect(report.members.map(\.device) == ["a", "b"])
        #expect(report.members.map(\.loadFactor) == [dec("0.6667"), dec("0.5833")])
        #expect(
            report.coincidentPeak
                == DemandPeak(
                    kW: 16, start: try at("2026-07-15T00:00:00Z"), end: try at("2026-07-15T00:15:00Z")))
        #expect(report.sumOfNonCoincidentPeaksKW == 24)
        #expect(report.diversityFactor == dec("1.5"))
        #expect(report.kWh == 15)
        #expect(report.skippedQuarterHours == 0 && report.warnings.isEmpty)
    }

    @Test("a quarter hour where a member has no data is skipped from the coincident peak")
    func groupGap() throws {
        // B misses 00:00. Sums: 00:00 skipped (would be 4 + ?); 00:15 8 + 8 = 16; 00:30 12 + 4 = 16; 00:45 8 + 4 = 12.
        // Coincident peak 16 kW at 00:15. B's own peak is now 8 kW at 00:15; sum of peaks 12 + 8 = 20; 20 / 16 = 1.25.
        let report = try GroupLoadReport.compute(
            group: "feeder-1",
            members: [
                DeviceIntervals(device: "a", intervals: profile([1, 2, 3, 2])),
                DeviceIntervals(device: "b", intervals: profile([nil, 2, 1, 1])),
            ], from: at("2026-07-15T00:00:00Z"), to: at("2026-07-15T01:00:00Z"))
        #expect(report.coincidentPeak?.kW == 16)
        #expect(report.coincidentPeak?.start == (try at("2026-07-15T00:15:00Z")))
        #expect(report.sumOfNonCoincidentPeaksKW == 20)
        #expect(report.diversityFactor == dec("1.25"))
        #expect(report.skippedQuarterHours == 1)
        #expect(report.members[1].missingCount == 1)
    }

    @Test("a group refuses no members and repeated device names")
    func groupRefusals() throws {
        let from = try at("2026-07-15T00:00:00Z")
        let to = try at("2026-07-15T01:00:00Z")
        #expect(throws: PowerInputError.self) {
            _ = try GroupLoadReport.compute(group: "g", members: [], from: from, to: to)
        }
        let twice = [
            DeviceIntervals(device: "a", intervals: []), DeviceIntervals(device: "a", intervals: []),
        ]
        #expect(throws: PowerInputError("group g: device a is listed twice")) {
            _ = try GroupLoadReport.compute(
                group: "g", members: twice, from: from, to: to, intervalSeconds: 900)
        }
    }
}
