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

    func process(_ job: RunningJob, retry: RetryPolicy) async {
        let held = job.held
        let d = held.descriptor
        var log = logger
        log[metadataKey: "jobId"] = "\(d.id)"
        log[metadataKey: "queue"] = "\(d.queue)"
        log[metadataKey: "type"] = "\(d.type)"
        log[metadataKey: "attempt"] = "\(held.attempt)"
        log.debug("job started")

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
        removeTemporaryDirectory(job.context, log: log)

        let seconds = (ContinuousClock.now - job.startedAt) / .seconds(1)
        let now = Timestamp.nowMilliseconds()
        let at = Timestamp.format(milliseconds: now)
        let stop = job.stopReason

        switch (outcome, stop) {
        case (.failure, .shutdown?):
            // Hand the job back: another daemon (or this one after a restart) runs it; the attempt does not count.
            let ok = await finish(held, mode: .requeue, event: "", log: log)
            if ok { log.info("job handed back to the queue") }
        case (.failure, .cancel?):
            let ok = await finish(held, mode: .cancelled, event: EventFactory.make(.cancelled, job: d, at: at),
                                  observe: .cancelled, log: log)
            if ok {
                metrics.jobFinished(queue: d.queue, type: d.type, outcome: "cancelled", seconds: seconds)
                log.info("job cancelled")
            }
        case (.success(let result), _):
            // A job that finished its work completes, even if a stop was asked for meanwhile.
            let resultJSON = result.encoded
            let event = EventFactory.make(.completed, job: d, at: at, fields: completedFields(d, result))
            if await finish(held, mode: .completed, detail: resultJSON, event: event, observe: .completed, log: log) {
                metrics.jobFinished(queue: d.queue, type: d.type, outcome: "completed", seconds: seconds)
                log.debug("job completed", metadata: ["seconds": "\(seconds)"])
            }
        case (.failure, .timeout?):
            let failure = JobFailure.retryable("the attempt timed out after \(Self.describe(seconds: job.timeoutSeconds))")
            await fail(job, failure: failure, seconds: seconds, retry: retry, log: log)
        case (.failure(let error), nil):
            let failure: JobFailure
            switch error {
            case let f as JobFailure: failure = f
            case is CancellationError: failure = .retryable("the attempt was interrupted")
            default: failure = .retryable("the job failed: \(error)")
            }
            await fail(job, failure: failure, seconds: seconds, retry: retry, log: log)
        }
    }

    private func fail(_ job: RunningJob, failure: JobFailure, seconds: Double, retry: RetryPolicy, log: Logger) async {
        let held = job.held
        let d = held.descriptor
        let now = Timestamp.nowMilliseconds()
        let at = Timestamp.format(milliseconds: now)
        if let deferral = failure.deferral {
            // Waiting for something outside the job: try again later, the attempt not counted.
            let jittered = deferral * Double.random(in: 1.0...1.25)
            let due = now + Int64(jittered * 1000)
            let event = EventFactory.make(.retrying, job: d, at: at, fields: [
                ("error", .string(failure.message)), ("attempt", .int(Int64(held.attempt))),
                ("maxAttempts", .int(Int64(held.maxAttempts))), ("nextAttemptAt", .string(Timestamp.format(milliseconds: due))),
                ("attemptCounted", .bool(false)),
            ])
            if await finish(held, mode: .deferred, detail: failure.message, dueMilliseconds: due, event: event,
                            observe: .retrying, failure: failure, log: log) {
                metrics.jobFinished(queue: d.queue, type: d.type, outcome: "retried", seconds: seconds)
                log.notice("job waits; trying again later without counting the attempt",
                           metadata: ["reason": "\(failure.message)", "retryIn": "\(Self.describe(seconds: jittered))"])
            }
        } else if failure.retryable && held.attempt < held.maxAttempts {
            let delay = retry.delay(afterAttempt: held.attempt)
            let due = now + Int64(delay * 1000)
            let event = EventFactory.make(.retrying, job: d, at: at, fields: [
                ("error", .string(failure.message)), ("attempt", .int(Int64(held.attempt))),
                ("maxAttempts", .int(Int64(held.maxAttempts))), ("nextAttemptAt", .string(Timestamp.format(milliseconds: due))),
            ])
            if await finish(held, mode: .retry, detail: failure.message, dueMilliseconds: due, event: event,
                            observe: .retrying, failure: failure, log: log) {
                metrics.jobFinished(queue: d.queue, type: d.type, outcome: "retried", seconds: seconds)
                log.warning("attempt failed; retrying", metadata: ["error": "\(failure.message)", "retryIn": "\(Self.describe(seconds: delay))",
                                                                  "detail": "\(failure.detail ?? "")"])
            }
        } else {
            let event = EventFactory.make(.failed, job: d, at: at, fields: [
                ("error", .string(failure.message)), ("attempt", .int(Int64(held.attempt))),
                ("willRetry", d.type == EventKind.youTubeType ? .bool(false) : nil),
            ])
            if await finish(held, mode: .failed, detail: failure.message, event: event, observe: .failed, failure: failure, log: log) {
                metrics.jobFinished(queue: d.queue, type: d.type, outcome: "failed", seconds: seconds)
                log.error("job failed", metadata: ["error": "\(failure.message)", "detail": "\(failure.detail ?? "")"])
            }
        }
    }

    /// Fields of the completed event: downloads name their file as the web client expects.
    private func completedFields(_ d: JobDescriptor, _ result: JSONValue) -> [(String, JSONText.Value?)] {
        if d.type == EventKind.youTubeType {
            return [("filePath", result["path"].map { .raw($0.encoded) }), ("fileSize", result["size"].map { .raw($0.encoded) }),
                    ("thumbnail", result["thumbnail"].map { .raw($0.encoded) }), ("result", .raw(result.encoded))]
        }
        return [("result", .raw(result.encoded))]
    }

    /// Runs the finishing script until it answers. Redis may be away for a while: keep trying (the
    /// entry stays pending, so nothing is lost if this daemon dies meanwhile) until shutdown.
    /// `observe` is the outcome as observers see it; it is written for them only when one of them wants it.
    private func finish(_ held: HeldJob, mode: FinishMode, detail: String = "", dueMilliseconds: Int64 = 0, event: String,
                        observe: JobOutcome? = nil, failure: JobFailure? = nil, log: Logger) async -> Bool {
        let observed = observe.flatMap { services.observersWant(held.descriptor, $0) ? $0 : nil }
        var delay = 50
        while true {
            do {
                let owned = try await queue.finish(held, mode: mode, detail: detail, dueMilliseconds: dueMilliseconds, event: event,
                                                   observe: observed, failureDetail: failure?.detail)
                if !owned {
                    log.warning("job was taken over by another daemon before it finished here; its result here is dropped")
                }
                return owned
            } catch {
                if isShuttingDown() && mode != .requeue {
                    log.error("could not record the end of the job; it will run again after its lease lapses", metadata: ["error": "\(error)"])
                    return false
                }
                if delay == 50 { log.warning("cannot reach Redis to record the end of the job; retrying", metadata: ["error": "\(error)"]) }
                try? await Task.sleep(for: .milliseconds(delay))
                delay = min(delay * 2, 1000)
                if isShuttingDown() && delay >= 1000 { return false }
            }
        }
    }

    private func removeTemporaryDirectory(_ context: JobContext, log: Logger) {
        guard context.madeTemporaryDirectory.load(ordering: .relaxed) else { return }
        let path = (context.temporaryRoot as NSString).appendingPathComponent(context.job.id)
        guard FileManager.default.fileExists(atPath: path) else { return }
        do { try FileManager.default.removeItem(atPath: path) } catch {
            log.warning("could not remove the job's temporary folder", metadata: ["path": "\(path)", "error": "\(error)"])
        }
    }

    static func describe(seconds: Double) -> String {
        if seconds < 1 { return "\(Int(seconds * 1000)) ms" }
        if seconds < 120 { return String(format: "%.0f s", seconds) }
        if seconds < 7200 { return String(format: "%.0f min", seconds / 60) }
        return String(format: "%.1f h", seconds / 3600)
    }
}
