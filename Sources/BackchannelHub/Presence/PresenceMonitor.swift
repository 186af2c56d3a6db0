import BackchannelProtocol
import BackchannelStore
import Logging
public import ServiceLifecycle

/// Runs the presence deadline timers: restores saved presence at start, then sleeps until the
/// earliest device deadline (or until a sooner one is armed) and applies what is due.
public struct PresenceMonitor: Service {
    let hub: Hub

    /// Creates the monitor for a hub.
    public init(hub: Hub) {
        self.hub = hub
    }

    public func run() async throws {
        await hub.restorePresence()
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                await hub.presenceTick()
            }
        }
    }
}

extension Hub {
    /// Loads presence saved before a restart.
    func restorePresence() async {
        do {
            let saved = try await store.presenceStates()
            let earliest = clock.now().adding(seconds: configuration.pollInterval + configuration.presenceGrace)
            presence.restore(saved, earliest: earliest)
        } catch {
            logger.error("presence could not be restored; devices start unknown", metadata: ["error": "\(error)"])
        }
    }

    /// Sleeps until the next deadline (at most a minute, or until a sooner one is armed), then
    /// applies the deadlines that are due.
    func presenceTick() async {
        let wakeup = Wakeup()
        let now = clock.now()
        let until = presence.wakeTime(wakeup, cap: now.adding(seconds: 60))
        let seconds = until.seconds(since: now)
        if seconds > 0 {
            // Shutdown cancels this task: the wait must end then, not at the next deadline.
            _ = await withTaskCancellationHandler {
                await wakeup.wait(seconds: seconds)
            } onCancel: {
                wakeup.signal(.shutdown)
            }
        }
        publish(presence.fireDue(at: clock.now()))
    }

    /// Writes presence changes kept in memory.
    public func flushPresence() async {
        let (states, transitions) = presence.takeChanges()
        guard !states.isEmpty || !transitions.isEmpty else { return }
        do {
            try await store.recordPresence(states, transitions: transitions)
        } catch {
            presence.restoreChanges(states, transitions)
            if !(error is CancellationError) {
                logger.warning("presence flush failed; will retry", metadata: ["error": "\(error)"])
            }
        }
    }
}
