import BackchannelProtocol
public import BackchannelStore
import Logging
public import ServiceLifecycle

/// Applies command deadlines: lease lapses (redelivery), expiry and execution timeouts.
///
/// Each sweep is one read; a write transaction is taken only when a deadline has passed.
public struct DeadlineSweeper: Service {
    let hub: Hub

    /// Creates the sweeper for a hub.
    public init(hub: Hub) {
        self.hub = hub
    }

    public func run() async throws {
        await repeatUntilShutdown(every: hub.configuration.sweepInterval) { await hub.sweepDeadlines() }
    }
}

extension Hub {
    /// Runs one deadline sweep now; returns the transitions it made.
    @discardableResult
    public func sweepDeadlines() async -> [TransitionRecord] {
        var all: [TransitionRecord] = []
        let batch = 500
        do {
            while true {
                let plan = try await store.sweep(at: clock.now(), limit: batch)
                all += plan.transitions
                publish(plan.transitions)
                notifyRendezvous(created: [], updated: plan.updated)
                await settleCampaigns(plan.updated)
                for record in plan.updated where record.state == .queued {
                    directory.noteWork(record.device)
                    lanes.notifyWork(record.device)
                }
                if plan.updated.count < batch { break }
            }
        } catch {
            logger.error("deadline sweep failed; retrying next interval", metadata: ["error": "\(error)"])
        }
        return all
    }
}

/// Runs `body` at once and then every `seconds` until graceful shutdown (or cancellation).
func repeatUntilShutdown(every seconds: Double, _ body: @escaping @Sendable () async -> Void) async {
    let interval = Duration.milliseconds(Int64(seconds * 1000))
    await cancelWhenGracefulShutdown {
        while !Task.isCancelled {
            await body()
            try? await Task.sleep(for: interval)
        }
    }
}
