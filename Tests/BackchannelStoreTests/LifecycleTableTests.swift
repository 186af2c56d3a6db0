import BackchannelProtocol
import BackchannelStore
import Testing

/// The starting points of the transition table: every `MessageState`, with QUEUED split into
/// "never sent" and "sent before" (a lapsed lease put it back).
enum Start: String, CaseIterable, Sendable, CustomTestStringConvertible {
    case queuedNeverSent, queuedSentBefore, dispatched, acked
    case succeeded, failed, rejected, expired, canceled, timedOut

    var testDescription: String { rawValue }

    var state: MessageState {
        switch self {
        case .queuedNeverSent, .queuedSentBefore: .queued
        case .dispatched: .dispatched
        case .acked: .acked
        case .succeeded: .succeeded
        case .failed: .failed
        case .rejected: .rejected
        case .expired: .expired
        case .canceled: .canceled
        case .timedOut: .timedOut
        }
    }

    /// A command brought to this starting point by legal events only (max 3 attempts, 60 s to run).
    func record() throws -> CommandRecord {
        var record = Fixture.command(id: "cmd-1", created: 0, ttl: 3600, maxAttempts: 3, timeoutSeconds: 60)
        func step(_ event: LifecycleEvent, _ seconds: Double) throws {
            let result = record.apply(event, at: Fixture.at(seconds))
            guard case .transitioned = result else {
                Issue.record("setting up \(self): \(event.name) gave \(result)")
                throw SetupFailed()
            }
        }
        switch self {
        case .queuedNeverSent: break
        case .queuedSentBefore:
            try step(.dispatch(leaseUntil: Fixture.at(31)), 1)
            try step(.leaseLapsed, 31)
        case .dispatched: try step(.dispatch(leaseUntil: Fixture.at(31)), 1)
        case .acked, .succeeded, .failed, .rejected, .timedOut:
            try step(.dispatch(leaseUntil: Fixture.at(31)), 1)
            try step(.ack, 2)
            switch self {
            case .succeeded: try step(.result(Fixture.result("cmd-1", .succeeded)), 3)
            case .failed: try step(.result(Fixture.result("cmd-1", .failed)), 3)
            case .rejected: try step(.result(Fixture.result("cmd-1", .rejected)), 3)
            case .timedOut: try step(.timeOut, 62)
            default: break
            }
        case .expired: try step(.expire, 3600)
        case .canceled: try step(.cancel(reason: nil), 2)
        }
        #expect(record.state == state)
        return record
    }

    struct SetupFailed: Error {}
}

/// The events of the table; `result` is split by status.
enum Event: String, CaseIterable, Sendable, CustomTestStringConvertible {
    case dispatch, ack, resultSucceeded, resultFailed, resultRejected, leaseLapsed, expire, timeOut, cancel

    var testDescription: String { rawValue }

    /// The event, for a record at time `now`.
    func event(now: Timestamp) -> LifecycleEvent {
        switch self {
        case .dispatch: .dispatch(leaseUntil: now.adding(seconds: 30))
        case .ack: .ack
        case .resultSucceeded: .result(Fixture.result("cmd-1", .succeeded, code: "done"))
        case .resultFailed: .result(Fixture.result("cmd-1", .failed, code: "relay_stuck"))
        case .resultRejected: .result(Fixture.result("cmd-1", .rejected, code: "unknown_command"))
        case .leaseLapsed: .leaseLapsed
        case .expire: .expire
        case .timeOut: .timeOut
        case .cancel: .cancel(reason: "operator changed their mind")
        }
    }

    /// A time at which the event's own deadline (if any) has been reached, so only the state decides.
    func time(for record: CommandRecord) -> Timestamp {
        let soon = record.updatedAt.adding(seconds: 1)
        switch self {
        case .leaseLapsed: return record.leaseExpiresAt ?? soon
        case .expire: return max(record.expiresAt, soon)
        case .timeOut: return record.resultDeadline ?? soon
        default: return soon
        }
    }

    var status: ResultStatus? {
        switch self {
        case .resultSucceeded: .succeeded
        case .resultFailed: .failed
        case .resultRejected: .rejected
        default: nil
        }
    }
}

/// What one cell of the table says.
enum Expected: Equatable, Sendable {
    case to(MessageState)
    case unchanged
    case lateResult
    case illegal
}

@Suite("CommandRecord.apply: the full transition table")
struct LifecycleTableTests {
    /// The table from the doc comment of `CommandRecord.apply`, one row per start, columns in
    /// `Event.allCases` order: dispatch, ack, result ×3 (succeeded, failed, rejected), leaseLapsed,
    /// expire, timeOut, cancel.
    static let table: [Start: [Expected]] = [
        .queuedNeverSent: [
            .to(.dispatched), .illegal, .illegal, .illegal, .illegal, .illegal, .to(.expired), .illegal,
            .to(.canceled),
        ],
        .queuedSentBefore: [
            .to(.dispatched), .to(.acked), .to(.succeeded), .to(.failed), .to(.rejected), .illegal, .to(.expired),
            .illegal, .to(.canceled),
        ],
        .dispatched: [
            .illegal, .to(.acked), .to(.succeeded), .to(.failed), .to(.rejected), .to(.queued), .to(.expired),
            .illegal, .to(.canceled),
        ],
        .acked: [
            .illegal, .unchanged, .to(.succeeded), .to(.failed), .to(.rejected), .illegal, .illegal, .to(.timedOut),
            .to(.canceled),
        ],
        .succeeded: [
            .illegal, .unchanged, .unchanged, .lateResult, .lateResult, .illegal, .illegal, .illegal, .illegal,
        ],
        .failed: [.illegal, .unchanged, .lateResult, .unchanged, .lateResult, .illegal, .illegal, .illegal, .illegal],
        .rejected: [
            .illegal, .unchanged, .lateResult, .lateResult, .unchanged, .illegal, .illegal, .illegal, .illegal,
        ],
        .expired: [
            .illegal, .unchanged, .lateResult, .lateResult, .lateResult, .illegal, .illegal, .illegal, .illegal,
        ],
        .canceled: [
            .illegal, .unchanged, .lateResult, .lateResult, .lateResult, .illegal, .illegal, .illegal, .illegal,
        ],
        .timedOut: [
            .illegal, .unchanged, .lateResult, .lateResult, .lateResult, .illegal, .illegal, .illegal, .illegal,
        ],
    ]

    @Test("the table covers every state and event")
    func tableIsComplete() {
        #expect(Set(Start.allCases.map(\.state)) == Set(MessageState.allCases))
        for start in Start.allCases {
            #expect(Self.table[start]?.count == Event.allCases.count, "\(start)")
        }
    }

    @Test("every state × every event", arguments: Start.allCases, Event.allCases)
    func cell(start: Start, event: Event) throws {
        let expected = try #require(Self.table[start]?[Event.allCases.firstIndex(of: event)!])
        let before = try start.record()
        var record = before
        let now = event.time(for: before)
        let step = record.apply(event.event(now: now), at: now)

        switch expected {
        case .illegal:
            guard case .illegal(let why) = step else {
                Issue.record("expected illegal, got \(step)")
                return
            }
            #expect(why.state == start.state)
            #expect(why.event == event.event(now: now).name)
            #expect(record == before, "an illegal event must leave the record untouched")

        case .unchanged:
            #expect(step == .unchanged)
            #expect(record == before)

        case .lateResult:
            guard case .lateResult(let entry) = step else {
                Issue.record("expected a late result, got \(step)")
                return
            }
            #expect(record == before, "a late result keeps the record as it was")
            #expect(entry.from == start.state)
            #expect(entry.to == start.state)
            #expect(entry.event == "late-result")
            #expect(entry.at == now)
            #expect(entry.attempt == before.attempt)
            #expect(entry.detail?.contains(event.status!.rawValue) == true)

        case .to(let next):
            guard case .transitioned(let entry) = step else {
                Issue.record("expected a transition to \(next), got \(step)")
                return
            }
            #expect(record.state == next)
            #expect(record.updatedAt == now)
            #expect(
                entry
                    == TransitionRecord(
                        command: "cmd-1", device: "dev-1", at: now, from: start.state, to: next,
                        event: event.event(now: now).name, attempt: record.attempt, detail: entry.detail))
            #expect(record.attempt == before.attempt + (event == .dispatch ? 1 : 0))
            #expect(record.createdAt == before.createdAt)
            #expect(record.expiresAt == before.expiresAt)
            try checkFields(of: record, after: event, at: now, from: before)
        }
    }

    /// The fields each kind of transition must set.
    func checkFields(of record: CommandRecord, after event: Event, at now: Timestamp, from before: CommandRecord)
        throws
    {
        if record.state.isTerminal {
            #expect(record.finishedAt == now)
            #expect(record.leaseExpiresAt == nil)
            #expect(record.resultDeadline == nil)
            let outcome = try #require(record.outcome)
            switch event {
            case .resultSucceeded, .resultFailed, .resultRejected:
                #expect(outcome.status == event.status)
                #expect(outcome.data == ["ok": true])
                #expect(record.ackedAt == (before.ackedAt ?? now))
            case .expire: #expect(outcome.code == OutcomeCode.expired)
            case .timeOut: #expect(outcome.code == OutcomeCode.timedOut)
            case .cancel:
                #expect(outcome.code == OutcomeCode.canceled)
                #expect(outcome.detail == "operator changed their mind")
            default: Issue.record("unexpected terminal transition on \(event)")
            }
            return
        }
        #expect(record.finishedAt == nil)
        #expect(record.outcome == nil)
        switch record.state {
        case .dispatched:
            #expect(record.leaseExpiresAt == now.adding(seconds: 30))
        case .acked:
            #expect(record.ackedAt == now)
            #expect(record.leaseExpiresAt == nil)
            #expect(record.resultDeadline == now.adding(seconds: 60))
        case .queued:
            #expect(record.leaseExpiresAt == nil)
        default:
            Issue.record("unexpected state \(record.state)")
        }
    }
}
