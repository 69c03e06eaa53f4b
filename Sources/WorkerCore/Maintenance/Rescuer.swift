import Logging
import WorkerConfig

/// Where a stalled job comes back: every half `lease`, the entries of every queue that have been
/// pending longer than `lease` (their daemon died, or stopped renewing) are put back at the end
/// of their stream, atomically, and the job's hash is pointed at the new entry, so whichever daemon
/// reads it next runs the job's next attempt (or fails it when no attempts are left), and the old
/// holder, should it come back, can no longer finish it. Entries of jobs running on this daemon
/// are left where they are (only their idle time is reset).
struct Rescuer: Maintainer {
    let queue: JobQueue
    let pool: WorkerPool
    let logger: Logger
    var name: String { "rescuing stalled jobs" }

    func interval(_ configuration: WorkerConfiguration) -> Duration { .milliseconds(Int64(configuration.lease * 500)) }

    func runOnce(_ configuration: WorkerConfiguration) async throws {
        let idle = Int(configuration.lease * 1000)
        for q in configuration.queues {
            var total = 0
            while true {
                let moved = try await queue.rescue(
                    queue: q.name, idleMilliseconds: idle, count: 500,
                    runningHere: pool.entryIDs(queue: q.name))
                total += moved.rescued
                if moved.examined < 500 { break }
            }
            if total > 0 {
                logger.notice("put back jobs whose daemon stopped renewing them", metadata: ["queue": "\(q.name)", "count": "\(total)"])
            }
        }
    }
}
