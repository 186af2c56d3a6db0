import BackchannelProtocol
import Testing

@Suite("PollRequest.validate")
struct ValidationTests {
    static let at = Timestamp(milliseconds: 1_795_789_700_123)

    /// A request that uses every field and passes the default limits.
    static func valid() -> PollRequest {
        PollRequest(
            device: "meter-01.north:a_b", seq: 0, sentAt: at, acks: ["c1", "c2"],
            results: [
                LogicalResult(id: "c0", status: .succeeded, code: "ok", detail: "fine", data: ["v": [1, 2]]),
                LogicalResult(id: "c3", status: .rejected, code: "unknown_command"),
            ],
            uplink: [
                UplinkItem(id: "u1", kind: .reading, name: "meter", at: at, data: ["kwh": 1.5]),
                UplinkItem(id: "u2", kind: .event, name: "relay.changed", at: at, data: "open"),
            ],
            presence: PresenceReport(state: .available, note: "ok", status: ["load": 0.4]),
            accept: 5, wait: 30)
    }

    /// The failure `validate` throws, or nil when the request passes.
    static func failure(_ request: PollRequest, _ limits: PollLimits = PollLimits()) -> ValidationFailure? {
        do {
            try request.validate(limits)
            return nil
        } catch {
            return error
        }
    }

    /// JSON nested `levels` deep (0 is a scalar).
    static func nested(_ levels: Int) -> JSONValue {
        var value: JSONValue = 1
        for i in 0..<levels { value = i.isMultiple(of: 2) ? [value] : ["k": value] }
        return value
    }

    @Test("a valid request passes, and an empty one too")
    func validPasses() {
        #expect(Self.failure(Self.valid()) == nil)
        #expect(Self.failure(PollRequest(device: "d", seq: 0, sentAt: Self.at, accept: 0)) == nil)
    }

    @Test(
        "bad device ids are refused on `device`",
        arguments: ["", "-leading-dash", ".dot", "has space", "ümlaut", "a/b", String(repeating: "x", count: 129)])
    func badDevice(device: String) {
        var request = Self.valid()
        request.device = device
        #expect(Self.failure(request)?.field == "device")
    }

    @Test("a device id of exactly the maximum length passes")
    func longestDevice() {
        var request = Self.valid()
        request.device = String(repeating: "x", count: 128)
        #expect(Self.failure(request) == nil)
    }

    @Test("negative seq, negative accept, and bad wait are refused on their fields")
    func scalarFields() {
        var request = Self.valid()
        request.seq = -1
        #expect(Self.failure(request)?.field == "seq")
        request = Self.valid()
        request.accept = -1
        #expect(Self.failure(request)?.field == "accept")
        for wait in [-1, Double.infinity, Double.nan] {
            request = Self.valid()
            request.wait = wait
            #expect(Self.failure(request)?.field == "wait", "wait \(wait)")
        }
        request = Self.valid()
        request.accept = 100_000  // capped by the hub, not refused
        #expect(Self.failure(request) == nil)
    }

    @Test("too many messages in one poll are refused on `body`, counting acks, results and uplink together")
    func tooManyMessages() {
        var limits = PollLimits()
        limits.maxMessagesPerPoll = 6
        #expect(Self.failure(Self.valid(), limits) == nil)  // 2 + 2 + 2
        var request = Self.valid()
        request.acks.append("c9")
        let failure = Self.failure(request, limits)
        #expect(failure?.field == "body")
        #expect(failure?.reason.contains("7") == true)
    }

    @Test("ack ids must be identifiers")
    func badAck() {
        var request = Self.valid()
        request.acks = ["ok", "bad id"]
        #expect(Self.failure(request)?.field == "acks[1]")
    }

    @Test("result rules: id, duplicate id, code, detail, data")
    func results() {
        var request = Self.valid()
        request.results[1].id = ""
        #expect(Self.failure(request)?.field == "results[1].id")

        request = Self.valid()
        request.results.append(LogicalResult(id: "c0", status: .failed))
        let duplicate = Self.failure(request)
        #expect(duplicate?.field == "results[2].id")
        #expect(duplicate?.reason.contains("duplicate") == true)

        request = Self.valid()
        request.results[0].code = "not a code"
        #expect(Self.failure(request)?.field == "results[0].code")

        var limits = PollLimits()
        limits.maxStringBytes = 8
        request = Self.valid()
        request.results[1].detail = "123456789"
        #expect(Self.failure(request, limits)?.field == "results[1].detail")

        request = Self.valid()
        request.results[1].data = Self.nested(17)
        #expect(Self.failure(request)?.field == "results[1].data")
    }

    @Test("uplink rules: id, duplicate id, name, data depth, string length")
    func uplink() {
        var request = Self.valid()
        request.uplink[0].id = "_x"
        #expect(Self.failure(request)?.field == "uplink[0].id")

        request = Self.valid()
        request.uplink[1].id = "u1"
        let duplicate = Self.failure(request)
        #expect(duplicate?.field == "uplink[1].id")
        #expect(duplicate?.reason.contains("duplicate") == true)

        request = Self.valid()
        request.uplink[1].name = String(repeating: "n", count: 65)
        #expect(Self.failure(request)?.field == "uplink[1].name")

        request = Self.valid()
        request.uplink[1].data = Self.nested(17)
        let deep = Self.failure(request)
        #expect(deep?.field == "uplink[1].data")
        #expect(deep?.reason.contains("16") == true)

        request = Self.valid()
        request.uplink[0].data = ["text": .string(String(repeating: "a", count: 64 * 1024 + 1))]
        let long = Self.failure(request)
        #expect(long?.field == "uplink[0].data")
        #expect(long?.description.hasPrefix("uplink[0].data: ") == true)
    }

    @Test("depth and string limits are inclusive bounds")
    func boundaries() {
        var limits = PollLimits()
        limits.maxJSONDepth = 3
        limits.maxStringBytes = 4
        var request = Self.valid()
        request.results = []
        request.presence = nil
        request.uplink = [UplinkItem(id: "u", kind: .reading, name: "m", at: Self.at, data: Self.nested(3))]
        #expect(Self.failure(request, limits) == nil)
        request.uplink[0].data = Self.nested(4)
        #expect(Self.failure(request, limits)?.field == "uplink[0].data")

        request.uplink[0].data = ["abcd": "wxyz"]
        #expect(Self.failure(request, limits) == nil)
        request.uplink[0].data = ["abcde": 1]  // keys count too
        #expect(Self.failure(request, limits)?.field == "uplink[0].data")
        request.uplink[0].data = ["a": ["ü", "abc"]]  // bytes, not characters: "üab" would be 4
        #expect(Self.failure(request, limits) == nil)
        request.uplink[0].data = ["a": ["üabc"]]
        #expect(Self.failure(request, limits)?.field == "uplink[0].data")
    }

    @Test("presence rules: note length and status depth")
    func presence() {
        var request = Self.valid()
        request.presence?.note = String(repeating: "n", count: 1025)
        #expect(Self.failure(request)?.field == "presence.note")
        request.presence?.note = String(repeating: "n", count: 1024)
        #expect(Self.failure(request) == nil)

        request.presence?.status = ["deep": Self.nested(16)]  // 17 with the status object itself
        #expect(Self.failure(request)?.field == "presence.status")
    }

    @Test("the failure names the field, never the value")
    func neverEchoesValues() {
        var request = Self.valid()
        request.device = "secret token"
        let failure = Self.failure(request)
        #expect(failure != nil)
        #expect(failure?.description.contains("secret") == false)
    }

    @Test("identifier rules")
    func identifiers() {
        #expect(Identifier.isValid("a"))
        #expect(Identifier.isValid("0a.b_c:d-e"))
        #expect(!Identifier.isValid(""))
        #expect(!Identifier.isValid(":a"))
        #expect(!Identifier.isValid("a b"))
        #expect(!Identifier.isValid("abcd", maxBytes: 3))
        #expect(Identifier.isValid("abc", maxBytes: 3))
    }
}
