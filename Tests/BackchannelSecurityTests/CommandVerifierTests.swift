import BackchannelProtocol
import BackchannelSecurity
import Foundation
import Testing

@Suite struct CommandVerifierTests {
    let utility = SigningKey.generate(name: "utility")
    let operations = SigningKey.generate(name: "operations")
    let stranger = SigningKey.generate(name: "stranger")
    let now = Timestamp(milliseconds: 1_800_000_000_000)

    /// The seed's policy: `billing.reset` only from the utility's key; operations may do the rest.
    var policy: TrustPolicy {
        var policy = TrustPolicy()
        policy.allowUnsigned = ["read", "ping"]
        policy.trust(.init(name: "utility", publicKey: utility.publicKey, allow: ["billing.*", "read"]))
        policy.trust(.init(name: "operations", publicKey: operations.publicKey, allow: ["relay", "set-*"]))
        return policy
    }

    func verifier(_ policy: TrustPolicy? = nil, directory: URL = SigningTests.directory()) throws -> CommandVerifier {
        try CommandVerifier(policy: policy ?? self.policy, directory: directory)
    }

    func command(
        _ name: String, by key: SigningKey?, id: String = MessageID.make(), args: JSONValue = [:],
        issuedAt: Timestamp? = nil, expiresIn: Double = 600, notBefore: Timestamp? = nil, target: String = "meter-001"
    ) -> LogicalRequest {
        let issued = issuedAt ?? now
        let expiresAt = issued.adding(seconds: expiresIn)
        var request = LogicalRequest(
            id: id, origin: "operator:ops", name: name, args: args, createdAt: issued, expiresAt: expiresAt,
            notBefore: notBefore, attempt: 1)
        if let key {
            request.signature = CommandSigner(key: key).sign(
                id: id, target: target, name: name, args: args, notBefore: notBefore, expiresAt: expiresAt,
                issuedAt: issued)
        }
        return request
    }

    func code(_ result: Result<CommandAcceptance, CommandRejection>) -> String? {
        if case .failure(let rejection) = result { return rejection.code }
        return nil
    }

    @Test func aSignedCommandFromAnAllowedIssuerIsAccepted() throws {
        let verifier = try verifier()
        let result = verifier.verify(command("billing.reset", by: utility), device: "meter-001", now: now)
        let acceptance = try result.get()
        #expect(acceptance.issuer == "utility")
        #expect(acceptance.nonce != nil)
    }

    @Test func billingResetIsAcceptedOnlyFromTheUtilitysKey() throws {
        let verifier = try verifier()
        #expect(code(verifier.verify(command("billing.reset", by: utility), device: "meter-001", now: now)) == nil)
        #expect(
            code(verifier.verify(command("billing.reset", by: operations), device: "meter-001", now: now))
                == OutcomeCode.issuerNotAllowed)
        #expect(
            code(verifier.verify(command("billing.reset", by: stranger), device: "meter-001", now: now))
                == OutcomeCode.unknownIssuer)
        #expect(
            code(verifier.verify(command("billing.reset", by: nil), device: "meter-001", now: now))
                == OutcomeCode.unsigned)
        // Operations' patterns: exact names and `set-*`.
        #expect(code(verifier.verify(command("set-interval", by: operations), device: "meter-001", now: now)) == nil)
        #expect(
            code(verifier.verify(command("relay", by: utility), device: "meter-001", now: now))
                == OutcomeCode.issuerNotAllowed)
    }

    @Test func unsignedCommandsRunOnlyWhereThePolicySaysSo() throws {
        let strict = try verifier()
        #expect(code(strict.verify(command("read", by: nil), device: "meter-001", now: now)) == nil)
        #expect(code(strict.verify(command("relay", by: nil), device: "meter-001", now: now)) == OutcomeCode.unsigned)
        var lenient = policy
        lenient.requireSigned = false
        let open = try verifier(lenient)
        #expect(code(open.verify(command("relay", by: nil), device: "meter-001", now: now)) == nil)
        // Protecting a few names and leaving the rest unsigned.
        lenient.requireSignedFor = ["billing.*"]
        let some = try verifier(lenient)
        #expect(code(some.verify(command("relay", by: nil), device: "meter-001", now: now)) == nil)
        #expect(
            code(some.verify(command("billing.reset", by: nil), device: "meter-001", now: now)) == OutcomeCode.unsigned)
        #expect(code(some.verify(command("billing.reset", by: utility), device: "meter-001", now: now)) == nil)
        // A signature present is still checked.
        #expect(
            code(open.verify(command("relay", by: stranger), device: "meter-001", now: now))
                == OutcomeCode.unknownIssuer)
    }

    @Test func anythingChangedAfterSigningIsABadSignature() throws {
        let verifier = try verifier()
        let signed = command("billing.reset", by: utility, args: ["period": "2026-11"])
        var args = signed
        args.args = ["period": "2026-10"]
        var expiry = signed
        expiry.expiresAt = signed.expiresAt.adding(seconds: 60)
        var notBefore = signed
        notBefore.notBefore = now.adding(seconds: 10)
        var name = signed
        name.name = "billing.reset-all"
        var id = signed
        id.id = MessageID.make()
        var issued = signed
        issued.signature?.issuedAt = now.adding(seconds: -1)
        var nonce = signed
        nonce.signature?.nonce = CommandSigner.makeNonce()
        var garbage = signed
        garbage.signature?.signature = "not base64"
        for altered in [args, expiry, notBefore, name, id, issued, nonce, garbage] {
            #expect(code(verifier.verify(altered, device: "meter-001", now: now)) == OutcomeCode.badSignature)
        }
        // Delivered to another device than the one it was signed for.
        #expect(code(verifier.verify(signed, device: "meter-002", now: now)) == OutcomeCode.badSignature)
        #expect(code(verifier.verify(signed, device: "meter-001", now: now)) == nil)
    }

    @Test func aRendezvousRequestsSignatureCoversTheSendersRef() throws {
        var policy = self.policy
        let device = SigningKey.generate(name: "meter-002")
        policy.trust(.init(name: "meter-002", publicKey: device.publicKey, allow: ["read"]))
        let verifier = try verifier(policy)
        let expiresAt = now.adding(seconds: 300)
        var request = LogicalRequest(
            id: MessageID.make(), origin: "device:meter-002", name: "read", args: [:], createdAt: now,
            expiresAt: expiresAt, attempt: 1, ref: "gather-1.0")
        request.signature = CommandSigner(key: device).sign(
            kind: .peer, id: "gather-1.0", target: "meter-001", name: "read", args: [:], expiresAt: expiresAt,
            issuedAt: now)
        #expect(code(verifier.verify(request, device: "meter-001", now: now)) == nil)
        var noRef = request
        noRef.ref = nil
        #expect(code(verifier.verify(noRef, device: "meter-001", now: now)) == OutcomeCode.badSignature)
        // The hub re-labels it an operator command under the signed ref: the kind does not match.
        var asOperator = request
        asOperator.id = "gather-1.0"
        asOperator.origin = "operator:root"
        asOperator.ref = nil
        #expect(code(verifier.verify(asOperator, device: "meter-001", now: now)) == OutcomeCode.badSignature)
    }

    @Test func anOperatorCommandDeliveredAsARendezvousRequestUnderAnotherIdDoesNotVerify() throws {
        let verifier = try verifier()
        let signed = command("billing.reset", by: utility, id: "cmd-x")
        #expect(code(verifier.verify(signed, device: "meter-001", now: now)) == nil)
        // A hub delivering it as {id: Y, origin: device:z, ref: X}, to run it under id Y.
        var disguised = signed
        disguised.id = "cmd-y"
        disguised.origin = "device:meter-009"
        disguised.ref = "cmd-x"
        #expect(code(verifier.verify(disguised, device: "meter-001", now: now)) == OutcomeCode.badSignature)
    }

    @Test func theTimeWindowIsChecked() throws {
        let verifier = try verifier()
        func check(_ request: LogicalRequest, at time: Timestamp? = nil) -> String? {
            code(verifier.verify(request, device: "meter-001", now: time ?? now))
        }
        // Within the skew (300 s) either way: accepted.
        #expect(check(command("billing.reset", by: utility, issuedAt: now.adding(seconds: 299))) == nil)
        #expect(
            check(command("billing.reset", by: utility, issuedAt: now.adding(seconds: -3600), expiresIn: 7200)) == nil)
        // Issued in the future beyond the skew.
        #expect(
            check(command("billing.reset", by: utility, issuedAt: now.adding(seconds: 301)))
                == OutcomeCode.outsideWindow)
        // Older than maxAge (a week) plus skew, though not yet expired.
        #expect(
            check(
                command("billing.reset", by: utility, issuedAt: now.adding(seconds: -8 * 86400), expiresIn: 9 * 86400))
                == OutcomeCode.outsideWindow)
        // Expired.
        let expiring = command("billing.reset", by: utility, expiresIn: 60)
        #expect(check(expiring, at: now.adding(seconds: 59)) == nil)
        #expect(check(expiring, at: now.adding(seconds: 61)) == OutcomeCode.outsideWindow)
        // A signed lifetime longer than maxLifetime (31 days).
        #expect(check(command("billing.reset", by: utility, expiresIn: 32 * 86400)) == OutcomeCode.outsideWindow)
        // notBefore at or after expiresAt.
        #expect(
            check(command("billing.reset", by: utility, expiresIn: 60, notBefore: now.adding(seconds: 60)))
                == OutcomeCode.outsideWindow)
        #expect(check(command("billing.reset", by: utility, expiresIn: 60, notBefore: now.adding(seconds: 30))) == nil)
    }

    @Test func aNonceIsAcceptedOnceAndRememberedAcrossRestarts() throws {
        let directory = SigningTests.directory()
        let signed = command("billing.reset", by: utility)
        do {
            let verifier = try verifier(directory: directory)
            let acceptance = try verifier.verify(signed, device: "meter-001", now: now).get()
            try verifier.remember(acceptance, now: now)
            #expect(code(verifier.verify(signed, device: "meter-001", now: now)) == OutcomeCode.replay)
        }
        // A new process (a device restart) still refuses it, even under another delivery id.
        let reopened = try verifier(directory: directory)
        #expect(reopened.ledger.count == 1)
        var redelivered = signed
        redelivered.attempt = 2
        #expect(
            code(reopened.verify(redelivered, device: "meter-001", now: now.adding(seconds: 5))) == OutcomeCode.replay)
        // Another signature of the same command is a new command.
        #expect(code(reopened.verify(command("billing.reset", by: utility), device: "meter-001", now: now)) == nil)
    }

    @Test func recordingPrunesExpiredNoncesAndCompactsTheFile() throws {
        let directory = SigningTests.directory()
        let verifier = try verifier(directory: directory)
        let short = (0..<5).map { _ in command("billing.reset", by: utility, expiresIn: 60) }
        for request in short {
            try verifier.remember(try verifier.verify(request, device: "meter-001", now: now).get(), now: now)
        }
        #expect(verifier.ledger.count == 5)
        #expect(verifier.ledger.fileLines == 5)
        // Within the prune interval: nothing is pruned, even though the 5 expired.
        let later = now.adding(seconds: 120)
        let kept = command("billing.reset", by: utility, issuedAt: later, expiresIn: 3600)
        try verifier.remember(try verifier.verify(kept, device: "meter-001", now: later).get(), now: later)
        #expect(verifier.ledger.count == 6)
        // Past the interval (ten minutes by default): the next record prunes and rewrites.
        let muchLater = now.adding(seconds: 700)
        let next = command("billing.reset", by: utility, issuedAt: muchLater, expiresIn: 3600)
        try verifier.remember(try verifier.verify(next, device: "meter-001", now: muchLater).get(), now: muchLater)
        #expect(verifier.ledger.count == 2)
        #expect(verifier.ledger.horizon == short[0].expiresAt)
        let text = try String(contentsOf: verifier.ledger.url, encoding: .utf8)
        #expect(text.split(separator: "\n").count == 3, "the horizon and the two live entries")
        #expect(verifier.ledger.fileLines == 3)
        // A pruned nonce's command is still refused: by the horizon, whatever the clock says.
        #expect(code(verifier.verify(short[0], device: "meter-001", now: now)) == OutcomeCode.outsideWindow)
        let reopened = try self.verifier(directory: directory)
        #expect(reopened.ledger.count == 2)
        #expect(code(reopened.verify(short[1], device: "meter-001", now: now)) == OutcomeCode.outsideWindow)
    }

    @Test func expiredNoncesArePrunedAndTheirCommandsStayRefusedWhenTheClockGoesBack() throws {
        let directory = SigningTests.directory()
        let signed = command("billing.reset", by: utility, expiresIn: 60)
        do {
            let verifier = try verifier(directory: directory)
            try verifier.remember(try verifier.verify(signed, device: "meter-001", now: now).get(), now: now)
            try verifier.ledger.prune(now: now.adding(seconds: 120))
            #expect(verifier.ledger.count == 0)
            #expect(verifier.ledger.horizon == signed.expiresAt)
        }
        let reopened = try verifier(directory: directory)
        #expect(reopened.ledger.count == 0)
        #expect(reopened.ledger.horizon == signed.expiresAt)
        // The device's clock was set back to before the expiry: still not accepted again.
        #expect(code(reopened.verify(signed, device: "meter-001", now: now)) == OutcomeCode.outsideWindow)
    }

    @Test func aTornLastLineOfTheNonceLedgerIsCutOff() throws {
        let directory = SigningTests.directory()
        let signed = command("billing.reset", by: utility)
        do {
            let verifier = try verifier(directory: directory)
            try verifier.remember(try verifier.verify(signed, device: "meter-001", now: now).get(), now: now)
        }
        let url = directory.appendingPathComponent("nonces.journal")
        let handle = try FileHandle(forWritingTo: url)
        try handle.seekToEnd()
        try handle.write(contentsOf: Data(#"{"keyId":"ed25519:00","non"#.utf8))
        try handle.close()
        let reopened = try verifier(directory: directory)
        #expect(reopened.ledger.count == 1)
        let other = command("billing.reset", by: utility)
        try reopened.remember(try reopened.verify(other, device: "meter-001", now: now).get(), now: now)
        let again = try verifier(directory: directory)
        #expect(again.ledger.count == 2)
        #expect(code(again.verify(other, device: "meter-001", now: now)) == OutcomeCode.replay)
    }

    @Test func namePatterns() {
        #expect(NamePattern.matches("billing.*", "billing.reset"))
        #expect(!NamePattern.matches("billing.*", "billing"))
        #expect(!NamePattern.matches("billing.*", "xbilling.reset"))
        #expect(NamePattern.matches("*", "anything"))
        #expect(NamePattern.matches("set-*", "set-time"))
        #expect(NamePattern.matches("*.reset", "billing.reset"))
        #expect(NamePattern.matches("relay", "relay"))
        #expect(!NamePattern.matches("relay", "relay2"))
        #expect(NamePattern.matches("a*b*c", "aXXbYYc"))
        #expect(!NamePattern.matches("a*b*c", "aXXbYY"))
        #expect(NamePattern.isValid("billing.*"))
        #expect(!NamePattern.isValid("billing reset"))
        #expect(!NamePattern.isValid(""))
    }

    @Test func policyFilesRoundTripAndBadOnesAreRefused() throws {
        let url = SigningTests.directory().appendingPathComponent("trust.json")
        try policy.write(to: url)
        let read = try TrustPolicy.read(url)
        #expect(read == policy)
        let minimal = try TrustPolicy.decode(Data(#"{"keys":[]}"#.utf8))
        #expect(minimal.requireSigned)
        #expect(minimal.clockSkew == 300)
        #expect(throws: SecurityError.self) {
            try TrustPolicy.decode(Data(#"{"keys":[{"name":"x","publicKey":"AAAA","allow":["*"]}]}"#.utf8))
        }
        let key = utility.publicKey.base64
        #expect(throws: SecurityError.self) {
            try TrustPolicy.decode(Data(#"{"keys":[{"name":"x","publicKey":"\#(key)","allow":["bad name"]}]}"#.utf8))
        }
        #expect(throws: SecurityError.self) {
            try TrustPolicy.decode(
                Data(#"{"keys":[{"name":"x","publicKey":"\#(key)","keyId":"ed25519:00","allow":["*"]}]}"#.utf8))
        }
    }
}
