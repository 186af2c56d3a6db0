import BackchannelProtocol
import BackchannelStore
import Logging
public import ServiceLifecycle
import Synchronization

/// The power applications' periodic work: re-evaluating shedding policies (a limit window
/// opening or closing acts without a price change); every hour, pruning interval data past
/// retention and checking sub-meters against their master meter; reloading open outages at
/// start.
public struct PowerScheduler: Service {
    let hub: Hub

    /// Creates the scheduler for a hub.
    public init(hub: Hub) {
        self.hub = hub
    }

    public func run() async throws {
        await hub.loadOpenOutages()
        let lastPrune = Mutex<Timestamp?>(nil)
        await repeatUntilShutdown(every: hub.configuration.power.sheddingCheckInterval) {
            await hub.evaluateShedding()
            let now = hub.clock.now()
            let due = lastPrune.withLock { last in
                guard last.map({ now.seconds(since: $0) >= 3600 }) ?? true else { return false }
                last = now
                return true
            }
            if due {
                await hub.pruneIntervals(now: now)
                await hub.checkSubmeterBalance()
            }
        }
    }
}

extension Hub {
    /// Deletes interval data older than the retention setting.
    func pruneIntervals(now: Timestamp) async {
        let days = configuration.power.intervalRetentionDays
        guard days > 0 else { return }
        do {
            let removed = try await store.pruneIntervals(before: now.adding(seconds: -days * 86_400))
            if removed > 0 { logger.info("pruned interval data past retention", metadata: ["intervals": "\(removed)"]) }
        } catch {
            logger.warning("pruning interval data failed; it runs again", metadata: ["error": "\(error)"])
        }
    }

    /// Reloads which devices have an open outage, so a contact after a restart closes it.
    func loadOpenOutages() async {
        do {
            let records = try await store.powerDocuments(PowerDocumentQuery(kind: PowerKind.outage, limit: 100_000))
            let open = records.filter { $0.body["end"] == nil || $0.body["end"] == .null }
            power.openOutages.withLock { outages in
                for record in open {
                    guard let device = record.device else { continue }
                    outages[device] = outages[device] ?? record.at
                }
            }
        } catch {
            logger.warning("open outages could not be loaded", metadata: ["error": "\(error)"])
        }
    }
}
