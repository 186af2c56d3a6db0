/// Body of `POST /v1/devices`: provision a device.
public struct ProvisionDeviceRequest: Sendable, Hashable, Codable {
    /// The device id: 1-128 characters of A-Z a-z 0-9 . _ : - starting with a letter or digit.
    public var id: String
    /// A display name.
    public var name: String?
    /// Free-form labels, such as `{"site": "north", "type": "meter"}`.
    public var labels: [String: String]?
    /// The tenant the device belongs to; default the caller's. Only an admin of the hub's system
    /// tenant may name another.
    public var tenant: String?

    /// Creates a provisioning request.
    public init(id: String, name: String? = nil, labels: [String: String]? = nil, tenant: String? = nil) {
        self.tenant = tenant
        self.id = id
        self.name = name
        self.labels = labels
    }
}

/// Answer to a provisioning or credential rotation: the device and its bearer token.
///
/// The token is shown once; the hub stores only its hash.
public struct ProvisionedDevice: Sendable, Hashable, Codable {
    /// The device.
    public var device: DeviceView
    /// The bearer token the device presents in `Authorization: Bearer <token>`.
    public var token: String

    /// Creates the answer.
    public init(device: DeviceView, token: String) {
        self.device = device
        self.token = token
    }
}

/// A device as the operator API shows it.
public struct DeviceView: Sendable, Hashable, Codable {
    /// The device id.
    public var id: String
    /// The display name.
    public var name: String?
    /// Labels.
    public var labels: [String: String]
    /// When it was provisioned.
    public var createdAt: Timestamp
    /// The last authenticated contact, from the hub's memory (fresher than the store).
    public var lastSeenAt: Timestamp?
    /// What the device last declared about its presence.
    public var presence: PresenceReport?
    /// What the hub infers: `unknown`, `online`, `unavailable` or `presence-error`.
    public var presenceState: InferredPresence?
    /// Whether the device can take work now (online, and not declared restricted or unavailable).
    public var available: Bool?
    /// Clock offset of the device against the hub, in seconds (device minus hub), from the
    /// NTP-style exchange of its last polls.
    public var clockOffset: Double?
    /// Round-trip network delay of its last measured poll, in seconds.
    public var clockDelay: Double?
    /// Commands that are not yet terminal.
    public var pendingCommands: Int?

    /// Creates a device view.
    public init(
        id: String,
        name: String? = nil,
        labels: [String: String] = [:],
        createdAt: Timestamp,
        lastSeenAt: Timestamp? = nil,
        presence: PresenceReport? = nil,
        pendingCommands: Int? = nil
    ) {
        self.id = id
        self.name = name
        self.labels = labels
        self.createdAt = createdAt
        self.lastSeenAt = lastSeenAt
        self.presence = presence
        self.pendingCommands = pendingCommands
    }
}

/// Body of `POST /v1/devices/{id}/commands`: submit a command.
public struct SubmitCommandRequest: Sendable, Hashable, Codable {
    /// The command name: 1-64 characters of A-Z a-z 0-9 . _ : -.
    public var name: String
    /// Arguments, a JSON object. Defaults to `{}`.
    public var args: JSONValue?
    /// Seconds from now until the command expires if the device has not acknowledged it.
    /// Give `ttl` or `expiresAt`, not both; the hub's default applies when neither is given.
    public var ttl: Double?
    /// The absolute expiry.
    public var expiresAt: Timestamp?
    /// Do not deliver for execution before this time (hub clock).
    public var notBefore: Timestamp?
    /// A client-chosen key: resubmitting the same key to the same device returns the
    /// original command instead of creating a second one.
    public var idempotencyKey: String?
    /// Deliveries to try before failing as undeliverable.
    public var maxAttempts: Int?
    /// Seconds the device has, after acknowledging, to report a result before TIMED_OUT.
    public var timeout: Double?
    /// How the command is delivered; default `queued`.
    public var delivery: DeliveryMode?
    /// The command id, chosen by the client (a ``MessageID``). Required with `signature`, since
    /// the signature covers it; otherwise the hub assigns one.
    public var id: String?
    /// The issuer's end-to-end signature (see ``CommandSignature``). A signed command must give
    /// `id` and `expiresAt` explicitly; the hub forwards the signature to the device unchanged.
    public var signature: CommandSignature?

    /// Creates a submission.
    public init(
        name: String,
        args: JSONValue? = nil,
        ttl: Double? = nil,
        expiresAt: Timestamp? = nil,
        notBefore: Timestamp? = nil,
        idempotencyKey: String? = nil,
        maxAttempts: Int? = nil,
        timeout: Double? = nil,
        delivery: DeliveryMode? = nil
    ) {
        self.delivery = delivery
        self.name = name
        self.args = args
        self.ttl = ttl
        self.expiresAt = expiresAt
        self.notBefore = notBefore
        self.idempotencyKey = idempotencyKey
        self.maxAttempts = maxAttempts
        self.timeout = timeout
    }
}

/// The outcome recorded on a terminal command.
public struct CommandOutcome: Sendable, Hashable, Codable {
    /// How the device reported it, when the device reported it.
    public var status: ResultStatus?
    /// A machine-readable code; see ``OutcomeCode``.
    public var code: String?
    /// Whether retrying could succeed.
    public var retryable: Bool?
    /// A human-readable explanation.
    public var detail: String?
    /// The command's output.
    public var data: JSONValue?
    /// The device's inner SOAP result envelope, when it answered through the SOAP binding.
    public var envelope: String?

    /// Creates an outcome.
    public init(
        status: ResultStatus? = nil, code: String? = nil, retryable: Bool? = nil, detail: String? = nil,
        data: JSONValue? = nil, envelope: String? = nil
    ) {
        self.envelope = envelope
        self.status = status
        self.code = code
        self.retryable = retryable
        self.detail = detail
        self.data = data
    }
}

/// One recorded state transition of a command.
public struct TransitionView: Sendable, Hashable, Codable {
    /// When it happened (hub clock).
    public var at: Timestamp
    /// The state before; absent for the creation entry.
    public var from: MessageState?
    /// The state after.
    public var to: MessageState
    /// What caused it: `submit`, `dispatch`, `ack`, `result`, `lease-lapsed`, `expire`,
    /// `timeout`, `cancel`, or `late-result` (a result after a terminal state; the state is kept).
    public var event: String
    /// The attempt number at that moment.
    public var attempt: Int
    /// Extra explanation.
    public var detail: String?

    /// Creates a transition entry.
    public init(
        at: Timestamp, from: MessageState?, to: MessageState, event: String, attempt: Int, detail: String? = nil
    ) {
        self.at = at
        self.from = from
        self.to = to
        self.event = event
        self.attempt = attempt
        self.detail = detail
    }
}

/// A command as the operator API shows it.
public struct CommandView: Sendable, Hashable, Codable {
    public var id: String
    public var device: String
    public var origin: String
    public var name: String
    public var args: JSONValue
    public var state: MessageState
    public var attempt: Int
    public var maxAttempts: Int
    public var createdAt: Timestamp
    public var updatedAt: Timestamp
    public var expiresAt: Timestamp
    public var notBefore: Timestamp?
    public var leaseExpiresAt: Timestamp?
    public var ackedAt: Timestamp?
    public var finishedAt: Timestamp?
    public var idempotencyKey: String?
    public var outcome: CommandOutcome?
    /// How the command is delivered (absent: `queued`).
    public var delivery: DeliveryMode?
    /// For a request another device sent (rendezvous): the sender's `ref`.
    public var ref: String?
    /// For a request another device sent: `pending`, `sent` or `acked` once its outcome is on
    /// its way back to the sender.
    public var replyState: String?
    /// Every transition, oldest first; included by `GET /v1/commands/{id}`.
    public var history: [TransitionView]?

    /// Creates a command view.
    public init(
        id: String, device: String, origin: String, name: String, args: JSONValue, state: MessageState,
        attempt: Int, maxAttempts: Int, createdAt: Timestamp, updatedAt: Timestamp, expiresAt: Timestamp,
        notBefore: Timestamp? = nil, leaseExpiresAt: Timestamp? = nil, ackedAt: Timestamp? = nil,
        finishedAt: Timestamp? = nil, idempotencyKey: String? = nil, outcome: CommandOutcome? = nil,
        ref: String? = nil, replyState: String? = nil, history: [TransitionView]? = nil,
        delivery: DeliveryMode? = nil
    ) {
        self.delivery = delivery
        self.id = id
        self.device = device
        self.origin = origin
        self.name = name
        self.args = args
        self.state = state
        self.attempt = attempt
        self.maxAttempts = maxAttempts
        self.createdAt = createdAt
        self.updatedAt = updatedAt
        self.expiresAt = expiresAt
        self.notBefore = notBefore
        self.leaseExpiresAt = leaseExpiresAt
        self.ackedAt = ackedAt
        self.finishedAt = finishedAt
        self.idempotencyKey = idempotencyKey
        self.outcome = outcome
        self.ref = ref
        self.replyState = replyState
        self.history = history
    }
}

/// A stored reading or event as the operator API shows it.
public struct UplinkView: Sendable, Hashable, Codable {
    public var device: String
    public var id: String
    public var kind: UplinkKind
    public var name: String
    /// The device's time of measurement.
    public var at: Timestamp
    /// When the hub stored it.
    public var receivedAt: Timestamp
    public var data: JSONValue

    /// Creates an uplink view.
    public init(
        device: String, id: String, kind: UplinkKind, name: String, at: Timestamp, receivedAt: Timestamp,
        data: JSONValue
    ) {
        self.device = device
        self.id = id
        self.kind = kind
        self.name = name
        self.at = at
        self.receivedAt = receivedAt
        self.data = data
    }
}

/// One page of a list. Pass `nextCursor` back as `cursor` to get the next page; it is absent
/// on the last page.
public struct Page<Item: Sendable & Hashable & Codable>: Sendable, Hashable, Codable {
    public var items: [Item]
    public var nextCursor: String?

    /// Creates a page.
    public init(items: [Item], nextCursor: String? = nil) {
        self.items = items
        self.nextCursor = nextCursor
    }
}

/// Something that happened in the hub, as streamed by `GET /v1/events`.
public struct HubEvent: Sendable, Hashable, Codable {
    /// Event types.
    public enum Kind: String, Sendable, Hashable, Codable, CaseIterable {
        case deviceProvisioned = "device.provisioned"
        case deviceFirstSeen = "device.first-seen"
        case devicePresence = "device.presence"
        case uplink = "uplink"
        case commandSubmitted = "command.submitted"
        case commandTransition = "command.transition"
        case rendezvousRejected = "rendezvous.rejected"
        case campaign = "campaign"
        case alarm = "alarm"
        /// A power application acted: an outage opened or closed, a power quality event, a
        /// shedding or supplier decision, a topology alert, a tamper flag. `detail` names it.
        case power = "power"
    }

    /// Increasing number within one hub process.
    public var seq: Int64
    public var at: Timestamp
    public var type: Kind
    public var device: String?
    public var command: String?
    public var state: MessageState?
    public var detail: String?
    public var data: JSONValue?

    /// Creates an event.
    public init(
        seq: Int64, at: Timestamp, type: Kind, device: String? = nil, command: String? = nil,
        state: MessageState? = nil, detail: String? = nil, data: JSONValue? = nil
    ) {
        self.seq = seq
        self.at = at
        self.type = type
        self.device = device
        self.command = command
        self.state = state
        self.detail = detail
        self.data = data
    }
}

/// How a command reaches its device.
public enum DeliveryMode: String, Sendable, Hashable, Codable, CaseIterable {
    /// Store and forward (the default): delivered whenever the device next polls, until it expires.
    case queued
    /// Now or never: delivered at once to a device holding a long-poll, and reported delivered
    /// once the device acknowledges it; otherwise refused at once with `device_unavailable`.
    case instant
    /// Held until the device's presence is available (online, not restricted), then delivered;
    /// EXPIRED if that does not happen by its expiry.
    case whenAvailable
}
