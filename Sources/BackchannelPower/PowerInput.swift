import Foundation

/// Input that a power computation refuses: what is wrong and where, never a silent default.
public struct PowerInputError: Error, Sendable, Hashable, CustomStringConvertible {
    /// What is wrong, naming the field, line or column.
    public var message: String

    /// Creates an input error.
    public init(_ message: String) {
        self.message = message
    }

    public var description: String { message }
}

/// A parsed CSV table (RFC 4180: quoted fields, doubled quotes, CRLF or LF line ends).
///
/// Power inputs (intervals, RMS series, outage records, tariffs' companions) are CSV files that
/// people write and check by hand, so every error names the line and the column.
public struct CSVTable: Sendable, Hashable {
    /// The column names from the first line, trimmed.
    public var header: [String]
    /// The data rows, each with its 1-based line number in the file.
    public var rows: [(line: Int, fields: [String])] {
        zip(lines, records).map { ($0, $1) }
    }
    private var lines: [Int]
    private var records: [[String]]

    /// Parses `text`. The first non-empty line is the header; blank lines and lines starting
    /// with `#` are skipped. `delimiter` is `,` unless given.
    public init(parsing text: String, delimiter: Character = ",") throws(PowerInputError) {
        var header: [String]?
        var lines: [Int] = []
        var records: [[String]] = []
        var field = ""
        var fields: [String] = []
        var quoted = false
        var afterQuote = false
        var line = 1
        var recordLine = 1
        var chars = Array(text)
        if chars.last != "\n" { chars.append("\n") }
        var index = 0
        func finishRecord() throws(PowerInputError) {
            fields.append(field)
            field = ""
            defer { fields = [] }
            let blank = fields.count == 1 && fields[0].trimmingCharacters(in: .whitespaces).isEmpty
            if blank || fields[0].hasPrefix("#") { return }
            let trimmed = fields.map { $0.trimmingCharacters(in: .whitespaces) }
            guard let columns = header else {
                header = trimmed
                return
            }
            guard trimmed.count == columns.count else {
                throw PowerInputError(
                    "line \(recordLine): \(trimmed.count) fields, the header has \(columns.count)")
            }
            lines.append(recordLine)
            records.append(trimmed)
        }
        while index < chars.count {
            let char = chars[index]
            index += 1
            if quoted {
                if char == "\"" {
                    if index < chars.count, chars[index] == "\"" {
                        field.append("\"")
                        index += 1
                    } else {
                        quoted = false
                        afterQuote = true
                    }
                } else {
                    if char == "\n" { line += 1 }
                    field.append(char)
                }
                continue
            }
            switch char {
            case "\"" where field.trimmingCharacters(in: .whitespaces).isEmpty && !afterQuote:
                field = ""
                quoted = true
            case delimiter:
                fields.append(field)
                field = ""
                afterQuote = false
            case "\r\n", "\n":
                try finishRecord()
                afterQuote = false
                line += 1
                recordLine = line
            case "\r":
                continue
            default:
                if afterQuote, char != " " {
                    throw PowerInputError("line \(line): text after a closing quote")
                }
                field.append(char)
            }
        }
        if quoted { throw PowerInputError("line \(recordLine): a quoted field is not closed") }
        guard let header else { throw PowerInputError("the file is empty: no header line") }
        self.header = header
        self.lines = lines
        self.records = records
    }

    /// The index of the first column whose name matches one of `names` (case-insensitive).
    public func column(_ names: String...) -> Int? {
        let wanted = Set(names.map { $0.lowercased() })
        return header.firstIndex { wanted.contains($0.lowercased()) }
    }

    /// The index of a column that must exist.
    public func requiredColumn(_ names: String...) throws(PowerInputError) -> Int {
        let wanted = Set(names.map { $0.lowercased() })
        guard let index = header.firstIndex(where: { wanted.contains($0.lowercased()) }) else {
            throw PowerInputError(
                "no column named \(names.joined(separator: " or ")); the header is \(header.joined(separator: ","))")
        }
        return index
    }

    public static func == (lhs: CSVTable, rhs: CSVTable) -> Bool {
        lhs.header == rhs.header && lhs.lines == rhs.lines && lhs.records == rhs.records
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(header)
        hasher.combine(records)
    }
}

extension CSVTable {
    /// A finite number from a field, or an error naming the line and column.
    public static func number(_ text: String, line: Int, column: String) throws(PowerInputError) -> Double {
        guard let value = Double(text), value.isFinite else {
            throw PowerInputError("line \(line), \(column): \"\(text.prefix(40))\" is not a number")
        }
        return value
    }
}
