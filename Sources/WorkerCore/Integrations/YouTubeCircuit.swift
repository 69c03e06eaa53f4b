import Foundation
import Logging
import RedisClient
import ServiceClients
import Synchronization

/// The cluster-wide `youtube` circuit (contract section 13): YouTube's bot check or an HTTP 429
/// on any host opens it for every host, so no daemon keeps knocking. Its state lives in Redis, in
/// `P:health:youtube` (`circuit`, `circuitChangedAt`, `openUntil` in epoch ms, `openFor` in
/// seconds, `reason`), beside the fields `service.health` writes; `P:circuit:youtube:trial` holds
/// the one trial call the cluster lets through once the wait has passed.
///
/// The policy is the integrations' (``IntegrationHub/breakerPolicy``): open 5 s the first time,
/// doubled by each failed trial up to 5 min; one bot check or 429 is enough to open it. Times
/// come from Redis's clock, so hosts agree.
package struct YouTubeCircuit: Sendable {
    package static let service = "youtube"
    package static let policy = IntegrationHub.breakerPolicy

    let redis: RedisConnection
    let prefix: String

    package init(redis: RedisConnection, prefix: String) {
        self.redis = redis
        self.prefix = prefix
    }

    var healthKey: String { "\(prefix):health:\(Self.service)" }
    var trialKey: String { "\(prefix):circuit:\(Self.service):trial" }

    /// Permission to run yt-dlp now.
    package enum Permit: Sendable, Equatable {
        /// Closed: go.
        case go
        /// This call is the cluster's trial; report how it went with the token.
        case trial(token: String)
        /// Open: wait this many seconds.
        case wait(seconds: Double, reason: String?)
    }

    /// How long the single trial call may hold the trial slot before another host may try.
    static let trialLeaseMilliseconds = 10 * 60 * 1000

    private static let acquireScript = """
        local t = redis.call('TIME')
        local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
        local state = redis.call('HGET', KEYS[1], 'circuit')
        if state ~= 'open' and state ~= 'half-open' then return {'go', '0', ''} end
        local reason = redis.call('HGET', KEYS[1], 'reason') or ''
        local untilMs = tonumber(redis.call('HGET', KEYS[1], 'openUntil') or '0') or 0
        if now < untilMs then return {'wait', tostring(untilMs - now), reason} end
        if redis.call('SET', KEYS[2], ARGV[1], 'NX', 'PX', ARGV[2]) then
          if state ~= 'half-open' then redis.call('HSET', KEYS[1], 'circuit', 'half-open', 'circuitChangedAt', ARGV[3]) end
          return {'trial', '0', reason}
        end
        return {'wait', '2000', reason}
        """

    private static let tripScript = """
        local t = redis.call('TIME')
        local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
        local state = redis.call('HGET', KEYS[1], 'circuit')
        local untilMs = tonumber(redis.call('HGET', KEYS[1], 'openUntil') or '0') or 0
        local openFor = tonumber(redis.call('HGET', KEYS[1], 'openFor') or '0') or 0
        local mine = redis.call('GET', KEYS[2]) == ARGV[1]
        if mine then redis.call('DEL', KEYS[2]) end
        if state == 'open' and now < untilMs then return {'already', tostring(untilMs - now)} end
        local initial = tonumber(ARGV[2])
        local nextFor = initial
        if state == 'open' or state == 'half-open' then
          nextFor = math.min(math.max(openFor, initial) * 2, tonumber(ARGV[3]))
        end
        redis.call('HSET', KEYS[1], 'circuit', 'open', 'circuitChangedAt', ARGV[4], 'openUntil', tostring(now + math.floor(nextFor * 1000)),
          'openFor', tostring(nextFor), 'reason', ARGV[5], 'openedBy', ARGV[6])
        return {'opened', tostring(math.floor(nextFor * 1000))}
        """

    private static let closeScript = """
        if redis.call('GET', KEYS[2]) ~= ARGV[1] then return 0 end
        redis.call('DEL', KEYS[2])
        redis.call('HSET', KEYS[1], 'circuit', 'closed', 'circuitChangedAt', ARGV[2], 'openFor', '0')
        redis.call('HDEL', KEYS[1], 'openUntil', 'reason')
        return 1
        """

    private static let releaseScript = """
        if redis.call('GET', KEYS[2]) == ARGV[1] then redis.call('DEL', KEYS[2]) return 1 end
        return 0
        """

    private func eval(_ script: String, _ args: [String]) async throws -> RedisValue {
        var command = RedisCommand(["EVAL", script, "2", healthKey, trialKey])
        for a in args { command.append(a) }
        let reply = try await redis.send(command)
        if case .error(let message) = reply { throw RedisError.server(message) }
        return reply
    }

    /// Asks to run yt-dlp. When Redis does not answer the call goes ahead (the job's own failure
    /// handling applies; the circuit is advice, not a lock).
    package func acquire() async -> Permit {
        let token = UUID().uuidString
        guard
            let reply = try? await eval(Self.acquireScript, [token, String(Self.trialLeaseMilliseconds), Timestamp.now()]).array,
            reply.count == 3, let verdict = reply[0].string
        else { return .go }
        let reason = reply[2].string.flatMap { $0.isEmpty ? nil : $0 }
        switch verdict {
        case "trial": return .trial(token: token)
        case "wait": return .wait(seconds: max(Double(reply[1].string ?? "1000") ?? 1000, 100) / 1000, reason: reason)
        default: return .go
        }
    }

    /// YouTube pushed back (`reason`: `bot_check` or `rate_limited`): opens the circuit for every
    /// host (longer after a failed trial). Returns the seconds until the next trial and whether this
    /// call opened it (false when another host already had).
    package func trip(_ permit: Permit, reason: String, consumer: String) async -> (seconds: Double, opened: Bool) {
        let token: String
        if case .trial(let t) = permit { token = t } else { token = "-" }
        guard
            let reply = try? await eval(
                Self.tripScript,
                [
                    token, String(Self.policy.openDuration), String(Self.policy.maxOpenDuration), Timestamp.now(), reason,
                    consumer,
                ]
            ).array, reply.count == 2
        else { return (Self.policy.openDuration, false) }
        let seconds = max(Double(reply[1].string ?? "") ?? Self.policy.openDuration * 1000, 100) / 1000
        return (seconds, reply[0].string == "opened")
    }

    /// YouTube answered (a success, or an error that shows it served the request): a trial closes
    /// the circuit. Returns whether it closed.
    @discardableResult
    package func answered(_ permit: Permit) async -> Bool {
        guard case .trial(let token) = permit else { return false }
        return (try? await eval(Self.closeScript, [token, Timestamp.now()]).int) == 1
    }

    /// The call told nothing about YouTube (network trouble, cancelled): a trial slot is freed.
    package func release(_ permit: Permit) async {
        guard case .trial(let token) = permit else { return }
        _ = try? await eval(Self.releaseScript, [token])
    }

    /// The circuit as every host sees it: `closed`, `open` or `half-open`, and whether it holds
    /// calls back now (open within its wait, or half-open with the trial in flight). Nil when Redis
    /// does not answer or the circuit has never opened.
    package func read() async -> (state: String, holdingBack: Bool)? {
        guard
            let replies = try? await redis.pipeline([
                RedisCommand(["HMGET", healthKey, "circuit", "openUntil"]), RedisCommand(["EXISTS", trialKey]),
                RedisCommand(["TIME"]),
            ]), replies.count == 3, let fields = replies[0].array, fields.count == 2
        else { return nil }
        guard let state = fields[0].string else { return nil }
        let until = Int64(fields[1].string ?? "0") ?? 0
        let time = replies[2].array ?? []
        let now =
            time.count == 2
            ? (Int64(time[0].string ?? "0") ?? 0) * 1000 + (Int64(time[1].string ?? "0") ?? 0) / 1000
            : Timestamp.nowMilliseconds()
        let trial = (replies[1].int ?? 0) > 0
        switch state {
        case "open" where now < until: return ("open", true)
        case "open", "half-open": return ("half-open", trial)
        default: return ("closed", false)
        }
    }
}

extension IntegrationHub {
    /// Reads the cluster-wide circuits (today: `youtube`) into what ``circuitStates(configuration:)``
    /// and ``circuitOpen(configuration:)`` answer; called before a status answer and a metrics scrape.
    package func refreshClusterCircuits(redis: RedisConnection, prefix: String) async {
        guard let seen = await YouTubeCircuit(redis: redis, prefix: prefix).read() else { return }
        noteClusterCircuit(YouTubeCircuit.service, state: seen.state, holdingBack: seen.holdingBack)
    }
}
