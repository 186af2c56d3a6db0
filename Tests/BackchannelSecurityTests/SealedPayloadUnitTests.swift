import BackchannelProtocol
import BackchannelSecurity
import Foundation
import Testing

@Suite struct SealedPayloadUnitTests {
    let accounting = AudienceKey.generate(name: "accounting")
    let company = AudienceKey.generate(name: "company")
    let at = Timestamp(milliseconds: 1_800_000_000_000)

    func sealed(device: String = "meter-001", item: String = "item-1") throws -> SealedPayload {
        try SealedPayload.seal(
            [
                .init(label: "billing", value: ["kWh": 1234.5], audience: accounting.publicKey),
                .init(label: "powerQuality", value: ["V": 231.2, "PF": 0.93], audience: company.publicKey),
            ], device: device, itemID: item, kind: .reading, name: "meter", at: at)
    }

    @Test func eachKeyOpensItsOwnPartAndNamesTheOthers() throws {
        let payload = try sealed()
        let forAccounting = payload.open(
            with: accounting, device: "meter-001", itemID: "item-1", kind: .reading, name: "meter", at: at)
        #expect(forAccounting["billing"] == ["kWh": 1234.5])
        #expect(forAccounting["powerQuality"] == nil)
        #expect(forAccounting.closed.map(\.label) == ["powerQuality"])
        #expect(forAccounting.closed.first?.to == company.keyId)
        let forCompany = payload.open(
            with: company, device: "meter-001", itemID: "item-1", kind: .reading, name: "meter", at: at)
        #expect(forCompany["powerQuality"] == ["V": 231.2, "PF": 0.93])
        #expect(forCompany.closed.map(\.label) == ["billing"])
        let nobody = payload.open(
            with: .generate(name: "x"), device: "meter-001", itemID: "item-1", kind: .reading, name: "meter", at: at)
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
        #expect(text.contains(#""sealed":2"#))
        #expect(SealedPayload(["kWh": 1]) == nil)
    }

    @Test func swappedOrMovedPartsDoNotOpen() throws {
        // Two parts for the same key, labels swapped by whoever stores them.
        var payload = try SealedPayload.seal(
            [
                .init(label: "billing", value: ["kWh": 1], audience: accounting.publicKey),
                .init(label: "tariff", value: ["rate": 2], audience: accounting.publicKey),
            ], device: "meter-001", itemID: "item-1", kind: .reading, name: "meter", at: at)
        let first = payload.parts[0].label
        payload.parts[0].label = payload.parts[1].label
        payload.parts[1].label = first
        let opening = payload.open(
            with: accounting, device: "meter-001", itemID: "item-1", kind: .reading, name: "meter", at: at)
        #expect(opening.opened.isEmpty)
        #expect(opening.closed.count == 2)
        // A part copied into another item or another device's message.
        let original = try sealed()
        #expect(
            original.open(
                with: accounting, device: "meter-001", itemID: "item-2", kind: .reading, name: "meter", at: at
            ).opened.isEmpty)
        #expect(
            original.open(
                with: accounting, device: "meter-002", itemID: "item-1", kind: .reading, name: "meter", at: at
            ).opened.isEmpty)
        // A part re-addressed to another audience id.
        var readdressed = original
        readdressed.parts[1].to = accounting.keyId
        #expect(
            readdressed.open(
                with: accounting, device: "meter-001", itemID: "item-1", kind: .reading, name: "meter", at: at
            ).opened.map(\.label) == ["billing"]
        )
        // A flipped ciphertext byte.
        var flipped = original
        var ct = Data(base64Encoded: flipped.parts[0].ct)!
        ct[0] ^= 1
        flipped.parts[0].ct = ct.base64EncodedString()
        #expect(
            flipped.open(with: accounting, device: "meter-001", itemID: "item-1", kind: .reading, name: "meter", at: at)
                .opened.isEmpty)
    }

    @Test func aPartDoesNotOpenForAnItemWhoseTimeKindOrNameWasChanged() throws {
        let payload = try sealed()
        func opened(kind: UplinkKind = .reading, name: String = "meter", at: Timestamp? = nil) -> [String] {
            payload.open(
                with: accounting, device: "meter-001", itemID: "item-1", kind: kind, name: name, at: at ?? self.at
            )
            .opened.map(\.label)
        }
        #expect(opened() == ["billing"])
        #expect(opened(at: at.adding(seconds: 3600)).isEmpty)
        #expect(opened(kind: .event).isEmpty)
        #expect(opened(name: "tariff").isEmpty)
        // A format-1 label on a format-2 payload (a downgrade) does not open either.
        var downgraded = payload
        downgraded.sealed = 1
        #expect(
            downgraded.open(
                with: accounting, device: "meter-001", itemID: "item-1", kind: .reading, name: "meter", at: at
            )
            .opened.isEmpty)
        #expect(
            String(
                decoding: SealedPayload.aad(
                    device: "sealed-001", itemID: "01a21e8a-ced0-70b6-be49-0a188e7935cd", kind: .reading, name: "meter",
                    at: Timestamp(rfc3339: "2026-11-27T18:00:00.000Z")!, label: "billing",
                    to: "x25519:5943928e9febcb70dd8b528c8f8342b4"), as: UTF8.self)
                == #"{"at":"2026-11-27T18:00:00.000Z","device":"sealed-001","id":"01a21e8a-ced0-70b6-be49-0a188e7935cd","kind":"reading","label":"billing","name":"meter","to":"x25519:5943928e9febcb70dd8b528c8f8342b4","v":2}"#
        )
    }

    @Test func labelsMustBeUniqueAndValid() {
        #expect(throws: SecurityError.self) {
            try SealedPayload.seal(
                [
                    .init(label: "billing", value: 1, audience: accounting.publicKey),
                    .init(label: "billing", value: 2, audience: company.publicKey),
                ], device: "d", itemID: "i", kind: .reading, name: "meter", at: at)
        }
        #expect(throws: SecurityError.self) {
            try SealedPayload.seal(
                [.init(label: "bad label", value: 1, audience: accounting.publicKey)], device: "d", itemID: "i",
                kind: .reading, name: "meter", at: at)
        }
        #expect(throws: SecurityError.self) {
            try SealedPayload.seal([], device: "d", itemID: "i", kind: .reading, name: "meter", at: at)
        }
    }

    /// The example in docs/protocol.md ("Sealed payloads"), also opened by an independent
    /// RFC 9180 implementation (Python `cryptography` primitives).
    @Test func theDocumentedExampleOpens() throws {
        let accounting = try AudienceKey(
            name: "accounting", rawRepresentation: Data(base64Encoded: "WMqBoJ6Py4nCVFaWDESQM64VnIXKaZ4l0sBnQvNPunc=")!)
        #expect(accounting.keyId == "x25519:5943928e9febcb70dd8b528c8f8342b4")
        let data = try WireJSON.decode(
            JSONValue.self,
            from: Data(
                #"{"parts":[{"ct":"KI116A8Dc2L47d/l8VC2NC2N0OZcvX2bJaM0xTtHG6tLLtwPDF9oyVqD0kyeWVuBoq/XNcEoXudM4HhU","enc":"WqgrZdTWRgVTjRoCak9Cwj+xynXUZfl6dTaesBulKF8=","label":"billing","to":"x25519:5943928e9febcb70dd8b528c8f8342b4"},{"ct":"L/keYcosqzapeOnodgZ9pRxV6hSAIspP95LUpvnKsYok8pQndOa6gsMH46SD3bs=","enc":"5LKNHuBOSF9BJz9o9pMeeaLAe95VUZfichlipFA9i2I=","label":"powerQuality","to":"x25519:12c879c90dc742f0572e302aba25726f"}],"sealed":1}"#
                    .utf8))
        let payload = try #require(SealedPayload(data))
        // Format 1: kind, name and time are not bound, so any will do.
        let opening = payload.open(
            with: accounting, device: "sealed-001", itemID: "01a21e8a-ced0-70b6-be49-0a188e7935cd", kind: .event,
            name: "anything", at: Timestamp(milliseconds: 0))
        #expect(opening["billing"] == ["kW": 1.769, "kWh": 8472.591, "relay": "closed"])
        #expect(opening.closed.map(\.label) == ["powerQuality"])
        #expect(
            String(
                decoding: SealedPayload.aad(
                    device: "sealed-001", itemID: "01a21e8a-ced0-70b6-be49-0a188e7935cd", label: "billing",
                    to: accounting.keyId), as: UTF8.self)
                == #"{"device":"sealed-001","id":"01a21e8a-ced0-70b6-be49-0a188e7935cd","label":"billing","to":"x25519:5943928e9febcb70dd8b528c8f8342b4","v":1}"#
        )
    }
}
