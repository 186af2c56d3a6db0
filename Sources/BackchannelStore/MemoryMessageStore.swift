public import BackchannelProtocol
public import Foundation
import Synchronization

/// A `MessageStore` held in memory, for unit tests of hub logic. Nothing survives the process.
public actor MemoryMessageStore: MessageStore {
    private var devicesByID: [String: DeviceRecord] = [:]
    private var commandsByID: [String: CommandRecord] = [:]
    private var historyByCommand: [String: [TransitionRecord]] = [:]
    private var uplinkRecords: [UplinkRecord] = []
    private var uplinkKeys: Set<String> = []
    private var idempotency: [String: String] = [:]
    /// Insertion order of commands: lists and dispatch follow it, as a database's row order.
    private var insertion: [String: Int] = [:]
    private var rulesInOrder: [RendezvousRule] = []
    private var presence: [String: PresenceView] = [:]
    private var campaignsByID: [String: CampaignRecord] = [:]
    private var settings: [String: Data] = [:]
    private var campaignOrder: [String] = []
    private var presenceLog: [PresenceTransition] = []
    private var operatorsByName: [String: OperatorRecord] = [:]
    private var auditLog: [AuditEntry] = []
    private var intervalRows: [String: [Int64: IntervalRecord]] = [:]
    private var powerDocs: [String: [String: PowerDocument]] = [:]
    private let writes = Atomic<UInt64>(0)

    /// Creates an empty store.
    public init() {}

    public nonisolated var writeCount: UInt64 { writes.load(ordering: .relaxed) }

    private func committed() { writes.add(1, ordering: .relaxed) }

    public func insertDevice(_ device: DeviceRecord) throws {
        guard devicesByID[device.id] == nil else { throw StoreError.conflict("device '\(device.id)' already exists") }
        devicesByID[device.id] = device
        committed()
    }

    public func device(id: String) -> DeviceRecord? { devicesByID[id] }

    public func devices(after cursor: String?, limit: Int, tenant: String?) -> [DeviceRecord] {
        devicesByID.values.filter { (cursor == nil || $0.id > cursor!) && (tenant == nil || $0.tenant == tenant) }
            .sorted { $0.id < $1.id }.prefix(limit).map { $0 }
    }

    public func setTokenHash(_ tokenHash: String, device: String) -> Bool {
        guard devicesByID[device] != nil else { return false }
        devicesByID[device]?.tokenHash = tokenHash
        committed()
        return true
    }

    public func recordLastSeen(_ seen: [String: Timestamp]) {
        var changed = false
        for (id, at) in seen where devicesByID[id] != nil && (devicesByID[id]?.lastSeenAt.map { $0 < at } ?? true) {
            devicesByID[id]?.lastSeenAt = at
            changed = true
        }
        if changed { committed() }
    }

    public func submit(_ command: CommandRecord) throws -> SubmitResult {
        guard devicesByID[command.device] != nil else { throw StoreError.unknownDevice(command.device) }
        if let key = command.idempotencyKey, let existingID = idempotency[command.device + "\u{0}" + key],
            let existing = commandsByID[existingID]
        {
            guard existing.name == command.name, existing.args == command.args else {
                throw StoreError.idempotencyMismatch(key)
            }
            return .existing(existing)
        }
        guard commandsByID[command.id] == nil else {
            throw StoreError.conflict("command '\(command.id)' already exists")
        }
        commandsByID[command.id] = command
        insertion[command.id] = insertion.count
        historyByCommand[command.id] = [.created(command)]
        if let key = command.idempotencyKey { idempotency[command.device + "\u{0}" + key] = command.id }
        committed()
        return .created(command)
    }

    public func command(id: String) -> CommandRecord? { commandsByID[id] }

    public func history(command: String) -> [TransitionRecord] { historyByCommand[command] ?? [] }

    public func commands(_ query: CommandQuery) -> [CommandRecord] {
        let before = query.before.map { insertion[$0] ?? -1 }
        return commandsByID.values.filter { record in
            (query.device == nil || record.device == query.device)
                && (query.state == nil || record.state == query.state)
                && (query.replyTo == nil || record.replyTo == query.replyTo)
                && (query.ref == nil || record.replyRef == query.ref)
                && (query.campaign == nil || record.campaign == query.campaign)
                && (query.tenant == nil || devicesByID[record.device]?.tenant == query.tenant)
                && (before == nil || insertion[record.id]! < before!)
        }.sorted { insertion[$0.id]! > insertion[$1.id]! }.prefix(query.limit).map { $0 }
    }

    public func cancel(command id: String, at now: Timestamp, reason: String?, onlyFrom: Set<MessageState>?)
        -> CancelResult
    {
        guard var record = commandsByID[id] else { return .notFound }
        let previous = record.state
        if let onlyFrom, !onlyFrom.contains(previous), !previous.isTerminal { return .moved(record) }
        guard case .transitioned(let entry) = record.apply(.cancel(reason: reason), at: now) else {
            return .alreadyTerminal(record)
        }
        apply(ExchangePlan(updated: [record], transitions: [entry]))
        committed()
        return .canceled(record, previous: previous)
    }

    public func pendingCount(device: String) -> Int {
        commandsByID.values.filter { $0.device == device && !$0.state.isTerminal }.count
    }

    public func pendingWork(device: String, horizon: Timestamp, now: Timestamp) -> PendingWork {
        let queued = commandsByID.values.filter { $0.device == device && $0.state == .queued && $0.expiresAt > now }
        let due = queued.filter { ($0.notBefore ?? now) <= horizon }
        let dueNow = due.contains { $0.delivery != .whenAvailable }
        let dueWhenAvailable = due.contains { $0.delivery == .whenAvailable }
        let next = queued.compactMap(\.notBefore).filter { $0 > horizon }.min()
        let replies = commandsByID.values.contains { $0.replyTo == device && $0.replyDeliverable(at: now) }
        var work = PendingWork(dueNow: dueNow, nextNotBefore: next, repliesDue: replies)
        work.dueWhenAvailable = dueWhenAvailable
        return work
    }

    public func exchange(
        _ input: ExchangeInput,
        memo: @Sendable (ExchangeOutcome) throws -> ExchangeMemo?
    ) throws -> ExchangeOutcome {
        var newlyStored: [String] = []
        var pendingUplink: [UplinkRecord] = []
        for item in input.uplink where !uplinkKeys.contains(input.device + "\u{0}" + item.id) {
            newlyStored.append(item.id)
            let seq = Int64(uplinkRecords.count + pendingUplink.count + 1)
            pendingUplink.append(UplinkRecord(seq: seq, device: input.device, item: item, receivedAt: input.now))
        }
        let referenced = input.referencedIDs.reduce(into: [String: CommandRecord]()) { result, id in
            if let record = commandsByID[id], record.device == input.device { result[id] = record }
        }
        let horizon = input.dispatchHorizon
        let candidates = commandsByID.values.filter {
            $0.device == input.device && $0.state == .queued && $0.expiresAt > input.now
                && ($0.notBefore ?? input.now) <= horizon
        }.sorted { ($0.createdAt, insertion[$0.id]!) < ($1.createdAt, insertion[$1.id]!) }
        let plan = LifecyclePlanner.planExchange(input, referenced: referenced, candidates: candidates)

        // Rendezvous: new requests from this device, acknowledged replies, replies to deliver.
        var routed: [RoutedSubmission] = []
        var created: [CommandRecord] = []
        for record in input.routed {
            // A ref is the sender's: the same ref sent again, to any target, is the same request.
            let earlier =
                commandsByID.values.first { $0.replyTo == record.replyTo && $0.replyRef == record.replyRef }
                ?? created.first { $0.replyTo == record.replyTo && $0.replyRef == record.replyRef }
            if let existing = earlier {
                let same =
                    existing.device == record.device && existing.name == record.name && existing.args == record.args
                routed.append(same ? .existing(existing) : .refReused(ref: record.replyRef ?? ""))
                continue
            }
            guard devicesByID[record.device] != nil else { throw StoreError.unknownDevice(record.device) }
            created.append(record)
            routed.append(.created(record))
        }
        let acked = input.replyAcks.compactMap { id -> CommandRecord? in
            guard var record = commandsByID[id], record.replyTo == input.device,
                record.replyState == .pending || record.replyState == .sent
            else { return nil }
            record.replyState = .acked
            record.replyLeaseUntil = nil
            return record
        }
        let ackedIDs = Set(acked.map(\.id))
        let deliverable = commandsByID.values.filter {
            $0.replyTo == input.device && !ackedIDs.contains($0.id) && $0.replyDeliverable(at: input.now)
        }.sorted {
            ($0.finishedAt ?? $0.updatedAt, insertion[$0.id]!) < ($1.finishedAt ?? $1.updatedAt, insertion[$1.id]!)
        }
        let replies = deliverable.prefix(input.replyLimit).map { record -> CommandRecord in
            var record = record
            record.replyState = .sent
            record.replyLeaseUntil = input.now.adding(seconds: input.leaseSeconds)
            return record
        }

        let changes =
            plan.changesCommands || !newlyStored.isEmpty || !created.isEmpty || !acked.isEmpty || !replies.isEmpty
        var outcome = ExchangeOutcome(
            plan: plan, stored: input.uplink.map(\.id), newlyStored: newlyStored, wrote: changes
        )
        outcome.routed = routed
        outcome.replies = replies
        outcome.moreReplies = deliverable.count > replies.count
        // Build the memo before committing anything, as a database store does inside its
        // transaction: if it throws, nothing is kept.
        let remembered = changes ? try memo(outcome) : nil
        outcome.memo = remembered
        if changes {
            for record in pendingUplink {
                uplinkKeys.insert(input.device + "\u{0}" + record.item.id)
                uplinkRecords.append(record)
            }
            for record in created {
                commandsByID[record.id] = record
                insertion[record.id] = insertion.count
                historyByCommand[record.id] = [.created(record)]
                if let key = record.idempotencyKey { idempotency[record.device + "\u{0}" + key] = record.id }
            }
            for record in acked + replies { commandsByID[record.id] = record }
            apply(plan)
            if let remembered { devicesByID[input.device]?.lastExchange = remembered }
            committed()
        }
        return outcome
    }

    public func sweep(at now: Timestamp, limit: Int) -> ExchangePlan {
        let due = commandsByID.values.filter { record in
            switch record.state {
            case .queued: record.expiresAt <= now
            case .dispatched: record.expiresAt <= now || (record.leaseExpiresAt.map { $0 <= now } ?? false)
            case .acked: record.resultDeadline.map { $0 <= now } ?? false
            default: false
            }
        }.sorted { $0.id < $1.id }.prefix(limit)
        let plan = LifecyclePlanner.planSweep(Array(due), now: now)
        if plan.changesCommands {
            apply(plan)
            committed()
        }
        return plan
    }

    public func nextDeadline() -> Timestamp? {
        commandsByID.values.compactMap { record -> Timestamp? in
            switch record.state {
            case .queued: record.expiresAt
            case .dispatched: min(record.expiresAt, record.leaseExpiresAt ?? record.expiresAt)
            case .acked: record.resultDeadline
            default: nil
            }
        }.min()
    }

    public func uplink(device: String, kind: UplinkKind?, after cursor: Int64?, limit: Int) -> [UplinkRecord] {
        uplinkRecords.reversed().filter { record in
            record.device == device && (kind == nil || record.item.kind == kind)
                && (cursor == nil || record.seq < cursor!)
        }.prefix(limit).map { $0 }
    }

    public func uplink(
        device: String, kind: UplinkKind?, measuredIn range: Range<Timestamp>, after cursor: UplinkCursor?, limit: Int
    ) -> [UplinkRecord] {
        uplinkRecords.filter { record in
            record.device == device && (kind == nil || record.item.kind == kind) && range.contains(record.item.at)
                && (cursor.map { (record.item.at, record.seq) > ($0.at, $0.seq) } ?? true)
        }.sorted { ($0.item.at, $0.seq) < ($1.item.at, $1.seq) }.prefix(limit).map { $0 }
    }

    public func setting(_ key: String) -> Data? { settings[key] }

    public func setSetting(_ key: String, _ value: Data) {
        settings[key] = value
        committed()
    }

    public func insertCampaign(_ campaign: CampaignRecord, children: [CommandRecord]) throws {
        guard campaignsByID[campaign.id] == nil else { throw StoreError.conflict("campaign exists") }
        if let missing = children.first(where: { devicesByID[$0.device] == nil }) {
            throw StoreError.unknownDevice(missing.device)
        }
        campaignsByID[campaign.id] = campaign
        campaignOrder.append(campaign.id)
        for child in children {
            commandsByID[child.id] = child
            insertion[child.id] = insertion.count
            historyByCommand[child.id] = [.created(child)]
        }
        committed()
    }

    public func campaign(id: String) -> CampaignRecord? { campaignsByID[id] }

    public func campaigns(limit: Int, tenant: String?) -> [CampaignRecord] {
        campaignOrder.reversed().compactMap { campaignsByID[$0] }.filter { tenant == nil || $0.tenant == tenant }
            .prefix(limit).map { $0 }
    }

    public func insertOperator(_ record: OperatorRecord) throws {
        guard operatorsByName[record.name] == nil else {
            throw StoreError.conflict("operator '\(record.name)' already exists")
        }
        operatorsByName[record.name] = record
        committed()
    }

    public func operatorRecord(name: String) -> OperatorRecord? { operatorsByName[name] }

    public func operators(tenant: String?) -> [OperatorRecord] {
        operatorsByName.values.filter { tenant == nil || $0.tenant == tenant }.sorted { $0.name < $1.name }
    }

    public func setOperatorTokenHash(_ tokenHash: String, operator name: String) -> Bool {
        guard operatorsByName[name] != nil else { return false }
        operatorsByName[name]?.tokenHash = tokenHash
        committed()
        return true
    }

    public func deleteOperator(name: String) -> Bool {
        guard operatorsByName.removeValue(forKey: name) != nil else { return false }
        committed()
        return true
    }

    public func appendAudit(_ entries: [AuditEntry]) {
        guard !entries.isEmpty else { return }
        for var entry in entries {
            entry.seq = Int64(auditLog.count + 1)
            auditLog.append(entry)
        }
        committed()
    }

    public func audit(tenant: String?, before cursor: Int64?, limit: Int) -> [AuditEntry] {
        auditLog.reversed().filter { (cursor == nil || $0.seq < cursor!) && (tenant == nil || $0.tenant == tenant) }
            .prefix(limit).map { $0 }
    }

    public func finishCampaign(id: String, state: CampaignState, at: Timestamp, detail: String?, cancelling: String?)
        -> [CancelResult]?
    {
        guard campaignsByID[id]?.state == .running else { return nil }
        campaignsByID[id]?.state = state
        campaignsByID[id]?.finishedAt = at
        campaignsByID[id]?.detail = detail
        var canceled: [CancelResult] = []
        if let reason = cancelling {
            for var record in commandsByID.values where record.campaign == id && !record.state.isTerminal {
                let previous = record.state
                if case .transitioned(let entry) = record.apply(.cancel(reason: reason), at: at) {
                    apply(ExchangePlan(updated: [record], transitions: [entry]))
                    canceled.append(.canceled(record, previous: previous))
                }
            }
        }
        committed()
        return canceled
    }

    public func campaignCounts(id: String) -> [MessageState: Int] {
        commandsByID.values.filter { $0.campaign == id }.reduce(into: [:]) { $0[$1.state, default: 0] += 1 }
    }

    public func recordPresence(_ states: [PresenceView], transitions: [PresenceTransition]) {
        guard !states.isEmpty || !transitions.isEmpty else { return }
        for state in states where devicesByID[state.device] != nil { presence[state.device] = state }
        presenceLog += transitions.filter { devicesByID[$0.device] != nil }
        committed()
    }

    public func presenceStates() -> [PresenceView] {
        presence.values.sorted { $0.device < $1.device }
    }

    public func presenceHistory(device: String, limit: Int) -> [PresenceTransition] {
        Array(presenceLog.reversed().filter { $0.device == device }.prefix(limit))
    }

    public func insertRule(_ rule: RendezvousRule) throws {
        guard !rulesInOrder.contains(where: { $0.id == rule.id }) else {
            throw StoreError.conflict("rule '\(rule.id)' already exists")
        }
        rulesInOrder.append(rule)
        committed()
    }

    public func rules() -> [RendezvousRule] { rulesInOrder }

    public func deleteRule(id: String) -> Bool {
        guard let index = rulesInOrder.firstIndex(where: { $0.id == id }) else { return false }
        rulesInOrder.remove(at: index)
        committed()
        return true
    }

    public func putIntervals(_ records: [IntervalRecord]) {
        guard !records.isEmpty else { return }
        for record in records { intervalRows[record.device, default: [:]][record.start.milliseconds] = record }
        committed()
    }

    public func intervals(device: String, startingIn range: Range<Timestamp>) -> [IntervalRecord] {
        (intervalRows[device] ?? [:]).values.filter { range.contains($0.start) }.sorted { $0.start < $1.start }
    }

    public func pruneIntervals(before cutoff: Timestamp) -> Int {
        var removed = 0
        for device in intervalRows.keys {
            let before = intervalRows[device]?.count ?? 0
            intervalRows[device] = intervalRows[device]?.filter { $0.value.start >= cutoff }
            removed += before - (intervalRows[device]?.count ?? 0)
        }
        if removed > 0 { committed() }
        return removed
    }

    public func putPowerDocuments(_ documents: [PowerDocument]) {
        guard !documents.isEmpty else { return }
        for document in documents { powerDocs[document.kind, default: [:]][document.key] = document }
        committed()
    }

    public func powerDocument(kind: String, key: String) -> PowerDocument? { powerDocs[kind]?[key] }

    public func powerDocuments(_ query: PowerDocumentQuery) -> [PowerDocument] {
        let matching = (powerDocs[query.kind] ?? [:]).values.filter { document in
            (query.tenant == nil || document.tenant == query.tenant)
                && (query.device == nil || document.device == query.device)
                && (query.range.map { $0.contains(document.at) } ?? true)
        }
        let ordered = matching.sorted { ($0.at, $0.key) > ($1.at, $1.key) }
        return Array(ordered.prefix(max(0, query.limit)))
    }

    public func deletePowerDocument(kind: String, key: String) -> Bool {
        guard powerDocs[kind]?.removeValue(forKey: key) != nil else { return false }
        committed()
        return true
    }

    private func apply(_ plan: ExchangePlan) {
        for record in plan.updated { commandsByID[record.id] = record }
        for entry in plan.transitions { historyByCommand[entry.command, default: []].append(entry) }
    }
}

extension ExchangePlan {
    /// A plan with the given changes, for stores that apply single transitions.
    public init(updated: [CommandRecord], transitions: [TransitionRecord]) {
        self.init()
        self.updated = updated
        self.transitions = transitions
    }
}
