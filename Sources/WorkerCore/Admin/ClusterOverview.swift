import Foundation
import JSON
import RedisClient

/// One look at the whole cluster, as `ctl top` shows it: every queue (depth, entries taken,
/// active and total slots across daemons, pause), every daemon with a live heartbeat, and the
/// jobs that run now with their progress. Read from Redis by ``read(redis:keys:queues:jobsPerQueue:)``.
package struct ClusterOverview: Sendable {
    /// One queue across every daemon.
    package struct Queue: Sendable, Equatable {
        package var name: String
        /// Entries not yet delivered to any daemon (the group's `lag`); nil when the queue has no group yet.
        package var depth: Int?
        /// Entries delivered and not yet acknowledged.
        package var pending: Int
        /// Jobs running, summed over the daemons' heartbeats.
        package var active = 0
        /// Concurrency, summed over the daemons' heartbeats.
        package var slots = 0
        package var paused: Bool
        /// The group's `entries-read` counter, for ``startsPerMinute``.
        package var entriesRead: Int?
        /// Entries read per minute between two looks (``rates(from:)``).
        package var startsPerMinute: Double?
    }

    /// A daemon that sent a heartbeat (`P:worker:<consumer>`) in the last 30 s.
    package struct Daemon: Sendable, Equatable {
        package var consumer: String
        package var host: String
        package var pid: String
        package var active: String
        package var draining: Bool
        /// Seconds since its last heartbeat.
        package var seenAgo: Double?
    }

    /// A job in state `active`, from its hash.
    package struct Job: Sendable, Equatable {
        package var id: String
        package var queue: String
        package var type: String
        /// The daemon running it.
        package var holder: String
        package var stage: String?
        package var progress: Double?
        package var downloaded: Double?
        package var total: Double?
        package var speed: Double?
        package var eta: Double?
        /// `attempt/maxAttempts`.
        package var attempt: String
        /// Epoch milliseconds.
        package var startedAt: Int64?
    }

    /// When the look was taken.
    package var at = Date()
    /// The configured queues, in configuration order.
    package var queues: [Queue] = []
    /// Live daemons, by consumer name.
    package var daemons: [Daemon] = []
    /// Running jobs, oldest start first.
    package var jobs: [Job] = []

    package init() {}

    /// Start rates from the group's `entries-read` counter between two looks.
    package mutating func rates(from previous: ClusterOverview?) {
        guard let previous else { return }
        let seconds = at.timeIntervalSince(previous.at)
        guard seconds > 0.05 else { return }
        for i in queues.indices {
            guard let now = queues[i].entriesRead,
                let before = previous.queues.first(where: { $0.name == queues[i].name })?.entriesRead
            else { continue }
            queues[i].startsPerMinute = Double(max(now - before, 0)) / seconds * 60
        }
    }

    /// Reads the overview in three pipelined round trips: pause set, heartbeats and queue groups;
    /// heartbeat hashes and pending entries; job hashes. At most `jobsPerQueue` running jobs are
    /// looked up per queue.
    package static func read(
        redis: RedisConnection, keys: RedisKeys, queues: [String], jobsPerQueue: Int = 200
    ) async throws -> ClusterOverview {
        var overview = ClusterOverview()
        var first: [RedisCommand] = [RedisCommand(["SMEMBERS", keys.paused]), RedisCommand(["ZRANGE", keys.workers, "0", "-1"])]
        for q in queues {
            first.append(RedisCommand(["XINFO", "GROUPS", keys.queue(q)]))
            first.append(RedisCommand(["XPENDING", keys.queue(q), RedisKeys.group, "-", "+", String(jobsPerQueue)]))
        }
        let r1 = try await redis.pipeline(first)
        let paused = Set((r1[0].array ?? []).compactMap(\.string))
        let consumers = (r1[1].array ?? []).compactMap(\.string)

        var second: [RedisCommand] = consumers.map { RedisCommand(["HGETALL", keys.worker($0)]) }
        var pendingEntries: [(queue: String, entry: String, holder: String)] = []
        for (i, q) in queues.enumerated() {
            var queue = Queue(name: q, depth: nil, pending: 0, paused: paused.contains(q))
            if let group = JobQueue.workersGroup(in: r1[2 + 2 * i]) {
                queue.depth = group["lag"]?.int.map { Int($0) }
                queue.pending = Int(group["pending"]?.int ?? 0)
                queue.entriesRead = group["entries-read"]?.int.map { Int($0) }
            }
            for item in r1[3 + 2 * i].array ?? [] {
                guard let parts = item.array, parts.count >= 2, let id = parts[0].string, let holder = parts[1].string else { continue }
                pendingEntries.append((q, id, holder))
            }
            overview.queues.append(queue)
        }
        second += pendingEntries.map { RedisCommand(["XRANGE", keys.queue($0.queue), $0.entry, $0.entry]) }
        let r2 = second.isEmpty ? [] : try await redis.pipeline(second)

        let now = Date()
        for (i, consumer) in consumers.enumerated() {
            let h = hash(r2[i])
            guard !h.isEmpty else { continue }  // no heartbeat for 30 s: gone
            let seen = h["seenAt"].flatMap(Timestamp.parse).map { now.timeIntervalSince1970 - Double($0) / 1000 }
            overview.daemons.append(
                Daemon(
                    consumer: consumer, host: h["host"] ?? "?", pid: h["pid"] ?? "?",
                    active: h["active"] ?? "0", draining: h["draining"] == "1", seenAgo: seen))
            for part in (h["queues"] ?? "").split(separator: ",") {
                // name:active/concurrency
                let fields = part.split(separator: ":")
                guard fields.count == 2, let index = overview.queues.firstIndex(where: { $0.name == fields[0] }) else { continue }
                let counts = fields[1].split(separator: "/")
                if counts.count == 2 {
                    overview.queues[index].active += Int(counts[0]) ?? 0
                    overview.queues[index].slots += Int(counts[1]) ?? 0
                }
            }
        }

        var jobIDs: [(id: String, queue: String, holder: String)] = []
        for (k, pending) in pendingEntries.enumerated() {
            guard let first = r2[consumers.count + k].array?.first, let entry = StreamEntry.parse(first) else { continue }
            for (name, value) in entry.fields where name == "job" {
                if let id = JSONValue.parse(bytes: value)?["id"]?.stringValue { jobIDs.append((id, pending.queue, pending.holder)) }
            }
        }
        if !jobIDs.isEmpty {
            let r3 = try await redis.pipeline(jobIDs.map { RedisCommand(["HGETALL", keys.job($0.id)]) })
            for (job, reply) in zip(jobIDs, r3) {
                let h = hash(reply)
                guard h["state"] == "active" else { continue }
                overview.jobs.append(
                    Job(
                        id: job.id, queue: job.queue, type: h["type"] ?? "?", holder: h["worker"] ?? job.holder,
                        stage: h["stage"], progress: h["progress"].flatMap(Double.init),
                        downloaded: h["downloadedBytes"].flatMap(Double.init), total: h["totalBytes"].flatMap(Double.init),
                        speed: h["speed"].flatMap(Double.init), eta: h["eta"].flatMap(Double.init),
                        attempt: "\(h["attempt"] ?? "?")/\(h["maxAttempts"] ?? "?")", startedAt: h["startedAt"].flatMap(Timestamp.parse)))
            }
        }
        overview.jobs.sort { ($0.startedAt ?? 0) < ($1.startedAt ?? 0) }
        overview.daemons.sort { $0.consumer < $1.consumer }
        return overview
    }

    /// An HGETALL reply as a dictionary of its text values.
    static func hash(_ value: RedisValue) -> [String: String] {
        let flat = value.array ?? []
        var out: [String: String] = [:]
        var i = 0
        while i + 1 < flat.count {
            if let key = flat[i].string, let text = flat[i + 1].string { out[key] = text }
            i += 2
        }
        return out
    }
}
