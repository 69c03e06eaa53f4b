import Foundation
import JSON
import Logging
import Synchronization

/// A failure a handler reports on purpose: a sentence for the user, whether another attempt could
/// succeed, and optional detail for the logs (never shown as the job's `error`).
package struct JobFailure: Error, Sendable, CustomStringConvertible, Equatable {
    package var message: String
    package var retryable: Bool
    package var detail: String?

    /// Seconds to wait before trying again without using up an attempt (set by `waiting(for:)`).
    package var deferral: Double?

    package init(_ message: String, retryable: Bool, detail: String? = nil) {
        self.message = message
        self.retryable = retryable
        self.detail = detail
    }

    /// The job cannot go on now for a reason outside it (a service whose circuit is open): it is
    /// rescheduled after `seconds` and the attempt is not counted, so a long outage never uses up
    /// its attempts.
    package static func waiting(_ message: String, seconds: Double, detail: String? = nil) -> JobFailure {
        var failure = JobFailure(message, retryable: true, detail: detail)
        failure.deferral = max(seconds, 0.1)
        return failure
    }

    /// A failure another attempt could fix (network trouble, a busy service).
    package static func retryable(_ message: String, detail: String? = nil) -> JobFailure {
        JobFailure(message, retryable: true, detail: detail)
    }

    /// A failure no retry can fix (bad input, something that does not exist).
    package static func permanent(_ message: String, detail: String? = nil) -> JobFailure {
        JobFailure(message, retryable: false, detail: detail)
    }

    package var description: String { message }
}

/// Runs one type of job.
package protocol JobHandler: Sendable {
    /// Runs one attempt and returns the job's result (a JSON object). Throws `JobFailure` for failures
    /// it understands; any other error counts as retryable. Must stop promptly when its task is cancelled
    /// (cancel, timeout, shutdown) and clean up what it started.
    func run(_ context: JobContext) async throws -> JSONValue
}

/// Job types, their handlers and the schemas of their payloads.
package struct HandlerRegistry: Sendable {
    private var handlers: [String: any JobHandler] = [:]
    private var schemas: [String: PayloadSchema] = [:]
    private var vocabularies: [String: EventVocabulary] = [:]

    package init() {}

    /// A registry with the built-in `noop` and `sleep` types.
    package static func builtIn() -> HandlerRegistry {
        var registry = HandlerRegistry()
        registry.register("noop", NoopHandler(), schema: NoopHandler.schema)
        registry.register("sleep", SleepHandler(), schema: SleepHandler.schema)
        return registry
    }

    /// Serves `type` with `handler`. Envelopes of the type whose payload does not fit `schema` are
    /// refused at intake (failed at once, never retried, the error naming the field); its events are
    /// named and filled as `events` says.
    package mutating func register(
        _ type: String, _ handler: any JobHandler, schema: PayloadSchema,
        events: EventVocabulary = .standard
    ) {
        handlers[type] = handler
        schemas[type] = schema
        vocabularies[type] = events
    }

    /// The event vocabulary of `type` (`job:*` for types that registered none, and for unknown ones).
    package func events(for type: String) -> EventVocabulary { vocabularies[type] ?? .standard }

    /// The handler of `type`, or nil when the type is unknown.
    package func handler(for type: String) -> (any JobHandler)? { handlers[type] }
    /// The payload schema of `type`, or nil when the type is unknown (what `EnvelopeParser.parse` takes).
    package func schema(for type: String) -> PayloadSchema? { schemas[type] }
    /// Whether a handler serves `type`.
    package func knows(_ type: String) -> Bool { handlers[type] != nil }
    /// The registered types, sorted.
    package var types: [String] { handlers.keys.sorted() }
}

/// Progress as a handler reports it. Nil fields are unknown.
package struct Progress: Sendable, Equatable {
    package var stage: String?
    /// 0–100.
    package var percent: Double?
    package var downloadedBytes: Int64?
    package var totalBytes: Int64?
    /// Bytes per second.
    package var speed: Double?
    /// Seconds left.
    package var eta: Double?

    package init(
        stage: String? = nil, percent: Double? = nil, downloadedBytes: Int64? = nil, totalBytes: Int64? = nil,
        speed: Double? = nil, eta: Double? = nil
    ) {
        self.stage = stage
        self.percent = percent
        self.downloadedBytes = downloadedBytes
        self.totalBytes = totalBytes
        self.speed = speed
        self.eta = eta
    }
}

/// Everything a handler gets for one attempt.
package final class JobContext: Sendable {
    package let job: JobDescriptor
    package let envelope: JobEnvelope
    package let payload: JSONValue
    package let attempt: Int
    package let maxAttempts: Int
    /// The queue's logger; `logger` adds the job's id, type and attempt.
    let baseLogger: Logger
    /// The job's logger (its id, type and attempt in the metadata), made when asked for: most jobs never log.
    package var logger: Logger {
        var log = baseLogger
        log[metadataKey: "jobId"] = "\(job.id)"
        log[metadataKey: "type"] = "\(job.type)"
        log[metadataKey: "attempt"] = "\(attempt)"
        return log
    }
    /// Whether the job's logger writes messages of `level`.
    func logs(_ level: Logger.Level) -> Bool { baseLogger.logLevel <= level }
    /// Root of the job's temporary folders (`paths.temp`).
    package let temporaryRoot: String
    /// Configuration, Redis, PostgreSQL, metrics and enqueueing, for handlers that need them.
    package let services: WorkerServices
    let queue: JobQueue

    private struct Throttle {
        var lastSent: ContinuousClock.Instant?
        var lastStage: String?
        var lastPercent: Double?
    }
    private let throttle = Mutex(Throttle())
    /// Least time between two progress events of a job (contract: at most 2 a second).
    static let progressInterval = Duration.milliseconds(500)

    init(
        job: JobDescriptor, envelope: JobEnvelope, attempt: Int, maxAttempts: Int, logger: Logger,
        temporaryRoot: String, services: WorkerServices
    ) {
        self.services = services
        let queue = services.queue
        self.job = job
        self.envelope = envelope
        self.payload = envelope.payload
        self.attempt = attempt
        self.maxAttempts = maxAttempts
        self.baseLogger = logger
        self.temporaryRoot = temporaryRoot
        self.queue = queue
    }

    /// Whether the attempt has been asked to stop (cancel, timeout, shutdown).
    package var isCancelled: Bool { Task.isCancelled }

    /// The job's own temporary folder (`paths.temp/<job id>`), created on first use and removed
    /// after the attempt whatever its outcome.
    package func temporaryDirectory() throws -> String {
        let path = (temporaryRoot as NSString).appendingPathComponent(job.id)
        madeTemporaryDirectory.store(true, ordering: .relaxed)
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    /// Whether `temporaryDirectory()` was asked for (so the processor removes it; most jobs never make one).
    let madeTemporaryDirectory = Atomic<Bool>(false)

    /// Reports progress. The state hash and events are updated at most twice a second, and always
    /// when the stage changes or progress reaches 100 %. Never throws: progress is best effort.
    package func report(_ progress: Progress) async {
        let now = ContinuousClock.now
        let send: Bool = throttle.withLock { t in
            let stageChanged = progress.stage != nil && progress.stage != t.lastStage
            let finished = progress.percent == 100 && t.lastPercent != 100
            let due = t.lastSent.map { now - $0 >= Self.progressInterval } ?? true
            guard stageChanged || finished || due else { return false }
            t.lastSent = now
            if let stage = progress.stage { t.lastStage = stage }
            if let p = progress.percent { t.lastPercent = p }
            return true
        }
        guard send else { return }
        let at = Timestamp.now()
        var fields: [(String, String)] = [("updatedAt", at)]
        var eventFields: [(String, JSONText.Value?)] = []
        let stage = progress.stage ?? throttle.withLock { $0.lastStage }
        if let stage {
            fields.append(("stage", stage))
            eventFields.append(("stage", .string(stage)))
        }
        if let p = progress.percent {
            let clamped = min(max(p, 0), 100)
            fields.append(("progress", String(format: "%.1f", clamped)))
            eventFields.append(("progress", .oneDecimal(clamped)))
        }
        for (name, value) in [("downloadedBytes", progress.downloadedBytes), ("totalBytes", progress.totalBytes)] {
            if let value { fields.append((name, String(value))); eventFields.append((name, .int(value))) }
        }
        if let speed = progress.speed, speed.isFinite {
            fields.append(("speed", String(Int64(speed)))); eventFields.append(("speed", .int(Int64(speed))))
        }
        if let eta = progress.eta, eta.isFinite {
            fields.append(("eta", String(Int64(eta)))); eventFields.append(("eta", .int(Int64(eta))))
        }
        let event = EventFactory.make(.progress, job: job, at: at, fields: eventFields)
        do {
            try await queue.reportProgress(job, fields: fields, removed: [], event: event)
        } catch {
            logger.debug("progress not reported", metadata: ["error": "\(error)"])
        }
    }
}

/// `noop`: does nothing and succeeds. For tests and benchmarks, its payload can ask it to fail:
/// `failAttempts: N` fails attempts 1…N with a retryable error; `fail: "message"` fails every attempt
/// (retryable unless `permanent: true`).
struct NoopHandler: JobHandler {
    static let schema = PayloadSchema([
        .optional("failAttempts", .integer(min: 0), note: "fail attempts 1…N with a retryable error (tests)"),
        .optional("fail", .string(), note: "fail every attempt with this error (tests)"),
        .optional("permanent", .boolean, note: "with fail: the failure is not retried (tests)"),
    ])

    func run(_ context: JobContext) async throws -> JSONValue {
        let payload = context.payload
        try Self.schema.check(payload)
        if let failAttempts = payload.given("failAttempts")?.intValue, context.attempt <= failAttempts {
            throw JobFailure.retryable("noop asked to fail attempt \(context.attempt) of the first \(failAttempts)")
        }
        if let message = payload.given("fail")?.stringValue {
            throw JobFailure(message, retryable: payload.given("permanent")?.boolValue != true)
        }
        return .object([])
    }
}

/// `sleep`: waits `seconds` (0–86400; absent means 1), reporting progress, and stops at once when cancelled.
struct SleepHandler: JobHandler {
    static let schema = PayloadSchema([
        .optional("seconds", .number(min: 0, max: 86_400), note: "how long to sleep; absent means 1")
    ])

    func run(_ context: JobContext) async throws -> JSONValue {
        try Self.schema.check(context.payload)
        // Checked above: absent (or null) is the only way to reach the default.
        let seconds = context.payload.given("seconds")?.doubleValue ?? 1
        let start = ContinuousClock.now
        let total = Duration.milliseconds(Int64(seconds * 1000))
        await context.report(Progress(stage: "sleeping", percent: 0))
        while true {
            let elapsed = ContinuousClock.now - start
            if elapsed >= total { break }
            try await Task.sleep(for: min(total - elapsed, .milliseconds(250)))
            let done = (ContinuousClock.now - start) / total
            await context.report(Progress(stage: "sleeping", percent: min(done * 100, 100)))
        }
        return .object([("slept", .number(String(seconds)))])
    }
}
