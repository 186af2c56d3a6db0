import BackchannelProtocol
import BackchannelStore
import Foundation
import Testing

extension StoreConformanceTests {
    /// A request dev-1 sends to dev-2 through the hub.
    static func peer(_ ref: String, args: JSONValue = ["register": 1]) -> CommandRecord {
        var record = F.command(device: "dev-2", args: args, key: "rv:dev-1:\(ref)")
        record.origin = "device:dev-1"
        record.replyTo = "dev-1"
        record.replyRef = ref
        return record
    }

    static func exchange(
        _ store: any MessageStore, _ device: String, at seconds: Double, routed: [CommandRecord] = [],
        replyAcks: [String] = [], replyLimit: Int = 10, accept: Int = 0, acks: [String] = [],
        results: [LogicalResult] = []
    ) async throws -> ExchangeOutcome {
        var input = ExchangeInput(
            device: device, now: F.at(seconds), acks: acks, results: results, accept: accept, leaseSeconds: 30)
        input.routed = routed
        input.replyAcks = replyAcks
        input.replyLimit = replyLimit
        return try await store.exchange(input) { _ in nil }
    }

    @Test(
        "rendezvous: routed requests are stored once per ref, replies leased and acked", arguments: StoreKind.allCases)
    func rendezvousLifecycle(kind: StoreKind) async throws {
        try await kind.withStore(devices: Self.devices) { store async throws in
            let request = Self.peer("r1")
            let sent = try await Self.exchange(store, "dev-1", at: 1, routed: [request])
            #expect(sent.routed == [.created(request)])
            #expect(sent.wrote)
            #expect(try await store.history(command: request.id).map(\.to) == [.queued])

            var again = Self.peer("r1")
            let repeated = try await Self.exchange(store, "dev-1", at: 2, routed: [again])
            #expect(repeated.routed == [.existing(request)])
            #expect(!repeated.wrote, "a repeated ref writes nothing")
            again.args = ["register": 2]
            #expect(try await Self.exchange(store, "dev-1", at: 2, routed: [again]).routed == [.refReused(ref: "r1")])

            // The target runs it; the reply becomes pending and is delivered to the sender only.
            let atTarget = try await Self.exchange(store, "dev-2", at: 3, accept: 5)
            #expect(atTarget.plan.dispatched.map(\.id) == [request.id])
            _ = try await Self.exchange(store, "dev-2", at: 4, acks: [request.id], results: [F.result(request.id)])
            #expect(try await store.command(id: request.id)?.replyState == .pending)
            #expect(try await store.pendingWork(device: "dev-1", horizon: F.at(5), now: F.at(5)).repliesDue)
            #expect(try await Self.exchange(store, "dev-2", at: 5).replies.isEmpty)

            let delivered = try await Self.exchange(store, "dev-1", at: 6)
            #expect(delivered.replies.map(\.id) == [request.id])
            #expect(delivered.replies.first?.replyState == .sent)
            #expect(delivered.replies.first?.peerReply?.ref == "r1")
            #expect(!(try await store.pendingWork(device: "dev-1", horizon: F.at(7), now: F.at(7)).repliesDue))
            #expect(try await Self.exchange(store, "dev-1", at: 7).replies.isEmpty, "leased")
            #expect(try await Self.exchange(store, "dev-1", at: 37).replies.map(\.id) == [request.id], "lease lapsed")

            let acked = try await Self.exchange(store, "dev-1", at: 38, replyAcks: [request.id])
            #expect(acked.wrote)
            #expect(try await store.command(id: request.id)?.replyState == .acked)
            #expect(try await Self.exchange(store, "dev-1", at: 80).replies.isEmpty)
            #expect(try await store.commands(CommandQuery(replyTo: "dev-1", ref: "r1")).map(\.id) == [request.id])
        }
    }

    @Test("rendezvous: replies beyond the limit wait for the next exchange", arguments: StoreKind.allCases)
    func rendezvousReplyLimit(kind: StoreKind) async throws {
        try await kind.withStore(devices: Self.devices) { store async throws in
            let requests = (1...3).map { Self.peer("r\($0)") }
            _ = try await Self.exchange(store, "dev-1", at: 1, routed: requests)
            for request in requests {
                _ = try await store.cancel(command: request.id, at: F.at(2), reason: nil)
            }
            let first = try await Self.exchange(store, "dev-1", at: 3, replyLimit: 2)
            #expect(first.replies.count == 2)
            #expect(first.moreReplies)
            let second = try await Self.exchange(store, "dev-1", at: 4, replyLimit: 2)
            #expect(second.replies.count == 1)
            #expect(!second.moreReplies)
            #expect(Set((first.replies + second.replies).map(\.id)) == Set(requests.map(\.id)))
            #expect((first.replies + second.replies).allSatisfy { $0.state == .canceled })
        }
    }

    @Test("rendezvous rules are stored, listed in order and deleted", arguments: StoreKind.allCases)
    func rendezvousRules(kind: StoreKind) async throws {
        try await kind.withStore(devices: Self.devices) { store async throws in
            let a = RendezvousRule(id: "rule-a", from: "device:dev-1", to: "*", commands: ["read"], createdAt: F.at(1))
            let b = RendezvousRule(id: "rule-b", from: "*", to: "label:x=y", commands: ["*"], createdAt: F.at(2))
            try await store.insertRule(a)
            try await store.insertRule(b)
            #expect(try await store.rules() == [a, b])
            #expect(try await store.deleteRule(id: "rule-a"))
            #expect(!(try await store.deleteRule(id: "rule-a")))
            #expect(try await store.rules() == [b])
        }
    }
}
