public import BackchannelProtocol
public import Foundation

/// A supplier's offer: a tariff to price a load profile with.
public struct SupplierOffer: Sendable, Hashable, Codable {
    /// The supplier's name; ties in cost are ranked by it.
    public var supplier: String
    /// The supplier's reference for the offer, if any.
    public var offerID: String?
    /// The offer's prices.
    public var tariff: Tariff

    /// Creates an offer.
    public init(supplier: String, offerID: String? = nil, tariff: Tariff) {
        self.supplier = supplier
        self.offerID = offerID
        self.tariff = tariff
    }

    /// Decodes a JSON array of offers and validates each tariff.
    public static func offers(json: Data) throws(PowerInputError) -> [SupplierOffer] {
        let offers = try BillingMath.decode([SupplierOffer].self, from: json, what: "offers")
        for (index, offer) in offers.enumerated() {
            do {
                try offer.tariff.validate()
            } catch {
                throw PowerInputError("offers[\(index)] (\(offer.supplier)): \(error.message)")
            }
        }
        return offers
    }
}

/// One offer's cost on the profile, as ranked.
public struct RankedOffer: Sendable, Hashable, Codable {
    /// 1 for the cheapest.
    public var rank: Int
    /// The supplier's name.
    public var supplier: String
    /// The supplier's reference for the offer, if any.
    public var offerID: String?
    /// The bill's total.
    public var total: Decimal
    /// total ÷ kWh, currency per kWh, half-up to 0.0001 (for display; the ceiling test is exact).
    public var averagePerKWh: Decimal
    /// Whether total ≤ ceiling × kWh (paying exactly the ceiling is within it).
    public var withinCeiling: Bool
    /// The full bill, with its line items and warnings.
    public var bill: Bill
}

/// What a supplier choice recommends.
public enum SupplierDecision: String, Sendable, Hashable, Codable {
    /// Move to the cheapest offer, which is within the ceiling.
    case switchSupplier = "switch-supplier"
    /// The current supplier's offer is already the cheapest and within the ceiling.
    case stay
    /// Every offer costs more than the ceiling on average: use less energy.
    case reduceConsumption = "reduce-consumption"
}

/// The choice among supplier offers for one device's real load profile.
///
/// Every offer is billed on the same intervals and period with `Bill.compute`; offers are ranked
/// by total (ties by supplier name, then offer ID). The ceiling is the most the customer will pay
/// on average, currency per kWh: an offer is within it when total ≤ ceiling × kWh, so an
/// average exactly at the ceiling is acceptable and only a higher one is not.
///
/// - `stay` when the current supplier is given and one of its offers costs as little as the
///   cheapest, within the ceiling;
/// - `switch-supplier` to the cheapest offer when it is within the ceiling;
/// - `reduce-consumption` when every offer's average is above the ceiling.
public struct SupplierChoice: Sendable, Hashable, Codable {
    /// The recommendation.
    public var decision: SupplierDecision
    /// Why, for a person.
    public var reason: String
    /// The offer recommended (the cheapest, or the current supplier's for `stay`); `nil` for
    /// `reduce-consumption`.
    public var chosen: RankedOffer?
    /// Every offer, cheapest first.
    public var ranking: [RankedOffer]
    /// The ceiling, currency per kWh.
    public var ceilingPerKWh: Decimal
    /// The profile's energy in the period, kWh.
    public var kWh: Decimal
    /// The currency of every cost.
    public var currency: String
    /// What the reader should know, such as missing intervals in the profile.
    public var warnings: [String]

    /// Prices every offer on `intervals` over `[from, to)` and decides.
    ///
    /// - Throws: `PowerInputError` when there is no offer, currencies differ, the ceiling is
    ///   negative, an offer cannot be billed (named), or the profile has no energy.
    public static func evaluate(
        offers: [SupplierOffer], intervals: [IntervalReading], from: Timestamp, to: Timestamp,
        ceilingPerKWh: Decimal, currentSupplier: String? = nil
    ) throws(PowerInputError) -> SupplierChoice {
        guard !offers.isEmpty else { throw PowerInputError("offers: at least one offer is needed") }
        guard !ceilingPerKWh.isNaN, ceilingPerKWh >= 0 else {
            throw PowerInputError("ceilingPerKWh: must be ≥ 0")
        }
        let currencies = Set(offers.map(\.tariff.currency))
        guard currencies.count == 1, let currency = currencies.first else {
            throw PowerInputError(
                "offers: currencies differ (\(currencies.sorted().joined(separator: ", ")))")
        }
        var priced: [(offer: SupplierOffer, bill: Bill)] = []
        for (index, offer) in offers.enumerated() {
            guard !offer.supplier.trimmingCharacters(in: .whitespaces).isEmpty else {
                throw PowerInputError("offers[\(index)].supplier: must not be empty")
            }
            do {
                priced.append(
                    (offer, try Bill.compute(tariff: offer.tariff, intervals: intervals, from: from, to: to)))
            } catch {
                throw PowerInputError("offers[\(index)] (\(offer.supplier)): \(error.message)")
            }
        }
        let kWh = priced[0].bill.energyKWh
        guard kWh > 0 else {
            throw PowerInputError("the profile has no energy in the period; no average price")
        }
        priced.sort {
            ($0.bill.total, $0.offer.supplier, $0.offer.offerID ?? "") < (
                $1.bill.total, $1.offer.supplier, $1.offer.offerID ?? ""
            )
        }
        let limit = ceilingPerKWh * kWh
        let ranking = priced.enumerated().map { index, item in
            RankedOffer(
                rank: index + 1, supplier: item.offer.supplier, offerID: item.offer.offerID,
                total: item.bill.total,
                averagePerKWh: BillingMath.rounded(item.bill.total / kWh, scale: 4),
                withinCeiling: item.bill.total <= limit, bill: item.bill)
        }
        var warnings: [String] = []
        if !priced[0].bill.complete {
            warnings.append(
                "the profile misses \(priced[0].bill.missingIntervals.count) intervals; costs cover the data present"
            )
        }
        let cheapest = ranking[0]
        func money(_ value: Decimal) -> String { "\(value) \(currency)" }
        guard cheapest.withinCeiling else {
            return SupplierChoice(
                decision: .reduceConsumption,
                reason:
                    "every offer averages above the ceiling of \(ceilingPerKWh) \(currency)/kWh; the cheapest, \(cheapest.supplier), averages \(cheapest.averagePerKWh) \(currency)/kWh (\(money(cheapest.total)) for \(kWh) kWh)",
                chosen: nil, ranking: ranking, ceilingPerKWh: ceilingPerKWh, kWh: kWh, currency: currency,
                warnings: warnings)
        }
        if let currentSupplier,
            let current = ranking.first(where: {
                $0.supplier == currentSupplier && $0.total == cheapest.total
            })
        {
            return SupplierChoice(
                decision: .stay,
                reason:
                    "the current supplier, \(currentSupplier), is already the cheapest at \(money(current.total)) (\(current.averagePerKWh) \(currency)/kWh, within the ceiling of \(ceilingPerKWh))",
                chosen: current, ranking: ranking, ceilingPerKWh: ceilingPerKWh, kWh: kWh,
                currency: currency,
                warnings: warnings)
        }
        var reason =
            "\(cheapest.supplier) is the cheapest at \(money(cheapest.total)) (\(cheapest.averagePerKWh) \(currency)/kWh, within the ceiling of \(ceilingPerKWh))"
        if let currentSupplier {
            if let current = ranking.first(where: { $0.supplier == currentSupplier }) {
                reason +=
                    "; \(currentSupplier) would cost \(money(current.total)), \(money(current.total - cheapest.total)) more"
            } else {
                reason += "; the current supplier, \(currentSupplier), made no offer"
            }
        }
        return SupplierChoice(
            decision: .switchSupplier, reason: reason, chosen: cheapest, ranking: ranking,
            ceilingPerKWh: ceilingPerKWh, kWh: kWh, currency: currency, warnings: warnings)
    }
}

/// A supplier choice as one JSON document, for the CLI and hub.
///
/// ```json
/// {"from": "2026-07-15T00:00:00Z", "to": "2026-07-15T02:00:00Z", "ceilingPerKWh": 0.18,
///  "currentSupplier": "Alpha", "offers": [{"supplier": "Alpha", "offerID": "A-1", "tariff": {…}}]}
/// ```
public struct SupplierChoiceRequest: Sendable, Hashable, Codable {
    /// The period's first instant (inclusive).
    public var from: Timestamp
    /// The period's end (exclusive).
    public var to: Timestamp
    /// The most the customer will pay on average, currency per kWh (inclusive).
    public var ceilingPerKWh: Decimal
    /// The customer's supplier now, if known.
    public var currentSupplier: String?
    /// The offers to compare.
    public var offers: [SupplierOffer]

    /// Creates a request.
    public init(
        from: Timestamp, to: Timestamp, ceilingPerKWh: Decimal, currentSupplier: String? = nil,
        offers: [SupplierOffer]
    ) {
        self.from = from
        self.to = to
        self.ceilingPerKWh = ceilingPerKWh
        self.currentSupplier = currentSupplier
        self.offers = offers
    }

    /// Decodes a request from JSON.
    public init(json: Data) throws(PowerInputError) {
        self = try BillingMath.decode(SupplierChoiceRequest.self, from: json, what: "request")
    }

    /// Evaluates the request on a device's intervals.
    public func evaluate(intervals: [IntervalReading]) throws(PowerInputError) -> SupplierChoice {
        try SupplierChoice.evaluate(
            offers: offers, intervals: intervals, from: from, to: to, ceilingPerKWh: ceilingPerKWh,
            currentSupplier: currentSupplier)
    }
}
