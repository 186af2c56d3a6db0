/// A request to start a campaign: one command to many devices, each with its own lifecycle.
public struct StartCampaignRequest: Sendable, Hashable, Codable {
    /// The command name.
    public var name: String
    /// The command's arguments (an object).
    public var args: JSONValue?
    /// Target devices by id.
    public var devices: [String]?
    /// Target devices by selector: `label:<key>=<value>` or `*` (every device). Combined with
    /// `devices` when both are given.
    public var selector: String?
    /// Waves: at most this many devices get the command per minute (absent: all at once).
    public var perMinute: Int?
    /// Abort threshold: when the share of FAILED, REJECTED, TIMED_OUT and EXPIRED children among
    /// the finished ones reaches this (0 < x ≤ 1), every child not yet finished is canceled.
    public var abortThreshold: Double?
    /// Finished children needed before the abort threshold is applied (default 1).
    public var minFinished: Int?
    /// `true`: children wait for each device to be available (`whenAvailable`) until the
    /// deadline; `false` (default): children are queued (store and forward) until the deadline.
    public var untilAvailable: Bool?
    /// Seconds until unfinished children expire (default: the hub's default command lifetime).
    public var ttl: Double?
    /// Seconds each device has to report a result after acknowledging.
    public var timeout: Double?

    /// Creates a request.
    public init(
        name: String, args: JSONValue? = nil, devices: [String]? = nil, selector: String? = nil,
        perMinute: Int? = nil, abortThreshold: Double? = nil, minFinished: Int? = nil, untilAvailable: Bool? = nil,
        ttl: Double? = nil, timeout: Double? = nil
    ) {
        self.name = name
        self.args = args
        self.devices = devices
        self.selector = selector
        self.perMinute = perMinute
        self.abortThreshold = abortThreshold
        self.minFinished = minFinished
        self.untilAvailable = untilAvailable
        self.ttl = ttl
        self.timeout = timeout
    }
}

/// Where a campaign is.
public enum CampaignState: String, Sendable, Hashable, Codable, CaseIterable {
    /// Children are still open.
    case running
    /// Every child is finished.
    case completed
    /// The abort threshold was reached; the children still open were canceled.
    case aborted
    /// An operator canceled it; the children still open were canceled.
    case canceled
}

/// A campaign as the operator API shows it.
public struct CampaignView: Sendable, Hashable, Codable {
    public var id: String
    public var name: String
    public var args: JSONValue
    public var state: CampaignState
    public var createdAt: Timestamp
    public var finishedAt: Timestamp?
    /// The devices targeted.
    public var devices: Int
    /// Children by state (every state present, zero when none).
    public var counts: [String: Int]
    /// Children that succeeded, and that ended otherwise.
    public var succeeded: Int
    public var failed: Int
    /// The options it was started with.
    public var perMinute: Int?
    public var abortThreshold: Double?
    public var minFinished: Int?
    public var untilAvailable: Bool
    public var expiresAt: Timestamp
    /// Why it ended, when it did not complete normally.
    public var detail: String?
    /// Each device's child command (with `?children=true`).
    public var children: [CommandView]?

    /// Creates a view.
    public init(
        id: String, name: String, args: JSONValue, state: CampaignState, createdAt: Timestamp,
        finishedAt: Timestamp?, devices: Int, counts: [String: Int], succeeded: Int, failed: Int, perMinute: Int?,
        abortThreshold: Double?, minFinished: Int?, untilAvailable: Bool, expiresAt: Timestamp, detail: String?,
        children: [CommandView]? = nil
    ) {
        self.id = id
        self.name = name
        self.args = args
        self.state = state
        self.createdAt = createdAt
        self.finishedAt = finishedAt
        self.devices = devices
        self.counts = counts
        self.succeeded = succeeded
        self.failed = failed
        self.perMinute = perMinute
        self.abortThreshold = abortThreshold
        self.minFinished = minFinished
        self.untilAvailable = untilAvailable
        self.expiresAt = expiresAt
        self.detail = detail
        self.children = children
    }
}

/// A firmware artifact as the operator API shows it.
public struct ArtifactInfoView: Sendable, Hashable, Codable {
    /// Lower-case hex SHA-256 of the content: its address.
    public var sha256: String
    /// Bytes.
    public var size: Int64
    /// The name given at upload.
    public var name: String?
    /// When it was first uploaded.
    public var uploadedAt: Timestamp
}
