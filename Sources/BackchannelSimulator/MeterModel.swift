public import BackchannelPower
public import BackchannelProtocol
public import Foundation
import Synchronization

/// The physics of a simulated revenue meter: a load that follows a daily profile with noise,
/// a relay that disconnects it, and an accumulating energy register.
public final class MeterModel: Sendable {
    struct State {
        var kWh: Double
        var lastSample: Timestamp
        var relayClosed = true
        var firmware: String?
        var interval: Double
        var clockSkew: Double
        var rng: SplitMix64
        var consumptionFactor = 1.0
        var lastReset: Timestamp?
        var supplier: String?
        var alerts: [String] = []
    }

    private let state: Mutex<State>
    /// The meter's base load in kW (when it has no load profile).
    public let baseLoad: Double
    /// The household load profile the meter follows (measured data, scaled and shifted for
    /// this meter), or nil for the built-in daily curve.
    public let profile: LoadProfile?
    /// The local time zone of the profile.
    public let timeZone: TimeZone

    /// Creates a meter with a deterministic random stream from `seed`.
    public init(
        seed: UInt64, interval: Double, clockSkew: Double = 0, now: Timestamp = .now(), profile: LoadProfile? = nil,
        timeZone: TimeZone = TimeZone(identifier: "UTC")!
    ) {
        var rng = SplitMix64(seed: seed)
        self.profile = profile
        self.timeZone = timeZone
        self.baseLoad = 0.5 + rng.unit() * 4.5
        self.state = Mutex(
            State(kWh: 1000 + rng.unit() * 9000, lastSample: now, interval: interval, clockSkew: clockSkew, rng: rng)
        )
    }

    /// Seconds between periodic readings.
    public var interval: Double { state.withLock { $0.interval } }

    /// Seconds the meter's clock is ahead of true time (negative: behind).
    public var clockSkew: Double { state.withLock { $0.clockSkew } }

    /// Whether the load is connected.
    public var relayClosed: Bool { state.withLock { $0.relayClosed } }

    /// The meter's own clock.
    public func deviceNow() -> Timestamp { Timestamp.now().adding(seconds: clockSkew) }

    /// Changes the reporting interval.
    public func setInterval(_ seconds: Double) { state.withLock { $0.interval = seconds } }

    /// Sets the meter clock to read `time` now; returns the new skew.
    public func setClock(to time: Timestamp) -> Double {
        state.withLock { state in
            state.clockSkew = time.seconds(since: .now())
            return state.clockSkew
        }
    }

    /// The SHA-256 of the firmware installed last, if any was installed.
    public var firmware: String? { state.withLock { $0.firmware } }

    /// Records an installed firmware image.
    public func setFirmware(_ sha256: String) { state.withLock { $0.firmware = sha256 } }

    /// Closes the billing period: returns the energy register and starts it again from zero.
    public func resetBilling() -> Double {
        let now = deviceNow()
        return state.withLock { state in
            defer {
                state.kWh = 0
                state.lastReset = now
            }
            return (state.kWh * 1000).rounded() / 1000
        }
    }

    /// The share of its normal load the meter draws (1: all; `reduce-consumption` lowers it).
    public var consumptionFactor: Double { state.withLock { $0.consumptionFactor } }

    /// Sets the share of normal load drawn, 0.1…1.
    public func setConsumptionFactor(_ factor: Double) {
        state.withLock { $0.consumptionFactor = min(1, max(0.1, factor)) }
    }

    /// The energy supplier the meter bills for, after a `switch-supplier`.
    public var supplier: String? { state.withLock { $0.supplier } }

    /// Records a new supplier.
    public func setSupplier(_ supplier: String) { state.withLock { $0.supplier = supplier } }

    /// Topology alerts and containment notices received, oldest first (`<name>:<origin>`).
    public var alerts: [String] { state.withLock { $0.alerts } }

    /// Records an alert or notice.
    public func noteAlert(_ text: String) {
        state.withLock { state in
            state.alerts.append(text)
            if state.alerts.count > 100 { state.alerts.removeFirst() }
        }
    }

    /// Power came back: energy integration restarts now (nothing was drawn while off).
    public func powerRestored(at now: Timestamp = .now()) { state.withLock { $0.lastSample = now } }

    /// Opens or closes the relay; returns whether it changed.
    public func setRelay(closed: Bool) -> Bool {
        state.withLock { state in
            defer { state.relayClosed = closed }
            return state.relayClosed != closed
        }
    }

    /// Takes a measurement now: integrates energy since the last one.
    public func sample(at now: Timestamp = .now()) -> JSONValue {
        state.withLock { state in
            let hours = max(0, now.seconds(since: state.lastSample)) / 3600
            let noise = 1 + (state.rng.unit() - 0.5) * 0.1
            let kW = state.relayClosed ? demand(at: now) * noise * state.consumptionFactor : 0
            state.kWh += kW * hours
            state.lastSample = now
            let volts = 230 + (state.rng.unit() - 0.5) * 6
            let pf = state.relayClosed ? 0.88 + state.rng.unit() * 0.11 : 1
            let amps = state.relayClosed ? kW * 1000 / (volts * pf) : 0
            func round(_ value: Double, _ places: Double) -> Double { (value * places).rounded() / places }
            var values: [String: JSONValue] = [
                "kWh": .number(round(state.kWh, 1000)),
                "kW": .number(round(kW, 1000)),
                "V": .number(round(volts, 10)),
                "A": .number(round(amps, 100)),
                "PF": .number(round(pf, 1000)),
                "relay": .string(state.relayClosed ? "closed" : "open"),
            ]
            // The register restarted at zero then: the hub's tamper check allows for it.
            if let reset = state.lastReset { values["resetAt"] = .string(reset.description) }
            return .object(values)
        }
    }
}

extension MeterModel {
    /// The load's average demand at `time` before noise and relay: the profile's, or the
    /// built-in daily curve around ``baseLoad``.
    func demand(at time: Timestamp) -> Double {
        if let kW = profile?.kW(at: time, timeZone: timeZone) { return kW }
        let hour = Double((time.milliseconds / 3_600_000) % 24)
        return baseLoad * (1 + 0.35 * sin((hour - 7) / 24 * 2 * .pi))
    }

    /// The 15-minute interval starting at `start`, as the meter registers it: the profile's
    /// energy (kvarh from its reactive power, or PF 0.95 without a profile); nothing while
    /// the relay is open, less after `reduce-consumption`. `live` is false for history.
    public func interval(at start: Timestamp, live: Bool) -> IntervalReading {
        let (closed, factor) = state.withLock { ($0.relayClosed, $0.consumptionFactor) }
        let scale = live ? (closed ? factor : 0) : 1
        if let reading = profile?.interval(at: start, timeZone: timeZone) {
            return IntervalReading(
                start: start, seconds: 900, kWh: reading.kWh * scale, kvarh: reading.kvarh.map { $0 * scale })
        }
        let kWh = demand(at: start) * 0.25 * scale
        return IntervalReading(start: start, seconds: 900, kWh: kWh, kvarh: kWh * 0.329)
    }
}
