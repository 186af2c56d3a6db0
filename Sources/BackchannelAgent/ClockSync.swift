public import BackchannelProtocol
import Synchronization

/// Estimates the offset between the device's clock and the hub's, NTP-style, from the four
/// timestamps of each poll exchange.
///
/// With t0 = device send, t1 = hub receive, t2 = hub send, t3 = device receive:
/// offset = ((t1 − t0) + (t2 − t3)) / 2 and delay = (t3 − t0) − (t2 − t1). The estimate uses
/// the sample with the smallest delay among the recent ones, which has the least asymmetry.
public final class ClockSync: Sendable {
    /// One exchange's estimate.
    public struct Sample: Sendable, Hashable {
        /// Seconds to add to the device clock to get hub time.
        public var offset: Double
        /// Round-trip network delay, seconds.
        public var delay: Double
    }

    private let samples = Mutex<[Sample]>([])
    private let window: Int
    private let deviceClock: @Sendable () -> Timestamp

    /// Creates an estimator over the given device clock, keeping the last `window` samples.
    public init(window: Int = 8, deviceClock: @escaping @Sendable () -> Timestamp = { .now() }) {
        self.window = window
        self.deviceClock = deviceClock
    }

    /// Adds the four timestamps of one exchange and returns its sample.
    @discardableResult
    public func add(t0: Timestamp, t1: Timestamp, t2: Timestamp, t3: Timestamp) -> Sample {
        let offset = (t1.seconds(since: t0) + t2.seconds(since: t3)) / 2
        let delay = max(0, t3.seconds(since: t0) - t2.seconds(since: t1))
        let sample = Sample(offset: offset, delay: delay)
        samples.withLock { list in
            list.append(sample)
            if list.count > window { list.removeFirst(list.count - window) }
        }
        return sample
    }

    /// The best current estimate, or nil before the first exchange.
    public var estimate: Sample? {
        samples.withLock { $0.min { $0.delay < $1.delay } }
    }

    /// The device clock now.
    public func deviceNow() -> Timestamp { deviceClock() }

    /// Hub time now, as best known: the device clock corrected by the estimated offset.
    public func hubNow() -> Timestamp {
        let now = deviceClock()
        guard let estimate else { return now }
        return now.adding(seconds: estimate.offset)
    }
}
