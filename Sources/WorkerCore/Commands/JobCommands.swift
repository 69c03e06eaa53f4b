import Logging
import PostgresClient

/// What admins and the API ask of one job, wherever it is: cancel it, or run a failed or cancelled
/// one again. The control socket and `P:control` both come here.
struct JobCommands: Sendable {
    let queue: JobQueue
    let pool: WorkerPool
    let postgres: PostgresPool
    let metrics: Metrics
    let logger: Logger

    /// Cancels a job wherever it is: a queued or scheduled one at once, a running one on this daemon
    /// through its task (the holder elsewhere sees the flag on its hash and stops it).
    func cancel(jobID: String) async throws -> CancelResult {
        let result = try await queue.cancel(jobID: jobID)
        switch result.outcome {
        case .active:
            if pool.stop(jobID: jobID, reason: .cancel) {
                logger.info("cancelling running job", metadata: ["jobId": "\(jobID)"])
            }
        case .cancelled:
            if let job = result.job {
                metrics.jobFinished(queue: job.queue, type: job.type, outcome: JobOutcome.cancelled.metricLabel, seconds: nil)
            }
        case .finished: break
        }
        return result
    }

    /// Runs a failed or cancelled job again. Returns the state that refused it, or nil when it was queued.
    func retry(jobID: String) async throws -> String? {
        var summary = try await queue.summary(jobID: jobID)
        var envelope = ""
        var created = ""
        if summary == nil, let record = try await JobRecords(pool: postgres).fetch(id: jobID) {
            // A hash that has expired leaves PostgreSQL's record as the only copy of the envelope.
            summary = JobQueue.JobSummary(queue: record.queue, type: record.type, userId: record.userId, state: nil)
            envelope =
                JobEnvelope(
                    id: jobID, type: record.type, payloadJSON: record.payloadJSON ?? "{}", userId: record.userId,
                    maxAttempts: record.maxAttempts
                ).raw
            created = Timestamp.format(milliseconds: record.createdAt)
        }
        guard let summary else { return "unknown" }
        let refused = try await queue.runAgain(jobID: jobID, summary: summary, envelope: envelope, createdAt: created)
        if refused == nil { logger.notice("job queued again", metadata: ["jobId": "\(jobID)", "queue": "\(summary.queue)"]) }
        return refused
    }
}
