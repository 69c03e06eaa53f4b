import Foundation

/// One connection to PostgreSQL, with a thread of its own.
///
/// Every libpq call runs on that thread; the async methods queue work there and suspend
/// until it is done, so Swift's cooperative thread pool is never blocked. Calls from
/// several tasks at once are allowed and run one after another, in arrival order.
///
/// Statements are prepared on first use per connection and cached by SQL text (named
/// `s1`, `s2`, …). If the server has forgotten a statement (after `DISCARD ALL` or
/// `DEALLOCATE`), it is prepared again and run once more — outside a transaction block
/// only, since inside one the failure has already aborted the transaction.
///
/// Cancelling the calling task does not interrupt a statement that is already running.
public final class PostgresConnection: Sendable {
    /// The configuration this connection was made with.
    public let configuration: PostgresConfiguration
    private let thread: ConnectionThread
    private let core: ConnectionCore
    private let state: LockedState<ConnectionState>

    private static let counter = LockedState(0)

    private init(
        configuration: PostgresConfiguration, thread: ConnectionThread, core: ConnectionCore,
        state: LockedState<ConnectionState>
    ) {
        self.configuration = configuration
        self.thread = thread
        self.core = core
        self.state = state
    }

    deinit {
        close()
    }

    /// Opens a connection.
    ///
    /// - Throws: `.connection` naming `host:port` and libpq's reason when the server
    ///   cannot be reached or refuses the login (never containing the password).
    public static func connect(_ configuration: PostgresConfiguration) async throws(PostgresError) -> PostgresConnection {
        let number = counter.withLock { value -> Int in
            value += 1
            return value
        }
        let state = LockedState(ConnectionState())
        let core = ConnectionCore(configuration: configuration, state: state)
        let thread = ConnectionThread(name: "postgres-\(number)")
        let result: Result<Void, PostgresError> = await withCheckedContinuation { continuation in
            thread.submit {
                continuation.resume(returning: Result { () throws(PostgresError) in try core.connect() })
            }
        }
        switch result {
        case .success:
            return PostgresConnection(configuration: configuration, thread: thread, core: core, state: state)
        case .failure(let error):
            thread.stop(after: { core.finish() })
            throw error
        }
    }

    /// Runs one statement with `$1`, `$2`, … bound to `binds`, through the
    /// prepared-statement cache.
    ///
    /// - Throws: `.query` for a server error (with SQLSTATE), `.connection` when the
    ///   connection is lost (it is then unhealthy for good), `.closed` after `close()`.
    public func query(_ sql: String, _ binds: [PostgresBind] = []) async throws(PostgresError) -> PostgresResult {
        try await run { core throws(PostgresError) in
            try core.preflight()
            return try core.query(sql, binds)
        }
    }

    /// Runs SQL with no parameters and possibly several statements (`PQexec`), e.g.
    /// migrations. Unless the text itself contains `BEGIN`/`COMMIT`, the server runs
    /// several statements as one implicit transaction. `COPY` is not supported.
    public func execute(script sql: String) async throws(PostgresError) {
        try await run { core throws(PostgresError) in
            try core.preflight()
            try core.execute(script: sql)
        }
    }

    /// False once the connection is known broken (lost, or libpq's state is unknown) or
    /// after `close()`. A connection whose server went away while it was idle is only
    /// known broken at its next use.
    public var isHealthy: Bool {
        state.withLock { $0.healthy && !$0.closed }
    }

    /// True while a transaction block is open on this connection (after `BEGIN`, until
    /// `COMMIT` or `ROLLBACK`), including one that failed and awaits `ROLLBACK`.
    public var isInTransaction: Bool {
        state.withLock { $0.inTransaction }
    }

    /// Closes the connection. Work queued before runs first; later calls throw `.closed`.
    /// Calling it again does nothing.
    public func close() {
        close(then: {})
    }

    /// Closes the connection and returns once the socket is closed.
    func closeAndWait() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            close(then: { continuation.resume() })
        }
    }

    private func close(then completion: @escaping @Sendable () -> Void) {
        let first = state.withLock { state -> Bool in
            defer { state.closed = true }
            return !state.closed
        }
        let core = self.core
        if !first
            || !thread.stop(after: {
                core.finish(); completion()
            })
        {
            completion()
        }
    }

    // MARK: Internal

    /// `COMMIT`, refusing the silent rollback PostgreSQL does when the transaction had
    /// already failed (the server then answers `ROLLBACK` instead of an error).
    func commit() async throws(PostgresError) {
        let tag = try await run { core throws(PostgresError) in
            try core.preflight()
            return try core.execute(script: "COMMIT")
        }
        if tag == "ROLLBACK" {
            throw .query(
                message: "the transaction was rolled back instead of committed because a statement in it failed",
                sqlState: "25P02", detail: nil)
        }
    }

    /// Runs SQL without updating the statement cache, so tests can make the server
    /// forget prepared statements behind the cache's back.
    func executeBehindCache(_ sql: String) async throws(PostgresError) {
        try await run { core throws(PostgresError) in try core.executeIgnoringCache(sql) }
    }

    /// The result of running work after a preflight check.
    enum Attempt<T: Sendable>: Sendable {
        /// The work ran and returned this.
        case done(T)
        /// The work ran (or tried to) and failed.
        case failed(PostgresError)
        /// The connection was found dead before anything was sent: safe to retry on another.
        case stale(PostgresError)
    }

    /// Runs `work` after checking, without sending anything, that the connection is alive.
    func attempt<T: Sendable>(
        _ work: @escaping @Sendable (ConnectionCore) throws(PostgresError) -> T
    ) async -> Attempt<T> {
        if state.withLock({ $0.closed }) { return .failed(.closed) }
        let core = self.core
        return await withCheckedContinuation { continuation in
            let accepted = thread.submit {
                do throws(PostgresError) {
                    try core.preflight()
                } catch {
                    continuation.resume(returning: .stale(error))
                    return
                }
                do throws(PostgresError) {
                    continuation.resume(returning: .done(try work(core)))
                } catch {
                    continuation.resume(returning: .failed(error))
                }
            }
            if !accepted { continuation.resume(returning: .failed(.closed)) }
        }
    }

    /// Runs `work` on the connection's thread and waits for it.
    func run<T: Sendable>(
        _ work: @escaping @Sendable (ConnectionCore) throws(PostgresError) -> T
    ) async throws(PostgresError) -> T {
        if state.withLock({ $0.closed }) { throw .closed }
        let core = self.core
        let result: Result<T, PostgresError> = await withCheckedContinuation { continuation in
            let accepted = thread.submit {
                continuation.resume(returning: Result { () throws(PostgresError) -> T in try work(core) })
            }
            if !accepted { continuation.resume(returning: .failure(.closed)) }
        }
        return try result.get()
    }
}
