import Foundation
import JSON
import PostgresClient

/// `notification.send`: one notification to many users (the seed's "Batch Notification
/// Processing"): for each user one `notifications` row, then one message on `P:user:<id>`,
/// in batches.
///
/// Payload: `userIds` (a list) or `audience` (`{"all": true}` or `{"role": R}`, read from the
/// `users` table), `type`, `title`, `message`, optional `metadata` (an object, stored with each
/// row together with the job's id), optional `batchSize` (users per statement, default 500) and
/// `pause` (seconds between batches, default 0, to spread a large send out).
///
/// Idempotent: a row's id is made from the job id and the user
/// (`DerivedID.uuid("notification.send:<jobId>:<userId>")`), so a retried attempt, or one taken
/// over after its daemon died, never stores a second row for a user; it publishes only for rows
/// it stored itself, so no user gets the message twice (a daemon killed between a batch's commit
/// and its publish loses that batch's messages, never its rows).
///
/// With a `users` table, ids it does not hold are skipped and counted (`unknown`); without one
/// every listed id is sent to and `audience` fails (there is nobody to read). A user listed
/// twice is sent to once.
struct NotificationSendHandler: JobHandler {
    static let type = "notification.send"
    static let defaultBatchSize = 500

    static let schema = PayloadSchema(
        [
            .optional("userIds", .array(of: .string(length: 1...128), count: 1...100_000), note: "the users to notify; or audience"),
            .optional(
                "audience",
                .object([
                    .optional("all", .boolean, note: "every user in the users table"),
                    .optional("role", .string(length: 1...64), note: "users whose role is this (case ignored)"),
                ]), note: "the users to notify, from the users table; or userIds"),
            .required("type", .string(length: 1...64), note: "the notification's type, e.g. info, success, warning, error"),
            .required("title", .string(length: 1...500)),
            .required("message", .string()),
            .optional("metadata", .object([]), note: "stored with each row, with the job's id"),
            .optional("batchSize", .integer(min: 1, max: 5_000), note: "users per batch; absent: 500"),
            .optional("pause", .number(min: 0, max: 60), note: "seconds between batches; absent: 0"),
        ],
        rules: [
            PayloadRule { payload in
                switch (payload.given("userIds"), payload.given("audience")) {
                case (nil, nil): return "payload.userIds or payload.audience is required"
                case (.some, .some): return "payload.userIds and payload.audience cannot both be given"
                default: return nil
                }
            },
            PayloadRule { payload in
                guard let audience = payload.given("audience") else { return nil }
                let all = audience.given("all")?.boolValue
                let role = audience.given("role")
                if all == true, role != nil { return "payload.audience takes all or role, not both" }
                if all != true, role == nil { return "payload.audience must be {\"all\": true} or {\"role\": \"<role>\"}" }
                return nil
            },
        ])

    struct Request {
        var userIDs: [String]?
        var role: String?
        var type: String
        var title: String
        var message: String
        var metadata: [(String, JSONValue)]
        var batchSize: Int
        var pause: Double
    }

    static func parse(_ payload: JSONValue) throws -> Request {
        try schema.check(payload)
        var seen = Set<String>()
        let ids: [String]? = {
            guard case .array(let items)? = payload.given("userIds") else { return nil }
            return items.compactMap(\.stringValue).filter { seen.insert($0).inserted }
        }()
        var metadata: [(String, JSONValue)] = []
        if case .object(let pairs)? = payload.given("metadata") { metadata = pairs }
        return Request(
            userIDs: ids, role: payload.given("audience")?.given("role")?.stringValue,
            type: payload.given("type")?.stringValue ?? "info", title: payload.given("title")?.stringValue ?? "",
            message: payload.given("message")?.stringValue ?? "", metadata: metadata,
            batchSize: payload.given("batchSize")?.intValue ?? defaultBatchSize,
            pause: payload.given("pause")?.doubleValue ?? 0)
    }

    /// The row id of `userID`'s notification from job `jobID`.
    static func rowID(jobID: String, userID: String) -> String {
        DerivedID.uuid("notification.send:\(jobID):\(userID)")
    }

    struct Counts {
        /// Users who have the job's notification (stored now or by an earlier attempt).
        var sent = 0
        /// Rows this attempt stored.
        var stored = 0
        var published = 0
        var unknown = 0
    }

    func run(_ context: JobContext) async throws -> JSONValue {
        let request = try Self.parse(context.payload)
        let postgres = context.services.postgres
        let shape: UserNotices.Shape
        do {
            shape = try await UserNotices.shape(postgres)
        } catch {
            throw JobFailure.retryable("PostgreSQL is unavailable; trying again later", detail: "\(error)")
        }
        if request.userIDs == nil, !shape.hasUsers {
            throw JobFailure.permanent("payload.audience needs a users table to read the users from, and this database has none")
        }
        if request.role != nil, !shape.hasUserRole {
            throw JobFailure.permanent("payload.audience.role needs a role column in the users table, and it has none")
        }
        var metadata = request.metadata.filter { $0.0 != "jobId" }
        metadata.append(("jobId", .string(context.job.id)))
        let metadataText = JSONValue.object(metadata).encoded

        var counts = Counts()
        let total: Int
        do {
            if let ids = request.userIDs {
                total = ids.count
            } else {
                let row = try await postgres.query(
                    "SELECT count(*) AS n FROM users" + (request.role != nil ? " WHERE lower(role) = lower($1)" : ""),
                    request.role.map { [PostgresBind($0)] } ?? []
                ).first
                total = row?["n"].flatMap { Int($0) } ?? 0
            }
        } catch {
            throw JobFailure.retryable("PostgreSQL is unavailable; trying again later", detail: "\(error)")
        }
        await context.report(Progress(stage: "sending", percent: 0))

        var offset = 0
        var after = ""
        var done = 0
        while true {
            try Task.checkCancellation()
            let batch: [String]
            do {
                if let ids = request.userIDs {
                    guard offset < ids.count else { break }
                    batch = Array(ids[offset..<min(offset + request.batchSize, ids.count)])
                    offset += batch.count
                } else {
                    // Keyset pages in id order, so a re-run walks the same users.
                    var binds = [PostgresBind(after), PostgresBind(request.batchSize)]
                    var roleFilter = ""
                    if let role = request.role {
                        binds.append(PostgresBind(role))
                        roleFilter = " AND lower(role) = lower($3)"
                    }
                    batch = try await postgres.query(
                        "SELECT id FROM users WHERE id > $1\(roleFilter) ORDER BY id LIMIT $2", binds
                    ).rows.compactMap { $0["id"] }
                    guard let last = batch.last else { break }
                    after = last
                }
                try await send(
                    batch, request: request, metadata: metadataText, checkUsers: shape.hasUsers && request.userIDs != nil,
                    counts: &counts, context: context)
            } catch let error as PostgresError {
                throw JobFailure.retryable(
                    "PostgreSQL is unavailable; \(counts.sent) of \(total) sent so far; trying again later",
                    detail: "\(error)")
            }
            done += batch.count
            await context.report(Progress(stage: "sending", percent: total > 0 ? min(Double(done) / Double(total) * 100, 99.9) : 0))
            if request.pause > 0 { try await Task.sleep(for: .milliseconds(Int64(request.pause * 1000))) }
        }
        context.logger.info(
            "notification sent",
            metadata: [
                "sent": "\(counts.sent)", "stored": "\(counts.stored)", "unknown": "\(counts.unknown)", "published": "\(counts.published)",
            ])
        return .object([
            ("sent", .number(String(counts.sent))), ("stored", .number(String(counts.stored))),
            ("alreadySent", .number(String(counts.sent - counts.stored))), ("published", .number(String(counts.published))),
            ("unknown", .number(String(counts.unknown))),
        ])
    }

    /// Stores one batch's rows (skipping users the `users` table does not hold when `checkUsers`)
    /// and publishes those it stored.
    func send(
        _ batch: [String], request: Request, metadata: String, checkUsers: Bool, counts: inout Counts,
        context: JobContext
    ) async throws {
        guard !batch.isEmpty else { return }
        let ids = batch.map { Self.rowID(jobID: context.job.id, userID: $0) }
        let known = checkUsers ? "WHERE EXISTS (SELECT 1 FROM users WHERE users.id = t.uid)" : ""
        let result = try await context.services.postgres.queryStoring(
            """
            WITH t AS (SELECT * FROM unnest($1::text[], $2::text[]) AS t(nid, uid)),
            k AS (SELECT nid, uid FROM t \(known)),
            ins AS (
                INSERT INTO notifications (id, user_id, type, title, message, read, metadata, created_at)
                SELECT k.nid::uuid, k.uid, $3, $4, $5, false, $6::jsonb, now() FROM k
                ON CONFLICT (id) DO NOTHING
                RETURNING id::text AS id, user_id, to_char(created_at AT TIME ZONE 'UTC', \(UserNotices.timestampSQL)) AS created
            )
            SELECT c.known, ins.id, ins.user_id, ins.created FROM (SELECT count(*) AS known FROM k) c LEFT JOIN ins ON true
            """,
            [
                PostgresBind(array: ids), PostgresBind(array: batch), PostgresBind(request.type), PostgresBind(request.title),
                PostgresBind(request.message), PostgresBind(json: metadata),
            ])
        let knownCount = result.first?["known"].flatMap { Int($0) } ?? 0
        let notices = result.rows.compactMap { row -> UserNotices.Notice? in
            guard let id = row["id"], let user = row["user_id"], let created = row["created"] else { return nil }
            return UserNotices.Notice(
                id: id, userID: user, type: request.type, title: request.title, message: request.message,
                createdAt: created, metadata: metadata)
        }
        counts.sent += knownCount
        counts.unknown += batch.count - knownCount
        counts.stored += notices.count
        counts.published += await UserNotices.publish(notices, job: context.job, services: context.services)
    }
}
