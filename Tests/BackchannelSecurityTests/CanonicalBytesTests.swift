import BackchannelProtocol
import Testing

@Suite struct CanonicalBytesTests {
    @Test func sortedKeysNoWhitespace() {
        let fields = SignedCommandFields(
            id: "01J", target: "meter-1", name: "billing.reset",
            args: .object(["z": .number(1), "a": .string("x\"y"), "m": .array([.bool(true), .null, .number(2.5)])]),
            notBefore: nil, expiresAt: Timestamp(milliseconds: 1_800_000_000_000),
            issuedAt: Timestamp(milliseconds: 1_799_999_000_000), nonce: "AAAAAAAAAAAAAAAAAAAAAA")
        let text = String(decoding: fields.canonicalBytes, as: UTF8.self)
        #expect(
            text
                == #"{"args":{"a":"x\"y","m":[true,null,2.5],"z":1},"expiresAt":"2027-01-15T08:00:00.000Z","id":"01J","issuedAt":"2027-01-15T07:43:20.000Z","kind":"operator","name":"billing.reset","nonce":"AAAAAAAAAAAAAAAAAAAAAA","notBefore":null,"target":"meter-1","v":2}"#
        )
    }

    @Test func changedArgsChangeTheBytes() {
        func bytes(_ amount: Double) -> [UInt8] {
            SignedCommandFields(
                id: "1", target: "t", name: "n", args: .object(["kw": .number(amount)]), notBefore: nil,
                expiresAt: Timestamp(milliseconds: 0), issuedAt: Timestamp(milliseconds: 0), nonce: "n"
            ).canonicalBytes
        }
        #expect(bytes(5) != bytes(6))
    }
}
