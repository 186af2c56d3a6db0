public import BackchannelProtocol
public import Foundation

/// Everything a hub can be tuned with. Every field has a production default.
public struct HubConfiguration: Sendable {
    /// Address to bind. Default loopback: expose deliberately.
    public var host: String = "127.0.0.1"
    /// TCP port; 0 picks a free one.
    public var port: Int = 8080
    /// Pending-connection queue of the listening socket. A fleet reconnecting at once (after
    /// a hub restart) needs it deep; the kernel caps it at `net.core.somaxconn`.
    public var listenBacklog: Int = 4096

    /// Seconds between polls the hub asks of an idle device (`nextPollAfter`).
    public var pollInterval: Double = 30
    /// Relative jitter applied to `pollInterval`, so a fleet does not poll in step (0.1 = ±10 %).
    public var pollJitter: Double = 0.1
    /// Longest long-poll the hub holds, whatever `wait` the device asks for.
    public var maxWait: Double = 60
    /// Seconds a dispatched command waits for the device's acknowledgement before redelivery.
    public var leaseSeconds: Double = 60
    /// Deliveries before a command fails as undeliverable.
    public var maxAttempts: Int = 5
    /// Command lifetime when the operator gives neither `ttl` nor `expiresAt`.
    public var defaultTTL: Double = 24 * 3600
    /// Longest lifetime a command may ask for.
    public var maxTTL: Double = 30 * 24 * 3600
    /// Seconds a device has, after acknowledging, to report a result (default per command).
    public var executionTimeout: Double = 300
    /// Commands with a `notBefore` this many seconds ahead are dispatched early, for the device
    /// to hold and start on time.
    public var dispatchLead: Double = 30

    /// Where firmware artifacts are kept (content-addressed); nil disables the artifact routes.
    public var artifactsDirectory: URL?
    /// Largest artifact accepted by `POST /v1/artifacts`.
    public var maxArtifactBytes: Int = 512 << 20

    /// The power-management applications: time zone, interval retention, alerts, tamper.
    public var power = PowerSettings()

    /// Most devices in one campaign.
    public var maxCampaignDevices: Int = 100_000

    /// Seconds an instant command has to be acknowledged before it is canceled and the device
    /// reported unavailable; also its lifetime.
    public var instantTimeout: Double = 10

    /// Seconds after a response's `contactBy` before a silent device becomes `presence-error`.
    public var presenceGrace: Double = 15

    /// Rendezvous: a device heard from within this many seconds counts as reachable, for
    /// peer requests that ask to fail fast when the target is unavailable.
    public var reachabilityWindow: Double = 75
    /// Rendezvous replies delivered in one poll response at most.
    public var maxRepliesPerPoll: Int = 100

    /// Limits on SOAP/XML documents (beyond `maxBodyBytes`): nesting, element count, names.
    public var xmlLimits: XMLLimits = {
        var limits = XMLLimits()
        limits.maxDepth = 48
        limits.maxElements = 50_000
        return limits
    }()
    /// The hub's URL as devices reach it, written into the WSDL's service address; default:
    /// the Host the client used.
    public var publicURL: String?

    /// TLS for the listener (and mTLS device identity when it names a client CA); nil serves
    /// plain HTTP.
    public var tls: HubTLSConfiguration?
    /// Caps on connections: how many at once, and how long a slow or idle client may hold one.
    public var connectionLimits = HubConnectionLimits()

    /// Largest request body accepted (413 beyond).
    public var maxBodyBytes: Int = 1 << 20
    /// Per-poll validation limits.
    public var limits = PollLimits()
    /// Sustained polls per second allowed per device (0 disables the limit).
    public var devicePollRate: Double = 10
    /// Burst of polls allowed per device above the sustained rate.
    public var devicePollBurst: Double = 20
    /// Most long-polls held at once; beyond it polls are answered 503 with `Retry-After`.
    public var maxHeldPolls: Int = 50_000

    /// Seconds between flushes of in-memory last-seen times to the store.
    public var lastSeenFlushInterval: Double = 5
    /// Seconds between deadline sweeps (expiry, lease lapse, timeouts).
    public var sweepInterval: Double = 1
    /// A device's cached "no pending work" is re-checked against the store at least this often.
    public var workHintTTL: Double = 30

    /// ``Credentials/hash(_:)`` of the bootstrap operator token: the `root` admin of
    /// `systemTenant`. Further operators are created with `POST /v1/operators`.
    public var operatorTokenHash: String?
    /// The tenant of the bootstrap operator; its admins may create operators and devices in
    /// other tenants and change hub-wide settings.
    public var systemTenant: String = "default"
    /// Sustained operator API requests per second allowed per operator (0 disables the limit).
    public var operatorRate: Double = 50
    /// Burst of operator requests allowed above the sustained rate.
    public var operatorBurst: Double = 200

    /// Creates the default configuration.
    public init() {}
}
