public import BackchannelProtocol
import BackchannelStore
import Synchronization

extension Hub {
    // MARK: Rules (operator API)

    /// Every rendezvous rule, oldest first; only the tenant's when `tenant` is given.
    public func rendezvousRules(tenant: String? = nil) async throws(HubError) -> [RendezvousRule] {
        do {
            return try await loadRules().filter { tenant == nil || ($0.tenant ?? configuration.systemTenant) == tenant }
        } catch {
            throw storeFailure(error)
        }
    }

    /// Adds a rule letting `from` send `commands` to `to`. The rule belongs to `tenant` (default:
    /// the system tenant) and matches only that tenant's devices.
    public func addRendezvousRule(
        _ request: CreateRendezvousRule, tenant: String? = nil
    ) async throws(HubError) -> RendezvousRule {
        if let problem = RendezvousRule.problem(selector: request.from) { throw HubError.malformed("from: \(problem)") }
        if let problem = RendezvousRule.problem(selector: request.to) { throw HubError.malformed("to: \(problem)") }
        guard !request.commands.isEmpty, request.commands.count <= 256 else {
            throw HubError.malformed("commands: give 1-256 command names, or [\"*\"] for every name")
        }
        for (i, name) in request.commands.enumerated() where name != "*" && !Identifier.isValid(name, maxBytes: 64) {
            throw HubError.malformed("commands[\(i)]: must be 1-64 characters of A-Z a-z 0-9 . _ : - or \"*\"")
        }
        let now = clock.now()
        let rule = RendezvousRule(
            id: MessageID.make(at: now), from: request.from, to: request.to, commands: request.commands, createdAt: now,
            tenant: tenant ?? configuration.systemTenant
        )
        do {
            try await store.insertRule(rule)
        } catch {
            throw storeFailure(error)
        }
        cachedRules.withLock { cache in
            cache.rules = nil
            cache.generation &+= 1
        }
        return rule
    }

    /// Deletes a rule; requests already accepted under it are not affected. With `tenant`, only
    /// that tenant's rule (another tenant's answers 404).
    public func deleteRendezvousRule(_ id: String, tenant: String? = nil) async throws(HubError) {
        let deleted: Bool
        if let tenant, try await rendezvousRules(tenant: tenant).first(where: { $0.id == id }) == nil {
            throw HubError.hidden(HubError.notFound("no rendezvous rule '\(id)'"))
        }
        do {
            deleted = try await store.deleteRule(id: id)
        } catch {
            throw storeFailure(error)
        }
        cachedRules.withLock { cache in
            cache.rules = nil
            cache.generation &+= 1
        }
        guard deleted else { throw HubError.notFound("no rendezvous rule '\(id)'") }
    }

    private func loadRules() async throws -> [RendezvousRule] {
        let (cached, generation) = cachedRules.withLock { ($0.rules, $0.generation) }
        if let cached { return cached }
        let rules = try await store.rules()
        // A rule changed while this load ran: use what was read, but do not cache it.
        cachedRules.withLock { cache in if cache.generation == generation { cache.rules = rules } }
        return rules
    }

    // MARK: Routing

    /// The peer requests of one poll, checked: records to store, and the rejections by index.
    struct RoutePlan: Sendable {
        var accepted: [CommandRecord] = []
        var rejected: [Int: RoutedRequest] = [:]
    }

    /// Checks each peer request of a poll: the target must exist, a rule must allow the pair and
    /// the name, and (when the sender asks to fail fast) the target must be reachable now.
    func route(_ requests: [PeerRequest], from sender: String, now: Timestamp) async throws -> RoutePlan {
        var plan = RoutePlan()
        guard !requests.isEmpty else { return plan }
        let senderRecord = try await store.device(id: sender)
        let senderTenant = senderRecord?.tenant ?? configuration.systemTenant
        // Rules match within their tenant only; a device never reaches another tenant's device.
        let rules = try await loadRules().filter { ($0.tenant ?? configuration.systemTenant) == senderTenant }
        let senderLabels = senderRecord?.labels ?? [:]
        var labelsOf: [String: [String: String]?] = [:]
        for (index, request) in requests.enumerated() {
            func reject(_ code: String, _ detail: String) {
                plan.rejected[index] = RoutedRequest(ref: request.ref, state: .rejected, code: code, detail: detail)
                metrics.rendezvousRejected.add(1, ordering: .relaxed)
                events.publish(
                    .rendezvousRejected, at: now, device: sender, detail: "\(request.name) to \(request.to): \(code)")
            }
            guard let target = request.targetDevice else {
                reject(OutcomeCode.invalidRequest, "to: must be device:<id>")
                continue
            }
            guard target != sender else {
                reject(OutcomeCode.invalidRequest, "a device cannot send a request to itself")
                continue
            }
            if labelsOf[target] == nil {
                let record = try await store.device(id: target)
                labelsOf[target] = .some(record?.tenant == senderTenant ? record?.labels : nil)
            }
            guard let targetLabels = labelsOf[target] ?? nil else {
                reject(OutcomeCode.unknownTarget, "no device '\(target)'")
                continue
            }
            let allowed = rules.contains {
                $0.allows(from: sender, labels: senderLabels, to: target, labels: targetLabels, name: request.name)
            }
            guard allowed else {
                reject(
                    OutcomeCode.notAuthorized, "no rendezvous rule lets \(sender) send '\(request.name)' to \(target)")
                continue
            }
            if request.onUnavailable == .fail, !isReachable(target, now: now) {
                reject(OutcomeCode.targetUnavailable, "\(target) has not been heard from recently")
                continue
            }
            do throws(HubError) {
                plan.accepted.append(try peerRecord(request, from: sender, to: target, now: now))
            } catch {
                reject(OutcomeCode.invalidRequest, error.body.message)
            }
        }
        return plan
    }

    /// The stored form of an accepted peer request.
    private func peerRecord(_ request: PeerRequest, from sender: String, to target: String, now: Timestamp)
        throws(HubError) -> CommandRecord
    {
        let ttl = request.expiresAt.map { $0.seconds(since: now) } ?? request.ttl ?? configuration.defaultTTL
        guard ttl <= configuration.maxTTL else {
            throw HubError.malformed("ttl: longer than \(Int(configuration.maxTTL)) seconds")
        }
        guard ttl > 0 else { throw HubError.malformed("expiresAt: already passed") }
        let expiresAt = request.expiresAt ?? now.adding(seconds: ttl)
        if let notBefore = request.notBefore, notBefore >= expiresAt {
            throw HubError.malformed("notBefore: must be before the request expires (\(expiresAt))")
        }
        var record = CommandRecord(
            id: MessageID.make(at: now), device: target, origin: "device:\(sender)", name: request.name,
            args: request.args, createdAt: now, expiresAt: expiresAt, notBefore: request.notBefore,
            idempotencyKey: "rv:\(sender):\(request.ref)", maxAttempts: configuration.maxAttempts,
            executionTimeoutMs: Int64((configuration.executionTimeout * 1000).rounded())
        )
        record.replyTo = sender
        record.replyRef = request.ref
        record.envelope = request.envelope
        record.signature = request.signature
        return record
    }

    /// Whether the device was heard from within ``HubConfiguration/reachabilityWindow`` and has
    /// not said goodbye.
    func isReachable(_ device: String, now: Timestamp) -> Bool {
        guard let session = directory.snapshot(device), let seen = session.lastSeenAt else { return false }
        if session.presence?.state == .unavailable { return false }
        return now.seconds(since: seen) <= configuration.reachabilityWindow
    }

    /// The hub's answer for each peer request of a poll, in the poll's order.
    func routedAnswers(_ requests: [PeerRequest], plan: RoutePlan, stored: [RoutedSubmission]) -> [RoutedRequest] {
        var storedAnswers = stored.makeIterator()
        return requests.enumerated().map { index, request in
            if let rejection = plan.rejected[index] { return rejection }
            switch storedAnswers.next() {
            case .created(let record)?, .existing(let record)?:
                return RoutedRequest(ref: request.ref, id: record.id, state: record.state)
            case .refReused?, nil:
                return RoutedRequest(
                    ref: request.ref, state: .rejected, code: OutcomeCode.refReused,
                    detail: "ref '\(request.ref)' was used before for a different request")
            }
        }
    }

    /// After a commit: wakes the targets of new peer requests, and the senders whose replies
    /// became deliverable.
    func notifyRendezvous(created: [RoutedSubmission], updated: [CommandRecord]) {
        for case .created(let record) in created {
            metrics.rendezvousRouted.add(1, ordering: .relaxed)
            events.publish(
                .commandSubmitted, at: record.createdAt, device: record.device, command: record.id, state: .queued,
                detail: "\(record.name) from \(record.origin)")
            directory.noteWork(record.device)
            lanes.notifyWork(record.device)
        }
        for record in updated where record.replyState == .pending {
            guard let sender = record.replyTo else { continue }
            directory.noteWork(sender)
            lanes.notifyWork(sender)
        }
    }

    // MARK: Sender's view

    /// A request `device` sent to a peer, by the hub's id or by the sender's `ref`.
    public func sentRequest(_ key: String, from device: String) async throws(HubError) -> CommandView {
        do {
            var found = try await store.command(id: key)
            if found?.replyTo != device { found = nil }
            if found == nil {
                found = try await store.commands(CommandQuery(replyTo: device, ref: key, limit: 1)).first
            }
            guard let record = found else { throw HubError.notFound("no request '\(key)' sent by \(device)") }
            return record.view(history: try await store.history(command: record.id))
        } catch {
            throw storeFailure(error)
        }
    }
}
