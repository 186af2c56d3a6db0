public import BackchannelProtocol
import Foundation

/// A request to export one device's interval data for a period, as CSV or self-describing XML.
///
/// JSON input for the CLI:
/// `{"deviceID":"meter-7","from":"2026-11-27T00:00:00Z","to":"2026-11-28T00:00:00Z",
///   "readings":[{"start":"2026-11-27T00:00:00Z","seconds":900,"kWh":1.25,"kvarh":0.5}]}`
///
/// The period is half-open: a reading is exported when `from ≤ start < to`. Readings are
/// validated (``IntervalReading/validate()``), sorted by start, and must not overlap.
public struct IntervalExport: Sendable, Hashable, Codable {
    /// The device the intervals belong to (written into the XML; not into the CSV).
    public var deviceID: String
    /// The start of the period, inclusive.
    public var from: Timestamp
    /// The end of the period, exclusive.
    public var to: Timestamp
    /// The interval readings, in any order; those outside the period are left out.
    public var readings: [IntervalReading]

    /// Creates an export request.
    public init(deviceID: String, from: Timestamp, to: Timestamp, readings: [IntervalReading]) {
        self.deviceID = deviceID
        self.from = from
        self.to = to
        self.readings = readings
    }

    /// The CSV header line's columns.
    public static let csvColumns = ["start", "end", "seconds", "kWh", "kvarh"]

    /// The readings in the period as RFC 4180 CSV with CRLF line ends.
    ///
    /// Columns `start,end,seconds,kWh,kvarh`; times are RFC 3339 UTC, energies are plain
    /// decimals (the shortest text that reads back as the same `Double`, never an exponent),
    /// and `kvarh` is empty when the meter does not register reactive energy. A period without
    /// readings gives the header line alone.
    public func csv() throws(PowerInputError) -> String {
        let selected = try Self.select(readings, from: from, to: to)
        var text = Self.csvColumns.joined(separator: ",") + "\r\n"
        for reading in selected {
            let fields = [
                reading.start.description, reading.end.description, String(reading.seconds),
                Self.plainDecimal(reading.kWh), reading.kvarh.map(Self.plainDecimal) ?? "",
            ]
            text += fields.joined(separator: ",") + "\r\n"
        }
        return text
    }

    /// The readings in the period as a self-describing XML document.
    ///
    /// Each `<interval>` names what it holds, with the unit in an attribute:
    /// ```xml
    /// <intervalData device="meter-7" from="…" to="…" count="1">
    ///   <interval>
    ///     <start>2026-11-27T00:00:00.000Z</start>
    ///     <end>2026-11-27T00:15:00.000Z</end>
    ///     <length unit="s">900</length>
    ///     <activeEnergy unit="kWh">1.25</activeEnergy>
    ///     <averageActivePower unit="kW">5</averageActivePower>
    ///     <reactiveEnergy unit="kvarh">0.5</reactiveEnergy>
    ///     <averageReactivePower unit="kvar">2</averageReactivePower>
    ///   </interval>
    /// </intervalData>
    /// ```
    /// The reactive elements are left out of an interval without `kvarh`.
    public func xml() throws(PowerInputError) -> String {
        let selected = try Self.select(readings, from: from, to: to)
        let device = try XMLEscaping.escape(deviceID, field: "deviceID")
        var lines = [
            #"<?xml version="1.0" encoding="UTF-8"?>"#,
            #"<intervalData device="\#(device)" from="\#(from)" to="\#(to)" count="\#(selected.count)">"#,
        ]
        for reading in selected {
            lines.append("  <interval>")
            lines.append("    <start>\(reading.start)</start>")
            lines.append("    <end>\(reading.end)</end>")
            lines.append(#"    <length unit="s">\#(reading.seconds)</length>"#)
            lines.append(#"    <activeEnergy unit="kWh">\#(Self.plainDecimal(reading.kWh))</activeEnergy>"#)
            lines.append(#"    <averageActivePower unit="kW">\#(Self.plainDecimal(reading.kW))</averageActivePower>"#)
            if let kvarh = reading.kvarh, let kvar = reading.kvar {
                lines.append(#"    <reactiveEnergy unit="kvarh">\#(Self.plainDecimal(kvarh))</reactiveEnergy>"#)
                lines.append(
                    #"    <averageReactivePower unit="kvar">\#(Self.plainDecimal(kvar))</averageReactivePower>"#)
            }
            lines.append("  </interval>")
        }
        lines.append("</intervalData>")
        return lines.joined(separator: "\n") + "\n"
    }

    /// Validates readings and returns those with `from ≤ start < to`, sorted by start.
    ///
    /// Throws when `from` is not before `to`, when a reading fails
    /// ``IntervalReading/validate()``, or when two readings (in the period) overlap.
    public static func select(
        _ readings: [IntervalReading], from: Timestamp, to: Timestamp
    ) throws(PowerInputError) -> [IntervalReading] {
        guard from < to else { throw PowerInputError("period: from \(from) must be before to \(to)") }
        var selected: [IntervalReading] = []
        for reading in readings where reading.start >= from && reading.start < to {
            try reading.validate()
            selected.append(reading)
        }
        selected.sort { $0.start < $1.start }
        for (earlier, later) in zip(selected, selected.dropFirst()) where later.start < earlier.end {
            throw PowerInputError(
                "interval at \(later.start) overlaps the interval at \(earlier.start), which ends at \(earlier.end)")
        }
        return selected
    }

    /// A finite `Double` as a plain decimal: the shortest round-tripping digits, no exponent.
    ///
    /// `1.0` is written `1`, `1e-05` is written `0.00001`.
    public static func plainDecimal(_ value: Double) -> String {
        let decimal = Decimal(string: "\(value)", locale: Locale(identifier: "en_US_POSIX")) ?? 0
        return decimal.description
    }
}

/// Escaping text for XML 1.0 element content and attribute values.
enum XMLEscaping {
    /// `text` with `&`, `<`, `>`, `"` and `'` escaped; throws when it holds a character XML 1.0
    /// cannot carry (control characters other than tab, line feed and carriage return).
    static func escape(_ text: String, field: String) throws(PowerInputError) -> String {
        var result = ""
        result.reserveCapacity(text.utf8.count)
        for scalar in text.unicodeScalars {
            switch scalar {
            case "&": result += "&amp;"
            case "<": result += "&lt;"
            case ">": result += "&gt;"
            case "\"": result += "&quot;"
            case "'": result += "&apos;"
            case "\t", "\n", "\r": result.unicodeScalars.append(scalar)
            default:
                guard scalar.value >= 0x20, scalar.value != 0xFFFE, scalar.value != 0xFFFF else {
                    throw PowerInputError(
                        "\(field): character U+\(String(scalar.value, radix: 16, uppercase: true)) cannot be written in XML"
                    )
                }
                result.unicodeScalars.append(scalar)
            }
        }
        return result
    }
}
