public import BackchannelProtocol

/// How serious an alarm is; ordered from ``info`` to ``critical``.
public enum AlarmSeverity: String, Sendable, Hashable, Codable, CaseIterable, Comparable {
    /// Worth knowing; nobody needs to act.
    case info
    /// Needs attention soon.
    case warning
    /// Needs action now.
    case critical

    private var rank: Int {
        switch self {
        case .info: 0
        case .warning: 1
        case .critical: 2
        }
    }

    /// Whether `lhs` is less severe than `rhs`.
    public static func < (lhs: AlarmSeverity, rhs: AlarmSeverity) -> Bool { lhs.rank < rhs.rank }
}

/// How a rule compares a reading with its threshold.
public enum AlarmComparison: String, Sendable, Hashable, Codable, CaseIterable {
    /// `value >= threshold`.
    case atLeast
    /// `value <= threshold`.
    case atMost
    /// `value == threshold`; with hysteresis, the alarm stays while `|value - threshold| <= hysteresis`.
    case equals
    /// `value > threshold`.
    case above
    /// `value < threshold`.
    case below
}

/// Which devices a rule applies to: `*` (all), `device:<id>` or `label:<key>=<value>`.
///
/// It is written and encoded as that text.
public struct AlarmSelector: Sendable, Hashable, Codable, CustomStringConvertible {
    private enum Kind: Sendable, Hashable {
        case all
        case device(String)
        case label(String, String)
    }

    private let kind: Kind

    private init(_ kind: Kind) { self.kind = kind }

    /// Every device.
    public static let all = AlarmSelector(.all)
    /// One device, by id.
    public static func device(_ id: String) -> AlarmSelector { AlarmSelector(.device(id)) }
    /// The devices whose label `key` has exactly `value`.
    public static func label(_ key: String, equals value: String) -> AlarmSelector { AlarmSelector(.label(key, value)) }

    /// Parses `*`, `device:<id>` or `label:<key>=<value>`.
    public init(parsing text: String) throws(AlarmError) {
        if text == "*" {
            self.init(.all)
        } else if text.hasPrefix("device:"), text.count > 7 {
            self.init(.device(String(text.dropFirst(7))))
        } else if text.hasPrefix("label:"), let equals = text.firstIndex(of: "=") {
            let key = text[text.index(text.startIndex, offsetBy: 6)..<equals]
            guard !key.isEmpty else { throw .invalidSelector }
            self.init(.label(String(key), String(text[text.index(after: equals)...])))
        } else {
            throw .invalidSelector
        }
    }

    /// Whether a device with these labels is selected.
    public func matches(device: String, labels: [String: String]) -> Bool {
        switch kind {
        case .all: true
        case .device(let id): id == device
        case .label(let key, let value): labels[key] == value
        }
    }

    /// The selector as text, as accepted by ``init(parsing:)``.
    public var description: String {
        switch kind {
        case .all: "*"
        case .device(let id): "device:\(id)"
        case .label(let key, let value): "label:\(key)=\(value)"
        }
    }

    /// Decodes the selector from its text; malformed text is a data-corrupted error.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        do {
            try self.init(parsing: container.decode(String.self))
        } catch let error as AlarmError {
            throw DecodingError.dataCorruptedError(in: container, debugDescription: error.description)
        }
    }

    /// Encodes the selector as its text.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(description)
    }
}

/// A condition on one numeric status value that raises an alarm while it holds.
///
/// The alarm raises when `value <comparison> threshold` becomes true. It clears when the
/// condition is false with a margin of ``clearHysteresis``: a rule `atLeast 80` with hysteresis
/// 5 stays raised at 78 and clears below 75 (`atMost`/`below` shift the other way; `equals`
/// stays raised while `|value - threshold| <= clearHysteresis`). A missing or non-numeric value
/// is no evidence: nothing raises or clears.
public struct AlarmRule: Sendable, Hashable, Codable {
    /// Unique among the engine's rules: 1–64 letters, digits, `.`, `_` or `-`.
    public var id: String
    /// The alarm's name, shown to operators ("high loading").
    public var name: String
    /// Where the value is: a key, or keys joined by `.` walking nested objects (`status.load`).
    public var valuePath: String
    /// How the value is compared with ``threshold``.
    public var comparison: AlarmComparison
    /// The value the reading is compared with.
    public var threshold: Double
    /// The severity of the alarms this rule raises.
    public var severity: AlarmSeverity
    /// Which devices the rule applies to; every device by default.
    public var selector: AlarmSelector
    /// How far past the threshold the value must go back before the alarm clears (≥ 0).
    public var clearHysteresis: Double

    /// Creates a rule.
    public init(
        id: String, name: String, valuePath: String, comparison: AlarmComparison, threshold: Double,
        severity: AlarmSeverity, selector: AlarmSelector = .all, clearHysteresis: Double = 0
    ) {
        self.id = id
        self.name = name
        self.valuePath = valuePath
        self.comparison = comparison
        self.threshold = threshold
        self.severity = severity
        self.selector = selector
        self.clearHysteresis = clearHysteresis
    }

    private enum CodingKeys: String, CodingKey {
        case id, name, valuePath, comparison, threshold, severity, selector, clearHysteresis
    }

    /// Decodes a rule; `selector` defaults to `*` and `clearHysteresis` to 0.
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        self.id = try c.decode(String.self, forKey: .id)
        self.name = try c.decode(String.self, forKey: .name)
        self.valuePath = try c.decode(String.self, forKey: .valuePath)
        self.comparison = try c.decode(AlarmComparison.self, forKey: .comparison)
        self.threshold = try c.decode(Double.self, forKey: .threshold)
        self.severity = try c.decode(AlarmSeverity.self, forKey: .severity)
        self.selector = try c.decodeIfPresent(AlarmSelector.self, forKey: .selector) ?? .all
        self.clearHysteresis = try c.decodeIfPresent(Double.self, forKey: .clearHysteresis) ?? 0
    }

    /// The seed's loading example on a device's `load` (percent): 80 % "high loading" (warning),
    /// 95 % "trip imminent" (critical) and 0 % "breaker tripped" (critical).
    public static let loadingExample: [AlarmRule] = [
        AlarmRule(
            id: "load-high", name: "high loading", valuePath: "load", comparison: .atLeast, threshold: 80,
            severity: .warning),
        AlarmRule(
            id: "load-trip-imminent", name: "trip imminent", valuePath: "load", comparison: .atLeast,
            threshold: 95, severity: .critical),
        AlarmRule(
            id: "load-breaker-tripped", name: "breaker tripped", valuePath: "load", comparison: .equals,
            threshold: 0, severity: .critical),
    ]

    /// Checks the rule; `index` (its position in the list) names it in the error.
    public func validate(index: Int = 0) throws(AlarmError) {
        let idCharacters = id.utf8.allSatisfy {
            switch $0 {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
                UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "-"):
                true
            default: false
            }
        }
        guard !id.isEmpty, id.utf8.count <= 64, idCharacters else {
            throw .invalidRule(index: index, "the id must be 1-64 letters, digits, '.', '_' or '-'")
        }
        guard !name.isEmpty, name.utf8.count <= 200 else {
            throw .invalidRule(index: index, "the name must be 1-200 bytes")
        }
        let segments = valuePath.split(separator: ".", omittingEmptySubsequences: false)
        guard !valuePath.isEmpty, segments.count <= 8, segments.allSatisfy({ !$0.isEmpty }) else {
            throw .invalidRule(index: index, "the value path must be 1-8 non-empty keys joined by '.'")
        }
        guard threshold.isFinite else {
            throw .invalidRule(index: index, "the threshold must be a finite number")
        }
        guard clearHysteresis.isFinite, clearHysteresis >= 0 else {
            throw .invalidRule(index: index, "the clear hysteresis must be a finite number >= 0")
        }
    }

    /// The numeric value at ``valuePath``, or nil when it is missing or not a number.
    public func reading(in values: [String: JSONValue]) -> Double? {
        var segments = valuePath.split(separator: ".")[...]
        guard let first = segments.popFirst() else { return nil }
        var current = values[String(first)]
        for segment in segments {
            current = current?[String(segment)]
        }
        return current?.doubleValue
    }

    /// Whether a reading raises the alarm (the condition holds).
    public func raises(_ value: Double) -> Bool { holds(value, margin: 0) }

    /// Whether a reading clears a raised alarm (the condition fails by the hysteresis margin).
    public func clears(_ value: Double) -> Bool { !holds(value, margin: clearHysteresis) }

    private func holds(_ value: Double, margin: Double) -> Bool {
        switch comparison {
        case .atLeast: value >= threshold - margin
        case .above: value > threshold - margin
        case .atMost: value <= threshold + margin
        case .below: value < threshold + margin
        case .equals: abs(value - threshold) <= margin
        }
    }
}

/// An alarm-engine failure: a bad rule or escalation policy, or a refused acknowledgement.
///
/// The description names rules by position and never contains readings, thresholds or ids.
public struct AlarmError: Error, Sendable, Hashable, CustomStringConvertible {
    private enum Code: Sendable, Hashable {
        case invalidRule, duplicateRuleID, invalidSelector, invalidEscalation, unknownAlarm, alreadyAcknowledged
        case notSubscribed
    }

    private let code: Code
    /// What went wrong.
    public let message: String

    private init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    /// The rule at `index` is malformed.
    public static func invalidRule(index: Int, _ problem: String) -> AlarmError {
        AlarmError(.invalidRule, "rules[\(index)]: \(problem)")
    }
    /// The rule at `index` has the id of an earlier rule.
    public static func duplicateRuleID(index: Int) -> AlarmError {
        AlarmError(.duplicateRuleID, "rules[\(index)]: the id is already used by an earlier rule")
    }
    /// A selector is not `*`, `device:<id>` or `label:<key>=<value>`.
    public static let invalidSelector = AlarmError(
        .invalidSelector, "a selector must be '*', 'device:<id>' or 'label:<key>=<value>'")
    /// The escalation policy is malformed.
    public static func invalidEscalation(_ problem: String) -> AlarmError {
        AlarmError(.invalidEscalation, "escalation: \(problem)")
    }
    /// No alarm has this id (it never existed or was pruned).
    public static let unknownAlarm = AlarmError(.unknownAlarm, "no such alarm")
    /// The alarm was acknowledged before; the first acknowledgement stands.
    public static let alreadyAcknowledged = AlarmError(.alreadyAcknowledged, "the alarm is already acknowledged")
    /// The operator is not on the alarm's escalation list.
    public static let notSubscribed = AlarmError(
        .notSubscribed, "the operator is not on this alarm's escalation list")

    /// Whether a rule, selector or escalation policy was rejected.
    public var isInvalidConfiguration: Bool {
        [.invalidRule, .duplicateRuleID, .invalidSelector, .invalidEscalation].contains(code)
    }
    /// Whether this is ``unknownAlarm``.
    public var isUnknownAlarm: Bool { code == .unknownAlarm }
    /// Whether this is ``alreadyAcknowledged``.
    public var isAlreadyAcknowledged: Bool { code == .alreadyAcknowledged }
    /// Whether this is ``notSubscribed``.
    public var isNotSubscribed: Bool { code == .notSubscribed }

    /// The message; it names rules by position only.
    public var description: String { message }

    /// Errors are equal when they are the same kind of error, whatever the message.
    public static func == (lhs: AlarmError, rhs: AlarmError) -> Bool { lhs.code == rhs.code }
    /// Hashes the kind of error.
    public func hash(into hasher: inout Hasher) { hasher.combine(code) }
}
