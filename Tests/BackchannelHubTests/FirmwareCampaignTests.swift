import BackchannelAgent
import BackchannelHub
import BackchannelProtocol
import BackchannelSimulator
import Foundation
import Logging
import NIOCore
import Testing

/// A firmware campaign end to end: an artifact addressed by its SHA-256, simulated meters that
/// fetch it in chunks, verify, install and report each stage; a corrupted download ends FAILED.
@Suite struct FirmwareCampaignTests {
    @Test func firmwareCampaignInstallsVerifiedImagesAndRejectsACorruptOne() async throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("bc-fw-\(UUID().uuidString)")
        let h = try HubHarness(systemClock: true) { $0.artifactsDirectory = root.appendingPathComponent("artifacts") }
        let live = try await LiveHub.start(h.hub)
        var image = [UInt8](repeating: 0, count: 700 * 1024 + 17)
        for i in image.indices { image[i] = UInt8(truncatingIfNeeded: i &* 31 &+ 7) }
        let artifacts = try #require(h.hub.artifacts)
        let info = try await artifacts.put(
            AsyncStream { continuation in
                continuation.yield(ByteBuffer(bytes: image))
                continuation.finish()
            }, name: "meter-fw-2.4.1.bin", maxBytes: 1 << 20)
        #expect(info.sha256 == FirmwareDigest.sha256(image))

        var meters: [SimulatedMeter] = []
        for (id, corrupt) in [("good-1", false), ("good-2", false), ("flaky-3", true)] {
            var configuration = AgentConfiguration(
                hubURL: live.url, deviceID: id, token: try await h.provision(id),
                stateDirectory: root.appendingPathComponent(id))
            configuration.longPoll = 5
            var logger = Logger(label: "test.\(id)")
            logger.logLevel = .critical
            meters.append(
                try await SimulatedMeter(
                    configuration: configuration, model: MeterModel(seed: 3, interval: 3600), logger: logger,
                    corruptFirmware: corrupt))
        }
        let loops = meters.map { meter in Task { await meter.run() } }
        defer { for loop in loops { loop.cancel() } }

        let campaign = try await h.hub.startCampaign(
            StartCampaignRequest(
                name: "firmware.install", args: ["sha256": .string(info.sha256), "chunkSize": 131_072],
                devices: ["good-1", "good-2", "flaky-3"], untilAvailable: true, ttl: 120, timeout: 60))
        try await waitUntil("the campaign completes", timeout: 30) {
            try await h.hub.campaign(campaign.id).state == .completed
        }
        let view = try await h.hub.campaign(campaign.id, children: true)
        #expect(view.succeeded == 2)
        #expect(view.counts["FAILED"] == 1)
        let flaky = try #require(view.children?.first { $0.device == "flaky-3" })
        #expect(flaky.outcome?.code == "hash_mismatch")
        #expect(flaky.outcome?.detail?.contains("SHA-256") == true)
        #expect(meters[0].model.firmware == info.sha256)
        #expect(meters[2].model.firmware == nil, "a corrupt image is never installed")

        // Each stage was reported, in order, by a good device.
        try await waitUntil("the stages are stored") {
            try await h.hub.uplink(device: "good-1", kind: .event, cursor: nil, limit: 100).items
                .contains { $0.data["stage"] == "done" }
        }
        let stages = try await h.hub.uplink(device: "good-1", kind: .event, cursor: nil, limit: 100).items
            .filter { $0.name == "firmware.progress" }.compactMap { $0.data["stage"]?.stringValue }
        #expect(
            Array(stages.reversed().drop { $0 == "downloading" }) == ["verifying", "installing", "rebooting", "done"])
        #expect(stages.contains("downloading"))
        let failedStages = try await h.hub.uplink(device: "flaky-3", kind: .event, cursor: nil, limit: 100).items
            .compactMap { $0.data["stage"]?.stringValue }
        #expect(failedStages.contains("failed"))
        #expect(!failedStages.contains("installing"))
        await live.stop()
    }
}
