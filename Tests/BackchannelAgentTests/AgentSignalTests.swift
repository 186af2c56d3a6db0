import Foundation
import Testing

@testable import BackchannelAgent

@Suite struct AgentSignalTests {
    /// The timer of a wait that ended by signal must not cut the next wait short: otherwise a
    /// device polls faster than the hub's `nextPollAfter` asks.
    @Test func aSignalledWaitsTimerDoesNotEndTheNextWait() async {
        let signal = AgentSignal()
        var early = 0
        for _ in 0..<30 {
            signal.signal()
            #expect(await signal.wait(seconds: 3600), "a pending signal ends the wait at once")
            let waiter = Task { await signal.wait(seconds: 3600) }
            signal.signal()
            _ = await waiter.value
            let start = ContinuousClock.now
            let signalled = await signal.wait(seconds: 0.2)
            if !signalled && ContinuousClock.now - start < .milliseconds(150) { early += 1 }
        }
        #expect(early == 0, "\(early) waits ended early without a signal")
    }

    @Test func aWaitTimesOutWithoutASignal() async {
        let signal = AgentSignal()
        let start = ContinuousClock.now
        #expect(await signal.wait(seconds: 0.05) == false)
        #expect(ContinuousClock.now - start >= .milliseconds(45))
    }
}
