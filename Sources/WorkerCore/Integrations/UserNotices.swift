import Foundation
import JSON
import PostgresClient
import RedisClient
import ServiceClients
import WorkerConfig

/// What `overseerr.sync` and `notification.send` share: the shape of the tables they write to
/// (the daemon's own migrations or the MediaNest API's), and the message published on
/// `P:user:<id>` for a stored notification, shaped like ``NotificationObserver``'s.
enum UserNotices {
    /// `to_char` pattern of a timestamp in the contract's form (UTC, milliseconds, `Z`).
    static let timestampSQL = #"'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'"#

    /// What this database holds that the handlers adapt to, read once per attempt.
    struct Shape: Sendable {
        /// A `users` table exists (the MediaNest API's): unknown users are skipped.
        var hasUsers: Bool
        /// `users.email` exists.
        var hasUserEmail: Bool
        /// `users.role` exists.
        var hasUserRole: Bool
        /// Columns of `media_requests` (the daemon's own table has `error` and `updated_at`; the API's has neither).
        var mediaRequestColumns: Set<String>
    }

    static func shape(_ postgres: PostgresPool) async throws -> Shape {
        let rows = try await postgres.query(
            """
            SELECT table_name, column_name FROM information_schema.columns
            WHERE table_schema = current_schema() AND table_name IN ('users', 'media_requests')
            """)
        var users = Set<String>()
        var requests = Set<String>()
        for row in rows.rows {
            guard let table = row["table_name"], let column = row["column_name"] else { continue }
            if table == "users" { users.insert(column) } else { requests.insert(column) }
        }
        return Shape(
            hasUsers: users.contains("id"), hasUserEmail: users.contains("email"), hasUserRole: users.contains("role"),
            mediaRequestColumns: requests)
    }

    /// One stored notification, as published.
    struct Notice: Sendable {
        var id: String
        var userID: String
        var type: String
        var title: String
        var message: String
        var createdAt: String
        /// Compact JSON text of the row's `metadata`.
        var metadata: String
    }

    /// `{"event":"notification","jobId","queue","type","at","userId","notification":{id, type, title,
    /// message, read, createdAt, metadata}}`: the job's fields as in every event (contract section 3).
    static func published(_ notice: Notice, job: JobDescriptor) -> String {
        JSONText.object([
            ("event", .string("notification")), ("jobId", .string(job.id)), ("queue", .string(job.queue)),
            ("type", .string(job.type)), ("at", .string(notice.createdAt)), ("userId", .string(notice.userID)),
            (
                "notification",
                .raw(
                    JSONText.object([
                        ("id", .string(notice.id)), ("type", .string(notice.type)), ("title", .string(notice.title)),
                        ("message", .string(notice.message)), ("read", .bool(false)), ("createdAt", .string(notice.createdAt)),
                        ("metadata", .raw(notice.metadata)),
                    ]))
            ),
        ])
    }

    /// Publishes each notice on its user's channel in one round trip; returns how many were published.
    static func publish(_ notices: [Notice], job: JobDescriptor, services: WorkerServices) async -> Int {
        guard !notices.isEmpty else { return 0 }
        let commands = notices.map { RedisCommand(["PUBLISH", services.queue.keys.user($0.userID), published($0, job: job)]) }
        do {
            _ = try await services.redis.pipeline(commands)
            return notices.count
        } catch {
            services.logger.warning(
                "notifications not published",
                metadata: [
                    "jobId": "\(job.id)", "count": "\(notices.count)", "error": "\(error)",
                ])
            return 0
        }
    }

    /// Sends `subject`/`body` to one address through `smtp`, up to three tries; false when it was not sent.
    static func mail(to address: String, subject: String, body: String, smtp: SMTPSettings, services: WorkerServices) async -> Bool {
        let configuration = SMTPConfiguration(
            host: smtp.host, port: smtp.port, security: SMTPSecurity(rawValue: smtp.tls) ?? .auto,
            username: smtp.username, password: smtp.password, caFile: smtp.caFile,
            verifyCertificate: smtp.verify, timeout: smtp.timeout)
        let message = MailMessage(from: smtp.from, to: [address], subject: subject, body: body)
        for attempt in 1...3 {
            do {
                try await SMTPClient.send(message, with: configuration)
                services.metrics.externalRequest(service: "smtp", outcome: "success")
                return true
            } catch is CancellationError {
                return false
            } catch {
                services.metrics.externalRequest(service: "smtp", outcome: "error")
                let smtpError = error as? SMTPError
                guard smtpError?.retryable ?? true, attempt < 3 else {
                    services.logger.warning(
                        "mail to a user not sent", metadata: ["error": "\(smtpError?.message ?? "mail could not be sent")"])
                    return false
                }
                try? await Task.sleep(for: .seconds(attempt))
            }
        }
        return false
    }
}
