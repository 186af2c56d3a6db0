public import BackchannelProtocol
public import Foundation

/// Which output of a 3-wire (Form C) KYZ relay is closed to the common K terminal.
public enum KYZContact: String, Sendable, Hashable, Codable, CaseIterable {
    /// K–Y closed.
    case y = "Y"
    /// K–Z closed.
    case z = "Z"
}

/// A KYZ "transport box": counts pulses from a plain meter's KYZ output and turns them into
/// interval data, a register and billing figures. A pure value: feed it observations with
/// their times; it does no I/O and reads no clock.
///
/// **Ke** is the energy per pulse in kWh (a meter label often gives Wh per pulse: Ke = Wh ÷ 1000).
/// The 3-wire **Form C** convention is used: the relay toggles between K–Y and K–Z, and *each
/// transition* (K→Y or K→Z) is one pulse worth Ke. A 2-wire Form A input that counts only the
/// K–Y closures sees every second transition, so use Ke × 2 for it.
///
/// Three ways to feed it — one per counter; mixing them is refused because it would count
/// the same energy twice:
/// - ``addPulses(_:at:)``: a number of pulses seen at an instant (or 0 as a heartbeat).
///   They belong to the interval containing the instant: `start ≤ t < end`.
/// - ``addContact(_:at:)``: the Form C contact state; each change Y↔Z is one pulse (the
///   first state is the baseline; a repeated state is no pulse). Same interval rule.
/// - ``addCounterReading(_:at:)``: the value of a hardware counter of ``counterBits`` bits.
///   The first reading is the baseline; each later one adds `(count − previous) mod 2^bits`
///   pulses, so one rollover between readings is handled (read at least once per 2^bits
///   pulses; a counter reset looks like a rollover). Those pulses happened *before* the
///   reading, so they belong to the interval with `start < t ≤ end`: a reading exactly at
///   00:15:00 closes the 00:00–00:15 interval. Read the counter at interval ends for exact
///   intervals; pulses between readings that straddle a boundary all go to the later interval.
///
/// Times must not go backwards. The observed span runs from the interval holding the first
/// observation to the interval holding the last; intervals inside it without pulses are zero
/// (the box was watching and saw none), intervals outside it are not produced. The first
/// interval is partial when counting began inside it. (A counter's baseline reading opens the
/// interval that *starts* at or holds it: a baseline at 00:15:00 opens 00:15–00:30.)
/// Energies are exact `Decimal` (pulses × Ke) until converted to `Double` for
/// ``IntervalReading``.
public struct KYZCounter: Sendable, Hashable, Codable {
    /// Energy per pulse (per Form C transition), kWh; > 0.
    public let ke: Decimal
    /// Interval length in seconds; divides a day (900 for 15-minute data).
    public let intervalSeconds: Int
    /// The register reading when counting began, kWh.
    public let initialRegisterKWh: Decimal
    /// The width of the hardware counter for ``addCounterReading(_:at:)``, 1…64 bits.
    public let counterBits: Int?
    /// Pulses counted so far.
    public private(set) var totalPulses: Int64 = 0
    /// Pulses per interval, keyed by interval index (epoch seconds ÷ ``intervalSeconds``).
    public private(set) var pulsesByInterval: [Int64: Int64] = [:]
    /// The first observation's time.
    public private(set) var firstTime: Timestamp?
    /// The last observation's time.
    public private(set) var lastTime: Timestamp?
    private var source: Source?
    private var lastContact: KYZContact?
    private var lastCount: UInt64?
    private var firstIndex: Int64?
    private var lastIndex: Int64?

    private enum Source: String, Sendable, Hashable, Codable {
        case pulses, contacts, counter
    }

    /// Creates a counter. Throws when Ke is not > 0, the interval does not divide a day
    /// (60…86 400 s), the initial register is negative, or `counterBits` is outside 1…64.
    public init(
        ke: Decimal, intervalSeconds: Int = 900, initialRegisterKWh: Decimal = 0, counterBits: Int? = nil
    ) throws(PowerInputError) {
        try Self.check(
            ke: ke, intervalSeconds: intervalSeconds, initialRegisterKWh: initialRegisterKWh, counterBits: counterBits)
        self.ke = ke
        self.intervalSeconds = intervalSeconds
        self.initialRegisterKWh = initialRegisterKWh
        self.counterBits = counterBits
    }

    private enum CodingKeys: String, CodingKey {
        case ke, intervalSeconds, initialRegisterKWh, counterBits, totalPulses, pulsesByInterval, firstTime, lastTime
        case source, lastContact, lastCount, firstIndex, lastIndex
    }

    /// Decodes a saved counter, checking its settings as ``init(ke:intervalSeconds:initialRegisterKWh:counterBits:)``
    /// does.
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        ke = try c.decode(Decimal.self, forKey: .ke)
        intervalSeconds = try c.decode(Int.self, forKey: .intervalSeconds)
        initialRegisterKWh = try c.decode(Decimal.self, forKey: .initialRegisterKWh)
        counterBits = try c.decodeIfPresent(Int.self, forKey: .counterBits)
        try Self.check(
            ke: ke, intervalSeconds: intervalSeconds, initialRegisterKWh: initialRegisterKWh, counterBits: counterBits)
        totalPulses = try c.decode(Int64.self, forKey: .totalPulses)
        pulsesByInterval = try c.decode([Int64: Int64].self, forKey: .pulsesByInterval)
        firstTime = try c.decodeIfPresent(Timestamp.self, forKey: .firstTime)
        lastTime = try c.decodeIfPresent(Timestamp.self, forKey: .lastTime)
        source = try c.decodeIfPresent(Source.self, forKey: .source)
        lastContact = try c.decodeIfPresent(KYZContact.self, forKey: .lastContact)
        lastCount = try c.decodeIfPresent(UInt64.self, forKey: .lastCount)
        firstIndex = try c.decodeIfPresent(Int64.self, forKey: .firstIndex)
        lastIndex = try c.decodeIfPresent(Int64.self, forKey: .lastIndex)
        guard totalPulses >= 0, pulsesByInterval.values.allSatisfy({ $0 >= 0 }) else {
            throw PowerInputError("saved KYZ counter: pulse counts must be ≥ 0")
        }
    }

    private static func check(
        ke: Decimal, intervalSeconds: Int, initialRegisterKWh: Decimal, counterBits: Int?
    ) throws(PowerInputError) {
        guard ke > 0, ke.isFinite else { throw PowerInputError("ke: \(ke) kWh per pulse must be > 0") }
        guard (60...86_400).contains(intervalSeconds), 86_400 % intervalSeconds == 0 else {
            throw PowerInputError("intervalSeconds: \(intervalSeconds) must be 60-86400 and divide a day")
        }
        guard initialRegisterKWh >= 0 else {
            throw PowerInputError("initialRegisterKWh: \(initialRegisterKWh) must be ≥ 0")
        }
        if let counterBits, !(1...64).contains(counterBits) {
            throw PowerInputError("counterBits: \(counterBits) must be 1-64")
        }
    }

    /// Adds `count` (≥ 0) pulses seen at `time`, in the interval `start ≤ time < end`.
    public mutating func addPulses(_ count: Int64, at time: Timestamp) throws(PowerInputError) {
        guard count >= 0 else { throw PowerInputError("pulses at \(time): count \(count) is negative") }
        try observe(.pulses, at: time)
        record(count, index: index(containing: time))
    }

    /// Adds a Form C contact state seen at `time`; returns whether it was a transition (a pulse).
    @discardableResult
    public mutating func addContact(_ contact: KYZContact, at time: Timestamp) throws(PowerInputError) -> Bool {
        try observe(.contacts, at: time)
        defer { lastContact = contact }
        let index = index(containing: time)
        guard let previous = lastContact, previous != contact else {
            record(0, index: index)
            return false
        }
        record(1, index: index)
        return true
    }

    /// Adds a hardware counter value read at `time`; returns the pulses it added (0 for the
    /// baseline), attributed to the interval `start < time ≤ end`.
    @discardableResult
    public mutating func addCounterReading(_ count: UInt64, at time: Timestamp) throws(PowerInputError) -> Int64 {
        guard let counterBits else {
            throw PowerInputError("counter reading at \(time): the counter was created without counterBits")
        }
        let mask: UInt64 = counterBits == 64 ? .max : (1 << UInt64(counterBits)) - 1
        guard count <= mask else {
            throw PowerInputError("counter reading at \(time): \(count) does not fit \(counterBits) bits")
        }
        try observe(.counter, at: time)
        defer { lastCount = count }
        guard let previous = lastCount else {
            record(0, index: index(containing: time))
            return 0
        }
        let index = index(ending: time)
        let delta = (count &- previous) & mask
        guard delta <= UInt64(Int64.max - totalPulses) else {
            throw PowerInputError("counter reading at \(time): \(delta) pulses overflow the total")
        }
        record(Int64(delta), index: index)
        return Int64(delta)
    }

    /// The register now: initial register + all pulses × Ke, kWh.
    public var registerKWh: Decimal { initialRegisterKWh + Decimal(totalPulses) * ke }

    /// The complete intervals of the observed span: from the interval of the first observation
    /// through that of the last, leaving out any interval that ends after `now`.
    public func intervals(through now: Timestamp) -> [IntervalReading] {
        guard let firstIndex, let lastIndex else { return [] }
        var readings: [IntervalReading] = []
        for index in firstIndex...lastIndex {
            let start = Timestamp(milliseconds: index * Int64(intervalSeconds) * 1000)
            let reading = IntervalReading(
                start: start, seconds: intervalSeconds, kWh: kWh(pulsesByInterval[index] ?? 0))
            guard reading.end <= now else { break }
            readings.append(reading)
        }
        return readings
    }

    /// Billing figures for `[from, to)`; both must lie on interval boundaries inside the
    /// observed span (the period may not reach past the data).
    public func billing(from: Timestamp, to: Timestamp) throws(PowerInputError) -> KYZBilling {
        let length = Int64(intervalSeconds) * 1000
        guard from < to else { throw PowerInputError("billing: from \(from) must be before to \(to)") }
        guard from.milliseconds % length == 0, to.milliseconds % length == 0 else {
            throw PowerInputError("billing: from and to must be on \(intervalSeconds)-second interval boundaries")
        }
        guard let firstIndex, let lastIndex, from.milliseconds / length >= firstIndex,
            to.milliseconds / length <= lastIndex + 1
        else {
            throw PowerInputError("billing: the period \(from) to \(to) reaches outside the observed pulses")
        }
        let range = (from.milliseconds / length)..<(to.milliseconds / length)
        let before = pulsesByInterval.filter { $0.key < range.lowerBound }.values.reduce(0, +)
        let during = pulsesByInterval.filter { range.contains($0.key) }
        var peak: (index: Int64, pulses: Int64) = (range.lowerBound, 0)
        for (index, pulses) in during.sorted(by: { $0.key < $1.key }) where pulses > peak.pulses {
            peak = (index, pulses)
        }
        let start = initialRegisterKWh + Decimal(before) * ke
        let period = Decimal(during.values.reduce(0, +)) * ke
        let peakKWh = Decimal(peak.pulses) * ke
        let peakKW = peakKWh * Decimal(3600) / Decimal(intervalSeconds)
        return KYZBilling(
            from: from, to: to, registerStartKWh: start, registerEndKWh: start + period, periodKWh: period,
            maxDemandKW: peakKW,
            maxDemandIntervalStart: peak.pulses > 0 ? Timestamp(milliseconds: peak.index * length) : nil)
    }

    private mutating func observe(_ kind: Source, at time: Timestamp) throws(PowerInputError) {
        if let source, source != kind {
            throw PowerInputError(
                "\(kind.rawValue) at \(time): this counter is fed with \(source.rawValue); use one input per counter")
        }
        if let lastTime, time < lastTime {
            throw PowerInputError("\(kind.rawValue) at \(time): earlier than the previous observation at \(lastTime)")
        }
        source = kind
        if firstTime == nil { firstTime = time }
        lastTime = time
    }

    private mutating func record(_ pulses: Int64, index: Int64) {
        if firstIndex == nil { firstIndex = index }
        lastIndex = max(lastIndex ?? index, index)
        totalPulses += pulses
        if pulses > 0 { pulsesByInterval[index, default: 0] += pulses }
    }

    private func kWh(_ pulses: Int64) -> Double {
        Double((Decimal(pulses) * ke).description) ?? .nan
    }

    /// The index of the interval with `start ≤ time < end`.
    private func index(containing time: Timestamp) -> Int64 {
        floorDivide(time.milliseconds, Int64(intervalSeconds) * 1000)
    }

    /// The index of the interval with `start < time ≤ end`.
    private func index(ending time: Timestamp) -> Int64 {
        floorDivide(time.milliseconds - 1, Int64(intervalSeconds) * 1000)
    }

    private func floorDivide(_ a: Int64, _ b: Int64) -> Int64 {
        let q = a / b
        return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q
    }
}

/// Billing figures from a ``KYZCounter`` for a period `[from, to)`.
///
/// JSON example: `{"from":"2026-11-01T00:00:00.000Z","to":"2026-12-01T00:00:00.000Z",
/// "registerStartKWh":1000,"registerEndKWh":1450.5,"periodKWh":450.5,"maxDemandKW":12,
/// "maxDemandIntervalStart":"2026-11-12T18:00:00.000Z"}`
public struct KYZBilling: Sendable, Hashable, Codable {
    /// The period start, inclusive.
    public var from: Timestamp
    /// The period end, exclusive.
    public var to: Timestamp
    /// The register at `from`, kWh.
    public var registerStartKWh: Decimal
    /// The register at `to`, kWh.
    public var registerEndKWh: Decimal
    /// Energy in the period (end − start register), kWh.
    public var periodKWh: Decimal
    /// The largest interval demand in the period (interval kWh × 3600 ÷ interval seconds), kW.
    public var maxDemandKW: Decimal
    /// The start of the (earliest) interval with that demand; `nil` when no pulse was counted.
    public var maxDemandIntervalStart: Timestamp?

    /// Creates billing figures.
    public init(
        from: Timestamp, to: Timestamp, registerStartKWh: Decimal, registerEndKWh: Decimal, periodKWh: Decimal,
        maxDemandKW: Decimal, maxDemandIntervalStart: Timestamp?
    ) {
        self.from = from
        self.to = to
        self.registerStartKWh = registerStartKWh
        self.registerEndKWh = registerEndKWh
        self.periodKWh = periodKWh
        self.maxDemandKW = maxDemandKW
        self.maxDemandIntervalStart = maxDemandIntervalStart
    }
}
