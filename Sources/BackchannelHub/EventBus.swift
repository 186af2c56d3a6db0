public import BackchannelProtocol
import Synchronization

/// Broadcasts ``HubEvent``s to live subscribers (the `/v1/events` stream, command waits).
///
/// Events are not stored: a subscriber sees what happens while it is subscribed. Each
/// subscriber has a bounded buffer; a subscriber that falls behind loses the oldest events.
public final class EventBus: Sendable {
    private struct State {
        var nextSeq: Int64 = 1
        var nextID = 0
        var subscribers: [Int: AsyncStream<HubEvent>.Continuation] = [:]
        var closed = false
    }

    private let state = Mutex(State())

    init() {}

    /// Publishes an event to every subscriber.
    func publish(
        _ type: HubEvent.Kind, at: Timestamp, device: String? = nil, command: String? = nil,
        state messageState: MessageState? = nil, detail: String? = nil, data: JSONValue? = nil
    ) {
        let (event, targets): (HubEvent?, [AsyncStream<HubEvent>.Continuation]) = state.withLock { state in
            guard !state.subscribers.isEmpty else { return (nil, []) }
            let event = HubEvent(
                seq: state.nextSeq, at: at, type: type, device: device, command: command, state: messageState,
                detail: detail, data: data
            )
            state.nextSeq += 1
            return (event, Array(state.subscribers.values))
        }
        guard let event else { return }
        for target in targets { target.yield(event) }
    }

    /// A stream of events from now on. It ends when the hub shuts down.
    public func subscribe(buffer: Int = 10_000) -> AsyncStream<HubEvent> {
        let (stream, continuation) = AsyncStream.makeStream(
            of: HubEvent.self, bufferingPolicy: .bufferingNewest(buffer))
        let id: Int? = state.withLock { state in
            guard !state.closed else { return nil }
            let id = state.nextID
            state.nextID += 1
            state.subscribers[id] = continuation
            return id
        }
        guard let id else {
            continuation.finish()
            return stream
        }
        continuation.onTermination = { [weak self] _ in
            self?.state.withLock { _ = $0.subscribers.removeValue(forKey: id) }
        }
        return stream
    }

    /// Ends every stream.
    func close() {
        let targets = state.withLock { state in
            state.closed = true
            defer { state.subscribers = [:] }
            return Array(state.subscribers.values)
        }
        for target in targets { target.finish() }
    }
}
