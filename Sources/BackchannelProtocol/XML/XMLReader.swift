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
private struct QName {
    var start: Int
    var colon: Int
    var end: Int
}

/// An element whose end tag has not been read yet.
private struct OpenElement {
    var element: XMLElement
    var qname: QName
    var start: Int
    var declared: [String]
    var hasElementChild = false
}

private enum Byte {
    static let lt: UInt8 = 0x3C, gt: UInt8 = 0x3E, amp: UInt8 = 0x26, slash: UInt8 = 0x2F, colon: UInt8 = 0x3A
    static let bang: UInt8 = 0x21, question: UInt8 = 0x3F, equals: UInt8 = 0x3D, hash: UInt8 = 0x23
    static let semicolon: UInt8 = 0x3B, dash: UInt8 = 0x2D, rbracket: UInt8 = 0x5D
    static let quote: UInt8 = 0x22, apostrophe: UInt8 = 0x27, space: UInt8 = 0x20, tab: UInt8 = 0x09
    static let lf: UInt8 = 0x0A, cr: UInt8 = 0x0D
    static let comment = Array("<!--".utf8), cdata = Array("<![CDATA[".utf8), doctype = Array("DOCTYPE".utf8)
    static let xmlDecl = Array("<?xml".utf8)
}

/// The parser's state over the bytes of one document.
private struct XMLScanner {
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

// MARK: - Character data and markup that is skipped

extension XMLScanner {
    mutating func parseCharData() throws(XMLError) {
        if text.isEmpty { textStart = pos }
        var segment = pos
        while pos < n {
            let c = b[pos]
            if c == Byte.lt { break }
            if c == Byte.amp {
                appendText(segment, pos)
                let (scalar, next) = try readReference(at: pos)
                Self.appendUTF8(scalar, to: &text)
                if !XMLChars.isWhitespace(scalar) { textAllWhitespace = false }
                pos = next
                segment = pos
                continue
            }
            if c == Byte.cr {
                appendText(segment, pos)
                text.append(Byte.lf)
                pos += 1
                if pos < n, b[pos] == Byte.lf { pos += 1 }
                segment = pos
                continue
            }
            if c == Byte.gt, pos >= 2, b[pos - 1] == Byte.rbracket, b[pos - 2] == Byte.rbracket {
                throw malformed("']]>' is not allowed in text", at: pos - 2)
            }
            if c != Byte.space, c != Byte.lf, c != Byte.tab { textAllWhitespace = false }
            pos += 1
        }
        appendText(segment, pos)
        try checkTextLength()
    }

    mutating func parseCDATA() throws(XMLError) {
        if text.isEmpty { textStart = pos }
        let start = pos
        pos += Byte.cdata.count
        var segment = pos
        while true {
            guard pos + 2 < n else { throw malformed("unterminated CDATA section", at: start) }
            let c = b[pos]
            if c == Byte.rbracket, b[pos + 1] == Byte.rbracket, b[pos + 2] == Byte.gt { break }
            if c == Byte.cr {
                appendText(segment, pos)
                text.append(Byte.lf)
                pos += 1
                if pos < n, b[pos] == Byte.lf { pos += 1 }
                segment = pos
                continue
            }
            if c != Byte.space, c != Byte.lf, c != Byte.tab { textAllWhitespace = false }
            pos += 1
        }
        appendText(segment, pos)
        pos += 3
        try checkTextLength()
    }

    mutating func appendText(_ from: Int, _ to: Int) {
        if to > from { text.append(contentsOf: UnsafeBufferPointer(rebasing: b[from..<to])) }
    }

    func checkTextLength() throws(XMLError) {
        guard text.count <= limits.maxTextBytes else {
            throw limit(XMLError.textTooLong, "a text node is longer than \(limits.maxTextBytes) bytes", at: textStart)
        }
    }

    /// Moves pending text into the open element. Whitespace-only text is dropped when `dropWhitespace`.
    mutating func flushText(dropWhitespace: Bool) {
        guard !text.isEmpty else { return }
        if !(dropWhitespace && textAllWhitespace) {
            stack[stack.count - 1].element.children.append(.text(String(decoding: text, as: UTF8.self)))
        }
        text.removeAll(keepingCapacity: true)
        textAllWhitespace = true
    }

    /// Reads `&name;` or `&#...;` at `start`, returning the character and the offset after the `;`.
    func readReference(at start: Int) throws(XMLError) -> (UInt32, Int) {
        var p = start + 1
        if p < n, b[p] == Byte.hash {
            p += 1
            let hex = p < n && b[p] == 0x78
            if hex { p += 1 }
            var value: UInt32 = 0
            var digits = 0
            while p < n, let digit = Self.digit(b[p], hex: hex) {
                if value <= 0x10FFFF { value = value * (hex ? 16 : 10) + digit }
                digits += 1
                p += 1
            }
            guard digits > 0, p < n, b[p] == Byte.semicolon else {
                throw malformed("malformed character reference", at: start)
            }
            guard XMLChars.isChar(value) else {
                throw malformed("character reference to a character XML does not allow", at: start)
            }
            return (value, p + 1)
        }
        let nameStart = p
        while p < n, p - nameStart <= limits.maxNameBytes, nameCharLength(at: p, first: p == nameStart) > 0 {
            p += nameCharLength(at: p, first: p == nameStart)
        }
        guard p > nameStart, p < n, b[p] == Byte.semicolon else {
            throw malformed("'&' must start an entity or character reference", at: start)
        }
        switch string(nameStart, p) {
        case "lt": return (0x3C, p + 1)
        case "gt": return (0x3E, p + 1)
        case "amp": return (0x26, p + 1)
        case "quot": return (0x22, p + 1)
        case "apos": return (0x27, p + 1)
        default: throw malformed("undefined entity reference", at: start)
        }
    }

    static func digit(_ c: UInt8, hex: Bool) -> UInt32? {
        switch c {
        case 0x30...0x39: UInt32(c - 0x30)
        case 0x61...0x66 where hex: UInt32(c - 0x61 + 10)
        case 0x41...0x46 where hex: UInt32(c - 0x41 + 10)
        default: nil
        }
    }

    static func appendUTF8(_ v: UInt32, to out: inout [UInt8]) {
        switch v {
        case ..<0x80:
            out.append(UInt8(v))
        case ..<0x800:
            out.append(UInt8(0xC0 | (v >> 6)))
            out.append(UInt8(0x80 | (v & 0x3F)))
        case ..<0x10000:
            out.append(UInt8(0xE0 | (v >> 12)))
            out.append(UInt8(0x80 | ((v >> 6) & 0x3F)))
            out.append(UInt8(0x80 | (v & 0x3F)))
        default:
            out.append(UInt8(0xF0 | (v >> 18)))
            out.append(UInt8(0x80 | ((v >> 12) & 0x3F)))
            out.append(UInt8(0x80 | ((v >> 6) & 0x3F)))
            out.append(UInt8(0x80 | (v & 0x3F)))
        }
    }

    /// Reads a quoted attribute value: references replaced, literal tab, CR, LF and CRLF read as a space.
    mutating func scanAttributeValue() throws(XMLError) -> String {
        guard pos < n, b[pos] == Byte.quote || b[pos] == Byte.apostrophe else {
            throw malformed("expected a quoted attribute value", at: pos)
        }
        let quote = b[pos]
        let start = pos
        pos += 1
        scratch.removeAll(keepingCapacity: true)
        var segment = pos
        while true {
            guard pos < n else { throw malformed("unterminated attribute value", at: start) }
            let c = b[pos]
            if c == quote { break }
            if c == Byte.lt { throw malformed("'<' is not allowed in an attribute value", at: pos) }
            if c == Byte.amp || c == Byte.tab || c == Byte.lf || c == Byte.cr {
                if pos > segment { scratch.append(contentsOf: UnsafeBufferPointer(rebasing: b[segment..<pos])) }
                if c == Byte.amp {
                    let (scalar, next) = try readReference(at: pos)
                    Self.appendUTF8(scalar, to: &scratch)
                    pos = next
                } else {
                    scratch.append(Byte.space)
                    pos += c == Byte.cr && pos + 1 < n && b[pos + 1] == Byte.lf ? 2 : 1
                }
                segment = pos
                continue
            }
            pos += 1
        }
        if pos > segment { scratch.append(contentsOf: UnsafeBufferPointer(rebasing: b[segment..<pos])) }
        pos += 1
        guard scratch.count <= limits.maxTextBytes else {
            throw limit(
                XMLError.textTooLong, "an attribute value is longer than \(limits.maxTextBytes) bytes", at: start)
        }
        return String(decoding: scratch, as: UTF8.self)
    }

    /// Skips `<!-- ... -->`; `--` may only appear in the closing `-->`.
    mutating func skipComment() throws(XMLError) {
        let start = pos
        pos += Byte.comment.count
        while pos + 1 < n {
            if b[pos] == Byte.dash, b[pos + 1] == Byte.dash {
                guard pos + 2 < n, b[pos + 2] == Byte.gt else {
                    throw malformed("'--' is not allowed inside a comment", at: pos)
                }
                pos += 3
                return
            }
            pos += 1
        }
        throw malformed("unterminated comment", at: start)
    }

    /// Skips `<?target ...?>`; the target `xml` (in any case) is only allowed at the very start.
    mutating func skipProcessingInstruction() throws(XMLError) {
        let start = pos
        pos += 2
        let target = try scanQName()
        if target.end - target.start == 3, string(target.start, target.end).lowercased() == "xml" {
            throw malformed("the XML declaration is only allowed at the start of the document", at: start)
        }
        guard pos < n, isWhitespace(b[pos]) || b[pos] == Byte.question else {
            throw malformed("malformed processing instruction", at: start)
        }
        while pos + 1 < n {
            if b[pos] == Byte.question, b[pos + 1] == Byte.gt {
                pos += 2
                return
            }
            pos += 1
        }
        throw malformed("unterminated processing instruction", at: start)
    }
}

// MARK: - Bytes, names and positions

extension XMLScanner {
    /// Checks that the document is valid UTF-8 made only of characters XML allows.
    func validateCharacters() throws(XMLError) {
        var i = pos
        while i < n {
            let c = b[i]
            if c < 0x80 {
                guard c >= 0x20 || c == Byte.tab || c == Byte.lf || c == Byte.cr else {
                    throw malformed("a control character XML does not allow", at: i)
                }
                i += 1
                continue
            }
            let length = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : 2
            guard c >= 0xC2, c <= 0xF4, i + length <= n else { throw malformed("invalid UTF-8", at: i) }
            var scalar = UInt32(c) & (length == 2 ? 0x1F : length == 3 ? 0x0F : 0x07)
            for k in 1..<length {
                let next = b[i + k]
                guard next & 0xC0 == 0x80 else { throw malformed("invalid UTF-8", at: i) }
                scalar = scalar << 6 | UInt32(next & 0x3F)
            }
            let shortest: UInt32 = length == 2 ? 0x80 : length == 3 ? 0x800 : 0x10000
            guard scalar >= shortest, scalar <= 0x10FFFF, scalar & 0xFFFF_F800 != 0xD800 else {
                throw malformed("invalid UTF-8", at: i)
            }
            guard scalar != 0xFFFE, scalar != 0xFFFF else { throw malformed("a character XML does not allow", at: i) }
            i += length
        }
    }

    func isWhitespace(_ c: UInt8) -> Bool {
        c == Byte.space || c == Byte.lf || c == Byte.tab || c == Byte.cr
    }

    /// Skips whitespace; returns whether there was any.
    @discardableResult
    mutating func skipWhitespace() -> Bool {
        let start = pos
        while pos < n, isWhitespace(b[pos]) { pos += 1 }
        return pos > start
    }

    func starts(with literal: [UInt8], at p: Int) -> Bool {
        guard p + literal.count <= n else { return false }
        for i in 0..<literal.count where b[p + i] != literal[i] { return false }
        return true
    }

    /// Whether `<!DOCTYPE` (in any case) starts at `p`.
    func isDoctype(at p: Int) -> Bool {
        guard p + 2 + Byte.doctype.count <= n else { return false }
        for i in 0..<Byte.doctype.count where b[p + 2 + i] & 0xDF != Byte.doctype[i] { return false }
        return true
    }

    /// The byte length of the name character at `p`, or 0 when there is none (a colon is not one).
    func nameCharLength(at p: Int, first: Bool) -> Int {
        let c = b[p]
        if c < 0x80 { return (first ? XMLChars.isASCIINameStart(c) : XMLChars.isASCIINameChar(c)) ? 1 : 0 }
        let length = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : 2
        var scalar = UInt32(c) & (length == 2 ? 0x1F : length == 3 ? 0x0F : 0x07)
        for k in 1..<length { scalar = scalar << 6 | UInt32(b[p + k] & 0x3F) }
        return (first ? XMLChars.isNameStart(scalar) : XMLChars.isNameChar(scalar)) ? length : 0
    }

    /// Reads a qualified name (`local` or `prefix:local`) at `pos`.
    mutating func scanQName() throws(XMLError) -> QName {
        let start = pos
        var colon = -1
        var first = true
        while pos < n {
            if b[pos] == Byte.colon {
                guard colon < 0, !first else { throw malformed("malformed qualified name", at: start) }
                colon = pos
                pos += 1
                first = true
                continue
            }
            let length = nameCharLength(at: pos, first: first)
            if length == 0 { break }
            pos += length
            first = false
            guard pos - start <= limits.maxNameBytes else {
                throw limit(XMLError.nameTooLong, "a name is longer than \(limits.maxNameBytes) bytes", at: start)
            }
        }
        guard !first else { throw malformed(pos == start ? "expected a name" : "malformed qualified name", at: start) }
        return QName(start: start, colon: colon, end: pos)
    }

    func string(_ from: Int, _ to: Int) -> String {
        String(decoding: UnsafeBufferPointer(rebasing: b[from..<to]), as: UTF8.self)
    }

    func prefix(_ q: QName) -> String? { q.colon < 0 ? nil : string(q.start, q.colon) }
    func local(_ q: QName) -> String { string(q.colon < 0 ? q.start : q.colon + 1, q.end) }
    /// The name as written, cut to 64 bytes, for messages.
    func name(_ q: QName) -> String { XMLError.quoted(string(q.start, q.end)) }

    func same(_ x: QName, _ y: QName) -> Bool {
        guard x.end - x.start == y.end - y.start else { return false }
        for i in 0..<(x.end - x.start) where b[x.start + i] != b[y.start + i] { return false }
        return true
    }

    /// Line and column (in characters, from 1) of the byte at `offset`.
    func position(of offset: Int) -> (line: Int, column: Int) {
        var line = 1
        var column = 1
        var i = origin
        let end = min(offset, n)
        while i < end {
            let c = b[i]
            if c == Byte.lf || (c == Byte.cr && !(i + 1 < n && b[i + 1] == Byte.lf)) {
                line += 1
                column = 1
            } else if c & 0xC0 != 0x80 && c != Byte.cr {
                column += 1
            }
            i += 1
        }
        return (line, column)
    }

    func malformed(_ message: String, at offset: Int) -> XMLError {
        let (line, column) = position(of: offset)
        return .malformed(message, line: line, column: column)
    }

    func limit(_ make: (String, Int, Int) -> XMLError, _ message: String, at offset: Int) -> XMLError {
        let (line, column) = position(of: offset)
        return make(message, line, column)
    }

    func doctype(at offset: Int) -> XMLError {
        let (line, column) = position(of: offset)
        return .doctypeForbidden(line: line, column: column)
    }
}
