public import BackchannelProtocol
import Foundation

// MARK: - Alert plans

/// What a downstream device is told to do when an event happens upstream of it.
public enum AlertAction: String, Sendable, Hashable, Codable, CaseIterable {
    /// Generators disconnect (anti-islanding).
    case disconnectGenerator = "disconnect-generator"
    /// Every other device raises a power-quality alert.
    case pqAlert = "pq-alert"
}

/// One command of an alert plan: send `command` with `args` to `device`.
public struct AlertPlanEntry: Sendable, Hashable, Codable {
    /// The device to send to.
    public var device: String
    /// The command name: ``AlertPlan/alertCommand`` or ``AlertPlan/containmentCommand``.
    public var command: String
    /// The command arguments.
    public var args: [String: JSONValue]

    /// Creates an entry.
    public init(device: String, command: String, args: [String: JSONValue]) {
        self.device = device
        self.command = command
        self.args = args
    }
}

/// The commands the hub sends for an event at one node.
///
/// Every device downstream of the origin (breadth-first order) gets `pq.alert` with args
/// `{"origin": X, "event": E, "action": "disconnect-generator" | "pq-alert"}` (generators
/// disconnect, everything else raises `pq-alert`). Every upstream device (nearest first) gets
/// `pq.containment` with args `{"origin": X, "event": E, "handledBy": X}` so it does not take
/// the same action itself. The origin gets nothing: it detected the event and handles it.
public struct AlertPlan: Sendable, Hashable, Codable {
    /// The command name for downstream alerts.
    public static let alertCommand = "pq.alert"
    /// The command name for upstream containment notices.
    public static let containmentCommand = "pq.containment"

    /// The node where the event happened.
    public var origin: String
    /// The event name, such as `voltage-sag`.
    public var event: String
    /// Downstream alerts first (breadth-first), then upstream notices (nearest first).
    public var entries: [AlertPlanEntry]

    /// Creates a plan.
    public init(origin: String, event: String, entries: [AlertPlanEntry]) {
        self.origin = origin
        self.event = event
        self.entries = entries
    }
}

extension FeederTree {
    /// The alert plan for `event` at `origin` (see ``AlertPlan``); the event name must not be empty.
    public func alertPlan(event: String, at origin: String) throws(PowerInputError) -> AlertPlan {
        guard !event.trimmingCharacters(in: .whitespaces).isEmpty else {
            throw PowerInputError("alert plan: event is empty")
        }
        var entries: [AlertPlanEntry] = []
        for id in try downstream(of: origin) {
            let action: AlertAction = node(id)?.role == .generator ? .disconnectGenerator : .pqAlert
            entries.append(
                AlertPlanEntry(
                    device: id, command: AlertPlan.alertCommand,
                    args: [
                        "origin": .string(origin), "event": .string(event), "action": .string(action.rawValue),
                    ]))
        }
        for id in try upstream(of: origin) {
            entries.append(
                AlertPlanEntry(
                    device: id, command: AlertPlan.containmentCommand,
                    args: ["origin": .string(origin), "event": .string(event), "handledBy": .string(origin)]))
        }
        return AlertPlan(origin: origin, event: event, entries: entries)
    }
}

// MARK: - Roll-ups

/// A node's subtree summed up: load and availability.
public struct FeederRollup: Sendable, Hashable, Codable {
    /// The node summed (a branch or a feeder head).
    public var node: String
    /// Its role.
    public var role: FeederRole
    /// Sum of the latest kW of the loads, generators and meters in the subtree that reported
    /// one (values summed as given: the sign convention is the caller's).
    public var kW: Double
    /// How many of those devices reported a kW value.
    public var kWReported: Int
    /// Loads, generators and meters in the subtree with no kW value, in breadth-first order.
    public var kWMissing: [String]
    /// Devices in the subtree, the node itself included.
    public var devices: Int
    /// How many of them are available.
    public var available: Int
    /// The ones that are not, in breadth-first order.
    public var unavailable: [String]

    /// Creates a roll-up.
    public init(
        node: String, role: FeederRole, kW: Double, kWReported: Int, kWMissing: [String], devices: Int,
        available: Int, unavailable: [String]
    ) {
        self.node = node
        self.role = role
        self.kW = kW
        self.kWReported = kWReported
        self.kWMissing = kWMissing
        self.devices = devices
        self.available = available
        self.unavailable = unavailable
    }
}

extension FeederTree {
    /// Sums the subtree of `id`. `kW` maps device id → latest kW; `available` holds the ids of
    /// available devices. Ids in either that are not in the tree, and non-finite kW, are errors.
    public func rollup(of id: String, kW: [String: Double], available: Set<String>)
        throws(PowerInputError)
        -> FeederRollup
    {
        try checkRollupInput(kW: kW, available: available)
        let root = try requireNode(id)
        var total = 0.0
        var reported = 0
        var missing: [String] = []
        var unavailable: [String] = []
        let ids = try subtree(of: id)
        for device in ids {
            guard let node = node(device) else { continue }
            if !available.contains(device) { unavailable.append(device) }
            guard node.role.contributesKW else { continue }
            if let value = kW[device] {
                total += value
                reported += 1
            } else {
                missing.append(device)
            }
        }
        return FeederRollup(
            node: id, role: root.role, kW: total, kWReported: reported, kWMissing: missing,
            devices: ids.count,
            available: ids.count - unavailable.count, unavailable: unavailable)
    }

    /// Roll-ups for every feeder head (root) and every branch node, roots first, in input order.
    public func rollups(kW: [String: Double], available: Set<String>) throws(PowerInputError)
        -> [FeederRollup]
    {
        var result: [FeederRollup] = []
        for id in roots + branches.filter({ !roots.contains($0) }) {
            result.append(try rollup(of: id, kW: kW, available: available))
        }
        return result
    }

    private func checkRollupInput(kW: [String: Double], available: Set<String>)
        throws(PowerInputError)
    {
        let unknown = (Set(kW.keys).union(available)).filter { node($0) == nil }.sorted()
        guard unknown.isEmpty else {
            throw PowerInputError(
                "roll-up: devices not in the feeder tree: \(unknown.joined(separator: ", "))")
        }
        if let bad = kW.filter({ !$0.value.isFinite }).keys.sorted().first {
            throw PowerInputError("roll-up: kW of \(bad) is not finite")
        }
    }
}

// MARK: - Propagation

/// How long one downstream device took to answer its alert.
public struct PropagationLatency: Sendable, Hashable, Codable {
    /// The device.
    public var device: String
    /// When it acknowledged (or completed) the alert.
    public var answeredAt: Timestamp
    /// Seconds from the event to the answer.
    public var seconds: Double

    /// Creates a value.
    public init(device: String, answeredAt: Timestamp, seconds: Double) {
        self.device = device
        self.answeredAt = answeredAt
        self.seconds = seconds
    }
}

/// How an alert spread down the tree from its origin.
public struct PropagationReport: Sendable, Hashable, Codable {
    /// The node where the event happened.
    public var origin: String
    /// When the event happened.
    public var eventAt: Timestamp
    /// Devices that answered, in breadth-first order.
    public var answered: [PropagationLatency]
    /// Downstream devices that have not answered, in breadth-first order.
    public var pending: [String]
    /// Answers from devices that are not downstream of the origin (reported, not counted).
    public var unexpected: [String]
    /// The slowest answer, seconds; nil when nobody answered.
    public var maxSeconds: Double?
    /// The median answer, seconds (the mean of the middle two for an even count); nil when
    /// nobody answered.
    public var medianSeconds: Double?

    /// Creates a report.
    public init(
        origin: String, eventAt: Timestamp, answered: [PropagationLatency], pending: [String],
        unexpected: [String],
        maxSeconds: Double?, medianSeconds: Double?
    ) {
        self.origin = origin
        self.eventAt = eventAt
        self.answered = answered
        self.pending = pending
        self.unexpected = unexpected
        self.maxSeconds = maxSeconds
        self.medianSeconds = medianSeconds
    }
}

extension FeederTree {
    /// Reports alert latency for an event at `origin` at `eventAt`, given when each device
    /// answered. An answer before the event is an error (it cannot answer an alert not yet sent).
    public func propagation(from origin: String, eventAt: Timestamp, answers: [String: Timestamp])
        throws(PowerInputError) -> PropagationReport
    {
        let expected = try downstream(of: origin)
        let expectedSet = Set(expected)
        var answered: [PropagationLatency] = []
        var pending: [String] = []
        for device in expected {
            guard let at = answers[device] else {
                pending.append(device)
                continue
            }
            guard at >= eventAt else {
                throw PowerInputError(
                    "propagation: \(device) answered at \(at), before the event at \(eventAt)")
            }
            answered.append(
                PropagationLatency(device: device, answeredAt: at, seconds: at.seconds(since: eventAt)))
        }
        let sorted = answered.map(\.seconds).sorted()
        var median: Double?
        if !sorted.isEmpty {
            let middle = sorted.count / 2
            median = sorted.count % 2 == 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2
        }
        return PropagationReport(
            origin: origin, eventAt: eventAt, answered: answered, pending: pending,
            unexpected: answers.keys.filter { !expectedSet.contains($0) }.sorted(),
            maxSeconds: sorted.last,
            medianSeconds: median)
    }
}
