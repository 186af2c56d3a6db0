import BackchannelPower
import BackchannelProtocol
import Foundation
import Testing

/// A flat UTC tariff.
private func flat(_ name: String, rate: String, fixed: String, demand: String? = nil) -> Tariff {
    let hours = Array(repeating: Array(repeating: 0, count: 24), count: 12)
    return Tariff(
        name: name, timeZone: "UTC", periods: ["all"], energyWeekdaySchedule: hours,
        energyWeekendSchedule: hours,
        energyRates: [dec(rate)], fixedChargePerMonth: dec(fixed), demandChargePerKW: demand.map(dec))
}

/// Eight 15-minute intervals of 2.5 kWh from 2026-07-15T00:00Z: 20 kWh, 10 kW throughout.
private func profile() throws -> [IntervalReading] {
    let start = try at("2026-07-15T00:00:00Z")
    return (0..<8).map { IntervalReading(start: start.adding(seconds: Double($0 * 900)), kWh: 2.5) }
}

/// Alpha: 20 × 0.15 = 3.00 + fixed 1.00 = 4.00 (0.20/kWh).
/// Beta: 20 × 0.12 = 2.40 + fixed 0.50 + demand 10 kW × 0.10 = 1.00 → 3.90 (0.195/kWh).
/// Gamma: 20 × 0.18 = 3.60, no fixed → 3.60 (0.18/kWh).
private let offers = [
    SupplierOffer(
        supplier: "Alpha", offerID: "A-1", tariff: flat("Alpha basic", rate: "0.15", fixed: "1.00")),
    SupplierOffer(
        supplier: "Beta", tariff: flat("Beta demand", rate: "0.12", fixed: "0.50", demand: "0.10")),
    SupplierOffer(supplier: "Gamma", tariff: flat("Gamma flat", rate: "0.18", fixed: "0")),
]

private func choose(
    _ offers: [SupplierOffer], ceiling: String, current: String? = nil
) throws -> SupplierChoice {
    try SupplierChoice.evaluate(
        offers: offers, intervals: profile(), from: at("2026-07-15T00:00:00Z"),
        to: at("2026-07-15T02:00:00Z"),
        ceilingPerKWh: dec(ceiling), currentSupplier: current)
}

@Suite("Supplier choice")
struct SupplierChoiceTests {
    @Test("worked example: ranked by total; cheapest exactly at the ceiling is accepted")
    func rankingAtCeiling() throws {
        // Ceiling 0.18 × 20 kWh = 3.60; Gamma costs 3.60: at the ceiling is within it.
        let choice = try choose(offers, ceiling: "0.18", current: "Alpha")
        #expect(choice.ranking.map(\.supplier) == ["Gamma", "Beta", "Alpha"])
        #expect(choice.ranking.map(\.total) == [dec("3.6"), dec("3.9"), dec("4")])
        #expect(choice.ranking.map(\.averagePerKWh) == [dec("0.18"), dec("0.195"), dec("0.2")])
        #expect(choice.ranking.map(\.withinCeiling) == [true, false, false])
        #expect(choice.ranking.map(\.rank) == [1, 2, 3])
        #expect(choice.ranking[2].offerID == "A-1")
        #expect(choice.decision == .switchSupplier)
        #expect(choice.chosen?.supplier == "Gamma")
        #expect(choice.kWh == 20)
        // Alpha 4.00 - Gamma 3.60 = 0.40 more.
        #expect(choice.reason.contains("Alpha would cost 4 USD, 0.4 USD more"))
    }

    @Test("every offer above the ceiling, by the smallest step: reduce consumption")
    func aboveCeiling() throws {
        // Ceiling 0.1799 × 20 = 3.598 < Gamma's 3.60.
        let choice = try choose(offers, ceiling: "0.1799", current: "Alpha")
        #expect(choice.decision == .reduceConsumption)
        #expect(choice.chosen == nil)
        #expect(choice.ranking.allSatisfy { !$0.withinCeiling })
        #expect(choice.reason.contains("every offer averages above the ceiling of 0.1799 USD/kWh"))
    }

    @Test("the current supplier already cheapest stays; a tie with the cheapest also stays")
    func stay() throws {
        let choice = try choose(offers, ceiling: "0.20", current: "Gamma")
        #expect(choice.decision == .stay)
        #expect(choice.chosen?.supplier == "Gamma")
        // Delta: 20 × 0.15 = 3.00 + fixed 0.60 = 3.60, tied with Gamma; ties rank by name: Delta first.
        let tied =
            offers + [
                SupplierOffer(supplier: "Delta", tariff: flat("Delta", rate: "0.15", fixed: "0.60"))
            ]
        let withoutCurrent = try choose(tied, ceiling: "0.20")
        #expect(withoutCurrent.ranking.map(\.supplier) == ["Delta", "Gamma", "Beta", "Alpha"])
        #expect(
            withoutCurrent.decision == .switchSupplier && withoutCurrent.chosen?.supplier == "Delta")
        let currentGamma = try choose(tied, ceiling: "0.20", current: "Gamma")
        #expect(currentGamma.decision == .stay && currentGamma.chosen?.supplier == "Gamma")
    }

    @Test("JSON round trip of offers and the decision's wire names")
    func json() throws {
        let encoder = JSONEncoder()
        let data = try encoder.encode(offers)
        #expect(try SupplierOffer.offers(json: data) == offers)
        let choice = try choose(offers, ceiling: "0.1799")
        let text = String(decoding: try encoder.encode(choice), as: UTF8.self)
        #expect(text.contains(#""decision":"reduce-consumption""#))
        #expect(try JSONDecoder().decode(SupplierChoice.self, from: Data(text.utf8)) == choice)
        let request = SupplierChoiceRequest(
            from: try at("2026-07-15T00:00:00Z"), to: try at("2026-07-15T02:00:00Z"),
            ceilingPerKWh: dec("0.18"),
            currentSupplier: "Alpha", offers: offers)
        let decoded = try SupplierChoiceRequest(json: try encoder.encode(request))
        #expect(try decoded.evaluate(intervals: profile()).decision == .switchSupplier)
    }

    @Test("refusals: no offers, mixed currencies, an offer that cannot be billed is named")
    func refusals() throws {
        #expect(throws: PowerInputError("offers: at least one offer is needed")) {
            _ = try choose([], ceiling: "0.2")
        }
        var euro = offers[0]
        euro.tariff.currency = "EUR"
        #expect(throws: PowerInputError("offers: currencies differ (EUR, USD)")) {
            _ = try choose([euro, offers[1]], ceiling: "0.2")
        }
        var broken = offers[1]
        broken.tariff.energyRates = []
        do {
            _ = try choose([offers[0], broken], ceiling: "0.2")
            Issue.record("a broken offer was priced")
        } catch let error as PowerInputError {
            #expect(error.message.hasPrefix("offers[1] (Beta): tariff \"Beta demand\" energyRates"))
        }
        #expect(throws: PowerInputError.self) { _ = try choose(offers, ceiling: "-0.01") }
    }
}
