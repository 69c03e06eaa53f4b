import Foundation
import Logging
import PostgresClient
import RedisClient
import Testing
import WorkerConfig

@testable import WorkerCore

/// The queue's hot path against Redis: reads that take only what fits, and finishes that arrive
/// together going to Redis in one script call, each job's part standing alone.
@Suite("Reads and batched finishes against Redis")
struct FinishBatchTests {
    /// A read for no free slot takes nothing. (XREADGROUP's COUNT 0 means no limit: sent, it would
    /// deliver the whole backlog to one daemon at once.)
    @Test func aReadForNoSlotsTakesNothing() async throws {
        let configuration = try TestRedis.configuration(queues: ["default"])
        let keys = RedisKeys(prefix: configuration.redis.prefix)
        let redis = RedisConnection(configuration: try RedisConfiguration(url: configuration.redis.url), name: "read-test")
        defer { redis.close() }
        let queue = JobQueue(redis: redis, keys: keys, consumer: "daemon-a", retentionSeconds: 60)
        do {
            try await queue.ensureGroup(queue: "default")
            _ = try await redis.pipeline(
                (0..<5).map { RedisCommand(["XADD", keys.queue("default"), "*", "job", #"{"id":"r-\#($0)","type":"noop","payload":{}}"#]) })
            for count in [0, -1] {
                #expect(try await queue.read(queue: "default", count: count, blockMilliseconds: 10, on: redis).isEmpty)
            }
            let pending = try await redis.send(RedisCommand(["XPENDING", keys.queue("default"), RedisKeys.group]))
            #expect(pending.array?.first?.int == 0, "nothing delivered")
            #expect(try await queue.read(queue: "default", count: 2, blockMilliseconds: 10, on: redis).count == 2)
        } catch {
            try? await TestRedis.deleteKeys(configuration.redis.prefix, on: redis)
            throw error
        }
        try await TestRedis.deleteKeys(configuration.redis.prefix, on: redis)
    }

    @Test func jobsFinishedTogetherEachGetTheirOwnOutcome() async throws {
        let configuration = try TestRedis.configuration(queues: ["default"])
        let keys = RedisKeys(prefix: configuration.redis.prefix)
        let redis = RedisConnection(configuration: try RedisConfiguration(url: configuration.redis.url), name: "finish-batch-test")
        let reader = RedisConnection(configuration: try RedisConfiguration(url: configuration.redis.url), name: "finish-batch-reader")
        defer { redis.close(); reader.close() }
        let queue = JobQueue(redis: redis, keys: keys, consumer: "daemon-a", retentionSeconds: 60)
        do {
            try await queue.ensureGroup(queue: "default")
            let ids = (0..<40).map { "batch-\($0)" }
            _ = try await redis.pipeline(
                ids.map { RedisCommand(["XADD", keys.queue("default"), "*", "job", #"{"id":"\#($0)","type":"noop","payload":{}}"#]) })
            let entries = try await queue.read(queue: "default", count: 100, blockMilliseconds: 100, on: reader)
            #expect(entries.count == 40)
            let items = entries.enumerated().map { (index, entry) in
                (entry: entry, envelope: JobEnvelope(id: ids[index], type: "noop", payloadJSON: "{}"), queue: "default", maxAttempts: 3)
            }
            let outcomes = try await queue.intake(items)
            #expect(outcomes.allSatisfy { (try? $0.get()) == .run(attempt: 1) })

            // batch-1 was taken over by another daemon meanwhile; batch-2's hash was replaced by a string.
            _ = try await redis.send(RedisCommand(["HSET", keys.job("batch-1"), "worker", "daemon-b"]))
            _ = try await redis.send(RedisCommand(["DEL", keys.job("batch-2")]))
            _ = try await redis.send(RedisCommand(["SET", keys.job("batch-2"), "not a hash"]))

            let held = items.map { item in
                HeldJob(
                    descriptor: JobDescriptor(envelope: item.envelope, queue: "default", events: .standard), envelope: item.envelope,
                    entryID: item.entry.id, attempt: 1, maxAttempts: 3, createdAt: Timestamp.now())
            }
            // All at once, as 40 jobs ending together would: fewer script calls than jobs.
            let commandsBefore = redis.statistics.commands
            let results = await withTaskGroup(of: (Int, Result<Bool, Error>).self) { group in
                for (index, job) in held.enumerated() {
                    group.addTask {
                        let mode: FinishMode = index == 3 ? .failed : (index == 4 ? .retry : .completed)
                        let detail = index == 3 ? "it broke" : (index == 4 ? "try again" : #"{"n":\#(index)}"#)
                        do {
                            let owned = try await queue.finish(
                                job, mode: mode, detail: detail, dueMilliseconds: Timestamp.nowMilliseconds() + 60_000,
                                event: #"{"event":"job:x","jobId":"\#(job.descriptor.id)"}"#)
                            return (index, .success(owned))
                        } catch {
                            return (index, .failure(error))
                        }
                    }
                }
                var all: [Int: Result<Bool, Error>] = [:]
                for await (index, result) in group { all[index] = result }
                return all
            }
            // This connection is the queue's own: every command it sent for the 40 finishes is counted.
            let commands = redis.statistics.commands - commandsBefore
            #expect(commands < 40, "\(commands) commands for 40 finishes")

            #expect((try? results[1]?.get()) == false, "a job owned by another daemon is left to it")
            if case .failure(let error)? = results[2] {
                #expect("\(error)".contains("WRONGTYPE"), "\(error)")
            } else {
                Issue.record("a job whose hash is no hash fails alone")
            }
            for index in [0] + Array(3..<40) { #expect((try? results[index]?.get()) == true, "job \(index)") }

            // batch-2's key is no hash: read the others.
            let readable = ids.enumerated().filter { $0.offset != 2 }.map(\.element)
            let snapshots = try await queue.snapshots(jobIDs: readable, fields: [.state, .result, .error])
            let states = Dictionary(uniqueKeysWithValues: zip(readable, snapshots.map(\.values)))
            #expect(states["batch-0"]?[.state] == "completed" && states["batch-0"]?[.result] == #"{"n":0}"#)
            #expect(states["batch-1"]?[.state] == "active", "untouched")
            #expect(states["batch-3"]?[.state] == "failed" && states["batch-3"]?[.error] == "it broke")
            #expect(states["batch-4"]?[.state] == "scheduled")
            #expect(states["batch-39"]?[.state] == "completed")
            #expect(try await redis.send(RedisCommand(["GET", keys.job("batch-2")])).string == "not a hash")

            // Acknowledged: all but the two that were not finished here.
            let pending = try await redis.send(RedisCommand(["XPENDING", keys.queue("default"), RedisKeys.group]))
            #expect(pending.array?.first?.int == 2)
            // Finished ids kept for the terminal ones (38 but the retried one: 37); the retry is scheduled.
            #expect(try await redis.send(RedisCommand(["ZCARD", keys.finished])).int == 37)
            #expect(try await redis.send(RedisCommand(["ZSCORE", keys.scheduled, "batch-4"])).string != nil)

            // Each finished job's record carries its whole row, as read from the hash and written by the finish.
            let records = try await redis.send(RedisCommand(["XRANGE", keys.records, "-", "+"])).array ?? []
            let rows = RecordBatch(records.compactMap(StreamEntry.parse))
            #expect(rows.malformed.isEmpty)
            let byID = Dictionary(uniqueKeysWithValues: rows.jobs.map { ($0.id, $0) })
            let done = try #require(byID["batch-0"])
            #expect(done.state == "completed" && done.result == #"{"n":0}"# && done.payload == "{}")
            #expect(done.attempt == 1 && done.maxAttempts == 3 && done.worker == "daemon-a")
            #expect(done.startedAt != nil && done.finishedAt != nil && done.createdAt != nil)
            #expect(byID["batch-1"]?.state == "active", "only its intake record")
            #expect(byID["batch-3"]?.state == "failed" && byID["batch-3"]?.error == "it broke")
            #expect(byID["batch-4"]?.state == "scheduled" && byID["batch-4"]?.finishedAt == nil)
        } catch {
            try? await TestRedis.deleteKeys(configuration.redis.prefix, on: redis)
            throw error
        }
        try await TestRedis.deleteKeys(configuration.redis.prefix, on: redis)
    }

    /// An outbox is trimmed, never searched: acknowledging entries drops everything before the oldest
    /// entry not done (pending with any consumer, or not yet delivered), and nothing after it.
    @Test func anOutboxKeepsExactlyWhatIsNotDone() async throws {
        let configuration = try TestRedis.configuration(queues: ["default"])
        let keys = RedisKeys(prefix: configuration.redis.prefix)
        let redis = RedisConnection(configuration: try RedisConfiguration(url: configuration.redis.url), name: "outbox-test")
        defer { redis.close() }
        let a = OutboxStream(key: keys.records, group: RedisKeys.writersGroup, consumer: "writer-a", redis: redis)
        let b = OutboxStream(key: keys.records, group: RedisKeys.writersGroup, consumer: "writer-b", redis: redis)
        func ids() async throws -> [String] {
            try await redis.send(RedisCommand(["XRANGE", keys.records, "-", "+"])).array?.compactMap { $0.array?.first?.string } ?? []
        }
        do {
            try await a.ensureGroup()
            let added = try await redis.pipeline((0..<8).map { RedisCommand(["XADD", keys.records, "*", "k", "job", "n", "\($0)"]) })
                .compactMap(\.string)
            #expect(added.count == 8)
            let first = try await a.read(count: 3, blockMilliseconds: 10, on: redis).map(\.id)  // 0, 1, 2 with a
            let second = try await b.read(count: 3, blockMilliseconds: 10, on: redis).map(\.id)  // 3, 4, 5 with b
            #expect(first == Array(added[0..<3]) && second == Array(added[3..<6]))
            var backlog = try await a.backlog(nowMilliseconds: Timestamp.nowMilliseconds())
            #expect(backlog.count == 8, "six pending and two not delivered")

            // Done out of order: 1 and 2 are done but 0 is not, so nothing goes.
            try await a.done([added[1], added[2]])
            #expect(try await ids() == added)
            // 0 done: 0-2 go; 3 (b's, pending) holds the rest.
            try await a.done([added[0]])
            #expect(try await ids() == Array(added[3...]))
            // b finishes 4 and 5 but not 3: nothing more goes.
            try await b.done([added[4], added[5]])
            #expect(try await ids() == Array(added[3...]))
            backlog = try await a.backlog(nowMilliseconds: Timestamp.nowMilliseconds())
            #expect(backlog.count == 3, "3 pending, 6 and 7 not delivered")
            // 3 done: the stream keeps only what was never delivered.
            try await b.done([added[3]])
            #expect(try await ids() == Array(added[6...]))
            backlog = try await a.backlog(nowMilliseconds: Timestamp.nowMilliseconds())
            #expect(backlog.count == 2)
            let rest = try await a.read(count: 10, blockMilliseconds: 10, on: redis).map(\.id)
            #expect(rest == Array(added[6...]))
            try await a.done(rest)
            #expect(try await ids().isEmpty, "a caught-up outbox is empty")
            backlog = try await a.backlog(nowMilliseconds: Timestamp.nowMilliseconds())
            #expect(backlog.count == 0 && backlog.oldestSeconds == 0)
            // An acknowledgement of an entry already gone changes nothing, and the next entry waits.
            let late = try #require(try await redis.send(RedisCommand(["XADD", keys.records, "*", "k", "job"])).string)
            try await a.done([added[0]])
            #expect(try await ids() == [late])
            // A group someone else added (that reads nothing) does not hold the writers' outbox back.
            _ = try await redis.send(RedisCommand(["XGROUP", "CREATE", keys.records, "someone-else", "0"]))
            let lateRead = try await a.read(count: 10, blockMilliseconds: 10, on: redis).map(\.id)
            #expect(lateRead == [late])
            try await a.done(lateRead)
            #expect(try await ids().isEmpty)
            // The stream deleted under them: acknowledging and the backlog still answer (the writers'
            // next read re-creates the stream and its group).
            _ = try await redis.send(RedisCommand(["DEL", keys.records]))
            try await a.done([late])
            backlog = try await a.backlog(nowMilliseconds: Timestamp.nowMilliseconds())
            #expect(backlog.count == 0)
        } catch {
            try? await TestRedis.deleteKeys(configuration.redis.prefix, on: redis)
            throw error
        }
        try await TestRedis.deleteKeys(configuration.redis.prefix, on: redis)
    }

    /// What Redis' own `cmsgpack.pack` writes for every kind of value a record holds reads back as those
    /// values: long strings, every byte, numbers the scripts compute, and absent values.
    @Test func valuesPackedByRedisReadBack() async throws {
        let configuration = try TestRedis.configuration(queues: ["default"])
        let redis = RedisConnection(configuration: try RedisConfiguration(url: configuration.redis.url), name: "pack-test")
        defer { redis.close() }
        let everyByte = (0...255).map(UInt8.init)
        let long = Array(repeating: UInt8(ascii: "x"), count: 70_000)
        var eval = RedisCommand([
            "EVAL", "return cmsgpack.pack(ARGV[1], ARGV[2], nil, false, tonumber(ARGV[3]) + 1, -7, 2 ^ 40, ARGV[4])", "0",
        ])
        eval.append(bytes: everyByte)
        eval.append(bytes: long)
        eval.append("41")
        eval.append("")
        let packed = try #require(try await redis.send(eval).bytes)
        let values = try PackedValues.decode(packed, count: 8).get()
        #expect(values[0] == everyByte && values[1] == long && values[2] == nil && values[3] == nil)
        #expect(values[4...6].map { $0.map { String(decoding: $0, as: UTF8.self) } } == ["42", "-7", "1099511627776"])
        #expect(values[7] == [])
    }

    /// A job whose handler has returned gives its slot to the next job while its end is recorded, yet
    /// stays running here (known by id, counted until recorded); at most as many jobs of a queue are
    /// being recorded as it has slots, so a slow Redis holds slots again.
    @Test func aJobBeingRecordedGivesItsSlotOnButStaysRunning() async throws {
        let configuration = try TestRedis.configuration(queues: ["default"])
        let keys = RedisKeys(prefix: configuration.redis.prefix)
        let redis = RedisConnection(configuration: try RedisConfiguration(url: configuration.redis.url), name: "pool-test")
        defer { redis.close() }
        let queue = JobQueue(redis: redis, keys: keys, consumer: "daemon-a", retentionSeconds: 60)
        let services = WorkerServices(
            configuration: configuration, queue: queue,
            postgres: PostgresPool(configuration: try PostgresConfiguration(url: configuration.postgres.url), size: 1),
            redis: redis, metrics: Metrics(), logger: Logger(label: "pool-test"), observers: [])
        func job(_ id: String) -> RunningJob {
            let envelope = JobEnvelope(id: id, type: "noop", payloadJSON: "{}")
            let descriptor = JobDescriptor(envelope: envelope, queue: "default", events: .standard)
            let held = HeldJob(descriptor: descriptor, envelope: envelope, entryID: "1-0", attempt: 1, maxAttempts: 1, createdAt: Timestamp.now())
            let context = JobContext(
                job: descriptor, envelope: envelope, attempt: 1, maxAttempts: 1, logger: Logger(label: "pool-test"),
                temporaryRoot: "/tmp", services: services)
            return RunningJob(held: held, timeoutSeconds: 60, context: context)
        }
        let pool = WorkerPool(limits: ["default": 2])
        let gates = (0..<5).map { _ in AsyncStream<Void>.makeStream() }
        let jobs = (0..<5).map { job("pool-\($0)") }
        // Each job's body: hand the slot on (the handler returned), then wait, as if its record were slow.
        func start(_ i: Int) {
            pool.start(jobs[i]) { job in
                pool.handlerReturned(job)
                for await _ in gates[i].stream { break }
            }
        }
        start(0)
        start(1)
        try await waitUntil { pool.freeSlots(queue: "default") == 2 }
        #expect(pool.isRunning(jobID: "pool-0") && pool.isRunning(jobID: "pool-1") && pool.activeTotal == 2)
        #expect(pool.activeCount(queue: "default") == 0, "no handler runs")
        // Two are being recorded, as many as the queue has slots: the next two keep theirs until recorded.
        start(2)
        start(3)
        try await Task.sleep(for: .milliseconds(50))
        #expect(pool.freeSlots(queue: "default") == 0 && pool.activeTotal == 4)
        gates[0].continuation.yield()
        try await waitUntil { !pool.isRunning(jobID: "pool-0") }
        start(4)  // recorded jobs: 1 (and 4 now); 2 and 3 still hold their slots
        try await Task.sleep(for: .milliseconds(50))
        #expect(pool.freeSlots(queue: "default") == 0)
        for gate in gates { gate.continuation.yield() }
        try await waitUntil { pool.activeTotal == 0 }
        #expect(pool.freeSlots(queue: "default") == 2 && pool.activeCount(queue: "default") == 0)
    }

    private func waitUntil(_ condition: () -> Bool) async throws {
        let deadline = ContinuousClock.now + .seconds(5)
        while !condition() {
            guard ContinuousClock.now < deadline else {
                Issue.record("condition not met within 5 s")
                return
            }
            try await Task.sleep(for: .milliseconds(5))
        }
    }
}
