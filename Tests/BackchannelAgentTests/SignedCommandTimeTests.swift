import BackchannelProtocol
import Foundation
import Testing

@testable import BackchannelAgent

/// A signed command's time window is the device's own clock's business: the hub-derived offset
/// may delay or expire a command, never start it early or keep it alive.
@Suite struct SignedCommandTimeTests {
    let device = Timestamp(milliseconds: 1_800_000_000_000)

    @Test func aSignedNotBeforeWaitsForTheDevicesOwnClockEvenWhenHubTimeSaysItIsDue() {
        let notBefore = device.adding(seconds: 3 * 3600)
        // The hub pretends it is 3 hours later: by hub time, due now.
        let hub = device.adding(seconds: 3 * 3600)
        let signed = Agent.startDelay(
            notBefore: notBefore, signed: true, clockSkew: 300, hubNow: hub, deviceNow: device)
        #expect(signed == 3 * 3600 - 300)
        // Unsigned commands keep following hub time.
        let unsigned = Agent.startDelay(
            notBefore: notBefore, signed: false, clockSkew: 300, hubNow: hub, deviceNow: device)
        #expect(unsigned == 0)
    }

    @Test func aSignedNotBeforeStillWaitsForHubTime() {
        let notBefore = device.adding(seconds: 60)
        let hub = device.adding(seconds: -60)
        #expect(
            Agent.startDelay(notBefore: notBefore, signed: true, clockSkew: 300, hubNow: hub, deviceNow: device) == 120)
        #expect(Agent.startDelay(notBefore: nil, signed: true, clockSkew: 300, hubNow: hub, deviceNow: device) == 0)
    }

    @Test func aSignedCommandExpiredOnTheDevicesClockHasExpiredWhateverHubTimeSays() {
        let request = LogicalRequest(
            id: "c1", origin: "operator:ops", name: "billing.reset", args: [:], createdAt: device.adding(seconds: -700),
            expiresAt: device.adding(seconds: -100), attempt: 1)
        // The hub pretends it is a week earlier.
        let hub = device.adding(seconds: -7 * 86400)
        #expect(Agent.hasExpired(request, signed: true, hubNow: hub, deviceNow: device))
        #expect(!Agent.hasExpired(request, signed: false, hubNow: hub, deviceNow: device))
    }
}
