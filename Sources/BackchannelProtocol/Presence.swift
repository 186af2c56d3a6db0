/// What the hub infers about a device's presence, apart from what the device declares.
public enum InferredPresence: String, Sendable, Hashable, Codable, CaseIterable {
    /// Not heard from since it was provisioned.
    case unknown
    /// Heard from within its deadline (or connected now).
    case online
    /// Said goodbye: declared `unavailable`.
    case unavailable
    /// Missed its deadline plus the grace.
    case presenceError = "presence-error"
}

/// A device's presence: the hub's inference and the device's declaration, with the contract.
public struct PresenceView: Sendable, Hashable, Codable {
    /// The device id.
    public var device: String
    /// The hub's inference.
    public var inferred: InferredPresence
    /// What the device last declared.
    public var declared: PresenceReport?
    /// Whether the device can take work now: online, and not declared `restricted` or `unavailable`.
    public var available: Bool
    /// Since when `inferred` has held.
    public var since: Timestamp?
    /// The last authenticated contact.
    public var lastContactAt: Timestamp?
    /// When the hub must hear from the device next (as told in its last response); nil while
    /// it is connected or after a goodbye.
    public var contactBy: Timestamp?
    /// When the device becomes `presence-error` if not heard from (contactBy plus the grace).
    public var errorAt: Timestamp?
    /// The hub asked the device to declare its presence again in its next poll.
    public var refreshRequested: Bool

    /// Creates a value.
    public init(
        device: String, inferred: InferredPresence, declared: PresenceReport? = nil, available: Bool,
        since: Timestamp? = nil, lastContactAt: Timestamp? = nil, contactBy: Timestamp? = nil,
        errorAt: Timestamp? = nil, refreshRequested: Bool = false
    ) {
        self.device = device
        self.inferred = inferred
        self.declared = declared
        self.available = available
        self.since = since
        self.lastContactAt = lastContactAt
        self.contactBy = contactBy
        self.errorAt = errorAt
        self.refreshRequested = refreshRequested
    }
}

/// One recorded presence change.
public struct PresenceTransition: Sendable, Hashable, Codable {
    /// The device id.
    public var device: String
    /// When it happened (hub clock).
    public var at: Timestamp
    /// The inferred state before.
    public var from: InferredPresence
    /// The inferred state after.
    public var to: InferredPresence
    /// The declared state after (when the device declared one).
    public var declared: DeclaredPresence?
    /// The declared note after.
    public var note: String?
    /// What caused it: `contact`, `declared`, `goodbye`, `deadline-missed`, `connected`, `disconnected`.
    public var reason: String

    /// Creates a value.
    public init(
        device: String, at: Timestamp, from: InferredPresence, to: InferredPresence, declared: DeclaredPresence?,
        note: String?, reason: String
    ) {
        self.device = device
        self.at = at
        self.from = from
        self.to = to
        self.declared = declared
        self.note = note
        self.reason = reason
    }
}

/// One device's presence as a pure state machine: contact, declarations, deadlines.
///
/// | event | effect |
/// |---|---|
/// | `contact` (any authenticated poll) | `online` (from unknown, presence-error or unavailable) |
/// | `contact` declaring `unavailable` | `unavailable` (a clean goodbye); no deadline |
/// | `contact` declaring another state | declared state recorded; `online` |
/// | `expect(by:grace:)` (a response was sent) | deadline = `by + grace` |
/// | `hold` (a long-poll or socket is open) | no deadline while connected |
/// | `deadlinePassed(at:)` at or after the deadline, while `online` | `presence-error` |
///
/// Every change of `inferred` or of the declaration yields a ``PresenceTransition``.
public struct PresenceMachine: Sendable, Hashable {
    /// The device id.
    public let device: String
    /// The hub's inference.
    public private(set) var inferred: InferredPresence
    /// The last declaration.
    public private(set) var declared: PresenceReport?
    /// Since when `inferred` holds.
    public private(set) var since: Timestamp?
    /// The last contact.
    public private(set) var lastContactAt: Timestamp?
    /// The contract: when the hub must hear from the device.
    public private(set) var contactBy: Timestamp?
    /// When a missed contract becomes `presence-error`.
    public private(set) var errorAt: Timestamp?
    /// Open connections (held long-polls, sockets): while above zero there is no deadline.
    public private(set) var connections = 0

    /// A device not heard from yet.
    public init(device: String) {
        self.device = device
        self.inferred = .unknown
    }

    /// A device restored from the store.
    public init(
        device: String, inferred: InferredPresence, declared: PresenceReport?, since: Timestamp?,
        lastContactAt: Timestamp?, contactBy: Timestamp?, errorAt: Timestamp?
    ) {
        self.device = device
        self.inferred = inferred
        self.declared = declared
        self.since = since
        self.lastContactAt = lastContactAt
        self.contactBy = contactBy
        self.errorAt = errorAt
    }

    /// Whether the device can take work now.
    public var isAvailable: Bool {
        guard inferred == .online else { return false }
        switch declared?.state {
        case .restricted?, .unavailable?: return false
        default: return true
        }
    }

    /// An authenticated contact, with the presence it declared (if any).
    public mutating func contact(at now: Timestamp, declaring report: PresenceReport?) -> PresenceTransition? {
        lastContactAt = now
        let declarationChanged = report != nil && report != declared
        if let report { declared = report }
        let next: InferredPresence = declared?.state == .unavailable && report != nil ? .unavailable : .online
        if next == .unavailable {
            contactBy = nil
            errorAt = nil
        }
        let reason =
            next == .unavailable ? "goodbye" : (inferred == .online && declarationChanged ? "declared" : "contact")
        return move(to: next, at: now, reason: reason, force: declarationChanged)
    }

    /// A response was sent: the device must be heard from by `by`; `presence-error` at `by + grace`.
    public mutating func expect(by: Timestamp, grace: Double) {
        guard inferred == .online else { return }
        contactBy = by
        errorAt = by.adding(seconds: grace)
    }

    /// A connection opened (a held long-poll, a socket): the device is present while it is open.
    public mutating func connected(at now: Timestamp) -> PresenceTransition? {
        connections += 1
        lastContactAt = now
        contactBy = nil
        errorAt = nil
        // A goodbye stands until the device says otherwise.
        guard inferred != .unavailable else { return nil }
        return move(to: .online, at: now, reason: "connected")
    }

    /// A connection closed. When it was the last one and no response stated a new contract
    /// since (the connection ended without one: an error, a closed socket), the device must be
    /// heard from by `fallback`, with the grace, like after any response.
    public mutating func disconnected(fallback: Timestamp, grace: Double) {
        connections = max(0, connections - 1)
        if connections == 0, inferred == .online, errorAt == nil {
            contactBy = fallback
            errorAt = fallback.adding(seconds: grace)
        }
    }

    /// The deadline timer fired at `now`.
    public mutating func deadlinePassed(at now: Timestamp) -> PresenceTransition? {
        guard inferred == .online, connections == 0, let errorAt, now >= errorAt else { return nil }
        self.contactBy = nil
        self.errorAt = nil
        return move(to: .presenceError, at: now, reason: "deadline-missed")
    }

    private mutating func move(to next: InferredPresence, at now: Timestamp, reason: String, force: Bool = false)
        -> PresenceTransition?
    {
        guard next != inferred || force else { return nil }
        let from = inferred
        if next != inferred { since = now }
        inferred = next
        return PresenceTransition(
            device: device, at: now, from: from, to: next, declared: declared?.state, note: declared?.note,
            reason: reason)
    }

    /// The view of this state.
    public func view(refreshRequested: Bool = false) -> PresenceView {
        PresenceView(
            device: device, inferred: inferred, declared: declared, available: isAvailable, since: since,
            lastContactAt: lastContactAt, contactBy: contactBy, errorAt: errorAt, refreshRequested: refreshRequested)
    }
}

/// A device's presence with its recorded transitions, newest first, as the operator API shows it.
public struct PresenceDetailView: Sendable, Hashable, Codable {
    /// The current presence.
    public var presence: PresenceView
    /// Recorded transitions, newest first.
    public var history: [PresenceTransition]

    /// Creates a value.
    public init(presence: PresenceView, history: [PresenceTransition]) {
        self.presence = presence
        self.history = history
    }
}
