import BackchannelProtocol
import BackchannelStore
import Testing

@Suite("LifecyclePlanner")
struct PlannerTests {
    typealias F = Fixture

    static let now = Fixture.at(100)

    func input(
        acks: [String] = [], results: [LogicalResult] = [], accept: Int, lease: Double = 30
    ) -> ExchangeInput {
        ExchangeInput(device: "dev-1", now: Self.now, acks: acks, results: results, accept: accept, leaseSeconds: lease)
    }

    /// `count` QUEUED commands created one second apart, oldest first.
    func queued(_ count: Int) -> [CommandRecord] {
        (0..<count).map { F.command(id: "q\($0)", created: Double($0)) }
    }

    /// A command dispatched at `t0 + 50 s` with a 30 s lease.
    func dispatched(_ id: String, maxAttempts: Int = 3, ttl: Double = 3600) -> CommandRecord {
        var record = F.command(id: id, ttl: ttl, maxAttempts: maxAttempts)
        _ = record.apply(.dispatch(leaseUntil: F.at(80)), at: F.at(50))
        return record
    }

    @Test("dispatches at most `accept` candidates in order and reports `more`")
    func acceptLimit() {
        let candidates = queued(5)
        let plan = LifecyclePlanner.planExchange(input(accept: 2), referenced: [:], candidates: candidates)
        #expect(plan.dispatched.map(\.id) == ["q0", "q1"])
        #expect(plan.more)
        #expect(plan.dispatched.allSatisfy { $0.state == .dispatched && $0.attempt == 1 })
        #expect(plan.dispatched.allSatisfy { $0.leaseExpiresAt == Self.now.adding(seconds: 30) })
        #expect(plan.updated == plan.dispatched)
        #expect(plan.transitions.map(\.command) == ["q0", "q1"])
        #expect(plan.transitions.allSatisfy { $0.event == "dispatch" && $0.at == Self.now })
        #expect(plan.changesCommands)
        #expect(plan.ignored.isEmpty)

        let all = LifecyclePlanner.planExchange(input(accept: 5), referenced: [:], candidates: candidates)
        #expect(all.dispatched.count == 5)
        #expect(!all.more)
        let beyond = LifecyclePlanner.planExchange(input(accept: 9), referenced: [:], candidates: candidates)
        #expect(beyond.dispatched.count == 5)
        #expect(!beyond.more)
    }

    @Test("accept 0 dispatches nothing but sets `more` when candidates exist")
    func acceptZero() {
        let plan = LifecyclePlanner.planExchange(input(accept: 0), referenced: [:], candidates: queued(1))
        #expect(plan.dispatched.isEmpty)
        #expect(plan.more)
        #expect(!plan.changesCommands)
        let none = LifecyclePlanner.planExchange(input(accept: 0), referenced: [:], candidates: [])
        #expect(!none.more)
        #expect(none == ExchangePlan())
    }

    @Test("an ack and a result for the same command in one poll apply in that order")
    func ackThenResult() {
        let record = dispatched("c1")
        let plan = LifecyclePlanner.planExchange(
            input(acks: ["c1"], results: [F.result("c1", .succeeded)], accept: 0), referenced: ["c1": record],
            candidates: [])
        #expect(plan.transitions.map(\.event) == ["ack", "result"])
        #expect(plan.transitions.map(\.to) == [.acked, .succeeded])
        #expect(plan.updated.count == 1)
        #expect(plan.updated.first?.state == .succeeded)
        #expect(plan.updated.first?.ackedAt == Self.now)
        #expect(plan.ignored.isEmpty)
        #expect(plan.dispatched.isEmpty)
    }

    @Test("acks and results naming unknown ids, or not allowed now, are ignored")
    func ignored() {
        let neverSent = F.command(id: "fresh")
        let plan = LifecyclePlanner.planExchange(
            input(acks: ["nope", "fresh"], results: [F.result("ghost"), F.result("fresh")], accept: 0),
            referenced: ["fresh": neverSent], candidates: [])
        #expect(plan.ignored == ["nope", "fresh", "ghost", "fresh"])
        #expect(plan.transitions.isEmpty)
        #expect(plan.updated.isEmpty)
        #expect(!plan.changesCommands)
    }

    @Test("a duplicate ack of an ACKED command changes nothing and is not ignored")
    func duplicateAck() {
        var record = dispatched("c1")
        _ = record.apply(.ack, at: F.at(60))
        let plan = LifecyclePlanner.planExchange(
            input(acks: ["c1"], accept: 0), referenced: ["c1": record], candidates: [])
        #expect(plan == ExchangePlan())
    }

    @Test("a late result after a terminal state is a history entry, the record is kept")
    func lateResult() {
        var record = dispatched("c1")
        _ = record.apply(.cancel(reason: nil), at: F.at(60))
        let plan = LifecyclePlanner.planExchange(
            input(results: [F.result("c1")], accept: 0), referenced: ["c1": record], candidates: [])
        #expect(plan.transitions.map(\.event) == ["late-result"])
        #expect(plan.updated == [record])
        #expect(plan.ignored.isEmpty)
    }

    @Test("a QUEUED candidate acknowledged in the same poll is not dispatched again")
    func ackedCandidateNotRedispatched() {
        var lapsed = dispatched("c1")
        _ = lapsed.apply(.leaseLapsed, at: F.at(80))
        let others = queued(2)
        let plan = LifecyclePlanner.planExchange(
            input(acks: ["c1"], accept: 5), referenced: ["c1": lapsed], candidates: [lapsed] + others)
        #expect(plan.dispatched.map(\.id) == ["q0", "q1"])
        #expect(plan.updated.map(\.id) == ["c1", "q0", "q1"])
        #expect(plan.updated.first?.state == .acked)
        #expect(!plan.more)
    }

    @Test("redelivery increments the attempt of a lapsed candidate")
    func redelivery() {
        var lapsed = dispatched("c1")
        _ = lapsed.apply(.leaseLapsed, at: F.at(80))
        let plan = LifecyclePlanner.planExchange(input(accept: 1), referenced: [:], candidates: [lapsed])
        #expect(plan.dispatched.first?.attempt == 2)
        #expect(plan.dispatched.first?.logicalRequest.attempt == 2)
    }

    @Test("sweep: a QUEUED command past expiresAt expires")
    func sweepQueued() {
        let record = F.command(id: "c1", ttl: 50)
        let plan = LifecyclePlanner.planSweep([record], now: F.at(50))
        #expect(plan.updated.map(\.state) == [.expired])
        #expect(plan.transitions.map(\.event) == ["expire"])
        #expect(plan.dispatched.isEmpty)
    }

    @Test("sweep: expiry wins over a lapsed lease")
    func sweepExpiryWins() {
        let record = dispatched("c1", ttl: 90)  // lease until 80, expires at 90
        let plan = LifecyclePlanner.planSweep([record], now: F.at(95))
        #expect(plan.updated.map(\.state) == [.expired])
        #expect(plan.transitions.first?.event == "expire")
        #expect(plan.updated.first?.outcome?.code == OutcomeCode.expired)
    }

    @Test("sweep: a lapsed lease requeues, or fails on the last attempt")
    func sweepLease() {
        let plan = LifecyclePlanner.planSweep([dispatched("c1"), dispatched("c2", maxAttempts: 1)], now: F.at(80))
        #expect(plan.updated.map(\.state) == [.queued, .failed])
        #expect(plan.updated.last?.outcome?.code == OutcomeCode.undeliverable)
        #expect(plan.transitions.map(\.event) == ["lease-lapsed", "lease-lapsed"])
    }

    @Test("sweep: an ACKED command past its result deadline times out")
    func sweepTimeout() {
        var record = dispatched("c1")
        _ = record.apply(.ack, at: F.at(60))  // deadline 120
        #expect(LifecyclePlanner.planSweep([record], now: F.at(119.999)) == ExchangePlan())
        let plan = LifecyclePlanner.planSweep([record], now: F.at(120))
        #expect(plan.updated.map(\.state) == [.timedOut])
        #expect(plan.transitions.map(\.event) == ["timeout"])
    }

    @Test("sweep: records not yet due, and terminal records, are skipped")
    func sweepSkips() {
        var done = dispatched("c3")
        _ = done.apply(.result(F.result("c3")), at: F.at(60))
        let plan = LifecyclePlanner.planSweep(
            [F.command(id: "c1"), dispatched("c2"), done], now: F.at(70))
        #expect(plan == ExchangePlan())
        #expect(!plan.changesCommands)
    }

    @Test("the dispatch horizon and referenced ids come from the input")
    func inputHelpers() {
        let value = ExchangeInput(
            device: "d", now: F.t0, acks: ["a", "b"], results: [F.result("b"), F.result("c")], accept: 1,
            leaseSeconds: 30, dispatchLeadSeconds: 5)
        #expect(value.dispatchHorizon == F.at(5))
        #expect(value.referencedIDs == ["a", "b", "c"])
    }
}
