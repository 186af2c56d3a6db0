public import BackchannelProtocol
public import BackchannelStore
import Foundation
public import Logging
import Synchronization

/// The rendezvous rules as last loaded. `generation` changes with every rule change, so a load
/// that raced a change is not cached.
struct RulesCache: Sendable {
    var rules: [RendezvousRule]?
    var generation: UInt64 = 0
}

/// The hub's core: the poll protocol, the command API and the deadline services, independent
/// of HTTP. ``buildApplication(hub:)`` serves it.
public final class Hub: Sendable {
    /// Settings.
    public let configuration: HubConfiguration
    /// Durable storage.
    public let store: any MessageStore
    /// Wall clock.
    public let clock: any HubClock
    /// Counters.
    public let metrics = HubMetrics()
    /// Live event stream.
    public let events = EventBus()
    let directory: DeviceDirectory
    /// Presence: declared and inferred states, deadlines, history.
    public let presence: PresenceService
    /// Alarms on device status values, with escalation.
    public let alarms = AlarmService()
    /// Firmware artifacts, when ``HubConfiguration/artifactsDirectory`` is set.
    public let artifacts: ArtifactStore?
    let lanes = PollLanes()
    /// Rendezvous rules, loaded from the store on first use and dropped on every change.
    let cachedRules = Mutex(RulesCache())
    /// The hub's logger.
    public let logger: Logger
    /// Operator accounts and the bootstrap token.
    let operators: OperatorDirectory
    /// The append-only audit log.
    let audit: AuditLog
    /// Requests per operator.
    let operatorLimiter: RateLimiter
    /// Device id → tenant, filled as devices are looked up (a device never changes tenant).
    let deviceTenants = Mutex<[String: String]>([:])
    /// The power applications' in-memory state.
    let power = PowerState()

    /// Creates a hub over a store.
    public init(
        configuration: HubConfiguration,
        store: any MessageStore,
        clock: any HubClock = SystemHubClock(),
        logger: Logger = Logger(label: "backchannel.hub")
    ) {
        self.configuration = configuration
        self.store = store
        self.clock = clock
        self.logger = logger
        self.directory = DeviceDirectory(store: store)
        self.operators = OperatorDirectory(
            store: store, bootstrapHash: configuration.operatorTokenHash, systemTenant: configuration.systemTenant)
        self.audit = AuditLog(store: store, logger: logger, systemTenant: configuration.systemTenant)
        self.operatorLimiter = RateLimiter(rate: configuration.operatorRate, burst: configuration.operatorBurst)
        self.presence = PresenceService(grace: configuration.presenceGrace)
        var artifacts: ArtifactStore?
        if let directory = configuration.artifactsDirectory {
            do {
                artifacts = try ArtifactStore(directory: directory, clock: clock)
            } catch {
                logger.error(
                    "the artifact directory cannot be opened; firmware routes are off",
                    metadata: ["error": "\(error)"])
            }
        }
        self.artifacts = artifacts
    }

    /// Wakes every held poll and ends every event stream (graceful shutdown).
    public func shutdown() {
        lanes.wakeAll(.shutdown)
        events.close()
    }

    /// Publishes presence transitions as `device.presence` events.
    func publish(_ transitions: [PresenceTransition]) {
        for transition in transitions {
            events.publish(
                .devicePresence, at: transition.at, device: transition.device, detail: transition.to.rawValue,
                data: WireJSON.value(transition))
        }
    }

    /// Publishes one event per transition.
    func publish(_ transitions: [TransitionRecord]) {
        for entry in transitions {
            events.publish(
                .commandTransition, at: entry.at, device: entry.device, command: entry.command, state: entry.to,
                detail: entry.event
            )
        }
    }

    /// Maps a store failure to the HTTP answer. The failed transaction rolled back; the client
    /// may retry the same request safely.
    func storeFailure(_ error: any Error) -> HubError {
        if let error = error as? HubError { return error }
        logger.error("store operation failed", metadata: ["error": "\(error)"])
        return HubError.unavailable("storage is unavailable; retry the same request later", retryAfter: 2)
    }
}
