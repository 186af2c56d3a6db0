import BackchannelProtocol
import Testing

/// Every presence transition of the pure machine.
@Suite struct PresenceMachineTests {
    static let t0 = Timestamp(milliseconds: 1_800_000_000_000)
    static func at(_ seconds: Double) -> Timestamp { t0.adding(seconds: seconds) }

    @Test func firstContactMakesAnUnknownDeviceOnline() {
        var m = PresenceMachine(device: "d")
        #expect(m.inferred == .unknown)
        #expect(!m.isAvailable)
        let t = m.contact(at: Self.at(0), declaring: nil)
        #expect(t?.from == .unknown)
        #expect(t?.to == .online)
        #expect(t?.reason == "contact")
        #expect(m.isAvailable)
        #expect(m.since == Self.at(0))
        // Another contact changes nothing.
        #expect(m.contact(at: Self.at(1), declaring: nil) == nil)
        #expect(m.lastContactAt == Self.at(1))
    }

    @Test func aMissedDeadlinePlusGraceIsPresenceError() {
        var m = PresenceMachine(device: "d")
        _ = m.contact(at: Self.at(0), declaring: nil)
        m.expect(by: Self.at(30), grace: 10)
        #expect(m.contactBy == Self.at(30))
        #expect(m.errorAt == Self.at(40))
        #expect(m.deadlinePassed(at: Self.at(39.999)) == nil, "not before the grace ends")
        let t = m.deadlinePassed(at: Self.at(40))
        #expect(t?.to == .presenceError)
        #expect(t?.reason == "deadline-missed")
        #expect(!m.isAvailable)
        #expect(m.errorAt == nil)
        // The next contact brings it back.
        #expect(m.contact(at: Self.at(50), declaring: nil)?.to == .online)
    }

    @Test func contactBeforeTheDeadlineKeepsItOnline() {
        var m = PresenceMachine(device: "d")
        _ = m.contact(at: Self.at(0), declaring: nil)
        m.expect(by: Self.at(30), grace: 10)
        _ = m.contact(at: Self.at(29), declaring: nil)
        m.expect(by: Self.at(59), grace: 10)
        #expect(m.deadlinePassed(at: Self.at(40)) == nil, "the old deadline no longer applies")
        #expect(m.inferred == .online)
    }

    @Test func aGoodbyeIsUnavailableWithoutDeadline() {
        var m = PresenceMachine(device: "d")
        _ = m.contact(at: Self.at(0), declaring: nil)
        m.expect(by: Self.at(30), grace: 10)
        let t = m.contact(at: Self.at(5), declaring: PresenceReport(state: .unavailable, note: "maintenance"))
        #expect(t?.to == .unavailable)
        #expect(t?.reason == "goodbye")
        #expect(t?.note == "maintenance")
        m.expect(by: Self.at(35), grace: 10)
        #expect(m.errorAt == nil)
        #expect(m.deadlinePassed(at: Self.at(100)) == nil, "no presence-error after a goodbye")
        // A later poll without a declaration keeps the goodbye's declaration but is contact again.
        #expect(m.contact(at: Self.at(200), declaring: nil)?.to == .online)
        #expect(m.contact(at: Self.at(201), declaring: PresenceReport(state: .available))?.reason == "declared")
        #expect(m.isAvailable)
    }

    @Test func declarationsAreRecordedAndRestrictedIsNotAvailable() {
        var m = PresenceMachine(device: "d")
        _ = m.contact(at: Self.at(0), declaring: PresenceReport(state: .available))
        let t = m.contact(
            at: Self.at(1),
            declaring: PresenceReport(state: .restricted, note: "critical process online, offline at 13:03"))
        #expect(t?.from == .online)
        #expect(t?.to == .online)
        #expect(t?.declared == .restricted)
        #expect(t?.reason == "declared")
        #expect(!m.isAvailable, "online but restricted")
        #expect(
            m.contact(
                at: Self.at(2),
                declaring: PresenceReport(state: .restricted, note: "critical process online, offline at 13:03")) == nil
        )
        _ = m.contact(at: Self.at(3), declaring: PresenceReport(state: .availableOff))
        #expect(m.isAvailable)
    }

    @Test func anOpenConnectionSuspendsTheDeadline() {
        var m = PresenceMachine(device: "d")
        _ = m.contact(at: Self.at(0), declaring: nil)
        m.expect(by: Self.at(30), grace: 10)
        _ = m.connected(at: Self.at(1))
        #expect(m.errorAt == nil)
        #expect(m.deadlinePassed(at: Self.at(100)) == nil)
        m.disconnected(fallback: Self.at(120), grace: 10)
        m.expect(by: Self.at(130), grace: 10)
        #expect(m.deadlinePassed(at: Self.at(140))?.to == .presenceError)
        // Connecting again (a WebSocket) is online at once.
        #expect(m.connected(at: Self.at(150))?.reason == "connected")
        #expect(m.inferred == .online)
    }

    @Test func aConnectionThatEndsWithoutAResponseStillLeavesADeadline() {
        var m = PresenceMachine(device: "d")
        _ = m.contact(at: Self.at(0), declaring: nil)
        _ = m.connected(at: Self.at(1))
        m.disconnected(fallback: Self.at(31), grace: 10)
        #expect(m.errorAt == Self.at(41), "a held poll that failed must not leave the device online forever")
        #expect(m.deadlinePassed(at: Self.at(41))?.to == .presenceError)
    }

    @Test func aConnectionDoesNotUndoAGoodbye() {
        var m = PresenceMachine(device: "d")
        _ = m.contact(at: Self.at(0), declaring: PresenceReport(state: .unavailable))
        #expect(m.connected(at: Self.at(1)) == nil)
        #expect(m.inferred == .unavailable)
    }
}
