import Foundation

/// The formats a device's readings or events can be exported in.
public enum ExportFormat: String, Sendable, Hashable, CaseIterable, Codable {
    /// RFC 4180 CSV: fixed columns, then one column per data value.
    case csv
    /// Self-describing XML: every value is named by its tag.
    case xml

    /// The media type of the format.
    public var contentType: String {
        switch self {
        case .csv: "text/csv; charset=utf-8"
        case .xml: "application/xml; charset=utf-8"
        }
    }
}

/// CSV export of stored readings and events.
///
/// Columns: `device,id,kind,name,at,receivedAt`, then one column per value found in the
/// exported items' data, named by its path (`billing_information.kWh_month`), in sorted order.
/// Nested objects are flattened with `.`; an array is written as its compact JSON text; a
/// missing value is an empty field. Text that a spreadsheet would run as a formula (starting
/// with `=`, `+`, `-`, `@`, tab or CR, and not a number) gets a leading `'`.
public enum CSVExport {
    /// The fixed columns before the data columns.
    public static let fixedColumns = ["device", "id", "kind", "name", "at", "receivedAt"]

    /// The data columns of one item's data.
    public static func columns(of data: JSONValue) -> [String] {
        flatten(data, prefix: "").map(\.0)
    }

    /// The header line (with CRLF).
    public static func header(dataColumns: [String]) -> String {
        line(fixedColumns + dataColumns)
    }

    /// One item as a line (with CRLF).
    public static func row(_ item: UplinkView, dataColumns: [String]) -> String {
        let values = Dictionary(flatten(item.data, prefix: ""), uniquingKeysWith: { first, _ in first })
        let fixed = [
            item.device, item.id, item.kind.rawValue, item.name, item.at.description, item.receivedAt.description,
        ]
        return line(fixed + dataColumns.map { values[$0] ?? "" })
    }

    /// Fields joined by commas, each quoted when it must be, ending in CRLF.
    static func line(_ fields: [String]) -> String {
        fields.map(field).joined(separator: ",") + "\r\n"
    }

    /// One field, RFC 4180 quoted when needed, defused against formula injection.
    static func field(_ raw: String) -> String {
        var text = raw
        if let first = text.first, "=+-@\t\r".contains(first), Double(text) == nil { text = "'" + text }
        guard text.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" || $0 == "\r" }) else { return text }
        return "\"" + text.replacingOccurrences(of: "\"", with: "\"\"") + "\""
    }

    /// (path, text) for every scalar or array in `value`.
    static func flatten(_ value: JSONValue, prefix: String) -> [(String, String)] {
        switch value {
        case .object(let members):
            return members.keys.sorted().flatMap { key in
                flatten(members[key]!, prefix: prefix.isEmpty ? key : prefix + "." + key)
            }
        case .array:
            let text = (try? WireJSON.encode(value)).map { String(decoding: $0, as: UTF8.self) } ?? ""
            return [(prefix.isEmpty ? "value" : prefix, text)]
        case .string(let string):
            return [(prefix.isEmpty ? "value" : prefix, string)]
        case .number(let number):
            return [(prefix.isEmpty ? "value" : prefix, SOAPText.number(number))]
        case .bool(let bool):
            return [(prefix.isEmpty ? "value" : prefix, String(bool))]
        case .null:
            return [(prefix.isEmpty ? "value" : prefix, "")]
        }
    }
}

/// Self-describing XML export of stored readings and events.
///
/// ```xml
/// <uplink device="m1" kind="reading" from="…" to="…">
///   <reading id="r1" at="…" receivedAt="…"><billing_information><kWh_month>45.54</kWh_month></billing_information></reading>
/// </uplink>
/// ```
/// Each item is a `<reading>` or `<event>` holding one element named by the item's name, whose
/// content is the data in ``XMLValue``'s conventions.
public enum XMLExport {
    /// The document's start.
    public static func open(device: String, kind: UplinkKind?, from: Timestamp, to: Timestamp) -> String {
        var x = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<uplink device=\"\(XMLWriter.escapeAttribute(device))\""
        if let kind { x += " kind=\"\(kind.rawValue)\"" }
        return x + " from=\"\(from)\" to=\"\(to)\">\n"
    }

    /// One item.
    public static func item(_ item: UplinkView) -> String {
        "<\(item.kind.rawValue) id=\"\(XMLWriter.escapeAttribute(item.id))\" at=\"\(item.at)\""
            + " receivedAt=\"\(item.receivedAt)\">" + XMLValue.encode(item.data, as: item.name)
            + "</\(item.kind.rawValue)>\n"
    }

    /// The document's end.
    public static let close = "</uplink>\n"

    /// Reads items written by ``item(_:)`` back (for devices posting XML readings): each child
    /// element of `root` is one item, with `id` and `at` attributes and one element named by
    /// the item's name holding its data.
    public static func items(in root: XMLElement, kind: UplinkKind) throws(XMLError) -> [UplinkItem] {
        try root.elements.enumerated().map { index, element throws(XMLError) -> UplinkItem in
            let path = "\(root.name.local)/\(element.name.local)[\(index)]"
            guard let id = element.attribute("id") else { throw .malformed("\(path): has no @id") }
            guard let at = element.attribute("at").flatMap(Timestamp.init(rfc3339:)) else {
                throw .malformed("\(path)/@at: not an RFC 3339 time with a time zone")
            }
            let content = element.elements
            guard content.count == 1 else {
                throw .malformed("\(path): must hold exactly one element, named by the \(kind.rawValue)")
            }
            let name =
                content[0].name.local == "entry" ? (content[0].attribute("key") ?? "entry") : content[0].name.local
            return UplinkItem(id: id, kind: kind, name: name, at: at, data: try XMLValue.decode(content[0]))
        }
    }
}
