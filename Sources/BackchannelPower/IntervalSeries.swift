public import BackchannelProtocol
public import Foundation

/// Interval data checked for order, duplicates and overlaps: the input to bills and load reports.
///
/// The readings are sorted by start. No two start at the same instant and none overlaps another.
/// Lengths may differ between readings here; a bill or report says which lengths it accepts.
/// In JSON a series is the array of its readings:
/// `[{"start": "2026-07-15T04:00:00.000Z", "seconds": 900, "kWh": 1.25, "kvarh": 0.5}]`.
public struct IntervalSeries: Sendable, Hashable, Codable {
    /// The readings, sorted by start, none overlapping another.
    public private(set) var readings: [IntervalReading]

    /// Checks and sorts `readings`, rejecting invalid readings, duplicates and overlaps.
    public init(_ readings: [IntervalReading]) throws(PowerInputError) {
        for (index, reading) in readings.enumerated() {
            do {
                try reading.validate()
            } catch {
                throw PowerInputError("interval \(index + 1): \(error.message)")
            }
        }
        let labelled = readings.enumerated().map {
            (reading: $0.element, label: "interval \($0.offset + 1)")
        }
        self.readings = try Self.sortedWithoutOverlap(labelled)
    }

    /// Parses interval CSV.
    ///
    /// Columns (names case-insensitive, in any order):
    /// - the time, RFC 3339: `start` (the interval's start), `end` (its end), both (the length is
    ///   then `end - start`), or `timestamp`, which is read with `timestampConvention`;
    /// - `kWh`, required;
    /// - `kvarh`, optional (an empty field means the meter did not register it, never zero);
    /// - `seconds`, optional, a whole number; without the column every interval is 900 s.
    ///
    /// - Parameter timestampConvention: whether a `timestamp` column marks starts or ends. It is
    ///   required when the file has a `timestamp` column and ignored otherwise.
    /// - Throws: `PowerInputError` naming the line and column of the first bad field, or the two
    ///   lines of a duplicate or an overlap.
    public init(csv text: String, timestampConvention: IntervalTimestamp? = nil)
        throws(PowerInputError)
    {
        let table = try CSVTable(parsing: text)
        let startColumn = table.column("start")
        let endColumn = table.column("end")
        let timestampColumn = table.column("timestamp")
        if timestampColumn != nil, startColumn != nil || endColumn != nil {
            throw PowerInputError(
                "the header has both timestamp and start/end columns; keep one time column")
        }
        if timestampColumn != nil, timestampConvention == nil {
            throw PowerInputError(
                "the timestamp column does not say whether it marks interval starts or ends; give the convention"
            )
        }
        guard startColumn != nil || endColumn != nil || timestampColumn != nil else {
            throw PowerInputError(
                "no time column named start, end or timestamp; the header is \(table.header.joined(separator: ","))"
            )
        }
        let kWhColumn = try table.requiredColumn("kWh")
        let kvarhColumn = table.column("kvarh")
        let secondsColumn = table.column("seconds")

        var labelled: [(reading: IntervalReading, label: String)] = []
        for (line, fields) in table.rows {
            func time(_ column: Int) throws(PowerInputError) -> Timestamp {
                guard let value = Timestamp(rfc3339: fields[column]) else {
                    throw PowerInputError(
                        "line \(line), \(table.header[column]): \"\(fields[column].prefix(40))\" is not an RFC 3339 timestamp"
                    )
                }
                return value
            }
            var seconds = 900
            if let secondsColumn {
                guard let value = Int(fields[secondsColumn]) else {
                    throw PowerInputError(
                        "line \(line), \(table.header[secondsColumn]): \"\(fields[secondsColumn].prefix(40))\" is not a whole number of seconds"
                    )
                }
                seconds = value
            }
            let start: Timestamp
            if let startColumn {
                start = try time(startColumn)
                if let endColumn {
                    let end = try time(endColumn)
                    let span = end.milliseconds - start.milliseconds
                    guard span > 0, span % 1000 == 0 else {
                        throw PowerInputError(
                            "line \(line), end: must be a whole number of seconds after start")
                    }
                    if secondsColumn != nil, Int64(seconds) * 1000 != span {
                        throw PowerInputError(
                            "line \(line), seconds: \(seconds) disagrees with end - start = \(span / 1000) s")
                    }
                    seconds = Int(span / 1000)
                }
            } else if let endColumn {
                start = try time(endColumn).adding(seconds: -Double(seconds))
            } else if let timestampColumn {
                let stamp = try time(timestampColumn)
                start = timestampConvention == .end ? stamp.adding(seconds: -Double(seconds)) : stamp
            } else {
                throw PowerInputError("no time column")
            }
            let kWh = try CSVTable.number(fields[kWhColumn], line: line, column: table.header[kWhColumn])
            var kvarh: Double?
            if let kvarhColumn, !fields[kvarhColumn].isEmpty {
                kvarh = try CSVTable.number(
                    fields[kvarhColumn], line: line, column: table.header[kvarhColumn])
            }
            let reading = IntervalReading(start: start, seconds: seconds, kWh: kWh, kvarh: kvarh)
            do {
                try reading.validate()
            } catch {
                throw PowerInputError("line \(line): \(error.message)")
            }
            labelled.append((reading, "line \(line)"))
        }
        self.readings = try Self.sortedWithoutOverlap(labelled)
    }

    /// Decodes the JSON array of readings and checks it like `init(_:)`.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        let readings = try container.decode([IntervalReading].self)
        do {
            try self.init(readings)
        } catch {
            throw DecodingError.dataCorruptedError(in: container, debugDescription: error.message)
        }
    }

    /// Encodes the readings as a JSON array.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(readings)
    }

    /// The starts of the intervals missing from `[from, to)` on a grid of `seconds`.
    ///
    /// The grid is `from`, `from + seconds`, … while before `to`. A grid start is missing when
    /// no reading starts exactly there. Missing intervals are listed, never treated as zero.
    public func missingStarts(from: Timestamp, to: Timestamp, seconds: Int) throws(PowerInputError)
        -> [Timestamp]
    {
        try Self.missingStarts(readings, from: from, to: to, seconds: seconds)
    }

    /// The starts of the intervals missing from `[from, to)`; see the instance method.
    public static func missingStarts(
        _ readings: [IntervalReading], from: Timestamp, to: Timestamp, seconds: Int
    ) throws(PowerInputError) -> [Timestamp] {
        guard from < to else { throw PowerInputError("from (\(from)) must be before to (\(to))") }
        guard (60...86_400).contains(seconds) else {
            throw PowerInputError("interval length \(seconds) s is outside 60-86400")
        }
        let starts = Set(readings.map(\.start))
        var missing: [Timestamp] = []
        var slot = from
        while slot < to {
            if !starts.contains(slot) { missing.append(slot) }
            slot = slot.adding(seconds: Double(seconds))
        }
        return missing
    }

    /// How many intervals of `seconds` a local calendar day has in `timeZone`.
    ///
    /// The day runs from its local start to the next day's local start, so in America/New_York
    /// 15-minute data has 96 intervals on most days, 92 on the spring-forward day (23 hours) and
    /// 100 on the fall-back day (25 hours).
    /// - Throws: when the time zone is unknown or the day's length is not a multiple of `seconds`.
    public static func expectedIntervals(
        on day: LocalDate, timeZone identifier: String, seconds: Int = 900
    ) throws(PowerInputError) -> Int {
        guard (60...86_400).contains(seconds) else {
            throw PowerInputError("interval length \(seconds) s is outside 60-86400")
        }
        let calendar = try LocalDate.calendar(timeZone: identifier)
        let (start, end) = try day.bounds(in: calendar)
        let length = Int(end.seconds(since: start))
        guard length % seconds == 0 else {
            throw PowerInputError(
                "\(day) in \(identifier) lasts \(length) s, not a multiple of \(seconds) s")
        }
        return length / seconds
    }

    /// The readings that start in `[from, to)`, checked and sorted; errors name the reading's
    /// position in `readings`.
    static func inPeriod(
        _ readings: [IntervalReading], from: Timestamp, to: Timestamp
    ) throws(PowerInputError) -> [IntervalReading] {
        var labelled: [(reading: IntervalReading, label: String)] = []
        for (index, reading) in readings.enumerated() where from <= reading.start && reading.start < to {
            do {
                try reading.validate()
            } catch {
                throw PowerInputError("interval \(index + 1): \(error.message)")
            }
            labelled.append((reading, "interval \(index + 1)"))
        }
        return try sortedWithoutOverlap(labelled)
    }

    /// Sorts labelled readings by start and throws on the first duplicate or overlap.
    static func sortedWithoutOverlap(
        _ labelled: [(reading: IntervalReading, label: String)]
    ) throws(PowerInputError) -> [IntervalReading] {
        let sorted = labelled.enumerated().sorted {
            ($0.element.reading.start, $0.offset) < ($1.element.reading.start, $1.offset)
        }.map(\.element)
        var latest: (end: Timestamp, start: Timestamp, label: String)?
        for (index, item) in sorted.enumerated() {
            if index > 0, sorted[index - 1].reading.start == item.reading.start {
                throw PowerInputError(
                    "\(item.label): duplicate interval starting \(item.reading.start) (also \(sorted[index - 1].label))"
                )
            }
            if let previous = latest {
                if item.reading.start < previous.end {
                    throw PowerInputError(
                        "\(item.label): interval starting \(item.reading.start) overlaps \(previous.label) (\(previous.start) to \(previous.end))"
                    )
                }
            }
            if latest == nil || item.reading.end > latest!.end {
                latest = (item.reading.end, item.reading.start, item.label)
            }
        }
        return sorted.map(\.reading)
    }
}

/// A calendar date in some time zone, written `YYYY-MM-DD` (in JSON too).
public struct LocalDate: Sendable, Hashable, Comparable, Codable, CustomStringConvertible {
    /// The year, 1…9999.
    public let year: Int
    /// The month, 1…12.
    public let month: Int
    /// The day of the month, 1…31 as the month allows.
    public let day: Int

    /// Creates a date, checking that it exists in the Gregorian calendar.
    public init(year: Int, month: Int, day: Int) throws(PowerInputError) {
        guard (1...9999).contains(year), (1...12).contains(month), day >= 1,
            day <= Self.daysInMonth(year: year, month: month)
        else {
            throw PowerInputError("\(year)-\(month)-\(day) is not a calendar date")
        }
        self.year = year
        self.month = month
        self.day = day
    }

    /// Parses `YYYY-MM-DD`.
    public init(_ text: String) throws(PowerInputError) {
        let parts = text.split(separator: "-", omittingEmptySubsequences: false)
        guard parts.count == 3, parts[0].count == 4, parts[1].count == 2, parts[2].count == 2,
            let year = Int(parts[0]), let month = Int(parts[1]), let day = Int(parts[2])
        else {
            throw PowerInputError("\"\(text.prefix(40))\" is not a date written YYYY-MM-DD")
        }
        try self.init(year: year, month: month, day: day)
    }

    /// Decodes a `YYYY-MM-DD` string.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        let text = try container.decode(String.self)
        do {
            try self.init(text)
        } catch {
            throw DecodingError.dataCorruptedError(in: container, debugDescription: error.message)
        }
    }

    /// Encodes the `YYYY-MM-DD` string.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(description)
    }

    /// The date written `YYYY-MM-DD`.
    public var description: String {
        func pad(_ value: Int, _ width: Int) -> String {
            let digits = String(value)
            return String(repeating: "0", count: max(0, width - digits.count)) + digits
        }
        return "\(pad(year, 4))-\(pad(month, 2))-\(pad(day, 2))"
    }

    /// Orders dates chronologically.
    public static func < (lhs: LocalDate, rhs: LocalDate) -> Bool {
        (lhs.year, lhs.month, lhs.day) < (rhs.year, rhs.month, rhs.day)
    }

    /// The instants where this day starts and where the next day starts, in `calendar`'s zone.
    func bounds(in calendar: Calendar) throws(PowerInputError) -> (start: Timestamp, end: Timestamp) {
        // Noon exists on every day; the start of day handles zones whose midnight is skipped.
        let noon = DateComponents(year: year, month: month, day: day, hour: 12)
        guard let midday = calendar.date(from: noon),
            let nextMidday = calendar.date(byAdding: .day, value: 1, to: midday)
        else {
            throw PowerInputError("\(self) cannot be placed in \(calendar.timeZone.identifier)")
        }
        return (
            Timestamp(calendar.startOfDay(for: midday)), Timestamp(calendar.startOfDay(for: nextMidday))
        )
    }

    /// The local date of `instant` in `calendar`'s zone.
    init(_ instant: Timestamp, in calendar: Calendar) {
        let parts = calendar.dateComponents([.year, .month, .day], from: instant.date)
        self.year = parts.year ?? 1
        self.month = parts.month ?? 1
        self.day = parts.day ?? 1
    }

    /// A Gregorian calendar in the IANA time zone `identifier`.
    static func calendar(timeZone identifier: String) throws(PowerInputError) -> Calendar {
        guard let zone = TimeZone(identifier: identifier) else {
            throw PowerInputError("timeZone: \"\(identifier.prefix(60))\" is not an IANA time zone")
        }
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = zone
        return calendar
    }

    static func daysInMonth(year: Int, month: Int) -> Int {
        switch month {
        case 2: (year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)) ? 29 : 28
        case 4, 6, 9, 11: 30
        default: 31
        }
    }
}

/// One 15-minute block of demand: the largest average kW a demand charge looks at.
public struct DemandPeak: Sendable, Hashable, Codable {
    /// The block's average demand, kW (the block's kWh × 4).
    public var kW: Decimal
    /// When the block began.
    public var start: Timestamp
    /// When the block ended (start + 15 minutes).
    public var end: Timestamp

    /// Creates a peak.
    public init(kW: Decimal, start: Timestamp, end: Timestamp) {
        self.kW = kW
        self.start = start
        self.end = end
    }
}

/// 15-minute demand from interval data: 15-minute intervals as they are, shorter ones rolled up.
///
/// Blocks are aligned to quarter hours (UTC, and so local in every zone whose offset is a
/// multiple of 15 minutes). A block counts only when its intervals cover all 900 s.
struct FifteenMinuteDemand {
    /// Complete blocks, sorted by start.
    var blocks: [(start: Timestamp, kW: Decimal)]
    /// Blocks with some of their intervals missing, left out of `blocks`.
    var incompleteBlocks: Int

    /// Rolls `readings` (one length, sorted, no overlaps) into blocks; `nil` when the length
    /// does not divide 900 s (hourly data has no 15-minute demand).
    init?(_ readings: [IntervalReading]) throws(PowerInputError) {
        guard let seconds = readings.first?.seconds, 900 % seconds == 0 else { return nil }
        var energy: [Int64: (kWh: Decimal, seconds: Int)] = [:]
        for reading in readings {
            let offset = ((reading.start.milliseconds % 900_000) + 900_000) % 900_000
            guard offset + Int64(reading.seconds) * 1000 <= 900_000 else {
                throw PowerInputError(
                    "interval at \(reading.start) (\(reading.seconds) s) crosses a quarter hour, so 15-minute demand cannot be formed"
                )
            }
            let key = reading.start.milliseconds - offset
            let sum = energy[key, default: (0, 0)]
            energy[key] = (sum.kWh + BillingMath.decimal(reading.kWh), sum.seconds + reading.seconds)
        }
        let complete = energy.filter { $0.value.seconds == 900 }
        blocks = complete.keys.sorted().map { (Timestamp(milliseconds: $0), complete[$0]!.kWh * 4) }
        incompleteBlocks = energy.count - complete.count
    }

    /// The largest block (the earliest of equal ones) among those `including` accepts.
    func peak(including: (Timestamp) -> Bool = { _ in true }) -> DemandPeak? {
        var best: (start: Timestamp, kW: Decimal)?
        for block in blocks where including(block.start) {
            if best == nil || block.kW > best!.kW { best = block }
        }
        return best.map { DemandPeak(kW: $0.kW, start: $0.start, end: $0.start.adding(seconds: 900)) }
    }
}
