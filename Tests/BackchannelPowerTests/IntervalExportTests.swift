import BackchannelPower
import BackchannelProtocol
import Foundation
import Testing

@Suite("Interval CSV and XML export")
struct IntervalExportTests {
    static func time(_ text: String) throws -> Timestamp {
        try #require(Timestamp(rfc3339: text))
    }

    static func sample() throws -> IntervalExport {
        IntervalExport(
            deviceID: #"meter "7" & <co>"#, from: try time("2026-11-27T00:00:00Z"),
            to: try time("2026-11-27T00:30:00Z"),
            readings: [
                IntervalReading(start: try time("2026-11-27T00:15:00Z"), kWh: 0.00001),
                IntervalReading(start: try time("2026-11-27T00:00:00Z"), kWh: 1.25, kvarh: 0.5),
                // Starts exactly at `to` (exclusive): left out.
                IntervalReading(start: try time("2026-11-27T00:30:00Z"), kWh: 7),
                // Starts before `from` (inclusive bound is 00:00): left out.
                IntervalReading(start: try time("2026-11-26T23:45:00Z"), kWh: 8),
            ])
    }

    @Test("CSV: header, sorted rows, CRLF, empty kvarh, plain decimals")
    func csv() throws {
        let text = try Self.sample().csv()
        // Row 1: 00:00–00:15, 900 s, 1.25 kWh, 0.5 kvarh.
        // Row 2: 00:15–00:30, 900 s, 0.00001 kWh (not "1e-05"), no kvarh → empty last field.
        let expected =
            "start,end,seconds,kWh,kvarh\r\n"
            + "2026-11-27T00:00:00.000Z,2026-11-27T00:15:00.000Z,900,1.25,0.5\r\n"
            + "2026-11-27T00:15:00.000Z,2026-11-27T00:30:00.000Z,900,0.00001,\r\n"
        #expect(text == expected)
    }

    @Test("CSV reads back through CSVTable")
    func csvRoundTrip() throws {
        let table = try CSVTable(parsing: try Self.sample().csv())
        #expect(table.header == IntervalExport.csvColumns)
        #expect(table.rows.count == 2)
        #expect(table.rows[0].fields[3] == "1.25")
        #expect(table.rows[1].fields[4] == "")
    }

    @Test("an empty period gives the header line alone")
    func emptyPeriod() throws {
        var export = try Self.sample()
        export.from = try Self.time("2026-12-01T00:00:00Z")
        export.to = try Self.time("2026-12-02T00:00:00Z")
        #expect(try export.csv() == "start,end,seconds,kWh,kvarh\r\n")
    }

    @Test("XML: names and units, averages worked by hand, escaped attributes")
    func xml() throws {
        let text = try Self.sample().xml()
        // Interval 1: 1.25 kWh over 900 s → 1.25 × 3600 / 900 = 5 kW; 0.5 kvarh → 2 kvar.
        // Interval 2: 0.00001 kWh → 0.00001 × 4 = 0.00004 kW; no reactive elements.
        let expected = """
            <?xml version="1.0" encoding="UTF-8"?>
            <intervalData device="meter &quot;7&quot; &amp; &lt;co&gt;" from="2026-11-27T00:00:00.000Z" \
            to="2026-11-27T00:30:00.000Z" count="2">
              <interval>
                <start>2026-11-27T00:00:00.000Z</start>
                <end>2026-11-27T00:15:00.000Z</end>
                <length unit="s">900</length>
                <activeEnergy unit="kWh">1.25</activeEnergy>
                <averageActivePower unit="kW">5</averageActivePower>
                <reactiveEnergy unit="kvarh">0.5</reactiveEnergy>
                <averageReactivePower unit="kvar">2</averageReactivePower>
              </interval>
              <interval>
                <start>2026-11-27T00:15:00.000Z</start>
                <end>2026-11-27T00:30:00.000Z</end>
                <length unit="s">900</length>
                <activeEnergy unit="kWh">0.00001</activeEnergy>
                <averageActivePower unit="kW">0.00004</averageActivePower>
              </interval>
            </intervalData>

            """
        #expect(text == expected)
    }

    @Test("XML is well-formed (xmllint parses it)")
    func xmlWellFormed() throws {
        let tool = "/usr/bin/xmllint"
        try #require(FileManager.default.isExecutableFile(atPath: tool), "xmllint is required (libxml2-utils)")
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("ix-\(UUID().uuidString).xml")
        try Self.sample().xml().write(to: file, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: file) }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: tool)
        process.arguments = ["--noout", file.path]
        try process.run()
        process.waitUntilExit()
        #expect(process.terminationStatus == 0)
    }

    @Test("refused: reversed period, overlapping or invalid readings")
    func refusals() throws {
        var export = try Self.sample()
        export.to = export.from
        #expect(throws: PowerInputError.self) { try export.csv() }
        export = try Self.sample()
        // 00:10 starts inside 00:00–00:15.
        export.readings.append(IntervalReading(start: try Self.time("2026-11-27T00:10:00Z"), kWh: 1))
        #expect(
            throws: PowerInputError(
                "interval at 2026-11-27T00:10:00.000Z overlaps the interval at 2026-11-27T00:00:00.000Z, "
                    + "which ends at 2026-11-27T00:15:00.000Z")
        ) { try export.csv() }
        export = try Self.sample()
        export.readings[0].kWh = -1
        #expect(throws: PowerInputError.self) { try export.xml() }
        export = try Self.sample()
        export.deviceID = "nul\u{0}"
        #expect(throws: PowerInputError.self) { try export.xml() }
    }

    @Test("adjacent readings (one ends where the next starts) do not overlap")
    func adjacentIsFine() throws {
        let export = IntervalExport(
            deviceID: "m", from: try Self.time("2026-11-27T00:00:00Z"), to: try Self.time("2026-11-27T01:00:00Z"),
            readings: [
                IntervalReading(start: try Self.time("2026-11-27T00:00:00Z"), kWh: 1),
                IntervalReading(start: try Self.time("2026-11-27T00:15:00Z"), kWh: 1),
            ])
        #expect(try export.csv().split(separator: "\r\n").count == 3)
    }

    @Test("plain decimals")
    func plainDecimal() {
        #expect(IntervalExport.plainDecimal(1.0) == "1")
        #expect(IntervalExport.plainDecimal(0.1) == "0.1")
        #expect(IntervalExport.plainDecimal(1e-05) == "0.00001")
        #expect(IntervalExport.plainDecimal(1234567.5) == "1234567.5")
        #expect(IntervalExport.plainDecimal(-2.5) == "-2.5")
    }
}
