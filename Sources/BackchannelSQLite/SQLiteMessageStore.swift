public import BackchannelProtocol
public import BackchannelStore
public import Foundation
import GRDB
import Synchronization

/// The embedded default store: one SQLite file in WAL mode, through GRDB.
///
/// Every operation is one transaction. With ``Configuration/Durability/full`` (the default)
/// each commit is fsynced before the call returns, so what the hub acknowledges survives a
/// `kill -9` and a power cut.
public final class SQLiteMessageStore: MessageStore {
    /// Store settings.
    public struct Configuration: Sendable {
        /// How hard each commit is pushed to disk.
        public enum Durability: String, Sendable, CaseIterable {
            /// fsync on every commit (`synchronous = FULL`): survives power loss.
            case full
            /// fsync at checkpoints only (`synchronous = NORMAL`): survives a process crash,
            /// may lose the last commits on power loss.
            case normal
        }

        /// Commit durability.
        public var durability: Durability = .full
        /// Readers kept open in parallel with the writer.
        public var maximumReaderCount: Int = 8

        /// The default configuration.
        public init() {}
    }

    let pool: DatabasePool
    private let writes = Atomic<UInt64>(0)
    /// The database file.
    public let path: String

    /// Opens (creating if needed) the store at `path` and applies pending migrations.
    public init(path: String, configuration: Configuration = Configuration()) throws {
        var config = GRDB.Configuration()
        config.maximumReaderCount = configuration.maximumReaderCount
        config.busyMode = .timeout(10)
        let synchronous = configuration.durability == .full ? "FULL" : "NORMAL"
        config.prepareDatabase { db in
            try db.execute(sql: "PRAGMA synchronous = \(synchronous)")
            try db.execute(sql: "PRAGMA foreign_keys = ON")
        }
        self.path = path
        self.pool = try DatabasePool(path: path, configuration: config)
        try Self.migrator.migrate(pool)
    }

    public var writeCount: UInt64 { writes.load(ordering: .relaxed) }

    func write<T: Sendable>(_ body: @Sendable @escaping (Database) throws -> (T, changed: Bool)) async throws
        -> T
    {
        let (value, changed) = try await pool.write(body)
        if changed { writes.add(1, ordering: .relaxed) }
        return value
    }

    // MARK: Devices

    public func insertDevice(_ device: DeviceRecord) async throws {
        let labels = try Self.encodeJSON(device.labels)
        try await write { db in
            if try Bool.fetchOne(db, sql: "SELECT 1 FROM devices WHERE id = ?", arguments: [device.id]) == true {
                throw StoreError.conflict("device '\(device.id)' already exists")
            }
            try db.execute(
                sql: """
                    INSERT INTO devices (id, name, labels, token_hash, created_at, last_seen_at, tenant)
                    VALUES (?, ?, ?, ?, ?, ?, ?)
                    """,
                arguments: [
                    device.id, device.name, labels, device.tokenHash, device.createdAt.milliseconds,
                    device.lastSeenAt?.milliseconds, device.tenant,
                ]
            )
            return ((), true)
        }
    }

    public func device(id: String) async throws -> DeviceRecord? {
        try await pool.read { db in
            try Row.fetchOne(db, sql: "SELECT * FROM devices WHERE id = ?", arguments: [id]).map(Self.device(from:))
        }
    }

    public func devices(after cursor: String?, limit: Int, tenant: String?) async throws -> [DeviceRecord] {
        try await pool.read { db in
            if let tenant {
                return try Row.fetchAll(
                    db,
                    sql: "SELECT * FROM devices WHERE tenant = ? AND (? IS NULL OR id > ?) ORDER BY id LIMIT ?",
                    arguments: [tenant, cursor, cursor, limit]
                ).map(Self.device(from:))
            }
            return try Row.fetchAll(
                db,
                sql: "SELECT * FROM devices WHERE (? IS NULL OR id > ?) ORDER BY id LIMIT ?",
                arguments: [cursor, cursor, limit]
            ).map(Self.device(from:))
        }
    }

    public func setTokenHash(_ tokenHash: String, device: String) async throws -> Bool {
        try await write { db in
            try db.execute(sql: "UPDATE devices SET token_hash = ? WHERE id = ?", arguments: [tokenHash, device])
            return (db.changesCount > 0, db.changesCount > 0)
        }
    }

    public func recordLastSeen(_ seen: [String: Timestamp]) async throws {
        guard !seen.isEmpty else { return }
        try await write { db in
            var changed = 0
            for (id, at) in seen {
                try db.execute(
                    sql:
                        "UPDATE devices SET last_seen_at = ? WHERE id = ? AND (last_seen_at IS NULL OR last_seen_at < ?)",
                    arguments: [at.milliseconds, id, at.milliseconds]
                )
                changed += db.changesCount
            }
            return ((), changed > 0)
        }
    }

    // MARK: Commands

    public func submit(_ command: CommandRecord) async throws -> SubmitResult {
        try await write { db in
            guard try Bool.fetchOne(db, sql: "SELECT 1 FROM devices WHERE id = ?", arguments: [command.device]) == true
            else { throw StoreError.unknownDevice(command.device) }
            if let key = command.idempotencyKey,
                let row = try Row.fetchOne(
                    db, sql: "SELECT * FROM commands WHERE device_id = ? AND idempotency_key = ?",
                    arguments: [command.device, key]
                )
            {
                let existing = try Self.command(from: row)
                guard existing.name == command.name, existing.args == command.args else {
                    throw StoreError.idempotencyMismatch(key)
                }
                return (.existing(existing), false)
            }
            if try Bool.fetchOne(db, sql: "SELECT 1 FROM commands WHERE id = ?", arguments: [command.id]) == true {
                throw StoreError.conflict("command '\(command.id)' already exists")
            }
            try Self.insert(command, db)
            return (.created(command), true)
        }
    }

    public func command(id: String) async throws -> CommandRecord? {
        try await pool.read { db in
            try Row.fetchOne(db, sql: "SELECT * FROM commands WHERE id = ?", arguments: [id]).map(Self.command(from:))
        }
    }

    public func history(command: String) async throws -> [TransitionRecord] {
        try await pool.read { db in
            try Row.fetchAll(
                db, sql: "SELECT * FROM command_events WHERE command_id = ? ORDER BY id", arguments: [command]
            ).map(Self.transition(from:))
        }
    }

    public func commands(_ query: CommandQuery) async throws -> [CommandRecord] {
        // Only the filters given appear in the SQL, so SQLite can use the matching index.
        var conditions: [String] = []
        var arguments = StatementArguments()
        if let device = query.device {
            conditions.append("device_id = ?")
            _ = arguments.append(contentsOf: [device])
        }
        if let state = query.state {
            conditions.append("state = ?")
            _ = arguments.append(contentsOf: [state.rawValue])
        }
        if let replyTo = query.replyTo {
            conditions.append("reply_to = ?")
            _ = arguments.append(contentsOf: [replyTo])
        }
        if let ref = query.ref {
            conditions.append("reply_ref = ?")
            _ = arguments.append(contentsOf: [ref])
        }
        if let campaign = query.campaign {
            conditions.append("campaign_id = ?")
            _ = arguments.append(contentsOf: [campaign])
        }
        if let before = query.before {
            conditions.append("rowid < (SELECT rowid FROM commands WHERE id = ?)")
            _ = arguments.append(contentsOf: [before])
        }
        if let tenant = query.tenant {
            conditions.append("device_id IN (SELECT id FROM devices WHERE tenant = ?)")
            _ = arguments.append(contentsOf: [tenant])
        }
        _ = arguments.append(contentsOf: [query.limit])
        let filter = conditions.isEmpty ? "" : "WHERE " + conditions.joined(separator: " AND ")
        let sql = "SELECT * FROM commands \(filter) ORDER BY rowid DESC LIMIT ?"
        let boundArguments = arguments
        return try await pool.read { db in
            try Row.fetchAll(db, sql: sql, arguments: boundArguments).map(Self.command(from:))
        }
    }

    public func cancel(command id: String, at now: Timestamp, reason: String?, onlyFrom: Set<MessageState>?)
        async throws -> CancelResult
    {
        try await write { db in
            guard let row = try Row.fetchOne(db, sql: "SELECT * FROM commands WHERE id = ?", arguments: [id]) else {
                return (.notFound, false)
            }
            var record = try Self.command(from: row)
            let previous = record.state
            if let onlyFrom, !onlyFrom.contains(previous), !previous.isTerminal { return (.moved(record), false) }
            guard case .transitioned(let entry) = record.apply(.cancel(reason: reason), at: now) else {
                return (.alreadyTerminal(record), false)
            }
            try Self.apply(ExchangePlan(updated: [record], transitions: [entry]), db)
            return (.canceled(record, previous: previous), true)
        }
    }

    public func pendingCount(device: String) async throws -> Int {
        try await pool.read { db in
            try Int.fetchOne(
                db,
                sql: "SELECT COUNT(*) FROM commands WHERE device_id = ? AND state IN ('QUEUED','DISPATCHED','ACKED')",
                arguments: [device]
            ) ?? 0
        }
    }

    // MARK: Poll path

    public func pendingWork(device: String, horizon: Timestamp, now: Timestamp) async throws -> PendingWork {
        try await pool.read { db in
            // Due commands, telling whenAvailable ones apart (the hub knows the presence).
            func exists(whenAvailable: Bool) throws -> Bool {
                try Bool.fetchOne(
                    db,
                    sql: """
                        SELECT 1 FROM commands WHERE device_id = ? AND state = 'QUEUED' AND expires_at > ?
                        AND (not_before IS NULL OR not_before <= ?) AND (delivery = 'whenAvailable') = ? LIMIT 1
                        """,
                    arguments: [device, now.milliseconds, horizon.milliseconds, whenAvailable]
                ) == true
            }
            let due = try exists(whenAvailable: false)
            let dueWhenAvailable = try exists(whenAvailable: true)
            let next = try Int64.fetchOne(
                db,
                sql: """
                    SELECT MIN(not_before) FROM commands WHERE device_id = ? AND state = 'QUEUED'
                    AND expires_at > ? AND not_before > ?
                    """,
                arguments: [device, now.milliseconds, horizon.milliseconds]
            )
            let replies = try Bool.fetchOne(
                db,
                sql: """
                    SELECT 1 FROM commands WHERE reply_to = ?1 AND reply_state IN ('pending', 'sent')
                    AND (reply_state = 'pending' OR reply_lease <= ?2) LIMIT 1
                    """,
                arguments: [device, now.milliseconds]
            )
            var work = PendingWork(
                dueNow: due, nextNotBefore: next.map(Timestamp.init(milliseconds:)), repliesDue: replies == true)
            work.dueWhenAvailable = dueWhenAvailable
            return work
        }
    }

    public func exchange(
        _ input: ExchangeInput,
        memo: @Sendable (ExchangeOutcome) throws -> ExchangeMemo?
    ) async throws -> ExchangeOutcome {
        let encodedUplink = try input.uplink.map { try Self.encodeJSON($0.data) }
        return try await withoutActuallyEscaping(memo) { memo in
            try await write { db in
                var newlyStored: [String] = []
                for (item, data) in zip(input.uplink, encodedUplink) {
                    try db.execute(
                        sql: """
                            INSERT INTO uplink (device_id, uplink_id, kind, name, at, data, received_at)
                            VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (device_id, uplink_id) DO NOTHING
                            """,
                        arguments: [
                            input.device, item.id, item.kind.rawValue, item.name, item.at.milliseconds, data,
                            input.now.milliseconds,
                        ]
                    )
                    if db.changesCount > 0 { newlyStored.append(item.id) }
                }
                var referenced: [String: CommandRecord] = [:]
                for id in input.referencedIDs {
                    if let row = try Row.fetchOne(
                        db, sql: "SELECT * FROM commands WHERE id = ? AND device_id = ?", arguments: [id, input.device]
                    ) {
                        referenced[id] = try Self.command(from: row)
                    }
                }
                let candidates = try Row.fetchAll(
                    db,
                    sql: """
                        SELECT * FROM commands WHERE device_id = ? AND state = 'QUEUED' AND expires_at > ?
                        AND (not_before IS NULL OR not_before <= ?) AND (? OR delivery <> 'whenAvailable')
                        ORDER BY created_at, rowid LIMIT ?
                        """,
                    arguments: [
                        input.device, input.now.milliseconds, input.dispatchHorizon.milliseconds, input.available,
                        input.accept + 1 + referenced.count,
                    ]
                ).map(Self.command(from:))
                let plan = LifecyclePlanner.planExchange(input, referenced: referenced, candidates: candidates)
                let rendezvous = try Self.rendezvous(input, db)
                let changed = plan.changesCommands || !newlyStored.isEmpty || rendezvous.changed
                var outcome = ExchangeOutcome(
                    plan: plan, stored: input.uplink.map(\.id), newlyStored: newlyStored, wrote: changed
                )
                outcome.routed = rendezvous.routed
                outcome.replies = rendezvous.replies
                outcome.moreReplies = rendezvous.more
                var remembered: ExchangeMemo?
                if changed {
                    try Self.apply(plan, db)
                    remembered = try memo(outcome)
                    if let remembered {
                        try db.execute(
                            sql:
                                "UPDATE devices SET last_seq = ?, last_request_hash = ?, last_response = ? WHERE id = ?",
                            arguments: [remembered.seq, remembered.requestHash, remembered.response, input.device]
                        )
                    }
                }
                outcome.memo = remembered
                return (outcome, changed)
            }
        }
    }

    /// What an exchange did for rendezvous.
    private struct RendezvousChanges {
        var routed: [RoutedSubmission] = []
        var replies: [CommandRecord] = []
        var more = false
        var changed = false
    }

    /// Stores the device's new peer requests, applies its reply acks, and leases the replies to
    /// deliver, inside the exchange's transaction.
    private static func rendezvous(_ input: ExchangeInput, _ db: Database) throws -> RendezvousChanges {
        var changes = RendezvousChanges()
        for record in input.routed {
            // A ref is the sender's: the same ref sent again, to any target, is the same request.
            if let row = try Row.fetchOne(
                db, sql: "SELECT * FROM commands WHERE reply_to = ? AND reply_ref = ?",
                arguments: [record.replyTo, record.replyRef]
            ) {
                let existing = try command(from: row)
                let same =
                    existing.device == record.device && existing.name == record.name && existing.args == record.args
                changes.routed.append(same ? .existing(existing) : .refReused(ref: record.replyRef ?? ""))
                continue
            }
            guard try Bool.fetchOne(db, sql: "SELECT 1 FROM devices WHERE id = ?", arguments: [record.device]) == true
            else { throw StoreError.unknownDevice(record.device) }
            try insert(record, db)
            changes.routed.append(.created(record))
            changes.changed = true
        }
        for id in input.replyAcks {
            try db.execute(
                sql: """
                    UPDATE commands SET reply_state = 'acked', reply_lease = NULL
                    WHERE id = ? AND reply_to = ? AND reply_state IN ('pending', 'sent')
                    """,
                arguments: [id, input.device]
            )
            if db.changesCount > 0 { changes.changed = true }
        }
        guard input.replyLimit > 0 else { return changes }
        let due = try Row.fetchAll(
            db,
            sql: """
                SELECT * FROM commands WHERE reply_to = ?1 AND reply_state IN ('pending', 'sent')
                AND (reply_state = 'pending' OR reply_lease <= ?2) ORDER BY finished_at, rowid LIMIT ?3
                """,
            arguments: [input.device, input.now.milliseconds, input.replyLimit + 1]
        ).map(command(from:))
        changes.more = due.count > input.replyLimit
        for var record in due.prefix(input.replyLimit) {
            record.replyState = .sent
            record.replyLeaseUntil = input.now.adding(seconds: input.leaseSeconds)
            try updateReply(record, db)
            changes.replies.append(record)
            changes.changed = true
        }
        return changes
    }

    public func sweep(at now: Timestamp, limit: Int) async throws -> ExchangePlan {
        let ms = now.milliseconds
        // Most sweeps find nothing due: a read, which does not take the write lock.
        let anyDue = try await pool.read { db in
            try Bool.fetchOne(db, sql: "SELECT 1 FROM commands WHERE \(Self.dueCondition) LIMIT 1", arguments: [ms])
                == true
        }
        guard anyDue else { return ExchangePlan() }
        return try await write { db in
            let due = try Row.fetchAll(
                db,
                sql: "SELECT * FROM commands WHERE \(Self.dueCondition) ORDER BY id LIMIT ?2",
                arguments: [ms, limit]
            ).map(Self.command(from:))
            let plan = LifecyclePlanner.planSweep(due, now: now)
            if plan.changesCommands { try Self.apply(plan, db) }
            return (plan, plan.changesCommands)
        }
    }

    /// Commands with a deadline at or before `?1`.
    private static let dueCondition = """
        ((state IN ('QUEUED', 'DISPATCHED') AND expires_at <= ?1)
          OR (state = 'DISPATCHED' AND lease_expires_at <= ?1)
          OR (state = 'ACKED' AND result_deadline <= ?1))
        """

    public func nextDeadline() async throws -> Timestamp? {
        try await pool.read { db in
            try Int64.fetchOne(
                db,
                sql: """
                    SELECT MIN(t) FROM (
                      SELECT MIN(expires_at) AS t FROM commands WHERE state IN ('QUEUED', 'DISPATCHED')
                      UNION ALL SELECT MIN(lease_expires_at) FROM commands WHERE state = 'DISPATCHED'
                      UNION ALL SELECT MIN(result_deadline) FROM commands WHERE state = 'ACKED')
                    """
            ).map(Timestamp.init(milliseconds:))
        }
    }

    public func uplink(
        device: String, kind: UplinkKind?, measuredIn range: Range<Timestamp>, after cursor: UplinkCursor?, limit: Int
    ) async throws -> [UplinkRecord] {
        let after = cursor ?? UplinkCursor(at: range.lowerBound, seq: -1)
        // With a kind, the (device_id, kind, at, seq) index serves the range in order.
        let kindFilter = kind == nil ? "" : "AND kind = ?2"
        return try await pool.read { db in
            try Row.fetchAll(
                db,
                sql: """
                    SELECT * FROM uplink WHERE device_id = ?1 \(kindFilter)
                    AND at < ?3 AND (at > ?4 OR (at = ?4 AND seq > ?5)) AND at >= ?6
                    ORDER BY at, seq LIMIT ?7
                    """,
                arguments: [
                    device, kind?.rawValue, range.upperBound.milliseconds, after.at.milliseconds, after.seq,
                    range.lowerBound.milliseconds, limit,
                ]
            ).map(Self.uplinkRecord(from:))
        }
    }

    // MARK: Settings

    public func setting(_ key: String) async throws -> Data? {
        try await pool.read { db in
            try Data.fetchOne(db, sql: "SELECT value FROM settings WHERE key = ?", arguments: [key])
        }
    }

    public func setSetting(_ key: String, _ value: Data) async throws {
        try await write { db in
            try db.execute(
                sql:
                    "INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                arguments: [key, value])
            return ((), true)
        }
    }

    // MARK: Campaigns

    public func insertCampaign(_ campaign: CampaignRecord, children: [CommandRecord]) async throws {
        let args = try Self.encodeJSON(campaign.args)
        try await write { db in
            try db.execute(
                sql: """
                    INSERT INTO campaigns (id, name, args, state, created_at, device_count, per_minute,
                      abort_threshold, min_finished, until_available, expires_at, tenant)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                    """,
                arguments: [
                    campaign.id, campaign.name, args, campaign.state.rawValue, campaign.createdAt.milliseconds,
                    campaign.deviceCount, campaign.perMinute, campaign.abortThreshold, campaign.minFinished,
                    campaign.untilAvailable, campaign.expiresAt.milliseconds, campaign.tenant,
                ]
            )
            for child in children {
                guard
                    try Bool.fetchOne(db, sql: "SELECT 1 FROM devices WHERE id = ?", arguments: [child.device]) == true
                else { throw StoreError.unknownDevice(child.device) }
                try Self.insert(child, db)
            }
            return ((), true)
        }
    }

    static func campaign(from row: Row) throws -> CampaignRecord {
        guard let state = CampaignState(rawValue: row["state"]) else { throw StoreError.corrupt("campaign state") }
        var record = CampaignRecord(
            id: row["id"], name: row["name"], args: try decodeJSON(JSONValue.self, row["args"]),
            createdAt: Timestamp(milliseconds: row["created_at"]), deviceCount: row["device_count"],
            perMinute: row["per_minute"], abortThreshold: row["abort_threshold"], minFinished: row["min_finished"],
            untilAvailable: row["until_available"], expiresAt: Timestamp(milliseconds: row["expires_at"]))
        record.state = state
        record.finishedAt = (row["finished_at"] as Int64?).map(Timestamp.init(milliseconds:))
        record.detail = row["detail"]
        record.tenant = row["tenant"]
        return record
    }

    public func campaign(id: String) async throws -> CampaignRecord? {
        try await pool.read { db in
            try Row.fetchOne(db, sql: "SELECT * FROM campaigns WHERE id = ?", arguments: [id]).map(Self.campaign(from:))
        }
    }

    public func campaigns(limit: Int, tenant: String?) async throws -> [CampaignRecord] {
        try await pool.read { db in
            try Row.fetchAll(
                db,
                sql: "SELECT * FROM campaigns WHERE (? IS NULL OR tenant = ?) ORDER BY rowid DESC LIMIT ?",
                arguments: [tenant, tenant, limit]
            ).map(Self.campaign(from:))
        }
    }

    public func finishCampaign(id: String, state: CampaignState, at: Timestamp, detail: String?, cancelling: String?)
        async throws -> [CancelResult]?
    {
        try await write { db in
            try db.execute(
                sql: "UPDATE campaigns SET state = ?, finished_at = ?, detail = ? WHERE id = ? AND state = 'running'",
                arguments: [state.rawValue, at.milliseconds, detail, id])
            guard db.changesCount > 0 else { return (nil, false) }
            var canceled: [CancelResult] = []
            if let reason = cancelling {
                let open = try Row.fetchAll(
                    db,
                    sql: "SELECT * FROM commands WHERE campaign_id = ? AND state IN ('QUEUED', 'DISPATCHED', 'ACKED')",
                    arguments: [id]
                ).map(Self.command(from:))
                var plan = ExchangePlan()
                for var record in open {
                    let previous = record.state
                    if case .transitioned(let entry) = record.apply(.cancel(reason: reason), at: at) {
                        plan.updated.append(record)
                        plan.transitions.append(entry)
                        canceled.append(.canceled(record, previous: previous))
                    }
                }
                try Self.apply(plan, db)
            }
            return (canceled, true)
        }
    }

    public func campaignCounts(id: String) async throws -> [MessageState: Int] {
        try await pool.read { db in
            var counts: [MessageState: Int] = [:]
            for row in try Row.fetchAll(
                db, sql: "SELECT state, COUNT(*) AS n FROM commands WHERE campaign_id = ? GROUP BY state",
                arguments: [id])
            {
                if let state = MessageState(rawValue: row["state"]) { counts[state] = row["n"] }
            }
            return counts
        }
    }

    // MARK: Presence

    public func recordPresence(_ states: [PresenceView], transitions: [PresenceTransition]) async throws {
        guard !states.isEmpty || !transitions.isEmpty else { return }
        let encoded = try states.map { ($0.device, try Self.encodeJSON($0)) }
        try await write { db in
            var changed = 0
            for (device, json) in encoded {
                try db.execute(sql: "UPDATE devices SET presence = ? WHERE id = ?", arguments: [json, device])
                changed += db.changesCount
            }
            for t in transitions {
                // A transition of a device deleted meanwhile has nowhere to go.
                guard try Bool.fetchOne(db, sql: "SELECT 1 FROM devices WHERE id = ?", arguments: [t.device]) == true
                else { continue }
                try db.execute(
                    sql: """
                        INSERT INTO presence_events (device_id, at, from_state, to_state, declared, note, reason)
                        VALUES (?, ?, ?, ?, ?, ?, ?)
                        """,
                    arguments: [
                        t.device, t.at.milliseconds, t.from.rawValue, t.to.rawValue, t.declared?.rawValue, t.note,
                        t.reason,
                    ]
                )
                changed += 1
            }
            return ((), changed > 0)
        }
    }

    public func presenceStates() async throws -> [PresenceView] {
        try await pool.read { db in
            try String.fetchAll(db, sql: "SELECT presence FROM devices WHERE presence IS NOT NULL ORDER BY id").map {
                try Self.decodeJSON(PresenceView.self, $0)
            }
        }
    }

    public func presenceHistory(device: String, limit: Int) async throws -> [PresenceTransition] {
        try await pool.read { db in
            try Row.fetchAll(
                db, sql: "SELECT * FROM presence_events WHERE device_id = ? ORDER BY seq DESC LIMIT ?",
                arguments: [device, limit]
            ).map { row in
                guard let from = InferredPresence(rawValue: row["from_state"]),
                    let to = InferredPresence(rawValue: row["to_state"])
                else { throw StoreError.corrupt("unknown presence state") }
                return PresenceTransition(
                    device: row["device_id"], at: Timestamp(milliseconds: row["at"]), from: from, to: to,
                    declared: (row["declared"] as String?).flatMap(DeclaredPresence.init(rawValue:)), note: row["note"],
                    reason: row["reason"])
            }
        }
    }

    // MARK: Rendezvous rules

    public func insertRule(_ rule: RendezvousRule) async throws {
        let commands = try Self.encodeJSON(rule.commands)
        try await write { db in
            if try Bool.fetchOne(db, sql: "SELECT 1 FROM rendezvous_rules WHERE id = ?", arguments: [rule.id]) == true {
                throw StoreError.conflict("rule '\(rule.id)' already exists")
            }
            try db.execute(
                sql: """
                    INSERT INTO rendezvous_rules (id, from_selector, to_selector, commands, created_at, tenant)
                    VALUES (?, ?, ?, ?, ?, ?)
                    """,
                arguments: [
                    rule.id, rule.from, rule.to, commands, rule.createdAt.milliseconds, rule.tenant,
                ]
            )
            return ((), true)
        }
    }

    public func rules() async throws -> [RendezvousRule] {
        try await pool.read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM rendezvous_rules ORDER BY rowid").map { row in
                RendezvousRule(
                    id: row["id"], from: row["from_selector"], to: row["to_selector"],
                    commands: try Self.decodeJSON([String].self, row["commands"]),
                    createdAt: Timestamp(milliseconds: row["created_at"]), tenant: row["tenant"]
                )
            }
        }
    }

    // MARK: Operators and audit

    public func insertOperator(_ record: OperatorRecord) async throws {
        try await write { db in
            if try Bool.fetchOne(db, sql: "SELECT 1 FROM operators WHERE name = ?", arguments: [record.name]) == true {
                throw StoreError.conflict("operator '\(record.name)' already exists")
            }
            try db.execute(
                sql: "INSERT INTO operators (name, tenant, role, token_hash, created_at) VALUES (?, ?, ?, ?, ?)",
                arguments: [
                    record.name, record.tenant, record.role.rawValue, record.tokenHash, record.createdAt.milliseconds,
                ]
            )
            return ((), true)
        }
    }

    static func operatorRecord(from row: Row) throws -> OperatorRecord {
        guard let role = OperatorRole(rawValue: row["role"]) else { throw StoreError.corrupt("unknown operator role") }
        return OperatorRecord(
            name: row["name"], tenant: row["tenant"], role: role, tokenHash: row["token_hash"],
            createdAt: Timestamp(milliseconds: row["created_at"]))
    }

    public func operatorRecord(name: String) async throws -> OperatorRecord? {
        try await pool.read { db in
            try Row.fetchOne(db, sql: "SELECT * FROM operators WHERE name = ?", arguments: [name])
                .map(Self.operatorRecord(from:))
        }
    }

    public func operators(tenant: String?) async throws -> [OperatorRecord] {
        try await pool.read { db in
            try Row.fetchAll(
                db, sql: "SELECT * FROM operators WHERE (? IS NULL OR tenant = ?) ORDER BY name",
                arguments: [tenant, tenant]
            ).map(Self.operatorRecord(from:))
        }
    }

    public func setOperatorTokenHash(_ tokenHash: String, operator name: String) async throws -> Bool {
        try await write { db in
            try db.execute(sql: "UPDATE operators SET token_hash = ? WHERE name = ?", arguments: [tokenHash, name])
            return (db.changesCount > 0, db.changesCount > 0)
        }
    }

    public func deleteOperator(name: String) async throws -> Bool {
        try await write { db in
            try db.execute(sql: "DELETE FROM operators WHERE name = ?", arguments: [name])
            return (db.changesCount > 0, db.changesCount > 0)
        }
    }

    public func appendAudit(_ entries: [AuditEntry]) async throws {
        guard !entries.isEmpty else { return }
        try await write { db in
            for entry in entries {
                try db.execute(
                    sql: """
                        INSERT INTO audit_log (at, actor, tenant, action, target, outcome, status, remote)
                        VALUES (?, ?, ?, ?, ?, ?, ?, ?)
                        """,
                    arguments: [
                        entry.at.milliseconds, entry.actor, entry.tenant, entry.action, entry.target, entry.outcome,
                        entry.status, entry.remote,
                    ]
                )
            }
            return ((), true)
        }
    }

    public func audit(tenant: String?, before cursor: Int64?, limit: Int) async throws -> [AuditEntry] {
        try await pool.read { db in
            try Row.fetchAll(
                db,
                sql: """
                    SELECT * FROM audit_log WHERE (? IS NULL OR tenant = ?) AND (? IS NULL OR seq < ?)
                    ORDER BY seq DESC LIMIT ?
                    """,
                arguments: [tenant, tenant, cursor, cursor, limit]
            ).map { row in
                AuditEntry(
                    seq: row["seq"], at: Timestamp(milliseconds: row["at"]), actor: row["actor"],
                    tenant: row["tenant"], action: row["action"], target: row["target"], outcome: row["outcome"],
                    status: row["status"], remote: row["remote"])
            }
        }
    }

    public func deleteRule(id: String) async throws -> Bool {
        try await write { db in
            try db.execute(sql: "DELETE FROM rendezvous_rules WHERE id = ?", arguments: [id])
            return (db.changesCount > 0, db.changesCount > 0)
        }
    }

    // MARK: Uplink

    public func uplink(device: String, kind: UplinkKind?, after cursor: Int64?, limit: Int) async throws
        -> [UplinkRecord]
    {
        try await pool.read { db in
            try Row.fetchAll(
                db,
                sql: kind == nil
                    ? "SELECT * FROM uplink WHERE device_id = ?1 AND seq < ?3 ORDER BY seq DESC LIMIT ?4"
                    : "SELECT * FROM uplink WHERE device_id = ?1 AND kind = ?2 AND seq < ?3 ORDER BY seq DESC LIMIT ?4",
                arguments: [device, kind?.rawValue, cursor ?? Int64.max, limit]
            ).map(Self.uplinkRecord(from:))
        }
    }

    static func uplinkRecord(from row: Row) throws -> UplinkRecord {
        UplinkRecord(
            seq: row["seq"],
            device: row["device_id"],
            item: UplinkItem(
                id: row["uplink_id"],
                kind: UplinkKind(rawValue: row["kind"]) ?? .reading,
                name: row["name"],
                at: Timestamp(milliseconds: row["at"]),
                data: try decodeJSON(JSONValue.self, row["data"])
            ),
            receivedAt: Timestamp(milliseconds: row["received_at"])
        )
    }
}
