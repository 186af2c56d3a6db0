public import BackchannelProtocol
public import Foundation

/// A time-of-day window of a price-limit schedule, in local wall-clock time.
///
/// `from` is inclusive and `to` exclusive: `06:00`–`18:00` covers 06:00:00.000 up to
/// 17:59:59.999. A window whose `to` is earlier than its `from` crosses midnight
/// (`22:00`–`06:00`). `to` may be `24:00` (the end of the day); `from == to` is refused.
public struct PriceLimitWindow: Sendable, Hashable, Codable {
    /// Start, "HH:MM" (00:00–23:59), inclusive.
    public var from: String
    /// End, "HH:MM" (00:00–24:00), exclusive.
    public var to: String
    /// The price limit in force inside the window, $/kWh.
    public var limit: Decimal

    /// Creates a window.
    public init(from: String, to: String, limit: Decimal) {
        self.from = from
        self.to = to
        self.limit = limit
    }
}

/// Price limits by local time of day: windows, and a default limit outside them.
///
/// Times are wall-clock times in `timeZone` (an IANA id such as `America/Chicago`). An instant
/// is converted to the local time in force at that instant, so on a DST day a window edge
/// follows the clock: `06:00` is 11:00Z before the spring change in New York and 10:00Z after.
/// A window edge inside the skipped hour takes effect when the clock jumps past it; in the
/// repeated hour the window applies in both passes. Windows may not overlap.
public struct PriceLimitSchedule: Sendable, Hashable, Codable {
    /// The IANA time-zone id of the wall-clock times.
    public var timeZone: String
    /// The limit outside every window, $/kWh.
    public var defaultLimit: Decimal
    /// The windows (none overlapping).
    public var windows: [PriceLimitWindow]

    /// Creates a schedule.
    public init(timeZone: String, defaultLimit: Decimal, windows: [PriceLimitWindow]) {
        self.timeZone = timeZone
        self.defaultLimit = defaultLimit
        self.windows = windows
    }

    /// The seed example: 0.80 $/kWh from 06:00 to 18:00, 0.60 $/kWh otherwise.
    public static func seedExample(timeZone: String) -> PriceLimitSchedule {
        PriceLimitSchedule(
            timeZone: timeZone, defaultLimit: Decimal(string: "0.60")!,
            windows: [PriceLimitWindow(from: "06:00", to: "18:00", limit: Decimal(string: "0.80")!)])
    }

    /// Checks the time zone, every window's times, limits ≥ 0 (not NaN), and that no two
    /// windows overlap.
    public func validate() throws(PowerInputError) {
        _ = try resolved()
    }

    /// The limit in force at `time`, and the window that sets it.
    public func limit(at time: Timestamp) throws(PowerInputError) -> PriceLimitInForce {
        try resolved().limit(at: time)
    }

    /// The first instant after `time` at which the limit in force changes, or `nil` when it
    /// never changes (no window sets a limit other than the default). The hub evaluates the
    /// controller then, because a limit change alone can shed or restore.
    public func nextLimitChange(after time: Timestamp) throws(PowerInputError) -> Timestamp? {
        try resolved().nextChange(after: time)
    }

    func resolved() throws(PowerInputError) -> ResolvedSchedule {
        guard let zone = TimeZone(identifier: timeZone) else {
            throw PowerInputError("timeZone \"\(timeZone.prefix(60))\" is not a known time-zone id")
        }
        try checkLimit(defaultLimit, field: "defaultLimit")
        var parsed: [ResolvedSchedule.Window] = []
        for (index, window) in windows.enumerated() {
            let field = "windows[\(index)]"
            let from = try minutes(window.from, field: "\(field).from", allowEndOfDay: false)
            let to = try minutes(window.to, field: "\(field).to", allowEndOfDay: true)
            guard from != to % 1440 else {
                throw PowerInputError(
                    "\(field): from and to are the same time; an all-day limit is the defaultLimit")
            }
            try checkLimit(window.limit, field: "\(field).limit")
            let name = "\(format(from))–\(format(to))"
            let next = ResolvedSchedule.Window(from: from, to: to, limit: window.limit, name: name)
            for (other, earlier) in parsed.enumerated() where earlier.overlaps(next) {
                throw PowerInputError("\(field) (\(name)) overlaps windows[\(other)] (\(earlier.name))")
            }
            parsed.append(next)
        }
        return ResolvedSchedule(zone: zone, defaultLimit: defaultLimit, windows: parsed)
    }

    private func checkLimit(_ limit: Decimal, field: String) throws(PowerInputError) {
        guard !limit.isNaN, limit >= 0 else { throw PowerInputError("\(field) must be a number ≥ 0") }
    }

    private func minutes(_ text: String, field: String, allowEndOfDay: Bool) throws(PowerInputError)
        -> Int
    {
        let parts = text.split(separator: ":", omittingEmptySubsequences: false)
        let digits = parts.allSatisfy {
            $0.count == 2 && $0.allSatisfy(\.isASCII) && $0.allSatisfy(\.isNumber)
        }
        guard parts.count == 2, digits, let hour = Int(parts[0]), let minute = Int(parts[1]),
            minute < 60
        else {
            throw PowerInputError("\(field): \"\(text.prefix(20))\" is not a time HH:MM")
        }
        let total = hour * 60 + minute
        guard total < 1440 || (allowEndOfDay && total == 1440) else {
            throw PowerInputError("\(field): \"\(text)\" is past the end of the day")
        }
        return total
    }

    private func format(_ minutes: Int) -> String {
        let hour = minutes / 60
        let minute = minutes % 60
        return (hour < 10 ? "0" : "") + "\(hour):" + (minute < 10 ? "0" : "") + "\(minute)"
    }
}

/// The limit in force at one instant.
public struct PriceLimitInForce: Sendable, Hashable, Codable {
    /// The limit, $/kWh.
    public var limit: Decimal
    /// The window that sets it, as "06:00–18:00", or `nil` when the default limit applies.
    public var window: String?

    /// Creates a record of the limit in force.
    public init(limit: Decimal, window: String?) {
        self.limit = limit
        self.window = window
    }

    /// "the 0.80 limit in force 06:00–18:00" or "the 0.60 default limit in force outside the
    /// windows".
    public var phrase: String {
        if let window { return "the \(LoadShedText.money(limit)) limit in force \(window)" }
        return "the \(LoadShedText.money(limit)) default limit in force outside the windows"
    }
}

/// A validated schedule with parsed windows.
struct ResolvedSchedule {
    struct Window {
        var from: Int
        var to: Int
        var limit: Decimal
        var name: String

        /// The window as half-open minute ranges within one day.
        var ranges: [Range<Int>] { from < to ? [from..<to] : [from..<1440, 0..<to] }

        func contains(minute: Double) -> Bool {
            ranges.contains { Double($0.lowerBound) <= minute && minute < Double($0.upperBound) }
        }

        func overlaps(_ other: Window) -> Bool {
            ranges.contains { mine in other.ranges.contains { mine.overlaps($0) } }
        }
    }

    var zone: TimeZone
    var defaultLimit: Decimal
    var windows: [Window]

    func limit(at time: Timestamp) -> PriceLimitInForce {
        let offset = Int64(zone.secondsFromGMT(for: time.date)) * 1000
        let day: Int64 = 86_400_000
        let local = ((time.milliseconds + offset) % day + day) % day
        let minute = Double(local) / 60_000
        if let window = windows.first(where: { $0.contains(minute: minute) }) {
            return PriceLimitInForce(limit: window.limit, window: window.name)
        }
        return PriceLimitInForce(limit: defaultLimit, window: nil)
    }

    /// Tries every window edge on the local days around `time`, under every UTC offset in
    /// force in the next four days, plus the DST transitions themselves (where an edge in a
    /// skipped hour takes effect), and returns the first at which the limit differs from the
    /// millisecond before.
    func nextChange(after time: Timestamp) -> Timestamp? {
        let day: Int64 = 86_400_000
        let horizon = time.adding(seconds: 4 * 86_400)
        var offsets: Set<Int64> = [Int64(zone.secondsFromGMT(for: time.date))]
        var transitions: [Timestamp] = []
        var cursor = time.date
        while let next = zone.nextDaylightSavingTimeTransition(after: cursor),
            Timestamp(next) <= horizon
        {
            transitions.append(Timestamp(next))
            offsets.insert(Int64(zone.secondsFromGMT(for: next)))
            cursor = next
        }
        let edges = Set(windows.flatMap { [$0.from, $0.to % 1440] })
        var candidates = transitions
        let firstDay = (time.milliseconds + Int64(zone.secondsFromGMT(for: time.date)) * 1000) / day - 1
        for dayNumber in firstDay...(firstDay + 6) {
            for edge in edges {
                let wall = dayNumber * day + Int64(edge) * 60_000
                for offset in offsets {
                    let instant = Timestamp(milliseconds: wall - offset * 1000)
                    if Int64(zone.secondsFromGMT(for: instant.date)) == offset { candidates.append(instant) }
                }
            }
        }
        return candidates.filter { $0 > time && $0 <= horizon }.sorted().first { candidate in
            limit(at: candidate) != limit(at: Timestamp(milliseconds: candidate.milliseconds - 1))
        }
    }
}

/// Whether the controlled load is shed.
public enum LoadShedState: String, Sendable, Hashable, Codable, CaseIterable {
    /// The load runs.
    case normal
    /// The load is shed.
    case shed
}

/// What the controller decided.
public enum LoadShedAction: String, Sendable, Hashable, Codable, CaseIterable {
    /// Shed the load now (it was running and the price exceeds the limit).
    case shed
    /// Restore the load now (it was shed and the price is below the limit).
    case restore
    /// Change nothing.
    case hold
}

/// What made the controller decide.
public enum LoadShedTrigger: String, Sendable, Hashable, Codable, CaseIterable {
    /// A new price arrived.
    case priceChange
    /// An evaluation at a time with the last price (a limit change, a periodic check).
    case evaluation
}

/// One decision of the load-shedding controller: a record for the hub's log.
public struct LoadShedDecision: Sendable, Hashable, Codable {
    /// When the decision was taken.
    public var time: Timestamp
    /// The price in force, $/kWh.
    public var price: Decimal
    /// The limit in force, $/kWh.
    public var limit: Decimal
    /// The window setting the limit ("06:00–18:00"), or `nil` for the default limit.
    public var window: String?
    /// A new price, or an evaluation at a time.
    public var trigger: LoadShedTrigger
    /// Shed, restore or hold.
    public var action: LoadShedAction
    /// The state before the decision.
    public var previousState: LoadShedState
    /// The state after it.
    public var state: LoadShedState
    /// Why, naming price, limit and window.
    public var reason: String

    /// Creates a decision record.
    public init(
        time: Timestamp, price: Decimal, limit: Decimal, window: String?, trigger: LoadShedTrigger,
        action: LoadShedAction, previousState: LoadShedState, state: LoadShedState, reason: String
    ) {
        self.time = time
        self.price = price
        self.limit = limit
        self.window = window
        self.trigger = trigger
        self.action = action
        self.previousState = previousState
        self.state = state
        self.reason = reason
    }

    /// The rule, as a pure function: shed when running and `price > limit` (strictly); restore
    /// when shed and `price < limit` (strictly); otherwise hold. A price equal to the limit
    /// never changes the state, so the load does not flap at the limit.
    public static func decide(
        state: LoadShedState, price: Decimal, limit: PriceLimitInForce, at time: Timestamp,
        trigger: LoadShedTrigger
    ) -> LoadShedDecision {
        let priceText = "price \(LoadShedText.money(price)) $/kWh"
        let action: LoadShedAction
        let reason: String
        switch state {
        case .normal where price > limit.limit:
            action = .shed
            reason = "\(priceText) exceeds \(limit.phrase)"
        case .normal:
            action = .hold
            reason = "\(priceText) does not exceed \(limit.phrase); the load stays on"
        case .shed where price < limit.limit:
            action = .restore
            reason = "\(priceText) is below \(limit.phrase)"
        case .shed:
            action = .hold
            reason = "\(priceText) is not below \(limit.phrase); the load stays shed"
        }
        let after: LoadShedState =
            switch action {
            case .shed: .shed
            case .restore: .normal
            case .hold: state
            }
        return LoadShedDecision(
            time: time, price: price, limit: limit.limit, window: limit.window, trigger: trigger,
            action: action,
            previousState: state, state: after, reason: reason)
    }
}

/// A price and the time it takes effect.
public struct PricePoint: Sendable, Hashable, Codable {
    /// When the price takes effect.
    public var time: Timestamp
    /// The price, $/kWh (may be negative).
    public var price: Decimal

    /// Creates a price point.
    public init(time: Timestamp, price: Decimal) {
        self.time = time
        self.price = price
    }

    /// Parses CSV with columns `time` (RFC 3339) and `price` (a plain decimal such as 0.85),
    /// times strictly increasing. Errors name the line.
    public static func parseCSV(_ text: String) throws(PowerInputError) -> [PricePoint] {
        let table = try CSVTable(parsing: text)
        let timeColumn = try table.requiredColumn("time")
        let priceColumn = try table.requiredColumn("price")
        var points: [PricePoint] = []
        for (line, fields) in table.rows {
            guard let time = Timestamp(rfc3339: fields[timeColumn]) else {
                throw PowerInputError(
                    "line \(line), time: \"\(fields[timeColumn].prefix(40))\" is not an RFC 3339 time")
            }
            guard let price = LoadShedText.decimal(fields[priceColumn]) else {
                throw PowerInputError(
                    "line \(line), price: \"\(fields[priceColumn].prefix(40))\" is not a decimal number")
            }
            if let last = points.last, time <= last.time {
                throw PowerInputError("line \(line): time \(time) does not come after the line before")
            }
            points.append(PricePoint(time: time, price: price))
        }
        return points
    }
}

/// Tariff-threshold load shedding as a pure state machine.
///
/// Feed it prices with `priceChanged(to:at:)` and call `evaluate(at:)` when the limit may have
/// changed (at `PriceLimitSchedule.nextLimitChange(after:)`, or periodically): a limit change
/// at 18:00 with an unchanged price can shed or restore by itself. Times may not go backwards.
public struct LoadShedController: Sendable, Hashable, Codable {
    /// The schedule of limits.
    public let schedule: PriceLimitSchedule
    /// Whether the load is shed now.
    public private(set) var state: LoadShedState
    /// The last price received, if any.
    public private(set) var price: PricePoint?
    /// The time of the last decision, if any.
    public private(set) var lastDecisionTime: Timestamp?

    /// Creates a controller in `state`, after validating the schedule.
    public init(schedule: PriceLimitSchedule, state: LoadShedState = .normal) throws(PowerInputError) {
        try schedule.validate()
        self.schedule = schedule
        self.state = state
    }

    /// A new price at `time`: decides with the limit in force at `time`.
    public mutating func priceChanged(to price: Decimal, at time: Timestamp) throws(PowerInputError)
        -> LoadShedDecision
    {
        guard !price.isNaN else { throw PowerInputError("price is not a number") }
        try checkOrder(time)
        self.price = PricePoint(time: time, price: price)
        return try apply(price: price, at: time, trigger: .priceChange)
    }

    /// An evaluation at `time` with the last price received.
    public mutating func evaluate(at time: Timestamp) throws(PowerInputError) -> LoadShedDecision {
        guard let price else {
            throw PowerInputError("no price has been received yet; nothing to evaluate")
        }
        try checkOrder(time)
        return try apply(price: price.price, at: time, trigger: .evaluation)
    }

    /// Runs the controller over `prices` (time order), also evaluating at every limit change
    /// between them and up to `end`; returns every decision, holds included.
    public mutating func run(_ prices: [PricePoint], until end: Timestamp) throws(PowerInputError)
        -> [LoadShedDecision]
    {
        let resolved = try schedule.resolved()
        var decisions: [LoadShedDecision] = []
        for (index, point) in prices.enumerated() {
            if index > 0, point.time <= prices[index - 1].time {
                throw PowerInputError(
                    "prices[\(index)]: time \(point.time) does not come after the one before")
            }
            try evaluateLimitChanges(before: point.time, resolved: resolved, into: &decisions)
            decisions.append(try priceChanged(to: point.price, at: point.time))
        }
        if let last = prices.last, end < last.time {
            throw PowerInputError("end \(end) is before the last price at \(last.time)")
        }
        try evaluateLimitChanges(
            before: end.adding(seconds: 0.001), resolved: resolved, into: &decisions)
        return decisions
    }

    private mutating func evaluateLimitChanges(
        before limitTime: Timestamp, resolved: ResolvedSchedule,
        into decisions: inout [LoadShedDecision]
    ) throws(PowerInputError) {
        guard let current = price else { return }
        var cursor = max(current.time, lastDecisionTime ?? current.time)
        while let change = resolved.nextChange(after: cursor), change < limitTime {
            decisions.append(try evaluate(at: change))
            cursor = change
        }
    }

    private func checkOrder(_ time: Timestamp) throws(PowerInputError) {
        if let lastDecisionTime, time < lastDecisionTime {
            throw PowerInputError("time \(time) is before the last decision at \(lastDecisionTime)")
        }
    }

    private mutating func apply(price: Decimal, at time: Timestamp, trigger: LoadShedTrigger)
        throws(PowerInputError) -> LoadShedDecision
    {
        let limit = try schedule.limit(at: time)
        let decision = LoadShedDecision.decide(
            state: state, price: price, limit: limit, at: time, trigger: trigger)
        state = decision.state
        lastDecisionTime = time
        return decision
    }
}

/// Text helpers for load-shedding reasons.
enum LoadShedText {
    /// A decimal with at least two fraction digits: 0.8 → "0.80", 0.825 → "0.825", 1 → "1.00".
    static func money(_ value: Decimal) -> String {
        var text = "\(value)"
        guard !text.contains("e"), !text.contains("E") else { return text }
        guard let dot = text.firstIndex(of: ".") else { return text + ".00" }
        let fractionDigits = text.distance(from: dot, to: text.endIndex) - 1
        if fractionDigits < 2 { text += String(repeating: "0", count: 2 - fractionDigits) }
        return text
    }

    /// A plain decimal: optional minus, digits, optional point and digits; nothing else.
    static func decimal(_ text: String) -> Decimal? {
        let body = text.hasPrefix("-") ? text.dropFirst() : Substring(text)
        let parts = body.split(separator: ".", omittingEmptySubsequences: false)
        guard (1...2).contains(parts.count), !parts[0].isEmpty, parts.allSatisfy({ !$0.isEmpty }),
            parts.allSatisfy({ $0.allSatisfy { $0.isASCII && $0.isNumber } })
        else { return nil }
        return Decimal(string: text, locale: Locale(identifier: "en_US_POSIX"))
    }
}
