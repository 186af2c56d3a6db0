public import Foundation

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
