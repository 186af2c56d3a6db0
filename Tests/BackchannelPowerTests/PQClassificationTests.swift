import BackchannelPower
import BackchannelProtocol
import Foundation
import Testing

/// 2026-03-01T00:00:00Z.
private let origin = Timestamp(milliseconds: 1_772_323_200_000)

private func classify(_ m: Double, _ d: Double, _ f: Int = 50) throws -> PQClassification {
    try PQClassification(magnitudePerUnit: m, durationSeconds: d, frequencyHz: f)
}

/// "category/duration" or "nil/duration" for compact expectations.
private func code(_ m: Double, _ d: Double, _ f: Int = 50) throws -> String {
    let c = try classify(m, d, f)
    return "\(c.category?.rawValue ?? "nil")/\(c.duration?.rawValue ?? "nil")"
}

@Suite("IEEE 1159 classification")
struct PQClassificationTests {
    @Test("worked example: a 230 V dip with hysteresis, detected and classified by hand")
    func workedDip() throws {
        // 230 V, 50 Hz, one value every 10 ms. Dip threshold 230 × 90 % = 207 V; it ends at
        // 230 × (90 + 2) % = 211.6 V.
        //   idx 0  t=0 ms   230.0  normal
        //   idx 1  t=10 ms  207.0  equal to 207, not below: no dip
        //   idx 2  t=20 ms  206.5  < 207: the dip STARTS here
        //   idx 3  t=30 ms  190.0
        //   idx 4  t=40 ms  161.0  the minimum
        //   idx 5  t=50 ms  209.0  back above 207 but < 211.6: the dip goes on
        //   idx 6  t=60 ms  207.0  < 211.6: goes on
        //   idx 7  t=70 ms  211.5  < 211.6: goes on
        //   idx 8  t=80 ms  211.6  ≥ 211.6: the dip ENDS here
        //   idx 9  t=90 ms  230.0
        // Duration 80 − 20 = 60 ms = 0.06 s = 6 half cycles = 3 cycles.
        // Residual 161 V = 161 ÷ 230 = 0.7 pu = 70 %.
        // IEEE 1159: 0.5 ≤ 3 ≤ 30 cycles and 0.1 ≤ 0.7 < 0.9 → instantaneous sag.
        let series = RMSSeries(
            nominalVolts: 230, frequencyHz: 50, start: origin,
            vrms: [230, 207, 206.5, 190, 161, 209, 207, 211.5, 211.6, 230])
        let result = try PQEventDetector().detect(series)
        #expect(result.events.count == 1)
        let dip = try #require(result.events.first)
        #expect(dip.kind == .dip)
        #expect(dip.start == Timestamp(rfc3339: "2026-03-01T00:00:00.020Z"))
        #expect(dip.end == Timestamp(rfc3339: "2026-03-01T00:00:00.080Z"))
        #expect(dip.durationSeconds == 0.06)
        #expect(dip.residualVolts == 161)
        #expect(dip.residualPercent == 70)
        #expect(dip.residualTime == Timestamp(rfc3339: "2026-03-01T00:00:00.040Z"))
        #expect(dip.classification.magnitudePerUnit == 0.7)
        #expect(dip.classification.durationCycles == 3)
        #expect(dip.classification.category == .sag)
        #expect(dip.classification.duration == .instantaneous)
        #expect(dip.classification.label == "instantaneous sag")
        #expect(!dip.ongoing)
    }

    @Test("duration edges at 50 Hz: 0.5 cycles = 0.01 s, 30 cycles = 0.6 s, 3 s, 60 s")
    func durationEdges50() throws {
        #expect(try code(0.5, 0.009) == "nil/nil")  // 0.45 cycles: shorter than half a cycle
        #expect(try code(0.5, 0.01) == "sag/instantaneous")  // 0.5 cycles: included
        #expect(try code(0.5, 0.6) == "sag/instantaneous")  // 30 cycles: included in instantaneous
        #expect(try code(0.5, 0.601) == "sag/momentary")  // 30.05 cycles
        #expect(try code(0.5, 3) == "sag/momentary")  // 3 s: included in momentary
        #expect(try code(0.5, 3.001) == "sag/temporary")
        #expect(try code(0.5, 60) == "sag/temporary")  // 60 s: included in temporary
        #expect(try code(0.85, 60.001) == "undervoltage/sustained")
    }

    @Test("duration edges at 60 Hz: 0.5 cycles = 1/120 s, 30 cycles = 0.5 s")
    func durationEdges60() throws {
        #expect(try code(0.5, 0.008, 60) == "nil/nil")  // 0.48 cycles
        #expect(try code(0.5, 1.0 / 120, 60) == "sag/instantaneous")  // 0.5 cycles
        #expect(try code(0.5, 0.5, 60) == "sag/instantaneous")  // 30 cycles
        #expect(try code(0.5, 0.501, 60) == "sag/momentary")  // 30.06 cycles
        #expect(try classify(1.5, 0.5, 60).durationCycles == 30)
    }

    @Test("magnitude edges: 0.1 and 0.9 pu on the low side, 1.1 pu on the high side")
    func magnitudeEdges() throws {
        #expect(try code(0.0999, 0.1) == "interruption/momentary")
        #expect(try code(0.1, 0.1) == "sag/instantaneous")  // 0.1 pu is a sag
        #expect(try code(0.8999, 0.1) == "sag/instantaneous")
        #expect(try code(0.9, 0.1) == "nil/instantaneous")  // 0.9 pu is not a sag
        #expect(try code(1.0, 0.1) == "nil/instantaneous")
        #expect(try code(1.1, 0.1) == "nil/instantaneous")  // 1.1 pu is not a swell
        #expect(try code(1.1001, 0.1) == "swell/instantaneous")
        #expect(
            try classify(0.9, 0.1).label
                == "unclassified: 0.9 pu for 0.1 s: 0.9–1.1 pu is within the normal band")
    }

    @Test("swell upper limits by band: 1.8, 1.4, 1.2 pu and overvoltage 1.2 pu")
    func swellLimits() throws {
        #expect(try code(1.8, 0.6) == "swell/instantaneous")
        #expect(try code(1.8001, 0.6) == "nil/instantaneous")
        #expect(try code(1.4, 3) == "swell/momentary")
        #expect(try code(1.4001, 3) == "nil/momentary")
        #expect(try code(1.2, 60) == "swell/temporary")
        #expect(try code(1.2001, 60) == "nil/temporary")
        #expect(try code(1.2, 61) == "overvoltage/sustained")
        #expect(try code(1.2001, 61) == "nil/sustained")
        #expect(try classify(1.15, 61).label == "overvoltage")
    }

    @Test("a 1.5 pu swell lasting 10 s is outside the table, not forced into a box")
    func outsideTable() throws {
        // Temporary swells stop at 1.2 pu; 1.5 > 1.2.
        let c = try classify(1.5, 10)
        #expect(c.category == nil)
        #expect(!c.classified)
        #expect(c.duration == .temporary)
        #expect(
            c.label == "unclassified: 1.5 pu for 10 s: above the 1.2 pu limit for a temporary swell")
    }

    @Test("undervoltage is 0.8 ≤ m < 0.9 beyond a minute; deeper long sags are unclassified")
    func undervoltage() throws {
        #expect(try code(0.8, 61) == "undervoltage/sustained")
        #expect(try code(0.7999, 61) == "nil/sustained")
        #expect(try code(0.8999, 61) == "undervoltage/sustained")
        #expect(try classify(0.85, 120).label == "undervoltage")
    }

    @Test("interruptions: momentary up to 3 s (no instantaneous), temporary to 60 s, then sustained")
    func interruptions() throws {
        #expect(try code(0.05, 0.01) == "interruption/momentary")  // 0.5 cycles
        #expect(try code(0.05, 0.6) == "interruption/momentary")  // 30 cycles
        #expect(try code(0.05, 3) == "interruption/momentary")
        #expect(try code(0.05, 3.001) == "interruption/temporary")
        #expect(try code(0, 60) == "interruption/temporary")
        #expect(try code(0, 60.001) == "interruption/sustained")
        #expect(try classify(0, 600).label == "sustained interruption")
    }

    @Test("invalid inputs are refused")
    func invalid() {
        #expect(throws: PowerInputError("magnitudePerUnit must be a finite number ≥ 0")) {
            try classify(-0.1, 1)
        }
        #expect(throws: PowerInputError("durationSeconds must be a finite number ≥ 0")) {
            try classify(0.5, .nan)
        }
        #expect(throws: PowerInputError("frequencyHz must be 50 or 60, not 400")) {
            try classify(0.5, 1, 400)
        }
    }
}

@Suite("RMS synthesizer")
struct RMSSynthesizerTests {
    private func request(
        _ kind: PQEventKind, _ m: Double, _ d: Double, f: Int = 50, pre: Double = 0.02,
        post: Double = 0.03
    ) -> RMSSynthesisRequest {
        RMSSynthesisRequest(
            kind: kind, magnitudePerUnit: m, durationSeconds: d, nominalVolts: 230, frequencyHz: f,
            preSeconds: pre, postSeconds: post, start: origin)
    }

    @Test("a 0.1 s dip to 0.5 pu: 2 + 10 + 3 values, detected back with the same numbers")
    func dipRoundTrip() throws {
        // 50 Hz: 0.02 s = 2 half cycles, 0.1 s = 10, 0.03 s = 3. Dip values 0.5 × 230 = 115 V.
        let series = try RMSSynthesizer.series(for: request(.dip, 0.5, 0.1))
        #expect(series.vrms == [230, 230] + Array(repeating: 115, count: 10) + [230, 230, 230])
        let event = try #require(try PQEventDetector().detect(series).events.first)
        #expect(event.start == Timestamp(milliseconds: origin.milliseconds + 20))
        #expect(event.end == Timestamp(milliseconds: origin.milliseconds + 120))
        #expect(event.durationSeconds == 0.1)
        #expect(event.residualVolts == 115)
        #expect(event.classification.label == "instantaneous sag")  // 5 cycles, 0.5 pu
    }

    @Test("a 61 s dip to 0.85 pu is detected and classified as undervoltage")
    func longUndervoltage() throws {
        // 61 s × 100 = 6100 half cycles at 0.85 × 230 = 195.5 V (< 207: a dip).
        let series = try RMSSynthesizer.series(for: request(.dip, 0.85, 61))
        let event = try #require(try PQEventDetector().detect(series).events.first)
        #expect(event.durationSeconds == 61)
        #expect(event.classification.label == "undervoltage")
    }

    @Test("a 60 Hz swell of 1.3 pu for 1 s: 120 half cycles, a momentary swell")
    func swell60() throws {
        let series = try RMSSynthesizer.series(for: request(.swell, 1.3, 1, f: 60, pre: 0.5, post: 0.5))
        #expect(series.vrms.count == 60 + 120 + 60)
        let event = try #require(try PQEventDetector().detect(series).events.first)
        #expect(event.durationSeconds == 1)
        #expect(event.classification.label == "momentary swell")
    }

    @Test("no post time leaves the event open; an interruption to 0 pu is an interruption")
    func openInterruption() throws {
        let series = try RMSSynthesizer.series(for: request(.interruption, 0, 0.05, post: 0))
        let event = try #require(try PQEventDetector().detect(series).events.first)
        #expect(event.kind == .interruption)
        #expect(event.ongoing)
        #expect(event.durationSeconds == 0.04)  // values 2…6, measured to the last: 4 ÷ 100
    }

    @Test("requests that cannot be met are refused")
    func invalid() {
        #expect(throws: PowerInputError("magnitudePerUnit must be > 1 for a swell")) {
            try RMSSynthesizer.series(for: request(.swell, 0.9, 0.1))
        }
        #expect(throws: PowerInputError("magnitudePerUnit must be < 1 for a dip")) {
            try RMSSynthesizer.series(for: request(.dip, 1.2, 0.1))
        }
        #expect(
            throws: PowerInputError(
                "durationSeconds must be a whole number of half cycles (1/100 s) and at most 3600 s")
        ) {
            try RMSSynthesizer.series(for: request(.dip, 0.5, 0.015))
        }
        #expect(throws: PowerInputError("durationSeconds must be at least one half cycle")) {
            try RMSSynthesizer.series(for: request(.dip, 0.5, 0))
        }
        #expect(throws: PowerInputError("preSeconds + durationSeconds + postSeconds must be ≤ 3600")) {
            try RMSSynthesizer.series(for: request(.dip, 0.5, 3600, pre: 1))
        }
    }
}
