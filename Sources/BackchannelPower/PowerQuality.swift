public import BackchannelProtocol
import Foundation

/// Which way an RMS event departs from nominal, as the detector reports it.
///
/// An interruption is the most severe low-voltage event: when the voltage falls below the
/// interruption threshold during a dip, the whole dip is reported once, as an interruption.
public enum PQEventKind: String, Sendable, Hashable, Codable, CaseIterable {
    /// The voltage fell below the dip threshold (and never below the interruption threshold).
    case dip
    /// The voltage rose above the swell threshold.
    case swell
    /// The voltage fell below the interruption threshold at some point in a dip.
    case interruption
}

/// Event thresholds in percent of the nominal (declared) voltage.
///
/// Defaults: dip 90 %, swell 110 %, interruption 10 % (IEEE 1159's 0.1 pu; IEC 61000-4-30
/// commonly uses 5 %), hysteresis 2 %. A threshold in volts is `nominal × percent ÷ 100`,
/// computed in `Double`; a value equal to that number is *on* the threshold.
public struct PQThresholds: Sendable, Hashable, Codable {
    /// A dip starts when U < this percentage of nominal.
    public var dipPercent: Double
    /// A swell starts when U > this percentage of nominal.
    public var swellPercent: Double
    /// An interruption starts when U < this percentage of nominal.
    public var interruptionPercent: Double
    /// How far U must come back past a threshold to end an event, in percent of nominal.
    public var hysteresisPercent: Double

    /// Creates thresholds; the defaults are dip 90 %, swell 110 %, interruption 10 %,
    /// hysteresis 2 %.
    public init(
        dipPercent: Double = 90, swellPercent: Double = 110, interruptionPercent: Double = 10,
        hysteresisPercent: Double = 2
    ) {
        self.dipPercent = dipPercent
        self.swellPercent = swellPercent
        self.interruptionPercent = interruptionPercent
        self.hysteresisPercent = hysteresisPercent
    }

    /// Checks `0 < interruption`, `interruption + hysteresis ≤ dip`, `dip + hysteresis ≤ 100`,
    /// `100 ≤ swell − hysteresis`, and `0 ≤ hysteresis`, all finite.
    public func validate() throws(PowerInputError) {
        let fields = [
            ("dipPercent", dipPercent), ("swellPercent", swellPercent),
            ("interruptionPercent", interruptionPercent), ("hysteresisPercent", hysteresisPercent),
        ]
        for (name, value) in fields where !value.isFinite {
            throw PowerInputError("thresholds.\(name) is not a finite number")
        }
        guard hysteresisPercent >= 0 else {
            throw PowerInputError("thresholds.hysteresisPercent must be ≥ 0")
        }
        guard interruptionPercent > 0 else {
            throw PowerInputError("thresholds.interruptionPercent must be > 0")
        }
        guard interruptionPercent + hysteresisPercent <= dipPercent else {
            throw PowerInputError(
                "thresholds: interruptionPercent + hysteresisPercent must be ≤ dipPercent")
        }
        guard dipPercent + hysteresisPercent <= 100 else {
            throw PowerInputError("thresholds: dipPercent + hysteresisPercent must be ≤ 100")
        }
        guard swellPercent - hysteresisPercent >= 100 else {
            throw PowerInputError("thresholds: swellPercent − hysteresisPercent must be ≥ 100")
        }
    }
}

/// A series of half-cycle RMS voltages, Urms(1/2), as IEC 61000-4-30 defines them.
///
/// Values are either evenly spaced one half cycle apart from `start` (`offsets` is `nil`:
/// 10 ms at 50 Hz, 1/120 s at 60 Hz), or each has its own time in `offsets`, seconds after
/// `start`, strictly increasing.
public struct RMSSeries: Sendable, Hashable, Codable {
    /// The nominal (declared) voltage, V.
    public var nominalVolts: Double
    /// The system frequency: 50 or 60 Hz.
    public var frequencyHz: Int
    /// The time of offset 0 (the first value, when evenly spaced).
    public var start: Timestamp
    /// The Urms(1/2) values, V.
    public var vrms: [Double]
    /// Each value's time in seconds after `start`, or `nil` for values one half cycle apart.
    public var offsets: [Double]?

    /// Creates a series.
    public init(
        nominalVolts: Double, frequencyHz: Int, start: Timestamp, vrms: [Double],
        offsets: [Double]? = nil
    ) {
        self.nominalVolts = nominalVolts
        self.frequencyHz = frequencyHz
        self.start = start
        self.vrms = vrms
        self.offsets = offsets
    }

    /// Parses a CSV series with a time column, `t` (seconds after `start`) or `time`
    /// (RFC 3339), and a voltage column, `vrms` or `v`.
    ///
    /// With `t`, `start` is required. With `time`, offsets are measured from `start` when given,
    /// else from the first row's time, and no time may precede `start`. Times must strictly
    /// increase. Every error names the line.
    public init(csv text: String, nominalVolts: Double, frequencyHz: Int, start: Timestamp? = nil)
        throws(PowerInputError)
    {
        let table = try CSVTable(parsing: text)
        let vColumn = try table.requiredColumn("vrms", "v")
        let tColumn = table.column("t")
        let timeColumn = table.column("time")
        if tColumn != nil, timeColumn != nil {
            throw PowerInputError("give a t column or a time column, not both")
        }
        guard tColumn != nil || timeColumn != nil else {
            throw PowerInputError(
                "no column named t or time; the header is \(table.header.joined(separator: ","))")
        }
        if tColumn != nil, start == nil {
            throw PowerInputError("column t holds seconds from a start time, and no start time was given")
        }
        var origin = start
        var values: [Double] = []
        var offsets: [Double] = []
        for (line, fields) in table.rows {
            let volts = try CSVTable.number(fields[vColumn], line: line, column: table.header[vColumn])
            guard volts >= 0 else {
                throw PowerInputError("line \(line), \(table.header[vColumn]): must be ≥ 0")
            }
            let offset: Double
            if let tColumn {
                offset = try CSVTable.number(fields[tColumn], line: line, column: table.header[tColumn])
                guard offset >= 0 else {
                    throw PowerInputError("line \(line), \(table.header[tColumn]): must be ≥ 0")
                }
            } else if let timeColumn {
                guard let time = Timestamp(rfc3339: fields[timeColumn]) else {
                    throw PowerInputError(
                        "line \(line), \(table.header[timeColumn]): \"\(fields[timeColumn].prefix(40))\" is not an RFC 3339 time"
                    )
                }
                let base = origin ?? time
                origin = base
                offset = time.seconds(since: base)
                guard offset >= 0 else {
                    throw PowerInputError(
                        "line \(line), \(table.header[timeColumn]): \(time) is before the start \(base)")
                }
            } else {
                preconditionFailure("a time column was checked above")
            }
            if let previous = offsets.last, offset <= previous {
                throw PowerInputError("line \(line): time does not increase from the line before")
            }
            values.append(volts)
            offsets.append(offset)
        }
        guard let origin else { throw PowerInputError("the series has no data rows") }
        self.init(
            nominalVolts: nominalVolts, frequencyHz: frequencyHz, start: origin, vrms: values,
            offsets: offsets)
        try validate()
    }

    /// Checks nominal > 0, frequency 50 or 60, at least one value, every value finite and
    /// ≥ 0, and offsets (when given) one per value, finite, ≥ 0 and strictly increasing.
    public func validate() throws(PowerInputError) {
        guard nominalVolts.isFinite, nominalVolts > 0 else {
            throw PowerInputError("nominalVolts must be a finite number > 0")
        }
        guard frequencyHz == 50 || frequencyHz == 60 else {
            throw PowerInputError("frequencyHz must be 50 or 60, not \(frequencyHz)")
        }
        guard !vrms.isEmpty else { throw PowerInputError("vrms: the series has no values") }
        for (index, value) in vrms.enumerated() where !(value.isFinite && value >= 0) {
            throw PowerInputError("vrms[\(index)] must be a finite number ≥ 0")
        }
        guard let offsets else { return }
        guard offsets.count == vrms.count else {
            throw PowerInputError("offsets has \(offsets.count) values, vrms has \(vrms.count)")
        }
        var previous = -Double.infinity
        for (index, offset) in offsets.enumerated() {
            guard offset.isFinite, offset >= 0 else {
                throw PowerInputError("offsets[\(index)] must be finite and ≥ 0")
            }
            guard offset > previous else { throw PowerInputError("offsets[\(index)] does not increase") }
            previous = offset
        }
    }

    /// Seconds from value `from` to value `to`. Evenly spaced: `(to − from) ÷ (2 × frequency)`.
    func seconds(from: Int, to: Int) -> Double {
        if let offsets { return offsets[to] - offsets[from] }
        return Double(to - from) / Double(2 * frequencyHz)
    }

    /// The time of value `index`, rounded to the millisecond.
    func time(at index: Int) -> Timestamp {
        start.adding(seconds: offsets?[index] ?? Double(index) / Double(2 * frequencyHz))
    }
}

/// One detected RMS event: a dip, swell or interruption, with its IEEE 1159 class.
public struct PQEvent: Sendable, Hashable, Codable {
    /// Dip, swell, or interruption (a dip that went below the interruption threshold).
    public var kind: PQEventKind
    /// The time of the first value past the start threshold.
    public var start: Timestamp
    /// The time of the first value that met the end condition; `nil` while ongoing.
    public var end: Timestamp?
    /// True when the series ended before the event did: `durationSeconds` is then the time
    /// from `start` to the last value, a lower bound.
    public var ongoing: Bool
    /// True when the first value of the series was already past the threshold: the event may
    /// have begun earlier.
    public var startsAtSeriesStart: Bool
    /// `end − start` in seconds (to the last value when ongoing).
    public var durationSeconds: Double
    /// Minimum Urms for dips and interruptions, maximum for swells, V.
    public var residualVolts: Double
    /// `residualVolts × 100 ÷ nominal`.
    public var residualPercent: Double
    /// When the residual value occurred (its first occurrence).
    public var residualTime: Timestamp
    /// For interruptions, the total time the voltage spent below the interruption threshold
    /// (until it reached interruption + hysteresis), s; `nil` for dips and swells.
    public var interruptionSeconds: Double?
    /// The event's IEEE 1159-2019 category, from its residual (pu) and duration.
    public var classification: PQClassification

    /// Creates an event record.
    public init(
        kind: PQEventKind, start: Timestamp, end: Timestamp?, ongoing: Bool, startsAtSeriesStart: Bool,
        durationSeconds: Double, residualVolts: Double, residualPercent: Double,
        residualTime: Timestamp,
        interruptionSeconds: Double?, classification: PQClassification
    ) {
        self.kind = kind
        self.start = start
        self.end = end
        self.ongoing = ongoing
        self.startsAtSeriesStart = startsAtSeriesStart
        self.durationSeconds = durationSeconds
        self.residualVolts = residualVolts
        self.residualPercent = residualPercent
        self.residualTime = residualTime
        self.interruptionSeconds = interruptionSeconds
        self.classification = classification
    }
}

/// What the detector found in one series.
public struct PQDetectionResult: Sendable, Hashable, Codable {
    /// The series' nominal voltage, V.
    public var nominalVolts: Double
    /// The series' frequency, Hz.
    public var frequencyHz: Int
    /// The thresholds used.
    public var thresholds: PQThresholds
    /// How many values were examined.
    public var sampleCount: Int
    /// The time of the first value.
    public var firstSample: Timestamp
    /// The time of the last value.
    public var lastSample: Timestamp
    /// The events in order of start (a swell can start on the value that ends a dip).
    public var events: [PQEvent]
}

/// Detects dips, swells and interruptions in a half-cycle RMS series (IEC 61000-4-30 rules).
///
/// - A dip starts on the first value U < dip threshold and ends on the first later value
///   U ≥ dip threshold + hysteresis. Values between the two thresholds continue the dip.
/// - A swell starts on U > swell threshold and ends on U ≤ swell threshold − hysteresis.
/// - An interruption starts on U < interruption threshold and ends on U ≥ interruption
///   threshold + hysteresis. Since every such value is also below the dip threshold, it
///   happens inside a dip. **Nesting: one event**. The dip is reported once, with kind
///   `interruption`, the dip's start and end (the envelope), the minimum voltage as residual,
///   and `interruptionSeconds` for the time spent in the interruption state (summed when the
///   voltage goes below the interruption threshold more than once).
/// - Duration = time of the ending value − time of the starting value. Evenly spaced values
///   give a whole number of half cycles, `n ÷ (2 × frequency)` seconds.
/// - Residual = minimum U (dips, interruptions) or maximum U (swells), in V and % of nominal.
///   The ending value is not part of the residual.
/// - An event still open at the last value is reported with `ongoing: true`, `end: nil`, and
///   a duration up to the last value.
///
/// Steady deviations come out of the same rules: a 0.85 pu dip lasting more than a minute is
/// classified as an IEEE 1159 undervoltage, a 1.15 pu swell as an overvoltage.
public struct PQEventDetector: Sendable, Hashable {
    /// The thresholds in force.
    public var thresholds: PQThresholds

    /// Creates a detector with the given thresholds (defaults: 90 / 110 / 10 / 2 %).
    public init(thresholds: PQThresholds = PQThresholds()) {
        self.thresholds = thresholds
    }

    /// Finds every event in `series`, after validating the series and the thresholds.
    public func detect(_ series: RMSSeries) throws(PowerInputError) -> PQDetectionResult {
        try thresholds.validate()
        try series.validate()
        let nominal = series.nominalVolts
        let levels = Levels(thresholds: thresholds, nominal: nominal)
        var events: [PQEvent] = []
        var low: OpenEvent?
        var high: OpenEvent?
        for (index, volts) in series.vrms.enumerated() {
            if var event = low {
                if let since = event.interruptionStart, volts >= levels.interruptionEnd {
                    event.interruptionSeconds += series.seconds(from: since, to: index)
                    event.interruptionStart = nil
                }
                if volts >= levels.dipEnd {
                    events.append(try finish(event, endIndex: index, in: series, ongoing: false))
                    low = nil
                } else {
                    event.note(volts, at: index, lower: true)
                    if event.interruptionStart == nil, volts < levels.interruption {
                        event.interruptionStart = index
                        event.interrupted = true
                    }
                    low = event
                }
            } else if volts < levels.dip {
                var event = OpenEvent(kind: .dip, startIndex: index, extreme: volts)
                if volts < levels.interruption {
                    event.interruptionStart = index
                    event.interrupted = true
                }
                low = event
            }
            if var event = high {
                if volts <= levels.swellEnd {
                    events.append(try finish(event, endIndex: index, in: series, ongoing: false))
                    high = nil
                } else {
                    event.note(volts, at: index, lower: false)
                    high = event
                }
            } else if volts > levels.swell {
                high = OpenEvent(kind: .swell, startIndex: index, extreme: volts)
            }
        }
        let last = series.vrms.count - 1
        for case var event? in [low, high] {
            if let since = event.interruptionStart {
                event.interruptionSeconds += series.seconds(from: since, to: last)
            }
            events.append(try finish(event, endIndex: last, in: series, ongoing: true))
        }
        events.sort { $0.start < $1.start }
        return PQDetectionResult(
            nominalVolts: nominal, frequencyHz: series.frequencyHz, thresholds: thresholds,
            sampleCount: series.vrms.count, firstSample: series.time(at: 0),
            lastSample: series.time(at: last),
            events: events)
    }

    private func finish(_ event: OpenEvent, endIndex: Int, in series: RMSSeries, ongoing: Bool)
        throws(PowerInputError) -> PQEvent
    {
        let duration = series.seconds(from: event.startIndex, to: endIndex)
        let classification = try PQClassification(
            magnitudePerUnit: event.extreme / series.nominalVolts, durationSeconds: duration,
            frequencyHz: series.frequencyHz)
        return PQEvent(
            kind: event.interrupted ? .interruption : event.kind,
            start: series.time(at: event.startIndex),
            end: ongoing ? nil : series.time(at: endIndex),
            ongoing: ongoing,
            startsAtSeriesStart: event.startIndex == 0,
            durationSeconds: duration,
            residualVolts: event.extreme,
            residualPercent: event.extreme * 100 / series.nominalVolts,
            residualTime: series.time(at: event.extremeIndex),
            interruptionSeconds: event.interrupted ? event.interruptionSeconds : nil,
            classification: classification)
    }
}

/// Thresholds converted to volts.
private struct Levels {
    var dip: Double
    var dipEnd: Double
    var swell: Double
    var swellEnd: Double
    var interruption: Double
    var interruptionEnd: Double

    init(thresholds: PQThresholds, nominal: Double) {
        let hysteresis = thresholds.hysteresisPercent
        dip = nominal * thresholds.dipPercent / 100
        dipEnd = nominal * (thresholds.dipPercent + hysteresis) / 100
        swell = nominal * thresholds.swellPercent / 100
        swellEnd = nominal * (thresholds.swellPercent - hysteresis) / 100
        interruption = nominal * thresholds.interruptionPercent / 100
        interruptionEnd = nominal * (thresholds.interruptionPercent + hysteresis) / 100
    }
}

/// An event the detector is inside of.
private struct OpenEvent {
    var kind: PQEventKind
    var startIndex: Int
    var extreme: Double
    var extremeIndex: Int
    var interrupted = false
    var interruptionStart: Int?
    var interruptionSeconds = 0.0

    init(kind: PQEventKind, startIndex: Int, extreme: Double) {
        self.kind = kind
        self.startIndex = startIndex
        self.extreme = extreme
        self.extremeIndex = startIndex
    }

    mutating func note(_ volts: Double, at index: Int, lower: Bool) {
        if lower ? volts < extreme : volts > extreme {
            extreme = volts
            extremeIndex = index
        }
    }
}
