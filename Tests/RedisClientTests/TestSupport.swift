import Foundation
import RedisClient
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// A setup problem that must fail the test (never skip it) with a message saying what to do.
struct TestSetupError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// The Redis server the tests share with others, from `MEDIANEST_TEST_REDIS_URL`.
enum TestRedis {
    static let variable = "MEDIANEST_TEST_REDIS_URL"

    static func configuration() throws -> RedisConfiguration {
        guard let url = ProcessInfo.processInfo.environment[variable], !url.isEmpty else {
            throw TestSetupError(
                "\(variable) is not set. Point it at a disposable Redis server, for example: \(variable)=redis://127.0.0.1:6390/0 swift test"
            )
        }
        do {
            return try RedisConfiguration(url: url)
        } catch {
            throw TestSetupError("\(variable) is not a usable Redis URL: \(error)")
        }
    }

    /// A connected connection to the test server (fails the test clearly if it is unreachable).
    static func connection(_ name: String = "test", adjust: (inout RedisConfiguration) -> Void = { _ in }) async throws -> RedisConnection {
        var configuration = try configuration()
        adjust(&configuration)
        let connection = RedisConnection(configuration: configuration, name: name)
        do {
            try await connection.connect()
        } catch {
            throw TestSetupError("The Redis server from \(variable) (\(configuration.redactedURL)) is unreachable: \(error)")
        }
        return connection
    }

    /// Runs `body` with a random key prefix, then deletes every key under it, also on failure.
    static func withPrefix<T>(_ body: (String) async throws -> T) async throws -> T {
        let prefix = "medianest-test:redisclient:\(UUID().uuidString):"
        do {
            let result = try await body(prefix)
            try await deleteKeys(prefix)
            return result
        } catch {
            try? await deleteKeys(prefix)
            throw error
        }
    }

    private static func deleteKeys(_ prefix: String) async throws {
        let connection = try await connection("test-cleanup")
        defer { connection.close() }
        var cursor = "0"
        repeat {
            let reply = try await connection.send("SCAN", cursor, "MATCH", prefix + "*", "COUNT", "1000")
            guard let parts = reply.array, parts.count == 2, let next = parts[0].string, let keys = parts[1].array else {
                throw TestSetupError("Unexpected SCAN reply: \(reply)")
            }
            cursor = next
            let names = keys.compactMap(\.bytes)
            if !names.isEmpty {
                _ = try await connection.send(RedisCommand(bytes: [Array("DEL".utf8)] + names))
            }
        } while cursor != "0"
    }

    /// Waits until the client with `id` is blocked in a command (so a test knows its blocking
    /// command has reached the server).
    static func waitUntilBlocked(clientID: Int64, observer: RedisConnection) async throws {
        let deadline = ContinuousClock.now + .seconds(5)
        while ContinuousClock.now < deadline {
            let line = try await observer.send("CLIENT", "LIST", "ID", String(clientID)).string ?? ""
            if line.contains(" flags=b ") { return }
            try await Task.sleep(for: .milliseconds(10))
        }
        throw TestSetupError("Client \(clientID) never blocked within 5 s.")
    }
}

/// Runs `body` and returns the `RedisError` it throws, or records an issue if it succeeds.
func redisError<T>(_ body: () async throws(RedisError) -> T, sourceLocation: SourceLocation = #_sourceLocation) async -> RedisError? {
    do {
        let value = try await body()
        Issue.record("Expected a RedisError, got \(value)", sourceLocation: sourceLocation)
        return nil
    } catch {
        return error
    }
}

/// A TCP port on 127.0.0.1 that nothing listens on right now.
/// A free loopback port below the kernel's ephemeral range (`ip_local_port_range`): a server
/// stopped and started again on it cannot find it taken meanwhile by the local end of some
/// outgoing connection, as a port the kernel hands out could be.
func freeLocalPort() throws -> Int {
    let range = (try? String(contentsOfFile: "/proc/sys/net/ipv4/ip_local_port_range", encoding: .utf8))?
        .split(whereSeparator: \.isWhitespace).compactMap { Int($0) }
    let low = max(min(range?.first ?? 32768, 65536), 12000)
    for _ in 0..<200 {
        let port = Int.random(in: 10000..<(low - 1))
        if try canBind(port) { return port }
    }
    throw TestSetupError("no free loopback port found below \(low)")
}

private func canBind(_ port: Int) throws -> Bool {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { throw TestSetupError("socket() failed: errno \(errno)") }
    defer { Glibc.close(fd) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = UInt16(port).bigEndian
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    let bound = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
    }
    return bound == 0
}

/// A redis-server of the test's own on a free loopback port, without persistence, that the
/// test can stop and start again on the same port. `stop()` is synchronous so that a `defer`
/// cleans it up in all cases. The process is spawned and reaped directly (posix_spawn,
/// waitpid) so that stopping it takes milliseconds.
final class PrivateRedisServer: @unchecked Sendable {
    // @unchecked Sendable: a server object is used by one test task at a time; `pid` is only
    // touched from that task.
    let port: Int
    let extraArguments: [String]
    let directory: URL
    private var pid: pid_t = 0

    init(extraArguments: [String] = []) throws {
        self.port = try freeLocalPort()
        self.extraArguments = extraArguments
        self.directory = FileManager.default.temporaryDirectory.appendingPathComponent("redisclient-test-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    }

    deinit {
        stop()
        try? FileManager.default.removeItem(at: directory)
    }

    static func executable() throws -> String {
        let candidates = [
            ProcessInfo.processInfo.environment["MEDIANEST_TEST_REDIS_SERVER"], "/usr/bin/redis-server", "/usr/local/bin/redis-server",
        ]
        for case let path? in candidates where FileManager.default.isExecutableFile(atPath: path) { return path }
        throw TestSetupError(
            "redis-server was not found; install it (apt-get install redis-server) or set MEDIANEST_TEST_REDIS_SERVER to its path.")
    }

    /// Starts the server and waits until it answers.
    func start() async throws {
        let path = try Self.executable()
        let arguments =
            [
                path, "--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                "--daemonize", "no", "--dir", directory.path,
                "--logfile", directory.appendingPathComponent("redis.log").path,
            ] + extraArguments
        var argv: [UnsafeMutablePointer<CChar>?] = arguments.map { strdup($0) } + [nil]
        defer { for pointer in argv { free(pointer) } }
        // Threads of the Swift runtime block most signals, and a spawned child inherits the
        // mask: reset it (and the dispositions) or the server would ignore SIGTERM.
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var noSignals = sigset_t()
        sigemptyset(&noSignals)
        var allSignals = sigset_t()
        sigfillset(&allSignals)
        posix_spawnattr_setsigmask(&attributes, &noSignals)
        posix_spawnattr_setsigdefault(&attributes, &allSignals)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
        var child: pid_t = 0
        let status = posix_spawn(&child, path, nil, &attributes, &argv, environ)
        guard status == 0 else { throw TestSetupError("Could not start \(path): error \(status)") }
        pid = child
        let deadline = ContinuousClock.now + .seconds(10)
        while ContinuousClock.now < deadline {
            let probe = RedisConnection(configuration: RedisConfiguration(port: port), name: "probe")
            defer { probe.close() }
            do {
                _ = try await probe.send("PING")
                return
            } catch .server {
                return  // answering (e.g. NOAUTH): it is up
            } catch {
                try await Task.sleep(for: .milliseconds(20))
            }
        }
        stop()
        throw TestSetupError("The private redis-server on port \(port) did not start within 10 s; see \(directory.path)/redis.log.")
    }

    /// Stops the server (SIGTERM, then SIGKILL after 5 s) and reaps it. Idempotent.
    func stop() {
        guard pid > 0 else { return }
        let child = pid
        pid = 0
        kill(child, SIGTERM)
        var status: Int32 = 0
        for _ in 0..<1000 {
            if waitpid(child, &status, WNOHANG) != 0 { return }
            usleep(5_000)
        }
        kill(child, SIGKILL)
        _ = waitpid(child, &status, 0)
    }
}
