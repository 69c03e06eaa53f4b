/// A small pool of connections.
///
/// - At most `size` connections exist at once; they are made lazily, on first use.
/// - When all are busy, callers wait in FIFO order.
/// - A connection that became unhealthy, or was handed back with a transaction still
///   open, is closed and replaced on next use, so the pool survives a server restart.
/// - Before a statement is sent on a connection that sat idle, the pool checks
///   (without a round trip) whether the server closed it meanwhile; if so it moves to
///   another or a new connection, since nothing was sent. Any other connection error
///   reaches the caller as `.connection` (callers retry at their level).
/// - A failed attempt to connect is reported to the caller that asked for the
///   connection; the next waiter, if any, makes its own attempt.
public final class PostgresPool: Sendable {
    /// Where the pool connects.
    public let configuration: PostgresConfiguration
    /// The most connections the pool keeps open at once.
    public let size: Int
    private let state: LockedState<PoolState>

    /// A connection lent out, and whether it was made for this lease.
    struct Lease: Sendable {
        let connection: PostgresConnection
        let fresh: Bool
    }

    /// What a waiting caller is handed.
    private enum Grant: Sendable {
        case connection(PostgresConnection)
        case create
        case closed
        case cancelled
    }

    private struct Waiter: Sendable {
        let id: UInt64
        let continuation: CheckedContinuation<Grant, Never>
    }

    private struct PoolState: Sendable {
        var idle: [PostgresConnection] = []
        /// Connections open, lent out or being made.
        var total = 0
        var waiters: [Waiter] = []
        var closed = false
        var nextWaiterID: UInt64 = 0
        var closeWaiters: [CheckedContinuation<Void, Never>] = []
    }

    private enum AcquireFailure: Error {
        case postgres(PostgresError)
        case cancelled
    }

    /// Makes a pool; nothing connects until first use. `size` below 1 counts as 1.
    public init(configuration: PostgresConfiguration, size: Int) {
        self.configuration = configuration
        self.size = max(1, size)
        self.state = LockedState(PoolState())
    }

    /// Runs one statement on some connection of the pool (see
    /// `PostgresConnection.query`). Waits for a free connection if all are busy; the
    /// wait ends early only if the pool is closed (task cancellation does not end it).
    public func query(_ sql: String, _ binds: [PostgresBind] = []) async throws(PostgresError) -> PostgresResult {
        var attempts = 0
        while true {
            attempts += 1
            let lease: Lease
            switch await acquire(cancellable: false) {
            case .success(let acquired): lease = acquired
            case .failure(.postgres(let error)): throw error
            case .failure(.cancelled): throw .closed  // not reached: the wait is not cancellable
            }
            let outcome = await lease.connection.attempt { core throws(PostgresError) in
                try core.query(sql, binds)
            }
            release(lease)
            switch outcome {
            case .done(let result):
                return result
            case .failed(let error):
                throw error
            case .stale(let error):
                if lease.fresh || attempts > size + 1 { throw error }
            }
        }
    }

    /// Lends a connection to `body` and takes it back afterwards, also when `body`
    /// throws. Do not keep the connection beyond `body`. A transaction left open by
    /// `body` makes the pool close that connection rather than reuse it.
    ///
    /// - Throws: what `body` throws; `PostgresError` when no connection could be had;
    ///   `CancellationError` when the task is cancelled while waiting for one.
    public func withConnection<T: Sendable>(_ body: @Sendable (PostgresConnection) async throws -> T) async throws -> T {
        let lease = try await acquireLive()
        defer { release(lease) }
        return try await body(lease.connection)
    }

    /// Runs `body` between `BEGIN` and `COMMIT` on one connection; on a throw it rolls
    /// back and rethrows the error. If a statement failed inside `body` but `body`
    /// swallowed the error, the server rolls back at `COMMIT` and this throws `.query`
    /// with SQLSTATE 25P02 rather than pretending to have committed.
    ///
    /// - Throws: what `body` throws; `PostgresError` from `BEGIN`/`COMMIT` or when no
    ///   connection could be had; `CancellationError` when the task is cancelled while
    ///   waiting for a connection.
    public func transaction<T: Sendable>(_ body: @Sendable (PostgresConnection) async throws -> T) async throws -> T {
        var attempts = 0
        while true {
            attempts += 1
            let lease: Lease
            switch await acquire(cancellable: true) {
            case .success(let acquired): lease = acquired
            case .failure(.postgres(let error)): throw error
            case .failure(.cancelled): throw CancellationError()
            }
            let began = await lease.connection.attempt { core throws(PostgresError) in
                try core.execute(script: "BEGIN")
            }
            switch began {
            case .done:
                break
            case .failed(let error):
                release(lease)
                throw error
            case .stale(let error):
                release(lease)
                if lease.fresh || attempts > size + 1 { throw error }
                continue
            }
            defer { release(lease) }
            let connection = lease.connection
            do {
                let value = try await body(connection)
                try await connection.commit()
                return value
            } catch {
                if connection.isInTransaction && connection.isHealthy {
                    try? await connection.execute(script: "ROLLBACK")
                }
                throw error
            }
        }
    }

    /// Closes the pool: callers waiting for a connection get `.closed`, idle
    /// connections are closed now, lent ones when they come back; returns once every
    /// connection is closed. Later calls get `.closed`.
    public func close() async {
        let (idle, waiters) = state.withLock { state in
            state.closed = true
            let idle = state.idle
            state.idle = []
            state.total -= idle.count
            let waiters = state.waiters
            state.waiters = []
            return (idle, waiters)
        }
        for waiter in waiters { waiter.continuation.resume(returning: .closed) }
        for connection in idle { await connection.closeAndWait() }
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let done = state.withLock { state -> Bool in
                if state.total == 0 { return true }
                state.closeWaiters.append(continuation)
                return false
            }
            if done { continuation.resume() }
        }
    }

    // MARK: Lending

    /// A connection that was alive a moment ago (idle ones are checked without a round
    /// trip; dead ones are replaced).
    private func acquireLive() async throws -> Lease {
        var attempts = 0
        while true {
            attempts += 1
            let lease: Lease
            switch await acquire(cancellable: true) {
            case .success(let acquired): lease = acquired
            case .failure(.postgres(let error)): throw error
            case .failure(.cancelled): throw CancellationError()
            }
            if lease.fresh { return lease }
            switch await lease.connection.attempt({ _ throws(PostgresError) in }) {
            case .done:
                return lease
            case .failed(let error):
                release(lease)
                throw error
            case .stale(let error):
                release(lease)
                if attempts > size + 1 { throw error }
            }
        }
    }

    private func acquire(cancellable: Bool) async -> Result<Lease, AcquireFailure> {
        while true {
            let grant = await nextGrant(cancellable: cancellable)
            switch grant {
            case .connection(let connection):
                if connection.isHealthy { return .success(Lease(connection: connection, fresh: false)) }
                discard(connection)
            case .create:
                do throws(PostgresError) {
                    let connection = try await PostgresConnection.connect(configuration)
                    let lease = Lease(connection: connection, fresh: true)
                    if state.withLock({ $0.closed }) {
                        release(lease)
                        return .failure(.postgres(.closed))
                    }
                    return .success(lease)
                } catch {
                    slotFreed()
                    return .failure(.postgres(error))
                }
            case .closed:
                return .failure(.postgres(.closed))
            case .cancelled:
                return .failure(.cancelled)
            }
        }
    }

    private func nextGrant(cancellable: Bool) async -> Grant {
        let id = state.withLock { state -> UInt64 in
            state.nextWaiterID += 1
            return state.nextWaiterID
        }
        guard cancellable else {
            return await withCheckedContinuation { continuation in
                grantOrEnqueue(id: id, continuation: continuation, cancellable: false)
            }
        }
        return await withTaskCancellationHandler {
            await withCheckedContinuation { continuation in
                grantOrEnqueue(id: id, continuation: continuation, cancellable: true)
            }
        } onCancel: {
            let waiter = state.withLock { state -> Waiter? in
                guard let index = state.waiters.firstIndex(where: { $0.id == id }) else { return nil }
                return state.waiters.remove(at: index)
            }
            waiter?.continuation.resume(returning: .cancelled)
        }
    }

    private func grantOrEnqueue(id: UInt64, continuation: CheckedContinuation<Grant, Never>, cancellable: Bool) {
        let grant = state.withLock { state -> Grant? in
            if state.closed { return .closed }
            // Checked under the lock: a cancellation handler that runs after this point
            // finds the waiter in the queue.
            if cancellable && Task.isCancelled { return .cancelled }
            if let connection = state.idle.popLast() { return .connection(connection) }
            if state.total < size {
                state.total += 1
                return .create
            }
            state.waiters.append(Waiter(id: id, continuation: continuation))
            return nil
        }
        if let grant { continuation.resume(returning: grant) }
    }

    /// Takes a connection back: to the first waiter, to the idle list, or closed.
    func release(_ lease: Lease) {
        let connection = lease.connection
        let reusable = connection.isHealthy && !connection.isInTransaction
        if !reusable {
            discard(connection)
            return
        }
        let action = state.withLock { state -> (Waiter?, close: Bool) in
            if state.closed { return (nil, true) }
            if !state.waiters.isEmpty { return (state.waiters.removeFirst(), false) }
            state.idle.append(connection)
            return (nil, false)
        }
        if action.close {
            discard(connection)
        } else if let waiter = action.0 {
            waiter.continuation.resume(returning: .connection(connection))
        }
    }

    /// Closes a connection that is out of the idle list and frees its slot.
    private func discard(_ connection: PostgresConnection) {
        connection.close()
        slotFreed()
    }

    /// One connection fewer: a waiter may make a new one; a closing pool may be done.
    private func slotFreed() {
        let (waiter, closeWaiters) = state.withLock { state -> (Waiter?, [CheckedContinuation<Void, Never>]) in
            state.total -= 1
            if !state.closed, !state.waiters.isEmpty {
                state.total += 1
                return (state.waiters.removeFirst(), [])
            }
            if state.closed && state.total == 0 {
                defer { state.closeWaiters = [] }
                return (nil, state.closeWaiters)
            }
            return (nil, [])
        }
        waiter?.continuation.resume(returning: .create)
        for continuation in closeWaiters { continuation.resume() }
    }
}
