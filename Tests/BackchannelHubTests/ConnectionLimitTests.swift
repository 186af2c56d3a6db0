import BackchannelHub
import BackchannelProtocol
import Foundation
import NIOCore
import NIOPosix
import Synchronization
import Testing

/// The hub's connection hardening on a real socket: a cap on open connections, and timeouts
/// that cut off clients trickling their request (slowloris) without cutting held long-polls.
@Suite struct ConnectionLimitTests {
    /// A raw TCP connection to the hub, reading everything the hub sends until it closes.
    final class RawConnection: Sendable {
        /// What was read, and whether the hub closed the connection.
        final class State: Sendable {
            let received = Mutex<String>("")
            let closed = Mutex(false)
        }

        let channel: NIOAsyncChannel<ByteBuffer, ByteBuffer>
        private let state = State()
        private let reader: Task<Void, Never>

        init(port: Int) async throws {
            channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .connect(host: "127.0.0.1", port: port) { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel)
                    }
                }
            let (inbound, state) = (channel.inbound, state)
            reader = Task {
                do {
                    for try await buffer in inbound {
                        state.received.withLock { $0 += String(buffer: buffer) }
                    }
                } catch {}
                state.closed.withLock { $0 = true }
            }
        }

        deinit {
            // A test that failed early still finishes the writer NIO insists on.
            channel.outbound.finish()
            channel.channel.close(promise: nil)
        }

        var isClosed: Bool { state.closed.withLock { $0 } }
        var text: String { state.received.withLock { $0 } }

        func send(_ text: String) async throws {
            try await channel.outbound.write(ByteBuffer(string: text))
        }

        /// Sends a `GET /healthz` and waits for its answer.
        func healthz() async throws -> Bool {
            let before = text.components(separatedBy: "HTTP/1.1 200").count
            do {
                try await send("GET /healthz HTTP/1.1\r\nHost: hub\r\n\r\n")
            } catch {
                return false  // closed by the hub before the request went out
            }
            try await waitUntil("the health answer") {
                text.components(separatedBy: "HTTP/1.1 200").count > before || isClosed
            }
            return !isClosed
        }

        func close() async {
            channel.outbound.finish()
            try? await channel.channel.close()
            await reader.value
        }
    }

    @Test func aConnectionBeyondTheCapIsClosedWhileEarlierOnesWork() async throws {
        let h = try HubHarness(systemClock: true) { $0.connectionLimits.maxConnections = 2 }
        let live = try await LiveHub.start(h.hub)
        let first = try await RawConnection(port: live.port)
        let second = try await RawConnection(port: live.port)
        #expect(try await first.healthz())
        #expect(try await second.healthz())

        let third = try await RawConnection(port: live.port)
        try await waitUntil("the connection beyond the cap is closed", timeout: 5) { third.isClosed }
        #expect(third.text.isEmpty)
        // The earlier connections are unaffected.
        #expect(try await first.healthz())
        #expect(try await second.healthz())

        // A place freed is a place taken again.
        await first.close()
        var fourth: RawConnection?
        try await waitUntil("a new connection is served once one closed", timeout: 5) {
            let attempt = try await RawConnection(port: live.port)
            if try await attempt.healthz() {
                fourth = attempt
                return true
            }
            await attempt.close()  // refused: the place was not free yet
            return false
        }
        await fourth?.close()
        await second.close()
        await third.close()
        await live.stop()
    }

    @Test func aClientTricklingItsFirstRequestHeadIsCutOff() async throws {
        let h = try HubHarness(systemClock: true) { $0.connectionLimits.requestHeadTimeout = 1 }
        let live = try await LiveHub.start(h.hub)
        let slow = try await RawConnection(port: live.port)
        let started = ContinuousClock.now
        // One header byte every 100 ms: never a complete head.
        let trickle = Task {
            try await slow.send("GET /healthz HTTP/1.1\r\n")
            for byte in "X-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa" {
                try await Task.sleep(for: .milliseconds(100))
                try await slow.send(String(byte))
            }
        }
        defer { trickle.cancel() }
        try await waitUntil("the trickling client is disconnected", timeout: 5) { slow.isClosed }
        #expect(ContinuousClock.now - started < .seconds(4))
        #expect(!slow.text.contains("200 OK"))

        // A silent connection is cut off the same way; a prompt client is served.
        let silent = try await RawConnection(port: live.port)
        let prompt = try await RawConnection(port: live.port)
        #expect(try await prompt.healthz())
        try await waitUntil("the silent connection is disconnected", timeout: 5) { silent.isClosed }
        await prompt.close()
        await silent.close()
        await slow.close()
        await live.stop()
    }

    @Test func aKeptAliveConnectionIsClosedWhenIdleButAHeldLongPollIsNot() async throws {
        let h = try HubHarness(systemClock: true) {
            $0.connectionLimits.idleTimeout = 1
            $0.maxWait = 3
        }
        let token = try await h.provision("m1")
        let live = try await LiveHub.start(h.hub)

        // A long-poll held for longer than the idle timeout is answered, not cut.
        let holder = try await RawConnection(port: live.port)
        let body = String(decoding: try WireJSON.encode(makePoll("m1", seq: 1, wait: 3)), as: UTF8.self)
        let started = ContinuousClock.now
        try await holder.send(
            "POST /v1/poll HTTP/1.1\r\nHost: hub\r\nAuthorization: Bearer \(token)\r\n"
                + "Content-Type: application/json\r\nContent-Length: \(body.utf8.count)\r\n\r\n\(body)")
        try await waitUntil("the held poll is answered", timeout: 8) { holder.text.contains("\"seq\":1") }
        #expect(ContinuousClock.now - started >= .seconds(2.5))

        // Then, silent between requests, the connection is closed after the idle timeout.
        try await waitUntil("the idle kept-alive connection is closed", timeout: 5) { holder.isClosed }
        await holder.close()

        // A second request head trickled on a kept-alive connection is cut off too.
        let trickler = try await RawConnection(port: live.port)
        #expect(try await trickler.healthz())
        let trickle = Task {
            try await trickler.send("GET /healthz HTTP/1.1\r\n")
            for _ in 0..<50 {
                try await Task.sleep(for: .milliseconds(100))
                try await trickler.send("X")
            }
        }
        defer { trickle.cancel() }
        try await waitUntil("the trickled second request is cut off", timeout: 5) { trickler.isClosed }
        await trickler.close()
        await live.stop()
    }

    @Test func aTLSHandshakeThatNeverHappensIsCutOff() async throws {
        let pki = try TLSTests.PKI()
        let h = try HubHarness(systemClock: true) {
            $0.tls = pki.hubTLS
            $0.connectionLimits.requestHeadTimeout = 1
        }
        let live = try await LiveHub.start(h.hub)
        let silent = try await RawConnection(port: live.port)
        let started = ContinuousClock.now
        try await waitUntil("the connection without a handshake is closed", timeout: 5) { silent.isClosed }
        #expect(ContinuousClock.now - started < .seconds(4))
        await silent.close()
        await live.stop()
    }
}
