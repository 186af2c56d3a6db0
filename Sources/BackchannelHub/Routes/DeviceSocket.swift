import BackchannelProtocol
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdCore
import HummingbirdWebSocket
import Logging
import NIOCore
import Synchronization

extension Hub {
    /// The WebSocket upgrades the hub accepts:
    /// - `/v1/ws`: the instant channel for devices (`X-Backchannel-Device`, and the device's token
    ///   or, with mTLS, its client certificate);
    /// - `/v1/presence/ws`: presence changes for operators (operator token), filtered like the
    ///   server-sent event stream.
    ///
    /// Anything else, or a request that fails authentication, is not upgraded and is answered
    /// by the HTTP routes (`GET /v1/ws` answers why).
    func shouldUpgrade(_ request: HTTPRequest, channel: any Channel) async -> ShouldUpgradeResult<
        WebSocketDataHandler<HTTP1WebSocketUpgradeChannel.Context>
    > {
        let path = request.path.map { String($0.split(separator: "?", maxSplits: 1)[0]) } ?? ""
        let query = request.path.flatMap { URI($0).queryParameters } ?? [:]
        switch path {
        case "/v1/ws":
            let device = request.headerFields[.backchannelDevice] ?? query.get("device")
            guard let device else { return .dontUpgrade }
            let credential = await deviceCredential(request.headerFields[.authorization], on: channel)
            do {
                try await authenticateDevice(device, credential: credential)
            } catch {
                return .dontUpgrade
            }
            return .upgrade([:]) { inbound, outbound, _ in
                await self.serveDeviceSocket(device, credential: credential, inbound, outbound)
            }
        case "/v1/presence/ws":
            guard let token = Credentials.bearer(request.headerFields[.authorization]),
                let who = try? await operators.principal(token: token), who.may(.readDevices)
            else { return .dontUpgrade }
            let devices = query.get("device").map { Set($0.split(separator: ",").map(String.init)) }
            let states = query.get("state").map { Set($0.split(separator: ",").map(String.init)) }
            return .upgrade([:]) { inbound, outbound, _ in
                let stream = self.events.subscribe()
                let forward = Task {
                    for await event in stream
                    where event.type == .devicePresence
                        && (devices.map { $0.contains(event.device ?? "") } ?? true)
                        && (states.map { $0.contains(event.detail ?? "") } ?? true)
                    {
                        guard await self.event(event, belongsTo: who.tenant) else { continue }
                        guard let data = try? WireJSON.encode(event) else { continue }
                        try? await outbound.write(.text(String(decoding: data, as: UTF8.self)))
                    }
                }
                // Runs until the operator closes the socket.
                for try await _ in inbound {}
                forward.cancel()
            }
        default:
            return .dontUpgrade
        }
    }

    /// One device's instant channel: the device sends `PollRequest`s as text frames and gets each
    /// answered with its `PollResponse`; between them the hub holds an unsequenced long-poll for
    /// the device and pushes its answer as soon as work or replies arrive. The device is present
    /// while the socket is open.
    private func serveDeviceSocket(
        _ device: String, credential: DeviceCredential, _ inbound: WebSocketInboundStream,
        _ outbound: WebSocketOutboundWriter
    ) async {
        publish([presence.connected(device, at: clock.now())].compactMap { $0 })
        defer {
            presence.disconnected(device, fallback: clock.now().adding(seconds: configuration.pollInterval))
            // End the push loop's held poll now, not when its wait runs out.
            lanes.supersede(device)
        }
        let accept = Mutex(PollRequest.defaultAccept)
        let push = Task {
            while !Task.isCancelled {
                let poll = PollRequest(
                    device: device, seq: 0, sentAt: clock.now(), accept: accept.withLock { $0 },
                    wait: configuration.maxWait)
                do {
                    let data = try await self.poll(
                        poll, requestHash: "", credential: credential, sequenced: false)
                    let response = try WireJSON.decode(PollResponse.self, from: data)
                    // Superseded by the device's own frame, or nothing to say: hold again.
                    if response.superseded == true { continue }
                    if response.requests.isEmpty && response.cancel.isEmpty && (response.replies ?? []).isEmpty
                        && response.refreshPresence != true
                    {
                        continue
                    }
                    try await outbound.write(.text(String(decoding: data, as: UTF8.self)))
                } catch {
                    if Task.isCancelled { return }
                    try? await Task.sleep(for: .seconds(1))  // storage trouble: back off, then hold again
                }
            }
        }
        defer { push.cancel() }
        do {
            for try await message in inbound.messages(maxSize: configuration.maxBodyBytes) {
                guard case .text(let text) = message else {
                    try await outbound.write(
                        .text(Self.socketError(HubError.malformed("send PollRequest JSON as text frames"))))
                    continue
                }
                let body = Data(text.utf8)
                let answer: String
                do {
                    var request = try WireJSON.decode(PollRequest.self, from: body).withoutEnvelopes
                    guard request.device == device else {
                        throw HubError.malformed("device: this socket belongs to \(device)")
                    }
                    accept.withLock { $0 = request.accept }
                    request.wait = 0  // the socket itself is the long-poll
                    let data = try await self.poll(
                        request, requestHash: Credentials.hash(bytes: body), credential: credential)
                    answer = String(decoding: data, as: UTF8.self)
                } catch let error as HubError {
                    answer = Self.socketError(error)
                } catch {
                    answer = Self.socketError(HubError.malformed(WireJSON.describe(error)))
                }
                try await outbound.write(.text(answer))
            }
        } catch {
            logger.debug("device socket closed", metadata: ["backchannel.device": "\(device)"])
        }
    }

    /// An error frame: `{"error": ErrorBody, "status": <HTTP status>}`.
    static func socketError(_ error: HubError) -> String {
        let value: JSONValue = [
            "status": .number(Double(error.status.code)),
            "error": WireJSON.value(error.body) ?? .null,
        ]
        return (try? WireJSON.encode(value)).map { String(decoding: $0, as: UTF8.self) } ?? "{}"
    }
}
