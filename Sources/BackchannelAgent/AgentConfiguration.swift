public import BackchannelProtocol
public import BackchannelSecurity
public import Foundation
public import NIOSSL

/// How an agent reaches its hub.
public enum AgentChannel: String, Sendable, Hashable, CaseIterable {
    /// `POST /v1/poll`, long-polling when configured.
    case poll
    /// The WebSocket channel `/v1/ws`: the hub pushes work as it arrives; the device is present
    /// while connected.
    case webSocket = "websocket"
}

/// The bindings of the device protocol an agent can speak.
public enum WireEncoding: String, Sendable, Hashable, CaseIterable {
    /// `application/json` (the default).
    case json
    /// SOAP 1.2 (`application/soap+xml`), with SOAP-in-SOAP inner envelopes.
    case soap
}

/// Everything a device agent needs to reach its hub and keep its state.
public struct AgentConfiguration: Sendable {
    /// The hub's base URL, such as `http://hub.example:8080`.
    public var hubURL: String
    /// The device id, as provisioned.
    public var deviceID: String
    /// The device's bearer token; empty when the device authenticates with its client
    /// certificate instead (mTLS, see ``tls``).
    public var token: String
    /// Directory for the outbox, the execution ledger and the sequence counter. It must
    /// survive restarts for delivery to be exactly-once.
    public var stateDirectory: URL
    /// Most commands run at once; `accept` in each poll is this minus those running.
    public var concurrency: Int = 4
    /// Long-poll seconds to ask for (0: poll periodically on the hub's `nextPollAfter`).
    public var longPoll: Double = 0
    /// The binding the device speaks: JSON (default) or SOAP 1.2.
    public var encoding: WireEncoding = .json
    /// How the device reaches the hub: polling (default) or the WebSocket channel (JSON only).
    public var channel: AgentChannel = .poll
    /// Most uplink items per poll.
    public var maxUplinkPerPoll: Int = 500
    /// Most results per poll.
    public var maxResultsPerPoll: Int = 200
    /// Largest encoded uplink item or result; larger ones are refused (items) or replaced by
    /// a `result_too_large` failure (results), so they can never block a poll.
    public var maxItemBytes: Int = 256 * 1024
    /// First retry delay after an error, in seconds; doubles per failure with full jitter.
    public var backoffBase: Double = 0.5
    /// Longest retry delay, in seconds.
    public var backoffMax: Double = 60
    /// Seconds to wait for a response, on top of the long-poll wait.
    public var requestTimeout: Double = 20
    /// The presence the device declares on start.
    public var presence: PresenceReport?
    /// TLS settings for an `https` hub: the CA its certificate must chain to and, for mutual
    /// TLS, the device's client certificate (`TLSConfiguration.backchannelClient(...)` reads them
    /// from PEM files). Nil: the system's trust roots and no client certificate.
    public var tls: TLSConfiguration?
    /// Which keys may issue which commands, and the time window of signed commands. When set,
    /// every delivered command (operator or rendezvous) is checked before it runs, and one the
    /// policy refuses ends REJECTED with the reason (`unsigned`, `bad_signature`, `replay`, …).
    /// Nil: no checks, as before signed commands existed.
    public var trustPolicy: TrustPolicy?
    /// The device's own key: when set, the rendezvous requests it sends are signed with it.
    public var signingKey: SigningKey?
    /// The device's own clock. Simulators substitute a skewed one.
    public var deviceClock: @Sendable () -> Timestamp = { .now() }
    /// Called with the uplink ids the hub confirmed stored, after they left the outbox.
    public var onStored: (@Sendable ([String]) -> Void)?

    /// Creates a configuration.
    public init(hubURL: String, deviceID: String, token: String, stateDirectory: URL) {
        self.hubURL = hubURL
        self.deviceID = deviceID
        self.token = token
        self.stateDirectory = stateDirectory
    }
}
