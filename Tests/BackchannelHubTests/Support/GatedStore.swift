import BackchannelHub
import BackchannelProtocol
import BackchannelSQLite
import BackchannelStore
import Foundation
import Logging
import Synchronization

/// One-shot gate: when armed, the next `pass()` blocks until `open()`.
final class Gate: Sendable {
    private struct S {
        var armed = false
        var entered = false
        var opened = false
        var waiter: CheckedContinuation<Void, Never>?
    }
    private let s = Mutex(S())
    func arm() { s.withLock { $0.armed = true } }
    var entered: Bool { s.withLock { $0.entered } }
    func pass() async {
        await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
            let go: Bool = s.withLock { st in
                guard st.armed else { return true }
                st.armed = false
                st.entered = true
                if st.opened { return true }
                st.waiter = c
                return false
            }
            if go { c.resume() }
        }
    }
    func open() {
        let w: CheckedContinuation<Void, Never>? = s.withLock { st in
            st.opened = true
            defer { st.waiter = nil }
            return st.waiter
        }
        w?.resume()
    }
}

/// Forwards to SQLite, letting a test pause right after a read has been taken, to open
/// the window of a race deterministically.
final class GatedStore: MessageStore {
    let inner: SQLiteMessageStore
    let pendingGate = Gate()
    let deviceGate = Gate()
    init(_ inner: SQLiteMessageStore) { self.inner = inner }
    var writeCount: UInt64 { inner.writeCount }
    func insertDevice(_ device: DeviceRecord) async throws { try await inner.insertDevice(device) }
    func device(id: String) async throws -> DeviceRecord? {
        let r = try await inner.device(id: id)
        await deviceGate.pass()
        return r
    }
    func devices(after cursor: String?, limit: Int, tenant: String?) async throws -> [DeviceRecord] {
        try await inner.devices(after: cursor, limit: limit, tenant: tenant)
    }
    func insertOperator(_ record: OperatorRecord) async throws { try await inner.insertOperator(record) }
    func operatorRecord(name: String) async throws -> OperatorRecord? { try await inner.operatorRecord(name: name) }
    func operators(tenant: String?) async throws -> [OperatorRecord] { try await inner.operators(tenant: tenant) }
    func setOperatorTokenHash(_ tokenHash: String, operator name: String) async throws -> Bool {
        try await inner.setOperatorTokenHash(tokenHash, operator: name)
    }
    func deleteOperator(name: String) async throws -> Bool { try await inner.deleteOperator(name: name) }
    func appendAudit(_ entries: [AuditEntry]) async throws { try await inner.appendAudit(entries) }
    func putIntervals(_ records: [IntervalRecord]) async throws { try await inner.putIntervals(records) }
    func intervals(device: String, startingIn range: Range<Timestamp>) async throws -> [IntervalRecord] {
        try await inner.intervals(device: device, startingIn: range)
    }
    func pruneIntervals(before cutoff: Timestamp) async throws -> Int { try await inner.pruneIntervals(before: cutoff) }
    func putPowerDocuments(_ documents: [PowerDocument]) async throws { try await inner.putPowerDocuments(documents) }
    func powerDocument(kind: String, key: String) async throws -> PowerDocument? {
        try await inner.powerDocument(kind: kind, key: key)
    }
    func powerDocuments(_ query: PowerDocumentQuery) async throws -> [PowerDocument] {
        try await inner.powerDocuments(query)
    }
    func deletePowerDocument(kind: String, key: String) async throws -> Bool {
        try await inner.deletePowerDocument(kind: kind, key: key)
    }
    func audit(tenant: String?, before cursor: Int64?, limit: Int) async throws -> [AuditEntry] {
        try await inner.audit(tenant: tenant, before: cursor, limit: limit)
    }
    func setTokenHash(_ tokenHash: String, device: String) async throws -> Bool {
        try await inner.setTokenHash(tokenHash, device: device)
    }
    func recordLastSeen(_ seen: [String: Timestamp]) async throws { try await inner.recordLastSeen(seen) }
    func submit(_ command: CommandRecord) async throws -> SubmitResult { try await inner.submit(command) }
    func command(id: String) async throws -> CommandRecord? { try await inner.command(id: id) }
    func history(command: String) async throws -> [TransitionRecord] { try await inner.history(command: command) }
    func commands(_ query: CommandQuery) async throws -> [CommandRecord] { try await inner.commands(query) }
    func cancel(command: String, at now: Timestamp, reason: String?, onlyFrom: Set<MessageState>?) async throws
        -> CancelResult
    {
        try await inner.cancel(command: command, at: now, reason: reason, onlyFrom: onlyFrom)
    }
    func pendingCount(device: String) async throws -> Int { try await inner.pendingCount(device: device) }
    func pendingWork(device: String, horizon: Timestamp, now: Timestamp) async throws -> PendingWork {
        let r = try await inner.pendingWork(device: device, horizon: horizon, now: now)
        await pendingGate.pass()
        return r
    }
    func exchange(_ input: ExchangeInput, memo: @Sendable (ExchangeOutcome) throws -> ExchangeMemo?) async throws
        -> ExchangeOutcome
    {
        try await inner.exchange(input, memo: memo)
    }
    func sweep(at now: Timestamp, limit: Int) async throws -> ExchangePlan {
        try await inner.sweep(at: now, limit: limit)
    }
    func nextDeadline() async throws -> Timestamp? { try await inner.nextDeadline() }
    func insertRule(_ rule: RendezvousRule) async throws { try await inner.insertRule(rule) }
    func setting(_ key: String) async throws -> Data? { try await inner.setting(key) }
    func setSetting(_ key: String, _ value: Data) async throws { try await inner.setSetting(key, value) }
    func insertCampaign(_ campaign: CampaignRecord, children: [CommandRecord]) async throws {
        try await inner.insertCampaign(campaign, children: children)
    }
    func campaign(id: String) async throws -> CampaignRecord? { try await inner.campaign(id: id) }
    func campaigns(limit: Int, tenant: String?) async throws -> [CampaignRecord] {
        try await inner.campaigns(limit: limit, tenant: tenant)
    }
    func finishCampaign(id: String, state: CampaignState, at: Timestamp, detail: String?, cancelling: String?)
        async throws -> [CancelResult]?
    {
        try await inner.finishCampaign(id: id, state: state, at: at, detail: detail, cancelling: cancelling)
    }
    func campaignCounts(id: String) async throws -> [MessageState: Int] { try await inner.campaignCounts(id: id) }
    func recordPresence(_ states: [PresenceView], transitions: [PresenceTransition]) async throws {
        try await inner.recordPresence(states, transitions: transitions)
    }
    func presenceStates() async throws -> [PresenceView] { try await inner.presenceStates() }
    func presenceHistory(device: String, limit: Int) async throws -> [PresenceTransition] {
        try await inner.presenceHistory(device: device, limit: limit)
    }
    func uplink(
        device: String, kind: UplinkKind?, measuredIn range: Range<Timestamp>, after cursor: UplinkCursor?, limit: Int
    ) async throws -> [UplinkRecord] {
        try await inner.uplink(device: device, kind: kind, measuredIn: range, after: cursor, limit: limit)
    }
    func rules() async throws -> [RendezvousRule] { try await inner.rules() }
    func deleteRule(id: String) async throws -> Bool { try await inner.deleteRule(id: id) }
    func uplink(device: String, kind: UplinkKind?, after cursor: Int64?, limit: Int) async throws -> [UplinkRecord] {
        try await inner.uplink(device: device, kind: kind, after: cursor, limit: limit)
    }
}

func gatedHub(clock: ManualHubClock) throws -> (Hub, GatedStore) {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("bc-review-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    let store = GatedStore(try SQLiteMessageStore(path: dir.appendingPathComponent("hub.sqlite").path))
    var configuration = HubConfiguration()
    configuration.port = 0
    configuration.devicePollRate = 0
    configuration.pollJitter = 0
    var logger = Logger(label: "review")
    logger.logLevel = .critical
    return (Hub(configuration: configuration, store: store, clock: clock, logger: logger), store)
}
