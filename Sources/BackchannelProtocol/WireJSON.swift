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

    /// Decodes a value from wire JSON.
    /// A value as a ``JSONValue`` (its wire JSON, decoded), or nil if it cannot be encoded.
    public static func value(_ value: some Encodable) -> JSONValue? {
        (try? encode(value)).flatMap { try? decode(JSONValue.self, from: $0) }
    }

    /// A ``JSONValue`` read as `type`, or nil if it does not have that shape.
    public static func convert<T: Decodable>(_ value: JSONValue, to type: T.Type) -> T? {
        (try? encode(value)).flatMap { try? decode(type, from: $0) }
    }

    public static func decode<T: Decodable>(_ type: T.Type, from data: Data) throws -> T {
        try decoder().decode(type, from: data)
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
            if context.codingPath.isEmpty { return "body is not valid JSON" }
            if context.debugDescription.hasPrefix(Timestamp.formatHint) {
                return "field '\(path(context))' has an invalid value: \(Timestamp.formatHint)"
            }
            return "field '\(path(context))' has an invalid value"
        @unknown default:
            return "body is not valid JSON"
        }
    }
}
