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

/// The HTTP face of the poll endpoint: status codes, error bodies, headers.
@Suite struct HTTPTests {
    static func app(_ h: HubHarness) -> some ApplicationProtocol {
        Application(router: buildRouter(hub: h.hub))
    }

    static func post(
        _ client: some TestClientProtocol, _ body: String, token: String?, contentType: String = "application/json"
    ) async throws -> TestResponse {
        var headers: HTTPFields = [.contentType: contentType]
        if let token { headers[.authorization] = "Bearer \(token)" }
        return try await client.execute(
            uri: "/v1/poll", method: .post, headers: headers, body: ByteBuffer(string: body))
    }

    static func error(_ response: TestResponse) throws -> ErrorBody {
        try WireJSON.decode(ErrorBody.self, from: Data(response.body.readableBytesView))
    }

    @Test func sessionErrorsHaveTheRightStatusAndAJSONBody() async throws {
        let h = try HubHarness { $0.maxBodyBytes = 4096 }
        let token = try await h.provision("m1")
        let valid = #"{"device":"m1","seq":1,"sentAt":"2027-01-15T08:00:00.000Z"}"#
        try await Self.app(h).test(.router) { client in
            var response = try await Self.post(client, "{not json", token: token)
            #expect(response.status == .badRequest)
            #expect(try Self.error(response).code == ErrorCode.malformed)

            response = try await Self.post(client, #"{"device":"m1","sentAt":"2027-01-15T08:00:00Z"}"#, token: token)
            #expect(response.status == .badRequest)
            #expect(try Self.error(response).message.contains("seq"))

            response = try await Self.post(client, valid, token: nil)
            #expect(response.status == .unauthorized)
            #expect(try Self.error(response).code == ErrorCode.unauthorized)

            response = try await Self.post(client, valid, token: "bct_wrong")
            #expect(response.status == .unauthorized)

            response = try await Self.post(
                client, valid.replacingOccurrences(of: "\"m1\"", with: "\"ghost\""), token: token)
            #expect(response.status == .notFound)
            #expect(try Self.error(response).code == ErrorCode.unknownDevice)

            let huge =
                #"{"device":"m1","seq":1,"sentAt":"2027-01-15T08:00:00Z","uplink":[{"id":"x","kind":"event","name":"n","at":"2027-01-15T08:00:00Z","data":{"pad":""#
                + String(repeating: "a", count: 5000) + "\"}}]}"
            response = try await Self.post(client, huge, token: token)
            #expect(response.status == .contentTooLarge)
            #expect(try Self.error(response).code == ErrorCode.tooLarge)

            let rejectedBefore = h.hub.metrics.snapshot.rejectedPolls
            response = try await Self.post(client, valid, token: token, contentType: "text/plain")
            #expect(response.status == .unsupportedMediaType)
            #expect(try Self.error(response).code == ErrorCode.unsupportedMediaType)
            #expect(h.hub.metrics.snapshot.rejectedPolls == rejectedBefore + 1, "refused polls are counted")

            response = try await Self.post(client, valid, token: token)
            #expect(response.status == .ok)
            #expect(response.headers[.contentType] == "application/json")
        }
    }

    @Test func aMalformedPollLosesNothingAcceptedBeforeIt() async throws {
        let h = try HubHarness()
        let token = try await h.provision("m1")
        _ = try await h.poll(makePoll("m1", seq: 1, uplink: [reading("kept-1"), reading("kept-2")]), token: token)
        try await Self.app(h).test(.router) { client in
            let bad =
                #"{"device":"m1","seq":2,"sentAt":"2027-01-15T08:00:00Z","uplink":[{"id":"lost","kind":"reading"}]}"#
            let response = try await Self.post(client, bad, token: token)
            #expect(response.status == .badRequest)
            #expect(try Self.error(response).message.contains("uplink"))
        }
        let stored = try await h.store.uplink(device: "m1", kind: nil, after: nil, limit: 10).map(\.item.id)
        #expect(Set(stored) == ["kept-1", "kept-2"])
        // And the device carries on with its next sequence number.
        let next = try await h.poll(makePoll("m1", seq: 2, uplink: [reading("kept-3")]), token: token)
        #expect(next.stored == ["kept-3"])
    }

    @Test func invalidFieldsNameTheFieldAndStoreNothing() async throws {
        let h = try HubHarness { $0.limits.maxMessagesPerPoll = 3 }
        let token = try await h.provision("m1")
        let tooMany = makePoll("m1", seq: 1, uplink: (0..<4).map { reading("r\($0)") })
        await #expect(throws: HubError.self) { _ = try await h.poll(tooMany, token: token) }
        let duplicate = makePoll("m1", seq: 1, uplink: [reading("same"), reading("same")])
        do {
            _ = try await h.poll(duplicate, token: token)
            Issue.record("duplicate uplink ids were accepted")
        } catch let error as HubError {
            #expect(error.status == .badRequest)
            #expect(error.body.message.contains("uplink[1].id"))
        }
        #expect(try await h.store.uplink(device: "m1", kind: nil, after: nil, limit: 10).isEmpty)
    }

    @Test func aDeviceThatPollsTooFastIsToldWhenToComeBack() async throws {
        let h = try HubHarness {
            $0.devicePollRate = 1
            $0.devicePollBurst = 2
        }
        let token = try await h.provision("m1")
        try await Self.app(h).test(.router) { client in
            for seq in 1...2 {
                let body = #"{"device":"m1","seq":\#(seq),"sentAt":"2027-01-15T08:00:00Z"}"#
                #expect(try await Self.post(client, body, token: token).status == .ok)
            }
            let response = try await Self.post(
                client, #"{"device":"m1","seq":3,"sentAt":"2027-01-15T08:00:00Z"}"#, token: token)
            #expect(response.status == .tooManyRequests)
            #expect(response.headers[.retryAfter] == "1")
            #expect(try Self.error(response).code == ErrorCode.rateLimited)
            // Time refills the bucket.
            h.clock.advance(seconds: 1)
            let later = try await Self.post(
                client, #"{"device":"m1","seq":3,"sentAt":"2027-01-15T08:00:00Z"}"#, token: token)
            #expect(later.status == .ok)
        }
    }
}
