import BackchannelAgent
import BackchannelHub
import BackchannelProtocol
import BackchannelSimulator
import Foundation
import Logging
import Testing

/// The simulated meter's command handlers, driven through a live hub.
@Suite struct SimulatedMeterTests {
    static func meter(_ live: LiveHub, token: String, directory: URL, log: ExecutionLog) async throws -> SimulatedMeter
    {
        var configuration = AgentConfiguration(
            hubURL: live.url, deviceID: "m1", token: token, stateDirectory: directory)
        configuration.longPoll = 5
        var logger = Logger(label: "test.meter")
        logger.logLevel = ProcessInfo.processInfo.environment["AGENT_LOG"] == nil ? .critical : .debug
        return try await SimulatedMeter(
            configuration: configuration, model: MeterModel(seed: 1, interval: 3600), log: log, logger: logger
        )
    }

    @Test func metersAnswerTheirCommandsAndKeepTheRelayPosition() async throws {
        let h = try HubHarness(systemClock: true)
        let token = try await h.provision("m1")
        let live = try await LiveHub.start(h.hub)
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("bc-meter-\(UUID().uuidString)")
        let log = try ExecutionLog(url: directory.appendingPathComponent("executions.jsonl"))
        func run(_ name: String, _ args: JSONValue = [:]) async throws -> CommandView {
            let id = try await h.submit(name, to: "m1") { $0.args = args }.id
            return try await h.hub.command(id, waitingUpTo: 10)
        }

        var meter = try await Self.meter(live, token: token, directory: directory, log: log)
        var loop = Task { [meter] in await meter.run() }
        let read = try await run("read")
        #expect(read.state == .succeeded)
        for key in ["kWh", "kW", "V", "A", "PF", "relay"] {
            #expect(read.outcome?.data?[key] != nil, "read returns \(key)")
        }
        let opened = try await run("relay", ["state": "open"])
        #expect(opened.outcome?.data == ["relay": "open", "changed": true])
        #expect(try await run("relay", ["state": "sideways"]).outcome?.code == OutcomeCode.invalidArgs)
        #expect(try await run("set-interval", ["seconds": 0]).state == .rejected)
        #expect(try await run("set-interval", ["seconds": 60]).outcome?.data == ["interval": 60])
        let skew = try await run("set-time", ["offset": 30])
        #expect(abs((skew.outcome?.data?["clockSkew"]?.doubleValue ?? 0) - 30) < 1)
        #expect(try await run("ping").state == .succeeded)
        loop.cancel()
        await loop.value

        // A restarted meter still has its relay open.
        // The dead meter's last long-poll is still held at the hub; a command submitted now
        // could go to it and wait out its lease. Wait until the new meter's poll replaced it.
        let superseded = h.hub.metrics.snapshot.supersededPolls
        meter = try await Self.meter(live, token: token, directory: directory, log: log)
        loop = Task { [meter] in await meter.run() }
        try await waitUntil("the restarted meter holds the long-poll") {
            h.hub.metrics.snapshot.supersededPolls > superseded && h.hub.metrics.snapshot.heldPolls == 1
        }
        let after = try await run("read")
        #expect(after.state == .succeeded, "\(after.history ?? [])")
        #expect(after.outcome?.data?["relay"] == "open")
        #expect(after.outcome?.data?["kW"] == 0, "an open relay carries no load")
        loop.cancel()
        await loop.value
        await live.stop()

        // Every execution was logged once; rejected-before-running commands are logged too,
        // since the handler started.
        let entries = try ExecutionLog.read(log.url)
        #expect(Set(entries.map(\.id)).count == entries.count)
        #expect(entries.map(\.name).filter { $0 == "read" }.count == 2)
    }
}
