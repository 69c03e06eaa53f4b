import Foundation
import JSON
import Logging
import PostgresClient
import ServiceClients

/// `overseerr.submit`: sends a media request to Overseerr, with the request row committed first.
///
/// Payload (contract section 5): `requestId` (the `media_requests` id), `mediaType` (`movie` or
/// `tv`), `tmdbId`, optional `seasons` (season numbers, tv only) and `title`.
///
/// 1. The request is written `pending` into `worker_media_requests` (the daemon's record of every
///    request, with seasons and error) and the API's `media_requests` row is updated, or created
///    when the API has not made it and the payload has what its NOT NULL columns need (a user and
///    a title; else the request is the daemon's only, and is still sent), so the request is on
///    record before anything leaves the host. A request already `submitted` is not sent again.
/// 2. Overseerr is called. Answered: the row becomes `submitted` with `overseerr_id` (a 409,
///    "already requested", counts as submitted). Refused with a 4xx: `failed` with the reason,
///    and the job fails without retrying. A 5xx, a timeout or an open circuit: the job is retried
///    with backoff, and the row becomes `failed` when the last attempt fails.
/// 3. The user hears of it either way through the notification observer.
struct OverseerrSubmitHandler: JobHandler {
    static let type = "overseerr.submit"

    struct Request {
        var id: String
        var mediaType: String
        var tmdbId: Int
        var seasons: [Int]?
        var title: String?
    }

    /// Largest TMDB id Overseerr takes (a 32-bit integer).
    static let tmdbIds = 1...Int(Int32.max)

    /// The payload schema. `requestId` and `tmdbId` take two forms on purpose: the API sends the
    /// request id as a string or a number, and the TMDB id as a number or a numeric string;
    /// `seasons` is a list of season numbers or the word `all` (the same as leaving it out).
    static let schema = PayloadSchema(
        [
            .required("requestId", .either(.string(length: 1...128), .number()), note: "the media_requests id"),
            .required("mediaType", .oneOf(["movie", "tv"])),
            .required(
                "tmdbId", .either(.integer(min: tmdbIds.lowerBound, max: tmdbIds.upperBound), .string(pattern: .wholeNumber(tmdbIds)))),
            .optional("seasons", .either(.array(of: .integer(min: 0)), .oneOf(["all"])), note: "tv only; absent or all: every season"),
            .optional("title", .string(), note: "needed when no media_requests row exists yet"),
        ],
        rules: [
            PayloadRule { payload in
                guard case .array? = payload.given("seasons"), payload.given("mediaType")?.stringValue != "tv" else { return nil }
                return "payload.seasons only applies to mediaType tv"
            }
        ])

    /// The request in a payload; a permanent failure naming the field when it does not fit ``schema``.
    static func parse(_ payload: JSONValue) throws -> Request {
        try schema.check(payload)
        // Checked above: every field below has its type and range.
        let id: String
        switch payload.given("requestId") {
        case .string(let s)?: id = s
        case .number(let n)?: id = n
        default: throw JobFailure.permanent("payload.requestId is required")
        }
        let tmdbId: Int?
        switch payload.given("tmdbId") {
        case .string(let s)?: tmdbId = Int(s)
        case let other?: tmdbId = other.intValue
        case nil: tmdbId = nil
        }
        guard let mediaType = payload.given("mediaType")?.stringValue, let tmdbId else {
            throw JobFailure.permanent("payload.mediaType and payload.tmdbId are required")
        }
        var seasons: [Int]?
        if case .array(let items)? = payload.given("seasons") { seasons = items.compactMap(\.intValue) }
        return Request(id: id, mediaType: mediaType, tmdbId: tmdbId, seasons: seasons, title: payload.given("title")?.stringValue)
    }

    func run(_ context: JobContext) async throws -> JSONValue {
        let request = try Self.parse(context.payload)
        guard let client = context.services.integrations.overseerr(context.services) else {
            throw JobFailure.permanent("Overseerr is not configured: add an overseerr section with url and api_key to jobs.yml")
        }
        let postgres = context.services.postgres
        await context.report(Progress(stage: "recording", percent: 0))

        // 1. The record is committed before the call.
        let existing: PostgresRow?
        do {
            existing = try await postgres.queryStoring(
                """
                WITH own AS (
                    INSERT INTO worker_media_requests (id, user_id, title, media_type, tmdb_id, seasons, status, updated_at)
                    VALUES ($1, $2, $3, $4, $5, $6, 'pending', now())
                    ON CONFLICT (id) DO UPDATE SET
                        status = CASE WHEN worker_media_requests.status = 'submitted' THEN worker_media_requests.status ELSE 'pending' END,
                        user_id = COALESCE(worker_media_requests.user_id, EXCLUDED.user_id),
                        title = COALESCE(EXCLUDED.title, worker_media_requests.title),
                        error = CASE WHEN worker_media_requests.status = 'submitted' THEN worker_media_requests.error ELSE NULL END,
                        updated_at = now()
                    RETURNING status, overseerr_id, user_id, title
                ), shared AS (
                    UPDATE media_requests SET status = CASE WHEN status IN \(Self.settledStatuses) THEN status ELSE 'pending' END
                    WHERE id = $1 RETURNING status, overseerr_id
                )
                SELECT COALESCE((SELECT status FROM shared WHERE status = 'submitted'), (SELECT status FROM own)) AS status,
                       COALESCE((SELECT overseerr_id FROM shared), (SELECT overseerr_id FROM own)) AS overseerr_id,
                       EXISTS (SELECT 1 FROM shared) AS shared, (SELECT user_id FROM own) AS user_id, (SELECT title FROM own) AS title
                """,
                [
                    PostgresBind(request.id), PostgresBind(context.envelope.userId), PostgresBind(request.title),
                    PostgresBind(request.mediaType), PostgresBind(request.tmdbId),
                    PostgresBind(json: request.seasons.map { "[" + $0.map(String.init).joined(separator: ",") + "]" }),
                ]
            ).first
        } catch {
            throw JobFailure.retryable("PostgreSQL is unavailable, so the request is not sent yet; trying again later", detail: "\(error)")
        }
        if existing?["status"] == "submitted" {
            context.logger.info("media request was submitted before; not sent again", metadata: ["requestId": "\(request.id)"])
            return Self.result(request, overseerrID: existing?["overseerr_id"], alreadyRequested: false)
        }
        if existing?["shared"] != "t", let user = existing?["user_id"], let title = existing?["title"] {
            await Self.insertShared(request, user: user, title: title, context: context)
        }

        // 2. The call.
        await context.report(Progress(stage: "overseerr", percent: 50))
        let answer: OverseerrRequest
        do {
            answer = try await client.submit(mediaType: request.mediaType, tmdbId: request.tmdbId, seasons: request.seasons)
        } catch {
            let failure = await ServiceFailures.jobFailure(error, service: OverseerrClient.service, context: context)
            if let jobFailure = failure as? JobFailure, !jobFailure.retryable || context.attempt >= context.maxAttempts {
                await Self.markFailed(request.id, error: jobFailure.message, context: context)
            }
            throw failure
        }
        do {
            _ = try await postgres.query(
                """
                WITH own AS (
                    UPDATE worker_media_requests SET status = 'submitted', overseerr_id = COALESCE($2, overseerr_id), error = NULL,
                        updated_at = now()
                    WHERE id = $1
                )
                UPDATE media_requests SET status = 'submitted', overseerr_id = COALESCE($2, overseerr_id) WHERE id = $1
                """, [PostgresBind(request.id), PostgresBind(answer.id)])
        } catch {
            // Overseerr has the request; the next attempt finds it "already requested" (409) and records it.
            throw JobFailure.retryable("the request reached Overseerr but could not be recorded; recording it later", detail: "\(error)")
        }
        context.logger.info(
            "media request submitted to Overseerr",
            metadata: [
                "requestId": "\(request.id)", "overseerrId": "\(answer.id ?? "-")", "alreadyRequested": "\(answer.alreadyRequested)",
            ])
        return Self.result(request, overseerrID: answer.id, alreadyRequested: answer.alreadyRequested)
    }

    static func result(_ request: Request, overseerrID: String?, alreadyRequested: Bool) -> JSONValue {
        .compact([
            ("requestId", .string(request.id)), ("status", .string("submitted")), ("overseerrId", .text(overseerrID)),
            ("mediaType", .string(request.mediaType)), ("tmdbId", .number(String(request.tmdbId))),
            ("alreadyRequested", alreadyRequested ? .bool(true) : nil),
        ])
    }

    /// Statuses of the API's row that a new submission leaves as they are (SQL list).
    static let settledStatuses = "('submitted', 'approved', 'available', 'completed')"

    /// Creates the API's row for a request it did not make (best effort: a user its `users` table
    /// does not know is refused by the foreign key, and the request is the daemon's only).
    static func insertShared(_ request: Request, user: String, title: String, context: JobContext) async {
        do {
            _ = try await context.services.postgres.queryStoring(
                """
                INSERT INTO media_requests (id, user_id, title, media_type, tmdb_id, status, created_at)
                VALUES ($1, $2, $3, $4, $5, 'pending', now()) ON CONFLICT (id) DO NOTHING
                """,
                [PostgresBind(request.id), PostgresBind(user), PostgresBind(title), PostgresBind(request.mediaType), PostgresBind(String(request.tmdbId))])
        } catch {
            context.logger.log(
                level: error.sqlState == "23503" ? .debug : .warning, "media_requests row not created (kept in worker_media_requests)",
                metadata: ["requestId": "\(request.id)", "error": "\(error)"])
        }
    }

    /// Marks the request `failed` unless it was submitted meanwhile.
    static func markFailed(_ id: String, error: String, context: JobContext) async {
        do {
            _ = try await context.services.postgres.queryStoring(
                """
                WITH own AS (
                    UPDATE worker_media_requests SET status = 'failed', error = $2, updated_at = now() WHERE id = $1 AND status <> 'submitted'
                )
                UPDATE media_requests SET status = 'failed' WHERE id = $1 AND status NOT IN \(settledStatuses)
                """, [PostgresBind(id), PostgresBind(error)])
        } catch {
            context.logger.warning("media request not marked failed", metadata: ["requestId": "\(id)", "error": "\(error)"])
        }
    }
}
