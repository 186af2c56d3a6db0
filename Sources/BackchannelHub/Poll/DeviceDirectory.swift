import BackchannelProtocol
import BackchannelStore
import Synchronization

/// What the hub keeps in memory about each device it has heard from.
///
/// Last-seen times, declared presence and the retry memo live here; last-seen is flushed to
/// the store in batches (``LastSeenFlusher``), so an empty poll writes nothing.
struct DeviceSession: Sendable {
    var tokenHash: String
    /// The tenant the device is provisioned in (fixed once provisioned): a client certificate
    /// authenticates the device only if it was issued for this tenant.
    let tenant: String
    var lastSeenAt: Timestamp?
    /// Last-seen time not yet written to the store.
    var unflushedSeen: Timestamp?
    var presence: PresenceReport?
    /// The most recent exchange, durable or not, for answering a retried request.
    var memo: ExchangeMemo?
    /// Highest sequence number processed.
    var lastSeq: Int64?
    /// Rate limit bucket.
    var tokens: Double
    var tokensAt: Timestamp
    /// Whether a `device.first-seen` event was already published.
    var announced: Bool
    /// Request ids canceled after delivery, to announce in the next response.
    var pendingCancels: [String] = []
    /// What the hub knows about the device's queue without asking the store.
    var workHint: WorkHint = .unknown
    /// Bumped by every ``DeviceDirectory/noteWork(_:)``, so a slow store read cannot
    /// overwrite news of newer work.
    var workVersion: UInt64 = 0
    /// The hub's timestamps of the last exchange (seq, t0, t1, t2), for the device's clock.
    var lastExchangeTimes: (seq: Int64, t0: Timestamp, t1: Timestamp, t2: Timestamp)?
    /// The device's clock against the hub's, from the last complete four-timestamp exchange.
    var clock: (offset: Double, delay: Double, at: Timestamp)?
}

/// What the hub knows about a device's queue without asking the store.
enum WorkHint: Sendable, Equatable {
    /// Ask the store.
    case unknown
    /// Nothing dispatchable before `until` (nil: nothing queued), as of `verifiedAt`.
    case idle(until: Timestamp?, verifiedAt: Timestamp)
}

/// The in-memory table of device sessions, loaded from the store on first contact.
final class DeviceDirectory: Sendable {
    private struct Table {
        var sessions: [String: DeviceSession] = [:]
        /// Bumped by every credential change, loaded or not, so a session load that raced a
        /// token rotation is discarded instead of caching the old hash.
        var credentialEpoch: UInt64 = 0
    }

    private let table = Mutex(Table())
    private let store: any MessageStore

    init(store: any MessageStore) {
        self.store = store
    }

    /// The session of a device, loading it from the store on first use. Nil when unknown.
    func session(_ id: String, now: Timestamp, burst: Double) async throws -> DeviceSession? {
        while true {
            let (cached, epoch) = table.withLock { ($0.sessions[id], $0.credentialEpoch) }
            if let cached { return cached }
            guard let record = try await store.device(id: id) else { return nil }
            let session = DeviceSession(
                tokenHash: record.tokenHash, tenant: record.tenant, lastSeenAt: record.lastSeenAt, presence: nil,
                memo: record.lastExchange, lastSeq: record.lastExchange?.seq, tokens: burst, tokensAt: now,
                announced: record.lastSeenAt != nil
            )
            let loaded: DeviceSession?? = table.withLock { table in
                if let raced = table.sessions[id] { return raced }
                guard table.credentialEpoch == epoch else { return .some(nil) }  // read again
                table.sessions[id] = session
                return session
            }
            if let loaded, let loaded { return loaded }
        }
    }

    /// Reads and changes one session under the lock. Returns nil when the session is not loaded.
    @discardableResult
    func update<T>(_ id: String, _ body: (inout DeviceSession) -> T) -> T? {
        table.withLock { table in
            guard var session = table.sessions[id] else { return nil }
            let value = body(&session)
            table.sessions[id] = session
            return value
        }
    }

    /// The in-memory view of a device, if loaded.
    func snapshot(_ id: String) -> DeviceSession? { table.withLock { $0.sessions[id] } }

    /// Takes the last-seen times not yet flushed, clearing them.
    func takeUnflushedSeen() -> [String: Timestamp] {
        table.withLock { table in
            var batch: [String: Timestamp] = [:]
            for (id, session) in table.sessions {
                if let seen = session.unflushedSeen {
                    batch[id] = seen
                    table.sessions[id]?.unflushedSeen = nil
                }
            }
            return batch
        }
    }

    /// Puts back last-seen times whose flush failed, unless newer ones arrived meanwhile.
    func restoreUnflushed(_ batch: [String: Timestamp]) {
        table.withLock { table in
            for (id, seen) in batch where table.sessions[id] != nil && table.sessions[id]?.unflushedSeen == nil {
                table.sessions[id]?.unflushedSeen = seen
            }
        }
    }

    /// Notes new possible work for a device (a submit, a redelivery, a cancellation).
    func noteWork(_ id: String) {
        table.withLock { table in
            guard table.sessions[id] != nil else { return }
            table.sessions[id]!.workHint = .unknown
            table.sessions[id]!.workVersion &+= 1
        }
    }

    /// Records that the store showed no dispatchable work, unless work was noted since
    /// `version` was read.
    func noteIdle(_ id: String, until: Timestamp?, verifiedAt: Timestamp, version: UInt64) {
        table.withLock { table in
            guard table.sessions[id]?.workVersion == version else { return }
            table.sessions[id]!.workHint = .idle(until: until, verifiedAt: verifiedAt)
        }
    }

    /// Forgets the cached work state (after an exchange changed the queue).
    func forgetWork(_ id: String) {
        table.withLock { table in table.sessions[id]?.workHint = .unknown }
    }

    /// Replaces a device's token hash in memory, and makes any session load under way read again.
    func setTokenHash(_ id: String, _ hash: String) {
        table.withLock { table in
            table.sessions[id]?.tokenHash = hash
            table.credentialEpoch &+= 1
        }
    }
}
