import BackchannelPower
import BackchannelProtocol
import Foundation
import Testing

@Suite("Load profiles from household power data")
struct LoadProfileTests {
    static func time(_ text: String) throws -> Timestamp {
        try #require(Timestamp(rfc3339: text))
    }

    static func close(_ a: Double?, _ b: Double) -> Bool {
        guard let a else { return false }
        return abs(a - b) < 1e-9
    }

    static let header =
        "date_time,Global_active_power,Global_reactive_power,Voltage,Global_intensity,Sub_metering_1,Sub_metering_2,Sub_metering_3"

    /// Lines in the data set's format. 16 Dec starts at 23:58 (partial day, skipped);
    /// 17 Dec and 18 Dec are kept; 19 Dec is day 2.
    static let lines = [
        header,
        "2006-12-16 23:58:00,9.0,9.0,234.84,18.4,0.0,1.0,17.0",
        "2006-12-16 23:59:00,9.0,9.0,234.84,18.4,0.0,1.0,17.0",
        "2006-12-17 00:00:00,4.0,0.4,240.0,16.6,0.0,1.0,17.0",
        "2006-12-17 00:01:00,2.0,0.2,240.0,8.4,0.0,1.0,17.0",
        "2006-12-17 00:02:00,?,?,?,?,?,?,",
        "2006-12-17 00:14:00,3.0,0.0,240.0,12.4,0.0,1.0,17.0",
        "2006-12-17 00:15:00,1.0,0.1,240.0,4.2,0.0,1.0,17.0",
        "2006-12-17 00:30:00,,,,,,,",
        "2006-12-17 00:45:00,0.5,0.05,240.0,2.1,0.0,0.0,0.0",
        "2006-12-18 00:00:00,2.5,0.3,240.0,10.4,0.0,0.0,17.0\r",
        "2006-12-19 00:00:00,7.0,0.7,240.0,29.0,0.0,0.0,17.0",
    ]

    @Test("15-minute averages over present minutes, missing slots nil, partial first day skipped")
    func parse() throws {
        let profile = try HouseholdPowerParser.parse(lines: Self.lines, maxDays: 2)
        #expect(profile.firstDate == "2006-12-17")
        #expect(profile.dayCount == 2)
        // Slot 0 of 17 Dec: minutes 00:00, 00:01, 00:14 present (00:02 is "?"; 00:03–00:13 absent).
        // kW = (4.0 + 2.0 + 3.0) / 3 = 3.0; kvar = (0.4 + 0.2 + 0.0) / 3 = 0.2; 3 minutes.
        let slot0 = try #require(profile.slot(day: 0, slotOfDay: 0))
        #expect(Self.close(slot0.kW, 3.0))
        #expect(Self.close(slot0.kvar, 0.2))
        #expect(slot0.minutes == 3)
        // Slot 1 (00:15–00:29): one minute, 1.0 kW, 0.1 kvar.
        let slot1 = try #require(profile.slot(day: 0, slotOfDay: 1))
        #expect(slot1.kW == 1.0)
        #expect(slot1.minutes == 1)
        // Slot 2 (00:30–00:44): the only line has empty values → missing, not zero.
        #expect(profile.slot(day: 0, slotOfDay: 2) == nil)
        // Slot 3: 0.5 kW. Slot 4 onwards on 17 Dec: no lines → missing.
        #expect(profile.slot(day: 0, slotOfDay: 3)?.kW == 0.5)
        #expect(profile.slot(day: 0, slotOfDay: 4) == nil)
        // 18 Dec slot 0: 2.5 kW (the CR of a CRLF line is dropped).
        #expect(profile.slot(day: 1, slotOfDay: 0)?.kW == 2.5)
        // The 9.0 kW lines of the partial 16 Dec are nowhere.
        #expect(!profile.slots.contains { $0?.kW == 9.0 })
    }

    @Test("whole text with CRLF line ends (as the data set ships) parses the same")
    func parseText() throws {
        let text = Self.lines.map { $0.hasSuffix("\r") ? String($0.dropLast()) : $0 }.joined(separator: "\r\n") + "\r\n"
        let fromText = try HouseholdPowerParser.parse(text: text, maxDays: 2)
        #expect(fromText == (try HouseholdPowerParser.parse(lines: Self.lines, maxDays: 2)))
        // Slot 0 of 17 Dec: (4 + 2 + 3) / 3 = 3 kW, as in the line-by-line parse.
        #expect(Self.close(fromText.slot(day: 0, slotOfDay: 0)?.kW, 3))
    }

    @Test("the parser stops at the first line of day maxDays")
    func stopsAfterMaxDays() throws {
        var parser = try HouseholdPowerParser(maxDays: 2)
        var accepted = 0
        for line in Self.lines {
            guard try parser.add(line: line) else { break }
            accepted += 1
        }
        // All 11 lines before 19 Dec are taken; the 19 Dec line (day 2) ends the parse.
        #expect(accepted == 11)
        #expect(parser.isComplete)
        #expect(try parser.add(line: "garbage") == false)
        // With maxDays 3, 19 Dec is day 2 and its 7.0 kW lands in slot 0.
        let three = try HouseholdPowerParser.parse(lines: Self.lines, maxDays: 3)
        #expect(three.dayCount == 3)
        #expect(three.slot(day: 2, slotOfDay: 0)?.kW == 7.0)
    }

    @Test("startAtMidnight false keeps the partial first day")
    func keepsPartialDay() throws {
        let profile = try HouseholdPowerParser.parse(lines: Self.lines, maxDays: 1, startAtMidnight: false)
        #expect(profile.firstDate == "2006-12-16")
        // 23:58 and 23:59 are slot 95 (23:45–23:59): (9 + 9) / 2 = 9.
        #expect(profile.slot(day: 0, slotOfDay: 95)?.kW == 9.0)
        #expect(profile.slot(day: 0, slotOfDay: 95)?.minutes == 2)
        #expect(profile.slot(day: 0, slotOfDay: 0) == nil)
    }

    @Test("bad lines are refused with their line number")
    func refusals() throws {
        #expect(throws: PowerInputError("line 1: the header has no column Global_reactive_power")) {
            try HouseholdPowerParser.parse(lines: ["date_time,Global_active_power"], maxDays: nil)
        }
        #expect(throws: PowerInputError("line 2, date_time: \"16/12/2006 17:24:00\" is not YYYY-MM-DD HH:MM:SS")) {
            try HouseholdPowerParser.parse(
                lines: [Self.header, "16/12/2006 17:24:00,1,1,1,1,1,1,1"], maxDays: nil, startAtMidnight: false)
        }
        #expect(throws: PowerInputError("line 2, Global_active_power: \"abc\" is not a number")) {
            try HouseholdPowerParser.parse(
                lines: [Self.header, "2006-12-17 00:00:00,abc,1,1,1,1,1,1"], maxDays: nil)
        }
        #expect(throws: PowerInputError("line 2, Global_active_power: -1.0 kW is negative")) {
            try HouseholdPowerParser.parse(lines: [Self.header, "2006-12-17 00:00:00,-1,1,1,1,1,1,1"], maxDays: nil)
        }
        #expect(throws: PowerInputError("line 3, date_time: 2006-12-17 00:00:00 is not after the line before")) {
            try HouseholdPowerParser.parse(
                lines: [Self.header, "2006-12-17 00:00:00,1,1,1,1,1,1,1", "2006-12-17 00:00:00,1,1,1,1,1,1,1"],
                maxDays: nil)
        }
        #expect(throws: PowerInputError("line 2: 3 fields, the header has 8")) {
            try HouseholdPowerParser.parse(lines: [Self.header, "2006-12-17 00:00:00,1,1"], maxDays: nil)
        }
        #expect(throws: PowerInputError.self) {
            try HouseholdPowerParser.parse(lines: [Self.header, "2006-12-17 00:00:00,?,?,?,?,?,?,?"], maxDays: nil)
        }
        #expect(throws: PowerInputError.self) { try HouseholdPowerParser(maxDays: 0) }
    }

    // MARK: using a profile

    /// Two days; day d slot s has kW = 100 d + s and kvar = kW / 10.
    static func ramp() throws -> LoadProfile {
        let slots: [LoadProfile.Slot?] = (0..<192).map { (index: Int) -> LoadProfile.Slot? in
            let kW = Double(index / 96 * 100 + index % 96)
            return LoadProfile.Slot(kW: kW, kvar: kW / 10, minutes: 15)
        }
        return try LoadProfile(firstDate: "2006-12-17", slots: slots)
    }

    @Test("kW at a time: local day number mod dayCount, local slot of day")
    func kWAt() throws {
        let profile = try Self.ramp()
        let utc = try #require(TimeZone(identifier: "UTC"))
        // 1970-01-01 00:00Z: day number 0 → day 0, slot 0 → 0 kW.
        #expect(profile.kW(at: try Self.time("1970-01-01T00:00:00Z"), timeZone: utc) == 0)
        // 1970-01-02 00:20Z: day 1, slot 00:20 / 15 min = 1 → 101 kW.
        #expect(profile.kW(at: try Self.time("1970-01-02T00:20:00Z"), timeZone: utc) == 101)
        // 2026-11-27T23:10Z in Paris (UTC+1) is 00:10 on 28 Nov: day number 20 784 + 1 = 20 785,
        // odd → day 1; slot 0 → 100 kW. In UTC the same instant is day 0, slot 23:10 → 92.
        let paris = try #require(TimeZone(identifier: "Europe/Paris"))
        #expect(profile.kW(at: try Self.time("2026-11-27T23:10:00Z"), timeZone: paris) == 100)
        #expect(profile.kW(at: try Self.time("2026-11-27T23:10:00Z"), timeZone: utc) == 92)
        #expect(profile.kvar(at: try Self.time("2026-11-27T23:10:00Z"), timeZone: utc) == 9.2)
    }

    @Test("interval at a start: kWh = kW × 0.25, kvarh likewise; missing slot gives nil")
    func intervalAt() throws {
        let utc = try #require(TimeZone(identifier: "UTC"))
        let start = try Self.time("1970-01-01T00:30:00Z")
        // Day 0 slot 2: 2 kW → 0.5 kWh; 0.2 kvar → 0.05 kvarh.
        let reading = try #require(try Self.ramp().interval(at: start, timeZone: utc))
        #expect(reading == IntervalReading(start: start, seconds: 900, kWh: 0.5, kvarh: 0.05))
        let sparse = try HouseholdPowerParser.parse(lines: Self.lines, maxDays: 2)
        // Day number 0 → day 0; 00:30 is slot 2, which is missing.
        #expect(sparse.interval(at: start, timeZone: utc) == nil)
    }

    @Test("scaled and shifted")
    func scaledShifted() throws {
        let profile = try Self.ramp()
        // ×1.5: slot 10 of day 0 is 10 → 15 kW, 1 → 1.5 kvar.
        let scaled = try profile.scaled(by: 1.5)
        #expect(scaled.slot(day: 0, slotOfDay: 10) == LoadProfile.Slot(kW: 15, kvar: 1.5, minutes: 15))
        #expect(throws: PowerInputError.self) { try profile.scaled(by: 0) }
        #expect(throws: PowerInputError.self) { try profile.scaled(by: -1) }
        #expect(throws: PowerInputError.self) { try profile.scaled(by: .nan) }
        // +8 slots (2 h later): new slot 8 of day 0 = old slot 0 = 0 kW; new slot 0 of day 0 =
        // old slot −8, which wraps to day 1 slot 88 = 188 kW.
        let later = profile.shifted(bySlots: 8)
        #expect(later.slot(day: 0, slotOfDay: 8)?.kW == 0)
        #expect(later.slot(day: 0, slotOfDay: 0)?.kW == 188)
        // −8 slots: new slot 0 = old slot 8 = 8 kW; new day 1 slot 95 (index 191) = old index
        // 191 + 8 = 199, which wraps (mod 192) to 7 → day 0 slot 7 = 7 kW.
        let earlier = profile.shifted(bySlots: -8)
        #expect(earlier.slot(day: 0, slotOfDay: 0)?.kW == 8)
        #expect(earlier.slot(day: 1, slotOfDay: 95)?.kW == 7)
        // Starting at day 1: day 0 slot 5 is the old day 1 slot 5 = 105 kW.
        #expect(try profile.starting(atDay: 1).slot(day: 0, slotOfDay: 5)?.kW == 105)
        #expect(throws: PowerInputError.self) { try profile.starting(atDay: 2) }
    }

    @Test("per-device variants are deterministic and within 0.5–2×, ±2 h")
    func variants() throws {
        let profile = try Self.ramp()
        #expect(profile.variant(seed: 42) == profile.variant(seed: 42))
        #expect(profile.variant(seed: 42) != profile.variant(seed: 43))
        for seed: UInt64 in 0..<50 {
            let variation = LoadProfile.variation(seed: seed, dayCount: 2)
            #expect(variation.scale >= 0.5 && variation.scale <= 2)
            #expect((-8...8).contains(variation.shiftSlots))
            #expect((0..<2).contains(variation.startDay))
        }
        // The variant is exactly: start day, then shift, then scale.
        let variation = LoadProfile.variation(seed: 7, dayCount: 2)
        let manual = try profile.starting(atDay: variation.startDay).shifted(bySlots: variation.shiftSlots)
            .scaled(by: variation.scale)
        #expect(profile.variant(seed: 7) == manual)
    }

    @Test("gaps are filled by linear interpolation and marked with 0 minutes")
    func fillGaps() throws {
        var slots = [LoadProfile.Slot?](repeating: nil, count: 96)
        slots[0] = LoadProfile.Slot(kW: 1, kvar: 0.1, minutes: 15)
        slots[3] = LoadProfile.Slot(kW: 4, kvar: 0.4, minutes: 15)
        let filled = try LoadProfile(firstDate: "x", slots: slots).filledGaps()
        // Slots 1 and 2 lie 1/3 and 2/3 of the way from 1 kW to 4 kW: 2 kW and 3 kW.
        #expect(Self.close(filled.slot(day: 0, slotOfDay: 1)?.kW, 2))
        #expect(Self.close(filled.slot(day: 0, slotOfDay: 2)?.kW, 3))
        #expect(filled.slot(day: 0, slotOfDay: 1)?.minutes == 0)
        #expect(filled.slot(day: 0, slotOfDay: 3)?.minutes == 15)
        // Slots 4…95 wrap around to slot 0: gap 93; slot 4 = 4 + (1 − 4) × 1/93.
        #expect(Self.close(filled.slot(day: 0, slotOfDay: 4)?.kW, 4 - 3.0 / 93))
        #expect(!filled.slots.contains { $0 == nil })
        let empty = try LoadProfile(firstDate: "x", slots: [LoadProfile.Slot?](repeating: nil, count: 96))
        #expect(throws: PowerInputError.self) { try empty.filledGaps() }
    }

    @Test("profile construction is validated")
    func construction() {
        #expect(throws: PowerInputError.self) { try LoadProfile(firstDate: "x", slots: []) }
        #expect(throws: PowerInputError.self) {
            try LoadProfile(firstDate: "x", slots: [LoadProfile.Slot?](repeating: nil, count: 95))
        }
        var slots = [LoadProfile.Slot?](repeating: nil, count: 96)
        slots[0] = LoadProfile.Slot(kW: -1, kvar: 0, minutes: 15)
        #expect(throws: PowerInputError.self) { try LoadProfile(firstDate: "x", slots: slots) }
    }

    @Test("synthetic profile: morning and evening peaks over a night base")
    func synthetic() {
        let profile = LoadProfile.generated(seed: 1)
        #expect(profile.dayCount == 7)
        #expect(profile == LoadProfile.generated(seed: 1))
        #expect(profile != LoadProfile.generated(seed: 2))
        for day in 0..<7 {
            // Night, slot 12 (t = 3.125 h): both peaks ≈ 0, so 0.35 × (0.85…1.15) × (0.95…1.05)
            // = 0.283…0.423 kW.
            let night = profile.slot(day: day, slotOfDay: 12)?.kW ?? -1
            #expect(night > 0.28 && night < 0.43)
            // Morning, slot 30 (t = 7.625 h): 0.35 + 1.2 e^(−0.125²/1.28) ≈ 0.35 + 1.185 = 1.535
            // → 1.535 × 0.8075…1.2075 = 1.24…1.85 kW.
            let morning = profile.slot(day: day, slotOfDay: 30)?.kW ?? -1
            #expect(morning > 1.23 && morning < 1.86)
            // Evening, slot 78 (t = 19.625 h): 0.35 + 2.0 e^(−0.125²/2.88) ≈ 2.339 → 1.89…2.83 kW.
            let evening = profile.slot(day: day, slotOfDay: 78)?.kW ?? -1
            #expect(evening > 1.88 && evening < 2.83)
            // kvar = 0.25 × kW.
            #expect(profile.slot(day: day, slotOfDay: 78)?.kvar == 0.25 * evening)
        }
    }
}
