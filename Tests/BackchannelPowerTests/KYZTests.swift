import BackchannelPower
import BackchannelProtocol
import Foundation
import Testing

@Suite("KYZ transport box")
struct KYZTests {
    /// 2026-11-27 at a time of day in UTC, e.g. `at("00:14:59.999")`.
    static func at(_ clock: String) throws -> Timestamp {
        let text = clock.count == 5 ? "2026-11-27T\(clock):00Z" : "2026-11-27T\(clock)Z"
        return try #require(Timestamp(rfc3339: text))
    }

    @Test("pulses go to the interval with start ≤ t < end; kWh = pulses × Ke")
    func pulses() throws {
        var counter = try KYZCounter(ke: Decimal(string: "0.1")!, initialRegisterKWh: 100)
        try counter.addPulses(3, at: try Self.at("00:01"))
        try counter.addPulses(2, at: try Self.at("00:14:59.999"))  // last millisecond of 00:00–00:15
        try counter.addPulses(4, at: try Self.at("00:15:00.000"))  // first millisecond of 00:15–00:30
        try counter.addPulses(0, at: try Self.at("00:44"))  // heartbeat: 00:30–00:45 watched, no pulses
        let readings = counter.intervals(through: try Self.at("00:45"))
        // 00:00: 3 + 2 = 5 pulses × 0.1 = 0.5 kWh (0.5 × 3600 / 900 = 2 kW); 00:15: 4 × 0.1 = 0.4;
        // 00:30: 0 pulses = 0 kWh.
        #expect(readings.map(\.kWh) == [0.5, 0.4, 0])
        #expect(readings.map(\.start) == [try Self.at("00:00"), try Self.at("00:15"), try Self.at("00:30")])
        #expect(readings[0].kW == 2)
        // At 00:44:59 the 00:30 interval is not complete yet (it ends 00:45): two intervals.
        #expect(counter.intervals(through: try Self.at("00:44:59.000")).count == 2)
        // Register: 100 + 9 pulses × 0.1 = 100.9 kWh, exactly.
        #expect(counter.registerKWh == Decimal(string: "100.9")!)
        #expect(counter.totalPulses == 9)
    }

    @Test("Form C: each change between K–Y and K–Z is one pulse")
    func formC() throws {
        var counter = try KYZCounter(ke: 0.5)
        #expect(try counter.addContact(.y, at: try Self.at("00:00:10.000")) == false)  // baseline
        #expect(try counter.addContact(.z, at: try Self.at("00:01")) == true)  // Y→Z
        #expect(try counter.addContact(.z, at: try Self.at("00:02")) == false)  // still Z
        #expect(try counter.addContact(.y, at: try Self.at("00:03")) == true)  // Z→Y
        #expect(try counter.addContact(.z, at: try Self.at("00:16")) == true)  // Y→Z, next interval
        // 00:00: 2 transitions × 0.5 = 1.0 kWh; 00:15: 1 × 0.5 = 0.5 kWh.
        #expect(counter.intervals(through: try Self.at("00:30")).map(\.kWh) == [1.0, 0.5])
    }

    @Test("hardware counter: rollover of an 8-bit counter, readings close the interval they end")
    func counterRollover() throws {
        var counter = try KYZCounter(ke: 0.5, counterBits: 8)
        #expect(try counter.addCounterReading(250, at: try Self.at("00:05")) == 0)  // baseline
        // (4 − 250) mod 256 = −246 + 256 = 10 pulses, read at exactly 00:15:00.000, so they
        // belong to 00:00–00:15 (start < t ≤ end).
        #expect(try counter.addCounterReading(4, at: try Self.at("00:15:00.000")) == 10)
        // 1 ms later: (6 − 4) = 2 pulses in 00:15–00:30.
        #expect(try counter.addCounterReading(6, at: try Self.at("00:15:00.001")) == 2)
        let readings = counter.intervals(through: try Self.at("00:30"))
        // 10 × 0.5 = 5 kWh → 5 × 4 = 20 kW; 2 × 0.5 = 1 kWh.
        #expect(readings.map(\.kWh) == [5, 1])
        #expect(readings[0].kW == 20)
        #expect(throws: PowerInputError("counter reading at 2026-11-27T00:20:00.000Z: 256 does not fit 8 bits")) {
            try counter.addCounterReading(256, at: try Self.at("00:20"))
        }
    }

    @Test("a 64-bit counter wraps too; a baseline at a boundary opens the next interval")
    func counter64() throws {
        var counter = try KYZCounter(ke: 1, counterBits: 64)
        try counter.addCounterReading(UInt64.max - 1, at: try Self.at("00:15"))
        // 3 − (2^64 − 2) = 5 − 2^64 ≡ 5 (mod 2^64).
        #expect(try counter.addCounterReading(3, at: try Self.at("00:30")) == 5)
        // The baseline at 00:15:00 opens 00:15–00:30; the reading at 00:30:00 closes it.
        let readings = counter.intervals(through: try Self.at("01:00"))
        #expect(readings == [IntervalReading(start: try Self.at("00:15"), seconds: 900, kWh: 5)])
    }

    /// Ke 0.5, register 1000: 4 pulses in 00:00, 10 in 00:15, 10 in 00:30, 2 in 00:45.
    static func billingCounter() throws -> KYZCounter {
        var counter = try KYZCounter(ke: 0.5, initialRegisterKWh: 1000)
        try counter.addPulses(4, at: try at("00:05"))
        try counter.addPulses(10, at: try at("00:20"))
        try counter.addPulses(10, at: try at("00:35"))
        try counter.addPulses(2, at: try at("00:59"))
        return counter
    }

    @Test("billing: registers, period energy and maximum demand worked by hand")
    func billing() throws {
        let counter = try Self.billingCounter()
        let bill = try counter.billing(from: try Self.at("00:15"), to: try Self.at("00:45"))
        // Start register: 1000 + 4 × 0.5 = 1002. Period: (10 + 10) × 0.5 = 10 kWh. End: 1012.
        #expect(bill.registerStartKWh == 1002)
        #expect(bill.periodKWh == 10)
        #expect(bill.registerEndKWh == 1012)
        // Max demand: 10 × 0.5 = 5 kWh in 900 s → 5 × 3600 / 900 = 20 kW. 00:15 and 00:30 tie;
        // the earliest wins.
        #expect(bill.maxDemandKW == 20)
        #expect(bill.maxDemandIntervalStart == (try Self.at("00:15")))
        // The whole hour: 26 pulses × 0.5 = 13 kWh, register 1000 → 1013.
        let hour = try counter.billing(from: try Self.at("00:00"), to: try Self.at("01:00"))
        #expect(hour.periodKWh == 13)
        #expect(hour.registerEndKWh == 1013)
        #expect(hour.registerEndKWh == counter.registerKWh)
    }

    @Test("billing refuses periods outside the data or off the interval grid")
    func billingRefusals() throws {
        let counter = try Self.billingCounter()
        // Observed span is 00:00–01:00: 01:00 is inside (the last interval ends there), 01:15 is not.
        #expect(throws: PowerInputError.self) {
            try counter.billing(from: try Self.at("00:00"), to: try Self.at("01:15"))
        }
        #expect(throws: PowerInputError.self) {
            try counter.billing(from: try Self.at("23:45").adding(seconds: -86_400), to: try Self.at("00:30"))
        }
        #expect(throws: PowerInputError.self) {
            try counter.billing(from: try Self.at("00:05"), to: try Self.at("00:30"))
        }
        #expect(throws: PowerInputError.self) {
            try counter.billing(from: try Self.at("00:30"), to: try Self.at("00:30"))
        }
        #expect(throws: PowerInputError.self) {
            try KYZCounter(ke: 1).billing(from: try Self.at("00:00"), to: try Self.at("00:15"))
        }
        // A period with no pulses has no maximum-demand interval.
        var quiet = try KYZCounter(ke: 1)
        try quiet.addPulses(0, at: try Self.at("00:01"))
        let bill = try quiet.billing(from: try Self.at("00:00"), to: try Self.at("00:15"))
        #expect(bill.maxDemandKW == 0)
        #expect(bill.maxDemandIntervalStart == nil)
    }

    @Test("invalid input is refused")
    func refusals() throws {
        #expect(throws: PowerInputError.self) { try KYZCounter(ke: 0) }
        #expect(throws: PowerInputError.self) { try KYZCounter(ke: -0.1) }
        // 1000 s does not divide 86 400 (remainder 400); 59 s is below the minimum.
        #expect(throws: PowerInputError.self) { try KYZCounter(ke: 1, intervalSeconds: 1000) }
        #expect(throws: PowerInputError.self) { try KYZCounter(ke: 1, intervalSeconds: 59) }
        #expect(throws: PowerInputError.self) { try KYZCounter(ke: 1, initialRegisterKWh: -1) }
        #expect(throws: PowerInputError.self) { try KYZCounter(ke: 1, counterBits: 0) }
        #expect(throws: PowerInputError.self) { try KYZCounter(ke: 1, counterBits: 65) }

        var counter = try KYZCounter(ke: 1)
        #expect(throws: PowerInputError("pulses at 2026-11-27T00:01:00.000Z: count -1 is negative")) {
            try counter.addPulses(-1, at: try Self.at("00:01"))
        }
        try counter.addPulses(1, at: try Self.at("00:10"))
        #expect(throws: PowerInputError.self) { try counter.addPulses(1, at: try Self.at("00:09")) }
        // The same instant again is allowed (not earlier).
        try counter.addPulses(1, at: try Self.at("00:10"))
        #expect(throws: PowerInputError.self) { try counter.addContact(.y, at: try Self.at("00:11")) }
        #expect(throws: PowerInputError.self) { try counter.addCounterReading(1, at: try Self.at("00:11")) }
        #expect(counter.totalPulses == 2)
    }

    @Test("the counter and billing round-trip through JSON")
    func codable() throws {
        let counter = try Self.billingCounter()
        let data = try JSONEncoder().encode(counter)
        #expect(try JSONDecoder().decode(KYZCounter.self, from: data) == counter)
        // A saved counter with a negative Ke is refused on load.
        var json = try #require(String(data: data, encoding: .utf8))
        json = json.replacingOccurrences(of: #""ke":0.5"#, with: #""ke":-0.5"#)
        #expect(json.contains(#""ke":-0.5"#))
        #expect(throws: PowerInputError.self) { try JSONDecoder().decode(KYZCounter.self, from: Data(json.utf8)) }
        let bill = try counter.billing(from: try Self.at("00:15"), to: try Self.at("00:45"))
        #expect(try JSONDecoder().decode(KYZBilling.self, from: try JSONEncoder().encode(bill)) == bill)
    }
}
