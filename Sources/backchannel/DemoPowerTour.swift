import BackchannelClient
import BackchannelPower
import BackchannelProtocol
import Foundation
import NIOHTTP1

/// The demo's tour of the power applications, run through the operator API once the fleet is
/// up: it stores a tariff and supplier offers, sets a shedding policy, raises and drops the
/// price, injects a voltage sag at a branch and a power cut at a load, and prints what the
/// hub did and why. Every step is an ordinary API call; the CLI equivalents are printed.
struct DemoPowerTour {
    let api: OperatorClient
    let timeZone: String
    let ids: [String]
    /// How many branch IEDs follow the master in `ids`.
    let branches: Int
    let say: @Sendable (String) -> Void

    /// The demo's TOU tariff: on-peak 14:00–19:00 on weekdays, demand, on-peak demand and a PF rule.
    static func tariff(
        timeZone: String, name: String = "General service TOU", offPeak: Decimal = 0.0825,
        onPeak: Decimal = 0.185, fixed: Decimal = 12.5, demand: Decimal? = 9.87
    ) -> Tariff {
        let weekday = Array(repeating: (0..<24).map { (14..<19).contains($0) ? 1 : 0 }, count: 12)
        let weekend = Array(repeating: Array(repeating: 0, count: 24), count: 12)
        return Tariff(
            name: name, utility: "Demo Electric", timeZone: timeZone, periods: ["off-peak", "on-peak"],
            energyWeekdaySchedule: weekday, energyWeekendSchedule: weekend, energyRates: [offPeak, onPeak],
            fixedChargePerMonth: fixed, demandChargePerKW: demand,
            onPeakDemand: demand.map { _ in OnPeakDemandCharge(periods: [1], chargePerKW: 4.56) },
            powerFactor: demand.map { _ in PowerFactorRule(target: 0.9) })
    }

    func run() async {
        do {
            try await tour()
        } catch {
            say("power tour stopped: \(error)")
        }
    }

    private func call(_ method: HTTPMethod, _ path: String, query: [String: String?] = [:], body: some Encodable)
        async throws -> JSONValue
    {
        try WireJSON.decode(
            JSONValue.self, from: try await api.power(method, path, query: query, body: try WireJSON.encode(body)))
    }

    private func get(_ path: String, query: [String: String?] = [:]) async throws -> JSONValue {
        try WireJSON.decode(JSONValue.self, from: try await api.power(.GET, path, query: query))
    }

    /// Waits for a condition on the hub, up to `seconds`.
    private func eventually(_ seconds: Double, _ check: () async throws -> Bool) async throws -> Bool {
        let deadline = ContinuousClock.now + .seconds(seconds)
        while ContinuousClock.now < deadline {
            if try await check() { return true }
            try await Task.sleep(for: .milliseconds(250))
        }
        return false
    }

    private func tour() async throws {
        guard ids.count >= 8, branches >= 1, branches + 4 < ids.count else { return }
        let master = ids[0]
        let branch = ids[1]
        let load = ids[branches + 1]
        let cut = ids[branches + 2]
        // Wait for the feeder to declare itself and the meters' interval history to arrive.
        _ = try await eventually(30) {
            guard case .array(let nodes)? = try await get("/topology")["nodes"] else { return false }
            return nodes.count == ids.count
        }
        _ = try await eventually(30) {
            guard case .array(let list) = try await get("/devices/\(load)/intervals") else { return false }
            return list.count >= 90
        }
        say("\n── power applications ─────────────────────────────────────────────")
        say(
            "feeder: \(master) is the master IED, \(ids[1...branches].joined(separator: ", ")) the branch IEDs; see `backchannel power topology`"
        )

        // Billing: a TOU + demand + PF tariff on the last day of real (UCI) load data.
        _ = try await call(.PUT, "/tariffs/general-tou", body: Self.tariff(timeZone: timeZone))
        let week = Timestamp(milliseconds: Timestamp.now().milliseconds / 900_000 * 900_000)
        let period: [String: String?] = [
            "tariff": "general-tou", "from": week.adding(seconds: -7 * 86_400).description, "to": week.description,
        ]
        let bill = try await get("/devices/\(load)/bill", query: period)
        say(
            "bill for \(load), the last 7 days under general-tou: \(bill["total"]?.doubleValue.map { String(format: "$%.2f", $0) } ?? "?") in \(lineCount(bill)) line items (`backchannel power bill --device \(load) --tariff-id general-tou`)"
        )

        // Supplier choice on the device's own load profile.
        let offers = [
            SupplierOffer(
                supplier: "Alpha Energy", offerID: "A-1",
                tariff: Self.tariff(
                    timeZone: timeZone, name: "Alpha flat", offPeak: 0.14, onPeak: 0.14, fixed: 10, demand: nil)),
            SupplierOffer(
                supplier: "Beta Power", offerID: "B-TOU",
                tariff: Self.tariff(
                    timeZone: timeZone, name: "Beta TOU", offPeak: 0.09, onPeak: 0.24, fixed: 8, demand: nil)),
        ]
        for offer in offers { _ = try await call(.POST, "/offers", body: offer) }
        let choice = try await call(
            .POST, "/devices/\(load)/supplier-choice", body: ["ceilingPerKWh": JSONValue.number(0.30)])
        say("supplier choice for \(load): \(choice["choice"]?["reason"]?.stringValue ?? "?")")

        // Tariff-threshold shedding: the seed's 0.80 $/kWh 06:00–18:00, 0.60 otherwise.
        _ = try await call(.PUT, "/shedding/\(load)", body: PriceLimitSchedule.seedExample(timeZone: timeZone))
        for price in [0.95, 0.40] {
            let update = try await call(.POST, "/price", body: ["price": JSONValue.number(price)])
            if case .array(let decisions)? = update["decisions"], let first = decisions.first {
                say(
                    "price \(price) $/kWh → \(first["decision"]?["action"]?.stringValue ?? "?") \(load): \(first["decision"]?["reason"]?.stringValue ?? "")"
                )
            }
        }

        // Power quality: a sag at a branch IED alerts everything downstream.
        _ = try await api.submit(
            SubmitCommandRequest(name: "pq.inject", args: ["kind": "dip", "magnitude": 0.5, "seconds": 0.2]), to: branch
        )
        var report: JSONValue?
        _ = try await eventually(20) {
            guard case .array(let alerts) = try await get("/alerts", query: ["device": branch]),
                let first = alerts.first,
                case .array(let pending)? = first["propagation"]?["pending"], pending.isEmpty
            else { return false }
            report = first
            return true
        }
        if let report, let propagation = report["propagation"] {
            let count = (propagation["answered"].flatMap { if case .array(let a) = $0 { a.count } else { nil } }) ?? 0
            say(
                "PQ: \(report["event"]?.stringValue ?? "event") at \(branch) → alerts to \(count) downstream devices, all acknowledged within \(String(format: "%.0f", (propagation["maxSeconds"]?.doubleValue ?? 0) * 1000)) ms; \(master) told it is contained (`backchannel power alerts`)"
            )
        }

        // Outage: a power cut at a load, its last gasp, restoration, and reliability.
        _ = try await api.submit(SubmitCommandRequest(name: "outage.inject", args: ["seconds": 5]), to: cut)
        let closed = try await eventually(30) {
            guard case .array(let outages) = try await get("/outages", query: ["device": cut]),
                let first = outages.first
            else {
                return false
            }
            return first["end"] != nil
        }
        if closed {
            let reliability = try await get("/reliability")
            say(
                "outage: \(cut) sent its last gasp, the hub opened an outage and closed it on restoration; MAIFI now \(reliability["system"]?["maifi"]?.doubleValue.map { String(format: "%.3f", $0) } ?? "?") (`backchannel power outages`, `backchannel power reliability`)"
            )
        }
        say("green button: `backchannel power export --device \(load) --format greenbutton`")
        say("────────────────────────────────────────────────────────────────────\n")
    }

    private func lineCount(_ bill: JSONValue) -> Int {
        if case .array(let items)? = bill["lineItems"] { return items.count }
        return 0
    }
}
