public import BackchannelPower
import BackchannelProtocol
import BackchannelStore
public import Foundation
import Logging
import Synchronization

/// A device's load-shedding policy: its price-limit schedule and the controller's state.
public struct SheddingPolicy: Sendable, Hashable, Codable {
    /// The controlled device (it takes `shed` and `restore` commands).
    public var device: String
    /// The controller: schedule, state (shed or normal) and the last price.
    public var controller: LoadShedController
}

/// One logged shedding decision, with the command it sent.
public struct SheddingDecisionRecord: Sendable, Hashable, Codable {
    /// The device.
    public var device: String
    /// The decision and its reason.
    public var decision: LoadShedDecision
    /// Where the price came from: `operator:<name>` or `device:<id>`.
    public var source: String
    /// The command sent for a shed or restore.
    public var command: String?
    /// Why the command could not be sent, if it could not (the state is then unchanged).
    public var error: String?
}

/// A live price as reported to the hub.
public struct PriceUpdate: Sendable, Hashable, Codable {
    /// The price, currency per kWh.
    public var price: Decimal
    /// The decisions it caused, one per policy of the tenant.
    public var decisions: [SheddingDecisionRecord]?
}

/// Runs async sections one at a time (shedding evaluations read and write controller state).
final class AsyncSerial: Sendable {
    private let state = Mutex<(busy: Bool, waiters: [CheckedContinuation<Void, Never>])>((false, []))

    func run<T>(_ body: () async throws -> T) async rethrows -> T {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let go = state.withLock { state -> Bool in
                if state.busy {
                    state.waiters.append(continuation)
                    return false
                }
                state.busy = true
                return true
            }
            if go { continuation.resume() }
        }
        defer {
            let next = state.withLock { state -> CheckedContinuation<Void, Never>? in
                if state.waiters.isEmpty {
                    state.busy = false
                    return nil
                }
                return state.waiters.removeFirst()
            }
            next?.resume()
        }
        return try await body()
    }
}

extension Hub {
    /// Sets (or replaces) a device's shedding policy. The state of a replaced policy is kept.
    /// The tenant's last live price applies at once: a policy set while the price is above its
    /// limit sheds now (the decision is logged like any other).
    func putSheddingPolicy(device: String, schedule: PriceLimitSchedule, tenant: String) async throws(HubError)
        -> SheddingPolicy
    {
        let previous = try await document(SheddingPolicy.self, kind: PowerKind.sheddingPolicy, key: device)
        let controller: LoadShedController
        do {
            controller = try LoadShedController(schedule: schedule, state: previous?.controller.state ?? .normal)
        } catch {
            throw HubError.malformed(error.message)
        }
        let policy = SheddingPolicy(device: device, controller: controller)
        try await putDocument(
            kind: PowerKind.sheddingPolicy, key: device, tenant: tenant, device: device, at: clock.now(), policy)
        guard let last = try await document(LastPrice.self, kind: PowerKind.price, key: tenant),
            let price = Decimal(string: String(last.price))
        else { return policy }
        do {
            try await power.shedding.run {
                _ = try await decide(policy, tenant: tenant, source: "policy set; last price from \(last.source)") {
                    controller, now throws(PowerInputError) in
                    try controller.priceChanged(to: price, at: now)
                }
            }
        } catch {
            throw storeFailure(error)
        }
        return try await document(SheddingPolicy.self, kind: PowerKind.sheddingPolicy, key: device) ?? policy
    }

    /// The tenant's last live price, as stored by ``updatePrice(_:at:source:tenant:)``.
    struct LastPrice: Decodable {
        var price: Double
        var source: String
    }

    /// The tenant's shedding policies, by device.
    func sheddingPolicies(tenant: String) async throws(HubError) -> [SheddingPolicy] {
        try await documents(
            SheddingPolicy.self, PowerDocumentQuery(kind: PowerKind.sheddingPolicy, tenant: tenant, limit: 100_000)
        ).sorted { $0.device < $1.device }
    }

    /// Deletes a device's policy; 404 when there is none.
    func deleteSheddingPolicy(device: String) async throws(HubError) {
        do {
            guard try await store.deletePowerDocument(kind: PowerKind.sheddingPolicy, key: device) else {
                throw HubError.notFound("no shedding policy for '\(device)'")
            }
        } catch let error as HubError {
            throw error
        } catch {
            throw storeFailure(error)
        }
    }

    /// The logged decisions, newest first.
    func sheddingDecisions(tenant: String, device: String?, limit: Int) async throws(HubError)
        -> [SheddingDecisionRecord]
    {
        try await documents(
            SheddingDecisionRecord.self,
            PowerDocumentQuery(kind: PowerKind.sheddingDecision, tenant: tenant, device: device, limit: limit))
    }

    /// A new live price for the tenant: every policy decides with it, and each decision is
    /// logged with its reason; a shed or restore sends the command.
    @discardableResult
    func updatePrice(_ price: Double, at time: Timestamp, source: String, tenant: String) async throws
        -> [SheddingDecisionRecord]
    {
        let value = Decimal(string: String(price)) ?? Decimal(price)
        guard !value.isNaN else { throw PowerInputError("price: \(price) has no decimal value") }
        return try await power.shedding.run {
            try await putDocument(
                kind: PowerKind.price, key: tenant, tenant: tenant, device: nil, at: clock.now(),
                ["price": JSONValue.number(price), "source": .string(source), "at": .string(time.description)])
            var records: [SheddingDecisionRecord] = []
            for policy in try await sheddingPolicies(tenant: tenant) {
                records.append(
                    try await decide(policy, tenant: tenant, source: source) {
                        controller, now throws(PowerInputError) in
                        try controller.priceChanged(to: value, at: now)
                    })
            }
            return records
        }
    }

    /// Re-evaluates every policy that has a price, at the current time: a limit window opening
    /// or closing sheds or restores by itself. Holds are not logged.
    func evaluateShedding() async {
        do {
            try await power.shedding.run {
                let policies = try await documents(
                    SheddingPolicy.self, PowerDocumentQuery(kind: PowerKind.sheddingPolicy, limit: 100_000))
                for policy in policies where policy.controller.price != nil {
                    guard let tenant = try await self.tenant(ofDevice: policy.device) else { continue }
                    _ = try await decide(policy, tenant: tenant, source: "schedule", logHold: false) {
                        controller, now throws(PowerInputError) in
                        try controller.evaluate(at: now)
                    }
                }
            }
        } catch {
            logger.warning("the shedding evaluation failed; it runs again", metadata: ["error": "\(error)"])
        }
    }

    private func decide(
        _ policy: SheddingPolicy, tenant: String, source: String, logHold: Bool = true,
        _ step: (inout LoadShedController, Timestamp) throws(PowerInputError) -> LoadShedDecision
    ) async throws -> SheddingDecisionRecord {
        var controller = policy.controller
        let now = max(clock.now(), controller.lastDecisionTime ?? clock.now())
        let decision = try step(&controller, now)
        var record = SheddingDecisionRecord(
            device: policy.device, decision: decision, source: source, command: nil, error: nil)
        if decision.action != .hold {
            let limit = NSDecimalNumber(decimal: decision.limit).doubleValue
            let price = NSDecimalNumber(decimal: decision.price).doubleValue
            do {
                let sent = try await submit(
                    SubmitCommandRequest(
                        name: decision.action == .shed ? "shed" : "restore",
                        args: [
                            "reason": .string(decision.reason), "price": .number(price), "limit": .number(limit),
                        ]),
                    to: policy.device, origin: "power:shedding")
                record.command = sent.command.id
            } catch {
                record.error = "\(error)"
                controller = policy.controller  // nothing was sent: the state stays
            }
        }
        var documents = [
            PowerDocument(
                kind: PowerKind.sheddingPolicy, key: policy.device, tenant: tenant, device: policy.device, at: now,
                body: try Self.json(SheddingPolicy(device: policy.device, controller: controller)))
        ]
        if decision.action != .hold || logHold {
            documents.append(
                PowerDocument(
                    kind: PowerKind.sheddingDecision,
                    key: "\(policy.device)/\(MessageID.make(at: now))",
                    tenant: tenant, device: policy.device, at: now, body: try Self.json(record)))
        }
        try await store.putPowerDocuments(documents)
        if decision.action != .hold {
            events.publish(
                .power, at: now, device: policy.device, command: record.command,
                detail: "shedding.\(decision.action.rawValue)", data: ["reason": .string(decision.reason)])
        }
        return record
    }
}
