public import BackchannelProtocol
import BackchannelStore
import Synchronization

extension Hub {
    /// Accepts a command for a device. Returns the command and whether it is new (false when
    /// the idempotency key matched an earlier submission).
    public func submit(
        _ request: SubmitCommandRequest, to device: String, origin: String = "operator:admin"
    ) async throws(HubError) -> (command: CommandView, created: Bool) {
        let now = clock.now()
        let record = try makeRecord(request, device: device, origin: origin, now: now)
        if request.delivery == .instant, !lanes.isHolding(device) || !presence.isAvailable(device) {
            // Now or never: nothing is stored for a device that cannot take it now.
            throw HubError.deviceUnavailable(device)
        }
        let result: SubmitResult
        do {
            result = try await store.submit(record)
        } catch let error as StoreError where error.isUnknownDevice {
            throw HubError.unknownDevice(device)
        } catch let error as StoreError where error.isIdempotencyMismatch {
            throw HubError.conflict(error.message)
        } catch let error as StoreError where error.isConflict {
            throw HubError.conflict("command id '\(record.id)' is already used")
        } catch {
            throw storeFailure(error)
        }
        guard case .created(let stored) = result else { return (result.record.view(), false) }
        metrics.commandsSubmitted.add(1, ordering: .relaxed)
        events.publish(
            .commandSubmitted, at: now, device: device, command: stored.id, state: .queued, detail: stored.name
        )
        directory.noteWork(device)
        lanes.notifyWork(device)
        if stored.delivery == .instant { return (try await awaitInstantDelivery(stored), true) }
        return (stored.view(), true)
    }

    /// Waits until the device acknowledges an instant command; if it does not within
    /// ``HubConfiguration/instantTimeout``, cancels it and reports the device unavailable. So an
    /// instant command is either delivered (ACKED or later) or ended: never left in transit.
    private func awaitInstantDelivery(_ record: CommandRecord) async throws(HubError) -> CommandView {
        let delivered: @Sendable (MessageState) -> Bool = { $0 == .acked || $0.isTerminal }
        let view = try await command(record.id, until: delivered, waitingUpTo: configuration.instantTimeout)
        if delivered(view.state) && view.state != .expired { return view }
        // Not acknowledged in time: cancel it, but only if it is still undelivered (an ack that
        // lands meanwhile wins, and the command is reported delivered).
        _ = try? await cancelInstant(record.id)
        let final = try await command(record.id)
        if [.canceled, .expired, .queued, .dispatched].contains(final.state) {
            throw HubError.deviceUnavailable(record.device, command: record.id)
        }
        return final
    }

    private func cancelInstant(_ id: String) async throws -> CancelResult {
        let result = try await store.cancel(
            command: id, at: clock.now(),
            reason: "instant delivery: not acknowledged within \(configuration.instantTimeout) s",
            onlyFrom: [.queued, .dispatched])
        if case .canceled(let record, let previous) = result {
            if previous == .dispatched || record.attempt > 0 {
                directory.update(record.device) { $0.pendingCancels.append(record.id) }
                lanes.notifyWork(record.device)
            }
            events.publish(
                .commandTransition, at: record.updatedAt, device: record.device, command: record.id, state: .canceled,
                detail: "cancel")
        }
        return result
    }

    func makeRecord(
        _ request: SubmitCommandRequest, device: String, origin: String, now: Timestamp
    ) throws(HubError) -> CommandRecord {
        guard Identifier.isValid(device) else { throw HubError.unknownDevice(device) }
        guard Identifier.isValid(request.name, maxBytes: 64) else {
            throw HubError.malformed(
                "name: must be 1-64 characters of A-Z a-z 0-9 . _ : - starting with a letter or digit")
        }
        let args = request.args ?? .object([:])
        guard case .object = args else { throw HubError.malformed("args: must be a JSON object") }
        do throws(ValidationFailure) {
            try PollRequest.check(args, field: "args", configuration.limits)
        } catch {
            throw HubError.malformed(error.description)
        }
        if request.ttl != nil && request.expiresAt != nil {
            throw HubError.malformed("give ttl or expiresAt, not both")
        }
        var expiresAt: Timestamp
        if let ttl = request.ttl {
            guard ttl > 0, ttl <= configuration.maxTTL else {
                throw HubError.malformed("ttl: must be between 0 and \(Int(configuration.maxTTL)) seconds")
            }
            expiresAt = now.adding(seconds: ttl)
        } else if let absolute = request.expiresAt {
            guard absolute > now else { throw HubError.malformed("expiresAt: must be in the future") }
            guard absolute.seconds(since: now) <= configuration.maxTTL else {
                throw HubError.malformed("expiresAt: more than \(Int(configuration.maxTTL)) seconds ahead")
            }
            expiresAt = absolute
        } else {
            expiresAt = now.adding(seconds: configuration.defaultTTL)
        }
        if request.delivery == .instant {
            guard request.notBefore == nil else {
                throw HubError.malformed("notBefore: not allowed with instant delivery")
            }
            // Now or never: an instant command lives only as long as its delivery may take.
            // (plus a margin, so the sweeper never ends it before the hub cancels it)
            let limit = now.adding(seconds: configuration.instantTimeout + 5)
            if request.signature != nil, expiresAt > limit {
                // The signature covers the expiry, so the hub cannot shorten it.
                throw HubError.malformed(
                    "expiresAt: a signed instant command must expire within \(Int(configuration.instantTimeout + 5)) s")
            }
            expiresAt = min(expiresAt, limit)
        }
        if let notBefore = request.notBefore, notBefore >= expiresAt {
            throw HubError.malformed("notBefore: must be before the command expires (\(expiresAt))")
        }
        let maxAttempts = request.maxAttempts ?? configuration.maxAttempts
        guard (1...100).contains(maxAttempts) else { throw HubError.malformed("maxAttempts: must be 1-100") }
        let timeout = request.timeout ?? configuration.executionTimeout
        guard timeout > 0, timeout <= 7 * 86400 else { throw HubError.malformed("timeout: must be 0-604800 seconds") }
        if let key = request.idempotencyKey, !Identifier.isValid(key) {
            throw HubError.malformed("idempotencyKey: must be 1-128 characters of A-Z a-z 0-9 . _ : -")
        }
        if let key = request.idempotencyKey, key.hasPrefix("rv:") {
            throw HubError.malformed("idempotencyKey: keys starting with rv: are reserved for rendezvous")
        }
        if let id = request.id, !Identifier.isValid(id, maxBytes: 64) {
            throw HubError.malformed("id: must be 1-64 characters of A-Z a-z 0-9 . _ : -")
        }
        if let signature = request.signature {
            do throws(ValidationFailure) {
                try signature.validate()
            } catch {
                throw HubError.malformed(error.description)
            }
            guard request.id != nil, request.expiresAt != nil else {
                throw HubError.malformed("a signed command must give its id and expiresAt: the signature covers them")
            }
        }
        var record = CommandRecord(
            id: request.id ?? MessageID.make(at: now), device: device, origin: origin, name: request.name, args: args,
            createdAt: now, expiresAt: expiresAt, notBefore: request.notBefore, idempotencyKey: request.idempotencyKey,
            maxAttempts: maxAttempts, executionTimeoutMs: Int64((timeout * 1000).rounded())
        )
        record.delivery = request.delivery ?? .queued
        record.signature = request.signature
        return record
    }

    /// A command with its history.
    public func command(_ id: String) async throws(HubError) -> CommandView {
        do {
            guard let record = try await store.command(id: id) else { throw HubError.notFound("no command '\(id)'") }
            return record.view(history: try await store.history(command: id))
        } catch {
            throw storeFailure(error)
        }
    }

    /// A command with its history, waiting up to `seconds` for it to reach a terminal state.
    public func command(_ id: String, waitingUpTo seconds: Double) async throws(HubError) -> CommandView {
        try await command(id, until: \.isTerminal, waitingUpTo: seconds)
    }

    /// A command with its history, waiting up to `seconds` for its state to satisfy `done`.
    func command(
        _ id: String, until done: @escaping @Sendable (MessageState) -> Bool, waitingUpTo seconds: Double
    ) async throws(HubError) -> CommandView {
        guard seconds > 0 else { return try await command(id) }
        let stream = events.subscribe(buffer: 64)
        let first = try await command(id)
        if done(first.state) { return first }
        let waiter = Wakeup()
        let watch = Task {
            for await event in stream where event.command == id && event.state.map(done) == true {
                waiter.signal(.work)
                return
            }
            // The stream ended: the hub is shutting down.
            waiter.signal(.shutdown)
        }
        defer { watch.cancel() }
        _ = await waiter.wait(seconds: min(seconds, configuration.maxWait))
        return try await command(id)
    }

    /// A page of commands, newest first.
    public func commands(
        device: String?, state: MessageState?, cursor: String?, limit: Int, tenant: String? = nil
    ) async throws(HubError) -> Page<CommandView> {
        do {
            if let device, try await store.device(id: device) == nil { throw HubError.unknownDevice(device) }
            var query = CommandQuery(device: device, state: state, before: cursor, limit: limit + 1)
            query.tenant = tenant
            let records = try await store.commands(query)
            let items = records.prefix(limit).map { $0.view() }
            return Page(items: items, nextCursor: records.count > limit ? items.last?.id : nil)
        } catch {
            throw storeFailure(error)
        }
    }

    /// Cancels a command that is not yet terminal. A device already holding it is told to
    /// abort in its next poll response.
    public func cancel(_ id: String, reason: String?) async throws(HubError) -> CommandView {
        if let reason, reason.utf8.count > 1024 { throw HubError.malformed("reason: longer than 1024 bytes") }
        let result: CancelResult
        do {
            result = try await store.cancel(command: id, at: clock.now(), reason: reason)
        } catch {
            throw storeFailure(error)
        }
        switch result {
        case .notFound:
            throw HubError.notFound("no command '\(id)'")
        case .alreadyTerminal(let record), .moved(let record):
            throw HubError.conflict("command '\(id)' is already \(record.state)")
        case .canceled(let record, let previous):
            // The device may hold it: delivered now, or before a lease lapsed.
            if previous == .dispatched || previous == .acked || record.attempt > 0 {
                directory.update(record.device) { $0.pendingCancels.append(record.id) }
                lanes.notifyWork(record.device)
            }
            events.publish(
                .commandTransition, at: record.updatedAt, device: record.device, command: record.id, state: .canceled,
                detail: "cancel"
            )
            notifyRendezvous(created: [], updated: [record])
            await settleCampaigns([record])
            // The cancellation is committed: answer with it even if the history cannot be read.
            return record.view(history: try? await store.history(command: id))
        }
    }

    /// Stored readings and events of a device, newest first.
    public func uplink(
        device: String, kind: UplinkKind?, cursor: Int64?, limit: Int
    ) async throws(HubError) -> Page<UplinkView> {
        do {
            guard try await store.device(id: device) != nil else { throw HubError.unknownDevice(device) }
            let records = try await store.uplink(device: device, kind: kind, after: cursor, limit: limit + 1)
            let page = records.prefix(limit)
            return Page(
                items: page.map(\.view), nextCursor: records.count > limit ? page.last.map { String($0.seq) } : nil
            )
        } catch {
            throw storeFailure(error)
        }
    }
}
