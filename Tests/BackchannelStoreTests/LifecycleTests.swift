import BackchannelProtocol
import BackchannelStore
import Testing

@Suite("CommandRecord.apply: deadlines, attempts and history")
struct LifecycleTests {
    typealias F = Fixture

    /// Applies an event that must be a transition, returning its entry.
    @discardableResult
    func transition(_ record: inout CommandRecord, _ event: LifecycleEvent, at seconds: Double) throws
        -> TransitionRecord
    {
        let step = record.apply(event, at: F.at(seconds))
        guard case .transitioned(let entry) = step else {
            Issue.record("\(event.name) at \(seconds)s gave \(step)")
            throw Start.SetupFailed()
        }
        return entry
    }

    /// Applies an event that must be refused, checking that nothing changed.
    func refused(_ record: CommandRecord, _ event: LifecycleEvent, at time: Timestamp) {
        var copy = record
        let step = copy.apply(event, at: time)
        #expect(step.isIllegal, "\(event.name) at \(time) gave \(step)")
        #expect(copy == record)
    }

    @Test("expire is refused before expiresAt and allowed at and after it")
    func expireGuard() throws {
        let queued = F.command(created: 0, ttl: 100)
        refused(queued, .expire, at: queued.expiresAt.adding(seconds: -0.001))
        for late in [0.0, 0.001, 500] {
            var copy = queued
            #expect(copy.apply(.expire, at: queued.expiresAt.adding(seconds: late)).entry?.to == .expired)
        }
        var dispatched = queued
        try transition(&dispatched, .dispatch(leaseUntil: F.at(30)), at: 1)
        refused(dispatched, .expire, at: F.at(99.999))
        #expect(dispatched.apply(.expire, at: F.at(100)).entry?.to == .expired)
    }

    @Test("leaseLapsed is refused before the lease ends and allowed at it")
    func leaseGuard() throws {
        var record = F.command()
        try transition(&record, .dispatch(leaseUntil: F.at(31)), at: 1)
        refused(record, .leaseLapsed, at: F.at(30.999))
        #expect(record.apply(.leaseLapsed, at: F.at(31)).entry?.to == .queued)
    }

    @Test("timeOut is refused before the result deadline and allowed at it")
    func timeoutGuard() throws {
        var record = F.command(timeoutSeconds: 60)
        try transition(&record, .dispatch(leaseUntil: F.at(31)), at: 1)
        try transition(&record, .ack, at: 5)
        #expect(record.resultDeadline == F.at(65))
        refused(record, .timeOut, at: F.at(64.999))
        let entry = record.apply(.timeOut, at: F.at(65)).entry
        #expect(entry?.to == .timedOut)
        #expect(record.outcome?.code == OutcomeCode.timedOut)
        #expect(record.outcome?.retryable == false)
    }

    @Test("dispatch is refused at or after expiresAt, allowed just before")
    func dispatchExpiryGuard() {
        let record = F.command(created: 0, ttl: 100)
        refused(record, .dispatch(leaseUntil: F.at(200)), at: F.at(100))
        refused(record, .dispatch(leaseUntil: F.at(200)), at: F.at(150))
        var copy = record
        #expect(copy.apply(.dispatch(leaseUntil: F.at(130)), at: F.at(99.999)).entry?.to == .dispatched)
    }

    @Test("dispatch is refused once attempt reaches maxAttempts")
    func dispatchAttemptsGuard() {
        var used = F.command(maxAttempts: 2)
        used.attempt = 2  // e.g. maxAttempts lowered after two deliveries
        refused(used, .dispatch(leaseUntil: F.at(60)), at: F.at(1))
        refused(F.command(maxAttempts: 0), .dispatch(leaseUntil: F.at(60)), at: F.at(1))
        used.attempt = 1
        var copy = used
        #expect(copy.apply(.dispatch(leaseUntil: F.at(60)), at: F.at(1)).entry?.attempt == 2)
    }

    @Test("dispatch is refused when the lease does not end after now")
    func dispatchLeaseGuard() {
        let record = F.command()
        refused(record, .dispatch(leaseUntil: F.at(10)), at: F.at(10))
        refused(record, .dispatch(leaseUntil: F.at(9)), at: F.at(10))
    }

    @Test("attempts count across dispatch → leaseLapsed → dispatch; the last lapse fails as undeliverable")
    func attemptsAndUndeliverable() throws {
        var record = F.command(maxAttempts: 3)
        var entries: [TransitionRecord] = []
        for round in 0..<3 {
            let start = Double(round * 100)
            entries.append(try transition(&record, .dispatch(leaseUntil: F.at(start + 30)), at: start + 1))
            #expect(record.attempt == round + 1)
            #expect(record.logicalRequest.attempt == round + 1)
            entries.append(try transition(&record, .leaseLapsed, at: start + 30))
        }
        #expect(record.state == .failed)
        #expect(record.attempt == 3)
        #expect(record.outcome?.code == OutcomeCode.undeliverable)
        #expect(record.outcome?.retryable == true)
        #expect(record.finishedAt == F.at(230))
        #expect(record.leaseExpiresAt == nil)
        #expect(entries.map(\.to) == [.dispatched, .queued, .dispatched, .queued, .dispatched, .failed])
        #expect(entries.map(\.attempt) == [1, 1, 2, 2, 3, 3])
        #expect(
            entries.map(\.event) == [
                "dispatch", "lease-lapsed", "dispatch", "lease-lapsed", "dispatch", "lease-lapsed",
            ])
        #expect(entries.last?.detail == OutcomeCode.undeliverable)
        #expect(entries[1].detail == "redeliver")
        refused(record, .dispatch(leaseUntil: F.at(400)), at: F.at(300))
    }

    @Test("history entries carry command, device, time, from, to, event and attempt")
    func historyEntries() throws {
        var record = F.command(id: "c-7", device: "relay-3")
        #expect(
            TransitionRecord.created(record)
                == TransitionRecord(
                    command: "c-7", device: "relay-3", at: F.t0, from: nil, to: .queued, event: "submit", attempt: 0))
        let dispatch = try transition(&record, .dispatch(leaseUntil: F.at(40)), at: 10)
        #expect(dispatch.command == "c-7")
        #expect(dispatch.device == "relay-3")
        #expect(dispatch.at == F.at(10))
        #expect(dispatch.from == .queued)
        #expect(dispatch.to == .dispatched)
        #expect(dispatch.event == "dispatch")
        #expect(dispatch.attempt == 1)
        #expect(dispatch.detail?.contains(F.at(40).description) == true)
        let ack = try transition(&record, .ack, at: 11)
        #expect((ack.from, ack.to, ack.event, ack.attempt, ack.at) == (.dispatched, .acked, "ack", 1, F.at(11)))
        #expect(ack.detail == nil)
        let result = try transition(&record, .result(F.result("c-7", .failed, code: "relay_stuck")), at: 12)
        #expect((result.from, result.to, result.event) == (.acked, .failed, "result"))
        #expect(result.detail == "relay_stuck")
        #expect(result.view.event == "result")
        #expect(record.view(history: [dispatch, ack, result]).history?.count == 3)
    }

    @Test("a late ack after the lease lapsed is accepted and says so")
    func lateAck() throws {
        var record = F.command()
        try transition(&record, .dispatch(leaseUntil: F.at(31)), at: 1)
        try transition(&record, .leaseLapsed, at: 31)
        let ack = try transition(&record, .ack, at: 35)
        #expect(ack.from == .queued)
        #expect(ack.detail?.contains("late") == true)
        #expect(record.ackedAt == F.at(35))
    }

    @Test("a result without an ack sets ackedAt and the outcome")
    func resultWithoutAck() throws {
        var record = F.command()
        try transition(&record, .dispatch(leaseUntil: F.at(31)), at: 1)
        let report = LogicalResult(
            id: record.id, status: .rejected, code: "invalid_args", retryable: false, detail: "bad register",
            data: ["why": "range"])
        try transition(&record, .result(report), at: 4)
        #expect(record.ackedAt == F.at(4))
        #expect(
            record.outcome
                == CommandOutcome(
                    status: .rejected, code: "invalid_args", retryable: false, detail: "bad register",
                    data: ["why": "range"]))
    }

    @Test("a late result after a terminal state is recorded but keeps the state")
    func lateResult() throws {
        var record = F.command()
        try transition(&record, .expire, at: 3600)
        let before = record
        let step = record.apply(.result(F.result(record.id, .succeeded, code: "done")), at: F.at(3700))
        guard case .lateResult(let entry) = step else {
            Issue.record("expected a late result, got \(step)")
            return
        }
        #expect(record == before)
        #expect(record.state == .expired)
        #expect(record.outcome?.code == OutcomeCode.expired)
        #expect(entry.event == "late-result")
        #expect((entry.from, entry.to) == (.expired, .expired))
        #expect(entry.detail == "device reported succeeded (done)")
    }

    @Test("a duplicate result with the same status is unchanged; a different status is a late result")
    func duplicateResult() throws {
        var record = F.command()
        try transition(&record, .dispatch(leaseUntil: F.at(31)), at: 1)
        try transition(&record, .result(F.result(record.id, .succeeded)), at: 2)
        let before = record
        #expect(record.apply(.result(F.result(record.id, .succeeded, code: "other")), at: F.at(3)) == .unchanged)
        #expect(record == before)
        if case .lateResult = record.apply(.result(F.result(record.id, .failed)), at: F.at(4)) {
        } else {
            Issue.record("a different status after SUCCEEDED must be a late result")
        }
        #expect(record == before)
    }

    @Test("an undeliverable FAILED still records a later device result as late, not a duplicate")
    func resultAfterUndeliverable() throws {
        var record = F.command(maxAttempts: 1)
        try transition(&record, .dispatch(leaseUntil: F.at(31)), at: 1)
        try transition(&record, .leaseLapsed, at: 31)
        #expect(record.state == .failed)
        if case .lateResult = record.apply(.result(F.result(record.id, .failed)), at: F.at(40)) {
        } else {
            Issue.record("expected a late result")
        }
    }

    @Test("cancel explains itself by default depending on delivery")
    func cancelDetails() throws {
        var queued = F.command()
        try transition(&queued, .cancel(reason: nil), at: 1)
        #expect(queued.outcome?.detail == "canceled before delivery")
        #expect(queued.outcome?.retryable == false)
        var dispatched = F.command()
        try transition(&dispatched, .dispatch(leaseUntil: F.at(31)), at: 1)
        let entry = try transition(&dispatched, .cancel(reason: nil), at: 2)
        #expect(dispatched.outcome?.detail?.contains("abort") == true)
        #expect(entry.detail == nil)
        refused(dispatched, .cancel(reason: "again"), at: F.at(3))
    }

    @Test("event names are the documented wire names")
    func eventNames() {
        let events: [LifecycleEvent] = [
            .dispatch(leaseUntil: F.t0), .ack, .result(F.result("x")), .leaseLapsed, .expire, .timeOut,
            .cancel(reason: nil),
        ]
        #expect(events.map(\.name) == ["dispatch", "ack", "result", "lease-lapsed", "expire", "timeout", "cancel"])
    }
}
