public import BackchannelProtocol
import Foundation

/// An IEEE 1159-2019 RMS-variation category.
public enum IEEE1159Category: String, Sendable, Hashable, Codable, CaseIterable {
    /// A short-duration decrease to 0.1–0.9 pu.
    case sag
    /// A short-duration increase above 1.1 pu.
    case swell
    /// A decrease below 0.1 pu.
    case interruption
    /// A long-duration (> 1 min) decrease to 0.8–0.9 pu.
    case undervoltage
    /// A long-duration (> 1 min) increase to 1.1–1.2 pu.
    case overvoltage
}

/// An IEEE 1159-2019 duration band.
public enum IEEE1159Duration: String, Sendable, Hashable, Codable, CaseIterable {
    /// 0.5 cycles ≤ d ≤ 30 cycles.
    case instantaneous
    /// 30 cycles < d ≤ 3 s (interruptions: 0.5 cycles ≤ d ≤ 3 s).
    case momentary
    /// 3 s < d ≤ 60 s.
    case temporary
    /// d > 60 s (long-duration variations).
    case sustained
}

/// The IEEE 1159-2019 class of an RMS variation from its magnitude and duration.
///
/// `m` is the residual in per unit of nominal (the minimum for a decrease, the maximum for an
/// increase); `d` is the duration; a cycle is 1/50 or 1/60 s. Each duration band is closed at
/// its upper end and open at its lower end, except the lowest (0.5 cycles is included):
///
/// | Class                  | Duration d                  | Magnitude m        |
/// |------------------------|-----------------------------|--------------------|
/// | instantaneous sag      | 0.5 cycles ≤ d ≤ 30 cycles  | 0.1 ≤ m < 0.9      |
/// | momentary sag          | 30 cycles < d ≤ 3 s         | 0.1 ≤ m < 0.9      |
/// | temporary sag          | 3 s < d ≤ 60 s              | 0.1 ≤ m < 0.9      |
/// | undervoltage           | d > 60 s                    | 0.8 ≤ m < 0.9      |
/// | instantaneous swell    | 0.5 cycles ≤ d ≤ 30 cycles  | 1.1 < m ≤ 1.8      |
/// | momentary swell        | 30 cycles < d ≤ 3 s         | 1.1 < m ≤ 1.4      |
/// | temporary swell        | 3 s < d ≤ 60 s              | 1.1 < m ≤ 1.2      |
/// | overvoltage            | d > 60 s                    | 1.1 < m ≤ 1.2      |
/// | momentary interruption | 0.5 cycles ≤ d ≤ 3 s        | m < 0.1            |
/// | temporary interruption | 3 s < d ≤ 60 s              | m < 0.1            |
/// | sustained interruption | d > 60 s                    | m < 0.1            |
///
/// IEEE 1159 has no instantaneous interruption: one of 30 cycles or less is momentary.
/// 0.9 pu and 1.1 pu themselves are not events (IEC 61000-4-30 starts a dip *below* and a
/// swell *above* the threshold). Everything else is **unclassified** (`category == nil`):
/// d < 0.5 cycles; 0.9 ≤ m ≤ 1.1; a decrease to 0.1 ≤ m < 0.8 lasting more than 60 s; a swell
/// above its band's limit (say 1.5 pu for 10 s). Comparisons are exact on `Double`: the
/// duration bounds are `0.5 ÷ f`, `30 ÷ f`, `3` and `60` seconds.
public struct PQClassification: Sendable, Hashable, Codable {
    /// The category, or `nil` when the variation is outside the table.
    public var category: IEEE1159Category?
    /// The duration band, or `nil` when d < 0.5 cycles.
    public var duration: IEEE1159Duration?
    /// False when the variation is outside every category of the table.
    public var classified: Bool
    /// A readable class such as "momentary sag", or "unclassified: …" with the reason.
    public var label: String
    /// The magnitude, per unit of nominal.
    public var magnitudePerUnit: Double
    /// The duration, s.
    public var durationSeconds: Double
    /// The duration in cycles of the system frequency.
    public var durationCycles: Double

    /// Classifies a variation of `magnitudePerUnit` lasting `durationSeconds` on a
    /// `frequencyHz` (50 or 60) system, following the table above.
    public init(magnitudePerUnit m: Double, durationSeconds d: Double, frequencyHz: Int)
        throws(PowerInputError)
    {
        guard m.isFinite, m >= 0 else {
            throw PowerInputError("magnitudePerUnit must be a finite number ≥ 0")
        }
        guard d.isFinite, d >= 0 else {
            throw PowerInputError("durationSeconds must be a finite number ≥ 0")
        }
        guard frequencyHz == 50 || frequencyHz == 60 else {
            throw PowerInputError("frequencyHz must be 50 or 60, not \(frequencyHz)")
        }
        let f = Double(frequencyHz)
        magnitudePerUnit = m
        durationSeconds = d
        durationCycles = d * f
        let band: IEEE1159Duration? =
            if d < 0.5 / f {
                nil
            } else if d <= 30 / f {
                .instantaneous
            } else if d <= 3 {
                .momentary
            } else if d <= 60 {
                .temporary
            } else {
                .sustained
            }
        duration = band
        let text = "\(Self.format(m)) pu for \(Self.format(d)) s"
        guard let band else {
            category = nil
            classified = false
            label = "unclassified: \(text) is shorter than half a cycle"
            return
        }
        let found: (IEEE1159Category, IEEE1159Duration)?
        var why = ""
        if m < 0.1 {
            found = (.interruption, band == .instantaneous ? .momentary : band)
        } else if m < 0.9 {
            if band != .sustained {
                found = (.sag, band)
            } else if m >= 0.8 {
                found = (.undervoltage, .sustained)
            } else {
                found = nil
                why = "a decrease below 0.8 pu lasting more than 60 s is in no IEEE 1159 category"
            }
        } else if m <= 1.1 {
            found = nil
            why = "0.9–1.1 pu is within the normal band"
        } else {
            let limit: Double =
                switch band {
                case .instantaneous: 1.8
                case .momentary: 1.4
                case .temporary, .sustained: 1.2
                }
            if m <= limit {
                found = (band == .sustained ? .overvoltage : .swell, band)
            } else {
                found = nil
                why = "above the \(Self.format(limit)) pu limit for a \(band.rawValue) swell"
            }
        }
        if let (category, band) = found {
            self.category = category
            duration = band
            classified = true
            label =
                switch category {
                case .undervoltage, .overvoltage: category.rawValue
                default: "\(band.rawValue) \(category.rawValue)"
                }
        } else {
            category = nil
            classified = false
            label = "unclassified: \(text): \(why)"
        }
    }

    /// A short decimal for labels: up to four fraction digits, trailing zeros dropped.
    private static func format(_ value: Double) -> String {
        var text = String(format: "%.4f", value)
        while text.hasSuffix("0") { text.removeLast() }
        if text.hasSuffix(".") { text.removeLast() }
        return text
    }
}

/// What `RMSSynthesizer` should produce: a step from nominal to `magnitudePerUnit` and back.
public struct RMSSynthesisRequest: Sendable, Hashable, Codable {
    /// The event to simulate: dip and interruption need magnitude < 1, swell > 1.
    public var kind: PQEventKind
    /// The event's residual voltage in per unit of nominal (0.5 is a dip *to* 50 %).
    public var magnitudePerUnit: Double
    /// How long the event lasts, s: a whole number of half cycles.
    public var durationSeconds: Double
    /// The nominal voltage, V.
    public var nominalVolts: Double
    /// 50 or 60 Hz.
    public var frequencyHz: Int
    /// Seconds at nominal before the event: a whole number of half cycles.
    public var preSeconds: Double
    /// Seconds at nominal after the event: a whole number of half cycles (0 leaves it open).
    public var postSeconds: Double
    /// The time of the first value.
    public var start: Timestamp

    /// Creates a request.
    public init(
        kind: PQEventKind, magnitudePerUnit: Double, durationSeconds: Double, nominalVolts: Double,
        frequencyHz: Int, preSeconds: Double, postSeconds: Double, start: Timestamp
    ) {
        self.kind = kind
        self.magnitudePerUnit = magnitudePerUnit
        self.durationSeconds = durationSeconds
        self.nominalVolts = nominalVolts
        self.frequencyHz = frequencyHz
        self.preSeconds = preSeconds
        self.postSeconds = postSeconds
        self.start = start
    }
}

/// Makes half-cycle RMS series for simulated meters: pure and deterministic.
///
/// The series is `pre` values at nominal, `duration` values at `magnitude × nominal`, then
/// `post` values at nominal, one half cycle apart (a clean step, no ramp or noise). Run
/// through `PQEventDetector`, an event deeper than the thresholds comes out with exactly the
/// requested duration, because the first value after it is nominal.
public enum RMSSynthesizer {
    /// The most seconds one series may span (pre + event + post).
    public static let maximumSeconds = 3600.0

    /// Builds the series for `request`, or says which field is wrong.
    public static func series(for request: RMSSynthesisRequest) throws(PowerInputError) -> RMSSeries {
        let f = request.frequencyHz
        guard f == 50 || f == 60 else {
            throw PowerInputError("frequencyHz must be 50 or 60, not \(f)")
        }
        guard request.nominalVolts.isFinite, request.nominalVolts > 0 else {
            throw PowerInputError("nominalVolts must be a finite number > 0")
        }
        let m = request.magnitudePerUnit
        guard m.isFinite, m >= 0 else {
            throw PowerInputError("magnitudePerUnit must be a finite number ≥ 0")
        }
        switch request.kind {
        case .dip, .interruption:
            guard m < 1 else {
                throw PowerInputError("magnitudePerUnit must be < 1 for a \(request.kind.rawValue)")
            }
        case .swell:
            guard m > 1 else { throw PowerInputError("magnitudePerUnit must be > 1 for a swell") }
        }
        let pre = try halfCycles(request.preSeconds, field: "preSeconds", frequencyHz: f)
        let event = try halfCycles(request.durationSeconds, field: "durationSeconds", frequencyHz: f)
        let post = try halfCycles(request.postSeconds, field: "postSeconds", frequencyHz: f)
        guard event >= 1 else {
            throw PowerInputError("durationSeconds must be at least one half cycle")
        }
        guard request.preSeconds + request.durationSeconds + request.postSeconds <= maximumSeconds
        else {
            throw PowerInputError(
                "preSeconds + durationSeconds + postSeconds must be ≤ \(Int(maximumSeconds))")
        }
        let nominal = request.nominalVolts
        let values =
            Array(repeating: nominal, count: pre) + Array(repeating: m * nominal, count: event)
            + Array(repeating: nominal, count: post)
        return RMSSeries(nominalVolts: nominal, frequencyHz: f, start: request.start, vrms: values)
    }

    /// `seconds` as a count of half cycles, when it is a whole number of them (within 1e-6).
    private static func halfCycles(_ seconds: Double, field: String, frequencyHz: Int)
        throws(PowerInputError) -> Int
    {
        guard seconds.isFinite, seconds >= 0 else {
            throw PowerInputError("\(field) must be a finite number ≥ 0")
        }
        let exact = seconds * Double(2 * frequencyHz)
        let count = exact.rounded()
        guard abs(exact - count) <= 1e-6, count <= maximumSeconds * 120 else {
            throw PowerInputError(
                "\(field) must be a whole number of half cycles (1/\(2 * frequencyHz) s) and at most \(Int(maximumSeconds)) s"
            )
        }
        return Int(count)
    }
}
