import Foundation
import JSON
import Logging
import RedisClient

/// Runs one attempt of a job and records how it ended: in Redis (state, ack, event, the record
/// for PostgreSQL and the outcome for the observers, through one atomic script) and in the metrics.
struct Processor: Sendable {
    let queue: JobQueue
    let registry: HandlerRegistry
    let metrics: Metrics
    let logger: Logger
    let services: WorkerServices
    let consumer: String
    /// Whether the daemon is shutting down (finishing writes give up after this instead of retrying forever).
    let isShuttingDown: @Sendable () -> Bool

    /// Runs the attempt, then records it; `handlerReturned` is called in between (the pool gives the
    /// job's slot on while its end is recorded).
    func process(_ job: RunningJob, retry: RetryPolicy, handlerReturned: @Sendable () -> Void = {}) async {
        let held = job.held
        let d = held.descriptor
        // The job's logger (queue, id, type, attempt) is made only for a message that is written.
        if job.context.logs(.debug) { job.context.logger.debug("job started") }

        let outcome: Result<JSONValue, Error>
        if let handler = registry.handler(for: d.type) {
            do {
                outcome = .success(try await handler.run(job.context))
            } catch {
                outcome = .failure(error)
            }
        } else {
            outcome = .failure(JobFailure.permanent("unknown job type '\(d.type)'"))
        }
        removeTemporaryDirectory(job.context)
        handlerReturned()

        let seconds = (ContinuousClock.now - job.startedAt) / .seconds(1)
        let end = Self.end(of: outcome, stop: job.stopReason, job: job, retry: retry)
        await record(end, of: job, seconds: seconds)
    }

    /// How the attempt ends: from the handler's outcome and why the job was stopped, if it was.
    static func end(of outcome: Result<JSONValue, Error>, stop: StopReason?, job: RunningJob, retry: RetryPolicy) -> AttemptEnd {
        let held = job.held
        let now = Timestamp.nowMilliseconds()
        switch (outcome, stop) {
        case (.success(let result), _):
            // A job that finished its work completes, even if a stop was asked for meanwhile.
            return .completed(result)
        case (.failure, .shutdown?):
            return .handedBack
        case (.failure, .cancel?):
            return .cancelled
        case (.failure(let error), let stop):
            let failure: JobFailure
            if stop == .timeout {
                failure = .retryable("the attempt timed out after \(Self.describe(seconds: job.timeoutSeconds))")
            } else {
                switch error {
                case let f as JobFailure: failure = f
                case is CancellationError: failure = .retryable("the attempt was interrupted")
                default: failure = .retryable("the job failed: \(error)")
                }
            }
            if let deferral = failure.deferral {
                // Waiting for something outside the job: try again later, the attempt not counted.
                return .deferred(failure, dueMilliseconds: now + Int64(deferral * Double.random(in: 1.0...1.25) * 1000))
            }
            if failure.retryable && held.attempt < held.maxAttempts {
                // The job's own backoff (BullMQ jobs carry theirs) wins over its queue's.
                let wait = held.envelope.backoff?.delay(afterAttempt: held.attempt) ?? retry.delay(afterAttempt: held.attempt)
                return .retry(failure, dueMilliseconds: now + Int64(wait * 1000))
            }
            return .failed(failure)
        }
    }

    /// Records how the attempt ended, through one script (state, ack, event, record, outcome), then
    /// in the metrics and the log.
    private func record(_ end: AttemptEnd, of job: RunningJob, seconds: Double) async {
        let held = job.held
        let d = held.descriptor
        let at = Timestamp.now()
        var fields: [(String, JSONText.Value?)] = []
        switch end {
        case .completed(let result):
            fields = EventFactory.completedFields(d, result)
        case .failed(let failure):
            fields = [("error", .string(failure.message)), ("attempt", .int(Int64(held.attempt)))]
        case .retry(let failure, let due), .deferred(let failure, let due):
            fields = [
                ("error", .string(failure.message)), ("attempt", .int(Int64(held.attempt))),
                ("maxAttempts", .int(Int64(held.maxAttempts))), ("nextAttemptAt", .string(Timestamp.format(milliseconds: due))),
            ]
            if case .deferred = end { fields.append(("attemptCounted", .bool(false))) }
        case .cancelled, .handedBack:
            break
        }
        let event = end.event.map { EventFactory.make($0, job: d, at: at, fields: fields) } ?? ""
        guard await finish(held, end: end, event: event, context: job.context) else { return }
        if let outcome = end.outcome {
            metrics.jobFinished(queue: d.queue, type: d.type, outcome: outcome.metricLabel, seconds: seconds)
        }
        if case .completed = end, !job.context.logs(.debug) { return }
        let log = job.context.logger
        let inSeconds = { (due: Int64) in Self.describe(seconds: Double(due - Timestamp.nowMilliseconds()) / 1000) }
        switch end {
        case .completed: log.debug("job completed", metadata: ["seconds": "\(seconds)"])
        case .handedBack: log.info("job handed back to the queue")
        case .cancelled: log.info("job cancelled")
        case .deferred(let failure, let due):
            log.notice(
                "job waits; trying again later without counting the attempt",
                metadata: ["reason": "\(failure.message)", "retryIn": "\(inSeconds(due))"])
        case .retry(let failure, let due):
            log.warning(
                "attempt failed; retrying",
                metadata: [
                    "error": "\(failure.message)", "retryIn": "\(inSeconds(due))",
                    "detail": "\(failure.detail ?? "")",
                ])
        case .failed(let failure):
            log.error("job failed", metadata: ["error": "\(failure.message)", "detail": "\(failure.detail ?? "")"])
        }
    }

    /// Runs the finishing script until it answers. Redis may be away for a while: keep trying (the
    /// entry stays pending, so nothing is lost if this daemon dies meanwhile) until shutdown.
    /// The outcome is written for the observers only when one of them wants it.
    private func finish(_ held: HeldJob, end: AttemptEnd, event: String, context: JobContext) async -> Bool {
        let mode = end.mode
        let observed = end.outcome.flatMap { services.observersWant(held.descriptor, $0) ? $0 : nil }
        var delay = 50
        while true {
            do {
                let owned = try await queue.finish(
                    held, mode: mode, detail: end.detail, dueMilliseconds: end.dueMilliseconds, event: event,
                    observe: observed, failureDetail: end.failure?.detail)
                if !owned {
                    context.logger.warning("job was taken over by another daemon before it finished here; its result here is dropped")
                }
                return owned
            } catch {
                if isShuttingDown() && mode != .requeue {
                    context.logger.error(
                        "could not record the end of the job; it will run again after its lease lapses", metadata: ["error": "\(error)"])
                    return false
                }
                if delay == 50 { context.logger.warning("cannot reach Redis to record the end of the job; retrying", metadata: ["error": "\(error)"]) }
                try? await Task.sleep(for: .milliseconds(delay))
                delay = min(delay * 2, 1000)
                if isShuttingDown() && delay >= 1000 { return false }
            }
        }
    }

    private func removeTemporaryDirectory(_ context: JobContext) {
        guard context.madeTemporaryDirectory.load(ordering: .relaxed) else { return }
        let path = (context.temporaryRoot as NSString).appendingPathComponent(context.job.id)
        guard FileManager.default.fileExists(atPath: path) else { return }
        do { try FileManager.default.removeItem(atPath: path) } catch {
            context.logger.warning("could not remove the job's temporary folder", metadata: ["path": "\(path)", "error": "\(error)"])
        }
    }

    static func describe(seconds: Double) -> String {
        if seconds < 1 { return "\(Int(seconds * 1000)) ms" }
        if seconds < 120 { return String(format: "%.0f s", seconds) }
        if seconds < 7200 { return String(format: "%.0f min", seconds / 60) }
        return String(format: "%.1f h", seconds / 3600)
    }
}
