import BackchannelProtocol
import Foundation
import Testing

@Suite("SOAPCodec: the SOAP 1.2 binding of polls and poll responses")
struct SOAPCodecTests {
    // MARK: Helpers

    static let env = SOAP.envelopeNamespace
    static let bc = SOAP.namespace
    static let declarations = "xmlns:env=\"\(env)\" xmlns:bc=\"\(bc)\""
    static let envelopeName = XMLName(namespace: SOAP.envelopeNamespace, local: "Envelope")

    /// 2026-11-27T16:38:16.476Z.
    static let base = Timestamp(milliseconds: 1_795_797_496_476)

    static func at(_ seconds: Double) -> Timestamp { base.adding(seconds: seconds) }

    /// The fault `body` throws, or nil when it returns.
    static func fault<T>(_ body: () throws(SOAPFault) -> T) -> SOAPFault? {
        do {
            _ = try body()
            return nil
        } catch {
            return error
        }
    }

    /// A `bc:Poll` envelope (prefixes `env` and `bc` declared on the root) around `content`.
    static func pollDocument(_ content: String, header: String = "", device: String = "<bc:device>d1</bc:device>")
        -> Data
    {
        Data(
            ("<?xml version=\"1.0\" encoding=\"UTF-8\"?><env:Envelope \(declarations)>\(header)<env:Body><bc:Poll>"
                + "\(device)<bc:seq>1</bc:seq><bc:sentAt>2026-11-27T16:38:16.476Z</bc:sentAt>\(content)"
                + "</bc:Poll></env:Body></env:Envelope>").utf8)
    }

    /// A `bc:Send` holding a command envelope whose `bc:Command` holds `commandContent`.
    static func send(_ commandContent: String, attributes: String = "") -> String {
        "<bc:Send ref=\"p1\" to=\"device:gw-1\"\(attributes)><env:Envelope><env:Body><bc:Command name=\"read\">"
            + commandContent + "</bc:Command></env:Body></env:Envelope></bc:Send>"
    }

    /// The request with the inner envelopes the decoder records removed.
    static func withoutEnvelopes(_ request: PollRequest) -> PollRequest {
        var request = request
        for i in request.results.indices { request.results[i].envelope = nil }
        for i in request.requests.indices { request.requests[i].envelope = nil }
        return request
    }

    /// The response with the inner envelopes the decoder records removed.
    static func withoutEnvelopes(_ response: PollResponse) -> PollResponse {
        var response = response
        for i in response.requests.indices { response.requests[i].envelope = nil }
        if var replies = response.replies {
            for i in replies.indices { replies[i].outcome?.envelope = nil }
            response.replies = replies
        }
        return response
    }

    /// Checks that `envelope` is a standalone SOAP 1.2 envelope whose body holds one `bc:<body>`.
    static func expectStandalone(
        _ envelope: String?, body: String, sourceLocation: SourceLocation = #_sourceLocation
    ) throws {
        let text = try #require(envelope, "no envelope recorded", sourceLocation: sourceLocation)
        let root = try XMLReader.parse(Data(text.utf8))
        #expect(root.name == envelopeName, sourceLocation: sourceLocation)
        let content = root.first("Body", namespace: env)?.elements ?? []
        #expect(content.count == 1, sourceLocation: sourceLocation)
        #expect(content.first?.name == XMLName(namespace: bc, local: body), sourceLocation: sourceLocation)
    }

    /// The substring from the first `<prefix:Envelope` after `marker` to its end tag.
    static func innerEnvelope(in document: String, after marker: String, prefix: String) throws -> String {
        let start = try #require(document.range(of: marker))
        let open = try #require(document.range(of: "<\(prefix):Envelope", range: start.upperBound..<document.endIndex))
        let close = try #require(
            document.range(of: "</\(prefix):Envelope>", range: open.upperBound..<document.endIndex))
        return String(document[open.lowerBound..<close.upperBound])
    }

    /// `envelope` with `declarations` inserted right after its start-tag name `<prefix:Envelope`.
    static func inserting(_ declarations: String, into envelope: String, prefix: String) -> String {
        let name = "<\(prefix):Envelope"
        precondition(envelope.hasPrefix(name))
        return name + declarations + envelope.dropFirst(name.count)
    }

    // MARK: Fixtures

    static let fullPoll = PollRequest(
        device: "meter-0042",
        seq: 9_007_199_254_740_993,
        sentAt: base,
        acks: ["req-1", "req-2"],
        results: [
            LogicalResult(
                id: "req-0", status: .succeeded,
                data: [
                    "kWh": 45.54, "readings": [1, 2.5, "3", nil, true, [], ["deep": [[1], [:]]]],
                    "meter": ["id": "M-1", "ok": false, "tags": [], "attrs": [:]], "account": "0042", "count": "42",
                    "exp": "1e5", "flag": "true", "false": "false", "empty": "", "nothing": nil,
                    "spaced key": " padded ", "text": "a < b & c > d \"q\" 's' ]]>", "multiline": "x\r\ny\tz",
                    "unicode": "données 😀", "negative": -0.5, "big": 1e300,
                ],
                finishedAt: at(-1.5)),
            LogicalResult(
                id: "req-a", status: .failed, code: "relay_stuck", retryable: true,
                detail: "  relay did not move <&> \n second line ", finishedAt: at(-2)),
            LogicalResult(id: "req-b", status: .rejected, code: "unknown_command", retryable: false, detail: ""),
            LogicalResult(id: "req-c", status: .succeeded, data: nil),
            LogicalResult(id: "req-d", status: .succeeded, data: .null),
            LogicalResult(id: "req-e", status: .succeeded, data: "17"),
        ],
        uplink: [
            UplinkItem(
                id: "u1", kind: .reading, name: "meter", at: at(-60),
                data: ["kWh": 1.25, "phases": [["v": 230.1], ["v": 229.8]], "serial": "007", "zero": "0"]),
            UplinkItem(id: "u2", kind: .event, name: "relay.changed", at: at(-30), data: "open"),
            UplinkItem(id: "u3", kind: .event, name: "heartbeat", at: at(-20), data: nil),
            UplinkItem(id: "u4", kind: .reading, name: "counts", at: at(-10), data: [1, "2", [3], nil, "null"]),
            UplinkItem(id: "u5", kind: .reading, name: "flag", at: at(-5), data: false),
            UplinkItem(id: "u6", kind: .reading, name: "empty", at: at(-4), data: [:]),
        ],
        requests: [
            PeerRequest(
                ref: "p1", to: "device:gw-1", name: "read",
                args: ["registers": [1, 2, 3], "label": "12", "opts": ["fast": true, "mode": nil], "note": " x "],
                ttl: 30.5, notBefore: at(120), onUnavailable: .fail),
            PeerRequest(ref: "p2", to: "device:gw-2", name: "ping"),
            PeerRequest(ref: "p3", to: "device:gw-3", name: "relay", args: ["state": "open"], ttl: 1e20),
        ],
        replyAcks: ["rep-1", "rep-2"],
        presence: PresenceReport(
            state: .availableOff, note: "offline at 13:03 & back <soon> ",
            status: ["load": 0.75, "fuel": "12", "temps": [20.5, 21], "ok": true, "alarm": nil]),
        accept: 3,
        wait: 27.5
    )

    static let fullResponse = PollResponse(
        seq: 42,
        receivedAt: base,
        sentAt: at(0.003),
        stored: ["u1", "u2"],
        requests: [
            LogicalRequest(
                id: "req-1", origin: "operator:alice & bob", name: "relay",
                args: ["state": "open", "delay": 5, "force": false, "code": "0001", "list": [1, "1", nil]],
                createdAt: at(-100), expiresAt: at(3500), notBefore: at(60), attempt: 2),
            LogicalRequest(
                id: "req-2", origin: "device:gw-1", name: "read", args: [:], createdAt: at(-5), expiresAt: at(55),
                attempt: 1),
        ],
        cancel: ["req-0", "req-00"],
        more: true,
        nextPollAfter: 12.5,
        ackWithin: 30,
        superseded: true,
        routed: [
            RoutedRequest(ref: "p1", id: "rt-1", state: .queued),
            RoutedRequest(
                ref: "p2", state: .rejected, code: "not_authorized",
                detail: "no rule allows \"read\" <to> gw-2 &\tnow\nreally"),
        ],
        replies: [
            PeerReply(
                id: "rt-0", ref: "p0", from: "device:gw-1", name: "read", state: .succeeded,
                outcome: CommandOutcome(status: .succeeded, data: ["v": 230.1, "list": [1, "1"], "s": "true"]),
                finishedAt: at(-3)),
            PeerReply(
                id: "rt-9", ref: "p9", from: "device:gw-3", name: "relay", state: .failed,
                outcome: CommandOutcome(
                    status: .failed, code: "relay_stuck", retryable: true, detail: " stuck <&> ", data: .null)),
            PeerReply(
                id: "rt-5", ref: "p5", from: "device:gw-4", name: "read", state: .expired,
                outcome: CommandOutcome(code: "expired", retryable: false), finishedAt: at(-1)),
        ]
    )

    // MARK: Round trips

    @Test("a full poll survives encodePoll → decodePoll field for field")
    func pollRoundTrip() throws {
        let data = SOAPCodec.encodePoll(Self.fullPoll)
        #expect(String(decoding: data, as: UTF8.self).hasPrefix("<?xml version=\"1.0\" encoding=\"UTF-8\"?>"))
        let decoded = try SOAPCodec.decodePoll(data)
        let stripped = Self.withoutEnvelopes(decoded)
        #expect(stripped == Self.fullPoll)
        // Field by field too, for readable failures.
        #expect(stripped.device == Self.fullPoll.device)
        #expect(stripped.seq == Self.fullPoll.seq)
        #expect(stripped.sentAt == Self.fullPoll.sentAt)
        #expect(stripped.accept == 3)
        #expect(stripped.wait == 27.5)
        #expect(stripped.acks == Self.fullPoll.acks)
        #expect(stripped.replyAcks == Self.fullPoll.replyAcks)
        #expect(stripped.results == Self.fullPoll.results)
        #expect(stripped.uplink == Self.fullPoll.uplink)
        #expect(stripped.requests == Self.fullPoll.requests)
        #expect(stripped.presence == Self.fullPoll.presence)
        // nil data and .null data stay distinct.
        #expect(decoded.results[3].data == nil)
        #expect(decoded.results[4].data == .null)

        #expect(decoded.results.count == Self.fullPoll.results.count)
        for result in decoded.results { try Self.expectStandalone(result.envelope, body: "CommandResult") }
        #expect(decoded.requests.count == Self.fullPoll.requests.count)
        for peer in decoded.requests { try Self.expectStandalone(peer.envelope, body: "Command") }
    }

    @Test("a poll with nothing optional round-trips with defaults")
    func minimalPollRoundTrip() throws {
        let poll = PollRequest(device: "d", seq: 0, sentAt: Self.base, accept: 0, wait: 0)
        #expect(try SOAPCodec.decodePoll(SOAPCodec.encodePoll(poll)) == poll)
        // accept and wait may be left out: they take their defaults.
        let decoded = try SOAPCodec.decodePoll(Self.pollDocument(""))
        #expect(decoded.accept == PollRequest.defaultAccept)
        #expect(decoded.wait == 0)
        #expect(decoded.presence == nil)
        #expect(decoded.carriesNoData)
    }

    @Test("a full poll response survives encodeResponse → decodeResponse field for field")
    func responseRoundTrip() throws {
        let data = SOAPCodec.encodeResponse(Self.fullResponse)
        let decoded = try SOAPCodec.decodeResponse(data)
        let stripped = Self.withoutEnvelopes(decoded)
        #expect(stripped == Self.fullResponse)
        #expect(stripped.seq == 42)
        #expect(stripped.receivedAt == Self.fullResponse.receivedAt)
        #expect(stripped.sentAt == Self.fullResponse.sentAt)
        #expect(stripped.stored == Self.fullResponse.stored)
        #expect(stripped.requests == Self.fullResponse.requests)
        #expect(stripped.requests[0].notBefore == Self.at(60))
        #expect(stripped.requests[1].notBefore == nil)
        #expect(stripped.cancel == Self.fullResponse.cancel)
        #expect(stripped.more)
        #expect(stripped.nextPollAfter == 12.5)
        #expect(stripped.ackWithin == 30)
        #expect(stripped.superseded == true)
        #expect(stripped.routed == Self.fullResponse.routed)
        #expect(stripped.replies == Self.fullResponse.replies)

        for request in decoded.requests { try Self.expectStandalone(request.envelope, body: "Command") }
        for reply in decoded.replies ?? [] { try Self.expectStandalone(reply.outcome?.envelope, body: "CommandResult") }
    }

    @Test("a response with nothing optional round-trips; absent superseded, routed and replies stay nil")
    func minimalResponseRoundTrip() throws {
        let response = PollResponse(seq: 1, receivedAt: Self.base, sentAt: Self.base, nextPollAfter: 0, ackWithin: 0)
        let decoded = try SOAPCodec.decodeResponse(SOAPCodec.encodeResponse(response))
        #expect(decoded == response)
        #expect(decoded.superseded == nil)
        #expect(decoded.routed == nil)
        #expect(decoded.replies == nil)
        var notSuperseded = response
        notSuperseded.superseded = false
        #expect(try SOAPCodec.decodeResponse(SOAPCodec.encodeResponse(notSuperseded)).superseded == false)
    }

    // MARK: Verbatim envelopes

    /// A hand-written result envelope: header, comment, whitespace, single quotes and CDATA.
    static let handResult = """
        <env:Envelope xmlns:env="http://www.w3.org/2003/05/soap-envelope" xmlns:bc="urn:backchannel:poll:1" \
        xmlns:x="urn:example:trace">
          <env:Header><x:Trace x:hop='1'>abc</x:Trace></env:Header>
          <!-- written by hand -->
          <env:Body>
            <bc:CommandResult status='failed'><bc:code>relay_stuck</bc:code><bc:retryable> 1 </bc:retryable>\
        <bc:detail><![CDATA[a < b]]></bc:detail></bc:CommandResult>
          </env:Body>
        </env:Envelope>
        """

    /// A hand-written command envelope with its own default namespace for the body.
    static let handCommand = """
        <soap:Envelope xmlns:soap="http://www.w3.org/2003/05/soap-envelope">
          <soap:Body><Command xmlns="urn:backchannel:poll:1" name="relay"><args>\
        <state>open</state><code type="string">0001</code></args></Command></soap:Body>
        </soap:Envelope>
        """

    @Test("a result or peer request carrying an envelope is written and read back with exactly those bytes")
    func verbatimPoll() throws {
        let result = LogicalResult(
            id: "req-9", status: .failed, code: "relay_stuck", retryable: true, detail: "a < b",
            envelope: Self.handResult)
        let peer = PeerRequest(
            ref: "p7", to: "device:gw-1", name: "relay", args: ["state": "open", "code": "0001"],
            envelope: Self.handCommand)
        let poll = PollRequest(device: "d1", seq: 3, sentAt: Self.base, results: [result], requests: [peer])
        let data = SOAPCodec.encodePoll(poll)
        let text = String(decoding: data, as: UTF8.self)
        #expect(text.contains("<bc:Result id=\"req-9\">" + Self.handResult + "</bc:Result>"))
        #expect(text.contains(">" + Self.handCommand + "</bc:Send>"))
        let decoded = try SOAPCodec.decodePoll(data)
        #expect(decoded.results == [result])
        #expect(decoded.results.first?.envelope == Self.handResult)
        #expect(decoded.requests == [peer])
        #expect(decoded.requests.first?.envelope == Self.handCommand)
        // The envelope, not the struct's fields, is what is written: a field-less result reads from it.
        let bare = LogicalResult(id: "req-9", status: .succeeded, envelope: Self.handResult)
        let reread = try SOAPCodec.decodePoll(
            SOAPCodec.encodePoll(PollRequest(device: "d1", seq: 4, sentAt: Self.base, results: [bare])))
        #expect(reread.results.first?.status == .failed)
        #expect(reread.results.first?.code == "relay_stuck")
    }

    @Test("a logical request or peer reply carrying an envelope is written and read back with exactly those bytes")
    func verbatimResponse() throws {
        let request = LogicalRequest(
            id: "req-1", origin: "device:gw-9", name: "relay", args: ["state": "open", "code": "0001"],
            createdAt: Self.at(-1), expiresAt: Self.at(60), attempt: 1, envelope: Self.handCommand)
        let reply = PeerReply(
            id: "rt-1", ref: "p1", from: "device:gw-1", name: "relay", state: .failed,
            outcome: CommandOutcome(
                status: .failed, code: "relay_stuck", retryable: true, detail: "a < b", envelope: Self.handResult),
            finishedAt: Self.at(-2))
        let response = PollResponse(
            seq: 9, receivedAt: Self.base, sentAt: Self.base, requests: [request], nextPollAfter: 5, ackWithin: 30,
            replies: [reply])
        let data = SOAPCodec.encodeResponse(response)
        let text = String(decoding: data, as: UTF8.self)
        #expect(text.contains(">" + Self.handCommand + "</bc:Request>"))
        #expect(text.contains(">" + Self.handResult + "</bc:Reply>"))
        let decoded = try SOAPCodec.decodeResponse(data)
        #expect(decoded == response)
        #expect(decoded.requests.first?.envelope == Self.handCommand)
        #expect(decoded.replies?.first?.outcome?.envelope == Self.handResult)
    }

    // MARK: Standalone inner envelopes

    /// A poll as zeep writes it: `soap-env` and `ns0` declared once, on outer elements only.
    static let zeepPoll = """
        <?xml version='1.0' encoding='utf-8'?>
        <soap-env:Envelope xmlns:soap-env="http://www.w3.org/2003/05/soap-envelope" xmlns:unused="urn:unused">\
        <soap-env:Body><ns0:Poll xmlns:ns0="urn:backchannel:poll:1"><ns0:device>meter-7</ns0:device>\
        <ns0:seq>5</ns0:seq><ns0:sentAt>2026-11-27T16:38:16.476163Z</ns0:sentAt>\
        <ns0:Result id="r1"><soap-env:Envelope><soap-env:Body><ns0:CommandResult status="succeeded">\
        <ns0:data><kWh>4.5</kWh><ids type="array"><item>1</item></ids></ns0:data>\
        <ns0:finishedAt>2026-11-27T16:38:15.000000+00:00</ns0:finishedAt></ns0:CommandResult></soap-env:Body>\
        </soap-env:Envelope></ns0:Result>\
        <ns0:Send ref="p1" to="device:gw-1" ttl="60" xmlns:m="urn:meta"><soap-env:Envelope>\
        <soap-env:Header><m:Trace m:hop="2">t-1</m:Trace></soap-env:Header>\
        <soap-env:Body><ns0:Command name="read"><ns0:args><reg type="array"><item>1</item><item>2</item></reg>\
        </ns0:args></ns0:Command></soap-env:Body></soap-env:Envelope></ns0:Send>\
        </ns0:Poll></soap-env:Body></soap-env:Envelope>
        """

    @Test("inner envelopes relying on outer prefixes (as zeep writes them) are made standalone, byte for byte")
    func standalonePrefixes() throws {
        let poll = try SOAPCodec.decodePoll(Data(Self.zeepPoll.utf8))
        #expect(poll.device == "meter-7")
        #expect(poll.seq == 5)

        let result = try #require(poll.results.first)
        let resultSource = try Self.innerEnvelope(in: Self.zeepPoll, after: "<ns0:Result", prefix: "soap-env")
        let added = " xmlns:ns0=\"urn:backchannel:poll:1\" xmlns:soap-env=\"http://www.w3.org/2003/05/soap-envelope\""
        #expect(result.envelope == Self.inserting(added, into: resultSource, prefix: "soap-env"))
        try Self.expectStandalone(result.envelope, body: "CommandResult")
        #expect(result.status == .succeeded)
        #expect(result.data == ["kWh": 4.5, "ids": [1]])
        #expect(result.finishedAt == Timestamp(milliseconds: 1_795_797_495_000))

        // The Send wrapper's own declaration (m) is added too; the unused outer one is not.
        let peer = try #require(poll.requests.first)
        let peerSource = try Self.innerEnvelope(in: Self.zeepPoll, after: "<ns0:Send", prefix: "soap-env")
        let peerAdded = " xmlns:m=\"urn:meta\"" + added
        #expect(peer.envelope == Self.inserting(peerAdded, into: peerSource, prefix: "soap-env"))
        try Self.expectStandalone(peer.envelope, body: "Command")
        #expect(peer.envelope?.contains("unused") == false)
        #expect(peer.name == "read")
        #expect(peer.args == ["reg": [1, 2]])
        #expect(peer.ttl == 60)
        #expect(peer.onUnavailable == .hold)
        #expect(peer.notBefore == nil)

        // Forwarded by the hub, the standalone envelope reaches the target unchanged.
        let forwarded = PollResponse(
            seq: 1, receivedAt: Self.base, sentAt: Self.base,
            requests: [
                LogicalRequest(
                    id: "req-1", origin: "device:meter-7", name: peer.name, args: peer.args, createdAt: Self.base,
                    expiresAt: Self.at(60), attempt: 1, envelope: peer.envelope)
            ], nextPollAfter: 1, ackWithin: 30)
        let delivered = try SOAPCodec.decodeResponse(SOAPCodec.encodeResponse(forwarded))
        #expect(delivered.requests.first?.envelope == peer.envelope)
        #expect(delivered.requests.first?.args == ["reg": [1, 2]])
    }

    @Test("an inner envelope relying on an outer default namespace gets it declared")
    func standaloneDefaultNamespace() throws {
        let document = """
            <env:Envelope xmlns:env="http://www.w3.org/2003/05/soap-envelope"><env:Body>\
            <Poll xmlns="urn:backchannel:poll:1"><device>d1</device><seq>2</seq>\
            <sentAt>2026-11-27T18:38:16.476+02:00</sentAt>\
            <Result id="r1"><env:Envelope><env:Body><CommandResult status="failed"><code>relay_stuck</code>\
            <data><v type="string">1</v></data></CommandResult></env:Body></env:Envelope></Result>\
            <Send ref="p1" to="device:gw-1" onUnavailable="fail"><env:Envelope><env:Body><Command name="ping"/>\
            </env:Body></env:Envelope></Send></Poll></env:Body></env:Envelope>
            """
        let poll = try SOAPCodec.decodePoll(Data(document.utf8))
        #expect(poll.sentAt == Self.base)
        let added = " xmlns=\"urn:backchannel:poll:1\" xmlns:env=\"http://www.w3.org/2003/05/soap-envelope\""
        let result = try #require(poll.results.first)
        let resultSource = try Self.innerEnvelope(in: document, after: "<Result", prefix: "env")
        #expect(result.envelope == Self.inserting(added, into: resultSource, prefix: "env"))
        try Self.expectStandalone(result.envelope, body: "CommandResult")
        #expect(result.status == .failed)
        #expect(result.code == "relay_stuck")
        #expect(result.data == ["v": "1"])

        let peer = try #require(poll.requests.first)
        let peerSource = try Self.innerEnvelope(in: document, after: "<Send", prefix: "env")
        #expect(peer.envelope == Self.inserting(added, into: peerSource, prefix: "env"))
        try Self.expectStandalone(peer.envelope, body: "Command")
        #expect(peer.args == [:])
        #expect(peer.onUnavailable == .fail)
    }

    @Test("an inner envelope that declares everything itself is kept unchanged")
    func standaloneAlready() throws {
        let inner =
            "<e:Envelope xmlns:e=\"\(Self.env)\" xmlns:b=\"\(Self.bc)\"><e:Body><b:CommandResult status=\"rejected\"/>"
            + "</e:Body></e:Envelope>"
        let poll = try SOAPCodec.decodePoll(Self.pollDocument("<bc:Result id=\"r1\">\(inner)</bc:Result>"))
        #expect(poll.results.first?.envelope == inner)
        #expect(poll.results.first?.status == .rejected)
    }

    // MARK: Determinism

    @Test("encoding the same value twice gives identical bytes, whatever the dictionary order")
    func determinism() {
        #expect(SOAPCodec.encodePoll(Self.fullPoll) == SOAPCodec.encodePoll(Self.fullPoll))
        #expect(SOAPCodec.encodeResponse(Self.fullResponse) == SOAPCodec.encodeResponse(Self.fullResponse))
        // Equal values built in a different insertion order encode the same.
        var keys = (0..<50).map { "k\($0)" }
        var forward: [String: JSONValue] = [:]
        for key in keys { forward[key] = .string(key) }
        keys.reverse()
        var backward: [String: JSONValue] = [:]
        for key in keys { backward[key] = .string(key) }
        let a = PollRequest(
            device: "d", seq: 1, sentAt: Self.base,
            uplink: [UplinkItem(id: "u", kind: .reading, name: "n", at: Self.base, data: .object(forward))],
            presence: PresenceReport(state: .available, status: forward))
        let b = PollRequest(
            device: "d", seq: 1, sentAt: Self.base,
            uplink: [UplinkItem(id: "u", kind: .reading, name: "n", at: Self.base, data: .object(backward))],
            presence: PresenceReport(state: .available, status: backward))
        #expect(SOAPCodec.encodePoll(a) == SOAPCodec.encodePoll(b))
        #expect(
            SOAPEnvelope.command(name: "x", args: .object(forward))
                == SOAPEnvelope.command(
                    name: "x", args: .object(backward)))
    }

    // MARK: Faults

    @Test("SOAPFault.xml → SOAPFault.parse round-trips every code, with and without lastSeq and retryAfter")
    func faultRoundTrip() throws {
        for code in SOAPFault.Code.allCases {
            let full = SOAPFault(
                code, subcode: "sequence_conflict", reason: "seq 7 is older than 9", status: 409, lastSeq: 9,
                retryAfter: 1.5)
            let parsed = try #require(SOAPFault.parse(full.xml, status: 409))
            #expect(parsed == full, "\(code)")
            #expect(parsed.code == code)
            #expect(parsed.lastSeq == 9)
            #expect(parsed.retryAfter == 1.5)

            let plain = SOAPFault(code, subcode: "internal", reason: "", status: 500)
            #expect(SOAPFault.parse(plain.xml, status: 500) == plain, "\(code)")

            let root = try XMLReader.parse(full.xml)
            #expect(root.name == Self.envelopeName)
            let value = root.first("Body", namespace: Self.env)?.first("Fault", namespace: Self.env)?
                .first("Code", namespace: Self.env)?.first("Value", namespace: Self.env)?.text
            #expect(value == "env:" + code.rawValue)
        }
        let whole = SOAPFault(.receiver, subcode: "unavailable", reason: "x", status: 503, retryAfter: 30)
        #expect(String(decoding: whole.xml, as: UTF8.self).contains("<bc:retryAfter>30</bc:retryAfter>"))
        let huge = SOAPFault(.sender, subcode: "sequence_conflict", reason: "x", status: 409, lastSeq: .max)
        #expect(SOAPFault.parse(huge.xml, status: 409)?.lastSeq == .max)
    }

    @Test("the fault reason is escaped and read back unchanged")
    func faultEscaping() throws {
        let reason = "bad <bc:Poll> & \"quotes\" > 'x' ]]> \r\n end"
        let fault = SOAPFault(.sender, subcode: "malformed", reason: reason, status: 400)
        let text = String(decoding: fault.xml, as: UTF8.self)
        #expect(text.contains("bad &lt;bc:Poll&gt; &amp; \"quotes\" &gt; 'x' ]]&gt; &#13;\n end"))
        #expect(!text.contains("<bc:Poll>"))
        let parsed = try #require(SOAPFault.parse(fault.xml, status: 400))
        #expect(parsed.reason == reason)
        #expect(parsed.errorBody == ErrorBody(code: "malformed", message: reason))
        #expect(parsed.description == "Sender/malformed: \(reason)")
    }

    @Test("SOAPFault.parse: non-faults give nil; a minimal fault reads its Subcode; ErrorBody maps by status")
    func faultParsingOthers() throws {
        #expect(SOAPFault.parse(Data("not xml".utf8), status: 500) == nil)
        #expect(SOAPFault.parse(SOAPCodec.encodeResponse(Self.fullResponse), status: 200) == nil)
        let minimal = """
            <e:Envelope xmlns:e="\(Self.env)" xmlns:b="\(Self.bc)"><e:Body><e:Fault><e:Code><e:Value>e:Sender</e:Value>\
            <e:Subcode><e:Value>b:unauthorized</e:Value></e:Subcode></e:Code>\
            <e:Reason><e:Text xml:lang="en">no token</e:Text></e:Reason></e:Fault></e:Body></e:Envelope>
            """
        let parsed = try #require(SOAPFault.parse(Data(minimal.utf8), status: 401))
        #expect(parsed == SOAPFault(.sender, subcode: "unauthorized", reason: "no token", status: 401))

        let conflict = SOAPFault(ErrorBody(code: "sequence_conflict", message: "m", lastSeq: 4), status: 409)
        #expect(conflict.code == .sender)
        #expect(conflict.lastSeq == 4)
        let unavailable = SOAPFault(ErrorBody(code: "unavailable", message: "m", retryAfter: 2), status: 503)
        #expect(unavailable.code == .receiver)
        #expect(unavailable.errorBody == ErrorBody(code: "unavailable", message: "m", retryAfter: 2))
        #expect(SOAPFault.malformed("why") == SOAPFault(.sender, subcode: "malformed", reason: "why", status: 400))
    }

    @Test("decodeResponse throws the fault it is given")
    func decodeResponseThrowsFault() throws {
        let sent = SOAPFault(
            .sender, subcode: "sequence_conflict", reason: "seq 3 < 7 & <older>", status: 409, lastSeq: 7,
            retryAfter: 0.25)
        let thrown = try #require(Self.fault { () throws(SOAPFault) in try SOAPCodec.decodeResponse(sent.xml) })
        #expect(thrown.code == sent.code)
        #expect(thrown.subcode == sent.subcode)
        #expect(thrown.reason == sent.reason)
        #expect(thrown.lastSeq == 7)
        #expect(thrown.retryAfter == 0.25)
        for code in SOAPFault.Code.allCases {
            let fault = SOAPFault(code, subcode: "internal", reason: "r", status: 500)
            let thrown = Self.fault { () throws(SOAPFault) in try SOAPCodec.decodeResponse(fault.xml) }
            #expect(thrown?.code == code)
            #expect(thrown?.subcode == "internal")
        }
    }

    // MARK: Error paths

    struct FaultCase: CustomStringConvertible {
        var description: String
        var data: Data
        var limits = XMLLimits()
        var code: SOAPFault.Code
        var subcode: String
        var status: Int
        /// A word the reason must contain.
        var mentions: String? = nil
    }

    static var faultCases: [FaultCase] {
        var small = XMLLimits()
        small.maxBytes = 200
        var shallow = XMLLimits()
        shallow.maxDepth = 6
        let result =
            "<bc:Result id=\"r1\"><env:Envelope><env:Body><bc:CommandResult status=\"succeeded\"/></env:Body>"
            + "</env:Envelope></bc:Result>"
        let soap11 =
            "<s:Envelope xmlns:s=\"\(SOAP.soap11Namespace)\"><s:Body><bc:Poll xmlns:bc=\"\(bc)\">"
            + "<bc:device>d1</bc:device><bc:seq>1</bc:seq><bc:sentAt>2026-11-27T16:38:16Z</bc:sentAt>"
            + "</bc:Poll></s:Body></s:Envelope>"
        let header = { (value: String) in
            "<env:Header><x:Auth xmlns:x=\"urn:x\" env:mustUnderstand=\"\(value)\">t</x:Auth></env:Header>"
        }
        let doctype = String(decoding: pollDocument(""), as: UTF8.self).replacingOccurrences(
            of: "?><env:Envelope", with: "?><!DOCTYPE env:Envelope [<!ENTITY x \"y\">]><env:Envelope")
        let uplink = { (attributes: String) in
            "<bc:Uplink id=\"u1\" \(attributes) name=\"n\" at=\"2026-11-27T16:38:16Z\"><bc:data>1</bc:data></bc:Uplink>"
        }
        return [
            FaultCase(
                description: "SOAP 1.1", data: Data(soap11.utf8), code: .versionMismatch, subcode: "version_mismatch",
                status: 500),
            FaultCase(
                description: "not an envelope", data: Data("<bc:Poll xmlns:bc=\"\(bc)\"/>".utf8),
                code: .versionMismatch, subcode: "version_mismatch", status: 500),
            FaultCase(
                description: "mustUnderstand=true", data: pollDocument("", header: header("true")),
                code: .mustUnderstand, subcode: "must_understand", status: 500, mentions: "Auth"),
            FaultCase(
                description: "mustUnderstand=1", data: pollDocument("", header: header("1")), code: .mustUnderstand,
                subcode: "must_understand", status: 500),
            FaultCase(
                description: "DOCTYPE", data: Data(doctype.utf8), code: .sender, subcode: "dtd_forbidden",
                status: 400),
            FaultCase(
                description: "too large", data: pollDocument(String(repeating: "<bc:ack>a</bc:ack>", count: 20)),
                limits: small, code: .sender, subcode: "too_large", status: 413),
            FaultCase(
                description: "too deep", data: pollDocument(result), limits: shallow, code: .sender,
                subcode: "xml_limit", status: 400),
            FaultCase(
                description: "not well-formed", data: Data("<env:Envelope xmlns:env=\"\(env)\">".utf8),
                code: .sender, subcode: "malformed", status: 400),
            FaultCase(
                description: "undeclared prefix", data: Data("<x:Envelope/>".utf8), code: .sender,
                subcode: "malformed", status: 400),
            FaultCase(
                description: "missing device", data: pollDocument("", device: ""), code: .sender,
                subcode: "malformed", status: 400, mentions: "device"),
            FaultCase(
                description: "bad seq", data: pollDocument("", device: "<bc:device>d</bc:device><bc:seq>x</bc:seq>"),
                code: .sender, subcode: "malformed", status: 400, mentions: "seq"),
            FaultCase(
                description: "bad kind", data: pollDocument(uplink("kind=\"alarm\"")), code: .sender,
                subcode: "malformed", status: 400, mentions: "kind"),
            FaultCase(
                description: "missing kind", data: pollDocument(uplink("")), code: .sender, subcode: "malformed",
                status: 400, mentions: "kind"),
            FaultCase(
                description: "bad onUnavailable", data: pollDocument(send("", attributes: " onUnavailable=\"drop\"")),
                code: .sender, subcode: "malformed", status: 400, mentions: "onUnavailable"),
            FaultCase(
                description: "bad ttl", data: pollDocument(send("", attributes: " ttl=\"soon\"")), code: .sender,
                subcode: "malformed", status: 400, mentions: "ttl"),
            FaultCase(
                description: "bad notBefore", data: pollDocument(send("", attributes: " notBefore=\"tomorrow\"")),
                code: .sender, subcode: "malformed", status: 400, mentions: "notBefore"),
            FaultCase(
                description: "args a number", data: pollDocument(send("<bc:args>5</bc:args>")), code: .sender,
                subcode: "malformed", status: 400, mentions: "args"),
            FaultCase(
                description: "args an array",
                data: pollDocument(send("<bc:args type=\"array\"><item>1</item></bc:args>")), code: .sender,
                subcode: "malformed", status: 400, mentions: "args"),
            FaultCase(
                description: "args a string", data: pollDocument(send("<bc:args type=\"string\">x</bc:args>")),
                code: .sender, subcode: "malformed", status: 400, mentions: "args"),
            FaultCase(
                description: "result without status",
                data: pollDocument(result.replacingOccurrences(of: " status=\"succeeded\"", with: "")),
                code: .sender, subcode: "malformed", status: 400, mentions: "status"),
            FaultCase(
                description: "two inner envelopes",
                data: pollDocument(
                    result.replacingOccurrences(
                        of: "</bc:Result>",
                        with: "<env:Envelope><env:Body><bc:CommandResult status=\"failed\"/></env:Body></env:Envelope>"
                            + "</bc:Result>")),
                code: .sender, subcode: "malformed", status: 400),
            FaultCase(
                description: "wrong inner body",
                data: pollDocument(result.replacingOccurrences(of: "CommandResult", with: "Command")),
                code: .sender, subcode: "malformed", status: 400, mentions: "CommandResult"),
            FaultCase(
                description: "bad presence state", data: pollDocument("<bc:Presence state=\"asleep\"/>"),
                code: .sender, subcode: "malformed", status: 400, mentions: "Presence"),
            FaultCase(
                description: "presence status not an object",
                data: pollDocument("<bc:Presence state=\"available\"><bc:status>3</bc:status></bc:Presence>"),
                code: .sender, subcode: "malformed", status: 400, mentions: "status"),
            FaultCase(
                description: "uplink without data",
                data: pollDocument(
                    "<bc:Uplink id=\"u1\" kind=\"event\" name=\"n\" at=\"2026-11-27T16:38:16Z\"/>"),
                code: .sender, subcode: "malformed", status: 400, mentions: "data"),
            FaultCase(
                description: "uplink with a local time",
                data: pollDocument(uplink("kind=\"event\"").replacingOccurrences(of: "16Z\"", with: "16\"")),
                code: .sender, subcode: "malformed", status: 400, mentions: "@at"),
            FaultCase(
                description: "a PollResponse body", data: SOAPCodec.encodeResponse(fullResponse), code: .sender,
                subcode: "malformed", status: 400, mentions: "Poll"),
        ]
    }

    @Test("decodePoll refuses bad documents with the right fault", arguments: faultCases)
    func decodePollFaults(_ item: FaultCase) throws {
        let fault = try #require(
            Self.fault { () throws(SOAPFault) in try SOAPCodec.decodePoll(item.data, limits: item.limits) })
        #expect(fault.code == item.code)
        #expect(fault.subcode == item.subcode)
        #expect(fault.status == item.status)
        if let word = item.mentions { #expect(fault.reason.contains(word), "\(fault.reason)") }
        // Every fault is itself a well-formed fault envelope.
        #expect(SOAPFault.parse(fault.xml, status: fault.status) == fault)
    }

    @Test("mustUnderstand=false and unmarked headers are accepted; documents just within the limits are read")
    func acceptedEdges() throws {
        let header =
            "<env:Header><x:Auth xmlns:x=\"urn:x\" env:mustUnderstand=\"false\">t</x:Auth><x:Other "
            + "xmlns:x=\"urn:x\">o</x:Other></env:Header>"
        #expect(try SOAPCodec.decodePoll(Self.pollDocument("", header: header)).device == "d1")
        let document = Self.pollDocument(
            "<bc:Result id=\"r1\"><env:Envelope><env:Body><bc:CommandResult status=\"succeeded\"/></env:Body>"
                + "</env:Envelope></bc:Result>")
        var limits = XMLLimits()
        limits.maxDepth = 7
        limits.maxBytes = document.count
        #expect(try SOAPCodec.decodePoll(document, limits: limits).results.first?.status == .succeeded)
        // Childless args (absent, empty, or an empty object) are {}.
        for args in ["", "<bc:args/>", "<bc:args></bc:args>", "<bc:args type=\"object\"/>"] {
            #expect(try SOAPCodec.decodePoll(Self.pollDocument(Self.send(args))).requests.first?.args == [:], "\(args)")
        }
    }

    // MARK: Timestamps

    @Test("zeep-style timestamps with microseconds and +00:00 or other offsets are read")
    func zeepTimestamps() throws {
        let document = """
            <env:Envelope \(Self.declarations)><env:Body><bc:Poll><bc:device>d1</bc:device><bc:seq>1</bc:seq>\
            <bc:sentAt>2026-11-27T16:38:16.476163Z</bc:sentAt>\
            <bc:Result id="r1"><env:Envelope><env:Body><bc:CommandResult status="succeeded">\
            <bc:finishedAt>2026-11-27T16:38:16.476999+00:00</bc:finishedAt></bc:CommandResult></env:Body>\
            </env:Envelope></bc:Result>\
            <bc:Uplink id="u1" kind="reading" name="m" at="2026-11-27T11:38:16.476-05:00"><bc:data>1</bc:data>\
            </bc:Uplink>\
            <bc:Send ref="p1" to="device:gw-1" notBefore="2026-11-27T16:38:16+00:00"><env:Envelope><env:Body>\
            <bc:Command name="ping"/></env:Body></env:Envelope></bc:Send>\
            </bc:Poll></env:Body></env:Envelope>
            """
        let poll = try SOAPCodec.decodePoll(Data(document.utf8))
        #expect(poll.sentAt == Self.base)
        #expect(poll.results.first?.finishedAt == Self.base)
        #expect(poll.uplink.first?.at == Self.base)
        #expect(poll.requests.first?.notBefore == Timestamp(milliseconds: 1_795_797_496_000))

        let response = """
            <env:Envelope \(Self.declarations)><env:Body><bc:PollResponse><bc:seq>1</bc:seq>\
            <bc:receivedAt>2026-11-27T16:38:16.476163Z</bc:receivedAt>\
            <bc:sentAt>2026-11-27T17:38:16.476+01:00</bc:sentAt><bc:more>false</bc:more>\
            <bc:nextPollAfter>1</bc:nextPollAfter><bc:ackWithin>30</bc:ackWithin>\
            <bc:Request id="q1" origin="operator:o" createdAt="2026-11-27T16:38:16.476163+00:00" \
            expiresAt="2026-11-27T16:39:16.476Z" notBefore="2026-11-27T16:38:16.4761Z" attempt="1">\
            <env:Envelope><env:Body><bc:Command name="read"/></env:Body></env:Envelope></bc:Request>\
            </bc:PollResponse></env:Body></env:Envelope>
            """
        let decoded = try SOAPCodec.decodeResponse(Data(response.utf8))
        #expect(decoded.receivedAt == Self.base)
        #expect(decoded.sentAt == Self.base)
        #expect(decoded.requests.first?.createdAt == Self.base)
        #expect(decoded.requests.first?.expiresAt == Self.at(60))
        #expect(decoded.requests.first?.notBefore == Self.base)
        #expect(decoded.more == false)
    }

    @Test("local times (no zone) are refused on the poll side")
    func localTimesRefused() throws {
        let document = String(decoding: Self.pollDocument(""), as: UTF8.self).replacingOccurrences(
            of: "16.476Z<", with: "16.476<")
        let fault = Self.fault { () throws(SOAPFault) in try SOAPCodec.decodePoll(Data(document.utf8)) }
        #expect(fault?.subcode == "malformed")
        #expect(fault?.reason.contains("sentAt") == true)
    }

    // MARK: Known issues

    /// A `bc:PollResponse` with one `bc:Request` (attributes `requestAttributes`) and one `bc:Reply`
    /// (attributes `replyAttributes`, result attributes `resultAttributes`).
    static func responseDocument(
        requestAttributes: String = "", replyAttributes: String = "", resultAttributes: String = " status=\"failed\""
    ) -> Data {
        Data(
            ("<env:Envelope \(declarations)><env:Body><bc:PollResponse><bc:seq>1</bc:seq>"
                + "<bc:receivedAt>2026-11-27T16:38:16.476Z</bc:receivedAt><bc:sentAt>2026-11-27T16:38:16.476Z</bc:sentAt>"
                + "<bc:Request id=\"q1\" origin=\"operator:o\" createdAt=\"2026-11-27T16:38:16Z\" "
                + "expiresAt=\"2026-11-27T16:39:16Z\" attempt=\"1\"\(requestAttributes)><env:Envelope><env:Body>"
                + "<bc:Command name=\"read\"/></env:Body></env:Envelope></bc:Request>"
                + "<bc:more>false</bc:more><bc:nextPollAfter>1</bc:nextPollAfter><bc:ackWithin>30</bc:ackWithin>"
                + "<bc:Reply id=\"rt-1\" ref=\"p1\" from=\"device:gw-1\" name=\"read\" state=\"FAILED\""
                + "\(replyAttributes)><env:Envelope><env:Body><bc:CommandResult\(resultAttributes)/></env:Body>"
                + "</env:Envelope></bc:Reply></bc:PollResponse></env:Body></env:Envelope>").utf8)
    }

    @Test("sanity: the response document used by the known-issue tests decodes")
    func responseDocumentDecodes() throws {
        let response = try SOAPCodec.decodeResponse(Self.responseDocument())
        #expect(response.requests.first?.notBefore == nil)
        #expect(response.replies?.first?.outcome?.status == .failed)
    }

    @Test("decodeResponse refuses a bc:Request whose notBefore is not a dateTime")
    func responseBadNotBefore() {
        let fault = Self.fault { () throws(SOAPFault) in
            try SOAPCodec.decodeResponse(Self.responseDocument(requestAttributes: " notBefore=\"tomorrow\""))
        }
        #expect(fault?.subcode == "malformed")
    }

    @Test("decodeResponse refuses a bc:Reply whose finishedAt is not a dateTime")
    func responseBadFinishedAt() {
        let fault = Self.fault { () throws(SOAPFault) in
            try SOAPCodec.decodeResponse(Self.responseDocument(replyAttributes: " finishedAt=\"yesterday\""))
        }
        #expect(fault?.subcode == "malformed")
    }

    @Test("decodeResponse refuses a reply whose CommandResult status is not a result status")
    func responseBadReplyStatus() {
        let fault = Self.fault { () throws(SOAPFault) in
            try SOAPCodec.decodeResponse(Self.responseDocument(resultAttributes: " status=\"exploded\""))
        }
        #expect(fault?.subcode == "malformed")
    }

    @Test(
        "decodePoll refuses childless args that are not an object",
        arguments: [
            "<bc:args type=\"array\"/>", "<bc:args nil=\"true\"/>", "<bc:args type=\"string\"/>",
        ])
    func childlessNonObjectArgs(_ args: String) {
        let fault = Self.fault { () throws(SOAPFault) in
            try SOAPCodec.decodePoll(Self.pollDocument(Self.send(args)))
        }
        #expect(fault?.subcode == "malformed")
    }

    @Test("a reply without an outcome round-trips without one")
    func replyWithoutOutcome() throws {
        let response = PollResponse(
            seq: 1, receivedAt: Self.base, sentAt: Self.base, nextPollAfter: 1, ackWithin: 30,
            replies: [PeerReply(id: "rt-1", ref: "p1", from: "device:gw-1", name: "read", state: .canceled)])
        let decoded = Self.withoutEnvelopes(try SOAPCodec.decodeResponse(SOAPCodec.encodeResponse(response)))
        #expect(decoded == response)
    }

    @Test("SOAPFault.parse tolerates whitespace around the code value and detail numbers")
    func faultWhitespace() throws {
        let document = """
            <e:Envelope xmlns:e="\(Self.env)" xmlns:b="\(Self.bc)"><e:Body><e:Fault><e:Code>
              <e:Value> e:Sender </e:Value></e:Code><e:Reason><e:Text xml:lang="en">r</e:Text></e:Reason>
              <e:Detail><b:Error><b:code>sequence_conflict</b:code><b:message>r</b:message>
              <b:lastSeq> 9 </b:lastSeq><b:retryAfter>
                2
              </b:retryAfter></b:Error></e:Detail></e:Fault></e:Body></e:Envelope>
            """
        let fault = try #require(SOAPFault.parse(Data(document.utf8), status: 409))
        #expect(fault.code == .sender)
        #expect(fault.lastSeq == 9)
        #expect(fault.retryAfter == 2)
    }
}
