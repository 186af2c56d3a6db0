public import BackchannelProtocol
public import Foundation

/// The device's record of the logical requests it received, started and finished.
///
/// At-least-once delivery means a request may arrive again. The ledger lets the agent answer
/// a redelivered request with its earlier result instead of running it twice. Every change is
/// durable (fsynced to `ledger.journal` in the directory given) before the method returns,
/// so the agent must record `started` before it runs a command.
///
/// Entries that are finished and reported are kept up to `retention`, newest first; older
/// ones are forgotten, so a redelivery after that many later reports would look new. Every
/// other entry is kept until it is finished and reported.
///
/// Not thread-safe, on purpose: one owner (the agent's actor) at a time, and one instance per
/// directory at a time.
public final class ExecutionLedger {
    /// What the ledger knows about one logical request.
    public enum Entry: Sendable, Hashable {
        /// The request arrived and waits to run.
        case received(LogicalRequest)
        /// The request began to run and has not finished.
        case started(LogicalRequest)
        /// The request ended with this result; `reported` once the hub has it.
        case finished(LogicalResult, reported: Bool)
    }

    private enum Record: Codable {
        case received(LogicalRequest)
        case started(String)
        case finished(LogicalResult, reported: Bool)
        case reported([String])
    }

    private struct Slot {
        var entry: Entry
        /// Orders received entries by arrival.
        var arrival: Int
    }

    private let journal: Journal<Record>
    private let retention: Int
    private var slots: [String: Slot] = [:]
    private var arrivals = 0
    /// Finished, unreported ids in finish order.
    private var unreportedIDs: [String] = []
    /// Finished, reported ids, oldest report first, from `reportedHead` on.
    private var reportedIDs: [String] = []
    private var reportedHead = 0

    /// Opens (creating if absent) the ledger kept in `directory`.
    ///
    /// - Parameters:
    ///   - directory: The directory of the ledger's journal file, `ledger.journal`.
    ///   - retention: How many finished and reported entries to keep for late redeliveries.
    public init(directory: URL, retention: Int = 10_000) throws {
        precondition(retention >= 0, "retention must not be negative")
        self.retention = retention
        var replayed: [Record] = []
        journal = try Journal(url: directory.appendingPathComponent("ledger.journal")) { replayed.append($0) }
        for record in replayed { apply(record) }
    }

    /// Returns what the ledger knows about the request with this id, or `nil` if nothing.
    public func entry(for id: String) -> Entry? { slots[id]?.entry }

    /// Records that a request arrived, durably; does nothing if the id is already known.
    public func recordReceived(_ request: LogicalRequest) throws {
        guard slots[request.id] == nil else { return }
        try write([.received(request)])
    }

    /// Records that a received request is about to run, durably.
    ///
    /// Call it before running the command. It throws ``DurableStorageError/Code/unknownRequest``
    /// for an id never received, and ``DurableStorageError/Code/invalidTransition`` for one
    /// already started or finished, so that nothing runs twice.
    public func recordStarted(_ id: String) throws {
        switch slots[id]?.entry {
        case nil: throw DurableStorageError.unknownRequest
        case .received: try write([.started(id)])
        case .started, .finished: throw DurableStorageError.invalidTransition("start")
        }
    }

    /// Records a request's result, durably.
    ///
    /// The first result recorded for an id wins: later ones are ignored. A request may finish
    /// without having started (for example when it is refused) or without being known.
    public func recordFinished(_ result: LogicalResult) throws {
        if case .finished = slots[result.id]?.entry { return }
        try write([.finished(result, reported: false)])
    }

    /// Records that the hub now holds these results, durably; ids not awaiting a report are ignored.
    public func markReported(_ ids: some Sequence<String>) throws {
        var seen = Set<String>()
        let pending = ids.filter { id in
            guard case .finished(_, reported: false) = slots[id]?.entry else { return false }
            return seen.insert(id).inserted
        }
        guard !pending.isEmpty else { return }
        try write([.reported(pending)])
    }

    /// Returns the results finished but not yet reported, in the order they finished.
    public func unreported() -> [LogicalResult] {
        unreportedIDs.compactMap { id in
            guard case .finished(let result, reported: false) = slots[id]?.entry else { return nil }
            return result
        }
    }

    /// Settles what a restart interrupted; call it once at start-up, before anything else.
    ///
    /// Each request that started but did not finish may or may not have taken effect, so it is
    /// never run again: it becomes a non-retryable `failed` result with the code
    /// `interrupted`, durably. The requests received but never started are returned, in
    /// arrival order, for the caller to run.
    public func recover(at now: Timestamp) throws -> [LogicalRequest] {
        let ordered = slots.values.sorted { $0.arrival < $1.arrival }
        let interrupted: [Record] = ordered.compactMap { slot in
            guard case .started(let request) = slot.entry else { return nil }
            let result = LogicalResult(
                id: request.id,
                status: .failed,
                code: OutcomeCode.interrupted,
                retryable: false,
                detail: "the device restarted while running this command; it may or may not have taken effect",
                finishedAt: now
            )
            return .finished(result, reported: false)
        }
        try write(interrupted)
        return ordered.compactMap { slot in
            guard case .received(let request) = slot.entry else { return nil }
            return request
        }
    }

    /// Rewrites the journal to hold only what the ledger keeps.
    public func compact() throws {
        var records: [Record] = reportedIDs[reportedHead...].compactMap { id in
            guard case .finished(let result, reported: true) = slots[id]?.entry else { return nil }
            return .finished(result, reported: true)
        }
        for slot in slots.values.sorted(by: { $0.arrival < $1.arrival }) {
            switch slot.entry {
            case .received(let request):
                records.append(.received(request))
            case .started(let request):
                records.append(.received(request))
                records.append(.started(request.id))
            case .finished:
                continue
            }
        }
        for result in unreported() { records.append(.finished(result, reported: false)) }
        try journal.rewrite(records)
        reportedIDs.removeFirst(reportedHead)
        reportedHead = 0
    }

    /// Appends records durably, then applies them, then compacts when the journal has grown
    /// far past what the ledger keeps.
    private func write(_ records: [Record]) throws {
        guard !records.isEmpty else { return }
        if journal.needsRewrite { try compact() }
        try journal.append(records)
        for record in records { apply(record) }
        let slack = max(64, min(1000, retention))
        if journal.recordCount > 2 * slots.count + slack {
            // The change is already durable; a failed compaction leaves a longer but valid
            // journal (or one that the next write repairs), so it must not fail this call.
            try? compact()
        }
    }

    /// Applies one record to the in-memory state: the same code for live changes and replay.
    private func apply(_ record: Record) {
        switch record {
        case .received(let request):
            guard slots[request.id] == nil else { return }
            arrivals += 1
            slots[request.id] = Slot(entry: .received(request), arrival: arrivals)
        case .started(let id):
            guard case .received(let request) = slots[id]?.entry else { return }
            slots[id]?.entry = .started(request)
        case .finished(let result, let reported):
            let slot = slots[result.id]
            if case .finished = slot?.entry { return }
            slots[result.id] = Slot(entry: .finished(result, reported: reported), arrival: slot?.arrival ?? 0)
            if reported { retain(result.id) } else { unreportedIDs.append(result.id) }
        case .reported(let ids):
            var done = Set<String>()
            for id in ids {
                guard case .finished(let result, reported: false) = slots[id]?.entry else { continue }
                slots[id]?.entry = .finished(result, reported: true)
                done.insert(id)
                retain(id)
            }
            if !done.isEmpty { unreportedIDs.removeAll { done.contains($0) } }
        }
    }

    /// Keeps a newly reported id, forgetting the oldest reported entries beyond `retention`.
    private func retain(_ id: String) {
        reportedIDs.append(id)
        while reportedIDs.count - reportedHead > retention {
            slots[reportedIDs[reportedHead]] = nil
            reportedHead += 1
        }
        if reportedHead > 1024, reportedHead > reportedIDs.count / 2 {
            reportedIDs.removeFirst(reportedHead)
            reportedHead = 0
        }
    }
}
