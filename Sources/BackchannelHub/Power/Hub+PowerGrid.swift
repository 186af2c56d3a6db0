public import BackchannelPower
public import BackchannelProtocol
import BackchannelStore
import Foundation
import Logging
import Synchronization

/// `GET /v1/power/topology`: the feeder trees as declared, with roll-ups per node.
public struct TopologyView: Sendable, Hashable, Codable {
    /// Every declared node.
    public var nodes: [FeederNode]
    /// The feeders' master devices.
    public var roots: [String]
    /// Declarations the hub could not place (unknown parent, a cycle): the device is shown as
    /// a root and the reason given.
    public var problems: [String]
    /// Roll-ups of every master and branch: total kW, devices available.
    public var rollups: [FeederRollup]
}

/// A topology alert: the commands sent for a power quality event at a node, and how fast
/// they reached the devices.
public struct AlertView: Sendable, Hashable, Codable {
    /// The node where the event happened.
    public var origin: String
    /// The event (its IEEE 1159 label).
    public var event: String
    /// When the hub received the event.
    public var eventAt: Timestamp
    /// The commands sent: downstream alerts and upstream containment notices.
    public var commands: [AlertCommand]
    /// Latency to every downstream device's acknowledgement; pending ones listed.
    public var propagation: PropagationReport?
}

/// One command of an alert.
public struct AlertCommand: Sendable, Hashable, Codable {
    /// The device.
    public var device: String
    /// `pq.alert` or `pq.containment`.
    public var name: String
    /// The command id.
    public var id: String
}

extension Hub {
    /// The tenant's feeder tree from the declared nodes. An unknown parent or a cycle does not
    /// stop the tree: the node becomes a root and the problem is reported.
    func feederTree(tenant: String) async throws(HubError) -> (tree: FeederTree, problems: [String]) {
        let documents: [FeederNode] = try await documents(
            FeederNode.self, PowerDocumentQuery(kind: PowerKind.topology, tenant: tenant, limit: 100_000))
        var nodes = Dictionary(documents.map { ($0.id, $0) }, uniquingKeysWith: { first, _ in first })
        var problems: [String] = []
        for id in nodes.keys.sorted() {
            guard let parent = nodes[id]?.parent else { continue }
            if nodes[parent] == nil {
                problems.append("\(id): parent \(parent) has not declared itself")
                nodes[id]?.parent = nil
            }
        }
        // Break cycles: walk up from each node; a node met twice loses its parent.
        for id in nodes.keys.sorted() {
            var seen: Set<String> = [id]
            var current = id
            while let parent = nodes[current]?.parent {
                if !seen.insert(parent).inserted {
                    problems.append("\(current): parent \(parent) closes a cycle")
                    nodes[current]?.parent = nil
                    break
                }
                current = parent
            }
        }
        do {
            return (try FeederTree(nodes: nodes.values.sorted { $0.id < $1.id }), problems)
        } catch {
            throw HubError.malformed("topology: \(error.message)")
        }
    }

    /// The feeder trees with roll-ups (latest kW from `meter` readings, availability from presence).
    func topology(tenant: String) async throws(HubError) -> TopologyView {
        let (tree, problems) = try await feederTree(tenant: tenant)
        let kW = power.latest.withLock { all in all.compactMapValues(\.kW) }
        let available = Set(tree.nodes.map(\.id).filter { presence.isAvailable($0) })
        let targets = tree.nodes.filter { $0.role == .master || $0.role == .branch }.map(\.id)
        var rollups: [FeederRollup] = []
        for id in targets {
            if let rollup = try? tree.rollup(of: id, kW: kW, available: available) { rollups.append(rollup) }
        }
        return TopologyView(nodes: tree.nodes, roots: tree.roots, problems: problems, rollups: rollups)
    }

    /// A `pq` event from a device: stored, and, when the device is in a feeder tree, alerts to
    /// every downstream device and containment notices upstream.
    func handlePQEvent(device: String, _ item: UplinkItem, tenant: String, at now: Timestamp) async throws {
        let key = "\(device)/\(item.id)"
        if try await store.powerDocument(kind: PowerKind.pqEvent, key: key) != nil { return }  // a retried poll
        var body = item.data.objectValue ?? [:]
        body["device"] = .string(device)
        body["id"] = .string(item.id)
        body["receivedAt"] = .string(now.description)
        let eventName =
            item.data["classification"]?["label"]?.stringValue ?? item.data["kind"]?.stringValue ?? "pq-event"
        let (tree, _) = try await feederTree(tenant: tenant)
        var commands: [AlertCommand] = []
        if tree.node(device) != nil {
            let plan = try tree.alertPlan(event: eventName, at: device)
            for entry in plan.entries {
                var args = entry.args
                args["eventAt"] = .string(now.description)
                let request = SubmitCommandRequest(
                    name: entry.command, args: .object(args), ttl: configuration.power.alertTTL,
                    idempotencyKey: "alert:" + Credentials.hash(bytes: Data("\(key)\n\(entry.device)".utf8)))
                do {
                    let sent = try await submit(request, to: entry.device, origin: "power:topology")
                    commands.append(AlertCommand(device: entry.device, name: entry.command, id: sent.command.id))
                } catch {
                    logger.warning(
                        "an alert was not sent", metadata: ["device": "\(entry.device)", "error": "\(error)"])
                }
            }
        }
        let alert = AlertView(origin: device, event: eventName, eventAt: now, commands: commands, propagation: nil)
        try await store.putPowerDocuments([
            PowerDocument(
                kind: PowerKind.pqEvent, key: key, tenant: tenant, device: device, at: item.at, body: .object(body)),
            PowerDocument(
                kind: PowerKind.alert, key: key, tenant: tenant, device: device, at: now, body: try Self.json(alert)),
        ])
        events.publish(.power, at: now, device: device, detail: "pq.\(eventName)", data: .object(body))
        if !commands.isEmpty {
            events.publish(
                .power, at: now, device: device, detail: "alert.sent",
                data: ["event": .string(eventName), "commands": .number(Double(commands.count))])
        }
    }

    /// The tenant's topology alerts, newest first, each with its propagation report: the time
    /// from the hub receiving the event to each downstream device acknowledging its alert.
    func alerts(tenant: String, device: String?, limit: Int) async throws(HubError) -> [AlertView] {
        var alerts = try await documents(
            AlertView.self, PowerDocumentQuery(kind: PowerKind.alert, tenant: tenant, device: device, limit: limit))
        guard !alerts.isEmpty else { return [] }
        let (tree, _) = try await feederTree(tenant: tenant)
        for index in alerts.indices {
            var answers: [String: Timestamp] = [:]
            for command in alerts[index].commands where command.name == AlertPlan.alertCommand {
                if let acked = try? await self.command(command.id).ackedAt { answers[command.device] = acked }
            }
            alerts[index].propagation = try? tree.propagation(
                from: alerts[index].origin, eventAt: alerts[index].eventAt, answers: answers)
        }
        return alerts
    }

    /// Outage records of the tenant, newest first; only open ones when asked.
    func outages(tenant: String, device: String?, openOnly: Bool, limit: Int) async throws(HubError) -> [OutageRecord] {
        let records = try await documents(
            OutageRecord.self, PowerDocumentQuery(kind: PowerKind.outage, tenant: tenant, device: device, limit: limit))
        return openOnly ? records.filter(\.isOpen) : records
    }

    /// IEEE 1366 indices over `range` from the tenant's outage records and feeder trees.
    func reliability(tenant: String, in range: Range<Timestamp>) async throws(HubError) -> ReliabilityReport {
        let (tree, _) = try await feederTree(tenant: tenant)
        // Outages that started before the period and ended in it count too (clipped).
        let records = try await documents(
            OutageRecord.self,
            PowerDocumentQuery(
                kind: PowerKind.outage, tenant: tenant,
                range: range.lowerBound.adding(seconds: -30 * 86_400)..<range.upperBound, limit: 100_000))
        let known = Set(tree.nodes.map(\.id))
        let outages = records.compactMap { record -> ReliabilityOutage? in
            guard known.contains(record.device) else { return nil }
            return try? ReliabilityOutage(record)
        }
        do {
            return try tree.reliability(outages: outages, periodStart: range.lowerBound, periodEnd: range.upperBound)
        } catch {
            throw HubError.malformed(error.message)
        }
    }

    /// Sub-meter balance, for every node whose children are all sub-meters (role `meter`):
    /// over the last `hours` hours, each quarter hour of the node's intervals is compared with
    /// the sum of its children's (``TamperDetector/submeterImbalance(_:tolerances:)``). Flags go
    /// to the tamper log; a rerun over the same quarter hours finds the same flags and stores
    /// nothing new.
    func checkSubmeterBalance(hours: Double = 24) async {
        do {
            let quarter: Int64 = 900_000
            let end = Timestamp(milliseconds: clock.now().milliseconds / quarter * quarter)
            let range = end.adding(seconds: -hours * 3600)..<end
            let documents = try await store.powerDocuments(
                PowerDocumentQuery(kind: PowerKind.topology, limit: 100_000))
            for tenant in Set(documents.map(\.tenant)).sorted() {
                let (tree, _) = try await feederTree(tenant: tenant)
                for node in tree.nodes {
                    let children = try tree.children(of: node.id)
                    guard !children.isEmpty, children.allSatisfy({ tree.node($0)?.role == .meter }) else { continue }
                    var submeters: [String: [IntervalReading]] = [:]
                    for child in children { submeters[child] = try await intervalReadings(device: child, in: range) }
                    let group = SubmeterGroup(
                        master: node.id, masterReadings: try await intervalReadings(device: node.id, in: range),
                        submeters: submeters)
                    let flags = try TamperDetector.submeterImbalance(group).flags
                    let stored = try flags.map { try Self.tamperDocument($0, tenant: tenant) }
                    guard !stored.isEmpty else { continue }
                    try await store.putPowerDocuments(stored)
                }
            }
        } catch {
            logger.warning("the sub-meter balance check failed; it runs again", metadata: ["error": "\(error)"])
        }
    }

    /// Tamper flags of the tenant, newest first.
    func tamperFlags(tenant: String, device: String?, limit: Int) async throws(HubError) -> [TamperFlag] {
        try await documents(
            TamperFlag.self, PowerDocumentQuery(kind: PowerKind.tamper, tenant: tenant, device: device, limit: limit))
    }

    /// Power quality events of the tenant, newest first.
    func pqEvents(tenant: String, device: String?, in range: Range<Timestamp>?, limit: Int) async throws(HubError)
        -> [JSONValue]
    {
        do {
            return try await store.powerDocuments(
                PowerDocumentQuery(kind: PowerKind.pqEvent, tenant: tenant, device: device, range: range, limit: limit)
            ).map(\.body)
        } catch {
            throw storeFailure(error)
        }
    }
}
