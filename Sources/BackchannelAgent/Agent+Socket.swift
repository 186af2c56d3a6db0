import BackchannelProtocol
import Foundation
import HTTPTypes
import Logging
import NIOCore
import WSClient

extension Agent {
    /// Runs over the hub's WebSocket channel (`/v1/ws`) until cancelled, reconnecting with
    /// backoff. The same physical requests as the poll travel as text frames: the agent sends one
    /// when it has something to say and waits for its answer; the hub pushes work (answers with
    /// `seq` 0) as it arrives.
    func runSocket() async {
        let backoff = Backoff(base: configuration.backoffBase, max: configuration.backoffMax)
        var failures = 0
        while !Task.isCancelled {
            do {
                try await connectSocket()
                failures = 0
            } catch {
                if Task.isCancelled { return }
                failures += 1
                socketDropped()
                stats.failures += 1
                stats.lastError = "\(error)"
                let delay = backoff.delay(failures: failures)
                logger.warning(
                    "socket failed; reconnecting",
                    metadata: ["backchannel.error": "\(error)", "backchannel.retry_in": "\(delay)"])
                try? await Task.sleep(for: .milliseconds(Int64(delay * 1000)))
            }
        }
    }

    private func connectSocket() async throws {
        var base = configuration.hubURL.trimmingSuffix("/")
        if base.hasPrefix("https://") { base = "wss://" + base.dropFirst("https://".count) }
        if base.hasPrefix("http://") { base = "ws://" + base.dropFirst("http://".count) }
        var settings = WebSocketClientConfiguration(maxFrameSize: 16 << 20)
        settings.additionalHeaders = [HTTPField.Name("X-Backchannel-Device")!: configuration.deviceID]
        if !configuration.token.isEmpty { settings.additionalHeaders[.authorization] = "Bearer \(configuration.token)" }
        socketHello = false
        let logger = self.logger
        try await WebSocketClient.connect(
            url: base + "/v1/ws", configuration: settings, tlsConfiguration: configuration.tls, logger: logger
        ) {
            inbound, outbound, _ in
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask {
                    for try await message in inbound.messages(maxSize: 16 << 20) {
                        guard case .text(let text) = message else { continue }
                        await self.socketReceived(Data(text.utf8))
                    }
                }
                group.addTask {
                    while !Task.isCancelled {
                        if let frame = try await self.socketNextFrame() {
                            try await outbound.write(.text(String(decoding: frame, as: UTF8.self)))
                        } else {
                            _ = await self.signal.wait(seconds: 30)
                        }
                    }
                }
                // Either side ending (the socket closed) ends the connection.
                try await group.next()
                group.cancelAll()
            }
        }
        socketDropped()
    }

    /// The next frame to send, if one is due: the unanswered one again after a reconnect, or a
    /// new request when the agent has something to say (or has not said hello yet).
    private func socketNextFrame() throws -> Data? {
        guard !socketAwaiting else { return nil }
        if let pending = inFlight {
            socketAwaiting = true
            socketSentAt = clock.deviceNow()
            return pending.body
        }
        let hasNews =
            !socketHello || !pendingAcks.isEmpty || !ledger.unreported().isEmpty || !resend.isEmpty
            || !outbox.isEmpty || presenceDirty || mailbox.hasPending || !pendingReplyAcks.isEmpty
        guard hasNews else { return nil }
        var pending = try prepare()
        pending.attempts += 1
        inFlight = pending
        socketAwaiting = true
        socketHello = true
        socketSentAt = clock.deviceNow()
        stats.polls += 1
        return pending.body
    }

    /// Handles a frame from the hub: the answer to the frame sent, work it pushed, or an error.
    private func socketReceived(_ data: Data) {
        defer { signal.signal() }
        if let response = try? WireJSON.decode(PollResponse.self, from: data) {
            if response.seq != 0, let pending = inFlight, pending.seq == response.seq {
                socketAwaiting = false
                _ = try? handle(.ok(response), for: pending, t0: socketSentAt ?? clock.deviceNow())
            } else if response.seq == 0 {
                let pushed = InFlight(
                    seq: 0, body: Data(), wait: 0, acks: [], resultIDs: [], uplinkIDs: [], presence: nil, attempts: 0)
                do {
                    _ = try accept(response, for: pushed)
                } catch {
                    logger.warning("could not record pushed work", metadata: ["error": "\(error)"])
                }
            }
            return
        }
        // An error frame: {"status": …, "error": ErrorBody}.
        guard let pending = inFlight,
            let frame = try? WireJSON.decode(JSONValue.self, from: data),
            let status = frame["status"]?.doubleValue
        else { return }
        socketAwaiting = false
        let body = frame["error"].flatMap { WireJSON.convert($0, to: ErrorBody.self) }
        do {
            _ = try handle(
                .failure(status: Int(status), body: body, retryAfter: body?.retryAfter), for: pending,
                t0: socketSentAt ?? clock.deviceNow())
        } catch {
            stats.failures += 1
            stats.lastError = "\(error)"
        }
    }

    /// The socket is gone: a frame sent and not answered will be sent again after reconnecting.
    private func socketDropped() {
        socketAwaiting = false
    }
}
