import RedisClient

/// The cluster's leader lease: one key, `P:leader`, holding the consumer name of the daemon that
/// fires schedules (and does the other once-per-cluster chores). A daemon takes it with
/// `SET NX PX`, keeps it by renewing it with a compare-and-set script (only its holder may extend
/// it), and gives it up at shutdown the same way. When the leader dies the key expires and another
/// daemon takes it at its next attempt.
///
/// The lease does not fence: a leader that stalls past its lease may act once more after another
/// took over. Everything done under the lease is therefore idempotent (schedules fire with a job id
/// per tick, which the queue runs once).
final class LeaderElector: Sendable {
    let redis: RedisConnection
    let scripts: ScriptRunner
    let key: String
    /// This daemon's identity in the lease (its consumer name).
    let identity: String

    init(redis: RedisConnection, scripts: ScriptRunner, key: String, identity: String) {
        self.redis = redis
        self.scripts = scripts
        self.key = key
        self.identity = identity
    }

    /// Extends the lease when this daemon holds it.
    /// KEYS: 1 lease key. ARGV: 1 identity, 2 lease ms. Returns 1 when extended, 0 when held by another or lapsed.
    static let renewScript = """
        if redis.call('GET', KEYS[1]) == ARGV[1] then
          redis.call('PEXPIRE', KEYS[1], ARGV[2])
          return 1
        end
        return 0
        """

    /// Deletes the lease when this daemon holds it.
    /// KEYS: 1 lease key. ARGV: 1 identity. Returns 1 when deleted.
    static let releaseScript = """
        if redis.call('GET', KEYS[1]) == ARGV[1] then
          return redis.call('DEL', KEYS[1])
        end
        return 0
        """

    /// Tries to take the free lease for `milliseconds`. Returns true when this daemon holds it now.
    func acquire(milliseconds: Int) async throws -> Bool {
        let reply = try await redis.send(RedisCommand(["SET", key, identity, "NX", "PX", String(max(milliseconds, 1))]))
        if reply.string == "OK" { return true }
        // Our own lease (a restart under the same name, or a renewal that timed out but ran): keep it.
        return try await renew(milliseconds: milliseconds)
    }

    /// Extends the lease this daemon holds. Returns false when another daemon holds it or it lapsed.
    func renew(milliseconds: Int) async throws -> Bool {
        let reply = try await scripts.run(Self.renewScript, keys: [key], args: [identity, String(max(milliseconds, 1))])
        return reply.int == 1
    }

    /// Gives the lease up at once (shutdown), so another daemon need not wait for it to expire.
    func release() async {
        _ = try? await scripts.run(Self.releaseScript, keys: [key], args: [identity])
    }

    /// The consumer name of the current leader, if any.
    func currentLeader() async throws -> String? {
        try await redis.send(RedisCommand(["GET", key])).string
    }
}
