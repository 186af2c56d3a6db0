public import Foundation

/// The inner envelopes of the SOAP binding: one logical request or response each.
///
/// A command is `<env:Envelope><env:Body><bc:Command name="…"><bc:args>…</bc:args></bc:Command>`;
/// an outcome is `<env:Envelope><env:Body><bc:CommandResult status="…">…`. A header, if any, is
/// kept but not interpreted.
public enum SOAPEnvelope {
    /// A command envelope, as the hub writes one for a request that has no envelope of its own.
    public static func command(name: String, args: JSONValue) -> String {
        "<env:Envelope \(SOAP.namespaces)><env:Body><bc:Command name=\"\(XMLWriter.escapeAttribute(name))\">"
            + qualified(args, as: "args") + "</bc:Command></env:Body></env:Envelope>"
    }

    /// A result envelope for an outcome that has no envelope of its own.
    public static func result(
        status: ResultStatus?, code: String?, retryable: Bool?, detail: String?, data: JSONValue?,
        finishedAt: Timestamp?
    ) -> String {
        var x = "<env:Envelope \(SOAP.namespaces)><env:Body><bc:CommandResult"
        if let status { x += " status=\"\(status.rawValue)\"" }
        x += ">"
        if let code { x += "<bc:code>\(XMLWriter.escapeText(code))</bc:code>" }
        if let retryable { x += "<bc:retryable>\(retryable)</bc:retryable>" }
        if let detail { x += "<bc:detail>\(XMLWriter.escapeText(detail))</bc:detail>" }
        if let data { x += qualified(data, as: "data") }
        if let finishedAt { x += "<bc:finishedAt>\(finishedAt)</bc:finishedAt>" }
        return x + "</bc:CommandResult></env:Body></env:Envelope>"
    }

    /// A value as a `bc:`-qualified element whose content follows ``XMLValue``'s conventions.
    static func qualified(_ value: JSONValue, as name: String) -> String {
        var text = XMLValue.encode(value, as: name)
        // XMLValue writes `<name …>…</name>` or `<name …/>`; the element itself is in bc:.
        text.replaceSubrange(
            text.startIndex..<text.index(text.startIndex, offsetBy: 1 + name.count), with: "<bc:" + name)
        if text.hasSuffix("</\(name)>") {
            text.removeLast(name.count + 3)
            text += "</bc:\(name)>"
        }
        return text
    }

    /// The body element of an inner envelope, checked: an `env:Envelope` with an `env:Body`
    /// holding exactly one `bc:<expected>`.
    static func body(of envelope: XMLElement, expecting expected: String, at path: String) throws(SOAPFault)
        -> XMLElement
    {
        guard envelope.name == XMLName(namespace: SOAP.envelopeNamespace, local: "Envelope") else {
            throw .malformed("\(path): must hold one env:Envelope")
        }
        guard let body = envelope.first("Body", namespace: SOAP.envelopeNamespace) else {
            throw .malformed("\(path)/Envelope: has no env:Body")
        }
        let content = body.elements
        guard content.count == 1, content[0].name == XMLName(namespace: SOAP.namespace, local: expected) else {
            throw .malformed("\(path)/Envelope/Body: must hold exactly one bc:\(expected)")
        }
        return content[0]
    }

    /// The source bytes of `element` (an inner envelope) as a standalone document: the
    /// namespace declarations it relies on from its ancestors (`scope`) are added to its start
    /// tag; every other byte is kept as the sender wrote it.
    static func standalone(_ element: XMLElement, in bytes: [UInt8], scope: [String: String]) throws(SOAPFault)
        -> String
    {
        var used = Set<String>()
        var stack = [element]
        while let next = stack.popLast() {
            used.insert(next.prefix ?? "")
            for attribute in next.attributes {
                if let prefix = attribute.prefix { used.insert(prefix) }
                // QName-valued attributes (xsi:type="xsd:string") need their prefix too.
                if let colon = attribute.value.firstIndex(of: ":"), colon != attribute.value.startIndex,
                    XMLWriter.isValidName(String(attribute.value[..<colon]))
                {
                    used.insert(String(attribute.value[..<colon]))
                }
            }
            stack += next.elements
        }
        used.remove("xml")
        var added = ""
        for prefix in used.sorted() where element.namespaceDeclarations[prefix] == nil {
            guard let uri = scope[prefix], !(prefix.isEmpty && uri.isEmpty) else { continue }
            added += prefix.isEmpty ? " xmlns=\"" : " xmlns:\(prefix)=\""
            added += XMLWriter.escapeAttribute(uri) + "\""
        }
        var source = Array(bytes[element.range])
        let nameLength = (element.prefix.map { $0.utf8.count + 1 } ?? 0) + element.name.local.utf8.count
        source.insert(contentsOf: Array(added.utf8), at: 1 + nameLength)
        let text = String(decoding: source, as: UTF8.self)
        do {
            _ = try XMLReader.parse(Data(source))
        } catch {
            throw .malformed("an inner envelope is not a well-formed document on its own: \(error)")
        }
        return text
    }

    /// Merges the namespace declarations of `element` into `scope`.
    static func scope(_ scope: [String: String], adding element: XMLElement) -> [String: String] {
        scope.merging(element.namespaceDeclarations) { _, new in new }
    }
}
