public import BackchannelProtocol
public import Foundation

/// A provisioned device, as stored.
public struct DeviceRecord: Sendable, Hashable {
    /// The device id.
    public var id: String
    /// Display name.
    public var name: String?
    /// Labels.
    public var labels: [String: String]
    /// Hex SHA-256 of the device's bearer token. The token itself is never stored.
    public var tokenHash: String
    /// When it was provisioned.
    public var createdAt: Timestamp
    /// Last contact, as last flushed from the hub's memory.
    public var lastSeenAt: Timestamp?
    /// The last physical exchange that changed state, for answering a retried request.
    public var lastExchange: ExchangeMemo?
    /// The tenant that owns the device and everything about it.
    public var tenant: String

    /// Creates a device record.
    public init(
        id: String,
        name: String? = nil,
        labels: [String: String] = [:],
        tokenHash: String,
        createdAt: Timestamp,
        lastSeenAt: Timestamp? = nil,
        lastExchange: ExchangeMemo? = nil,
        tenant: String = Tenant.default
    ) {
        self.tenant = tenant
        self.id = id
        self.name = name
        self.labels = labels
        self.tokenHash = tokenHash
        self.createdAt = createdAt
        self.lastSeenAt = lastSeenAt
        self.lastExchange = lastExchange
    }
}

/// The memory of one physical exchange: its sequence number, a hash of the request body and the
/// exact response bytes, so a retried request gets the identical response back.
public struct ExchangeMemo: Sendable, Hashable {
    /// The device's sequence number.
    public var seq: Int64
    /// Hex SHA-256 of the request body.
    public var requestHash: String
    /// The response body as sent.
    public var response: Data

    /// Creates a memo.
    public init(seq: Int64, requestHash: String, response: Data) {
        self.seq = seq
        self.requestHash = requestHash
        self.response = response
    }
}

/// One logical request to one device, with its full lifecycle.
public struct CommandRecord: Sendable, Hashable {
    public var id: String
    public var device: String
    public var origin: String
    public var name: String
    public var args: JSONValue
    public var createdAt: Timestamp
    public var updatedAt: Timestamp
    /// The command expires if not acknowledged by this time.
    public var expiresAt: Timestamp
    /// The command is not dispatched for execution before this time.
    public var notBefore: Timestamp?
    public var idempotencyKey: String?
    /// Milliseconds the device has, after acknowledging, to report a result.
    public var executionTimeoutMs: Int64
    /// The inner SOAP envelope of a request sent through the SOAP binding, kept verbatim.
    public var envelope: String?
    /// How the command is delivered.
    public var delivery: DeliveryMode = .queued
    /// The campaign this command is a child of.
    public var campaign: String?
    /// The issuer's end-to-end signature, stored and forwarded unchanged.
    public var signature: CommandSignature?

    public var state: MessageState
    /// Deliveries so far.
    public var attempt: Int
    /// Deliveries allowed before the command fails as undeliverable.
    public var maxAttempts: Int
    /// While DISPATCHED: when the lease lapses without an acknowledgement.
    public var leaseExpiresAt: Timestamp?
    public var ackedAt: Timestamp?
    /// While ACKED: when the command times out without a result.
    public var resultDeadline: Timestamp?
    public var finishedAt: Timestamp?
    public var outcome: CommandOutcome?
    /// For a request another device sent through the hub (rendezvous): that device's id.
    public var replyTo: String?
    /// The sending device's `ref` for the request.
    public var replyRef: String?
    /// How far the outcome has got on its way back to the sender; nil until it is terminal.
    public var replyState: ReplyState?
    /// While the reply is ``ReplyState/sent``: when it is delivered again without an ack.
    public var replyLeaseUntil: Timestamp?

    /// Creates a new QUEUED command.
    public init(
        id: String,
        device: String,
        origin: String,
        name: String,
        args: JSONValue,
        createdAt: Timestamp,
        expiresAt: Timestamp,
        notBefore: Timestamp? = nil,
        idempotencyKey: String? = nil,
        maxAttempts: Int,
        executionTimeoutMs: Int64
    ) {
        self.id = id
        self.device = device
        self.origin = origin
        self.name = name
        self.args = args
        self.createdAt = createdAt
        self.updatedAt = createdAt
        self.expiresAt = expiresAt
        self.notBefore = notBefore
        self.idempotencyKey = idempotencyKey
        self.executionTimeoutMs = executionTimeoutMs
        self.state = .queued
        self.attempt = 0
        self.maxAttempts = maxAttempts
    }

    /// The command as the device receives it.
    public var logicalRequest: LogicalRequest {
        LogicalRequest(
            id: id, origin: origin, name: name, args: args, createdAt: createdAt,
            expiresAt: expiresAt, notBefore: notBefore, attempt: attempt, envelope: envelope,
            signature: signature, ref: replyTo == nil ? nil : replyRef
        )
    }

    /// The outcome as routed back to the sending device, for a rendezvous request.
    public var peerReply: PeerReply? {
        guard replyTo != nil, let replyRef, state.isTerminal else { return nil }
        return PeerReply(
            id: id, ref: replyRef, from: "device:\(device)", name: name, state: state, outcome: outcome,
            finishedAt: finishedAt
        )
    }

    /// Whether the reply to the sender can be delivered at `now`.
    public func replyDeliverable(at now: Timestamp) -> Bool {
        switch replyState {
        case .pending: true
        case .sent: replyLeaseUntil.map { $0 <= now } ?? true
        case .acked, nil: false
        }
    }

    /// The command as the operator API shows it.
    public func view(history: [TransitionRecord]? = nil) -> CommandView {
        CommandView(
            id: id, device: device, origin: origin, name: name, args: args, state: state, attempt: attempt,
            maxAttempts: maxAttempts, createdAt: createdAt, updatedAt: updatedAt, expiresAt: expiresAt,
            notBefore: notBefore, leaseExpiresAt: leaseExpiresAt, ackedAt: ackedAt, finishedAt: finishedAt,
            idempotencyKey: idempotencyKey, outcome: outcome, ref: replyRef, replyState: replyState?.rawValue,
            history: history?.map(\.view), delivery: delivery == .queued ? nil : delivery
        )
    }
}

/// One entry of a command's history.
public struct TransitionRecord: Sendable, Hashable {
    public var command: String
    public var device: String
    public var at: Timestamp
    /// Absent for the creation entry.
    public var from: MessageState?
    public var to: MessageState
    /// The event's wire name; see ``LifecycleEvent/name``.
    public var event: String
    public var attempt: Int
    public var detail: String?

    /// Creates a history entry.
    public init(
        command: String, device: String, at: Timestamp, from: MessageState?, to: MessageState,
        event: String, attempt: Int, detail: String? = nil
    ) {
        self.command = command
        self.device = device
        self.at = at
        self.from = from
        self.to = to
        self.event = event
        self.attempt = attempt
        self.detail = detail
    }

    /// The entry as the operator API shows it.
    public var view: TransitionView {
        TransitionView(at: at, from: from, to: to, event: event, attempt: attempt, detail: detail)
    }

    /// The creation entry of a command.
    public static func created(_ command: CommandRecord) -> TransitionRecord {
        TransitionRecord(
            command: command.id, device: command.device, at: command.createdAt, from: nil, to: .queued,
            event: "submit", attempt: 0
        )
    }
}

/// A stored reading or event.
public struct UplinkRecord: Sendable, Hashable {
    /// The store's arrival order, also the pagination cursor.
    public var seq: Int64
    public var device: String
    public var item: UplinkItem
    public var receivedAt: Timestamp

    /// Creates an uplink record.
    public init(seq: Int64, device: String, item: UplinkItem, receivedAt: Timestamp) {
        self.seq = seq
        self.device = device
        self.item = item
        self.receivedAt = receivedAt
    }

    /// The record as the operator API shows it.
    public var view: UplinkView {
        UplinkView(
            device: device, id: item.id, kind: item.kind, name: item.name, at: item.at,
            receivedAt: receivedAt, data: item.data
        )
    }
}

/// Where the outcome of a rendezvous request is on its way back to the sending device.
public enum ReplyState: String, Sendable, Hashable, CaseIterable {
    /// Terminal, not yet sent to the sender.
    case pending
    /// Placed in a poll response of the sender; delivered again if not acknowledged in time.
    case sent
    /// The sender acknowledged it (`replyAcks`).
    case acked
}

/// A campaign: one command sent to many devices, each as a child command.
public struct CampaignRecord: Sendable, Hashable {
    public var id: String
    public var name: String
    public var args: JSONValue
    public var state: CampaignState
    public var createdAt: Timestamp
    public var finishedAt: Timestamp?
    public var deviceCount: Int
    public var perMinute: Int?
    public var abortThreshold: Double?
    public var minFinished: Int?
    public var untilAvailable: Bool
    public var expiresAt: Timestamp
    public var detail: String?
    /// The tenant that started it.
    public var tenant: String = Tenant.default

    /// Creates a running campaign.
    public init(
        id: String, name: String, args: JSONValue, createdAt: Timestamp, deviceCount: Int, perMinute: Int?,
        abortThreshold: Double?, minFinished: Int?, untilAvailable: Bool, expiresAt: Timestamp
    ) {
        self.id = id
        self.name = name
        self.args = args
        self.state = .running
        self.createdAt = createdAt
        self.deviceCount = deviceCount
        self.perMinute = perMinute
        self.abortThreshold = abortThreshold
        self.minFinished = minFinished
        self.untilAvailable = untilAvailable
        self.expiresAt = expiresAt
    }
}

/// Tenant names.
public enum Tenant {
    /// The tenant of devices and records from before tenants existed, and of the hub's
    /// bootstrap operator.
    public static let `default` = "default"
}

/// An operator account. The token itself is never stored: only a salted hash.
public struct OperatorRecord: Sendable, Hashable {
    public var name: String
    public var tenant: String
    public var role: OperatorRole
    /// `Credentials.hash(_:)` of the token: algorithm, salt and digest.
    public var tokenHash: String
    public var createdAt: Timestamp

    /// Creates a record.
    public init(name: String, tenant: String, role: OperatorRole, tokenHash: String, createdAt: Timestamp) {
        self.name = name
        self.tenant = tenant
        self.role = role
        self.tokenHash = tokenHash
        self.createdAt = createdAt
    }

    /// The operator as the API shows it.
    public var view: OperatorView { OperatorView(name: name, role: role, tenant: tenant, createdAt: createdAt) }
}
