import JSON

/// What the daemon knows about a job while it holds it: enough to name its keys and build its events.
/// A job as events and observers name it.
package struct JobDescriptor: Sendable, Equatable {
    package var id: String
    package var type: String
    package var queue: String
    package var userId: String?
    /// How the type's events are named and what they carry (registered with the type).
    package var events: EventVocabulary
    /// The value of the type's correlation field in the payload (`downloadId` of downloads).
    package var correlation: String?

    package init(
        id: String, type: String, queue: String, userId: String? = nil, events: EventVocabulary = .standard,
        correlation: String? = nil
    ) {
        self.id = id
        self.type = type
        self.queue = queue
        self.userId = userId
        self.events = events
        self.correlation = correlation
    }

    package init(envelope: JobEnvelope, queue: String, events: EventVocabulary) {
        self.init(
            id: envelope.id, type: envelope.type, queue: queue, userId: envelope.userId, events: events,
            correlation: events.correlation(in: envelope.payloadJSON))
    }

    /// `payload.downloadId` of jobs whose type correlates by it (downloads).
    package var downloadId: String? { events.correlationField == "downloadId" ? correlation : nil }
}

/// How a job type's events are named and what they carry, registered with the type: the core
/// knows no type by name.
package struct EventVocabulary: Sendable, Equatable {
    /// One field of the completed event taken from the result.
    package struct ResultField: Sendable, Equatable {
        package var event: String
        package var result: String
        package init(_ event: String, from result: String) { self.event = event; self.result = result }
    }

    /// Events are named `<prefix>:<kind>`.
    package var prefix: String
    /// A retry is announced as `<prefix>:failed` with `willRetry: true`, and a final failure carries
    /// `willRetry: false` (the MediaNest web client's convention for downloads).
    package var retryAsFailed: Bool
    /// A payload field copied into every event of the job (`downloadId`).
    package var correlationField: String?
    /// Fields of the completed event taken from the result (besides `result` itself).
    package var completedFromResult: [ResultField]

    package init(prefix: String, retryAsFailed: Bool = false, correlationField: String? = nil, completedFromResult: [ResultField] = []) {
        self.prefix = prefix
        self.retryAsFailed = retryAsFailed
        self.correlationField = correlationField
        self.completedFromResult = completedFromResult
    }

    /// `job:*` events, nothing more.
    package static let standard = EventVocabulary(prefix: "job")

    /// The event's name for `kind`.
    package func name(_ kind: EventKind) -> String {
        kind == .retrying && retryAsFailed ? "\(prefix):failed" : "\(prefix):\(kind.rawValue)"
    }

    /// The correlation field's value in a payload, when the type has one.
    func correlation(in payloadJSON: String) -> String? {
        guard let field = correlationField else { return nil }
        return JSONValue.parse(payloadJSON)?[field]?.stringValue
    }
}

/// The kinds of event a job goes through (contract section 3).
package enum EventKind: String, Sendable, CaseIterable {
    case started, progress, completed, failed, cancelled, retrying
}

/// Builds event JSON objects.
package enum EventFactory {
    /// One event. Every event has `event`, `jobId`, `queue`, `type`, `at` and `userId` when known;
    /// download events carry `downloadId`; `fields` adds the kind's own fields.
    package static func make(_ kind: EventKind, job: JobDescriptor, at: String, fields: [(String, JSONText.Value?)] = []) -> String {
        let vocabulary = job.events
        var pairs: [(String, JSONText.Value?)] = [
            ("event", .string(vocabulary.name(kind))),
            ("jobId", .string(job.id)),
            ("queue", .string(job.queue)),
            ("type", .string(job.type)),
            ("at", .string(at)),
            ("userId", job.userId.map { .string($0) }),
            (vocabulary.correlationField ?? "", vocabulary.correlationField == nil ? nil : job.correlation.map { .string($0) }),
        ]
        pairs.append(contentsOf: fields)
        if vocabulary.retryAsFailed, kind == .retrying || kind == .failed, !fields.contains(where: { $0.0 == "willRetry" }) {
            pairs.append(("willRetry", .bool(kind == .retrying)))
        }
        return JSONText.object(pairs)
    }

    /// Fields of the completed event: those the type takes from the result, then the result itself.
    static func completedFields(_ job: JobDescriptor, _ result: JSONValue) -> [(String, JSONText.Value?)] {
        job.events.completedFromResult.map { ($0.event, result[$0.result].map { .raw($0.encoded) }) } + [("result", .raw(result.encoded))]
    }
}
