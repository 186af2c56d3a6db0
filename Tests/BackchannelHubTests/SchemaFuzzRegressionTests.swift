import BackchannelHub
import BackchannelProtocol
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOCore
import Testing

/// Requests that schemathesis (Tests/e2e/test_schemathesis.py) found the hub answering
/// differently from its OpenAPI document, kept as plain router tests.
@Suite struct SchemaFuzzRegressionTests {
    static func call(
        _ client: some TestClientProtocol, _ method: HTTPRequest.Method, _ uri: String, _ body: String? = nil
    ) async throws -> TestResponse {
        let headers: HTTPFields = [
            .contentType: "application/json", .authorization: "Bearer \(HubHarness.operatorToken)",
        ]
        return try await client.execute(
            uri: uri, method: method, headers: headers, body: body.map { ByteBuffer(string: $0) })
    }

    /// The document gives `escalation.defaultList`, `escalation.perRule` and `escalateAfter`
    /// defaults; the hub used to answer 400 "missing field" when they were left out.
    @Test func alarmConfigurationTakesTheDocumentedDefaults() async throws {
        let h = try HubHarness()
        try await Application(router: buildRouter(hub: h.hub)).test(.router) { client in
            let empty = try await Self.call(client, .put, "/v1/alarms/config", #"{"rules":[],"escalation":{}}"#)
            #expect(empty.status == .ok, "\(String(buffer: empty.body))")
            let listOnly = try await Self.call(
                client, .put, "/v1/alarms/config", #"{"rules":[],"escalation":{"defaultList":{"operators":["a"]}}}"#)
            #expect(listOnly.status == .ok, "\(String(buffer: listOnly.body))")
        }
        #expect(h.hub.alarms.configuration.escalation.defaultList == EscalationList(["a"], escalateAfter: 60))
        #expect(h.hub.alarms.configuration.escalation.perRule.isEmpty)
    }
}
