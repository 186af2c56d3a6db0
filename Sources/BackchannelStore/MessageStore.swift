public import BackchannelProtocol
public import Foundation

/// Durable storage for devices, commands with their history, and uplink.
///
/// Every store passes the same conformance suite (`BackchannelStoreTests`). The lifecycle
/// decisions are made by ``LifecyclePlanner`` and ``CommandRecord/apply(_:at:)``; a store only
/// loads records, applies the plan and commits, each operation in one transaction.
public protocol MessageStore: Sendable {
    /// Committed transactions that changed data, since the store was opened.
    var writeCount: UInt64 { get }

    // MARK: Devices

    /// Inserts a new device. Throws ``StoreError/conflict`` when the id exists.
    func insertDevice(_ device: DeviceRecord) async throws
    /// The device with this id.
    func device(id: String) async throws -> DeviceRecord?
    /// Devices ordered by id, starting after `cursor`; only the tenant's when `tenant` is given.
    func devices(after cursor: String?, limit: Int, tenant: String?) async throws -> [DeviceRecord]
    /// Replaces a device's token hash. Returns false when the device does not exist.
    func setTokenHash(_ tokenHash: String, device: String) async throws -> Bool
    /// Records last-seen times in one transaction (a batch flushed from memory).
    func recordLastSeen(_ seen: [String: Timestamp]) async throws

    // MARK: Commands

    /// Stores a new QUEUED command with its creation history entry.
    ///
    /// When the command has an idempotency key already used for the same device, nothing is
    /// written and the existing command is returned; if the name or args differ, throws
    /// ``StoreError/idempotencyMismatch``.
    func submit(_ command: CommandRecord) async throws -> SubmitResult
    /// The command with this id.
    func command(id: String) async throws -> CommandRecord?
    /// A command's history, oldest first.
    func history(command: String) async throws -> [TransitionRecord]
    /// Commands matching the query, newest (most recently submitted) first.
    func commands(_ query: CommandQuery) async throws -> [CommandRecord]
    /// Applies an operator cancellation.
    /// With `onlyFrom`, cancels only if the command is in one of those states (a compare-and-set);
    /// otherwise answers ``CancelResult/moved(_:)``.
    func cancel(command: String, at now: Timestamp, reason: String?, onlyFrom: Set<MessageState>?) async throws
        -> CancelResult
    /// How many commands of the device are not terminal.
    func pendingCount(device: String) async throws -> Int

    // MARK: The poll path

    /// Whether the device has a dispatchable command now, and the earliest future `notBefore`.
    /// Read-only.
    func pendingWork(device: String, horizon: Timestamp, now: Timestamp) async throws -> PendingWork
    /// Performs one physical exchange in one transaction: stores uplink, applies acks and
    /// results, stores the device's peer requests, applies its reply acks, dispatches up to
    /// `accept` commands and leases up to `replyLimit` replies, then asks `memo` for the
    /// response to remember (given the outcome so far) and stores it with the device. Nothing
    /// is written when nothing changes.
    func exchange(
        _ input: ExchangeInput,
        memo: @Sendable (ExchangeOutcome) throws -> ExchangeMemo?
    ) async throws -> ExchangeOutcome
    /// Applies due deadlines (lease lapses, expiry, timeouts) to at most `limit` commands.
    func sweep(at now: Timestamp, limit: Int) async throws -> ExchangePlan
    /// The earliest deadline among non-terminal commands, if any.
    func nextDeadline() async throws -> Timestamp?

    // MARK: Settings

    /// A stored setting (a JSON document kept by a hub component), or nil.
    func setting(_ key: String) async throws -> Data?
    /// Stores a setting, replacing any earlier value.
    func setSetting(_ key: String, _ value: Data) async throws

    // MARK: Campaigns

    /// Stores a campaign and all its child commands, in one transaction.
    func insertCampaign(_ campaign: CampaignRecord, children: [CommandRecord]) async throws
    /// The campaign with this id.
    func campaign(id: String) async throws -> CampaignRecord?
    /// Campaigns, newest first; only the tenant's when `tenant` is given.
    func campaigns(limit: Int, tenant: String?) async throws -> [CampaignRecord]
    /// Ends a running campaign and, with `cancelling`, cancels its open children (with that
    /// reason), all in one transaction. Returns nil when it was not running, else the children
    /// canceled (as ``CancelResult/canceled(_:previous:)``).
    func finishCampaign(id: String, state: CampaignState, at: Timestamp, detail: String?, cancelling: String?)
        async throws -> [CancelResult]?
    /// The campaign's children by state.
    func campaignCounts(id: String) async throws -> [MessageState: Int]

    // MARK: Presence

    /// Saves presence states and appends transitions to the history, in one transaction (a
    /// batch flushed from memory).
    func recordPresence(_ states: [PresenceView], transitions: [PresenceTransition]) async throws
    /// Every saved presence state, for restoring after a restart.
    func presenceStates() async throws -> [PresenceView]
    /// A device's presence history, newest first.
    func presenceHistory(device: String, limit: Int) async throws -> [PresenceTransition]

    // MARK: Rendezvous

    /// Stores a new rendezvous rule.
    func insertRule(_ rule: RendezvousRule) async throws
    /// Every rendezvous rule, oldest first.
    func rules() async throws -> [RendezvousRule]
    /// Deletes a rule. Returns false when there is no such rule.
    func deleteRule(id: String) async throws -> Bool

    // MARK: Operators and audit

    /// Stores a new operator. Throws ``StoreError/conflict`` when the name exists.
    func insertOperator(_ record: OperatorRecord) async throws
    /// The operator with this name.
    func operatorRecord(name: String) async throws -> OperatorRecord?
    /// Operators ordered by name; only the tenant's when `tenant` is given.
    func operators(tenant: String?) async throws -> [OperatorRecord]
    /// Replaces an operator's token hash. Returns false when there is no such operator.
    func setOperatorTokenHash(_ tokenHash: String, operator name: String) async throws -> Bool
    /// Deletes an operator. Returns false when there is no such operator.
    func deleteOperator(name: String) async throws -> Bool
    /// Appends entries to the audit log in one transaction; the store assigns `seq` (the given
    /// value is ignored). The log is append-only: no operation changes or removes an entry.
    func appendAudit(_ entries: [AuditEntry]) async throws
    /// Audit entries, newest first, before `cursor` (a `seq`); only the tenant's when given.
    func audit(tenant: String?, before cursor: Int64?, limit: Int) async throws -> [AuditEntry]

    // MARK: Power applications

    /// Stores interval data in one transaction; an interval with the same device and start
    /// replaces the stored one (a meter resending its data is safe).
    func putIntervals(_ records: [IntervalRecord]) async throws
    /// A device's intervals that start in `range`, oldest first.
    func intervals(device: String, startingIn range: Range<Timestamp>) async throws -> [IntervalRecord]
    /// Deletes intervals that started before `cutoff` (retention). Returns how many.
    func pruneIntervals(before cutoff: Timestamp) async throws -> Int
    /// Stores power documents in one transaction, replacing those with the same kind and key.
    func putPowerDocuments(_ documents: [PowerDocument]) async throws
    /// The power document with this kind and key.
    func powerDocument(kind: String, key: String) async throws -> PowerDocument?
    /// Power documents matching the query, newest first (by `at`, then key).
    func powerDocuments(_ query: PowerDocumentQuery) async throws -> [PowerDocument]
    /// Deletes a power document. Returns false when there is none.
    func deletePowerDocument(kind: String, key: String) async throws -> Bool

    // MARK: Uplink

    /// Stored uplink of a device, newest first, starting after `cursor` (a record `seq`).
    func uplink(device: String, kind: UplinkKind?, after cursor: Int64?, limit: Int) async throws -> [UplinkRecord]
    /// Stored uplink of a device measured in `range` (by the item's `at`), oldest first, ordered
    /// by (`at`, `seq`), starting after `cursor`: for exports.
    func uplink(
        device: String, kind: UplinkKind?, measuredIn range: Range<Timestamp>, after cursor: UplinkCursor?, limit: Int
    ) async throws -> [UplinkRecord]
}

/// The result of ``MessageStore/submit(_:)``.
public enum SubmitResult: Sendable, Hashable {
    /// A new command was stored.
    case created(CommandRecord)
    /// The idempotency key was used before; this is the original command.
    case existing(CommandRecord)

    /// The command, new or existing.
    public var record: CommandRecord {
        switch self {
        case .created(let r), .existing(let r): r
        }
    }
}

/// A position in an export: the (`at`, `seq`) of the last record read.
public struct UplinkCursor: Sendable, Hashable {
    /// When the last record was measured.
    public var at: Timestamp
    /// Its arrival number.
    public var seq: Int64

    /// Creates a cursor.
    public init(at: Timestamp, seq: Int64) {
        self.at = at
        self.seq = seq
    }

    /// The cursor just after `record`.
    public init(after record: UplinkRecord) {
        self.init(at: record.item.at, seq: record.seq)
    }
}

extension MessageStore {
    /// Devices of every tenant ordered by id, starting after `cursor`.
    public func devices(after cursor: String?, limit: Int) async throws -> [DeviceRecord] {
        try await devices(after: cursor, limit: limit, tenant: nil)
    }

    /// Campaigns of every tenant, newest first.
    public func campaigns(limit: Int) async throws -> [CampaignRecord] {
        try await campaigns(limit: limit, tenant: nil)
    }

    /// Applies an operator cancellation, from any non-terminal state.
    public func cancel(command: String, at now: Timestamp, reason: String?) async throws -> CancelResult {
        try await cancel(command: command, at: now, reason: reason, onlyFrom: nil)
    }
}

/// What an exchange did with one rendezvous request.
public enum RoutedSubmission: Sendable, Hashable {
    /// Stored, QUEUED for the target.
    case created(CommandRecord)
    /// The sender used this `ref` before for the same request; this is that request.
    case existing(CommandRecord)
    /// The sender used this `ref` before for a different request; nothing was stored.
    case refReused(ref: String)
}

/// The result of ``MessageStore/cancel(command:at:reason:)``.
public enum CancelResult: Sendable, Hashable {
    /// Canceled; `previous` is the state it was in.
    case canceled(CommandRecord, previous: MessageState)
    /// The command is already terminal; nothing changed.
    case alreadyTerminal(CommandRecord)
    /// The command is not in a state the caller allowed (`onlyFrom`); nothing changed.
    case moved(CommandRecord)
    /// No such command.
    case notFound
}

/// Filters for listing commands.
public struct CommandQuery: Sendable, Hashable {
    public var device: String?
    public var state: MessageState?
    /// Only rendezvous requests sent by this device.
    public var replyTo: String?
    /// Only rendezvous requests with this sender's `ref`.
    public var ref: String?
    /// Only children of this campaign.
    public var campaign: String?
    /// Return commands submitted before the command with this id (a page cursor).
    public var before: String?
    /// Only commands to devices of this tenant.
    public var tenant: String?
    public var limit: Int

    /// Creates a query.
    public init(
        device: String? = nil, state: MessageState? = nil, replyTo: String? = nil, ref: String? = nil,
        campaign: String? = nil, before: String? = nil, limit: Int = 100
    ) {
        self.campaign = campaign
        self.device = device
        self.state = state
        self.replyTo = replyTo
        self.ref = ref
        self.before = before
        self.limit = limit
    }
}

/// What is waiting for a device.
public struct PendingWork: Sendable, Hashable {
    /// A command can be dispatched now (not counting `whenAvailable` ones).
    public var dueNow: Bool
    /// A `whenAvailable` command could be dispatched now, if the device is available.
    public var dueWhenAvailable: Bool = false
    /// The earliest `notBefore` beyond the horizon among QUEUED commands.
    public var nextNotBefore: Timestamp?
    /// Rendezvous replies wait to be delivered to the device.
    public var repliesDue: Bool

    /// Creates a value.
    public init(dueNow: Bool, nextNotBefore: Timestamp?, repliesDue: Bool = false) {
        self.dueNow = dueNow
        self.nextNotBefore = nextNotBefore
        self.repliesDue = repliesDue
    }

    /// Whether a poll should be answered at once: work or replies wait.
    public var anythingDue: Bool { dueNow || repliesDue }

    /// The same, for a device whose availability is `available`.
    public func due(available: Bool) -> PendingWork {
        var work = self
        work.dueNow = dueNow || (available && dueWhenAvailable)
        work.dueWhenAvailable = false
        return work
    }
}

/// What an exchange did.
public struct ExchangeOutcome: Sendable, Hashable {
    /// The lifecycle changes, including the dispatched commands.
    public var plan: ExchangePlan
    /// Uplink ids of the request that are now stored (new or stored earlier).
    public var stored: [String]
    /// Uplink ids stored by this exchange for the first time.
    public var newlyStored: [String]
    /// Whether a transaction was committed.
    public var wrote: Bool
    /// The memo stored with the device, when the exchange wrote one.
    public var memo: ExchangeMemo?
    /// What became of each of `ExchangeInput.routed`, in the same order.
    public var routed: [RoutedSubmission] = []
    /// Rendezvous replies delivered in this exchange (now ``ReplyState/sent``).
    public var replies: [CommandRecord] = []
    /// More rendezvous replies wait beyond `replyLimit`.
    public var moreReplies = false

    /// Creates an outcome.
    public init(plan: ExchangePlan, stored: [String], newlyStored: [String], wrote: Bool, memo: ExchangeMemo? = nil) {
        self.plan = plan
        self.stored = stored
        self.newlyStored = newlyStored
        self.wrote = wrote
        self.memo = memo
    }
}

/// A store failure. The description never contains payloads or SQL.
public struct StoreError: Error, Sendable, Hashable, CustomStringConvertible {
    private enum Code: Sendable, Hashable {
        case conflict, idempotencyMismatch, unknownDevice, corrupt
    }

    private let code: Code
    /// What went wrong.
    public let message: String

    private init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    /// The record already exists.
    public static func conflict(_ message: String) -> StoreError { StoreError(.conflict, message) }
    /// An idempotency key was reused with a different command.
    public static func idempotencyMismatch(_ key: String) -> StoreError {
        StoreError(.idempotencyMismatch, "idempotency key '\(key)' was used for a different command")
    }
    /// The device does not exist.
    public static func unknownDevice(_ id: String) -> StoreError {
        StoreError(.unknownDevice, "unknown device '\(id)'")
    }
    /// A stored value could not be read back.
    public static func corrupt(_ message: String) -> StoreError { StoreError(.corrupt, message) }

    public var isConflict: Bool { code == .conflict }
    public var isIdempotencyMismatch: Bool { code == .idempotencyMismatch }
    public var isUnknownDevice: Bool { code == .unknownDevice }

    public var description: String { message }

    public static func == (lhs: StoreError, rhs: StoreError) -> Bool { lhs.code == rhs.code }
    public func hash(into hasher: inout Hasher) { hasher.combine(code) }
}
