import Foundation
import JSON
import PostgresClient
import ServiceClients
import WorkerConfig

/// How a `media_requests` row follows its request in Overseerr: which status Overseerr's state
/// calls for, and the forward-only rule.
///
/// Row statuses, in order: `submitted` (sent, waiting for approval) → `approved` → `completed`
/// (the media is available in Plex), or `failed` (declined, or Overseerr could not pass it on).
/// `completed` and `failed` are final. `completed` rather than `available`: the seed's
/// "Eventual Consistency" flow ends the request `completed` with `completed_at`, and the
/// MediaNest API lists both words, `completed` being the one with a timestamp column.
enum MediaRequestProgress {
    /// The status a row should have, and for `failed` why.
    struct Target: Equatable, Sendable {
        var status: String
        var reason: String?
    }

    /// Overseerr's codes (server/constants/media.ts).
    enum RequestStatus {
        static let pendingApproval = 1, approved = 2, declined = 3, failed = 4, completed = 5
    }
    enum MediaStatus {
        static let unknown = 1, pending = 2, processing = 3, partiallyAvailable = 4, available = 5, deleted = 6
    }

    /// The row status Overseerr's state calls for; nil while the request waits for approval (or
    /// Overseerr answers a code this daemon does not know). Available media completes the request
    /// whatever the request's own status says; a partially available series stays `approved`.
    static func target(requestStatus: Int, mediaStatus: Int?, modifiedBy: String? = nil) -> Target? {
        if mediaStatus == MediaStatus.available || requestStatus == RequestStatus.completed {
            return Target(status: "completed")
        }
        switch requestStatus {
        case RequestStatus.declined:
            return Target(status: "failed", reason: "declined in Overseerr" + (modifiedBy.map { " by \($0)" } ?? ""))
        case RequestStatus.failed:
            return Target(status: "failed", reason: "Overseerr could not pass the request on to Radarr or Sonarr")
        case RequestStatus.approved:
            return Target(status: "approved")
        default:
            return nil
        }
    }

    /// Statuses a sync moves a row from.
    static let open = ["submitted", "approved"]

    private static let rank = ["submitted": 0, "approved": 1, "completed": 2, "failed": 2]

    /// Whether a row in `current` moves to `target`: only forward, only from an open status, never
    /// to the same status again.
    static func moves(from current: String, to target: String) -> Bool {
        guard open.contains(current), let from = rank[current], let to = rank[target] else { return false }
        return to > from
    }

    /// The statuses a row may be in for the move to `target` (what the UPDATE's WHERE checks).
    static func sources(of target: String) -> [String] {
        open.filter { moves(from: $0, to: target) }
    }
}

/// `overseerr.sync`: brings every `media_requests` row that is `submitted` or `approved` and has
/// an `overseerr_id` up to date with Overseerr (`GET /api/v1/request/{id}`), forward only, and
/// tells the request's user of each change once: a `notifications` row, a message on
/// `P:user:<id>`, and mail to the user's address when `notifications.mail.events` lists
/// `overseerr.sync` (or `overseerr.sync:<status>`, or `*`).
///
/// Payload: optional `limit` (rows checked in one run, default 5,000). Rows are read in pages of
/// 100 by id and checked 4 at a time through the `overseerr` breaker. A request Overseerr does not
/// know (404) is left as it is and counted as `missing`. While the circuit is open the job waits
/// (attempt not counted) and rows stay as they are; a run in which every call failed fails like
/// other Overseerr jobs (5xx retried, 4xx not); single failures are counted and left to the next run.
struct OverseerrSyncHandler: JobHandler {
    static let type = "overseerr.sync"
    static let pageSize = 100
    static let concurrency = 4
    static let defaultLimit = 5_000

    static let schema = PayloadSchema([
        .optional("limit", .integer(min: 1, max: 1_000_000), note: "most rows checked in one run; absent: 5000")
    ])

    struct Row: Sendable {
        var id: String
        var userID: String?
        var title: String?
        var mediaType: String?
        var tmdbID: String?
        var status: String
        var overseerrID: String
    }

    struct Counts {
        var checked = 0, approved = 0, completed = 0, failed = 0, unchanged = 0, missing = 0, errors = 0, notified = 0
    }

    func run(_ context: JobContext) async throws -> JSONValue {
        try Self.schema.check(context.payload)
        let limit = context.payload.given("limit")?.intValue ?? Self.defaultLimit
        guard let client = context.services.integrations.overseerr(context.services) else {
            return .object([("skipped", .string("Overseerr is not configured"))])
        }
        let postgres = context.services.postgres
        let shape: UserNotices.Shape
        do {
            shape = try await UserNotices.shape(postgres)
        } catch {
            throw await ServiceFailures.jobFailure(error, service: OverseerrClient.service, context: context)
        }
        await context.report(Progress(stage: "overseerr", percent: 0))

        var counts = Counts()
        var after = ""
        var lastFailure: (any Error)?
        pages: while counts.checked < limit {
            try Task.checkCancellation()
            let rows: [Row]
            do {
                rows = try await postgres.query(
                    """
                    SELECT id, user_id, title, media_type, tmdb_id::text AS tmdb_id, status, overseerr_id FROM media_requests
                    WHERE status IN ('submitted', 'approved') AND overseerr_id IS NOT NULL AND id > $1
                    ORDER BY id LIMIT $2
                    """, [PostgresBind(after), PostgresBind(min(Self.pageSize, limit - counts.checked))]
                ).rows.compactMap { row in
                    guard let id = row["id"], let status = row["status"], let overseerrID = row["overseerr_id"] else { return nil }
                    return Row(
                        id: id, userID: row["user_id"], title: row["title"], mediaType: row["media_type"],
                        tmdbID: row["tmdb_id"], status: status, overseerrID: overseerrID)
                }
            } catch {
                throw await ServiceFailures.jobFailure(error, service: OverseerrClient.service, context: context)
            }
            guard let last = rows.last else { break }
            after = last.id

            for start in stride(from: 0, to: rows.count, by: Self.concurrency) {
                let chunk = Array(rows[start..<min(start + Self.concurrency, rows.count)])
                let answers = await withTaskGroup(of: (Int, Result<OverseerrRequestState?, any Error>).self) { group in
                    for (index, row) in chunk.enumerated() {
                        group.addTask {
                            do { return (index, .success(try await client.requestState(id: row.overseerrID))) } catch {
                                return (index, .failure(error))
                            }
                        }
                    }
                    var out = [Result<OverseerrRequestState?, any Error>?](repeating: nil, count: chunk.count)
                    for await (index, answer) in group { out[index] = answer }
                    return out.compactMap { $0 }
                }
                for (row, answer) in zip(chunk, answers) {
                    counts.checked += 1
                    switch answer {
                    case .failure(let error):
                        if error is CancellationError { throw error }
                        if let serviceError = error as? ServiceError {
                            if case .circuitOpen = serviceError { lastFailure = error; break pages }
                            if !serviceError.isRetryable {
                                throw await ServiceFailures.jobFailure(error, service: OverseerrClient.service, context: context)
                            }
                        }
                        counts.errors += 1
                        lastFailure = error
                        context.logger.warning(
                            "Overseerr request not read",
                            metadata: [
                                "requestId": "\(row.id)", "overseerrId": "\(row.overseerrID)", "error": "\(error)",
                            ])
                    case .success(nil):
                        counts.missing += 1
                        context.logger.info(
                            "Overseerr does not know the request; row left as it is",
                            metadata: [
                                "requestId": "\(row.id)", "overseerrId": "\(row.overseerrID)",
                            ])
                    case .success(let state?):
                        guard
                            let target = MediaRequestProgress.target(
                                requestStatus: state.status, mediaStatus: state.mediaStatus,
                                modifiedBy: state.modifiedBy),
                            MediaRequestProgress.moves(from: row.status, to: target.status)
                        else {
                            counts.unchanged += 1
                            continue
                        }
                        let outcome: Moved?
                        do {
                            outcome = try await move(row, to: target, shape: shape, context: context)
                        } catch {
                            throw await ServiceFailures.jobFailure(error, service: OverseerrClient.service, context: context)
                        }
                        guard let outcome else {
                            counts.unchanged += 1  // another run moved it first
                            continue
                        }
                        switch target.status {
                        case "approved": counts.approved += 1
                        case "completed": counts.completed += 1
                        default: counts.failed += 1
                        }
                        if outcome.notified { counts.notified += 1 }
                    }
                }
                await context.report(Progress(stage: "overseerr", percent: min(Double(counts.checked) / Double(max(limit, 1)) * 100, 99)))
            }
            if rows.count < Self.pageSize { break }
        }

        let moved = counts.approved + counts.completed + counts.failed
        if let lastFailure, case .circuitOpen? = lastFailure as? ServiceError {
            // Rows already moved stay moved; the rest wait for the circuit.
            context.logger.info(
                "Overseerr sync stopped: the circuit is open", metadata: ["moved": "\(moved)", "checked": "\(counts.checked)"])
            throw await ServiceFailures.jobFailure(lastFailure, service: OverseerrClient.service, context: context)
        }
        if let lastFailure, counts.errors == counts.checked {
            throw await ServiceFailures.jobFailure(lastFailure, service: OverseerrClient.service, context: context)
        }
        return .object([
            ("checked", .number(String(counts.checked))), ("approved", .number(String(counts.approved))),
            ("completed", .number(String(counts.completed))), ("failed", .number(String(counts.failed))),
            ("unchanged", .number(String(counts.unchanged))), ("missing", .number(String(counts.missing))),
            ("errors", .number(String(counts.errors))), ("notified", .number(String(counts.notified))),
        ])
    }

    struct Moved {
        var notified: Bool
    }

    /// Moves one row, and stores its notification in the same statement (so a row that moved has
    /// its notification, and a run that lost the race to another stores none); then publishes and
    /// mails. Nil when the row was no longer in a status to move from.
    func move(
        _ row: Row, to target: MediaRequestProgress.Target, shape: UserNotices.Shape,
        context: JobContext
    ) async throws -> Moved? {
        let services = context.services
        let settings = services.configuration
        let message = Self.message(row, target: target)
        let metadata = JSONValue.compact([
            ("requestId", .string(row.id)), ("overseerrId", .string(row.overseerrID)), ("status", .string(target.status)),
            ("previousStatus", .string(row.status)), ("reason", .text(target.reason)), ("title", .text(row.title)),
            ("mediaType", .text(row.mediaType)), ("tmdbId", .text(row.tmdbID)),
            ("jobId", .string(context.job.id)), ("jobType", .string(Self.type)),
        ]).encoded
        let noticeID = DerivedID.uuid("overseerr.sync:\(row.id):\(target.status)")

        // Only columns both the daemon's table and the API's have, plus error/updated_at where they exist.
        var sets = ["status = $2"]
        if target.status == "completed" { sets.append("completed_at = COALESCE(completed_at, now())") }
        var binds = [
            PostgresBind(row.id), PostgresBind(target.status),
            PostgresBind(array: MediaRequestProgress.sources(of: target.status)), PostgresBind(noticeID),
            PostgresBind(message.type), PostgresBind(message.title), PostgresBind(message.text), PostgresBind(json: metadata),
            PostgresBind(settings.notifications.users),
        ]
        if shape.mediaRequestColumns.contains("error") {
            if target.status == "failed" {
                binds.append(PostgresBind(target.reason))
                sets.append("error = $\(binds.count)::text")
            } else {
                sets.append("error = NULL")
            }
        }
        if shape.mediaRequestColumns.contains("updated_at") { sets.append("updated_at = now()") }
        let knownUser = shape.hasUsers ? "AND EXISTS (SELECT 1 FROM users WHERE users.id = moved.user_id)" : ""
        // The daemon's record keeps the move and its reason (the API's table has no error column).
        binds.append(PostgresBind(target.status == "failed" ? target.reason : nil))
        let reason = binds.count
        binds += [PostgresBind(row.mediaType ?? "movie"), PostgresBind(row.tmdbID), PostgresBind(row.overseerrID)]
        let result = try await services.postgres.queryStoring(
            """
            WITH moved AS (
                UPDATE media_requests SET \(sets.joined(separator: ", "))
                WHERE id = $1 AND status = ANY($3::text[])
                RETURNING user_id
            ), noted AS (
                INSERT INTO notifications (id, user_id, type, title, message, read, metadata, created_at)
                SELECT $4::uuid, moved.user_id, $5, $6, $7, false, $8::jsonb, now() FROM moved
                WHERE moved.user_id IS NOT NULL AND $9::boolean \(knownUser)
                ON CONFLICT (id) DO NOTHING
                RETURNING to_char(created_at AT TIME ZONE 'UTC', \(UserNotices.timestampSQL)) AS created
            ), own AS (
                INSERT INTO worker_media_requests (id, user_id, title, media_type, tmdb_id, status, overseerr_id, error, updated_at,
                                                   completed_at)
                SELECT $1, moved.user_id, NULL, $\(reason + 1),
                       CASE WHEN $\(reason + 2)::text ~ '^[0-9]{1,9}$' THEN $\(reason + 2)::text::integer ELSE 0 END,
                       $2, $\(reason + 3), $\(reason)::text, now(), CASE WHEN $2 = 'completed' THEN now() END
                FROM moved
                ON CONFLICT (id) DO UPDATE SET status = EXCLUDED.status, error = EXCLUDED.error, updated_at = now(),
                    completed_at = COALESCE(worker_media_requests.completed_at, EXCLUDED.completed_at)
            )
            SELECT (SELECT count(*) FROM moved) AS moved, (SELECT user_id FROM moved LIMIT 1) AS user_id,
                   (SELECT created FROM noted LIMIT 1) AS created
            """, binds
        ).first
        guard let result, (result["moved"].flatMap { Int($0) } ?? 0) > 0 else { return nil }
        context.logger.info(
            "media request moved on",
            metadata: [
                "requestId": "\(row.id)", "from": "\(row.status)", "to": "\(target.status)", "reason": "\(target.reason ?? "-")",
            ])
        guard let created = result["created"], let userID = result["user_id"] else { return Moved(notified: false) }
        let notice = UserNotices.Notice(
            id: noticeID, userID: userID, type: message.type, title: message.title,
            message: message.text, createdAt: created, metadata: metadata)
        _ = await UserNotices.publish([notice], job: context.job, services: services)
        await mailUser(userID, message: message, target: target, shape: shape, settings: settings, context: context)
        return Moved(notified: true)
    }

    /// Mail to the request's user when `notifications.mail.events` asks for sync changes and the
    /// `users` table has the user's address.
    func mailUser(
        _ userID: String, message: NotificationObserver.Message, target: MediaRequestProgress.Target,
        shape: UserNotices.Shape, settings: WorkerConfiguration, context: JobContext
    ) async {
        guard let mail = settings.notifications.mail, let smtp = settings.smtp, shape.hasUserEmail,
            mail.events.contains(where: { $0 == "*" || $0 == Self.type || $0 == "\(Self.type):\(target.status)" })
        else { return }
        let address: String?
        do {
            address = try await context.services.postgres.query("SELECT email FROM users WHERE id = $1", [PostgresBind(userID)]).first?[
                "email"]
        } catch {
            context.logger.warning("user's mail address not read", metadata: ["userId": "\(userID)", "error": "\(error)"])
            return
        }
        guard let address, address.contains("@") else { return }
        _ = await UserNotices.mail(
            to: address, subject: "[MediaNest] \(message.title)", body: message.text + "\n\n-- medianest-worker\n",
            smtp: smtp, services: context.services)
    }

    static func message(_ row: Row, target: MediaRequestProgress.Target) -> NotificationObserver.Message {
        let name = row.title ?? row.tmdbID.map { "TMDB #\($0)" } ?? "your request"
        switch target.status {
        case "approved":
            return .init(type: "info", title: "Request approved", text: "Your request for \(name) was approved.")
        case "completed":
            return .init(type: "success", title: "Request available", text: "\(name) is now available to watch.")
        default:
            let declined = target.reason?.hasPrefix("declined") ?? false
            return .init(
                type: "error", title: declined ? "Request declined" : "Request failed",
                text: "Your request for \(name) was not accepted: \(target.reason ?? "declined in Overseerr").")
        }
    }
}
