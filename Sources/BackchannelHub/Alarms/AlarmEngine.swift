public import BackchannelProtocol

/// Raises alarms from device status values and escalates them through operators until one
/// acknowledges. A pure state machine: no I/O, no clock (every call takes `now`), no randomness.
///
/// Use it under the caller's lock or inside an actor. Feed it readings with
/// ``evaluate(device:labels:values:at:)``, operator presence with
/// ``setOperator(_:available:at:)``, and call ``tick(at:)`` at ``nextEscalation``. Every call
/// returns the ``AlarmEvent``s to publish, in the order they happened.
///
/// ## Lifecycle
///
/// | From | On | To | Escalation |
/// |---|---|---|---|
/// | — | the rule's condition becomes true | `raised` | offered to the first available operator on the list |
/// | `raised` | `escalatesAt` passes unacknowledged | `raised` | escalated to the next available operator after the holder; none → `exhausted`, stays with the holder |
/// | `raised` | a later operator becomes available while `exhausted` | `raised` | escalated to that operator |
/// | `raised` | the holder becomes unavailable | `raised` | next available after the holder, else the first available before it, else nobody (offered to whoever becomes available first) |
/// | `raised` | an operator on the list acknowledges | `acknowledged` | stops |
/// | `raised` | the condition ends, past the hysteresis | `cleared` | stops; still acknowledgeable |
/// | `acknowledged` | the condition ends | `acknowledgedAndCleared` | — |
/// | `cleared` | an operator on the list acknowledges | `acknowledgedAndCleared` | — |
///
/// Decisions:
/// - **No wrap-around on timeout.** After the last available operator the alarm stays with
///   them, flagged ``Alarm/exhausted``, with no further deadline. Only a holder leaving moves an
///   alarm back up the list, so it never sits with someone who is not there.
/// - **Any operator on the alarm's list may acknowledge** (not only the holder); the engine
///   records who. With an empty list, any operator may.
/// - **Acknowledged once.** The first acknowledgement wins; later ones are refused with
///   ``AlarmError/alreadyAcknowledged``.
/// - **A cleared alarm can still be acknowledged**, so an operator can confirm seeing a
///   transient condition; it no longer escalates.
/// - At most one open alarm per (device, rule). A missing or non-numeric value changes nothing.
/// - Each operator gets a full `escalateAfter` from the moment it is offered the alarm, so a
///   late ``tick(at:)`` escalates one step, never several at once.
public struct AlarmEngine: Sendable {
    /// The rules, in evaluation order.
    public let rules: [AlarmRule]
    /// Who is told, in what order, and how fast alarms escalate.
    public let escalation: EscalationPolicy

    private struct OpenKey: Hashable, Sendable {
        var device: String
        var rule: String
    }

    private var available: Set<String> = []
    private var alarms: [String: Alarm] = [:]
    private var order: [String] = []
    private var open: [OpenKey: String] = [:]
    private var raisedCount = 0

    /// Creates an engine after checking the rules and the policy; no operator is available yet.
    public init(rules: [AlarmRule], escalation: EscalationPolicy = EscalationPolicy()) throws(AlarmError) {
        var ids = Set<String>()
        for (index, rule) in rules.enumerated() {
            try rule.validate(index: index)
            guard ids.insert(rule.id).inserted else { throw .duplicateRuleID(index: index) }
        }
        try escalation.validate(ruleIDs: ids)
        self.rules = rules
        self.escalation = escalation
    }

    // MARK: Queries

    /// The alarms whose condition still holds, oldest first.
    /// Puts back alarms saved before a restart (kept for rules that still exist). Operators are
    /// absent until their sessions reconnect.
    public mutating func restore(_ saved: [Alarm]) {
        let ruleIDs = Set(rules.map(\.id))
        for alarm in saved where alarms[alarm.id] == nil && ruleIDs.contains(alarm.ruleID) {
            alarms[alarm.id] = alarm
            order.append(alarm.id)
            if alarm.state.isOpen { open[OpenKey(device: alarm.device, rule: alarm.ruleID)] = alarm.id }
            if let n = alarm.id.split(separator: ":").last.flatMap({ Int($0) }) { raisedCount = max(raisedCount, n) }
        }
    }

    public var openAlarms: [Alarm] { order.compactMap { alarms[$0] }.filter(\.state.isOpen) }

    /// Every alarm kept, open and cleared, oldest first.
    public var allAlarms: [Alarm] { order.compactMap { alarms[$0] } }

    /// One alarm, by id.
    public func alarm(_ id: String) -> Alarm? { alarms[id] }

    /// The operators currently available.
    public var availableOperators: Set<String> { available }

    /// The earliest time an unacknowledged alarm escalates: when to call ``tick(at:)`` next.
    public var nextEscalation: Timestamp? { alarms.values.compactMap(\.escalatesAt).min() }

    // MARK: Events

    /// Checks one device's values against the rules that select it: raises alarms whose
    /// condition became true (offering each to an operator) and clears those whose condition ended.
    ///
    /// `values` is a status object; a rule's ``AlarmRule/valuePath`` walks nested objects.
    public mutating func evaluate(
        device: String, labels: [String: String] = [:], values: [String: JSONValue], at now: Timestamp
    ) -> [AlarmEvent] {
        var events: [AlarmEvent] = []
        for rule in rules where rule.selector.matches(device: device, labels: labels) {
            guard let value = rule.reading(in: values) else { continue }
            let key = OpenKey(device: device, rule: rule.id)
            if let id = open[key] {
                guard rule.clears(value) else { continue }
                open[key] = nil
                apply(id, AlarmStep(at: now, kind: .cleared, value: value), to: &events) { alarm in
                    alarm.state = alarm.state.isAcknowledged ? .acknowledgedAndCleared : .cleared
                    alarm.clearedAt = now
                    alarm.escalatesAt = nil
                }
            } else if rule.raises(value) {
                raisedCount += 1
                let id = "\(device):\(rule.id):\(raisedCount)"
                let alarm = Alarm(
                    id: id, device: device, ruleID: rule.id, name: rule.name, severity: rule.severity, value: value,
                    raisedAt: now, state: .raised, offeredTo: nil, escalationLevel: 0, escalatesAt: nil,
                    exhausted: false, acknowledgedBy: nil, acknowledgedAt: nil, clearedAt: nil, history: [])
                alarms[id] = alarm
                order.append(id)
                open[key] = id
                apply(id, AlarmStep(at: now, kind: .raised, value: value), to: &events) { _ in }
                route(id, at: now, into: &events)
            }
        }
        return events
    }

    /// Records whether an operator is available (a connected dashboard or CLI session), then
    /// moves alarms as ``tick(at:)`` does: away from an operator who left, to one who arrived.
    public mutating func setOperator(_ id: String, available isAvailable: Bool, at now: Timestamp) -> [AlarmEvent] {
        if isAvailable {
            available.insert(id)
        } else {
            available.remove(id)
        }
        return tick(at: now)
    }

    /// Escalates the alarms whose deadline is due at `now` and moves alarms held by unavailable
    /// operators; before a deadline, and with nothing else changed, it does nothing.
    public mutating func tick(at now: Timestamp) -> [AlarmEvent] {
        var events: [AlarmEvent] = []
        for id in order where alarms[id]?.state == .raised {
            route(id, at: now, into: &events)
        }
        return events
    }

    /// Acknowledges an alarm, open or already cleared, on behalf of an operator on its
    /// escalation list. The first acknowledgement wins and stops escalation.
    public mutating func acknowledge(
        _ alarmID: String, by operatorID: String, at now: Timestamp
    ) throws(AlarmError) -> [AlarmEvent] {
        guard let alarm = alarms[alarmID] else { throw .unknownAlarm }
        let operators = escalation.list(for: alarm.ruleID).operators
        guard operators.isEmpty || operators.contains(operatorID) else { throw .notSubscribed }
        guard !alarm.state.isAcknowledged else { throw .alreadyAcknowledged }
        var events: [AlarmEvent] = []
        apply(alarmID, AlarmStep(at: now, kind: .acknowledged, operator: operatorID), to: &events) { alarm in
            alarm.state = alarm.state.isOpen ? .acknowledged : .acknowledgedAndCleared
            alarm.acknowledgedBy = operatorID
            alarm.acknowledgedAt = now
            alarm.escalatesAt = nil
        }
        return events
    }

    /// Forgets cleared alarms that cleared before `cutoff`, acknowledged or not; returns how many.
    @discardableResult
    public mutating func prune(clearedBefore cutoff: Timestamp, keepingAtMost limit: Int = .max) -> Int {
        var gone = Set(order.filter { id in alarms[id]?.clearedAt.map { $0 < cutoff } ?? false })
        // Beyond the cap, the oldest cleared alarms go first (open ones are always kept).
        let excess = order.count - gone.count - limit
        if excess > 0 {
            let current = alarms
            let already = gone
            gone.formUnion(order.filter { !already.contains($0) && current[$0]?.clearedAt != nil }.prefix(excess))
        }
        guard !gone.isEmpty else { return 0 }
        for id in gone { alarms[id] = nil }
        order.removeAll(where: gone.contains)
        return gone.count
    }

    // MARK: Routing

    /// Puts an unacknowledged open alarm where it belongs at `now` (see the lifecycle table).
    private mutating func route(_ id: String, at now: Timestamp, into events: inout [AlarmEvent]) {
        guard let alarm = alarms[id], alarm.state == .raised else { return }
        let list = escalation.list(for: alarm.ruleID)
        let operators = list.operators
        func firstAvailable(_ range: Range<Int>) -> Int? {
            range.first { available.contains(operators[$0]) }
        }
        func hand(to index: Int, _ kind: AlarmChange, _ detail: String?) {
            let step = AlarmStep(at: now, kind: kind, operator: operators[index], detail: detail)
            apply(id, step, to: &events) { alarm in
                alarm.offeredTo = operators[index]
                alarm.escalatesAt = now.adding(seconds: list.escalateAfter)
                alarm.exhausted = false
                if kind == .escalated { alarm.escalationLevel += 1 }
            }
        }
        func exhaust(holder: String?, _ detail: String) {
            apply(id, AlarmStep(at: now, kind: .exhausted, operator: holder, detail: detail), to: &events) { alarm in
                alarm.offeredTo = holder
                alarm.escalatesAt = nil
                alarm.exhausted = true
            }
        }

        guard let holder = alarm.offeredTo, let position = operators.firstIndex(of: holder) else {
            if let next = firstAvailable(0..<operators.count) {
                hand(to: next, .offered, nil)
            } else if !alarm.exhausted {
                exhaust(holder: nil, "no operator available")
            }
            return
        }
        let later = position + 1..<operators.count
        if !available.contains(holder) {
            if let next = firstAvailable(later) ?? firstAvailable(0..<position) {
                hand(to: next, .escalated, "operator unavailable")
            } else {
                exhaust(holder: nil, "operator unavailable; no operator available")
            }
        } else if let deadline = alarm.escalatesAt, now >= deadline {
            if let next = firstAvailable(later) {
                hand(to: next, .escalated, "not acknowledged in time")
            } else {
                exhaust(holder: holder, "not acknowledged in time; no further operator available")
            }
        } else if alarm.exhausted, let next = firstAvailable(later) {
            hand(to: next, .escalated, "a further operator became available")
        }
    }

    /// Changes an alarm, appends the step to its history and reports it as an event.
    private mutating func apply(
        _ id: String, _ step: AlarmStep, to events: inout [AlarmEvent], _ change: (inout Alarm) -> Void
    ) {
        guard var alarm = alarms[id] else { return }
        change(&alarm)
        alarm.history.append(step)
        alarms[id] = alarm
        events.append(AlarmEvent(alarm, step))
    }
}
