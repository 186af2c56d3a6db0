import BackchannelProtocol
import Foundation
import Testing

@Suite("Operator API types and message states")
struct OperatorTypesTests {
    static let at = Timestamp(milliseconds: 1_795_789_700_123)

    @Test("states: wire names, terminality, result statuses")
    func states() {
        #expect(
            MessageState.allCases.map(\.rawValue) == [
                "QUEUED", "DISPATCHED", "ACKED", "SUCCEEDED", "FAILED", "REJECTED", "EXPIRED", "CANCELED", "TIMED_OUT",
            ])
        #expect(MessageState.allCases.filter { !$0.isTerminal } == [.queued, .dispatched, .acked])
        #expect(ResultStatus.allCases.map(\.terminalState) == [.succeeded, .failed, .rejected])
        #expect(ResultStatus.allCases.allSatisfy { $0.terminalState.isTerminal })
        #expect(MessageState.timedOut.description == "TIMED_OUT")
    }

    @Test("a minimal command submission decodes with everything optional absent")
    func submitMinimal() throws {
        let request = try WireJSON.decode(SubmitCommandRequest.self, from: Data(#"{"name":"read"}"#.utf8))
        #expect(request == SubmitCommandRequest(name: "read"))
        #expect(
            WireJSON.describe(
                Result { try WireJSON.decode(SubmitCommandRequest.self, from: Data("{}".utf8)) }.failure!)
                == "missing field 'name'")
    }

    @Test("a command view with history round trips")
    func commandView() throws {
        let view = CommandView(
            id: "c1", device: "d1", origin: "operator:alice", name: "relay", args: ["close": true], state: .failed,
            attempt: 2, maxAttempts: 3, createdAt: Self.at, updatedAt: Self.at.adding(seconds: 9),
            expiresAt: Self.at.adding(seconds: 60), finishedAt: Self.at.adding(seconds: 9),
            outcome: CommandOutcome(status: .failed, code: "relay_stuck", retryable: true),
            history: [
                TransitionView(at: Self.at, from: nil, to: .queued, event: "submit", attempt: 0),
                TransitionView(at: Self.at.adding(seconds: 9), from: .acked, to: .failed, event: "result", attempt: 2),
            ])
        let data = try WireJSON.encode(view)
        #expect(try WireJSON.decode(CommandView.self, from: data) == view)
        #expect((try jsonObject(data)["state"] as? String) == "FAILED")
    }

    @Test("a last page has no cursor; event kinds use dotted names")
    func pagesAndEvents() throws {
        let page = Page(items: ["a", "b"], nextCursor: nil)
        let data = try WireJSON.encode(page)
        #expect(try jsonObject(data)["nextCursor"] == nil)
        #expect(try WireJSON.decode(Page<String>.self, from: data) == page)
        #expect(HubEvent.Kind.commandTransition.rawValue == "command.transition")
        let event = HubEvent(seq: 1, at: Self.at, type: .uplink, device: "d1", data: ["kwh": 3])
        #expect(try WireJSON.decode(HubEvent.self, from: try WireJSON.encode(event)) == event)
    }
}

extension Result {
    /// The error, when this is a failure.
    var failure: Failure? {
        if case .failure(let error) = self { return error }
        return nil
    }
}
