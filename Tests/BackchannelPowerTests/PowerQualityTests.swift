import BackchannelPower
import BackchannelProtocol
import Foundation
import Testing

/// 2026-03-01T00:00:00Z: the first value of every series here.
private let origin = Timestamp(milliseconds: 1_772_323_200_000)

/// A 230 V, 50 Hz series one half cycle (10 ms) apart from `origin`.
///
/// Default thresholds on 230 V: dip 230 × 90 ÷ 100 = 207 V, dip end 230 × 92 ÷ 100 = 211.6 V;
/// swell 230 × 110 ÷ 100 = 253 V, swell end 230 × 108 ÷ 100 = 248.4 V; interruption
/// 230 × 10 ÷ 100 = 23 V, interruption end 230 × 12 ÷ 100 = 27.6 V.
private func series230(_ values: [Double]) -> RMSSeries {
    RMSSeries(nominalVolts: 230, frequencyHz: 50, start: origin, vrms: values)
}

private func at(ms: Int64) -> Timestamp { Timestamp(milliseconds: origin.milliseconds + ms) }

@Suite("Power quality event detection")
struct PowerQualityTests {
    let detector = PQEventDetector()

    @Test("a value equal to the dip threshold does not start a dip; one just below does")
    func dipStartBoundary() throws {
        // 207.0 is not below 207 V: no event.
        #expect(try detector.detect(series230([230, 207.0, 230])).events.isEmpty)
        // 206.9 < 207 starts at index 1 (10 ms); 230 ≥ 211.6 ends at index 2 (20 ms).
        let events = try detector.detect(series230([230, 206.9, 230])).events
        let dip = try #require(events.first)
        #expect(events.count == 1)
        #expect(dip.kind == .dip)
        #expect(dip.start == at(ms: 10))
        #expect(dip.end == at(ms: 20))
        #expect(dip.durationSeconds == 0.01)  // 1 half cycle = 1 ÷ 100 s
    }

    @Test("a dip ends at threshold + hysteresis exactly, not just below it")
    func dipEndBoundary() throws {
        // Index 1 starts (200 < 207); 211.5 < 211.6 continues; 211.6 ≥ 211.6 ends at index 3.
        let dip = try #require(
            try detector.detect(series230([230, 200, 211.5, 211.6, 230])).events.first)
        #expect(dip.end == at(ms: 30))
        #expect(dip.durationSeconds == 0.02)  // (3 − 1) half cycles ÷ 100
        #expect(dip.residualVolts == 200)
    }

    @Test("swell starts above 253 V (not at it), ends at or below 248.4 V, residual is the maximum")
    func swellBoundaries() throws {
        #expect(try detector.detect(series230([230, 253.0, 230])).events.isEmpty)
        // 253.1 > 253 starts at index 1; 270 is the maximum; 248.5 > 248.4 continues;
        // 248.4 ≤ 248.4 ends at index 4. Duration (4 − 1) ÷ 100 = 0.03 s = 1.5 cycles.
        let result = try detector.detect(series230([230, 253.1, 270, 248.5, 248.4, 230]))
        let swell = try #require(result.events.first)
        #expect(result.events.count == 1)
        #expect(swell.kind == .swell)
        #expect(swell.start == at(ms: 10))
        #expect(swell.end == at(ms: 40))
        #expect(swell.durationSeconds == 0.03)
        #expect(swell.residualVolts == 270)
        #expect(swell.residualTime == at(ms: 20))
        // 270 ÷ 230 = 1.1739 pu for 1.5 cycles: instantaneous swell (1.1 < m ≤ 1.8).
        #expect(swell.classification.category == .swell)
        #expect(swell.classification.duration == .instantaneous)
        // 270 × 100 ÷ 230 = 117.391…%
        #expect(abs(swell.residualPercent - 117.391_304) < 1e-5)
    }

    @Test("an interruption inside a dip is one event of kind interruption with the dip's envelope")
    func nestedInterruption() throws {
        // idx: 0=230, 1=100 (dip starts, 10 ms), 2=22.9 (< 23: interruption starts),
        // 3=23.0 (not ≥ 27.6: still interrupted), 4=27.6 (≥ 27.6: interruption ends; < 211.6: dip
        // continues), 5=150, 6=211.6 (dip ends, 60 ms), 7=230.
        let result = try detector.detect(series230([230, 100, 22.9, 23.0, 27.6, 150, 211.6, 230]))
        #expect(result.events.count == 1)
        let event = try #require(result.events.first)
        #expect(event.kind == .interruption)
        #expect(event.start == at(ms: 10))
        #expect(event.end == at(ms: 60))
        #expect(event.durationSeconds == 0.05)  // (6 − 1) ÷ 100
        #expect(event.residualVolts == 22.9)
        #expect(event.residualTime == at(ms: 20))
        #expect(event.interruptionSeconds == 0.02)  // (4 − 2) ÷ 100
        // 22.9 × 100 ÷ 230 = 9.9565…%; 0.099565 pu < 0.1 for 2.5 cycles: momentary interruption.
        #expect(abs(event.residualPercent - 9.956_522) < 1e-5)
        #expect(event.classification.category == .interruption)
        #expect(event.classification.duration == .momentary)
    }

    @Test("a minimum exactly at the interruption threshold stays a dip")
    func interruptionThresholdBoundary() throws {
        // 23.0 is not below 23 V: dip, residual 23 V = 23 × 100 ÷ 230 = 10 %.
        let event = try #require(try detector.detect(series230([230, 23.0, 230])).events.first)
        #expect(event.kind == .dip)
        #expect(event.interruptionSeconds == nil)
        #expect(event.residualPercent == 10)
        #expect(event.classification.category == .sag)  // 0.1 pu is a sag, not an interruption
    }

    @Test("an IEC 5 % interruption threshold keeps a 7 % dip a dip")
    func configurableInterruption() throws {
        // 230 × 5 ÷ 100 = 11.5 V; 16.1 V is not below it. 16.1 ÷ 230 = 0.07 pu.
        let iec = PQEventDetector(thresholds: PQThresholds(interruptionPercent: 5))
        let event = try #require(try iec.detect(series230([230, 16.1, 230])).events.first)
        #expect(event.kind == .dip)
        // IEEE 1159 still calls 0.07 pu an interruption: the class is by magnitude.
        #expect(event.classification.category == .interruption)
        let strict = try #require(try detector.detect(series230([230, 16.1, 230])).events.first)
        #expect(strict.kind == .interruption)
    }

    @Test("an event still open at the end of the series is reported as ongoing")
    func ongoingEvent() throws {
        // Dip starts at index 2 (20 ms); the last value, index 4, is still below 211.6.
        let event = try #require(
            try detector.detect(series230([230, 230, 200, 190, 211.5])).events.first)
        #expect(event.ongoing)
        #expect(event.end == nil)
        #expect(event.durationSeconds == 0.02)  // (4 − 2) ÷ 100, up to the last value
        #expect(event.residualVolts == 190)
        #expect(!event.startsAtSeriesStart)
    }

    @Test("a series that starts inside a dip says so")
    func startsInside() throws {
        let event = try #require(try detector.detect(series230([200, 230])).events.first)
        #expect(event.startsAtSeriesStart)
        #expect(event.start == origin)
    }

    @Test("a jump from a dip straight into a swell gives two events sharing a value")
    func dipThenSwell() throws {
        // Dip idx1 (200) ends at idx2 (260 ≥ 211.6); swell starts at idx2 (260 > 253), ends idx3.
        let events = try detector.detect(series230([230, 200, 260, 230])).events
        #expect(events.map(\.kind) == [.dip, .swell])
        #expect(events.map(\.start) == [at(ms: 10), at(ms: 20)])
        #expect(events.map(\.end) == [at(ms: 20), at(ms: 30)])
    }

    @Test("60 Hz values are 1/120 s apart")
    func sixtyHertz() throws {
        // 120 V: dip < 108 V. Start idx 1, end idx 7: 6 half cycles = 6 ÷ 120 = 0.05 s = 3 cycles.
        let series = RMSSeries(
            nominalVolts: 120, frequencyHz: 60, start: origin,
            vrms: [120, 100, 100, 100, 100, 100, 100, 120])
        let event = try #require(try detector.detect(series).events.first)
        #expect(event.durationSeconds == 0.05)
        #expect(event.classification.durationCycles == 3)
        #expect(event.start == at(ms: 8))  // 1 ÷ 120 s = 8.33 ms, rounded to 8 ms
    }

    @Test("CSV with a t column: seconds from the given start")
    func csvOffsets() throws {
        let csv = "t,vrms\n0,230\n0.5,200\n# comment\n2.5,230\n"
        // Dip from 0.5 s to 2.5 s: 2 s = 100 cycles: momentary sag at 200 ÷ 230 = 0.8696 pu.
        let series = try RMSSeries(csv: csv, nominalVolts: 230, frequencyHz: 50, start: origin)
        let event = try #require(try detector.detect(series).events.first)
        #expect(event.start == at(ms: 500))
        #expect(event.end == at(ms: 2500))
        #expect(event.durationSeconds == 2)
        #expect(event.classification.label == "momentary sag")
    }

    @Test("CSV with a time column: RFC 3339 times, offsets from the first row")
    func csvTimes() throws {
        let csv = """
            time,v
            2026-03-01T00:00:00.000Z,230
            2026-03-01T00:00:01.000Z,260
            2026-03-01T00:00:05.000Z,230
            """
        // Swell from 1 s to 5 s: 4 s, 260 ÷ 230 = 1.1304 pu ≤ 1.2: temporary swell.
        let series = try RMSSeries(csv: csv, nominalVolts: 230, frequencyHz: 50)
        let event = try #require(try detector.detect(series).events.first)
        #expect(event.durationSeconds == 4)
        #expect(event.classification.label == "temporary swell")
    }

    @Test("CSV errors name the line and column")
    func csvErrors() {
        #expect(throws: PowerInputError("line 3, vrms: \"abc\" is not a number")) {
            try RMSSeries(
                csv: "t,vrms\n0,230\n0.01,abc\n", nominalVolts: 230, frequencyHz: 50, start: origin)
        }
        #expect(throws: PowerInputError("line 3: time does not increase from the line before")) {
            try RMSSeries(
                csv: "t,vrms\n0.01,230\n0.01,230\n", nominalVolts: 230, frequencyHz: 50, start: origin)
        }
        #expect(
            throws: PowerInputError(
                "column t holds seconds from a start time, and no start time was given")
        ) {
            try RMSSeries(csv: "t,vrms\n0,230\n", nominalVolts: 230, frequencyHz: 50)
        }
        #expect(throws: PowerInputError("line 2, vrms: must be ≥ 0")) {
            try RMSSeries(csv: "t,vrms\n0,-1\n", nominalVolts: 230, frequencyHz: 50, start: origin)
        }
    }

    @Test("invalid series and thresholds are refused")
    func validation() {
        #expect(throws: PowerInputError("frequencyHz must be 50 or 60, not 55")) {
            try detector.detect(RMSSeries(nominalVolts: 230, frequencyHz: 55, start: origin, vrms: [230]))
        }
        #expect(throws: PowerInputError("vrms[1] must be a finite number ≥ 0")) {
            try detector.detect(series230([230, .nan]))
        }
        #expect(throws: PowerInputError("vrms: the series has no values")) {
            try detector.detect(series230([]))
        }
        #expect(throws: PowerInputError("offsets has 1 values, vrms has 2")) {
            try detector.detect(
                RMSSeries(
                    nominalVolts: 230, frequencyHz: 50, start: origin, vrms: [230, 230], offsets: [0]))
        }
        let bad = PQEventDetector(thresholds: PQThresholds(dipPercent: 99))
        #expect(throws: PowerInputError("thresholds: dipPercent + hysteresisPercent must be ≤ 100")) {
            try bad.detect(series230([230]))
        }
    }

    @Test("detection results round-trip through JSON; an open event has no end key")
    func json() throws {
        let result = try detector.detect(series230([230, 200]))
        let data = try JSONEncoder().encode(result)
        let decoded = try JSONDecoder().decode(PQDetectionResult.self, from: data)
        #expect(decoded == result)
        let text = String(decoding: data, as: UTF8.self)
        #expect(text.contains("\"ongoing\":true"))
        #expect(!text.contains("\"end\""))
    }
}
