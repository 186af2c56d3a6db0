import BackchannelProtocol
import Foundation
import Testing

@testable import BackchannelPower

@Suite("Green Button export")
struct GreenButtonTests {
    static func time(_ text: String) throws -> Timestamp {
        try #require(Timestamp(rfc3339: text))
    }

    /// Three readings around local midnight in New York (EST, UTC−5):
    /// 04:45Z = 23:45 on 26 Nov, 05:00Z and 05:15Z = 00:00 and 00:15 on 27 Nov.
    static func sampleExport(title: String = "Main meter") throws -> GreenButtonExport {
        GreenButtonExport(
            deviceID: "meter-7", title: title, timeZone: "America/New_York",
            from: try time("2026-11-27T00:00:00Z"), to: try time("2026-11-28T00:00:00Z"),
            generated: try time("2026-11-28T06:00:00Z"),
            readings: [
                IntervalReading(start: try time("2026-11-27T05:15:00Z"), kWh: 0.75),
                IntervalReading(start: try time("2026-11-27T04:45:00Z"), kWh: 1.2345),
                IntervalReading(start: try time("2026-11-27T05:00:00Z"), kWh: 0.5, kvarh: 0.1),
                // Outside the period (starts at `to`): left out.
                IntervalReading(start: try time("2026-11-28T00:00:00Z"), kWh: 9),
            ])
    }

    // MARK: values

    @Test("value is Wh ÷ 10^multiplier rounded half away from zero")
    func values() throws {
        let at = try Self.time("2026-11-27T00:00:00Z")
        // 1.2345 kWh = 1234.5 Wh → half rounds up → 1235.
        #expect(try GreenButtonExport.value(kWh: 1.2345, powerOfTenMultiplier: 0, at: at) == 1235)
        // 1.2344 kWh = 1234.4 Wh → 1234 (the other side of the half).
        #expect(try GreenButtonExport.value(kWh: 1.2344, powerOfTenMultiplier: 0, at: at) == 1234)
        // Multiplier −3 (mWh): 1.2345 kWh = 1 234 500 mWh.
        #expect(try GreenButtonExport.value(kWh: 1.2345, powerOfTenMultiplier: -3, at: at) == 1_234_500)
        // Multiplier 3 (kWh): 2.5 kWh → 2.5 → 3; 2.49 → 2.
        #expect(try GreenButtonExport.value(kWh: 2.5, powerOfTenMultiplier: 3, at: at) == 3)
        #expect(try GreenButtonExport.value(kWh: 2.49, powerOfTenMultiplier: 3, at: at) == 2)
        // 0.0005 kWh = 0.5 Wh → 1; 0.00049 kWh = 0.49 Wh → 0.
        #expect(try GreenButtonExport.value(kWh: 0.0005, powerOfTenMultiplier: 0, at: at) == 1)
        #expect(try GreenButtonExport.value(kWh: 0.00049, powerOfTenMultiplier: 0, at: at) == 0)
        // Int48 holds at most 140 737 488 355 328: 1e12 kWh = 1e15 Wh does not fit.
        #expect(throws: PowerInputError.self) {
            try GreenButtonExport.value(kWh: 1e12, powerOfTenMultiplier: 0, at: at)
        }
    }

    // MARK: local time parameters

    @Test("New York: second Sunday of March and first Sunday of November at 2:00")
    func newYorkRules() throws {
        let zone = try #require(TimeZone(identifier: "America/New_York"))
        let local = LocalTimeParameters(timeZone: zone, at: try Self.time("2026-06-01T00:00:00Z"))
        // Start: month 3 << 28 = 0x30000000, operator 3 (second) << 25 = 0x06000000,
        // Sunday 7 << 17 = 0x000E0000, hour 2 << 12 = 0x2000 → 0x360E2000.
        #expect(LocalTimeParameters.hex(local.dstStartRule) == "360E2000")
        // End: month 11 → 0xB0000000, operator 2 (first) → 0x04000000, Sunday, 2:00 → 0xB40E2000.
        #expect(LocalTimeParameters.hex(local.dstEndRule) == "B40E2000")
        #expect(local.dstOffset == 3600)
        // EST is UTC−5 h = −18 000 s, even when asked in summer.
        #expect(local.tzOffset == -18_000)
    }

    @Test("Berlin: last Sunday of March 2:00 and of October 3:00")
    func berlinRules() throws {
        let zone = try #require(TimeZone(identifier: "Europe/Berlin"))
        let local = LocalTimeParameters(timeZone: zone, at: try Self.time("2026-01-15T00:00:00Z"))
        // 0x30000000 | operator 7 (last) 0x0E000000 | Sunday 0x000E0000 | 2 h 0x2000.
        #expect(LocalTimeParameters.hex(local.dstStartRule) == "3E0E2000")
        // October 0xA0000000 | 0x0E000000 | 0x000E0000 | 3 h 0x3000 (03:00 CEST, wall clock).
        #expect(LocalTimeParameters.hex(local.dstEndRule) == "AE0E3000")
        #expect(local.dstOffset == 3600)
        #expect(local.tzOffset == 3600)
    }

    @Test("Sydney: DST starts in October and ends in April (southern hemisphere)")
    func sydneyRules() throws {
        let zone = try #require(TimeZone(identifier: "Australia/Sydney"))
        let local = LocalTimeParameters(timeZone: zone, at: try Self.time("2026-07-01T00:00:00Z"))
        // Start first Sunday of October 2:00: 0xA0000000 | 0x04000000 | 0x000E0000 | 0x2000.
        #expect(LocalTimeParameters.hex(local.dstStartRule) == "A40E2000")
        // End first Sunday of April 3:00 AEDT: 0x40000000 | 0x04000000 | 0x000E0000 | 0x3000.
        #expect(LocalTimeParameters.hex(local.dstEndRule) == "440E3000")
        // AEST = UTC+10 h = 36 000 s.
        #expect(local.tzOffset == 36_000)
    }

    @Test("a zone without DST gets disabled rules")
    func noDST() throws {
        let zone = try #require(TimeZone(identifier: "Asia/Tokyo"))
        let local = LocalTimeParameters(timeZone: zone, at: try Self.time("2026-07-01T00:00:00Z"))
        #expect(LocalTimeParameters.hex(local.dstStartRule) == "FFFFFFFF")
        #expect(LocalTimeParameters.hex(local.dstEndRule) == "FFFFFFFF")
        #expect(local.dstOffset == 0)
        // JST = UTC+9 h = 32 400 s.
        #expect(local.tzOffset == 32_400)
    }

    // MARK: ids

    @Test("ids are RFC 4122 version 5 UUIDs, stable per device and kind")
    func ids() throws {
        let first = GreenButtonExport.uuid(deviceID: "meter-7", kind: "UsagePoint")
        #expect(first == GreenButtonExport.uuid(deviceID: "meter-7", kind: "UsagePoint"))
        #expect(first != GreenButtonExport.uuid(deviceID: "meter-8", kind: "UsagePoint"))
        #expect(first != GreenButtonExport.uuid(deviceID: "meter-7", kind: "MeterReading"))
        // Version nibble 5, variant bits 10xx.
        let text = first.uuidString.lowercased()
        #expect(Array(text)[14] == "5")
        #expect("89ab".contains(Array(text)[19]))
    }

    // MARK: the feed

    @Test("feed: one IntervalBlock per local day with epoch-second times and Wh values")
    func feedContent() throws {
        let xml = try Self.sampleExport().xml()
        // 2026-11-27T04:45Z: days 1970→2026 = 56 × 365 + 14 leap days = 20 454; Jan–Oct 2026 =
        // 304 days, + 26 → 20 784 days × 86 400 = 1 795 737 600 s; + 4 h 45 min (17 100 s)
        // = 1 795 754 700. That is 23:45 EST on the 26th: block 20261126, one reading.
        #expect(xml.contains("<espi:start>1795754700</espi:start>"))
        // 05:00Z = 1 795 737 600 + 18 000 = 1 795 755 600: 00:00 EST on the 27th.
        // Block 20261127 holds 05:00Z and 05:15Z: duration 2 × 900 = 1800 s.
        #expect(xml.contains("<espi:duration>1800</espi:duration>\n          <espi:start>1795755600</espi:start>"))
        #expect(xml.components(separatedBy: "<espi:IntervalBlock>").count - 1 == 2)
        #expect(xml.contains("IntervalBlock/20261126\"/>"))
        #expect(xml.contains("IntervalBlock/20261127\"/>"))
        // Values: 1.2345 kWh → 1235 Wh; 0.5 → 500; 0.75 → 750. The 9 kWh reading is out of period.
        #expect(xml.contains("<espi:value>1235</espi:value>"))
        #expect(xml.contains("<espi:value>500</espi:value>"))
        #expect(xml.contains("<espi:value>750</espi:value>"))
        #expect(!xml.contains("<espi:value>9000</espi:value>"))
        #expect(xml.components(separatedBy: "<espi:IntervalReading>").count - 1 == 3)
        #expect(xml.contains("<espi:tzOffset>-18000</espi:tzOffset>"))
        #expect(xml.contains("<espi:uom>72</espi:uom>"))
        #expect(xml.contains("<espi:intervalLength>900</espi:intervalLength>"))
        let usagePointID = GreenButtonExport.uuid(deviceID: "meter-7", kind: "UsagePoint").uuidString.lowercased()
        #expect(xml.contains("<id>urn:uuid:\(usagePointID)</id>"))
        #expect(xml.contains(#"<link rel="self" href="/espi/1_1/resource/UsagePoint/meter-7"/>"#))
        #expect(xml.contains(#"<link rel="related" href="/espi/1_1/resource/ReadingType/meter-7-kWh"/>"#))
        // The same request gives the same document.
        #expect(xml == (try Self.sampleExport().xml()))
    }

    @Test("text is escaped")
    func escaping() throws {
        let xml = try Self.sampleExport(title: #"A&B <Main> "x" 'y'"#).xml()
        #expect(xml.contains("<title>Green Button usage: A&amp;B &lt;Main&gt; &quot;x&quot; &apos;y&apos;</title>"))
        #expect(!xml.contains("A&B"))
        var control = try Self.sampleExport()
        control.title = "bell\u{07}"
        #expect(throws: PowerInputError.self) { try control.xml() }
    }

    @Test("invalid requests are refused")
    func refusals() throws {
        var export = try Self.sampleExport()
        export.timeZone = "Mars/Olympus"
        #expect(throws: PowerInputError("timeZone: \"Mars/Olympus\" is not a known time zone identifier")) {
            try export.xml()
        }
        export = try Self.sampleExport()
        export.from = export.to
        #expect(throws: PowerInputError.self) { try export.xml() }
        export = try Self.sampleExport()
        export.from = try Self.time("2026-12-01T00:00:00Z")
        export.to = try Self.time("2026-12-02T00:00:00Z")
        #expect(throws: PowerInputError.self) { try export.xml() }  // no readings in the period
        export = try Self.sampleExport()
        export.readings.append(IntervalReading(start: try Self.time("2026-11-27T06:00:00Z"), seconds: 300, kWh: 1))
        #expect(throws: PowerInputError.self) { try export.xml() }  // mixed interval lengths
        export = try Self.sampleExport()
        export.readings.append(IntervalReading(start: try Self.time("2026-11-27T05:10:00Z"), kWh: 1))
        #expect(throws: PowerInputError.self) { try export.xml() }  // overlaps 05:00–05:15
        export = try Self.sampleExport()
        export.powerOfTenMultiplier = 10
        #expect(throws: PowerInputError.self) { try export.xml() }
    }

    @Test("JSON request: baseURI and powerOfTenMultiplier are optional")
    func decoding() throws {
        let json = """
            {"deviceID":"meter-7","title":"Main","timeZone":"UTC","from":"2026-11-27T00:00:00Z",
             "to":"2026-11-28T00:00:00Z","generated":"2026-11-28T06:00:00Z",
             "readings":[{"start":"2026-11-27T00:00:00Z","seconds":900,"kWh":1.25}]}
            """
        let export = try JSONDecoder().decode(GreenButtonExport.self, from: Data(json.utf8))
        #expect(export.baseURI == GreenButtonExport.defaultBaseURI)
        #expect(export.powerOfTenMultiplier == 0)
        #expect(try export.xml().contains("<espi:value>1250</espi:value>"))
    }

    // MARK: schema validation

    static let schemaDirectory = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Schemas/greenbutton")

    /// Runs xmllint against espiDerived.xsd; returns its exit status and diagnostics.
    static func xmllint(_ xml: String) throws -> (status: Int32, output: String) {
        let tool = "/usr/bin/xmllint"
        try #require(FileManager.default.isExecutableFile(atPath: tool), "xmllint is required (libxml2-utils)")
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("gb-\(UUID().uuidString).xml")
        try xml.write(to: file, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: file) }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: tool)
        process.arguments = [
            "--noout", "--schema", schemaDirectory.appendingPathComponent("espiDerived.xsd").path, file.path,
        ]
        let pipe = Pipe()
        process.standardError = pipe
        process.standardOutput = pipe
        try process.run()
        let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        return (process.terminationStatus, output)
    }

    /// espiDerived.xsd imports atom.xsd, so the schema set declares `atom:feed` as a root; Atom's
    /// `content` and `feed` admit `##other` elements with strict processing, so every ESPI
    /// resource inside an entry is validated against its global ESPI element too.
    @Test("the export validates against espiDerived.xsd (Atom feed and ESPI content)")
    func validates() throws {
        let result = try Self.xmllint(try Self.sampleExport(title: #"A&B <Main> "x""#).xml())
        #expect(result.status == 0, "\(result.output)")
        #expect(result.output.contains("validates"))
    }

    @Test("a ReadingType with children out of order fails validation")
    func brokenOrderFails() throws {
        let xml = try Self.sampleExport().xml()
        let broken = xml.replacingOccurrences(
            of:
                "<espi:accumulationBehaviour>4</espi:accumulationBehaviour>\n        <espi:commodity>1</espi:commodity>",
            with:
                "<espi:commodity>1</espi:commodity>\n        <espi:accumulationBehaviour>4</espi:accumulationBehaviour>"
        )
        try #require(broken != xml)
        let result = try Self.xmllint(broken)
        #expect(result.status != 0)
        #expect(result.output.contains("accumulationBehaviour"))
    }

    @Test("a non-integer value deep inside an IntervalBlock fails validation")
    func brokenValueFails() throws {
        let xml = try Self.sampleExport().xml()
        let broken = xml.replacingOccurrences(
            of: "<espi:value>1235</espi:value>", with: "<espi:value>1234.5</espi:value>")
        try #require(broken != xml)
        let result = try Self.xmllint(broken)
        #expect(result.status != 0)
        #expect(result.output.contains("1234.5"))
    }

    @Test("an unknown element inside content fails: content is validated strictly")
    func unknownContentFails() throws {
        let xml = try Self.sampleExport().xml()
        let broken = xml.replacingOccurrences(of: "<espi:MeterReading/>", with: "<espi:MeterReadingX/>")
        try #require(broken != xml)
        #expect(try Self.xmllint(broken).status != 0)
    }
}

@Suite("SHA-1 and name-based UUIDs")
struct NameBasedUUIDTests {
    @Test("SHA-1 of \"abc\" is the FIPS 180 example digest")
    func sha1() {
        let digest = NameBasedUUID.sha1(Array("abc".utf8)).map { String(format: "%02x", $0) }.joined()
        #expect(digest == "a9993e364706816aba3e25717850c26c9cd0d89d")
    }

    @Test("SHA-1 of a two-block message (56 bytes, padding spills into a second block)")
    func sha1TwoBlocks() {
        let message = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"
        let digest = NameBasedUUID.sha1(Array(message.utf8)).map { String(format: "%02x", $0) }.joined()
        #expect(digest == "84983e441c3bd26ebaae4aa1f95129e5e54670f1")
    }

    @Test("RFC 4122 version 5 vector: DNS namespace, www.example.com")
    func knownVector() throws {
        // The widely published value of uuid5(NAMESPACE_DNS, "www.example.com").
        let expected = try #require(UUID(uuidString: "2ed6657d-e927-568b-95e1-2665a8aea6a2"))
        #expect(NameBasedUUID.v5(namespace: NameBasedUUID.dnsNamespace, name: "www.example.com") == expected)
    }
}
