public import BackchannelProtocol

/// Something that can happen to a command. The state machine decides what it does.
public enum LifecycleEvent: Sendable, Hashable {
    /// The command was placed in a poll response, leased until the given time.
    case dispatch(leaseUntil: Timestamp)
    /// The device acknowledged holding the command.
    case ack
    /// The device reported the command's outcome.
    case result(LogicalResult)
    /// The lease passed without an acknowledgement.
    case leaseLapsed
    /// `expiresAt` passed without an acknowledgement.
    case expire
    /// The execution timeout passed without a result.
    case timeOut
    /// An operator canceled the command.
    case cancel(reason: String?)

    /// The name recorded in history.
    public var name: String {
        switch self {
        case .dispatch: "dispatch"
        case .ack: "ack"
        case .result: "result"
        case .leaseLapsed: "lease-lapsed"
        case .expire: "expire"
        case .timeOut: "timeout"
        case .cancel: "cancel"
        }
    }
}

/// Why the state machine refused an event.
public struct IllegalTransition: Error, Sendable, Hashable, CustomStringConvertible {
    /// The state the command was in.
    public var state: MessageState
    /// The refused event's name.
    public var event: String
    /// Why it was refused.
    public var reason: String

    public var description: String { "\(event) is not allowed in \(state): \(reason)" }
}

/// What applying an event did.
public enum LifecycleStep: Sendable, Hashable {
    /// The command moved to a new state; the entry is its history record.
    case transitioned(TransitionRecord)
    /// A repeated event with nothing left to do (a duplicate ack, a repeated result).
    case unchanged
    /// A result arrived after the command was already terminal. The state is kept; the entry
    /// records what the device said, so history tells the whole truth.
    case lateResult(TransitionRecord)
    /// The event is not allowed in this state; the record is untouched.
    case illegal(IllegalTransition)
}

extension CommandRecord {
    /// Applies one lifecycle event at time `now`. Pure: no I/O, no clock reads.
    ///
    /// The transition table:
    ///
    /// | state | dispatch | ack | result | leaseLapsed | expire | timeOut | cancel |
    /// |---|---|---|---|---|---|---|---|
    /// | QUEUED (never sent) | DISPATCHED | illegal | illegal | illegal | EXPIRED | illegal | CANCELED |
    /// | QUEUED (sent before) | DISPATCHED | ACKED | terminal | illegal | EXPIRED | illegal | CANCELED |
    /// | DISPATCHED | illegal | ACKED | terminal | QUEUED or FAILED | EXPIRED | illegal | CANCELED |
    /// | ACKED | illegal | unchanged | terminal | illegal | illegal | TIMED_OUT | CANCELED |
    /// | terminal | illegal | unchanged | unchanged or late result | illegal | illegal | illegal | illegal |
    ///
    /// Deadline events are refused before their deadline: `expire` before `expiresAt`,
    /// `leaseLapsed` before `leaseExpiresAt`, `timeOut` before the result deadline; and
    /// `dispatch` is refused at or after `expiresAt` and once the attempts are used up.
    public mutating func apply(_ event: LifecycleEvent, at now: Timestamp) -> LifecycleStep {
        let from = state
        func illegal(_ reason: String) -> LifecycleStep {
            .illegal(IllegalTransition(state: from, event: event.name, reason: reason))
        }
        func move(to next: MessageState, detail: String? = nil) -> LifecycleStep {
            state = next
            updatedAt = now
            if next.isTerminal {
                finishedAt = now
                leaseExpiresAt = nil
                resultDeadline = nil
                // A rendezvous request's outcome now travels back to its sender.
                if replyTo != nil { replyState = .pending }
            }
            return .transitioned(
                TransitionRecord(
                    command: id, device: device, at: now, from: from, to: next, event: event.name,
                    attempt: attempt, detail: detail
                )
            )
        }
        let everSent = attempt > 0

        switch event {
        case .dispatch(let leaseUntil):
            guard from == .queued else { return illegal("only a QUEUED command can be dispatched") }
            guard now < expiresAt else { return illegal("the command expired at \(expiresAt)") }
            guard attempt < maxAttempts else { return illegal("all \(maxAttempts) attempts are used") }
            guard leaseUntil > now else { return illegal("the lease must end after now") }
            attempt += 1
            leaseExpiresAt = leaseUntil
            return move(to: .dispatched, detail: "lease until \(leaseUntil)")

        case .ack:
            if from == .dispatched || (from == .queued && everSent) {
                ackedAt = now
                leaseExpiresAt = nil
                resultDeadline = now.adding(seconds: Double(executionTimeoutMs) / 1000)
                return move(to: .acked, detail: from == .queued ? "late acknowledgement after the lease lapsed" : nil)
            }
            if from == .queued { return illegal("the command was never delivered") }
            return .unchanged

        case .result(let result):
            if from == .dispatched || from == .acked || (from == .queued && everSent) {
                if ackedAt == nil { ackedAt = now }
                outcome = CommandOutcome(
                    status: result.status, code: result.code, retryable: result.retryable,
                    detail: result.detail, data: result.data, envelope: result.envelope
                )
                return move(to: result.status.terminalState, detail: result.code)
            }
            if from == .queued { return illegal("the command was never delivered") }
            if from == result.status.terminalState, outcome?.status == result.status {
                return .unchanged
            }
            return .lateResult(
                TransitionRecord(
                    command: id, device: device, at: now, from: from, to: from, event: "late-result",
                    attempt: attempt,
                    detail: "device reported \(result.status.rawValue)" + (result.code.map { " (\($0))" } ?? "")
                )
            )

        case .leaseLapsed:
            guard from == .dispatched, let lease = leaseExpiresAt else {
                return illegal("only a DISPATCHED command has a lease")
            }
            guard now >= lease else { return illegal("the lease runs until \(lease)") }
            leaseExpiresAt = nil
            if attempt >= maxAttempts {
                outcome = CommandOutcome(
                    code: OutcomeCode.undeliverable, retryable: true,
                    detail: "not acknowledged after \(attempt) deliveries"
                )
                return move(to: .failed, detail: OutcomeCode.undeliverable)
            }
            return move(to: .queued, detail: "redeliver")

        case .expire:
            guard from == .queued || from == .dispatched else {
                return illegal("only a command not yet acknowledged can expire")
            }
            guard now >= expiresAt else { return illegal("the command expires at \(expiresAt)") }
            outcome = CommandOutcome(
                code: OutcomeCode.expired, retryable: true, detail: "not acknowledged by \(expiresAt)")
            return move(to: .expired)

        case .timeOut:
            guard from == .acked, let deadline = resultDeadline else {
                return illegal("only an ACKED command can time out")
            }
            guard now >= deadline else { return illegal("the result is due by \(deadline)") }
            outcome = CommandOutcome(
                code: OutcomeCode.timedOut, retryable: false,
                detail: "acknowledged but no result by \(deadline); the command may have run"
            )
            return move(to: .timedOut)

        case .cancel(let reason):
            guard !from.isTerminal else { return illegal("the command is already \(from)") }
            outcome = CommandOutcome(
                code: OutcomeCode.canceled, retryable: false,
                detail: reason
                    ?? (from == .queued
                        ? "canceled before delivery" : "canceled after delivery; the device was asked to abort")
            )
            return move(to: .canceled, detail: reason)
        }
    }
}
