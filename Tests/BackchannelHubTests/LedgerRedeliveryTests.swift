import BackchannelAgent
import BackchannelProtocol
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import ServiceLifecycle
import Synchronization
import Testing

/// A scripted hub on loopback that delivers the same request twice, as a hub does after a
/// lost acknowledgement: the agent's ledger must answer the second delivery with the first
/// result and never run the command again.
@Suite struct LedgerRedeliveryTests {
    /// Serves poll responses from a script and records the polls it received.
    final class ScriptedHub: Sendable {
        let responses: Mutex<[PollResponse]>
        let received = Mutex<[PollRequest]>([])

        init(_ responses: [PollResponse]) {
            self.responses = Mutex(responses)
        }

        func router() -> Router<BasicRequestContext> {
            let router = Router()
            router.post("/v1/poll") { request, _ -> Response in
                let body = try await request.body.collect(upTo: 1 << 20)
                let poll = try WireJSON.decode(PollRequest.self, from: Data(body.readableBytesView))
                self.received.withLock { $0.append(poll) }
                var response =
                    self.responses.withLock { $0.isEmpty ? nil : $0.removeFirst() }
                    ?? PollResponse(seq: 0, receivedAt: .now(), sentAt: .now(), nextPollAfter: 3600, ackWithin: 60)
                response.seq = poll.seq
                let data = try WireJSON.encode(response)
                return Response(
                    status: .ok, headers: [.contentType: "application/json"],
                    body: .init(byteBuffer: ByteBuffer(bytes: data)))
            }
            return router
        }
    }

    @Test func aRedeliveredCommandIsAnsweredFromTheLedger() async throws {
        let request = LogicalRequest(
            id: "cmd-1", origin: "operator:test", name: "relay", args: ["state": "open"], createdAt: .now(),
            expiresAt: Timestamp.now().adding(seconds: 600), attempt: 1
        )
        var redelivered = request
        redelivered.attempt = 2
        func response(_ requests: [LogicalRequest]) -> PollResponse {
            PollResponse(
                seq: 0, receivedAt: .now(), sentAt: .now(), requests: requests, nextPollAfter: 0.01, ackWithin: 60)
        }
        let script = ScriptedHub([response([request]), response([]), response([redelivered]), response([])])
        let (ports, announce) = AsyncStream.makeStream(of: Int.self)
        let app = Application(
            router: script.router(), configuration: .init(address: .hostname("127.0.0.1", port: 0)),
            onServerRunning: { announce.yield($0.localAddress?.port ?? 0) }
        )
        let server = Task { try await app.run() }
        let port = try #require(await ports.first { _ in true })

        var configuration = AgentConfiguration(
            hubURL: "http://127.0.0.1:\(port)", deviceID: "m1", token: "t",
            stateDirectory: FileManager.default.temporaryDirectory.appendingPathComponent(
                "bc-ledger-\(UUID().uuidString)")
        )
        configuration.longPoll = 0
        var logger = Logger(label: "test.agent")
        logger.logLevel = .critical
        let agent = try Agent(configuration: configuration, logger: logger)
        let runs = Atomic<Int>(0)
        await agent.register("relay") { _ in
            runs.add(1, ordering: .relaxed)
            return .succeeded(["relay": "open", "run": .number(Double(runs.load(ordering: .relaxed)))])
        }
        let loop = Task { await agent.run() }
        try await waitUntil("the redelivery is answered") {
            script.received.withLock { polls in
                polls.count >= 4 && polls.dropFirst(3).contains { $0.results.contains { $0.id == "cmd-1" } }
            }
        }
        loop.cancel()
        await loop.value
        server.cancel()

        #expect(runs.load(ordering: .relaxed) == 1, "the command ran once")
        let polls = script.received.withLock { $0 }
        let results = polls.flatMap(\.results).filter { $0.id == "cmd-1" }
        #expect(results.count >= 2, "the result was reported for each delivery")
        #expect(Set(results.map(\.data)).count == 1, "the second report repeats the first result")
        #expect(results.first?.data?["run"] == 1)
        #expect(polls.flatMap(\.acks).filter { $0 == "cmd-1" }.count >= 2, "each delivery was acknowledged")
        #expect(await agent.stats.duplicates == 1)
    }
}
