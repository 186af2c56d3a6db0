/// The lifecycle state of one logical request addressed to one device.
///
/// ```
/// QUEUED → DISPATCHED → ACKED → SUCCEEDED | FAILED | REJECTED
/// DISPATCHED → QUEUED                (lease lapsed: redelivered)
/// DISPATCHED → FAILED                (lease lapsed on the last attempt: undeliverable)
/// QUEUED | DISPATCHED → EXPIRED      (not acknowledged by expiresAt)
/// ACKED → TIMED_OUT                  (no result within the execution timeout)
/// QUEUED | DISPATCHED | ACKED → CANCELED
/// ```
public enum MessageState: String, Sendable, Hashable, Codable, CaseIterable, CustomStringConvertible {
    case queued = "QUEUED"
    case dispatched = "DISPATCHED"
    case acked = "ACKED"
    case succeeded = "SUCCEEDED"
    case failed = "FAILED"
    case rejected = "REJECTED"
    case expired = "EXPIRED"
    case canceled = "CANCELED"
    case timedOut = "TIMED_OUT"

    /// Whether no further transition can leave this state.
    public var isTerminal: Bool {
        switch self {
        case .queued, .dispatched, .acked: false
        default: true
        }
    }

    public var description: String { rawValue }
}

/// How a device reports the end of a logical request.
public enum ResultStatus: String, Sendable, Hashable, Codable, CaseIterable {
    /// The command ran and did what it was asked.
    case succeeded
    /// The command ran, or tried to, and did not achieve its effect.
    case failed
    /// The device refused the command without running it (unknown name, bad arguments, policy).
    case rejected

    /// The terminal message state this status leads to.
    public var terminalState: MessageState {
        switch self {
        case .succeeded: .succeeded
        case .failed: .failed
        case .rejected: .rejected
        }
    }
}
