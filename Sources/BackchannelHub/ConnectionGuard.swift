import BackchannelTLS
import HummingbirdCore
import Logging
import NIOCore
import NIOSSL
import Synchronization

/// The hub's child channel, wrapped: it enforces the cap on open connections and the deadline
/// for a new connection's first request head, and with mutual TLS remembers which device each
/// connection's client certificate names.
///
/// Later requests on a kept-alive connection are bounded by the HTTP server's idle timeout.
struct GuardedChildChannel<Base: ServerChildChannel>: ServerChildChannel {
    /// An accepted connection, or one refused because the cap was reached.
    enum Value: ServerChildChannelValue {
        case accepted(Base.Value)
        case refused(any Channel)

        var channel: any Channel {
            switch self {
            case .accepted(let value): value.channel
            case .refused(let channel): channel
            }
        }
    }

    let base: Base
    let gate: ConnectionGate
    let firstRequestTimeout: TimeAmount
    let identifiesDevices: Bool

    func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
        guard gate.enter() else {
            logger.debug("connection refused: too many open connections", metadata: ["backchannel.cap": "\(gate.cap)"])
            return channel.eventLoop.makeCompletedFuture {
                try channel.pipeline.syncOperations.addHandler(CloseWhenActive())
                return .refused(channel)
            }
        }
        channel.closeFuture.whenComplete { [gate] _ in gate.leave() }
        return channel.eventLoop.makeCompletedFuture {
            try channel.pipeline.syncOperations.addHandler(FirstRequestDeadline(timeout: firstRequestTimeout))
            if identifiesDevices { try channel.pipeline.syncOperations.addHandler(ClientCertificateDevice()) }
        }.flatMap {
            base.setup(channel: channel, logger: logger).map { .accepted($0) }
        }.flatMapError { error in
            // Nothing serves a channel whose setup failed: close it, which gives its place back.
            channel.close(promise: nil)
            return channel.eventLoop.makeFailedFuture(error)
        }
    }

    func handle(value: Value, logger: Logger) async {
        guard case .accepted(let accepted) = value else { return }
        // A client that hangs up, times out or fails its handshake is its own trouble: the
        // server's "error" about it is logged at debug level.
        let base = logger.handler
        await self.base.handle(
            value: accepted, logger: Logger(label: logger.label) { _ in ConnectionLogHandler(base: base) })
    }
}

/// Logs what a connection's server code logs, errors and warnings at debug level.
struct ConnectionLogHandler: LogHandler {
    var base: any LogHandler

    var logLevel: Logger.Level {
        get { base.logLevel }
        set { base.logLevel = newValue }
    }

    var metadata: Logger.Metadata {
        get { base.metadata }
        set { base.metadata = newValue }
    }

    var metadataProvider: Logger.MetadataProvider? {
        get { base.metadataProvider }
        set { base.metadataProvider = newValue }
    }

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { base[metadataKey: key] }
        set { base[metadataKey: key] = newValue }
    }

    func log(event: LogEvent) {
        var event = event
        if event.level > .info { event.level = .debug }
        guard event.level >= base.logLevel else { return }
        base.log(event: event)
    }
}

/// Counts open connections against a cap.
final class ConnectionGate: Sendable {
    /// Most connections open at once.
    let cap: Int
    private let open = Atomic(0)

    init(cap: Int) { self.cap = max(1, cap) }

    /// Takes a place if one is free.
    func enter() -> Bool {
        var current = open.load(ordering: .relaxed)
        while current < cap {
            let (exchanged, original) = open.compareExchange(
                expected: current, desired: current + 1, ordering: .relaxed)
            if exchanged { return true }
            current = original
        }
        return false
    }

    /// Gives a place back.
    func leave() { open.subtract(1, ordering: .relaxed) }
}

/// Closes a refused connection as soon as it is active, before anything is read from it.
final class CloseWhenActive: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer

    func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { context.close(promise: nil) }
    }

    func channelActive(context: ChannelHandlerContext) {
        context.close(promise: nil)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {}
}

/// Closes a new connection that has not completed its TLS handshake and its first request head
/// within the timeout: a client trickling its first bytes (slowloris) is cut off. Placed first
/// in the pipeline, it counts from the moment the connection is accepted.
///
/// Disarmed by ``ConnectionGuard/firstRequestArrived(on:)``, which the HTTP layer calls when it
/// has the head.
final class FirstRequestDeadline: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer

    private let timeout: TimeAmount
    private var deadline: Scheduled<Void>?
    private var disarmed = false

    init(timeout: TimeAmount) { self.timeout = timeout }

    func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { arm(context) }
    }

    func channelActive(context: ChannelHandlerContext) {
        arm(context)
        context.fireChannelActive()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        deadline?.cancel()
        deadline = nil
    }

    private func arm(_ context: ChannelHandlerContext) {
        guard deadline == nil, !disarmed else { return }
        deadline = context.eventLoop.assumeIsolated().scheduleTask(in: timeout) {
            context.close(promise: nil)
        }
    }

    /// The first request head arrived: the deadline no longer applies.
    func disarm() {
        disarmed = true
        deadline?.cancel()
        deadline = nil
    }
}

/// Placed among the HTTP handlers, which exist once the first request head has been read
/// (the WebSocket-capable server adds them then): its arrival disarms the first-request deadline.
final class FirstRequestMarker: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = Never

    func handlerAdded(context: ChannelHandlerContext) {
        ConnectionGuard.disarm(context.pipeline)
    }
}

/// Remembers the device (and tenant) named by the connection's verified client certificate,
/// read once.
final class ClientCertificateDevice: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer

    private var identity: DeviceCertificateIdentity??

    /// The device and tenant, once the TLS handshake is complete; nil without a device
    /// certificate.
    func identity(_ pipeline: ChannelPipeline) -> DeviceCertificateIdentity? {
        if let identity { return identity }
        guard let tls = try? pipeline.syncOperations.handler(type: NIOSSLHandler.self),
            let certificate = tls.peerCertificate
        else {
            // Nothing presented (or the handshake is not done yet: do not remember that).
            return nil
        }
        let found = certificate.backchannelIdentity
        identity = .some(found)
        return found
    }
}

/// Entry points of the connection guard for the HTTP layer.
enum ConnectionGuard {
    /// The first request head of `channel` has arrived (the WebSocket upgrade path).
    static func firstRequestArrived(on channel: any Channel) {
        if channel.eventLoop.inEventLoop {
            disarm(channel.pipeline)
        } else {
            channel.eventLoop.execute { disarm(channel.pipeline) }
        }
    }

    /// Disarms the first-request deadline; call on the channel's event loop.
    static func disarm(_ pipeline: ChannelPipeline) {
        (try? pipeline.syncOperations.handler(type: FirstRequestDeadline.self))?.disarm()
    }

    /// The device and tenant named by the verified client certificate of the connection, if any.
    static func certificateIdentity(on channel: any Channel) async -> DeviceCertificateIdentity? {
        try? await channel.eventLoop.submit {
            (try? channel.pipeline.syncOperations.handler(type: ClientCertificateDevice.self))?.identity(
                channel.pipeline)
        }.get()
    }
}
