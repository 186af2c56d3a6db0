import BackchannelProtocol
import BackchannelSecurity
import Foundation
import Testing

@Suite struct SigningTests {
    static func directory() -> URL {
        FileManager.default.temporaryDirectory.appendingPathComponent("bc-sec-\(UUID().uuidString)")
    }

    @Test func aSignatureVerifiesOverTheCanonicalBytesAndNothingElse() throws {
        let key = SigningKey.generate(name: "utility")
        let signer = CommandSigner(key: key)
        let fields = SignedCommandFields(
            id: MessageID.make(), target: "meter-001", name: "billing.reset", args: ["period": "2026-11"],
            notBefore: nil, expiresAt: Timestamp(milliseconds: 1_800_000_600_000),
            issuedAt: Timestamp(milliseconds: 1_800_000_000_000), nonce: CommandSigner.makeNonce())
        let signature = signer.sign(fields)
        try signature.validate()
        #expect(signature.keyId == key.keyId)
        #expect(signature.nonce == fields.nonce)
        let raw = try #require(Data(base64Encoded: signature.signature))
        #expect(key.publicKey.isValidSignature(raw, for: fields.canonicalBytes))
        var altered = fields
        altered.args = ["period": "2026-12"]
        #expect(!key.publicKey.isValidSignature(raw, for: altered.canonicalBytes))
        #expect(!SigningKey.generate(name: "other").publicKey.isValidSignature(raw, for: fields.canonicalBytes))
    }

    @Test func keyIdsAreTheAlgorithmAndSixteenBytesOfTheKeysHash() throws {
        // RFC 8032 test 1 public key.
        let raw = Array(
            "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a".hexBytes)
        let key = try VerifyingKey(rawRepresentation: raw)
        #expect(key.keyId.hasPrefix("ed25519:"))
        #expect(key.keyId.count == "ed25519:".count + 32)
        #expect(key.keyId == KeyID.make(.ed25519, publicKey: raw))
        #expect(throws: SecurityError.self) { try VerifyingKey(rawRepresentation: [1, 2, 3]) }
    }

    @Test func nonceIsSixteenRandomBytesInBase64URL() {
        let a = CommandSigner.makeNonce()
        let b = CommandSigner.makeNonce()
        #expect(a.count == 22)
        #expect(a != b)
        #expect(a.allSatisfy { $0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" })
    }

    @Test func signingASubmissionFillsIdArgsAndAbsoluteExpiry() throws {
        let signer = CommandSigner(key: .generate(name: "ops"))
        var request = SubmitCommandRequest(name: "relay", ttl: 600)
        let now = Timestamp(milliseconds: 1_800_000_000_000)
        signer.sign(&request, for: "meter-007", now: now)
        #expect(request.id != nil)
        #expect(request.args == .object([:]))
        #expect(request.ttl == nil)
        #expect(request.expiresAt == now.adding(seconds: 600))
        let signature = try #require(request.signature)
        #expect(signature.issuedAt == now)
        let fields = SignedCommandFields(
            id: request.id!, target: "meter-007", name: "relay", args: [:], notBefore: nil,
            expiresAt: request.expiresAt!, issuedAt: now, nonce: signature.nonce)
        #expect(
            signer.key.publicKey.isValidSignature(Data(base64Encoded: signature.signature)!, for: fields.canonicalBytes)
        )
    }

    @Test func keyFilesRoundTripWithPrivateOnesOwnerOnly() throws {
        let directory = Self.directory()
        let key = SigningKey.generate(name: "utility")
        let url = directory.appendingPathComponent("utility.key")
        try KeyFile(key).write(to: url)
        let mode = try FileManager.default.attributesOfItem(atPath: url.path)[.posixPermissions] as? Int
        #expect(mode == 0o600)
        let read = try KeyFile.read(url)
        #expect(try read.signingKey().keyId == key.keyId)
        #expect(try read.signingKey().rawRepresentation == key.rawRepresentation)
        // Never silently replaced.
        #expect(throws: SecurityError.self) { try KeyFile(SigningKey.generate(name: "x")).write(to: url) }

        let publicURL = directory.appendingPathComponent("utility.pub")
        try read.publicOnly.write(to: publicURL)
        let publicFile = try KeyFile.read(publicURL)
        #expect(!publicFile.isPrivate)
        #expect(try publicFile.verifyingKey() == key.publicKey)
        #expect(throws: SecurityError.self) { try publicFile.signingKey() }

        let audience = AudienceKey.generate(name: "accounting")
        let audienceURL = directory.appendingPathComponent("accounting.key")
        try KeyFile(audience).write(to: audienceURL)
        let audienceFile = try KeyFile.read(audienceURL)
        #expect(audienceFile.algorithm == .x25519)
        #expect(audienceFile.keyId.hasPrefix("x25519:"))
        #expect(try audienceFile.audiencePublicKey() == audience.publicKey)
        #expect(throws: SecurityError.self) { try audienceFile.signingKey() }
    }

    @Test func aKeyFileWhosePrivateHalfDoesNotMatchIsRefused() throws {
        var file = KeyFile(SigningKey.generate(name: "a"))
        file.publicKey = SigningKey.generate(name: "b").publicKey.base64
        #expect(throws: SecurityError.self) { try file.validate() }
    }
}

extension String {
    var hexBytes: [UInt8] {
        var bytes: [UInt8] = []
        var index = startIndex
        while index < endIndex {
            let next = self.index(index, offsetBy: 2)
            bytes.append(UInt8(self[index..<next], radix: 16)!)
            index = next
        }
        return bytes
    }
}
