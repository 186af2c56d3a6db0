import BackchannelAgent
import Foundation
import Testing

@Suite struct SequenceCounterTests {
    @Test func startsAtOneAndWritesOncePerBlock() throws {
        try withTemporaryDirectory { directory in
            let url = directory.appendingPathComponent("state/seq")
            let counter = try SequenceCounter(url: url, blockSize: 10)
            #expect(!FileManager.default.fileExists(atPath: url.path))
            #expect(try counter.next() == 1)
            #expect(try String(contentsOf: url, encoding: .utf8) == "10\n")
            let modified = try Data(contentsOf: url)
            for expected in 2...10 { #expect(try counter.next() == Int64(expected)) }
            #expect(try Data(contentsOf: url) == modified)  // no write inside the block
            #expect(try counter.next() == 11)
            #expect(try String(contentsOf: url, encoding: .utf8) == "20\n")
        }
    }

    @Test func strictlyIncreasingAcrossManyRestarts() throws {
        try withTemporaryDirectory { directory in
            let url = directory.appendingPathComponent("seq")
            var last: Int64 = 0
            var generator = SystemRandomNumberGenerator()
            for cycle in 0..<60 {
                let counter = try SequenceCounter(url: url, blockSize: 7)
                let draws = cycle % 5 == 0 ? 0 : Int.random(in: 1...20, using: &generator)
                for _ in 0..<draws {
                    let value = try counter.next()
                    #expect(value > last)
                    last = value
                }
            }
            #expect(last > 0)
            #expect(try SequenceCounter(url: url, blockSize: 7).next() > last)
        }
    }

    @Test func advancePastMovesTheNextNumberAndSurvivesARestart() throws {
        try withTemporaryDirectory { directory in
            let url = directory.appendingPathComponent("seq")
            do {
                let counter = try SequenceCounter(url: url, blockSize: 100)
                #expect(try counter.next() == 1)
                try counter.advance(past: 50)  // inside the reserved block
                #expect(try counter.next() == 51)
                try counter.advance(past: 10)  // behind: no effect
                #expect(try counter.next() == 52)
                try counter.advance(past: 5000)  // beyond the mark: stored at once
            }
            let counter = try SequenceCounter(url: url, blockSize: 100)
            #expect(try counter.next() > 5000)
        }
    }

    @Test func aDamagedFileIsRefused() throws {
        try withTemporaryDirectory { directory in
            let url = directory.appendingPathComponent("seq")
            try Data("12x4".utf8).write(to: url)
            let error = #expect(throws: DurableStorageError.self) { try SequenceCounter(url: url) }
            #expect(error?.code == .corrupt)
        }
    }
}
