import RedisClient
import Synchronization

/// Gathers the finishes of many jobs into one script call (`Scripts.finish`).
///
/// A finish that arrives while fewer than `maxInFlight` calls are on their way is sent at once (so a
/// lone job waits for nothing); the ones that arrive meanwhile go together in the next call, up to
/// `maxBatch` a call. Each job's finish is its own `pcall` inside the script: one job's error is
/// that job's alone.
final class FinishBatcher: Sendable {
    /// One job's part of a call: its two keys and its 9 arguments (see `Scripts.finish`).
    struct Request: Sendable {
        var hash: String
        var stream: String
        var arguments: [String]
        var continuation: CheckedContinuation<RedisValue, Error>
    }

    private struct Pending {
        var requests: [Request] = []
        var inFlight = 0
    }

    static let maxBatch = 256
    static let maxInFlight = 4

    private let scripts: ScriptRunner
    private let keys: RedisKeys
    /// This daemon's consumer name and `retention.state`, among the arguments every call begins with.
    private let consumer: String
    private let retentionSeconds: Int
    private let pending = Mutex(Pending())

    init(scripts: ScriptRunner, keys: RedisKeys, consumer: String, retentionSeconds: Int) {
        self.scripts = scripts
        self.keys = keys
        self.consumer = consumer
        self.retentionSeconds = retentionSeconds
    }

    /// Finishes one job (its hash, its queue's stream, its 9 arguments); the script's answer for it.
    func finish(hash: String, stream: String, arguments: [String]) async throws -> RedisValue {
        try await withCheckedThrowingContinuation { continuation in
            let request = Request(hash: hash, stream: stream, arguments: arguments, continuation: continuation)
            let send = pending.withLock { state -> Bool in
                state.requests.append(request)
                guard state.inFlight < Self.maxInFlight else { return false }
                state.inFlight += 1
                return true
            }
            if send { Task { await self.sendUntilEmpty() } }
        }
    }

    /// Sends what waits, one call at a time, until nothing waits; then gives its place back.
    private func sendUntilEmpty() async {
        while true {
            let batch = pending.withLock { state -> [Request] in
                if state.requests.isEmpty {
                    state.inFlight -= 1
                    return []
                }
                let count = min(state.requests.count, Self.maxBatch)
                let taken = Array(state.requests.prefix(count))
                state.requests.removeFirst(count)
                return taken
            }
            if batch.isEmpty { return }
            await send(batch)
        }
    }

    private func send(_ batch: [Request]) async {
        let nowMs = Timestamp.nowMilliseconds()
        var keyList = [keys.eventsLog, keys.scheduled, keys.records, keys.outcomes, keys.finished]
        keyList.reserveCapacity(5 + batch.count * 2)
        var args = [
            consumer, RedisKeys.group, Timestamp.format(milliseconds: nowMs), String(nowMs), String(retentionSeconds),
            keys.events, JobQueue.eventsLogMaxLength,
        ]
        args.reserveCapacity(7 + batch.count * 9)
        for request in batch {
            keyList.append(request.hash)
            keyList.append(request.stream)
            args += request.arguments
        }
        do {
            let reply = try await scripts.runMany(Scripts.finish, calls: [(keyList, args)])[0]
            if case .error(let message) = reply { throw RedisError.server(message) }
            guard let answers = reply.array, answers.count == batch.count else {
                throw RedisError.protocolError("the finish script answered \(reply)")
            }
            for (request, answer) in zip(batch, answers) {
                if case .error(let message) = answer {
                    request.continuation.resume(throwing: RedisError.server(message))
                } else {
                    request.continuation.resume(returning: answer)
                }
            }
        } catch {
            for request in batch { request.continuation.resume(throwing: error) }
        }
    }
}
