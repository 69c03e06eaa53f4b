import Foundation
import RedisClient
import Testing

@Suite("RedisConnection failures and reconnection")
struct RedisReconnectTests {
    /// Sends PING until it succeeds; every failure on the way must be a `.connection` error.
    private func pingUntilUp(_ connection: RedisConnection, within limit: Duration = .seconds(5)) async throws -> [RedisError] {
        var failures: [RedisError] = []
        let deadline = ContinuousClock.now + limit
        while true {
            do {
                #expect(try await connection.send("PING") == .status("PONG"))
                return failures
            } catch {
                failures.append(error)
                guard case .connection = error else {
                    Issue.record("expected only .connection failures, got \(error)")
                    return failures
                }
                if ContinuousClock.now > deadline {
                    throw TestSetupError("No reconnection within \(limit); last error: \(error)")
                }
                try await Task.sleep(for: .milliseconds(25))
            }
        }
    }

    @Test func killingItsOwnClientThenReconnecting() async throws {
        let connection = try await TestRedis.connection("killed")
        defer { connection.close() }
        let firstID = try #require(try await connection.send("CLIENT", "ID").int)
        // SKIPME no: by default a client does not kill itself.
        #expect(try await connection.send("CLIENT", "KILL", "ID", String(firstID), "SKIPME", "no") == .integer(1))
        // The first command may fail with .connection; then commands succeed on a new connection.
        let failures = try await pingUntilUp(connection)
        #expect(failures.count <= 1)
        let secondID = try #require(try await connection.send("CLIENT", "ID").int)
        #expect(secondID != firstID)
        #expect(connection.statistics.reconnects == 1)
        #expect(try await connection.send("CLIENT", "GETNAME").string == "killed")
    }

    @Test func killedWhileBlockedFailsTheBlockedCommandThenRecovers() async throws {
        try await TestRedis.withPrefix { prefix in
            let connection = try await TestRedis.connection("killed-blocked")
            let admin = try await TestRedis.connection("admin")
            defer { connection.close(); admin.close() }
            let id = try #require(try await connection.send("CLIENT", "ID").int)
            async let blocked = redisError { () async throws(RedisError) in try await connection.send("BLPOP", prefix + "never", "5") }
            try await TestRedis.waitUntilBlocked(clientID: id, observer: admin)
            #expect(try await admin.send("CLIENT", "KILL", "ID", String(id)) == .integer(1))
            let error = await blocked
            guard case .connection(let message) = error else {
                Issue.record("expected .connection, got \(String(describing: error))")
                return
            }
            #expect(message.contains(connection.configuration.address), "\(message)")
            let failures = try await pingUntilUp(connection)
            #expect(failures.isEmpty, "\(failures)")
        }
    }

    @Test func closedPortFailsQuicklyAndClearly() async throws {
        let port = try freeLocalPort()
        var configuration = RedisConfiguration(port: port)
        // A refused connection must fail at once, not after the connect timeout: make that
        // timeout long so the bound below proves it without being sensitive to machine load.
        configuration.connectTimeout = 30
        let connection = RedisConnection(configuration: configuration, name: "nobody-home")
        defer { connection.close() }
        let start = ContinuousClock.now
        let first = await redisError { () async throws(RedisError) in try await connection.send("PING") }
        guard case .connection(let message) = first else {
            Issue.record("expected .connection, got \(String(describing: first))")
            return
        }
        #expect(message.contains("127.0.0.1:\(port)"), "\(message)")
        #expect(message.contains("Connection refused"), "\(message)")
        #expect(message.contains("retrying in 50 ms"), "\(message)")
        // Until the backoff expires, commands fail at once without another attempt.
        let second = await redisError { () async throws(RedisError) in try await connection.connect() }
        guard case .connection(let again) = second else {
            Issue.record("expected .connection, got \(String(describing: second))")
            return
        }
        #expect(again.contains("retrying in"), "\(again)")
        #expect(ContinuousClock.now - start < .seconds(10))
        #expect(!connection.isConnected)
        #expect(connection.statistics.commands == 0)
    }

    @Test func replyLongerThanTheSocketTimeoutDropsTheConnection() async throws {
        try await TestRedis.withPrefix { prefix in
            let connection = try await TestRedis.connection("short-timeout") { $0.socketTimeout = 0.3 }
            defer { connection.close() }
            let error = await redisError { () async throws(RedisError) in try await connection.send("BLPOP", prefix + "never", "2") }
            guard case .connection(let message) = error else {
                Issue.record("expected .connection, got \(String(describing: error))")
                return
            }
            // BLPOP itself would answer nil after 2 s, never an error: the error can only be the socket timeout.
            #expect(message.contains("socket timeout"), "\(message)")
            let failures = try await pingUntilUp(connection)
            #expect(failures.isEmpty, "\(failures)")
        }
    }

    @Test func survivesAFullServerRestart() async throws {
        let server = try PrivateRedisServer()
        defer { server.stop() }
        try await server.start()
        let connection = RedisConnection(configuration: RedisConfiguration(port: server.port), name: "restart")
        defer { connection.close() }
        #expect(try await connection.send("SET", "k", "v") == .status("OK"))
        #expect(connection.isConnected)

        server.stop()
        // Whatever the first command sees (end of stream, or no one listening), it is a
        // .connection error naming the server, and no command hangs while it is down.
        for _ in 0..<5 {
            let start = ContinuousClock.now
            let error = await redisError { () async throws(RedisError) in try await connection.send("GET", "k") }
            guard case .connection(let message) = error else {
                Issue.record("expected .connection, got \(String(describing: error))")
                return
            }
            #expect(message.contains("127.0.0.1:\(server.port)"), "\(message)")
            #expect(ContinuousClock.now - start < .seconds(10))
            try await Task.sleep(for: .milliseconds(30))
        }
        #expect(!connection.isConnected)

        try await server.start()
        _ = try await pingUntilUp(connection)
        #expect(connection.isConnected)
        #expect(try await connection.send("GET", "k") == .null)  // no persistence: a fresh server
        #expect(try await connection.send("SET", "k", "w") == .status("OK"))
        #expect(connection.statistics.reconnects == 1)
    }

    @Test func authSelectAndNameOnEveryConnect() async throws {
        let server = try PrivateRedisServer(extraArguments: [
            "--requirepass", "default-secret",
            "--user", "worker", "on", ">worker-secret", "~*", "&*", "+@all",
        ])
        defer { server.stop() }
        try await server.start()

        var configuration = try RedisConfiguration(url: "redis://worker:worker-secret@127.0.0.1:\(server.port)/3")
        let connection = RedisConnection(configuration: configuration, name: "auth test")
        defer { connection.close() }
        let info = try #require(try await connection.send("CLIENT", "INFO").string)
        #expect(info.contains(" db=3 "), "\(info)")
        #expect(info.contains(" name=auth-test "), "\(info)")
        #expect(info.contains(" user=worker "), "\(info)")
        // After a reconnect the handshake runs again.
        let id = try #require(try await connection.send("CLIENT", "ID").int)
        #expect(try await connection.send("CLIENT", "KILL", "ID", String(id), "SKIPME", "no") == .integer(1))
        _ = try await pingUntilUp(connection)
        let again = try #require(try await connection.send("CLIENT", "INFO").string)
        #expect(again.contains(" db=3 ") && again.contains(" name=auth-test ") && again.contains(" user=worker "), "\(again)")

        let defaultUser = RedisConnection(
            configuration: try RedisConfiguration(url: "redis://:default-secret@127.0.0.1:\(server.port)"), name: "")
        defer { defaultUser.close() }
        #expect(try await defaultUser.send("PING") == .status("PONG"))

        configuration.password = "wrong-secret"
        let refused = RedisConnection(configuration: configuration, name: "refused")
        defer { refused.close() }
        let error = await redisError { () async throws(RedisError) in try await refused.send("PING") }
        guard case .connection(let message) = error else {
            Issue.record("expected .connection, got \(String(describing: error))")
            return
        }
        #expect(message.contains("refused the credentials"), "\(message)")
        #expect(!message.contains("wrong-secret") && !message.contains("worker-secret"), "\(message)")

        let noAuth = RedisConnection(configuration: RedisConfiguration(port: server.port), name: "no-auth")
        defer { noAuth.close() }
        let noAuthError = await redisError { () async throws(RedisError) in try await noAuth.send("GET", "x") }
        #expect(noAuthError?.serverErrorCode == "NOAUTH")

        var badDatabase = configuration
        badDatabase.password = "worker-secret"
        badDatabase.database = 99
        let outOfRange = RedisConnection(configuration: badDatabase, name: "bad-db")
        defer { outOfRange.close() }
        let dbError = await redisError { () async throws(RedisError) in try await outOfRange.connect() }
        guard case .connection(let dbMessage) = dbError else {
            Issue.record("expected .connection, got \(String(describing: dbError))")
            return
        }
        #expect(dbMessage.contains("database 99"), "\(dbMessage)")
    }
}
