public import BackchannelProtocol
public import Foundation

/// One device's load over `[from, to)`: energy, peak 15-minute demand, average demand and load
/// factor, and how much data there was.
///
/// An interval counts when `from ≤ start < to`. The average uses only the **hours with data**
/// (interval count × length), so missing intervals neither dilute it nor count as zero;
/// `periodHours` gives the whole period for comparison. Load factor = average kW ÷ peak kW.
/// Rounding: `averageKW` half-up to 0.001 kW, `loadFactor` half-up to 0.0001 (from the
/// unrounded average); energies and the peak are exact.
public struct LoadReport: Sendable, Hashable, Codable {
    /// The device's name.
    public var device: String
    /// The period's first instant (inclusive).
    public var from: Timestamp
    /// The period's end (exclusive).
    public var to: Timestamp
    /// Active energy, kWh.
    public var kWh: Decimal
    /// Reactive energy, kvarh; `nil` unless every interval has kvarh.
    public var kvarh: Decimal?
    /// The largest 15-minute average demand and its quarter hour; `nil` without data or for
    /// interval lengths that do not divide 15 minutes.
    public var peak: DemandPeak?
    /// kWh ÷ `hoursWithData`, kW; `nil` without data.
    public var averageKW: Decimal?
    /// average kW ÷ peak kW; `nil` without a peak or when the peak is 0 kW.
    public var loadFactor: Decimal?
    /// Hours covered by intervals present.
    public var hoursWithData: Decimal
    /// Hours from `from` to `to`.
    public var periodHours: Decimal
    /// The interval length, seconds.
    public var intervalSeconds: Int
    /// How many intervals were present.
    public var intervalCount: Int
    /// How many intervals of the period's grid are missing.
    public var missingCount: Int
    /// The starts of the missing intervals.
    public var missingIntervals: [Timestamp]
    /// What the reader should know.
    public var warnings: [String]

    /// Computes a device's report.
    ///
    /// - Parameter intervalSeconds: the expected interval length; `nil` takes it from the data
    ///   (then a device with no data in the period is an error, since its grid is unknown).
    /// - Throws: `PowerInputError` for bad readings, overlaps, mixed lengths, a length other than
    ///   `intervalSeconds`, or `from ≥ to`.
    public static func compute(
        device: String, intervals: [IntervalReading], from: Timestamp, to: Timestamp,
        intervalSeconds: Int? = nil
    ) throws(PowerInputError) -> LoadReport {
        try compute(device: device, intervals: intervals, from: from, to: to, expected: intervalSeconds)
            .report
    }

    /// The report and the device's complete quarter hours, for group reports.
    static func compute(
        device: String, intervals: [IntervalReading], from: Timestamp, to: Timestamp, expected: Int?
    ) throws(PowerInputError) -> (report: LoadReport, demand: FifteenMinuteDemand?) {
        guard !device.trimmingCharacters(in: .whitespaces).isEmpty else {
            throw PowerInputError("device: the name must not be empty")
        }
        guard from < to else {
            throw PowerInputError("period: from (\(from)) must be before to (\(to))")
        }
        let inside: [IntervalReading]
        do {
            inside = try IntervalSeries.inPeriod(intervals, from: from, to: to)
        } catch {
            throw PowerInputError("device \(device): \(error.message)")
        }
        let lengths = Set(inside.map(\.seconds)).sorted()
        guard lengths.count <= 1 else {
            throw PowerInputError(
                "device \(device): intervals mix lengths \(lengths.map { "\($0) s" }.joined(separator: ", "))"
            )
        }
        if let expected, let length = lengths.first, length != expected {
            throw PowerInputError("device \(device): intervals are \(length) s, expected \(expected) s")
        }
        guard let seconds = lengths.first ?? expected else {
            throw PowerInputError(
                "device \(device): no interval in the period and no interval length given")
        }
        var warnings: [String] = []
        let missing = try IntervalSeries.missingStarts(inside, from: from, to: to, seconds: seconds)
        if !missing.isEmpty {
            warnings.append("\(missing.count) intervals are missing; totals cover the data present")
        }
        let kWh = inside.reduce(Decimal(0)) { $0 + BillingMath.decimal($1.kWh) }
        let kvarh: Decimal? =
            inside.allSatisfy { $0.kvarh != nil }
            ? inside.reduce(Decimal(0)) { $0 + BillingMath.decimal($1.kvarh ?? 0) } : nil
        let demand = try FifteenMinuteDemand(inside)
        if let demand, demand.incompleteBlocks > 0 {
            warnings.append(
                "\(demand.incompleteBlocks) quarter hours lack an interval and are left out of the peak")
        }
        if demand == nil, !inside.isEmpty {
            warnings.append("\(seconds) s intervals do not divide 15 minutes: no 15-minute peak")
        }
        let peak = demand?.peak()
        let hoursWithData = Decimal(inside.count * seconds) / 3600
        let average: Decimal? = inside.isEmpty ? nil : kWh / hoursWithData
        var loadFactor: Decimal?
        if let average, let peak {
            if peak.kW > 0 {
                loadFactor = BillingMath.rounded(average / peak.kW, scale: 4)
            } else {
                warnings.append("the peak is 0 kW, so there is no load factor")
            }
        }
        let report = LoadReport(
            device: device, from: from, to: to, kWh: kWh, kvarh: kvarh, peak: peak,
            averageKW: average.map { BillingMath.rounded($0, scale: 3) }, loadFactor: loadFactor,
            hoursWithData: hoursWithData,
            periodHours: Decimal(to.milliseconds - from.milliseconds) / 3_600_000,
            intervalSeconds: seconds, intervalCount: inside.count, missingCount: missing.count,
            missingIntervals: missing, warnings: warnings)
        return (report, demand)
    }
}

/// One device's interval data, as a group report takes it (JSON `{"device": …, "intervals": […]}`).
public struct DeviceIntervals: Sendable, Hashable, Codable {
    /// The device's name, unique within the group.
    public var device: String
    /// Its readings.
    public var intervals: [IntervalReading]

    /// Creates a device's data.
    public init(device: String, intervals: [IntervalReading]) {
        self.device = device
        self.intervals = intervals
    }
}

/// A group of devices' load over `[from, to)`: each member's report, the group's coincident
/// peak and the sum of the members' own (non-coincident) peaks.
///
/// The coincident peak is the largest sum of the members' 15-minute demand at the same quarter
/// hour. Only quarter hours where **every** member has a complete block count; the others are
/// skipped and counted in `skippedQuarterHours`, so a gap never lowers the sum silently.
public struct GroupLoadReport: Sendable, Hashable, Codable {
    /// The group's name.
    public var group: String
    /// The period's first instant (inclusive).
    public var from: Timestamp
    /// The period's end (exclusive).
    public var to: Timestamp
    /// Each member's report, in the order given.
    public var members: [LoadReport]
    /// The members' energy together, kWh.
    public var kWh: Decimal
    /// The largest simultaneous 15-minute demand of the group; `nil` when no quarter hour has
    /// every member's data.
    public var coincidentPeak: DemandPeak?
    /// The sum of the members' own peaks, kW (members without a peak add nothing and are warned about).
    public var sumOfNonCoincidentPeaksKW: Decimal
    /// Sum of non-coincident peaks ÷ coincident peak, half-up to 0.0001; `nil` without a
    /// coincident peak above 0 kW.
    public var diversityFactor: Decimal?
    /// Quarter hours left out of the coincident peak because a member lacked data there.
    public var skippedQuarterHours: Int
    /// What the reader should know.
    public var warnings: [String]

    /// Computes the group's report.
    ///
    /// - Parameter intervalSeconds: the expected interval length for every member; `nil` takes
    ///   each member's from its data.
    /// - Throws: `PowerInputError` for no members, an empty or repeated device name, or any
    ///   member's error.
    public static func compute(
        group: String, members: [DeviceIntervals], from: Timestamp, to: Timestamp,
        intervalSeconds: Int? = nil
    ) throws(PowerInputError) -> GroupLoadReport {
        guard !members.isEmpty else { throw PowerInputError("group \(group): no members") }
        var seen: Set<String> = []
        for member in members where !seen.insert(member.device).inserted {
            throw PowerInputError("group \(group): device \(member.device) is listed twice")
        }
        var reports: [LoadReport] = []
        var demands: [[Timestamp: Decimal]] = []
        var warnings: [String] = []
        for member in members {
            let (report, demand) = try LoadReport.compute(
                device: member.device, intervals: member.intervals, from: from, to: to,
                expected: intervalSeconds)
            reports.append(report)
            var blocks: [Timestamp: Decimal] = [:]
            for block in demand?.blocks ?? [] { blocks[block.start] = block.kW }
            demands.append(blocks)
            if report.peak == nil {
                warnings.append(
                    "device \(member.device) has no 15-minute peak; it adds nothing to the sum of peaks")
            }
        }
        let starts = Set(demands.flatMap(\.keys)).sorted()
        var peak: (start: Timestamp, kW: Decimal)?
        var skipped = 0
        for start in starts {
            var sum = Decimal(0)
            var whole = true
            for blocks in demands {
                guard let kW = blocks[start] else {
                    whole = false
                    break
                }
                sum += kW
            }
            guard whole else {
                skipped += 1
                continue
            }
            if peak == nil || sum > peak!.kW { peak = (start, sum) }
        }
        if skipped > 0 {
            warnings.append(
                "\(skipped) quarter hours lack some member's data and are left out of the coincident peak")
        }
        let coincident = peak.map {
            DemandPeak(kW: $0.kW, start: $0.start, end: $0.start.adding(seconds: 900))
        }
        let sumOfPeaks = reports.reduce(Decimal(0)) { $0 + ($1.peak?.kW ?? 0) }
        var diversity: Decimal?
        if let coincident, coincident.kW > 0 {
            diversity = BillingMath.rounded(sumOfPeaks / coincident.kW, scale: 4)
        }
        return GroupLoadReport(
            group: group, from: from, to: to, members: reports,
            kWh: reports.reduce(Decimal(0)) { $0 + $1.kWh },
            coincidentPeak: coincident, sumOfNonCoincidentPeaksKW: sumOfPeaks, diversityFactor: diversity,
            skippedQuarterHours: skipped, warnings: warnings)
    }
}
