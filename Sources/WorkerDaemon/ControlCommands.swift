import Foundation
import JSON
import Logging
import RedisClient
import WorkerCore

/// The requests of the control socket (contract section 8) and their answers:
/// `status`, `pause`/`resume` (every daemon, through `P:control`), `drain`/`undrain` (this daemon),
/// `cancel`, `retry`, `jobs` (active jobs here, with progress), `reload` (re-read jobs.yml) and
/// `sub` (subscriptions: `action` list, add, remove, check, protect).
///
/// Every answer is one JSON object: `{"ok":true,"cmd":…,…}` or `{"ok":false,"error":"…"}`; a request's
/// `id` member, when it has one, is echoed back. Actions (everything but `status` and `jobs`) are
/// written to the audit trail with the peer that asked.
package final class ControlCommands: Sendable {
    /// The commands, as named in errors and `ctl --help`.
    package static let commands = ["status", "pause", "resume", "drain", "undrain", "cancel", "retry", "jobs", "reload", "sub"]
    /// Longest a request may take before it is answered with a timeout.
    static let requestTimeout: Duration = .seconds(10)

    let worker: Worker
    let reloadConfiguration: @Sendable () async -> String?
    let startedAt = Date()

    /// `reload` re-reads jobs.yml and returns nil when applied, else why it was refused.
    package init(worker: Worker, reload: @escaping @Sendable () async -> String?) {
        self.worker = worker
        self.reloadConfiguration = reload
    }

    /// Answers one request line.
    package func handle(_ line: [UInt8], peer: ControlPeer) async -> String {
        guard let request = JSONValue.parse(bytes: line) else {
            return Self.failure(nil, "the request is not valid JSON; send one JSON object per line, e.g. {\"cmd\":\"status\"}")
        }
        guard case .object = request else {
            return Self.failure(nil, "the request is \(request.kind), not a JSON object such as {\"cmd\":\"status\"}")
        }
        let echo = request["id"]
        guard let cmd = request["cmd"]?.stringValue else {
            return Self.failure(echo, "the request has no \"cmd\" string; one of \(Self.commands.joined(separator: ", "))")
        }
        guard Self.commands.contains(cmd) else {
            return Self.failure(
                echo, "unknown cmd \(JSONText.quote(String(cmd.prefix(64)))); one of \(Self.commands.joined(separator: ", "))")
        }
        let answer: Answer = await withTaskGroup(of: Answer?.self) { group in
            group.addTask { await self.run(cmd, request, peer: peer) }
            group.addTask {
                try? await Task.sleep(for: Self.requestTimeout)
                return nil
            }
            let first = await group.next() ?? nil
            group.cancelAll()
            return first ?? .failure("\(cmd) did not finish within 10 s (is Redis reachable?); check the daemon's log")
        }
        switch answer {
        case .success(let fields):
            var pairs: [(String, JSONValue)] = [("ok", .bool(true)), ("cmd", .string(cmd))]
            if let echo { pairs.append(("id", echo)) }
            return JSONValue.object(pairs + fields).encoded
        case .failure(let message):
            return Self.failure(echo, message, cmd: cmd)
        }
    }

    private struct RedisPart: Sendable {
        var depths: [String: Int]
        var overview: (leader: String?, schedules: [ScheduleOverview])
        var bullmq: [BullMQOverview]
    }

    enum Answer: Sendable {
        case success([(String, JSONValue)])
        case failure(String)
    }

    static func failure(_ echo: JSONValue?, _ message: String, cmd: String? = nil) -> String {
        var pairs: [(String, JSONValue)] = [("ok", .bool(false))]
        if let cmd { pairs.append(("cmd", .string(cmd))) }
        if let echo { pairs.append(("id", echo)) }
        pairs.append(("error", .string(message)))
        return JSONValue.object(pairs).encoded
    }

    private func run(_ cmd: String, _ request: JSONValue, peer: ControlPeer) async -> Answer {
        do {
            switch cmd {
            case "status": return .success(try await status())
            case "jobs": return .success(try await jobs())
            case "pause", "resume":
                return await audited(cmd, peer: peer, target: request["queue"]?.stringValue) { entry in
                    try await self.pause(request, paused: cmd == "pause", peer: peer, entry: &entry)
                }
            case "drain", "undrain":
                return await audited(cmd, peer: peer, target: nil) { _ in
                    self.worker.setDraining(cmd == "drain")
                    return .success([("draining", .bool(cmd == "drain"))])
                }
            case "cancel":
                return await audited(cmd, peer: peer, target: request["jobId"]?.stringValue) { entry in
                    try await self.cancel(request, peer: peer, entry: &entry)
                }
            case "retry":
                return await audited(cmd, peer: peer, target: request["jobId"]?.stringValue) { _ in
                    try await self.retry(request)
                }
            case "reload":
                return await audited(cmd, peer: peer, target: nil) { _ in
                    if let problem = await self.reloadConfiguration() { return .failure("jobs.yml was not reloaded: \(problem)") }
                    let cfg = self.worker.configuration
                    return .success([
                        (
                            "queues",
                            .array(
                                cfg.queues.map { q in
                                    .object([("name", .string(q.name)), ("concurrency", Self.number(q.concurrency))])
                                })
                        ), ("schedules", .array(cfg.schedules.map { .string($0.name) })),
                    ])
                }
            case "sub":
                let action = request["action"]?.stringValue ?? ""
                if action == "list" {
                    return .success([("subscriptions", try await worker.subscriptions.list())])
                }
                return await audited(
                    "sub \(String(action.prefix(20)))", peer: peer, target: request["name"]?.stringValue ?? request["url"]?.stringValue
                ) { _ in
                    try await self.subscription(action, request)
                }
            default: return .failure("unknown cmd")
            }
        } catch {
            return .failure("\(cmd) failed: \(error)")
        }
    }

    /// Runs an action and writes it to the audit trail (in the background: the answer does not wait for PostgreSQL).
    private func audited(
        _ cmd: String, peer: ControlPeer, target: String?,
        _ body: (inout AuditEntry) async throws -> Answer
    ) async -> Answer {
        var entry = AuditEntry(
            actor: peer.description, peerUID: Int(peer.uid), peerPID: Int(peer.pid), source: "socket",
            action: cmd, target: target.map { String($0.prefix(200)) }, ok: true)
        let answer: Answer
        do {
            answer = try await body(&entry)
        } catch {
            answer = .failure("\(cmd) failed: \(error)")
        }
        switch answer {
        case .success(let fields):
            entry.detail = fields.first { $0.0 == "outcome" }?.1.stringValue
        case .failure(let message):
            entry.ok = false
            entry.detail = message
        }
        let record = entry
        Task { [worker] in await worker.recordAudit(record) }
        return answer
    }

    // MARK: - Requests

    private func status() async throws -> [(String, JSONValue)] {
        let s = worker.status()
        var depths: [String: Int] = [:]
        var overview: (leader: String?, schedules: [ScheduleOverview])?
        var bullmq: [BullMQOverview] = []
        // Redis may be away: the rest of the status does not wait for it more than 1.5 s.
        let fromRedis = await withTaskGroup(of: RedisPart?.self) { group -> RedisPart? in
            group.addTask { [worker] in
                do {
                    var depths: [String: Int] = [:]
                    for q in s.queues { depths[q.name] = try await worker.queue.depth(queue: q.name) }
                    await worker.services.integrations.refreshClusterCircuits(
                        redis: worker.services.redis, prefix: worker.services.queue.keys.prefix)
                    return RedisPart(
                        depths: depths, overview: try await worker.scheduleOverview(), bullmq: try await worker.bullmqOverview())
                } catch {
                    return nil
                }
            }
            group.addTask {
                try? await Task.sleep(for: .milliseconds(1500))
                return nil
            }
            let first = await group.next() ?? nil
            group.cancelAll()
            return first
        }
        let redisAnswers = fromRedis != nil
        if let fromRedis {
            depths = fromRedis.depths
            overview = fromRedis.overview
            bullmq = fromRedis.bullmq
        }
        let queues: [JSONValue] = s.queues.map { q in
            .object([
                ("name", .string(q.name)), ("concurrency", Self.number(q.concurrency)), ("active", Self.number(q.active)),
                ("paused", .bool(s.paused.contains(q.name))), ("depth", depths[q.name].map(Self.number) ?? .null),
            ])
        }
        var fields: [(String, JSONValue)] = [
            ("consumer", .string(s.consumer)),
            ("host", .string(ProcessInfo.processInfo.hostName)),
            ("pid", Self.number(Int(getpid()))),
            ("uptimeSeconds", Self.number(Int(Date().timeIntervalSince(startedAt)))),
            ("draining", .bool(s.draining)),
            ("shuttingDown", .bool(s.shuttingDown)),
            ("paused", .array(s.paused.sorted().map { .string($0) })),
            ("active", Self.number(s.queues.map(\.active).reduce(0, +))),
            ("queues", .array(queues)),
            ("redis", .bool(s.redisConnected && redisAnswers)),
            ("postgres", .bool(s.postgresHealthy)),
            ("recordsBacklog", Self.number(s.recordsBacklog)),
            (
                "records",
                .object([
                    ("pending", Self.number(s.recordsBacklog)),
                    ("oldestSeconds", .number(String(format: "%.1f", s.recordsOldestSeconds))),
                    ("deadLettered", Self.number(s.recordsDeadLettered)),
                ])
            ),
            (
                "circuits",
                .object(
                    worker.services.integrations.circuitStates(configuration: worker.configuration).sorted { $0.key < $1.key }.map {
                        ($0.key, .string($0.value))
                    })
            ),
        ]
        if !bullmq.isEmpty {
            fields.append(
                (
                    "bullmq",
                    .array(
                        bullmq.map { b in
                            .object([
                                ("name", .string(b.name)), ("queue", .string(b.queue)), ("paused", .bool(b.paused)),
                                ("waiting", Self.number(b.waiting)), ("delayed", Self.number(b.delayed)), ("active", Self.number(b.active)),
                                ("held", Self.number(b.held)), ("completed", Self.number(b.completed)), ("failed", Self.number(b.failed)),
                            ])
                        })
                ))
        }
        if let y = worker.services.integrations.ytDlp {
            fields.append(
                (
                    "ytDlp",
                    .object([
                        ("version", .string(y.version)), ("channel", .string(y.channel)),
                        ("ageDays", y.ageDays.map { .number(String($0)) } ?? .null), ("jsRuntime", .string(y.jsRuntime)),
                        ("plugins", .array(y.plugins.map { .string($0) })), ("status", .string(y.status)),
                        ("warning", y.warning.map { .string($0) } ?? .null),
                    ])
                ))
        }
        if let overview {
            fields.append(("leader", overview.leader.map { .string($0) } ?? .null))
            fields.append(("isLeader", .bool(overview.leader == s.consumer)))
            fields.append(
                (
                    "schedules",
                    .array(
                        overview.schedules.map { o in
                            .object([
                                ("name", .string(o.name)), ("spec", .string(o.spec)), ("type", .string(o.jobType)),
                                ("queue", .string(o.queue)),
                                ("lastRun", o.lastTick.map { .string(Timestamp.format(milliseconds: $0)) } ?? .null),
                                ("lastJobId", o.lastJobID.map { .string($0) } ?? .null),
                                ("nextRun", o.nextTick.map { .string(Timestamp.format(milliseconds: $0)) } ?? .null),
                            ])
                        })
                ))
        }
        return fields
    }

    private func jobs() async throws -> [(String, JSONValue)] {
        let running = worker.pool.runningJobs.sorted { $0.startedAtMilliseconds < $1.startedAtMilliseconds }
        let progressFields: [JobHash.Field] = [.stage, .progress, .downloadedBytes, .totalBytes, .speed, .eta]
        let hashes = try await worker.queue.snapshots(jobIDs: running.map(\.held.descriptor.id), fields: progressFields)
        let now = Timestamp.nowMilliseconds()
        let list: [JSONValue] = zip(running, hashes).map { job, values in
            let d = job.held.descriptor
            var pairs: [(String, JSONValue)] = [
                ("jobId", .string(d.id)), ("queue", .string(d.queue)), ("type", .string(d.type)),
                ("userId", d.userId.map { .string($0) } ?? .null),
                ("attempt", Self.number(job.held.attempt)), ("maxAttempts", Self.number(job.held.maxAttempts)),
                ("startedAt", .string(Timestamp.format(milliseconds: job.startedAtMilliseconds))),
                ("runningSeconds", .number(String(format: "%.1f", Double(now - job.startedAtMilliseconds) / 1000))),
                ("timeoutSeconds", .number(String(Int(job.timeoutSeconds)))),
            ]
            if let reason = job.stopReason { pairs.append(("stopping", .string(reason.rawValue))) }
            for field in progressFields {
                guard let text = values[field] else { continue }
                pairs.append((field.rawValue, field == .stage ? .string(text) : (Double(text) != nil ? .number(text) : .string(text))))
            }
            return .object(pairs)
        }
        return [("consumer", .string(worker.consumer)), ("jobs", .array(list))]
    }

    private func queueName(_ request: JSONValue, _ cmd: String) throws(ControlRequestError) -> String {
        let names = worker.configuration.queues.map(\.name)
        guard let name = request["queue"]?.stringValue else {
            throw ControlRequestError("\(cmd) needs \"queue\": one of \(names.joined(separator: ", "))")
        }
        guard names.contains(name) else {
            throw ControlRequestError(
                "no queue named \(JSONText.quote(String(name.prefix(64)))); the queues are \(names.joined(separator: ", "))")
        }
        return name
    }

    private func jobID(_ request: JSONValue, _ cmd: String) throws(ControlRequestError) -> String {
        guard let id = request["jobId"]?.stringValue else { throw ControlRequestError("\(cmd) needs \"jobId\": the id of the job") }
        guard JobEnvelope.isValidID(id) else {
            throw ControlRequestError("\"jobId\" must be 1–128 characters of A-Z a-z 0-9 . _ : -")
        }
        return id
    }

    private func sender(_ peer: ControlPeer) -> [(String, String)] {
        [
            ("by", peer.description), ("peerUid", String(peer.uid)), ("peerPid", String(peer.pid)),
            ("host", ProcessInfo.processInfo.hostName),
        ]
    }

    /// pause/resume go to every daemon through `P:control`; the answer waits (up to 1.5 s) until
    /// this daemon applied it.
    private func pause(_ request: JSONValue, paused: Bool, peer: ControlPeer, entry: inout AuditEntry) async throws -> Answer {
        let name: String
        do { name = try queueName(request, paused ? "pause" : "resume") } catch { return .failure(error.description) }
        let id = try await worker.broadcast([("cmd", paused ? "pause" : "resume"), ("queue", name)] + sender(peer))
        entry.controlEntry = id
        let deadline = ContinuousClock.now + .milliseconds(1500)
        while worker.isPaused(name) != paused && ContinuousClock.now < deadline {
            try? await Task.sleep(for: .milliseconds(20))
        }
        return .success([
            ("queue", .string(name)), ("paused", .bool(paused)), ("applied", .bool(worker.isPaused(name) == paused)),
            ("entry", .string(id)), ("outcome", .string(paused ? "paused" : "resumed")),
        ])
    }

    /// Cancels a job wherever it is: queued or scheduled ones at once, a running one by its holder
    /// (here directly, elsewhere through `P:control`). Waits up to 3 s for a running job to stop.
    private func cancel(_ request: JSONValue, peer: ControlPeer, entry: inout AuditEntry) async throws -> Answer {
        let id: String
        do { id = try jobID(request, "cancel") } catch { return .failure(error.description) }
        let result = try await worker.cancel(jobID: id)
        switch result.outcome {
        case .finished:
            return .failure("job \(id) has already finished (\(result.previousState)); there is nothing to cancel")
        case .active:
            var where_ = "here"
            if !worker.pool.isRunning(jobID: id) {
                entry.controlEntry = try await worker.broadcast([("cmd", "cancel"), ("jobId", id)] + sender(peer))
                where_ = "elsewhere"
            }
            var state = JobState.active.rawValue
            let deadline = ContinuousClock.now + .seconds(3)
            while ContinuousClock.now < deadline {
                state = try await worker.queue.snapshots(jobIDs: [id], fields: [.state]).first?[.state] ?? "unknown"
                if state != JobState.active.rawValue { break }
                try? await Task.sleep(for: .milliseconds(50))
            }
            return .success([
                ("jobId", .string(id)), ("outcome", .string(state == JobState.active.rawValue ? "stopping" : state)),
                ("previousState", .string(JobState.active.rawValue)), ("ranOn", .string(where_)),
            ])
        case .cancelled:
            var fields: [(String, JSONValue)] = [
                ("jobId", .string(id)), ("outcome", .string(CancelResult.Outcome.cancelled.rawValue)),
                ("previousState", .string(result.previousState)),
            ]
            if result.previousState == "unknown" {
                fields.append(("note", .string("no job with this id was known; it is marked cancelled, so it will not run if it arrives")))
            }
            return .success(fields)
        }
    }

    private func retry(_ request: JSONValue) async throws -> Answer {
        let id: String
        do { id = try jobID(request, "retry") } catch { return .failure(error.description) }
        guard let refused = try await worker.retry(jobID: id) else {
            return .success([("jobId", .string(id)), ("outcome", .string("queued"))])
        }
        if refused == "unknown" || refused == "expired" {
            return .failure("no job \(id) is known (neither its state in Redis nor its record in PostgreSQL); nothing to retry")
        }
        return .failure("job \(id) is \(refused); only failed or cancelled jobs can be retried")
    }

    /// `sub add|remove|check|protect`; a refused request answers its reason and changes nothing.
    private func subscription(_ action: String, _ request: JSONValue) async throws -> Answer {
        let subs = worker.subscriptions
        func name() throws(ControlRequestError) -> String {
            guard let name = request["name"]?.stringValue, !name.isEmpty else {
                throw ControlRequestError("sub \(action) needs the subscription's name")
            }
            return name
        }
        do {
            switch action {
            case "add":
                return .success([("subscription", try await subs.add(request)), ("outcome", .string("added"))])
            case "remove":
                return .success([("subscription", try await subs.remove(try name())), ("outcome", .string("removed"))])
            case "check":
                let id = try await subs.check(try name())
                return .success([("jobId", .string(id)), ("outcome", .string("check queued"))])
            case "protect":
                guard let key = request["videoKey"]?.stringValue, !key.isEmpty else {
                    return .failure("sub protect needs the item's video key (extractor:id)")
                }
                let on = request["protected"]?.boolValue ?? true
                return .success([
                    ("item", try await subs.protect(try name(), videoKey: key, protected: on)),
                    ("outcome", .string(on ? "protected" : "unprotected")),
                ])
            default:
                return .failure("sub takes action list, add, remove, check or protect")
            }
        } catch let refusal as SubscriptionCommands.Refusal {
            return .failure(refusal.description)
        } catch let refusal as ControlRequestError {
            return .failure(refusal.description)
        }
    }

    static func number(_ value: Int) -> JSONValue { .number(String(value)) }
}

/// A request the control socket refuses, with the sentence it answers.
struct ControlRequestError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
