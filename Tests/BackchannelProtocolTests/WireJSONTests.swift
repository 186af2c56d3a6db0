import BackchannelProtocol
import Foundation
import Testing

/// Parses JSON text into a Foundation object, to look at the exact keys that were encoded.
func jsonObject(_ data: Data) throws -> [String: Any] {
    try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
}

func text(_ data: Data) -> String { String(decoding: data, as: UTF8.self) }

@Suite("Wire JSON: poll bodies and JSON values")
struct WireJSONTests {
    static let sentAt = Timestamp(milliseconds: 1_795_789_700_123)

    @Test("a minimal poll request gets the documented defaults")
    func pollRequestDefaults() throws {
        let body = #"{"device":"meter-1","seq":7,"sentAt":"2026-11-27T14:28:20.123Z"}"#
        let request = try WireJSON.decode(PollRequest.self, from: Data(body.utf8))
        #expect(request.device == "meter-1")
        #expect(request.seq == 7)
        #expect(request.sentAt == Self.sentAt)
        #expect(request.acks == [])
        #expect(request.results == [])
        #expect(request.uplink == [])
        #expect(request.presence == nil)
        #expect(request.accept == 10)
        #expect(request.accept == PollRequest.defaultAccept)
        #expect(request.wait == 0)
        #expect(request.carriesNoData)
        #expect(request == PollRequest(device: "meter-1", seq: 7, sentAt: Self.sentAt))
    }

    @Test("explicit zero accept and empty arrays are kept")
    func pollRequestExplicitZero() throws {
        let body =
            #"{"device":"m","seq":0,"sentAt":"2026-11-27T14:28:20.123Z","acks":[],"results":[],"uplink":[],"accept":0,"wait":25}"#
        let request = try WireJSON.decode(PollRequest.self, from: Data(body.utf8))
        #expect(request.accept == 0)
        #expect(request.wait == 25)
    }

    @Test("a full poll request round trips")
    func pollRequestRoundTrip() throws {
        let request = PollRequest(
            device: "relay-7", seq: 42, sentAt: Self.sentAt, acks: ["c1", "c2"],
            results: [
                LogicalResult(
                    id: "c0", status: .failed, code: "relay_stuck", retryable: true, detail: "stuck",
                    data: ["position": "open", "tries": 3], finishedAt: Self.sentAt.adding(seconds: -1)),
                LogicalResult(id: "c9", status: .succeeded),
            ],
            uplink: [
                UplinkItem(id: "u1", kind: .reading, name: "meter", at: Self.sentAt, data: ["kwh": 1234.5]),
                UplinkItem(id: "u2", kind: .event, name: "relay.changed", at: Self.sentAt, data: nil),
            ],
            presence: PresenceReport(state: .restricted, note: "maintenance", status: ["load": 0.5]),
            accept: 3, wait: 20.5)
        let data = try WireJSON.encode(request)
        #expect(try WireJSON.decode(PollRequest.self, from: data) == request)
        #expect(!request.carriesNoData)
        let object = try jsonObject(data)
        #expect((object["sentAt"] as? String) == "2026-11-27T14:28:20.123Z")
        #expect(!text(data).contains("\\/"))
    }

    @Test("a poll response omits superseded when it is nil and round trips")
    func pollResponse() throws {
        var response = PollResponse(
            seq: 9, receivedAt: Self.sentAt, sentAt: Self.sentAt.adding(seconds: 0.004), stored: ["u1"],
            requests: [
                LogicalRequest(
                    id: "c1", origin: "operator:alice", name: "relay", args: ["close": true],
                    createdAt: Self.sentAt, expiresAt: Self.sentAt.adding(seconds: 60),
                    notBefore: Self.sentAt.adding(seconds: 5), attempt: 2)
            ],
            cancel: ["c0"], more: true, nextPollAfter: 30, ackWithin: 15)
        var data = try WireJSON.encode(response)
        var object = try jsonObject(data)
        #expect(object["superseded"] == nil)
        #expect(
            Set(object.keys) == [
                "seq", "receivedAt", "sentAt", "stored", "requests", "cancel", "more", "nextPollAfter", "ackWithin",
            ])
        #expect(try WireJSON.decode(PollResponse.self, from: data) == response)

        response.superseded = true
        data = try WireJSON.encode(response)
        object = try jsonObject(data)
        #expect((object["superseded"] as? Bool) == true)
        #expect(try WireJSON.decode(PollResponse.self, from: data) == response)
    }

    static let scalars: [(JSONValue, String)] = [
        (.number(3), "3"), (.number(-42), "-42"), (.number(0), "0"), (.number(3.5), "3.5"),
        (.number(1_700_000_000_123), "1700000000123"), (.number(-0.25), "-0.25"),
        (.bool(true), "true"), (.bool(false), "false"), (.null, "null"), (.string("a/b"), #""a/b""#),
        (.array([.number(1), .number(2.5), .string("x"), .null, .bool(false)]), #"[1,2.5,"x",null,false]"#),
    ]

    @Test("numbers: integral values encode without a fraction", arguments: scalars)
    func encodesScalars(value: JSONValue, json: String) throws {
        #expect(text(try WireJSON.encode(value)) == json)
        #expect(try WireJSON.decode(JSONValue.self, from: Data(json.utf8)) == value)
    }

    @Test("booleans and numbers stay distinct when decoded")
    func boolsAreNotNumbers() throws {
        let value = try WireJSON.decode(JSONValue.self, from: Data("[1,0,true,false]".utf8))
        #expect(value == .array([.number(1), .number(0), .bool(true), .bool(false)]))
    }

    @Test("nested values round trip")
    func nested() throws {
        let value: JSONValue = [
            "name": "read",
            "registers": [1, 2, 3],
            "deep": ["a": ["b": ["c": [nil, true, 0.125]]]],
            "empty": [:],
            "list": [],
            "unicode": "Zürich ⚡",
        ]
        let data = try WireJSON.encode(value)
        #expect(try WireJSON.decode(JSONValue.self, from: data) == value)
        #expect(value["deep"]?["a"]?["b"]?["c"] == [nil, true, 0.125])
        #expect(value["name"]?.stringValue == "read")
        #expect(value["registers"]?.doubleValue == nil)
        #expect(JSONValue.number(2).doubleValue == 2)
        #expect(JSONValue.bool(true).boolValue == true)
        #expect(value.objectValue?.count == 6)
        #expect(value.depth == 5)
        #expect(JSONValue.number(1).depth == 0)
        #expect(JSONValue.array([]).depth == 1)
        #expect(value.longestString == "Zürich ⚡".utf8.count)
        #expect(JSONValue.string("ü").longestString == 2)
    }

    @Test("describe names the missing field, with its path")
    func describeMissing() {
        func describe(_ body: String) -> String {
            switch Result(catching: { try WireJSON.decode(PollRequest.self, from: Data(body.utf8)) }) {
            case .success: "decoded"
            case .failure(let error): WireJSON.describe(error)
            }
        }
        #expect(describe(#"{"device":"d","sentAt":"2026-01-01T00:00:00Z"}"#) == "missing field 'seq'")
        #expect(describe(#"{"seq":1,"sentAt":"2026-01-01T00:00:00Z"}"#) == "missing field 'device'")
        #expect(
            describe(#"{"device":"d","seq":1,"sentAt":"2026-01-01T00:00:00Z","results":[{"id":"x"}]}"#)
                == "missing field 'results[0].status'")
        #expect(
            describe(#"{"device":"d","seq":"one","sentAt":"2026-01-01T00:00:00Z"}"#).hasPrefix(
                "field 'seq' has the wrong type"))
        #expect(
            describe(#"{"device":null,"seq":1,"sentAt":"2026-01-01T00:00:00Z"}"#).hasPrefix("field 'device'"))
        #expect(describe("not json") == "body is not valid JSON")
        #expect(describe(#"{"device":"d","seq":1,"sentAt":"2026-01-01T00:00:00Z"}"#) == "decoded")

        let secret = describe(#"{"device":"d","seq":1,"sentAt":"SECRET-VALUE"}"#)
        #expect(secret.hasPrefix("field 'sentAt' has an invalid value: expected an RFC 3339 timestamp"))
        #expect(!secret.contains("SECRET"))
        let kind = describe(
            #"{"device":"d","seq":1,"sentAt":"2026-01-01T00:00:00Z","uplink":[{"id":"u","kind":"SECRET-KIND","name":"n","at":"2026-01-01T00:00:00Z","data":1}]}"#
        )
        #expect(kind == "field 'uplink[0].kind' has an invalid value")
        #expect(!kind.contains("SECRET"), "values are never echoed")
        struct Other: Error {}
        #expect(WireJSON.describe(Other()) == "body is not valid JSON")
    }

    @Test("error bodies round trip and omit absent fields")
    func errorBody() throws {
        let body = ErrorBody(code: ErrorCode.sequenceConflict, message: "stale", lastSeq: 12)
        let data = try WireJSON.encode(body)
        #expect(try WireJSON.decode(ErrorBody.self, from: data) == body)
        let object = try jsonObject(data)
        #expect(object["retryAfter"] == nil)
        #expect((object["code"] as? String) == "sequence_conflict")
    }

    @Test("wire JSON is deterministic: object keys sorted")
    func keysAreSorted() throws {
        let response = PollResponse(
            seq: 1, receivedAt: Timestamp(milliseconds: 0), sentAt: Timestamp(milliseconds: 1), nextPollAfter: 30,
            ackWithin: 60
        )
        let text = String(decoding: try WireJSON.encode(response), as: UTF8.self)
        let keys = try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any]).keys.sorted()
        var position = text.startIndex
        for key in keys {
            let range = try #require(text.range(of: "\"\(key)\":", range: position..<text.endIndex), "\(key) out of order")
            position = range.upperBound
        }
        #expect(try WireJSON.encode(response) == WireJSON.encode(response))
    }
}
