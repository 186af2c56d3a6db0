public import BackchannelProtocol
import BackchannelStore
import Foundation
import Synchronization

/// Who is behind an authenticated operator request.
public struct OperatorPrincipal: Sendable, Hashable {
    /// The operator's name (`root` for the bootstrap token).
    public var name: String
    /// The operator's tenant.
    public var tenant: String
    /// The operator's role.
    public var role: OperatorRole
    /// Whether this is an admin of the hub's system tenant: the only principal that may create
    /// operators and devices in other tenants, or change hub-wide settings.
    public var isSystemAdmin: Bool

    /// `operator:<name>`, as recorded in the audit log and command origins.
    public var actor: String { "operator:\(name)" }

    /// Whether the role grants the permission.
    public func may(_ permission: Permission) -> Bool {
        switch permission {
        case .hubSettings: isSystemAdmin
        default: Self.grants[role, default: []].contains(permission)
        }
    }

    private static let grants: [OperatorRole: Set<Permission>] = [
        .admin: Set(Permission.allCases),
        .operator: [.readDevices, .readOperations, .command, .firmware],
        .billing: [.readDevices, .readData],
        .viewer: [.readDevices, .readOperations],
    ]
}

/// What a route needs. Roles grant permissions (see ``OperatorPrincipal/may(_:)``).
public enum Permission: String, Sendable, Hashable, CaseIterable {
    /// List and show devices and their presence.
    case readDevices
    /// Commands, campaigns, alarms, rules, artifacts and the event stream.
    case readOperations
    /// Metering data: uplink and exports.
    case readData
    /// Send and cancel commands and campaigns, refresh presence, acknowledge alarms.
    case command
    /// Upload firmware artifacts.
    case firmware
    /// Provision devices and rotate their tokens.
    case provision
    /// Create and delete rendezvous rules.
    case rules
    /// Manage operators and read the audit log.
    case operators
    /// Hub-wide settings (alarm thresholds): system-tenant admins only.
    case hubSettings
}

/// Resolves operator tokens to principals.
///
/// Tokens are `bco_<name>~<secret>`; the store keeps a salted hash of the whole token, compared
/// in constant time. Records are cached in memory and dropped from the cache whenever the hub
/// changes them (single node). The bootstrap token from the hub's configuration is the `root`
/// admin of the system tenant.
final class OperatorDirectory: Sendable {
    private let store: any MessageStore
    private let bootstrapHash: String?
    let systemTenant: String
    private struct Cache {
        var records: [String: OperatorRecord] = [:]
        /// Bumped by every invalidation, so a read that raced a rotation or deletion is not cached.
        var generation: UInt64 = 0
    }

    private let cache = Mutex(Cache())

    init(store: any MessageStore, bootstrapHash: String?, systemTenant: String) {
        self.store = store
        self.bootstrapHash = bootstrapHash
        self.systemTenant = systemTenant
    }

    /// The name a token claims, or nil when it is not an operator token.
    static func claimedName(_ token: String) -> String? {
        guard token.hasPrefix("bco_"), let separator = token.lastIndex(of: "~") else { return nil }
        let name = String(token[token.index(token.startIndex, offsetBy: 4)..<separator])
        return Identifier.isValid(name, maxBytes: 64) ? name : nil
    }

    /// A new token for an operator.
    static func makeToken(for name: String) -> String {
        "bco_\(name)~" + String(Credentials.makeToken().dropFirst(4))
    }

    /// The principal a bearer token stands for, or nil.
    func principal(token: String) async throws -> OperatorPrincipal? {
        if let bootstrapHash, Credentials.matches(token, hash: bootstrapHash) {
            return OperatorPrincipal(name: "root", tenant: systemTenant, role: .admin, isSystemAdmin: true)
        }
        guard let name = Self.claimedName(token) else { return nil }
        let (cached, generation) = cache.withLock { ($0.records[name], $0.generation) }
        var record = cached
        if record == nil {
            record = try await store.operatorRecord(name: name)
            if let record {
                cache.withLock { cache in
                    if cache.generation == generation { cache.records[name] = record }
                }
            }
        }
        guard let record, Credentials.matches(token, hash: record.tokenHash) else { return nil }
        return OperatorPrincipal(
            name: record.name, tenant: record.tenant, role: record.role,
            isSystemAdmin: record.role == .admin && record.tenant == systemTenant)
    }

    /// Drops a cached record after the hub changed it.
    func invalidate(_ name: String) {
        cache.withLock { cache in
            cache.records.removeValue(forKey: name)
            cache.generation &+= 1
        }
    }
}

/// A token bucket per key (operator name), for 429 with `Retry-After`.
final class RateLimiter: Sendable {
    private struct Bucket {
        var tokens: Double
        var at: Timestamp
    }

    private let rate: Double
    private let burst: Double
    private let buckets = Mutex<[String: Bucket]>([:])

    init(rate: Double, burst: Double) {
        self.rate = rate
        self.burst = burst
    }

    /// Takes one token; nil when allowed, else the seconds until one is available.
    func take(_ key: String, now: Timestamp) -> Double? {
        guard rate > 0 else { return nil }
        return buckets.withLock { buckets in
            var bucket = buckets[key] ?? Bucket(tokens: burst, at: now)
            bucket.tokens = min(burst, bucket.tokens + max(0, now.seconds(since: bucket.at)) * rate)
            bucket.at = now
            defer {
                buckets[key] = bucket
                if buckets.count > 100_000 { buckets.removeAll(keepingCapacity: true) }
            }
            if bucket.tokens >= 1 {
                bucket.tokens -= 1
                return nil
            }
            return (1 - bucket.tokens) / rate
        }
    }
}
