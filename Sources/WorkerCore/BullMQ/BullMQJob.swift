import JSON
import WorkerConfig

/// A job taken from a BullMQ queue, as its hash holds it.
struct BullMQJob: Sendable, Equatable {
    var id: String
    var name: String
    /// `data`: JSON text.
    var data: String
    /// `opts`: JSON text.
    var opts: String
    /// `atm`: attempts made before this take.
    var attemptsMade: Int
}

/// Turns a BullMQ job into the envelope of a job of ours (contract section 11): the id
/// `bullmq:<queue>:<id>`, the type its name maps to, the payload from its data, `maxAttempts` from
/// `opts.attempts` and the job's own `backoff` from `opts.backoff`. `download-video` data
/// (`downloadId`, `userId`, `url`, `quality`, `format`, `metadata`) becomes the `youtube.download`
/// payload with `userId` on the envelope; `metadata` is the backend's own copy of what yt-dlp said
/// and is not used (the daemon describes the video itself). For other types the data is the payload.
/// The payload is then checked against its type's schema on the way in, like any job's.
enum BullMQJobMapper {
    /// The data fields of the MediaNest backend's `download-video` job.
    static let downloadFields = ["downloadId", "userId", "url", "quality", "format", "metadata"]

    /// Our job id for BullMQ job `id` of queue `queue`.
    static func jobID(queue: String, id: String) -> String { "bullmq:\(queue):\(id)" }

    static func envelope(for job: BullMQJob, settings: BullMQQueueSettings) -> Result<JobEnvelope, BullMQRefusal> {
        func refuse(_ reason: String) -> Result<JobEnvelope, BullMQRefusal> { .failure(BullMQRefusal(reason: reason)) }
        let id = jobID(queue: settings.name, id: job.id)
        guard JobEnvelope.isValidID(id) else {
            return refuse("the BullMQ job id \(JSONText.quote(String(job.id.prefix(60)))) cannot be a job id here (1–128 of A-Z a-z 0-9 . _ : -)")
        }
        guard let type = settings.type(forJobName: job.name) else {
            let known = settings.jobs.map { "\($0.name) → \($0.type)" }.joined(separator: ", ")
            return refuse(
                "no job type for the BullMQ job name \(JSONText.quote(String(job.name.prefix(60)))) (bullmq.queues.\(settings.name).jobs maps \(known))")
        }
        guard let data = JSONValue.parse(job.data), case .object(let members) = data else {
            return refuse("the job's data must be a JSON object")
        }
        let opts = JSONValue.parse(job.opts.isEmpty ? "{}" : job.opts) ?? .null
        guard opts.isObject else { return refuse("the job's opts must be a JSON object") }

        var payload = data
        var userId: String?
        if type == "youtube.download" {
            var kept: [(String, JSONValue)] = []
            for (name, value) in members {
                guard downloadFields.contains(name) else {
                    return refuse("data.\(name) is not a field of a download-video job (expected: \(downloadFields.joined(separator: ", ")))")
                }
                switch name {
                case "metadata":
                    guard value.isObject || value == .null else { return refuse("data.metadata must be an object, not \(value.kind)") }
                case "userId":
                    switch value {
                    case .string(let s) where !s.isEmpty && s.utf8.count <= 128 && !s.unicodeScalars.contains(where: { $0.value < 0x20 }):
                        userId = s
                    default: return refuse("data.userId must be a non-empty string of at most 128 characters, not \(value.kind)")
                    }
                default:
                    kept.append((name, value))
                }
            }
            payload = .object(kept)
        }
        var maxAttempts = 1
        switch opts["attempts"] {
        case nil, .null?: break
        // 0 is what BullMQ's clients write when no attempts were asked for: one attempt, as BullMQ runs it.
        case let v? where v.intValue.map { $0 >= 0 && $0 <= 1000 } == true: maxAttempts = max(v.intValue!, 1)
        case let v?: return refuse("opts.attempts must be a whole number from 0 to 1000, not \(v.doubleValue != nil ? v.encoded : v.kind)")
        }
        var backoff: JobBackoff?
        switch opts["backoff"] {
        case nil, .null?: break
        case let v?:
            switch JobBackoff.parse(v, field: "opts.backoff") {
            case .success(let b): backoff = b
            case .failure(let problem): return refuse(problem.message)
            }
        }
        return .success(
            JobEnvelope(id: id, type: type, payloadJSON: payload.encoded, userId: userId, maxAttempts: maxAttempts, backoff: backoff))
    }
}

/// Why a BullMQ job cannot become a job of ours: it fails in BullMQ with this as `failedReason`.
struct BullMQRefusal: Error, Sendable, Equatable {
    var reason: String
}
