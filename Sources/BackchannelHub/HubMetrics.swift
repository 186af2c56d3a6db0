import Synchronization

/// Counters the hub keeps, exported at `/metrics` in Prometheus text format.
public final class HubMetrics: Sendable {
    /// Every poll answered 200.
    let polls = Atomic<UInt64>(0)
    /// Polls that carried no data and received no work.
    let emptyPolls = Atomic<UInt64>(0)
    /// Polls answered from the retry memo.
    let replayedPolls = Atomic<UInt64>(0)
    /// Long-polls answered because a newer poll replaced them.
    let supersededPolls = Atomic<UInt64>(0)
    /// Polls rejected with 4xx/5xx.
    let rejectedPolls = Atomic<UInt64>(0)
    /// Operator requests refused: bad token, role or tenant.
    let operatorRejections = Atomic<UInt64>(0)
    /// Long-polls held right now.
    let heldPolls = Atomic<Int>(0)
    /// Commands placed in poll responses.
    let dispatched = Atomic<UInt64>(0)
    /// Results received from devices.
    let results = Atomic<UInt64>(0)
    /// Uplink items stored for the first time.
    let uplinkStored = Atomic<UInt64>(0)
    /// Commands accepted by the operator API.
    let commandsSubmitted = Atomic<UInt64>(0)
    /// Peer requests accepted and queued for their target (rendezvous).
    let rendezvousRouted = Atomic<UInt64>(0)
    /// Peer requests rejected (no rule, unknown or unavailable target, bad request).
    let rendezvousRejected = Atomic<UInt64>(0)
    /// Requests rejected as malformed XML or as a SOAP fault.
    let soapFaults = Atomic<UInt64>(0)

    init() {}

    /// The counters' current values.
    public var snapshot: HubMetricsSnapshot {
        HubMetricsSnapshot(
            polls: polls.load(ordering: .relaxed),
            emptyPolls: emptyPolls.load(ordering: .relaxed),
            replayedPolls: replayedPolls.load(ordering: .relaxed),
            supersededPolls: supersededPolls.load(ordering: .relaxed),
            rejectedPolls: rejectedPolls.load(ordering: .relaxed),
            heldPolls: heldPolls.load(ordering: .relaxed),
            dispatched: dispatched.load(ordering: .relaxed),
            results: results.load(ordering: .relaxed),
            uplinkStored: uplinkStored.load(ordering: .relaxed),
            commandsSubmitted: commandsSubmitted.load(ordering: .relaxed),
            rendezvousRouted: rendezvousRouted.load(ordering: .relaxed),
            rendezvousRejected: rendezvousRejected.load(ordering: .relaxed)
        )
    }

    func render(storeWrites: UInt64) -> String {
        func line(_ name: String, _ help: String, _ type: String, _ value: String) -> String {
            "# HELP backchannel_\(name) \(help)\n# TYPE backchannel_\(name) \(type)\nbackchannel_\(name) \(value)\n"
        }
        return [
            line("polls_total", "Polls answered 200.", "counter", "\(polls.load(ordering: .relaxed))"),
            line(
                "empty_polls_total", "Polls with no data and no work.", "counter",
                "\(emptyPolls.load(ordering: .relaxed))"),
            line(
                "replayed_polls_total", "Retried polls answered from the memo.", "counter",
                "\(replayedPolls.load(ordering: .relaxed))"),
            line(
                "superseded_polls_total", "Long-polls replaced by a newer poll.", "counter",
                "\(supersededPolls.load(ordering: .relaxed))"),
            line(
                "rejected_polls_total", "Polls answered with an error.", "counter",
                "\(rejectedPolls.load(ordering: .relaxed))"),
            line(
                "operator_rejections_total", "Operator requests refused (token, role or tenant).", "counter",
                "\(operatorRejections.load(ordering: .relaxed))"),
            line("held_polls", "Long-polls held now.", "gauge", "\(heldPolls.load(ordering: .relaxed))"),
            line(
                "dispatched_total", "Commands placed in poll responses.", "counter",
                "\(dispatched.load(ordering: .relaxed))"),
            line("results_total", "Results received from devices.", "counter", "\(results.load(ordering: .relaxed))"),
            line("uplink_stored_total", "Uplink items stored.", "counter", "\(uplinkStored.load(ordering: .relaxed))"),
            line(
                "commands_submitted_total", "Commands accepted.", "counter",
                "\(commandsSubmitted.load(ordering: .relaxed))"),
            line(
                "rendezvous_routed_total", "Peer requests queued for their target.", "counter",
                "\(rendezvousRouted.load(ordering: .relaxed))"),
            line(
                "rendezvous_rejected_total", "Peer requests rejected.", "counter",
                "\(rendezvousRejected.load(ordering: .relaxed))"),
            line("soap_faults_total", "SOAP faults returned.", "counter", "\(soapFaults.load(ordering: .relaxed))"),
            line("store_writes_total", "Committed store transactions that changed data.", "counter", "\(storeWrites)"),
        ].joined()
    }
}

/// A copy of the hub's counters at one moment.
public struct HubMetricsSnapshot: Sendable, Hashable {
    public var polls: UInt64
    public var emptyPolls: UInt64
    public var replayedPolls: UInt64
    public var supersededPolls: UInt64
    public var rejectedPolls: UInt64
    public var heldPolls: Int
    public var dispatched: UInt64
    public var results: UInt64
    public var uplinkStored: UInt64
    public var commandsSubmitted: UInt64
    public var rendezvousRouted: UInt64
    public var rendezvousRejected: UInt64
}
