public import BackchannelAgent
public import BackchannelProtocol
import BackchannelSecurity
public import Foundation
public import Logging

/// A simulated revenue meter: an ``Agent`` with the meter's command handlers and a periodic
/// reading of kWh, kW, V, A and PF.
///
/// Commands: `read`, `ping`, `set-interval {seconds}`, `relay {state: open|close}`,
/// `set-time {time}` or `set-time {offset}`, `billing.reset` (closes the billing period: returns
/// the energy register and zeroes it), and `gather {peers, command?, timeout?}`, which
/// relays for others: it asks each peer for `command` (default `read`) through the hub
/// (rendezvous) and answers with every peer's outcome. Every execution is appended to the
/// ``ExecutionLog``.
public final class SimulatedMeter: Sendable {
    /// The device id.
    public let id: String
    /// The device agent.
    public let agent: Agent
    /// The meter's state.
    public let model: MeterModel
    private let log: ExecutionLog?
    /// When set, periodic readings are sealed: billing values to one audience, power quality
    /// to another.
    public let sealing: MeterSealing?
    /// Where the device sits in its feeder, declared to the hub at every start.
    public let placement: GridPlacement?
    /// The supply: `outage.inject` trips it.
    let powerLine = PowerLine()
    /// How the device registers energy: a meter, or a KYZ transport box.
    public let metering: MeteringKind
    /// Days of interval history sent at the first start.
    public let historyDays: Int
    /// Where the last interval sent is remembered.
    let intervalCursorFile: URL
    /// A transport box's pulse counting.
    let pulseCounter: PulseAccumulator

    /// Creates a meter.
    ///
    /// - Parameters:
    ///   - configuration: the agent configuration (its `deviceClock` is replaced by the meter's).
    ///   - model: the meter physics.
    ///   - client: shared HTTP client for fleets.
    ///   - log: where executions are recorded.
    ///   - corruptFirmware: damage firmware downloads, so they fail verification (a test case).
    ///   - sealing: seal the periodic readings for these audiences.
    public init(
        configuration: AgentConfiguration, model: MeterModel, client: HubClient? = nil, log: ExecutionLog? = nil,
        logger: Logger? = nil, corruptFirmware: Bool = false, sealing: MeterSealing? = nil,
        placement: GridPlacement? = nil, metering: MeteringKind = .meter, historyDays: Int = 0
    ) async throws {
        self.metering = metering
        self.historyDays = historyDays
        self.intervalCursorFile = configuration.stateDirectory.appendingPathComponent("interval-cursor")
        self.pulseCounter = PulseAccumulator(file: configuration.stateDirectory.appendingPathComponent("kyz-register"))
        self.corruptFirmware = corruptFirmware
        self.sealing = sealing
        self.placement = placement
        var configuration = configuration
        configuration.deviceClock = { model.deviceNow() }
        self.id = configuration.deviceID
        self.model = model
        self.log = log
        self.relayFile = configuration.stateDirectory.appendingPathComponent("relay-state")
        self.agent = try Agent(configuration: configuration, client: client, logger: logger)
        // The relay keeps its position across restarts, as a real one does.
        if let saved = try? String(contentsOf: relayFile, encoding: .utf8) {
            _ = model.setRelay(closed: saved.trimmingCharacters(in: .whitespacesAndNewlines) != "open")
        }
        await registerHandlers()
    }

    /// Where the relay position is kept.
    private let relayFile: URL
    /// Whether firmware downloads are damaged (the corrupted-download case).
    private let corruptFirmware: Bool

    /// Runs the agent and the periodic readings until cancelled.
    ///
    /// A power loss (`outage.inject`) sends the last gasp, `power.lost`, and gives it up to
    /// ``lastGaspSeconds`` to reach the hub (the energy in a real meter's capacitor); then the
    /// device goes silent for the outage. On restoration it starts again and sends
    /// `power.restored` with the time the power was lost.
    public func run() async {
        var restoring: (lostAt: Timestamp, seconds: Double)?
        while !Task.isCancelled {
            if let outage = restoring {
                model.powerRestored()
                try? await agent.emit(
                    .event, name: "power.restored",
                    data: [
                        "lostAt": .string(outage.lostAt.description), "at": .string(model.deviceNow().description),
                    ])
            }
            await declarePlacement()
            let loss: (lostAt: Timestamp, seconds: Double)? = await withTaskGroup(
                of: (lostAt: Timestamp, seconds: Double)?.self
            ) { group in
                group.addTask {
                    await self.agent.run()
                    return nil
                }
                group.addTask {
                    await self.report()
                    return nil
                }
                group.addTask {
                    guard let seconds = await self.powerLine.nextLoss() else { return nil }
                    return (await self.lastGasp(), seconds)
                }
                var loss: (lostAt: Timestamp, seconds: Double)?
                while let next = await group.next() {
                    if let next {
                        loss = next
                        break
                    }
                    if Task.isCancelled { break }
                }
                group.cancelAll()
                return loss
            }
            guard let loss else { return }
            // The outage itself: the device is off, nothing polls.
            try? await Task.sleep(for: .milliseconds(Int64(loss.seconds * 1000)))
            restoring = loss
        }
    }

    /// Seconds the last gasp has to reach the hub before the device dies.
    public static let lastGaspSeconds = 3.0

    /// Sends `power.lost` and waits, at most ``lastGaspSeconds``, until the hub has stored it.
    private func lastGasp() async -> Timestamp {
        let lostAt = model.deviceNow()
        try? await agent.emit(.event, name: "power.lost", data: ["at": .string(lostAt.description)])
        let deadline = ContinuousClock.now + .seconds(Self.lastGaspSeconds)
        while await agent.outboxCount > 0, ContinuousClock.now < deadline {
            try? await Task.sleep(for: .milliseconds(20))
        }
        return lostAt
    }

    /// Declares where the device sits in its feeder (the hub keeps the latest declaration).
    private func declarePlacement() async {
        guard let placement else { return }
        var data: [String: JSONValue] = [
            "role": .string(placement.role), "customers": .number(Double(placement.customers)),
        ]
        if let parent = placement.parent { data["parent"] = .string(parent) }
        _ = try? await agent.emit(.event, name: "topology", data: .object(data))
    }

    private func report() async {
        while !Task.isCancelled {
            do {
                try await emitReading()
                try await emitIntervals()
            } catch {
                // The outbox is full or the disk failed; the next interval tries again.
            }
            try? await Task.sleep(for: .milliseconds(Int64(model.interval * 1000)))
        }
    }

    /// Queues one periodic reading now: plain, or sealed when ``sealing`` is set.
    @discardableResult
    public func emitReading() async throws -> String {
        let sample = model.sample()
        guard let sealing else { return try await agent.emit(.reading, name: "meter", data: sample) }
        return try await agent.emitSealed(.reading, name: "meter", parts: sealing.parts(of: sample))
    }

    private func registerHandlers() async {
        let model = self.model
        let agent = self.agent
        let relayFile = self.relayFile
        await handle("read") { _ in .succeeded(model.sample()) }
        await handle("ping") { request in
            .succeeded([
                "pong": true, "deviceTime": .string(model.deviceNow().description),
                "hubTime": .string(agent.clock.hubNow().description),
            ])
        }
        await handle("set-interval") { request in
            guard let seconds = request.args["seconds"]?.doubleValue, (1...86_400).contains(seconds) else {
                throw InvalidArguments("set-interval needs {\"seconds\": 1-86400}")
            }
            model.setInterval(seconds)
            return .succeeded(["interval": .number(seconds)])
        }
        await handle("relay") { request in
            let wanted = request.args["state"]?.stringValue?.lowercased()
            let close: Bool
            switch wanted {
            case "close", "closed", "on": close = true
            case "open", "opened", "off": close = false
            default: throw InvalidArguments("relay needs {\"state\": \"open\" | \"close\"}")
            }
            let changed = model.setRelay(closed: close)
            try Data((close ? "closed" : "open").utf8).write(to: relayFile, options: .atomic)
            let state: JSONValue = .string(close ? "closed" : "open")
            if changed { try? await agent.emit(.event, name: "relay.changed", data: ["relay": state]) }
            return .succeeded(["relay": state, "changed": .bool(changed)])
        }
        await handle("set-time") { request in
            if let text = request.args["time"]?.stringValue {
                guard let time = Timestamp(rfc3339: text) else {
                    throw InvalidArguments("time: not an RFC 3339 timestamp")
                }
                return .succeeded(["clockSkew": .number(model.setClock(to: time))])
            }
            if let offset = request.args["offset"]?.doubleValue, abs(offset) < 86_400 * 365 {
                return .succeeded(["clockSkew": .number(model.setClock(to: model.deviceNow().adding(seconds: offset)))])
            }
            throw InvalidArguments("set-time needs {\"time\": RFC 3339} or {\"offset\": seconds}")
        }
        await handle("billing.reset") { _ in
            .succeeded([
                "previousKWh": .number(model.resetBilling()), "resetAt": .string(model.deviceNow().description),
            ])
        }
        await handle("gather") { request in try await Self.gather(request, agent: agent) }
        await registerPowerHandlers()
        let corrupt = corruptFirmware
        await handle("firmware.install") { request in
            try await Self.installFirmware(request, agent: agent, model: model, corrupt: corrupt)
        }
    }

    /// Asks each peer for a command through the hub and collects the outcomes, keyed by peer.
    ///
    /// Each peer request's `ref` is derived from this command's id, so a `gather` redelivered
    /// after a restart reuses the same peer requests instead of sending new ones.
    static func gather(_ request: LogicalRequest, agent: Agent) async throws -> CommandReply {
        guard case .array(let list)? = request.args["peers"], !list.isEmpty, list.count <= 100 else {
            throw InvalidArguments("gather needs {\"peers\": [1-100 device ids]}")
        }
        let peers = try list.map { value -> String in
            guard let id = value.stringValue, Identifier.isValid(id) else {
                throw InvalidArguments("peers: every entry must be a device id")
            }
            return id
        }
        let command = request.args["command"]?.stringValue ?? "read"
        let timeout = request.args["timeout"]?.doubleValue ?? 30
        guard timeout > 0, timeout <= 3600 else { throw InvalidArguments("timeout: must be 1-3600 seconds") }
        var refs: [(peer: String, ref: String)] = []
        for (index, peer) in peers.enumerated() {
            let ref = try await agent.request(
                command, to: peer, ttl: timeout, ref: "\(request.id).\(index)")
            refs.append((peer, ref))
        }
        var collected: [String: JSONValue] = [:]
        var complete = 0
        // One deadline for all peers: the replies arrive in any order, each wait takes what is left.
        let deadline = ContinuousClock.now + .milliseconds(Int64(timeout * 1000))
        for (peer, ref) in refs {
            let left = ContinuousClock.now.duration(to: deadline)
            let seconds = Double(left.components.seconds) + Double(left.components.attoseconds) / 1e18
            guard let reply = await agent.reply(to: ref, within: max(0, seconds)) else {
                collected[peer] = ["state": "PENDING", "detail": .string("no reply within \(Int(timeout)) s")]
                continue
            }
            var entry: [String: JSONValue] = ["state": .string(reply.state.rawValue)]
            if let data = reply.outcome?.data { entry["data"] = data }
            if let code = reply.outcome?.code { entry["code"] = .string(code) }
            if let detail = reply.outcome?.detail { entry["detail"] = .string(detail) }
            collected[peer] = .object(entry)
            if reply.state == .succeeded { complete += 1 }
            try? await agent.consumeReply(ref)
        }
        let data: JSONValue = ["peers": .object(collected), "succeeded": .number(Double(complete))]
        return complete == peers.count
            ? .succeeded(data)
            : .failed(code: "peers_incomplete", detail: "\(complete) of \(peers.count) peers answered", data: data)
    }

    /// Registers a handler that records each execution in the log first.
    func handle(_ name: String, _ body: @escaping @Sendable (LogicalRequest) async throws -> CommandReply) async {
        let log = self.log
        let id = self.id
        await agent.register(name) { request in
            log?.record(device: id, request: request)
            return try await body(request)
        }
    }
}
