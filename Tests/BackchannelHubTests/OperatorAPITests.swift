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

/// The operator REST API through the router: provisioning, commands, history, lists, auth.
@Suite struct OperatorAPITests {
    struct API {
        let client: any TestClientProtocol

        func call(
            _ method: HTTPRequest.Method, _ uri: String, _ body: String? = nil,
            token: String? = HubHarness.operatorToken
        )
            async throws -> TestResponse
        {
            var headers: HTTPFields = [.contentType: "application/json"]
            if let token { headers[.authorization] = "Bearer \(token)" }
            return try await client.execute(
                uri: uri, method: method, headers: headers, body: body.map { ByteBuffer(string: $0) })
        }

        func decode<T: Decodable>(_ type: T.Type, _ response: TestResponse) throws -> T {
            try WireJSON.decode(type, from: Data(response.body.readableBytesView))
        }
    }

    static func run(_ h: HubHarness, _ body: @Sendable (API) async throws -> Void) async throws {
        try await Application(router: buildRouter(hub: h.hub)).test(.router) { client in
            try await body(API(client: client))
        }
    }

    @Test func provisioningReturnsATokenThatPollsAndOnlyOnce() async throws {
        let h = try HubHarness()
        try await Self.run(h) { api in
            let created = try await api.call(
                .post, "/v1/devices", #"{"id":"meter-7","name":"Feeder 7","labels":{"site":"north"}}"#)
            #expect(created.status == .created)
            let provisioned = try api.decode(ProvisionedDevice.self, created)
            #expect(provisioned.device.labels == ["site": "north"])
            #expect(provisioned.token.hasPrefix("bct_"))
            let again = try await api.call(.post, "/v1/devices", #"{"id":"meter-7"}"#)
            #expect(again.status == .conflict)
            let bad = try await api.call(.post, "/v1/devices", #"{"id":"has space"}"#)
            #expect(bad.status == .badRequest)
            // The token works for polling; the hub stored only its hash.
            let poll = try await h.poll(makePoll("meter-7", seq: 1), token: provisioned.token)
            #expect(poll.seq == 1)
            let stored = try #require(try await h.store.device(id: "meter-7")?.tokenHash)
            #expect(Credentials.matches(provisioned.token, hash: stored))
            #expect(!stored.contains(provisioned.token) && stored.hasPrefix("s256$"))
            #expect(stored != Credentials.hash(provisioned.token), "salted: the same token hashes differently")
            // Rotation replaces it at once.
            let rotated = try api.decode(ProvisionedDevice.self, try await api.call(.post, "/v1/devices/meter-7/token"))
            await #expect(throws: HubError.self) {
                _ = try await h.poll(makePoll("meter-7", seq: 2), token: provisioned.token)
            }
            #expect(try await h.poll(makePoll("meter-7", seq: 2), token: rotated.token).seq == 2)
        }
    }

    @Test func everyOperatorRouteNeedsTheOperatorToken() async throws {
        let h = try HubHarness()
        let deviceToken = try await h.provision("m1")
        let routes: [(HTTPRequest.Method, String)] = [
            (.get, "/v1/devices"), (.get, "/v1/devices/m1"), (.post, "/v1/devices"), (.get, "/v1/commands"),
            (.get, "/v1/events"),
        ]
        try await Self.run(h) { api throws in
            for (method, uri) in routes {
                #expect(try await api.call(method, uri, token: nil).status == .unauthorized, "\(method) \(uri)")
                #expect(
                    try await api.call(method, uri, token: deviceToken).status == .unauthorized,
                    "a device token is not an operator token")
            }
            #expect(try await api.call(.get, "/healthz", token: nil).status == .ok)
            #expect(try await api.call(.get, "/openapi.json", token: nil).status == .ok)
        }
    }

    @Test func submittingAndFollowingACommand() async throws {
        let h = try HubHarness()
        let token = try await h.provision("m1")
        try await Self.run(h) { api in
            let submitted = try await api.call(
                .post, "/v1/devices/m1/commands",
                #"{"name":"relay","args":{"state":"open"},"ttl":600,"idempotencyKey":"op-42"}"#)
            #expect(submitted.status == .created)
            let command = try api.decode(CommandView.self, submitted)
            #expect(command.state == .queued)
            #expect(command.expiresAt == h.clock.now().adding(seconds: 600))
            // The same idempotency key returns the same command, without a second one.
            let repeated = try await api.call(
                .post, "/v1/devices/m1/commands", #"{"name":"relay","args":{"state":"open"},"idempotencyKey":"op-42"}"#)
            #expect(repeated.status == .ok)
            #expect(try api.decode(CommandView.self, repeated).id == command.id)
            let mismatch = try await api.call(
                .post, "/v1/devices/m1/commands", #"{"name":"relay","args":{"state":"close"},"idempotencyKey":"op-42"}"#
            )
            #expect(mismatch.status == .conflict)

            let delivered = try await h.poll(makePoll("m1", seq: 1), token: token)
            #expect(delivered.requests.map(\.id) == [command.id])
            _ = try await h.poll(
                makePoll(
                    "m1", seq: 2, results: [LogicalResult(id: command.id, status: .succeeded, data: ["relay": "open"])]),
                token: token)

            let shown = try api.decode(CommandView.self, try await api.call(.get, "/v1/commands/\(command.id)"))
            #expect(shown.state == .succeeded)
            #expect(shown.outcome?.data == ["relay": "open"])
            #expect(shown.history?.map(\.to) == [.queued, .dispatched, .succeeded])
            let cancel = try await api.call(.post, "/v1/commands/\(command.id)/cancel")
            #expect(cancel.status == .conflict, "a finished command cannot be canceled")
            #expect(try await api.call(.get, "/v1/commands/nope").status == .notFound)
        }
    }

    @Test func commandValidation() async throws {
        let h = try HubHarness()
        try await h.provision("m1")
        try await Self.run(h) { api in
            let cases = [
                #"{"args":{}}"#, #"{"name":"bad name"}"#, #"{"name":"x","args":[1]}"#, #"{"name":"x","ttl":-1}"#,
                #"{"name":"x","ttl":5,"expiresAt":"2030-01-01T00:00:00Z"}"#,
                #"{"name":"x","expiresAt":"2001-01-01T00:00:00Z"}"#,
                #"{"name":"x","ttl":10,"notBefore":"2099-01-01T00:00:00Z"}"#, #"{"name":"x","maxAttempts":0}"#,
                #"{"name":"x","timeout":0}"#, #"{"name":"x","idempotencyKey":"has space"}"#,
            ]
            for body in cases {
                let response = try await api.call(.post, "/v1/devices/m1/commands", body)
                #expect(response.status == .badRequest, "\(body)")
                #expect(try api.decode(ErrorBody.self, response).code == ErrorCode.malformed)
            }
            #expect(try await api.call(.post, "/v1/devices/ghost/commands", #"{"name":"read"}"#).status == .notFound)
            #expect(try await api.call(.get, "/v1/commands?limit=0").status == .badRequest)
            #expect(try await api.call(.get, "/v1/commands?state=LOST").status == .badRequest)
        }
    }

    @Test func listsArePaginated() async throws {
        let h = try HubHarness()
        for i in 1...5 { try await h.provision("dev-\(i)") }
        var ids: [String] = []
        for _ in 1...5 { ids.append(try await h.submit("ping", to: "dev-1").id) }
        let submitted = ids
        let token = try await h.hub.rotateToken(device: "dev-2").token
        _ = try await h.poll(makePoll("dev-2", seq: 1, uplink: (1...5).map { reading("u\($0)") }), token: token)
        try await Self.run(h) { api in
            var ids: [String] = []
            var cursor: String?
            repeat {
                let page = try api.decode(
                    Page<DeviceView>.self,
                    try await api.call(.get, "/v1/devices?limit=2" + (cursor.map { "&cursor=\($0)" } ?? "")))
                #expect(page.items.count <= 2)
                ids += page.items.map(\.id)
                cursor = page.nextCursor
            } while cursor != nil
            #expect(ids == (1...5).map { "dev-\($0)" })

            var commands: [String] = []
            cursor = nil
            repeat {
                let page = try api.decode(
                    Page<CommandView>.self,
                    try await api.call(
                        .get, "/v1/devices/dev-1/commands?limit=2" + (cursor.map { "&cursor=\($0)" } ?? "")))
                commands += page.items.map(\.id)
                cursor = page.nextCursor
            } while cursor != nil
            #expect(commands == submitted.reversed(), "newest first, each once")
            let queued = try api.decode(
                Page<CommandView>.self, try await api.call(.get, "/v1/commands?state=queued&device=dev-1"))
            #expect(queued.items.count == 5)

            var uplink: [String] = []
            cursor = nil
            repeat {
                let page = try api.decode(
                    Page<UplinkView>.self,
                    try await api.call(
                        .get, "/v1/devices/dev-2/uplink?limit=2&kind=reading" + (cursor.map { "&cursor=\($0)" } ?? "")))
                uplink += page.items.map(\.id)
                cursor = page.nextCursor
            } while cursor != nil
            #expect(uplink == ["u5", "u4", "u3", "u2", "u1"])
            #expect(try await api.call(.get, "/v1/devices/dev-2/uplink?kind=bogus").status == .badRequest)
            let device = try api.decode(DeviceView.self, try await api.call(.get, "/v1/devices/dev-1"))
            #expect(device.pendingCommands == 5)
        }
    }
}
