import BackchannelAgent
import BackchannelProtocol
import Foundation
import Testing

@Suite struct ExecutionLedgerTests {
    @Test func lifecycleFromReceivedToReported() throws {
        try withTemporaryDirectory { directory in
            let ledger = try ExecutionLedger(directory: directory)
            #expect(ledger.entry(for: "a") == nil)
            try ledger.recordReceived(command("a"))
            try ledger.recordReceived(command("a", attempt: 2))  // a redelivery changes nothing
            #expect(ledger.entry(for: "a") == .received(command("a")))
            try ledger.recordStarted("a")
            #expect(ledger.entry(for: "a") == .started(command("a")))
            let twice = #expect(throws: DurableStorageError.self) { try ledger.recordStarted("a") }
            #expect(twice?.code == .invalidTransition)
            let unknown = #expect(throws: DurableStorageError.self) { try ledger.recordStarted("nope") }
            #expect(unknown?.code == .unknownRequest)
            try ledger.recordFinished(success("a"))
            var late = success("a")
            late.status = .failed
            try ledger.recordFinished(late)  // the first result wins
            #expect(ledger.entry(for: "a") == .finished(success("a"), reported: false))
            #expect(ledger.unreported() == [success("a")])
            try ledger.recordReceived(command("a", attempt: 3))
            #expect(ledger.entry(for: "a") == .finished(success("a"), reported: false))
            #expect(throws: DurableStorageError.self) { try ledger.recordStarted("a") }
            try ledger.markReported(["a", "nope"])
            #expect(ledger.entry(for: "a") == .finished(success("a"), reported: true))
            #expect(ledger.unreported().isEmpty)

            let reopened = try ExecutionLedger(directory: directory)
            #expect(reopened.entry(for: "a") == .finished(success("a"), reported: true))
            #expect(reopened.unreported().isEmpty)
        }
    }

    @Test func reopenRestoresEveryKindOfEntry() throws {
        try withTemporaryDirectory { directory in
            do {
                let ledger = try ExecutionLedger(directory: directory)
                for id in ["r", "s", "f", "p"] { try ledger.recordReceived(command(id)) }
                for id in ["s", "f", "p"] { try ledger.recordStarted(id) }
                for id in ["f", "p"] { try ledger.recordFinished(success(id)) }
                try ledger.markReported(["p"])
                try ledger.recordFinished(success("refused-unseen"))
            }
            let ledger = try ExecutionLedger(directory: directory)
            #expect(ledger.entry(for: "r") == .received(command("r")))
            #expect(ledger.entry(for: "s") == .started(command("s")))
            #expect(ledger.entry(for: "f") == .finished(success("f"), reported: false))
            #expect(ledger.entry(for: "p") == .finished(success("p"), reported: true))
            #expect(ledger.unreported() == [success("f"), success("refused-unseen")])
            #expect(FileManager.default.fileExists(atPath: directory.appendingPathComponent("ledger.journal").path))
        }
    }

    @Test func recoverFailsInterruptedCommandsAndReturnsUnstartedOnes() throws {
        try withTemporaryDirectory { directory in
            do {  // the process that crashes
                let ledger = try ExecutionLedger(directory: directory)
                for id in ["r1", "s1", "r2", "done", "s2"] { try ledger.recordReceived(command(id)) }
                for id in ["s1", "done", "s2"] { try ledger.recordStarted(id) }
                try ledger.recordFinished(success("done"))
            }
            let now = Timestamp(milliseconds: 1_900_000_000_000)
            func interrupted(_ id: String) -> LogicalResult {
                LogicalResult(
                    id: id, status: .failed, code: OutcomeCode.interrupted, retryable: false,
                    detail: "the device restarted while running this command; it may or may not have taken effect",
                    finishedAt: now
                )
            }
            do {
                let ledger = try ExecutionLedger(directory: directory)
                #expect(try ledger.recover(at: now) == [command("r1"), command("r2")])
                #expect(ledger.entry(for: "s1") == .finished(interrupted("s1"), reported: false))
                #expect(ledger.entry(for: "s2") == .finished(interrupted("s2"), reported: false))
                #expect(ledger.unreported() == [success("done"), interrupted("s1"), interrupted("s2")])
                #expect(throws: DurableStorageError.self) { try ledger.recordStarted("s1") }
            }
            // The interrupted results are durable: a second restart neither reruns nor redoes them.
            let ledger = try ExecutionLedger(directory: directory)
            #expect(try ledger.recover(at: now.adding(seconds: 60)) == [command("r1"), command("r2")])
            #expect(ledger.unreported() == [success("done"), interrupted("s1"), interrupted("s2")])
        }
    }

    @Test func unreportedFollowsFinishOrder() throws {
        try withTemporaryDirectory { directory in
            do {
                let ledger = try ExecutionLedger(directory: directory)
                for id in ["a", "b", "c", "d"] { try ledger.recordReceived(command(id)) }
                for id in ["c", "a", "d", "b"] { try ledger.recordFinished(success(id)) }
                #expect(ledger.unreported().map(\.id) == ["c", "a", "d", "b"])
                try ledger.markReported(["a", "b"])
                #expect(ledger.unreported().map(\.id) == ["c", "d"])
                try ledger.recordFinished(success("e"))
            }
            let ledger = try ExecutionLedger(directory: directory)
            #expect(ledger.unreported().map(\.id) == ["c", "d", "e"])
            try ledger.compact()
            #expect(try ExecutionLedger(directory: directory).unreported().map(\.id) == ["c", "d", "e"])
        }
    }

    @Test func retentionKeepsTheRecentReportedResultsAndCompactionShrinksTheFile() throws {
        try withTemporaryDirectory { directory in
            let url = directory.appendingPathComponent("ledger.journal")
            let retention = 5
            do {
                let ledger = try ExecutionLedger(directory: directory, retention: retention)
                try ledger.recordReceived(command("waiting"))
                try ledger.recordReceived(command("running"))
                try ledger.recordStarted("running")
                try ledger.recordFinished(success("unreported"))
                for n in 0..<60 {
                    let id = "cmd-\(n)"
                    try ledger.recordReceived(command(id))
                    try ledger.recordStarted(id)
                    try ledger.recordFinished(success(id))
                    try ledger.markReported([id])
                }
                #expect(ledger.entry(for: "cmd-0") == nil)
                #expect(ledger.entry(for: "cmd-54") == nil)
                for n in 55..<60 {
                    #expect(ledger.entry(for: "cmd-\(n)") == .finished(success("cmd-\(n)"), reported: true))
                }
                // 244 records were appended; compaction keeps the file near the 8 live entries.
                #expect(try lineCount(url) <= 2 * 8 + 64 + 4)
            }
            let ledger = try ExecutionLedger(directory: directory, retention: retention)
            #expect(ledger.entry(for: "waiting") == .received(command("waiting")))
            #expect(ledger.entry(for: "running") == .started(command("running")))
            #expect(ledger.unreported() == [success("unreported")])
            #expect(ledger.entry(for: "cmd-54") == nil)
            for n in 55..<60 {
                #expect(ledger.entry(for: "cmd-\(n)") == .finished(success("cmd-\(n)"), reported: true))
            }
            // An explicit compaction leaves exactly the kept entries (started ones take two lines).
            try ledger.compact()
            #expect(try lineCount(url) == 5 + 1 + 2 + 1)
            #expect(try ExecutionLedger(directory: directory, retention: retention).entry(for: "cmd-55") != nil)
        }
    }
}
