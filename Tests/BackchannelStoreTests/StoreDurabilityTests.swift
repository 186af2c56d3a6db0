import BackchannelProtocol
import BackchannelStore
import Foundation
import Testing

/// What durable stores must keep across closing and reopening.
@Suite("MessageStore durability across reopen")
struct StoreDurabilityTests {
    typealias F = Fixture

    @Test("reopening the same file keeps devices, commands, history, memos and uplink", arguments: StoreKind.durable)
    func reopenKeepsEverything(kind: StoreKind) async throws {
        try await kind.withLocation { location in
            var device = DeviceRecord(
                id: "dev-1", name: "Meter", labels: ["site": "north"], tokenHash: "h1", createdAt: F.t0)
            let memo = ExchangeMemo(seq: 3, requestHash: "abc", response: Data([0, 1, 2, 255]))
            let done = F.command(id: "c-done", device: "dev-1", args: ["x": [1.5, "y", nil]], created: 0, key: "k1")
            let open = F.command(id: "c-open", device: "dev-1", created: 1, notBefore: F.at(2))
            let waiting = F.command(id: "c-wait", device: "dev-1", created: 2, notBefore: F.at(9000))

            var expectedCommands: [CommandRecord] = []
            var expectedHistory: [String: [TransitionRecord]] = [:]
            var expectedUplink: [UplinkRecord] = []
            do {
                let store = try location.open()
                try await store.insertDevice(device)
                for command in [done, open, waiting] { try await store.submitNew(command) }
                try await store.poll(at: F.at(3), uplink: [F.uplink("u1"), F.uplink("e1", kind: .event)], accept: 2)
                try await store.poll(at: F.at(4), results: [F.result("c-done", .succeeded)]) { _ in memo }
                try await store.recordLastSeen(["dev-1": F.at(4)])
                _ = try await store.cancel(command: "c-wait", at: F.at(5), reason: "not needed")
                expectedCommands = try await store.commands(CommandQuery())
                for command in expectedCommands {
                    expectedHistory[command.id] = try await store.history(command: command.id)
                }
                expectedUplink = try await store.uplink(device: "dev-1", kind: nil, after: nil, limit: 10)
                #expect(expectedCommands.map(\.state) == [.canceled, .dispatched, .succeeded])
                #expect(expectedUplink.count == 2)
            }

            let reopened = try location.open()
            #expect(reopened.writeCount == 0, "writeCount counts since the store was opened")
            device.lastSeenAt = F.at(4)
            device.lastExchange = memo
            #expect(try await reopened.device(id: "dev-1") == device)
            #expect(try await reopened.commands(CommandQuery()) == expectedCommands)
            for command in expectedCommands {
                #expect(try await reopened.history(command: command.id) == expectedHistory[command.id])
            }
            #expect(try await reopened.uplink(device: "dev-1", kind: nil, after: nil, limit: 10) == expectedUplink)
            #expect(try await reopened.pendingCount(device: "dev-1") == 1)
            #expect(try await reopened.nextDeadline() == F.at(33))  // c-open's lease (dispatched at 3, 30 s)

            // The reopened store carries on: idempotency, uplink dedup and the lifecycle.
            #expect(
                try await reopened.submit(F.command(id: "c-new", args: ["x": [1.5, "y", nil]], key: "k1"))
                    == .existing(expectedCommands.last!))
            let again = try await reopened.poll(at: F.at(6), uplink: [F.uplink("u1"), F.uplink("u2")])
            #expect(again.newlyStored == ["u2"])
            let newest = try await reopened.uplink(device: "dev-1", kind: nil, after: nil, limit: 1)
            #expect(newest.first?.item.id == "u2")
            #expect(newest.first.map { $0.seq > expectedUplink[0].seq } == true, "seq keeps increasing after reopen")
            _ = try await reopened.sweep(at: F.at(33), limit: 10)
            #expect(try await reopened.command(id: "c-open")?.state == .queued)
        }
    }

    @Test("a second store opened on the same file sees committed writes at once", arguments: StoreKind.durable)
    func sharedFile(kind: StoreKind) async throws {
        try await kind.withLocation { location in
            let writer = try location.open()
            let reader = try location.open()
            try await writer.insertDevice(F.device("dev-1"))
            let command = try await writer.submitNew(F.command())
            #expect(try await reader.command(id: command.id) == command)
            #expect(reader.writeCount == 0)
        }
    }
}
