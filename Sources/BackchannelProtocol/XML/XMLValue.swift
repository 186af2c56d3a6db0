/// Self-describing XML for JSON values, such as
/// `<billing_information><kWh_month>45.54</kWh_month></billing_information>`.
///
/// Conventions (elements and attributes here are in no namespace):
/// - An object is one child element per member, named by the key, in sorted key order. A key that
///   is not an XML NCName, starts with `xml` in any case, or is longer than 64 bytes is written as
///   `<entry key="the key">…</entry>`. An empty object is `<x type="object"/>`.
/// - An array is `<x type="array">` with one `<item>` child per member, in order; when decoding, the
///   children of a `type="array"` element may have any name.
/// - A number is its shortest round-trip text (`45.54`; integers without `.0`); a non-finite number,
///   which JSON cannot carry, is written as null. `true` and `false` are Booleans. null is
///   `<x nil="true"/>`.
/// - A string is its text. It gets `type="string"` when it is empty or when its text, with XML
///   whitespace trimmed, would read as a number or Boolean (`<x type="string">42</x>`).
/// - Reading an element without `type`: child elements make an object (a repeated child name is an
///   error: mark arrays with `type="array"`); otherwise the text, trimmed, is a number if it is a JSON
///   number, a Boolean if it is `true` or `false`, and else the untrimmed text is a string (no text
///   at all is the empty string). Text next to child elements, other than whitespace, is an error.
/// - Namespaces are ignored when decoding (local names only), as are attributes other than `type`,
///   `nil` and (on `entry`) `key`.
/// - Each level of nesting is an element, so a value must nest less deeply than the reader's
///   ``XMLLimits/maxDepth`` (counting the outer element) to be read back.
/// - Characters XML 1.0 cannot carry (U+0000 to U+0008, U+000B, U+000C, U+000E to U+001F, U+FFFE,
///   U+FFFF) are written as U+FFFD, so strings containing them do not round-trip.
public enum XMLValue {
    /// Writes `value` as an element named `name` (no namespace), e.g.
    /// `encode(.object(["kWh": .number(4.5)]), as: "data")` is `<data><kWh>4.5</kWh></data>`.
    /// A `name` that cannot be an element name is written as `<entry key="name">`.
    public static func encode(_ value: JSONValue, as name: String) -> String {
        var out = ""
        write(value, name: name, to: &out)
        return out
    }

    /// Reads an element written by ``encode(_:as:)`` (or by hand in the same conventions) back into a
    /// JSON value. Failures are ``XMLError/isMalformed`` with no position.
    public static func decode(_ element: XMLElement) throws(XMLError) -> JSONValue {
        let type = element.attribute("type")
        if let isNil = element.attribute("nil") {
            guard isNil == "true", type == nil, element.children.isEmpty else {
                throw .malformed("<\(label(element))> has nil=\"true\" but also a type or content")
            }
            return .null
        }
        let children = element.elements
        let hasText = element.children.contains { node in
            if case .text(let text) = node {
                return !text.unicodeScalars.allSatisfy { XMLChars.isWhitespace($0.value) }
            }
            return false
        }
        switch type {
        case nil:
            guard children.isEmpty else {
                guard !hasText else { throw .malformed("<\(label(element))> mixes text and elements") }
                return .object(try members(of: children))
            }
            return plainReading(element.text)
        case "string":
            guard children.isEmpty else { throw .malformed("<\(label(element))> has type=\"string\" but has elements") }
            return .string(element.text)
        case "object":
            guard !hasText else { throw .malformed("<\(label(element))> has type=\"object\" but has text") }
            return .object(try members(of: children))
        case "array":
            guard !hasText else { throw .malformed("<\(label(element))> has type=\"array\" but has text") }
            var items: [JSONValue] = []
            items.reserveCapacity(children.count)
            for child in children { items.append(try decode(child)) }
            return .array(items)
        default:
            throw .malformed("<\(label(element))> has an unknown type")
        }
    }

    private static func members(of children: [XMLElement]) throws(XMLError) -> [String: JSONValue] {
        var object: [String: JSONValue] = [:]
        for child in children {
            let key = child.name.local == "entry" ? child.attribute("key") ?? "entry" : child.name.local
            guard object[key] == nil else {
                throw .malformed("repeated element <\(label(child))> — mark arrays with type=\"array\"")
            }
            object[key] = try decode(child)
        }
        return object
    }

    private static func label(_ element: XMLElement) -> String { XMLError.quoted(element.name.local) }

    /// How untyped text reads: a number, a Boolean, or else the text itself as a string.
    static func plainReading(_ text: String) -> JSONValue {
        let scalars = text.unicodeScalars
        guard let first = scalars.firstIndex(where: { !XMLChars.isWhitespace($0.value) }),
            let last = scalars.lastIndex(where: { !XMLChars.isWhitespace($0.value) })
        else { return .string(text) }
        let trimmed = String(scalars[first...last])
        if trimmed == "true" { return .bool(true) }
        if trimmed == "false" { return .bool(false) }
        if isJSONNumber(trimmed), let number = Double(trimmed), number.isFinite { return .number(number) }
        return .string(text)
    }

    /// Whether `text` matches the JSON number grammar: `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`.
    static func isJSONNumber(_ text: String) -> Bool {
        let bytes = Array(text.utf8)
        var i = 0
        func digits() -> Int {
            let start = i
            while i < bytes.count, bytes[i] >= 0x30, bytes[i] <= 0x39 { i += 1 }
            return i - start
        }
        if i < bytes.count, bytes[i] == 0x2D { i += 1 }
        guard i < bytes.count else { return false }
        if bytes[i] == 0x30 {
            i += 1
        } else if digits() == 0 {
            return false
        }
        if i < bytes.count, bytes[i] == 0x2E {
            i += 1
            guard digits() > 0 else { return false }
        }
        if i < bytes.count, bytes[i] == 0x65 || bytes[i] == 0x45 {
            i += 1
            if i < bytes.count, bytes[i] == 0x2B || bytes[i] == 0x2D { i += 1 }
            guard digits() > 0 else { return false }
        }
        return i == bytes.count
    }

    /// The shortest text that reads back as `number`, or `nil` when it is not finite.
    static func numberText(_ number: Double) -> String? {
        guard number.isFinite else { return nil }
        if number.rounded() == number, abs(number) < 9_007_199_254_740_992 { return String(Int64(number)) }
        return "\(number)"
    }

    private static func write(_ value: JSONValue, name: String, to out: inout String) {
        let lowered = name.utf8.prefix(3).map { $0 | 0x20 }
        let plain = XMLWriter.isValidName(name) && name.utf8.count <= 64 && lowered != Array("xml".utf8)
        let tag = plain ? name : "entry"
        out += "<" + tag
        if !plain { out += " key=\"" + XMLWriter.escapeAttribute(name) + "\"" }
        func close(_ content: String) { out += ">" + content + "</" + tag + ">" }
        switch value {
        case .null:
            out += " nil=\"true\"/>"
        case .bool(let flag):
            close(flag ? "true" : "false")
        case .number(let number):
            if let text = numberText(number) { close(text) } else { out += " nil=\"true\"/>" }
        case .string(let string):
            if string.isEmpty {
                out += " type=\"string\"/>"
            } else {
                if plainReading(string) != .string(string) { out += " type=\"string\"" }
                close(XMLWriter.escapeText(string))
            }
        case .array(let items):
            out += " type=\"array\""
            guard !items.isEmpty else {
                out += "/>"
                return
            }
            out += ">"
            for item in items { write(item, name: "item", to: &out) }
            out += "</" + tag + ">"
        case .object(let members):
            guard !members.isEmpty else {
                out += " type=\"object\"/>"
                return
            }
            out += ">"
            for key in members.keys.sorted() { write(members[key]!, name: key, to: &out) }
            out += "</" + tag + ">"
        }
    }
}
