import WorkerConfig

/// Keeps the jobs running here ours: renews their lease (their stream entries' idle time) every
/// third of `lease`, so a live long job is never taken over by the rescuer of another host.
struct LeaseKeeper: Maintainer {
    let queue: JobQueue
    let pool: WorkerPool
    var name: String { "renewing leases" }

    func interval(_ configuration: WorkerConfiguration) -> Duration { .milliseconds(Int64(configuration.lease * 1000 / 3)) }

    func runOnce(_ configuration: WorkerConfiguration) async throws {
        for q in configuration.queues { try await queue.renew(queue: q.name, entryIDs: pool.entryIDs(queue: q.name)) }
    }
}
