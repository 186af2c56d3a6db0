public import BackchannelProtocol
import Foundation

/// What kind of tampering a flag suspects.
public enum TamperKind: String, Sendable, Hashable, Codable, CaseIterable {
    /// An energy register went down without a billing reset.
    case registerBackwards = "register-backwards"
    /// A master meter and its sub-meters disagree beyond tolerance.
    case submeterImbalance = "submeter-imbalance"
    /// A device clock jumped or went backwards.
    case clockJump = "clock-jump"
    /// One identity polled from two addresses within a short window (a cloned identity).
    case dualPresence = "dual-presence"
}

/// How serious a tamper flag is.
public enum TamperSeverity: String, Sendable, Hashable, Codable, CaseIterable {
    /// Worth a look; often an innocent cause (a meter swap, a resynchronised clock).
    case warning
    /// Likely tampering or a cloned identity.
    case critical
}

/// One suspicion of tampering.
///
/// JSON: `{"kind": "clock-jump", "device": "m7", "at": "...", "detail": "...", "severity": "warning"}`.
public struct TamperFlag: Sendable, Hashable, Codable {
    /// What is suspected.
    public var kind: TamperKind
    /// The device concerned (the master meter for an imbalance).
    public var device: String
    /// When it was seen (the later reading or sample, or the interval start).
    public var at: Timestamp
    /// What was seen, with the numbers.
    public var detail: String
    /// How serious it is.
    public var severity: TamperSeverity

    /// Creates a flag.
    public init(
        kind: TamperKind, device: String, at: Timestamp, detail: String, severity: TamperSeverity
    ) {
        self.kind = kind
        self.device = device
        self.at = at
        self.detail = detail
        self.severity = severity
    }
}

// MARK: - Register backwards

/// One reading of a cumulative energy register.
///
/// JSON `{"device": "m7", "at": "...", "kWh": 1234.5}`; CSV `device,at,kWh`.
public struct RegisterReading: Sendable, Hashable, Codable {
    /// The meter.
    public var device: String
    /// When it was read.
    public var at: Timestamp
    /// The register value, kWh.
    public var kWh: Double

    /// Creates a reading.
    public init(device: String, at: Timestamp, kWh: Double) {
        self.device = device
        self.at = at
        self.kWh = kWh
    }

    /// Parses CSV with columns `device,at,kWh` (`time` is accepted for `at`).
    public static func parseCSV(_ text: String) throws(PowerInputError) -> [RegisterReading] {
        let table = try CSVTable(parsing: text)
        let deviceColumn = try table.requiredColumn("device")
        let atColumn = try table.requiredColumn("at", "time")
        let kWhColumn = try table.requiredColumn("kWh")
        var result: [RegisterReading] = []
        for (line, fields) in table.rows {
            guard let at = Timestamp(rfc3339: fields[atColumn]) else {
                throw PowerInputError(
                    "line \(line), at: \"\(fields[atColumn].prefix(40))\" is not an RFC 3339 time")
            }
            let kWh = try CSVTable.number(fields[kWhColumn], line: line, column: "kWh")
            result.append(RegisterReading(device: fields[deviceColumn], at: at, kWh: kWh))
        }
        return result
    }
}

/// A documented billing reset of a register: a drop just after it is not tamper.
///
/// JSON `{"device": "m7", "at": "..."}`; a nil device applies to every meter.
public struct RegisterReset: Sendable, Hashable, Codable {
    /// The meter reset, or nil for all meters.
    public var device: String?
    /// When it was reset.
    public var at: Timestamp

    /// Creates a reset.
    public init(device: String?, at: Timestamp) {
        self.device = device
        self.at = at
    }
}

/// Tolerances for the tamper detectors; the defaults are the documented ones.
public struct TamperTolerances: Sendable, Hashable, Codable {
    /// A register may fall by up to this much (kWh, inclusive) between readings without a flag.
    public var registerKWh: Double = 0.001
    /// Sub-meters may differ from their master by up to this percent of the master (inclusive).
    public var imbalancePercent: Double = 2
    /// …and by up to this many kWh per interval (inclusive) whatever the percent, so tiny
    /// loads do not flag on rounding.
    public var imbalanceFloorKWh: Double = 0.05
    /// A clock offset may change by up to this many seconds (inclusive) between samples.
    public var clockJumpSeconds: Double = 5
    /// Two different addresses for one device within this many seconds (inclusive) flag.
    public var dualPresenceSeconds: Double = 60

    /// The default tolerances.
    public init() {}

    /// Checks that every tolerance is finite and ≥ 0.
    public func validate() throws(PowerInputError) {
        let values: [(String, Double)] = [
            ("registerKWh", registerKWh), ("imbalancePercent", imbalancePercent),
            ("imbalanceFloorKWh", imbalanceFloorKWh), ("clockJumpSeconds", clockJumpSeconds),
            ("dualPresenceSeconds", dualPresenceSeconds),
        ]
        for (name, value) in values where !value.isFinite || value < 0 {
            throw PowerInputError("tamper tolerance \(name) must be a finite number ≥ 0")
        }
    }
}

/// Pure tamper detectors. Each returns its flags sorted by time, then device.
public enum TamperDetector {
    /// Flags `register-backwards` (critical) when a meter's register is lower than its previous
    /// reading by more than `tolerances.registerKWh`, unless a reset of that meter (or of all
    /// meters) lies after the previous reading and at or before this one. Readings are taken
    /// per device in time order; after a flag, the lower reading is the new baseline.
    public static func registerBackwards(
        _ readings: [RegisterReading], resets: [RegisterReset] = [],
        tolerances: TamperTolerances = TamperTolerances()
    ) throws(PowerInputError) -> [TamperFlag] {
        try tolerances.validate()
        var byDevice: [String: [RegisterReading]] = [:]
        for reading in readings {
            guard reading.kWh.isFinite else {
                throw PowerInputError(
                    "register reading \(reading.device) at \(reading.at): kWh is not finite")
            }
            byDevice[reading.device, default: []].append(reading)
        }
        var flags: [TamperFlag] = []
        for (device, list) in byDevice {
            let sorted = list.enumerated().sorted {
                ($0.element.at, $0.offset) < ($1.element.at, $1.offset)
            }.map(\.element)
            for (previous, current) in zip(sorted, sorted.dropFirst()) {
                let drop = previous.kWh - current.kWh
                guard drop > tolerances.registerKWh else { continue }
                let reset = resets.contains { reset in
                    (reset.device == nil || reset.device == device) && reset.at > previous.at
                        && reset.at <= current.at
                }
                guard !reset else { continue }
                flags.append(
                    TamperFlag(
                        kind: .registerBackwards, device: device, at: current.at,
                        detail:
                            "register fell from \(previous.kWh) kWh at \(previous.at) to \(current.kWh) kWh (by \(drop) kWh)",
                        severity: .critical))
            }
        }
        return sortFlags(flags)
    }

    // MARK: Sub-meter imbalance

    /// Compares a master meter with the sum of its sub-meters, interval by interval.
    ///
    /// An interval flags `submeter-imbalance` (warning) when the difference |Σ sub − master|
    /// exceeds both `imbalancePercent` % of the master and `imbalanceFloorKWh` (each bound
    /// inclusive: equal is not flagged). When the master is 0 only the floor applies.
    /// Intervals are matched by start; an interval that the master or any sub-meter lacks is
    /// not compared but listed in ``SubmeterCheck/incomplete``.
    public static func submeterImbalance(
        _ group: SubmeterGroup, tolerances: TamperTolerances = TamperTolerances()
    ) throws(PowerInputError) -> SubmeterCheck {
        try tolerances.validate()
        let master = try intervalsByStart(group.masterReadings, meter: group.master)
        var subs: [String: [Int64: IntervalReading]] = [:]
        guard !group.submeters.isEmpty else {
            throw PowerInputError("sub-meter group \(group.master): no sub-meters")
        }
        for (meter, readings) in group.submeters {
            guard meter != group.master else {
                throw PowerInputError(
                    "sub-meter group \(group.master): the master is listed as its own sub-meter")
            }
            subs[meter] = try intervalsByStart(readings, meter: meter)
        }
        let starts = Set(master.keys).union(subs.values.flatMap(\.keys)).sorted()
        var flags: [TamperFlag] = []
        var incomplete: [SubmeterCheck.Gap] = []
        let meters = subs.keys.sorted()
        for start in starts {
            let missing =
                (master[start] == nil ? [group.master] : []) + meters.filter { subs[$0]?[start] == nil }
            guard missing.isEmpty, let reference = master[start] else {
                incomplete.append(
                    SubmeterCheck.Gap(start: Timestamp(milliseconds: start), missing: missing))
                continue
            }
            var sum = 0.0
            for meter in meters {
                guard let reading = subs[meter]?[start] else { continue }
                guard reading.seconds == reference.seconds else {
                    throw PowerInputError(
                        "sub-meter \(meter) at \(reference.start): \(reading.seconds) s interval, the master's is \(reference.seconds) s"
                    )
                }
                sum += reading.kWh
            }
            let difference = abs(sum - reference.kWh)
            guard difference > tolerances.imbalanceFloorKWh else { continue }
            guard difference > reference.kWh * tolerances.imbalancePercent / 100 else { continue }
            let percent = reference.kWh > 0 ? " (\(difference / reference.kWh * 100) %)" : ""
            flags.append(
                TamperFlag(
                    kind: .submeterImbalance, device: group.master, at: reference.start,
                    detail:
                        "sub-meters sum to \(sum) kWh, the master read \(reference.kWh) kWh: off by \(difference) kWh\(percent)",
                    severity: .warning))
        }
        return SubmeterCheck(flags: flags, incomplete: incomplete)
    }

    private static func intervalsByStart(_ readings: [IntervalReading], meter: String)
        throws(PowerInputError)
        -> [Int64: IntervalReading]
    {
        var result: [Int64: IntervalReading] = [:]
        for reading in readings {
            do {
                try reading.validate()
            } catch {
                throw PowerInputError("meter \(meter): \(error.message)")
            }
            guard result[reading.start.milliseconds] == nil else {
                throw PowerInputError("meter \(meter): two intervals start at \(reading.start)")
            }
            result[reading.start.milliseconds] = reading
        }
        return result
    }

    // MARK: Clock jumps

    /// Runs ``ClockJumpDetector`` over samples taken in hub-time order (stable for equal times).
    public static func clockJumps(
        _ samples: [TamperClockSample], tolerances: TamperTolerances = TamperTolerances()
    )
        throws(PowerInputError) -> [TamperFlag]
    {
        var detector = try ClockJumpDetector(tolerances: tolerances)
        let sorted = samples.enumerated().sorted {
            ($0.element.hubTime, $0.offset) < ($1.element.hubTime, $1.offset)
        }
        var flags: [TamperFlag] = []
        for (_, sample) in sorted {
            if let flag = detector.add(sample) { flags.append(flag) }
        }
        return sortFlags(flags)
    }

    // MARK: Dual presence

    /// Flags `dual-presence` (critical) when a device's consecutive contacts (in time order)
    /// come from different addresses at most `dualPresenceSeconds` apart (inclusive). Addresses
    /// are compared as exact strings: pass the remote host without the port.
    public static func dualPresence(
        _ contacts: [DeviceContact], tolerances: TamperTolerances = TamperTolerances()
    )
        throws(PowerInputError) -> [TamperFlag]
    {
        try tolerances.validate()
        var byDevice: [String: [DeviceContact]] = [:]
        for contact in contacts {
            guard !contact.address.isEmpty else {
                throw PowerInputError("contact \(contact.device) at \(contact.at): address is empty")
            }
            byDevice[contact.device, default: []].append(contact)
        }
        var flags: [TamperFlag] = []
        for (device, list) in byDevice {
            let sorted = list.enumerated().sorted {
                ($0.element.at, $0.offset) < ($1.element.at, $1.offset)
            }.map(\.element)
            for (previous, current) in zip(sorted, sorted.dropFirst())
            where previous.address != current.address {
                let gap = current.at.seconds(since: previous.at)
                guard gap <= tolerances.dualPresenceSeconds else { continue }
                flags.append(
                    TamperFlag(
                        kind: .dualPresence, device: device, at: current.at,
                        detail:
                            "seen from \(previous.address) at \(previous.at) and from \(current.address) \(gap) s later",
                        severity: .critical))
            }
        }
        return sortFlags(flags)
    }

    static func sortFlags(_ flags: [TamperFlag]) -> [TamperFlag] {
        flags.sorted { ($0.at, $0.device, $0.detail) < ($1.at, $1.device, $1.detail) }
    }
}

/// A master meter and the sub-meters that should add up to it.
///
/// JSON: `{"master": "m1", "masterReadings": [IntervalReading…], "submeters": {"s1": [IntervalReading…]}}`.
public struct SubmeterGroup: Sendable, Hashable, Codable {
    /// The master meter id.
    public var master: String
    /// The master's intervals.
    public var masterReadings: [IntervalReading]
    /// Each sub-meter's intervals, by meter id.
    public var submeters: [String: [IntervalReading]]

    /// Creates a group.
    public init(
        master: String, masterReadings: [IntervalReading], submeters: [String: [IntervalReading]]
    ) {
        self.master = master
        self.masterReadings = masterReadings
        self.submeters = submeters
    }
}

/// The result of a sub-meter comparison.
public struct SubmeterCheck: Sendable, Hashable, Codable {
    /// An interval that could not be compared.
    public struct Gap: Sendable, Hashable, Codable {
        /// The interval start.
        public var start: Timestamp
        /// The meters with no reading for it (the master first when it is missing).
        public var missing: [String]

        /// Creates a gap.
        public init(start: Timestamp, missing: [String]) {
            self.start = start
            self.missing = missing
        }
    }

    /// The imbalances, in interval order.
    public var flags: [TamperFlag]
    /// Intervals not compared, in order.
    public var incomplete: [Gap]

    /// Creates a result.
    public init(flags: [TamperFlag], incomplete: [Gap]) {
        self.flags = flags
        self.incomplete = incomplete
    }
}

// MARK: - Clock jumps

/// A device's clock compared with the hub's at one contact.
///
/// JSON `{"device": "m7", "deviceTime": "...", "hubTime": "..."}`.
public struct TamperClockSample: Sendable, Hashable, Codable {
    /// The device.
    public var device: String
    /// The time the device reported.
    public var deviceTime: Timestamp
    /// The hub's time when it received it.
    public var hubTime: Timestamp

    /// Creates a sample.
    public init(device: String, deviceTime: Timestamp, hubTime: Timestamp) {
        self.device = device
        self.deviceTime = deviceTime
        self.hubTime = hubTime
    }

    /// Device time − hub time, seconds.
    public var offsetSeconds: Double { deviceTime.seconds(since: hubTime) }
}

/// An incremental clock-jump detector: feed samples in hub-time order, per device.
///
/// Between a device's consecutive samples it flags `clock-jump`:
/// - critical when the device time went backwards (strictly lower than the previous one);
/// - otherwise warning when the offset (device − hub) changed by more than
///   `clockJumpSeconds` (equal is not flagged).
/// One flag at most per sample; the new sample always becomes the reference.
public struct ClockJumpDetector: Sendable, Hashable {
    /// The tolerances in use.
    public let tolerances: TamperTolerances
    private var last: [String: TamperClockSample] = [:]

    /// Creates a detector.
    public init(tolerances: TamperTolerances = TamperTolerances()) throws(PowerInputError) {
        try tolerances.validate()
        self.tolerances = tolerances
    }

    /// Takes the next sample; returns a flag when it jumped from the device's previous one.
    public mutating func add(_ sample: TamperClockSample) -> TamperFlag? {
        defer { last[sample.device] = sample }
        guard let previous = last[sample.device] else { return nil }
        if sample.deviceTime < previous.deviceTime {
            return TamperFlag(
                kind: .clockJump, device: sample.device, at: sample.hubTime,
                detail:
                    "device time went backwards from \(previous.deviceTime) to \(sample.deviceTime) (by \(previous.deviceTime.seconds(since: sample.deviceTime)) s)",
                severity: .critical)
        }
        let change = sample.offsetSeconds - previous.offsetSeconds
        guard abs(change) > tolerances.clockJumpSeconds else { return nil }
        return TamperFlag(
            kind: .clockJump, device: sample.device, at: sample.hubTime,
            detail:
                "clock offset changed from \(previous.offsetSeconds) s to \(sample.offsetSeconds) s (by \(change) s)",
            severity: .warning)
    }
}

// MARK: - Dual presence

/// One authenticated contact: a device polled from an address.
///
/// JSON `{"device": "m7", "address": "203.0.113.5", "at": "..."}`.
public struct DeviceContact: Sendable, Hashable, Codable {
    /// The device identity.
    public var device: String
    /// The remote host (without port).
    public var address: String
    /// When.
    public var at: Timestamp

    /// Creates a contact.
    public init(device: String, address: String, at: Timestamp) {
        self.device = device
        self.address = address
        self.at = at
    }
}
