import Foundation
import Logging
import RedisClient
import WorkerConfig

extension RedisKeys {
    /// `P:subscription:<id>`: the leader's record of a subscription's checks: `last` (the last tick
    /// fired, epoch ms), `lastJobId`, `firedAt`, `firedBy`, `spec`.
    package func subscription(_ id: String) -> String { "\(prefix):subscription:\(id)" }
}

/// The leader's part of subscriptions: every enabled subscription's check enqueued at each tick of
/// its `check_every`, once per cluster.
///
/// Ticks are whole multiples of the interval since the epoch, shifted by an offset derived from the
/// subscription's id (so subscriptions of one interval do not all check at the same second); the
/// check's job id is `subscription:<id>:<tick>`, so a tick fired twice (a leader killed between
/// enqueueing and recording it) is still one check. Ticks missed while no daemon led are folded into
/// one check. A subscription never checked before is checked at once (job id `subscription:<id>:first`).
struct SubscriptionTicker: Sendable {
    let redis: RedisConnection
    let queue: JobQueue
    let services: WorkerServices
    let consumer: String
    let logger: Logger

    /// How often the leader reads the enabled subscriptions from PostgreSQL.
    static let reloadEvery = Duration.seconds(2)

    struct Cache {
        var subscriptions: [Subscription] = []
        var loadedAt: ContinuousClock.Instant?
        /// Last tick fired, per id (read from Redis when first needed).
        var last: [String: Int64] = [:]
    }

    /// The tick offset of a subscription, in [0, interval).
    static func offset(_ id: String, interval: Int64) -> Int64 {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for b in id.utf8 { h = (h ^ UInt64(b)) &* 0x0000_0100_0000_01B3 }
        return Int64(h % UInt64(interval))
    }

    /// The tick due at `now` for a subscription last fired at `last`, with the ticks folded into it.
    static func due(interval: Int64, offset: Int64, last: Int64, now: Int64) -> ScheduleTiming.Due? {
        guard var due = ScheduleTiming.due(.every(milliseconds: interval), last: last - offset, now: now - offset) else { return nil }
        due.tick += offset
        return due
    }

    /// The first tick after `last`.
    static func next(interval: Int64, offset: Int64, after last: Int64) -> Int64 {
        (ScheduleTiming.next(after: last - offset, spec: .every(milliseconds: interval)) ?? Int64.max - offset) + offset
    }

    /// Fires the due checks; returns the milliseconds until the next tick (at most 1000).
    func fire(_ cache: inout Cache) async throws -> Int {
        if cache.loadedAt.map({ ContinuousClock.now - $0 >= Self.reloadEvery }) ?? true {
            let fresh = try await SubscriptionStore(pool: services.postgres).enabled()
            let known = Set(fresh.map(\.id))
            cache.last = cache.last.filter { known.contains($0.key) }
            cache.subscriptions = fresh
            cache.loadedAt = .now
        }
        let now = Timestamp.nowMilliseconds()
        var wait: Int64 = 1000
        for s in cache.subscriptions {
            let interval = Int64(max(s.checkEvery, 1)) * 1000
            let offset = Self.offset(s.id, interval: interval)
            if cache.last[s.id] == nil { cache.last[s.id] = try await loadLast(s, now: now) }
            let last = cache.last[s.id]!
            if let due = Self.due(interval: interval, offset: offset, last: last, now: now) {
                try await enqueue(s, tag: String(due.tick), tick: due.tick, skipped: due.skipped)
                cache.last[s.id] = due.tick
            }
            wait = min(wait, max(Self.next(interval: interval, offset: offset, after: cache.last[s.id]!) - now, 0))
        }
        return Int(max(wait, 5))
    }

    /// The last tick fired. A subscription seen for the first time ticks from now, and when it was
    /// never checked its first check is enqueued at once.
    private func loadLast(_ s: Subscription, now: Int64) async throws -> Int64 {
        let key = queue.keys.subscription(s.id)
        if try await redis.send(RedisCommand(["EXISTS", key])).int == 0, s.lastCheckedAt == nil {
            try await enqueue(s, tag: "first", tick: now, skipped: 0)
        }
        let replies = try await redis.pipeline([
            RedisCommand(["HSETNX", key, "last", String(now)]),
            RedisCommand(["HSETNX", key, "spec", Self.spec(s)]),
            RedisCommand(["HGET", key, "last"]),
        ])
        return replies[2].int ?? now
    }

    static func spec(_ s: Subscription) -> String { "every \(s.checkEvery)s" }

    /// Enqueues the check of one tick, then records the tick (forward only).
    private func enqueue(_ s: Subscription, tag: String, tick: Int64, skipped: Int) async throws {
        let id = try await SubscriptionCheckHandler.enqueue(s, tag: tag, services: services)
        _ = try await queue.scripts.run(
            Scheduler.recordFireScript, keys: [queue.keys.subscription(s.id)],
            args: [String(tick), id, Timestamp.now(), consumer, Self.spec(s)])
        var metadata: Logger.Metadata = ["subscription": "\(s.name)", "jobId": "\(id)"]
        if skipped > 0 { metadata["missedTicks"] = "\(skipped)" }
        logger.info("subscription check enqueued", metadata: metadata)
    }
}
