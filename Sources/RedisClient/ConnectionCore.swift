import Foundation

/// One unit of work handed from a caller to the connection thread.
struct PendingWork: Sendable {
    enum Kind: Sendable {
        /// Make sure the connection is up; completes with `[]`.
        case connect
        /// Commands written together, one reply each, in order.
        case commands([RedisCommand])
    }

    let kind: Kind
    /// Called exactly once, by whoever takes the work out of `ConnectionCore` under its lock.
    let complete: @Sendable (Result<[RedisValue], RedisError>) -> Void

    var commandCount: Int {
        if case .commands(let commands) = kind { return commands.count }
        return 0
    }
}

/// The state a `RedisConnection` shares between its callers and its thread.
///
/// `@unchecked Sendable` is safe because every mutable stored property below is read and written
/// only while `condition` is locked; the `let` properties are immutable and `Sendable`. Every
/// `PendingWork` is completed exactly once: it is removed from `queue` or `inFlight` under the
/// lock by exactly one party (the thread in `finish`, or `close`), which then completes it
/// after unlocking.
final class ConnectionCore: @unchecked Sendable {
    let configuration: RedisConfiguration
    /// The sanitized name for CLIENT SETNAME (may be empty: no SETNAME is sent).
    let clientName: String

    /// Most commands written in one batch; one `PendingWork` is never split, so a large
    /// `pipeline()` call may exceed it.
    static let maxBatchCommands = 4096

    private let condition = NSCondition()
    private var queue: [PendingWork] = []
    private var inFlight: [PendingWork] = []
    private var closed = false
    private var threadStarted = false
    /// The socket of the live context, or -1; only ever a descriptor that is still open,
    /// because the thread clears it (under the lock) before freeing the context.
    private var socket: Int32 = -1
    private var connected = false
    private var stats = RedisStatistics()

    init(configuration: RedisConfiguration, clientName: String) {
        self.configuration = configuration
        self.clientName = clientName
    }

    // MARK: Callers' side

    /// Queues work for the thread (starting the thread on first use), or fails it at once with
    /// `.closed` after `close()`.
    func submit(_ work: PendingWork) {
        condition.lock()
        if closed {
            condition.unlock()
            work.complete(.failure(.closed))
            return
        }
        queue.append(work)
        let mustStart = !threadStarted
        threadStarted = true
        condition.signal()
        condition.unlock()
        if mustStart { startThread() }
    }

    /// Fails queued and in-flight work with `.closed`, interrupts a read in progress by shutting
    /// the socket down, and lets the thread end. Idempotent; never blocks on I/O.
    func close() {
        condition.lock()
        if closed {
            condition.unlock()
            return
        }
        closed = true
        let abandoned = inFlight + queue
        inFlight = []
        queue = []
        if socket >= 0 {
            // The descriptor is still open (see `socket`); shutting it down makes a blocked
            // read or write in the thread return at once. The thread frees the context.
            _ = shutdown(socket, Int32(SHUT_RDWR))
        }
        connected = false
        condition.broadcast()
        condition.unlock()
        for work in abandoned { work.complete(.failure(.closed)) }
    }

    var isClosed: Bool {
        condition.lock(); defer { condition.unlock() }
        return closed
    }

    var isConnected: Bool {
        condition.lock(); defer { condition.unlock() }
        return connected
    }

    var statistics: RedisStatistics {
        condition.lock(); defer { condition.unlock() }
        return stats
    }

    // MARK: Thread's side

    private func startThread() {
        // Linux keeps at most 15 bytes of a thread name; the client name is ASCII.
        let name = String(("redis-" + clientName).prefix(15))
        let thread = Thread { [self] in
            let session = HiredisSession(core: self)
            session.run(threadName: name)
        }
        thread.name = name
        thread.start()
    }

    /// Waits for work; returns every queued item up to the batch limit (at least one), now
    /// counted as in flight, or `nil` once the connection is closed.
    func nextBatch() -> [PendingWork]? {
        condition.lock()
        defer { condition.unlock() }
        while queue.isEmpty && !closed { condition.wait() }
        if closed { return nil }
        var total = 0
        var taken = 0
        for work in queue {
            if taken > 0 && total + work.commandCount > Self.maxBatchCommands { break }
            total += work.commandCount
            taken += 1
        }
        let batch = Array(queue.prefix(taken))
        queue.removeFirst(taken)
        inFlight = batch
        return batch
    }

    /// Completes the in-flight batch with one result per item (unless `close()` already did).
    func finish(_ batch: [PendingWork], results: [Result<[RedisValue], RedisError>]) {
        condition.lock()
        let stillOurs = !closed
        if stillOurs { inFlight = [] }
        condition.unlock()
        guard stillOurs else { return }
        for (work, result) in zip(batch, results) { work.complete(result) }
    }

    /// Publishes the socket of a new context so that `close()` can interrupt it. Returns `false`
    /// when the connection was closed meanwhile (the caller must free the context).
    func publishSocket(_ fd: Int32) -> Bool {
        condition.lock(); defer { condition.unlock() }
        if closed { return false }
        socket = fd
        return true
    }

    /// Records a completed handshake.
    func markConnected(isReconnect: Bool) {
        condition.lock(); defer { condition.unlock() }
        connected = !closed
        if isReconnect { stats.reconnects += 1 }
    }

    /// Forgets the socket; must be called before the context is freed.
    func markDisconnected() {
        condition.lock(); defer { condition.unlock() }
        socket = -1
        connected = false
    }

    /// Counts one write batch of `commands` commands.
    func countRoundTrip(commands: Int) {
        condition.lock(); defer { condition.unlock() }
        stats.commands += commands
        stats.roundTrips += 1
    }
}
