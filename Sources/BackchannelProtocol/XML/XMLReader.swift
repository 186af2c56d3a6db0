public import Foundation

/// A strict, non-validating XML 1.0 parser with namespaces, safe for untrusted input.
///
/// - Only UTF-8 is accepted (a UTF-8 byte-order mark is skipped; an XML declaration naming
///   another encoding is rejected), and the bytes must be valid UTF-8 of characters XML allows.
/// - There are no DTDs: any `<!DOCTYPE` is rejected, so no entity can be declared, which rules out
///   entity expansion ("billion laughs") and external entities (XXE). Only the five predefined
///   entities and character references are replaced.
/// - Namespace prefixes are resolved (`xml` is pre-bound); an undeclared prefix is an error.
/// - Every ``XMLLimits`` value is enforced; the size limit is checked before anything is scanned.
///   The parser keeps its own stack, so deep nesting cannot exhaust the thread's stack.
/// - Comments and processing instructions are skipped. CRLF and CR are read as LF; literal tab,
///   CR and LF in attribute values are read as spaces.
public enum XMLReader {
    /// Parses a whole document and returns its root element.
    public static func parse(_ data: Data, limits: XMLLimits = XMLLimits()) throws(XMLError) -> XMLElement {
        guard data.count <= limits.maxBytes else {
            throw .tooLarge("the document is \(data.count) bytes; the limit is \(limits.maxBytes)")
        }
        let base = data.startIndex
        let result = data.withUnsafeBytes { raw -> Result<XMLElement, XMLError> in
            var scanner = XMLScanner(bytes: raw.assumingMemoryBound(to: UInt8.self), base: base, limits: limits)
            do throws(XMLError) {
                return .success(try scanner.parseDocument())
            } catch {
                return .failure(error)
            }
        }
        return try result.get()
    }
}

/// A qualified name in the input: byte offsets of its start, its colon (or -1) and its end.
struct QName {
    var start: Int
    var colon: Int
    var end: Int
}

/// An element whose end tag has not been read yet.
struct OpenElement {
    var element: XMLElement
    var qname: QName
    var start: Int
    var declared: [String]
    var hasElementChild = false
}

enum Byte {
    static let lt: UInt8 = 0x3C, gt: UInt8 = 0x3E, amp: UInt8 = 0x26, slash: UInt8 = 0x2F, colon: UInt8 = 0x3A
    static let bang: UInt8 = 0x21, question: UInt8 = 0x3F, equals: UInt8 = 0x3D, hash: UInt8 = 0x23
    static let semicolon: UInt8 = 0x3B, dash: UInt8 = 0x2D, rbracket: UInt8 = 0x5D
    static let quote: UInt8 = 0x22, apostrophe: UInt8 = 0x27, space: UInt8 = 0x20, tab: UInt8 = 0x09
    static let lf: UInt8 = 0x0A, cr: UInt8 = 0x0D
    static let comment = Array("<!--".utf8), cdata = Array("<![CDATA[".utf8), doctype = Array("DOCTYPE".utf8)
    static let xmlDecl = Array("<?xml".utf8)
}

/// The parser's state over the bytes of one document.
struct XMLScanner {
    static let xmlNamespace = "http://www.w3.org/XML/1998/namespace"
    static let xmlnsNamespace = "http://www.w3.org/2000/xmlns/"

    let b: UnsafeBufferPointer<UInt8>
    let n: Int
    /// Added to offsets in ranges: the `startIndex` of the parsed `Data`.
    let base: Int
    let limits: XMLLimits
    var pos = 0
    var origin = 0
    var elementCount = 0
    var stack: [OpenElement] = []
    var root: XMLElement?
    var bindings: [String: [String]] = ["xml": [xmlNamespace]]
    var text: [UInt8] = []
    var textAllWhitespace = true
    var textStart = 0
    var scratch: [UInt8] = []

    init(bytes: UnsafeBufferPointer<UInt8>, base: Int, limits: XMLLimits) {
        self.b = bytes
        self.n = bytes.count
        self.base = base
        self.limits = limits
    }

    // MARK: Document

    mutating func parseDocument() throws(XMLError) -> XMLElement {
        if n >= 3, b[0] == 0xEF, b[1] == 0xBB, b[2] == 0xBF {
            pos = 3
            origin = 3
        } else if n >= 2, (b[0] == 0xFE && b[1] == 0xFF) || (b[0] == 0xFF && b[1] == 0xFE) {
            throw malformed("only UTF-8 is accepted", at: 0)
        }
        try validateCharacters()
        if starts(with: Byte.xmlDecl, at: pos), pos + 5 < n, isWhitespace(b[pos + 5]) {
            try parseXMLDeclaration()
        }
        try parseMisc(beforeRoot: true)
        try parseStartTag()
        while !stack.isEmpty {
            guard pos < n else {
                throw malformed(
                    "unexpected end of document: <\(name(stack[stack.count - 1].qname))> is not closed", at: n)
            }
            if b[pos] != Byte.lt {
                try parseCharData()
            } else if pos + 1 < n, b[pos + 1] == Byte.slash {
                try parseEndTag()
            } else if pos + 1 < n, b[pos + 1] == Byte.question {
                try skipProcessingInstruction()
            } else if starts(with: Byte.comment, at: pos) {
                try skipComment()
            } else if starts(with: Byte.cdata, at: pos) {
                try parseCDATA()
            } else if pos + 1 < n, b[pos + 1] == Byte.bang {
                throw isDoctype(at: pos) ? doctype(at: pos) : malformed("unexpected markup declaration", at: pos)
            } else {
                try parseStartTag()
            }
        }
        try parseMisc(beforeRoot: false)
        guard let root else { throw malformed("no root element", at: pos) }
        return root
    }

    /// Skips whitespace, comments and processing instructions outside the root element. Before the
    /// root, returns at its start tag.
    mutating func parseMisc(beforeRoot: Bool) throws(XMLError) {
        while true {
            skipWhitespace()
            guard pos < n else {
                if beforeRoot { throw malformed("no root element", at: pos) }
                return
            }
            guard b[pos] == Byte.lt else {
                throw malformed(beforeRoot ? "text before the root element" : "text after the root element", at: pos)
            }
            if pos + 1 < n, b[pos + 1] == Byte.question {
                try skipProcessingInstruction()
            } else if starts(with: Byte.comment, at: pos) {
                try skipComment()
            } else if pos + 1 < n, b[pos + 1] == Byte.bang {
                throw isDoctype(at: pos) ? doctype(at: pos) : malformed("unexpected markup declaration", at: pos)
            } else if beforeRoot {
                return
            } else {
                throw malformed("more than one root element", at: pos)
            }
        }
    }

    /// Reads `<?xml version="1.0" encoding="UTF-8" standalone="yes"?>`; only UTF-8 is accepted.
    mutating func parseXMLDeclaration() throws(XMLError) {
        let start = pos
        pos += 5
        var seen = 0
        while true {
            let spaced = skipWhitespace()
            if pos + 1 < n, b[pos] == Byte.question, b[pos + 1] == Byte.gt {
                pos += 2
                guard seen >= 1 else { throw malformed("the XML declaration has no version", at: start) }
                return
            }
            guard spaced, pos < n else { throw malformed("malformed XML declaration", at: pos) }
            let nameStart = pos
            while pos < n, XMLChars.isASCIINameStart(b[pos]) { pos += 1 }
            let key = string(nameStart, pos)
            skipWhitespace()
            guard pos < n, b[pos] == Byte.equals else { throw malformed("malformed XML declaration", at: pos) }
            pos += 1
            skipWhitespace()
            guard pos < n, b[pos] == Byte.quote || b[pos] == Byte.apostrophe else {
                throw malformed("malformed XML declaration", at: pos)
            }
            let quote = b[pos]
            let valueStart = pos + 1
            pos = valueStart
            while pos < n, b[pos] != quote, b[pos] != Byte.lt { pos += 1 }
            guard pos < n, b[pos] == quote else { throw malformed("malformed XML declaration", at: valueStart) }
            let value = string(valueStart, pos)
            pos += 1
            switch key {
            case "version" where seen == 0:
                guard value.hasPrefix("1."), value.count > 2,
                    value.utf8.dropFirst(2).allSatisfy({ $0 >= 0x30 && $0 <= 0x39 })
                else {
                    throw malformed("unsupported XML version", at: valueStart)
                }
                seen = 1
            case "encoding" where seen == 1:
                guard ["utf-8", "utf8"].contains(value.lowercased()) else {
                    throw malformed("only UTF-8 is accepted", at: valueStart)
                }
                seen = 2
            case "standalone" where seen == 1 || seen == 2:
                guard value == "yes" || value == "no" else {
                    throw malformed("malformed XML declaration", at: valueStart)
                }
                seen = 3
            default:
                throw malformed("malformed XML declaration", at: nameStart)
            }
        }
    }

    // MARK: Tags

    mutating func parseStartTag() throws(XMLError) {
        let tagStart = pos
        if !stack.isEmpty {
            flushText(dropWhitespace: true)
            stack[stack.count - 1].hasElementChild = true
        }
        pos += 1
        let qname = try scanQName()
        elementCount += 1
        guard elementCount <= limits.maxElements else {
            throw limit(XMLError.tooManyElements, "more than \(limits.maxElements) elements", at: tagStart)
        }
        guard stack.count < limits.maxDepth else {
            throw limit(XMLError.tooDeep, "elements nested deeper than \(limits.maxDepth) levels", at: tagStart)
        }
        var raw: [(name: QName, value: String)] = []
        var empty = false
        while true {
            let spaced = skipWhitespace()
            guard pos < n else { throw malformed("unexpected end of document in a start tag", at: tagStart) }
            if b[pos] == Byte.gt {
                pos += 1
                break
            }
            if b[pos] == Byte.slash {
                guard pos + 1 < n, b[pos + 1] == Byte.gt else { throw malformed("expected '>' after '/'", at: pos) }
                pos += 2
                empty = true
                break
            }
            guard spaced else { throw malformed("expected whitespace, '>' or '/>' in a start tag", at: pos) }
            let attributeName = try scanQName()
            skipWhitespace()
            guard pos < n, b[pos] == Byte.equals else {
                throw malformed("expected '=' after attribute \(name(attributeName))", at: pos)
            }
            pos += 1
            skipWhitespace()
            let value = try scanAttributeValue()
            raw.append((attributeName, value))
            guard raw.count <= limits.maxAttributesPerElement else {
                throw limit(
                    XMLError.tooManyAttributes, "more than \(limits.maxAttributesPerElement) attributes on an element",
                    at: attributeName.start)
            }
        }
        var open = try makeElement(qname, raw, at: tagStart)
        if empty {
            open.element.range = (base + tagStart)..<(base + pos)
            endScope(open)
        } else {
            stack.append(open)
        }
    }

    /// Separates namespace declarations from attributes, opens the element's namespace scope and
    /// resolves every name.
    mutating func makeElement(_ qname: QName, _ raw: [(name: QName, value: String)], at tagStart: Int)
        throws(XMLError) -> OpenElement
    {
        var declarations: [String: String] = [:]
        var attributes: [(name: QName, value: String)] = []
        for attribute in raw {
            let prefix = prefix(attribute.name)
            let local = local(attribute.name)
            let value = attribute.value
            if prefix == nil && local == "xmlns" {
                guard value != Self.xmlNamespace, value != Self.xmlnsNamespace else {
                    throw malformed("a reserved namespace cannot be the default", at: attribute.name.start)
                }
                guard declarations.updateValue(value, forKey: "") == nil else {
                    throw malformed("duplicate attribute xmlns", at: attribute.name.start)
                }
            } else if prefix == "xmlns" {
                let reserved =
                    local == "xmlns" || (local == "xml") != (value == Self.xmlNamespace) || value == Self.xmlnsNamespace
                guard !reserved else { throw malformed("reserved namespace prefix or URI", at: attribute.name.start) }
                guard !value.isEmpty else {
                    throw malformed(
                        "\(name(attribute.name)) is empty: a prefix cannot be undeclared", at: attribute.name.start)
                }
                guard declarations.updateValue(value, forKey: local) == nil else {
                    throw malformed("duplicate attribute \(name(attribute.name))", at: attribute.name.start)
                }
            } else {
                attributes.append(attribute)
            }
        }
        for (prefix, uri) in declarations { bindings[prefix, default: []].append(uri) }
        let elementPrefix = prefix(qname)
        let elementName = XMLName(
            namespace: try resolve(elementPrefix, of: qname, element: true, at: tagStart), local: local(qname))
        var resolved: [XMLAttribute] = []
        resolved.reserveCapacity(attributes.count)
        var seen = Set<XMLName>()
        for attribute in attributes {
            let prefix = prefix(attribute.name)
            let name = XMLName(
                namespace: try resolve(prefix, of: attribute.name, element: false, at: attribute.name.start),
                local: local(attribute.name))
            if attributes.count > 1, !seen.insert(name).inserted {
                throw malformed("duplicate attribute \(self.name(attribute.name))", at: attribute.name.start)
            }
            resolved.append(XMLAttribute(name: name, prefix: prefix, value: attribute.value))
        }
        let element = XMLElement(
            name: elementName, prefix: elementPrefix, attributes: resolved, namespaceDeclarations: declarations)
        return OpenElement(element: element, qname: qname, start: tagStart, declared: Array(declarations.keys))
    }

    /// The namespace URI of a name; `offset` is where an error is reported.
    func resolve(_ prefix: String?, of qname: QName, element: Bool, at offset: Int) throws(XMLError) -> String? {
        guard let prefix else {
            guard element, let uri = bindings[""]?.last, !uri.isEmpty else { return nil }
            return uri
        }
        if prefix == "xmlns" { throw malformed("the xmlns prefix cannot be used on \(name(qname))", at: offset) }
        guard let uri = bindings[prefix]?.last else {
            let (line, column) = position(of: offset)
            throw .unboundPrefix(
                "namespace prefix \(XMLError.quoted(prefix)) of \(name(qname)) is not declared", line: line,
                column: column)
        }
        return uri
    }

    mutating func parseEndTag() throws(XMLError) {
        let tagStart = pos
        pos += 2
        let qname = try scanQName()
        skipWhitespace()
        guard pos < n, b[pos] == Byte.gt else { throw malformed("expected '>' in an end tag", at: pos) }
        pos += 1
        let open = stack[stack.count - 1]
        guard same(open.qname, qname) else {
            throw malformed("end tag </\(name(qname))> does not match <\(name(open.qname))>", at: tagStart)
        }
        flushText(dropWhitespace: open.hasElementChild)
        var closed = stack.removeLast()
        closed.element.range = (base + closed.start)..<(base + pos)
        endScope(closed)
    }

    /// Closes the namespace scope of an element and attaches it to its parent (or makes it the root).
    mutating func endScope(_ open: OpenElement) {
        for prefix in open.declared { bindings[prefix]?.removeLast() }
        if stack.isEmpty {
            root = open.element
        } else {
            stack[stack.count - 1].element.children.append(.element(open.element))
        }
    }
}
