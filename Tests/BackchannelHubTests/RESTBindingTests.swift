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

/// The REST binding for devices: function URIs, each answer carrying the pending work.
@Suite struct RESTBindingTests {
    static func call(
        _ client: some TestClientProtocol, _ method: HTTPRequest.Method, _ uri: String, _ body: String? = nil,
        token: String?
    ) async throws -> TestResponse {
        var headers: HTTPFields = [.contentType: "application/json"]
        if let token { headers[.authorization] = "Bearer \(token)" }
        return try await client.execute(
            uri: uri, method: method, headers: headers, body: body.map { ByteBuffer(string: $0) })
    }

    static func poll(_ response: TestResponse) throws -> PollResponse {
        try WireJSON.decode(PollResponse.self, from: Data(response.body.readableBytesView))
    }

    @Test func aWaitLongerThanTheHubHoldsIsCappedNotRefused() async throws {
        let h = try HubHarness(systemClock: true) { $0.maxWait = 0.2 }
        let token = try await h.provision("m1")
        try await HTTPTests.app(h).test(.router) { client in
            let response = try await Self.call(client, .get, "/v1/rest/m1/requests?wait=90", token: token)
            #expect(response.status == .ok)
            #expect(try Self.poll(response).requests.isEmpty)
        }
    }

    @Test func everyFunctionAnswersWithThePendingWork() async throws {
        let h = try HubHarness()
        let token = try await h.provision("m1")
        let first = try await h.submit("read", to: "m1")
        try await HTTPTests.app(h).test(.router) { client in
            // Posting readings stores them, and the answer carries the queued command.
            var response = try await Self.call(
                client, .post, "/v1/rest/m1/readings",
                #"[{"id":"r1","name":"meter","at":"2027-01-15T08:00:00Z","data":{"kWh":12.5}}]"#, token: token)
            #expect(response.status == .ok)
            var answer = try Self.poll(response)
            #expect(answer.stored == ["r1"])
            #expect(answer.requests.map(\.id) == [first.id])

            // The result of request X: acknowledged and finished in one call; the next command rides back.
            let second = try await h.submit("ping", to: "m1")
            response = try await Self.call(
                client, .post, "/v1/rest/m1/requests/\(first.id)/result",
                #"{"status":"succeeded","data":{"kWh":12.5}}"#, token: token)
            #expect(response.status == .ok)
            answer = try Self.poll(response)
            #expect(answer.requests.map(\.id) == [second.id])
            #expect(try await h.hub.command(first.id).state == .succeeded)

            // A single event (an object, not an array), and an explicit ack.
            response = try await Self.call(
                client, .post, "/v1/rest/m1/events?accept=0",
                #"{"id":"e1","name":"relay.changed","at":"2027-01-15T08:00:01Z","data":{"relay":"open"}}"#,
                token: token)
            #expect(try Self.poll(response).stored == ["e1"])
            response = try await Self.call(client, .post, "/v1/rest/m1/requests/\(second.id)/ack", token: token)
            #expect(response.status == .ok)
            #expect(try await h.hub.command(second.id).state == .acked)

            // Fetching work with nothing queued answers empty.
            response = try await Self.call(client, .get, "/v1/rest/m1/requests", token: token)
            #expect(try Self.poll(response).requests.isEmpty)
        }
        let events = try await h.hub.uplink(device: "m1", kind: .event, cursor: nil, limit: 10).items
        #expect(events.map(\.id) == ["e1"])
    }

    @Test func retriesAreSafeWithoutSequenceNumbers() async throws {
        let h = try HubHarness()
        let token = try await h.provision("m1")
        let body = #"{"id":"r1","name":"meter","at":"2027-01-15T08:00:00Z","data":{"kWh":1}}"#
        try await HTTPTests.app(h).test(.router) { client in
            for _ in 0..<3 {
                let response = try await Self.call(client, .post, "/v1/rest/m1/readings", body, token: token)
                #expect(try Self.poll(response).stored == ["r1"])
            }
        }
        #expect(try await h.hub.uplink(device: "m1", kind: nil, cursor: nil, limit: 10).items.count == 1)
        // REST calls leave the JSON binding's sequence state alone.
        #expect(try await h.poll(makePoll("m1", seq: 1), token: token).seq == 1)
    }

    @Test func peerRequestsAndTheirStateOverREST() async throws {
        let h = try HubHarness()
        let a = try await h.provision("a")
        let b = try await h.provision("b")
        _ = try await h.hub.addRendezvousRule(
            CreateRendezvousRule(from: "device:a", to: "device:b", commands: ["read"]))
        try await HTTPTests.app(h).test(.router) { client in
            var response = try await Self.call(
                client, .post, "/v1/rest/a/peer-requests", #"{"ref":"q1","to":"device:b","name":"read"}"#, token: a)
            let routed = try #require(try Self.poll(response).routed?.first)
            #expect(routed.state == .queued)
            let id = try #require(routed.id)

            response = try await Self.call(client, .get, "/v1/rest/b/requests", token: b)
            #expect(try Self.poll(response).requests.map(\.origin) == ["device:a"])
            _ = try await Self.call(
                client, .post, "/v1/rest/b/requests/\(id)/result", #"{"status":"succeeded"}"#, token: b)

            response = try await Self.call(client, .get, "/v1/rest/a/peer-requests/q1", token: a)
            #expect(response.status == .ok)
            let view = try WireJSON.decode(CommandView.self, from: Data(response.body.readableBytesView))
            #expect(view.state == .succeeded)
            #expect(view.replyState == "pending")

            response = try await Self.call(client, .get, "/v1/rest/a/requests", token: a)
            #expect(try Self.poll(response).replies?.map(\.id) == [id])
            _ = try await Self.call(client, .post, "/v1/rest/a/replies/\(id)/ack", token: a)
            response = try await Self.call(client, .get, "/v1/rest/a/peer-requests/\(id)", token: a)
            #expect(
                try WireJSON.decode(CommandView.self, from: Data(response.body.readableBytesView)).replyState == "acked"
            )

            // Another device cannot read a's requests.
            response = try await Self.call(client, .get, "/v1/rest/b/peer-requests/q1", token: b)
            #expect(response.status == .notFound)
        }
    }

    @Test func errorsAreTheJSONBindingsErrors() async throws {
        let h = try HubHarness()
        let token = try await h.provision("m1")
        _ = try await h.provision("m2")
        try await HTTPTests.app(h).test(.router) { client in
            var response = try await Self.call(client, .get, "/v1/rest/m1/requests", token: nil)
            #expect(response.status == .unauthorized)
            // m1's token does not open m2's functions.
            response = try await Self.call(client, .get, "/v1/rest/m2/requests", token: token)
            #expect(response.status == .unauthorized)
            // The operator token is not a device token.
            response = try await Self.call(client, .get, "/v1/rest/m1/requests", token: HubHarness.operatorToken)
            #expect(response.status == .unauthorized)
            response = try await Self.call(client, .get, "/v1/rest/ghost/requests", token: token)
            #expect(response.status == .notFound)
            response = try await Self.call(
                client, .post, "/v1/rest/m1/readings",
                #"[{"id":"bad id!","name":"m","at":"2027-01-15T08:00:00Z","data":{}}]"#,
                token: token)
            #expect(response.status == .badRequest)
            #expect(try HTTPTests.error(response).message.hasPrefix("uplink[0].id"))
            response = try await Self.call(client, .post, "/v1/rest/m1/readings", #"{"id":"x"}"#, token: token)
            #expect(response.status == .badRequest)
            response = try await Self.call(client, .get, "/v1/rest/m1/requests?wait=-1", token: token)
            #expect(response.status == .badRequest)
            response = try await Self.call(client, .get, "/v1/rest/m1/requests?wait=soon", token: token)
            #expect(response.status == .badRequest)
        }
    }
}
