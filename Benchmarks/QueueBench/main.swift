import ArgumentParser
import Foundation
import PostgresClient
import RedisClient

/// Drains no-op jobs through a real daemon and prints jobs per second, Redis round trips per job,
/// and how long the PostgreSQL records take to catch up. Figures, not pass/fail.
@main
struct QueueBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "queue-bench",
        abstract: "Measure how fast one daemon drains no-op jobs (records on).")

    @Option(help: "Redis URL.") var redis = ProcessInfo.processInfo.environment["MEDIANEST_REDIS_URL"] ?? "redis://127.0.0.1:6379/0"
    @Option(help: "PostgreSQL URL.") var database =
        ProcessInfo.processInfo.environment["MEDIANEST_DATABASE_URL"] ?? "postgres://medianest@127.0.0.1:5432/medianest"
    @Option(help: "The daemon binary.") var daemon = ".build/release/medianest-worker"
    @Option(help: "Jobs per run.") var jobs = 100_000
    @Option(help: "Concurrency levels, comma separated.") var concurrency = "1,64"
    @Option(
        help: """
            Jobs added per second while the daemon runs, instead of a backlog added before it starts \
            (0: the backlog). The time from XADD to start is then the daemon's, not the backlog's.
            """)
    var rate = 0

    func run() async throws {
        let redisConnection = RedisConnection(configuration: try RedisConfiguration(url: redis), name: "queue-bench")
        defer { redisConnection.close() }
        let pg = PostgresPool(configuration: try PostgresConfiguration(url: database), size: 1)
        print("queue-bench: \(jobs) no-op jobs per run, daemon \(daemon), \(ProcessInfo.processInfo.activeProcessorCount) cores")
        if rate > 0 { print("paced: \(rate) jobs/s added while the daemon runs") }
        print(
            "concurrency  drained/s  drain s  records s  redis cmds/job  round trips/job  commands seen by redis/job  finish→row p50 ms  p99 ms  XADD→start p50 ms  p99 ms"
        )
        for level in concurrency.split(separator: ",").compactMap({ Int($0.trimmingCharacters(in: .whitespaces)) }) {
            let prefix = "bench\(UInt32.random(in: 0...UInt32.max))"
            // A fresh database per run: figures must not depend on earlier runs' dead rows.
            _ = try await pg.query("CREATE DATABASE \(prefix)")
            let runDatabase = Self.replacingDatabase(in: database, with: prefix)
            let runPG = PostgresPool(configuration: try PostgresConfiguration(url: runDatabase), size: 1)
            let dir = FileManager.default.temporaryDirectory.appendingPathComponent(prefix).path
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            let configPath = dir + "/jobs.yml"
            try """
            redis: { url: "\(redis)", prefix: \(prefix) }
            postgres: { url: "\(runDatabase)" }
            paths: { library: \(dir)/library, temp: \(dir)/tmp }
            control: { socket: \(dir)/control.sock }
            metrics: { listen: "off" }
            shutdown_timeout: 10s
            queues:
              default: { concurrency: \(level) }
            schedules: {}
            logging: { level: info, format: json }
            """.write(toFile: configPath, atomically: true, encoding: .utf8)

            // Fill the queue first, as a backlog the daemon drains (unless paced: then after it is ready).
            let stream = "\(prefix):queue:default"
            let add = { (i: Int) in
                RedisCommand(["XADD", stream, "*", "job", "{\"id\":\"\(prefix)-\(i)\",\"type\":\"noop\",\"payload\":{}}"])
            }
            if rate == 0 {
                var batch: [RedisCommand] = []
                for i in 0..<jobs {
                    batch.append(add(i))
                    if batch.count == 1000 { _ = try await redisConnection.pipeline(batch); batch = [] }
                }
                if !batch.isEmpty { _ = try await redisConnection.pipeline(batch) }
            }
            let commandsBefore = try await commandsProcessed(redisConnection)

            let logPath = dir + "/daemon.log"
            let pid = try spawn(daemon, ["run", "--config", configPath], stdout: logPath)
            let start = try await waitForReady(logPath)
            // A sample of jobs across the run, watched for their completed rows: the finish-to-row delay.
            let sample = stride(from: 0, to: jobs, by: max(jobs / 200, 1)).map { "\(prefix)-\($0)" }
            let watcher = Task { try await Self.watchRows(sample, pg: runPG) }
            if rate > 0 {
                // Every 10 ms, the jobs due by then.
                let began = ContinuousClock.now
                var added = 0
                while added < jobs {
                    let due = min(Int(Double(rate) * ((ContinuousClock.now - began) / .seconds(1))) + 1, jobs)
                    if due > added {
                        _ = try await redisConnection.pipeline((added..<due).map(add))
                        added = due
                    }
                    try await Task.sleep(for: .milliseconds(10))
                }
            }
            // Drained: every entry delivered and acknowledged.
            while true {
                let info = try await redisConnection.send(RedisCommand(["XINFO", "GROUPS", stream]))
                if let group = info.array?.first?.array, lagAndPending(group) == 0 { break }
                try await Task.sleep(for: .milliseconds(2))
            }
            let drained = ContinuousClock.now
            while true {
                let rows = try await runPG.query("SELECT count(*) AS n FROM jobs WHERE state = 'completed'")
                if rows.rows.first?["n"].flatMap({ Int($0) }) == jobs { break }
                try await Task.sleep(for: .milliseconds(20))
            }
            let recorded = ContinuousClock.now
            let seenAt = try await watcher.value
            var delays: [Double] = []
            let finished = try await redisConnection.pipeline(sample.map { RedisCommand(["HGET", "\(prefix):job:\($0)", "finishedAt"]) })
            for (id, reply) in zip(sample, finished) {
                guard let text = reply.string, let finish = Self.milliseconds(text), let seen = seenAt[id] else { continue }
                delays.append(Double(seen - finish))
            }
            delays.sort()
            func percentile(_ p: Double) -> Double { delays.isEmpty ? .nan : delays[min(Int(Double(delays.count) * p), delays.count - 1)] }
            // XADD → start of every job: the entry id's time (`created_at`) to the attempt's start (`started_at`).
            let waits = try await runPG.query(
                """
                SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY d) AS p50, percentile_cont(0.99) WITHIN GROUP (ORDER BY d) AS p99
                FROM (SELECT extract(epoch FROM started_at - created_at) * 1000 AS d FROM jobs) w
                """)
            let wait50 = waits.rows.first?["p50"].flatMap { Double($0) } ?? .nan
            let wait99 = waits.rows.first?["p99"].flatMap { Double($0) } ?? .nan
            let commandsAfter = try await commandsProcessed(redisConnection)
            kill(pid, SIGTERM)
            var status: Int32 = 0
            waitpid(pid, &status, 0)
            let stopped =
                (try? String(contentsOfFile: logPath, encoding: .utf8))?.split(separator: "\n").last(where: { $0.contains("\"stopped\"") })
                ?? ""
            func field(_ name: String) -> Double {
                guard let r = stopped.range(of: "\"\(name)\":\"") else { return .nan }
                return Double(stopped[r.upperBound...].prefix { $0 != "\"" }) ?? .nan
            }
            let drainSeconds = (drained - start) / .seconds(1)
            let recordSeconds = (recorded - start) / .seconds(1)
            let n = Double(jobs)
            print(
                String(
                    format: "%11d  %9.0f  %7.2f  %9.2f  %14.2f  %15.3f  %26.2f  %17.0f  %6.0f  %17.1f  %6.1f", level, n / drainSeconds,
                    drainSeconds, recordSeconds,
                    field("redisCommands") / n, field("redisRoundTrips") / n, Double(commandsAfter - commandsBefore) / n,
                    percentile(0.5), percentile(0.99), wait50, wait99))
            _ = try await redisConnection.send(RedisCommand(["DEL", stream, "\(prefix):events:log"]))
            await runPG.close()
            _ = try await pg.query("DROP DATABASE \(prefix)")
            var cursor = "0"
            repeat {
                let scan = try await redisConnection.send(RedisCommand(["SCAN", cursor, "MATCH", "\(prefix):*", "COUNT", "10000"]))
                cursor = scan.array?[0].string ?? "0"
                let keys = scan.array?[1].array?.compactMap(\.string) ?? []
                if !keys.isEmpty { _ = try await redisConnection.send(RedisCommand(["UNLINK"] + keys)) }
            } while cursor != "0"
        }
        await pg.close()
    }

    /// Polls PostgreSQL for the sampled jobs' completed rows; returns when each was first seen (epoch ms).
    static func watchRows(_ ids: [String], pg: PostgresPool) async throws -> [String: Int64] {
        var seen: [String: Int64] = [:]
        var waiting = ids
        while !waiting.isEmpty {
            // The first 8 waiting ids alone (the sample is in the order the jobs run), one primary-key
            // look-up each (the lateral join): all 200 a poll, or a filter `id = ANY(…)`, cost PostgreSQL
            // most of a core at this polling rate and slowed the run being measured.
            let head = Array(waiting.prefix(8))
            let rows = try await pg.query(
                """
                SELECT j.id FROM unnest($1::text[]) AS w(id)
                CROSS JOIN LATERAL (SELECT id FROM jobs WHERE jobs.id = w.id AND state = 'completed') j
                """,
                [PostgresBind(array: head.map { Optional($0) })])
            let now = Int64(Date().timeIntervalSince1970 * 1000)
            for row in rows.rows { if let id = row["id"] { seen[id] = now } }
            waiting.removeAll { seen[$0] != nil }
            try await Task.sleep(for: .milliseconds(10))
        }
        return seen
    }

    /// Epoch milliseconds of an RFC 3339 UTC time with milliseconds (`2026-12-02T07:00:00.123Z`).
    static func milliseconds(_ text: String) -> Int64? {
        let f = ISO8601DateFormatter()
        f.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return f.date(from: text).map { Int64(($0.timeIntervalSince1970 * 1000).rounded()) }
    }

    /// The URL with its database name replaced.
    static func replacingDatabase(in url: String, with name: String) -> String {
        let (base, query) = url.firstIndex(of: "?").map { (String(url[..<$0]), String(url[$0...])) } ?? (url, "")
        guard let slash = base.lastIndex(of: "/"), base[..<slash].hasSuffix(":") == false else { return base + "/" + name + query }
        return String(base[...slash]) + name + query
    }

    func lagAndPending(_ group: [RedisValue]) -> Int {
        var total = 0
        var i = 0
        while i + 1 < group.count {
            if group[i].string == "lag" || group[i].string == "pending" { total += Int(group[i + 1].int ?? 1) }
            i += 2
        }
        return total
    }

    func commandsProcessed(_ c: RedisConnection) async throws -> Int {
        let info = try await c.send(RedisCommand(["INFO", "stats"])).string ?? ""
        for line in info.split(whereSeparator: \.isNewline) where line.hasPrefix("total_commands_processed:") {
            return Int(line.split(separator: ":")[1]) ?? 0
        }
        return 0
    }

    func waitForReady(_ path: String) async throws -> ContinuousClock.Instant {
        for _ in 0..<3000 {
            if let text = try? String(contentsOfFile: path, encoding: .utf8), text.contains("\"msg\":\"ready\"") { return .now }
            try await Task.sleep(for: .milliseconds(2))
        }
        throw ValidationError("the daemon did not become ready; see \(path)")
    }

    /// Starts the daemon with an empty signal mask (a child inherits its spawning thread's mask) and stdout to a file.
    func spawn(_ path: String, _ args: [String], stdout: String) throws -> pid_t {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 1, stdout, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var mask = sigset_t()
        sigemptyset(&mask)
        posix_spawnattr_setsigmask(&attributes, &mask)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK))
        var pid: pid_t = 0
        let argv = ([path] + args).map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        // The daemon's configuration names the run's database: drop the URL overrides from its environment.
        let environment =
            ProcessInfo.processInfo.environment
            .filter { $0.key != "MEDIANEST_REDIS_URL" && $0.key != "MEDIANEST_DATABASE_URL" && $0.key != "MEDIANEST_CONFIG" }
            .map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer { environment.forEach { free($0) } }
        let rc = posix_spawn(&pid, path, &actions, &attributes, argv, environment)
        guard rc == 0 else { throw ValidationError("cannot start \(path): \(String(cString: strerror(rc)))") }
        return pid
    }
}
