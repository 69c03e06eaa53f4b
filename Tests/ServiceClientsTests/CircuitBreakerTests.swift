import Synchronization
import Testing

@testable import ServiceClients

/// A clock the test moves by hand.
final class ManualClock: Sendable {
    private let now = Mutex<Double>(1000)
    func advance(_ seconds: Double) { now.withLock { $0 += seconds } }
    var read: @Sendable () -> Double { { [self] in now.withLock { $0 } } }
}

/// Records the breaker's state changes.
final class Transitions: Sendable {
    private let seen = Mutex<[BreakerState]>([])
    var all: [BreakerState] { seen.withLock { $0 } }
    var record: @Sendable (String, BreakerState) -> Void { { [self] _, state in seen.withLock { $0.append(state) } } }
}

@Suite("Circuit breaker")
struct CircuitBreakerTests {
    let clock = ManualClock()
    let transitions = Transitions()
    let policy = BreakerPolicy(failureThreshold: 3, window: 10, openDuration: 5, maxOpenDuration: 20)

    func breaker() -> CircuitBreaker {
        CircuitBreaker(name: "plex", policy: policy, clock: clock.read, onChange: transitions.record)
    }

    func fail(_ b: CircuitBreaker, times: Int) throws {
        for _ in 0..<times { b.record(try b.acquire(), failed: true) }
    }

    @Test func opensAfterThresholdFailuresWithinTheWindow() throws {
        let b = breaker()
        try fail(b, times: 2)
        #expect(b.current == .closed)
        #expect(!b.isHoldingBack)
        try fail(b, times: 1)
        #expect(b.current == .open)
        #expect(b.isHoldingBack)
        #expect(transitions.all == [.open])
        #expect(throws: ServiceError.circuitOpen(service: "plex", retryAfter: 5)) { try b.acquire() }
        #expect(b.retryAfter == 5)
    }

    @Test func aSuccessForgetsEarlierFailures() throws {
        let b = breaker()
        try fail(b, times: 2)
        b.record(try b.acquire(), failed: false)
        try fail(b, times: 2)
        #expect(b.current == .closed)
        try fail(b, times: 1)
        #expect(b.current == .open)
    }

    @Test func failuresOlderThanTheWindowDoNotCount() throws {
        let b = breaker()
        try fail(b, times: 2)
        clock.advance(11)
        try fail(b, times: 2)
        #expect(b.current == .closed)
        try fail(b, times: 1)
        #expect(b.current == .open)
    }

    @Test func answersThatDoNotCountLeaveItClosed() throws {
        let b = breaker()
        for _ in 0..<10 { b.record(try b.acquire(), failed: false) }
        #expect(b.current == .closed)
    }

    @Test func halfOpenLetsOneTrialThroughAndClosesOnSuccess() throws {
        let b = breaker()
        try fail(b, times: 3)
        clock.advance(4.9)
        #expect(throws: ServiceError.self) { try b.acquire() }
        clock.advance(0.1)
        #expect(b.current == .halfOpen)
        #expect(!b.isHoldingBack, "once the open time has passed the next call may go")
        let trial = try b.acquire()
        #expect(trial.isTrial)
        #expect(b.isHoldingBack, "while the trial is in flight others wait")
        #expect(throws: ServiceError.circuitOpen(service: "plex", retryAfter: 1)) { try b.acquire() }
        b.record(trial, failed: false)
        #expect(b.current == .closed)
        #expect(!(try b.acquire()).isTrial)
        #expect(transitions.all == [.open, .halfOpen, .closed])
    }

    @Test func aFailedTrialReopensForTwiceAsLongUpToTheMaximum() throws {
        let b = breaker()
        try fail(b, times: 3)
        var expected = 5.0
        for _ in 0..<4 {
            clock.advance(expected)
            let trial = try b.acquire()
            b.record(trial, failed: true)
            expected = min(expected * 2, 20)
            #expect(b.current == .open)
            #expect(b.retryAfter == expected)
        }
        clock.advance(20)
        b.record(try b.acquire(), failed: false)
        #expect(b.current == .closed)
        // After closing, the next opening starts from the initial duration again.
        try fail(b, times: 3)
        #expect(b.retryAfter == 5)
    }

    @Test func aReleasedTrialFreesTheSlot() throws {
        let b = breaker()
        try fail(b, times: 3)
        clock.advance(5)
        let trial = try b.acquire()
        b.release(trial)
        let next = try b.acquire()
        #expect(next.isTrial)
        b.record(next, failed: false)
        #expect(b.current == .closed)
    }

    @Test func lateAnswersOfCallsStartedBeforeOpeningAreIgnored() throws {
        let b = breaker()
        let early = try b.acquire()
        try fail(b, times: 3)
        b.record(early, failed: false)
        #expect(b.current == .open, "a success of a call made before the circuit opened does not close it")
    }

    @Test func registryKeepsOneBreakerPerServiceAndReportsThem() throws {
        let registry = BreakerRegistry(clock: clock.read)
        let changes = Transitions()
        registry.observeChanges(changes.record)
        let plex = registry.breaker("plex", policy: policy)
        #expect(registry.breaker("plex") === plex)
        _ = registry.breaker("overseerr")
        try fail(plex, times: 3)
        #expect(registry.snapshot() == ["plex": .open, "overseerr": .closed])
        #expect(registry.holdingBack() == ["plex": true, "overseerr": false])
        #expect(changes.all == [.open])
    }
}
