public import BackchannelProtocol
public import Foundation

/// A Green Button (NAESB REQ.21 ESPI) "Download My Data" export of one device's active energy.
///
/// The result of ``xml()`` is an Atom `feed` whose entries carry ESPI resources, in this order:
/// `UsagePoint` (ServiceCategory kind 0 = electricity), `LocalTimeParameters` (from
/// ``timeZone``), `MeterReading`, `ReadingType` (Wh, delta data, forward flow) and one
/// `IntervalBlock` per local calendar day, holding that day's `IntervalReading`s.
///
/// JSON input for the CLI (`baseURI` and `powerOfTenMultiplier` may be left out):
/// `{"deviceID":"meter-7","title":"Main meter","timeZone":"America/New_York",
///   "from":"2026-11-27T05:00:00Z","to":"2026-11-28T05:00:00Z","generated":"2026-11-28T06:00:00Z",
///   "baseURI":"https://hub.example/espi/1_1/resource","powerOfTenMultiplier":0,
///   "readings":[{"start":"2026-11-27T05:00:00Z","seconds":900,"kWh":1.25}]}`
///
/// Rules:
/// - The period is half-open: a reading is exported when `from ≤ start < to`; at least one
///   must be. All exported readings have the same length (ReadingType `intervalLength`) and
///   start on a whole second (ESPI times are epoch seconds).
/// - `value` is the energy in Wh ÷ 10^``powerOfTenMultiplier``, rounded half away from zero to
///   an integer, computed in `Decimal` from the shortest decimal text of `kWh`
///   (1.2345 kWh, multiplier 0 → 1234.5 Wh → 1235).
/// - An interval belongs to the local day (in ``timeZone``) on which it starts. Each block's
///   `interval` runs from its first reading's start to its last reading's end.
/// - Reactive energy (`kvarh`) is not exported here; use ``IntervalExport`` for it.
/// - Atom ids are `urn:uuid:` name-based (version 5, SHA-1) UUIDs of the device and the
///   resource kind, so a re-export carries the same ids.
public struct GreenButtonExport: Sendable, Hashable, Codable {
    /// The device (usage point) identifier; it appears in ids and link paths.
    public var deviceID: String
    /// A human-readable name for the usage point, used in entry titles.
    public var title: String
    /// The IANA time zone identifier of the premises, for day blocks and LocalTimeParameters.
    public var timeZone: String
    /// The start of the period, inclusive.
    public var from: Timestamp
    /// The end of the period, exclusive.
    public var to: Timestamp
    /// When the export is made: the feed's and entries' `updated` and `published` times.
    public var generated: Timestamp
    /// The ESPI resource base URI that link `href`s are built on; by default
    /// ``defaultBaseURI``.
    public var baseURI: String
    /// The ReadingType `powerOfTenMultiplier`, −3…9; 0 (the default) means values in Wh.
    public var powerOfTenMultiplier: Int
    /// The interval readings, in any order; those outside the period are left out.
    public var readings: [IntervalReading]

    /// The base URI used when none is given: a relative ESPI resource path.
    public static let defaultBaseURI = "/espi/1_1/resource"

    /// Creates an export request.
    public init(
        deviceID: String, title: String, timeZone: String, from: Timestamp, to: Timestamp,
        generated: Timestamp, baseURI: String = Self.defaultBaseURI, powerOfTenMultiplier: Int = 0,
        readings: [IntervalReading]
    ) {
        self.deviceID = deviceID
        self.title = title
        self.timeZone = timeZone
        self.from = from
        self.to = to
        self.generated = generated
        self.baseURI = baseURI
        self.powerOfTenMultiplier = powerOfTenMultiplier
        self.readings = readings
    }

    private enum CodingKeys: String, CodingKey {
        case deviceID, title, timeZone, from, to, generated, baseURI, powerOfTenMultiplier, readings
    }

    /// Decodes a request; `baseURI` and `powerOfTenMultiplier` are optional.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        deviceID = try container.decode(String.self, forKey: .deviceID)
        title = try container.decode(String.self, forKey: .title)
        timeZone = try container.decode(String.self, forKey: .timeZone)
        from = try container.decode(Timestamp.self, forKey: .from)
        to = try container.decode(Timestamp.self, forKey: .to)
        generated = try container.decode(Timestamp.self, forKey: .generated)
        baseURI = try container.decodeIfPresent(String.self, forKey: .baseURI) ?? Self.defaultBaseURI
        powerOfTenMultiplier = try container.decodeIfPresent(Int.self, forKey: .powerOfTenMultiplier) ?? 0
        readings = try container.decode([IntervalReading].self, forKey: .readings)
    }

    /// The ESPI namespace.
    public static let espiNamespace = "http://naesb.org/espi"
    /// The Atom namespace.
    public static let atomNamespace = "http://www.w3.org/2005/Atom"

    /// The export as an Atom feed with ESPI content (UTF-8 XML text).
    public func xml() throws(PowerInputError) -> String {
        guard !deviceID.isEmpty else { throw PowerInputError("deviceID is empty") }
        guard let zone = TimeZone(identifier: timeZone) else {
            throw PowerInputError("timeZone: \"\(timeZone.prefix(60))\" is not a known time zone identifier")
        }
        guard (-3...9).contains(powerOfTenMultiplier) else {
            throw PowerInputError("powerOfTenMultiplier \(powerOfTenMultiplier) is outside -3...9")
        }
        guard URL(string: baseURI) != nil, !baseURI.isEmpty else {
            throw PowerInputError("baseURI: \"\(baseURI.prefix(60))\" is not a URI")
        }
        let selected = try IntervalExport.select(readings, from: from, to: to)
        guard let first = selected.first else {
            throw PowerInputError("no interval readings with start in [\(from), \(to))")
        }
        for reading in selected where reading.seconds != first.seconds {
            throw PowerInputError(
                "interval at \(reading.start): length \(reading.seconds) s differs from \(first.seconds) s; "
                    + "a ReadingType has one interval length")
        }
        for reading in selected where reading.start.milliseconds % 1000 != 0 {
            throw PowerInputError("interval at \(reading.start): start is not a whole second")
        }
        let values = try selected.map { reading throws(PowerInputError) in
            try Self.value(kWh: reading.kWh, powerOfTenMultiplier: powerOfTenMultiplier, at: reading.start)
        }
        let local = LocalTimeParameters(timeZone: zone, at: first.start)
        let days = Self.localDays(selected.indices.map { selected[$0].start }, in: zone)
        return try FeedWriter(export: self, local: local, readings: selected, values: values, days: days).write()
    }

    /// The ESPI integer `value` for an energy: Wh ÷ 10^multiplier, rounded half away from zero.
    public static func value(
        kWh: Double, powerOfTenMultiplier: Int, at start: Timestamp
    ) throws(PowerInputError) -> Int64 {
        guard kWh.isFinite, let exact = Decimal(string: "\(kWh)", locale: Locale(identifier: "en_US_POSIX")) else {
            throw PowerInputError("interval at \(start): kWh is not a finite number")
        }
        var scaled = exact * Decimal(sign: .plus, exponent: 3 - powerOfTenMultiplier, significand: 1)
        var rounded = Decimal()
        NSDecimalRound(&rounded, &scaled, 0, .plain)
        let limit: Int64 = 140_737_488_355_328
        guard let integer = Int64(rounded.description), (-limit...limit).contains(integer) else {
            throw PowerInputError(
                "interval at \(start): \(kWh) kWh does not fit an ESPI Int48 value at multiplier \(powerOfTenMultiplier)"
            )
        }
        return integer
    }

    /// Groups reading indices by the local calendar day (in `zone`) on which each starts.
    static func localDays(_ starts: [Timestamp], in zone: TimeZone) -> [(label: String, indices: [Int])] {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = zone
        var days: [(label: String, indices: [Int])] = []
        for (index, start) in starts.enumerated() {
            let parts = calendar.dateComponents([.year, .month, .day], from: start.date)
            let label = String(format: "%04d%02d%02d", parts.year ?? 0, parts.month ?? 0, parts.day ?? 0)
            if days.last?.label == label {
                days[days.count - 1].indices.append(index)
            } else {
                days.append((label, [index]))
            }
        }
        return days
    }

    /// The deterministic Atom id of one resource: a version 5 UUID of `device/kind`.
    ///
    /// The namespace is the RFC 4122 URL namespace; the name is `backchannel:<device>/<kind>`.
    public static func uuid(deviceID: String, kind: String) -> UUID {
        NameBasedUUID.v5(namespace: NameBasedUUID.urlNamespace, name: "backchannel:\(deviceID)/\(kind)")
    }
}

/// The ESPI `LocalTimeParameters` of a time zone: DST rules and offsets in seconds.
///
/// A DST rule is the 32-bit ESPI encoding (written as 8 hex digits): bits 0–11 seconds, 12–16
/// hour, 17–19 weekday (Monday = 1 … Sunday = 7), 20–24 day of month, 25–27 operator, 28–31
/// month. Rules are inferred from the zone's two transitions in the calendar year of the
/// reference instant; the time is the local wall-clock time just before the change (US: 2:00
/// both ways; EU: 2:00 in March, 3:00 in October). A transition in the last seven days of its
/// month is written "last weekday of the month" (operator 7), otherwise "n-th weekday"
/// (operator n + 1). A zone without exactly one start and one end that year gets rules
/// `FFFFFFFF` (disabled) and `dstOffset` 0.
public struct LocalTimeParameters: Sendable, Hashable, Codable {
    /// The rule for the start of daylight saving time.
    public var dstStartRule: UInt32
    /// The rule for the end of daylight saving time.
    public var dstEndRule: UInt32
    /// The daylight saving amount in seconds (3600 in most zones).
    public var dstOffset: Int
    /// The standard-time offset from UTC in seconds (New York −18000).
    public var tzOffset: Int

    /// The rule value meaning "no DST processing".
    public static let disabledRule: UInt32 = 0xFFFF_FFFF

    /// Creates parameters from explicit values.
    public init(dstStartRule: UInt32, dstEndRule: UInt32, dstOffset: Int, tzOffset: Int) {
        self.dstStartRule = dstStartRule
        self.dstEndRule = dstEndRule
        self.dstOffset = dstOffset
        self.tzOffset = tzOffset
    }

    /// Derives the parameters of `timeZone` for the calendar year containing `instant`.
    public init(timeZone: TimeZone, at instant: Timestamp) {
        let date = instant.date
        tzOffset = timeZone.secondsFromGMT(for: date) - Int(timeZone.daylightSavingTimeOffset(for: date))
        var utc = Calendar(identifier: .gregorian)
        utc.timeZone = TimeZone(identifier: "UTC") ?? utc.timeZone
        var local = utc
        local.timeZone = timeZone
        let year = local.component(.year, from: date)
        var starts: [(rule: UInt32, amount: Int)] = []
        var ends: [UInt32] = []
        var cursor = utc.date(from: DateComponents(year: year - 1, month: 12, day: 30)) ?? date
        while let transition = timeZone.nextDaylightSavingTimeTransition(after: cursor),
            local.component(.year, from: transition) <= year
        {
            cursor = transition
            guard local.component(.year, from: transition) == year else { continue }
            let before = transition.addingTimeInterval(-1)
            let wallClock = transition.addingTimeInterval(Double(timeZone.secondsFromGMT(for: before)))
            let rule = Self.rule(wallClock: wallClock, calendar: utc)
            if timeZone.isDaylightSavingTime(for: transition) {
                starts.append((rule, Int(timeZone.daylightSavingTimeOffset(for: transition))))
            } else {
                ends.append(rule)
            }
        }
        if starts.count == 1, ends.count == 1 {
            dstStartRule = starts[0].rule
            dstEndRule = ends[0]
            dstOffset = starts[0].amount
        } else {
            dstStartRule = Self.disabledRule
            dstEndRule = Self.disabledRule
            dstOffset = 0
        }
    }

    /// Encodes a wall-clock instant (given as a UTC date with the local fields) as a DST rule.
    static func rule(wallClock: Date, calendar: Calendar) -> UInt32 {
        let parts = calendar.dateComponents([.month, .day, .weekday, .hour, .minute, .second], from: wallClock)
        let month = parts.month ?? 1
        let day = parts.day ?? 1
        let daysInMonth = calendar.range(of: .day, in: .month, for: wallClock)?.count ?? 31
        let weekday = ((parts.weekday ?? 1) + 5) % 7 + 1  // Gregorian Sunday = 1 → ESPI Sunday = 7
        let operation = day + 7 > daysInMonth ? 7 : (day - 1) / 7 + 2
        let seconds = (parts.minute ?? 0) * 60 + (parts.second ?? 0)
        return UInt32(month) << 28 | UInt32(operation) << 25 | UInt32(weekday) << 17 | UInt32(parts.hour ?? 0) << 12
            | UInt32(seconds)
    }

    /// A rule as the 8 upper-case hex digits ESPI writes.
    public static func hex(_ rule: UInt32) -> String {
        let digits = String(rule, radix: 16, uppercase: true)
        return String(repeating: "0", count: 8 - digits.count) + digits
    }
}

/// Writes the Atom feed text.
private struct FeedWriter {
    let export: GreenButtonExport
    let local: LocalTimeParameters
    let readings: [IntervalReading]
    let values: [Int64]
    let days: [(label: String, indices: [Int])]
    var lines: [String] = []

    init(
        export: GreenButtonExport, local: LocalTimeParameters, readings: [IntervalReading], values: [Int64],
        days: [(label: String, indices: [Int])]
    ) {
        self.export = export
        self.local = local
        self.readings = readings
        self.values = values
        self.days = days
    }

    consuming func write() throws(PowerInputError) -> String {
        let base = try XMLEscaping.escape(
            export.baseURI.hasSuffix("/") ? String(export.baseURI.dropLast()) : export.baseURI, field: "baseURI")
        let device = try XMLEscaping.escape(
            export.deviceID.addingPercentEncoding(withAllowedCharacters: .alphanumerics.union(["-", "_", ".", "~"]))
                ?? "", field: "deviceID")
        let title = try XMLEscaping.escape(export.title, field: "title")
        let usagePoint = "\(base)/UsagePoint/\(device)"
        let meterReading = "\(usagePoint)/MeterReading/kWh"
        let readingType = "\(base)/ReadingType/\(device)-kWh"
        let localTime = "\(base)/LocalTimeParameters/\(device)"
        let multiplier = export.powerOfTenMultiplier

        lines.append(#"<?xml version="1.0" encoding="UTF-8"?>"#)
        lines.append(
            #"<feed xmlns="\#(GreenButtonExport.atomNamespace)" xmlns:espi="\#(GreenButtonExport.espiNamespace)">"#)
        lines.append("  <id>\(id("feed"))</id>")
        lines.append("  <title>Green Button usage: \(title)</title>")
        lines.append("  <updated>\(export.generated)</updated>")
        lines.append(#"  <link rel="self" href="\#(base)/Batch/UsagePoint/\#(device)"/>"#)
        entry(
            kind: "UsagePoint", title: title,
            links: [
                ("up", "\(base)/UsagePoint"), ("self", usagePoint), ("related", "\(usagePoint)/MeterReading"),
                ("related", localTime),
            ],
            content: ["<espi:ServiceCategory>", "  <espi:kind>0</espi:kind>", "</espi:ServiceCategory>"])
        entry(
            kind: "LocalTimeParameters",
            title: "Local time: \(try XMLEscaping.escape(export.timeZone, field: "timeZone"))",
            links: [("up", "\(base)/LocalTimeParameters"), ("self", localTime)],
            content: [
                "<espi:dstEndRule>\(LocalTimeParameters.hex(local.dstEndRule))</espi:dstEndRule>",
                "<espi:dstOffset>\(local.dstOffset)</espi:dstOffset>",
                "<espi:dstStartRule>\(LocalTimeParameters.hex(local.dstStartRule))</espi:dstStartRule>",
                "<espi:tzOffset>\(local.tzOffset)</espi:tzOffset>",
            ])
        entry(
            kind: "MeterReading", title: "\(title): active energy",
            links: [
                ("up", "\(usagePoint)/MeterReading"), ("self", meterReading),
                ("related", "\(meterReading)/IntervalBlock"), ("related", readingType),
            ],
            content: [])
        entry(
            kind: "ReadingType", title: "Energy delivered (Wh × 10^\(multiplier))",
            links: [("up", "\(base)/ReadingType"), ("self", readingType)],
            content: [
                "<espi:accumulationBehaviour>4</espi:accumulationBehaviour>",
                "<espi:commodity>1</espi:commodity>",
                "<espi:dataQualifier>12</espi:dataQualifier>",
                "<espi:flowDirection>1</espi:flowDirection>",
                "<espi:intervalLength>\(readings[0].seconds)</espi:intervalLength>",
                "<espi:kind>12</espi:kind>",
                "<espi:powerOfTenMultiplier>\(multiplier)</espi:powerOfTenMultiplier>",
                "<espi:timeAttribute>0</espi:timeAttribute>",
                "<espi:uom>72</espi:uom>",
            ])
        for day in days {
            let first = readings[day.indices[0]]
            let last = readings[day.indices[day.indices.count - 1]]
            var content = [
                "<espi:interval>",
                "  <espi:duration>\(Int64(last.end.seconds(since: first.start)))</espi:duration>",
                "  <espi:start>\(first.start.milliseconds / 1000)</espi:start>",
                "</espi:interval>",
            ]
            for index in day.indices {
                content += [
                    "<espi:IntervalReading>",
                    "  <espi:timePeriod>",
                    "    <espi:duration>\(readings[index].seconds)</espi:duration>",
                    "    <espi:start>\(readings[index].start.milliseconds / 1000)</espi:start>",
                    "  </espi:timePeriod>",
                    "  <espi:value>\(values[index])</espi:value>",
                    "</espi:IntervalReading>",
                ]
            }
            entry(
                kind: "IntervalBlock", name: "IntervalBlock/\(day.label)", title: "\(title): \(day.label)",
                links: [
                    ("up", "\(meterReading)/IntervalBlock"), ("self", "\(meterReading)/IntervalBlock/\(day.label)"),
                ],
                content: content)
        }
        lines.append("</feed>")
        return lines.joined(separator: "\n") + "\n"
    }

    func id(_ kind: String) -> String {
        "urn:uuid:" + GreenButtonExport.uuid(deviceID: export.deviceID, kind: kind).uuidString.lowercased()
    }

    mutating func entry(
        kind: String, name: String? = nil, title: String, links: [(rel: String, href: String)], content: [String]
    ) {
        lines.append("  <entry>")
        lines.append("    <id>\(id(name ?? kind))</id>")
        for link in links {
            lines.append(#"    <link rel="\#(link.rel)" href="\#(link.href)"/>"#)
        }
        lines.append("    <title>\(title)</title>")
        lines.append("    <content>")
        if content.isEmpty {
            lines.append("      <espi:\(kind)/>")
        } else {
            lines.append("      <espi:\(kind)>")
            lines += content.map { "        " + $0 }
            lines.append("      </espi:\(kind)>")
        }
        lines.append("    </content>")
        lines.append("    <published>\(export.generated)</published>")
        lines.append("    <updated>\(export.generated)</updated>")
        lines.append("  </entry>")
    }
}

/// Name-based (version 5, SHA-1) UUIDs, RFC 4122 §4.3.
enum NameBasedUUID {
    /// The RFC 4122 URL namespace, 6ba7b811-9dad-11d1-80b4-00c04fd430c8.
    static let urlNamespace: [UInt8] = [
        0x6b, 0xa7, 0xb8, 0x11, 0x9d, 0xad, 0x11, 0xd1, 0x80, 0xb4, 0x00, 0xc0, 0x4f, 0xd4, 0x30, 0xc8,
    ]
    /// The RFC 4122 DNS namespace, 6ba7b810-9dad-11d1-80b4-00c04fd430c8.
    static let dnsNamespace: [UInt8] = [
        0x6b, 0xa7, 0xb8, 0x10, 0x9d, 0xad, 0x11, 0xd1, 0x80, 0xb4, 0x00, 0xc0, 0x4f, 0xd4, 0x30, 0xc8,
    ]

    static func v5(namespace: [UInt8], name: String) -> UUID {
        var bytes = Array(sha1(namespace + Array(name.utf8)).prefix(16))
        bytes[6] = (bytes[6] & 0x0F) | 0x50
        bytes[8] = (bytes[8] & 0x3F) | 0x80
        return UUID(
            uuid: (
                bytes[0], bytes[1], bytes[2], bytes[3], bytes[4], bytes[5], bytes[6], bytes[7],
                bytes[8], bytes[9], bytes[10], bytes[11], bytes[12], bytes[13], bytes[14], bytes[15]
            ))
    }

    /// SHA-1 (FIPS 180-4); used only to derive identifiers, not for security.
    static func sha1(_ message: [UInt8]) -> [UInt8] {
        var h: [UInt32] = [0x6745_2301, 0xEFCD_AB89, 0x98BA_DCFE, 0x1032_5476, 0xC3D2_E1F0]
        var data = message
        let bitLength = UInt64(message.count) &* 8
        data.append(0x80)
        while data.count % 64 != 56 { data.append(0) }
        for shift in stride(from: 56, through: 0, by: -8) {
            data.append(UInt8(truncatingIfNeeded: bitLength >> UInt64(shift)))
        }
        var w = [UInt32](repeating: 0, count: 80)
        for chunk in stride(from: 0, to: data.count, by: 64) {
            for i in 0..<16 {
                let j = chunk + i * 4
                w[i] =
                    UInt32(data[j]) << 24 | UInt32(data[j + 1]) << 16 | UInt32(data[j + 2]) << 8 | UInt32(data[j + 3])
            }
            for i in 16..<80 {
                let x = w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16]
                w[i] = x << 1 | x >> 31
            }
            var (a, b, c, d, e) = (h[0], h[1], h[2], h[3], h[4])
            for i in 0..<80 {
                let (f, k): (UInt32, UInt32) =
                    switch i {
                    case 0..<20: ((b & c) | (~b & d), 0x5A82_7999)
                    case 20..<40: (b ^ c ^ d, 0x6ED9_EBA1)
                    case 40..<60: ((b & c) | (b & d) | (c & d), 0x8F1B_BCDC)
                    default: (b ^ c ^ d, 0xCA62_C1D6)
                    }
                let temp = (a << 5 | a >> 27) &+ f &+ e &+ k &+ w[i]
                e = d
                d = c
                c = b << 30 | b >> 2
                b = a
                a = temp
            }
            h[0] = h[0] &+ a
            h[1] = h[1] &+ b
            h[2] = h[2] &+ c
            h[3] = h[3] &+ d
            h[4] = h[4] &+ e
        }
        return h.flatMap { word in (0..<4).map { UInt8(truncatingIfNeeded: word >> (24 - 8 * UInt32($0))) } }
    }
}
