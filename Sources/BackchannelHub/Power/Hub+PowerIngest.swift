import BackchannelPower
import BackchannelProtocol
import BackchannelStore
import Foundation
import HTTPTypes
import Logging
import Synchronization

/// Document kinds the power applications store (see ``PowerDocument``).
enum PowerKind {
    static let topology = "topology"
    static let outage = "outage"
    static let outageTracker = "outage-tracker"
    static let pqEvent = "pq"
    static let alert = "alert"
    static let tariff = "tariff"
    static let offer = "offer"
    static let supplierDecision = "supplier-decision"
    static let sheddingPolicy = "shedding-policy"
    static let sheddingDecision = "shedding-decision"
    static let tamper = "tamper"
    static let price = "price"
    /// A device event already applied (outage, PQ, price): a poll sent again after a hub
    /// restart or a failed exchange does not apply it twice.
    static let applied = "applied"
}

extension Hub {
    /// The remote address of the connection a poll arrived on, set by the device routes.
    @TaskLocal static var contactAddress: String?

    /// Feeds one poll to the power applications, before the exchange is answered.
    ///
    /// Readings named `interval` become interval data; `meter` readings update the device's
    /// latest kW and energy register (roll-ups, tamper); events `pq`, `power.lost`,
    /// `power.restored`, `topology`, `supplier.offer` and `price` drive their applications.
    /// Everything is keyed by the device and the item id, so a retried poll changes nothing
    /// twice. A store failure fails the poll (the device retries); bad values in one item
    /// are logged and skipped, as the item itself is still stored as uplink.
    func ingestPower(device: String, request: PollRequest, at now: Timestamp) async throws {
        noteContactAddress(device, at: now)
        try await closeOutageOnContact(device, request: request, at: now)
        guard !request.uplink.isEmpty else { return }
        var intervals: [IntervalRecord] = []
        var documents: [PowerDocument] = []
        var tenant: String?
        func owner() async throws -> String {
            if let tenant { return tenant }
            let found = try await self.tenant(ofDevice: device) ?? configuration.systemTenant
            tenant = found
            return found
        }
        for item in request.uplink {
            switch (item.kind, item.name) {
            case (.reading, "interval"):
                do {
                    intervals.append(try Self.interval(device: device, item.data))
                } catch {
                    logger.warning(
                        "an interval reading was refused", metadata: ["device": "\(device)", "error": "\(error)"])
                }
            case (.reading, "meter"), (.reading, "billing"):
                documents += noteMeterReading(device, item, tenant: try await owner(), at: now)
            case (.event, "topology"):
                if let document = Self.topologyDocument(device: device, item, tenant: try await owner(), at: now) {
                    documents.append(document)
                    power.topologyGeneration.add(1, ordering: .relaxed)
                }
            case (.event, "supplier.offer"):
                documents += offerDocuments(from: device, item, tenant: try await owner(), at: now)
            default:
                continue
            }
        }
        if !intervals.isEmpty { try await store.putIntervals(intervals) }
        if !documents.isEmpty { try await store.putPowerDocuments(documents) }
        for document in documents where document.kind == PowerKind.tamper {
            events.publish(
                .power, at: now, device: device, detail: "tamper.\(document.body["kind"]?.stringValue ?? "flag")",
                data: document.body)
        }
        // Events that act: outages, power quality (alerts), prices (shedding), each once.
        let acting: Set<String> = ["power.lost", "power.restored", "pq", "price"]
        for item in request.uplink where item.kind == .event && acting.contains(item.name) {
            let marker = "\(device)/\(item.id)"
            if try await store.powerDocument(kind: PowerKind.applied, key: marker) != nil { continue }
            do {
                switch item.name {
                case "power.lost", "power.restored":
                    try await handleOutageEvent(device: device, item, tenant: try await owner(), at: now)
                case "pq":
                    try await handlePQEvent(device: device, item, tenant: try await owner(), at: now)
                case "price":
                    guard let price = item.data["price"]?.doubleValue, price.isFinite, price >= 0, price < 1_000_000
                    else {
                        throw PowerInputError("price: must be a number from 0 to 1000000")
                    }
                    try await updatePrice(price, at: item.at, source: "device:\(device)", tenant: try await owner())
                default:
                    continue
                }
            } catch let error where Self.isContentError(error) {
                // The item's content, not the store: retrying cannot help, so it must not
                // fail the poll (the item is kept as uplink all the same).
                logger.warning(
                    "a power event was not applied",
                    metadata: ["device": "\(device)", "event": "\(item.name)", "error": "\(error)"])
            }
            try await store.putPowerDocuments([
                PowerDocument(
                    kind: PowerKind.applied, key: marker, tenant: try await owner(), device: device, at: now,
                    body: ["name": .string(item.name)])
            ])
        }
    }

    /// Whether an error comes from what a device sent (bad values, an undecodable document)
    /// rather than from the store.
    static func isContentError(_ error: any Error) -> Bool {
        if let error = error as? HubError { return error.status.code < 500 }
        return error is PowerInputError || error is DecodingError || error is EncodingError
    }

    /// An `interval` reading's data: `{start, seconds?, kWh, kvarh?}`.
    static func interval(device: String, _ data: JSONValue) throws -> IntervalRecord {
        guard let text = data["start"]?.stringValue, let start = Timestamp(rfc3339: text) else {
            throw PowerInputError("interval: start must be an RFC 3339 time")
        }
        guard let kWh = data["kWh"]?.doubleValue else { throw PowerInputError("interval: kWh is missing") }
        let seconds = data["seconds"]?.doubleValue ?? 900
        guard seconds == seconds.rounded(), seconds >= 60, seconds <= 86_400 else {
            throw PowerInputError("interval: seconds must be a whole number 60-86400")
        }
        let reading = IntervalReading(
            start: start, seconds: Int(seconds), kWh: kWh, kvarh: data["kvarh"]?.doubleValue)
        try reading.validate()
        // Bills and reports sum intervals as decimals, which overflow to NaN near 1e165.
        guard reading.kWh <= 1e9, abs(reading.kvarh ?? 0) <= 1e9 else {
            throw PowerInputError("interval: kWh and kvarh must be at most 1e9 in magnitude")
        }
        return IntervalRecord(
            device: device, start: reading.start, seconds: reading.seconds, kWh: reading.kWh, kvarh: reading.kvarh)
    }

    /// A `topology` event's declaration as a stored node.
    static func topologyDocument(device: String, _ item: UplinkItem, tenant: String, at now: Timestamp)
        -> PowerDocument?
    {
        guard let roleText = item.data["role"]?.stringValue, let role = FeederRole(rawValue: roleText) else {
            return nil
        }
        var body: [String: JSONValue] = ["id": .string(device), "role": .string(role.rawValue)]
        if let parent = item.data["parent"]?.stringValue, Identifier.isValid(parent), parent != device {
            body["parent"] = .string(parent)
        }
        if let customers = item.data["customers"]?.doubleValue, customers >= 0, customers <= 1_000_000,
            customers == customers.rounded()
        {
            body["customers"] = .number(customers)
        }
        if let name = item.data["name"]?.stringValue, name.count <= 200 { body["name"] = .string(name) }
        return PowerDocument(
            kind: PowerKind.topology, key: device, tenant: tenant, device: device, at: now, body: .object(body))
    }
}
