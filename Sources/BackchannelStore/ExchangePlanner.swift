public import BackchannelProtocol

/// What one physical exchange asks the store to do, in one transaction.
public struct ExchangeInput: Sendable {
    /// The device the poll came from (already authenticated).
    public var device: String
    /// The time of the exchange; every transition in it carries this time.
    public var now: Timestamp
    /// Uplink items to store, each at most once per (device, id).
    public var uplink: [UplinkItem]
    /// Request ids the device acknowledged.
    public var acks: [String]
    /// Logical responses.
    public var results: [LogicalResult]
    /// How many QUEUED commands to dispatch (already capped by the hub).
    public var accept: Int
    /// How long a dispatched command waits for its acknowledgement.
    public var leaseSeconds: Double
    /// Commands whose `notBefore` is within this many seconds are dispatched early, so the
    /// device holds them and starts them on time.
    public var dispatchLeadSeconds: Double
    /// New requests this device sends to others (rendezvous), already authorised by the hub,
    /// each with an idempotency key derived from the sender's `ref`.
    public var routed: [CommandRecord] = []
    /// Ids of rendezvous replies the device acknowledged.
    public var replyAcks: [String] = []
    /// How many rendezvous replies to deliver to the device in this exchange.
    public var replyLimit: Int = 0
    /// Whether the device is available: `whenAvailable` commands are dispatched only then.
    public var available: Bool = true

    /// Creates an exchange input.
    public init(
        device: String, now: Timestamp, uplink: [UplinkItem] = [], acks: [String] = [],
        results: [LogicalResult] = [], accept: Int, leaseSeconds: Double, dispatchLeadSeconds: Double = 0
    ) {
        self.device = device
        self.now = now
        self.uplink = uplink
        self.acks = acks
        self.results = results
        self.accept = accept
        self.leaseSeconds = leaseSeconds
        self.dispatchLeadSeconds = dispatchLeadSeconds
    }

    /// The latest `notBefore` that may be dispatched now.
    public var dispatchHorizon: Timestamp { now.adding(seconds: dispatchLeadSeconds) }

    /// Ids of the commands the acks and results refer to.
    public var referencedIDs: Set<String> { Set(acks).union(results.map(\.id)) }
}

/// The changes an exchange makes, decided purely from the loaded records.
public struct ExchangePlan: Sendable, Hashable {
    /// Commands whose record changed, in their new form.
    public var updated: [CommandRecord] = []
    /// History entries to append.
    public var transitions: [TransitionRecord] = []
    /// Commands dispatched in this exchange, in delivery order.
    public var dispatched: [CommandRecord] = []
    /// More dispatchable commands remain.
    public var more: Bool = false
    /// Acks and results that named a command unknown to this device, or not allowed now.
    public var ignored: [String] = []

    /// Creates an empty plan.
    public init() {}

    /// Whether the plan changes any command.
    public var changesCommands: Bool { !updated.isEmpty || !transitions.isEmpty }
}

/// Pure decisions shared by every store: which transitions an exchange or a sweep makes.
public enum LifecyclePlanner {
    /// Plans one exchange.
    ///
    /// - Parameters:
    ///   - input: the exchange.
    ///   - referenced: the commands named by acks and results that belong to `input.device`.
    ///   - candidates: QUEUED commands of the device that are due (`notBefore` within the
    ///     horizon, not expired), oldest first, at least `accept + 1` of them when there are.
    public static func planExchange(
        _ input: ExchangeInput,
        referenced: [String: CommandRecord],
        candidates: [CommandRecord]
    ) -> ExchangePlan {
        var plan = ExchangePlan()
        var changed: [String: CommandRecord] = [:]
        var order: [String] = []
        func apply(_ event: LifecycleEvent, to id: String) {
            guard var record = changed[id] ?? referenced[id] else {
                plan.ignored.append(id)
                return
            }
            switch record.apply(event, at: input.now) {
            case .transitioned(let entry), .lateResult(let entry):
                plan.transitions.append(entry)
                if changed[id] == nil { order.append(id) }
                changed[id] = record
            case .unchanged:
                break
            case .illegal:
                plan.ignored.append(id)
            }
        }
        for id in input.acks { apply(.ack, to: id) }
        for result in input.results { apply(.result(result), to: result.id) }

        if input.accept > 0 {
            let lease = input.now.adding(seconds: input.leaseSeconds)
            var remaining = candidates.filter { candidate in
                (changed[candidate.id]?.state ?? candidate.state) == .queued
                    && (input.available || candidate.delivery != .whenAvailable)
            }.makeIterator()
            while plan.dispatched.count < input.accept, let candidate = remaining.next() {
                var record = changed[candidate.id] ?? candidate
                guard case .transitioned(let entry) = record.apply(.dispatch(leaseUntil: lease), at: input.now) else {
                    continue
                }
                plan.transitions.append(entry)
                if changed[record.id] == nil { order.append(record.id) }
                changed[record.id] = record
                plan.dispatched.append(record)
            }
            plan.more = remaining.next() != nil
        } else {
            plan.more = candidates.contains {
                (changed[$0.id]?.state ?? $0.state) == .queued && (input.available || $0.delivery != .whenAvailable)
            }
        }
        plan.updated = order.compactMap { changed[$0] }
        return plan
    }

    /// Plans the deadline transitions of commands whose deadline may have passed.
    ///
    /// Expiry wins over a lapsed lease: a command past `expiresAt` is not delivered again.
    public static func planSweep(_ due: [CommandRecord], now: Timestamp) -> ExchangePlan {
        var plan = ExchangePlan()
        for var record in due {
            let event: LifecycleEvent
            switch record.state {
            case .queued:
                event = .expire
            case .dispatched where now >= record.expiresAt:
                event = .expire
            case .dispatched:
                event = .leaseLapsed
            case .acked:
                event = .timeOut
            default:
                continue
            }
            if case .transitioned(let entry) = record.apply(event, at: now) {
                plan.transitions.append(entry)
                plan.updated.append(record)
            }
        }
        return plan
    }
}
