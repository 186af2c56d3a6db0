public import BackchannelProtocol
import BackchannelStore

extension Hub {
    /// Provisions a device and returns it with its bearer token (shown only here).
    public func provision(_ request: ProvisionDeviceRequest) async throws(HubError) -> ProvisionedDevice {
        if let tenant = request.tenant, !Identifier.isValid(tenant, maxBytes: 64) {
            throw HubError.malformed("tenant: must be 1-64 characters of A-Z a-z 0-9 . _ : -")
        }
        guard Identifier.isValid(request.id, maxBytes: configuration.limits.maxIdentifierBytes) else {
            throw HubError.malformed(
                "id: must be 1-128 characters of A-Z a-z 0-9 . _ : - starting with a letter or digit")
        }
        if let name = request.name, name.utf8.count > 256 { throw HubError.malformed("name: longer than 256 bytes") }
        let labels = request.labels ?? [:]
        guard labels.count <= 64, labels.allSatisfy({ $0.key.utf8.count <= 64 && $0.value.utf8.count <= 256 }) else {
            throw HubError.malformed("labels: at most 64 labels, keys up to 64 bytes, values up to 256 bytes")
        }
        // Keys in the identifier alphabet, so a selector label:<key>=<value> is never ambiguous.
        if let bad = labels.keys.sorted().first(where: { !Identifier.isValid($0, maxBytes: 64) }) {
            throw HubError.malformed("labels: key '\(bad.prefix(64))' must be 1-64 characters of A-Z a-z 0-9 . _ : -")
        }
        let token = Credentials.makeToken()
        let record = DeviceRecord(
            id: request.id, name: request.name, labels: labels, tokenHash: Credentials.hash(token),
            createdAt: clock.now(), tenant: request.tenant ?? configuration.systemTenant
        )
        do {
            try await store.insertDevice(record)
        } catch let error as StoreError where error.isConflict {
            throw HubError.conflict(
                "device '\(request.id)' already exists; rotate its token with POST /v1/devices/\(request.id)/token")
        } catch {
            throw storeFailure(error)
        }
        events.publish(.deviceProvisioned, at: record.createdAt, device: record.id)
        return ProvisionedDevice(device: view(record, pending: 0), token: token)
    }

    /// Replaces a device's bearer token; the old one stops working at once.
    public func rotateToken(device id: String) async throws(HubError) -> ProvisionedDevice {
        let token = Credentials.makeToken()
        let hash = Credentials.hash(token)
        do {
            // Read first: once the new hash is committed, nothing may fail before the token is
            // returned, or the device would be locked out with a token nobody has.
            guard let record = try await store.device(id: id), try await store.setTokenHash(hash, device: id) else {
                throw HubError.unknownDevice(id)
            }
            directory.setTokenHash(id, hash)
            return ProvisionedDevice(device: view(record, pending: nil), token: token)
        } catch {
            throw storeFailure(error)
        }
    }

    /// One device, with its in-memory last-seen time and presence.
    public func device(_ id: String) async throws(HubError) -> DeviceView {
        do {
            guard let record = try await store.device(id: id) else { throw HubError.unknownDevice(id) }
            return view(record, pending: try await store.pendingCount(device: id))
        } catch {
            throw storeFailure(error)
        }
    }

    /// A page of devices ordered by id.
    public func devices(cursor: String?, limit: Int, tenant: String? = nil) async throws(HubError) -> Page<DeviceView> {
        do {
            let records = try await store.devices(after: cursor, limit: limit + 1, tenant: tenant)
            let items = records.prefix(limit).map { view($0, pending: nil) }
            return Page(items: items, nextCursor: records.count > limit ? items.last?.id : nil)
        } catch {
            throw storeFailure(error)
        }
    }

    func view(_ record: DeviceRecord, pending: Int?) -> DeviceView {
        let session = directory.snapshot(record.id)
        let seen = [record.lastSeenAt, session?.lastSeenAt].compactMap { $0 }.max()
        let state = presence.view(record.id)
        var view = DeviceView(
            id: record.id, name: record.name, labels: record.labels, createdAt: record.createdAt, lastSeenAt: seen,
            presence: state?.declared ?? session?.presence, pendingCommands: pending
        )
        view.presenceState = state?.inferred ?? .unknown
        view.available = state?.available ?? false
        view.clockOffset = session?.clock?.offset
        view.clockDelay = session?.clock?.delay
        return view
    }
}
