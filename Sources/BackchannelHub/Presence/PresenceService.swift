public import BackchannelProtocol
import BackchannelStore
import Synchronization

/// The hub's presence service: each device's ``PresenceMachine``, its deadline timer, and the
/// changes waiting to be written.
///
/// Deadlines are per-device timers: a min-heap of `errorAt` times that ``PresenceMonitor``
/// sleeps on until the earliest one, woken early when a sooner deadline is armed. There is no
/// periodic sweep, so a device becomes `presence-error` when its own deadline passes.
///
/// Contact is recorded in memory; changes are written in batches by the flusher, so an empty
/// poll writes nothing.
public final class PresenceService: Sendable {
    private struct State {
        var machines: [String: PresenceMachine] = [:]
        var refresh: Set<String> = []
        var heap = DeadlineHeap()
        /// Changed since the last flush.
        var dirty: Set<String> = []
        var transitions: [PresenceTransition] = []
        /// The monitor's current sleep, and when it will wake.
        var sleeper: Wakeup?
        var sleepingUntil: Timestamp?
    }

    private let state = Mutex(State())
    /// Seconds after `contactBy` before a silent device becomes `presence-error`.
    public let grace: Double

    init(grace: Double) {
        self.grace = grace
    }

    // MARK: Events

    /// An authenticated contact, with the presence it declared.
    @discardableResult
    func contact(_ device: String, at now: Timestamp, declaring report: PresenceReport?) -> PresenceTransition? {
        update(device) { $0.contact(at: now, declaring: report) }
    }

    /// A response was sent: the device must be heard from by `by`.
    func expect(_ device: String, by: Timestamp) {
        let grace = self.grace
        let wake: Wakeup? = state.withLock { state in
            guard var machine = state.machines[device] else { return nil }
            machine.expect(by: by, grace: grace)
            state.machines[device] = machine
            state.dirty.insert(device)
            guard let errorAt = machine.errorAt else { return nil }
            state.heap.push(errorAt, device)
            if let until = state.sleepingUntil, errorAt < until { return state.sleeper }
            return nil
        }
        wake?.signal(.work)
    }

    /// A connection opened (a held long-poll, a socket).
    @discardableResult
    func connected(_ device: String, at now: Timestamp) -> PresenceTransition? {
        update(device) { $0.connected(at: now) }
    }

    /// A connection closed; `fallback` is the contract when the connection ended without a
    /// response that stated one.
    func disconnected(_ device: String, fallback: Timestamp) {
        let grace = self.grace
        let wake: Wakeup? = state.withLock { state in
            guard var machine = state.machines[device] else { return nil }
            let before = machine.errorAt
            machine.disconnected(fallback: fallback, grace: grace)
            state.machines[device] = machine
            guard before == nil, let errorAt = machine.errorAt else { return nil }
            state.dirty.insert(device)
            state.heap.push(errorAt, device)
            if let until = state.sleepingUntil, errorAt < until { return state.sleeper }
            return nil
        }
        wake?.signal(.work)
    }

    /// Asks the device to declare its presence again in its next poll.
    func requestRefresh(_ device: String) {
        state.withLock { _ = $0.refresh.insert(device) }
    }

    /// Whether a refresh is requested; a poll that declares presence clears it.
    func refreshRequested(_ device: String, declared: Bool) -> Bool {
        state.withLock { state in
            if declared {
                state.refresh.remove(device)
                return false
            }
            return state.refresh.contains(device)
        }
    }

    private func update(_ device: String, _ body: (inout PresenceMachine) -> PresenceTransition?)
        -> PresenceTransition?
    {
        state.withLock { state in
            var machine = state.machines[device] ?? PresenceMachine(device: device)
            let transition = body(&machine)
            state.machines[device] = machine
            state.dirty.insert(device)
            if let transition { state.transitions.append(transition) }
            return transition
        }
    }

    // MARK: Deadlines

    /// Applies every deadline due at `now`; returns the transitions.
    func fireDue(at now: Timestamp) -> [PresenceTransition] {
        state.withLock { state in
            var fired: [PresenceTransition] = []
            while let (at, device) = state.heap.peek(), at <= now {
                state.heap.pop()
                guard var machine = state.machines[device], machine.errorAt == at else { continue }  // stale entry
                if let transition = machine.deadlinePassed(at: now) {
                    state.machines[device] = machine
                    state.dirty.insert(device)
                    state.transitions.append(transition)
                    fired.append(transition)
                }
            }
            return fired
        }
    }

    /// When the monitor should wake: the earliest armed deadline, at most `cap`. Registers
    /// `wakeup` to be signalled if a sooner deadline is armed meanwhile.
    func wakeTime(_ wakeup: Wakeup, cap: Timestamp) -> Timestamp {
        state.withLock { state in
            let until = min(state.heap.peek()?.0 ?? cap, cap)
            state.sleeper = wakeup
            state.sleepingUntil = until
            return until
        }
    }

    // MARK: Views and persistence

    /// The presence of one device, if the hub knows it.
    public func view(_ device: String) -> PresenceView? {
        state.withLock { state in
            state.machines[device].map { $0.view(refreshRequested: state.refresh.contains(device)) }
        }
    }

    /// Whether the device can take work now.
    public func isAvailable(_ device: String) -> Bool {
        state.withLock { $0.machines[device]?.isAvailable ?? false }
    }

    /// Every known device's presence.
    public func views() -> [PresenceView] {
        state.withLock { state in
            state.machines.values.map { $0.view(refreshRequested: state.refresh.contains($0.device)) }
        }
    }

    /// Takes the states and transitions not yet written.
    func takeChanges() -> ([PresenceView], [PresenceTransition]) {
        state.withLock { state in
            let views = state.dirty.compactMap { state.machines[$0]?.view() }
            let transitions = state.transitions
            state.dirty = []
            state.transitions = []
            return (views, transitions)
        }
    }

    /// Puts back changes whose write failed.
    func restoreChanges(_ views: [PresenceView], _ transitions: [PresenceTransition]) {
        state.withLock { state in
            state.dirty.formUnion(views.map(\.device))
            state.transitions.insert(contentsOf: transitions, at: 0)
        }
    }

    /// Loads states saved before a restart, for devices not heard from since. A deadline that
    /// passed while the hub was down is pushed to `earliest`: devices could not reach a stopped
    /// hub, so they get a full interval to come back.
    func restore(_ saved: [PresenceView], earliest: Timestamp) {
        state.withLock { state in
            for view in saved where state.machines[view.device] == nil {
                // Saved while connected (no deadline): it must come back like any other device.
                let errorAt = view.inferred == .online ? max(view.errorAt ?? earliest, earliest) : nil
                state.machines[view.device] = PresenceMachine(
                    device: view.device, inferred: view.inferred, declared: view.declared, since: view.since,
                    lastContactAt: view.lastContactAt, contactBy: view.contactBy, errorAt: errorAt)
                if let errorAt, view.inferred == .online { state.heap.push(errorAt, view.device) }
            }
        }
    }
}

/// A min-heap of (time, device) deadlines. Entries are never removed early: a popped entry
/// that no longer matches its device's deadline is skipped.
struct DeadlineHeap: Sendable {
    private var items: [(Timestamp, String)] = []

    var count: Int { items.count }

    func peek() -> (Timestamp, String)? { items.first }

    mutating func push(_ at: Timestamp, _ device: String) {
        items.append((at, device))
        var child = items.count - 1
        while child > 0 {
            let parent = (child - 1) / 2
            guard items[child].0 < items[parent].0 else { break }
            items.swapAt(child, parent)
            child = parent
        }
    }

    @discardableResult
    mutating func pop() -> (Timestamp, String)? {
        guard !items.isEmpty else { return nil }
        items.swapAt(0, items.count - 1)
        let top = items.removeLast()
        var parent = 0
        while true {
            let left = 2 * parent + 1
            let right = left + 1
            var smallest = parent
            if left < items.count, items[left].0 < items[smallest].0 { smallest = left }
            if right < items.count, items[right].0 < items[smallest].0 { smallest = right }
            if smallest == parent { break }
            items.swapAt(parent, smallest)
            parent = smallest
        }
        return top
    }
}
