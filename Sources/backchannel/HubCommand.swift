import ArgumentParser
import BackchannelAgent
import BackchannelHub
import BackchannelProtocol
import BackchannelSQLite
import BackchannelTLS
import Foundation
import Hummingbird
import Logging
import NIOCore
import ServiceLifecycle
import UnixSignals

/// Options that configure a hub, shared by `hub` and `demo`.
struct HubOptions: ParsableArguments {
    @Option(help: "Address to bind. Use 0.0.0.0 to accept devices from other machines.")
    var host = "127.0.0.1"

    @Option(help: "TCP port (0 picks a free one).")
    var port = 8080

    @Option(
        name: .customLong("data-dir"),
        help:
            "Directory for the SQLite database and the operator token (default: ./backchannel-data; the demo's: ./backchannel-demo)."
    )
    var dataDirectory: String?

    @Option(help: "Seconds between polls asked of idle devices.")
    var pollInterval: Double = 30

    @Option(help: "Longest long-poll the hub holds, in seconds.")
    var maxWait: Double = 60

    @Option(help: "Seconds a dispatched command waits for its acknowledgement before redelivery.")
    var lease: Double = 60

    @Option(help: "Deliveries before a command fails as undeliverable.")
    var maxAttempts = 5

    @Option(
        help:
            "Seconds before a command's notBefore at which it is delivered, for the device to hold and start on time by its corrected clock."
    )
    var dispatchLead: Double = 30

    @Option(
        help:
            "Seconds after the time a device promised to poll by (contactBy) before it is marked presence-error.")
    var presenceGrace: Double = 15

    @Option(
        help:
            "Rendezvous: seconds since a device was last heard from within which it counts as reachable, for peer requests that ask to fail fast."
    )
    var reachabilityWindow: Double = 75

    @Option(
        help:
            "Power applications: the IANA time zone of the service territory, written as the Green Button export's local time (tariffs and shedding schedules carry their own)."
    )
    var timeZone = "UTC"

    @Option(help: "Power applications: days of 15-minute interval data kept (0: keep everything).")
    var intervalRetentionDays: Double = 400

    @Option(
        help:
            "Power applications: seconds between re-evaluations of the shedding policies without a price change (a limit window opening or closing sheds or restores by itself)."
    )
    var sheddingCheck: Double = 30

    @Option(
        help:
            "The hub's URL as devices reach it (https://hub.example:8443), written into the WSDL's service address (default: the Host the client used)."
    )
    var publicURL: String?

    @Option(help: "Commit durability: full (fsync every commit; survives power loss) or normal (survives crashes).")
    var durability: SQLiteMessageStore.Configuration.Durability = .full

    @Option(
        help:
            "Operator token to require (default: $BACKCHANNEL_OPERATOR_TOKEN, else generated once and kept in <data-dir>/operator-token)."
    )
    var operatorToken: String?

    @Option(help: "Operator API requests per second allowed per operator (0: no limit); beyond it 429.")
    var operatorRate: Double = 50

    @Option(help: "Burst of operator requests allowed above --operator-rate.")
    var operatorBurst: Double = 200

    @Option(
        name: .customLong("tls-cert"),
        help: "Serve HTTPS: PEM file with the hub's certificate (and intermediates), e.g. hub.crt from `certs init`.")
    var tlsCertificate: String?

    @Option(name: .customLong("tls-key"), help: "PEM file with the private key of --tls-cert, e.g. hub.key.")
    var tlsKey: String?

    @Option(
        name: .customLong("client-ca"),
        help:
            "Mutual TLS: PEM file of the CA that issues device certificates (ca.crt). A device presenting one is identified by it and needs no token; the bearer token still works."
    )
    var clientCA: String?

    @Option(help: "Most connections open at once; beyond it new connections are closed. Must exceed held polls.")
    var maxConnections = HubConnectionLimits().maxConnections

    @Option(
        help: "Seconds a new connection has for its TLS handshake and first request head (slow clients are cut off)."
    )
    var headerTimeout = HubConnectionLimits().requestHeadTimeout

    @Option(
        help:
            "Seconds a connection may go without a complete request head (or body bytes during a body) before it is closed."
    )
    var idleTimeout = HubConnectionLimits().idleTimeout

    @Flag(inversion: .prefixedNo, help: "Save the operator token in ~/.backchannel/credentials.json for local CLI use.")
    var saveCredentials = true

    @Option(help: "Log level: trace, debug, info, notice, warning, error, critical.")
    var logLevel: Logger.Level = .info

    func validate() throws {
        guard (0...65535).contains(port) else { throw ValidationError("--port must be 0-65535") }
        guard pollInterval > 0, pollInterval <= 86400 else {
            throw ValidationError("--poll-interval must be 0-86400 seconds")
        }
        guard maxWait >= 0, maxWait <= 600 else { throw ValidationError("--max-wait must be 0-600 seconds") }
        guard lease >= 1, lease <= 86400 else { throw ValidationError("--lease must be 1-86400 seconds") }
        guard (1...100).contains(maxAttempts) else { throw ValidationError("--max-attempts must be 1-100") }
        guard operatorRate >= 0, operatorRate.isFinite, operatorBurst >= 1, operatorBurst.isFinite else {
            throw ValidationError("--operator-rate must be 0 or more and --operator-burst 1 or more")
        }
        guard dispatchLead >= 0, dispatchLead <= 3600 else {
            throw ValidationError("--dispatch-lead must be 0-3600 seconds")
        }
        guard presenceGrace >= 0, presenceGrace <= 86400 else {
            throw ValidationError("--presence-grace must be 0-86400 seconds")
        }
        guard reachabilityWindow >= 1, reachabilityWindow <= 86400 else {
            throw ValidationError("--reachability-window must be 1-86400 seconds")
        }
        guard TimeZone(identifier: timeZone) != nil else {
            throw ValidationError("--time-zone: unknown time zone (use an IANA id such as America/New_York)")
        }
        guard intervalRetentionDays >= 0, intervalRetentionDays <= 36_500 else {
            throw ValidationError("--interval-retention-days must be 0-36500")
        }
        guard sheddingCheck >= 1, sheddingCheck <= 3600 else {
            throw ValidationError("--shedding-check must be 1-3600 seconds")
        }
        switch (tlsCertificate, tlsKey) {
        case (nil, nil):
            guard clientCA == nil else { throw ValidationError("--client-ca needs --tls-cert and --tls-key") }
        case (.some, .some):
            do {
                _ = try tlsConfiguration()?.makeServerConfiguration()
            } catch {
                throw ValidationError("TLS: \(error.reason)")
            }
        default:
            throw ValidationError("--tls-cert and --tls-key go together")
        }
        guard maxConnections >= 1 else { throw ValidationError("--max-connections must be 1 or more") }
        guard headerTimeout >= 1, headerTimeout <= 600, idleTimeout >= 1, idleTimeout <= 86400 else {
            throw ValidationError("--header-timeout must be 1-600 seconds and --idle-timeout 1-86400")
        }
        if let publicURL {
            guard let url = URL(string: publicURL), ["http", "https"].contains(url.scheme ?? ""), url.host != nil
            else { throw ValidationError("--public-url must be an http:// or https:// URL") }
        }
    }

    func configuration() -> HubConfiguration {
        var configuration = HubConfiguration()
        configuration.host = host
        configuration.port = port
        configuration.pollInterval = pollInterval
        configuration.maxWait = maxWait
        configuration.leaseSeconds = lease
        configuration.maxAttempts = maxAttempts
        configuration.reachabilityWindow = reachabilityWindow
        configuration.power.timeZone = timeZone
        configuration.power.intervalRetentionDays = intervalRetentionDays
        configuration.power.sheddingCheckInterval = sheddingCheck
        configuration.presenceGrace = presenceGrace
        configuration.dispatchLead = dispatchLead
        configuration.publicURL = publicURL
        configuration.operatorRate = operatorRate
        configuration.operatorBurst = operatorBurst
        configuration.tls = tlsConfiguration()
        configuration.connectionLimits.maxConnections = maxConnections
        configuration.connectionLimits.requestHeadTimeout = headerTimeout
        configuration.connectionLimits.idleTimeout = idleTimeout
        return configuration
    }

    /// The TLS files given, if any.
    func tlsConfiguration() -> HubTLSConfiguration? {
        guard let tlsCertificate, let tlsKey else { return nil }
        return HubTLSConfiguration(certificateChainFile: tlsCertificate, privateKeyFile: tlsKey, clientCAFile: clientCA)
    }
}

/// `backchannel hub`: run the hub.
struct HubCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "hub",
        abstract: "Run the hub: the device endpoint, the operator API and the services behind them.",
        discussion: """
            State lives in one SQLite file in --data-dir (WAL mode, fsync per commit by default). \
            The operator API needs the operator token; a new hub generates one, keeps it in \
            <data-dir>/operator-token (mode 0600) and saves it for the local CLI. Stop with \
            Ctrl-C or SIGTERM: held polls are answered and last-seen times flushed first.
            """
    )

    @OptionGroup var options: HubOptions

    func run() async throws {
        bootstrapLogging(options.logLevel)
        let running = try RunningHub.make(options, defaultDataDirectory: "backchannel-data")
        try await running.serve(extraServices: []) { url in
            print("backchannel hub listening on \(url)")
            print("  data:  \(running.dataDirectory.path)")
            print("  token: \(running.tokenSource)")
            fflush(nil)
        }
    }
}

/// A hub assembled from options: store, operator token, application.
struct RunningHub {
    let hub: Hub
    let dataDirectory: URL
    let token: String
    let tokenSource: String
    let saveCredentials: Bool

    static func make(_ options: HubOptions, defaultDataDirectory: String, logLabel: String = "backchannel.hub") throws
        -> RunningHub
    {
        let dataDirectory = URL(fileURLWithPath: options.dataDirectory ?? defaultDataDirectory).standardizedFileURL
        do {
            try FileManager.default.createDirectory(at: dataDirectory, withIntermediateDirectories: true)
        } catch {
            throw CLIError("cannot create the data directory \(dataDirectory.path): \(error.localizedDescription)")
        }
        let (token, source) = try operatorToken(options, dataDirectory: dataDirectory)
        var storeConfiguration = SQLiteMessageStore.Configuration()
        storeConfiguration.durability = options.durability
        let store: SQLiteMessageStore
        do {
            store = try SQLiteMessageStore(
                path: dataDirectory.appendingPathComponent("backchannel.sqlite").path, configuration: storeConfiguration
            )
        } catch {
            throw CLIError("cannot open the database in \(dataDirectory.path): \(error)")
        }
        var configuration = options.configuration()
        configuration.operatorTokenHash = Credentials.hash(token)
        configuration.artifactsDirectory = dataDirectory.appendingPathComponent("artifacts")
        let hub = Hub(configuration: configuration, store: store, logger: Logger(label: logLabel))
        return RunningHub(
            hub: hub, dataDirectory: dataDirectory, token: token, tokenSource: source,
            saveCredentials: options.saveCredentials)
    }

    private static func operatorToken(_ options: HubOptions, dataDirectory: URL) throws -> (String, String) {
        if let token = options.operatorToken ?? ProcessInfo.processInfo.environment["BACKCHANNEL_OPERATOR_TOKEN"],
            !token.isEmpty
        {
            guard token.count >= 16 else { throw CLIError("the operator token must be at least 16 characters") }
            return (token, "given on the command line or in $BACKCHANNEL_OPERATOR_TOKEN")
        }
        let file = dataDirectory.appendingPathComponent("operator-token")
        if let saved = try? String(contentsOf: file, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines),
            !saved.isEmpty
        {
            return (saved, "in \(file.path)")
        }
        let token = Credentials.makeToken()
        do {
            try SecretFile.write(Data((token + "\n").utf8), to: file)
        } catch {
            throw CLIError("cannot save the operator token in \(file.path): \(error.localizedDescription)")
        }
        return (token, "generated, in \(file.path)")
    }

    /// Serves until SIGINT/SIGTERM, with extra services started once the server listens.
    func serve(extraServices: [any Service], ready: @escaping @Sendable (String) async -> Void) async throws {
        let hub = self.hub
        let host = hub.configuration.host
        let token = self.token
        let save = self.saveCredentials
        let app = buildApplication(hub: hub) { channel in
            let port = channel.localAddress?.port ?? hub.configuration.port
            let shownHost = host == "0.0.0.0" || host == "::" ? "127.0.0.1" : host
            let scheme = hub.configuration.tls == nil ? "http" : "https"
            let url = "\(scheme)://\(shownHost):\(port)"
            if save {
                do {
                    try SavedCredentials.save(token: token, for: url)
                } catch {
                    hub.logger.warning("could not save CLI credentials", metadata: ["error": "\(error)"])
                }
            }
            await ready(url)
        }
        let group = ServiceGroup(
            configuration: .init(
                services: [.init(service: app)] + extraServices.map { .init(service: $0) },
                gracefulShutdownSignals: [.sigterm, .sigint],
                logger: hub.logger
            )
        )
        try await group.run()
    }
}

/// Sends log output to standard error at the given level.
func bootstrapLogging(_ level: Logger.Level) {
    LoggingSystem.bootstrap { label in
        var handler = StreamLogHandler.standardError(label: label)
        handler.logLevel = level
        return handler
    }
}
