import BackchannelAgent
import BackchannelHub
import BackchannelProtocol
import BackchannelSimulator
import Foundation
import Logging
import Testing

/// Rendezvous between real agents over HTTP: a master meter gathers readings from its peers.
@Suite struct RendezvousAgentTests {
    static func meter(
        _ id: String, _ live: LiveHub, token: String, root: URL, encoding: WireEncoding = .json
    ) async throws -> SimulatedMeter {
        var configuration = AgentConfiguration(
            hubURL: live.url, deviceID: id, token: token, stateDirectory: root.appendingPathComponent(id))
        configuration.longPoll = 5
        configuration.encoding = encoding
        var logger = Logger(label: "test.\(id)")
        logger.logLevel = ProcessInfo.processInfo.environment["AGENT_LOG"] == nil ? .critical : .debug
        return try await SimulatedMeter(
            configuration: configuration, model: MeterModel(seed: 7, interval: 3600), logger: logger)
    }

    @Test func aMasterGathersReadingsFromItsPeersThroughTheHub() async throws {
        let h = try HubHarness(systemClock: true)
        let live = try await LiveHub.start(h.hub)
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("bc-rv-\(UUID().uuidString)")
        var meters: [SimulatedMeter] = []
        for id in ["master", "p1", "p2", "p3"] {
            meters.append(try await Self.meter(id, live, token: try await h.provision(id), root: root))
        }
        _ = try await h.hub.addRendezvousRule(
            CreateRendezvousRule(from: "device:master", to: "device:p1", commands: ["read"]))
        _ = try await h.hub.addRendezvousRule(
            CreateRendezvousRule(from: "device:master", to: "device:p2", commands: ["read"]))
        let loops = meters.map { meter in Task { await meter.run() } }
        defer { for loop in loops { loop.cancel() } }

        let id = try await h.submit("gather", to: "master") { $0.args = ["peers": ["p1", "p2"], "timeout": 20] }.id
        let done = try await h.hub.command(id, waitingUpTo: 30)
        #expect(done.state == .succeeded)
        for peer in ["p1", "p2"] {
            #expect(done.outcome?.data?["peers"]?[peer]?["state"] == "SUCCEEDED", "\(peer) answered")
            #expect(done.outcome?.data?["peers"]?[peer]?["data"]?["kWh"]?.doubleValue != nil, "\(peer) sent kWh")
        }

        // p3 has no rule: the master's request is rejected, and gather says so.
        let partial = try await h.submit("gather", to: "master") { $0.args = ["peers": ["p1", "p3"], "timeout": 20] }.id
        let refused = try await h.hub.command(partial, waitingUpTo: 30)
        #expect(refused.state == .failed)
        #expect(refused.outcome?.data?["peers"]?["p3"]?["state"] == "REJECTED")
        #expect(refused.outcome?.data?["peers"]?["p3"]?["code"] == .string(OutcomeCode.notAuthorized))
        #expect(refused.outcome?.data?["peers"]?["p1"]?["state"] == "SUCCEEDED")

        // Each peer request is a command of its own, with the master as origin.
        let atP1 = try await h.hub.commands(device: "p1", state: nil, cursor: nil, limit: 10).items
        #expect(atP1.count == 2)
        #expect(atP1.allSatisfy { $0.origin == "device:master" && ["acked", "sent"].contains($0.replyState) })
    }

    /// The whole session in SOAP: a SOAP master gathers from a JSON peer and a SOAP peer, and
    /// its own readings arrive too.
    @Test func aSOAPMasterGathersFromJSONAndSOAPPeers() async throws {
        let h = try HubHarness(systemClock: true)
        let live = try await LiveHub.start(h.hub)
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("bc-rv-\(UUID().uuidString)")
        let encodings: [(String, WireEncoding)] = [("master", .soap), ("json-peer", .json), ("soap-peer", .soap)]
        var meters: [SimulatedMeter] = []
        for (id, encoding) in encodings {
            meters.append(
                try await Self.meter(id, live, token: try await h.provision(id), root: root, encoding: encoding))
        }
        _ = try await h.hub.addRendezvousRule(CreateRendezvousRule(from: "device:master", to: "*", commands: ["read"]))
        let loops = meters.map { meter in Task { await meter.run() } }
        defer { for loop in loops { loop.cancel() } }

        let id = try await h.submit("gather", to: "master") {
            $0.args = ["peers": ["json-peer", "soap-peer"], "timeout": 20]
        }.id
        let done = try await h.hub.command(id, waitingUpTo: 30)
        #expect(done.state == .succeeded)
        for peer in ["json-peer", "soap-peer"] {
            #expect(done.outcome?.data?["peers"]?[peer]?["data"]?["kWh"]?.doubleValue != nil, "\(peer) answered")
        }
        // The master's result came through SOAP: its inner envelope is kept.
        #expect(done.outcome?.envelope?.contains("CommandResult") == true)
        // The SOAP peer's answer to the master is its own result envelope.
        let atSOAPPeer = try #require(
            try await h.hub.commands(device: "soap-peer", state: nil, cursor: nil, limit: 1).items.first)
        #expect(atSOAPPeer.state == .succeeded)
        #expect(try await h.hub.command(atSOAPPeer.id).outcome?.envelope != nil)
        // The master's periodic reading (sent in SOAP as self-describing XML) is stored.
        try await waitUntil("a reading from the SOAP master") {
            try await !h.hub.uplink(device: "master", kind: .reading, cursor: nil, limit: 1).items.isEmpty
        }
        let reading = try #require(
            try await h.hub.uplink(device: "master", kind: .reading, cursor: nil, limit: 1).items.first)
        #expect(reading.data["kWh"]?.doubleValue != nil)
    }
}
