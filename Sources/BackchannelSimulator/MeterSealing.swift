public import BackchannelProtocol
public import BackchannelSecurity

/// Who may read a simulated meter's readings: the billing values (`kWh`, `kW`, `relay`) are
/// sealed for one audience, the power quality values (`V`, `A`, `PF`) for another.
public struct MeterSealing: Sendable, Hashable {
    /// The audience of the `billing` part, such as the accounting department's key.
    public var billing: AudiencePublicKey
    /// The audience of the `powerQuality` part, such as the company's key.
    public var powerQuality: AudiencePublicKey

    /// Creates the sealing settings.
    public init(billing: AudiencePublicKey, powerQuality: AudiencePublicKey) {
        self.billing = billing
        self.powerQuality = powerQuality
    }

    /// The label of the billing part.
    public static let billingLabel = "billing"
    /// The label of the power quality part.
    public static let powerQualityLabel = "powerQuality"

    /// Splits a meter sample into its two sealed parts.
    public func parts(of sample: JSONValue) -> [SealedPayload.Plaintext] {
        func pick(_ keys: [String]) -> JSONValue {
            .object(sample.objectValue?.filter { keys.contains($0.key) } ?? [:])
        }
        return [
            .init(label: Self.billingLabel, value: pick(["kWh", "kW", "relay"]), audience: billing),
            .init(label: Self.powerQualityLabel, value: pick(["V", "A", "PF"]), audience: powerQuality),
        ]
    }
}
