/// Limits a hub applies to every physical request before it stores anything.
public struct PollLimits: Sendable, Hashable {
    /// Most acks, results and uplink items together in one poll.
    public var maxMessagesPerPoll: Int = 1000
    /// Deepest nesting of any JSON value (args, data, status).
    public var maxJSONDepth: Int = 16
    /// Longest string anywhere in a JSON value, in UTF-8 bytes.
    public var maxStringBytes: Int = 64 * 1024
    /// Longest id (device, uplink, request), in UTF-8 bytes.
    public var maxIdentifierBytes: Int = 128
    /// Largest `accept` a device may ask for; larger values are capped, not rejected.
    public var maxAccept: Int = 100
    /// Longest inner SOAP envelope (a result or peer request sent through the SOAP binding).
    public var maxEnvelopeBytes: Int = 1 << 20

    /// Limits with the default values.
    public init() {}
}

/// Why a request failed validation: the field and the reason, never the offending value.
public struct ValidationFailure: Error, Sendable, Hashable, CustomStringConvertible {
    /// The JSON path of the field, such as `uplink[3].id`.
    public var field: String
    /// What is wrong with it.
    public var reason: String

    /// Creates a validation failure.
    public init(field: String, reason: String) {
        self.field = field
        self.reason = reason
    }

    public var description: String { "\(field): \(reason)" }
}

/// Identifier rules shared by devices, uplink ids and command names.
public enum Identifier {
    /// Whether `text` is a valid identifier: 1 to `maxBytes` bytes of ASCII letters, digits and `._:-`,
    /// starting with a letter or digit.
    public static func isValid(_ text: String, maxBytes: Int = 128) -> Bool {
        let bytes = text.utf8
        guard !bytes.isEmpty, bytes.count <= maxBytes else { return false }
        for (index, byte) in bytes.enumerated() {
            let alnum =
                (byte >= 0x30 && byte <= 0x39) || (byte >= 0x41 && byte <= 0x5A) || (byte >= 0x61 && byte <= 0x7A)
            if alnum { continue }
            if index > 0, byte == 0x2E || byte == 0x5F || byte == 0x3A || byte == 0x2D { continue }
            return false
        }
        return true
    }
}

extension PollRequest {
    /// Checks every field against the limits. Nothing is stored from a request that fails.
    public func validate(_ limits: PollLimits) throws(ValidationFailure) {
        guard Identifier.isValid(device, maxBytes: limits.maxIdentifierBytes) else {
            throw ValidationFailure(
                field: "device", reason: "must be 1-\(limits.maxIdentifierBytes) characters of A-Z a-z 0-9 . _ : -")
        }
        guard seq >= 0 else { throw ValidationFailure(field: "seq", reason: "must be zero or positive") }
        guard accept >= 0 else { throw ValidationFailure(field: "accept", reason: "must be zero or positive") }
        guard wait >= 0, wait.isFinite else {
            throw ValidationFailure(field: "wait", reason: "must be zero or a positive number of seconds")
        }
        let total = acks.count + results.count + uplink.count + requests.count + replyAcks.count
        guard total <= limits.maxMessagesPerPoll else {
            throw ValidationFailure(
                field: "body", reason: "\(total) messages exceed the limit of \(limits.maxMessagesPerPoll) per poll")
        }
        for (i, ack) in acks.enumerated() where !Identifier.isValid(ack, maxBytes: limits.maxIdentifierBytes) {
            throw ValidationFailure(field: "acks[\(i)]", reason: "not a valid request id")
        }
        var seenResults = Set<String>()
        for (i, result) in results.enumerated() {
            try result.validate(limits, field: "results[\(i)]")
            guard seenResults.insert(result.id).inserted else {
                throw ValidationFailure(field: "results[\(i)].id", reason: "duplicate result for the same request")
            }
        }
        var seenUplink = Set<String>()
        for (i, item) in uplink.enumerated() {
            try item.validate(limits, field: "uplink[\(i)]")
            guard seenUplink.insert(item.id).inserted else {
                throw ValidationFailure(field: "uplink[\(i)].id", reason: "duplicate id in the same poll")
            }
        }
        var seenRefs = Set<String>()
        for (i, request) in requests.enumerated() {
            try request.validate(limits, field: "requests[\(i)]")
            guard seenRefs.insert(request.ref).inserted else {
                throw ValidationFailure(field: "requests[\(i)].ref", reason: "duplicate ref in the same poll")
            }
        }
        for (i, ack) in replyAcks.enumerated() where !Identifier.isValid(ack, maxBytes: limits.maxIdentifierBytes) {
            throw ValidationFailure(field: "replyAcks[\(i)]", reason: "not a valid request id")
        }
        try presence?.validate(limits, field: "presence")
    }

    /// Checks one JSON value against the depth and string-length limits.
    public static func check(_ value: JSONValue, field: String, _ limits: PollLimits) throws(ValidationFailure) {
        if value.depth > limits.maxJSONDepth {
            throw ValidationFailure(field: field, reason: "nested deeper than \(limits.maxJSONDepth) levels")
        }
        if value.longestString > limits.maxStringBytes {
            throw ValidationFailure(
                field: field, reason: "contains a string longer than \(limits.maxStringBytes) bytes")
        }
    }
}

extension LogicalResult {
    /// Checks a logical response against the limits; `field` names it in the failure.
    public func validate(_ limits: PollLimits, field: String = "result") throws(ValidationFailure) {
        guard Identifier.isValid(id, maxBytes: limits.maxIdentifierBytes) else {
            throw ValidationFailure(field: "\(field).id", reason: "not a valid request id")
        }
        if let code, !Identifier.isValid(code, maxBytes: 64) {
            throw ValidationFailure(field: "\(field).code", reason: "must be 1-64 characters of A-Z a-z 0-9 . _ : -")
        }
        if let detail, detail.utf8.count > limits.maxStringBytes {
            throw ValidationFailure(field: "\(field).detail", reason: "longer than \(limits.maxStringBytes) bytes")
        }
        if let data { try PollRequest.check(data, field: "\(field).data", limits) }
        if let envelope, envelope.utf8.count > limits.maxEnvelopeBytes {
            throw ValidationFailure(
                field: "\(field).envelope", reason: "longer than \(limits.maxEnvelopeBytes) bytes")
        }
    }
}

extension UplinkItem {
    /// Checks a reading or event against the limits; `field` names it in the failure.
    public func validate(_ limits: PollLimits, field: String = "item") throws(ValidationFailure) {
        guard Identifier.isValid(id, maxBytes: limits.maxIdentifierBytes) else {
            throw ValidationFailure(
                field: "\(field).id", reason: "must be 1-\(limits.maxIdentifierBytes) characters of A-Z a-z 0-9 . _ : -"
            )
        }
        guard Identifier.isValid(name, maxBytes: 64) else {
            throw ValidationFailure(field: "\(field).name", reason: "must be 1-64 characters of A-Z a-z 0-9 . _ : -")
        }
        try PollRequest.check(data, field: "\(field).data", limits)
    }
}

extension PresenceReport {
    /// Checks a presence declaration against the limits; `field` names it in the failure.
    public func validate(_ limits: PollLimits, field: String = "presence") throws(ValidationFailure) {
        if let note, note.utf8.count > 1024 {
            throw ValidationFailure(field: "\(field).note", reason: "longer than 1024 bytes")
        }
        if let status { try PollRequest.check(.object(status), field: "\(field).status", limits) }
    }
}
