public import Foundation

/// Converts polls and poll responses between the JSON types and the SOAP 1.2 binding.
///
/// The hub decodes ``PollRequest``s and encodes ``PollResponse``s; the agent does the reverse.
/// Every inner envelope read from a message is kept verbatim (made standalone) in the value's
/// `envelope` field, and written back unchanged.
public enum SOAPCodec {
    // MARK: Messages in

    /// The outer envelope, checked: SOAP 1.2, no unknown `mustUnderstand` headers, one body
    /// element named `expected`. Returns it with the source bytes and the namespaces in scope.
    ///
    /// With `faultStatus`, a body holding an `env:Fault` is thrown as that fault (the agent's side).
    static func open(
        _ data: Data, expecting expected: String, limits: XMLLimits, faultStatus: Int? = nil
    ) throws(SOAPFault) -> (XMLElement, [UInt8], [String: String]) {
        let root: XMLElement
        // Ranges index the parsed Data; parse a zero-based copy so they index `bytes` too.
        let bytes = Array(data)
        do {
            root = try XMLReader.parse(Data(bytes), limits: limits)
        } catch {
            throw SOAPFault.refused(error)
        }
        guard root.name == XMLName(namespace: SOAP.envelopeNamespace, local: "Envelope") else {
            let what = root.name.namespace == SOAP.soap11Namespace ? "a SOAP 1.1 envelope" : "not a SOAP envelope"
            throw SOAPFault(
                .versionMismatch, subcode: "version_mismatch",
                reason: "\(what): only SOAP 1.2 (\(SOAP.envelopeNamespace)) is supported", status: 500)
        }
        for block in root.first("Header", namespace: SOAP.envelopeNamespace)?.elements ?? [] {
            let must = block.attribute("mustUnderstand", namespace: SOAP.envelopeNamespace)
            if must == "true" || must == "1" {
                throw SOAPFault(
                    .mustUnderstand, subcode: "must_understand",
                    reason: "header block \(block.name.local) is marked mustUnderstand and is not understood",
                    status: 500)
            }
        }
        guard let body = root.first("Body", namespace: SOAP.envelopeNamespace) else {
            throw .malformed("Envelope: has no env:Body")
        }
        if let faultStatus, let fault = SOAPFault(envelope: root, status: faultStatus) { throw fault }
        let content = body.elements
        guard content.count == 1, content[0].name == XMLName(namespace: SOAP.namespace, local: expected) else {
            throw .malformed("Body: must hold exactly one bc:\(expected)")
        }
        let scope = SOAPEnvelope.scope(SOAPEnvelope.scope(root.namespaceDeclarations, adding: body), adding: content[0])
        return (content[0], bytes, scope)
    }

    /// Reads a `bc:Poll` envelope.
    public static func decodePoll(_ data: Data, limits: XMLLimits = XMLLimits()) throws(SOAPFault) -> PollRequest {
        let (poll, bytes, scope) = try open(data, expecting: "Poll", limits: limits)
        let r = Fields(poll, path: "Poll")
        var request = PollRequest(
            device: try r.text("device"), seq: try r.int64("seq"), sentAt: try r.time("sentAt"),
            accept: try r.optional("accept") { Int($0) } ?? PollRequest.defaultAccept,
            wait: try r.optional("wait") { Double($0) } ?? 0
        )
        request.acks = r.texts("ack")
        request.replyAcks = r.texts("replyAck")
        for (i, wrapper) in poll.all("Result", namespace: SOAP.namespace).enumerated() {
            let path = "Poll/Result[\(i)]"
            let w = Fields(wrapper, path: path)
            let (envelope, raw) = try inner(wrapper, bytes: bytes, scope: scope, path: path)
            let result = try SOAPEnvelope.body(of: envelope, expecting: "CommandResult", at: path)
            let f = Fields(result, path: path + "/Envelope/Body/CommandResult")
            guard let status = try f.attribute("status").flatMap(ResultStatus.init(rawValue:)) else {
                throw .malformed("\(f.path)/@status: must be succeeded, failed or rejected")
            }
            request.results.append(
                LogicalResult(
                    id: try w.required(attribute: "id"), status: status, code: f.optionalText("code"),
                    retryable: try f.optional("retryable", SOAPText.bool(_:)), detail: f.optionalText("detail"),
                    data: try f.value("data"), finishedAt: try f.optionalTime("finishedAt"), envelope: raw
                )
            )
        }
        for (i, element) in poll.all("Uplink", namespace: SOAP.namespace).enumerated() {
            let u = Fields(element, path: "Poll/Uplink[\(i)]")
            guard let kind = UplinkKind(rawValue: try u.required(attribute: "kind")) else {
                throw .malformed("\(u.path)/@kind: must be reading or event")
            }
            guard let at = Timestamp(rfc3339: try u.required(attribute: "at")) else {
                throw .malformed("\(u.path)/@at: not an xsd:dateTime with a time zone")
            }
            guard let data = try u.value("data") else { throw .malformed("\(u.path): has no bc:data") }
            request.uplink.append(
                UplinkItem(
                    id: try u.required(attribute: "id"), kind: kind, name: try u.required(attribute: "name"), at: at,
                    data: data))
        }
        for (i, wrapper) in poll.all("Send", namespace: SOAP.namespace).enumerated() {
            let path = "Poll/Send[\(i)]"
            let s = Fields(wrapper, path: path)
            let (envelope, raw) = try inner(wrapper, bytes: bytes, scope: scope, path: path)
            let command = try SOAPEnvelope.body(of: envelope, expecting: "Command", at: path)
            let c = Fields(command, path: path + "/Envelope/Body/Command")
            var policy = UnavailablePolicy.hold
            if let text = try s.attribute("onUnavailable") {
                guard let parsed = UnavailablePolicy(rawValue: text) else {
                    throw .malformed("\(path)/@onUnavailable: must be hold or fail")
                }
                policy = parsed
            }
            request.requests.append(
                PeerRequest(
                    ref: try s.required(attribute: "ref"), to: try s.required(attribute: "to"),
                    name: try c.required(attribute: "name"), args: try c.args(),
                    ttl: try s.attribute("ttl").map { text throws(SOAPFault) in
                        guard let ttl = Double(text) else { throw .malformed("\(path)/@ttl: not a number") }
                        return ttl
                    },
                    notBefore: try s.attribute("notBefore").map { text throws(SOAPFault) in
                        guard let time = Timestamp(rfc3339: text) else {
                            throw .malformed("\(path)/@notBefore: not an xsd:dateTime with a time zone")
                        }
                        return time
                    },
                    onUnavailable: policy, envelope: raw
                )
            )
        }
        if let element = poll.first("ClockSample", namespace: SOAP.namespace) {
            let f = Fields(element, path: "Poll/ClockSample")
            guard let seq = Int64(try f.required(attribute: "seq")) else {
                throw .malformed("Poll/ClockSample/@seq: not an integer")
            }
            guard let receivedAt = try f.time(attribute: "receivedAt") else {
                throw .malformed("Poll/ClockSample: has no @receivedAt")
            }
            request.clockSample = ClockSample(seq: seq, receivedAt: receivedAt)
        }
        if let element = poll.first("Presence", namespace: SOAP.namespace) {
            let p = Fields(element, path: "Poll/Presence")
            guard let state = DeclaredPresence(rawValue: try p.required(attribute: "state")) else {
                throw .malformed("Poll/Presence/@state: not a presence state")
            }
            var status: [String: JSONValue]?
            if let value = try p.value("status") {
                guard case .object(let members) = value else { throw .malformed("Poll/Presence/status: not an object") }
                status = members
            }
            request.presence = PresenceReport(state: state, note: p.optionalText("note"), status: status)
        }
        return request
    }

    /// The single inner envelope of a wrapper element, and its standalone source.
    static func inner(_ wrapper: XMLElement, bytes: [UInt8], scope: [String: String], path: String) throws(SOAPFault)
        -> (XMLElement, String)
    {
        let elements = wrapper.elements
        guard elements.count == 1 else { throw .malformed("\(path): must hold exactly one env:Envelope") }
        let raw = try SOAPEnvelope.standalone(
            elements[0], in: bytes, scope: SOAPEnvelope.scope(scope, adding: wrapper))
        return (elements[0], raw)
    }

    // MARK: Messages out

    /// Writes a poll as a `bc:Poll` envelope (the agent's side).
    public static func encodePoll(_ request: PollRequest) -> Data {
        var x = SOAP.declaration + "<env:Envelope \(SOAP.namespaces)><env:Body><bc:Poll>"
        x += tag("device", request.device) + tag("seq", String(request.seq)) + tag("sentAt", request.sentAt.description)
        x += tag("accept", String(request.accept)) + tag("wait", SOAPText.number(request.wait))
        for ack in request.acks { x += tag("ack", ack) }
        for result in request.results {
            let envelope =
                result.envelope
                ?? SOAPEnvelope.result(
                    status: result.status, code: result.code, retryable: result.retryable, detail: result.detail,
                    data: result.data, finishedAt: result.finishedAt)
            x += "<bc:Result id=\"\(XMLWriter.escapeAttribute(result.id))\">\(envelope)</bc:Result>"
        }
        for item in request.uplink {
            x += "<bc:Uplink id=\"\(XMLWriter.escapeAttribute(item.id))\" kind=\"\(item.kind.rawValue)\""
            x += " name=\"\(XMLWriter.escapeAttribute(item.name))\" at=\"\(item.at)\">"
            x += SOAPEnvelope.qualified(item.data, as: "data") + "</bc:Uplink>"
        }
        for peer in request.requests {
            x += "<bc:Send ref=\"\(XMLWriter.escapeAttribute(peer.ref))\" to=\"\(XMLWriter.escapeAttribute(peer.to))\""
            if let ttl = peer.ttl { x += " ttl=\"\(SOAPText.number(ttl))\"" }
            if let notBefore = peer.notBefore { x += " notBefore=\"\(notBefore)\"" }
            x += " onUnavailable=\"\(peer.onUnavailable.rawValue)\">"
            x += (peer.envelope ?? SOAPEnvelope.command(name: peer.name, args: peer.args)) + "</bc:Send>"
        }
        for ack in request.replyAcks { x += tag("replyAck", ack) }
        if let sample = request.clockSample {
            x += "<bc:ClockSample seq=\"\(sample.seq)\" receivedAt=\"\(sample.receivedAt)\"/>"
        }
        if let presence = request.presence {
            x += "<bc:Presence state=\"\(presence.state.rawValue)\">"
            if let note = presence.note { x += tag("note", note) }
            if let status = presence.status { x += SOAPEnvelope.qualified(.object(status), as: "status") }
            x += "</bc:Presence>"
        }
        return Data((x + "</bc:Poll></env:Body></env:Envelope>").utf8)
    }

    /// `<bc:name>text</bc:name>`, escaped.
    static func tag(_ name: String, _ text: String) -> String {
        "<bc:\(name)>\(XMLWriter.escapeText(text))</bc:\(name)>"
    }
}

/// Reads the fields of one element of a message, naming the element's path in every fault.
struct Fields {
    let element: XMLElement
    let path: String

    init(_ element: XMLElement, path: String) {
        self.element = element
        self.path = path
    }

    func child(_ name: String) -> XMLElement? { element.first(name, namespace: SOAP.namespace) }

    func text(_ name: String) throws(SOAPFault) -> String {
        guard let child = child(name) else { throw .malformed("\(path): has no bc:\(name)") }
        return child.text.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    func optionalText(_ name: String) -> String? { child(name)?.text }

    func texts(_ name: String) -> [String] {
        element.all(name, namespace: SOAP.namespace).map { $0.text.trimmingCharacters(in: .whitespacesAndNewlines) }
    }

    func int64(_ name: String) throws(SOAPFault) -> Int64 {
        guard let value = Int64(try text(name)) else { throw .malformed("\(path)/\(name): not an integer") }
        return value
    }

    func time(_ name: String) throws(SOAPFault) -> Timestamp {
        guard let value = Timestamp(rfc3339: try text(name)) else {
            throw .malformed("\(path)/\(name): not an xsd:dateTime with a time zone")
        }
        return value
    }

    func optionalTime(_ name: String) throws(SOAPFault) -> Timestamp? {
        guard child(name) != nil else { return nil }
        return try time(name)
    }

    func optional<T>(_ name: String, _ parse: (String) -> T?) throws(SOAPFault) -> T? {
        guard child(name) != nil else { return nil }
        guard let value = parse(try text(name)) else { throw .malformed("\(path)/\(name): not a valid value") }
        return value
    }

    func attribute(_ name: String) throws(SOAPFault) -> String? { element.attribute(name) }

    /// An optional time attribute: absent is nil, present and invalid is a fault.
    func time(attribute name: String) throws(SOAPFault) -> Timestamp? {
        guard let text = element.attribute(name) else { return nil }
        guard let time = Timestamp(rfc3339: text) else {
            throw .malformed("\(path)/@\(name): not an xsd:dateTime with a time zone")
        }
        return time
    }

    func required(attribute name: String) throws(SOAPFault) -> String {
        guard let value = element.attribute(name) else { throw .malformed("\(path): has no @\(name)") }
        return value
    }

    /// A self-describing value (``XMLValue``) held by child `name`.
    func value(_ name: String) throws(SOAPFault) -> JSONValue? {
        guard let child = child(name) else { return nil }
        do {
            return try XMLValue.decode(child)
        } catch {
            throw .malformed("\(path)/\(name): \(error.message)")
        }
    }

    /// The `bc:args` of a command: an object; absent, or empty without attributes, is `{}`.
    func args() throws(SOAPFault) -> JSONValue {
        guard let child = child("args") else { return .object([:]) }
        if child.children.isEmpty && child.attributes.isEmpty { return .object([:]) }
        guard case .object(let members)? = try value("args") else {
            throw .malformed("\(path)/args: must be an object")
        }
        return .object(members)
    }
}
