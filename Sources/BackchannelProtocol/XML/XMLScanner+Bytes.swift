public import Foundation

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
