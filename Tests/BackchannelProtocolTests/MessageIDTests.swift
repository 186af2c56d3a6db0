import BackchannelProtocol
import Foundation
import Testing

@Suite("MessageID: UUIDv7")
struct MessageIDTests {
    static let hex = Set("0123456789abcdef")

    @Test("has the canonical lower-case 8-4-4-4-12 form, version 7 and the RFC 9562 variant")
    func format() throws {
        for _ in 0..<500 {
            let id = MessageID.make()
            let groups = id.split(separator: "-", omittingEmptySubsequences: false)
            try #require(groups.map(\.count) == [8, 4, 4, 4, 12], "\(id)")
            #expect(id.count == 36)
            #expect(id.replacingOccurrences(of: "-", with: "").allSatisfy { Self.hex.contains($0) }, "\(id)")
            #expect(groups[2].first == "7", "version nibble of \(id)")
            #expect(["8", "9", "a", "b"].contains(groups[3].first), "variant of \(id)")
        }
    }

    @Test("the first 48 bits are the Unix milliseconds")
    func embedsTime() throws {
        let at = Timestamp(milliseconds: 1_795_789_700_123)
        let id = MessageID.make(at: at)
        let prefix = String(id.replacingOccurrences(of: "-", with: "").prefix(12))
        #expect(UInt64(prefix, radix: 16) == 1_795_789_700_123)
        #expect(MessageID.make(at: Timestamp(milliseconds: 0)).hasPrefix("00000000-0000-7"))
        #expect(MessageID.make(at: Timestamp(milliseconds: -5)).hasPrefix("00000000-0000-7"))
    }

    @Test("ids made in later milliseconds sort after earlier ones")
    func timeOrdered() {
        let base: Int64 = 1_795_789_700_000
        var previous = MessageID.make(at: Timestamp(milliseconds: base))
        for step in [1, 2, 255, 256, 65_536, 86_400_000] as [Int64] {
            for _ in 0..<20 {
                let next = MessageID.make(at: Timestamp(milliseconds: base + step))
                #expect(previous < next, "\(previous) !< \(next)")
            }
            previous = MessageID.make(at: Timestamp(milliseconds: base + step))
        }
        let ids = (0..<200).map { MessageID.make(at: Timestamp(milliseconds: base + Int64($0))) }
        #expect(ids.sorted() == ids)
    }

    @Test("ids made in the same millisecond are distinct")
    func unique() {
        let at = Timestamp(milliseconds: 1_795_789_700_000)
        let ids = (0..<10_000).map { _ in MessageID.make(at: at) }
        #expect(Set(ids).count == ids.count)
    }
}
