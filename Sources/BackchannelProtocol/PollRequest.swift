/// The physical request: one `POST /v1/poll` from a device to the hub.
///
/// It returns the results of earlier commands, acknowledges the commands the device received,
/// carries the device's own readings and events, and says how much new work it will take.
public struct PollRequest: Sendable, Hashable, Codable {
    /// The device's identifier, as provisioned.
    public var device: String
    /// The device's sequence number for this physical request. Strictly increasing; a retry
    /// after a lost response repeats the same number with the same body.
    public var seq: Int64
    /// The device's clock when it sent the request (t0 of the NTP-style exchange).
    public var sentAt: Timestamp
    /// Ids of logical requests the device received and now holds.
    public var acks: [String]
    /// Logical responses: the outcomes of earlier logical requests.
    public var results: [LogicalResult]
    /// Readings and events originated by the device, each with a device-chosen id.
    public var uplink: [UplinkItem]
    /// Logical requests this device sends to other devices through the hub (rendezvous).
    public var requests: [PeerRequest]
    /// Ids of ``PeerReply`` values this device received and no longer needs delivered.
    public var replyAcks: [String]
    /// When the device received the response to an earlier poll (t3), so the hub can compute
    /// the device's clock offset from all four timestamps of that exchange.
    public var clockSample: ClockSample?
    /// The device's declared presence, when it wants to state or change it.
    public var presence: PresenceReport?
    /// How many new logical requests the device will take in this response (0 means none).
    public var accept: Int
    /// Seconds the device is willing to wait for work (long-poll). The hub caps it.
    public var wait: Double

    /// Creates a physical request.
    public init(
        device: String,
        seq: Int64,
        sentAt: Timestamp,
        acks: [String] = [],
        results: [LogicalResult] = [],
        uplink: [UplinkItem] = [],
        requests: [PeerRequest] = [],
        replyAcks: [String] = [],
        presence: PresenceReport? = nil,
        accept: Int = PollRequest.defaultAccept,
        wait: Double = 0
    ) {
        self.device = device
        self.seq = seq
        self.sentAt = sentAt
        self.acks = acks
        self.results = results
        self.uplink = uplink
        self.requests = requests
        self.replyAcks = replyAcks
        self.presence = presence
        self.accept = accept
        self.wait = wait
    }

    /// The number of requests a device takes when it does not say.
    public static let defaultAccept = 10

    enum CodingKeys: String, CodingKey {
        case device, seq, sentAt, acks, results, uplink, requests, replyAcks, clockSample, presence, accept, wait
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        self.device = try c.decode(String.self, forKey: .device)
        self.seq = try c.decode(Int64.self, forKey: .seq)
        self.sentAt = try c.decode(Timestamp.self, forKey: .sentAt)
        self.acks = try c.decodeIfPresent([String].self, forKey: .acks) ?? []
        self.results = try c.decodeIfPresent([LogicalResult].self, forKey: .results) ?? []
        self.uplink = try c.decodeIfPresent([UplinkItem].self, forKey: .uplink) ?? []
        self.requests = try c.decodeIfPresent([PeerRequest].self, forKey: .requests) ?? []
        self.replyAcks = try c.decodeIfPresent([String].self, forKey: .replyAcks) ?? []
        self.clockSample = try c.decodeIfPresent(ClockSample.self, forKey: .clockSample)
        self.presence = try c.decodeIfPresent(PresenceReport.self, forKey: .presence)
        self.accept = try c.decodeIfPresent(Int.self, forKey: .accept) ?? Self.defaultAccept
        self.wait = try c.decodeIfPresent(Double.self, forKey: .wait) ?? 0
    }

    /// The request without inner SOAP envelopes. Only the SOAP binding may set them (from a
    /// checked parse of the sender's own envelope); the hub drops any that arrive in JSON, so a
    /// JSON or REST device can never place raw XML in a SOAP device's response.
    public var withoutEnvelopes: PollRequest {
        var copy = self
        for i in copy.results.indices { copy.results[i].envelope = nil }
        for i in copy.requests.indices { copy.requests[i].envelope = nil }
        return copy
    }

    /// Whether the request carries nothing to store: no acks, results, uplink, peer requests
    /// or reply acks.
    ///
    /// Presence is not counted: it lives in the hub's memory.
    public var carriesNoData: Bool {
        acks.isEmpty && results.isEmpty && uplink.isEmpty && requests.isEmpty && replyAcks.isEmpty
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(device, forKey: .device)
        try c.encode(seq, forKey: .seq)
        try c.encode(sentAt, forKey: .sentAt)
        try c.encode(acks, forKey: .acks)
        try c.encode(results, forKey: .results)
        try c.encode(uplink, forKey: .uplink)
        // Rendezvous fields appear only when used, so plain devices never see them.
        if !requests.isEmpty { try c.encode(requests, forKey: .requests) }
        if !replyAcks.isEmpty { try c.encode(replyAcks, forKey: .replyAcks) }
        try c.encodeIfPresent(clockSample, forKey: .clockSample)
        try c.encodeIfPresent(presence, forKey: .presence)
        try c.encode(accept, forKey: .accept)
        try c.encode(wait, forKey: .wait)
    }
}

/// The device's receive time of an earlier response: the fourth timestamp of that exchange.
public struct ClockSample: Sendable, Hashable, Codable {
    /// The `seq` of the poll whose response this is about.
    public var seq: Int64
    /// When the device received that response, on its own clock (t3).
    public var receivedAt: Timestamp

    /// Creates a value.
    public init(seq: Int64, receivedAt: Timestamp) {
        self.seq = seq
        self.receivedAt = receivedAt
    }
}

/// A logical response: the outcome of one logical request, reported by the device.
public struct LogicalResult: Sendable, Hashable, Codable {
    /// The id of the logical request this answers.
    public var id: String
    /// How the command ended.
    public var status: ResultStatus
    /// A machine-readable outcome code, such as `unknown_command` or `relay_stuck`.
    public var code: String?
    /// Whether sending the same command again could succeed.
    public var retryable: Bool?
    /// A human-readable explanation.
    public var detail: String?
    /// The command's output, for example the values a `read` returned.
    public var data: JSONValue?
    /// When the device finished the command, on its own clock.
    public var finishedAt: Timestamp?
    /// For a result sent through the SOAP binding: the inner SOAP envelope exactly as the device
    /// wrote it, forwarded unchanged to a SOAP sender of the request.
    public var envelope: String?

    /// Creates a logical response.
    public init(
        id: String,
        status: ResultStatus,
        code: String? = nil,
        retryable: Bool? = nil,
        detail: String? = nil,
        data: JSONValue? = nil,
        finishedAt: Timestamp? = nil,
        envelope: String? = nil
    ) {
        self.envelope = envelope
        self.id = id
        self.status = status
        self.code = code
        self.retryable = retryable
        self.detail = detail
        self.data = data
        self.finishedAt = finishedAt
    }
}

/// The kind of an uplink item.
public enum UplinkKind: String, Sendable, Hashable, Codable, CaseIterable {
    /// A measurement: interval energy, instantaneous values.
    case reading
    /// Something that happened: an alarm, a relay operation, a power quality event.
    case event
}

/// A reading or event originated by the device.
public struct UplinkItem: Sendable, Hashable, Codable {
    /// The device-chosen id. The hub stores each (device, id) once, so resending is safe.
    public var id: String
    /// Reading or event.
    public var kind: UplinkKind
    /// What was measured or what happened, such as `meter` or `relay.changed`.
    public var name: String
    /// When it was measured or happened, on the device's clock.
    public var at: Timestamp
    /// The values.
    public var data: JSONValue

    /// Creates an uplink item.
    public init(id: String, kind: UplinkKind, name: String, at: Timestamp, data: JSONValue) {
        self.id = id
        self.kind = kind
        self.name = name
        self.at = at
        self.data = data
    }
}

/// What a device declares about its own availability.
public struct PresenceReport: Sendable, Hashable, Codable {
    /// The declared state.
    public var state: DeclaredPresence
    /// A note for people, for example "critical process online, offline at 13:03".
    public var note: String?
    /// Free-form status values: load %, fuel, temperature.
    public var status: [String: JSONValue]?

    /// Creates a presence report.
    public init(state: DeclaredPresence, note: String? = nil, status: [String: JSONValue]? = nil) {
        self.state = state
        self.note = note
        self.status = status
    }
}

/// The presence states a device may declare.
public enum DeclaredPresence: String, Sendable, Hashable, Codable, CaseIterable {
    case available
    case availableOn = "available-on"
    case availableOff = "available-off"
    case restricted
    /// A clean goodbye: the device is going away.
    case unavailable
}
