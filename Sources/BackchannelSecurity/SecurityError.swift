/// A key file, trust policy or sealed payload that cannot be used.
///
/// `description` names the file or field and the problem; it never contains key material or
/// payloads.
public struct SecurityError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The kind of failure; compare it with the static members.
    public struct Code: Sendable, Hashable, CustomStringConvertible {
        private enum Base: String, Sendable, Hashable {
            case invalidKey, invalidKeyFile, invalidPolicy, invalidPayload, io
        }
        private let base: Base
        private init(_ base: Base) { self.base = base }

        /// A key is not the length or encoding its algorithm needs.
        public static let invalidKey = Code(.invalidKey)
        /// A key file is not in the format `backchannel keys` writes.
        public static let invalidKeyFile = Code(.invalidKeyFile)
        /// A trust policy is not valid.
        public static let invalidPolicy = Code(.invalidPolicy)
        /// A sealed payload is not in the sealed format, or cannot be sealed as asked.
        public static let invalidPayload = Code(.invalidPayload)
        /// Reading or writing a file failed.
        public static let io = Code(.io)

        /// The code's name.
        public var description: String { base.rawValue }
    }

    /// The kind of failure.
    public let code: Code
    /// What is wrong, for people.
    public let reason: String

    init(_ code: Code, _ reason: String) {
        self.code = code
        self.reason = reason
    }

    static func invalidKey(_ reason: String) -> Self { Self(.invalidKey, reason) }
    static func invalidKeyFile(_ reason: String) -> Self { Self(.invalidKeyFile, reason) }
    static func invalidPolicy(_ reason: String) -> Self { Self(.invalidPolicy, reason) }
    static func invalidPayload(_ reason: String) -> Self { Self(.invalidPayload, reason) }
    static func io(_ reason: String) -> Self { Self(.io, reason) }

    public var description: String { "\(code): \(reason)" }
}
