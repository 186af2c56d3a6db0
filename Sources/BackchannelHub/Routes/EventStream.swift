public import BackchannelProtocol
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import ServiceLifecycle

extension Hub {
    /// Server-sent events of the tenant's events that `include` accepts, one `data:` line of
    /// JSON per ``HubEvent``, and a comment line every 15 s so dead connections are noticed;
    /// `onClose` runs when the stream ends.
    ///
    /// Uplink events carry the reading's values only to subscribers allowed to read metering
    /// data (admin, billing); others see that a reading arrived, not what it says.
    func eventStream(
        for who: OperatorPrincipal, onClose: @escaping @Sendable () -> Void = {},
        _ include: @escaping @Sendable (HubEvent) -> Bool
    ) -> Response {
        let tenant = who.tenant
        let readsData = who.may(.readData)
        let events = self.events.subscribe()
        let (lines, sink) = AsyncStream.makeStream(of: String.self, bufferingPolicy: .bufferingNewest(10_000))
        let forward = Task {
            for await event in events where include(event) {
                guard await self.event(event, belongsTo: tenant) else { continue }
                let event = Self.redact(event, readsData: readsData)
                guard let data = try? WireJSON.encode(event) else { continue }
                sink.yield("data: " + String(decoding: data, as: UTF8.self) + "\n\n")
            }
            sink.finish()
        }
        let heartbeat = Task {
            while !Task.isCancelled {
                try? await Task.sleep(for: .seconds(15))
                sink.yield(": keep-alive\n\n")
            }
        }
        var headers = HTTPFields()
        headers[.contentType] = "text/event-stream"
        headers[.cacheControl] = "no-cache"
        return Response(
            status: .ok, headers: headers,
            body: ResponseBody { writer in
                defer {
                    forward.cancel()
                    heartbeat.cancel()
                    onClose()
                }
                try await writer.write(ByteBuffer(string: ": connected\n\n"))
                for await line in lines.cancelOnGracefulShutdown() {
                    try await writer.write(ByteBuffer(string: line))
                }
                try await writer.finish(nil)
            }
        )
    }

    /// An event as a subscriber may see it: an uplink event's values only for those who may read
    /// metering data.
    public static func redact(_ event: HubEvent, readsData: Bool) -> HubEvent {
        guard event.type == .uplink || event.type == .power, !readsData else { return event }
        var redacted = event
        redacted.data = nil
        return redacted
    }
}
