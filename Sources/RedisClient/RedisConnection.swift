// RedisClient: a small Redis client over hiredis for medianest-worker (layer 2; it knows
// nothing of jobs).
//
// Overview
// --------
// - `RedisConfiguration` says where the server is (`init(url:)` parses redis:// and unix://
//   URLs) and never shows the password (`redactedURL`).
// - `RedisConnection` is one connection with a thread of its own. hiredis is only ever called
//   on that thread, never on the Swift cooperative pool. Async callers queue work under a lock
//   and wait on a continuation; the thread takes everything queued, writes it in one batch
//   (`redisAppendCommandArgv` for each command, binary-safe) and reads the replies in order
//   (`redisGetReply`), converting each one into a `RedisValue` and freeing it. Concurrent
//   callers are thus pipelined automatically; `statistics` counts commands and round trips.
// - When the connection breaks, the commands in flight fail with `RedisError.connection`, and
//   the next command reconnects. Failed connect attempts are spaced by exponential backoff
//   (50 ms doubling to 2 s); a command arriving before the next attempt is due fails at once
//   with "... retrying in N ms", so callers never hang on a dead server.
// - `RedisValue` is a reply (RESP2); `RedisCommand` is a binary-safe argument list;
//   `RedisError` is the one error type, each case a sentence a user can act on.
//
// Files: RedisConnection.swift (public face), ConnectionCore.swift (state shared with the
// thread), HiredisSession.swift (everything that calls hiredis), RedisConfiguration.swift,
// RedisCommand.swift, RedisValue.swift, RedisError.swift.

/// A connection to one Redis server with a thread of its own.
///
/// Commands submitted while earlier ones are in flight are written together and their replies
/// read together (automatic pipelining), so many concurrent tasks share one connection
/// efficiently. Each caller gets its own reply; one ``pipeline(_:)`` call's commands stay
/// contiguous and in order.
///
/// Blocking commands (`XREADGROUP ... BLOCK`, `BLPOP`) must be given a connection of their own,
/// because everything queued behind them waits; and that connection's
/// ``RedisConfiguration/socketTimeout`` must be longer than the block time (a connection used
/// for `BLOCK n` needs `socketTimeout > n / 1000` seconds), or the read times out and the
/// connection is dropped.
///
/// Connecting is lazy (the first command connects) unless ``connect()`` is called. On connect
/// the connection sends `AUTH` (with the username when there is one) if a password is set,
/// `SELECT` if the database is not 0, and `CLIENT SETNAME` with the sanitized `name`; it applies
/// the socket timeout and enables TCP keepalive.
///
/// When the connection breaks (I/O error, end of stream, timeout) the commands in flight fail
/// with ``RedisError/connection(_:)`` (they may or may not have run) and the next command
/// reconnects. A connection the server closed while idle is noticed before the next write and
/// re-established without failing anything. Connect attempts after a failure are spaced by
/// exponential backoff (50 ms doubling to 2 s, reset on success); a command that arrives before
/// the next attempt is due fails at once with a message ending in "retrying in N ms". So the
/// same object keeps working across a server restart.
///
/// The async methods use typed throws and only ever throw ``RedisError``. Task cancellation does
/// not abandon a command already queued: it completes (or fails) as usual, within the socket
/// timeout at most.
public final class RedisConnection: Sendable {
    /// The configuration this connection was made with.
    public let configuration: RedisConfiguration
    /// The name given at creation (the server sees the sanitized ``clientName``).
    public let name: String
    private let core: ConnectionCore

    /// Creates a connection; it does not connect yet.
    ///
    /// - Parameters:
    ///   - configuration: where the server is and how to log in.
    ///   - name: a name for `CLIENT SETNAME` (characters Redis does not allow, such as spaces,
    ///     become `-`) and for the connection's thread (`redis-<name>`, cut to 15 bytes).
    public init(configuration: RedisConfiguration, name: String) {
        self.configuration = configuration
        self.name = name
        self.core = ConnectionCore(configuration: configuration, clientName: Self.sanitize(name))
    }

    deinit {
        core.close()
    }

    /// The name sent with `CLIENT SETNAME`: `name` with every character outside `!`...`~`
    /// replaced by `-` (empty when `name` is empty, and then no name is set).
    public var clientName: String { core.clientName }

    /// Connects now, if not connected yet (the first command also connects). Throws
    /// ``RedisError/connection(_:)`` when the server cannot be reached or refuses the login.
    public func connect() async throws(RedisError) {
        if core.isConnected { return }
        _ = try await submit(.connect)
    }

    /// Sends one command and returns its reply. An error reply throws ``RedisError/server(_:)``.
    public func send(_ command: RedisCommand) async throws(RedisError) -> RedisValue {
        guard !command.arguments.isEmpty else { throw Self.emptyCommand }
        let values = try await submit(.commands([command]))
        guard values.count == 1, let value = values.first else {
            throw RedisError.protocolError("Expected one reply from \(configuration.address) and got \(values.count).")
        }
        if case .error(let message) = value { throw RedisError.server(message) }
        return value
    }

    /// Sends one command given as strings: `try await connection.send("GET", key)`.
    /// An error reply throws ``RedisError/server(_:)``.
    public func send(_ arguments: String...) async throws(RedisError) -> RedisValue {
        try await send(RedisCommand(arguments))
    }

    /// Sends all commands in one write and returns one value per command, in order.
    ///
    /// Error replies come back as ``RedisValue/error(_:)`` elements (not thrown). A lost
    /// connection throws ``RedisError/connection(_:)`` for the whole call (some of the commands
    /// may have run). An empty list returns `[]` without touching the connection.
    public func pipeline(_ commands: [RedisCommand]) async throws(RedisError) -> [RedisValue] {
        if commands.isEmpty { return [] }
        guard commands.allSatisfy({ !$0.arguments.isEmpty }) else { throw Self.emptyCommand }
        let values = try await submit(.commands(commands))
        guard values.count == commands.count else {
            throw RedisError.protocolError("Expected \(commands.count) replies from \(configuration.address) and got \(values.count).")
        }
        return values
    }

    /// Closes the connection: fails anything queued or in flight with ``RedisError/closed`` at
    /// once, shuts the socket down (which interrupts a blocking command), and lets the thread
    /// end. Idempotent; does not wait for I/O. Later commands fail with ``RedisError/closed``.
    /// Dropping the last reference to the connection closes it too.
    public func close() {
        core.close()
    }

    /// `true` while a connection to the server is established (and `close()` was not called).
    public var isConnected: Bool { core.isConnected }

    /// Counters for benchmarks: commands sent, and write batches (round trips) made.
    /// The handshake on connect (`AUTH`, `SELECT`, `CLIENT SETNAME`) is not counted.
    public var statistics: RedisStatistics { core.statistics }

    private static let emptyCommand = RedisError.protocolError("A Redis command needs at least its name; an empty command was not sent.")

    private func submit(_ kind: PendingWork.Kind) async throws(RedisError) -> [RedisValue] {
        let result = await withCheckedContinuation { (continuation: CheckedContinuation<Result<[RedisValue], RedisError>, Never>) in
            core.submit(PendingWork(kind: kind, complete: { continuation.resume(returning: $0) }))
        }
        return try result.get()
    }

    private static func sanitize(_ name: String) -> String {
        String(String.UnicodeScalarView(name.unicodeScalars.map { (0x21...0x7E).contains($0.value) ? $0 : "-" }))
    }
}

/// Counters of one ``RedisConnection``, for benchmarks and metrics.
public struct RedisStatistics: Sendable, Equatable {
    /// Commands written to the server (handshake commands excluded).
    public var commands: Int
    /// Write batches made: each is one write followed by reading all its replies.
    public var roundTrips: Int
    /// Connections established after the first one (after a break or a server restart).
    public var reconnects: Int

    /// Counters with the given values (all zero by default).
    public init(commands: Int = 0, roundTrips: Int = 0, reconnects: Int = 0) {
        self.commands = commands
        self.roundTrips = roundTrips
        self.reconnects = reconnects
    }
}
