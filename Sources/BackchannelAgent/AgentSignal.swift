import Synchronization

/// A reusable wake-up: `signal` makes the current or next `wait` return early.
///
/// Each wait has a generation, so the timer of a wait that already ended cannot cut a later
/// wait short.
final class AgentSignal: Sendable {
    private struct State {
        var pending = false
        var generation: UInt64 = 0
        var waiter: CheckedContinuation<Bool, Never>?
    }

    private let state = Mutex(State())

    /// Wakes the waiter, or makes the next wait return at once.
    func signal() {
        let waiter: CheckedContinuation<Bool, Never>? = state.withLock { state in
            guard let waiter = state.waiter else {
                state.pending = true
                return nil
            }
            state.waiter = nil
            return waiter
        }
        waiter?.resume(returning: true)
    }

    /// Waits up to `seconds`; returns true when signalled, false on timeout or cancellation.
    func wait(seconds: Double) async -> Bool {
        let generation: UInt64? = state.withLock { state in
            if state.pending {
                state.pending = false
                return nil
            }
            state.generation &+= 1
            return state.generation
        }
        guard let generation else { return true }
        guard seconds > 0 else { return false }
        let timer = Task { [self] in
            try? await Task.sleep(for: .milliseconds(Int64(seconds * 1000)))
            self.expire(generation)
        }
        defer { timer.cancel() }
        return await withTaskCancellationHandler {
            await withCheckedContinuation { continuation in
                let ready: Bool? = state.withLock { state in
                    if state.pending {
                        state.pending = false
                        return true
                    }
                    guard state.generation == generation else { return false }  // already expired
                    state.waiter = continuation
                    return nil
                }
                if let ready { continuation.resume(returning: ready) }
            }
        } onCancel: {
            self.expire(generation)
        }
    }

    /// Ends the wait of `generation`, if it is still the one waiting.
    private func expire(_ generation: UInt64) {
        let waiter: CheckedContinuation<Bool, Never>? = state.withLock { state in
            guard state.generation == generation, let waiter = state.waiter else {
                if state.generation == generation { state.generation &+= 1 }  // ended before it began
                return nil
            }
            state.waiter = nil
            state.generation &+= 1
            return waiter
        }
        waiter?.resume(returning: false)
    }
}
