public import BackchannelProtocol
public import Foundation

/// The device's uplink items (readings and events) that wait to be delivered to the hub.
///
/// Items are kept in a journal file, `outbox.journal`, in the directory given. An item added
/// is durable when ``add(_:)`` returns, survives restarts (a new instance on the same
/// directory) until it is marked delivered, and never comes back once marked delivered.
/// Items come out oldest first.
///
/// An item whose id is already waiting is not added again: the first one added wins. Once an
/// id is delivered it is forgotten, so the same id may be added afresh later.
///
/// The journal compacts itself when the records of delivered items outnumber both the waiting
/// items and `compactAfter`.
///
/// Not thread-safe, on purpose: one owner (the agent's actor) at a time, and one instance per
/// directory at a time.
public final class DurableOutbox {
    private enum Record: Codable {
        case add(UplinkItem)
        case delivered([String])
    }

    private let journal: Journal<Record>
    private let compactAfter: Int
    /// Waiting items in the order added; `nil` marks a delivered one not yet swept out.
    private var slots: [UplinkItem?] = []
    /// The index of the first slot that may hold an item.
    private var head = 0
    /// Where each waiting item's slot is.
    private var slotOfID: [String: Int] = [:]

    /// Opens (creating if absent) the outbox kept in `directory`.
    ///
    /// - Parameters:
    ///   - directory: The directory of the outbox's journal file, `outbox.journal`.
    ///   - compactAfter: How many records of delivered items the journal may hold before it is
    ///     rewritten (it also waits until they outnumber the waiting items).
    public init(directory: URL, compactAfter: Int = 1000) throws {
        self.compactAfter = compactAfter
        var replayed: [Record] = []
        journal = try Journal(url: directory.appendingPathComponent("outbox.journal")) { replayed.append($0) }
        for record in replayed { apply(record) }
    }

    /// The number of items waiting.
    public var count: Int { slotOfID.count }

    /// Whether no item is waiting.
    public var isEmpty: Bool { slotOfID.isEmpty }

    /// Adds items to the end of the outbox, durably: they are on disk when this returns.
    ///
    /// Items whose id is already waiting, or repeated within `items`, are skipped.
    public func add(_ items: [UplinkItem]) throws {
        var seen = Set<String>()
        let fresh = items.filter { slotOfID[$0.id] == nil && seen.insert($0.id).inserted }
        guard !fresh.isEmpty else { return }
        try write(fresh.map(Record.add))
        for item in fresh { apply(.add(item)) }
    }

    /// Returns up to `max` waiting items, oldest first, without removing them.
    public func peek(max: Int) -> [UplinkItem] {
        var result: [UplinkItem] = []
        var index = head
        while result.count < max, index < slots.count {
            if let item = slots[index] { result.append(item) }
            index += 1
        }
        return result
    }

    /// Removes delivered items, durably: they never come back once this returns.
    ///
    /// Ids that are not waiting are ignored.
    public func markDelivered(_ ids: some Sequence<String>) throws {
        var seen = Set<String>()
        let known = ids.filter { slotOfID[$0] != nil && seen.insert($0).inserted }
        guard !known.isEmpty else { return }
        try write([.delivered(known)])
        apply(.delivered(known))
        if deadRecords > compactAfter, deadRecords > count {
            // The delivery is already durable; a failed compaction leaves a longer but valid
            // journal (or one that the next write repairs), so it must not fail this call.
            try? compact()
        }
    }

    /// Rewrites the journal to hold only the waiting items.
    public func compact() throws {
        try journal.rewrite(peek(max: .max).map(Record.add))
        sweep()
    }

    /// The journal's records that no longer describe a waiting item.
    private var deadRecords: Int { journal.recordCount - count }

    /// Appends records, first repairing the journal if an earlier write failed part-way.
    private func write(_ records: [Record]) throws {
        if journal.needsRewrite { try compact() }
        try journal.append(records)
    }

    private func apply(_ record: Record) {
        switch record {
        case .add(let item):
            guard slotOfID[item.id] == nil else { return }
            slotOfID[item.id] = slots.count
            slots.append(item)
        case .delivered(let ids):
            for id in ids {
                guard let slot = slotOfID.removeValue(forKey: id) else { continue }
                slots[slot] = nil
            }
            while head < slots.count, slots[head] == nil { head += 1 }
            let holes = slots.count - count
            if holes > 1024, holes > count { sweep() }
        }
    }

    /// Drops the delivered slots from memory and renumbers the rest.
    private func sweep() {
        slots = slots[head...].compactMap { $0 }
        head = 0
        slotOfID.removeAll(keepingCapacity: true)
        for (index, item) in slots.enumerated() {
            if let item { slotOfID[item.id] = index }
        }
    }
}
