import JSON

/// A job's state (contract section 2), as its hash and its PostgreSQL row say it.
package enum JobState: String, Sendable, CaseIterable {
    case queued, scheduled, active, completed, failed, cancelled

    /// Whether the job is done for good (only `ctl retry` runs it again).
    package var isTerminal: Bool { self == .completed || self == .failed || self == .cancelled }
}

/// The one owner of the job hash's field names (`P:job:<id>`, contract section 2). The Lua scripts
/// spell the same names; everything in Swift that reads or writes the hash goes through these.
package enum JobHash {
    package enum Field: String, Sendable, CaseIterable {
        // contract
        case state, type, queue, userId, attempt, maxAttempts, stage, progress, downloadedBytes, totalBytes, speed, eta
        case error, result, createdAt, startedAt, finishedAt, updatedAt
        // the daemon's own
        /// The envelope as received (re-enqueued unchanged by retries and hand-backs).
        case envelope
        /// The stream entry the job is held under; ownership for the finish script.
        case entry
        /// The consumer running the current attempt.
        case worker
        /// `1` once a cancel was asked for.
        case cancel
    }

    /// The fields `JobQueue.summary` reads, in its order.
    static let summaryFields = [Field.queue, .type, .userId, .state].map(\.rawValue)

    /// A typed view of some of a job hash's fields (an HMGET or HGETALL reply).
    package struct Snapshot: Sendable, Equatable {
        package var values: [Field: String]

        package init(values: [Field: String]) { self.values = values }

        /// From an HGETALL reply's field/value pairs; unknown names are ignored.
        package init(pairs: [(String, String)]) {
            var values: [Field: String] = [:]
            for (name, value) in pairs { if let field = Field(rawValue: name) { values[field] = value } }
            self.values = values
        }

        package subscript(_ field: Field) -> String? { values[field] }
        package var state: JobState? { values[.state].flatMap(JobState.init(rawValue:)) }
        package var progress: Double? { values[.progress].flatMap(Double.init) }
        package var attempt: Int? { values[.attempt].flatMap { Int($0) } }
        package var maxAttempts: Int? { values[.maxAttempts].flatMap { Int($0) } }
        package var result: JSONValue? { values[.result].flatMap { JSONValue.parse($0) } }
        package var envelope: JSONValue? { values[.envelope].flatMap { JSONValue.parse($0) } }
    }
}

extension JobOutcome {
    /// The `outcome` label of `medianest_jobs_total` (contract section 9).
    package var metricLabel: String {
        switch self {
        case .completed: return "completed"
        case .failed: return "failed"
        case .retrying: return "retried"
        case .cancelled: return "cancelled"
        }
    }
}

/// How one attempt ends, mapped once to everything that records it: the finish script's mode, the
/// state it leaves, the event, the observers' outcome and the metrics label.
enum AttemptEnd: Sendable {
    /// The handler returned a result.
    case completed(JSONValue)
    /// No attempt is left, or the failure is permanent.
    case failed(JobFailure)
    /// Another attempt after `dueMilliseconds` (epoch ms).
    case retry(JobFailure, dueMilliseconds: Int64)
    /// Waiting for something outside the job: tried again at `dueMilliseconds`, the attempt not counted.
    case deferred(JobFailure, dueMilliseconds: Int64)
    /// Cancelled while running.
    case cancelled
    /// Shutdown: back to its queue, the attempt not counted.
    case handedBack

    /// The finish script's mode.
    var mode: FinishMode {
        switch self {
        case .completed: return .completed
        case .failed: return .failed
        case .retry: return .retry
        case .deferred: return .deferred
        case .cancelled: return .cancelled
        case .handedBack: return .requeue
        }
    }

    /// The state the job is left in.
    var state: JobState {
        switch self {
        case .completed: return .completed
        case .failed: return .failed
        case .retry, .deferred: return .scheduled
        case .cancelled: return .cancelled
        case .handedBack: return .queued
        }
    }

    /// The event published, if any (a hand-back publishes none): the one named like the outcome.
    var event: EventKind? { outcome.flatMap { EventKind(rawValue: $0.rawValue) } }

    /// What observers and metrics see (nil: a hand-back, which is not an outcome).
    var outcome: JobOutcome? {
        switch self {
        case .completed: return .completed
        case .failed: return .failed
        case .retry, .deferred: return .retrying
        case .cancelled: return .cancelled
        case .handedBack: return nil
        }
    }

    /// The failure, for the ends that have one.
    var failure: JobFailure? {
        switch self {
        case .failed(let f), .retry(let f, _), .deferred(let f, _): return f
        default: return nil
        }
    }

    /// The script's detail argument: the result JSON or the error sentence.
    var detail: String {
        switch self {
        case .completed(let result): return result.encoded
        default: return failure?.message ?? ""
        }
    }

    var dueMilliseconds: Int64 {
        switch self {
        case .retry(_, let due), .deferred(_, let due): return due
        default: return 0
        }
    }
}
