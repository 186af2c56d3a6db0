public import BackchannelPower
public import BackchannelProtocol
import BackchannelStore
public import Foundation
import Logging
import Synchronization

/// A stored tariff with its id (`GET /v1/power/tariffs`).
public struct StoredTariff: Sendable, Hashable, Codable {
    /// The id it was stored under.
    public var id: String
    /// The tariff.
    public var tariff: Tariff
}

/// A supplier offer as stored, with where it came from.
public struct StoredOffer: Sendable, Hashable, Codable {
    /// The offer.
    public var offer: SupplierOffer
    /// `operator:<name>` (pushed through the API) or `device:<id>` (a supplier's device
    /// polling the hub).
    public var source: String
    /// When the hub received it.
    public var receivedAt: Timestamp
}

/// `POST /v1/power/devices/{id}/supplier-choice`: compare offers on the device's own load profile.
public struct SupplierChoiceBody: Sendable, Hashable, Codable {
    /// Start of the profile used (default: 30 days before `to`).
    public var from: Timestamp?
    /// End of the profile used (default: now, at a quarter hour).
    public var to: Timestamp?
    /// The most the customer pays on average, currency per kWh.
    public var ceilingPerKWh: Decimal
    /// The device's current supplier, if known.
    public var currentSupplier: String?
    /// Offers to compare; default every stored offer of the tenant.
    public var offers: [SupplierOffer]?
    /// Whether to send the decision to the device (`switch-supplier` or
    /// `reduce-consumption`); default true.
    public var send: Bool?
}

/// The outcome of a supplier choice: the comparison and the command sent, if any.
public struct SupplierChoiceOutcome: Sendable, Hashable, Codable {
    /// The device.
    public var device: String
    /// The comparison and decision.
    public var choice: SupplierChoice
    /// The command sent to the device, if one was.
    public var command: CommandView?
}

extension Hub {
    /// A period from `from`/`to` (RFC 3339): default the `defaultDays` days before now
    /// (aligned down to a quarter hour when `aligned`, for interval data); at most 400 days.
    func powerPeriod(from: Timestamp?, to: Timestamp?, defaultDays: Double = 30, aligned: Bool = true) throws(HubError)
        -> Range<Timestamp>
    {
        let quarter: Int64 = 900_000
        let now = clock.now()
        let end = to ?? (aligned ? Timestamp(milliseconds: now.milliseconds / quarter * quarter) : now)
        let start = from ?? end.adding(seconds: -defaultDays * 86_400)
        guard start < end else { throw HubError.malformed("from: must be before to") }
        guard end.seconds(since: start) <= 400 * 86_400 else { throw HubError.malformed("from/to: at most 400 days") }
        return start..<end
    }

    /// A device's stored intervals starting in `range`.
    func intervalReadings(device: String, in range: Range<Timestamp>) async throws(HubError) -> [IntervalReading] {
        do {
            return try await store.intervals(device: device, startingIn: range).map {
                IntervalReading(start: $0.start, seconds: $0.seconds, kWh: $0.kWh, kvarh: $0.kvarh)
            }
        } catch {
            throw storeFailure(error)
        }
    }

    /// Consumption, peak demand and load factor of one device, or of a group with its
    /// coincident peak.
    func loadReport(devices: [String], group: String?, in range: Range<Timestamp>) async throws(HubError) -> JSONValue {
        do {
            if devices.count == 1, group == nil {
                let intervals = try await intervalReadings(device: devices[0], in: range)
                let report = try LoadReport.compute(
                    device: devices[0], intervals: intervals, from: range.lowerBound, to: range.upperBound,
                    intervalSeconds: intervals.first?.seconds ?? 900)
                return try Self.json(report)
            }
            var members: [DeviceIntervals] = []
            for device in devices {
                members.append(
                    DeviceIntervals(device: device, intervals: try await intervalReadings(device: device, in: range)))
            }
            let report = try GroupLoadReport.compute(
                group: group ?? "devices", members: members, from: range.lowerBound, to: range.upperBound,
                intervalSeconds: 900)
            return try Self.json(report)
        } catch let error as PowerInputError {
            throw HubError.malformed(error.message)
        } catch let error as HubError {
            throw error
        } catch {
            throw storeFailure(error)
        }
    }

    /// The bill of a device's intervals in `range` under a stored tariff.
    func bill(device: String, tariff id: String, tenant: String, in range: Range<Timestamp>) async throws(HubError)
        -> Bill
    {
        let tariff = try await storedTariff(id, tenant: tenant).tariff
        let intervals = try await intervalReadings(device: device, in: range)
        let bill: Bill
        do {
            bill = try Bill.compute(tariff: tariff, intervals: intervals, from: range.lowerBound, to: range.upperBound)
        } catch {
            throw HubError.malformed(error.message)
        }
        // Decimal arithmetic overflows to NaN, which is not JSON.
        guard !bill.total.isNaN else { throw HubError.malformed("tariff: the bill overflows; a rate is too large") }
        return bill
    }

    // MARK: Tariffs

    /// Stores (or replaces) a tariff under an id.
    func putTariff(_ id: String, _ tariff: Tariff, tenant: String) async throws(HubError) -> StoredTariff {
        guard Identifier.isValid(id) else {
            throw HubError.malformed("tariff id: must be 1-128 of A-Z a-z 0-9 . _ : -")
        }
        do {
            try tariff.validate()
        } catch {
            throw HubError.malformed(error.message)
        }
        let stored = StoredTariff(id: id, tariff: tariff)
        try await putDocument(
            kind: PowerKind.tariff, key: "\(tenant)/\(id)", tenant: tenant, device: nil, at: clock.now(), stored)
        return stored
    }

    /// A stored tariff of the tenant, or 404.
    func storedTariff(_ id: String, tenant: String) async throws(HubError) -> StoredTariff {
        guard let tariff = try await document(StoredTariff.self, kind: PowerKind.tariff, key: "\(tenant)/\(id)") else {
            throw HubError.notFound("no tariff '\(id)'")
        }
        return tariff
    }

    /// The tenant's tariffs, by id.
    func tariffs(tenant: String) async throws(HubError) -> [StoredTariff] {
        try await documents(StoredTariff.self, PowerDocumentQuery(kind: PowerKind.tariff, tenant: tenant, limit: 1000))
            .sorted { $0.id < $1.id }
    }

    /// Deletes a tariff; 404 when there is none.
    func deleteTariff(_ id: String, tenant: String) async throws(HubError) {
        do {
            guard try await store.deletePowerDocument(kind: PowerKind.tariff, key: "\(tenant)/\(id)") else {
                throw HubError.notFound("no tariff '\(id)'")
            }
        } catch let error as HubError {
            throw error
        } catch {
            throw storeFailure(error)
        }
    }

    // MARK: Supplier offers and choice

    static func offerDocument(_ offer: SupplierOffer, tenant: String, source: String, at now: Timestamp) throws
        -> PowerDocument
    {
        try offer.tariff.validate()
        guard !offer.supplier.isEmpty, offer.supplier.count <= 200 else {
            throw PowerInputError("supplier: must be 1-200 characters")
        }
        let stored = StoredOffer(offer: offer, source: source, receivedAt: now)
        return PowerDocument(
            kind: PowerKind.offer, key: "\(tenant)/\(offer.supplier)/\(offer.offerID ?? offer.tariff.name)",
            tenant: tenant, device: nil, at: now, body: try json(stored))
    }

    /// Stores an offer pushed through the API.
    func putOffer(_ offer: SupplierOffer, tenant: String, source: String) async throws(HubError) -> StoredOffer {
        let now = clock.now()
        let document: PowerDocument
        do {
            document = try Self.offerDocument(offer, tenant: tenant, source: source, at: now)
        } catch let error as PowerInputError {
            throw HubError.malformed(error.message)
        } catch {
            throw HubError.malformed("\(error)")
        }
        do {
            try await store.putPowerDocuments([document])
        } catch {
            throw storeFailure(error)
        }
        return StoredOffer(offer: offer, source: source, receivedAt: now)
    }

    /// The tenant's offers, newest first.
    func offers(tenant: String) async throws(HubError) -> [StoredOffer] {
        try await documents(StoredOffer.self, PowerDocumentQuery(kind: PowerKind.offer, tenant: tenant, limit: 1000))
    }

    /// Compares offers on the device's real load profile and, unless told not to, sends the
    /// decision to the device: `switch-supplier {supplier, offerID, tariff}` or
    /// `reduce-consumption {reason, ceilingPerKWh}`. A `stay` decision sends nothing.
    func chooseSupplier(device: String, _ body: SupplierChoiceBody, tenant: String, origin: String)
        async throws(HubError)
        -> SupplierChoiceOutcome
    {
        let range = try powerPeriod(from: body.from, to: body.to)
        var offers = body.offers ?? []
        if offers.isEmpty { offers = try await self.offers(tenant: tenant).map(\.offer) }
        guard !offers.isEmpty else { throw HubError.notFound("no supplier offers to compare") }
        let intervals = try await intervalReadings(device: device, in: range)
        let choice: SupplierChoice
        do {
            choice = try SupplierChoice.evaluate(
                offers: offers, intervals: intervals, from: range.lowerBound, to: range.upperBound,
                ceilingPerKWh: body.ceilingPerKWh, currentSupplier: body.currentSupplier)
        } catch {
            throw HubError.malformed(error.message)
        }
        guard !choice.ranking.contains(where: { $0.total.isNaN || $0.averagePerKWh.isNaN }) else {
            throw HubError.malformed("offers: a bill overflows; a rate is too large")
        }
        var command: CommandView?
        if body.send ?? true {
            let now = clock.now()
            switch choice.decision {
            case .switchSupplier:
                if let chosen = choice.chosen {
                    var args: [String: JSONValue] = [
                        "supplier": .string(chosen.supplier), "reason": .string(choice.reason),
                        "tariff": .string(chosen.bill.tariff),
                    ]
                    if let offerID = chosen.offerID { args["offerID"] = .string(offerID) }
                    command = try await submit(
                        SubmitCommandRequest(name: "switch-supplier", args: .object(args)), to: device, origin: origin
                    ).command
                }
            case .reduceConsumption:
                command = try await submit(
                    SubmitCommandRequest(
                        name: "reduce-consumption",
                        args: [
                            "reason": .string(choice.reason),
                            "ceilingPerKWh": .number(NSDecimalNumber(decimal: choice.ceilingPerKWh).doubleValue),
                        ]),
                    to: device, origin: origin
                ).command
            case .stay:
                break
            }
            let outcome = SupplierChoiceOutcome(device: device, choice: choice, command: command)
            try await putDocument(
                kind: PowerKind.supplierDecision, key: "\(device)/\(MessageID.make(at: now))", tenant: tenant,
                device: device,
                at: now, outcome)
            events.publish(
                .power, at: now, device: device, command: command?.id, detail: "supplier.\(choice.decision.rawValue)",
                data: ["reason": .string(choice.reason)])
        }
        return SupplierChoiceOutcome(device: device, choice: choice, command: command)
    }

    // MARK: Documents

    static func json(_ value: some Encodable) throws -> JSONValue {
        try WireJSON.decode(JSONValue.self, from: WireJSON.encode(value))
    }

    func putDocument(
        kind: String, key: String, tenant: String, device: String?, at: Timestamp, _ value: some Encodable
    ) async throws(HubError) {
        do {
            try await store.putPowerDocuments([
                PowerDocument(kind: kind, key: key, tenant: tenant, device: device, at: at, body: try Self.json(value))
            ])
        } catch {
            throw storeFailure(error)
        }
    }

    func document<T: Decodable>(_ type: T.Type, kind: String, key: String) async throws(HubError) -> T? {
        do {
            guard let document = try await store.powerDocument(kind: kind, key: key) else { return nil }
            return try WireJSON.decode(type, from: WireJSON.encode(document.body))
        } catch {
            throw storeFailure(error)
        }
    }

    func documents<T: Decodable>(_ type: T.Type, _ query: PowerDocumentQuery) async throws(HubError) -> [T] {
        do {
            return try await store.powerDocuments(query).map {
                try WireJSON.decode(type, from: WireJSON.encode($0.body))
            }
        } catch {
            throw storeFailure(error)
        }
    }
}
