import Foundation
import PostgresClient
import ServiceClients

/// `overseerr.submit`: sends a media request to Overseerr, with the request row committed first.
///
/// Payload (contract section 5): `requestId` (the `media_requests` id), `mediaType` (`movie` or
/// `tv`), `tmdbId`, optional `seasons` (season numbers, tv only) and `title`.
///
/// 1. The `media_requests` row is written `pending` (created when the API has not made it), so
///    the request is on record before anything leaves the host. A row already `submitted` is not
///    sent again.
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

    static func parse(_ payload: JSONValue) throws -> Request {
        let id: String
        switch payload["requestId"] {
        case .string(let s)? where !s.isEmpty && s.utf8.count <= 128: id = s
        case .number(let n)?: id = n
        default: throw JobFailure.permanent("the payload needs 'requestId', the id of the media request (a string of at most 128 characters)")
        }
        guard let mediaType = payload["mediaType"]?.stringValue, mediaType == "movie" || mediaType == "tv" else {
            throw JobFailure.permanent("the payload's 'mediaType' must be \"movie\" or \"tv\"")
        }
        guard let tmdbId = payload["tmdbId"]?.intValue ?? payload["tmdbId"]?.stringValue.flatMap({ Int($0) }), tmdbId > 0, tmdbId <= Int(Int32.max) else {
            throw JobFailure.permanent("the payload's 'tmdbId' must be a positive whole number (the TMDB id)")
        }
        var seasons: [Int]?
        switch payload["seasons"] {
        case nil, .null?: seasons = nil
        case .string("all")?: seasons = nil
        case .array(let items)?:
            let numbers = items.compactMap(\.intValue)
            guard numbers.count == items.count, numbers.allSatisfy({ $0 >= 0 }) else {
                throw JobFailure.permanent("the payload's 'seasons' must be a list of season numbers")
            }
            guard mediaType == "tv" else { throw JobFailure.permanent("'seasons' only applies to mediaType \"tv\"") }
            seasons = numbers
        case let other?:
            throw JobFailure.permanent("the payload's 'seasons' must be a list of season numbers, not \(other.kind)")
        }
        return Request(id: id, mediaType: mediaType, tmdbId: tmdbId, seasons: seasons, title: payload["title"]?.stringValue)
    }

    func run(_ context: JobContext) async throws -> JSONValue {
        let request = try Self.parse(context.payload)
        guard let client = IntegrationHub.shared.overseerr(context.services) else {
            throw JobFailure.permanent("Overseerr is not configured: add an overseerr section with url and api_key to jobs.yml")
        }
        let postgres = context.services.postgres
        await context.report(Progress(stage: "recording", percent: 0))

        // 1. The row is committed before the call.
        let existing: PostgresRow?
        do {
            existing = try await postgres.query("""
                INSERT INTO media_requests (id, user_id, title, media_type, tmdb_id, seasons, status, updated_at)
                VALUES ($1, $2, $3, $4, $5, $6, 'pending', now())
                ON CONFLICT (id) DO UPDATE SET
                    status = CASE WHEN media_requests.status = 'submitted' THEN media_requests.status ELSE 'pending' END,
                    user_id = COALESCE(media_requests.user_id, EXCLUDED.user_id),
                    title = COALESCE(EXCLUDED.title, media_requests.title),
                    error = CASE WHEN media_requests.status = 'submitted' THEN media_requests.error ELSE NULL END,
                    updated_at = now()
                RETURNING status, overseerr_id
                """, [PostgresBind(request.id), PostgresBind(context.envelope.userId), PostgresBind(request.title),
                      PostgresBind(request.mediaType), PostgresBind(request.tmdbId),
                      PostgresBind(json: request.seasons.map { "[" + $0.map(String.init).joined(separator: ",") + "]" })]).first
        } catch {
            throw JobFailure.retryable("PostgreSQL is unavailable, so the request is not sent yet; trying again later", detail: "\(error)")
        }
        if existing?["status"] == "submitted" {
            context.logger.info("media request was submitted before; not sent again", metadata: ["requestId": "\(request.id)"])
            return Self.result(request, overseerrID: existing?["overseerr_id"], alreadyRequested: false)
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
            _ = try await postgres.query("""
                UPDATE media_requests SET status = 'submitted', overseerr_id = COALESCE($2, overseerr_id), error = NULL, updated_at = now()
                WHERE id = $1
                """, [PostgresBind(request.id), PostgresBind(answer.id)])
        } catch {
            // Overseerr has the request; the next attempt finds it "already requested" (409) and records it.
            throw JobFailure.retryable("the request reached Overseerr but could not be recorded; recording it later", detail: "\(error)")
        }
        context.logger.info("media request submitted to Overseerr", metadata: [
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

    /// Marks the row `failed` unless it was submitted meanwhile.
    static func markFailed(_ id: String, error: String, context: JobContext) async {
        do {
            _ = try await context.services.postgres.query("""
                UPDATE media_requests SET status = 'failed', error = $2, updated_at = now() WHERE id = $1 AND status <> 'submitted'
                """, [PostgresBind(id), PostgresBind(error)])
        } catch {
            context.logger.warning("media request not marked failed", metadata: ["requestId": "\(id)", "error": "\(error)"])
        }
    }
}
