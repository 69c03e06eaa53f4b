import JSON
import RedisClient

/// A stream entry as read from a queue: its id and field/value pairs.
package struct StreamEntry: Sendable {
    package var id: String
    package var fields: [(String, [UInt8])]

    package init(id: String, fields: [(String, [UInt8])]) {
        self.id = id
        self.fields = fields
    }

    /// Parses one `[id, [field, value, ...]]` element of an XREADGROUP/XAUTOCLAIM reply.
    /// A deleted entry (nil fields) comes back with no fields.
    static func parse(_ value: RedisValue) -> StreamEntry? {
        guard let parts = value.array, parts.count == 2, let id = parts[0].string else { return nil }
        var fields: [(String, [UInt8])] = []
        if let flat = parts[1].array {
            var i = 0
            while i + 1 < flat.count {
                fields.append((flat[i].string ?? "", flat[i + 1].bytes ?? []))
                i += 2
            }
        }
        return StreamEntry(id: id, fields: fields)
    }

    /// The epoch milliseconds in the entry id: when the API added it.
    package var addedAtMilliseconds: Int64? {
        Self.idParts(id).milliseconds
    }

    /// The two numbers of a stream entry id `<ms>-<seq>`, read from its bytes: the milliseconds (nil
    /// unless the part before `-` is all digits) and the sequence (0 when absent or not all digits).
    static func idParts(_ id: String) -> (milliseconds: Int64?, sequence: Int64) {
        var ms: Int64 = 0
        var seq: Int64 = 0
        var digits = 0
        var inSequence = false
        for byte in id.utf8 {
            if byte == UInt8(ascii: "-") && !inSequence {
                inSequence = true
                continue
            }
            guard byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9") else { return (inSequence ? ms : nil, 0) }
            let d = Int64(byte - UInt8(ascii: "0"))
            if inSequence {
                let (m, o1) = seq.multipliedReportingOverflow(by: 10)
                let (a, o2) = m.addingReportingOverflow(d)
                if o1 || o2 { return (ms, 0) }
                seq = a
            } else {
                let (m, o1) = ms.multipliedReportingOverflow(by: 10)
                let (a, o2) = m.addingReportingOverflow(d)
                if o1 || o2 { return (nil, 0) }
                ms = a
                digits += 1
            }
        }
        return (digits > 0 ? ms : nil, seq)
    }
}

/// A job this daemon holds: the entry it came in and the attempt it is on.
package struct HeldJob: Sendable {
    package var descriptor: JobDescriptor
    package var envelope: JobEnvelope
    package var entryID: String
    package var attempt: Int
    package var maxAttempts: Int
    package var createdAt: String
}

/// What intake decided for one entry.
package enum IntakeOutcome: Sendable, Equatable {
    case run(attempt: Int)
    /// The job had already finished (`state`; `finished` when only its id is remembered in `P:finished`).
    case alreadyFinished(state: String)
    /// Another entry holds this job id; this one was dropped.
    case duplicate
    /// Waiting for runAt.
    case scheduled
    /// Cancelled before it started.
    case cancelled
    /// Its previous holder stopped mid-attempt and no attempts were left.
    case exhausted
}

/// How an attempt ended.
package enum FinishMode: String, Sendable {
    case completed, failed, retry, cancelled, requeue
    /// Like retry, but the attempt is given back (waiting for a service, not the job's fault).
    case deferred
}

/// What a cancel request found.
package struct CancelResult: Sendable, Equatable {
    package enum Outcome: String, Sendable {
        /// It was queued, scheduled or not yet seen: it is cancelled now.
        case cancelled
        /// It is running: its holder stops it.
        case active
        /// It had ended already: nothing to do.
        case finished
    }
    package var outcome: Outcome
    package var previousState: String
    package var job: JobDescriptor?
    package var envelope: String?
}

/// The queue's Redis side: reading, intake, finishing, hand-backs, scheduling, cancel, pause and rate limits.
/// All of it goes through one auto-pipelining connection, except blocking reads, which use their own.
package final class JobQueue: Sendable {
    package let keys: RedisKeys
    package let consumer: String
    let redis: RedisConnection
    let scripts: ScriptRunner
    let finisher: FinishBatcher
    /// Seconds a finished job's hash is kept (`retention.state`).
    let retentionSeconds: Int
    /// Approximate length kept in `P:events:log` (contract: 100000).
    static let eventsLogMaxLength = "100000"
    static let exhaustedError = "the daemon running this job stopped before it finished, and no attempts are left"

    /// The event vocabulary of a job type (from the registry).
    let vocabulary: @Sendable (String) -> EventVocabulary

    package init(
        redis: RedisConnection, keys: RedisKeys, consumer: String, retentionSeconds: Int,
        vocabulary: @escaping @Sendable (String) -> EventVocabulary = { _ in .standard }
    ) {
        self.vocabulary = vocabulary
        self.redis = redis
        self.keys = keys
        self.consumer = consumer
        self.scripts = ScriptRunner(redis: redis)
        self.retentionSeconds = max(retentionSeconds, 1)
        self.finisher = FinishBatcher(
            scripts: scripts, keys: keys, consumer: consumer, retentionSeconds: self.retentionSeconds)
    }

    /// Creates the consumer group for a queue (at id 0, with MKSTREAM) unless it exists.
    package func ensureGroup(queue: String) async throws {
        do {
            _ = try await redis.send(RedisCommand(["XGROUP", "CREATE", keys.queue(queue), RedisKeys.group, "0", "MKSTREAM"]))
        } catch RedisError.server(let message) where message.hasPrefix("BUSYGROUP") {
            return
        }
    }

    /// Reads up to `count` new entries of a queue for this consumer, blocking up to `blockMilliseconds`.
    /// `connection` must be a connection of the caller's own (the read blocks it). A `count` below 1 reads
    /// nothing (Redis would read `COUNT 0` as no limit at all).
    package func read(queue: String, count: Int, blockMilliseconds: Int, on connection: RedisConnection) async throws -> [StreamEntry] {
        guard count >= 1 else { return [] }
        let reply = try await connection.send(
            RedisCommand([
                "XREADGROUP", "GROUP", RedisKeys.group, consumer, "COUNT", String(count),
                "BLOCK", String(blockMilliseconds), "STREAMS", keys.queue(queue), ">",
            ]))
        guard let streams = reply.array else { return [] }
        var entries: [StreamEntry] = []
        for stream in streams {
            guard let pair = stream.array, pair.count == 2, let items = pair[1].array else { continue }
            for item in items { if let e = StreamEntry.parse(item) { entries.append(e) } }
        }
        return entries
    }

    /// Puts entries pending longer than `idleMilliseconds` (their holder died or stopped renewing) back at
    /// the end of the queue's stream, except those in `runningHere`. Returns how many entries were
    /// looked at and how many were put back.
    package func rescue(
        queue: String, idleMilliseconds: Int, count: Int, runningHere: [String]
    ) async throws -> (examined: Int, rescued: Int) {
        let reply = try await scripts.run(
            Scripts.rescue, keys: [keys.queue(queue)],
            args: [RedisKeys.group, consumer, String(idleMilliseconds), String(count), keys.job("")] + runningHere)
        let parts = reply.array ?? []
        return (Int(parts.first?.int ?? 0), Int(parts.count > 1 ? parts[1].int ?? 0 : 0))
    }

    /// Renews the lease of entries this consumer holds (resets their idle time).
    package func renew(queue: String, entryIDs: [String]) async throws {
        guard !entryIDs.isEmpty else { return }
        var cmd = RedisCommand(["XCLAIM", keys.queue(queue), RedisKeys.group, consumer, "0"])
        for id in entryIDs { cmd.append(id) }
        cmd.append("JUSTID")
        _ = try await redis.send(cmd)
    }

    /// Puts entries that were read but not started back at the end of their queue (drain, pause, shutdown).
    package func handBack(queue: String, entries: [StreamEntry]) async throws {
        guard !entries.isEmpty else { return }
        var commands: [RedisCommand] = [["MULTI"]]
        for entry in entries {
            var add = RedisCommand(["XADD", keys.queue(queue), "*"])
            for (name, value) in entry.fields {
                add.append(name)
                add.append(bytes: value)
            }
            if !entry.fields.isEmpty { commands.append(add) }
            commands.append(RedisCommand(["XACK", keys.queue(queue), RedisKeys.group, entry.id]))
        }
        commands.append(["EXEC"])
        let replies = try await redis.pipeline(commands)
        if case .error(let message)? = replies.last { throw RedisError.server(message) }
    }

    /// Acknowledges entries without any other change.
    package func acknowledge(queue: String, entryIDs: [String]) async throws {
        guard !entryIDs.isEmpty else { return }
        var cmd = RedisCommand(["XACK", keys.queue(queue), RedisKeys.group])
        for id in entryIDs { cmd.append(id) }
        _ = try await redis.send(cmd)
    }

    /// Takes valid entries of one queue into job state: one script call for the whole batch.
    /// Returns one outcome per item. A script error fails every item (the entries stay pending and
    /// are taken over after their lease).
    package func intake(
        _ items: [(entry: StreamEntry, envelope: JobEnvelope, queue: String, maxAttempts: Int)]
    ) async throws -> [Result<IntakeOutcome, RedisError>] {
        guard let queueName = items.first?.queue else { return [] }
        precondition(items.allSatisfy { $0.queue == queueName }, "one intake call takes entries of one queue")
        let nowMs = Timestamp.nowMilliseconds()
        let now = Timestamp.format(milliseconds: nowMs)
        var keyList = [keys.queue(queueName), keys.scheduled, keys.eventsLog, keys.records, keys.outcomes, keys.finished]
        var args = [
            consumer, now, String(nowMs), queueName, RedisKeys.group, keys.events, keys.user(""),
            String(retentionSeconds), Self.exhaustedError, Self.eventsLogMaxLength,
        ]
        keyList.reserveCapacity(6 + items.count)
        args.reserveCapacity(10 + items.count * 9)
        for item in items {
            let job = JobDescriptor(envelope: item.envelope, queue: item.queue, events: vocabulary(item.envelope.type))
            keyList.append(keys.job(job.id))
            args += [
                item.entry.id, job.type, job.userId ?? "", String(item.maxAttempts), item.envelope.raw,
                item.entry.addedAtMilliseconds.map(Timestamp.format(milliseconds:)) ?? now,
                item.envelope.runAt.map { String($0) } ?? "", job.id, EventFactory.make(.started, job: job, at: now),
            ]
        }
        let reply = try await scripts.runMany(Scripts.intake, calls: [(keyList, args)])[0]
        if case .error(let message) = reply {
            return Array(repeating: .failure(.server(message)), count: items.count)
        }
        guard let flat = reply.array, flat.count == items.count * 3 else {
            return Array(repeating: .failure(.protocolError("intake answered \(reply)")), count: items.count)
        }
        var results: [Result<IntakeOutcome, RedisError>] = []
        results.reserveCapacity(items.count)
        for (index, item) in items.enumerated() {
            let outcome = flat[index * 3].string ?? ""
            let attempt = Int(flat[index * 3 + 1].int ?? 0)
            // The rare outcomes' events are built only when they happen.
            if outcome == "cancelled" || outcome == "exhausted" {
                let job = JobDescriptor(envelope: item.envelope, queue: item.queue, events: vocabulary(item.envelope.type))
                let event =
                    outcome == "cancelled"
                    ? EventFactory.make(.cancelled, job: job, at: now)
                    : EventFactory.make(.failed, job: job, at: now, fields: [("error", .string(Self.exhaustedError))])
                try? await publish(event, userId: job.userId)
            }
            switch outcome {
            case "run": results.append(.success(.run(attempt: attempt)))
            case "skip": results.append(.success(.alreadyFinished(state: flat[index * 3 + 2].string ?? "")))
            case "duplicate": results.append(.success(.duplicate))
            case "scheduled": results.append(.success(.scheduled))
            case "cancelled": results.append(.success(.cancelled))
            case "exhausted": results.append(.success(.exhausted))
            default: results.append(.failure(.protocolError("intake answered \(outcome)")))
            }
        }
        return results
    }

    /// Ends an attempt. `detail` is the result JSON (completed) or the error sentence (failed, retry).
    /// Finishes that come together go in one script call (`FinishBatcher`). The same script writes the job's record into the outbox and, when `observe` is set, the outcome
    /// for the observers (with `failureDetail`).
    /// Returns false when this daemon no longer owns the job (its lease lapsed and another host took it).
    package func finish(
        _ job: HeldJob, mode: FinishMode, detail: String = "", dueMilliseconds: Int64 = 0, event: String,
        observe: JobOutcome? = nil, failureDetail: String? = nil
    ) async throws -> Bool {
        let reply = try await finisher.finish(
            hash: keys.job(job.descriptor.id), stream: keys.queue(job.descriptor.queue),
            arguments: [
                job.entryID, mode.rawValue, detail, String(dueMilliseconds), job.descriptor.id, event,
                job.descriptor.userId.map(keys.user) ?? "", observe?.rawValue ?? "", failureDetail ?? "",
            ])
        return reply.int == 1
    }

    /// Records a refused entry: acknowledges it and, when it carried an id not used by another job,
    /// writes a `failed` hash with the reason and publishes the failure. Returns false when the id
    /// belongs to an existing job (which is left untouched).
    @discardableResult
    package func reject(_ rejection: EnvelopeRejection, entry: StreamEntry, queue: String) async throws -> Bool {
        // Entries without a usable id are recorded under one made from the queue and the stream entry id.
        let id = rejection.id ?? "invalid:\(queue):\(entry.id)"
        let nowMs = Timestamp.nowMilliseconds()
        let now = Timestamp.format(milliseconds: nowMs)
        let job = JobDescriptor(
            id: id, type: rejection.type ?? "", queue: queue, userId: rejection.userId,
            events: vocabulary(rejection.type ?? ""))
        let event = EventFactory.make(.failed, job: job, at: now, fields: [("error", .string(rejection.reason))])
        let reply = try await scripts.run(
            Scripts.reject,
            keys: [keys.job(id), keys.queue(queue), keys.eventsLog, keys.records, keys.outcomes, keys.finished],
            args: [
                entry.id, RedisKeys.group, now, rejection.reason, rejection.type ?? "", queue,
                rejection.userId ?? "", String(retentionSeconds), event, keys.events,
                rejection.userId.map(keys.user) ?? "", Self.eventsLogMaxLength,
                id, rejection.id == nil ? "" : "1", rejection.raw, String(nowMs),
            ])
        return reply.int == 1
    }

    /// Moves due scheduled jobs back into their queues. Returns how many moved.
    package func promoteDue(limit: Int = 500) async throws -> Int {
        let now = Timestamp.nowMilliseconds()
        let reply = try await scripts.run(
            Scripts.promote, keys: [keys.scheduled, keys.records],
            args: [String(now), String(limit), keys.prefix, Timestamp.format(milliseconds: now)])
        return Int(reply.int ?? 0)
    }

    /// The earliest due time in the scheduled set (epoch ms), if any.
    package func nextDue() async throws -> Int64? {
        let reply = try await redis.send(RedisCommand(["ZRANGE", keys.scheduled, "0", "0", "WITHSCORES"]))
        guard let parts = reply.array, parts.count == 2 else { return nil }
        return parts[1].double.map { Int64($0) }
    }

    /// Cancels a job wherever it is. Publishes the cancelled event when this call did the cancelling.
    package func cancel(jobID: String) async throws -> CancelResult {
        let nowMs = Timestamp.nowMilliseconds()
        let now = Timestamp.format(milliseconds: nowMs)
        let reply = try await scripts.run(
            Scripts.cancel, keys: [keys.job(jobID), keys.scheduled, keys.records, keys.outcomes, keys.finished],
            args: [jobID, now, String(retentionSeconds), String(nowMs)])
        guard let parts = reply.array, parts.count >= 6 else { throw RedisError.protocolError("cancel answered \(reply)") }
        let outcome = parts[0].string ?? ""
        let type = parts[2].string ?? ""
        let queue = parts[3].string ?? ""
        let user = parts[4].string.flatMap { $0.isEmpty ? nil : $0 }
        let envelopeText = parts[5].string.flatMap { $0.isEmpty ? nil : $0 }
        var descriptor: JobDescriptor?
        if !type.isEmpty {
            let events = vocabulary(type)
            var d = JobDescriptor(id: jobID, type: type, queue: queue, userId: user, events: events)
            if let field = events.correlationField, let text = envelopeText {
                d.correlation = JSONValue.parse(text)?["payload"]?[field]?.stringValue
            }
            descriptor = d
        }
        if outcome == "cancelled" {
            let job = descriptor ?? JobDescriptor(id: jobID, type: "", queue: "")
            try await publish(EventFactory.make(.cancelled, job: job, at: now), userId: job.userId)
        }
        guard let cancelOutcome = CancelResult.Outcome(rawValue: outcome) else {
            throw RedisError.protocolError("cancel answered \(outcome)")
        }
        return CancelResult(outcome: cancelOutcome, previousState: parts[1].string ?? "", job: descriptor, envelope: envelopeText)
    }

    /// Some fields of several jobs' hashes, in one round trip; a job without a hash gives an empty snapshot.
    package func snapshots(jobIDs: [String], fields: [JobHash.Field]) async throws -> [JobHash.Snapshot] {
        guard !jobIDs.isEmpty else { return [] }
        let names = fields.map(\.rawValue)
        let replies = try await redis.pipeline(jobIDs.map { RedisCommand(["HMGET", keys.job($0)] + names) })
        return try replies.map { reply in
            if case .error(let message) = reply { throw RedisError.server(message) }
            var values: [JobHash.Field: String] = [:]
            for (field, value) in zip(fields, reply.array ?? []) { if let text = value.string { values[field] = text } }
            return JobHash.Snapshot(values: values)
        }
    }

    /// What a job's hash says of where it belongs.
    package struct JobSummary: Sendable, Equatable {
        package var queue: String
        package var type: String
        package var userId: String?
        package var state: JobState?
    }

    /// The queue, type, user and state of a job, from its hash; nil when it has no hash (never seen, or expired).
    package func summary(jobID: String) async throws -> JobSummary? {
        let values = try await redis.send(RedisCommand(["HMGET", keys.job(jobID)] + JobHash.summaryFields)).array ?? []
        guard values.count == 4, let queue = values[0].string else { return nil }
        return JobSummary(
            queue: queue, type: values[1].string ?? "", userId: values[2].string.flatMap { $0.isEmpty ? nil : $0 },
            state: values[3].string.flatMap(JobState.init(rawValue:)))
    }

    /// Runs a failed or cancelled job again (a new entry, attempts from zero). `envelope` and `createdAt` are
    /// given when the hash is gone. Returns nil when queued, else the state that refused it.
    package func runAgain(jobID: String, summary: JobSummary, envelope: String, createdAt: String) async throws -> String? {
        let reply = try await scripts.run(
            Scripts.retry,
            keys: [keys.job(jobID), keys.queue(summary.queue), keys.records, keys.finished],
            args: [envelope, Timestamp.now(), summary.queue, summary.type, summary.userId ?? "", jobID, createdAt])
        let parts = reply.array ?? []
        if parts.first?.string == "queued" { return nil }
        return parts.count > 1 ? parts[1].string : "unknown"
    }

    /// Publishes an event the three ways the contract names.
    package func publish(_ event: String, userId: String?) async throws {
        var commands: [RedisCommand] = [RedisCommand(["PUBLISH", keys.events, event])]
        if let userId { commands.append(RedisCommand(["PUBLISH", keys.user(userId), event])) }
        commands.append(RedisCommand(["XADD", keys.eventsLog, "MAXLEN", "~", Self.eventsLogMaxLength, "*", "event", event]))
        _ = try await redis.pipeline(commands)
    }

    /// Writes progress fields to the hash and publishes the progress event, in one round trip.
    package func reportProgress(_ job: JobDescriptor, fields: [(String, String)], removed: [String], event: String?) async throws {
        var hset = RedisCommand(["HSET", keys.job(job.id)])
        for (k, v) in fields { hset.append(k); hset.append(v) }
        var commands: [RedisCommand] = [hset]
        if !removed.isEmpty { commands.append(RedisCommand(["HDEL", keys.job(job.id)] + removed)) }
        if let event {
            commands.append(RedisCommand(["PUBLISH", keys.events, event]))
            if let user = job.userId { commands.append(RedisCommand(["PUBLISH", keys.user(user), event])) }
            commands.append(RedisCommand(["XADD", keys.eventsLog, "MAXLEN", "~", Self.eventsLogMaxLength, "*", "event", event]))
        }
        _ = try await redis.pipeline(commands)
    }

    /// Takes one start from a queue's shared rate limit. Returns 0 when granted, else milliseconds to wait.
    package func takeStart(queue: String, max: Int, perSeconds: Double, token: String) async throws -> Int {
        let reply = try await scripts.run(
            Scripts.rateLimit, keys: [keys.rateLimit(queue)],
            args: [String(Timestamp.nowMilliseconds()), String(Int(perSeconds * 1000)), String(max), token])
        return Int(reply.int ?? 0)
    }

    /// Gives back a start that was not used (nothing was read).
    package func returnStart(queue: String, token: String) async throws {
        _ = try await redis.send(RedisCommand(["ZREM", keys.rateLimit(queue), token]))
    }

    /// Folds a pause/resume command into the persisted pause set. Returns true when applied now.
    package func applyPause(queue: String, paused: Bool, controlEntryID: String) async throws -> Bool {
        let reply = try await scripts.run(
            Scripts.applyPause, keys: [keys.paused, keys.controlApplied],
            args: [queue, paused ? "pause" : "resume", controlEntryID])
        return reply.int == 1
    }

    /// The persisted set of paused queues.
    package func pausedQueues() async throws -> Set<String> {
        let reply = try await redis.send(RedisCommand(["SMEMBERS", keys.paused]))
        return Set((reply.array ?? []).compactMap(\.string))
    }

    /// Adds a command to `P:control` (what the control socket and `ctl` do to reach every daemon).
    package func sendControl(_ fields: [(String, String)]) async throws -> String {
        var cmd = RedisCommand(["XADD", keys.control, "MAXLEN", "~", "10000", "*"])
        for (k, v) in fields { cmd.append(k); cmd.append(v) }
        return try await redis.send(cmd).string ?? ""
    }

    /// Number of entries in a queue not yet delivered to any consumer (XINFO GROUPS `lag`, Redis 7).
    package func depth(queue: String) async throws -> Int {
        let reply = try await redis.send(RedisCommand(["XINFO", "GROUPS", keys.queue(queue)]))
        return Int(Self.workersGroup(in: reply)?["lag"]?.int ?? 0)
    }

    /// The `workers` group's fields from an XINFO GROUPS reply.
    static func workersGroup(in reply: RedisValue) -> [String: RedisValue]? {
        for group in reply.array ?? [] {
            let flat = group.array ?? []
            var fields: [String: RedisValue] = [:]
            var i = 0
            while i + 1 < flat.count { fields[flat[i].string ?? ""] = flat[i + 1]; i += 2 }
            if fields["name"]?.string == RedisKeys.group { return fields }
        }
        return nil
    }

    /// Deletes acknowledged entries from the head of a queue stream: everything older than both the
    /// oldest pending entry and the group's last delivered id.
    package func trim(queue: String) async throws {
        let stream = keys.queue(queue)
        let replies = try await redis.pipeline([
            RedisCommand(["XINFO", "GROUPS", stream]),
            RedisCommand(["XPENDING", stream, RedisKeys.group]),
        ])
        guard var minID = Self.workersGroup(in: replies[0])?["last-delivered-id"]?.string, minID != "0-0" else { return }
        if let pending = replies[1].array, pending.count >= 2, let oldest = pending[1].string, Self.compare(oldest, minID) < 0 {
            minID = oldest
        }
        _ = try await redis.send(RedisCommand(["XTRIM", stream, "MINID", "~", minID]))
    }

    /// Orders two stream ids.
    static func compare(_ a: String, _ b: String) -> Int {
        func parts(_ s: String) -> (Int64, Int64) {
            let p = s.split(separator: "-")
            return (Int64(p.first ?? "0") ?? 0, Int64(p.count > 1 ? p[1] : "0") ?? 0)
        }
        let (am, asq) = parts(a)
        let (bm, bsq) = parts(b)
        if am != bm { return am < bm ? -1 : 1 }
        if asq != bsq { return asq < bsq ? -1 : 1 }
        return 0
    }
}
