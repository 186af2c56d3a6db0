public import BackchannelProtocol
import Foundation

/// How an outage record was closed.
public enum OutageRestoration: String, Sendable, Hashable, Codable, CaseIterable {
    /// The device sent `power.restored`.
    case powerRestored = "power.restored"
    /// The device was heard from again without sending `power.restored`; the end is the time of
    /// that contact, an upper bound on the real restoration.
    case contact
}

/// One loss of power at one device.
///
/// JSON: `{"id": "m7/2026-01-01T10:00:00.000Z", "device": "m7", "start": "2026-01-01T10:00:00.000Z",
/// "end": "2026-01-01T10:12:00.000Z", "cause": "unknown", "lastGasp": true, "restoredBy": "power.restored"}`.
public struct OutageRecord: Sendable, Hashable, Codable {
    /// A stable id: `device/start` in RFC 3339, or `device/restored-end` when the start is unknown.
    public var id: String
    /// The device that lost power.
    public var device: String
    /// When power was lost; nil when unknown (a restoration with no last gasp and no `lostAt`).
    public var start: Timestamp?
    /// When power came back; nil while the outage is open.
    public var end: Timestamp?
    /// The cause the device reported, or `unknown` when it reported none.
    public var cause: String
    /// Whether the device sent a last gasp (`power.lost`); false flags a record made from a
    /// restoration alone.
    public var lastGasp: Bool
    /// How the record was closed; nil while open.
    public var restoredBy: OutageRestoration?

    /// Creates a record.
    public init(
        id: String, device: String, start: Timestamp?, end: Timestamp? = nil,
        cause: String = OutageTracker.unknownCause,
        lastGasp: Bool, restoredBy: OutageRestoration? = nil
    ) {
        self.id = id
        self.device = device
        self.start = start
        self.end = end
        self.cause = cause
        self.lastGasp = lastGasp
        self.restoredBy = restoredBy
    }

    /// Whether the outage is still open.
    public var isOpen: Bool { end == nil }
}

/// What a device reported, or what the hub observed, that bears on outages.
public enum OutageEventKind: String, Sendable, Hashable, Codable, CaseIterable {
    /// The device's last gasp: it is losing power.
    case powerLost = "power.lost"
    /// The device reports power back.
    case powerRestored = "power.restored"
    /// The hub heard from the device (any authenticated contact).
    case heardFrom = "heard-from"
}

/// One input to ``OutageTracker``.
///
/// JSON: `{"kind": "power.restored", "device": "m7", "at": "...", "lostAt": "..."}`.
public struct OutageEvent: Sendable, Hashable, Codable {
    /// What happened.
    public var kind: OutageEventKind
    /// The device.
    public var device: String
    /// When: the loss for `power.lost`, the restoration for `power.restored`, the contact for `heard-from`.
    public var at: Timestamp
    /// For `power.restored`: when the device says power was lost, if it says.
    public var lostAt: Timestamp?
    /// For `power.lost`: the cause the device gives, if any.
    public var cause: String?

    /// Creates an event.
    public init(
        kind: OutageEventKind, device: String, at: Timestamp, lostAt: Timestamp? = nil,
        cause: String? = nil
    ) {
        self.kind = kind
        self.device = device
        self.at = at
        self.lostAt = lostAt
        self.cause = cause
    }
}

/// What subscribers are told.
public enum OutageNotificationKind: String, Sendable, Hashable, Codable, CaseIterable {
    /// A record was opened (a last gasp).
    case opened
    /// A record was closed, or created already closed (a restoration with no last gasp).
    case closed
    /// A record closed by contact got its real end from a late `power.restored` (same id).
    case revised
}

/// A notification for subscribers, carrying the record as it now stands.
public struct OutageNotification: Sendable, Hashable, Codable {
    /// What happened to the record.
    public var kind: OutageNotificationKind
    /// The record after the change.
    public var record: OutageRecord

    /// Creates a notification.
    public init(kind: OutageNotificationKind, record: OutageRecord) {
        self.kind = kind
        self.record = record
    }
}

/// A pure state machine that turns device events into outage records.
///
/// Transitions, per device:
/// - `power.lost` with no open record opens one (`opened`); while one is open it is ignored
///   (a duplicate last gasp), returning nil.
/// - `power.restored` with an open record closes it with `end` = the restoration time
///   (`closed`); the open record's start is kept even if the event carries `lostAt`.
///   With no open record it creates a closed record with `lastGasp` false and `start` =
///   `lostAt`, or nil (unknown) when the device did not say (`closed`), unless it belongs to
///   the record last closed by contact (next rule).
/// - `power.restored` with no open record, when the device's last record was closed by
///   contact, no loss has been seen since, and the restoration time is between that record's
///   start and its end (inclusive): the record's end becomes the restoration time and
///   `restoredBy` becomes `power.restored` (`revised`, same id).
/// - `heard-from` strictly after an open record's start closes it with `end` = the contact time
///   and `restoredBy` = `contact` (`closed`); otherwise it is ignored (nil).
///
/// Errors: an empty device id, a restoration before its open record's start, or a `lostAt`
/// after the restoration. The tracker keeps only open records and the last contact-closed one
/// per device; closed records are handed out in notifications for the hub to store.
public struct OutageTracker: Sendable, Hashable, Codable {
    /// The cause recorded when the device gives none.
    public static let unknownCause = "unknown"

    /// Open records by device.
    public private(set) var open: [String: OutageRecord] = [:]
    /// Per device, the last record closed by contact, while a `power.restored` may still revise it.
    public private(set) var closedByContact: [String: OutageRecord] = [:]

    /// Creates an empty tracker.
    public init() {}

    /// Open records, sorted by device.
    public var openRecords: [OutageRecord] { open.values.sorted { $0.device < $1.device } }

    /// Feeds one event; returns the notification to send, or nil when the event changes nothing.
    public mutating func handle(_ event: OutageEvent) throws(PowerInputError) -> OutageNotification? {
        let device = event.device
        guard !device.trimmingCharacters(in: .whitespaces).isEmpty else {
            throw PowerInputError("outage event \(event.kind.rawValue) at \(event.at): device is empty")
        }
        switch event.kind {
        case .powerLost:
            guard open[device] == nil else { return nil }
            closedByContact[device] = nil
            let cause = event.cause.flatMap { $0.isEmpty ? nil : $0 } ?? Self.unknownCause
            let record = OutageRecord(
                id: "\(device)/\(event.at)", device: device, start: event.at, cause: cause, lastGasp: true)
            open[device] = record
            return OutageNotification(kind: .opened, record: record)

        case .powerRestored:
            if var record = open[device] {
                if let start = record.start, event.at < start {
                    throw PowerInputError(
                        "outage \(record.id): power.restored at \(event.at) is before the loss at \(start)")
                }
                record.end = event.at
                record.restoredBy = .powerRestored
                open[device] = nil
                return OutageNotification(kind: .closed, record: record)
            }
            if let lostAt = event.lostAt, lostAt > event.at {
                throw PowerInputError(
                    "\(device): power.restored at \(event.at) says power was lost later, at \(lostAt)")
            }
            if var record = closedByContact[device], let end = record.end, event.at <= end,
                record.start.map({ event.at >= $0 }) ?? true
            {
                record.end = event.at
                record.restoredBy = .powerRestored
                closedByContact[device] = nil
                return OutageNotification(kind: .revised, record: record)
            }
            closedByContact[device] = nil
            let id = event.lostAt.map { "\(device)/\($0)" } ?? "\(device)/restored-\(event.at)"
            let record = OutageRecord(
                id: id, device: device, start: event.lostAt, end: event.at, lastGasp: false,
                restoredBy: .powerRestored)
            return OutageNotification(kind: .closed, record: record)

        case .heardFrom:
            guard var record = open[device], let start = record.start, event.at > start else {
                return nil
            }
            record.end = event.at
            record.restoredBy = .contact
            open[device] = nil
            closedByContact[device] = record
            return OutageNotification(kind: .closed, record: record)
        }
    }

    /// Feeds events in order, collecting the notifications.
    public mutating func handle(_ events: [OutageEvent]) throws(PowerInputError)
        -> [OutageNotification]
    {
        var result: [OutageNotification] = []
        for event in events {
            if let notification = try handle(event) { result.append(notification) }
        }
        return result
    }
}
