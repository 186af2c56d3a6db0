import BackchannelPower
import BackchannelProtocol
import Foundation
import Testing

private let t0 = Timestamp(milliseconds: 1_767_261_600_000)  // 2026-01-01T10:00:00Z

private func after(_ seconds: Double) -> Timestamp { t0.adding(seconds: seconds) }

private func lost(_ device: String, _ seconds: Double, cause: String? = nil) -> OutageEvent {
    OutageEvent(kind: .powerLost, device: device, at: after(seconds), cause: cause)
}

private func restored(_ device: String, _ seconds: Double, lostAt: Double? = nil) -> OutageEvent {
    OutageEvent(kind: .powerRestored, device: device, at: after(seconds), lostAt: lostAt.map(after))
}

private func heard(_ device: String, _ seconds: Double) -> OutageEvent {
    OutageEvent(kind: .heardFrom, device: device, at: after(seconds))
}

@Suite("Outage tracker")
struct OutageTests {
    @Test("the start time used by every test is 2026-01-01T10:00:00Z")
    func anchor() {
        #expect(t0.description == "2026-01-01T10:00:00.000Z")
    }

    @Test("power.lost opens a record; power.restored closes it at the restoration time")
    func openAndClose() throws {
        var tracker = OutageTracker()
        let opened = try #require(try tracker.handle(lost("m1", 0, cause: "storm")))
        #expect(opened.kind == .opened)
        #expect(
            opened.record
                == OutageRecord(
                    id: "m1/2026-01-01T10:00:00.000Z", device: "m1", start: t0, cause: "storm", lastGasp: true
                ))
        #expect(tracker.openRecords.map(\.device) == ["m1"])
        let closed = try #require(try tracker.handle(restored("m1", 720)))
        #expect(closed.kind == .closed)
        #expect(closed.record.id == "m1/2026-01-01T10:00:00.000Z")
        #expect(closed.record.end == after(720))
        #expect(closed.record.restoredBy == .powerRestored)
        #expect(closed.record.lastGasp)
        #expect(tracker.open.isEmpty)
    }

    @Test("a last gasp without a cause records cause unknown")
    func unknownCause() throws {
        var tracker = OutageTracker()
        #expect(try tracker.handle(lost("m1", 0))?.record.cause == "unknown")
    }

    @Test("a duplicate last gasp while open is ignored and keeps the first start")
    func duplicateLastGasp() throws {
        var tracker = OutageTracker()
        _ = try tracker.handle(lost("m1", 0))
        #expect(try tracker.handle(lost("m1", 5)) == nil)
        #expect(tracker.open["m1"]?.start == t0)
        // Another device is independent.
        #expect(try tracker.handle(lost("m2", 5))?.kind == .opened)
    }

    @Test("a restoration with no open record makes a closed record flagged no last gasp")
    func restorationWithoutLastGasp() throws {
        var tracker = OutageTracker()
        // With lostAt: start = lostAt.
        let known = try #require(try tracker.handle(restored("m1", 600, lostAt: 60)))
        #expect(known.kind == .closed)
        #expect(
            known.record
                == OutageRecord(
                    id: "m1/2026-01-01T10:01:00.000Z", device: "m1", start: after(60), end: after(600),
                    lastGasp: false,
                    restoredBy: .powerRestored))
        // Without lostAt: start unknown.
        let unknown = try #require(try tracker.handle(restored("m2", 600)))
        #expect(unknown.record.start == nil)
        #expect(unknown.record.id == "m2/restored-2026-01-01T10:10:00.000Z")
        #expect(unknown.record.lastGasp == false)
        #expect(tracker.open.isEmpty)
    }

    @Test("heard from again closes an open outage at the contact time, only strictly after the start")
    func heardFrom() throws {
        var tracker = OutageTracker()
        _ = try tracker.handle(lost("m1", 100))
        // A contact at the loss time itself, or before it (a delayed message), says nothing.
        #expect(try tracker.handle(heard("m1", 100)) == nil)
        #expect(try tracker.handle(heard("m1", 99)) == nil)
        #expect(tracker.open["m1"] != nil)
        let closed = try #require(try tracker.handle(heard("m1", 100.001)))
        #expect(closed.kind == .closed)
        #expect(closed.record.end == after(100.001))
        #expect(closed.record.restoredBy == .contact)
        // Nothing open: ignored.
        #expect(try tracker.handle(heard("m9", 500)) == nil)
    }

    @Test("a late power.restored revises the record closed by contact, within its start and end")
    func revision() throws {
        var tracker = OutageTracker()
        _ = try tracker.handle(lost("m1", 0))
        _ = try tracker.handle(heard("m1", 900))
        // Restored at 840 s, reported after the contact at 900 s: same record, end 840 s.
        let revised = try #require(try tracker.handle(restored("m1", 840)))
        #expect(revised.kind == .revised)
        #expect(revised.record.id == "m1/2026-01-01T10:00:00.000Z")
        #expect(revised.record.end == after(840))
        #expect(revised.record.restoredBy == .powerRestored)
        // Only once: a second restoration is a new record with no last gasp.
        #expect(try tracker.handle(restored("m1", 850))?.kind == .closed)
    }

    @Test("revision boundaries: at the contact time revises, one millisecond later is a new outage")
    func revisionBoundaries() throws {
        var atEnd = OutageTracker()
        _ = try atEnd.handle(lost("m1", 0))
        _ = try atEnd.handle(heard("m1", 900))
        #expect(try atEnd.handle(restored("m1", 900))?.kind == .revised)

        var later = OutageTracker()
        _ = try later.handle(lost("m1", 0))
        _ = try later.handle(heard("m1", 900))
        let fresh = try #require(try later.handle(restored("m1", 900.001)))
        #expect(fresh.kind == .closed)
        #expect(fresh.record.lastGasp == false)

        // A new last gasp after the contact ends the chance to revise.
        var relost = OutageTracker()
        _ = try relost.handle(lost("m1", 0))
        _ = try relost.handle(heard("m1", 900))
        _ = try relost.handle(lost("m1", 1000))
        #expect(try relost.handle(restored("m1", 1100))?.record.start == after(1000))
    }

    @Test("invalid events are errors that name the device")
    func errors() throws {
        var tracker = OutageTracker()
        _ = try tracker.handle(lost("m1", 100))
        #expect(throws: PowerInputError.self) { _ = try tracker.handle(restored("m1", 99)) }
        // Restored exactly at the loss time is accepted (a zero-length record).
        #expect(try tracker.handle(restored("m1", 100))?.record.end == after(100))
        #expect(
            throws: PowerInputError(
                "m2: power.restored at 2026-01-01T10:01:40.000Z says power was lost later, at 2026-01-01T10:01:40.001Z"
            )
        ) {
            _ = try tracker.handle(restored("m2", 100, lostAt: 100.001))
        }
        #expect(throws: PowerInputError.self) { _ = try tracker.handle(lost(" ", 0)) }
    }

    @Test("batches, and JSON shapes of events and notifications")
    func batchAndJSON() throws {
        let json = Data(
            #"[{"kind": "power.lost", "device": "m1", "at": "2026-01-01T10:00:00Z"}, {"kind": "power.restored", "device": "m1", "at": "2026-01-01T10:12:00Z"}]"#
                .utf8)
        let events = try JSONDecoder().decode([OutageEvent].self, from: json)
        var tracker = OutageTracker()
        let notes = try tracker.handle(events)
        #expect(notes.map(\.kind) == [.opened, .closed])
        let encoded = String(decoding: try JSONEncoder().encode(notes[1]), as: UTF8.self)
        #expect(encoded.contains(#""restoredBy":"power.restored""#))
        #expect(encoded.contains(#""kind":"closed""#))
        // The tracker itself is Codable, so the hub can persist it.
        _ = try tracker.handle(lost("m2", 0))
        let copy = try JSONDecoder().decode(OutageTracker.self, from: JSONEncoder().encode(tracker))
        #expect(copy == tracker)
    }
}
