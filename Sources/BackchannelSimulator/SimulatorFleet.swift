public import BackchannelAgent
import BackchannelClient
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
            let model = MeterModel(seed: UInt64(index + 1) &* 7919, interval: configuration.interval)
            meters.append(
                try await SimulatedMeter(
                    configuration: agentConfiguration, model: model, client: client, log: log, logger: logger,
                    corruptFirmware: configuration.corruptFirmware.contains(id), sealing: configuration.sealing)
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

/// A fleet could not start.
public struct FleetError: Error, Sendable, CustomStringConvertible {
    public var description: String

    init(_ description: String) {
        self.description = description
    }
}
