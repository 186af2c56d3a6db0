/// A certificate, key or TLS setting that cannot be used.
///
/// `description` names the file or field and the problem; it never contains key material.
public struct TLSError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The kind of failure; compare it with the static members.
    public struct Code: Sendable, Hashable, CustomStringConvertible {
        private enum Base: String, Sendable, Hashable {
            case invalidCertificate, invalidKey, invalidName, fileExists, io
        }
        private let base: Base
        private init(_ base: Base) { self.base = base }

        /// A certificate file is not a PEM certificate, or the certificate is unfit for its use.
        public static let invalidCertificate = Code(.invalidCertificate)
        /// A key file is not a PEM private key, or the key does not match its certificate.
        public static let invalidKey = Code(.invalidKey)
        /// A device id, DNS name or IP address cannot go into a certificate.
        public static let invalidName = Code(.invalidName)
        /// A file to write exists already (pass `overwrite` to replace it).
        public static let fileExists = Code(.fileExists)
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

    static func invalidCertificate(_ reason: String) -> Self { Self(.invalidCertificate, reason) }
    static func invalidKey(_ reason: String) -> Self { Self(.invalidKey, reason) }
    static func invalidName(_ reason: String) -> Self { Self(.invalidName, reason) }
    static func fileExists(_ path: String) -> Self {
        Self(.fileExists, "\(path) exists already; pass --force to replace it")
    }
    static func io(_ reason: String) -> Self { Self(.io, reason) }

    public var description: String { "\(code): \(reason)" }
}
