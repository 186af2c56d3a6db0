import Synchronization

/// Why a held long-poll woke up.
enum WakeReason: Sendable, Equatable {
    /// Work may be waiting.
    case work
    /// A newer poll from the same device arrived.
    case superseded
    /// The wait ended.
    case timeout
    /// The hub is shutting down.
    case shutdown
}

/// A one-shot wake-up signal for one held poll. The first signal wins.
final class Wakeup: Sendable {
    private enum State {
        case idle
        case waiting(CheckedContinuation<WakeReason, Never>)
        case signaled(WakeReason)
    }

    private let state = Mutex<State>(.idle)

    /// Wakes the waiter, or makes the next `wait` return at once.
    func signal(_ reason: WakeReason) {
        let continuation: CheckedContinuation<WakeReason, Never>? = state.withLock { state in
            switch state {
            case .idle:
                state = .signaled(reason)
                return nil
            case .waiting(let continuation):
                state = .signaled(reason)
                return continuation
            case .signaled:
                return nil
            }
        }
        continuation?.resume(returning: reason)
    }

    /// Whether a signal already arrived.
    var isSignaled: Bool {
        state.withLock { if case .signaled = $0 { true } else { false } }
    }

    /// Waits for a signal, at most `seconds`.
    func wait(seconds: Double) async -> WakeReason {
        let timer = Task { [self] in
            try? await Task.sleep(for: .milliseconds(Int64(seconds * 1000)))
            self.signal(.timeout)
        }
        defer { timer.cancel() }
        return await withCheckedContinuation { continuation in
            let ready: WakeReason? = state.withLock { state in
                if case .signaled(let reason) = state { return reason }
                state = .waiting(continuation)
                return nil
            }
            if let ready { continuation.resume(returning: ready) }
        }
    }
}

/// One lane per device: at most one poll of a device is processed at a time, and a newer
/// poll supersedes a held one.
final class PollLanes: Sendable {
    private struct Lane {
        var queue: [CheckedContinuation<Void, Never>] = []
        var held: Wakeup?
    }

    private let lanes = Mutex<[String: Lane]>([:])

    /// Enters the device's lane, superseding a held long-poll and waiting for the lane to clear.
    func enter(_ device: String) async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let (enterNow, held): (Bool, Wakeup?) = lanes.withLock { table in
                if var lane = table[device] {
                    lane.queue.append(continuation)
                    let held = lane.held
                    table[device] = lane
                    return (false, held)
                }
                table[device] = Lane()
                return (true, nil)
            }
            held?.signal(.superseded)
            if enterNow { continuation.resume() }
        }
    }

    /// Leaves the lane, handing it to the next waiting poll.
    func leave(_ device: String) {
        let next: CheckedContinuation<Void, Never>? = lanes.withLock { table in
            guard var lane = table[device] else { return nil }
            lane.held = nil
            guard !lane.queue.isEmpty else {
                table[device] = nil
                return nil
            }
            let next = lane.queue.removeFirst()
            table[device] = lane
            return next
        }
        next?.resume()
    }

    /// Registers the lane holder's wake-up. Returns false (and registers nothing) when a newer
    /// poll is already queued behind it: the holder must answer at once.
    func hold(_ device: String, _ wakeup: Wakeup) -> Bool {
        lanes.withLock { table in
            guard var lane = table[device], lane.queue.isEmpty else { return false }
            lane.held = wakeup
            table[device] = lane
            return true
        }
    }

    /// Whether a poll of the device is held right now (the device is connected).
    func isHolding(_ device: String) -> Bool {
        lanes.withLock { $0[device]?.held != nil }
    }

    /// Clears the holder's wake-up.
    func release(_ device: String) {
        lanes.withLock { table in table[device]?.held = nil }
    }

    /// Wakes the device's held poll, if any, because work arrived.
    func notifyWork(_ device: String) {
        let held = lanes.withLock { $0[device]?.held }
        held?.signal(.work)
    }

    /// Answers the device's held poll at once, as if a newer poll had arrived.
    func supersede(_ device: String) {
        let held = lanes.withLock { $0[device]?.held }
        held?.signal(.superseded)
    }

    /// Wakes every held poll (shutdown).
    func wakeAll(_ reason: WakeReason) {
        let held = lanes.withLock { $0.values.compactMap(\.held) }
        for wakeup in held { wakeup.signal(reason) }
    }
}
