public import Foundation

/// The JSON encoder and decoder settings used on the wire.
public enum WireJSON {
    /// A new encoder with the wire settings: compact, object keys sorted (so a value always
    /// encodes to the same bytes), slashes not escaped.
    public static func encoder(pretty: Bool = false) -> JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting =
            pretty ? [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes] : [.sortedKeys, .withoutEscapingSlashes]
        return encoder
    }

    /// A new decoder with the wire settings.
    public static func decoder() -> JSONDecoder {
        JSONDecoder()
    }

    /// Encodes a value to wire JSON.
    public static func encode(_ value: some Encodable) throws -> Data {
        try encoder().encode(value)
    }

    /// A value as a ``JSONValue`` (its wire JSON, decoded), or nil if it cannot be encoded.
    public static func value(_ value: some Encodable) -> JSONValue? {
        (try? encode(value)).flatMap { try? decode(JSONValue.self, from: $0) }
    }

    /// A ``JSONValue`` read as `type`, or nil if it does not have that shape.
    public static func convert<T: Decodable>(_ value: JSONValue, to type: T.Type) -> T? {
        (try? encode(value)).flatMap { try? decode(type, from: $0) }
    }

    /// Deepest nesting of arrays and objects ``decode(_:from:)`` reads. A poll needs about 20 (the
    /// body, its lists and items, and values nested at most ``PollLimits/maxJSONDepth`` deep).
    public static let maxDepth = 64

    /// The start of the message of the error thrown for JSON nested deeper than ``maxDepth``.
    static let tooDeepHint = "JSON nested deeper than"

    /// Decodes a value from wire JSON.
    ///
    /// JSON nested deeper than ``maxDepth`` is refused before it is parsed: the decoders recurse
    /// once per level, so without a cap a small body could need a large stack. The error is a
    /// `DecodingError.dataCorrupted` that ``describe(_:)`` names.
    public static func decode<T: Decodable>(_ type: T.Type, from data: Data) throws -> T {
        try checkDepth(data)
        return try decoder().decode(type, from: data)
    }

    /// Throws when arrays and objects nest deeper than ``maxDepth``; brackets inside strings do
    /// not count. One pass over the bytes; anything else that is wrong is left to the decoder.
    static func checkDepth(_ data: Data) throws {
        let tooDeep = data.withUnsafeBytes { raw -> Bool in
            var depth = 0
            var inString = false
            var escaped = false
            for byte in raw {
                if inString {
                    if escaped {
                        escaped = false
                    } else if byte == UInt8(ascii: "\\") {
                        escaped = true
                    } else if byte == UInt8(ascii: "\"") {
                        inString = false
                    }
                    continue
                }
                switch byte {
                case UInt8(ascii: "\""):
                    inString = true
                case UInt8(ascii: "["), UInt8(ascii: "{"):
                    depth += 1
                    if depth > maxDepth { return true }
                case UInt8(ascii: "]"), UInt8(ascii: "}"):
                    // Never below zero, so stray closing brackets cannot pay for deeper nesting later.
                    depth = max(depth - 1, 0)
                default:
                    break
                }
            }
            return false
        }
        if tooDeep {
            throw DecodingError.dataCorrupted(
                DecodingError.Context(codingPath: [], debugDescription: "\(tooDeepHint) \(maxDepth) levels"))
        }
    }

    /// Describes a decoding failure in one line, naming the field, without echoing payload values.
    public static func describe(_ error: any Error) -> String {
        guard let error = error as? DecodingError else { return "body is not valid JSON" }
        func path(_ context: DecodingError.Context) -> String {
            let p = context.codingPath.map { key in
                key.intValue.map { "[\($0)]" } ?? ".\(key.stringValue)"
            }.joined()
            return p.isEmpty ? "body" : String(p.drop(while: { $0 == "." }))
        }
        switch error {
        case .keyNotFound(let key, let context):
            let parent = path(context)
            return "missing field '\(parent == "body" ? key.stringValue : parent + "." + key.stringValue)'"
        case .typeMismatch(let type, let context):
            return "field '\(path(context))' has the wrong type (expected \(type))"
        case .valueNotFound(let type, let context):
            return "field '\(path(context))' is null (expected \(type))"
        case .dataCorrupted(let context):
            // The debug description can quote the offending value; it is never echoed.
            if context.codingPath.isEmpty {
                if context.debugDescription.hasPrefix(tooDeepHint) {
                    return "body is nested deeper than \(maxDepth) levels"
                }
                return "body is not valid JSON"
            }
            if context.debugDescription.hasPrefix(Timestamp.formatHint) {
                return "field '\(path(context))' has an invalid value: \(Timestamp.formatHint)"
            }
            return "field '\(path(context))' has an invalid value"
        @unknown default:
            return "body is not valid JSON"
        }
    }
}
