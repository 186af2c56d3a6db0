import BackchannelProtocol
import Foundation
import Testing

@testable import BackchannelHub

/// The pure alarm engine: rules raising and clearing alarms, escalation through operators,
/// acknowledgement, hysteresis, selectors and validation. Time is passed in; nothing sleeps.
@Suite struct AlarmEngineTests {
    let t0 = Timestamp(milliseconds: 1_800_000_000_000)
    let operators = EscalationList(["op1", "op2", "op3"], escalateAfter: 60)

    func engine(
        _ rules: [AlarmRule] = AlarmRule.loadingExample, perRule: [String: EscalationList] = [:],
        available: [String] = []
    ) throws -> AlarmEngine {
        var engine = try AlarmEngine(rules: rules, escalation: EscalationPolicy(default: operators, perRule: perRule))
        for id in available { _ = engine.setOperator(id, available: true, at: t0) }
        return engine
    }

    func at(_ seconds: Double) -> Timestamp { t0.adding(seconds: seconds) }

    func summary(_ events: [AlarmEvent]) -> [String] {
        events.map { "\($0.kind.rawValue) \($0.name)" + ($0.operator.map { " \($0)" } ?? "") }
    }

    @Test func theSeedLoadingExample() throws {
        var e = try engine(available: ["op1"])
        #expect(e.evaluate(device: "m1", values: ["load": 50], at: at(0)).isEmpty)
        #expect(
            summary(e.evaluate(device: "m1", values: ["load": 82], at: at(1))) == [
                "raised high loading", "offered high loading op1",
            ])
        let high = try #require(e.openAlarms.first)
        #expect(high.id == "m1:load-high:1" && high.severity == .warning && high.value == 82 && high.raisedAt == at(1))
        #expect(high.offeredTo == "op1" && high.escalatesAt == at(61) && high.state == .raised)
        #expect(
            summary(e.evaluate(device: "m1", values: ["load": 96], at: at(2))) == [
                "raised trip imminent", "offered trip imminent op1",
            ])
        #expect(e.openAlarms.map(\.name) == ["high loading", "trip imminent"])
        #expect(e.evaluate(device: "m1", values: ["load": 97], at: at(3)).isEmpty, "one open alarm per device and rule")
        let tripped = e.evaluate(device: "m1", values: ["load": 0], at: at(4))
        #expect(
            summary(tripped) == [
                "cleared high loading", "cleared trip imminent", "raised breaker tripped",
                "offered breaker tripped op1",
            ])
        #expect(tripped.first { $0.kind == .raised }?.severity == .critical)
        #expect(e.openAlarms.map(\.name) == ["breaker tripped"])
        let cleared = try #require(e.alarm("m1:load-high:1"))
        #expect(cleared.state == .cleared && cleared.clearedAt == at(4) && cleared.escalatesAt == nil)
        #expect(cleared.history.map(\.kind) == [.raised, .offered, .cleared])
        #expect(cleared.history.last?.value == 0)
        #expect(e.allAlarms.count == 3)
        // Another device is independent.
        #expect(
            summary(e.evaluate(device: "m2", values: ["load": 85], at: at(5))) == [
                "raised high loading", "offered high loading op1",
            ])
    }

    @Test func escalatesAtExactlyTheDeadlineThenIsExhausted() throws {
        var e = try engine(available: ["op2", "op3"])
        let raised = e.evaluate(device: "m1", values: ["load": 90], at: at(0))
        #expect(summary(raised) == ["raised high loading", "offered high loading op2"], "op1 is unavailable")
        let id = try #require(raised.first?.alarmID)
        #expect(e.nextEscalation == at(60))
        #expect(e.tick(at: t0.adding(seconds: 59.999)).isEmpty)
        let escalated = e.tick(at: at(60))
        #expect(summary(escalated) == ["escalated high loading op3"])
        #expect(escalated.first?.step.detail == "not acknowledged in time")
        #expect(e.alarm(id)?.escalationLevel == 1 && e.alarm(id)?.escalatesAt == at(120))
        #expect(e.tick(at: at(119)).isEmpty)
        #expect(summary(e.tick(at: at(120))) == ["exhausted high loading op3"])
        let alarm = try #require(e.alarm(id))
        #expect(alarm.exhausted && alarm.offeredTo == "op3" && alarm.state == .raised && alarm.escalatesAt == nil)
        #expect(e.nextEscalation == nil)
        #expect(e.tick(at: at(1000)).isEmpty, "no wrap-around")
        // It can still be acknowledged, by anyone on the list.
        _ = try e.acknowledge(id, by: "op1", at: at(1001))
        #expect(e.alarm(id)?.acknowledgedBy == "op1")
    }

    @Test func aLateTickEscalatesOneStepAndGivesTheNextOperatorAFullWindow() throws {
        var e = try engine(available: ["op1", "op2", "op3"])
        let id = try #require(e.evaluate(device: "m1", values: ["load": 90], at: at(0)).first?.alarmID)
        #expect(summary(e.tick(at: at(500))) == ["escalated high loading op2"])
        #expect(e.alarm(id)?.escalatesAt == at(560))
    }

    @Test func acknowledgedOnceAndEscalationStops() throws {
        var e = try engine(available: ["op2", "op3"])
        let id = try #require(e.evaluate(device: "m1", values: ["load": 90], at: at(0)).first?.alarmID)
        let ack = try e.acknowledge(id, by: "op2", at: at(10))
        #expect(summary(ack) == ["acknowledged high loading op2"])
        let alarm = try #require(e.alarm(id))
        #expect(alarm.state == .acknowledged && alarm.acknowledgedBy == "op2" && alarm.acknowledgedAt == at(10))
        #expect(alarm.escalatesAt == nil && e.nextEscalation == nil)
        #expect(throws: AlarmError.alreadyAcknowledged) { try e.acknowledge(id, by: "op3", at: at(11)) }
        #expect(throws: AlarmError.alreadyAcknowledged) { try e.acknowledge(id, by: "op2", at: at(12)) }
        #expect(throws: AlarmError.notSubscribed) { try e.acknowledge(id, by: "intruder", at: at(12)) }
        #expect(throws: AlarmError.unknownAlarm) { try e.acknowledge("m1:nope:9", by: "op2", at: at(12)) }
        #expect(e.tick(at: at(60)).isEmpty)
        #expect(e.tick(at: at(600)).isEmpty)
        #expect(e.alarm(id)?.acknowledgedBy == "op2", "the first acknowledgement stands")
        #expect(e.alarm(id)?.offeredTo == "op2")
        // Still open until the condition ends, then acknowledged and cleared.
        #expect(e.openAlarms.map(\.id) == [id])
        _ = e.evaluate(device: "m1", values: ["load": 40], at: at(700))
        #expect(e.alarm(id)?.state == .acknowledgedAndCleared)
        #expect(e.alarm(id)?.history.map(\.kind) == [.raised, .offered, .acknowledged, .cleared])
        #expect(AlarmError.alreadyAcknowledged.description == "the alarm is already acknowledged")
    }

    @Test func aClearedAlarmCanStillBeAcknowledgedAndNoLongerEscalates() throws {
        var e = try engine(available: ["op1"])
        let id = try #require(e.evaluate(device: "m1", values: ["load": 90], at: at(0)).first?.alarmID)
        _ = e.evaluate(device: "m1", values: ["load": 10], at: at(5))
        #expect(e.alarm(id)?.state == .cleared && e.nextEscalation == nil)
        #expect(e.tick(at: at(60)).isEmpty)
        _ = try e.acknowledge(id, by: "op3", at: at(70))
        #expect(e.alarm(id)?.state == .acknowledgedAndCleared && e.alarm(id)?.acknowledgedBy == "op3")
        // A new excursion raises a new alarm.
        let again = e.evaluate(device: "m1", values: ["load": 90], at: at(80))
        #expect(again.first?.alarmID == "m1:load-high:2")
        #expect(e.prune(clearedBefore: at(80)) == 1)
        #expect(e.alarm(id) == nil && e.allAlarms.count == 1)
    }

    @Test func anOperatorLeavingMovesTheAlarmOn() throws {
        var e = try engine(available: ["op1", "op2"])
        let id = try #require(e.evaluate(device: "m1", values: ["load": 90], at: at(0)).first?.alarmID)
        let moved = e.setOperator("op1", available: false, at: at(5))
        #expect(summary(moved) == ["escalated high loading op2"] && moved.first?.step.detail == "operator unavailable")
        #expect(e.alarm(id)?.escalatesAt == at(65), "the new holder gets a full window")
        // Nobody left: nobody holds it, until someone on the list comes back.
        #expect(summary(e.setOperator("op2", available: false, at: at(6))) == ["exhausted high loading"])
        #expect(e.alarm(id)?.offeredTo == nil && e.alarm(id)?.exhausted == true && e.nextEscalation == nil)
        #expect(e.tick(at: at(100)).isEmpty)
        #expect(summary(e.setOperator("op3", available: true, at: at(110))) == ["offered high loading op3"])
        // The holder leaving with nobody after it sends the alarm back up the list.
        _ = e.setOperator("op1", available: true, at: at(120))
        #expect(summary(e.setOperator("op3", available: false, at: at(130))) == ["escalated high loading op1"])
        #expect(e.alarm(id)?.escalationLevel == 2)
    }

    @Test func anExhaustedAlarmEscalatesWhenALaterOperatorArrives() throws {
        var e = try engine(available: ["op1"])
        let id = try #require(e.evaluate(device: "m1", values: ["load": 90], at: at(0)).first?.alarmID)
        #expect(summary(e.tick(at: at(60))) == ["exhausted high loading op1"])
        #expect(summary(e.setOperator("op3", available: true, at: at(70))) == ["escalated high loading op3"])
        #expect(e.alarm(id)?.exhausted == false && e.alarm(id)?.escalatesAt == at(130))
    }

    @Test func nobodyAvailableAtRaiseIsReportedThenOffered() throws {
        var e = try engine()
        #expect(
            summary(e.evaluate(device: "m1", values: ["load": 90], at: at(0))) == [
                "raised high loading", "exhausted high loading",
            ])
        #expect(summary(e.setOperator("op2", available: true, at: at(3))) == ["offered high loading op2"])
    }

    @Test func hysteresisDelaysTheClear() throws {
        var rule = AlarmRule.loadingExample[0]
        rule.clearHysteresis = 5
        var e = try engine([rule])
        _ = e.evaluate(device: "m1", values: ["load": 82], at: at(0))
        #expect(e.evaluate(device: "m1", values: ["load": 78], at: at(1)).isEmpty)
        #expect(e.evaluate(device: "m1", values: ["load": 75], at: at(2)).isEmpty, "75 is within the margin")
        #expect(summary(e.evaluate(device: "m1", values: ["load": 74], at: at(3))) == ["cleared high loading"])
        let below = AlarmRule(
            id: "v-low", name: "low", valuePath: "v", comparison: .below, threshold: 10, severity: .info,
            clearHysteresis: 2)
        #expect(below.raises(9.9) && !below.clears(11.9) && below.clears(12))
        let equals = AlarmRule(
            id: "z", name: "zero", valuePath: "v", comparison: .equals, threshold: 0, severity: .info,
            clearHysteresis: 1)
        #expect(equals.raises(0) && !equals.raises(0.5) && !equals.clears(1) && equals.clears(1.5))
    }

    @Test func missingOrNonNumericValuesChangeNothing() throws {
        var e = try engine()
        _ = e.evaluate(device: "m1", values: ["load": 90], at: at(0))
        #expect(e.evaluate(device: "m1", values: [:], at: at(1)).isEmpty)
        #expect(e.evaluate(device: "m1", values: ["load": "low", "temp": 20], at: at(2)).isEmpty)
        #expect(e.openAlarms.count == 1)
    }

    @Test func selectorsAndNestedPaths() throws {
        let rules = [
            AlarmRule(
                id: "f1-load", name: "feeder load", valuePath: "status.load", comparison: .above, threshold: 50,
                severity: .warning, selector: .label("feeder", equals: "F1")),
            AlarmRule(
                id: "gen-fuel", name: "low fuel", valuePath: "fuel", comparison: .atMost, threshold: 10,
                severity: .critical, selector: try AlarmSelector(parsing: "device:gen1")),
        ]
        var e = try engine(rules)
        let nested: [String: JSONValue] = ["status": ["load": 60], "fuel": 5]
        #expect(e.evaluate(device: "m1", labels: ["feeder": "F2"], values: nested, at: at(0)).isEmpty)
        #expect(
            summary(e.evaluate(device: "m1", labels: ["feeder": "F1"], values: nested, at: at(1))) == [
                "raised feeder load", "exhausted feeder load",
            ])
        #expect(
            summary(e.evaluate(device: "gen1", values: nested, at: at(2))) == ["raised low fuel", "exhausted low fuel"])
        #expect(
            e.evaluate(device: "m1", labels: ["feeder": "F1"], values: ["load": 99], at: at(3)).isEmpty,
            "flat key is not the path")
        #expect(try AlarmSelector(parsing: "label:zone=north=1").matches(device: "x", labels: ["zone": "north=1"]))
        #expect(try AlarmSelector(parsing: "*").matches(device: "x", labels: [:]))
        for bad in ["", "device:", "label:=x", "label:zone", "host:x", "**"] {
            #expect(throws: AlarmError.invalidSelector) { try AlarmSelector(parsing: bad) }
        }
    }

    @Test func ruleAndPolicyValidation() throws {
        let good = AlarmRule.loadingExample[0]
        func rejects(_ change: (inout AlarmRule) -> Void) {
            var rule = good
            change(&rule)
            #expect(throws: AlarmError.invalidRule(index: 0, "")) { try AlarmEngine(rules: [rule]) }
        }
        rejects { $0.id = "" }
        rejects { $0.id = "has space" }
        rejects { $0.id = String(repeating: "a", count: 65) }
        rejects { $0.name = "" }
        rejects { $0.valuePath = "" }
        rejects { $0.valuePath = "status..load" }
        rejects { $0.valuePath = "a.b.c.d.e.f.g.h.i" }
        rejects { $0.threshold = .nan }
        rejects { $0.threshold = .infinity }
        rejects { $0.clearHysteresis = -1 }
        do {
            var secret = good
            secret.id = "secret value 42!"
            _ = try AlarmEngine(rules: [good, secret])
            Issue.record("accepted a bad rule")
        } catch {
            #expect(error.isInvalidConfiguration && error.description.hasPrefix("rules[1]:"))
            #expect(!error.description.contains("secret") && !error.description.contains("42"))
        }
        #expect(throws: AlarmError.duplicateRuleID(index: 1)) { try AlarmEngine(rules: [good, good]) }
        let badPolicies = [
            EscalationPolicy(perRule: ["no-such-rule": operators]),
            EscalationPolicy(default: EscalationList(["a"], escalateAfter: 0)),
            EscalationPolicy(default: EscalationList(["a"], escalateAfter: .infinity)),
            EscalationPolicy(default: EscalationList(["a", "a"])),
            EscalationPolicy(perRule: [good.id: EscalationList([""])]),
        ]
        for policy in badPolicies {
            #expect(throws: AlarmError.invalidEscalation("")) { try AlarmEngine(rules: [good], escalation: policy) }
        }
        _ = try AlarmEngine(rules: AlarmRule.loadingExample)
    }

    @Test func nextEscalationIsTheEarliestPendingDeadline() throws {
        let duty = EscalationList(["duty", "op1"], escalateAfter: 30)
        var e = try engine(perRule: ["load-trip-imminent": duty], available: ["op1", "duty"])
        #expect(e.nextEscalation == nil)
        _ = e.evaluate(device: "m1", values: ["load": 90], at: at(0))
        #expect(e.nextEscalation == at(60))
        let trip = e.evaluate(device: "m2", values: ["load": 99], at: at(10))
        #expect(summary(trip).contains("offered trip imminent duty"))
        #expect(e.nextEscalation == at(40), "the per-rule list escalates after 30 s")
        let tripID = try #require(trip.first { $0.ruleID == "load-trip-imminent" }?.alarmID)
        _ = try e.acknowledge(tripID, by: "duty", at: at(20))
        #expect(e.nextEscalation == at(60))
        #expect(throws: AlarmError.notSubscribed) { try e.acknowledge("m1:load-high:1", by: "duty", at: at(21)) }
        #expect(e.nextEscalation == e.openAlarms.compactMap(\.escalatesAt).min())
    }

    @Test func deterministicAndCodable() throws {
        func run() throws -> ([AlarmEvent], AlarmEngine) {
            var e = try engine(available: ["op1", "op2"])
            var events = e.evaluate(device: "m1", values: ["load": 96], at: at(0))
            events += e.tick(at: at(60))
            events += try e.acknowledge("m1:load-high:1", by: "op2", at: at(61))
            return (events, e)
        }
        let (first, ran) = try run()
        #expect(try run().0 == first)
        let alarm = try #require(ran.alarm("m1:load-trip-imminent:2"))
        let decoded = try JSONDecoder().decode(Alarm.self, from: JSONEncoder().encode(alarm))
        #expect(decoded == alarm)
        let json = #"{"id":"r","name":"n","valuePath":"a.b","comparison":"below","threshold":3,"severity":"info"}"#
        let rule = try JSONDecoder().decode(AlarmRule.self, from: Data(json.utf8))
        #expect(rule.selector == .all && rule.clearHysteresis == 0)
        let labelled = AlarmRule(
            id: "r", name: "n", valuePath: "a", comparison: .equals, threshold: 1, severity: .info,
            selector: .label("k", equals: "v"))
        #expect(try JSONDecoder().decode(AlarmRule.self, from: JSONEncoder().encode(labelled)) == labelled)
        #expect(AlarmSeverity.info < .warning && AlarmSeverity.warning < .critical)
    }
}
