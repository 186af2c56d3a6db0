import BackchannelProtocol
import BackchannelStore
import Logging
public import ServiceLifecycle

/// Writes in-memory last-seen times to the store in batches, and once more at shutdown.
///
/// This is why an empty poll costs no database write: contact is recorded in memory and a
/// whole fleet's contacts are flushed in one transaction per interval.
public struct LastSeenFlusher: Service {
    let hub: Hub

    /// Creates the flusher for a hub.
    public init(hub: Hub) {
        self.hub = hub
    }

    public func run() async throws {
        await repeatUntilShutdown(every: hub.configuration.lastSeenFlushInterval) {
            await hub.flushLastSeen()
            await hub.flushPresence()
        }
        // The final flush must run to completion even though this service is being stopped:
        // an unstructured task does not inherit the cancellation.
        await Task {
            await hub.flushLastSeen()
            await hub.flushPresence()
        }.value
    }
}

extension Hub {
    /// Flushes in-memory last-seen times now.
    public func flushLastSeen() async {
        let batch = directory.takeUnflushedSeen()
        guard !batch.isEmpty else { return }
        do {
            try await store.recordLastSeen(batch)
        } catch is CancellationError {
            directory.restoreUnflushed(batch)
        } catch {
            directory.restoreUnflushed(batch)
            logger.warning("last-seen flush failed; will retry", metadata: ["error": "\(error)"])
        }
    }
}
