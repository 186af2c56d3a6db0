import BackchannelAgent
import BackchannelHub
import BackchannelProtocol
import BackchannelTLS
import Foundation
import Logging
import NIOCore
import NIOPosix
import NIOSSL
import ServiceLifecycle
import Testing

/// The hub over TLS on loopback: device identity by client certificate (mTLS), the bearer token
/// as the alternative, and the hub's certificate checked against the CA the client is given.
@Suite struct TLSTests {
    /// A CA with a hub certificate and device certificates in a fresh directory.
    struct PKI {
        let directory: CertificateDirectory
        let authority: CertificateAuthority

        init(devices: [String] = []) throws {
            directory = CertificateDirectory(
                FileManager.default.temporaryDirectory.appendingPathComponent("bc-tls-\(UUID().uuidString)"))
            authority = try CertificateAuthority.create()
            try PEMFiles.write(authority.certificate, to: directory.caCertificate)
            try PEMFiles.write(authority.privateKey, to: directory.caKey)
            try PEMFiles.write(
                try authority.issueServerCertificate(), certificate: directory.hubCertificate, key: directory.hubKey)
            for device in devices { try issue(device) }
        }

        /// Issues `device`'s certificate, for `tenant` (nil: naming no tenant), under the file name
        /// `file` (default the device id).
        func issue(_ device: String, tenant: String? = nil, as file: String? = nil) throws {
            try PEMFiles.write(
                try authority.issueDeviceCertificate(deviceID: device, tenant: tenant),
                certificate: directory.deviceCertificate(file ?? device),
                key: directory.deviceKey(file ?? device))
        }

        var hubTLS: HubTLSConfiguration {
            HubTLSConfiguration(
                certificateChainFile: directory.hubCertificate.path, privateKeyFile: directory.hubKey.path,
                clientCAFile: directory.caCertificate.path)
        }

        /// Client settings trusting this CA, presenting `device`'s certificate if given.
        func client(as device: String? = nil) throws -> TLSConfiguration {
            try .backchannelClient(
                caFile: directory.caCertificate.path,
                certificateFile: device.map { directory.deviceCertificate($0).path },
                keyFile: device.map { directory.deviceKey($0).path })
        }
    }

    static func agent(
        _ url: String, _ device: String, token: String = "", tls: TLSConfiguration, channel: AgentChannel = .poll
    )
        throws -> Agent
    {
        var configuration = AgentConfiguration(
            hubURL: url, deviceID: device, token: token,
            stateDirectory: FileManager.default.temporaryDirectory.appendingPathComponent(
                "bc-agent-\(UUID().uuidString)"))
        configuration.longPoll = 5
        configuration.backoffBase = 0.05
        configuration.backoffMax = 0.2
        configuration.tls = tls
        configuration.channel = channel
        var logger = Logger(label: "test.agent")
        logger.logLevel = .critical
        return try Agent(configuration: configuration, logger: logger)
    }

    static func poll(
        _ client: HubClient, _ live: LiveHub, _ device: String, seq: Int64, token: String = "", tls: TLSConfiguration
    ) async throws -> HubClient.Reply {
        try await client.poll(
            hubURL: "https://127.0.0.1:\(live.port)", token: token,
            body: try WireJSON.encode(makePoll(device, seq: seq)),
            timeout: 10, tls: tls)
    }

    @Test func aDeviceWithOnlyItsClientCertificateRunsCommands() async throws {
        let pki = try PKI(devices: ["m1"])
        let h = try HubHarness(systemClock: true) { $0.tls = pki.hubTLS }
        try await h.provision("m1")
        let live = try await LiveHub.start(h.hub)
        let agent = try Self.agent("https://127.0.0.1:\(live.port)", "m1", tls: try pki.client(as: "m1"))
        await agent.register("read") { _ in .succeeded(["kWh": 7]) }
        let loop = Task { await agent.run() }

        let command = try await h.submit("read", to: "m1")
        let finished = try await h.hub.command(command.id, waitingUpTo: 10)
        #expect(finished.state == .succeeded)
        #expect(finished.outcome?.data == ["kWh": 7])
        loop.cancel()
        await loop.value
        await live.stop()
    }

    @Test func theWebSocketChannelIdentifiesTheDeviceByItsCertificate() async throws {
        let pki = try PKI(devices: ["ws-1"])
        let h = try HubHarness(systemClock: true) { $0.tls = pki.hubTLS }
        try await h.provision("ws-1")
        let live = try await LiveHub.start(h.hub)
        // The WebSocket client sends the host as SNI, which cannot be an address: use the name.
        let agent = try Self.agent(
            "https://localhost:\(live.port)", "ws-1", tls: try pki.client(as: "ws-1"), channel: .webSocket)
        await agent.register("ping") { _ in .succeeded(["pong": true]) }
        let loop = Task { await agent.run() }

        let command = try await h.submit("ping", to: "ws-1")
        let finished = try await h.hub.command(command.id, waitingUpTo: 10)
        #expect(finished.state == .succeeded)
        #expect(h.hub.presence.view("ws-1")?.inferred == .online)
        loop.cancel()
        await loop.value
        await live.stop()
    }

    @Test func aCertificateNeverSpeaksForAnotherDeviceAndTheTokenRemainsTheAlternative() async throws {
        let pki = try PKI(devices: ["m1", "m2"])
        let h = try HubHarness(systemClock: true) { $0.tls = pki.hubTLS }
        try await h.provision("m1")
        let token2 = try await h.provision("m2")
        let live = try await LiveHub.start(h.hub)
        let client = HubClient(connections: 4)

        // m1's certificate on m2's poll: refused, even with m2's own token.
        for token in ["", token2] {
            guard
                case .failure(let status, let body, _) = try await Self.poll(
                    client, live, "m2", seq: 1, token: token, tls: try pki.client(as: "m1"))
            else {
                Issue.record("a certificate for m1 was accepted for m2")
                continue
            }
            #expect(status == 401)
            #expect(body?.message == "the client certificate is for another device")
        }
        // The bearer token without a certificate still works, and nothing without either.
        guard case .ok = try await Self.poll(client, live, "m2", seq: 1, token: token2, tls: try pki.client()) else {
            Issue.record("the bearer token over TLS was refused")
            return
        }
        guard case .failure(401, _, _) = try await Self.poll(client, live, "m2", seq: 2, tls: try pki.client()) else {
            Issue.record("a poll with neither token nor certificate was not refused with 401")
            return
        }
        // The device's own certificate needs no token.
        guard case .ok = try await Self.poll(client, live, "m1", seq: 1, tls: try pki.client(as: "m1")) else {
            Issue.record("m1's certificate was refused for m1")
            return
        }
        try await client.shutdown()
        await live.stop()
    }

    /// The device id is provisioned in another tenant than the certificate's (an admin of tenant
    /// `evil` provisioned `meter-42` before `acme` did): the certificate does not authenticate it,
    /// on any of the device's ways in, and the refusal names no tenant.
    @Test func aCertificateAuthenticatesItsDeviceOnlyInTheTenantItWasIssuedFor() async throws {
        let pki = try PKI()
        try pki.issue("meter-42", tenant: "acme", as: "acme")
        try pki.issue("meter-42", as: "untenanted")
        try pki.issue("meter-43", tenant: "acme", as: "acme-43")
        try pki.issue("meter-44", as: "untenanted-44")
        let h = try HubHarness(systemClock: true) { $0.tls = pki.hubTLS }
        _ = try await h.hub.provision(ProvisionDeviceRequest(id: "meter-42", tenant: "evil"))
        _ = try await h.hub.provision(ProvisionDeviceRequest(id: "meter-43", tenant: "acme"))
        _ = try await h.hub.provision(ProvisionDeviceRequest(id: "meter-44"))  // the system tenant
        let live = try await LiveHub.start(h.hub)
        let client = HubClient(connections: 4)
        let base = "https://127.0.0.1:\(live.port)"

        for file in ["acme", "untenanted"] {
            let tls = try pki.client(as: file)
            guard
                case .failure(let status, let body, _) = try await Self.poll(client, live, "meter-42", seq: 1, tls: tls)
            else {
                Issue.record("evil's meter-42 was authenticated by the \(file) certificate")
                continue
            }
            #expect(status == 401)
            #expect(body?.message.contains("evil") == false)
            #expect(body?.message.contains("acme") == false)
            // The REST binding goes through the same check (HubClient posts to `<url>/v1/poll`:
            // the query absorbs that suffix).
            guard
                case .failure(401, _, _) = try await client.poll(
                    hubURL: "\(base)/v1/rest/meter-42/requests/r1/ack?to=", token: "", body: Data("{}".utf8),
                    timeout: 10, tls: tls)
            else {
                Issue.record("evil's meter-42 was authenticated on the REST binding by the \(file) certificate")
                continue
            }
        }
        // The certificate of the tenant the device is in authenticates it (no early return on
        // failure: the client must still be shut down).
        if case .ok = try await Self.poll(client, live, "meter-43", seq: 1, tls: try pki.client(as: "acme-43")) {
        } else {
            Issue.record("acme's certificate was refused for acme's meter-43")
        }
        // A certificate naming no tenant is one of the system tenant.
        if case .ok = try await Self.poll(client, live, "meter-44", seq: 1, tls: try pki.client(as: "untenanted-44")) {
        } else {
            Issue.record("a tenant-less certificate was refused for a device of the system tenant")
        }
        // An acme certificate does not authenticate a system-tenant device either.
        try pki.issue("meter-44", tenant: "acme", as: "acme-44")
        if case .failure(401, _, _) = try await Self.poll(
            client, live, "meter-44", seq: 2, tls: try pki.client(as: "acme-44"))
        {
        } else {
            Issue.record("an acme certificate authenticated a device of the system tenant")
        }
        try await client.shutdown()
        await live.stop()
    }

    @Test func aHubWhoseCertificateIsNotFromTheGivenCAIsRefused() async throws {
        let pki = try PKI()
        let other = try PKI(devices: ["m1"])
        let h = try HubHarness(systemClock: true) { $0.tls = pki.hubTLS }
        try await h.provision("m1")
        let live = try await LiveHub.start(h.hub)
        let client = HubClient(connections: 2)
        await #expect(throws: (any Error).self) {
            _ = try await Self.poll(client, live, "m1", seq: 1, tls: try other.client())
        }
        // A client certificate from another CA fails the handshake too.
        let mixed = try TLSConfiguration.backchannelClient(
            caFile: pki.directory.caCertificate.path, certificateFile: other.directory.deviceCertificate("m1").path,
            keyFile: other.directory.deviceKey("m1").path)
        await #expect(throws: (any Error).self) {
            _ = try await Self.poll(client, live, "m1", seq: 1, tls: mixed)
        }
        try await client.shutdown()
        await live.stop()
    }

    @Test func withoutAClientCAPresentedCertificatesIdentifyNoOne() async throws {
        let pki = try PKI(devices: ["m1"])
        var tls = pki.hubTLS
        tls.clientCAFile = nil
        let h = try HubHarness(systemClock: true) { [tls] in $0.tls = tls }
        let token = try await h.provision("m1")
        let live = try await LiveHub.start(h.hub)
        let client = HubClient(connections: 2)
        guard case .failure(401, _, _) = try await Self.poll(client, live, "m1", seq: 1, tls: try pki.client(as: "m1"))
        else {
            Issue.record("a client certificate authenticated on a hub without --client-ca")
            return
        }
        guard case .ok = try await Self.poll(client, live, "m1", seq: 1, token: token, tls: try pki.client(as: "m1"))
        else {
            Issue.record("the token was refused")
            return
        }
        try await client.shutdown()
        await live.stop()
    }
}
