import JSON
import WorkerConfig

/// How an attempt ended, as observers see it.
package enum JobOutcome: String, Sendable {
    case completed, failed, retrying, cancelled
}

/// One finished attempt, as observers see it.
package struct JobEvent: Sendable {
    package var job: JobDescriptor
    package var outcome: JobOutcome
    package var attempt: Int
    package var maxAttempts: Int
    /// The error sentence (failed, retrying).
    package var error: String?
    /// Detail for logs (never shown to users).
    package var detail: String?
    /// The result object (completed).
    package var result: JSONValue?
    /// The payload of the job.
    package var payload: JSONValue
    /// RFC 3339 time of the event.
    package var at: String
    /// The outcome's entry in `P:outcomes`: the same when the outcome is delivered again after a
    /// daemon died, so observers make their rows and deliveries idempotent with it.
    package var deliveryKey: String

    package init(
        job: JobDescriptor, outcome: JobOutcome, attempt: Int, maxAttempts: Int, error: String? = nil,
        detail: String? = nil, result: JSONValue? = nil, payload: JSONValue, at: String, deliveryKey: String = ""
    ) {
        self.job = job
        self.outcome = outcome
        self.attempt = attempt
        self.maxAttempts = maxAttempts
        self.error = error
        self.detail = detail
        self.result = result
        self.payload = payload
        self.at = at
        self.deliveryKey = deliveryKey.isEmpty ? "\(job.id):\(outcome.rawValue):\(attempt):\(at)" : deliveryKey
    }
}

/// Something that reacts to job outcomes: notifications, webhooks, mail, error logs.
/// The outcome is written to `P:outcomes` by the same script that records it in Redis, and the
/// `OutcomeDispatcher` of some host calls the observers for it, on a task of its own: an observer
/// never holds up or fails a job, and must bound its own time. Delivery is at least once (a
/// daemon that dies while observers run has them run again on another host), so observers keep
/// what they write idempotent with `deliveryKey`. Jobs that end without running are reported too,
/// with attempt 0: cancelled while queued or scheduled, and refused entries (failed, with `detail`
/// holding the entry).
package protocol JobObserver: Sendable {
    /// Whether this observer acts on `event` at all: a cheap check made on the job's own path, so
    /// that no task is started for outcomes nobody handles (most jobs of a busy queue).
    func wants(_ event: JobEvent, configuration: WorkerConfiguration) -> Bool
    func jobEnded(_ event: JobEvent, services: WorkerServices) async
}

extension JobObserver {
    package func wants(_ event: JobEvent, configuration: WorkerConfiguration) -> Bool { true }
}

extension WorkerServices {
    /// Whether any observer acts on this outcome of `job`: asked on the job's own path, so that the
    /// outcome is only written for the observers when one of them handles it.
    func observersWant(_ job: JobDescriptor, _ outcome: JobOutcome) -> Bool {
        guard !observers.isEmpty else { return false }
        let configuration = self.configuration
        let probe = JobEvent(job: job, outcome: outcome, attempt: 0, maxAttempts: 0, payload: .null, at: "", deliveryKey: "probe")
        return observers.contains { $0.wants(probe, configuration: configuration) }
    }
}
