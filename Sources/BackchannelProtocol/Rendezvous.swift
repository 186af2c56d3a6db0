/// A logical request a device sends to another device through the hub (rendezvous).
///
/// It rides in the `requests` list of a poll. The hub checks the pair against its rules and
/// places an accepted request on the target's queue; the target's logical response comes back
/// to the sender as a ``PeerReply`` in a later poll response.
public struct PeerRequest: Sendable, Hashable, Codable {
    /// The sender's own id for this request. Sending the same `ref` again (in a retried or a
    /// later poll) never creates a second request: the hub answers with the first one.
    public var ref: String
    /// The target, as `device:<id>`.
    public var to: String
    /// The command name, such as `read`.
    public var name: String
    /// The command's arguments (a JSON object).
    public var args: JSONValue
    /// Seconds the request may wait for the target before it expires (hub default when absent).
    public var ttl: Double?
    /// The target must not start it before this time (hub clock).
    public var notBefore: Timestamp?
    /// What happens when the target is not reachable now.
    public var onUnavailable: UnavailablePolicy
    /// For a request sent through the SOAP binding: the inner SOAP envelope exactly as the
    /// sender wrote it, forwarded unchanged to a SOAP target.
    public var envelope: String?
    /// The sender's end-to-end signature, forwarded to the target unchanged. It covers `ref` as
    /// the id, the target device, name, args, notBefore and an explicit expiry: a signed peer
    /// request must give `expiresAt`.
    public var signature: CommandSignature?
    /// Absolute expiry (instead of `ttl`); required with `signature`.
    public var expiresAt: Timestamp?

    /// Creates a peer request.
    public init(
        ref: String, to: String, name: String, args: JSONValue = .object([:]), ttl: Double? = nil,
        notBefore: Timestamp? = nil, onUnavailable: UnavailablePolicy = .hold, envelope: String? = nil
    ) {
        self.envelope = envelope
        self.ref = ref
        self.to = to
        self.name = name
        self.args = args
        self.ttl = ttl
        self.notBefore = notBefore
        self.onUnavailable = onUnavailable
    }

    enum CodingKeys: String, CodingKey {
        case ref, to, name, args, ttl, notBefore, onUnavailable, envelope, signature, expiresAt
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        self.ref = try c.decode(String.self, forKey: .ref)
        self.to = try c.decode(String.self, forKey: .to)
        self.name = try c.decode(String.self, forKey: .name)
        self.args = try c.decodeIfPresent(JSONValue.self, forKey: .args) ?? .object([:])
        self.ttl = try c.decodeIfPresent(Double.self, forKey: .ttl)
        self.notBefore = try c.decodeIfPresent(Timestamp.self, forKey: .notBefore)
        self.onUnavailable = try c.decodeIfPresent(UnavailablePolicy.self, forKey: .onUnavailable) ?? .hold
        self.envelope = try c.decodeIfPresent(String.self, forKey: .envelope)
        self.signature = try c.decodeIfPresent(CommandSignature.self, forKey: .signature)
        self.expiresAt = try c.decodeIfPresent(Timestamp.self, forKey: .expiresAt)
    }

    /// The target device id, when `to` has the form `device:<id>`.
    public var targetDevice: String? {
        guard to.hasPrefix("device:") else { return nil }
        let id = String(to.dropFirst("device:".count))
        return id.isEmpty ? nil : id
    }
}

/// What the hub does with a peer request whose target is not reachable now.
public enum UnavailablePolicy: String, Sendable, Hashable, Codable, CaseIterable {
    /// Store and forward: queue it until the target polls or the request expires.
    case hold
    /// Reject it at once with `target_unavailable`.
    case fail
}

/// The hub's answer to one ``PeerRequest``, in the response to the poll that carried it.
public struct RoutedRequest: Sendable, Hashable, Codable {
    /// The sender's `ref`.
    public var ref: String
    /// The hub's id for the routed request; absent when it was rejected.
    public var id: String?
    /// `QUEUED` (or a later state, when the same `ref` was sent before) or `REJECTED`.
    public var state: MessageState
    /// Why it was rejected: `not_authorized`, `unknown_target`, `target_unavailable`, `invalid_request`.
    public var code: String?
    /// A human-readable explanation.
    public var detail: String?

    /// Creates a value.
    public init(ref: String, id: String? = nil, state: MessageState, code: String? = nil, detail: String? = nil) {
        self.ref = ref
        self.id = id
        self.state = state
        self.code = code
        self.detail = detail
    }
}

/// The outcome of a request this device sent to a peer, routed back by the hub.
///
/// It is delivered in poll responses until the device lists its `id` in `replyAcks`.
public struct PeerReply: Sendable, Hashable, Codable {
    /// The hub's id of the routed request.
    public var id: String
    /// The sender's `ref` of the request.
    public var ref: String
    /// The device that answered, as `device:<id>`.
    public var from: String
    /// The command name.
    public var name: String
    /// The terminal state: `SUCCEEDED`, `FAILED`, `REJECTED`, `EXPIRED`, `CANCELED` or `TIMED_OUT`.
    public var state: MessageState
    /// The target's result, or the hub's reason for the terminal state.
    public var outcome: CommandOutcome?
    /// When the request reached its terminal state (hub clock).
    public var finishedAt: Timestamp?

    /// Creates a value.
    public init(
        id: String, ref: String, from: String, name: String, state: MessageState, outcome: CommandOutcome? = nil,
        finishedAt: Timestamp? = nil
    ) {
        self.id = id
        self.ref = ref
        self.from = from
        self.name = name
        self.state = state
        self.outcome = outcome
        self.finishedAt = finishedAt
    }
}

/// Who may send which command names to whom through the hub. Rendezvous is denied unless a
/// rule allows the pair.
public struct RendezvousRule: Sendable, Hashable, Codable {
    /// The hub-assigned id.
    public var id: String
    /// The senders: `device:<id>`, `label:<key>=<value>` or `*` (any device).
    public var from: String
    /// The targets, in the same forms.
    public var to: String
    /// The command names allowed; `["*"]` allows every name.
    public var commands: [String]
    /// When the rule was created.
    public var createdAt: Timestamp
    /// The tenant the rule belongs to; it matches only that tenant's devices.
    public var tenant: String?

    /// Creates a rule.
    public init(
        id: String, from: String, to: String, commands: [String], createdAt: Timestamp, tenant: String? = nil
    ) {
        self.tenant = tenant
        self.id = id
        self.from = from
        self.to = to
        self.commands = commands
        self.createdAt = createdAt
    }

    /// Whether the rule lets a device with `fromLabels` send `name` to a device with `toLabels`.
    public func allows(
        from sender: String, labels fromLabels: [String: String], to target: String,
        labels toLabels: [String: String], name: String
    ) -> Bool {
        Self.matches(from, device: sender, labels: fromLabels) && Self.matches(to, device: target, labels: toLabels)
            && (commands.contains("*") || commands.contains(name))
    }

    /// Whether a selector matches a device.
    public static func matches(_ selector: String, device: String, labels: [String: String]) -> Bool {
        if selector == "*" { return true }
        if selector.hasPrefix("device:") { return selector.dropFirst("device:".count) == device }
        if selector.hasPrefix("label:") {
            let pair = selector.dropFirst("label:".count)
            guard let eq = pair.firstIndex(of: "=") else { return false }
            return labels[String(pair[..<eq])] == String(pair[pair.index(after: eq)...])
        }
        return false
    }

    /// Why a selector is invalid, or nil when it is valid.
    public static func problem(selector: String) -> String? {
        if selector == "*" { return nil }
        if selector.hasPrefix("device:") {
            return Identifier.isValid(String(selector.dropFirst("device:".count))) ? nil : "not a valid device id"
        }
        if selector.hasPrefix("label:") {
            let pair = selector.dropFirst("label:".count)
            guard let eq = pair.firstIndex(of: "="), eq != pair.startIndex else {
                return "must be label:<key>=<value>"
            }
            return nil
        }
        return "must be device:<id>, label:<key>=<value> or *"
    }
}

/// The body of `POST /v1/rendezvous/rules`.
public struct CreateRendezvousRule: Sendable, Hashable, Codable {
    /// The senders: `device:<id>`, `label:<key>=<value>` or `*`.
    public var from: String
    /// The targets, in the same forms.
    public var to: String
    /// The command names allowed; `["*"]` allows every name.
    public var commands: [String]

    /// Creates a value.
    public init(from: String, to: String, commands: [String]) {
        self.from = from
        self.to = to
        self.commands = commands
    }
}

extension PeerRequest {
    /// Checks a peer request against the limits; `field` names it in the failure.
    public func validate(_ limits: PollLimits, field: String = "request") throws(ValidationFailure) {
        guard Identifier.isValid(ref, maxBytes: limits.maxIdentifierBytes) else {
            throw ValidationFailure(
                field: "\(field).ref",
                reason: "must be 1-\(limits.maxIdentifierBytes) characters of A-Z a-z 0-9 . _ : -"
            )
        }
        guard let target = targetDevice, Identifier.isValid(target, maxBytes: limits.maxIdentifierBytes) else {
            throw ValidationFailure(field: "\(field).to", reason: "must be device:<id>")
        }
        guard Identifier.isValid(name, maxBytes: 64) else {
            throw ValidationFailure(field: "\(field).name", reason: "must be 1-64 characters of A-Z a-z 0-9 . _ : -")
        }
        guard case .object = args else {
            throw ValidationFailure(field: "\(field).args", reason: "must be a JSON object")
        }
        try PollRequest.check(args, field: "\(field).args", limits)
        if let envelope, envelope.utf8.count > limits.maxEnvelopeBytes {
            throw ValidationFailure(
                field: "\(field).envelope", reason: "longer than \(limits.maxEnvelopeBytes) bytes")
        }
        if let ttl, !(ttl > 0 && ttl.isFinite) {
            throw ValidationFailure(field: "\(field).ttl", reason: "must be a positive number of seconds")
        }
        if ttl != nil, expiresAt != nil {
            throw ValidationFailure(field: "\(field).expiresAt", reason: "give ttl or expiresAt, not both")
        }
        if let signature {
            try signature.validate(field: "\(field).signature")
            guard expiresAt != nil else {
                throw ValidationFailure(field: "\(field).expiresAt", reason: "a signed request must give expiresAt")
            }
        }
    }
}
