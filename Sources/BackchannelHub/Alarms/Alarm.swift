public import BackchannelProtocol

/// Where an alarm is in its lifecycle: open or cleared, acknowledged or not.
public enum AlarmState: String, Sendable, Hashable, Codable, CaseIterable {
    /// The condition holds and nobody has acknowledged it.
    case raised
    /// The condition holds and an operator acknowledged it.
    case acknowledged
    /// The condition ended before anyone acknowledged it; it can still be acknowledged.
    case cleared
    /// Acknowledged and cleared: nothing more can happen to it.
    case acknowledgedAndCleared = "acknowledged_and_cleared"

    /// Whether the condition still holds.
    public var isOpen: Bool { self == .raised || self == .acknowledged }
    /// Whether an operator acknowledged the alarm.
    public var isAcknowledged: Bool { self == .acknowledged || self == .acknowledgedAndCleared }
}

/// What happened to an alarm: the kind of an ``AlarmStep`` and of an ``AlarmEvent``.
public enum AlarmChange: String, Sendable, Hashable, Codable, CaseIterable {
    /// A rule's condition became true.
    case raised
    /// The alarm was given to an operator while nobody held it.
    case offered
    /// The alarm moved from one operator to the next (timeout, or the holder left).
    case escalated
    /// Nobody further is available: it stays with its holder (or with nobody) unacknowledged.
    case exhausted
    /// An operator acknowledged the alarm.
    case acknowledged
    /// The rule's condition ended.
    case cleared
}

/// One entry of an alarm's history.
public struct AlarmStep: Sendable, Hashable, Codable {
    /// When it happened.
    public var at: Timestamp
    /// What happened.
    public var kind: AlarmChange
    /// The operator it was offered or escalated to, or who acknowledged it.
    public var `operator`: String?
    /// The reading, for ``AlarmChange/raised`` and ``AlarmChange/cleared``.
    public var value: Double?
    /// Why, in a few words ("not acknowledged in time", "operator unavailable").
    public var detail: String?

    /// Creates a step.
    public init(at: Timestamp, kind: AlarmChange, operator: String? = nil, value: Double? = nil, detail: String? = nil)
    {
        self.at = at
        self.kind = kind
        self.operator = `operator`
        self.value = value
        self.detail = detail
    }
}

/// One alarm: raised by a rule on one device, offered to operators, acknowledged once, cleared
/// when the condition ends, then kept as history.
public struct Alarm: Sendable, Hashable, Codable, Identifiable {
    /// `<device>:<rule id>:<n>`, where `n` counts the alarms the engine raised.
    public internal(set) var id: String
    /// The device whose value raised it.
    public internal(set) var device: String
    /// The rule that raised it.
    public internal(set) var ruleID: String
    /// The rule's name ("high loading").
    public internal(set) var name: String
    /// The rule's severity.
    public internal(set) var severity: AlarmSeverity
    /// The reading that raised it.
    public internal(set) var value: Double
    /// When it was raised.
    public internal(set) var raisedAt: Timestamp
    /// Where it is in its lifecycle.
    public internal(set) var state: AlarmState
    /// The operator holding it (offered or escalated to), or nil when nobody is available.
    public internal(set) var offeredTo: String?
    /// How many times it moved from one operator to another.
    public internal(set) var escalationLevel: Int
    /// When it escalates unless acknowledged; nil once acknowledged, cleared or exhausted.
    public internal(set) var escalatesAt: Timestamp?
    /// Whether no further operator was available to escalate to.
    public internal(set) var exhausted: Bool
    /// Who acknowledged it.
    public internal(set) var acknowledgedBy: String?
    /// When it was acknowledged.
    public internal(set) var acknowledgedAt: Timestamp?
    /// When the condition ended.
    public internal(set) var clearedAt: Timestamp?
    /// Everything that happened to it, oldest first.
    public internal(set) var history: [AlarmStep]

    /// Whether it still waits for an operator: open and not acknowledged.
    var isPending: Bool { state == .raised }
}

/// A change to publish: which alarm, and what happened to it.
public struct AlarmEvent: Sendable, Hashable, Codable {
    /// The alarm's id.
    public var alarmID: String
    /// The alarm's device.
    public var device: String
    /// The rule that raised the alarm.
    public var ruleID: String
    /// The alarm's name.
    public var name: String
    /// The alarm's severity.
    public var severity: AlarmSeverity
    /// What happened (the step also appended to the alarm's history).
    public var step: AlarmStep

    /// Creates the event for a step of an alarm.
    public init(_ alarm: Alarm, _ step: AlarmStep) {
        self.alarmID = alarm.id
        self.device = alarm.device
        self.ruleID = alarm.ruleID
        self.name = alarm.name
        self.severity = alarm.severity
        self.step = step
    }

    /// What happened.
    public var kind: AlarmChange { step.kind }
    /// The operator offered to, escalated to, or who acknowledged.
    public var `operator`: String? { step.operator }
    /// When it happened.
    public var at: Timestamp { step.at }
}

/// Who is told about an alarm, in order, and how long each has to acknowledge it.
public struct EscalationList: Sendable, Hashable, Codable {
    /// Operator ids, first choice first; each at most once.
    public var operators: [String]
    /// Seconds an operator holds an unacknowledged alarm before it escalates (> 0).
    public var escalateAfter: Double

    /// Creates a list.
    public init(_ operators: [String] = [], escalateAfter: Double = 60) {
        self.operators = operators
        self.escalateAfter = escalateAfter
    }

    private enum CodingKeys: String, CodingKey {
        case operators, escalateAfter
    }

    /// Decodes a list; `escalateAfter` defaults to 60 seconds.
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        self.operators = try c.decode([String].self, forKey: .operators)
        self.escalateAfter = try c.decodeIfPresent(Double.self, forKey: .escalateAfter) ?? 60
    }
}

/// The escalation lists: one per rule where given, the default list for the other rules.
public struct EscalationPolicy: Sendable, Hashable, Codable {
    /// The list for rules without their own.
    public var defaultList: EscalationList
    /// Lists for particular rules, by rule id.
    public var perRule: [String: EscalationList]

    /// Creates a policy.
    public init(default defaultList: EscalationList = EscalationList(), perRule: [String: EscalationList] = [:]) {
        self.defaultList = defaultList
        self.perRule = perRule
    }

    private enum CodingKeys: String, CodingKey {
        case defaultList, perRule
    }

    /// Decodes a policy; both parts are optional (no operators by default, no per-rule lists).
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        self.defaultList = try c.decodeIfPresent(EscalationList.self, forKey: .defaultList) ?? EscalationList()
        self.perRule = try c.decodeIfPresent([String: EscalationList].self, forKey: .perRule) ?? [:]
    }

    /// The list for a rule.
    public func list(for ruleID: String) -> EscalationList { perRule[ruleID] ?? defaultList }

    /// Checks every list, and that per-rule lists name existing rules.
    public func validate(ruleIDs: Set<String>) throws(AlarmError) {
        guard perRule.keys.allSatisfy(ruleIDs.contains) else {
            throw .invalidEscalation("a per-rule list names a rule that does not exist")
        }
        for list in [defaultList] + perRule.values {
            guard list.escalateAfter.isFinite, list.escalateAfter > 0 else {
                throw .invalidEscalation("escalateAfter must be a finite number of seconds > 0")
            }
            guard list.operators.allSatisfy({ !$0.isEmpty }), Set(list.operators).count == list.operators.count else {
                throw .invalidEscalation("operator ids must be non-empty and appear once per list")
            }
        }
    }
}
