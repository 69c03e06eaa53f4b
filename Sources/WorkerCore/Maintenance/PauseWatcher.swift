import WorkerConfig

/// Re-reads the persisted pause state `P:paused` twice a second (the control listener applies
/// commands at once; this catches what it could not read, e.g. across a Redis restart).
struct PauseWatcher: Maintainer {
    let queue: JobQueue
    let state: WorkerState
    var name: String { "reading the pause state" }

    func interval(_ configuration: WorkerConfiguration) -> Duration { .milliseconds(500) }

    func runOnce(_ configuration: WorkerConfiguration) async throws {
        state.setPaused(try await queue.pausedQueues())
    }
}
