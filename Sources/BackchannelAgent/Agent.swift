public import BackchannelProtocol
public import BackchannelSecurity
import Foundation
public import Logging

/// The device side of the back channel: polls the hub, runs commands, delivers readings.
///
/// - Readings and events go into a durable outbox first and leave it only when the hub says
///   they are stored, so they survive hub outages and device restarts and are stored once.
/// - Every received command is recorded in the execution ledger before it runs; a redelivered
///   command is answered with its earlier result and never runs twice.
/// - A failed exchange is retried with the same sequence number and the same bytes, so the
///   hub can answer it from its memo; errors back off exponentially with jitter and honour
///   `Retry-After`.
public actor Agent {
    /// The agent's settings.
    public nonisolated let configuration: AgentConfiguration
    /// Clock offset to the hub, estimated from each exchange.
    public nonisolated let clock: ClockSync
    nonisolated let client: HubClient
    let outbox: DurableOutbox
    let mailbox: PeerMailbox
    /// Rendezvous replies stored and not yet acknowledged to the hub.
    var pendingReplyAcks: [String] = []
    /// Callers waiting for the reply to a peer request, by ref.
    private var replyWaiters: [String: [UInt64: CheckedContinuation<PeerReply?, Never>]] = [:]
    private var nextWaiter: UInt64 = 0
    let ledger: ExecutionLedger
    /// The trust policy and nonce ledger; nil when the configuration has no trust policy.
    let verifier: CommandVerifier?
    private let sequence: SequenceCounter
    let logger: Logger
    private var handlers: [String: CommandHandler] = [:]
    var pendingAcks: [String] = []
    var resend: [String: LogicalResult] = [:]
    private var running: [String: Task<Void, Never>] = [:]
    var inFlight: InFlight?
    private var current: Outstanding?
    private var abandoned: [Int64: InFlight] = [:]
    var localActivity = false
    /// The hub answered 413: send fewer uplink items in the next poll.
    private var shrinkUplink = false
    private var presence: PresenceReport?
    /// The receive time of the last response to a first attempt, reported in the next poll.
    private var clockSample: ClockSample?
    var presenceDirty: Bool
    private var recovered = false
    nonisolated let signal = AgentSignal()
    /// The hub's default limits: what the agent checks before it queues anything.
    private let limits = PollLimits()
    /// The WebSocket channel's state: a frame sent and not yet answered, and when it was sent.
    var socketAwaiting = false
    var socketSentAt: Timestamp?
    var socketHello = false
    /// Counters for tests and status output.
    public internal(set) var stats = AgentStats()

    /// A physical request sent and not yet answered; a retry resends exactly these bytes.
    struct InFlight {
        var seq: Int64
        var body: Data
        var wait: Double
        var acks: [String]
        var resultIDs: [String]
        var uplinkIDs: [String]
        var peerRefs: [String] = []
        var replyAcks: [String] = []
        var presence: PresenceReport?
        var attempts: Int
    }

    /// Opens the agent's state directory.
    ///
    /// - Parameters:
    ///   - configuration: hub, identity and state directory.
    ///   - client: the HTTP client (a simulator fleet passes its own); nil uses ``HubClient/shared``.
    public init(configuration: AgentConfiguration, client: HubClient? = nil, logger: Logger? = nil) throws {
        self.configuration = configuration
        self.clock = ClockSync(deviceClock: configuration.deviceClock)
        self.client = client ?? .shared
        let directory = configuration.stateDirectory
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        self.outbox = try DurableOutbox(directory: directory)
        self.mailbox = try PeerMailbox(directory: directory)
        self.ledger = try ExecutionLedger(directory: directory)
        self.verifier = try configuration.trustPolicy.map { try CommandVerifier(policy: $0, directory: directory) }
        self.sequence = try SequenceCounter(url: directory.appendingPathComponent("sequence"))
        var logger = logger ?? Logger(label: "backchannel.agent")
        logger[metadataKey: "backchannel.device"] = "\(configuration.deviceID)"
        self.logger = logger
        self.presence = configuration.presence
        self.presenceDirty = configuration.presence != nil
        // Forget the nonces of commands that expired (device clock); recording prunes from
        // then on, at most every `pruneInterval`.
        do {
            try verifier?.ledger.prune(now: clock.deviceNow())
        } catch {
            logger.error("cannot prune the nonce ledger", metadata: ["error": "\(error)"])
        }
    }

    // MARK: Public API

    /// Registers the handler for a command name, replacing any earlier one.
    public func register(_ name: String, _ handler: @escaping CommandHandler) {
        handlers[name] = handler
    }

    /// Queues uplink items durably and asks for a poll at once.
    ///
    /// Throws ``ValidationFailure`` for an item the hub would refuse (bad id or name, data too
    /// deep, too long or too large): it is never queued, so it cannot block later ones.
    public func send(_ items: [UplinkItem]) throws {
        for (index, item) in items.enumerated() {
            try item.validate(limits, field: "items[\(index)]")
            let size = try WireJSON.encode(item).count
            guard size <= configuration.maxItemBytes else {
                throw ValidationFailure(
                    field: "items[\(index)]", reason: "\(size) bytes exceed \(configuration.maxItemBytes)")
            }
        }
        try outbox.add(items)
        activity()
    }

    /// Queues one reading or event with a fresh id, timestamped on the hub-corrected clock.
    @discardableResult
    public func emit(_ kind: UplinkKind, name: String, data: JSONValue) throws -> String {
        let id = MessageID.make(at: clock.deviceNow())
        try send([UplinkItem(id: id, kind: kind, name: name, at: clock.hubNow(), data: data)])
        return id
    }

    /// Declares a new presence, sent with the next poll (and again until a hub accepts it).
    public func declare(_ presence: PresenceReport) throws(ValidationFailure) {
        try presence.validate(limits)
        self.presence = presence
        presenceDirty = true
        activity()
    }

    /// Sends a logical request to another device through the hub (rendezvous) and returns its
    /// `ref`. The request is durable when this returns and is sent until a hub answers it;
    /// ``reply(to:within:)`` waits for the outcome.
    ///
    /// With a signing key (`signingKey`, else ``AgentConfiguration/signingKey``) the request is
    /// signed end to end: the signature covers `ref` as the id, the target, name, args and an
    /// absolute expiry (now + `ttl`, default a day) that replaces `ttl`.
    ///
    /// Throws ``ValidationFailure`` for a request the hub would refuse.
    @discardableResult
    public func request(
        _ name: String, to device: String, args: JSONValue = .object([:]), ttl: Double? = nil,
        onUnavailable: UnavailablePolicy = .hold, ref: String? = nil, signingKey: SigningKey? = nil
    ) throws -> String {
        var request = PeerRequest(
            ref: ref ?? MessageID.make(at: clock.deviceNow()), to: "device:\(device)", name: name, args: args, ttl: ttl,
            onUnavailable: onUnavailable
        )
        if let key = signingKey ?? configuration.signingKey {
            // The device's own clock, as the peer checks it against its own.
            let issuedAt = clock.deviceNow()
            let expiresAt = issuedAt.adding(seconds: ttl ?? 24 * 3600)
            request.ttl = nil
            request.expiresAt = expiresAt
            request.signature = CommandSigner(key: key).sign(
                kind: .peer, id: request.ref, target: device, name: name, args: args, expiresAt: expiresAt,
                issuedAt: issuedAt)
        }
        try request.validate(limits)
        try mailbox.add(request)
        activity()
        return request.ref
    }

    /// Waits up to `seconds` for the reply to the peer request `ref`; nil on timeout. A hub's
    /// rejection is a reply in state `REJECTED`. The reply stays available until ``consumeReply(_:)``.
    public func reply(to ref: String, within seconds: Double) async -> PeerReply? {
        if let reply = mailbox.reply(ref: ref) { return reply }
        guard seconds > 0 else { return nil }
        nextWaiter &+= 1
        let waiter = nextWaiter
        return await withCheckedContinuation { continuation in
            replyWaiters[ref, default: [:]][waiter] = continuation
            Task {
                try? await Task.sleep(for: .milliseconds(Int64(seconds * 1000)))
                self.endWait(ref: ref, waiter: waiter)
            }
        }
    }

    /// Forgets a reply the caller has dealt with.
    public func consumeReply(_ ref: String) throws { try mailbox.consume(refs: [ref]) }

    private func endWait(ref: String, waiter: UInt64) {
        guard let continuation = replyWaiters[ref]?.removeValue(forKey: waiter) else { return }
        if replyWaiters[ref]?.isEmpty == true { replyWaiters.removeValue(forKey: ref) }
        continuation.resume(returning: mailbox.reply(ref: ref))
    }

    private func deliverReplies() {
        for ref in Array(replyWaiters.keys) {
            guard let reply = mailbox.reply(ref: ref), let waiters = replyWaiters.removeValue(forKey: ref) else {
                continue
            }
            for continuation in waiters.values { continuation.resume(returning: reply) }
        }
    }

    /// Asks the poll loop to poll now, superseding a held long-poll.
    public func pollNow() { activity() }

    /// The HTTP client the agent polls with (for other downloads over the same outbound channel).
    public nonisolated var hubClient: HubClient { client }

    /// Uplink items not yet confirmed stored by the hub.
    public var outboxCount: Int { outbox.count }

    /// Commands running or waiting for their `notBefore`.
    public var runningCount: Int { running.count }

    /// What the ledger knows about a request id.
    public func ledgerEntry(_ id: String) -> ExecutionLedger.Entry? { ledger.entry(for: id) }

    // MARK: Poll loop

    /// Polls until the task is cancelled.
    ///
    /// A long-poll is held at the hub while the device has nothing to say. When the device
    /// has something to send (a result, a reading, a presence change) it sends a new poll at
    /// once; the hub answers the held one immediately, so nothing waits behind it.
    public func run() async {
        recoverIfNeeded()
        if configuration.channel == .webSocket {
            await runSocket()
            await stopRunningCommands()
            return
        }
        let backoff = Backoff(base: configuration.backoffBase, max: configuration.backoffMax)
        var failures = 0
        await withDiscardingTaskGroup { group in
            while !Task.isCancelled {
                var next: InFlight
                do {
                    next = try inFlight ?? prepare()
                } catch {
                    failures += 1
                    await pause(backoff.delay(failures: failures), after: "\(error)", failures: failures)
                    continue
                }
                // Counted before the copy is taken: `handle` uses it to keep only first attempts'
                // timestamps for clock synchronisation (a retry's t0 is not the original's).
                next.attempts += 1
                let pending = next
                inFlight = pending
                current = Outstanding(seq: pending.seq, reply: nil)
                localActivity = false
                let t0 = clock.deviceNow()
                stats.polls += 1
                group.addTask { [client, configuration] in
                    let reply: Result<HubClient.Reply, any Error>
                    do {
                        reply = .success(
                            try await client.poll(
                                hubURL: configuration.hubURL, token: configuration.token, body: pending.body,
                                timeout: pending.wait + configuration.requestTimeout, encoding: configuration.encoding,
                                tls: configuration.tls
                            )
                        )
                    } catch {
                        reply = .failure(error)
                    }
                    await self.completed(pending, t0: t0, reply: reply)
                }
                // Wait for the reply, or for local activity that should supersede a long-poll.
                var reply: Result<HubClient.Reply, any Error>?
                while reply == nil && !Task.isCancelled {
                    _ = await signal.wait(seconds: 3600)
                    reply = current?.reply
                    if reply == nil, localActivity, pending.wait > 0 {
                        abandoned[pending.seq] = pending
                        inFlight = nil
                        break
                    }
                }
                current = nil
                guard let reply else { continue }
                do {
                    let delay = try handle(reply.get(), for: pending, t0: t0)
                    if failures > 0 {
                        logger.info("hub reachable again", metadata: ["backchannel.failures": "\(failures)"])
                    }
                    failures = 0
                    if delay > 0 && !localActivity { _ = await signal.wait(seconds: delay) }
                } catch let error as AgentError {
                    failures += 1
                    await pause(
                        backoff.delay(failures: failures, retryAfter: error.retryAfter), after: error.description,
                        failures: failures)
                } catch {
                    failures += 1
                    await pause(backoff.delay(failures: failures), after: "\(error)", failures: failures)
                }
            }
            group.cancelAll()
        }
        await stopRunningCommands()
    }

    /// Stops commands still running; each is left "started" in the ledger, so the next start
    /// reports it as interrupted rather than running it again.
    private func stopRunningCommands() async {
        let stopping = Array(running.values)
        for task in stopping { task.cancel() }
        for task in stopping { await task.value }
    }

    /// The poll the loop waits for, and its reply once it arrives.
    private struct Outstanding {
        var seq: Int64
        var reply: Result<HubClient.Reply, any Error>?
    }

    /// Called by a request task when its reply arrives.
    private func completed(_ sent: InFlight, t0: Timestamp, reply: Result<HubClient.Reply, any Error>) {
        if current?.seq == sent.seq {
            current?.reply = reply
            signal.signal()
            return
        }
        // A long-poll this device superseded: keep what it confirms and any work it carries,
        // and acknowledge that work at once rather than when the current long-poll returns.
        guard abandoned.removeValue(forKey: sent.seq) != nil, case .success(.ok(let response)) = reply else { return }
        do {
            _ = try accept(response, for: sent)
            if !response.requests.isEmpty || !response.cancel.isEmpty { activity() }
        } catch {
            logger.warning("could not record a superseded poll's reply", metadata: ["error": "\(error)"])
        }
    }

    func pause(_ seconds: Double, after failure: String, failures: Int) async {
        stats.failures += 1
        stats.lastError = failure
        log(failure: failure, failures: failures, pause: seconds)
        try? await Task.sleep(for: .milliseconds(Int64(seconds * 1000)))
    }

    /// Notes local activity: something new to send, so a held long-poll should give way.
    private func activity() {
        localActivity = true
        signal.signal()
    }

    private func log(failure: String, failures: Int, pause: Double) {
        let metadata: Logger.Metadata = [
            "backchannel.error": "\(failure)", "backchannel.failures": "\(failures)",
            "backchannel.retry_in": "\(String(format: "%.2f", pause))",
        ]
        if failures == 1 {
            logger.warning("poll failed; retrying", metadata: metadata)
        } else {
            logger.debug("poll failed again", metadata: metadata)
        }
    }

    /// Runs one physical exchange without long-poll supersession (for tools and tests) and
    /// returns the seconds to wait before the next one.
    ///
    /// Throws ``AgentError`` when the hub answers with an error, and transport errors as they come.
    public func exchange() async throws -> Double {
        recoverIfNeeded()
        var pending = try inFlight ?? prepare()
        pending.attempts += 1
        inFlight = pending
        let t0 = clock.deviceNow()
        stats.polls += 1
        let reply = try await client.poll(
            hubURL: configuration.hubURL, token: configuration.token, body: pending.body,
            timeout: pending.wait + configuration.requestTimeout, encoding: configuration.encoding,
            tls: configuration.tls
        )
        return try handle(reply, for: pending, t0: t0)
    }

    /// Applies the hub's reply to the current poll.
    func handle(_ reply: HubClient.Reply, for pending: InFlight, t0: Timestamp) throws -> Double {
        let t3 = clock.deviceNow()
        switch reply {
        case .ok(let response):
            inFlight = nil
            guard response.seq == pending.seq else {
                throw AgentError(
                    status: 200, code: "bad_response", message: "response for seq \(response.seq), sent \(pending.seq)")
            }
            if pending.attempts == 1 {
                clock.add(t0: t0, t1: response.receivedAt, t2: response.sentAt, t3: t3)
                clockSample = ClockSample(seq: pending.seq, receivedAt: t3)
            }
            return try accept(response, for: pending)
        case .failure(let status, let body, let retryAfter):
            let error = AgentError(
                status: status, code: body?.code ?? "http_\(status)", message: body?.message ?? "",
                retryAfter: retryAfter ?? body?.retryAfter
            )
            switch status {
            case 409 where body?.code == ErrorCode.sequenceConflict:
                // The hub has seen a higher sequence number (the device lost its counter): jump past it.
                inFlight = nil
                try sequence.advance(past: body?.lastSeq ?? pending.seq)
                logger.warning(
                    "sequence number behind the hub's; advanced",
                    metadata: ["backchannel.seq": "\(body?.lastSeq ?? -1)"])
                return 0
            case 400, 413:
                // Rejected before anything was stored: rebuild, smaller, next time, without the
                // item the hub named, so one bad item cannot block the rest.
                inFlight = nil
                if status == 413 { shrinkUplink = true }
                if status == 400 { try quarantine(refusal: body?.message ?? "", in: pending) }
                throw error
            default:
                // 429 and 503 were not processed; other failures may have been. Either way the
                // same bytes are sent again, which the hub answers from its memo if needed.
                throw error
            }
        }
    }

    /// Moves the item a 400 names (`uplink[i]…`, `results[i]…`, `presence…`) out of the way:
    /// into `dead-letter.jsonl` in the state directory, for a person to look at.
    private func quarantine(refusal message: String, in sent: InFlight) throws {
        func index(after prefix: String) -> Int? {
            guard message.hasPrefix(prefix) else { return nil }
            return Int(message.dropFirst(prefix.count).prefix { $0.isNumber })
        }
        var dead: [String: JSONValue] = ["reason": .string(message), "at": .string(clock.deviceNow().description)]
        if let i = index(after: "uplink["), i < sent.uplinkIDs.count {
            let id = sent.uplinkIDs[i]
            if let item = outbox.peek(max: outbox.count).first(where: { $0.id == id }) {
                dead["uplink"] = WireJSON.value(item) ?? .string(id)
            }
            try outbox.markDelivered([id])
        } else if let i = index(after: "results["), i < sent.resultIDs.count {
            let id = sent.resultIDs[i]
            dead["result"] = .string(id)
            resend.removeValue(forKey: id)
            try ledger.markReported([id])
        } else if let i = index(after: "requests["), i < sent.peerRefs.count {
            let ref = sent.peerRefs[i]
            dead["request"] = .string(ref)
            try mailbox.markRouted([
                RoutedRequest(ref: ref, state: .rejected, code: OutcomeCode.invalidRequest, detail: message)
            ])
            deliverReplies()
        } else if message.hasPrefix("presence") {
            dead["presence"] = .bool(true)
            presenceDirty = false
        } else {
            return
        }
        logger.error(
            "the hub refused an item; moved to dead-letter.jsonl", metadata: ["backchannel.reason": "\(message)"])
        stats.deadLettered += 1
        var line = try WireJSON.encode(JSONValue.object(dead))
        line.append(0x0A)
        let url = configuration.stateDirectory.appendingPathComponent("dead-letter.jsonl")
        if !FileManager.default.fileExists(atPath: url.path) {
            FileManager.default.createFile(atPath: url.path, contents: nil)
        }
        let handle = try FileHandle(forWritingTo: url)
        defer { try? handle.close() }
        try handle.seekToEnd()
        try handle.write(contentsOf: line)
        try handle.synchronize()
    }

    /// Builds the next physical request from the acks, results, outbox and presence.
    func prepare() throws -> InFlight {
        var seenResults = Set<String>()
        let results = Array(
            (ledger.unreported() + resend.values.sorted { $0.id < $1.id })
                .filter { seenResults.insert($0.id).inserted }
                .prefix(configuration.maxResultsPerPoll)
        )
        let acks = Array(pendingAcks.prefix(1000 - results.count))
        var uplinkLimit = max(0, min(configuration.maxUplinkPerPoll, 1000 - results.count - acks.count))
        if shrinkUplink {
            uplinkLimit = max(1, uplinkLimit / 4)
            shrinkUplink = false
        }
        let replyAcks = Array(pendingReplyAcks.prefix(min(100, max(0, 1000 - results.count - acks.count))))
        uplinkLimit = max(0, min(uplinkLimit, 1000 - results.count - acks.count - replyAcks.count))
        let uplink = outbox.peek(max: uplinkLimit)
        // Everything in one poll stays within the hub's 1000-message limit.
        let room = 1000 - results.count - acks.count - replyAcks.count - uplink.count
        let peers = mailbox.pending(max: max(0, min(100, room)))
        let accept = max(0, configuration.concurrency - running.count)
        // Results and acks may ride a long-poll (one round trip returns them and fetches the
        // next command); readings and peer requests are sent on a short poll so they are
        // confirmed at once.
        // The first exchange is short, so the clock offset is known before anything is held.
        let synced = clock.estimate != nil
        let wait = accept > 0 && uplink.isEmpty && peers.isEmpty && synced ? configuration.longPoll : 0
        let seq = try sequence.next()
        var request = PollRequest(
            device: configuration.deviceID, seq: seq, sentAt: clock.deviceNow(), acks: acks, results: results,
            uplink: uplink, requests: peers, replyAcks: replyAcks, presence: presenceDirty ? presence : nil,
            accept: accept, wait: wait
        )
        request.clockSample = clockSample
        let body: Data
        do {
            body = configuration.encoding == .soap ? SOAPCodec.encodePoll(request) : try WireJSON.encode(request)
        } catch {
            throw AgentError(status: 0, code: "encoding", message: "could not encode the poll: \(error)")
        }
        return InFlight(
            seq: seq, body: body, wait: wait, acks: acks, resultIDs: results.map(\.id), uplinkIDs: uplink.map(\.id),
            peerRefs: peers.map(\.ref), replyAcks: replyAcks, presence: request.presence, attempts: 0
        )
    }

    /// Applies a 200 response: confirms what the hub stored, takes the new requests.
    func accept(_ response: PollResponse, for sent: InFlight) throws -> Double {
        try outbox.markDelivered(response.stored)
        if !response.stored.isEmpty { configuration.onStored?(response.stored) }
        let reported = sent.resultIDs.filter { resend.removeValue(forKey: $0) == nil }
        try ledger.markReported(reported)
        let acked = Set(sent.acks)
        pendingAcks.removeAll { acked.contains($0) }
        let repliesAcked = Set(sent.replyAcks)
        pendingReplyAcks.removeAll { repliesAcked.contains($0) }
        try mailbox.markRouted(response.routed ?? [])
        if let replies = response.replies, !replies.isEmpty {
            // Durable before the hub is told it may stop delivering them.
            try mailbox.store(replies)
            for reply in replies where !pendingReplyAcks.contains(reply.id) { pendingReplyAcks.append(reply.id) }
        }
        deliverReplies()
        // Presence counts as declared only once a hub answered the poll that carried it.
        if let declared = sent.presence, declared == presence { presenceDirty = false }
        if response.refreshPresence == true {
            // The hub asks for the presence again: declare it (available, if never declared).
            if presence == nil { presence = PresenceReport(state: .available) }
            presenceDirty = true
        }
        stats.delivered += response.stored.count
        for id in response.cancel { cancelIfNotStarted(id) }
        for request in response.requests { try receive(request) }
        if response.superseded == true { stats.superseded += 1 }

        // More work waits; take it at once if there is room (a finishing command polls anyway).
        if response.more && running.count < configuration.concurrency { return 0 }
        if !response.requests.isEmpty {
            // Give quick commands a moment so their ack and result travel together.
            return 0.2
        }
        if !pendingAcks.isEmpty || !ledger.unreported().isEmpty || !resend.isEmpty || !outbox.isEmpty || presenceDirty
            || mailbox.hasPending || !pendingReplyAcks.isEmpty
        {
            return 0
        }
        if configuration.longPoll > 0 && running.count < configuration.concurrency { return 0 }
        return max(0.05, response.nextPollAfter)
    }

    /// Takes one delivered request: answers duplicates from the ledger, checks new ones against
    /// the trust policy (if any), and runs the accepted ones once.
    private func receive(_ request: LogicalRequest) throws {
        if !pendingAcks.contains(request.id) { pendingAcks.append(request.id) }
        switch ledger.entry(for: request.id) {
        case .finished(let result, let reported):
            stats.duplicates += 1
            // Not yet reported: it goes out with the unreported results anyway.
            if reported { resend[request.id] = replayAnswer(to: request, earlier: result) ?? result }
        case .received, .started:
            stats.duplicates += 1
        case nil:
            guard let acceptance = try admit(request) else { return }
            try ledger.recordReceived(request)
            // After the ledger: a crash in between leaves a received entry, whose nonce
            // recovery records again.
            try remember(acceptance)
            schedule(request)
        }
    }

    private func schedule(_ request: LogicalRequest) {
        let signed = verifier != nil && request.signature != nil
        let skew = verifier?.policy.clockSkew
        running[request.id] = Task { [clock] in
            // Checked again after each sleep: either clock may have moved meanwhile.
            while true {
                let wait = Self.startDelay(
                    notBefore: request.notBefore, signed: signed, clockSkew: skew, hubNow: clock.hubNow(),
                    deviceNow: clock.deviceNow())
                if wait <= 0 || Task.isCancelled { break }
                try? await Task.sleep(for: .milliseconds(Int64(min(wait, 3600) * 1000) + 1))
            }
            if Task.isCancelled { return }
            await self.execute(request)
        }
    }

    private func cancelIfNotStarted(_ id: String) {
        guard case .received = ledger.entry(for: id) else { return }
        running.removeValue(forKey: id)?.cancel()
        try? ledger.recordFinished(
            LogicalResult(
                id: id, status: .rejected, code: OutcomeCode.canceled, retryable: false,
                detail: "canceled by the hub before it started", finishedAt: clock.hubNow()
            )
        )
    }

    /// Runs a command once: recorded as started (durably) before its handler runs.
    private func execute(_ request: LogicalRequest) async {
        defer {
            running.removeValue(forKey: request.id)
            activity()
        }
        guard case .received = ledger.entry(for: request.id) else { return }
        let signed = verifier != nil && request.signature != nil
        var reply: CommandReply
        if Self.hasExpired(request, signed: signed, hubNow: clock.hubNow(), deviceNow: clock.deviceNow()) {
            reply = .rejected(code: OutcomeCode.tooLate, detail: "received after it expired at \(request.expiresAt)")
        } else if let handler = handlers[request.name] {
            do {
                try ledger.recordStarted(request.id)
            } catch {
                logger.error("cannot record start; not running the command", metadata: ["error": "\(error)"])
                return
            }
            stats.executed += 1
            do {
                reply = try await handler(request)
            } catch let error as InvalidArguments {
                reply = .rejected(code: OutcomeCode.invalidArgs, detail: error.description)
            } catch is CancellationError {
                // The agent is stopping: the outcome is unknown, so none is recorded.
                return
            } catch {
                reply = .failed(code: OutcomeCode.handlerError, detail: "\(error)")
            }
        } else {
            reply = .rejected(code: OutcomeCode.unknownCommand, detail: "this device has no command '\(request.name)'")
        }
        let result = admissible(
            LogicalResult(
                id: request.id, status: reply.status, code: reply.code, retryable: reply.retryable,
                detail: reply.detail, data: reply.data, finishedAt: clock.hubNow()
            )
        )
        do {
            try ledger.recordFinished(result)
        } catch {
            logger.error("cannot record result", metadata: ["error": "\(error)"])
        }
    }

    /// A result the hub will take: an invalid code becomes `handler_error`, a long detail is
    /// cut, and data too deep or too large is replaced by a `result_too_large` failure.
    private func admissible(_ result: LogicalResult) -> LogicalResult {
        var result = result
        if let code = result.code, !Identifier.isValid(code, maxBytes: 64) {
            result.detail = "handler reported an invalid code; " + (result.detail ?? "")
            result.code = OutcomeCode.handlerError
        }
        if let detail = result.detail, detail.utf8.count > 4096 {
            result.detail = String(decoding: Array(detail.utf8.prefix(4000)), as: UTF8.self) + " …(cut)"
        }
        let fits =
            (try? result.validate(limits)) != nil
            && ((try? WireJSON.encode(result).count).map { $0 <= configuration.maxItemBytes } ?? false)
        if !fits {
            return LogicalResult(
                id: result.id, status: .failed, code: "result_too_large", retryable: false,
                detail: "the command ran (\(result.status.rawValue)) but its output exceeds the protocol's limits",
                finishedAt: result.finishedAt
            )
        }
        return result
    }

    /// At start-up: interrupted commands become failures (never rerun); received-but-not-started
    /// ones are scheduled.
    func recoverIfNeeded() {
        guard !recovered else { return }
        recovered = true
        do {
            for request in try ledger.recover(at: clock.hubNow()) {
                pendingAcks.append(request.id)
                rememberRecovered(request)
                schedule(request)
            }
        } catch {
            logger.error("ledger recovery failed", metadata: ["error": "\(error)"])
        }
    }
}

/// Counters of one agent.
public struct AgentStats: Sendable, Hashable {
    /// Physical requests sent (including retries).
    public var polls = 0
    /// Failed exchanges.
    public var failures = 0
    /// Commands whose handler ran.
    public var executed = 0
    /// Redelivered commands answered from the ledger.
    public var duplicates = 0
    /// Uplink items confirmed stored.
    public var delivered = 0
    /// Responses that were superseded by a newer poll.
    public var superseded = 0
    /// Items the hub refused, moved to `dead-letter.jsonl`.
    public var deadLettered = 0
    /// Commands the trust policy refused (reported REJECTED, never run).
    public var refused = 0
    /// The last error seen.
    public var lastError: String?
}

/// The hub refused an exchange.
public struct AgentError: Error, Sendable, CustomStringConvertible {
    /// HTTP status (0 for local failures).
    public var status: Int
    /// The hub's error code.
    public var code: String
    /// The hub's message.
    public var message: String
    /// Seconds the hub asked to wait.
    public var retryAfter: Double?

    public var description: String { "\(status) \(code): \(message)" }
}
