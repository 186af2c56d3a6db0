/// The JSON body of every non-2xx response: `{"code": ..., "message": ...}`.
public struct ErrorBody: Sendable, Hashable, Codable, Error {
    /// A stable machine-readable code; see ``ErrorCode``.
    public var code: String
    /// A human-readable explanation. Never contains secrets or payloads.
    public var message: String
    /// For `sequence_conflict`: the highest sequence number the hub has seen from the device.
    public var lastSeq: Int64?
    /// For `rate_limited` and `unavailable`: seconds to wait, as in the `Retry-After` header.
    public var retryAfter: Double?

    /// Creates an error body.
    public init(code: String, message: String, lastSeq: Int64? = nil, retryAfter: Double? = nil) {
        self.code = code
        self.message = message
        self.lastSeq = lastSeq
        self.retryAfter = retryAfter
    }
}

/// The error codes the hub puts in ``ErrorBody/code``.
public enum ErrorCode {
    /// 400: the body is not valid JSON of the expected shape, or a field is out of range.
    public static let malformed = "malformed"
    /// 401: missing or wrong credential.
    public static let unauthorized = "unauthorized"
    /// 403: the credential is valid but does not allow this.
    public static let forbidden = "forbidden"
    /// 404: the device named in the request is not provisioned.
    public static let unknownDevice = "unknown_device"
    /// 404: the resource does not exist.
    public static let notFound = "not_found"
    /// 409: the sequence number is older than one already processed, or reused with a different body.
    public static let sequenceConflict = "sequence_conflict"
    /// 409: the resource already exists, or is in a state that forbids the operation.
    public static let conflict = "conflict"
    /// 415: the body is not in a media type the endpoint takes.
    public static let unsupportedMediaType = "unsupported_media_type"
    /// 413: the body exceeds the hub's limit.
    public static let tooLarge = "too_large"
    /// 429: too many requests; see `Retry-After`.
    public static let rateLimited = "rate_limited"
    /// 503: the hub cannot serve now; see `Retry-After`.
    public static let unavailable = "unavailable"
    /// 500: an internal failure. Nothing in the request was stored.
    public static let `internal` = "internal"
}

/// Outcome codes carried by terminal command records.
public enum OutcomeCode {
    /// Instant delivery: the device was not connected, or did not acknowledge in time.
    public static let deviceUnavailable = "device_unavailable"
    /// The lease lapsed on the last permitted attempt.
    public static let undeliverable = "undeliverable"
    /// `expiresAt` passed before the device acknowledged.
    public static let expired = "expired"
    /// An operator canceled the command.
    public static let canceled = "canceled"
    /// The device acknowledged but did not report a result within the execution timeout.
    public static let timedOut = "timed_out"
    /// The device has no handler for the command name.
    public static let unknownCommand = "unknown_command"
    /// The arguments were missing or invalid.
    public static let invalidArgs = "invalid_args"
    /// The device restarted while running the command; it may or may not have taken effect.
    public static let interrupted = "interrupted"
    /// The command's handler failed.
    public static let handlerError = "handler_error"
    /// The device received the command after its `expiresAt`.
    public static let tooLate = "too_late"
    /// Rendezvous: no rule lets the sender send this command to the target.
    public static let notAuthorized = "not_authorized"
    /// Rendezvous: the target device does not exist.
    public static let unknownTarget = "unknown_target"
    /// Rendezvous: the target is not reachable now and the sender asked to fail fast.
    public static let targetUnavailable = "target_unavailable"
    /// Rendezvous: the sender used this `ref` before for a different request.
    public static let refReused = "ref_reused"
    /// Rendezvous: the request cannot be routed as given (for example, to the sender itself).
    public static let invalidRequest = "invalid_request"
    /// Signed commands: the device requires a signature for this command and it had none.
    public static let unsigned = "unsigned"
    /// Signed commands: the signing key is not in the device's trust policy.
    public static let unknownIssuer = "unknown_issuer"
    /// Signed commands: the signature is malformed or does not match the command as delivered.
    public static let badSignature = "bad_signature"
    /// Signed commands: the trusted key may not issue this command name.
    public static let issuerNotAllowed = "issuer_not_allowed"
    /// Signed commands: the device accepted this signed command before.
    public static let replay = "replay"
    /// Signed commands: issued too long ago or in the future, expired, or with an inconsistent window.
    public static let outsideWindow = "outside_window"
}
