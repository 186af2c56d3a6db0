import BackchannelProtocol
import BackchannelSecurity
import Foundation
import Testing

/// The example in docs/protocol.md ("Signed commands"), pinned: Ed25519 is deterministic, so
/// the same key and fields always give the same signature.
@Suite struct SignatureVectorTests {
    /// RFC 8032, section 7.1, test 1: the secret key (seed).
    static let seed = Array("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60".hexBytes)

    static let fields = SignedCommandFields(
        id: "01936f2a-8c00-7a4e-9b1d-5c2e8f0a1b2c", target: "meter-001", name: "billing.reset",
        args: ["period": "2026-11"], notBefore: nil,
        expiresAt: Timestamp(rfc3339: "2026-11-27T15:00:00.000Z")!,
        issuedAt: Timestamp(rfc3339: "2026-11-27T14:00:00.000Z")!, nonce: "q5Wb3Jx0T1m9f2cK8hYpAw")

    @Test func theDocumentedExampleSignature() throws {
        let key = try SigningKey(name: "utility", rawRepresentation: Self.seed)
        #expect(key.publicKey.base64 == "11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=")
        #expect(key.keyId == "ed25519:21fe31dfa154a261626bf854046fd227")
        #expect(
            String(decoding: Self.fields.canonicalBytes, as: UTF8.self)
                == #"{"args":{"period":"2026-11"},"expiresAt":"2026-11-27T15:00:00.000Z","id":"01936f2a-8c00-7a4e-9b1d-5c2e8f0a1b2c","issuedAt":"2026-11-27T14:00:00.000Z","kind":"operator","name":"billing.reset","nonce":"q5Wb3Jx0T1m9f2cK8hYpAw","notBefore":null,"target":"meter-001","v":2}"#
        )
        // Checked with an independent Ed25519 implementation (Python `cryptography`).
        let signature = CommandSigner(key: key).sign(Self.fields)
        #expect(
            signature.signature
                == "W4IkkkMmRvy5ulWNCYheQMMX3ofKe8XcH7djIT5n2FEqFPXyj6dQelAqH8EamqlLmBYj65Rip9lvRIc4ouCJAA==")
        #expect(signature.keyId == key.keyId)
    }
}
