public import BackchannelProtocol
import Synchronization

/// The hub's source of wall-clock time. Tests substitute ``ManualHubClock``.
public protocol HubClock: Sendable {
    /// The current time.
    func now() -> Timestamp
}

/// The system's wall clock.
public struct SystemHubClock: HubClock {
    /// Creates the system clock.
    public init() {}
    public func now() -> Timestamp { .now() }
}

/// A clock that moves only when told to, for tests of deadlines.
public final class ManualHubClock: HubClock {
    private let current: Mutex<Timestamp>

    /// Creates a clock reading `start`.
    public init(_ start: Timestamp = .now()) {
        self.current = Mutex(start)
    }

    public func now() -> Timestamp { current.withLock { $0 } }

    /// Moves the clock forward.
    public func advance(seconds: Double) {
        current.withLock { $0 = $0.adding(seconds: seconds) }
    }
}
