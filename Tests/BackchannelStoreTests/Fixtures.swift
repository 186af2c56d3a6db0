import BackchannelProtocol
import BackchannelStore

/// Shared builders for store tests. Times are fixed: nothing reads a clock.
enum Fixture {
    /// The origin of every test timeline.
    static let t0 = Timestamp(milliseconds: 1_800_000_000_000)

    /// `t0` moved by `seconds`.
    static func at(_ seconds: Double) -> Timestamp { t0.adding(seconds: seconds) }

    /// A device record with a fixed token hash.
    static func device(_ id: String, name: String? = nil, labels: [String: String] = [:]) -> DeviceRecord {
        DeviceRecord(id: id, name: name, labels: labels, tokenHash: "hash-\(id)", createdAt: t0)
    }

    /// A QUEUED command created `created` seconds after `t0`, expiring `ttl` seconds later.
    ///
    /// The id is a UUIDv7 of the creation time, so ids made at distinct milliseconds sort by creation.
    static func command(
        id: String? = nil,
        device: String = "dev-1",
        name: String = "read",
        args: JSONValue = ["register": 40001],
        created: Double = 0,
        ttl: Double = 3600,
        notBefore: Timestamp? = nil,
        key: String? = nil,
        maxAttempts: Int = 3,
        timeoutSeconds: Double = 60
    ) -> CommandRecord {
        let createdAt = at(created)
        return CommandRecord(
            id: id ?? MessageID.make(at: createdAt), device: device, origin: "operator:test", name: name, args: args,
            createdAt: createdAt, expiresAt: createdAt.adding(seconds: ttl), notBefore: notBefore,
            idempotencyKey: key, maxAttempts: maxAttempts, executionTimeoutMs: Int64(timeoutSeconds * 1000))
    }

    /// An uplink item measured at `t0`.
    static func uplink(_ id: String, kind: UplinkKind = .reading, name: String = "meter", data: JSONValue = ["kwh": 1])
        -> UplinkItem
    {
        UplinkItem(id: id, kind: kind, name: name, at: t0, data: data)
    }

    /// A result report.
    static func result(_ id: String, _ status: ResultStatus = .succeeded, code: String? = nil) -> LogicalResult {
        LogicalResult(id: id, status: status, code: code, data: ["ok": true])
    }
}

extension LifecycleStep {
    /// The history entry of a transition or a late result.
    var entry: TransitionRecord? {
        switch self {
        case .transitioned(let entry), .lateResult(let entry): entry
        case .unchanged, .illegal: nil
        }
    }

    /// Whether the step is `.illegal`.
    var isIllegal: Bool {
        if case .illegal = self { return true }
        return false
    }
}
