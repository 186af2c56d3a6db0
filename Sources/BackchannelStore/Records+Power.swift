public import BackchannelProtocol

/// One stored metered interval of a device (interval data, kept compactly, one row each).
public struct IntervalRecord: Sendable, Hashable {
    /// The device.
    public var device: String
    /// When the interval began.
    public var start: Timestamp
    /// Its length in seconds.
    public var seconds: Int
    /// Active energy, kWh.
    public var kWh: Double
    /// Reactive energy, kvarh, when the meter registers it.
    public var kvarh: Double?

    /// Creates an interval record.
    public init(device: String, start: Timestamp, seconds: Int, kWh: Double, kvarh: Double?) {
        self.device = device
        self.start = start
        self.seconds = seconds
        self.kWh = kWh
        self.kvarh = kvarh
    }
}

/// A stored record of a power-management application: an outage, a power quality event, a
/// tariff, a supplier offer, a shedding policy or decision, a topology node, a tamper flag,
/// an alert propagation report.
///
/// The store keeps them as documents keyed by (`kind`, `key`); the applications own the
/// shape of `body`. Writing a document with an existing key replaces it.
public struct PowerDocument: Sendable, Hashable {
    /// What the document is, such as `outage` or `tariff`.
    public var kind: String
    /// Its key, unique within the kind.
    public var key: String
    /// The tenant that owns it.
    public var tenant: String
    /// The device it concerns, if one.
    public var device: String?
    /// When it happened or was last changed: the order of listings.
    public var at: Timestamp
    /// The content.
    public var body: JSONValue

    /// Creates a document.
    public init(kind: String, key: String, tenant: String, device: String?, at: Timestamp, body: JSONValue) {
        self.kind = kind
        self.key = key
        self.tenant = tenant
        self.device = device
        self.at = at
        self.body = body
    }
}

/// Which power documents to list.
public struct PowerDocumentQuery: Sendable, Hashable {
    /// The kind.
    public var kind: String
    /// Only this tenant's, when given.
    public var tenant: String?
    /// Only this device's, when given.
    public var device: String?
    /// Only those whose `at` is in this range, when given.
    public var range: Range<Timestamp>?
    /// At most this many, newest first.
    public var limit: Int

    /// Creates a query.
    public init(
        kind: String, tenant: String? = nil, device: String? = nil, range: Range<Timestamp>? = nil, limit: Int = 1000
    ) {
        self.kind = kind
        self.tenant = tenant
        self.device = device
        self.range = range
        self.limit = limit
    }
}
