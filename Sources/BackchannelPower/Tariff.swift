public import BackchannelProtocol
public import Foundation

/// A time-of-use tariff, modelled on the OpenEI Utility Rate Database (URDB), read from JSON.
///
/// Energy is priced by period. Each interval's period comes from its **start** in the tariff's
/// local time: `energyWeekdaySchedule[month - 1][hour]` on Monday to Friday,
/// `energyWeekendSchedule[month - 1][hour]` on Saturday, Sunday and `holidays`. In the repeated
/// hour when daylight saving time ends, both passes through the hour use that hour's period; the
/// hour skipped when it starts has no intervals. Unlike URDB, each period has one rate (no tiers).
///
/// ```json
/// {"name": "TOU-GS", "timeZone": "America/New_York", "currency": "USD",
///  "periods": ["off-peak", "on-peak"],
///  "energyWeekdaySchedule": [[0, 0, …24 values], …12 rows],
///  "energyWeekendSchedule": [[0, 0, …], …],
///  "energyRates": [0.0825, 0.185], "fixedChargePerMonth": 12.5,
///  "demandChargePerKW": 9.87, "onPeakDemand": {"periods": [1], "chargePerKW": 4.56},
///  "powerFactor": {"target": 0.9}, "holidays": ["2026-07-03"]}
/// ```
public struct Tariff: Sendable, Hashable, Codable {
    /// The tariff's name, shown on bills.
    public var name: String
    /// The utility or supplier offering it, if known.
    public var utility: String?
    /// The IANA time zone its schedules are written in, such as `America/New_York`.
    public var timeZone: String
    /// The ISO 4217 currency of every rate and charge, such as `USD`.
    public var currency: String
    /// The periods' names; a period's number is its index here.
    public var periods: [String]
    /// The period of each local hour on weekdays: 12 rows (January first) of 24 hours.
    public var energyWeekdaySchedule: [[Int]]
    /// The period of each local hour on weekends and holidays: 12 rows of 24 hours.
    public var energyWeekendSchedule: [[Int]]
    /// The energy rate of each period, currency per kWh.
    public var energyRates: [Decimal]
    /// The fixed charge, currency per month, charged once per bill.
    public var fixedChargePerMonth: Decimal
    /// The demand charge, currency per kW of the bill's largest 15-minute average demand.
    public var demandChargePerKW: Decimal?
    /// A charge on the largest 15-minute demand within some periods.
    public var onPeakDemand: OnPeakDemandCharge?
    /// A power-factor adjustment of the demand charges.
    public var powerFactor: PowerFactorRule?
    /// Local dates billed with the weekend schedule.
    public var holidays: [LocalDate]?

    /// Creates a tariff; call `validate()` before use (the bill does).
    public init(
        name: String, utility: String? = nil, timeZone: String, currency: String = "USD",
        periods: [String],
        energyWeekdaySchedule: [[Int]], energyWeekendSchedule: [[Int]], energyRates: [Decimal],
        fixedChargePerMonth: Decimal, demandChargePerKW: Decimal? = nil,
        onPeakDemand: OnPeakDemandCharge? = nil,
        powerFactor: PowerFactorRule? = nil, holidays: [LocalDate]? = nil
    ) {
        self.name = name
        self.utility = utility
        self.timeZone = timeZone
        self.currency = currency
        self.periods = periods
        self.energyWeekdaySchedule = energyWeekdaySchedule
        self.energyWeekendSchedule = energyWeekendSchedule
        self.energyRates = energyRates
        self.fixedChargePerMonth = fixedChargePerMonth
        self.demandChargePerKW = demandChargePerKW
        self.onPeakDemand = onPeakDemand
        self.powerFactor = powerFactor
        self.holidays = holidays
    }

    /// Decodes a tariff from JSON and validates it.
    public init(json: Data) throws(PowerInputError) {
        self = try BillingMath.decode(Tariff.self, from: json, what: "tariff")
        try validate()
    }

    /// Checks every field: the time zone and currency, 12×24 schedules whose period numbers
    /// exist, one non-negative rate per period, non-negative charges, on-peak periods that exist,
    /// a power-factor target in (0, 1], and no repeated holiday.
    public func validate() throws(PowerInputError) {
        let prefix = "tariff \"\(name.prefix(60))\""
        guard !name.trimmingCharacters(in: .whitespaces).isEmpty else {
            throw PowerInputError("tariff name: must not be empty")
        }
        _ = try LocalDate.calendar(timeZone: timeZone)
        guard currency.count == 3, currency.allSatisfy({ $0.isASCII && $0.isUppercase }) else {
            throw PowerInputError(
                "\(prefix) currency: \"\(currency.prefix(10))\" is not a three-letter code such as USD")
        }
        guard !periods.isEmpty else {
            throw PowerInputError("\(prefix) periods: at least one period is needed")
        }
        for (index, period) in periods.enumerated()
        where period.trimmingCharacters(in: .whitespaces).isEmpty {
            throw PowerInputError("\(prefix) periods[\(index)]: the name must not be empty")
        }
        guard Set(periods).count == periods.count else {
            throw PowerInputError("\(prefix) periods: names must be unique")
        }
        let range = 0..<periods.count
        for (field, schedule) in [
            ("energyWeekdaySchedule", energyWeekdaySchedule),
            ("energyWeekendSchedule", energyWeekendSchedule),
        ] {
            guard schedule.count == 12 else {
                throw PowerInputError("\(prefix) \(field): \(schedule.count) rows, need 12 (one per month)")
            }
            for (month, hours) in schedule.enumerated() {
                guard hours.count == 24 else {
                    throw PowerInputError(
                        "\(prefix) \(field)[\(month)] (month \(month + 1)): \(hours.count) values, need 24 (one per hour)"
                    )
                }
                for (hour, period) in hours.enumerated() where !range.contains(period) {
                    throw PowerInputError(
                        "\(prefix) \(field)[\(month)][\(hour)]: period \(period) does not exist (0...\(periods.count - 1))"
                    )
                }
            }
        }
        guard energyRates.count == periods.count else {
            throw PowerInputError(
                "\(prefix) energyRates: \(energyRates.count) rates for \(periods.count) periods; need one per period"
            )
        }
        for (index, rate) in energyRates.enumerated() where rate.isNaN || rate < 0 {
            throw PowerInputError("\(prefix) energyRates[\(index)]: must be ≥ 0")
        }
        guard !fixedChargePerMonth.isNaN, fixedChargePerMonth >= 0 else {
            throw PowerInputError("\(prefix) fixedChargePerMonth: must be ≥ 0")
        }
        if let demandChargePerKW, demandChargePerKW.isNaN || demandChargePerKW < 0 {
            throw PowerInputError("\(prefix) demandChargePerKW: must be ≥ 0")
        }
        if let onPeakDemand {
            guard !onPeakDemand.periods.isEmpty else {
                throw PowerInputError("\(prefix) onPeakDemand.periods: at least one period is needed")
            }
            for period in onPeakDemand.periods where !range.contains(period) {
                throw PowerInputError(
                    "\(prefix) onPeakDemand.periods: period \(period) does not exist (0...\(periods.count - 1))"
                )
            }
            guard Set(onPeakDemand.periods).count == onPeakDemand.periods.count else {
                throw PowerInputError("\(prefix) onPeakDemand.periods: a period is listed twice")
            }
            guard !onPeakDemand.chargePerKW.isNaN, onPeakDemand.chargePerKW >= 0 else {
                throw PowerInputError("\(prefix) onPeakDemand.chargePerKW: must be ≥ 0")
            }
        }
        if let powerFactor {
            guard powerFactor.target > 0, powerFactor.target <= 1 else {
                throw PowerInputError(
                    "\(prefix) powerFactor.target: \(powerFactor.target) is outside (0, 1]")
            }
        }
        if let holidays, Set(holidays).count != holidays.count {
            throw PowerInputError("\(prefix) holidays: a date is listed twice")
        }
    }

    /// The period number of `instant` (an interval's start), by the tariff's local time.
    public func period(at instant: Timestamp) throws(PowerInputError) -> Int {
        try validate()
        return try TariffClock(self).period(at: instant)
    }
}

/// A charge on the largest 15-minute demand among intervals in some periods.
public struct OnPeakDemandCharge: Sendable, Hashable, Codable {
    /// The period numbers whose intervals count.
    public var periods: [Int]
    /// The charge, currency per kW.
    public var chargePerKW: Decimal

    /// Creates an on-peak demand charge.
    public init(periods: [Int], chargePerKW: Decimal) {
        self.periods = periods
        self.chargePerKW = chargePerKW
    }
}

/// A power-factor adjustment: below `target`, every demand charge bills kW × target ÷ actual.
public struct PowerFactorRule: Sendable, Hashable, Codable {
    /// The power factor below which demand is adjusted, in (0, 1]; at the target no adjustment.
    public var target: Double

    /// Creates a power-factor rule.
    public init(target: Double) {
        self.target = target
    }
}

/// A validated tariff's local clock: turns instants into period numbers.
struct TariffClock {
    let calendar: Calendar
    let holidays: Set<LocalDate>
    let weekday: [[Int]]
    let weekend: [[Int]]

    init(_ tariff: Tariff) throws(PowerInputError) {
        calendar = try LocalDate.calendar(timeZone: tariff.timeZone)
        holidays = Set(tariff.holidays ?? [])
        weekday = tariff.energyWeekdaySchedule
        weekend = tariff.energyWeekendSchedule
    }

    /// The period of `instant`: its local month and hour, with the weekend schedule on
    /// Saturdays, Sundays and holidays.
    func period(at instant: Timestamp) throws(PowerInputError) -> Int {
        let parts = calendar.dateComponents([.year, .month, .day, .hour, .weekday], from: instant.date)
        guard let year = parts.year, let month = parts.month, let day = parts.day,
            let hour = parts.hour,
            let weekdayNumber = parts.weekday, (1...12).contains(month), (0...23).contains(hour)
        else {
            throw PowerInputError("\(instant) has no local time in \(calendar.timeZone.identifier)")
        }
        // Gregorian weekday numbers: 1 is Sunday, 7 is Saturday.
        let date = try LocalDate(year: year, month: month, day: day)
        let isWeekend = weekdayNumber == 1 || weekdayNumber == 7 || holidays.contains(date)
        return (isWeekend ? weekend : weekday)[month - 1][hour]
    }
}

/// Decimal arithmetic and JSON decoding shared by bills, reports and supplier choice.
enum BillingMath {
    /// `value` rounded to `scale` decimal places, halves away from zero (half-up for the
    /// non-negative amounts bills have).
    static func rounded(_ value: Decimal, scale: Int) -> Decimal {
        var input = value
        var result = Decimal()
        NSDecimalRound(&result, &input, scale, .plain)
        return result
    }

    /// A meter reading as the decimal it was written as (its shortest round-trip text), so
    /// that 0.1 kWh bills as exactly 0.1.
    static func decimal(_ value: Double) -> Decimal {
        Decimal(string: "\(value)", locale: Locale(identifier: "en_US_POSIX")) ?? Decimal(value)
    }

    /// A decimal as a `Double`, for ratios that need a square root.
    static func double(_ value: Decimal) -> Double {
        NSDecimalNumber(decimal: value).doubleValue
    }

    /// Decodes JSON, turning decoding errors into messages that name the field.
    static func decode<T: Decodable>(_ type: T.Type, from data: Data, what: String)
        throws(PowerInputError) -> T
    {
        func path(_ codingPath: [any CodingKey]) -> String {
            let text = codingPath.map { $0.intValue.map { "[\($0)]" } ?? ".\($0.stringValue)" }.joined()
            return what + text
        }
        do {
            return try JSONDecoder().decode(type, from: data)
        } catch let error as DecodingError {
            switch error {
            case .keyNotFound(let key, let context):
                throw PowerInputError("\(path(context.codingPath + [key])): missing")
            case .valueNotFound(_, let context):
                throw PowerInputError("\(path(context.codingPath)): missing (null)")
            case .typeMismatch(let expected, let context):
                throw PowerInputError("\(path(context.codingPath)): expected \(expected)")
            case .dataCorrupted(let context):
                throw PowerInputError("\(path(context.codingPath)): \(context.debugDescription)")
            @unknown default:
                throw PowerInputError("\(what): not valid JSON")
            }
        } catch {
            throw PowerInputError("\(what): not valid JSON")
        }
    }
}
