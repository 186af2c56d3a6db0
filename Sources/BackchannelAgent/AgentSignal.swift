import Synchronization

/// A reusable wake-up: `signal` makes the current or next `wait` return early.
final class AgentSignal: Sendable {
    private enum State {
        case idle
        case pending
        case waiting(CheckedContinuation<Bool, Never>)
    }

    private let state = Mutex<State>(.idle)

    /// Wakes the waiter, or makes the next wait return at once.
    func signal() {
        let continuation: CheckedContinuation<Bool, Never>? = state.withLock { state in
            switch state {
            case .idle, .pending:
                state = .pending
                return nil
            case .waiting(let continuation):
                state = .idle
                return continuation
            }
        }
        continuation?.resume(returning: true)
    }

    /// Waits up to `seconds`; returns true when signalled, false on timeout or cancellation.
    func wait(seconds: Double) async -> Bool {
        guard seconds > 0 else { return consumePending() }
        let timer = Task { [self] in
            try? await Task.sleep(for: .milliseconds(Int64(seconds * 1000)))
            self.timeout()
        }
        defer { timer.cancel() }
        return await withTaskCancellationHandler {
            await withCheckedContinuation { continuation in
                let ready: Bool = state.withLock { state in
                    if case .pending = state {
                        state = .idle
                        return true
                    }
                    state = .waiting(continuation)
                    return false
                }
                if ready { continuation.resume(returning: true) }
            }
        } onCancel: {
            self.timeout()
        }
    }

    private func consumePending() -> Bool {
        state.withLock { state in
            if case .pending = state {
                state = .idle
                return true
            }
            return false
        }
    }

    private func timeout() {
        let continuation: CheckedContinuation<Bool, Never>? = state.withLock { state in
            if case .waiting(let continuation) = state {
                state = .idle
                return continuation
            }
            return nil
        }
        continuation?.resume(returning: false)
    }
}
