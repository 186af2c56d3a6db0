import BackchannelProtocol
import BackchannelStore
import Foundation
import GRDB

extension SQLiteMessageStore {
    /// Append-only migrations. Once shipped, a migration is never edited: add a new one.
    static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1") { db in
            try db.execute(
                sql: """
                    CREATE TABLE devices (
                      id TEXT PRIMARY KEY NOT NULL,
                      name TEXT,
                      labels TEXT NOT NULL DEFAULT '{}',
                      token_hash TEXT NOT NULL,
                      created_at INTEGER NOT NULL,
                      last_seen_at INTEGER,
                      last_seq INTEGER,
                      last_request_hash TEXT,
                      last_response BLOB
                    );
                    CREATE TABLE commands (
                      id TEXT PRIMARY KEY NOT NULL,
                      device_id TEXT NOT NULL REFERENCES devices(id),
                      origin TEXT NOT NULL,
                      name TEXT NOT NULL,
                      args TEXT NOT NULL,
                      created_at INTEGER NOT NULL,
                      updated_at INTEGER NOT NULL,
                      expires_at INTEGER NOT NULL,
                      not_before INTEGER,
                      idempotency_key TEXT,
                      execution_timeout_ms INTEGER NOT NULL,
                      state TEXT NOT NULL,
                      attempt INTEGER NOT NULL,
                      max_attempts INTEGER NOT NULL,
                      lease_expires_at INTEGER,
                      acked_at INTEGER,
                      result_deadline INTEGER,
                      finished_at INTEGER,
                      outcome TEXT
                    );
                    CREATE UNIQUE INDEX commands_idempotency ON commands(device_id, idempotency_key)
                      WHERE idempotency_key IS NOT NULL;
                    CREATE INDEX commands_device_state ON commands(device_id, state, created_at);
                    CREATE INDEX commands_open_expiry ON commands(expires_at) WHERE state IN ('QUEUED', 'DISPATCHED');
                    CREATE INDEX commands_open_lease ON commands(lease_expires_at) WHERE state = 'DISPATCHED';
                    CREATE INDEX commands_open_result ON commands(result_deadline) WHERE state = 'ACKED';
                    CREATE TABLE command_events (
                      id INTEGER PRIMARY KEY AUTOINCREMENT,
                      command_id TEXT NOT NULL REFERENCES commands(id),
                      device_id TEXT NOT NULL,
                      at INTEGER NOT NULL,
                      from_state TEXT,
                      to_state TEXT NOT NULL,
                      event TEXT NOT NULL,
                      attempt INTEGER NOT NULL,
                      detail TEXT
                    );
                    CREATE INDEX command_events_command ON command_events(command_id, id);
                    CREATE TABLE uplink (
                      seq INTEGER PRIMARY KEY AUTOINCREMENT,
                      device_id TEXT NOT NULL REFERENCES devices(id),
                      uplink_id TEXT NOT NULL,
                      kind TEXT NOT NULL,
                      name TEXT NOT NULL,
                      at INTEGER NOT NULL,
                      data TEXT NOT NULL,
                      received_at INTEGER NOT NULL,
                      UNIQUE (device_id, uplink_id)
                    );
                    CREATE INDEX uplink_device_kind ON uplink(device_id, kind, seq);
                    """
            )
        }
        migrator.registerMigration("v2-list-indexes") { db in
            // Uplink pages without a kind filter, and command lists by device or by state.
            try db.execute(
                sql: """
                    CREATE INDEX uplink_device_seq ON uplink(device_id, seq);
                    CREATE INDEX commands_device ON commands(device_id);
                    CREATE INDEX commands_state ON commands(state);
                    """
            )
        }
        migrator.registerMigration("v3-rendezvous") { db in
            try db.execute(
                sql: """
                    ALTER TABLE commands ADD COLUMN reply_to TEXT;
                    ALTER TABLE commands ADD COLUMN reply_ref TEXT;
                    ALTER TABLE commands ADD COLUMN reply_state TEXT;
                    ALTER TABLE commands ADD COLUMN reply_lease INTEGER;
                    CREATE INDEX commands_replies ON commands(reply_to, reply_state)
                      WHERE reply_state IN ('pending', 'sent');
                    CREATE INDEX commands_reply_ref ON commands(reply_to, reply_ref) WHERE reply_to IS NOT NULL;
                    CREATE TABLE rendezvous_rules (
                      id TEXT PRIMARY KEY NOT NULL,
                      from_selector TEXT NOT NULL,
                      to_selector TEXT NOT NULL,
                      commands TEXT NOT NULL,
                      created_at INTEGER NOT NULL
                    );
                    """
            )
        }
        migrator.registerMigration("v4-soap-envelope") { db in
            // The inner SOAP envelope of a request sent through the SOAP binding, kept verbatim.
            try db.execute(sql: "ALTER TABLE commands ADD COLUMN envelope TEXT")
        }
        migrator.registerMigration("v5-uplink-by-time") { db in
            // Exports of a device's readings or events over a time range, in time order.
            try db.execute(sql: "CREATE INDEX uplink_device_kind_at ON uplink(device_id, kind, at, seq)")
        }
        migrator.registerMigration("v6-presence") { db in
            try db.execute(
                sql: """
                    ALTER TABLE devices ADD COLUMN presence TEXT;
                    CREATE TABLE presence_events (
                      seq INTEGER PRIMARY KEY AUTOINCREMENT,
                      device_id TEXT NOT NULL REFERENCES devices(id),
                      at INTEGER NOT NULL,
                      from_state TEXT NOT NULL,
                      to_state TEXT NOT NULL,
                      declared TEXT,
                      note TEXT,
                      reason TEXT NOT NULL
                    );
                    CREATE INDEX presence_events_device ON presence_events(device_id, seq);
                    """
            )
        }
        migrator.registerMigration("v7-rendezvous-ref-and-export-indexes") { db in
            // One request per (sender, ref), whatever the target; exports of every kind in time order.
            try db.execute(
                sql: """
                    DROP INDEX commands_reply_ref;
                    CREATE UNIQUE INDEX commands_reply_ref ON commands(reply_to, reply_ref) WHERE reply_to IS NOT NULL;
                    CREATE INDEX uplink_device_at ON uplink(device_id, at, seq);
                    """
            )
        }
        migrator.registerMigration("v8-delivery-mode") { db in
            try db.execute(sql: "ALTER TABLE commands ADD COLUMN delivery TEXT NOT NULL DEFAULT 'queued'")
        }
        migrator.registerMigration("v9-campaigns") { db in
            try db.execute(
                sql: """
                    CREATE TABLE campaigns (
                      id TEXT PRIMARY KEY NOT NULL,
                      name TEXT NOT NULL,
                      args TEXT NOT NULL,
                      state TEXT NOT NULL,
                      created_at INTEGER NOT NULL,
                      finished_at INTEGER,
                      device_count INTEGER NOT NULL,
                      per_minute INTEGER,
                      abort_threshold REAL,
                      min_finished INTEGER,
                      until_available INTEGER NOT NULL,
                      expires_at INTEGER NOT NULL,
                      detail TEXT
                    );
                    ALTER TABLE commands ADD COLUMN campaign_id TEXT;
                    CREATE INDEX commands_campaign ON commands(campaign_id, state) WHERE campaign_id IS NOT NULL;
                    """
            )
        }
        migrator.registerMigration("v10-settings") { db in
            try db.execute(sql: "CREATE TABLE settings (key TEXT PRIMARY KEY NOT NULL, value BLOB NOT NULL)")
        }
        migrator.registerMigration("v11-security") { db in
            // Tenants own devices (and through them commands, uplink, presence), campaigns and
            // rules; operators are tenant members with a role; the audit log is append-only,
            // enforced by triggers. Commands keep their issuer's signature verbatim.
            try db.execute(
                sql: """
                    ALTER TABLE commands ADD COLUMN signature TEXT;
                    ALTER TABLE devices ADD COLUMN tenant TEXT NOT NULL DEFAULT 'default';
                    CREATE INDEX devices_tenant ON devices(tenant, id);
                    ALTER TABLE campaigns ADD COLUMN tenant TEXT NOT NULL DEFAULT 'default';
                    ALTER TABLE rendezvous_rules ADD COLUMN tenant TEXT;
                    CREATE TABLE operators (
                      name TEXT PRIMARY KEY NOT NULL,
                      tenant TEXT NOT NULL,
                      role TEXT NOT NULL,
                      token_hash TEXT NOT NULL,
                      created_at INTEGER NOT NULL
                    );
                    CREATE TABLE audit_log (
                      seq INTEGER PRIMARY KEY AUTOINCREMENT,
                      at INTEGER NOT NULL,
                      actor TEXT NOT NULL,
                      tenant TEXT,
                      action TEXT NOT NULL,
                      target TEXT,
                      outcome TEXT NOT NULL,
                      status INTEGER,
                      remote TEXT
                    );
                    CREATE INDEX audit_log_tenant ON audit_log(tenant, seq);
                    CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
                      BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
                    CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
                      BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
                    """
            )
        }
        migrator.registerMigration("v12-power") { db in
            // Interval data is the bulk of a metering system: one compact row per device and
            // interval start, clustered by that key (WITHOUT ROWID), pruned by retention.
            // Everything else the power applications keep is a document keyed by kind and key.
            try db.execute(
                sql: """
                    CREATE TABLE intervals (
                      device TEXT NOT NULL,
                      start INTEGER NOT NULL,
                      seconds INTEGER NOT NULL,
                      kwh REAL NOT NULL,
                      kvarh REAL,
                      PRIMARY KEY (device, start)
                    ) WITHOUT ROWID;
                    CREATE INDEX intervals_start ON intervals(start);
                    CREATE TABLE power_documents (
                      kind TEXT NOT NULL,
                      key TEXT NOT NULL,
                      tenant TEXT NOT NULL,
                      device TEXT,
                      at INTEGER NOT NULL,
                      body TEXT NOT NULL,
                      PRIMARY KEY (kind, key)
                    );
                    CREATE INDEX power_documents_at ON power_documents(kind, at);
                    CREATE INDEX power_documents_device ON power_documents(kind, device, at);
                    """
            )
        }
        return migrator
    }

    static func encodeJSON(_ value: some Encodable & Sendable) throws -> String {
        String(decoding: try WireJSON.encode(value), as: UTF8.self)
    }

    static func decodeJSON<T: Decodable>(_ type: T.Type, _ text: String) throws -> T {
        do {
            return try WireJSON.decode(type, from: Data(text.utf8))
        } catch {
            throw StoreError.corrupt("a stored JSON value could not be decoded")
        }
    }

    static func device(from row: Row) throws -> DeviceRecord {
        var memo: ExchangeMemo?
        if let seq: Int64 = row["last_seq"], let hash: String = row["last_request_hash"],
            let response: Data = row["last_response"]
        {
            memo = ExchangeMemo(seq: seq, requestHash: hash, response: response)
        }
        return DeviceRecord(
            id: row["id"],
            name: row["name"],
            labels: try decodeJSON([String: String].self, row["labels"]),
            tokenHash: row["token_hash"],
            createdAt: Timestamp(milliseconds: row["created_at"]),
            lastSeenAt: (row["last_seen_at"] as Int64?).map(Timestamp.init(milliseconds:)),
            lastExchange: memo,
            tenant: row["tenant"]
        )
    }

    static func command(from row: Row) throws -> CommandRecord {
        func time(_ column: String) -> Timestamp? { (row[column] as Int64?).map(Timestamp.init(milliseconds:)) }
        guard let state = MessageState(rawValue: row["state"]) else {
            throw StoreError.corrupt("unknown command state")
        }
        var record = CommandRecord(
            id: row["id"],
            device: row["device_id"],
            origin: row["origin"],
            name: row["name"],
            args: try decodeJSON(JSONValue.self, row["args"]),
            createdAt: Timestamp(milliseconds: row["created_at"]),
            expiresAt: Timestamp(milliseconds: row["expires_at"]),
            notBefore: time("not_before"),
            idempotencyKey: row["idempotency_key"],
            maxAttempts: row["max_attempts"],
            executionTimeoutMs: row["execution_timeout_ms"]
        )
        record.updatedAt = Timestamp(milliseconds: row["updated_at"])
        record.state = state
        record.attempt = row["attempt"]
        record.leaseExpiresAt = time("lease_expires_at")
        record.ackedAt = time("acked_at")
        record.resultDeadline = time("result_deadline")
        record.finishedAt = time("finished_at")
        if let outcome: String = row["outcome"] {
            record.outcome = try decodeJSON(CommandOutcome.self, outcome)
        }
        record.envelope = row["envelope"]
        record.delivery = DeliveryMode(rawValue: row["delivery"]) ?? .queued
        record.campaign = row["campaign_id"]
        record.replyTo = row["reply_to"]
        record.replyRef = row["reply_ref"]
        record.replyState = (row["reply_state"] as String?).flatMap(ReplyState.init(rawValue:))
        record.replyLeaseUntil = time("reply_lease")
        if let signature: String = row["signature"] {
            record.signature = try decodeJSON(CommandSignature.self, signature)
        }
        return record
    }

    static func transition(from row: Row) throws -> TransitionRecord {
        guard let to = MessageState(rawValue: row["to_state"]) else { throw StoreError.corrupt("unknown state") }
        return TransitionRecord(
            command: row["command_id"],
            device: row["device_id"],
            at: Timestamp(milliseconds: row["at"]),
            from: (row["from_state"] as String?).flatMap(MessageState.init(rawValue:)),
            to: to,
            event: row["event"],
            attempt: row["attempt"],
            detail: row["detail"]
        )
    }

    static func insert(_ entry: TransitionRecord, _ db: Database) throws {
        try db.execute(
            sql: """
                INSERT INTO command_events (command_id, device_id, at, from_state, to_state, event, attempt, detail)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?)
                """,
            arguments: [
                entry.command, entry.device, entry.at.milliseconds, entry.from?.rawValue, entry.to.rawValue,
                entry.event, entry.attempt, entry.detail,
            ]
        )
    }

    /// Inserts a new command with its creation history entry.
    static func insert(_ command: CommandRecord, _ db: Database) throws {
        try db.execute(
            sql: """
                INSERT INTO commands (id, device_id, origin, name, args, created_at, updated_at, expires_at,
                  not_before, idempotency_key, execution_timeout_ms, state, attempt, max_attempts, reply_to, reply_ref,
                  envelope, delivery, campaign_id, signature)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                """,
            arguments: [
                command.id, command.device, command.origin, command.name, try encodeJSON(command.args),
                command.createdAt.milliseconds, command.updatedAt.milliseconds, command.expiresAt.milliseconds,
                command.notBefore?.milliseconds, command.idempotencyKey, command.executionTimeoutMs,
                command.state.rawValue, command.attempt, command.maxAttempts, command.replyTo, command.replyRef,
                command.envelope, command.delivery.rawValue, command.campaign,
                try command.signature.map { try encodeJSON($0) },
            ]
        )
        try insert(.created(command), db)
    }

    /// Writes the reply fields of commands (rendezvous delivery back to the sender).
    static func updateReply(_ record: CommandRecord, _ db: Database) throws {
        try db.execute(
            sql: "UPDATE commands SET reply_state = ?, reply_lease = ? WHERE id = ?",
            arguments: [record.replyState?.rawValue, record.replyLeaseUntil?.milliseconds, record.id]
        )
    }

    /// Writes a plan's record changes and history entries.
    static func apply(_ plan: ExchangePlan, _ db: Database) throws {
        for record in plan.updated {
            try db.execute(
                sql: """
                    UPDATE commands SET state = ?, attempt = ?, updated_at = ?, lease_expires_at = ?, acked_at = ?,
                      result_deadline = ?, finished_at = ?, outcome = ?, reply_state = ?, reply_lease = ?
                    WHERE id = ?
                    """,
                arguments: [
                    record.state.rawValue, record.attempt, record.updatedAt.milliseconds,
                    record.leaseExpiresAt?.milliseconds, record.ackedAt?.milliseconds,
                    record.resultDeadline?.milliseconds, record.finishedAt?.milliseconds,
                    try record.outcome.map { try encodeJSON($0) }, record.replyState?.rawValue,
                    record.replyLeaseUntil?.milliseconds, record.id,
                ]
            )
        }
        for entry in plan.transitions { try insert(entry, db) }
    }
}
