import BackchannelProtocol
import BackchannelStore
import Logging
import ServiceLifecycle
import Synchronization

/// The hub's append-only audit log: every operator action and every security rejection.
///
/// Actions that changed something are written before the response is sent
/// (``record(_:)``, awaited). Rejections and reads are queued (``enqueue(_:)``) and written in
/// batches by ``AuditFlusher``, so a flood of bad tokens cannot turn into a flood of
/// transactions; beyond 10 000 queued entries further ones are dropped and the drop itself is
/// recorded. Hub-wide entries (anonymous refusals, drops) belong to the system tenant.
final class AuditLog: Sendable {
    private struct Queue {
        var entries: [AuditEntry] = []
        var dropped = 0
    }

    private let store: any MessageStore
    private let queue = Mutex(Queue())
    private let logger: Logger
    private let systemTenant: String
    static let maxQueued = 10_000

    init(store: any MessageStore, logger: Logger, systemTenant: String) {
        self.store = store
        self.logger = logger
        self.systemTenant = systemTenant
    }

    /// Writes one entry now (after an action that changed state).
    func record(_ entry: AuditEntry) async {
        do {
            try await store.appendAudit([entry])
        } catch {
            logger.error("audit entry not written; queued", metadata: ["action": "\(entry.action)"])
            enqueue(entry)
        }
    }

    /// Queues an entry for the next batch.
    func enqueue(_ entry: AuditEntry) {
        queue.withLock { queue in
            // Full: the newest is dropped (and counted), in constant time.
            guard queue.entries.count < Self.maxQueued else {
                queue.dropped += 1
                return
            }
            queue.entries.append(entry)
        }
    }

    /// Writes what is queued.
    func flush(at now: Timestamp) async {
        var (entries, dropped) = queue.withLock { queue in
            defer { queue = Queue() }
            return (queue.entries, queue.dropped)
        }
        if dropped > 0 {
            entries.append(
                AuditEntry(
                    seq: 0, at: now, actor: "hub", tenant: systemTenant, action: "audit.dropped", target: nil,
                    outcome: "\(dropped) queued entries dropped under load", status: nil, remote: nil))
        }
        guard !entries.isEmpty else { return }
        do {
            try await store.appendAudit(entries)
        } catch {
            logger.error("audit batch not written; kept for the next flush", metadata: ["count": "\(entries.count)"])
            for entry in entries { enqueue(entry) }
        }
    }
}

/// Writes queued audit entries every second, and once more at shutdown.
struct AuditFlusher: Service {
    let hub: Hub

    func run() async throws {
        await repeatUntilShutdown(every: 1) {
            await hub.audit.flush(at: hub.clock.now())
        }
        await Task { await hub.audit.flush(at: hub.clock.now()) }.value
    }
}
