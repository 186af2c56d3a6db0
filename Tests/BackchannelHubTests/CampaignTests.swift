import BackchannelAgent
import BackchannelHub
import BackchannelProtocol
import BackchannelStore
import Foundation
import Logging
import Testing

/// Group commands: one child per device with the full lifecycle, counts, waves, the abort
/// threshold, and the seed's 5-device upgrade.
@Suite struct CampaignTests {
    /// The seed's example: upgrade 5 devices; 4 report success; the fifth is on but unavailable
    /// and gets the command once it becomes available, within the deadline.
    @Test func fiveDeviceUpgradeWithOneOnButUnavailable() async throws {
        let h = try HubHarness(systemClock: true)
        let live = try await LiveHub.start(h.hub)
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("bc-camp-\(UUID().uuidString)")
        var agents: [String: Agent] = [:]
        for index in 1...5 {
            let id = "dev-\(index)"
            var configuration = AgentConfiguration(
                hubURL: live.url, deviceID: id, token: try await h.provision(id),
                stateDirectory: root.appendingPathComponent(id))
            configuration.longPoll = 10
            if index == 5 {
                configuration.presence = PresenceReport(state: .restricted, note: "on, critical process running")
            }
            var logger = Logger(label: "test.\(id)")
            logger.logLevel = .critical
            let agent = try Agent(configuration: configuration, logger: logger)
            await agent.register("upgrade") { request in .succeeded(["version": request.args["version"] ?? .null]) }
            agents[id] = agent
        }
        let loops = agents.values.map { agent in Task { await agent.run() } }
        defer { for loop in loops { loop.cancel() } }
        try await waitUntil("all five online, dev-5 restricted") {
            (1...5).allSatisfy { h.hub.presence.view("dev-\($0)")?.inferred == .online }
                && h.hub.presence.view("dev-5")?.declared?.state == .restricted
        }

        let started = try await h.hub.startCampaign(
            StartCampaignRequest(
                name: "upgrade", args: ["version": "2.4.1"], devices: (1...5).map { "dev-\($0)" },
                untilAvailable: true, ttl: 120))
        #expect(started.devices == 5)
        #expect(started.state == .running)
        try await waitUntil("four upgraded") {
            try await h.hub.campaign(started.id).succeeded == 4
        }
        var view = try await h.hub.campaign(started.id, children: true)
        #expect(view.state == .running)
        #expect(view.counts["QUEUED"] == 1)
        #expect(view.children?.first { $0.device == "dev-5" }?.state == .queued, "held while unavailable")

        // dev-5 becomes available: it gets the command and the campaign completes.
        try await agents["dev-5"]!.declare(PresenceReport(state: .available))
        try await waitUntil("the campaign completes") { try await h.hub.campaign(started.id).state == .completed }
        view = try await h.hub.campaign(started.id, children: true)
        #expect(view.succeeded == 5)
        #expect(view.counts["SUCCEEDED"] == 5)
        #expect(view.children?.allSatisfy { $0.origin == "campaign:\(started.id)" && $0.state == .succeeded } == true)
        await live.stop()
    }

    @Test func wavesReleaseNDevicesPerMinute() async throws {
        let h = try HubHarness { $0.dispatchLead = 0 }
        var tokens: [String: String] = [:]
        for index in 1...5 { tokens["w\(index)"] = try await h.provision("w\(index)") }
        let view = try await h.hub.startCampaign(
            StartCampaignRequest(name: "shed", devices: (1...5).map { "w\($0)" }, perMinute: 2, ttl: 600))
        func gets(_ device: String, seq: Int64) async throws -> Bool {
            try await !h.poll(makePoll(device, seq: seq), token: tokens[device]!).requests.isEmpty
        }
        #expect(try await gets("w1", seq: 1))
        #expect(try await gets("w2", seq: 1))
        #expect(!(try await gets("w3", seq: 1)), "second wave waits a minute")
        h.clock.advance(seconds: 60)
        #expect(try await gets("w3", seq: 2))
        #expect(try await gets("w4", seq: 2))
        #expect(!(try await gets("w5", seq: 2)))
        h.clock.advance(seconds: 60)
        #expect(try await gets("w5", seq: 3))
        #expect(try await h.hub.campaign(view.id).counts["DISPATCHED"] == 5)
    }

    @Test func theAbortThresholdCancelsTheRest() async throws {
        let h = try HubHarness()
        var tokens: [String: String] = [:]
        for index in 1...6 { tokens["a\(index)"] = try await h.provision("a\(index)") }
        let view = try await h.hub.startCampaign(
            StartCampaignRequest(
                name: "upgrade", devices: (1...6).map { "a\($0)" }, abortThreshold: 0.5, minFinished: 3))
        // a1 succeeds, a2 and a3 fail: 2 of 3 finished failed (67 % ≥ 50 %), with 3 finished.
        for (index, status) in [(1, ResultStatus.succeeded), (2, .failed), (3, .failed)] {
            let device = "a\(index)"
            let delivered = try await h.poll(makePoll(device, seq: 1), token: tokens[device]!)
            let id = try #require(delivered.requests.first?.id)
            let result = LogicalResult(id: id, status: status, code: status == .failed ? "flash_error" : nil)
            _ = try await h.poll(makePoll(device, seq: 2, acks: [id], results: [result]), token: tokens[device]!)
            if index == 2 {
                #expect(try await h.hub.campaign(view.id).state == .running, "1 of 2 is below minFinished")
            }
        }
        let ended = try await h.hub.campaign(view.id, children: true)
        #expect(ended.state == .aborted)
        #expect(ended.detail?.contains("2 of 3") == true)
        #expect(ended.counts["SUCCEEDED"] == 1)
        #expect(ended.counts["FAILED"] == 2)
        #expect(ended.counts["CANCELED"] == 3)
        #expect(try await h.poll(makePoll("a4", seq: 1), token: tokens["a4"]!).requests.isEmpty)
    }

    @Test func aSkippedSettleIsCaughtUpByTheReconciler() async throws {
        let h = try HubHarness()
        _ = try await h.provision("r1")
        let view = try await h.hub.startCampaign(StartCampaignRequest(name: "shed", devices: ["r1"]))
        // The child ends behind the hub's back (as if the hub died right after committing it).
        let child = try #require(try await h.hub.campaign(view.id, children: true).children?.first)
        _ = try await h.store.cancel(command: child.id, at: h.clock.now(), reason: "test")
        #expect(try await h.hub.campaign(view.id).state == .running)
        await h.hub.reconcileCampaigns()
        #expect(try await h.hub.campaign(view.id).state == .completed)
    }

    @Test func campaignsCanBeCanceledAndAreValidated() async throws {
        let h = try HubHarness()
        _ = try await h.hub.provision(ProvisionDeviceRequest(id: "c1", labels: ["feeder": "7"]))
        _ = try await h.hub.provision(ProvisionDeviceRequest(id: "c2", labels: ["feeder": "7"]))
        _ = try await h.hub.provision(ProvisionDeviceRequest(id: "c3", labels: ["feeder": "8"]))
        let view = try await h.hub.startCampaign(StartCampaignRequest(name: "shed", selector: "label:feeder=7"))
        #expect(view.devices == 2)
        let canceled = try await h.hub.cancelCampaign(view.id, reason: "load restored")
        #expect(canceled.state == .canceled)
        #expect(canceled.counts["CANCELED"] == 2)
        await #expect(throws: HubError.self) { _ = try await h.hub.cancelCampaign(view.id, reason: nil) }
        for bad in [
            StartCampaignRequest(name: "shed"),
            StartCampaignRequest(name: "shed", devices: ["ghost"]),
            StartCampaignRequest(name: "shed", selector: "label:feeder=9"),
            StartCampaignRequest(name: "shed", devices: ["c1"], abortThreshold: 1.5),
            StartCampaignRequest(name: "shed", devices: ["c1", "c2", "c3"], perMinute: 1, ttl: 90),
        ] {
            await #expect(throws: HubError.self, "\(bad)") { _ = try await h.hub.startCampaign(bad) }
        }
        #expect(try await h.hub.campaigns(limit: 10).count == 1)
    }
}
