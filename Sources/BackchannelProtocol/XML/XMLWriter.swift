/// Escaping and serialisation of XML 1.0.
///
/// XML 1.0 cannot carry some characters at all, even as character references: U+0000 to U+0008,
/// U+000B, U+000C, U+000E to U+001F, U+FFFE and U+FFFF. The escaping functions replace each of them
/// with U+FFFD (the replacement character), so their output is always well-formed.
public enum XMLWriter {
    /// Escapes character data: `&`, `<` and `>` become references, CR becomes `&#13;` (so it
    /// survives line-end normalisation), and characters XML cannot carry become U+FFFD.
    public static func escapeText(_ s: String) -> String {
        escape(s, attribute: false)
    }

    /// Escapes an attribute value for double quotes: `&`, `<`, `>` and `"` become references, and tab,
    /// LF and CR become character references (so attribute normalisation keeps them); characters XML
    /// cannot carry become U+FFFD.
    public static func escapeAttribute(_ s: String) -> String {
        escape(s, attribute: true)
    }

    /// Whether `s` is a valid XML NCName: a name without a colon, such as `kWh_month` or `données`.
    public static func isValidName(_ s: String) -> Bool {
        var first = true
        for scalar in s.unicodeScalars {
            let ok = first ? XMLChars.isNameStart(scalar.value) : XMLChars.isNameChar(scalar.value)
            guard ok else { return false }
            first = false
        }
        return !first
    }

    /// Writes an element with its prefix, namespace declarations (sorted by prefix), attributes and
    /// children as stored; it does not invent declarations, so a parsed tree serialises to a document
    /// that parses back to an equal tree. An element with no children is written as an empty-element tag.
    public static func serialize(_ element: XMLElement) -> String {
        var out = ""
        write(element, to: &out)
        return out
    }

    private static func write(_ element: XMLElement, to out: inout String) {
        let tag = qualified(element.prefix, element.name.local)
        out += "<" + tag
        for (prefix, uri) in element.namespaceDeclarations.sorted(by: { $0.key < $1.key }) {
            out += prefix.isEmpty ? " xmlns=\"" : " xmlns:\(prefix)=\""
            out += escapeAttribute(uri) + "\""
        }
        for attribute in element.attributes {
            out +=
                " " + qualified(attribute.prefix, attribute.name.local) + "=\"" + escapeAttribute(attribute.value)
                + "\""
        }
        guard !element.children.isEmpty else {
            out += "/>"
            return
        }
        out += ">"
        for child in element.children {
            switch child {
            case .element(let child): write(child, to: &out)
            case .text(let text): out += escapeText(text)
            }
        }
        out += "</" + tag + ">"
    }

    private static func qualified(_ prefix: String?, _ local: String) -> String {
        guard let prefix, !prefix.isEmpty else { return local }
        return prefix + ":" + local
    }

    private static func escape(_ s: String, attribute: Bool) -> String {
        let needsWork = s.unicodeScalars.contains { scalar in
            let v = scalar.value
            return v == 0x26 || v == 0x3C || v == 0x3E || v == 0x0D
                || (attribute && (v == 0x22 || v == 0x09 || v == 0x0A))
                || !XMLChars.isChar(v)
        }
        guard needsWork else { return s }
        var out = ""
        out.reserveCapacity(s.utf8.count + 16)
        for scalar in s.unicodeScalars {
            switch scalar.value {
            case 0x26: out += "&amp;"
            case 0x3C: out += "&lt;"
            case 0x3E: out += "&gt;"
            case 0x0D: out += "&#13;"
            case 0x22 where attribute: out += "&quot;"
            case 0x09 where attribute: out += "&#9;"
            case 0x0A where attribute: out += "&#10;"
            case let v where !XMLChars.isChar(v): out.unicodeScalars.append("\u{FFFD}")
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out
    }
}

/// Character classes of XML 1.0 (fifth edition) and Namespaces in XML 1.0.
enum XMLChars {
    /// `Char`: the characters a document may contain.
    static func isChar(_ v: UInt32) -> Bool {
        switch v {
        case 0x09, 0x0A, 0x0D, 0x20...0xD7FF, 0xE000...0xFFFD, 0x10000...0x10FFFF: true
        default: false
        }
    }

    /// XML whitespace: space, tab, LF, CR.
    static func isWhitespace(_ v: UInt32) -> Bool {
        v == 0x20 || v == 0x09 || v == 0x0A || v == 0x0D
    }

    /// `NameStartChar` without the colon.
    static func isNameStart(_ v: UInt32) -> Bool {
        if v < 0x80 { return isASCIINameStart(UInt8(v)) }
        switch v {
        case 0xC0...0xD6, 0xD8...0xF6, 0xF8...0x2FF, 0x370...0x37D, 0x37F...0x1FFF, 0x200C...0x200D,
            0x2070...0x218F, 0x2C00...0x2FEF, 0x3001...0xD7FF, 0xF900...0xFDCF, 0xFDF0...0xFFFD, 0x10000...0xEFFFF:
            return true
        default: return false
        }
    }

    /// `NameChar` without the colon.
    static func isNameChar(_ v: UInt32) -> Bool {
        if v < 0x80 { return isASCIINameChar(UInt8(v)) }
        return isNameStart(v) || v == 0xB7 || (0x300...0x36F).contains(v) || v == 0x203F || v == 0x2040
    }

    /// An ASCII letter or `_`.
    static func isASCIINameStart(_ c: UInt8) -> Bool {
        (c >= 0x61 && c <= 0x7A) || (c >= 0x41 && c <= 0x5A) || c == 0x5F
    }

    /// An ASCII letter, digit, `_`, `-` or `.`.
    static func isASCIINameChar(_ c: UInt8) -> Bool {
        isASCIINameStart(c) || (c >= 0x30 && c <= 0x39) || c == 0x2D || c == 0x2E
    }
}
