public import BackchannelAgent
public import BackchannelProtocol
public import Foundation
public import Logging

/// A simulated revenue meter: an ``Agent`` with the meter's command handlers and a periodic
/// reading of kWh, kW, V, A and PF.
///
/// Commands: `read`, `ping`, `set-interval {seconds}`, `relay {state: open|close}`,
/// `set-time {time}` or `set-time {offset}`. Every execution is appended to the
/// ``ExecutionLog``.
public final class SimulatedMeter: Sendable {
    /// The device id.
    public let id: String
    /// The device agent.
    public let agent: Agent
    /// The meter's state.
    public let model: MeterModel
    private let log: ExecutionLog?

    /// Creates a meter.
    ///
    /// - Parameters:
    ///   - configuration: the agent configuration (its `deviceClock` is replaced by the meter's).
    ///   - model: the meter physics.
    ///   - client: shared HTTP client for fleets.
    ///   - log: where executions are recorded.
    public init(
        configuration: AgentConfiguration, model: MeterModel, client: HubClient? = nil, log: ExecutionLog? = nil,
        logger: Logger? = nil
    ) async throws {
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
                try await agent.emit(.reading, name: "meter", data: model.sample())
            } catch {
                // The outbox is full or the disk failed; the next interval tries again.
            }
            try? await Task.sleep(for: .milliseconds(Int64(model.interval * 1000)))
        }
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
