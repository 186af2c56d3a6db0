import BackchannelHub
import BackchannelProtocol
import BackchannelSQLite
import BackchannelStore
import Foundation
import HTTPTypes
import Testing

/// What the hub checks when a signed command is submitted: it must carry the id and expiry the
/// signature covers, and the hub must not change them.
@Suite struct SignedSubmitTests {
    static let signature = CommandSignature(
        keyId: "ed25519:00112233445566778899aabbccddeeff", issuedAt: Timestamp(milliseconds: 1_800_000_000_000),
        nonce: "bm9uY2Utbm9uY2Utbm9uY2U", signature: String(repeating: "A", count: 86) + "==")

    @Test func aSignedCommandNeedsItsIdAndExpiryAndKeepsThem() async throws {
        let h = try HubHarness()
        try await h.provision("m1")
        let expiry = h.clock.now().adding(seconds: 600)
        await #expect(throws: HubError.self) {
            var request = SubmitCommandRequest(name: "billing.reset", expiresAt: expiry)
            request.signature = Self.signature
            _ = try await h.hub.submit(request, to: "m1")
        }
        await #expect(throws: HubError.self) {
            var request = SubmitCommandRequest(name: "billing.reset", ttl: 600)
            request.id = "cmd-1"
            request.signature = Self.signature
            _ = try await h.hub.submit(request, to: "m1")
        }
        var request = SubmitCommandRequest(name: "billing.reset", expiresAt: expiry)
        request.id = "cmd-1"
        request.signature = Self.signature
        let view = try await h.hub.submit(request, to: "m1").command
        #expect(view.id == "cmd-1" && view.expiresAt == expiry)
        let stored = try #require(try await h.store.command(id: "cmd-1"))
        #expect(stored.signature == Self.signature && stored.logicalRequest.signature == Self.signature)
        // The id is the client's, so a second command with it is a conflict, not a new command.
        do {
            _ = try await h.hub.submit(request, to: "m1")
            Issue.record("a reused id was accepted")
        } catch {
            #expect(error.status == .conflict)
        }
    }

    @Test func aSignedInstantCommandMustAlreadyExpireSoon() async throws {
        let h = try HubHarness()
        try await h.provision("m1")
        var request = SubmitCommandRequest(
            name: "breaker.open", expiresAt: h.clock.now().adding(seconds: 3600), delivery: .instant)
        request.id = "cmd-2"
        request.signature = Self.signature
        do {
            _ = try await h.hub.submit(request, to: "m1")
            Issue.record("the hub would have had to shorten a signed expiry")
        } catch {
            #expect(error.status == .badRequest && error.body.message.contains("signed instant"))
        }
    }
}
