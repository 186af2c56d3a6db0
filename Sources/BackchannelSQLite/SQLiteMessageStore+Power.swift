public import BackchannelProtocol
public import BackchannelStore
import GRDB

extension SQLiteMessageStore {
    public func putIntervals(_ records: [IntervalRecord]) async throws {
        guard !records.isEmpty else { return }
        try await write { db in
            let statement = try db.cachedStatement(
                sql: """
                    INSERT INTO intervals (device, start, seconds, kwh, kvarh) VALUES (?, ?, ?, ?, ?)
                    ON CONFLICT (device, start) DO UPDATE
                    SET seconds = excluded.seconds, kwh = excluded.kwh, kvarh = excluded.kvarh
                    """
            )
            for record in records {
                try statement.execute(arguments: [
                    record.device, record.start.milliseconds, record.seconds, record.kWh, record.kvarh,
                ])
            }
            return ((), true)
        }
    }

    public func intervals(device: String, startingIn range: Range<Timestamp>) async throws -> [IntervalRecord] {
        try await pool.read { db in
            try Row.fetchAll(
                db,
                sql: """
                    SELECT start, seconds, kwh, kvarh FROM intervals
                    WHERE device = ? AND start >= ? AND start < ? ORDER BY start
                    """,
                arguments: [device, range.lowerBound.milliseconds, range.upperBound.milliseconds]
            ).map { row in
                IntervalRecord(
                    device: device, start: Timestamp(milliseconds: row["start"]), seconds: row["seconds"],
                    kWh: row["kwh"], kvarh: row["kvarh"])
            }
        }
    }

    public func pruneIntervals(before cutoff: Timestamp) async throws -> Int {
        try await write { db in
            try db.execute(sql: "DELETE FROM intervals WHERE start < ?", arguments: [cutoff.milliseconds])
            return (db.changesCount, db.changesCount > 0)
        }
    }

    public func putPowerDocuments(_ documents: [PowerDocument]) async throws {
        guard !documents.isEmpty else { return }
        let encoded = try documents.map { ($0, try Self.encodeJSON($0.body)) }
        try await write { db in
            for (document, body) in encoded {
                try db.execute(
                    sql: """
                        INSERT INTO power_documents (kind, key, tenant, device, at, body) VALUES (?, ?, ?, ?, ?, ?)
                        ON CONFLICT (kind, key) DO UPDATE SET tenant = excluded.tenant, device = excluded.device,
                          at = excluded.at, body = excluded.body
                        """,
                    arguments: [
                        document.kind, document.key, document.tenant, document.device, document.at.milliseconds, body,
                    ]
                )
            }
            return ((), true)
        }
    }

    public func powerDocument(kind: String, key: String) async throws -> PowerDocument? {
        try await pool.read { db in
            try Row.fetchOne(
                db, sql: "SELECT * FROM power_documents WHERE kind = ? AND key = ?", arguments: [kind, key]
            ).map(Self.powerDocument)
        }
    }

    public func powerDocuments(_ query: PowerDocumentQuery) async throws -> [PowerDocument] {
        try await pool.read { db in
            try Row.fetchAll(
                db,
                sql: """
                    SELECT * FROM power_documents
                    WHERE kind = ? AND (? IS NULL OR tenant = ?) AND (? IS NULL OR device = ?)
                      AND (? IS NULL OR at >= ?) AND (? IS NULL OR at < ?)
                    ORDER BY at DESC, key DESC LIMIT ?
                    """,
                arguments: [
                    query.kind, query.tenant, query.tenant, query.device, query.device,
                    query.range?.lowerBound.milliseconds, query.range?.lowerBound.milliseconds,
                    query.range?.upperBound.milliseconds, query.range?.upperBound.milliseconds, max(0, query.limit),
                ]
            ).map(Self.powerDocument)
        }
    }

    public func deletePowerDocument(kind: String, key: String) async throws -> Bool {
        try await write { db in
            try db.execute(sql: "DELETE FROM power_documents WHERE kind = ? AND key = ?", arguments: [kind, key])
            return (db.changesCount > 0, db.changesCount > 0)
        }
    }

    static func powerDocument(_ row: Row) throws -> PowerDocument {
        PowerDocument(
            kind: row["kind"], key: row["key"], tenant: row["tenant"], device: row["device"],
            at: Timestamp(milliseconds: row["at"]), body: try decodeJSON(JSONValue.self, row["body"]))
    }
}
