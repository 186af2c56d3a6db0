import Foundation
import Testing

@testable import BackchannelAgent

private struct Note: Codable, Equatable {
    var n: Int
    var text: String
}

private func notes(_ range: Range<Int>) -> [Note] {
    range.map { Note(n: $0, text: "note \($0)\nwith a newline, a / slash and ünïcödé") }
}

/// Opens the journal at `url`, returning it and the records it replayed.
private func open(_ url: URL) throws -> (Journal<Note>, [Note]) {
    var replayed: [Note] = []
    let journal = try Journal<Note>(url: url) { replayed.append($0) }
    return (journal, replayed)
}

@Suite struct JournalTests {
    @Test func crc32MatchesTheStandardCheckValue() {
        #expect(CRC32.checksum(Array("123456789".utf8)) == 0xCBF4_3926)
        #expect(CRC32.checksum([UInt8]()) == 0)
    }

    @Test func recordsRoundTripThroughReopen() throws {
        try withTemporaryDirectory { directory in
            let url = directory.appendingPathComponent("nested/dir/test.journal")
            do {
                let (journal, replayed) = try open(url)
                #expect(replayed.isEmpty)
                try journal.append(notes(0..<3))
                try journal.append([])
                try journal.append(notes(3..<5))
                #expect(journal.recordCount == 5)
                #expect(journal.byteCount == (try fileSize(url)))
            }
            let (journal, replayed) = try open(url)
            #expect(replayed == notes(0..<5))
            #expect(journal.recordCount == 5)
        }
    }

    @Test func eachLineIsCRCSpaceCompactJSON() throws {
        try withTemporaryDirectory { directory in
            let url = directory.appendingPathComponent("test.journal")
            let (journal, _) = try open(url)
            try journal.append(notes(0..<2))
            let text = try String(contentsOf: url, encoding: .utf8)
            let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
            #expect(lines.count == 3 && lines[2].isEmpty)
            for line in lines.dropLast() {
                let crc = line.prefix(8)
                #expect(crc.allSatisfy { "0123456789abcdef".contains($0) })
                #expect(line.dropFirst(8).first == " ")
                let json = Array(line.dropFirst(9).utf8)
                #expect(String(format: "%08x", CRC32.checksum(json)) == String(crc))
                #expect(try JSONDecoder().decode(Note.self, from: Data(json)).n >= 0)
            }
        }
    }

    enum Damage: CaseIterable {
        case garbage, halfLine, flippedByte, missingNewline
    }

    @Test(arguments: Damage.allCases)
    func aTornTailIsTruncatedAndLaterAppendsSurvive(_ damage: Damage) throws {
        try withTemporaryDirectory { directory in
            let url = directory.appendingPathComponent("test.journal")
            do {
                let (journal, _) = try open(url)
                try journal.append(notes(0..<4))
            }
            let intact = try Data(contentsOf: url)
            var bytes = intact
            var expected = notes(0..<4)
            switch damage {
            case .garbage:
                bytes.append(contentsOf: Array("zzzzzzzz not a record at all\n".utf8))
            case .halfLine:
                let line = try Data(contentsOf: url).split(separator: 0x0A)[0]
                bytes.append(contentsOf: line.prefix(line.count / 2))
            case .flippedByte:
                bytes[bytes.count - 5] ^= 0x01  // inside the last record's JSON
                expected.removeLast()
            case .missingNewline:
                bytes.removeLast()  // the last line never got its newline
                expected.removeLast()
            }
            try bytes.write(to: url)
            do {
                let (journal, replayed) = try open(url)
                #expect(replayed == expected)
                #expect(try fileSize(url) < bytes.count)
                #expect(journal.byteCount == (try fileSize(url)))
                try journal.append(notes(10..<12))
            }
            let (_, replayed) = try open(url)
            #expect(replayed == expected + notes(10..<12))
        }
    }

    @Test func aBadLineInTheMiddleEndsTheJournal() throws {
        try withTemporaryDirectory { directory in
            let url = directory.appendingPathComponent("test.journal")
            do {
                let (journal, _) = try open(url)
                try journal.append(notes(0..<4))
            }
            var bytes = try Data(contentsOf: url)
            let secondLine = bytes.firstIndex(of: 0x0A)! + 1
            bytes[secondLine + 12] ^= 0x20
            try bytes.write(to: url)
            let (journal, replayed) = try open(url)
            #expect(replayed == notes(0..<1))
            #expect(try fileSize(url) == secondLine)
            #expect(journal.recordCount == 1)
        }
    }

    @Test func rewriteCompactsAndSurvivesReopen() throws {
        try withTemporaryDirectory { directory in
            let url = directory.appendingPathComponent("test.journal")
            do {
                let (journal, _) = try open(url)
                try journal.append(notes(0..<100))
                let before = try fileSize(url)
                try journal.rewrite(notes(90..<100))
                #expect(journal.recordCount == 10)
                #expect(try fileSize(url) < before / 5)
                #expect(journal.byteCount == (try fileSize(url)))
                try journal.append(notes(100..<102))  // appends go to the new file
            }
            #expect(try FileManager.default.contentsOfDirectory(atPath: directory.path) == ["test.journal"])
            let (journal, replayed) = try open(url)
            #expect(replayed == notes(90..<102))
            try journal.rewrite([])
            #expect(try fileSize(url) == 0)
        }
    }

    @Test func aLeftoverTemporaryFileIsIgnoredAndRemoved() throws {
        try withTemporaryDirectory { directory in
            let url = directory.appendingPathComponent("test.journal")
            do {
                let (journal, _) = try open(url)
                try journal.append(notes(0..<3))
            }
            let temporary = directory.appendingPathComponent("test.journal.tmp")
            try Data("half a compaction".utf8).write(to: temporary)
            let (_, replayed) = try open(url)
            #expect(replayed == notes(0..<3))
            #expect(!FileManager.default.fileExists(atPath: temporary.path))
        }
    }

    @Test func aClosedJournalRefusesWrites() throws {
        try withTemporaryDirectory { directory in
            let (journal, _) = try open(directory.appendingPathComponent("test.journal"))
            journal.close()
            let error = #expect(throws: DurableStorageError.self) { try journal.append(notes(0..<1)) }
            #expect(error?.code == .closed)
            #expect(throws: DurableStorageError.self) { try journal.rewrite([]) }
        }
    }
}
