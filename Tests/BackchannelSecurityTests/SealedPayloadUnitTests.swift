import BackchannelProtocol
import BackchannelSecurity
import Foundation
import Testing

@Suite struct SealedPayloadUnitTests {
    let accounting = AudienceKey.generate(name: "accounting")
    let company = AudienceKey.generate(name: "company")

    func sealed(device: String = "meter-001", item: String = "item-1") throws -> SealedPayload {
        try SealedPayload.seal(
            [
                .init(label: "billing", value: ["kWh": 1234.5], audience: accounting.publicKey),
                .init(label: "powerQuality", value: ["V": 231.2, "PF": 0.93], audience: company.publicKey),
            ], device: device, itemID: item)
    }

    @Test func eachKeyOpensItsOwnPartAndNamesTheOthers() throws {
        let payload = try sealed()
        let forAccounting = payload.open(with: accounting, device: "meter-001", itemID: "item-1")
        #expect(forAccounting["billing"] == ["kWh": 1234.5])
        #expect(forAccounting["powerQuality"] == nil)
        #expect(forAccounting.closed.map(\.label) == ["powerQuality"])
        #expect(forAccounting.closed.first?.to == company.keyId)
        let forCompany = payload.open(with: company, device: "meter-001", itemID: "item-1")
        #expect(forCompany["powerQuality"] == ["V": 231.2, "PF": 0.93])
        #expect(forCompany.closed.map(\.label) == ["billing"])
        let nobody = payload.open(with: .generate(name: "x"), device: "meter-001", itemID: "item-1")
        #expect(nobody.opened.isEmpty)
        #expect(nobody.closed.count == 2)
    }

    @Test func theJSONFormRoundTripsAndHoldsNoPlaintext() throws {
        let payload = try sealed()
        let data = payload.jsonValue
        #expect(SealedPayload(data) == payload)
        let text = String(decoding: try WireJSON.encode(data), as: UTF8.self)
        #expect(!text.contains("1234.5"))
        #expect(!text.contains("kWh"))
        #expect(text.contains(#""sealed":1"#))
        #expect(SealedPayload(["kWh": 1]) == nil)
    }

    @Test func swappedOrMovedPartsDoNotOpen() throws {
        // Two parts for the same key, labels swapped by whoever stores them.
        var payload = try SealedPayload.seal(
            [
                .init(label: "billing", value: ["kWh": 1], audience: accounting.publicKey),
                .init(label: "tariff", value: ["rate": 2], audience: accounting.publicKey),
            ], device: "meter-001", itemID: "item-1")
        let first = payload.parts[0].label
        payload.parts[0].label = payload.parts[1].label
        payload.parts[1].label = first
        let opening = payload.open(with: accounting, device: "meter-001", itemID: "item-1")
        #expect(opening.opened.isEmpty)
        #expect(opening.closed.count == 2)
        // A part copied into another item or another device's message.
        let original = try sealed()
        #expect(original.open(with: accounting, device: "meter-001", itemID: "item-2").opened.isEmpty)
        #expect(original.open(with: accounting, device: "meter-002", itemID: "item-1").opened.isEmpty)
        // A part re-addressed to another audience id.
        var readdressed = original
        readdressed.parts[1].to = accounting.keyId
        #expect(
            readdressed.open(with: accounting, device: "meter-001", itemID: "item-1").opened.map(\.label) == ["billing"]
        )
        // A flipped ciphertext byte.
        var flipped = original
        var ct = Data(base64Encoded: flipped.parts[0].ct)!
        ct[0] ^= 1
        flipped.parts[0].ct = ct.base64EncodedString()
        #expect(flipped.open(with: accounting, device: "meter-001", itemID: "item-1").opened.isEmpty)
    }

    @Test func labelsMustBeUniqueAndValid() {
        #expect(throws: SecurityError.self) {
            try SealedPayload.seal(
                [
                    .init(label: "billing", value: 1, audience: accounting.publicKey),
                    .init(label: "billing", value: 2, audience: company.publicKey),
                ], device: "d", itemID: "i")
        }
        #expect(throws: SecurityError.self) {
            try SealedPayload.seal(
                [.init(label: "bad label", value: 1, audience: accounting.publicKey)], device: "d", itemID: "i")
        }
        #expect(throws: SecurityError.self) { try SealedPayload.seal([], device: "d", itemID: "i") }
    }
}
