public import BackchannelProtocol
public import Foundation

/// The device's side of rendezvous: requests it sends to other devices, and their replies.
///
/// Kept in a journal file, `peers.journal`, in the agent's state directory:
/// - a request added is durable when ``add(_:)`` returns, and is sent with every poll until a
///   hub answers it (``markRouted(_:)``);
/// - a reply received is durable before the agent acknowledges it to the hub, so a reply the
///   hub stops delivering is never lost to a crash;
/// - a hub rejection becomes a local reply in state `REJECTED`, so callers see one outcome
///   per request.
///
/// Not thread-safe, on purpose: the agent's actor owns it.
public final class PeerMailbox {
    private enum Record: Codable {
        case request(PeerRequest)
        case routed(ref: String, id: String?)
        case reply(PeerReply)
        case consumed([String])
    }

    private let journal: Journal<Record>
    /// Requests not yet answered by a hub, in the order added.
    private var unrouted: [PeerRequest] = []
    /// Hub ids of routed requests, by ref.
    private var routedIDs: [String: String] = [:]
    /// Replies not yet consumed, by ref.
    private var replies: [String: PeerReply] = [:]
    private var consumedCount = 0

    /// Opens (creating if absent) the mailbox kept in `directory`.
    public init(directory: URL) throws {
        var replayed: [Record] = []
        journal = try Journal(url: directory.appendingPathComponent("peers.journal")) { replayed.append($0) }
        for record in replayed { apply(record) }
    }

    /// Requests waiting for a hub's answer, oldest first.
    public func pending(max: Int) -> [PeerRequest] { Array(unrouted.prefix(max)) }

    /// Whether a request waits for a hub's answer.
    public var hasPending: Bool { !unrouted.isEmpty }

    /// The reply to the request with this ref, if it has arrived.
    public func reply(ref: String) -> PeerReply? { replies[ref] }

    /// The hub's id for a routed request.
    public func routedID(ref: String) -> String? { routedIDs[ref] }

    /// Adds a request, durably. A ref already waiting is not added again.
    public func add(_ request: PeerRequest) throws {
        guard !unrouted.contains(where: { $0.ref == request.ref }), routedIDs[request.ref] == nil else { return }
        try write([.request(request)])
        apply(.request(request))
    }

    /// Records the hub's answers: routed requests stop being sent; a rejection becomes a reply.
    public func markRouted(_ answers: [RoutedRequest]) throws {
        var records: [Record] = []
        for answer in answers {
            guard let request = unrouted.first(where: { $0.ref == answer.ref }) else { continue }
            records.append(.routed(ref: answer.ref, id: answer.id))
            if answer.state == .rejected {
                records.append(
                    .reply(
                        PeerReply(
                            id: answer.id ?? "", ref: answer.ref, from: request.to, name: request.name,
                            state: .rejected,
                            outcome: CommandOutcome(
                                status: .rejected, code: answer.code, retryable: false, detail: answer.detail)
                        )
                    )
                )
            }
        }
        guard !records.isEmpty else { return }
        try write(records)
        for record in records { apply(record) }
    }

    /// Stores replies from the hub, durably. Returns the ones not seen before.
    @discardableResult
    public func store(_ received: [PeerReply]) throws -> [PeerReply] {
        let fresh = received.filter { replies[$0.ref] == nil }
        guard !fresh.isEmpty else { return [] }
        try write(fresh.map(Record.reply))
        for reply in fresh { apply(.reply(reply)) }
        return fresh
    }

    /// Forgets replies the caller has dealt with.
    public func consume(refs: [String]) throws {
        let known = refs.filter { replies[$0] != nil }
        guard !known.isEmpty else { return }
        try write([.consumed(known)])
        apply(.consumed(known))
        if consumedCount > 1000 { try compact() }
    }

    private func compact() throws {
        var records = unrouted.map(Record.request)
        records += routedIDs.map { Record.routed(ref: $0.key, id: $0.value) }
        records += replies.values.map(Record.reply)
        try journal.rewrite(records)
        consumedCount = 0
    }

    private func write(_ records: [Record]) throws {
        if journal.needsRewrite { try compact() }
        try journal.append(records)
    }

    private func apply(_ record: Record) {
        switch record {
        case .request(let request):
            unrouted.append(request)
        case .routed(let ref, let id):
            unrouted.removeAll { $0.ref == ref }
            if let id { routedIDs[ref] = id }
        case .reply(let reply):
            replies[reply.ref] = reply
        case .consumed(let refs):
            for ref in refs {
                replies.removeValue(forKey: ref)
                routedIDs.removeValue(forKey: ref)
            }
            consumedCount += refs.count
        }
    }
}
