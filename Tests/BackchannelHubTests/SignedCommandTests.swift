import BackchannelAgent
import BackchannelHub
import BackchannelProtocol
import BackchannelSQLite
import BackchannelSecurity
import BackchannelStore
import Foundation
import GRDB
import Logging
import Synchronization
import Testing

/// End-to-end signed commands: an operator signs, the hub stores and forwards, the device
/// checks against its trust policy, all over real loopback HTTP and a real SQLite hub file.
@Suite struct SignedCommandTests {
    let utility = SigningKey.generate(name: "utility")
    let operations = SigningKey.generate(name: "operations")

    /// `billing.reset` only from the utility's key; `relay` from operations; `read` unsigned.
    var policy: TrustPolicy {
        var policy = TrustPolicy()
        policy.allowUnsigned = ["read"]
        policy.trust(.init(name: "utility", publicKey: utility.publicKey, allow: ["billing.*"]))
        policy.trust(.init(name: "operations", publicKey: operations.publicKey, allow: ["relay"]))
        return policy
    }

    /// A device agent with the policy and a `billing.reset` handler that counts its runs.
    static func agent(
        _ live: LiveHub, token: String, policy: TrustPolicy?, runs: RunCounter = RunCounter(), directory: URL? = nil,
        deviceClock: (@Sendable () -> Timestamp)? = nil
    ) async throws -> Agent {
        var configuration = AgentConfiguration(
            hubURL: live.url, deviceID: "m1", token: token,
            stateDirectory: directory ?? AgentIntegrationTests.temporaryDirectory())
        configuration.longPoll = 1
        configuration.backoffBase = 0.05
        configuration.backoffMax = 0.2
        configuration.trustPolicy = policy
        if let deviceClock { configuration.deviceClock = deviceClock }
        var logger = Logger(label: "test.agent")
        logger.logLevel = ProcessInfo.processInfo.environment["AGENT_LOG"] == nil ? .critical : .trace
        let agent = try Agent(configuration: configuration, logger: logger)
        await agent.register("billing.reset") { _ in
            .succeeded(["runs": .number(Double(runs.increment()))])
        }
        await agent.register("relay") { _ in .succeeded() }
        await agent.register("read") { _ in .succeeded(["kWh": 1]) }
        return agent
    }

    /// Submits a command signed with `key`.
    static func submitSigned(
        _ name: String, args: JSONValue = [:], by key: SigningKey, to device: String = "m1", hub: Hub
    ) async throws -> CommandView {
        var request = SubmitCommandRequest(name: name, args: args, ttl: 600)
        CommandSigner(key: key).sign(&request, for: device)
        return try await hub.submit(request, to: device).command
    }

    @Test func aCommandWhoseArgsWereAlteredInTheHubsDatabaseIsRejectedByTheDevice() async throws {
        let h = try HubHarness(systemClock: true)
        let token = try await h.provision("m1")
        let live = try await LiveHub.start(h.hub)
        let signed = try await Self.submitSigned(
            "billing.reset", args: ["period": "2026-11", "credit": 0], by: utility, hub: h.hub)
        #expect(signed.state == .queued)

        // Someone with write access to the hub's database changes the arguments.
        let database = try DatabaseQueue(path: h.store.path)
        try await database.write { db in
            try db.execute(
                sql: "UPDATE commands SET args = ? WHERE id = ?",
                arguments: [#"{"period":"2026-11","credit":5000}"#, signed.id])
        }
        try database.close()

        let runs = RunCounter()
        let agent = try await Self.agent(live, token: token, policy: policy, runs: runs)
        let loop = Task { await agent.run() }
        let tampered = try await h.hub.command(signed.id, waitingUpTo: 10)
        #expect(tampered.state == .rejected)
        #expect(tampered.outcome?.code == OutcomeCode.badSignature)
        #expect(runs.count == 0, "the altered command never ran")

        // The same command, not altered, runs.
        let intact = try await Self.submitSigned("billing.reset", args: ["period": "2026-11"], by: utility, hub: h.hub)
        let ran = try await h.hub.command(intact.id, waitingUpTo: 10)
        #expect(ran.state == .succeeded)
        #expect(runs.count == 1)
        loop.cancel()
        await loop.value
        await live.stop()
    }

    @Test func aSignedCommandRequeuedAfterItRanIsRejectedAsAReplayAndNeverRunsAgain() async throws {
        let first = try HubHarness(systemClock: true)
        let token = try await first.provision("m1")
        let live = try await LiveHub.start(first.hub)
        let runs = RunCounter()
        let agent = try await Self.agent(live, token: token, policy: policy, runs: runs)
        let loop = Task { await agent.run() }
        let command = try await Self.submitSigned("billing.reset", by: utility, hub: first.hub)
        let ran = try await first.hub.command(command.id, waitingUpTo: 10)
        #expect(ran.state == .succeeded)
        #expect(runs.count == 1)
        try await waitUntil("the device knows the hub holds the result") {
            if case .finished(_, reported: true)? = await agent.ledgerEntry(command.id) { return true }
            return false
        }

        // A compromised hub puts the captured signed command back in the queue, bytes unchanged,
        // and restarts.
        await live.stop()
        let (again, back) = try await Self.requeue(command.id, in: first, port: live.port)

        try await waitUntil("the replay is answered", timeout: 20) {
            try await again.hub.command(command.id).state.isTerminal
        }
        let replayed = try await again.hub.command(command.id)
        #expect(replayed.state == .rejected)
        #expect(replayed.outcome?.code == OutcomeCode.replay)
        #expect(runs.count == 1, "never run twice")
        loop.cancel()
        await loop.value
        await back.stop()
    }

    @Test func aReplayIsRefusedByTheNonceLedgerAfterTheDeviceForgotTheCommand() async throws {
        let first = try HubHarness(systemClock: true)
        let token = try await first.provision("m1")
        let live = try await LiveHub.start(first.hub)
        let directory = AgentIntegrationTests.temporaryDirectory()
        let runs = RunCounter()
        var agent = try await Self.agent(live, token: token, policy: policy, runs: runs, directory: directory)
        var loop = Task { [agent] in await agent.run() }
        let command = try await Self.submitSigned("billing.reset", by: utility, hub: first.hub)
        #expect(try await first.hub.command(command.id, waitingUpTo: 10).state == .succeeded)
        try await waitUntil("the device knows the hub holds the result") {
            if case .finished(_, reported: true)? = await agent.ledgerEntry(command.id) { return true }
            return false
        }
        loop.cancel()
        await loop.value
        await live.stop()

        // The device's execution ledger no longer has the command (as after its retention
        // passed); the nonce ledger, kept until the signed expiry, still does.
        try FileManager.default.removeItem(at: directory.appendingPathComponent("ledger.journal"))
        let (again, back) = try await Self.requeue(command.id, in: first, port: live.port)
        agent = try await Self.agent(back, token: token, policy: policy, runs: runs, directory: directory)
        #expect(await agent.ledgerEntry(command.id) == nil)
        loop = Task { [agent] in await agent.run() }
        let replayed = try await again.hub.command(command.id, waitingUpTo: 10)
        #expect(replayed.state == .rejected)
        #expect(replayed.outcome?.code == OutcomeCode.replay)
        #expect(runs.count == 1, "never run twice")
        loop.cancel()
        await loop.value
        await back.stop()
    }

    /// What a compromised hub can do with its own database: put a finished command back in the
    /// queue unchanged. Restarts the hub on the same file and port.
    static func requeue(_ id: String, in harness: HubHarness, port: Int) async throws -> (HubHarness, LiveHub) {
        let database = try DatabaseQueue(path: harness.store.path)
        try await database.write { db in
            try db.execute(
                sql: """
                    UPDATE commands SET state = 'QUEUED', attempt = 0, lease_expires_at = NULL, acked_at = NULL,
                      result_deadline = NULL, finished_at = NULL, outcome = NULL WHERE id = ?
                    """,
                arguments: [id])
        }
        try database.close()
        var configuration = harness.hub.configuration
        configuration.port = port
        let again = try HubHarness(directory: harness.directory, systemClock: true) { $0 = configuration }
        #expect(try await again.hub.command(id).state == .queued)
        return (again, try await LiveHub.start(again.hub))
    }

    @Test func commandsThePolicyRefusesEndRejectedWithTheReason() async throws {
        let h = try HubHarness(systemClock: true)
        let token = try await h.provision("m1")
        let live = try await LiveHub.start(h.hub)
        let runs = RunCounter()
        let agent = try await Self.agent(live, token: token, policy: policy, runs: runs)
        let loop = Task { await agent.run() }

        let unsigned = try await h.submit("billing.reset", to: "m1")
        let byOperations = try await Self.submitSigned("billing.reset", by: operations, hub: h.hub)
        let byStranger = try await Self.submitSigned("billing.reset", by: .generate(name: "stranger"), hub: h.hub)
        let forAnotherDevice = try await {
            // Signed for m2, queued for m1 by the hub.
            var request = SubmitCommandRequest(name: "billing.reset", args: [:], ttl: 600)
            CommandSigner(key: utility).sign(&request, for: "m2")
            return try await h.hub.submit(request, to: "m1").command
        }()
        let relay = try await Self.submitSigned("relay", by: operations, hub: h.hub)
        let read = try await h.submit("read", to: "m1")

        let expected: [(CommandView, MessageState, String?)] = [
            (unsigned, .rejected, OutcomeCode.unsigned),
            (byOperations, .rejected, OutcomeCode.issuerNotAllowed),
            (byStranger, .rejected, OutcomeCode.unknownIssuer),
            (forAnotherDevice, .rejected, OutcomeCode.badSignature),
            (relay, .succeeded, nil),
            (read, .succeeded, nil),
        ]
        for (command, state, code) in expected {
            let view = try await h.hub.command(command.id, waitingUpTo: 10)
            #expect(view.state == state, "\(command.name) \(code ?? "")")
            #expect(view.outcome?.code == code)
            if state == .rejected { #expect(view.outcome?.detail?.isEmpty == false) }
        }
        #expect(runs.count == 0, "no billing.reset ran")
        #expect(await agent.stats.refused == 4)
        loop.cancel()
        await loop.value
        await live.stop()
    }

    @Test func withoutATrustPolicyTheDeviceRunsWhatItIsSentAsBefore() async throws {
        let h = try HubHarness(systemClock: true)
        let token = try await h.provision("m1")
        let live = try await LiveHub.start(h.hub)
        let agent = try await Self.agent(live, token: token, policy: nil)
        let loop = Task { await agent.run() }
        #expect(
            try await h.hub.command(try await h.submit("billing.reset", to: "m1").id, waitingUpTo: 10).state
                == .succeeded)
        let signed = try await Self.submitSigned("billing.reset", by: utility, hub: h.hub)
        #expect(try await h.hub.command(signed.id, waitingUpTo: 10).state == .succeeded)
        loop.cancel()
        await loop.value
        await live.stop()
    }

    @Test func aHubThatShiftsTheDevicesTimeByAWeekCannotReviveAnExpiredSignedCommand() async throws {
        // The device's own clock is 8 days ahead of the hub's: the hub's timestamps give the
        // device an offset of -8 days, as a compromised hub replaying a command signed (and
        // expired) a week ago would. The signed window is checked on the device's own clock.
        let h = try HubHarness(systemClock: true)
        let token = try await h.provision("m1")
        let live = try await LiveHub.start(h.hub)
        var lenient = policy
        lenient.maxAge = 30 * 24 * 3600
        let runs = RunCounter()
        let agent = try await Self.agent(
            live, token: token, policy: lenient, runs: runs, deviceClock: { Timestamp.now().adding(seconds: 8 * 86400) }
        )
        let loop = Task { await agent.run() }
        let command = try await Self.submitSigned("billing.reset", by: utility, hub: h.hub)
        let view = try await h.hub.command(command.id, waitingUpTo: 10)
        #expect(view.state == .rejected)
        #expect(view.outcome?.code == OutcomeCode.outsideWindow)
        #expect(view.outcome?.detail?.contains("expired") == true)
        #expect(runs.count == 0)
        // Hub time, corrected by the offset, would have let it through.
        let offset = try #require(agent.clock.estimate?.offset)
        #expect(offset < -7 * 86400)
        loop.cancel()
        await loop.value
        await live.stop()
    }

    @Test func aSignedNotBeforeIsHonouredOnTheDevicesOwnClockWhateverHubTimeSays() async throws {
        // The device's clock is an hour behind the hub's: by hub time the command is due, by
        // the device's own clock it starts in an hour. It is taken (acked) but does not start.
        let h = try HubHarness(systemClock: true)
        let token = try await h.provision("m1")
        let live = try await LiveHub.start(h.hub)
        let runs = RunCounter()
        let agent = try await Self.agent(
            live, token: token, policy: policy, runs: runs, deviceClock: { Timestamp.now().adding(seconds: -3600) })
        let loop = Task { await agent.run() }
        let real = Timestamp.now()
        var request = SubmitCommandRequest(name: "billing.reset", args: [:], ttl: 3 * 3600)
        request.notBefore = real
        CommandSigner(key: utility).sign(&request, for: "m1", now: real.adding(seconds: -2 * 3600))
        let command = try await h.hub.submit(request, to: "m1").command
        try await waitUntil("the device took the command") {
            if case .received? = await agent.ledgerEntry(command.id) { return true }
            return false
        }
        try await waitUntil("the hub knows the device took it") {
            try await h.hub.command(command.id).state == .acked
        }
        // Acks travel with the results of quick commands, so a command run at once would be
        // terminal here.
        #expect(try await h.hub.command(command.id).state == .acked)
        #expect(runs.count == 0)
        #expect(await agent.runningCount == 1, "waiting for its notBefore")
        if case .received? = await agent.ledgerEntry(command.id) {} else { Issue.record("started early") }
        loop.cancel()
        await loop.value
        await live.stop()
    }

    @Test func theAgentPrunesExpiredNoncesWhenItStarts() throws {
        let directory = AgentIntegrationTests.temporaryDirectory()
        let real = Timestamp.now()
        do {
            let ledger = try NonceLedger(directory: directory)
            for index in 0..<3 {
                try ledger.record(
                    .init(
                        keyId: utility.keyId, nonce: "expired-nonce-\(index)-AAAAAA", id: "c\(index)",
                        expiresAt: real.adding(seconds: -86400)), now: real.adding(seconds: -2 * 86400))
            }
            try ledger.record(
                .init(
                    keyId: utility.keyId, nonce: "live-nonce-AAAAAAAAAAAA", id: "c9",
                    expiresAt: real.adding(seconds: 3600)),
                now: real.adding(seconds: -2 * 86400))
            #expect(ledger.fileLines == 4)
        }
        var configuration = AgentConfiguration(
            hubURL: "http://127.0.0.1:9", deviceID: "m1", token: "t", stateDirectory: directory)
        configuration.trustPolicy = policy
        _ = try Agent(configuration: configuration)
        let reopened = try NonceLedger(directory: directory)
        #expect(reopened.count == 1)
        #expect(reopened.fileLines == 2, "the horizon and the live entry")
        #expect(reopened.horizon == real.adding(seconds: -86400))
    }

    /// Whether rendezvous requests carry their signature on the wire (`PeerRequest` coding).
    static var peerRequestsCarrySignatures: Bool {
        var request = PeerRequest(ref: "r", to: "device:x", name: "read")
        request.expiresAt = Timestamp(milliseconds: 0)
        request.signature = CommandSignature(
            keyId: "ed25519:00", issuedAt: Timestamp(milliseconds: 0), nonce: "n", signature: "s")
        guard let data = try? WireJSON.encode(request),
            let decoded = try? WireJSON.decode(PeerRequest.self, from: data)
        else { return false }
        return decoded.signature != nil && decoded.expiresAt != nil
    }

    @Test(.enabled(if: peerRequestsCarrySignatures, "PeerRequest must encode signature and expiresAt"))
    func aDevicesSignedRendezvousRequestRunsOnceAtItsPeerAndAForgedOneDoesNot() async throws {
        let h = try HubHarness(systemClock: true)
        let live = try await LiveHub.start(h.hub)
        let masterKey = SigningKey.generate(name: "master")
        _ = try await h.hub.addRendezvousRule(
            CreateRendezvousRule(from: "device:master", to: "device:m1", commands: ["billing.reset"]))
        var peerPolicy = TrustPolicy()
        peerPolicy.trust(.init(name: "master", publicKey: masterKey.publicKey, allow: ["billing.*"]))
        let runs = RunCounter()
        let target = try await Self.agent(live, token: try await h.provision("m1"), policy: peerPolicy, runs: runs)
        var configuration = AgentConfiguration(
            hubURL: live.url, deviceID: "master", token: try await h.provision("master"),
            stateDirectory: AgentIntegrationTests.temporaryDirectory())
        configuration.longPoll = 1
        configuration.signingKey = masterKey
        var logger = Logger(label: "test.master")
        logger.logLevel = .critical
        let master = try Agent(configuration: configuration, logger: logger)
        let loops = [Task { await target.run() }, Task { await master.run() }]

        let signed = try await master.request("billing.reset", to: "m1", ttl: 60)
        let reply = try #require(await master.reply(to: signed, within: 10))
        #expect(reply.state == .succeeded)
        #expect(runs.count == 1)
        // Without the master's key (a request the hub or another device made up): refused.
        let unsigned = try await master.request("billing.reset", to: "m1", ttl: 60, signingKey: .generate(name: "x"))
        let refused = try #require(await master.reply(to: unsigned, within: 10))
        #expect(refused.state == .rejected)
        #expect(refused.outcome?.code == OutcomeCode.unknownIssuer)
        #expect(runs.count == 1)
        for loop in loops { loop.cancel() }
        for loop in loops { await loop.value }
        await live.stop()
    }

    @Test func theSignedCommandArrivesAtTheDeviceAsSigned() async throws {
        // The hub forwards what the operator signed; the device's own check is what passes it.
        let h = try HubHarness(systemClock: true)
        let token = try await h.provision("m1")
        let signed = try await Self.submitSigned("billing.reset", args: ["period": "2026-11"], by: utility, hub: h.hub)
        let response = try await h.poll(makePoll("m1", seq: 1), token: token)
        let delivered = try #require(response.requests.first)
        #expect(delivered.id == signed.id)
        #expect(delivered.signature?.keyId == utility.keyId)
        let verifier = try CommandVerifier(policy: policy, directory: AgentIntegrationTests.temporaryDirectory())
        let now = Timestamp.now()
        #expect(throws: Never.self) { try verifier.verify(delivered, device: "m1", now: now).get() }
    }
}

/// Counts handler runs across tasks.
final class RunCounter: Sendable {
    private let value = Atomic<Int>(0)

    /// Adds one and returns the new count.
    func increment() -> Int { value.add(1, ordering: .relaxed).newValue }

    /// The count.
    var count: Int { value.load(ordering: .relaxed) }
}
