import Synchronization

/// A count of things in flight with a limit: `acquire` waits while the limit is reached, `release`
/// hands the place to the next waiter.
final class InFlightLimit: Sendable {
    private struct State {
        var count = 0
        var waiters: [CheckedContinuation<Void, Never>] = []
    }
    private let state = Mutex(State())
    let limit: Int

    init(limit: Int) { self.limit = max(limit, 1) }

    var count: Int { state.withLock { $0.count } }

    /// Takes a place, waiting for one while `limit` are taken.
    func acquire() async {
        await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
            let now = state.withLock { s -> Bool in
                if s.count < limit { s.count += 1; return true }
                s.waiters.append(c)
                return false
            }
            if now { c.resume() }
        }
    }

    /// Gives a place back; a waiter takes it over at once.
    func release() {
        let next = state.withLock { s -> CheckedContinuation<Void, Never>? in
            if !s.waiters.isEmpty { return s.waiters.removeFirst() }
            s.count -= 1
            return nil
        }
        next?.resume()
    }
}
