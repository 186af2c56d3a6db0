import BackchannelProtocol
import Synchronization

/// What the power applications keep in memory: the latest values of each device (for branch
/// roll-ups and tamper checks), and the caches of what is stored (topology, shedding state).
/// Everything that matters for a decision after a restart is also in the store.
final class PowerState: Sendable {
    /// The latest instantaneous values of a device.
    struct Latest: Sendable {
        var kW: Double?
        var kWAt: Timestamp?
        /// The last energy register of each reading name (`meter`, `billing`), and when.
        var registers: [String: (kWh: Double, at: Timestamp)] = [:]
        var address: String?
        var addressAt: Timestamp?
        /// The last clock offset (device − hub, seconds) and the hub time it was measured at.
        var clock: (offset: Double, at: Timestamp)?
    }

    let latest = Mutex<[String: Latest]>([:])
    /// Bumped on every topology declaration, so a cached tree is rebuilt.
    let topologyGeneration = Atomic<UInt64>(0)
    /// Devices with an open outage, and when the hub opened it.
    let openOutages = Mutex<[String: Timestamp]>([:])
    /// Serialises shedding evaluations (a price change and the periodic check).
    let shedding = AsyncSerial()

    init() {}

    /// Updates a device's latest values; returns the previous ones.
    @discardableResult
    func update(_ device: String, _ body: (inout Latest) -> Void) -> Latest {
        latest.withLock { all in
            let previous = all[device] ?? Latest()
            var next = previous
            body(&next)
            all[device] = next
            return previous
        }
    }
}
