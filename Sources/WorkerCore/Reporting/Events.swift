import JSON
/// What the daemon knows about a job while it holds it: enough to name its keys and build its events.
public struct JobDescriptor: Sendable, Equatable {
    public var id: String
    public var type: String
    public var queue: String
    public var userId: String?
    /// `payload.downloadId` of `youtube.download` jobs (used in their event names' payloads).
    public var downloadId: String?

    public init(id: String, type: String, queue: String, userId: String? = nil, downloadId: String? = nil) {
        self.id = id
        self.type = type
        self.queue = queue
        self.userId = userId
        self.downloadId = downloadId
    }

    public init(envelope: JobEnvelope, queue: String) {
        self.init(id: envelope.id, type: envelope.type, queue: queue, userId: envelope.userId,
                  downloadId: envelope.type == EventKind.youTubeType ? envelope.payload["downloadId"]?.stringValue : nil)
    }
}

/// The kinds of event a job goes through (contract section 3).
public enum EventKind: String, Sendable, CaseIterable {
    case started, progress, completed, failed, cancelled, retrying

    static let youTubeType = "youtube.download"

    /// The event's name for a job of `type`: `youtube:*` for downloads (the names the MediaNest web
    /// client listens for; a retry is `youtube:failed` with `willRetry: true`), `job:*` for the rest.
    public func name(forType type: String) -> String {
        if type == Self.youTubeType {
            return self == .retrying ? "youtube:failed" : "youtube:\(rawValue)"
        }
        return "job:\(rawValue)"
    }
}

/// Builds event JSON objects.
public enum EventFactory {
    /// One event. Every event has `event`, `jobId`, `queue`, `type`, `at` and `userId` when known;
    /// download events carry `downloadId`; `fields` adds the kind's own fields.
    public static func make(_ kind: EventKind, job: JobDescriptor, at: String, fields: [(String, JSONText.Value?)] = []) -> String {
        var pairs: [(String, JSONText.Value?)] = [
            ("event", .string(kind.name(forType: job.type))),
            ("jobId", .string(job.id)),
            ("queue", .string(job.queue)),
            ("type", .string(job.type)),
            ("at", .string(at)),
            ("userId", job.userId.map { .string($0) }),
            ("downloadId", job.downloadId.map { .string($0) }),
        ]
        pairs.append(contentsOf: fields)
        if kind == .retrying, job.type == EventKind.youTubeType, !fields.contains(where: { $0.0 == "willRetry" }) {
            pairs.append(("willRetry", .bool(true)))
        }
        return JSONText.object(pairs)
    }
}
