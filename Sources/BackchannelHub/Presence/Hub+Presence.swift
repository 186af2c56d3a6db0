public import BackchannelProtocol
import BackchannelStore

extension Hub {
    /// The presence of a device the hub has not heard from.
    private func unknownPresence(_ device: String) -> PresenceView {
        PresenceView(device: device, inferred: .unknown, available: false)
    }

    /// A page of devices' presence, ordered by device id, optionally only those in `state` or
    /// (un)available.
    public func presencePage(
        state: InferredPresence?, available: Bool?, cursor: String?, limit: Int, tenant: String? = nil
    ) async throws(HubError) -> Page<PresenceView> {
        do {
            let records = try await store.devices(after: cursor, limit: limit + 1, tenant: tenant)
            let page = records.prefix(limit)
            let items = page.map { presence.view($0.id) ?? unknownPresence($0.id) }.filter { view in
                (state == nil || view.inferred == state) && (available == nil || view.available == available)
            }
            return Page(items: items, nextCursor: records.count > limit ? page.last?.id : nil)
        } catch {
            throw storeFailure(error)
        }
    }

    /// A device's presence and its history.
    public func presenceDetail(_ device: String, limit: Int = 100) async throws(HubError) -> PresenceDetailView {
        do {
            guard try await store.device(id: device) != nil else { throw HubError.unknownDevice(device) }
            await flushPresence()
            let history = try await store.presenceHistory(device: device, limit: limit)
            return PresenceDetailView(presence: presence.view(device) ?? unknownPresence(device), history: history)
        } catch {
            throw storeFailure(error)
        }
    }

    /// Asks a device to declare its presence again in its next poll, answering a held long-poll
    /// at once so that poll comes soon.
    public func refreshPresence(_ device: String) async throws(HubError) -> PresenceView {
        do {
            guard try await store.device(id: device) != nil else { throw HubError.unknownDevice(device) }
        } catch {
            throw storeFailure(error)
        }
        presence.requestRefresh(device)
        lanes.notifyWork(device)
        return presence.view(device) ?? unknownPresence(device)
    }
}
