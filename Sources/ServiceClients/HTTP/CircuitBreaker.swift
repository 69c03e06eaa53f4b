import Foundation
import Synchronization

/// When a circuit breaker opens and how long it stays open.
public struct BreakerPolicy: Sendable, Equatable {
    /// Failures within ``window`` that open the circuit.
    public var failureThreshold: Int
    /// Seconds a failure is remembered.
    public var window: Double
    /// Seconds the circuit stays open the first time; each failed trial doubles it.
    public var openDuration: Double
    /// Longest time the circuit stays open between trials.
    public var maxOpenDuration: Double

    /// A policy; the defaults open after 5 failures within a minute, for 5 s, then 10 s, 20 s, … up to 5 min.
    public init(failureThreshold: Int = 5, window: Double = 60, openDuration: Double = 5, maxOpenDuration: Double = 300) {
        self.failureThreshold = max(failureThreshold, 1)
        self.window = window
        self.openDuration = openDuration
        self.maxOpenDuration = max(maxOpenDuration, openDuration)
    }
}

/// The three states of a circuit breaker.
public enum BreakerState: String, Sendable, Equatable {
    /// Calls go through; failures are counted.
    case closed
    /// Calls are refused until the open time has passed.
    case open
    /// One trial call is in flight (or may start); its outcome closes or re-opens the circuit.
    case halfOpen = "half-open"
}

/// A circuit breaker for one service: closed → open after ``BreakerPolicy/failureThreshold``
/// failures within ``BreakerPolicy/window`` → half-open (one trial call) once the open time has
/// passed → closed when the trial succeeds, open again (for twice as long) when it fails.
///
/// A success while closed forgets the failures counted so far, so the threshold is of failures
/// without a success in between. Only failures that say the service is unwell count (see
/// ``ServiceError/countsAgainstService``): a 4xx answer is a working service.
public final class CircuitBreaker: Sendable {
    /// The service's name (metric label).
    public let name: String
    /// The policy.
    public let policy: BreakerPolicy
    private let clock: @Sendable () -> Double
    private let onChange: (@Sendable (String, BreakerState) -> Void)?

    private struct State {
        var state: BreakerState = .closed
        var failures: [Double] = []
        var openUntil: Double = 0
        var openDuration: Double
        var trialInFlight: UInt64?
        var nextPermit: UInt64 = 1
    }
    private let state: Mutex<State>

    /// Permission to make one call, returned by ``acquire()``; hand it back with ``record(_:failed:)``
    /// or ``release(_:)``.
    public struct Permit: Sendable, Equatable {
        /// Whether this call is the half-open trial.
        public let isTrial: Bool
        let id: UInt64
    }

    /// A breaker. `clock` gives monotonic seconds (tests pass their own); `onChange` is told of
    /// every state change, outside the breaker's lock.
    public init(
        name: String, policy: BreakerPolicy = BreakerPolicy(), clock: (@Sendable () -> Double)? = nil,
        onChange: (@Sendable (String, BreakerState) -> Void)? = nil
    ) {
        self.name = name
        self.policy = policy
        self.clock = clock ?? CircuitBreaker.monotonicSeconds
        self.onChange = onChange
        self.state = Mutex(State(openDuration: policy.openDuration))
    }

    /// Seconds on a monotonic clock.
    @Sendable public static func monotonicSeconds() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
    }

    /// The state now. An open circuit whose time has passed reads `halfOpen`: the next call is the trial.
    public var current: BreakerState {
        let now = clock()
        return state.withLock { s in
            if s.state == .open && now >= s.openUntil { return .halfOpen }
            return s.state
        }
    }

    /// Whether calls are being held back now (open, or half-open with the trial in flight).
    public var isHoldingBack: Bool {
        let now = clock()
        return state.withLock { s in
            switch s.state {
            case .closed: return false
            case .open: return now < s.openUntil
            case .halfOpen: return s.trialInFlight != nil
            }
        }
    }

    /// Seconds until a call would be let through; 0 when one would be now.
    public var retryAfter: Double {
        let now = clock()
        return state.withLock { s in Self.wait(s, now: now) }
    }

    private static func wait(_ s: State, now: Double) -> Double {
        switch s.state {
        case .closed: return 0
        case .open: return max(s.openUntil - now, 0)
        case .halfOpen: return s.trialInFlight == nil ? 0 : 1
        }
    }

    /// Asks to make a call. Throws ``ServiceError/circuitOpen(service:retryAfter:)`` while the
    /// circuit is open, or half-open with its trial call already in flight.
    public func acquire() throws(ServiceError) -> Permit {
        let now = clock()
        var changed: BreakerState?
        let result: Result<Permit, ServiceError> = state.withLock { s in
            if s.state == .open && now >= s.openUntil {
                s.state = .halfOpen
                s.trialInFlight = nil
                changed = .halfOpen
            }
            switch s.state {
            case .closed:
                defer { s.nextPermit += 1 }
                return .success(Permit(isTrial: false, id: s.nextPermit))
            case .open:
                return .failure(.circuitOpen(service: name, retryAfter: s.openUntil - now))
            case .halfOpen:
                guard s.trialInFlight == nil else { return .failure(.circuitOpen(service: name, retryAfter: 1)) }
                let id = s.nextPermit
                s.nextPermit += 1
                s.trialInFlight = id
                return .success(Permit(isTrial: true, id: id))
            }
        }
        if let changed { onChange?(name, changed) }
        return try result.get()
    }

    /// Reports how a permitted call went: `failed` when it failed in a way that counts against the service.
    public func record(_ permit: Permit, failed: Bool) {
        let now = clock()
        let changed: BreakerState? = state.withLock { s in
            if permit.isTrial {
                guard s.state == .halfOpen, s.trialInFlight == permit.id else { return nil }
                s.trialInFlight = nil
                if failed {
                    s.openDuration = min(s.openDuration * 2, policy.maxOpenDuration)
                    s.state = .open
                    s.openUntil = now + s.openDuration
                    return .open
                }
                s.state = .closed
                s.failures.removeAll()
                s.openDuration = policy.openDuration
                return .closed
            }
            guard s.state == .closed else { return nil }
            guard failed else {
                s.failures.removeAll()
                return nil
            }
            s.failures.append(now)
            s.failures.removeAll { now - $0 > policy.window }
            guard s.failures.count >= policy.failureThreshold else { return nil }
            s.state = .open
            s.openUntil = now + s.openDuration
            s.failures.removeAll()
            return .open
        }
        if let changed { onChange?(name, changed) }
    }

    /// Hands a permit back without a verdict (the call was cancelled): a trial slot is freed for the next caller.
    public func release(_ permit: Permit) {
        state.withLock { s in
            if permit.isTrial, s.trialInFlight == permit.id { s.trialInFlight = nil }
        }
    }
}

/// The circuit breakers of a process, one per service name, made on first use.
public final class BreakerRegistry: Sendable {
    private let breakers = Mutex<[String: CircuitBreaker]>([:])
    private let clock: (@Sendable () -> Double)?
    private let onChange: Mutex<(@Sendable (String, BreakerState) -> Void)?>

    /// A registry; `clock` is for tests.
    public init(clock: (@Sendable () -> Double)? = nil) {
        self.clock = clock
        self.onChange = Mutex(nil)
    }

    /// Sets the function told of every state change of every breaker (replacing any earlier one).
    public func observeChanges(_ handler: @escaping @Sendable (String, BreakerState) -> Void) {
        onChange.withLock { $0 = handler }
    }

    /// The breaker of `service`, made with `policy` the first time it is asked for.
    public func breaker(_ service: String, policy: BreakerPolicy = BreakerPolicy()) -> CircuitBreaker {
        breakers.withLock { b in
            if let existing = b[service] { return existing }
            let made = CircuitBreaker(
                name: service, policy: policy, clock: clock,
                onChange: { [weak self] name, state in
                    self?.onChange.withLock { $0 }?(name, state)
                })
            b[service] = made
            return made
        }
    }

    /// Every breaker made so far and its state now.
    public func snapshot() -> [String: BreakerState] {
        let all = breakers.withLock { Array($0.values) }
        return Dictionary(uniqueKeysWithValues: all.map { ($0.name, $0.current) })
    }

    /// Every breaker made so far and whether it holds calls back now (the `medianest_circuit_open` gauge).
    public func holdingBack() -> [String: Bool] {
        let all = breakers.withLock { Array($0.values) }
        return Dictionary(uniqueKeysWithValues: all.map { ($0.name, $0.isHoldingBack) })
    }
}
