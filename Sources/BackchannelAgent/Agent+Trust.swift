import BackchannelProtocol
import BackchannelSecurity
import Logging

extension Agent {
    /// Checks a newly delivered request against the trust policy.
    ///
    /// Returns what to remember once the request is recorded, or nil when it was refused: then
    /// its REJECTED result (the verifier's code and detail) is already in the ledger, to be
    /// reported like any other result, and the command never runs.
    func admit(_ request: LogicalRequest) throws -> CommandAcceptance? {
        guard let verifier else { return .unsigned }
        // The device's own clock, never corrected by the hub's offset: the hub writes the
        // timestamps that offset comes from, and must not be able to move a signed window.
        switch verifier.verify(request, device: configuration.deviceID, now: clock.deviceNow()) {
        case .success(let acceptance):
            return acceptance
        case .failure(let rejection):
            stats.refused += 1
            logger.warning(
                "refused a command",
                metadata: [
                    "backchannel.message": "\(request.id)", "backchannel.command": "\(request.name)",
                    "backchannel.code": "\(rejection.code)", "backchannel.detail": "\(rejection.detail)",
                ])
            try ledger.recordFinished(
                LogicalResult(
                    id: request.id, status: .rejected, code: rejection.code, retryable: false,
                    detail: rejection.detail, finishedAt: clock.hubNow()))
            return nil
        }
    }

    /// Records an accepted request's nonce, durably.
    func remember(_ acceptance: CommandAcceptance) throws {
        try verifier?.remember(acceptance, now: clock.deviceNow())
    }

    /// At start-up: records the nonce of a request received but not started, in case the device
    /// stopped between recording the request and its nonce.
    func rememberRecovered(_ request: LogicalRequest) {
        guard let verifier, let signature = request.signature,
            verifier.ledger.entry(keyId: signature.keyId, nonce: signature.nonce) == nil
        else { return }
        do {
            try verifier.ledger.record(
                NonceLedger.Entry(
                    keyId: signature.keyId, nonce: signature.nonce, id: request.id, expiresAt: request.expiresAt),
                now: clock.deviceNow())
        } catch {
            logger.error("cannot record a recovered command's nonce", metadata: ["error": "\(error)"])
        }
    }

    /// Seconds to wait before starting `request`, 0 when it may start now.
    ///
    /// Every command waits for its `notBefore` on hub time. A signed one (with a trust policy)
    /// also waits until `notBefore − clockSkew` on the device's own clock, so a hub that shifts
    /// the device's idea of time cannot start it early.
    static func startDelay(
        notBefore: Timestamp?, signed: Bool, clockSkew: Double?, hubNow: Timestamp, deviceNow: Timestamp
    ) -> Double {
        guard let notBefore else { return 0 }
        var wait = notBefore.seconds(since: hubNow)
        if signed, let clockSkew { wait = max(wait, notBefore.seconds(since: deviceNow) - clockSkew) }
        return max(0, wait)
    }

    /// Whether `request` expired: on hub time, and for a signed one (with a trust policy) also on
    /// the device's own clock, so a hub that shifts the device's idea of time cannot run it late.
    static func hasExpired(_ request: LogicalRequest, signed: Bool, hubNow: Timestamp, deviceNow: Timestamp) -> Bool {
        hubNow > request.expiresAt || (signed && deviceNow > request.expiresAt)
    }

    /// The answer to a redelivered request whose result the hub already confirmed it holds.
    ///
    /// A hub that stored the result never delivers the command again, so a signed command that
    /// ran and comes back after that is a replay (for example re-queued by a compromised hub):
    /// it is answered REJECTED `replay`, and never run. Returns nil (repeat the earlier result)
    /// without a trust policy, for unsigned commands, and when the earlier result was itself a
    /// rejection.
    func replayAnswer(to request: LogicalRequest, earlier: LogicalResult) -> LogicalResult? {
        guard verifier != nil, request.signature != nil, earlier.status != .rejected else { return nil }
        stats.refused += 1
        logger.warning(
            "refused a replayed command",
            metadata: ["backchannel.message": "\(request.id)", "backchannel.command": "\(request.name)"])
        return LogicalResult(
            id: request.id, status: .rejected, code: OutcomeCode.replay, retryable: false,
            detail: "this signed command ran before and its result was reported; a signed command runs at most once",
            finishedAt: clock.hubNow())
    }
}
