import BackchannelHub
import BackchannelProtocol
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Testing

/// No error answer contains a secret the client sent, a stored value, or internals (types,
/// source files, database messages, stack traces).
@Suite struct ErrorHygieneTests {
    static let secret = "S3CR3TVALUEbct0123456789abcdefXYZ"

    static func assertClean(_ response: TestResponse, _ what: String) {
        let body = String(buffer: response.body)
        #expect(response.status.code >= 400, "\(what): expected an error, got \(response.status.code)")
        #expect(!body.contains(secret), "\(what) echoes the secret: \(body)")
        for leak in [".swift", "Swift.", "GRDB", "SQLite error", "DecodingError", "Fatal error", "0x0000"] {
            #expect(!body.contains(leak), "\(what) leaks '\(leak)': \(body)")
        }
        #expect(response.headers[.contentType] == "application/json", "\(what): \(body)")
        let decoded = try? WireJSON.decode(ErrorBody.self, from: Data(response.body.readableBytesView))
        #expect(decoded != nil, "\(what) is not an ErrorBody: \(body)")
    }

    @Test func errorAnswersCarryNoSecretsOrInternals() async throws {
        let h = try HubHarness { $0.operatorRate = 0 }
        let token = try await h.provision("meter-1")
        try await OperatorAPITests.run(h) { api in
            let s = Self.secret
            // Wrong credentials, for devices and operators.
            Self.assertClean(
                try await api.call(
                    .post, "/v1/poll", #"{"device":"meter-1","seq":1,"sentAt":"2027-01-15T08:00:00.000Z","accept":1}"#,
                    token: "bct_\(s)"), "poll with a wrong token")
            Self.assertClean(try await api.call(.get, "/v1/devices", token: "bco_root~\(s)"), "operator token forged")
            Self.assertClean(try await api.call(.get, "/v1/devices", token: s), "operator token unknown")
            Self.assertClean(
                try await api.call(.get, "/v1/devices", token: token), "device token on the operator API")
            // Malformed bodies that contain the secret: the field is named, the value is not echoed.
            Self.assertClean(
                try await api.call(.post, "/v1/devices/meter-1/commands", #"{"name":"read","args":"\#(s)"}"#),
                "args not an object")
            Self.assertClean(
                try await api.call(.post, "/v1/devices/meter-1/commands", #"{"name":"read","ttl":"\#(s)"}"#),
                "ttl of the wrong type")
            Self.assertClean(
                try await api.call(.post, "/v1/devices/meter-1/commands", #"{"name":"read", \#(s)"#),
                "truncated JSON")
            Self.assertClean(
                try await api.call(
                    .post, "/v1/poll", #"{"device":"meter-1","seq":"\#(s)","sentAt":"x","accept":1}"#, token: token),
                "poll with a bad seq")
            Self.assertClean(
                try await api.call(.post, "/v1/operators", #"{"name":"\#(s)!","role":"viewer"}"#), "bad operator name")
            // Too large, and unknown records.
            Self.assertClean(
                try await api.call(
                    .post, "/v1/devices/meter-1/commands",
                    #"{"name":"read","args":{"x":""# + String(repeating: s, count: 40_000) + #""}}"#),
                "body too large")
            // (A 404 names the id the client asked for: that is not a secret.)
            Self.assertClean(try await api.call(.get, "/v1/commands/no-such-command"), "unknown command")
            Self.assertClean(try await api.call(.post, "/v1/operators/nobody/token"), "unknown operator")
        }
    }
}
