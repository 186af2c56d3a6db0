import BackchannelPower
import BackchannelProtocol
import Foundation
import Testing

@Suite("Interval CSV and gaps")
struct IntervalSeriesTests {
    @Test("start column, optional kvarh, seconds default 900, rows sorted")
    func startColumn() throws {
        let csv = """
            start,kWh,kvarh
            2026-07-15T00:15:00Z,1.5,
            # a comment line
            2026-07-15T00:00:00Z,1.25,0.5
            """
        let series = try IntervalSeries(csv: csv)
        #expect(
            series.readings == [
                IntervalReading(start: try at("2026-07-15T00:00:00Z"), seconds: 900, kWh: 1.25, kvarh: 0.5),
                // An empty kvarh field is "not registered", never 0.
                IntervalReading(start: try at("2026-07-15T00:15:00Z"), seconds: 900, kWh: 1.5, kvarh: nil),
            ])
    }

    @Test(
        "a timestamp column is read with the convention given; end moves every start back one interval")
    func timestampConvention() throws {
        let csv = "timestamp,kWh,seconds\n2026-07-15T00:15:00Z,2,300\n"
        let asStart = try IntervalSeries(csv: csv, timestampConvention: .start)
        let asEnd = try IntervalSeries(csv: csv, timestampConvention: .end)
        #expect(asStart.readings.map(\.start) == [try at("2026-07-15T00:15:00Z")])
        // 00:15 is the end of a 300 s interval: 00:15 - 5 min = 00:10.
        #expect(asEnd.readings.map(\.start) == [try at("2026-07-15T00:10:00Z")])
        #expect(message { _ = try IntervalSeries(csv: csv) }?.contains("convention") == true)
    }

    @Test("an end column marks ends; start and end together give the length")
    func endAndStartEnd() throws {
        let ends = try IntervalSeries(csv: "end,kWh\n2026-07-15T00:15:00Z,1\n")
        #expect(ends.readings.map(\.start) == [try at("2026-07-15T00:00:00Z")])
        let both = try IntervalSeries(
            csv: "start,end,kWh\n2026-07-15T00:00:00Z,2026-07-15T00:05:00Z,1\n")
        #expect(both.readings.map(\.seconds) == [300])
        let disagree = "start,end,seconds,kWh\n2026-07-15T00:00:00Z,2026-07-15T00:05:00Z,900,1\n"
        #expect(
            message { _ = try IntervalSeries(csv: disagree) }
                == "line 2, seconds: 900 disagrees with end - start = 300 s")
        let both3 = "start,timestamp,kWh\n2026-07-15T00:00:00Z,2026-07-15T00:00:00Z,1\n"
        #expect(
            message { _ = try IntervalSeries(csv: both3) }?.contains("keep one time column") == true)
    }

    @Test("errors name the line and the column")
    func errorsNameLineAndColumn() {
        let badTime = "start,kWh\n2026-07-15T00:00:00Z,1\n2026-07-15 nonsense,1\n"
        #expect(
            message { _ = try IntervalSeries(csv: badTime) }
                == "line 3, start: \"2026-07-15 nonsense\" is not an RFC 3339 timestamp")
        let badKWh = "start,kWh\n2026-07-15T00:00:00Z,lots\n"
        #expect(
            message { _ = try IntervalSeries(csv: badKWh) } == "line 2, kWh: \"lots\" is not a number")
        let badSeconds = "start,kWh,seconds\n2026-07-15T00:00:00Z,1,15m\n"
        #expect(
            message { _ = try IntervalSeries(csv: badSeconds) }?.hasPrefix("line 2, seconds:") == true)
        let negative = "start,kWh\n2026-07-15T00:00:00Z,-1\n"
        #expect(message { _ = try IntervalSeries(csv: negative) }?.hasPrefix("line 2: ") == true)
        #expect(
            message { _ = try IntervalSeries(csv: "when,kWh\n") }?.hasPrefix("no time column") == true)
        #expect(
            message { _ = try IntervalSeries(csv: "start,kvarh\n") }?.hasPrefix("no column named kWh")
                == true)
    }

    @Test("duplicates and overlaps are rejected, naming both lines; touching intervals are fine")
    func duplicatesAndOverlaps() throws {
        let duplicate = "start,kWh\n2026-07-15T00:00:00Z,1\n2026-07-15T00:00:00Z,2\n"
        #expect(
            message { _ = try IntervalSeries(csv: duplicate) }
                == "line 3: duplicate interval starting 2026-07-15T00:00:00.000Z (also line 2)")
        // 00:00 + 1800 s runs to 00:30, so a 00:15 start overlaps it (and so does one at 00:29).
        let overlap = "start,kWh,seconds\n2026-07-15T00:00:00Z,1,1800\n2026-07-15T00:15:00Z,1,900\n"
        #expect(
            message { _ = try IntervalSeries(csv: overlap) }?.hasPrefix("line 3: interval starting")
                == true)
        // The other side of the boundary: a start exactly at the previous end does not overlap.
        let touching = "start,kWh,seconds\n2026-07-15T00:00:00Z,1,1800\n2026-07-15T00:30:00Z,1,900\n"
        #expect(try IntervalSeries(csv: touching).readings.count == 2)
    }

    @Test("JSON is the array of readings and is checked when decoded")
    func json() throws {
        let text =
            #"[{"start":"2026-07-15T00:15:00Z","seconds":900,"kWh":1},{"start":"2026-07-15T00:00:00Z","seconds":900,"kWh":2}]"#
        let series = try JSONDecoder().decode(IntervalSeries.self, from: Data(text.utf8))
        #expect(series.readings.map(\.kWh) == [2, 1])
        let overlapping =
            #"[{"start":"2026-07-15T00:00:00Z","seconds":900,"kWh":1},{"start":"2026-07-15T00:10:00Z","seconds":900,"kWh":2}]"#
        #expect(throws: DecodingError.self) {
            _ = try JSONDecoder().decode(IntervalSeries.self, from: Data(overlapping.utf8))
        }
    }

    @Test("missing starts: from is inclusive, to is exclusive, gaps are listed not zero-filled")
    func missingStarts() throws {
        let readings = [
            IntervalReading(start: try at("2026-07-15T00:15:00Z"), kWh: 1),
            IntervalReading(start: try at("2026-07-15T00:45:00Z"), kWh: 1),
            // Starts at `to`: outside [00:00, 01:00), so it fills nothing.
            IntervalReading(start: try at("2026-07-15T01:00:00Z"), kWh: 1),
        ]
        let series = try IntervalSeries(readings)
        // Grid 00:00, 00:15, 00:30, 00:45; present 00:15 and 00:45.
        let missing = try series.missingStarts(
            from: try at("2026-07-15T00:00:00Z"), to: try at("2026-07-15T01:00:00Z"), seconds: 900)
        #expect(missing == [try at("2026-07-15T00:00:00Z"), try at("2026-07-15T00:30:00Z")])
        #expect(
            message {
                _ = try series.missingStarts(
                    from: try at("2026-07-15T01:00:00Z"), to: try at("2026-07-15T01:00:00Z"), seconds: 900)
            }?
            .hasPrefix("from") == true)
    }

    @Test(
        "expected intervals per local day: 96, 92 on spring-forward, 100 on fall-back (New York 2026)")
    func expectedPerDay() throws {
        let zone = "America/New_York"
        // 24 h × 4 = 96.
        #expect(try IntervalSeries.expectedIntervals(on: LocalDate("2026-03-07"), timeZone: zone) == 96)
        // 2026-03-08: 02:00 EST jumps to 03:00 EDT, 23 h × 4 = 92.
        #expect(try IntervalSeries.expectedIntervals(on: LocalDate("2026-03-08"), timeZone: zone) == 92)
        #expect(try IntervalSeries.expectedIntervals(on: LocalDate("2026-03-09"), timeZone: zone) == 96)
        // 2026-11-01: 02:00 EDT falls back to 01:00 EST, 25 h × 4 = 100.
        #expect(
            try IntervalSeries.expectedIntervals(on: LocalDate("2026-11-01"), timeZone: zone) == 100)
        // Hourly: 25 h → 25; 5-minute: 23 h × 12 = 276.
        #expect(
            try IntervalSeries.expectedIntervals(
                on: LocalDate("2026-11-01"), timeZone: zone, seconds: 3600) == 25)
        #expect(
            try IntervalSeries.expectedIntervals(
                on: LocalDate("2026-03-08"), timeZone: zone, seconds: 300) == 276)
        // UTC has no daylight saving time.
        #expect(
            try IntervalSeries.expectedIntervals(on: LocalDate("2026-03-08"), timeZone: "UTC") == 96)
        #expect(
            message {
                _ = try IntervalSeries.expectedIntervals(on: LocalDate("2026-03-08"), timeZone: "Mars/Base")
            } != nil)
    }

    @Test("local dates are checked and written YYYY-MM-DD")
    func localDates() throws {
        #expect(try LocalDate("2028-02-29").description == "2028-02-29")
        #expect(message { _ = try LocalDate("2026-02-29") } == "2026-2-29 is not a calendar date")
        #expect(message { _ = try LocalDate("2026-7-4") }?.contains("YYYY-MM-DD") == true)
        let encoded = try JSONEncoder().encode([try LocalDate(year: 2026, month: 7, day: 4)])
        #expect(String(decoding: encoded, as: UTF8.self) == #"["2026-07-04"]"#)
    }
}
