import BackchannelPower
import BackchannelProtocol
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import Synchronization

/// `POST /v1/power/price`.
struct PriceBody: Codable {
    var price: Double
}

extension Hub {
    /// The power applications under `/v1/power`: interval data and exports, reports, bills,
    /// tariffs, supplier offers and choice, load shedding, power quality and topology alerts,
    /// outages and reliability, tamper flags. Every route is scoped to the caller's tenant.
    func addPowerRoutes(to router: Router<HubRequestContext>) {
        let api = router.group("v1/power").add(middleware: OperatorGate(hub: self))
        let bodyLimit = 1 << 20

        api.get("devices/:id/intervals") { request, context -> Response in
            let device = try context.pathID()
            try await self.checkDevice(device, try context.require(.readData))
            let range = try self.powerPeriod(
                from: try request.timeQuery("from"), to: try request.timeQuery("to"), defaultDays: 1)
            let intervals = try await self.intervalReadings(device: device, in: range)
            return try self.intervalExport(
                device: device, intervals: intervals, range: range, format: request.query("format") ?? "json")
        }
        api.get("devices/:id/report") { request, context -> Response in
            let device = try context.pathID()
            try await self.checkDevice(device, try context.require(.readData))
            let range = try self.powerPeriod(from: try request.timeQuery("from"), to: try request.timeQuery("to"))
            return try jsonResponse(try await self.loadReport(devices: [device], group: nil, in: range))
        }
        api.get("report") { request, context -> Response in
            let who = try context.require(.readData)
            let devices = (request.query("devices") ?? "").split(separator: ",").map(String.init)
            guard !devices.isEmpty, devices.count <= 1000 else {
                throw HubError.malformed("devices: give 1-1000 device ids, comma-separated")
            }
            for device in devices { try await self.checkDevice(device, who) }
            let range = try self.powerPeriod(from: try request.timeQuery("from"), to: try request.timeQuery("to"))
            return try jsonResponse(
                try await self.loadReport(devices: devices, group: request.query("group") ?? "group", in: range))
        }
        api.get("devices/:id/bill") { request, context -> Response in
            let device = try context.pathID()
            let who = try context.require(.readData)
            try await self.checkDevice(device, who)
            guard let tariff = request.query("tariff") else { throw HubError.malformed("tariff: give a tariff id") }
            let range = try self.powerPeriod(from: try request.timeQuery("from"), to: try request.timeQuery("to"))
            return try jsonResponse(try await self.bill(device: device, tariff: tariff, tenant: who.tenant, in: range))
        }
        api.post("devices/:id/supplier-choice") { request, context -> Response in
            let device = try context.pathID()
            // Pricing the device's metering data needs `readData`; sending the decision to the
            // device (the default) needs `command` too.
            let who = try context.require(.readData)
            let body = try await request.decodeJSON(SupplierChoiceBody.self, limit: bodyLimit)
            if body.send ?? true { _ = try context.require(.command) }
            try await self.checkDevice(device, who)
            return try jsonResponse(
                try await self.chooseSupplier(device: device, body, tenant: who.tenant, origin: who.actor))
        }

        api.get("tariffs") { _, context -> Response in
            let who = try context.require(.readData)
            return try jsonResponse(try await self.tariffs(tenant: who.tenant))
        }
        api.get("tariffs/:id") { _, context -> Response in
            let who = try context.require(.readData)
            return try jsonResponse(try await self.storedTariff(try context.pathID(), tenant: who.tenant))
        }
        api.put("tariffs/:id") { request, context -> Response in
            let who = try context.require(.rules)
            let tariff = try await request.decodeJSON(Tariff.self, limit: bodyLimit)
            return try jsonResponse(try await self.putTariff(try context.pathID(), tariff, tenant: who.tenant))
        }
        api.delete("tariffs/:id") { _, context -> Response in
            let who = try context.require(.rules)
            try await self.deleteTariff(try context.pathID(), tenant: who.tenant)
            return Response(status: .noContent)
        }
        api.get("offers") { _, context -> Response in
            let who = try context.require(.readData)
            return try jsonResponse(try await self.offers(tenant: who.tenant))
        }
        api.post("offers") { request, context -> Response in
            let who = try context.require(.rules)
            let offer = try await request.decodeJSON(SupplierOffer.self, limit: bodyLimit)
            return try jsonResponse(
                try await self.putOffer(offer, tenant: who.tenant, source: who.actor), status: .created)
        }

        api.get("shedding") { _, context -> Response in
            let who = try context.require(.readOperations)
            return try jsonResponse(try await self.sheddingPolicies(tenant: who.tenant))
        }
        api.get("shedding/decisions") { request, context -> Response in
            let who = try context.require(.readOperations)
            let device = request.query("device")
            if let device { try await self.checkDevice(device, who) }
            let limit = try request.intQuery("limit", default: 100, range: 1...1000)
            return try jsonResponse(try await self.sheddingDecisions(tenant: who.tenant, device: device, limit: limit))
        }
        api.put("shedding/:id") { request, context -> Response in
            let device = try context.pathID()
            let who = try context.require(.rules)
            try await self.checkDevice(device, who)
            let schedule = try await request.decodeJSON(PriceLimitSchedule.self, limit: bodyLimit)
            return try jsonResponse(
                try await self.putSheddingPolicy(device: device, schedule: schedule, tenant: who.tenant))
        }
        api.delete("shedding/:id") { _, context -> Response in
            let device = try context.pathID()
            try await self.checkDevice(device, try context.require(.rules))
            try await self.deleteSheddingPolicy(device: device)
            return Response(status: .noContent)
        }
        api.post("price") { request, context -> Response in
            let who = try context.require(.command)
            let body = try await request.decodeJSON(PriceBody.self, limit: bodyLimit)
            // As `updatePrice` reads it; a price too small for a decimal (below about 1e-120) is NaN.
            let price = Decimal(string: String(body.price)) ?? .nan
            guard body.price.isFinite, body.price >= 0, body.price < 1_000_000, !price.isNaN else {
                throw HubError.malformed("price: must be a number from 0 to 1000000")
            }
            do {
                let decisions = try await self.updatePrice(
                    body.price, at: self.clock.now(), source: who.actor, tenant: who.tenant)
                return try jsonResponse(PriceUpdate(price: price, decisions: decisions))
            } catch let error as HubError {
                throw error
            } catch let error as PowerInputError {
                throw HubError.malformed(error.message)
            } catch {
                throw self.storeFailure(error)
            }
        }

        api.get("pq") { request, context -> Response in
            let who = try context.require(.readOperations)
            let device = request.query("device")
            if let device { try await self.checkDevice(device, who) }
            let from = try request.timeQuery("from")
            let to = try request.timeQuery("to")
            let range = from == nil && to == nil ? nil : try self.powerPeriod(from: from, to: to)
            let limit = try request.intQuery("limit", default: 100, range: 1...1000)
            return try jsonResponse(
                try await self.pqEvents(tenant: who.tenant, device: device, in: range, limit: limit))
        }
        api.get("topology") { _, context -> Response in
            let who = try context.require(.readOperations)
            return try jsonResponse(try await self.topology(tenant: who.tenant))
        }
        api.get("alerts") { request, context -> Response in
            let who = try context.require(.readOperations)
            let device = request.query("device")
            if let device { try await self.checkDevice(device, who) }
            let limit = try request.intQuery("limit", default: 20, range: 1...200)
            return try jsonResponse(try await self.alerts(tenant: who.tenant, device: device, limit: limit))
        }
        api.get("outages") { request, context -> Response in
            let who = try context.require(.readOperations)
            let device = request.query("device")
            if let device { try await self.checkDevice(device, who) }
            let openOnly = try request.boolQuery("open")
            let limit = try request.intQuery("limit", default: 100, range: 1...1000)
            return try jsonResponse(
                try await self.outages(tenant: who.tenant, device: device, openOnly: openOnly, limit: limit))
        }
        api.get("reliability") { request, context -> Response in
            let who = try context.require(.readOperations)
            let range = try self.powerPeriod(
                from: try request.timeQuery("from"), to: try request.timeQuery("to"), aligned: false)
            return try jsonResponse(try await self.reliability(tenant: who.tenant, in: range))
        }
        api.get("tamper") { request, context -> Response in
            let who = try context.require(.readData)
            let device = request.query("device")
            if let device { try await self.checkDevice(device, who) }
            let limit = try request.intQuery("limit", default: 100, range: 1...1000)
            return try jsonResponse(try await self.tamperFlags(tenant: who.tenant, device: device, limit: limit))
        }
    }

    /// Interval data as JSON, CSV, self-describing XML or Green Button (ESPI) XML.
    func intervalExport(device: String, intervals: [IntervalReading], range: Range<Timestamp>, format: String) throws
        -> Response
    {
        let body: String
        let type: String
        let fileName: String
        let export = IntervalExport(deviceID: device, from: range.lowerBound, to: range.upperBound, readings: intervals)
        do {
            switch format {
            case "json":
                return try jsonResponse(intervals)
            case "csv":
                body = try export.csv()
                type = "text/csv; charset=utf-8"
                fileName = "\(device)-intervals.csv"
            case "xml":
                body = try export.xml()
                type = "application/xml; charset=utf-8"
                fileName = "\(device)-intervals.xml"
            case "greenbutton":
                body = try GreenButtonExport(
                    deviceID: device, title: "Backchannel interval data for \(device)",
                    timeZone: configuration.power.timeZone, from: range.lowerBound, to: range.upperBound,
                    generated: clock.now(), readings: intervals
                ).xml()
                type = "application/atom+xml; charset=utf-8"
                fileName = "\(device)-greenbutton.xml"
            default:
                throw HubError.malformed("format: must be json, csv, xml or greenbutton")
            }
        } catch let error as PowerInputError {
            throw HubError.malformed(error.message)
        }
        var headers = HTTPFields()
        headers[.contentType] = type
        headers[.contentDisposition] = "attachment; filename=\"\(fileName)\""
        return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(string: body)))
    }
}
