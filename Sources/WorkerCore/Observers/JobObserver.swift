import WorkerConfig

/// How an attempt ended, as observers see it.
public enum JobOutcome: String, Sendable {
    case completed, failed, retrying, cancelled
}

/// One finished attempt, as observers see it.
public struct JobEvent: Sendable {
    public var job: JobDescriptor
    public var outcome: JobOutcome
    public var attempt: Int
    public var maxAttempts: Int
    /// The error sentence (failed, retrying).
    public var error: String?
    /// Detail for logs (never shown to users).
    public var detail: String?
    /// The result object (completed).
    public var result: JSONValue?
    /// The payload of the job.
    public var payload: JSONValue
    /// RFC 3339 time of the event.
    public var at: String

    public init(job: JobDescriptor, outcome: JobOutcome, attempt: Int, maxAttempts: Int, error: String? = nil,
                detail: String? = nil, result: JSONValue? = nil, payload: JSONValue, at: String) {
        self.job = job
        self.outcome = outcome
        self.attempt = attempt
        self.maxAttempts = maxAttempts
        self.error = error
        self.detail = detail
        self.result = result
        self.payload = payload
        self.at = at
    }
}

/// Something that reacts to job outcomes: notifications, webhooks, mail, error logs.
/// Called after the outcome is recorded in Redis, on a task of its own: an observer never
/// holds up or fails a job, and must bound its own time. Jobs that end without running are
/// reported too, with attempt 0: cancelled while queued or scheduled, and refused entries
/// (failed, with `detail` holding the entry).
public protocol JobObserver: Sendable {
    /// Whether this observer acts on `event` at all: a cheap check made on the job's own path, so
    /// that no task is started for outcomes nobody handles (most jobs of a busy queue).
    func wants(_ event: JobEvent, configuration: WorkerConfiguration) -> Bool
    func jobEnded(_ event: JobEvent, services: WorkerServices) async
}

extension JobObserver {
    public func wants(_ event: JobEvent, configuration: WorkerConfiguration) -> Bool { true }
}

extension WorkerServices {
    /// Tells every observer that wants the event, each on a task of its own.
    func notifyObservers(_ event: JobEvent) {
        guard !observers.isEmpty else { return }
        let configuration = self.configuration
        for observer in observers where observer.wants(event, configuration: configuration) {
            Task { await observer.jobEnded(event, services: self) }
        }
    }
}
