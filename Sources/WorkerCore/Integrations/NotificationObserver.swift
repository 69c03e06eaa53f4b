import Foundation
import JSON
import Logging
import PostgresClient
import RedisClient
import WorkerConfig

/// Which events an event list (`webhooks[].events`, `notifications.mail.events`) selects: outcomes
/// (`completed`, `failed`, `cancelled`, `retrying`), event names (`job:failed`,
/// `youtube:completed`), `<type>:<outcome>` (`overseerr.submit:failed`) or `*`.
enum EventFilter {
    static func matches(_ list: [String], _ event: JobEvent) -> Bool {
        let outcome = event.outcome.rawValue
        let name = eventName(event)
        let typed = "\(event.job.type):\(outcome)"
        return list.contains { $0 == "*" || $0 == outcome || $0 == name || $0 == typed }
    }

    /// The contract's event name of an outcome (`job:completed`, `youtube:failed`, …).
    static func eventName(_ event: JobEvent) -> String {
        EventKind(rawValue: event.outcome.rawValue).map(event.job.events.name) ?? "job:\(event.outcome.rawValue)"
    }
}

/// Tells users how their jobs ended: every terminal event (completed, failed, cancelled) of a job
/// with a userId inserts a `notifications` row and publishes it on `P:user:<id>` as
/// `{"event":"notification","jobId","queue","type","at","userId","notification":{id, type, title,
/// message, read, createdAt, metadata}}`. `overseerr.submit` jobs also settle their `media_requests` row
/// when they fail or are cancelled, and notify the request's user when the job names none.
/// Off with `notifications.users: false`.
struct NotificationObserver: JobObserver {
    func wants(_ event: JobEvent, configuration: WorkerConfiguration) -> Bool {
        event.outcome != .retrying && (event.job.userId != nil || event.job.type == OverseerrSubmitHandler.type)
    }

    func jobEnded(_ event: JobEvent, services: WorkerServices) async {
        guard event.outcome != .retrying else { return }
        var userID = event.job.userId
        var title: String?
        if event.job.type == OverseerrSubmitHandler.type {
            let settled = await settleMediaRequest(event, services: services)
            userID = userID ?? settled.userID
            title = settled.title
        }
        guard let userID else { return }
        guard services.configuration.notifications.users else { return }
        let message = Self.message(for: event, requestTitle: title)
        let metadata = JSONValue.compact([
            ("jobId", .string(event.job.id)), ("jobType", .string(event.job.type)), ("queue", .string(event.job.queue)),
            ("event", .string(EventFilter.eventName(event))), ("downloadId", .text(event.job.downloadId)),
            ("error", .text(event.error)), ("result", event.result),
        ])
        // One row per outcome, also when the outcome is delivered again after a daemon died.
        let id = DerivedID.uuid("notification:\(event.deliveryKey):\(userID)")
        var createdAt = event.at
        do {
            let row = try await services.postgres.queryStoring(
                """
                INSERT INTO notifications (id, user_id, type, title, message, read, read_at, metadata, created_at)
                VALUES ($6::uuid, $1, $2, $3, $4, false, NULL, $5, now())
                ON CONFLICT (id) DO UPDATE SET id = notifications.id
                RETURNING to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') AS created
                """,
                [
                    PostgresBind(userID), PostgresBind(message.type), PostgresBind(message.title), PostgresBind(message.text),
                    PostgresBind(json: metadata.encoded), PostgresBind(id),
                ]
            ).first
            createdAt = row?["created"] ?? createdAt
        } catch {
            services.logger.warning("notification not stored", metadata: ["jobId": "\(event.job.id)", "error": "\(error)"])
        }
        // Shaped like every other event (contract section 3): event, jobId, queue, type, at, userId.
        let published = JSONText.object([
            ("event", .string("notification")), ("jobId", .string(event.job.id)), ("queue", .string(event.job.queue)),
            ("type", .string(event.job.type)), ("at", .string(createdAt)), ("userId", .string(userID)),
            (
                "notification",
                .raw(
                    JSONText.object([
                        ("id", .string(id)), ("type", .string(message.type)), ("title", .string(message.title)),
                        ("message", .string(message.text)), ("read", .bool(false)), ("createdAt", .string(createdAt)),
                        ("metadata", .raw(metadata.encoded)),
                    ]))
            ),
        ])
        do {
            _ = try await services.redis.send(RedisCommand(["PUBLISH", services.queue.keys.user(userID), published]))
        } catch {
            services.logger.warning("notification not published", metadata: ["jobId": "\(event.job.id)", "error": "\(error)"])
        }
    }

    struct Message: Equatable {
        var type: String
        var title: String
        var text: String
    }

    static func message(for event: JobEvent, requestTitle: String?) -> Message {
        let type = event.outcome == .completed ? "success" : event.outcome == .failed ? "error" : "info"
        let error = event.error ?? "it failed"
        switch event.job.type {
        case YouTubeDownloadHandler.type:
            let name =
                event.result?["title"]?.stringValue
                ?? event.result?["path"]?.stringValue.map { (($0 as NSString).lastPathComponent as NSString).deletingPathExtension }
                ?? event.payload["url"]?.stringValue ?? "the video"
            switch event.outcome {
            case .completed: return Message(type: type, title: "Download complete", text: "\(name) is in your library.")
            case .failed: return Message(type: type, title: "Download failed", text: "\(name) could not be downloaded: \(error)")
            default: return Message(type: type, title: "Download cancelled", text: "The download of \(name) was cancelled.")
            }
        case OverseerrSubmitHandler.type:
            let tmdb = event.payload["tmdbId"].map { $0.stringValue ?? $0.encoded }
            let name = requestTitle ?? event.payload["title"]?.stringValue ?? tmdb.map { "TMDB #\($0)" } ?? "your request"
            switch event.outcome {
            case .completed:
                return Message(type: type, title: "Request submitted", text: "Your request for \(name) was sent to Overseerr.")
            case .failed: return Message(type: type, title: "Request failed", text: "Your request for \(name) could not be sent: \(error)")
            default: return Message(type: type, title: "Request cancelled", text: "Your request for \(name) was cancelled.")
            }
        default:
            switch event.outcome {
            case .completed: return Message(type: type, title: "Job complete", text: "Your \(event.job.type) job finished.")
            case .failed: return Message(type: type, title: "Job failed", text: "Your \(event.job.type) job failed: \(error)")
            default: return Message(type: type, title: "Job cancelled", text: "Your \(event.job.type) job was cancelled.")
            }
        }
    }

    /// Marks a failed or cancelled request's row (unless it was submitted) and reads its user and title.
    func settleMediaRequest(_ event: JobEvent, services: WorkerServices) async -> (userID: String?, title: String?) {
        guard let requestID = event.payload["requestId"].flatMap({ $0.stringValue ?? ($0.intValue.map(String.init)) }) else {
            return (nil, nil)
        }
        do {
            let row: PostgresRow?
            switch event.outcome {
            case .failed, .cancelled:
                row = try await services.postgres.queryStoring(
                    """
                    WITH own AS (
                        UPDATE worker_media_requests SET status = CASE WHEN status = 'submitted' THEN status ELSE $2 END,
                            error = CASE WHEN status = 'submitted' THEN error ELSE $3 END, updated_at = now()
                        WHERE id = $1 RETURNING user_id, title
                    ), shared AS (
                        UPDATE media_requests SET status = CASE WHEN status = 'submitted' THEN status ELSE $2 END
                        WHERE id = $1 RETURNING user_id, title
                    )
                    SELECT user_id, title FROM shared UNION ALL SELECT user_id, title FROM own LIMIT 1
                    """,
                    [
                        PostgresBind(requestID), PostgresBind(event.outcome == .failed ? "failed" : "cancelled"),
                        PostgresBind(event.error),
                    ]
                ).first
            default:
                row = try await services.postgres.query(
                    """
                    SELECT user_id, title FROM media_requests WHERE id = $1
                    UNION ALL SELECT user_id, title FROM worker_media_requests WHERE id = $1 LIMIT 1
                    """,
                    [PostgresBind(requestID)]
                ).first
            }
            return (row?["user_id"], row?["title"])
        } catch {
            services.logger.warning("media request row not settled", metadata: ["requestId": "\(requestID)", "error": "\(error)"])
            return (nil, nil)
        }
    }
}

/// Records every failed job in `worker_errors` (the daemon's table), and a failed job of a user in
/// the API's `error_logs` too: correlation id = job id, `error_code` `JOB_FAILED`, the job's error
/// sentence, the detail as `stack_trace`, `request_path` `job:<type>`, `request_method` `JOB` (the
/// API's columns are for its HTTP errors; both are NOT NULL there), `status_code` empty. A job
/// without a user, or of a user the API's `users` does not know, is in `worker_errors` only.
struct ErrorLogObserver: JobObserver {
    /// `request_method` of the rows the daemon writes into `error_logs`.
    static let requestMethod = "JOB"

    func wants(_ event: JobEvent, configuration: WorkerConfiguration) -> Bool { event.outcome == .failed }

    func jobEnded(_ event: JobEvent, services: WorkerServices) async {
        guard event.outcome == .failed else { return }
        let metadata = JSONValue.compact([
            ("queue", .string(event.job.queue)), ("type", .string(event.job.type)),
            ("attempt", .number(String(event.attempt))), ("maxAttempts", .number(String(event.maxAttempts))),
            ("payload", event.payload), ("at", .string(event.at)),
        ])
        let id = DerivedID.uuid("error_log:\(event.deliveryKey)")
        let error = event.error ?? "the job failed"
        do {
            _ = try await services.postgres.queryStoring(
                """
                INSERT INTO worker_errors (id, correlation_id, user_id, job_type, error_message, stack_trace, metadata)
                VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (id) DO NOTHING
                """,
                [
                    PostgresBind(id), PostgresBind(event.job.id), PostgresBind(event.job.userId), PostgresBind(event.job.type),
                    PostgresBind(error), PostgresBind(event.detail), PostgresBind(json: metadata.encoded),
                ])
        } catch {
            services.logger.warning("error log row not stored", metadata: ["jobId": "\(event.job.id)", "error": "\(error)"])
        }
        guard let user = event.job.userId else { return }
        do {
            _ = try await services.postgres.queryStoring(
                """
                INSERT INTO error_logs (id, correlation_id, user_id, error_code, error_message, stack_trace, request_path,
                                        request_method, status_code, metadata, created_at)
                VALUES ($1, $2, $3, 'JOB_FAILED', $4, $5, $6, $7, NULL, $8, now())
                ON CONFLICT (id) DO NOTHING
                """,
                [
                    PostgresBind(id), PostgresBind(event.job.id), PostgresBind(user), PostgresBind(error), PostgresBind(event.detail),
                    PostgresBind("job:\(event.job.type)"), PostgresBind(Self.requestMethod), PostgresBind(json: metadata.encoded),
                ])
        } catch {
            let level: Logger.Level = error.sqlState == "23503" ? .debug : .warning
            services.logger.log(
                level: level, "error_logs row not stored (kept in worker_errors)", metadata: ["jobId": "\(event.job.id)", "error": "\(error)"])
        }
    }
}
