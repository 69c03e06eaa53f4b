import Foundation
import RedisClient
import Testing

@Suite("RedisConnection against the test server")
struct RedisConnectionTests {
    @Test func binaryDataRoundTrips() async throws {
        try await TestRedis.withPrefix { prefix in
            let connection = try await TestRedis.connection()
            defer { connection.close() }
            let everyByte = (0...255).map(UInt8.init)
            let awkward: [UInt8] = [0, 0, 0xFF, 0xFE, 0xC3, 0x28, 0xE2, 0x82, 0x0D, 0x0A, 0x24, 0x2A]
            let binaryKey = Array(prefix.utf8) + [0, 0xFF, 0x0A]
            for value in [everyByte, awkward, [], [0]] {
                let set = try await connection.send(RedisCommand(bytes: [Array("SET".utf8), binaryKey, value]))
                #expect(set == .status("OK"))
                let get = try await connection.send(RedisCommand(bytes: [Array("GET".utf8), binaryKey]))
                #expect(get == .bulk(value))
                #expect(get.bytes == value)
            }
            let echo = try await connection.send(RedisCommand(bytes: [Array("ECHO".utf8), awkward]))
            #expect(echo.bytes == awkward)
            #expect(try await connection.send("EXISTS", prefix).int == 0)
        }
    }

    /// A command built straight into RESP bytes reaches Redis with the same arguments as one built
    /// argument by argument: binary, empty and many of them.
    @Test func anEncodedCommandSendsTheSameArguments() async throws {
        try await TestRedis.withPrefix { prefix in
            let connection = try await TestRedis.connection()
            defer { connection.close() }
            let script = "return {#ARGV, ARGV[1], ARGV[2], ARGV[3], ARGV[#ARGV], KEYS[1]}"
            let binary = (0...255).map(UInt8.init) + [13, 10, 36, 42]
            var plain = RedisCommand(["EVAL", script, "1", prefix + "k"])
            var encoder = RedisCommand.Encoder("EVAL", capacity: 8)
            encoder.append(script)
            encoder.append(1)
            encoder.append(prefix + "k")
            plain.append(bytes: binary)
            encoder.append(bytes: binary)
            plain.append("")
            encoder.append("")
            plain.append("é ü -1")
            encoder.append("é ü -1")
            for i in 0..<1_000 {
                plain.append(i - 500)
                encoder.append(i - 500)
            }
            let encoded = encoder.command
            #expect(encoded.name == "EVAL" && encoded.description == "EVAL (1006 arguments)")
            let replies = try await connection.pipeline([plain, encoded])
            #expect(replies[0] == replies[1])
            #expect(replies[1].array?.first?.int == 1_003)
            #expect(replies[1].array?[1].bytes == binary && replies[1].array?[2].bytes == [])
            #expect(replies[1].array?[4].string == "499")
        }
    }

    @Test func replyKinds() async throws {
        try await TestRedis.withPrefix { prefix in
            let connection = try await TestRedis.connection()
            defer { connection.close() }
            #expect(try await connection.send("PING") == .status("PONG"))
            #expect(try await connection.send("SET", prefix + "n", "10") == .status("OK"))
            #expect(try await connection.send("INCRBY", prefix + "n", "5") == .integer(15))
            #expect(try await connection.send("GET", prefix + "n").int == 15)
            #expect(try await connection.send("GET", prefix + "missing") == .null)
            #expect(try await connection.send("GET", prefix + "missing").isNull)
            #expect(try await connection.send("RPUSH", prefix + "list", "a", "", "c") == .integer(3))
            #expect(try await connection.send("LRANGE", prefix + "list", "0", "-1") == .array([.bulk([97]), .bulk([]), .bulk([99])]))
            #expect(try await connection.send("LRANGE", prefix + "nolist", "0", "-1") == .array([]))
            #expect(try await connection.send("ZADD", prefix + "z", "2.5", "m") == .integer(1))
            #expect(try await connection.send("ZSCORE", prefix + "z", "m").double == 2.5)
            #expect(try await connection.send("ZADD", prefix + "z", "+inf", "top") == .integer(1))
            #expect(try await connection.send("ZSCORE", prefix + "z", "top").double == .infinity)

            // Nested arrays: XRANGE returns [[id, [field, value]]].
            let id = try #require(try await connection.send("XADD", prefix + "s", "*", "job", "{}").string)
            let range = try await connection.send("XRANGE", prefix + "s", "-", "+")
            #expect(range == .array([.array([.bulk(Array(id.utf8)), .array([.bulk(Array("job".utf8)), .bulk(Array("{}".utf8))])])]))
            // A nil array (BLPOP timing out) is .null.
            #expect(try await connection.send("BLPOP", prefix + "empty", "0.01") == .null)

            // Error replies throw .server with the server's message.
            let unknown = await redisError { () async throws(RedisError) in try await connection.send("NO-SUCH-COMMAND", "x") }
            #expect(unknown?.serverErrorCode == "ERR")
            _ = try await connection.send("SET", prefix + "text", "abc")
            let notInteger = await redisError { () async throws(RedisError) in try await connection.send("INCR", prefix + "text") }
            #expect(notInteger == .server("ERR value is not an integer or out of range"))
            _ = try await connection.send("XGROUP", "CREATE", prefix + "s", "workers", "0")
            let busy = await redisError { () async throws(RedisError) in
                try await connection.send("XGROUP", "CREATE", prefix + "s", "workers", "0")
            }
            #expect(busy?.serverErrorCode == "BUSYGROUP")
            let noGroup = await redisError { () async throws(RedisError) in
                try await connection.send("XREADGROUP", "GROUP", "nope", "c", "COUNT", "1", "STREAMS", prefix + "s", ">")
            }
            #expect(noGroup?.serverErrorCode == "NOGROUP")
            // The connection is still fine after error replies; an empty command is refused locally.
            #expect(try await connection.send("ECHO", "still here").string == "still here")
            let empty = await redisError { () async throws(RedisError) in try await connection.send(RedisCommand(bytes: [])) }
            guard case .protocolError = empty else { Issue.record("expected .protocolError, got \(String(describing: empty))"); return }
        }
    }

    @Test func pipelineKeepsOrderWithErrorsInTheMiddle() async throws {
        try await TestRedis.withPrefix { prefix in
            let connection = try await TestRedis.connection()
            defer { connection.close() }
            _ = try await connection.send("SET", prefix + "text", "abc")
            let before = connection.statistics
            let errorAt: Set<Int> = [0, 2500, 5000, 7500, 9999]
            var commands: [RedisCommand] = []
            for i in 0..<10_000 {
                commands.append(errorAt.contains(i) ? ["INCR", prefix + "text"] : ["RPUSH", prefix + "list", String(i)])
            }
            let replies = try await connection.pipeline(commands)
            #expect(replies.count == 10_000)
            var length: Int64 = 0
            var mismatches = 0
            for (i, reply) in replies.enumerated() {
                if errorAt.contains(i) {
                    if reply != .error("ERR value is not an integer or out of range") { mismatches += 1 }
                } else {
                    length += 1
                    if reply != .integer(length) { mismatches += 1 }
                }
            }
            #expect(mismatches == 0)
            let after = connection.statistics
            #expect(after.commands - before.commands == 10_000)
            #expect(after.roundTrips - before.roundTrips == 1)
            let stored = try await connection.send("LRANGE", prefix + "list", "0", "-1").array?.compactMap(\.string)
            #expect(stored == (0..<10_000).filter { !errorAt.contains($0) }.map(String.init))
            #expect(try await connection.pipeline([]) == [])
        }
    }

    @Test func concurrentTasksShareOneConnection() async throws {
        try await TestRedis.withPrefix { prefix in
            let connection = try await TestRedis.connection("shared")
            defer { connection.close() }
            let before = connection.statistics
            let failures = await withTaskGroup(of: Int.self) { group in
                for task in 0..<200 {
                    group.addTask {
                        var wrong = 0
                        let key = prefix + "counter:\(task)"
                        for step in 1...100 {
                            do {
                                if step % 2 == 0 {
                                    let token = "task \(task) step \(step)"
                                    if try await connection.send("ECHO", token).string != token { wrong += 1 }
                                } else {
                                    // Odd steps count 1, 2, 3... on this task's own key.
                                    if try await connection.send("INCR", key) != .integer(Int64(step / 2 + 1)) { wrong += 1 }
                                }
                            } catch {
                                wrong += 1
                            }
                        }
                        return wrong
                    }
                }
                return await group.reduce(0, +)
            }
            #expect(failures == 0)
            let stats = connection.statistics
            let commands = stats.commands - before.commands
            let roundTrips = stats.roundTrips - before.roundTrips
            #expect(commands == 20_000)
            #expect(roundTrips * 4 < commands, "\(roundTrips) round trips for \(commands) commands")
            let totals = try await connection.pipeline((0..<200).map { ["GET", prefix + "counter:\($0)"] })
            #expect(totals.allSatisfy { $0.int == 50 })
        }
    }

    @Test func concurrentPipelinesStayContiguous() async throws {
        try await TestRedis.withPrefix { prefix in
            let connection = try await TestRedis.connection("pipelines")
            defer { connection.close() }
            let wrong = await withTaskGroup(of: Int.self) { group in
                for task in 0..<50 {
                    group.addTask {
                        var wrong = 0
                        for round in 0..<10 {
                            // Each call INCRs its own key 20 times: replies must be 20 consecutive numbers.
                            let commands = (0..<20).map { _ in RedisCommand(["INCR", prefix + "p:\(task)"]) }
                            guard let replies = try? await connection.pipeline(commands) else { return 1 }
                            if replies != (1...20).map({ .integer(Int64(round * 20 + $0)) }) { wrong += 1 }
                        }
                        return wrong
                    }
                }
                return await group.reduce(0, +)
            }
            #expect(wrong == 0)
        }
    }

    @Test func blockingReadOnItsOwnConnection() async throws {
        try await TestRedis.withPrefix { prefix in
            let reader = try await TestRedis.connection("reader")
            let writer = try await TestRedis.connection("writer")
            defer { reader.close(); writer.close() }
            let readerID = try #require(try await reader.send("CLIENT", "ID").int)
            let stream = prefix + "stream"
            let start = ContinuousClock.now
            async let read = reader.send("XREAD", "COUNT", "1", "BLOCK", "5000", "STREAMS", stream, "0")
            try await TestRedis.waitUntilBlocked(clientID: readerID, observer: writer)
            // The other connection is not held up by the blocked one.
            #expect(try await writer.send("PING") == .status("PONG"))
            let id = try await writer.send("XADD", stream, "*", "job", "hello").string
            let reply = try await read
            #expect(ContinuousClock.now - start < .seconds(4))
            let entry = reply.array?.first?.array?[1].array?.first?.array
            #expect(entry?[0].string == id)
            #expect(entry?[1] == .array([.bulk(Array("job".utf8)), .bulk(Array("hello".utf8))]))
        }
    }

    @Test func closeFailsWorkInFlight() async throws {
        try await TestRedis.withPrefix { prefix in
            let connection = try await TestRedis.connection("closing")
            let observer = try await TestRedis.connection("observer")
            defer { observer.close() }
            let id = try #require(try await connection.send("CLIENT", "ID").int)
            let start = ContinuousClock.now
            async let blocked = redisError { () async throws(RedisError) in try await connection.send("BLPOP", prefix + "never", "8") }
            try await TestRedis.waitUntilBlocked(clientID: id, observer: observer)
            // Queued behind the blocked command.
            async let queued = redisError { () async throws(RedisError) in try await connection.send("PING") }
            try await Task.sleep(for: .milliseconds(50))
            connection.close()
            #expect(await blocked == .closed)
            #expect(await queued == .closed)
            #expect(ContinuousClock.now - start < .seconds(3))
            #expect(!connection.isConnected)
            connection.close()  // idempotent
            #expect(await redisError { () async throws(RedisError) in try await connection.send("PING") } == .closed)
            #expect(await redisError { () async throws(RedisError) in try await connection.connect() } == .closed)
            // The server saw the socket go away.
            let deadline = ContinuousClock.now + .seconds(3)
            var listed = true
            while listed && ContinuousClock.now < deadline {
                listed = try await observer.send("CLIENT", "LIST", "ID", String(id)).string?.isEmpty == false
                if listed { try await Task.sleep(for: .milliseconds(20)) }
            }
            #expect(!listed)
        }
    }

    @Test func lazyConnectNameAndThread() async throws {
        let configuration = try TestRedis.configuration()
        let connection = RedisConnection(configuration: configuration, name: "thread check\n")
        defer { connection.close() }
        #expect(!connection.isConnected)
        #expect(connection.clientName == "thread-check-")
        #expect(try await connection.send("CLIENT", "GETNAME").string == "thread-check-")
        #expect(connection.isConnected)
        #expect(connection.statistics.reconnects == 0)
        // The connection runs on a thread of its own, named after it (Linux: /proc).
        let tasks = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/task")) ?? []
        let names = tasks.compactMap { try? String(contentsOfFile: "/proc/self/task/\($0)/comm", encoding: .utf8) }
        if !tasks.isEmpty {
            #expect(names.contains { $0.hasPrefix("redis-thread-ch") }, "\(names)")
        }
    }
}
