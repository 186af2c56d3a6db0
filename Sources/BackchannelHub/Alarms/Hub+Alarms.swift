public import BackchannelProtocol
import BackchannelStore
import Logging
public import ServiceLifecycle
import Synchronization

/// The alarm configuration: rules on status values, and who is alerted in which order.
public struct AlarmConfiguration: Sendable, Hashable, Codable {
    /// The rules.
    public var rules: [AlarmRule]
    /// The escalation lists.
    public var escalation: EscalationPolicy

    /// Creates a configuration.
    public init(rules: [AlarmRule], escalation: EscalationPolicy) {
        self.rules = rules
        self.escalation = escalation
    }
}

/// The hub's alarms: the ``AlarmEngine`` under a lock, fed by device status values and
/// readings, with operators' presence from their live alarm subscriptions.
public final class AlarmService: Sendable {
    private struct State {
        var engine: AlarmEngine
        /// Open subscriptions per operator: an operator with one is present.
        var connections: [String: Int] = [:]
        /// Changed since the last save.
        var dirty = false
    }

    private let state: Mutex<State>

    init() {
        // An empty configuration cannot be invalid.
        self.state = Mutex(State(engine: try! AlarmEngine(rules: [])))
    }

    /// The current configuration.
    public var configuration: AlarmConfiguration {
        state.withLock { AlarmConfiguration(rules: $0.engine.rules, escalation: $0.engine.escalation) }
    }

    /// Replaces the rules and lists. Open alarms are kept only under an unchanged engine;
    /// a new configuration starts with none (they are in the history of the events).
    func configure(_ configuration: AlarmConfiguration, at now: Timestamp) throws(AlarmError) -> [AlarmEvent] {
        var engine = try AlarmEngine(rules: configuration.rules, escalation: configuration.escalation)
        return state.withLock { state in
            var events: [AlarmEvent] = []
            for (id, count) in state.connections where count > 0 {
                events += engine.setOperator(id, available: true, at: now)
            }
            state.engine = engine
            state.dirty = true
            return events
        }
    }

    /// The configuration and alarms to save, when they changed since the last save.
    func takeSnapshot() -> (AlarmConfiguration, [Alarm])? {
        state.withLock { state in
            guard state.dirty else { return nil }
            state.dirty = false
            return (
                AlarmConfiguration(rules: state.engine.rules, escalation: state.engine.escalation),
                state.engine.allAlarms
            )
        }
    }

    /// Marks the state unsaved again (a save failed).
    func markDirty() { state.withLock { $0.dirty = true } }

    /// Restores a saved configuration and its alarms.
    func restore(_ configuration: AlarmConfiguration, alarms: [Alarm]) throws(AlarmError) {
        var engine = try AlarmEngine(rules: configuration.rules, escalation: configuration.escalation)
        engine.restore(alarms)
        state.withLock { $0.engine = engine }
    }

    func evaluate(device: String, labels: [String: String], values: [String: JSONValue], at now: Timestamp)
        -> [AlarmEvent]
    {
        state.withLock { state in
            let events = state.engine.evaluate(device: device, labels: labels, values: values, at: now)
            if !events.isEmpty { state.dirty = true }
            return events
        }
    }

    func tick(at now: Timestamp) -> [AlarmEvent] {
        state.withLock { state in
            // Cleared alarms are kept a week, and at most 10 000 of them.
            if state.engine.prune(clearedBefore: now.adding(seconds: -7 * 86_400), keepingAtMost: 10_000) > 0 {
                state.dirty = true
            }
            let events = state.engine.tick(at: now)
            if !events.isEmpty { state.dirty = true }
            return events
        }
    }

    func acknowledge(_ id: String, by operatorID: String, at now: Timestamp) throws(AlarmError) -> [AlarmEvent] {
        try state.withLock { state throws(AlarmError) in
            let events = try state.engine.acknowledge(id, by: operatorID, at: now)
            state.dirty = true
            return events
        }
    }

    /// An operator's subscription opened (present) or closed (absent when it was the last).
    func operatorConnected(_ id: String, _ connected: Bool, at now: Timestamp) -> [AlarmEvent] {
        state.withLock { state in
            let count = max(0, (state.connections[id] ?? 0) + (connected ? 1 : -1))
            state.connections[id] = count == 0 ? nil : count
            return state.engine.setOperator(id, available: count > 0, at: now)
        }
    }

    /// Alarms, open ones first, then the most recent others.
    public func alarms(includeClosed: Bool) -> [Alarm] {
        state.withLock { state in
            includeClosed ? state.engine.allAlarms.reversed() : state.engine.openAlarms
        }
    }

    /// One alarm.
    public func alarm(_ id: String) -> Alarm? { state.withLock { $0.engine.alarm(id) } }

    /// Operators present now.
    public var presentOperators: [String] { state.withLock { $0.connections.keys.sorted() } }
}

extension Hub {
    /// Replaces the alarm configuration.
    public func configureAlarms(_ configuration: AlarmConfiguration) throws(HubError) -> AlarmConfiguration {
        do {
            publish(try alarms.configure(configuration, at: clock.now()))
        } catch {
            throw HubError.malformed(error.description)
        }
        return alarms.configuration
    }

    /// Acknowledges an alarm; only the first acknowledgement counts.
    public func acknowledgeAlarm(_ id: String, by operatorID: String) throws(HubError) -> Alarm {
        guard Identifier.isValid(operatorID, maxBytes: 64) else {
            throw HubError.malformed("operator: not a valid name")
        }
        do {
            publish(try alarms.acknowledge(id, by: operatorID, at: clock.now()))
        } catch let error where error.isUnknownAlarm {
            throw HubError.notFound("no alarm '\(id)'")
        } catch {
            throw HubError.conflict(error.description)
        }
        guard let alarm = alarms.alarm(id) else { throw HubError.notFound("no alarm '\(id)'") }
        return alarm
    }

    /// Feeds a device's value sets (presence status, reading data) to the alarm rules, reading
    /// the device's labels once.
    func evaluateAlarms(device: String, values: [[String: JSONValue]], at now: Timestamp) async {
        guard !alarms.configuration.rules.isEmpty else { return }
        let labels = (try? await store.device(id: device))?.labels ?? [:]
        for set in values { publish(alarms.evaluate(device: device, labels: labels, values: set, at: now)) }
    }

    /// Marks an operator present (a dashboard or CLI session opened) or gone (it closed). The
    /// alarm subscription `GET /v1/alarms/events?operator=` does this for its lifetime.
    public func operatorPresence(_ name: String, connected: Bool) {
        publish(alarms.operatorConnected(name, connected, at: clock.now()))
    }

    /// Loads the alarm configuration and alarms saved before a restart.
    func restoreAlarms() async {
        do {
            guard let data = try await store.setting("alarms") else { return }
            let saved = try WireJSON.decode(SavedAlarms.self, from: data)
            try alarms.restore(saved.configuration, alarms: saved.alarms)
        } catch {
            logger.error("alarms could not be restored", metadata: ["error": "\(error)"])
        }
    }

    /// Saves the alarm configuration and alarms when they changed.
    public func saveAlarms() async {
        guard let (configuration, list) = alarms.takeSnapshot() else { return }
        do {
            try await store.setSetting(
                "alarms", try WireJSON.encode(SavedAlarms(configuration: configuration, alarms: list)))
        } catch {
            alarms.markDirty()
            logger.warning("alarms could not be saved; will retry", metadata: ["error": "\(error)"])
        }
    }

    /// Applies due escalations.
    public func alarmTick() {
        publish(alarms.tick(at: clock.now()))
    }

    /// Publishes alarm changes as `alarm` events.
    func publish(_ changes: [AlarmEvent]) {
        for change in changes {
            events.publish(
                .alarm, at: change.step.at, device: change.device,
                detail: "\(change.step.kind.rawValue) \(change.name)", data: WireJSON.value(change))
        }
    }
}

/// Applies alarm escalations every second.
public struct AlarmTicker: Service {
    let hub: Hub

    /// Creates the ticker for a hub.
    public init(hub: Hub) {
        self.hub = hub
    }

    public func run() async throws {
        await hub.restoreAlarms()
        await repeatUntilShutdown(every: 1) {
            hub.alarmTick()
            await hub.saveAlarms()
        }
        await Task { await hub.saveAlarms() }.value
    }
}

/// What is saved of the alarms: the configuration and every alarm kept.
struct SavedAlarms: Codable {
    var configuration: AlarmConfiguration
    var alarms: [Alarm]
}
