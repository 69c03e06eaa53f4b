import RedisClient
import Synchronization

/// Runs the daemon's Lua scripts by SHA (EVALSHA), loading them on first use and again after a
/// Redis restart (`NOSCRIPT`), so every call is one small command on the wire.
final class ScriptRunner: Sendable {
    let redis: RedisConnection
    private let shas = Mutex<[String: String]>([:])

    init(redis: RedisConnection) { self.redis = redis }

    private func sha(for source: String, reload: Bool) async throws -> String {
        if !reload, let known = shas.withLock({ $0[source] }) { return known }
        let reply = try await redis.send(RedisCommand(["SCRIPT", "LOAD", source]))
        guard let sha = reply.string else { throw RedisError.protocolError("SCRIPT LOAD answered \(reply)") }
        shas.withLock { $0[source] = sha }
        return sha
    }

    /// The call in RESP bytes at once (a batch's call carries hundreds of keys and arguments).
    private func command(_ sha: String, keys: [String], args: [String]) -> RedisCommand {
        var size = 64 + sha.utf8.count
        for k in keys { size += k.utf8.count + 16 }
        for a in args { size += a.utf8.count + 16 }
        var e = RedisCommand.Encoder("EVALSHA", capacity: size)
        e.append(sha)
        e.append(keys.count)
        for k in keys { e.append(k) }
        for a in args { e.append(a) }
        return e.command
    }

    /// Runs one script; a script error is thrown as `RedisError.server`.
    func run(_ source: String, keys: [String], args: [String]) async throws -> RedisValue {
        let results = try await runMany(source, calls: [(keys, args)])
        if case .error(let message) = results[0] { throw RedisError.server(message) }
        return results[0]
    }

    /// Runs the same script for several calls in one pipeline. Script errors come back as `.error` values.
    func runMany(_ source: String, calls: [(keys: [String], args: [String])]) async throws -> [RedisValue] {
        if calls.isEmpty { return [] }
        var sha = try await self.sha(for: source, reload: false)
        var results = try await redis.pipeline(calls.map { command(sha, keys: $0.keys, args: $0.args) })
        let missing = results.indices.filter {
            if case .error(let m) = results[$0], m.hasPrefix("NOSCRIPT") { return true }
            return false
        }
        if !missing.isEmpty {
            sha = try await self.sha(for: source, reload: true)
            let retried = try await redis.pipeline(missing.map { command(sha, keys: calls[$0].keys, args: calls[$0].args) })
            for (i, index) in missing.enumerated() { results[index] = retried[i] }
        }
        return results
    }
}
