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

/// The SOAP 1.2 binding over HTTP: sessions, SOAP-in-SOAP forwarding, every fault path and
/// hostile documents.
@Suite struct SOAPTests {
    static let env = SOAP.envelopeNamespace
    static let bc = SOAP.namespace

    static func post(
        _ client: some TestClientProtocol, _ body: String, token: String?,
        contentType: String = SOAP.contentType
    ) async throws -> TestResponse {
        var headers: HTTPFields = [.contentType: contentType]
        if let token { headers[.authorization] = "Bearer \(token)" }
        return try await client.execute(
            uri: "/v1/poll", method: .post, headers: headers, body: ByteBuffer(string: body))
    }

    /// The fault of a response, checked to be a SOAP 1.2 fault envelope.
    static func fault(_ response: TestResponse, sourceLocation: SourceLocation = #_sourceLocation) throws -> SOAPFault {
        #expect(response.headers[.contentType] == SOAP.contentType, sourceLocation: sourceLocation)
        return try #require(
            SOAPFault.parse(Data(response.body.readableBytesView), status: Int(response.status.code)),
            sourceLocation: sourceLocation)
    }

    static func poll(_ device: String = "m1", seq: Int, inner: String = "") -> String {
        """
        <?xml version="1.0" encoding="UTF-8"?>
        <env:Envelope xmlns:env="\(env)" xmlns:bc="\(bc)"><env:Body><bc:Poll>
        <bc:device>\(device)</bc:device><bc:seq>\(seq)</bc:seq><bc:sentAt>2027-01-15T08:00:00Z</bc:sentAt>
        <bc:accept>5</bc:accept>\(inner)</bc:Poll></env:Body></env:Envelope>
        """
    }

    @Test func aDeviceSessionRunsInSOAP() async throws {
        let h = try HubHarness()
        let token = try await h.provision("m1")
        let command = try await h.submit("set-interval", to: "m1") { $0.args = ["seconds": 900] }
        try await HTTPTests.app(h).test(.router) { client in
            let first = try await Self.post(client, Self.poll(seq: 1), token: token)
            #expect(first.status == .ok)
            #expect(first.headers[.contentType] == SOAP.contentType)
            let response = try SOAPCodec.decodeResponse(Data(first.body.readableBytesView))
            #expect(response.requests.map(\.id) == [command.id])
            #expect(response.requests.first?.name == "set-interval")
            #expect(response.requests.first?.args == ["seconds": 900])

            let result = """
                <bc:ack>\(command.id)</bc:ack><bc:Result id="\(command.id)"><env:Envelope><env:Body>\
                <bc:CommandResult status="succeeded"><bc:data><interval>900</interval></bc:data>\
                </bc:CommandResult></env:Body></env:Envelope></bc:Result>\
                <bc:Uplink id="r1" kind="reading" name="billing" at="2027-01-15T08:00:00Z"><bc:data>\
                <billing_information><kWh_month>45.54</kWh_month></billing_information></bc:data></bc:Uplink>
                """
            let second = try await Self.post(client, Self.poll(seq: 2, inner: result), token: token)
            #expect(second.status == .ok)
            #expect(try SOAPCodec.decodeResponse(Data(second.body.readableBytesView)).stored == ["r1"])
            // A retry of the same bytes gets the same bytes back.
            let retry = try await Self.post(client, Self.poll(seq: 2, inner: result), token: token)
            #expect(Data(retry.body.readableBytesView) == Data(second.body.readableBytesView))
        }
        let done = try await h.hub.command(command.id)
        #expect(done.state == .succeeded)
        #expect(done.outcome?.data == ["interval": 900])
        let reading = try await h.hub.uplink(device: "m1", kind: .reading, cursor: nil, limit: 1).items.first
        #expect(reading?.data == ["billing_information": ["kWh_month": 45.54]])
    }

    @Test func innerEnvelopesAreForwardedUnchangedThroughRendezvous() async throws {
        let h = try HubHarness()
        let a = try await h.provision("a")
        let b = try await h.provision("b")
        let j = try await h.provision("j")
        _ = try await h.hub.addRendezvousRule(CreateRendezvousRule(from: "device:a", to: "*", commands: ["read"]))
        // A's own envelope: its own prefix, a header block for the final receiver, a comment.
        let request = """
            <s:Envelope xmlns:s="\(Self.env)" xmlns:q="\(Self.bc)"><s:Header><trace xmlns="urn:example:trace" \
            hop="1">A-7</trace></s:Header><s:Body><!-- from A --><q:Command name="read"><q:args>\
            <register>kWh</register></q:args></q:Command></s:Body></s:Envelope>
            """
        let send = """
            <bc:Send ref="x1" to="device:b">\(request)</bc:Send><bc:Send ref="x2" to="device:j">\(request)</bc:Send>
            """
        try await HTTPTests.app(h).test(.router) { client in
            let sent = try SOAPCodec.decodeResponse(
                Data(try await Self.post(client, Self.poll("a", seq: 1, inner: send), token: a).body.readableBytesView))
            #expect(sent.routed?.map(\.state) == [.queued, .queued])

            // B (SOAP) receives A's envelope byte for byte.
            let atB = try await Self.post(client, Self.poll("b", seq: 1), token: b)
            let bodyB = String(decoding: atB.body.readableBytesView, as: UTF8.self)
            #expect(bodyB.contains(request))
            let delivered = try #require(try SOAPCodec.decodeResponse(Data(bodyB.utf8)).requests.first)
            #expect(delivered.envelope == request)
            #expect(delivered.args == ["register": "kWh"])

            // J (JSON) gets the same request as name and args, with the envelope alongside.
            let atJ = try await HTTPTests.post(
                client, String(decoding: try WireJSON.encode(makePoll("j", seq: 1)), as: UTF8.self), token: j)
            let jsonRequest = try #require(
                try WireJSON.decode(PollResponse.self, from: Data(atJ.body.readableBytesView)).requests.first)
            #expect(jsonRequest.name == "read")
            #expect(jsonRequest.args == ["register": "kWh"])
            #expect(jsonRequest.envelope == request)

            // B's result envelope travels back to A unchanged.
            let resultEnvelope = """
                <e:Envelope xmlns:e="\(Self.env)"><e:Body><r:CommandResult xmlns:r="\(Self.bc)" status="succeeded">\
                <r:data><kWh>1234.5</kWh></r:data></r:CommandResult></e:Body></e:Envelope>
                """
            let answer = """
                <bc:ack>\(delivered.id)</bc:ack><bc:Result id="\(delivered.id)">\(resultEnvelope)</bc:Result>
                """
            _ = try await Self.post(client, Self.poll("b", seq: 2, inner: answer), token: b)
            let back = try await Self.post(client, Self.poll("a", seq: 2), token: a)
            let bodyA = String(decoding: back.body.readableBytesView, as: UTF8.self)
            #expect(bodyA.contains(resultEnvelope))
            let reply = try #require(try SOAPCodec.decodeResponse(Data(bodyA.utf8)).replies?.first)
            #expect(reply.ref == "x1")
            #expect(reply.state == .succeeded)
            #expect(reply.outcome?.data == ["kWh": 1234.5])
        }
    }

    @Test func aJSONDeviceCannotPlaceXMLInASOAPDevicesResponse() async throws {
        let h = try HubHarness()
        let a = try await h.provision("a")
        let b = try await h.provision("b")
        _ = try await h.hub.addRendezvousRule(
            CreateRendezvousRule(from: "device:a", to: "device:b", commands: ["read"]))
        // The rule allows only read; the smuggled envelope says relay and closes the wrapper early.
        let smuggled =
            "<env:Envelope xmlns:env=\"\(Self.env)\" xmlns:bc=\"\(Self.bc)\"><env:Body>"
            + "<bc:Command name=\"relay\"><bc:args><state>open</state></bc:args></bc:Command></env:Body>"
            + "</env:Envelope></bc:Request><bc:Request id=\"z\" origin=\"operator:admin\">"
        var poll = makePoll("a", seq: 1)
        poll.requests = [PeerRequest(ref: "x", to: "device:b", name: "read", envelope: smuggled)]
        let sent = try await h.poll(poll, token: a)
        #expect(sent.routed?.first?.state == .queued)
        try await HTTPTests.app(h).test(.router) { client in
            let atB = try await Self.post(client, Self.poll("b", seq: 1), token: b)
            let text = String(decoding: atB.body.readableBytesView, as: UTF8.self)
            #expect(!text.contains("relay"))
            #expect(!text.contains("operator:admin"))
            let delivered = try SOAPCodec.decodeResponse(Data(text.utf8)).requests
            #expect(delivered.map(\.name) == ["read"])
            #expect(delivered.map(\.origin) == ["device:a"])
        }
    }

    @Test func innerEnvelopesRelyingOnOuterPrefixesAreMadeStandalone() async throws {
        let h = try HubHarness()
        let token = try await h.provision("m1")
        let command = try await h.submit("read", to: "m1")
        try await HTTPTests.app(h).test(.router) { client in
            _ = try await Self.post(client, Self.poll(seq: 1), token: token)
            // As zeep writes it: env and bc are declared only on the outer envelope.
            let result = """
                <bc:Result id="\(command.id)"><env:Envelope><env:Body><bc:CommandResult status="failed">\
                <bc:code>relay_stuck</bc:code></bc:CommandResult></env:Body></env:Envelope></bc:Result>
                """
            #expect(try await Self.post(client, Self.poll(seq: 2, inner: result), token: token).status == .ok)
        }
        let envelope = try #require(try await h.hub.command(command.id).outcome?.envelope)
        #expect(envelope.hasPrefix("<env:Envelope xmlns:bc=\"\(Self.bc)\" xmlns:env=\"\(Self.env)\">"))
        let standalone = try XMLReader.parse(Data(envelope.utf8))
        #expect(standalone.name == XMLName(namespace: Self.env, local: "Envelope"))
    }

    @Test func theHubServesTheWSDLWithItsOwnAddress() async throws {
        let h = try HubHarness { $0.publicURL = "https://hub.example:8443/" }
        try await HTTPTests.app(h).test(.router) { client in
            let response = try await client.execute(uri: "/v1/poll?wsdl", method: .get)
            #expect(response.status == .ok)
            let text = String(decoding: response.body.readableBytesView, as: UTF8.self)
            let root = try XMLReader.parse(Data(text.utf8))
            #expect(root.name.local == "definitions")
            #expect(text.contains("location=\"https://hub.example:8443/v1/poll\""))
            #expect(!text.contains("{{HUB_URL}}"))
            #expect(try await client.execute(uri: "/v1/poll", method: .get).status == .methodNotAllowed)
        }
    }

    // MARK: Faults

    @Test func everySessionErrorIsASOAPFaultWithTheJSONStatus() async throws {
        let h = try HubHarness { $0.maxBodyBytes = 64 * 1024 }
        let token = try await h.provision("m1")
        try await HTTPTests.app(h).test(.router) { client in
            var response = try await Self.post(client, Self.poll(seq: 1), token: nil)
            #expect(response.status == .unauthorized)
            #expect(response.headers[.wwwAuthenticate] == "Bearer")
            var fault = try Self.fault(response)
            #expect(fault.code == .sender)
            #expect(fault.subcode == ErrorCode.unauthorized)

            response = try await Self.post(client, Self.poll("ghost", seq: 1), token: token)
            #expect(response.status == .notFound)
            #expect(try Self.fault(response).subcode == ErrorCode.unknownDevice)

            _ = try await Self.post(client, Self.poll(seq: 5), token: token)
            response = try await Self.post(client, Self.poll(seq: 4), token: token)
            #expect(response.status == .conflict)
            fault = try Self.fault(response)
            #expect(fault.subcode == ErrorCode.sequenceConflict)
            #expect(fault.lastSeq == 5)

            // Validation of the decoded poll names the field.
            response = try await Self.post(
                client,
                Self.poll(
                    seq: 6,
                    inner: "<bc:Send ref=\"x\" to=\"b\"><env:Envelope><env:Body>"
                        + "<bc:Command name=\"read\"/></env:Body></env:Envelope></bc:Send>"), token: token)
            #expect(response.status == .badRequest)
            fault = try Self.fault(response)
            #expect(fault.subcode == ErrorCode.malformed)
            #expect(fault.reason.hasPrefix("requests[0].to"))

            // Not SOAP at all is a 415 (JSON error, as for any unsupported type).
            response = try await Self.post(client, "x", token: token, contentType: "application/xml")
            #expect(response.status == .unsupportedMediaType)
        }
    }

    @Test func rateLimitsAndOverloadAreFaultsWithRetryAfter() async throws {
        let h = try HubHarness {
            $0.devicePollRate = 0.001
            $0.devicePollBurst = 1
            $0.maxHeldPolls = 0
        }
        let token = try await h.provision("m1")
        let other = try await h.provision("m2")
        try await HTTPTests.app(h).test(.router) { client in
            _ = try await Self.post(client, Self.poll(seq: 1), token: token)
            var response = try await Self.post(client, Self.poll(seq: 2), token: token)
            #expect(response.status == .tooManyRequests)
            #expect(response.headers[.retryAfter] != nil)
            #expect(try Self.fault(response).subcode == ErrorCode.rateLimited)

            // No room to hold a long-poll: a Receiver fault, 503.
            let wait = Self.poll("m2", seq: 1).replacingOccurrences(
                of: "<bc:accept>5</bc:accept>", with: "<bc:accept>5</bc:accept><bc:wait>30</bc:wait>")
            response = try await Self.post(client, wait, token: other)
            #expect(response.status == .serviceUnavailable)
            let fault = try Self.fault(response)
            #expect(fault.code == .receiver)
            #expect(fault.retryAfter != nil)
        }
    }

    @Test func envelopeFaults() async throws {
        let h = try HubHarness()
        let token = try await h.provision("m1")
        try await HTTPTests.app(h).test(.router) { client in
            // A SOAP 1.1 envelope: VersionMismatch.
            var response = try await Self.post(
                client, "<s:Envelope xmlns:s=\"\(SOAP.soap11Namespace)\"><s:Body/></s:Envelope>", token: token,
                contentType: "text/xml; charset=utf-8")
            #expect(response.status == .internalServerError)
            #expect(try Self.fault(response).code == .versionMismatch)
            // Not an envelope at all: VersionMismatch too (SOAP 1.2 part 1, 5.4.7).
            response = try await Self.post(client, "<bc:Poll xmlns:bc=\"\(Self.bc)\"/>", token: token)
            #expect(try Self.fault(response).code == .versionMismatch)

            // A header block the hub does not understand, marked mustUnderstand.
            let header = Self.poll(seq: 1).replacingOccurrences(
                of: "<env:Body>",
                with: "<env:Header><x:Security xmlns:x=\"urn:x\" env:mustUnderstand=\"true\"/></env:Header><env:Body>")
            response = try await Self.post(client, header, token: token)
            #expect(response.status == .internalServerError)
            var fault = try Self.fault(response)
            #expect(fault.code == .mustUnderstand)
            #expect(fault.reason.contains("Security"))
            // The same block without mustUnderstand is ignored.
            let optional = header.replacingOccurrences(of: " env:mustUnderstand=\"true\"", with: "")
            #expect(try await Self.post(client, optional, token: token).status == .ok)

            let malformed: [(String, String)] = [
                ("<env:Envelope xmlns:env=\"\(Self.env)\"/>", "has no env:Body"),
                ("<env:Envelope xmlns:env=\"\(Self.env)\"><env:Body/></env:Envelope>", "exactly one bc:Poll"),
                (Self.poll(seq: 2).replacingOccurrences(of: "<bc:seq>2</bc:seq>", with: ""), "has no bc:seq"),
                (
                    Self.poll(seq: 2).replacingOccurrences(of: "<bc:seq>2</bc:seq>", with: "<bc:seq>two</bc:seq>"),
                    "seq: not an integer"
                ),
                (Self.poll(seq: 2).replacingOccurrences(of: "2027-01-15T08:00:00Z", with: "yesterday"), "sentAt"),
                (Self.poll(seq: 2, inner: "<bc:Result id=\"c1\"><bc:Oops/></bc:Result>"), "env:Envelope"),
                (
                    Self.poll(
                        seq: 2,
                        inner: "<bc:Result id=\"c1\"><env:Envelope><env:Body><bc:Command name=\"x\"/></env:Body>"
                            + "</env:Envelope></bc:Result>"), "exactly one bc:CommandResult"
                ),
                (
                    Self.poll(
                        seq: 2,
                        inner: "<bc:Result id=\"c1\"><env:Envelope><env:Body><bc:CommandResult/></env:Body>"
                            + "</env:Envelope></bc:Result>"), "@status"
                ),
                (
                    Self.poll(
                        seq: 2,
                        inner: "<bc:Uplink id=\"u\" kind=\"reading\" name=\"m\" at=\"2027-01-15T08:00:00Z\">"
                            + "<bc:data><a>1</a><a>2</a></bc:data></bc:Uplink>"), "repeated element"
                ),
                ("<env:Envelope xmlns:env=\"\(Self.env)\"><env:Body></env:Envelop>", "line"),
            ]
            for (document, reason) in malformed {
                response = try await Self.post(client, document, token: token)
                #expect(response.status == .badRequest, "\(reason)")
                fault = try Self.fault(response)
                #expect(fault.code == .sender)
                #expect(fault.subcode == ErrorCode.malformed)
                #expect(fault.reason.contains(reason), "\(fault.reason) should mention \(reason)")
            }
        }
        #expect(h.hub.metrics.snapshot.rejectedPolls > 10)
    }

    // MARK: Hostile documents

    @Test func hostileDocumentsGetAClearFaultAndNothingElse() async throws {
        let h = try HubHarness()
        let token = try await h.provision("m1")
        let billionLaughs = """
            <?xml version="1.0"?>
            <!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
            <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
            <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
            <!ENTITY lol9 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">]>
            <env:Envelope xmlns:env="\(Self.env)"><env:Body><lolz>&lol9;</lolz></env:Body></env:Envelope>
            """
        let xxe = """
            <?xml version="1.0"?>
            <!DOCTYPE foo [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
            <env:Envelope xmlns:env="\(Self.env)" xmlns:bc="\(Self.bc)"><env:Body><bc:Poll>\
            <bc:device>&xxe;</bc:device></bc:Poll></env:Body></env:Envelope>
            """
        let nested =
            "<env:Envelope xmlns:env=\"\(Self.env)\"><env:Body>" + String(repeating: "<a>", count: 10_000)
            + String(repeating: "</a>", count: 10_000) + "</env:Body></env:Envelope>"
        let huge =
            "<env:Envelope xmlns:env=\"\(Self.env)\"><env:Body><x>"
            + String(repeating: "A", count: 50 * 1024 * 1024) + "</x></env:Body></env:Envelope>"
        try await HTTPTests.app(h).test(.router) { client in
            for (name, document) in [("billion laughs", billionLaughs), ("XXE", xxe)] {
                let response = try await Self.post(client, document, token: token)
                #expect(response.status == .badRequest, "\(name)")
                let fault = try Self.fault(response)
                #expect(fault.code == .sender)
                #expect(fault.subcode == "dtd_forbidden", "\(name)")
                #expect(!fault.reason.contains("root:"), "nothing of /etc/passwd is echoed")
            }
            var response = try await Self.post(client, nested, token: token)
            #expect(response.status == .badRequest)
            #expect(try Self.fault(response).subcode == "xml_limit")

            response = try await Self.post(client, huge, token: token)
            #expect(response.status == .contentTooLarge)
            #expect(try Self.fault(response).subcode == ErrorCode.tooLarge)

            // The hub still serves the device normally afterwards.
            #expect(try await Self.post(client, Self.poll(seq: 1), token: token).status == .ok)
        }
        #expect(try await h.store.uplink(device: "m1", kind: nil, after: nil, limit: 10).isEmpty)
    }
}
