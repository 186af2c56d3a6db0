import BackchannelProtocol
import Foundation
import Testing

/// Inputs the fuzz targets (`Fuzz/`, run by `scripts/fuzz`) found or were pointed at, kept so a
/// decoder that once crashed, hung or misread them is caught by `swift test`.
///
/// To add one: copy the input from `test-artifacts/fuzz/`, fix the decoder, and assert here that
/// it now throws the right error (or returns the right value) instead of crashing.
@Suite("Fuzz regressions: hostile inputs to the wire decoders")
struct FuzzRegressionTests {
    static let sentAt = "2026-11-27T14:28:20.123Z"

    /// `levels` arrays inside each other, around `inner`.
    static func arrays(_ levels: Int, around inner: String = "") -> String {
        String(repeating: "[", count: levels) + inner + String(repeating: "]", count: levels)
    }

    /// `levels` objects inside each other (`{"a":{"a":…}}`), around `inner`.
    static func objects(_ levels: Int, around inner: String = "1") -> String {
        String(repeating: #"{"a":"#, count: levels) + inner + String(repeating: "}", count: levels)
    }

    /// The error `WireJSON.decode` throws for `text`, described as the hub describes it to the
    /// device (the message of its 400).
    static func refusal<T: Decodable>(_ type: T.Type, _ text: String) -> String? {
        do {
            _ = try WireJSON.decode(type, from: Data(text.utf8))
            return nil
        } catch {
            return error is DecodingError ? WireJSON.describe(error) : "not a DecodingError: \(error)"
        }
    }

    @Test("100 000 nested arrays or objects are refused before parsing, with a 400 that says why")
    func deepNesting() {
        let deep = "body is nested deeper than \(WireJSON.maxDepth) levels"
        #expect(Self.refusal(JSONValue.self, Self.arrays(100_000)) == deep)
        #expect(Self.refusal(JSONValue.self, Self.objects(100_000)) == deep)
        // Unclosed: the cap is reached before the missing brackets matter.
        #expect(Self.refusal(JSONValue.self, String(repeating: "[", count: 100_000)) == deep)
        #expect(Self.refusal(JSONValue.self, String(repeating: "{\"\":", count: 100_000)) == deep)
    }

    @Test("a poll whose data nests too deep is refused as a whole, not deep inside the decoder")
    func deepPollData() {
        let body =
            #"{"device":"m","seq":1,"sentAt":"\#(Self.sentAt)","uplink":[{"id":"u","kind":"reading","name":"n","at":"\#(Self.sentAt)","data":"#
            + Self.objects(5_000) + "}]}"
        #expect(Self.refusal(PollRequest.self, body) == "body is nested deeper than \(WireJSON.maxDepth) levels")
    }

    @Test("nesting up to the cap decodes, and validation then applies the tighter value limit")
    func nestingAtTheCap() throws {
        let value = try WireJSON.decode(JSONValue.self, from: Data(Self.arrays(WireJSON.maxDepth, around: "1").utf8))
        #expect(value.depth == WireJSON.maxDepth)
        #expect(Self.refusal(JSONValue.self, Self.arrays(WireJSON.maxDepth + 1)) != nil)

        // 30 levels of data pass the pre-scan (body, uplink, item and data add 3) and fail validation.
        let body =
            #"{"device":"m","seq":1,"sentAt":"\#(Self.sentAt)","uplink":[{"id":"u","kind":"reading","name":"n","at":"\#(Self.sentAt)","data":"#
            + Self.objects(30) + "}]}"
        let request = try WireJSON.decode(PollRequest.self, from: Data(body.utf8))
        #expect(throws: ValidationFailure(field: "uplink[0].data", reason: "nested deeper than 16 levels")) {
            try request.validate(PollLimits())
        }
    }

    @Test("brackets inside strings, escaped quotes included, do not count as nesting")
    func bracketsInStrings() throws {
        let brackets = String(repeating: "[{", count: 1_000)
        let value = try WireJSON.decode(JSONValue.self, from: Data(#"["\#(brackets)"]"#.utf8))
        #expect(value == [.string(brackets)])
        // `\"` does not end the string, `\\` does not escape the closing quote.
        let tricky = #"{"k\"[[[":"\\","v":"\"\#(brackets)"}"#
        let object = try WireJSON.decode(JSONValue.self, from: Data(tricky.utf8))
        #expect(object["k\"[[["] == "\\")
        #expect(object["v"] == .string("\"" + brackets))
    }

    @Test("stray closing brackets neither hide deep nesting nor change how invalid JSON is described")
    func unbalanced() {
        #expect(
            Self.refusal(JSONValue.self, String(repeating: "]", count: 100) + Self.arrays(100))
                == "body is nested deeper than \(WireJSON.maxDepth) levels")
        #expect(
            Self.refusal(JSONValue.self, String(repeating: "]", count: 10) + Self.arrays(10))
                == "body is not valid JSON")
        #expect(Self.refusal(JSONValue.self, #""unterminated [[["#) == "body is not valid JSON")
    }

    @Test("100 000 nested XML elements in a SOAP poll are an xml_limit fault (400), not a crash")
    func deepSOAP() {
        var limits = XMLLimits()
        limits.maxDepth = 48
        limits.maxElements = 50_000
        let nested = String(repeating: "<a>", count: 100_000) + String(repeating: "</a>", count: 100_000)
        let envelope =
            #"<env:Envelope xmlns:env="http://www.w3.org/2003/05/soap-envelope" xmlns:bc="urn:backchannel:poll:1"><env:Body><bc:Poll><bc:device>m</bc:device><bc:seq>1</bc:seq><bc:sentAt>\#(Self.sentAt)</bc:sentAt><bc:Uplink id="u" kind="reading" name="n" at="\#(Self.sentAt)"><bc:data>"#
            + nested + "</bc:data></bc:Uplink></bc:Poll></env:Body></env:Envelope>"
        do {
            _ = try SOAPCodec.decodePoll(Data(envelope.utf8), limits: limits)
            Issue.record("a 100 000-deep envelope decoded")
        } catch {
            #expect(error.subcode == "xml_limit")
            #expect(error.status == 400)
        }
    }
}
