public import Foundation

extension SOAPCodec {
    /// Writes a poll response as a `bc:PollResponse` envelope (the hub's side).
    ///
    /// A request or reply that carries its sender's envelope is written with those bytes
    /// unchanged; others get an envelope written from their fields.
    public static func encodeResponse(_ response: PollResponse) -> Data {
        var x = SOAP.declaration + "<env:Envelope \(SOAP.namespaces)><env:Body><bc:PollResponse>"
        x += tag("seq", String(response.seq)) + tag("receivedAt", response.receivedAt.description)
        x += tag("sentAt", response.sentAt.description)
        for id in response.stored { x += tag("stored", id) }
        for request in response.requests {
            x += "<bc:Request id=\"\(XMLWriter.escapeAttribute(request.id))\""
            x += " origin=\"\(XMLWriter.escapeAttribute(request.origin))\" createdAt=\"\(request.createdAt)\""
            x += " expiresAt=\"\(request.expiresAt)\""
            if let notBefore = request.notBefore { x += " notBefore=\"\(notBefore)\"" }
            x += " attempt=\"\(request.attempt)\">"
            x += (request.envelope ?? SOAPEnvelope.command(name: request.name, args: request.args)) + "</bc:Request>"
        }
        for id in response.cancel { x += tag("cancel", id) }
        x += tag("more", String(response.more)) + tag("nextPollAfter", SOAPText.number(response.nextPollAfter))
        x += tag("ackWithin", SOAPText.number(response.ackWithin))
        if let superseded = response.superseded { x += tag("superseded", String(superseded)) }
        if let contactBy = response.contactBy { x += tag("contactBy", contactBy.description) }
        if let refresh = response.refreshPresence { x += tag("refreshPresence", String(refresh)) }
        for routed in response.routed ?? [] {
            x += "<bc:Routed ref=\"\(XMLWriter.escapeAttribute(routed.ref))\""
            if let id = routed.id { x += " id=\"\(XMLWriter.escapeAttribute(id))\"" }
            x += " state=\"\(routed.state.rawValue)\""
            if let code = routed.code { x += " code=\"\(XMLWriter.escapeAttribute(code))\"" }
            if let detail = routed.detail { x += " detail=\"\(XMLWriter.escapeAttribute(detail))\"" }
            x += "/>"
        }
        for reply in response.replies ?? [] {
            x +=
                "<bc:Reply id=\"\(XMLWriter.escapeAttribute(reply.id))\" ref=\"\(XMLWriter.escapeAttribute(reply.ref))\""
            x += " from=\"\(XMLWriter.escapeAttribute(reply.from))\" name=\"\(XMLWriter.escapeAttribute(reply.name))\""
            x += " state=\"\(reply.state.rawValue)\""
            if let finishedAt = reply.finishedAt { x += " finishedAt=\"\(finishedAt)\"" }
            x += ">"
            let outcome = reply.outcome
            x +=
                outcome?.envelope
                ?? SOAPEnvelope.result(
                    status: outcome?.status, code: outcome?.code, retryable: outcome?.retryable,
                    detail: outcome?.detail, data: outcome?.data, finishedAt: nil)
            x += "</bc:Reply>"
        }
        return Data((x + "</bc:PollResponse></env:Body></env:Envelope>").utf8)
    }

    /// Reads a `bc:PollResponse` envelope (the agent's side). A fault envelope throws the fault.
    public static func decodeResponse(_ data: Data, limits: XMLLimits = XMLLimits()) throws(SOAPFault)
        -> PollResponse
    {
        let (element, bytes, scope) = try open(data, expecting: "PollResponse", limits: limits, faultStatus: 200)
        let r = Fields(element, path: "PollResponse")
        var response = PollResponse(
            seq: try r.int64("seq"), receivedAt: try r.time("receivedAt"), sentAt: try r.time("sentAt"),
            stored: r.texts("stored"), cancel: r.texts("cancel"),
            more: try r.optional("more", SOAPText.bool(_:)) ?? false,
            nextPollAfter: try r.optional("nextPollAfter") { Double($0) } ?? 0,
            ackWithin: try r.optional("ackWithin") { Double($0) } ?? 0,
            superseded: try r.optional("superseded", SOAPText.bool(_:))
        )
        response.contactBy = try r.optionalTime("contactBy")
        response.refreshPresence = try r.optional("refreshPresence", SOAPText.bool(_:))
        for (i, wrapper) in element.all("Request", namespace: SOAP.namespace).enumerated() {
            let path = "PollResponse/Request[\(i)]"
            let w = Fields(wrapper, path: path)
            let (envelope, raw) = try inner(wrapper, bytes: bytes, scope: scope, path: path)
            let command = Fields(
                try SOAPEnvelope.body(of: envelope, expecting: "Command", at: path),
                path: path + "/Envelope/Body/Command")
            func time(_ name: String) throws(SOAPFault) -> Timestamp {
                guard let value = Timestamp(rfc3339: try w.required(attribute: name)) else {
                    throw .malformed("\(path)/@\(name): not an xsd:dateTime")
                }
                return value
            }
            guard let attempt = Int(try w.required(attribute: "attempt")) else {
                throw .malformed("\(path)/@attempt: not an integer")
            }
            response.requests.append(
                LogicalRequest(
                    id: try w.required(attribute: "id"), origin: try w.required(attribute: "origin"),
                    name: try command.required(attribute: "name"), args: try command.args(),
                    createdAt: try time("createdAt"), expiresAt: try time("expiresAt"),
                    notBefore: try w.time(attribute: "notBefore"), attempt: attempt,
                    envelope: raw
                )
            )
        }
        let routed = try element.all("Routed", namespace: SOAP.namespace).enumerated().map {
            i, item throws(SOAPFault) -> RoutedRequest in
            let f = Fields(item, path: "PollResponse/Routed[\(i)]")
            guard let state = MessageState(rawValue: try f.required(attribute: "state")) else {
                throw .malformed("\(f.path)/@state: not a state")
            }
            return RoutedRequest(
                ref: try f.required(attribute: "ref"), id: item.attribute("id"), state: state,
                code: item.attribute("code"), detail: item.attribute("detail"))
        }
        if !routed.isEmpty { response.routed = routed }
        var replies: [PeerReply] = []
        for (i, wrapper) in element.all("Reply", namespace: SOAP.namespace).enumerated() {
            let path = "PollResponse/Reply[\(i)]"
            let w = Fields(wrapper, path: path)
            let (envelope, raw) = try inner(wrapper, bytes: bytes, scope: scope, path: path)
            let result = Fields(
                try SOAPEnvelope.body(of: envelope, expecting: "CommandResult", at: path),
                path: path + "/Envelope/Body/CommandResult")
            guard let state = MessageState(rawValue: try w.required(attribute: "state")) else {
                throw .malformed("\(path)/@state: not a state")
            }
            var status: ResultStatus?
            if let text = try result.attribute("status") {
                guard let parsed = ResultStatus(rawValue: text) else {
                    throw .malformed("\(result.path)/@status: must be succeeded, failed or rejected")
                }
                status = parsed
            }
            // An empty CommandResult is how the hub writes a reply that has no outcome.
            let empty = status == nil && result.element.children.isEmpty
            replies.append(
                PeerReply(
                    id: try w.required(attribute: "id"), ref: try w.required(attribute: "ref"),
                    from: try w.required(attribute: "from"), name: try w.required(attribute: "name"), state: state,
                    outcome: empty
                        ? nil
                        : CommandOutcome(
                            status: status, code: result.optionalText("code"),
                            retryable: try result.optional("retryable", SOAPText.bool(_:)),
                            detail: result.optionalText("detail"), data: try result.value("data"), envelope: raw),
                    finishedAt: try w.time(attribute: "finishedAt")
                )
            )
        }
        if !replies.isEmpty { response.replies = replies }
        return response
    }
}
