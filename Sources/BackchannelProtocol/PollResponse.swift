/// The physical response: the hub's answer to one `POST /v1/poll`.
public struct PollResponse: Sendable, Hashable, Codable {
    /// The sequence number of the request this answers.
    public var seq: Int64
    /// When the hub received the request (t1), on the hub's clock.
    public var receivedAt: Timestamp
    /// When the hub sent this response (t2), on the hub's clock.
    public var sentAt: Timestamp
    /// Uplink ids from the request that are now durably stored (including ones stored before).
    public var stored: [String]
    /// New logical requests for the device.
    public var requests: [LogicalRequest]
    /// Ids of requests the device holds that were canceled: abort them if not yet started.
    public var cancel: [String]
    /// More requests are waiting: poll again at once.
    public var more: Bool
    /// Seconds until the device should poll again when it has nothing to send.
    public var nextPollAfter: Double
    /// Seconds within which the device must acknowledge the requests in this response, or
    /// they are delivered again.
    public var ackWithin: Double
    /// Present and true when a newer poll from the same device replaced this one.
    public var superseded: Bool?
    /// The hub's answer to each peer request in the poll (rendezvous); absent when there were none.
    public var routed: [RoutedRequest]?
    /// Outcomes of requests this device sent to peers; absent when there are none. Each is
    /// delivered again until the device lists its id in `replyAcks`.
    public var replies: [PeerReply]?
    /// The presence contract: the hub must hear from the device by this time (hub clock).
    /// Missing it by more than the hub's grace marks the device `presence-error`.
    public var contactBy: Timestamp?
    /// Present and true when the hub asks the device to declare its presence in its next poll.
    public var refreshPresence: Bool?

    /// Creates a physical response.
    public init(
        seq: Int64,
        receivedAt: Timestamp,
        sentAt: Timestamp,
        stored: [String] = [],
        requests: [LogicalRequest] = [],
        cancel: [String] = [],
        more: Bool = false,
        nextPollAfter: Double,
        ackWithin: Double,
        superseded: Bool? = nil,
        routed: [RoutedRequest]? = nil,
        replies: [PeerReply]? = nil
    ) {
        self.seq = seq
        self.receivedAt = receivedAt
        self.sentAt = sentAt
        self.stored = stored
        self.requests = requests
        self.cancel = cancel
        self.more = more
        self.nextPollAfter = nextPollAfter
        self.ackWithin = ackWithin
        self.superseded = superseded
        self.routed = routed
        self.replies = replies
    }
}

/// A logical request (a command) delivered to a device.
public struct LogicalRequest: Sendable, Hashable, Codable {
    /// The hub-assigned id. Results and acks name it.
    public var id: String
    /// Who asked: `operator:<name>` or `device:<id>`.
    public var origin: String
    /// The command name, such as `read` or `relay`.
    public var name: String
    /// The command's arguments (a JSON object).
    public var args: JSONValue
    /// When the command was accepted by the hub.
    public var createdAt: Timestamp
    /// The device must not start the command after this time.
    public var expiresAt: Timestamp
    /// The device must not start the command before this time (on the hub's clock).
    public var notBefore: Timestamp?
    /// Which delivery this is: 1 for the first, higher for redeliveries.
    public var attempt: Int
    /// For a request sent through the SOAP binding: the inner SOAP envelope exactly as the
    /// sender wrote it. A SOAP device receives these bytes unchanged.
    public var envelope: String?
    /// The issuer's end-to-end signature, forwarded unchanged; see ``CommandSignature``.
    public var signature: CommandSignature?
    /// For a rendezvous request: the sender's `ref`, which a sender's signature covers as `id`.
    public var ref: String?

    /// Creates a logical request.
    public init(
        id: String,
        origin: String,
        name: String,
        args: JSONValue,
        createdAt: Timestamp,
        expiresAt: Timestamp,
        notBefore: Timestamp? = nil,
        attempt: Int,
        envelope: String? = nil,
        signature: CommandSignature? = nil,
        ref: String? = nil
    ) {
        self.signature = signature
        self.ref = ref
        self.id = id
        self.origin = origin
        self.name = name
        self.args = args
        self.createdAt = createdAt
        self.expiresAt = expiresAt
        self.notBefore = notBefore
        self.attempt = attempt
        self.envelope = envelope
    }
}
