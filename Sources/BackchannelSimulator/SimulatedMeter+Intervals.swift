import BackchannelAgent
import BackchannelPower
public import BackchannelProtocol
public import Foundation
import Synchronization

/// How a simulated device registers energy.
public enum MeteringKind: Sendable, Hashable {
    /// A revenue meter: interval energy as measured.
    case meter
    /// A transport box on a plain meter's KYZ output: it counts pulses of `ke` kWh each, so
    /// its intervals are whole pulses (the remainder carries into the next interval), and it
    /// pushes a `billing` reading with its pulse register.
    case transportBox(ke: Decimal)
}

extension SimulatedMeter {
    /// Sends every completed 15-minute interval since the last one sent: `interval` readings
    /// `{start, seconds, kWh, kvarh}` with ids `iv-<start ms>`, so a resent interval is stored
    /// once.
    /// The first time, it starts ``historyDays`` days back (the meter's stored history).
    /// Returns how many intervals were queued.
    @discardableResult
    public func emitIntervals(now: Timestamp? = nil) async throws -> Int {
        let quarter: Int64 = 900_000
        let now = now ?? model.deviceNow()
        let current = now.milliseconds / quarter * quarter
        let saved = (try? String(contentsOf: intervalCursorFile, encoding: .utf8)).flatMap {
            Int64($0.trimmingCharacters(in: .whitespacesAndNewlines))
        }
        var next = saved ?? (current - Int64(historyDays) * 86_400_000)
        guard next < current else { return 0 }
        var count = 0
        while next < current {
            var items: [UplinkItem] = []
            while next < current, items.count < 200 {
                let start = Timestamp(milliseconds: next)
                let live = saved != nil && now.milliseconds - next < 2 * quarter
                items += intervalItems(model.interval(at: start, live: live))
                next += quarter
            }
            try await agent.send(items)
            try String(next).write(to: intervalCursorFile, atomically: true, encoding: .utf8)
            count += items.count
        }
        return count
    }

    /// The uplink for one interval: the interval reading, and for a transport box its pulse
    /// count and a `billing` reading with the register.
    func intervalItems(_ reading: IntervalReading) -> [UplinkItem] {
        let at = reading.end
        let ms = reading.start.milliseconds
        switch metering {
        case .meter:
            var data: [String: JSONValue] = [
                "start": .string(reading.start.description), "seconds": .number(Double(reading.seconds)),
                "kWh": .number(Self.round(reading.kWh)),
            ]
            if let kvarh = reading.kvarh { data["kvarh"] = .number(Self.round(kvarh)) }
            return [UplinkItem(id: "iv-\(ms)", kind: .reading, name: "interval", at: at, data: .object(data))]
        case .transportBox(let ke):
            let (pulses, register) = pulseCounter.count(kWh: reading.kWh, ke: ke)
            let kWh = NSDecimalNumber(decimal: Decimal(pulses) * ke).doubleValue
            let interval: JSONValue = [
                "start": .string(reading.start.description), "seconds": .number(Double(reading.seconds)),
                "kWh": .number(kWh), "pulses": .number(Double(pulses)),
                "ke": .number(NSDecimalNumber(decimal: ke).doubleValue),
            ]
            let billing: JSONValue = [
                "kWh": .number(NSDecimalNumber(decimal: register).doubleValue), "pulses": .number(Double(pulses)),
                "ke": .number(NSDecimalNumber(decimal: ke).doubleValue),
            ]
            return [
                UplinkItem(id: "iv-\(ms)", kind: .reading, name: "interval", at: at, data: interval),
                UplinkItem(id: "bill-\(ms)", kind: .reading, name: "billing", at: at, data: billing),
            ]
        }
    }

    static func round(_ value: Double) -> Double { (value * 1_000_000).rounded() / 1_000_000 }
}

/// A transport box's pulse counting: whole pulses per interval, the fraction carried over.
/// The register is kept in a file, so it continues across restarts as a real box's does.
final class PulseAccumulator: Sendable {
    private struct State {
        var carry = 0.0
        var register: Decimal?
        var counter: KYZCounter?
    }

    private let state: Mutex<State>
    private let file: URL

    /// Creates the accumulator, continuing the register saved in `file`, if any.
    init(file: URL) {
        self.file = file
        let saved = (try? String(contentsOf: file, encoding: .utf8)).flatMap {
            Decimal(string: $0.trimmingCharacters(in: .whitespacesAndNewlines))
        }
        self.state = Mutex(State(register: saved))
    }

    /// Turns an interval's energy into whole pulses; returns them and the register after.
    func count(kWh: Double, ke: Decimal) -> (pulses: Int64, register: Decimal) {
        let (pulses, register) = state.withLock { state -> (Int64, Decimal) in
            let perPulse = NSDecimalNumber(decimal: ke).doubleValue
            let exact = kWh / perPulse + state.carry
            let pulses = max(0, Int64(exact.rounded(.down)))
            state.carry = exact - Double(pulses)
            if state.counter == nil { state.counter = try? KYZCounter(ke: ke, initialRegisterKWh: state.register ?? 0) }
            try? state.counter?.addPulses(pulses, at: .now())
            let register = state.counter?.registerKWh ?? (state.register ?? 0) + Decimal(pulses) * ke
            state.register = register
            return (pulses, register)
        }
        try? "\(register)".write(to: file, atomically: true, encoding: .utf8)
        return (pulses, register)
    }
}
