/// Every Redis key and channel the daemon uses, derived from the configured prefix `P`.
///
/// The names under "contract" are fixed by the external contract (docs/PROTOCOL.md);
/// the others are internal to the daemon.
package struct RedisKeys: Sendable, Equatable {
    /// The prefix, `medianest` unless `redis.prefix` says otherwise.
    package let prefix: String
    /// The consumer group every daemon reads queue streams through (contract).
    package static let group = "workers"

    package init(prefix: String) { self.prefix = prefix }

    /// `P:queue:<queue>`: the stream the API adds jobs to (contract).
    package func queue(_ name: String) -> String { "\(prefix):queue:\(name)" }
    /// `P:job:<id>`: the job's state hash (contract).
    package func job(_ id: String) -> String { "\(prefix):job:\(id)" }
    /// `P:events`: channel of every event (contract).
    package var events: String { "\(prefix):events" }
    /// `P:events:log`: replayable stream of every event (contract).
    package var eventsLog: String { "\(prefix):events:log" }
    /// `P:user:<userId>`: channel of one user's job events (contract).
    package func user(_ id: String) -> String { "\(prefix):user:\(id)" }
    /// `P:control`: stream of commands every daemon reads (contract).
    package var control: String { "\(prefix):control" }
    /// `P:paused`: set of paused queue names (persisted pause state).
    package var paused: String { "\(prefix):paused" }
    /// `P:control:applied`: id of the last pause/resume command folded into `P:paused`.
    package var controlApplied: String { "\(prefix):control:applied" }
    /// `P:scheduled`: sorted set of jobs waiting for `runAt` or a retry backoff (score: due time, epoch ms).
    package var scheduled: String { "\(prefix):scheduled" }
    /// `P:ratelimit:<queue>`: sliding-window log of job starts for a queue's start rate limit.
    package func rateLimit(_ queue: String) -> String { "\(prefix):ratelimit:\(queue)" }
    /// `P:worker:<consumer>`: heartbeat hash of one running daemon.
    package func worker(_ consumer: String) -> String { "\(prefix):worker:\(consumer)" }
    /// `P:workers`: sorted set of daemons by last heartbeat (epoch ms).
    package var workers: String { "\(prefix):workers" }
    /// `P:leader`: the lease that makes one daemon in the cluster fire schedules.
    package var leader: String { "\(prefix):leader" }
    /// `P:records`: the outbox of durable records. Every transition's script adds the job's record
    /// here; record writers on every host (group `writers`) move it into PostgreSQL.
    package var records: String { "\(prefix):records" }
    /// `P:records:dead`: records PostgreSQL refused even escaped, kept with the reason.
    package var recordsDead: String { "\(prefix):records:dead" }
    /// `P:outcomes`: attempt outcomes for the observers (notifications, error logs, webhooks, mail),
    /// added by the same scripts and read by every host's dispatcher (group `observers`).
    package var outcomes: String { "\(prefix):outcomes" }
    /// `P:finished`: ids of finished jobs by finish time (epoch ms), kept for `retention.jobs`, so an
    /// id whose hash has expired still never runs twice.
    package var finished: String { "\(prefix):finished" }
    /// `P:bullmq:<queue>:held`: ids of the BullMQ queue's jobs handed to our stream (contract section 11);
    /// their lock is ours to renew and their end ours to write back into BullMQ.
    package func bullmqHeld(_ queue: String) -> String { "\(prefix):bullmq:\(queue):held" }
    /// The consumer group of the record writers on `P:records`.
    package static let writersGroup = "writers"
    /// The consumer group of the observer dispatchers on `P:outcomes`.
    package static let observersGroup = "observers"
}
