import Foundation
import FuzzSupport
import NIOCore
import NIOEmbedded
import NIOWebSocket

/// The largest message the hub's device socket reads (`HubConfiguration.maxBodyBytes`).
let maxMessageBytes = 1 << 20

/// libFuzzer's entry point: the bytes a client sends on an upgraded `/v1/ws` connection.
///
/// The frames are decoded by NIOWebSocket's `WebSocketFrameDecoder`, as hummingbird-websocket
/// does; complete text messages (fragments joined, up to the hub's size limit) are then decoded
/// as JSON polls, as the hub's device socket does.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ start: UnsafePointer<UInt8>, _ count: Int) -> CInt {
    let channel = EmbeddedChannel()
    do {
        try channel.pipeline.syncOperations.addHandler(
            ByteToMessageHandler(WebSocketFrameDecoder(maxFrameSize: maxMessageBytes)))
    } catch {
        fatalError("cannot set up the pipeline: \(error)")
    }
    var buffer = channel.allocator.buffer(capacity: count)
    buffer.writeBytes(UnsafeBufferPointer(start: start, count: count))
    // A protocol error ends the connection, as in the hub; the frames before it still count.
    _ = try? channel.writeInbound(buffer)
    var messages = Messages()
    while let frame = try? channel.readInbound(as: WebSocketFrame.self) {
        messages.add(frame)
    }
    _ = try? channel.finish()
    return 0
}

/// Joins frames into messages the way a WebSocket endpoint does, and handles each text message.
struct Messages {
    var opcode: WebSocketOpcode?
    var pending: [UInt8] = []

    mutating func add(_ frame: WebSocketFrame) {
        let payload = frame.unmaskedData
        switch frame.opcode {
        case .text, .binary:
            guard opcode == nil else { return fail() }
            opcode = frame.opcode
            pending = Array(payload.readableBytesView)
        case .continuation:
            guard opcode != nil else { return fail() }
            pending += payload.readableBytesView
        default:
            return  // control frames: ping, pong, close
        }
        guard pending.count <= maxMessageBytes else { return fail() }
        guard frame.fin, let kind = opcode else { return }
        if kind == .text {
            // The hub answers binary messages with an error frame and reads text as UTF-8.
            let text = String(decoding: pending, as: UTF8.self)
            PollCheck.run(Data(text.utf8))
        }
        opcode = nil
        pending = []
    }

    mutating func fail() {
        opcode = nil
        pending = []
    }
}
