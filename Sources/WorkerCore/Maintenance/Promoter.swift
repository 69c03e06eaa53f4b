import WorkerConfig

/// Where due jobs go back into their stream: moves jobs whose `runAt` or retry backoff has come
/// from `P:scheduled` into their queue streams (one atomic script per 500).
struct Promoter: Maintainer {
    let queue: JobQueue
    var name: String { "promoting scheduled jobs" }

    func interval(_ configuration: WorkerConfiguration) -> Duration { .milliseconds(100) }

    func runOnce(_ configuration: WorkerConfiguration) async throws {
        while try await queue.promoteDue(limit: 500) == 500 {}
    }
}
