public import Foundation

/// The SOAP 1.2 binding of the device protocol: names shared by the hub and the agent.
///
/// The outer envelope is the physical poll (`bc:Poll`, answered by `bc:PollResponse`). Every
/// logical request and response inside it is itself a complete SOAP 1.2 envelope (SOAP-in-SOAP):
/// the hub keeps a sender's inner envelope verbatim and forwards it unchanged.
public enum SOAP {
    /// The SOAP 1.2 envelope namespace.
    public static let envelopeNamespace = "http://www.w3.org/2003/05/soap-envelope"
    /// The SOAP 1.1 envelope namespace, answered with a `VersionMismatch` fault.
    public static let soap11Namespace = "http://schemas.xmlsoap.org/soap/envelope/"
    /// The namespace of the protocol's elements (prefix `bc`).
    public static let namespace = "urn:backchannel:poll:1"
    /// The `xml:` namespace, for `xml:lang`.
    public static let xmlNamespace = "http://www.w3.org/XML/1998/namespace"
    /// The media type of SOAP 1.2 messages.
    public static let contentType = "application/soap+xml; charset=utf-8"
    /// The action of the Poll operation.
    public static let pollAction = "urn:backchannel:poll:1#Poll"
    /// The XML declaration every message starts with.
    static let declaration = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>"
    /// The namespace declarations of every envelope the binding writes.
    static let namespaces = "xmlns:env=\"\(envelopeNamespace)\" xmlns:bc=\"\(namespace)\""
}

/// A SOAP 1.2 fault: the binding's form of every session error.
///
/// `code` is the SOAP fault code; `subcode` is the same error code the JSON binding uses
/// (`malformed`, `unauthorized`, `sequence_conflict`, …), written as `bc:<subcode>`. The HTTP
/// status is the JSON binding's for the same error (SOAP 1.2's defaults, 400 for `Sender` and
/// 500 for the others, where the JSON binding has none).
public struct SOAPFault: Error, Sendable, Hashable, CustomStringConvertible {
    /// The SOAP 1.2 fault codes.
    public enum Code: String, Sendable, Hashable, CaseIterable {
        /// The message is not a SOAP 1.2 envelope.
        case versionMismatch = "VersionMismatch"
        /// A header block marked `mustUnderstand` is not understood.
        case mustUnderstand = "MustUnderstand"
        /// The message is wrong: the sender must change it.
        case sender = "Sender"
        /// The hub could not process a correct message; the same message may succeed later.
        case receiver = "Receiver"
    }

    /// The fault code.
    public var code: Code
    /// The error code, as in the JSON binding.
    public var subcode: String
    /// A human-readable reason; never echoes message content.
    public var reason: String
    /// The HTTP status the fault is sent with.
    public var status: Int
    /// For `sequence_conflict`: the last sequence number the hub processed.
    public var lastSeq: Int64?
    /// For `rate_limited` and `unavailable`: seconds to wait.
    public var retryAfter: Double?

    /// Creates a fault.
    public init(
        _ code: Code, subcode: String, reason: String, status: Int, lastSeq: Int64? = nil, retryAfter: Double? = nil
    ) {
        self.code = code
        self.subcode = subcode
        self.reason = reason
        self.status = status
        self.lastSeq = lastSeq
        self.retryAfter = retryAfter
    }

    /// A `Sender` fault with subcode `malformed` (HTTP 400).
    public static func malformed(_ reason: String) -> SOAPFault {
        SOAPFault(.sender, subcode: "malformed", reason: reason, status: 400)
    }

    /// The fault for an error body of the JSON binding.
    public init(_ error: ErrorBody, status: Int) {
        self.init(
            status >= 500 ? .receiver : .sender, subcode: error.code, reason: error.message, status: status,
            lastSeq: error.lastSeq, retryAfter: error.retryAfter
        )
    }

    /// The same error as the JSON binding's error body.
    public var errorBody: ErrorBody {
        ErrorBody(code: subcode, message: reason, lastSeq: lastSeq, retryAfter: retryAfter)
    }

    public var description: String { "\(code.rawValue)/\(subcode): \(reason)" }

    /// The fault as a complete SOAP 1.2 envelope.
    public var xml: Data {
        var x = SOAP.declaration + "<env:Envelope \(SOAP.namespaces)><env:Body><env:Fault>"
        x += "<env:Code><env:Value>env:\(code.rawValue)</env:Value>"
        x += "<env:Subcode><env:Value>bc:\(XMLWriter.escapeText(subcode))</env:Value></env:Subcode></env:Code>"
        x += "<env:Reason><env:Text xml:lang=\"en\">\(XMLWriter.escapeText(reason))</env:Text></env:Reason>"
        x += "<env:Detail><bc:Error><bc:code>\(XMLWriter.escapeText(subcode))</bc:code>"
        x += "<bc:message>\(XMLWriter.escapeText(reason))</bc:message>"
        if let lastSeq { x += "<bc:lastSeq>\(lastSeq)</bc:lastSeq>" }
        if let retryAfter { x += "<bc:retryAfter>\(SOAPText.number(retryAfter))</bc:retryAfter>" }
        x += "</bc:Error></env:Detail></env:Fault></env:Body></env:Envelope>"
        return Data(x.utf8)
    }

    /// Reads a fault envelope; nil when `data` is not one.
    public static func parse(_ data: Data, status: Int) -> SOAPFault? {
        guard let root = try? XMLReader.parse(data) else { return nil }
        return SOAPFault(envelope: root, status: status)
    }

    /// The fault in a parsed envelope; nil when its body holds no `env:Fault`.
    init?(envelope root: XMLElement, status: Int) {
        guard root.name == XMLName(namespace: SOAP.envelopeNamespace, local: "Envelope"),
            let fault = root.first("Body", namespace: SOAP.envelopeNamespace)?.first(
                "Fault", namespace: SOAP.envelopeNamespace)
        else { return nil }
        func trimmed(_ element: XMLElement?) -> String? {
            element?.text.trimmingCharacters(in: .whitespacesAndNewlines)
        }
        let codeElement = fault.first("Code", namespace: SOAP.envelopeNamespace)
        let value = trimmed(codeElement?.first("Value", namespace: SOAP.envelopeNamespace)) ?? ""
        let code = Code.allCases.first { value.hasSuffix(":" + $0.rawValue) || value == $0.rawValue } ?? .receiver
        let error = fault.first("Detail", namespace: SOAP.envelopeNamespace)?.first("Error", namespace: SOAP.namespace)
        let subcode =
            trimmed(error?.first("code", namespace: SOAP.namespace))
            ?? trimmed(
                codeElement?.first("Subcode", namespace: SOAP.envelopeNamespace)?.first(
                    "Value", namespace: SOAP.envelopeNamespace))?.split(separator: ":").last.map(String.init)
            ?? "soap_fault"
        let reason =
            fault.first("Reason", namespace: SOAP.envelopeNamespace)?.first("Text", namespace: SOAP.envelopeNamespace)?
            .text ?? ""
        self.init(
            code, subcode: subcode, reason: reason, status: status,
            lastSeq: trimmed(error?.first("lastSeq", namespace: SOAP.namespace)).flatMap { Int64($0) },
            retryAfter: trimmed(error?.first("retryAfter", namespace: SOAP.namespace)).flatMap { Double($0) }
        )
    }

    /// The fault for a document the XML reader refused.
    static func refused(_ error: XMLError) -> SOAPFault {
        if error.isDoctypeForbidden {
            return SOAPFault(.sender, subcode: "dtd_forbidden", reason: error.description, status: 400)
        }
        if error.isTooLarge { return SOAPFault(.sender, subcode: "too_large", reason: error.description, status: 413) }
        if error.isLimit { return SOAPFault(.sender, subcode: "xml_limit", reason: error.description, status: 400) }
        return .malformed(error.description)
    }
}

/// Text forms of the binding's scalar values.
enum SOAPText {
    /// A number in its shortest form: `30`, `0.25`.
    static func number(_ value: Double) -> String {
        if value.isNaN { return "NaN" }
        if value.isInfinite { return value < 0 ? "-INF" : "INF" }
        if value.rounded() == value, abs(value) < 1e15 { return String(Int64(value)) }
        return String(value)
    }

    static func bool(_ text: String) -> Bool? {
        switch text.trimmingCharacters(in: .whitespaces) {
        case "true", "1": true
        case "false", "0": false
        default: nil
        }
    }
}
