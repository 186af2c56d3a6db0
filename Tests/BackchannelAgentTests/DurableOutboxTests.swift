import BackchannelAgent
import BackchannelProtocol
import Foundation
import Testing

@Suite struct DurableOutboxTests {
    @Test func addPeekDeliverAndReopen() throws {
        try withTemporaryDirectory { directory in
            do {
                let outbox = try DurableOutbox(directory: directory)
                #expect(outbox.isEmpty)
                try outbox.add((0..<5).map(reading))
                #expect(outbox.count == 5)
                #expect(outbox.peek(max: 3) == (0..<3).map(reading))
                #expect(outbox.peek(max: 0).isEmpty)
                try outbox.markDelivered(["r-2", "r-0", "r-unknown"])
                #expect(outbox.peek(max: 10) == [1, 3, 4].map(reading))
                #expect(outbox.count == 3)
            }
            let outbox = try DurableOutbox(directory: directory)
            #expect(outbox.count == 3)
            #expect(outbox.peek(max: 10) == [1, 3, 4].map(reading))
            #expect(FileManager.default.fileExists(atPath: directory.appendingPathComponent("outbox.journal").path))
        }
    }

    @Test func deliveredItemsNeverComeBack() throws {
        try withTemporaryDirectory { directory in
            for round in 0..<5 {
                let outbox = try DurableOutbox(directory: directory)
                #expect(outbox.count == 1 || round == 0)
                try outbox.add([reading(round * 10), reading(round * 10 + 1)])
                try outbox.markDelivered(outbox.peek(max: outbox.count - 1).map(\.id))
                #expect(outbox.peek(max: 10) == [reading(round * 10 + 1)])
            }
            let outbox = try DurableOutbox(directory: directory)
            #expect(outbox.peek(max: 10) == [reading(41)])
            try outbox.markDelivered(["r-41"])
            #expect(try DurableOutbox(directory: directory).isEmpty)
        }
    }

    @Test func orderIsPreservedAcrossBatchesAndReopens() throws {
        try withTemporaryDirectory { directory in
            var expected: [UplinkItem] = []
            for batch in 0..<6 {
                let outbox = try DurableOutbox(directory: directory)
                #expect(outbox.peek(max: .max) == expected)
                let items = (batch * 7..<batch * 7 + 7).map(reading)
                try outbox.add(items)
                expected += items
                // Deliver every third waiting item, out of order.
                let delivered = Set(expected.enumerated().filter { $0.offset % 3 == 1 }.map(\.element.id))
                try outbox.markDelivered(delivered.reversed())
                expected.removeAll { delivered.contains($0.id) }
                #expect(outbox.peek(max: .max) == expected)
            }
            #expect(try DurableOutbox(directory: directory).peek(max: .max) == expected)
        }
    }

    @Test func anIDAlreadyWaitingIsNotAddedTwice() throws {
        try withTemporaryDirectory { directory in
            let outbox = try DurableOutbox(directory: directory)
            var changed = reading(1)
            changed.name = "changed"
            try outbox.add([reading(1), reading(2), changed])
            try outbox.add([changed])
            #expect(outbox.peek(max: 10) == [reading(1), reading(2)])
            try outbox.markDelivered(["r-1"])
            try outbox.add([changed])  // a delivered id may be used afresh
            #expect(try DurableOutbox(directory: directory).peek(max: 10) == [reading(2), changed])
        }
    }

    @Test func compactionTriggersByItselfAndTheFileShrinks() throws {
        try withTemporaryDirectory { directory in
            let url = directory.appendingPathComponent("outbox.journal")
            let outbox = try DurableOutbox(directory: directory)
            try outbox.add((0..<1500).map(reading))
            let full = try fileSize(url)
            // After 9 delivery records for 900 items there are 909 dead records: not yet
            // past 1,000, so no compaction.
            for batch in 0..<9 {
                try outbox.markDelivered((batch * 100..<batch * 100 + 100).map { "r-\($0)" })
            }
            #expect(try fileSize(url) > full)
            #expect(try lineCount(url) == 1509)
            // The 10th makes 1,010 dead records, past 1,000 and more than the 500 waiting.
            try outbox.markDelivered((900..<1000).map { "r-\($0)" })
            #expect(try lineCount(url) == 500)
            #expect(try fileSize(url) < full / 2)
            #expect(outbox.peek(max: .max) == (1000..<1500).map(reading))
            try outbox.add([reading(9999)])
            let reopened = try DurableOutbox(directory: directory)
            #expect(reopened.peek(max: .max) == (1000..<1500).map(reading) + [reading(9999)])
        }
    }

    @Test func compactionWaitsWhileWaitingItemsOutnumberDeadRecords() throws {
        try withTemporaryDirectory { directory in
            let url = directory.appendingPathComponent("outbox.journal")
            let outbox = try DurableOutbox(directory: directory, compactAfter: 10)
            try outbox.add((0..<50).map(reading))
            try outbox.markDelivered((0..<20).map { "r-\($0)" })
            #expect(try lineCount(url) == 51)  // 21 dead records, 30 waiting items
            try outbox.markDelivered((20..<30).map { "r-\($0)" })
            #expect(try lineCount(url) == 20)  // 32 dead records outnumber 20 waiting ones
            #expect(try DurableOutbox(directory: directory).peek(max: .max) == (30..<50).map(reading))
        }
    }
}
