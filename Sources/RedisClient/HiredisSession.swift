import CHiredis
import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// The hiredis side of a connection: lives on, and is touched only by, the connection's own
/// thread. It owns the `redisContext`, reconnects with backoff, writes batches and turns
/// replies into `RedisValue`s.
final class HiredisSession {
    private let core: ConnectionCore
    private let configuration: RedisConfiguration
    private var context: UnsafeMutablePointer<redisContext>?

    /// Delay before the next connect attempt after a failed one: 50 ms doubling to 2 s.
    private var backoff: Duration = .milliseconds(50)
    private static let initialBackoff: Duration = .milliseconds(50)
    private static let maxBackoff: Duration = .seconds(2)
    /// When a connect attempt is allowed again after a failure (`nil`: at once).
    private var nextAttempt: ContinuousClock.Instant?
    /// The sentence describing the last failed connect attempt.
    private var lastFailure = ""
    private var hasConnected = false

    init(core: ConnectionCore) {
        self.core = core
        self.configuration = core.configuration
    }

    /// The thread's body: serve batches until the connection is closed.
    func run(threadName: String) {
        // Writing to a socket the server has closed raises SIGPIPE, which would end the
        // process. Blocking it on this thread only makes such a write fail with EPIPE instead,
        // without changing the process' signal handling.
        var set = sigset_t()
        sigemptyset(&set)
        sigaddset(&set, SIGPIPE)
        pthread_sigmask(SIG_BLOCK, &set, nil)
        chiredis_name_current_thread(threadName)

        while let batch = core.nextBatch() {
            process(batch)
        }
        disconnect()
    }

    // MARK: Batches

    private func process(_ batch: [PendingWork]) {
        if let failure = ensureConnected() {
            core.finish(batch, results: batch.map { _ in .failure(failure) })
            return
        }
        guard let context else { preconditionFailure("connected without a context") }

        var results = [Result<[RedisValue], RedisError>](repeating: .success([]), count: batch.count)
        var written = 0
        for work in batch {
            guard case .commands(let commands) = work.kind else { continue }
            for command in commands {
                guard Self.append(command, to: context) else {
                    let failure = RedisError.protocolError(
                        "The command \(command.name) could not be buffered for \(configuration.address) (out of memory); the connection was reset."
                    )
                    disconnect()
                    core.finish(batch, results: batch.map { _ in .failure(failure) })
                    return
                }
                written += 1
            }
        }
        if written == 0 {
            core.finish(batch, results: results)
            return
        }
        core.countRoundTrip(commands: written)

        // The first redisGetReply writes the whole buffer, then each call reads one reply.
        var broken: RedisError?
        for (index, work) in batch.enumerated() {
            let count = work.commandCount
            guard count > 0 else { continue }
            if let broken {
                results[index] = .failure(broken)
                continue
            }
            var values: [RedisValue] = []
            values.reserveCapacity(count)
            for _ in 0..<count {
                var raw: UnsafeMutableRawPointer?
                guard redisGetReply(context, &raw) == REDIS_OK, let raw else {
                    broken = describeBrokenConnection(context)
                    break
                }
                values.append(Self.convert(raw.assumingMemoryBound(to: redisReply.self)))
                freeReplyObject(raw)
            }
            results[index] = broken.map { .failure($0) } ?? .success(values)
        }
        if broken != nil { disconnect() }
        core.finish(batch, results: results)
    }

    /// Appends one command to the context's output buffer (binary-safe argv + lengths).
    private static func append(_ command: RedisCommand, to context: UnsafeMutablePointer<redisContext>) -> Bool {
        if let encoded = command.encoded {
            return encoded.withUnsafeBufferPointer { buffer in
                buffer.withMemoryRebound(to: CChar.self) { redisAppendFormattedCommand(context, $0.baseAddress, $0.count) == REDIS_OK }
            }
        }
        let arguments = command.arguments
        var lengths: [Int] = []
        lengths.reserveCapacity(arguments.count)
        var flat: [UInt8] = []
        flat.reserveCapacity(arguments.reduce(1) { $0 + $1.count })
        for argument in arguments {
            flat.append(contentsOf: argument)
            lengths.append(argument.count)
        }
        flat.append(0)  // never empty, so the base address exists even for empty arguments
        return flat.withUnsafeBufferPointer { buffer -> Bool in
            let base = UnsafeRawPointer(buffer.baseAddress!).assumingMemoryBound(to: CChar.self)
            var pointers: [UnsafePointer<CChar>?] = []
            pointers.reserveCapacity(lengths.count)
            var offset = 0
            for length in lengths {
                pointers.append(base + offset)
                offset += length
            }
            return pointers.withUnsafeMutableBufferPointer { argv in
                lengths.withUnsafeBufferPointer { argvlen in
                    redisAppendCommandArgv(context, Int32(arguments.count), argv.baseAddress, argvlen.baseAddress) == REDIS_OK
                }
            }
        }
    }

    /// Copies a reply tree out of hiredis' memory (the caller frees it).
    private static func convert(_ reply: UnsafeMutablePointer<redisReply>) -> RedisValue {
        let r = reply.pointee
        switch r.type {
        case REDIS_REPLY_STRING:
            guard let str = r.str, r.len > 0 else { return .bulk([]) }
            return .bulk(Array(UnsafeRawBufferPointer(start: str, count: r.len)))
        case REDIS_REPLY_INTEGER:
            return .integer(Int64(r.integer))
        case REDIS_REPLY_NIL:
            return .null
        case REDIS_REPLY_STATUS:
            return .status(text(r))
        case REDIS_REPLY_ERROR:
            return .error(text(r))
        case REDIS_REPLY_ARRAY:
            var elements: [RedisValue] = []
            elements.reserveCapacity(r.elements)
            if let children = r.element {
                for i in 0..<r.elements {
                    if let child = children[i] { elements.append(convert(child)) } else { elements.append(.null) }
                }
            }
            return .array(elements)
        default:
            return .error("unsupported reply type \(r.type)")
        }
    }

    private static func text(_ r: redisReply) -> String {
        guard let str = r.str, r.len > 0 else { return "" }
        return String(decoding: UnsafeRawBufferPointer(start: str, count: r.len), as: UTF8.self)
    }

    // MARK: Connecting

    /// Makes sure a live context exists. Returns the error every command of the batch gets if not.
    private func ensureConnected() -> RedisError? {
        if let context {
            if !Self.isStale(context) { return nil }
            // The server closed an idle connection (restart, CLIENT KILL, timeout): nothing was
            // sent yet, so reconnect at once and the batch is not lost.
            disconnect()
        }
        let now = ContinuousClock.now
        if let nextAttempt, now < nextAttempt {
            return .connection("\(lastFailure); retrying in \(Self.milliseconds(nextAttempt - now)) ms.")
        }
        switch openConnection() {
        case .success(let newContext):
            context = newContext
            backoff = Self.initialBackoff
            nextAttempt = nil
            core.markConnected(isReconnect: hasConnected)
            hasConnected = true
            return nil
        case .failure(let why):
            lastFailure = why.text
            let wait = backoff
            nextAttempt = now + wait
            backoff = min(backoff * 2, Self.maxBackoff)
            return .connection("\(why.text); retrying in \(Self.milliseconds(wait)) ms.")
        }
    }

    private struct ConnectFailure: Error { let text: String }

    /// Connects, sets timeouts and keepalive, then AUTH, SELECT and CLIENT SETNAME in one round trip.
    private func openConnection() -> Result<UnsafeMutablePointer<redisContext>, ConnectFailure> {
        let address = configuration.address
        let connectTimeout = Self.timeval(seconds: max(configuration.connectTimeout, 0.001))
        let made: UnsafeMutablePointer<redisContext>?
        if let path = configuration.unixSocketPath {
            made = redisConnectUnixWithTimeout(path, connectTimeout)
        } else {
            made = redisConnectWithTimeout(configuration.host, Int32(clamping: configuration.port), connectTimeout)
        }
        guard let ctx = made else {
            return .failure(ConnectFailure(text: "Could not connect to Redis at \(address): out of memory"))
        }
        if ctx.pointee.err != 0 {
            let cause = Self.errorText(ctx)
            redisFree(ctx)
            return .failure(
                ConnectFailure(
                    text:
                        "Could not connect to Redis at \(address): \(cause). Check that the server is running and that the Redis URL is right"
                ))
        }
        guard core.publishSocket(ctx.pointee.fd) else {
            redisFree(ctx)
            return .failure(ConnectFailure(text: "The connection to Redis at \(address) was closed by the application"))
        }
        func fail(_ text: String) -> Result<UnsafeMutablePointer<redisContext>, ConnectFailure> {
            core.markDisconnected()
            redisFree(ctx)
            return .failure(ConnectFailure(text: text))
        }
        _ = redisSetTimeout(ctx, Self.timeval(seconds: max(configuration.socketTimeout, 0)))
        if configuration.unixSocketPath == nil { _ = redisEnableKeepAlive(ctx) }

        enum Step { case auth, select, setName }
        var steps: [(Step, RedisCommand)] = []
        if let password = configuration.password {
            var auth: RedisCommand = ["AUTH"]
            if let username = configuration.username { auth.append(username) }
            auth.append(password)
            steps.append((.auth, auth))
        }
        if configuration.database != 0 {
            var select: RedisCommand = ["SELECT"]
            select.append(configuration.database)
            steps.append((.select, select))
        }
        if !core.clientName.isEmpty {
            steps.append((.setName, ["CLIENT", "SETNAME", core.clientName]))
        }
        for (_, command) in steps where !Self.append(command, to: ctx) {
            return fail("Could not prepare the handshake with Redis at \(address): out of memory")
        }
        for (step, _) in steps {
            var raw: UnsafeMutableRawPointer?
            guard redisGetReply(ctx, &raw) == REDIS_OK, let raw else {
                return fail("Connected to Redis at \(address), but the connection failed during the handshake: \(Self.errorText(ctx))")
            }
            let value = Self.convert(raw.assumingMemoryBound(to: redisReply.self))
            freeReplyObject(raw)
            guard case .error(let message) = value else { continue }
            switch step {
            case .auth:
                return fail("Redis at \(address) refused the credentials (\(message)). Check the user and password in the Redis URL")
            case .select:
                return fail(
                    "Redis at \(address) could not select database \(configuration.database) (\(message)). Check the database number in the Redis URL"
                )
            case .setName:
                continue  // a name is only a convenience for CLIENT LIST; never fail over it
            }
        }
        return .success(ctx)
    }

    /// Frees the context, if any (the socket is unpublished first, so `close()` never touches a
    /// descriptor that was closed and possibly reused).
    private func disconnect() {
        guard let ctx = context else { return }
        core.markDisconnected()
        context = nil
        redisFree(ctx)
    }

    /// The error for commands whose replies were lost when the connection broke.
    private func describeBrokenConnection(_ ctx: UnsafeMutablePointer<redisContext>) -> RedisError {
        let address = configuration.address
        let cause = Self.errorText(ctx)
        switch ctx.pointee.err {
        case REDIS_ERR_EOF:
            return .connection(
                "Redis at \(address) closed the connection (server restart, CLIENT KILL or idle timeout) before replying; the next command reconnects."
            )
        case REDIS_ERR_PROTOCOL:
            return .protocolError("Redis at \(address) sent a reply that could not be parsed (\(cause)); the connection was reset.")
        case REDIS_ERR_IO where cause == String(cString: strerror(EAGAIN)) || cause == String(cString: strerror(EWOULDBLOCK)):
            return .connection(
                "Redis at \(address) did not reply within \(Self.seconds(configuration.socketTimeout)) s (the socket timeout), so the connection was dropped; a connection used for blocking commands needs a socket timeout longer than the block time."
            )
        default:
            return .connection("Lost the connection to Redis at \(address): \(cause); the next command reconnects.")
        }
    }

    /// `true` when an idle socket is readable: with no reply outstanding that can only be the
    /// end of the stream (or an error), so the connection is dead.
    private static func isStale(_ ctx: UnsafeMutablePointer<redisContext>) -> Bool {
        var descriptor = pollfd(fd: ctx.pointee.fd, events: Int16(POLLIN), revents: 0)
        return poll(&descriptor, 1, 0) > 0
    }

    private static func errorText(_ ctx: UnsafeMutablePointer<redisContext>) -> String {
        withUnsafeBytes(of: ctx.pointee.errstr) { bytes in
            let end = bytes.firstIndex(of: 0) ?? bytes.count
            let text = String(decoding: bytes[..<end], as: UTF8.self)
            return text.isEmpty ? "unknown error" : text
        }
    }

    private static func timeval(seconds: Double) -> Glibc.timeval {
        let whole = seconds.rounded(.down)
        return Glibc.timeval(tv_sec: Int(whole), tv_usec: Int((seconds - whole) * 1_000_000))
    }

    private static func milliseconds(_ duration: Duration) -> Int64 {
        let (s, attoseconds) = duration.components
        return max(1, s * 1000 + (attoseconds + 999_999_999_999_999) / 1_000_000_000_000_000)
    }

    private static func seconds(_ value: Double) -> String {
        value == value.rounded() ? String(Int(value)) : String(value)
    }
}
