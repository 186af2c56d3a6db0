import ArgumentParser
import BackchannelClient
import BackchannelHub
import BackchannelProtocol
import BackchannelSimulator
import Foundation
import Logging
import ServiceLifecycle

/// `backchannel demo`: a hub and a fleet of simulated meters in one process.
struct DemoCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "demo",
        abstract: "Run a hub with simulated meters in one process, and print what to try next.",
        discussion: """
            State goes to ./backchannel-demo (SQLite database, meter outboxes and ledgers), so a \
            second run continues where the first stopped. Stop with Ctrl-C.
            """
    )

    @OptionGroup var hubOptions: HubOptions

    @Option(help: "How many simulated meters.")
    var devices = 20

    @Option(help: "Seconds between meter readings.")
    var interval: Double = 5

    @Option(help: "Long-poll seconds the meters ask for (0: periodic polling).")
    var longPoll: Double = 25

    @Option(help: "Branch IEDs of the demo feeder (the first meter is its master IED; fewer in a small fleet).")
    var branches = 3

    @Flag(help: "Skip the tour of the power applications (tariffs, shedding, PQ alerts, outages).")
    var noTour = false

    func validate() throws {
        guard (1...10_000).contains(devices) else { throw ValidationError("--devices must be 1-10000") }
        guard interval >= 0.1, interval <= 86400 else { throw ValidationError("--interval must be 0.1-86400 seconds") }
        guard longPoll >= 0, longPoll <= 600 else { throw ValidationError("--long-poll must be 0-600 seconds") }
        guard (1...100).contains(branches) else { throw ValidationError("--branches must be 1-100") }
    }

    func run() async throws {
        bootstrapLogging(hubOptions.logLevel == .info ? .warning : hubOptions.logLevel)
        let running = try RunningHub.make(hubOptions, defaultDataDirectory: "backchannel-demo")
        let (urls, announce) = AsyncStream.makeStream(of: String.self)
        var fleetConfiguration = FleetConfiguration(
            hubURL: "", operatorToken: running.token, count: devices,
            stateDirectory: running.dataDirectory.appendingPathComponent("meters")
        )
        fleetConfiguration.interval = interval
        fleetConfiguration.longPoll = longPoll
        // A feeder with real household load profiles, a week of interval history, and two KYZ
        // transport boxes at the end.
        // A small fleet gets fewer branches: at least one load under each.
        let branchCount = max(1, min(branches, (devices - 1) / 2))
        fleetConfiguration.feeder = FeederLayout(branches: branchCount, generatorEvery: 4)
        fleetConfiguration.historyDays = 7
        fleetConfiguration.transportBoxes = max(0, min(2, devices - branchCount - 4))
        fleetConfiguration.loadData = LoadDataFile.locate().map { URL(fileURLWithPath: $0) }
        fleetConfiguration.timeZone = TimeZone(identifier: hubOptions.timeZone) ?? fleetConfiguration.timeZone
        // billing.* runs only when signed by the demo's utility key (keys/utility.key).
        fleetConfiguration.trustPolicy = try DemoTrust.prepare(in: running.dataDirectory).trustPolicy
        let fleet = FleetService(
            configuration: fleetConfiguration, urls: urls, logger: Logger(label: "backchannel.sim"),
            tokenSource: running.tokenSource,
            tour: noTour ? nil : hubOptions.timeZone)
        print("starting the demo hub (data in \(running.dataDirectory.path)) …")
        fflush(nil)
        try await running.serve(extraServices: [fleet]) { url in
            announce.yield(url)
            announce.finish()
        }
    }
}

/// Starts a simulator fleet once the hub's URL is known, and runs it until shutdown.
struct FleetService: Service {
    let configuration: FleetConfiguration
    let urls: AsyncStream<String>
    let logger: Logger
    /// Where the operator token is, for the dashboard login.
    let tokenSource: String
    /// Run the power tour, in this time zone.
    let tour: String?

    func run() async throws {
        var configuration = self.configuration
        guard let url = await urls.first(where: { _ in true }) else { return }
        configuration.hubURL = url
        let fleet = try await SimulatorFleet.start(configuration, logger: logger) { line in print(line) }
        let first = configuration.deviceIDs.first ?? "meter-001"
        let hubFlag = url == "http://127.0.0.1:8080" ? "" : " --hub \(url)"
        let keyPath = configuration.stateDirectory.deletingLastPathComponent().appendingPathComponent(
            "keys/utility.key"
        ).path
        if let timeZone = tour {
            let api = OperatorClient(hubURL: url, token: configuration.operatorToken ?? "")
            let branches = configuration.feeder?.branches ?? 1
            let ids = configuration.deviceIDs
            Task {
                await DemoPowerTour(
                    api: api, timeZone: timeZone, ids: ids,
                    branches: branches
                ) { line in
                    print(line)
                    fflush(nil)
                }.run()
                try? await api.shutdown()
            }
        }
        print(
            """

            Backchannel demo is running: hub at \(url), \(configuration.count) simulated meters.

            Dashboard: open \(url)/ in a browser and log in with the operator token (\(tokenSource)).

            Try, in another terminal (the operator token was saved for this hub):
              swift run backchannel devices\(hubFlag)
              swift run backchannel send \(first) read --wait\(hubFlag)
              swift run backchannel send \(first) relay --arg state=open --wait\(hubFlag)
              swift run backchannel readings \(first)\(hubFlag)
              swift run backchannel commands\(hubFlag)
              swift run backchannel send \(first) billing.reset --sign-key \(keyPath) --wait\(hubFlag)
              swift run backchannel power topology\(hubFlag)
              swift run backchannel power bill --device \(first) --tariff-id general-tou\(hubFlag)
              swift run backchannel power price 0.95\(hubFlag)
              swift run backchannel send \(configuration.deviceIDs[1]) pq.inject --arg kind=dip --wait\(hubFlag)
              swift run backchannel power alerts\(hubFlag)
              swift run backchannel send \(configuration.deviceIDs.last ?? first) outage.inject --arg seconds=20\(hubFlag)
              swift run backchannel power outages\(hubFlag)
              swift run backchannel power reliability\(hubFlag)
              swift run backchannel watch\(hubFlag)
              curl -s \(url)/metrics

            Press Ctrl-C to stop.
            """
        )
        fflush(nil)
        await cancelWhenGracefulShutdown {
            await fleet.run()
        }
    }
}
