import BackchannelHub
import BackchannelProtocol
import BackchannelSQLite
import BackchannelStore
import Foundation
import HTTPTypes
import Testing

/// Device-to-device requests through the hub: rules, routing, replies and their lifecycle.
@Suite struct RendezvousTests {
    /// Two provisioned devices, a (the sender) and b (the target), with tokens.
    struct Pair {
        let h: HubHarness
        let a: String
        let b: String
        var seqA: Int64 = 0
        var seqB: Int64 = 0

        static func make(allow commands: [String]? = ["read"], labels: [String: String]? = nil) async throws -> Pair {
            let h = try HubHarness()
            let a = try await h.hub.provision(ProvisionDeviceRequest(id: "a")).token
            let b = try await h.hub.provision(ProvisionDeviceRequest(id: "b", labels: labels)).token
            if let commands {
                _ = try await h.hub.addRendezvousRule(
                    CreateRendezvousRule(from: "device:a", to: "device:b", commands: commands))
            }
            return Pair(h: h, a: a, b: b)
        }

        mutating func pollA(
            requests: [PeerRequest] = [], replyAcks: [String] = [], results: [LogicalResult] = [], accept: Int = 10
        ) async throws -> PollResponse {
            seqA += 1
            var poll = makePoll("a", seq: seqA, results: results, accept: accept)
            poll.requests = requests
            poll.replyAcks = replyAcks
            return try await h.poll(poll, token: a)
        }

        mutating func pollB(acks: [String] = [], results: [LogicalResult] = []) async throws -> PollResponse {
            seqB += 1
            return try await h.poll(makePoll("b", seq: seqB, acks: acks, results: results), token: b)
        }
    }

    static func read(_ ref: String, to target: String = "device:b", _ policy: UnavailablePolicy = .hold) -> PeerRequest
    {
        PeerRequest(ref: ref, to: target, name: "read", args: ["register": "kWh"], onUnavailable: policy)
    }

    @Test func aRequestTravelsToTheTargetAndItsResultComesBack() async throws {
        var p = try await Pair.make()
        let sent = try await p.pollA(requests: [Self.read("r1")])
        let routed = try #require(sent.routed?.first)
        #expect(routed.ref == "r1")
        #expect(routed.state == .queued)
        let id = try #require(routed.id)

        let atB = try await p.pollB()
        let delivered = try #require(atB.requests.first)
        #expect(delivered.id == id)
        #expect(delivered.origin == "device:a")
        #expect(delivered.name == "read")
        #expect(delivered.args == ["register": "kWh"])

        _ = try await p.pollB(
            acks: [id], results: [LogicalResult(id: id, status: .succeeded, data: ["kWh": 12.5])])
        let back = try await p.pollA()
        let reply = try #require(back.replies?.first)
        #expect(reply.id == id)
        #expect(reply.ref == "r1")
        #expect(reply.from == "device:b")
        #expect(reply.state == .succeeded)
        #expect(reply.outcome?.data == ["kWh": 12.5])

        // Acknowledged replies are not delivered again.
        let acked = try await p.pollA(replyAcks: [id])
        #expect(acked.replies == nil)
        let view = try await p.h.hub.sentRequest("r1", from: "a")
        #expect(view.id == id)
        #expect(view.replyState == "acked")
        #expect(view.history?.map(\.to) == [.queued, .dispatched, .acked, .succeeded])
    }

    @Test func anUnacknowledgedReplyIsDeliveredAgainAfterTheLease() async throws {
        var p = try await Pair.make()
        let id = try #require(try await p.pollA(requests: [Self.read("r1")]).routed?.first?.id)
        _ = try await p.pollB()
        _ = try await p.pollB(acks: [id], results: [LogicalResult(id: id, status: .succeeded)])
        #expect(try await p.pollA().replies?.map(\.id) == [id])
        #expect(try await p.pollA().replies == nil, "leased: not sent again at once")
        p.h.clock.advance(seconds: p.h.hub.configuration.leaseSeconds + 1)
        #expect(try await p.pollA().replies?.map(\.id) == [id])
    }

    @Test func theSameRefIsRoutedOnce() async throws {
        var p = try await Pair.make()
        let first = try await p.pollA(requests: [Self.read("r1")])
        let again = try await p.pollA(requests: [Self.read("r1")])
        #expect(again.routed?.first?.id == first.routed?.first?.id)
        #expect(try await p.pollB().requests.count == 1)
        var changed = Self.read("r1")
        changed.args = ["register": "kW"]
        let reused = try await p.pollA(requests: [changed])
        #expect(reused.routed?.first?.state == .rejected)
        #expect(reused.routed?.first?.code == OutcomeCode.refReused)
        // A ref is the sender's, whatever the target.
        _ = try await p.h.hub.provision(ProvisionDeviceRequest(id: "c"))
        _ = try await p.h.hub.addRendezvousRule(
            CreateRendezvousRule(from: "device:a", to: "device:c", commands: ["read"]))
        let elsewhere = try await p.pollA(requests: [Self.read("r1", to: "device:c")])
        #expect(elsewhere.routed?.first?.code == OutcomeCode.refReused)
        // Operators cannot take the rendezvous key space.
        await #expect(throws: HubError.self) {
            _ = try await p.h.submit("read", to: "b") { $0.idempotencyKey = "rv:a:r1" }
        }
    }

    @Test func withoutARuleTheRequestIsRejected() async throws {
        var p = try await Pair.make(allow: nil)
        let answer = try #require(try await p.pollA(requests: [Self.read("r1")]).routed?.first)
        #expect(answer.state == .rejected)
        #expect(answer.code == OutcomeCode.notAuthorized)
        #expect(answer.id == nil)
        #expect(answer.detail?.contains("no rendezvous rule") == true)
        #expect(try await p.pollB().requests.isEmpty)
        #expect(p.h.hub.metrics.snapshot.rendezvousRejected == 1)
    }

    @Test func aRuleAllowsOnlyItsCommandNames() async throws {
        var p = try await Pair.make(allow: ["read"])
        var relay = Self.read("r1")
        relay.name = "relay"
        let answer = try #require(try await p.pollA(requests: [relay]).routed?.first)
        #expect(answer.code == OutcomeCode.notAuthorized)
    }

    @Test func labelAndWildcardSelectorsMatch() async throws {
        var p = try await Pair.make(allow: nil, labels: ["site": "b"])
        _ = try await p.h.hub.addRendezvousRule(CreateRendezvousRule(from: "*", to: "label:site=b", commands: ["*"]))
        let answer = try #require(try await p.pollA(requests: [Self.read("r1")]).routed?.first)
        #expect(answer.state == .queued)
    }

    @Test func unknownTargetsAndSelfRequestsAreRejected() async throws {
        var p = try await Pair.make()
        let response = try await p.pollA(requests: [
            Self.read("r1", to: "device:ghost"), Self.read("r2", to: "device:a"),
        ])
        #expect(response.routed?.map(\.code) == [OutcomeCode.unknownTarget, OutcomeCode.invalidRequest])
        #expect(response.routed?.map(\.ref) == ["r1", "r2"])
    }

    @Test func failFastRejectsAnUnreachableTargetWhileHoldQueues() async throws {
        var p = try await Pair.make()
        let fast = try #require(try await p.pollA(requests: [Self.read("r1", .fail)]).routed?.first)
        #expect(fast.code == OutcomeCode.targetUnavailable)
        let held = try #require(try await p.pollA(requests: [Self.read("r2", .hold)]).routed?.first)
        #expect(held.state == .queued)
        // Once b has been heard from, fail-fast requests are queued too.
        _ = try await p.pollB()
        let now = try #require(try await p.pollA(requests: [Self.read("r3", .fail)]).routed?.first)
        #expect(now.state == .queued)
    }

    @Test func expiryAndCancellationAreRoutedBackToTheSender() async throws {
        var p = try await Pair.make()
        var short = Self.read("r1")
        short.ttl = 10
        let expiring = try #require(try await p.pollA(requests: [short, Self.read("r2")]).routed?.compactMap(\.id))
        p.h.clock.advance(seconds: 11)
        await p.h.hub.sweepDeadlines()
        _ = try await p.h.hub.cancel(expiring[1], reason: "operator changed plans")
        let replies = try #require(try await p.pollA().replies)
        #expect(
            Dictionary(uniqueKeysWithValues: replies.map { ($0.ref, $0.state) }) == ["r1": .expired, "r2": .canceled])
    }

    @Test func aHeldLongPollIsWokenByAReply() async throws {
        // A long-poll needs real time: this hub runs on the system clock.
        let live = try HubHarness(systemClock: true)
        let tokenA = try await live.hub.provision(ProvisionDeviceRequest(id: "a")).token
        let tokenB = try await live.hub.provision(ProvisionDeviceRequest(id: "b")).token
        _ = try await live.hub.addRendezvousRule(
            CreateRendezvousRule(from: "device:a", to: "device:b", commands: ["read"]))
        var poll = makePoll("a", seq: 1)
        poll.requests = [Self.read("r1")]
        let id = try #require(try await live.poll(poll, token: tokenA).routed?.first?.id)
        let started = ContinuousClock.now
        async let held = live.poll(makePoll("a", seq: 2, wait: 30), token: tokenA)
        _ = try await live.poll(makePoll("b", seq: 1), token: tokenB)
        _ = try await live.poll(
            makePoll("b", seq: 2, acks: [id], results: [LogicalResult(id: id, status: .succeeded)]), token: tokenB)
        let woken = try await held
        #expect(woken.replies?.map(\.id) == [id])
        #expect(ContinuousClock.now - started < .seconds(10))
    }

    @Test func rulesAreValidatedAndCanBeDeleted() async throws {
        let p = try await Pair.make(allow: nil)
        await #expect(throws: HubError.self) {
            _ = try await p.h.hub.addRendezvousRule(CreateRendezvousRule(from: "meter-1", to: "*", commands: ["read"]))
        }
        await #expect(throws: HubError.self) {
            _ = try await p.h.hub.addRendezvousRule(CreateRendezvousRule(from: "*", to: "*", commands: []))
        }
        let rule = try await p.h.hub.addRendezvousRule(CreateRendezvousRule(from: "*", to: "*", commands: ["read"]))
        #expect(try await p.h.hub.rendezvousRules().map(\.id) == [rule.id])
        try await p.h.hub.deleteRendezvousRule(rule.id)
        #expect(try await p.h.hub.rendezvousRules().isEmpty)
        await #expect(throws: HubError.self) { try await p.h.hub.deleteRendezvousRule(rule.id) }
    }

    @Test func invalidPeerRequestsAreRefusedWithTheField() async throws {
        let p = try await Pair.make()
        var poll = makePoll("a", seq: 1)
        poll.requests = [PeerRequest(ref: "r1", to: "b", name: "read")]
        do {
            _ = try await p.h.poll(poll, token: p.a)
            Issue.record("a request without device: was accepted")
        } catch let error as HubError {
            #expect(error.status.code == 400)
            #expect(error.body.message.hasPrefix("requests[0].to"))
        }
    }
}
