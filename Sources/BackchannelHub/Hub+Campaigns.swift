public import BackchannelProtocol
import BackchannelStore
import Logging
public import ServiceLifecycle
import Synchronization

extension Hub {
    /// Starts a campaign: one child command per target device, in waves when asked.
    ///
    /// With `tenant`, only that tenant's devices can be targets: a device of another tenant is
    /// refused exactly as a device that does not exist.
    public func startCampaign(
        _ request: StartCampaignRequest, tenant: String? = nil
    ) async throws(HubError) -> CampaignView {
        let now = clock.now()
        let targets = try await campaignTargets(request, tenant: tenant)
        guard !targets.isEmpty else { throw HubError.malformed("devices/selector: no device matches") }
        guard targets.count <= configuration.maxCampaignDevices else {
            throw HubError.malformed("devices: at most \(configuration.maxCampaignDevices) per campaign")
        }
        if let perMinute = request.perMinute, !(1...100_000).contains(perMinute) {
            throw HubError.malformed("perMinute: must be 1-100000")
        }
        if let threshold = request.abortThreshold, !(threshold > 0 && threshold <= 1) {
            throw HubError.malformed("abortThreshold: must be above 0 and at most 1 (a share of finished devices)")
        }
        if let minimum = request.minFinished, minimum < 1 { throw HubError.malformed("minFinished: must be 1 or more") }
        let untilAvailable = request.untilAvailable ?? false
        var template = SubmitCommandRequest(
            name: request.name, args: request.args, ttl: request.ttl, timeout: request.timeout,
            delivery: untilAvailable ? .whenAvailable : .queued)
        template.maxAttempts = nil
        let id = MessageID.make(at: now)
        var children: [CommandRecord] = []
        for (index, device) in targets.enumerated() {
            var child = try makeRecord(template, device: device, origin: "campaign:\(id)", now: now)
            child.campaign = id
            if let perMinute = request.perMinute, index >= perMinute {
                // Wave k (0-based) starts k minutes after the campaign.
                let start = now.adding(seconds: Double(index / perMinute) * 60)
                guard start < child.expiresAt else {
                    throw HubError.malformed("ttl: too short for \(targets.count) devices at \(perMinute) per minute")
                }
                child.notBefore = start
            }
            children.append(child)
        }
        var record = CampaignRecord(
            id: id, name: request.name, args: children[0].args, createdAt: now, deviceCount: targets.count,
            perMinute: request.perMinute, abortThreshold: request.abortThreshold, minFinished: request.minFinished,
            untilAvailable: untilAvailable, expiresAt: children[0].expiresAt)
        record.tenant = tenant ?? configuration.systemTenant
        do {
            try await store.insertCampaign(record, children: children)
        } catch let error as StoreError where error.isUnknownDevice {
            throw HubError.malformed("devices: \(error.message)")
        } catch {
            throw storeFailure(error)
        }
        metrics.commandsSubmitted.add(UInt64(children.count), ordering: .relaxed)
        events.publish(.campaign, at: now, detail: "\(id) started: \(request.name) to \(targets.count) devices")
        for child in children {
            directory.noteWork(child.device)
            lanes.notifyWork(child.device)
        }
        return try await campaign(id)
    }

    /// The campaign's targets: the listed devices (which must exist) and those the selector matches.
    private func campaignTargets(
        _ request: StartCampaignRequest, tenant: String?
    ) async throws(HubError) -> [String] {
        var targets: [String] = []
        var seen = Set<String>()
        do {
            for device in request.devices ?? [] {
                guard Identifier.isValid(device) else {
                    throw HubError.malformed("devices: '\(device.prefix(64))' is not a device id")
                }
                guard let record = try await store.device(id: device), tenant == nil || record.tenant == tenant else {
                    throw HubError.unknownDevice(device)
                }
                if seen.insert(device).inserted { targets.append(device) }
            }
            if let selector = request.selector {
                guard selector == "*" || selector.hasPrefix("label:"), RendezvousRule.problem(selector: selector) == nil
                else { throw HubError.malformed("selector: must be label:<key>=<value> or *") }
                var cursor: String?
                repeat {
                    let page = try await store.devices(after: cursor, limit: 1000, tenant: tenant)
                    for device in page
                    where RendezvousRule.matches(selector, device: device.id, labels: device.labels)
                        && seen.insert(device.id).inserted
                    {
                        targets.append(device.id)
                    }
                    cursor = page.count == 1000 ? page.last?.id : nil
                } while cursor != nil
            }
        } catch {
            throw storeFailure(error)
        }
        if request.devices == nil && request.selector == nil {
            throw HubError.malformed("give devices, a selector, or both")
        }
        return targets
    }

    /// A campaign with its counts, and its children when asked.
    public func campaign(_ id: String, children: Bool = false) async throws(HubError) -> CampaignView {
        do {
            guard let record = try await store.campaign(id: id) else { throw HubError.notFound("no campaign '\(id)'") }
            let counts = try await store.campaignCounts(id: id)
            var list: [CommandView]?
            if children {
                list = try await store.commands(CommandQuery(campaign: id, limit: record.deviceCount)).map { $0.view() }
            }
            return view(record, counts: counts, children: list)
        } catch {
            throw storeFailure(error)
        }
    }

    /// Campaigns, newest first.
    public func campaigns(limit: Int, tenant: String? = nil) async throws(HubError) -> [CampaignView] {
        do {
            var views: [CampaignView] = []
            for record in try await store.campaigns(limit: limit, tenant: tenant) {
                views.append(view(record, counts: try await store.campaignCounts(id: record.id), children: nil))
            }
            return views
        } catch {
            throw storeFailure(error)
        }
    }

    /// Cancels a running campaign: every child not yet finished is canceled.
    public func cancelCampaign(_ id: String, reason: String?) async throws(HubError) -> CampaignView {
        do {
            guard let record = try await store.campaign(id: id) else { throw HubError.notFound("no campaign '\(id)'") }
            guard record.state == .running else {
                throw HubError.conflict("campaign '\(id)' is already \(record.state.rawValue)")
            }
            try await end(id, as: .canceled, detail: reason ?? "canceled by an operator")
        } catch {
            throw storeFailure(error)
        }
        return try await campaign(id)
    }

    /// Settles every running campaign: catches up on a settle that a crash or a store error
    /// skipped (the children's changes committed, the campaign's did not).
    public func reconcileCampaigns() async {
        do {
            for campaign in try await store.campaigns(limit: 1000) where campaign.state == .running {
                try await settle(campaign.id)
            }
        } catch {
            logger.warning("campaigns could not be reconciled; retrying later", metadata: ["error": "\(error)"])
        }
    }

    /// After commands changed: settles the campaigns whose children finished (completion, or the
    /// abort threshold).
    func settleCampaigns(_ updated: [CommandRecord]) async {
        let ids = Set(updated.compactMap { $0.state.isTerminal ? $0.campaign : nil })
        for id in ids {
            do {
                try await settle(id)
            } catch {
                logger.warning("campaign could not be settled", metadata: ["backchannel.campaign": "\(id)"])
            }
        }
    }

    private func settle(_ id: String) async throws {
        guard let record = try await store.campaign(id: id), record.state == .running else { return }
        let counts = try await store.campaignCounts(id: id)
        let finished = counts.filter { $0.key.isTerminal }.values.reduce(0, +)
        let failed = Self.failures(counts)
        if let threshold = record.abortThreshold, finished >= (record.minFinished ?? 1), finished > 0,
            Double(failed) / Double(finished) >= threshold
        {
            let share = Int((Double(failed) / Double(finished) * 100).rounded())
            try await end(id, as: .aborted, detail: "\(failed) of \(finished) finished devices failed (\(share) %)")
        } else if finished >= record.deviceCount {
            if try await store.finishCampaign(id: id, state: .completed, at: clock.now(), detail: nil, cancelling: nil)
                != nil
            {
                events.publish(.campaign, at: clock.now(), detail: "\(id) completed")
            }
        }
    }

    /// Ends a running campaign and cancels its open children, in one transaction; devices that
    /// hold one are told in their next response.
    private func end(_ id: String, as state: CampaignState, detail: String) async throws {
        let now = clock.now()
        guard
            let canceled = try await store.finishCampaign(
                id: id, state: state, at: now, detail: detail, cancelling: "campaign \(state.rawValue): \(detail)")
        else { return }
        events.publish(.campaign, at: now, detail: "\(id) \(state.rawValue): \(detail)")
        for case .canceled(let record, let previous) in canceled {
            if previous == .dispatched || previous == .acked || record.attempt > 0 {
                directory.update(record.device) { $0.pendingCancels.append(record.id) }
                lanes.notifyWork(record.device)
            }
            events.publish(
                .commandTransition, at: now, device: record.device, command: record.id, state: .canceled,
                detail: "cancel")
        }
    }

    private static func failures(_ counts: [MessageState: Int]) -> Int {
        [MessageState.failed, .rejected, .timedOut, .expired].reduce(0) { $0 + (counts[$1] ?? 0) }
    }

    private func view(_ record: CampaignRecord, counts: [MessageState: Int], children: [CommandView]?) -> CampaignView {
        var byState: [String: Int] = [:]
        for state in MessageState.allCases { byState[state.rawValue] = counts[state] ?? 0 }
        return CampaignView(
            id: record.id, name: record.name, args: record.args, state: record.state, createdAt: record.createdAt,
            finishedAt: record.finishedAt, devices: record.deviceCount, counts: byState,
            succeeded: counts[.succeeded] ?? 0, failed: Self.failures(counts), perMinute: record.perMinute,
            abortThreshold: record.abortThreshold, minFinished: record.minFinished,
            untilAvailable: record.untilAvailable, expiresAt: record.expiresAt, detail: record.detail,
            children: children)
    }
}

/// Reconciles running campaigns at start and every half minute.
public struct CampaignReconciler: Service {
    let hub: Hub

    /// Creates the reconciler for a hub.
    public init(hub: Hub) {
        self.hub = hub
    }

    public func run() async throws {
        await repeatUntilShutdown(every: 30) { await hub.reconcileCampaigns() }
    }
}
