import BackchannelHub
import BackchannelProtocol
import Foundation
import Testing

/// The seed's loading alarms through the hub: status values from polls raise alarms, which go
/// to the first present operator and escalate; an alarm is acknowledged once.
@Suite struct AlarmHubTests {
    static func load(_ value: Double, seq: Int64) -> PollRequest {
        var poll = makePoll("feeder-7", seq: seq)
        poll.presence = PresenceReport(state: .available, status: ["load": .number(value)])
        return poll
    }

    @Test func loadingAlarmsEscalateAndAreAcknowledgedOnce() async throws {
        let h = try HubHarness()
        let token = try await h.provision("feeder-7")
        _ = try h.hub.configureAlarms(
            AlarmConfiguration(
                rules: AlarmRule.loadingExample,
                escalation: EscalationPolicy(default: EscalationList(["op1", "op2", "op3"], escalateAfter: 60))))
        // op1 has no session open; op2 and op3 do.
        h.hub.operatorPresence("op2", connected: true)
        h.hub.operatorPresence("op3", connected: true)

        _ = try await h.poll(Self.load(50, seq: 1), token: token)
        #expect(h.hub.alarms.alarms(includeClosed: true).isEmpty)

        _ = try await h.poll(Self.load(82, seq: 2), token: token)
        let high = try #require(h.hub.alarms.alarms(includeClosed: false).first)
        #expect(high.name == "high loading")
        #expect(high.offeredTo == "op2", "op1 is not present: straight to op2")

        // Nobody acknowledges within 60 s: op3.
        h.clock.advance(seconds: 59)
        h.hub.alarmTick()
        #expect(h.hub.alarms.alarm(high.id)?.offeredTo == "op2")
        h.clock.advance(seconds: 1)
        h.hub.alarmTick()
        #expect(h.hub.alarms.alarm(high.id)?.offeredTo == "op3")
        #expect(h.hub.alarms.alarm(high.id)?.escalationLevel == 1)

        // Acknowledged once.
        let acked = try h.hub.acknowledgeAlarm(high.id, by: "op3")
        #expect(acked.acknowledgedBy == "op3")
        #expect(throws: HubError.self) { _ = try h.hub.acknowledgeAlarm(high.id, by: "op2") }

        _ = try await h.poll(Self.load(96, seq: 3), token: token)
        #expect(h.hub.alarms.alarms(includeClosed: false).map(\.name).contains("trip imminent"))

        _ = try await h.poll(Self.load(0, seq: 4), token: token)
        let open = h.hub.alarms.alarms(includeClosed: false)
        #expect(open.map(\.name) == ["breaker tripped"])
        #expect(open.first?.severity == .critical)
        let all = h.hub.alarms.alarms(includeClosed: true)
        #expect(all.filter { $0.name != "breaker tripped" }.allSatisfy { $0.clearedAt != nil })
    }

    @Test func alarmsAndTheirRulesSurviveARestart() async throws {
        let h = try HubHarness()
        let token = try await h.provision("feeder-7")
        _ = try h.hub.configureAlarms(
            AlarmConfiguration(
                rules: AlarmRule.loadingExample, escalation: EscalationPolicy(default: EscalationList(["op1"]))))
        _ = try await h.poll(Self.load(97, seq: 1), token: token)
        let open = h.hub.alarms.alarms(includeClosed: false).map(\.id)
        #expect(open.count == 2)
        await h.hub.saveAlarms()

        let restarted = try HubHarness(directory: h.directory)
        let live = try await LiveHub.start(restarted.hub)
        try await waitUntil("alarms restored") { restarted.hub.alarms.alarms(includeClosed: false).count == 2 }
        #expect(restarted.hub.alarms.alarms(includeClosed: false).map(\.id) == open)
        #expect(restarted.hub.alarms.configuration.rules.map(\.id) == AlarmRule.loadingExample.map(\.id))
        // The restored alarm is acknowledged once, as before.
        _ = try restarted.hub.acknowledgeAlarm(open[0], by: "op1")
        #expect(throws: HubError.self) { _ = try restarted.hub.acknowledgeAlarm(open[0], by: "op1") }
        await live.stop()
    }

    @Test func clearedAlarmsBeyondTheCapArePrunedOldestFirst() throws {
        var engine = try AlarmEngine(rules: AlarmRule.loadingExample)
        let t0 = Timestamp(milliseconds: 1_800_000_000_000)
        for i in 0..<5 {
            _ = engine.evaluate(device: "d", values: ["load": 85], at: t0.adding(seconds: Double(i * 2)))
            _ = engine.evaluate(device: "d", values: ["load": 50], at: t0.adding(seconds: Double(i * 2 + 1)))
        }
        _ = engine.evaluate(device: "d", values: ["load": 90], at: t0.adding(seconds: 20))
        #expect(engine.allAlarms.count == 6)
        let removed = engine.prune(clearedBefore: t0, keepingAtMost: 3)
        #expect(removed == 3)
        #expect(engine.allAlarms.count == 3)
        #expect(engine.openAlarms.count == 1, "the open alarm is always kept")
        #expect(engine.allAlarms.filter { $0.clearedAt != nil }.count == 2, "the newest cleared ones are kept")
    }

    @Test func alarmConfigurationIsValidated() throws {
        let h = try HubHarness()
        let bad = AlarmRule(
            id: "x", name: "x", valuePath: "", comparison: .atLeast, threshold: 1, severity: .warning)
        #expect(throws: HubError.self) {
            _ = try h.hub.configureAlarms(AlarmConfiguration(rules: [bad], escalation: EscalationPolicy()))
        }
    }
}
