/// What an operator may do. Every operator belongs to exactly one tenant and sees only that
/// tenant's devices, commands, campaigns, rules, alarms and audit entries.
public enum OperatorRole: String, Sendable, Hashable, Codable, CaseIterable {
    /// Everything in the tenant, including operators, provisioning and rendezvous rules.
    case admin
    /// Sends and cancels commands and campaigns, uploads firmware, acknowledges alarms; reads
    /// operational state. Does not read metering data (uplink, exports).
    case `operator`
    /// Reads devices and metering data (uplink, exports) for billing; sends nothing.
    case billing
    /// Reads operational state only: devices, commands, presence, campaigns, alarms.
    case viewer
}

/// The body of `POST /v1/operators`.
public struct CreateOperatorRequest: Sendable, Hashable, Codable {
    /// The operator's name: 1-64 characters of A-Z a-z 0-9 . _ : -, unique on the hub.
    public var name: String
    /// The role.
    public var role: OperatorRole
    /// The tenant; default the caller's. Only an admin of the hub's system tenant may name another.
    public var tenant: String?

    /// Creates a request.
    public init(name: String, role: OperatorRole, tenant: String? = nil) {
        self.name = name
        self.role = role
        self.tenant = tenant
    }
}

/// An operator as the API shows it (never with a token or its hash).
public struct OperatorView: Sendable, Hashable, Codable {
    /// The name.
    public var name: String
    /// The role.
    public var role: OperatorRole
    /// The tenant.
    public var tenant: String
    /// When it was created.
    public var createdAt: Timestamp

    /// Creates a view.
    public init(name: String, role: OperatorRole, tenant: String, createdAt: Timestamp) {
        self.name = name
        self.role = role
        self.tenant = tenant
        self.createdAt = createdAt
    }
}

/// Answer to creating an operator or rotating its token: the token is shown once.
public struct OperatorCredential: Sendable, Hashable, Codable {
    /// The operator.
    public var `operator`: OperatorView
    /// The API token, `bco_` and 43 base64url characters.
    public var token: String

    /// Creates a value.
    public init(operator: OperatorView, token: String) {
        self.operator = `operator`
        self.token = token
    }
}

/// The identity behind an operator request: `GET /v1/whoami`.
public struct OperatorIdentity: Sendable, Hashable, Codable {
    /// The operator's name.
    public var name: String
    /// The role.
    public var role: OperatorRole
    /// The tenant.
    public var tenant: String

    /// Creates a value.
    public init(name: String, role: OperatorRole, tenant: String) {
        self.name = name
        self.role = role
        self.tenant = tenant
    }
}

/// One entry of the append-only audit log.
public struct AuditEntry: Sendable, Hashable, Codable {
    /// Position in the log (increasing).
    public var seq: Int64
    /// When it happened (hub clock).
    public var at: Timestamp
    /// Who: `operator:<name>`, `device:<id>`, or `anonymous`.
    public var actor: String
    /// The actor's tenant, when known.
    public var tenant: String?
    /// What: the route (`POST /v1/devices/{id}/commands`) or an event such as `auth.rejected`.
    public var action: String
    /// What it acted on: a device, command, campaign, operator or rule id.
    public var target: String?
    /// `ok`, or the refusal: `unauthorized`, `forbidden`, `not_found`, `rate_limited`, or an
    /// error code.
    public var outcome: String
    /// The HTTP status answered.
    public var status: Int?
    /// The client's address.
    public var remote: String?

    /// Creates an entry.
    public init(
        seq: Int64, at: Timestamp, actor: String, tenant: String?, action: String, target: String?,
        outcome: String, status: Int?, remote: String?
    ) {
        self.seq = seq
        self.at = at
        self.actor = actor
        self.tenant = tenant
        self.action = action
        self.target = target
        self.outcome = outcome
        self.status = status
        self.remote = remote
    }
}
