import BackchannelClient
import BackchannelHub
import BackchannelProtocol
import BackchannelSQLite
import BackchannelStore
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOCore
import Testing

/// Every operator endpoint × every role × own and other tenant, plus device tokens on operator
/// endpoints and one device reading another's queue. Every denial is asserted: 401 without an
/// operator token, 403 for a role without the permission, 404 for another tenant's record
/// (exactly like a record that does not exist).
@Suite struct AuthorizationMatrixTests {
    typealias API = OperatorAPITests.API

    /// Which tenant's objects a case touches.
    enum Scope {
        /// A record of the caller's tenant, or of the other tenant.
        case record
        /// A list: it must never show the other tenant's records.
        case list
        /// Neither (whoami, hub settings, creating something new in the caller's tenant).
        case none
    }

    /// One endpoint. `{dev}`, `{cmd}`, `{camp}`, `{rule}`, `{op}`, `{tariff}` and `{policy}` are
    /// replaced by a record of the tenant under test; destructive cases get a fresh record for
    /// every call.
    struct Endpoint: Sendable, CustomStringConvertible {
        var method: HTTPRequest.Method
        var path: String
        var body: String?
        /// The roles allowed (the permission, spelled out per role).
        var roles: Set<OperatorRole>
        var scope: Scope
        var description: String { "\(method) \(path)" }
    }

    static let all = Set(OperatorRole.allCases)
    static let readDevices: Set<OperatorRole> = all
    static let readOperations: Set<OperatorRole> = [.admin, .operator, .viewer]
    static let readData: Set<OperatorRole> = [.admin, .billing]
    static let command: Set<OperatorRole> = [.admin, .operator]
    static let admin: Set<OperatorRole> = [.admin]

    static let endpoints: [Endpoint] = [
        Endpoint(method: .get, path: "/v1/whoami", roles: all, scope: .none),
        Endpoint(method: .post, path: "/v1/devices", body: #"{"id":"{new}"}"#, roles: admin, scope: .none),
        Endpoint(method: .get, path: "/v1/devices", roles: readDevices, scope: .list),
        Endpoint(method: .get, path: "/v1/devices/{dev}", roles: readDevices, scope: .record),
        Endpoint(method: .post, path: "/v1/devices/{dev}/token", roles: admin, scope: .record),
        Endpoint(
            method: .post, path: "/v1/devices/{dev}/commands", body: #"{"name":"read"}"#, roles: command, scope: .record
        ),
        Endpoint(method: .get, path: "/v1/devices/{dev}/commands", roles: readOperations, scope: .record),
        Endpoint(method: .get, path: "/v1/devices/{dev}/uplink", roles: readData, scope: .record),
        Endpoint(method: .get, path: "/v1/devices/{dev}/export?format=csv", roles: readData, scope: .record),
        Endpoint(method: .get, path: "/v1/devices/{dev}/presence", roles: readDevices, scope: .record),
        Endpoint(method: .post, path: "/v1/devices/{dev}/presence/refresh", roles: command, scope: .record),
        Endpoint(method: .get, path: "/v1/commands", roles: readOperations, scope: .list),
        Endpoint(method: .get, path: "/v1/commands?device={dev}", roles: readOperations, scope: .record),
        Endpoint(method: .get, path: "/v1/commands/{cmd}", roles: readOperations, scope: .record),
        Endpoint(method: .post, path: "/v1/commands/{cmd}/cancel", roles: command, scope: .record),
        Endpoint(method: .get, path: "/v1/presence", roles: readDevices, scope: .list),
        Endpoint(method: .get, path: "/v1/presence/ws", roles: readDevices, scope: .none),
        Endpoint(
            method: .post, path: "/v1/campaigns", body: #"{"name":"read","devices":["{dev}"]}"#, roles: command,
            scope: .record),
        Endpoint(method: .get, path: "/v1/campaigns", roles: readOperations, scope: .list),
        Endpoint(method: .get, path: "/v1/campaigns/{camp}", roles: readOperations, scope: .record),
        Endpoint(method: .post, path: "/v1/campaigns/{camp}/cancel", roles: command, scope: .record),
        // Hub-wide thresholds name devices and people of every tenant: the system tenant's only.
        Endpoint(method: .get, path: "/v1/alarms/config", roles: [], scope: .none),
        // Hub-wide thresholds: only an admin of the system tenant, which no tenant role here is.
        Endpoint(
            method: .put, path: "/v1/alarms/config", body: #"{"rules":[],"escalation":{}}"#, roles: [], scope: .none),
        Endpoint(method: .get, path: "/v1/alarms", roles: readOperations, scope: .list),
        Endpoint(method: .get, path: "/v1/rendezvous/rules", roles: readOperations, scope: .list),
        Endpoint(
            method: .post, path: "/v1/rendezvous/rules", body: #"{"from":"*","to":"*","commands":["read"]}"#,
            roles: admin, scope: .none),
        Endpoint(method: .delete, path: "/v1/rendezvous/rules/{rule}", roles: admin, scope: .record),
        Endpoint(method: .get, path: "/v1/operators", roles: admin, scope: .list),
        Endpoint(
            method: .post, path: "/v1/operators", body: #"{"name":"{new}","role":"viewer"}"#, roles: admin, scope: .none
        ),
        Endpoint(method: .post, path: "/v1/operators/{op}/token", roles: admin, scope: .record),
        Endpoint(method: .delete, path: "/v1/operators/{op}", roles: admin, scope: .record),
        // The log names the paths the caller itself asked for, other tenants' ids included.
        Endpoint(method: .get, path: "/v1/audit", roles: admin, scope: .none),
        Endpoint(method: .post, path: "/v1/artifacts?name=fw", body: "firmware-bytes", roles: command, scope: .none),
        // Artifact listings are kept to the system tenant: a tenant operator gets 404.
        Endpoint(method: .get, path: "/v1/artifacts", roles: [], scope: .none),
    ]

    /// A one-period tariff without demand charges: it bills any interval data.
    static let tariff: String = {
        let day = "[" + Array(repeating: "0", count: 24).joined(separator: ",") + "]"
        let year = "[" + Array(repeating: day, count: 12).joined(separator: ",") + "]"
        return #"{"name":"flat","timeZone":"UTC","currency":"USD","periods":["all"],"energyWeekdaySchedule":"#
            + year + #","energyWeekendSchedule":"# + year + #","energyRates":[0.1],"fixedChargePerMonth":0}"#
    }()

    /// `/v1/power`: `{tariff}` is a fresh tariff of the tenant, `{policy}` the tenant's device
    /// with a fresh shedding policy. Bills and supplier choice need interval data, which the
    /// test stores for both devices.
    static let powerEndpoints: [Endpoint] = [
        Endpoint(method: .get, path: "/v1/power/devices/{dev}/intervals", roles: readData, scope: .record),
        Endpoint(
            method: .get, path: "/v1/power/devices/{dev}/intervals?format=greenbutton", roles: readData,
            scope: .record),
        Endpoint(method: .get, path: "/v1/power/devices/{dev}/report", roles: readData, scope: .record),
        Endpoint(method: .get, path: "/v1/power/report?devices={dev}", roles: readData, scope: .record),
        Endpoint(method: .get, path: "/v1/power/devices/{dev}/bill?tariff={tariff}", roles: readData, scope: .record),
        // A comparison only: it prices the device's metering data. Sending the decision to the
        // device needs `command` as well (admin only here).
        Endpoint(
            method: .post, path: "/v1/power/devices/{dev}/supplier-choice",
            body: #"{"ceilingPerKWh":0.3,"send":false,"offers":[{"supplier":"cheap","tariff":"# + tariff + "}]}",
            roles: readData, scope: .record),
        Endpoint(
            method: .post, path: "/v1/power/devices/{dev}/supplier-choice",
            body: #"{"ceilingPerKWh":0.3,"offers":[{"supplier":"cheap","tariff":"# + tariff + "}]}",
            roles: admin, scope: .record),
        Endpoint(method: .get, path: "/v1/power/tariffs", roles: readData, scope: .list),
        Endpoint(method: .get, path: "/v1/power/tariffs/{tariff}", roles: readData, scope: .record),
        Endpoint(method: .put, path: "/v1/power/tariffs/flat", body: tariff, roles: admin, scope: .none),
        Endpoint(method: .delete, path: "/v1/power/tariffs/{tariff}", roles: admin, scope: .record),
        Endpoint(method: .get, path: "/v1/power/offers", roles: readData, scope: .list),
        Endpoint(
            method: .post, path: "/v1/power/offers", body: #"{"supplier":"cheap","tariff":"# + tariff + "}",
            roles: admin, scope: .none),
        Endpoint(method: .get, path: "/v1/power/shedding", roles: readOperations, scope: .list),
        Endpoint(method: .get, path: "/v1/power/shedding/decisions", roles: readOperations, scope: .list),
        Endpoint(
            method: .get, path: "/v1/power/shedding/decisions?device={dev}", roles: readOperations, scope: .record),
        Endpoint(
            method: .put, path: "/v1/power/shedding/{dev}", body: sheddingSchedule, roles: admin, scope: .record),
        Endpoint(method: .delete, path: "/v1/power/shedding/{policy}", roles: admin, scope: .record),
        Endpoint(method: .post, path: "/v1/power/price", body: #"{"price":0.5}"#, roles: command, scope: .none),
        Endpoint(method: .get, path: "/v1/power/pq", roles: readOperations, scope: .list),
        Endpoint(method: .get, path: "/v1/power/pq?device={dev}", roles: readOperations, scope: .record),
        Endpoint(method: .get, path: "/v1/power/topology", roles: readOperations, scope: .list),
        Endpoint(method: .get, path: "/v1/power/alerts", roles: readOperations, scope: .list),
        Endpoint(method: .get, path: "/v1/power/alerts?device={dev}", roles: readOperations, scope: .record),
        Endpoint(method: .get, path: "/v1/power/outages", roles: readOperations, scope: .list),
        Endpoint(method: .get, path: "/v1/power/outages?device={dev}", roles: readOperations, scope: .record),
        Endpoint(method: .get, path: "/v1/power/reliability", roles: readOperations, scope: .none),
        Endpoint(method: .get, path: "/v1/power/tamper", roles: readData, scope: .list),
        Endpoint(method: .get, path: "/v1/power/tamper?device={dev}", roles: readData, scope: .record),
    ]

    static let sheddingSchedule =
        #"{"timeZone":"UTC","defaultLimit":0.6,"windows":[{"from":"06:00","to":"18:00","limit":0.8}]}"#

    /// The two tenants' fixtures.
    struct Tenant {
        var name: String
        var tokens: [OperatorRole: String] = [:]
        var device = ""
        var deviceToken = ""
        var command = ""
        var campaign = ""
    }

    @Test func everyEndpointRoleAndTenant() async throws {
        let artifacts = FileManager.default.temporaryDirectory.appendingPathComponent("bc-art-\(UUID().uuidString)")
        let h = try HubHarness {
            $0.artifactsDirectory = artifacts
            $0.operatorRate = 0
        }
        try await OperatorAPITests.run(h) { api in
            var acme = try await Self.makeTenant("acme", api)
            var globex = try await Self.makeTenant("globex", api)
            // An hour of 15-minute intervals before now, for bills and supplier choice.
            let now = h.clock.now()
            try await h.store.putIntervals(
                [acme.device, globex.device].flatMap { device in
                    (1...4).map { index in
                        IntervalRecord(
                            device: device, start: now.adding(seconds: Double(-900 * index)), seconds: 900, kWh: 1.5,
                            kvarh: nil)
                    }
                })
            var denials = 0
            for endpoint in Self.endpoints + Self.powerEndpoints {
                for role in OperatorRole.allCases {
                    for (caller, other) in [(acme, globex), (globex, acme)] {
                        let token = try #require(caller.tokens[role])
                        let allowed = endpoint.roles.contains(role)
                        // Own tenant.
                        let own = try await api.call(
                            endpoint.method, try await Self.path(endpoint, caller, api), Self.body(endpoint, caller),
                            token: token)
                        if allowed {
                            #expect(
                                (200..<300).contains(own.status.code) || [409, 426].contains(own.status.code),
                                "\(role) of \(caller.name): \(endpoint) answered \(own.status.code)")
                            if endpoint.scope == .list {
                                let text = String(buffer: own.body)
                                #expect(!text.contains(other.device), "\(endpoint) leaks \(other.name)'s device")
                                #expect(!text.contains(other.command), "\(endpoint) leaks \(other.name)'s command")
                                #expect(!text.contains(other.campaign), "\(endpoint) leaks \(other.name)'s campaign")
                            }
                        } else {
                            // System-tenant reads answer a tenant's reader 404, as if absent.
                            let systemOnly = ["/v1/artifacts", "/v1/alarms/config"].contains(endpoint.path)
                            let expected: UInt16 =
                                endpoint.method == .get && systemOnly && role != .billing ? 404 : 403
                            #expect(
                                own.status.code == Int(expected),
                                "\(role) of \(caller.name): \(endpoint) answered \(own.status.code), not \(expected)")
                            denials += 1
                        }
                        // The other tenant's record: 404 when the role would be allowed, else 403.
                        if endpoint.scope == .record {
                            let foreign = try await api.call(
                                endpoint.method, try await Self.path(endpoint, other, api), Self.body(endpoint, other),
                                token: token)
                            #expect(
                                foreign.status.code == (allowed ? 404 : 403),
                                "\(role) of \(caller.name) on \(other.name)'s \(endpoint): \(foreign.status.code)")
                            denials += 1
                        }
                    }
                }
                // No token, a wrong token, and a device token: 401 on every operator endpoint.
                for token in [nil, "bco_acme-admin~forged", acme.deviceToken] {
                    let response = try await api.call(
                        endpoint.method, try await Self.path(endpoint, acme, api), Self.body(endpoint, acme),
                        token: token)
                    #expect(response.status == .unauthorized, "\(endpoint) with token \(token ?? "none")")
                    denials += 1
                }
                // Commands canceled by the cases above are replaced, so later cases see open ones.
                acme.command = try await Self.command(acme, api)
                globex.command = try await Self.command(globex, api)
            }
            #expect(denials > 300)

            // One device reading another's queue: its token does not open the other's poll.
            let stolen = try await api.call(
                .post, "/v1/poll",
                #"{"device":"\#(globex.device)","seq":1,"sentAt":"2027-01-15T08:00:00.000Z","accept":10,"wait":0}"#,
                token: acme.deviceToken)
            #expect(stolen.status == .unauthorized)
            let rest = try await api.call(.get, "/v1/rest/\(globex.device)/requests", token: acme.deviceToken)
            #expect(rest.status == .unauthorized)

            // Every refusal above is in the audit log, and a tenant's admin sees only its own.
            let audit = try await api.call(.get, "/v1/audit?limit=1000", token: acme.tokens[.admin])
            let entries = try api.decode(Page<AuditEntry>.self, audit).items
            #expect(entries.contains { $0.outcome == "forbidden" && $0.actor == "operator:acme-viewer" })
            #expect(entries.contains { $0.outcome == "other_tenant" && $0.actor == "operator:acme-operator" })
            #expect(entries.allSatisfy { $0.tenant == "acme" })
            // Anonymous refusals are hub-wide: the system tenant's admin sees them.
            let hubWide = try api.decode(
                Page<AuditEntry>.self, try await api.call(.get, "/v1/audit?limit=1000"))
            #expect(hubWide.items.contains { $0.actor == "anonymous" && $0.status == 401 })
        }
    }

    @Test func tokensAreStoredSaltedAndRevokedAtOnce() async throws {
        let h = try HubHarness()
        try await OperatorAPITests.run(h) { api in
            let created = try await api.call(.post, "/v1/operators", #"{"name":"ops","role":"operator"}"#)
            #expect(created.status == .created)
            let credential = try api.decode(OperatorCredential.self, created)
            let stored = try #require(try await h.store.operatorRecord(name: "ops"))
            #expect(stored.tokenHash.hasPrefix("s256$") && !stored.tokenHash.contains(credential.token))
            #expect(try await api.call(.get, "/v1/devices", token: credential.token).status == .ok)
            let rotated = try api.decode(
                OperatorCredential.self, try await api.call(.post, "/v1/operators/ops/token"))
            #expect(try await api.call(.get, "/v1/devices", token: credential.token).status == .unauthorized)
            #expect(try await api.call(.get, "/v1/devices", token: rotated.token).status == .ok)
            #expect(try await api.call(.delete, "/v1/operators/ops").status == .noContent)
            #expect(try await api.call(.get, "/v1/devices", token: rotated.token).status == .unauthorized)
        }
    }

    @Test func operatorRateLimitAnswers429WithRetryAfter() async throws {
        let h = try HubHarness {
            $0.operatorRate = 1
            $0.operatorBurst = 3
        }
        try await OperatorAPITests.run(h) { api in
            let other = try api.decode(
                OperatorCredential.self,
                try await api.call(.post, "/v1/operators", #"{"name":"calm","role":"viewer"}"#))
            for _ in 0..<2 { #expect(try await api.call(.get, "/v1/devices").status == .ok) }
            let limited = try await api.call(.get, "/v1/devices")
            #expect(limited.status == .tooManyRequests)
            let retryAfter = try #require(limited.headers[.retryAfter].flatMap(Int.init))
            #expect((1...2).contains(retryAfter))
            #expect(try api.decode(ErrorBody.self, limited).code == ErrorCode.rateLimited)
            // Another operator is not limited by the first one's burst.
            #expect(try await api.call(.get, "/v1/devices", token: other.token).status == .ok)
            // Time refills the bucket (the harness clock is manual).
            h.clock.advance(seconds: 2)
            #expect(try await api.call(.get, "/v1/devices").status == .ok)
            // The refusal is in the audit log.
            h.clock.advance(seconds: 2)
            let audit = try api.decode(Page<AuditEntry>.self, try await api.call(.get, "/v1/audit"))
            #expect(audit.items.contains { $0.outcome == ErrorCode.rateLimited && $0.status == 429 })
        }
    }

    // MARK: Fixtures

    static func makeTenant(_ name: String, _ api: API) async throws -> Tenant {
        var tenant = Tenant(name: name)
        // The bootstrap (system-tenant) admin creates the tenant's admin and provisions into it.
        let admin = try api.decode(
            OperatorCredential.self,
            try await api.call(.post, "/v1/operators", #"{"name":"\#(name)-admin","role":"admin","tenant":"\#(name)"}"#)
        )
        tenant.tokens[.admin] = admin.token
        for role in [OperatorRole.operator, .billing, .viewer] {
            let created = try await api.call(
                .post, "/v1/operators", #"{"name":"\#(name)-\#(role.rawValue)","role":"\#(role.rawValue)"}"#,
                token: admin.token)
            tenant.tokens[role] = try api.decode(OperatorCredential.self, created).token
        }
        let device = try api.decode(
            ProvisionedDevice.self,
            try await api.call(.post, "/v1/devices", #"{"id":"\#(name)-meter"}"#, token: admin.token))
        tenant.device = device.device.id
        tenant.deviceToken = device.token
        tenant.command = try await command(tenant, api)
        tenant.campaign = try await campaign(tenant, api)
        return tenant
    }

    static func command(_ tenant: Tenant, _ api: API) async throws -> String {
        let response = try await api.call(
            .post, "/v1/devices/\(tenant.device)/commands", #"{"name":"read"}"#, token: tenant.tokens[.admin])
        return try api.decode(CommandView.self, response).id
    }

    static func campaign(_ tenant: Tenant, _ api: API) async throws -> String {
        let response = try await api.call(
            .post, "/v1/campaigns", #"{"name":"read","devices":["\#(tenant.device)"]}"#, token: tenant.tokens[.admin])
        return try api.decode(CampaignView.self, response).id
    }

    static func body(_ endpoint: Endpoint, _ tenant: Tenant) -> String? {
        endpoint.body?.replacingOccurrences(of: "{new}", with: "n\(UInt64.random(in: 1...UInt64.max))")
            .replacingOccurrences(of: "{dev}", with: tenant.device)
    }

    /// The endpoint's path for a tenant's records; destructive cases get fresh records.
    static func path(_ endpoint: Endpoint, _ tenant: Tenant, _ api: API) async throws -> String {
        var path = endpoint.path.replacingOccurrences(of: "{dev}", with: tenant.device)
        let admin = tenant.tokens[.admin]
        if path.contains("{cmd}") {
            path = path.replacingOccurrences(of: "{cmd}", with: try await command(tenant, api))
        }
        if path.contains("{camp}") {
            path = path.replacingOccurrences(of: "{camp}", with: try await campaign(tenant, api))
        }
        if path.contains("{rule}") {
            let rule = try api.decode(
                RendezvousRule.self,
                try await api.call(
                    .post, "/v1/rendezvous/rules", #"{"from":"*","to":"*","commands":["read"]}"#, token: admin))
            path = path.replacingOccurrences(of: "{rule}", with: rule.id)
        }
        if path.contains("{tariff}") {
            let id = "t\(UInt64.random(in: 1...UInt64.max))"
            _ = try await api.call(.put, "/v1/power/tariffs/\(id)", tariff, token: admin)
            path = path.replacingOccurrences(of: "{tariff}", with: id)
        }
        if path.contains("{policy}") {
            _ = try await api.call(.put, "/v1/power/shedding/\(tenant.device)", sheddingSchedule, token: admin)
            path = path.replacingOccurrences(of: "{policy}", with: tenant.device)
        }
        if path.contains("{op}") {
            let name = "\(tenant.name)-v\(UInt64.random(in: 1...UInt64.max))"
            _ = try await api.call(.post, "/v1/operators", #"{"name":"\#(name)","role":"viewer"}"#, token: admin)
            path = path.replacingOccurrences(of: "{op}", with: name)
        }
        return path
    }
}

/// Live streams carry metering values only to roles that may read metering data.
@Suite struct EventRedactionTests {
    @Test func uplinkValuesOnlyForDataReaders() {
        let event = HubEvent(
            seq: 1, at: Timestamp(milliseconds: 0), type: .uplink, device: "m1", command: nil, state: nil,
            detail: "reading meter", data: ["kWh": 42])
        #expect(Hub.redact(event, readsData: true).data == ["kWh": 42])
        #expect(Hub.redact(event, readsData: false).data == nil)
        #expect(Hub.redact(event, readsData: false).detail == "reading meter")
        let transition = HubEvent(
            seq: 2, at: Timestamp(milliseconds: 0), type: .alarm, device: "m1", command: nil, state: nil,
            detail: "x", data: ["step": 1])
        #expect(Hub.redact(transition, readsData: false).data == ["step": 1])
    }
}

/// The operator client slows down to the hub's rate instead of failing on 429.
@Suite struct OperatorClientRateTests {
    @Test func theClientWaitsOutRetryAfter() async throws {
        let h = try HubHarness(systemClock: true) {
            $0.operatorRate = 1
            $0.operatorBurst = 1
        }
        let live = try await LiveHub.start(h.hub)
        let client = OperatorClient(hubURL: live.url, token: HubHarness.operatorToken)
        // Four provisionings at one per second with no burst: the hub answers 429 to the ones that
        // come early (unless a request took over a second); the client waits and retries.
        for index in 0..<4 {
            _ = try await client.provision(ProvisionDeviceRequest(id: "m\(index)"))
        }
        #expect(try await h.store.devices(after: nil, limit: 10).count == 4)
        // The refusals reach the audit log through the hub's own flusher (a 1 s batch).
        let deadline = ContinuousClock.now + .seconds(20)
        var refusals: [AuditEntry] = []
        while refusals.isEmpty && ContinuousClock.now < deadline {
            refusals = try await h.store.audit(tenant: nil, before: nil, limit: 100).filter { $0.status == 429 }
            if refusals.isEmpty { try await Task.sleep(for: .milliseconds(50)) }
        }
        #expect(!refusals.isEmpty, "no 429 was audited: the limit was never reached, or the flusher never ran")
        try await client.shutdown()
        await live.stop()
    }
}
