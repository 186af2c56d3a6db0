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
        logger: Logger? = nil, corruptFirmware: Bool = false, sealing: MeterSealing? = nil
    ) async throws {
        self.corruptFirmware = corruptFirmware
        self.sealing = sealing
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
    public func run() async {
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await self.agent.run() }
            group.addTask { await self.report() }
            await group.waitForAll()
        }
    }

    private func report() async {
        while !Task.isCancelled {
            do {
                try await emitReading()
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
    private func handle(_ name: String, _ body: @escaping @Sendable (LogicalRequest) async throws -> CommandReply) async
    {
        let log = self.log
        let id = self.id
        await agent.register(name) { request in
            log?.record(device: id, request: request)
            return try await body(request)
        }
    }
}
