public import BackchannelProtocol
import BackchannelStore
public import Foundation
import ServiceLifecycle
import Synchronization

extension Hub {
    /// Handles one physical request (`POST /v1/poll`) authenticated by its `Authorization`
    /// header and returns the response body.
    public func poll(body: Data, authorization: String?) async throws(HubError) -> Data {
        try await poll(body: body, credential: .bearer(authorization))
    }

    /// Handles one physical request (`POST /v1/poll`) and returns the response body.
    ///
    /// - Parameters:
    ///   - body: the request body, already size-checked.
    ///   - credential: the bearer token or the verified client certificate's device.
    /// - Throws: ``HubError`` for every session-level failure; nothing from a failed request is stored.
    public func poll(body: Data, credential: DeviceCredential) async throws(HubError) -> Data {
        let request: PollRequest
        do {
            request = try WireJSON.decode(PollRequest.self, from: body)
        } catch {
            metrics.rejectedPolls.add(1, ordering: .relaxed)
            throw HubError.malformed(WireJSON.describe(error))
        }
        return try await poll(
            request.withoutEnvelopes, requestHash: Credentials.hash(bytes: body), credential: credential)
    }

    /// Handles one decoded physical request authenticated by its `Authorization` header; see
    /// ``poll(_:requestHash:credential:sequenced:)``.
    public func poll(
        _ request: PollRequest, requestHash: String, authorization: String?, sequenced: Bool = true
    ) async throws(HubError) -> Data {
        try await poll(request, requestHash: requestHash, credential: .bearer(authorization), sequenced: sequenced)
    }

    /// Handles one physical request already decoded from another binding (SOAP, REST) and
    /// returns the JSON response body.
    ///
    /// - Parameters:
    ///   - request: the decoded poll.
    ///   - requestHash: hex SHA-256 of the request as received, to recognise a retry.
    ///   - credential: the bearer token or the verified client certificate's device.
    ///   - sequenced: false for the REST binding, whose calls carry no sequence number: no
    ///     sequence checks, no retry memo (retries are safe by ids instead).
    public func poll(
        _ request: PollRequest, requestHash: String, credential: DeviceCredential, sequenced: Bool = true
    ) async throws(HubError) -> Data {
        do {
            let response = try await handlePoll(
                request, requestHash: requestHash, credential: credential, sequenced: sequenced)
            metrics.polls.add(1, ordering: .relaxed)
            return response
        } catch {
            metrics.rejectedPolls.add(1, ordering: .relaxed)
            throw error
        }
    }

    private func handlePoll(
        _ request: PollRequest, requestHash: String, credential: DeviceCredential, sequenced: Bool
    ) async throws(HubError) -> Data {
        let receivedAt = clock.now()
        do {
            try request.validate(configuration.limits)
        } catch {
            throw HubError.malformed(error.description)
        }
        let device = request.device
        let session: DeviceSession
        do {
            guard let found = try await directory.session(device, now: receivedAt, burst: configuration.devicePollBurst)
            else { throw HubError.unknownDevice(device) }
            session = found
        } catch {
            throw storeFailure(error)
        }
        try credential.authenticate(device, session: session, systemTenant: configuration.systemTenant)
        try admit(device, at: receivedAt)

        await lanes.enter(device)
        defer { lanes.leave(device) }

        if sequenced, let current = directory.snapshot(device) {
            if let memo = current.memo, memo.seq == request.seq {
                guard memo.requestHash == requestHash else {
                    throw HubError.sequenceConflict(
                        "sequence number \(request.seq) was already used for a different request",
                        lastSeq: current.lastSeq ?? memo.seq
                    )
                }
                metrics.replayedPolls.add(1, ordering: .relaxed)
                noteContact(device, request, at: receivedAt)
                presence.expect(device, by: receivedAt.adding(seconds: configuration.pollInterval))
                return memo.response
            }
            if let last = current.lastSeq, request.seq <= last {
                throw HubError.sequenceConflict(
                    "sequence number \(request.seq) is not above \(last), the last one processed", lastSeq: last
                )
            }
        }
        noteContact(device, request, at: receivedAt)
        if sequenced { directory.update(device) { $0.lastSeq = request.seq } }
        if let sample = request.clockSample { noteClock(device, sample) }
        // Status values and readings feed the alarm rules.
        var alarmInputs: [[String: JSONValue]] = request.presence?.status.map { [$0] } ?? []
        for item in request.uplink where item.kind == .reading {
            if case .object(let values) = item.data { alarmInputs.append(values) }
        }
        if !alarmInputs.isEmpty { await evaluateAlarms(device: device, values: alarmInputs, at: receivedAt) }
        // The power applications take their inputs before the exchange is answered: a store
        // failure here fails the poll, so the device sends the items again.
        do {
            try await ingestPower(device: device, request: request, at: receivedAt)
        } catch {
            throw storeFailure(error)
        }

        do {
            let context = PollContext(
                request: request, requestHash: requestHash, receivedAt: receivedAt,
                accept: min(request.accept, configuration.limits.maxAccept),
                route: try await route(request.requests, from: device, now: receivedAt), sequenced: sequenced
            )
            return try await answer(context)
        } catch {
            // The request's writes rolled back; forget its sequence number so a retry is processed.
            if sequenced {
                directory.update(device) { session in
                    if session.lastSeq == request.seq { session.lastSeq = session.memo?.seq }
                }
            }
            throw storeFailure(error)
        }
    }

    /// The parts of a poll the answer is built from.
    private struct PollContext: Sendable {
        var request: PollRequest
        var requestHash: String
        var receivedAt: Timestamp
        var accept: Int
        /// The checked peer requests (rendezvous) of the poll.
        var route: RoutePlan
        /// Whether the poll has a sequence number to check and a memo to keep.
        var sequenced: Bool
        var device: String { request.device }
    }

    /// Stores what the request carries, then answers with work, holding a long-poll when
    /// there is none yet.
    private func answer(_ context: PollContext) async throws -> Data {
        var stored: [String] = []
        if !context.request.carriesNoData {
            let sent = try await exchange(context, accept: context.accept)
            // A poll that sent peer requests is answered at once, with the hub's answer to each.
            if sent.dispatched || context.request.wait <= 0 || context.accept == 0 || !context.request.requests.isEmpty
            {
                return final(context, sent)
            }
            // Held below; the answer sent at the end carries the cancel notices instead.
            stored = sent.stored
        }
        guard context.accept > 0 else {
            let work = try await pendingWork(context.device, now: clock.now())
            if work.repliesDue { return try await dispatchOnly(context, stored: stored) }
            return remember(context, empty(context, stored: stored, more: work.dueNow))
        }

        let wantsWait = context.request.wait > 0
        var wakeup = Wakeup()
        var holding = wantsWait && lanes.hold(context.device, wakeup)
        defer { if holding { lanes.release(context.device) } }
        // While the poll is held the device is connected: present, with no deadline running.
        let counted = holding
        if counted { publish([presence.connected(context.device, at: clock.now())].compactMap { $0 }) }
        defer {
            if counted {
                presence.disconnected(
                    context.device, fallback: clock.now().adding(seconds: configuration.pollInterval))
            }
        }
        if wantsWait && !holding {
            // A newer poll of this device is already queued: it takes the work.
            metrics.supersededPolls.add(1, ordering: .relaxed)
            return remember(context, empty(context, stored: stored, superseded: true))
        }

        var work = try await pendingWork(context.device, now: clock.now())
        if work.anythingDue { return try await dispatchOnly(context, stored: stored) }
        guard holding, !mustAnswerNow(context) else {
            return remember(context, empty(context, stored: stored))
        }

        if metrics.heldPolls.add(1, ordering: .relaxed).newValue > configuration.maxHeldPolls {
            metrics.heldPolls.subtract(1, ordering: .relaxed)
            throw HubError.unavailable("too many held polls", retryAfter: 5)
        }
        defer { metrics.heldPolls.subtract(1, ordering: .relaxed) }
        let deadline = context.receivedAt.adding(seconds: min(context.request.wait, configuration.maxWait))
        while true {
            let now = clock.now()
            var limit = deadline.seconds(since: now)
            if let next = work.nextNotBefore {
                limit = min(limit, next.adding(seconds: -configuration.dispatchLead).seconds(since: now))
            }
            let current = wakeup
            let reason = await withGracefulShutdownHandler {
                await current.wait(seconds: max(0, limit))
            } onGracefulShutdown: {
                current.signal(.shutdown)
            }
            switch reason {
            case .superseded:
                metrics.supersededPolls.add(1, ordering: .relaxed)
                return remember(context, empty(context, stored: stored, superseded: true))
            case .shutdown:
                return remember(context, empty(context, stored: stored))
            case .work, .timeout:
                // Re-arm before looking at the queue, as on the first hold: work submitted
                // while we look then signals the new wake-up instead of being missed.
                wakeup = Wakeup()
                lanes.release(context.device)
                holding = lanes.hold(context.device, wakeup)
                if !holding {
                    metrics.supersededPolls.add(1, ordering: .relaxed)
                    return remember(context, empty(context, stored: stored, superseded: true))
                }
                let now = clock.now()
                work = try await pendingWork(context.device, now: now)
                if work.anythingDue { return try await dispatchOnly(context, stored: stored) }
                if mustAnswerNow(context) || now >= deadline {
                    return remember(context, empty(context, stored: stored))
                }
            }
        }
    }

    /// Dispatches work for a poll whose data (if any) was already stored.
    private func dispatchOnly(_ context: PollContext, stored: [String]) async throws -> Data {
        var dispatchContext = context
        dispatchContext.request.acks = []
        dispatchContext.request.results = []
        dispatchContext.request.uplink = []
        dispatchContext.request.requests = []
        dispatchContext.request.replyAcks = []
        dispatchContext.route = RoutePlan()
        return final(context, try await exchange(dispatchContext, accept: context.accept, alreadyStored: stored))
    }

    /// What one store exchange produced.
    private struct Sent {
        var response: Data
        var dispatched: Bool
        var stored: [String]
        var cancels: [String]
    }

    /// Marks an exchange's response as the one sent: its cancel notices are delivered.
    private func final(_ context: PollContext, _ sent: Sent) -> Data {
        if !sent.cancels.isEmpty {
            let delivered = Set(sent.cancels)
            directory.update(context.device) { $0.pendingCancels.removeAll(where: delivered.contains) }
        }
        return sent.response
    }

    /// Runs one store exchange and builds (and remembers) the response.
    ///
    /// Transitions carry the time of the exchange, not of the poll's arrival: a command
    /// dispatched to a poll held for a while gets its full lease from the moment it is sent.
    private func exchange(_ context: PollContext, accept: Int, alreadyStored: [String] = []) async throws -> Sent {
        var input = ExchangeInput(
            device: context.device, now: clock.now(), uplink: context.request.uplink,
            acks: context.request.acks, results: context.request.results, accept: accept,
            leaseSeconds: configuration.leaseSeconds, dispatchLeadSeconds: configuration.dispatchLead
        )
        input.routed = context.route.accepted
        input.available = presence.isAvailable(context.device)
        input.replyAcks = context.request.replyAcks
        input.replyLimit = configuration.maxRepliesPerPoll
        let cancels = directory.snapshot(context.device)?.pendingCancels ?? []
        let stored = alreadyStored + context.request.uplink.map(\.id)
        let builder = ResponseBuilder(hub: self, context: context, stored: stored, cancels: cancels)
        let outcome = try await store.exchange(input) { outcome in
            guard context.sequenced else { return nil }
            return ExchangeMemo(
                seq: context.request.seq, requestHash: context.requestHash, response: try builder.build(outcome))
        }
        // Send exactly the bytes stored as the memo. (When this poll is then held and ends
        // empty, the answer sent differs from the memo only in its timestamps.)
        let response = try outcome.memo?.response ?? builder.build(outcome)
        _ = remember(context, response)
        directory.forgetWork(context.device)
        record(outcome, context)
        await settleCampaigns(outcome.plan.updated)
        return Sent(
            response: response, dispatched: !outcome.plan.dispatched.isEmpty || !outcome.replies.isEmpty,
            stored: stored, cancels: cancels)
    }

    /// Builds response bodies for one poll; a value type so the store may call it inside its
    /// transaction.
    private struct ResponseBuilder: Sendable {
        let hub: Hub
        let context: PollContext
        let stored: [String]
        let cancels: [String]

        /// Encodes the response; `sentAt` is read here, as late as possible before sending.
        func build(_ outcome: ExchangeOutcome) throws -> Data {
            var answer = hub.response(
                context, stored: stored, requests: outcome.plan.dispatched.map(\.logicalRequest), cancels: cancels,
                more: outcome.plan.more || outcome.moreReplies
            )
            if !context.request.requests.isEmpty {
                answer.routed = hub.routedAnswers(context.request.requests, plan: context.route, stored: outcome.routed)
            }
            let replies = outcome.replies.compactMap(\.peerReply)
            if !replies.isEmpty { answer.replies = replies }
            return try WireJSON.encode(answer)
        }
    }

    /// The one place a poll response is assembled: `sentAt` is read here, as late as possible,
    /// and `nextPollAfter` is 0 only when more work waits for a device that takes work.
    ///
    /// It also states the presence contract (`contactBy`) and arms the device's deadline.
    private func response(
        _ context: PollContext, stored: [String], requests: [LogicalRequest] = [], cancels: [String], more: Bool,
        superseded: Bool? = nil
    ) -> PollResponse {
        let sentAt = clock.now()
        let nextPollAfter = more && context.accept > 0 ? 0 : jitteredInterval()
        var answer = PollResponse(
            seq: context.request.seq, receivedAt: context.receivedAt, sentAt: sentAt, stored: stored,
            requests: requests, cancel: cancels, more: more, nextPollAfter: nextPollAfter,
            ackWithin: configuration.leaseSeconds, superseded: superseded
        )
        let contactBy = sentAt.adding(seconds: nextPollAfter)
        answer.contactBy = contactBy
        if context.sequenced {
            directory.update(context.device) { session in
                session.lastExchangeTimes = (context.request.seq, context.request.sentAt, context.receivedAt, sentAt)
            }
        }
        presence.expect(context.device, by: contactBy)
        if presence.refreshRequested(context.device, declared: context.request.presence != nil) {
            answer.refreshPresence = true
        }
        return answer
    }

    /// Whether a held poll must be answered without work: cancel notices wait, or the hub
    /// wants the device's presence.
    ///
    /// A refresh does not end an unsequenced hold (a socket's push poll): that poll cannot carry
    /// the declaration, so it would be answered again and again.
    private func mustAnswerNow(_ context: PollContext) -> Bool {
        hasPendingCancels(context.device)
            || (context.sequenced && presence.refreshRequested(context.device, declared: false))
    }

    /// Whether cancel notices wait to be sent to the device.
    private func hasPendingCancels(_ device: String) -> Bool {
        directory.snapshot(device).map { !$0.pendingCancels.isEmpty } ?? false
    }

    /// An answer with no new work.
    ///
    /// A superseded answer carries no cancel notices: the device may ignore it, so they wait for
    /// the newer poll's answer.
    private func empty(_ context: PollContext, stored: [String], superseded: Bool? = nil, more: Bool = false) -> Data {
        let cancels =
            superseded == true
            ? []
            : directory.update(context.device) { session -> [String] in
                defer { session.pendingCancels = [] }
                return session.pendingCancels
            } ?? []
        if stored.isEmpty && cancels.isEmpty && context.request.carriesNoData {
            metrics.emptyPolls.add(1, ordering: .relaxed)
        }
        let answer = response(context, stored: stored, cancels: cancels, more: more, superseded: superseded)
        return (try? WireJSON.encode(answer)) ?? Data("{}".utf8)
    }

    /// Keeps the response in memory for a retried request.
    private func remember(_ context: PollContext, _ response: Data) -> Data {
        guard context.sequenced else { return response }
        directory.update(context.device) { session in
            session.memo = ExchangeMemo(seq: context.request.seq, requestHash: context.requestHash, response: response)
        }
        return response
    }

    /// The hub-side effects of a committed exchange: metrics and events.
    private func record(_ outcome: ExchangeOutcome, _ context: PollContext) {
        metrics.dispatched.add(UInt64(outcome.plan.dispatched.count), ordering: .relaxed)
        metrics.results.add(UInt64(context.request.results.count), ordering: .relaxed)
        metrics.uplinkStored.add(UInt64(outcome.newlyStored.count), ordering: .relaxed)
        publish(outcome.plan.transitions)
        notifyRendezvous(created: outcome.routed, updated: outcome.plan.updated)
        if !outcome.newlyStored.isEmpty {
            let fresh = Set(outcome.newlyStored)
            for item in context.request.uplink where fresh.contains(item.id) {
                events.publish(
                    .uplink, at: context.receivedAt, device: context.device,
                    detail: "\(item.kind.rawValue) \(item.name)",
                    data: item.data
                )
            }
        }
    }

    /// Whether the device has work now, answered from memory when the hub knows.
    func pendingWork(_ device: String, now: Timestamp) async throws -> PendingWork {
        let horizon = now.adding(seconds: configuration.dispatchLead)
        let available = presence.isAvailable(device)
        guard let session = directory.snapshot(device) else {
            return try await store.pendingWork(device: device, horizon: horizon, now: now).due(available: available)
        }
        if case .idle(let until, let verifiedAt) = session.workHint,
            now.seconds(since: verifiedAt) < configuration.workHintTTL,
            until.map({ $0 > horizon }) ?? true
        {
            return PendingWork(dueNow: false, nextNotBefore: until)
        }
        let work = try await store.pendingWork(device: device, horizon: horizon, now: now).due(available: available)
        if !work.anythingDue {
            directory.noteIdle(device, until: work.nextNotBefore, verifiedAt: now, version: session.workVersion)
        }
        return work
    }

    /// Updates last-seen and presence in memory, and announces a first contact.
    private func noteContact(_ device: String, _ request: PollRequest, at now: Timestamp) {
        let first =
            directory.update(device) { session -> Bool in
                session.lastSeenAt = now
                session.unflushedSeen = now
                if let presence = request.presence { session.presence = presence }
                let first = !session.announced
                session.announced = true
                return first
            } ?? false
        if first { events.publish(.deviceFirstSeen, at: now, device: device) }
        if let transition = presence.contact(device, at: now, declaring: request.presence) {
            publish([transition])
            // Availability may have changed: whenAvailable commands may be due now.
            directory.noteWork(device)
        }
    }

    /// Completes the four timestamps of the device's previous exchange with its receive time and
    /// keeps its clock offset (device minus hub) and delay, NTP-style.
    private func noteClock(_ device: String, _ sample: ClockSample) {
        directory.update(device) { session in
            guard let times = session.lastExchangeTimes, times.seq == sample.seq else { return }
            let hubMinusDevice = (times.t1.seconds(since: times.t0) + times.t2.seconds(since: sample.receivedAt)) / 2
            let delay = sample.receivedAt.seconds(since: times.t0) - times.t2.seconds(since: times.t1)
            guard delay >= 0, delay < 60 else { return }  // a sample from a confused clock
            session.clock = (offset: -hubMinusDevice, delay: delay, at: times.t1)
            noteClockOffset(device, offset: -hubMinusDevice, at: times.t1)
        }
    }

    /// Applies the per-device rate limit (a token bucket in memory).
    private func admit(_ device: String, at now: Timestamp) throws(HubError) {
        let rate = configuration.devicePollRate
        guard rate > 0 else { return }
        let burst = configuration.devicePollBurst
        let retryAfter: Double? =
            directory.update(device) { session in
                let elapsed = max(0, now.seconds(since: session.tokensAt))
                session.tokens = min(burst, session.tokens + elapsed * rate)
                session.tokensAt = now
                guard session.tokens >= 1 else { return (1 - session.tokens) / rate }
                session.tokens -= 1
                return nil
            } ?? nil
        if let retryAfter { throw HubError.rateLimited(retryAfter: max(1, retryAfter)) }
    }

    /// `pollInterval` with random jitter, rounded to milliseconds.
    func jitteredInterval() -> Double {
        let base = configuration.pollInterval
        let spread = base * configuration.pollJitter
        let value = base + Double.random(in: -spread...spread)
        return (max(0, value) * 1000).rounded() / 1000
    }
}
