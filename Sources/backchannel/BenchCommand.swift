import ArgumentParser
import BackchannelAgent
import BackchannelHub
import BackchannelProtocol
import BackchannelSQLite
import Foundation
import Logging
import NIOCore
import ServiceLifecycle
import Synchronization

/// `backchannel bench`: measures a hub with simulated devices over loopback.
struct BenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Benchmark a hub with simulated devices over loopback and print a table.",
        discussion: """
            Starts its own hub (SQLite in a temporary directory, fsync per commit unless \
            --durability normal) and its own devices in this process, so client and server share \
            the machine. Build in release for meaningful figures:
              swift run -c release backchannel bench
            """
    )

    @Option(help: "Devices polling concurrently in the empty-poll phase.")
    var devices = 200

    @Option(help: "Long-polling devices in the push-latency and round-trip phases.")
    var longPollers = 100

    @Option(help: "Commands in the push-latency phase and in the round-trip phase.")
    var commands = 1000

    @Option(help: "Seconds the empty-poll phase runs.")
    var duration: Double = 5

    @Option(help: "Commit durability of the hub's store: full or normal.")
    var durability: SQLiteMessageStore.Configuration.Durability = .full

    func validate() throws {
        guard (1...10_000).contains(devices), (1...10_000).contains(longPollers) else {
            throw ValidationError("--devices and --long-pollers must be 1-10000")
        }
        guard (1...1_000_000).contains(commands) else { throw ValidationError("--commands must be 1-1000000") }
        guard duration >= 1, duration <= 600 else { throw ValidationError("--duration must be 1-600 seconds") }
    }

    func run() async throws {
        bootstrapLogging(.error)
        #if DEBUG
            print("warning: this is a debug build; measure with `swift run -c release backchannel bench`\n")
        #endif
        let bench = try await BenchHub.start(durability: durability)
        var rows: [[String]] = []
        do {
            // Each phase has its own devices, so no phase sees another's polls.
            print("provisioning \(devices + 2 * longPollers) devices …")
            let tokens = try await bench.provision(count: devices + 2 * longPollers)
            let pushDevices = Array(tokens[devices..<(devices + longPollers)])
            let agentDevices = Array(tokens[(devices + longPollers)...])

            print("phase 1: empty polls, \(devices) devices, \(Int(duration)) s …")
            let empty = try await bench.emptyPolls(tokens: Array(tokens.prefix(devices)), seconds: duration)
            rows.append(["empty polls per second (\(devices) devices)", String(format: "%.0f", empty.rate)])
            rows.append(["store writes per empty poll", String(format: "%.4f", empty.writesPerPoll)])

            print("phase 2: push latency, \(longPollers) long-polling devices, \(commands) commands …")
            let push = try await bench.pushLatency(tokens: pushDevices, commands: commands)
            rows.append(["push latency p50 (submit → device holds it)", String(format: "%.2f ms", push.p50 * 1000)])
            rows.append(["push latency p99", String(format: "%.2f ms", push.p99 * 1000)])

            print("phase 3: command round trips, \(longPollers) agents, \(commands) commands …")
            let trips = try await bench.roundTrips(tokens: agentDevices, commands: commands)
            rows.append(["completed command round trips per second", String(format: "%.0f", trips.rate)])
            rows.append([
                "device HTTP transactions per completed command", String(format: "%.2f", trips.pollsPerCommand),
            ])
        } catch {
            await bench.stop()
            throw error
        }
        await bench.stop()
        print("")
        printTable(["MEASURE", "VALUE"], rows)
        print(
            "\n(\(ProcessInfo.processInfo.activeProcessorCount) cores; hub, devices and client in one process; store durability \(durability.rawValue))"
        )
    }
}

/// A hub on loopback plus the device loops that measure it.
struct BenchHub {
    let hub: Hub
    let store: SQLiteMessageStore
    let url: String
    let group: ServiceGroup
    let task: Task<Void, any Error>
    let client: HubClient
    let directory: URL

    static func start(durability: SQLiteMessageStore.Configuration.Durability) async throws -> BenchHub {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent(
            "backchannel-bench-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        var storeConfiguration = SQLiteMessageStore.Configuration()
        storeConfiguration.durability = durability
        let store = try SQLiteMessageStore(
            path: directory.appendingPathComponent("bench.sqlite").path, configuration: storeConfiguration)
        var configuration = HubConfiguration()
        configuration.port = 0
        configuration.devicePollRate = 0
        configuration.lastSeenFlushInterval = 3600
        configuration.maxWait = 60
        var logger = Logger(label: "bench.hub")
        logger.logLevel = .error
        let hub = Hub(configuration: configuration, store: store, logger: logger)
        let (ports, announce) = AsyncStream.makeStream(of: Int.self)
        let app = buildApplication(hub: hub) { channel in
            announce.yield(channel.localAddress?.port ?? 0)
            announce.finish()
        }
        let group = ServiceGroup(configuration: .init(services: [app], logger: logger))
        let task = Task { try await group.run() }
        guard let port = await ports.first(where: { _ in true }), port > 0 else {
            throw CLIError("the bench hub did not start")
        }
        return BenchHub(
            hub: hub, store: store, url: "http://127.0.0.1:\(port)", group: group, task: task,
            client: HubClient(connections: 20_000), directory: directory
        )
    }

    func stop() async {
        try? await client.shutdown()
        await group.triggerGracefulShutdown()
        _ = try? await task.value
        try? FileManager.default.removeItem(at: directory)
    }

    func provision(count: Int) async throws -> [(String, String)] {
        var tokens: [(String, String)] = []
        for index in 0..<count {
            let id = String(format: "bench-%05d", index)
            tokens.append((id, try await hub.provision(ProvisionDeviceRequest(id: id)).token))
        }
        return tokens
    }

    private func post(_ request: PollRequest, token: String) async throws -> PollResponse {
        let reply = try await client.poll(
            hubURL: url, token: token, body: try WireJSON.encode(request), timeout: request.wait + 30)
        guard case .ok(let response) = reply else { throw CLIError("bench poll failed: \(reply)") }
        return response
    }

    /// Every device polls with nothing to say, as fast as answers come back.
    func emptyPolls(tokens: [(String, String)], seconds: Double) async throws -> (rate: Double, writesPerPoll: Double) {
        // One warm-up poll each, so sessions are loaded and sequence numbers start.
        for (id, token) in tokens { _ = try await post(PollRequest(device: id, seq: 1, sentAt: .now()), token: token) }
        let writesBefore = store.writeCount
        let deadline = ContinuousClock.now + .milliseconds(Int64(seconds * 1000))
        let start = ContinuousClock.now
        let count = try await withThrowingTaskGroup(of: Int.self) { group in
            for (id, token) in tokens {
                group.addTask {
                    var seq: Int64 = 2
                    var done = 0
                    while ContinuousClock.now < deadline {
                        _ = try await post(PollRequest(device: id, seq: seq, sentAt: .now()), token: token)
                        seq += 1
                        done += 1
                    }
                    return done
                }
            }
            return try await group.reduce(0, +)
        }
        let elapsed = (ContinuousClock.now - start).seconds
        return (Double(count) / elapsed, Double(store.writeCount - writesBefore) / Double(max(1, count)))
    }

    /// Devices hold long-polls; commands are submitted one by one and timed until a device's
    /// poll returns them.
    func pushLatency(tokens: [(String, String)], commands: Int) async throws -> (p50: Double, p99: Double) {
        let received = ArrivalLog()
        let pollers = Task {
            try await withThrowingTaskGroup(of: Void.self) { group in
                for (id, token) in tokens {
                    group.addTask {
                        var seq: Int64 = 1_000_000
                        var acks: [String] = []
                        var results: [LogicalResult] = []
                        while !Task.isCancelled {
                            let response = try await post(
                                PollRequest(
                                    device: id, seq: seq, sentAt: .now(), acks: acks, results: results, wait: 30),
                                token: token
                            )
                            let now = ContinuousClock.now
                            received.times.withLock { for request in response.requests { $0[request.id] = now } }
                            acks = response.requests.map(\.id)
                            results = response.requests.map { LogicalResult(id: $0.id, status: .succeeded) }
                            seq += 1
                        }
                    }
                }
                try await group.waitForAll()
            }
        }
        try await waitForHeld(tokens.count)
        var latencies: [Double] = []
        for index in 0..<commands {
            let (device, _) = tokens[index % tokens.count]
            let start = ContinuousClock.now
            let id = try await hub.submit(SubmitCommandRequest(name: "ping"), to: device).command.id
            while true {
                if let at = received.times.withLock({ $0[id] }) {
                    latencies.append((at - start).seconds)
                    break
                }
                try await Task.sleep(for: .microseconds(200))
            }
        }
        pollers.cancel()
        _ = try? await pollers.value
        latencies.sort()
        return (percentile(latencies, 0.5), percentile(latencies, 0.99))
    }

    /// Real agents long-poll and run `ping`; all commands are submitted at once and timed
    /// until every one has SUCCEEDED.
    func roundTrips(tokens: [(String, String)], commands: Int) async throws -> (rate: Double, pollsPerCommand: Double) {
        var agents: [Agent] = []
        for (id, token) in tokens {
            var configuration = AgentConfiguration(
                hubURL: url, deviceID: id, token: token,
                stateDirectory: directory.appendingPathComponent("agents/\(id)")
            )
            configuration.longPoll = 30
            configuration.concurrency = 8
            var logger = Logger(label: "bench.agent")
            logger.logLevel = .error
            let agent = try Agent(configuration: configuration, client: client, logger: logger)
            await agent.register("ping") { _ in .succeeded(["pong": true]) }
            agents.append(agent)
        }
        let loops = agents.map { agent in Task { await agent.run() } }
        try await waitForHeld(tokens.count)
        let events = hub.events.subscribe(buffer: commands * 8)
        let pollsBefore = hub.metrics.snapshot.polls
        let start = ContinuousClock.now
        var ids = Set<String>()
        for index in 0..<commands {
            ids.insert(
                try await hub.submit(SubmitCommandRequest(name: "ping"), to: tokens[index % tokens.count].0).command.id)
        }
        var finished = 0
        for await event in events where event.state == .succeeded && event.command.map(ids.contains) == true {
            finished += 1
            if finished == commands { break }
        }
        let elapsed = (ContinuousClock.now - start).seconds
        let polls = hub.metrics.snapshot.polls - pollsBefore
        for loop in loops { loop.cancel() }
        for loop in loops { await loop.value }
        return (Double(commands) / elapsed, Double(polls) / Double(commands))
    }

    private func waitForHeld(_ count: Int) async throws {
        let deadline = ContinuousClock.now + .seconds(30)
        while hub.metrics.snapshot.heldPolls < count {
            guard ContinuousClock.now < deadline else { throw CLIError("devices did not start long-polling") }
            try await Task.sleep(for: .milliseconds(5))
        }
    }

    private func percentile(_ sorted: [Double], _ p: Double) -> Double {
        guard !sorted.isEmpty else { return 0 }
        return sorted[min(sorted.count - 1, Int((Double(sorted.count - 1) * p).rounded()))]
    }
}

/// When each command reached a device.
final class ArrivalLog: Sendable {
    let times = Mutex<[String: ContinuousClock.Instant]>([:])
}

extension Duration {
    var seconds: Double {
        let (s, atto) = components
        return Double(s) + Double(atto) / 1e18
    }
}
