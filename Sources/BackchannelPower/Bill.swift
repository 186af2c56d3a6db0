public import BackchannelProtocol
public import Foundation

/// A bill for one billing period `[from, to)` under one tariff, from interval data.
///
/// Money rule: each line item's amount is quantity × rate rounded half-up to cents (0.005 → 0.01);
/// the total is the sum of the rounded amounts. Quantities are exact decimals of the meter
/// readings (kWh as written in the data, kW = a 15-minute block's kWh × 4), except the
/// power-factor adjustment's kW, which is rounded half-up to 0.001 kW.
///
/// An interval belongs to the bill when `from ≤ start < to` (its end may fall after `to`).
/// Others are ignored and counted in `ignoredIntervals`. Missing intervals are listed, the bill
/// is computed from the intervals that exist and `complete` is false: nothing is zero-filled.
public struct Bill: Sendable, Hashable, Codable {
    /// The tariff's name.
    public var tariff: String
    /// The currency of every amount.
    public var currency: String
    /// The first instant of the billing period (inclusive).
    public var from: Timestamp
    /// The instant the billing period ends (exclusive).
    public var to: Timestamp
    /// The charges, in order: energy per period, fixed charge, demand, its power-factor
    /// adjustment, on-peak demand, its power-factor adjustment.
    public var lineItems: [BillLineItem]
    /// The sum of the line items' rounded amounts.
    public var total: Decimal
    /// The energy billed, kWh.
    public var energyKWh: Decimal
    /// The largest 15-minute average demand in the period and when; `nil` for data whose
    /// interval length does not divide 15 minutes.
    public var maxDemand: DemandPeak?
    /// The largest 15-minute demand within the on-peak periods, when the tariff has that charge.
    public var onPeakMaxDemand: DemandPeak?
    /// The period's power factor, ΣkWh ÷ √(ΣkWh² + Σkvarh²), when every interval has kvarh.
    public var powerFactor: Double?
    /// The length of the billed intervals, seconds.
    public var intervalSeconds: Int
    /// How many intervals were billed.
    public var intervalCount: Int
    /// How many given intervals start outside `[from, to)` and were ignored.
    public var ignoredIntervals: Int
    /// The starts of the intervals missing from the period's grid (see `IntervalSeries.missingStarts`).
    public var missingIntervals: [Timestamp]
    /// Whether no interval is missing.
    public var complete: Bool
    /// What the reader should know: missing data, incomplete demand blocks, off-grid intervals.
    public var warnings: [String]

    /// Computes the bill for `[from, to)`.
    ///
    /// Interval data must have one length. Demand charges need 15-minute demand: data of 15
    /// minutes or of a length that divides it (5-minute data is rolled up into quarter hours;
    /// a quarter hour with an interval missing is left out of demand and warned about).
    /// - Throws: `PowerInputError` for an invalid tariff or reading, `from ≥ to`, no interval in
    ///   the period, mixed lengths, overlaps, demand charges without 15-minute demand, or a
    ///   power-factor rule when an interval has no kvarh.
    public static func compute(
        tariff: Tariff, intervals: [IntervalReading], from: Timestamp, to: Timestamp
    ) throws(PowerInputError) -> Bill {
        try tariff.validate()
        let clock = try TariffClock(tariff)
        guard from < to else {
            throw PowerInputError("billing period: from (\(from)) must be before to (\(to))")
        }
        let inside = try IntervalSeries.inPeriod(intervals, from: from, to: to)
        let ignored = intervals.count - inside.count
        guard let seconds = inside.first?.seconds else {
            throw PowerInputError("no interval starts in the billing period \(from) to \(to)")
        }
        let lengths = Set(inside.map(\.seconds)).sorted()
        guard lengths.count == 1 else {
            throw PowerInputError(
                "intervals in the billing period mix lengths \(lengths.map { "\($0) s" }.joined(separator: ", ")); give one length"
            )
        }
        var warnings: [String] = []
        if ignored > 0 {
            warnings.append("\(ignored) intervals start outside the billing period and are ignored")
        }
        let missing = try IntervalSeries.missingStarts(inside, from: from, to: to, seconds: seconds)
        if !missing.isEmpty {
            warnings.append(
                "\(missing.count) intervals are missing (first at \(missing[0])); the bill covers the data present"
            )
        }
        let offGrid = inside.filter {
            ($0.start.milliseconds - from.milliseconds) % (Int64(seconds) * 1000) != 0
        }
        if !offGrid.isEmpty {
            warnings.append(
                "\(offGrid.count) intervals do not start on the \(seconds) s grid from \(from)")
        }

        // Energy by period.
        var energy: [Int: Decimal] = [:]
        for reading in inside {
            energy[try clock.period(at: reading.start), default: 0] += BillingMath.decimal(reading.kWh)
        }
        var items: [BillLineItem] = []
        for period in energy.keys.sorted() {
            items.append(
                BillLineItem(
                    kind: .energy, description: "Energy, \(tariff.periods[period])",
                    quantity: energy[period]!,
                    unit: "kWh", rate: tariff.energyRates[period]))
        }
        items.append(
            BillLineItem(
                kind: .fixed, description: "Fixed charge", quantity: 1, unit: "month",
                rate: tariff.fixedChargePerMonth))

        // Demand.
        let demand = try FifteenMinuteDemand(inside)
        if let demand, demand.incompleteBlocks > 0 {
            warnings.append(
                "\(demand.incompleteBlocks) quarter hours lack an interval and are left out of demand")
        }
        let hasDemandCharge = tariff.demandChargePerKW != nil || tariff.onPeakDemand != nil
        if hasDemandCharge, demand == nil {
            throw PowerInputError(
                "tariff \"\(tariff.name)\" has demand charges, which need 15-minute demand; \(seconds) s intervals do not divide 15 minutes"
            )
        }
        let maxDemand = demand?.peak()
        if hasDemandCharge, maxDemand == nil {
            throw PowerInputError("no complete quarter hour in the billing period to take demand from")
        }
        var onPeakMax: DemandPeak?
        if let onPeak = tariff.onPeakDemand, let demand {
            let wanted = Set(onPeak.periods)
            var periodOf: [Timestamp: Int] = [:]
            for block in demand.blocks { periodOf[block.start] = try clock.period(at: block.start) }
            onPeakMax = demand.peak { wanted.contains(periodOf[$0] ?? -1) }
            if onPeakMax == nil {
                warnings.append("no quarter hour in the on-peak periods; on-peak demand is 0 kW")
            }
        }

        // Power factor.
        let totalKWh = inside.reduce(Decimal(0)) { $0 + BillingMath.decimal($1.kWh) }
        var powerFactor: Double?
        let lacking = inside.filter { $0.kvarh == nil }
        if lacking.isEmpty {
            let kvarh = BillingMath.double(
                inside.reduce(Decimal(0)) { $0 + BillingMath.decimal($1.kvarh ?? 0) })
            let kWh = BillingMath.double(totalKWh)
            let apparent = (kWh * kWh + kvarh * kvarh).squareRoot()
            if apparent > 0 { powerFactor = kWh / apparent }
        }
        var factor: Double?
        if let rule = tariff.powerFactor {
            guard lacking.isEmpty else {
                throw PowerInputError(
                    "tariff \"\(tariff.name)\" adjusts for power factor, which needs kvarh; \(lacking.count) intervals have none (first at \(lacking[0].start))"
                )
            }
            if let powerFactor {
                if powerFactor < rule.target { factor = rule.target / powerFactor }
            } else {
                warnings.append("no energy in the period, so no power factor; demand is not adjusted")
            }
        }
        func demandItems(
            kind: BillLineItem.Kind, name: String, label: String, kW: Decimal, rate: Decimal
        ) {
            items.append(
                BillLineItem(kind: kind, description: label, quantity: kW, unit: "kW", rate: rate))
            guard let factor, let powerFactor, let target = tariff.powerFactor?.target else { return }
            let adjusted = BillingMath.rounded(
                BillingMath.decimal(BillingMath.double(kW) * factor), scale: 3)
            let pf = String(format: "%.4f", powerFactor)
            items.append(
                BillLineItem(
                    kind: .powerFactor,
                    description:
                        "Power-factor adjustment of \(name): PF \(pf) < \(target), kW × \(target) ÷ PF",
                    quantity: adjusted - kW, unit: "kW", rate: rate))
        }
        if let rate = tariff.demandChargePerKW, let maxDemand {
            demandItems(
                kind: .demand, name: "demand", label: "Demand (largest 15-minute kW)", kW: maxDemand.kW,
                rate: rate)
        }
        if let onPeak = tariff.onPeakDemand {
            let names = onPeak.periods.map { tariff.periods[$0] }.joined(separator: ", ")
            demandItems(
                kind: .onPeakDemand, name: "on-peak demand",
                label: "On-peak demand (largest 15-minute kW in \(names))",
                kW: onPeakMax?.kW ?? 0, rate: onPeak.chargePerKW)
        }

        return Bill(
            tariff: tariff.name, currency: tariff.currency, from: from, to: to, lineItems: items,
            total: items.reduce(Decimal(0)) { $0 + $1.amount }, energyKWh: totalKWh, maxDemand: maxDemand,
            onPeakMaxDemand: onPeakMax, powerFactor: powerFactor, intervalSeconds: seconds,
            intervalCount: inside.count, ignoredIntervals: ignored, missingIntervals: missing,
            complete: missing.isEmpty, warnings: warnings)
    }
}

/// One charge on a bill: quantity × rate, rounded half-up to cents.
public struct BillLineItem: Sendable, Hashable, Codable {
    /// What kind of charge a line is.
    public enum Kind: String, Sendable, Hashable, Codable {
        /// Energy in one tariff period.
        case energy
        /// The fixed monthly charge.
        case fixed
        /// The demand charge on the bill's largest 15-minute kW.
        case demand
        /// The on-peak demand charge.
        case onPeakDemand
        /// The extra kW a low power factor adds to a demand charge.
        case powerFactor
    }

    /// What kind of charge this is.
    public var kind: Kind
    /// A human-readable description.
    public var description: String
    /// The quantity billed, in `unit`.
    public var quantity: Decimal
    /// The unit of `quantity`: `kWh`, `kW` or `month`.
    public var unit: String
    /// The price per unit.
    public var rate: Decimal
    /// quantity × rate rounded half-up to cents.
    public var amount: Decimal

    /// Creates a line item, computing its amount.
    public init(kind: Kind, description: String, quantity: Decimal, unit: String, rate: Decimal) {
        self.kind = kind
        self.description = description
        self.quantity = quantity
        self.unit = unit
        self.rate = rate
        self.amount = BillingMath.rounded(quantity * rate, scale: 2)
    }
}
