import Synchronization

/// The supply of a simulated device: a power loss trips it, and the device's run loop waits
/// on it to know when to lose power.
final class PowerLine: Sendable {
    private struct State {
        var pending: Double?
        var waiter: CheckedContinuation<Double?, Never>?
    }

    private let state = Mutex(State())

    /// Cuts the power for `seconds`.
    func lose(for seconds: Double) {
        let waiter = state.withLock { state -> CheckedContinuation<Double?, Never>? in
            guard let waiter = state.waiter else {
                state.pending = seconds
                return nil
            }
            state.waiter = nil
            return waiter
        }
        waiter?.resume(returning: seconds)
    }

    /// Waits for the next power loss; returns its length, or nil when the task is cancelled.
    func nextLoss() async -> Double? {
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Double?, Never>) in
                let ready: Double?? = state.withLock { state in
                    if let pending = state.pending {
                        state.pending = nil
                        return .some(pending)
                    }
                    // Checked under the lock: a cancellation either sees the waiter or is seen here.
                    if Task.isCancelled { return .some(nil) }
                    state.waiter = continuation
                    return .none
                }
                if let ready { continuation.resume(returning: ready) }
            }
        } onCancel: {
            let waiter = state.withLock { state -> CheckedContinuation<Double?, Never>? in
                defer { state.waiter = nil }
                return state.waiter
            }
            waiter?.resume(returning: nil)
        }
    }
}
