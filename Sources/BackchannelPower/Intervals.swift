public import BackchannelProtocol
import Foundation

/// One metered interval: the energy delivered between `start` and `start + seconds`.
///
/// Interval data is 15 minutes (900 s) by default. `kWh` is active energy, `kvarh` reactive
/// energy (absent when the meter does not register it).
public struct IntervalReading: Sendable, Hashable, Codable {
    /// When the interval began (UTC).
    public var start: Timestamp
    /// Its length in seconds (900 for 15-minute data).
    public var seconds: Int
    /// Active energy in the interval, kWh.
    public var kWh: Double
    /// Reactive energy in the interval, kvarh, if registered.
    public var kvarh: Double?

    /// Creates an interval reading.
    public init(start: Timestamp, seconds: Int = 900, kWh: Double, kvarh: Double? = nil) {
        self.start = start
        self.seconds = seconds
        self.kWh = kWh
        self.kvarh = kvarh
    }

    /// When the interval ended.
    public var end: Timestamp { start.adding(seconds: Double(seconds)) }

    /// The interval's average active demand, kW (energy ÷ hours).
    public var kW: Double { kWh * 3600 / Double(seconds) }

    /// The interval's average reactive demand, kvar, if registered.
    public var kvar: Double? { kvarh.map { $0 * 3600 / Double(seconds) } }

    /// Checks the reading: a whole number of seconds 60…86 400, finite non-negative kWh,
    /// finite kvarh.
    public func validate() throws(PowerInputError) {
        guard (60...86_400).contains(seconds) else {
            throw PowerInputError("interval at \(start): length \(seconds) s is outside 60-86400")
        }
        guard kWh.isFinite, kWh >= 0 else { throw PowerInputError("interval at \(start): kWh must be ≥ 0") }
        if let kvarh, !kvarh.isFinite { throw PowerInputError("interval at \(start): kvarh is not finite") }
    }
}

/// Whether a timestamp in interval data marks the start or the end of its interval.
///
/// Meters differ: many label an interval by its end (the 00:15 reading covers 00:00–00:15).
/// Reading one convention as the other shifts every interval by one, which moves energy
/// across tariff period boundaries and into the wrong day.
public enum IntervalTimestamp: String, Sendable, Hashable, Codable, CaseIterable {
    /// The time is the interval's start.
    case start
    /// The time is the interval's end.
    case end
}
