public import BackchannelAgent
import BackchannelClient
import BackchannelPower
public import BackchannelProtocol
public import BackchannelSecurity
public import Foundation
public import Logging
import NIOSSL

/// Settings for a fleet of simulated meters.
public struct FleetConfiguration: Sendable {
    /// The hub's base URL.
    public var hubURL: String
    /// The operator token, needed only to provision devices that have no saved credentials.
    public var operatorToken: String?
    /// How many meters.
    public var count: Int
    /// Device ids are the prefix and a zero-padded number: `meter-001`.
    public var prefix: String = "meter-"
    /// The number of the first meter.
    public var firstIndex: Int = 1
    /// Each meter keeps its outbox, ledger and credentials under `<stateDirectory>/<id>/`.
    public var stateDirectory: URL
    /// Seconds between readings.
    public var interval: Double = 15
    /// Long-poll seconds (0: periodic polling).
    public var longPoll: Double = 25
    /// The binding the meters speak.
    public var encoding: WireEncoding = .json
    /// How the meters reach the hub: polling, or the WebSocket channel.
    public var channel: AgentChannel = .poll
    /// Meters whose firmware downloads are damaged (the corrupted-download case).
    public var corruptFirmware: Set<String> = []
    /// Commands each meter runs at once.
    public var concurrency: Int = 4
    /// Where executions are logged; default `<stateDirectory>/executions.jsonl`.
    public var executionLog: URL?
    /// The CA of an `https` hub, and client certificates of devices that use them.
    public var tls = FleetTLS()
    /// The meters' trust policy: which keys may issue which commands (nil: no checks).
    public var trustPolicy: TrustPolicy?
    /// Seal the meters' readings: billing for one audience, power quality for another.
    public var sealing: MeterSealing?
    /// Arrange the devices as a feeder (master, branches, loads and generators); nil: no
    /// topology is declared.
    public var feeder: FeederLayout?
    /// The UCI household power data set the load profiles come from; nil: generated profiles.
    public var loadData: URL?
    /// Days of 15-minute interval history each meter sends when it first starts.
    public var historyDays = 0
    /// The local time zone of the load profiles.
    public var timeZone = TimeZone(identifier: "UTC")!
    /// The last this-many devices are KYZ transport boxes on plain meters.
    public var transportBoxes = 0
    /// kWh per KYZ pulse of the transport boxes.
    public var kyzKe = Decimal(string: "0.01")!

    /// Creates a configuration.
    public init(hubURL: String, operatorToken: String?, count: Int, stateDirectory: URL) {
        self.hubURL = hubURL
        self.operatorToken = operatorToken
        self.count = count
        self.stateDirectory = stateDirectory
    }

    /// The device ids of the fleet.
    public var deviceIDs: [String] {
        let width = max(3, String(firstIndex + count - 1).count)
        return (firstIndex..<(firstIndex + count)).map { index in
            let digits = String(index)
            return prefix + String(repeating: "0", count: max(0, width - digits.count)) + digits
        }
    }
}

/// A fleet of simulated meters sharing one HTTP client.
public final class SimulatorFleet: Sendable {
    /// The meters.
    public let meters: [SimulatedMeter]
    /// The execution log all meters write.
    public let log: ExecutionLog
    private let client: HubClient

    private init(meters: [SimulatedMeter], log: ExecutionLog, client: HubClient) {
        self.meters = meters
        self.log = log
        self.client = client
    }

    /// Provisions what is missing and creates the meters.
    ///
    /// A meter's credentials are saved in `<state>/<id>/credentials.json` (mode 0600) and reused
    /// on later starts. A device the hub already knows but whose credentials are lost gets a
    /// new token.
    public static func start(
        _ configuration: FleetConfiguration, logger: Logger, progress: @Sendable (String) -> Void = { _ in }
    ) async throws -> SimulatorFleet {
        guard configuration.count > 0, configuration.count <= 100_000 else {
            throw FleetError("device count must be 1-100000")
        }
        let ids = configuration.deviceIDs
        guard ids.allSatisfy({ Identifier.isValid($0) }) else { throw FleetError("prefix makes invalid device ids") }
        // Devices with a client certificate authenticate with it: no token, no provisioning.
        let tokenDevices = ids.filter { configuration.tls.clientCertificate(for: $0) == nil }
        var tls: [String: TLSConfiguration] = [:]
        for id in ids { tls[id] = try configuration.tls.configuration(for: id) }
        let client = HubClient(connections: configuration.count + 8, tls: try configuration.tls.serverTrust())
        let credentials: [String: String]
        do {
            credentials = try await provision(configuration, ids: tokenDevices, client: client, progress: progress)
        } catch {
            try? await client.shutdown()
            throw error
        }
        let log = try ExecutionLog(
            url: configuration.executionLog ?? configuration.stateDirectory.appendingPathComponent("executions.jsonl")
        )
        let storedLog = try ExecutionLog(
            url: configuration.stateDirectory.appendingPathComponent("uplink-stored.jsonl"))
        // One measured profile for the fleet (read once: the file is large), varied per device.
        var measured: LoadProfile?
        if let loadData = configuration.loadData {
            progress("reading load profiles from \(loadData.path)")
            measured = try LoadDataFile.read(loadData, days: 28)
        }
        var meters: [SimulatedMeter] = []
        for (index, id) in ids.enumerated() {
            var agentConfiguration = AgentConfiguration(
                hubURL: configuration.hubURL, deviceID: id, token: credentials[id] ?? "",
                stateDirectory: configuration.stateDirectory.appendingPathComponent(id)
            )
            agentConfiguration.tls = tls[id]
            agentConfiguration.longPoll = configuration.longPoll
            agentConfiguration.encoding = configuration.encoding
            agentConfiguration.channel = configuration.channel
            agentConfiguration.concurrency = configuration.concurrency
            agentConfiguration.presence = PresenceReport(state: .available)
            agentConfiguration.onStored = { [storedLog] ids in storedLog.recordStored(device: id, ids: ids) }
            agentConfiguration.trustPolicy = configuration.trustPolicy
            let seed = UInt64(index + 1) &* 7919
            let base = measured ?? LoadProfile.generated(seed: seed)
            let model = MeterModel(
                seed: seed, interval: configuration.interval, profile: base.variant(seed: seed),
                timeZone: configuration.timeZone)
            let metering: MeteringKind =
                index >= ids.count - configuration.transportBoxes ? .transportBox(ke: configuration.kyzKe) : .meter
            meters.append(
                try await SimulatedMeter(
                    configuration: agentConfiguration, model: model, client: client, log: log, logger: logger,
                    corruptFirmware: configuration.corruptFirmware.contains(id), sealing: configuration.sealing,
                    placement: configuration.feeder?.placement(of: index, in: ids), metering: metering,
                    historyDays: configuration.historyDays)
            )
        }
        progress("started \(meters.count) simulated meters")
        return SimulatorFleet(meters: meters, log: log, client: client)
    }

    /// Runs every meter until cancelled, then closes the HTTP client.
    public func run() async {
        await withTaskGroup(of: Void.self) { group in
            for meter in meters { group.addTask { await meter.run() } }
            await group.waitForAll()
        }
        try? await client.shutdown()
    }

    private struct SavedCredentials: Codable {
        var hub: String
        var device: String
        var token: String
    }

    private static func provision(
        _ configuration: FleetConfiguration, ids: [String], client: HubClient, progress: @Sendable (String) -> Void
    ) async throws -> [String: String] {
        var tokens: [String: String] = [:]
        var missing: [String] = []
        for id in ids {
            let file = configuration.stateDirectory.appendingPathComponent(id).appendingPathComponent(
                "credentials.json")
            if let data = try? Data(contentsOf: file),
                let saved = try? WireJSON.decode(SavedCredentials.self, from: data),
                saved.device == id
            {
                tokens[id] = saved.token
            } else {
                missing.append(id)
            }
        }
        guard !missing.isEmpty else { return tokens }
        guard let operatorToken = configuration.operatorToken else {
            throw FleetError(
                "\(missing.count) devices have no saved credentials and no operator token was given to provision them")
        }
        progress("provisioning \(missing.count) devices")
        // The fleet's client trusts the hub's CA; the fleet shuts it down.
        let api = OperatorClient(hubURL: configuration.hubURL, token: operatorToken, http: client.http)
        for id in missing {
            tokens[id] = try await provision(id, configuration: configuration, api: api)
        }
        return tokens
    }

    private static func provision(_ id: String, configuration: FleetConfiguration, api: OperatorClient) async throws
        -> String
    {
        let provisioned: ProvisionedDevice
        do {
            provisioned = try await api.provision(
                ProvisionDeviceRequest(
                    id: id, name: "Simulated meter \(id)", labels: ["type": "meter", "simulated": "true"])
            )
        } catch let error as OperatorClientError where error.status == 409 {
            provisioned = try await api.rotateToken(device: id)
        }
        let file = configuration.stateDirectory.appendingPathComponent(id).appendingPathComponent("credentials.json")
        let saved = SavedCredentials(hub: configuration.hubURL, device: id, token: provisioned.token)
        try SecretFile.write(try WireJSON.encode(saved), to: file)
        return provisioned.token
    }
}

/// How a fleet is arranged as one feeder: the first device is the master IED, the next
/// `branches` are branch IEDs under it, and the rest are spread over the branches in turn as
/// loads, every `generatorEvery`-th of them a generator.
public struct FeederLayout: Sendable, Hashable {
    /// Branch IEDs under the master (at least 1).
    public var branches: Int
    /// Every n-th leaf is a generator; 0 for none.
    public var generatorEvery: Int

    /// Creates a layout.
    public init(branches: Int, generatorEvery: Int = 4) {
        self.branches = max(1, branches)
        self.generatorEvery = max(0, generatorEvery)
    }

    /// The placement of the device at `index` of `ids`.
    public func placement(of index: Int, in ids: [String]) -> GridPlacement {
        let branchCount = min(branches, max(0, ids.count - 1))
        if index == 0 { return GridPlacement(parent: nil, role: "master", customers: 0) }
        if index <= branchCount { return GridPlacement(parent: ids[0], role: "branch", customers: 0) }
        let leaf = index - branchCount - 1
        let parent = branchCount == 0 ? ids[0] : ids[1 + leaf % branchCount]
        let generator = generatorEvery > 0 && (leaf + 1) % generatorEvery == 0
        return GridPlacement(parent: parent, role: generator ? "generator" : "load", customers: generator ? 0 : 1)
    }
}

/// A fleet could not start.
public struct FleetError: Error, Sendable, CustomStringConvertible {
    public var description: String

    init(_ description: String) {
        self.description = description
    }
}
