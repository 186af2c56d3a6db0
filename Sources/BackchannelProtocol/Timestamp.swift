public import Foundation

/// An instant in time with millisecond precision, as carried on the wire.
///
/// Timestamps are milliseconds since the Unix epoch. On the wire they are RFC 3339 strings in
/// UTC with exactly three fractional digits, for example `2026-11-27T14:35:00.123Z`. Decoding
/// accepts any RFC 3339 form: any number of fractional digits and any UTC offset.
public struct Timestamp: Sendable, Hashable, Comparable, Codable, CustomStringConvertible {
    /// Milliseconds since 1970-01-01T00:00:00Z.
    public var milliseconds: Int64

    /// Creates a timestamp from milliseconds since the Unix epoch.
    public init(milliseconds: Int64) {
        self.milliseconds = milliseconds
    }

    /// Creates a timestamp from a `Date`, truncated to the millisecond.
    public init(_ date: Date) {
        self.milliseconds = Int64((date.timeIntervalSince1970 * 1000).rounded(.down))
    }

    /// The current wall-clock time.
    public static func now() -> Timestamp { Timestamp(Date()) }

    /// This instant as a `Date`.
    public var date: Date { Date(timeIntervalSince1970: Double(milliseconds) / 1000) }

    /// Seconds since the Unix epoch, with fractional milliseconds.
    public var secondsSinceEpoch: Double { Double(milliseconds) / 1000 }

    /// Returns this instant moved by a number of seconds (which may be negative or fractional).
    public func adding(seconds: Double) -> Timestamp {
        Timestamp(milliseconds: milliseconds &+ Int64((seconds * 1000).rounded()))
    }

    /// Returns this instant moved by a duration.
    public func adding(_ duration: Duration) -> Timestamp {
        let (seconds, attoseconds) = duration.components
        return Timestamp(milliseconds: milliseconds &+ seconds &* 1000 &+ attoseconds / 1_000_000_000_000_000)
    }

    /// Seconds from `other` to `self` (positive when `self` is later).
    public func seconds(since other: Timestamp) -> Double {
        Double(milliseconds &- other.milliseconds) / 1000
    }

    public static func < (lhs: Timestamp, rhs: Timestamp) -> Bool { lhs.milliseconds < rhs.milliseconds }

    /// The RFC 3339 form used on the wire.
    public var description: String { RFC3339.format(milliseconds) }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        let text = try container.decode(String.self)
        guard let ms = RFC3339.parse(text) else {
            throw DecodingError.dataCorruptedError(in: container, debugDescription: Self.formatHint)
        }
        self.milliseconds = ms
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(RFC3339.format(milliseconds))
    }

    /// What a timestamp must look like, for error messages.
    static let formatHint = "expected an RFC 3339 timestamp such as 2026-11-27T14:35:00.123Z"

    /// Parses an RFC 3339 timestamp, returning `nil` when the text is not one.
    public init?(rfc3339 text: String) {
        guard let ms = RFC3339.parse(text) else { return nil }
        self.milliseconds = ms
    }
}

/// A small, allocation-light RFC 3339 formatter and parser for UTC millisecond timestamps.
enum RFC3339 {
    // Days-from-civil and civil-from-days, after Howard Hinnant's public-domain algorithms.
    static func daysFromCivil(year: Int64, month: Int64, day: Int64) -> Int64 {
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let mp = (month + 9) % 12
        let doy = (153 * mp + 2) / 5 + day - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        return era * 146_097 + doe - 719_468
    }

    static func civilFromDays(_ z0: Int64) -> (year: Int64, month: Int64, day: Int64) {
        let z = z0 + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365
        let y = yoe + era * 400
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let d = doy - (153 * mp + 2) / 5 + 1
        let m = mp < 10 ? mp + 3 : mp - 9
        return (m <= 2 ? y + 1 : y, m, d)
    }

    /// Formats a time, clamped to the years 0000-9999 that RFC 3339 can write.
    static func format(_ unclamped: Int64) -> String {
        let milliseconds = min(max(unclamped, representable.lowerBound), representable.upperBound)
        let msPerDay: Int64 = 86_400_000
        var days = milliseconds / msPerDay
        var rem = milliseconds % msPerDay
        if rem < 0 {
            rem += msPerDay
            days -= 1
        }
        let (y, m, d) = civilFromDays(days)
        let hour = rem / 3_600_000
        let minute = (rem / 60_000) % 60
        let second = (rem / 1000) % 60
        let milli = rem % 1000
        var bytes = [UInt8]()
        bytes.reserveCapacity(24)
        func put(_ value: Int64, width: Int) {
            var digits = [UInt8](repeating: 0x30, count: width)
            var v = value
            for i in stride(from: width - 1, through: 0, by: -1) {
                digits[i] = 0x30 + UInt8(v % 10)
                v /= 10
            }
            bytes.append(contentsOf: digits)
        }
        put(y, width: 4); bytes.append(0x2D)
        put(m, width: 2); bytes.append(0x2D)
        put(d, width: 2); bytes.append(0x54)
        put(hour, width: 2); bytes.append(0x3A)
        put(minute, width: 2); bytes.append(0x3A)
        put(second, width: 2); bytes.append(0x2E)
        put(milli, width: 3); bytes.append(0x5A)
        return String(decoding: bytes, as: UTF8.self)
    }

    static func parse(_ text: String) -> Int64? {
        let b = Array(text.utf8)
        var i = 0
        func digits(_ n: Int) -> Int64? {
            guard i + n <= b.count else { return nil }
            var v: Int64 = 0
            for _ in 0..<n {
                let c = b[i]
                guard c >= 0x30, c <= 0x39 else { return nil }
                v = v * 10 + Int64(c - 0x30)
                i += 1
            }
            return v
        }
        func expect(_ c: UInt8) -> Bool {
            guard i < b.count, b[i] == c else { return false }
            i += 1
            return true
        }
        guard let year = digits(4), expect(0x2D), let month = digits(2), expect(0x2D), let day = digits(2) else {
            return nil
        }
        guard i < b.count, b[i] == 0x54 || b[i] == 0x74 || b[i] == 0x20 else { return nil }
        i += 1
        guard let hour = digits(2), expect(0x3A), let minute = digits(2), expect(0x3A), let second = digits(2) else {
            return nil
        }
        guard (1...12).contains(month), day >= 1, day <= daysInMonth(year: year, month: month), hour < 24, minute < 60,
            second < 61
        else { return nil }
        var millis: Int64 = 0
        if i < b.count, b[i] == 0x2E {
            i += 1
            var count = 0
            while i < b.count, b[i] >= 0x30, b[i] <= 0x39 {
                if count < 3 { millis = millis * 10 + Int64(b[i] - 0x30) }
                count += 1
                i += 1
            }
            guard count > 0 else { return nil }
            if count < 3 { for _ in count..<3 { millis *= 10 } }
        }
        var offsetMinutes: Int64 = 0
        guard i < b.count else { return nil }
        if b[i] == 0x5A || b[i] == 0x7A {
            i += 1
        } else if b[i] == 0x2B || b[i] == 0x2D {
            let sign: Int64 = b[i] == 0x2D ? -1 : 1
            i += 1
            guard let oh = digits(2), expect(0x3A), let om = digits(2), oh < 24, om < 60 else { return nil }
            offsetMinutes = sign * (oh * 60 + om)
        } else {
            return nil
        }
        guard i == b.count else { return nil }
        let days = daysFromCivil(year: year, month: month, day: day)
        let secondsOfDay = hour * 3600 + minute * 60 + min(second, 59)
        let result = (days * 86400 + secondsOfDay - offsetMinutes * 60) * 1000 + millis
        // An offset can carry a time just outside the four-digit years RFC 3339 can write.
        guard representable.contains(result) else { return nil }
        return result
    }

    /// Milliseconds of 0000-01-01T00:00:00.000Z through 9999-12-31T23:59:59.999Z.
    static let representable: ClosedRange<Int64> = -62_167_219_200_000...253_402_300_799_999

    static func daysInMonth(year: Int64, month: Int64) -> Int64 {
        switch month {
        case 2: (year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)) ? 29 : 28
        case 4, 6, 9, 11: 30
        default: 31
        }
    }
}
