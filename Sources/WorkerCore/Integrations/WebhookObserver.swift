import Foundation
import JSON
import Logging
import ServiceClients
import WorkerConfig

/// Sends job outcomes to the receivers in `webhooks`: a JSON POST signed with HMAC-SHA256
/// (see ``WebhookSignature``). Each receiver is served on a task of its own, tried up to its
/// `attempts` with backoff (1 s, 2 s, 4 s, … up to 60 s); nothing here ever holds up a job.
/// A receiver that refuses a delivery with a 4xx other than 408/429 is not asked again.
///
/// Body: `{"id": <delivery id>, "event": "job:completed", "outcome": "completed", "at": …,
/// "job": {"id", "type", "queue", "userId", "downloadId", "attempt", "maxAttempts", "error",
/// "result", "payload"}}`.
struct WebhookObserver: JobObserver {
    func wants(_ event: JobEvent, configuration: WorkerConfiguration) -> Bool { !configuration.webhooks.isEmpty }

    func jobEnded(_ event: JobEvent, services: WorkerServices) async {
        let hooks = services.configuration.webhooks.filter { EventFilter.matches($0.events, event) }
        guard !hooks.isEmpty else { return }
        let name = EventFilter.eventName(event)
        // The same id when the outcome is delivered again after a daemon died: receivers can tell.
        let deliveryID = DerivedID.uuid("webhook:\(event.deliveryKey)")
        let body = Array(Self.body(event, name: name, deliveryID: deliveryID).utf8)
        let client = services.integrations.webhooks(services)
        await withTaskGroup(of: Void.self) { group in
            for hook in hooks {
                group.addTask {
                    await Self.deliver(
                        hook, event: name, deliveryID: deliveryID, body: body, client: client, services: services,
                        jobID: event.job.id)
                }
            }
        }
    }

    static func body(_ event: JobEvent, name: String, deliveryID: String) -> String {
        JSONValue.compact([
            ("id", .string(deliveryID)), ("event", .string(name)), ("outcome", .string(event.outcome.rawValue)), ("at", .string(event.at)),
            (
                "job",
                .compact([
                    ("id", .string(event.job.id)), ("type", .string(event.job.type)), ("queue", .string(event.job.queue)),
                    ("userId", .text(event.job.userId)), ("downloadId", .text(event.job.downloadId)),
                    ("attempt", .number(String(event.attempt))), ("maxAttempts", .number(String(event.maxAttempts))),
                    ("error", .text(event.error)), ("result", event.result), ("payload", event.payload),
                ])
            ),
        ]).encoded
    }

    static func deliver(
        _ hook: WebhookSettings, event: String, deliveryID: String, body: [UInt8], client: WebhookClient,
        services: WorkerServices, jobID: String
    ) async {
        var client = client
        client.policy = CallPolicy(timeout: hook.timeout, retries: 0)
        let metrics = services.metrics
        var log = services.logger
        log[metadataKey: "jobId"] = "\(jobID)"
        log[metadataKey: "webhook"] = "\(SafeURL.origin(hook.url))"  // never the path: some receivers keep a secret there
        for attempt in 1...max(hook.attempts, 1) {
            do {
                try await client.deliver(
                    url: hook.url, secret: hook.secret, event: event, deliveryID: deliveryID, body: body,
                    observe: { metrics.externalRequest(service: "webhook", outcome: $0) })
                log.debug("webhook delivered", metadata: ["event": "\(event)", "attempt": "\(attempt)"])
                return
            } catch is CancellationError {
                return
            } catch {
                let serviceError = error as? ServiceError
                let retryable = serviceError?.isRetryable ?? true
                guard retryable, attempt < hook.attempts else {
                    log.warning(
                        "webhook not delivered; giving up",
                        metadata: [
                            "event": "\(event)", "attempt": "\(attempt)", "error": "\(serviceError?.description ?? "the delivery failed")",
                        ])
                    return
                }
                var delay = min(pow(2, Double(attempt - 1)), 60) * Double.random(in: 0.8...1.2)
                if case .circuitOpen(_, let after)? = serviceError { delay = max(delay, after) }
                log.info(
                    "webhook delivery failed; trying again",
                    metadata: [
                        "event": "\(event)", "attempt": "\(attempt)", "retryIn": "\(String(format: "%.1f s", delay))",
                        "error": "\(serviceError?.description ?? "the delivery failed")",
                    ])
                try? await Task.sleep(for: .milliseconds(Int64(delay * 1000)))
            }
        }
    }
}

/// Mails the events `notifications.mail.events` selects to `notifications.mail.to`, through the
/// `smtp` server, on a thread of its own; up to 3 tries with backoff (2 s, 4 s).
struct MailObserver: JobObserver {
    func wants(_ event: JobEvent, configuration: WorkerConfiguration) -> Bool {
        configuration.smtp != nil && configuration.notifications.mail != nil
    }

    func jobEnded(_ event: JobEvent, services: WorkerServices) async {
        let settings = services.configuration
        guard let mail = settings.notifications.mail, let smtp = settings.smtp, EventFilter.matches(mail.events, event) else { return }
        let message = Self.message(event, from: smtp.from, to: mail.to)
        let configuration = SMTPConfiguration(
            host: smtp.host, port: smtp.port, security: SMTPSecurity(rawValue: smtp.tls) ?? .auto,
            username: smtp.username, password: smtp.password, caFile: smtp.caFile,
            verifyCertificate: smtp.verify, timeout: smtp.timeout)
        var log = services.logger
        log[metadataKey: "jobId"] = "\(event.job.id)"
        for attempt in 1...3 {
            do {
                try await SMTPClient.send(message, with: configuration)
                services.metrics.externalRequest(service: "smtp", outcome: "success")
                log.info("mail sent", metadata: ["event": "\(EventFilter.eventName(event))", "to": "\(mail.to.joined(separator: ","))"])
                return
            } catch is CancellationError {
                return
            } catch {
                services.metrics.externalRequest(service: "smtp", outcome: "error")
                let smtpError = error as? SMTPError
                let text = smtpError?.message ?? "mail could not be sent"
                guard smtpError?.retryable ?? true, attempt < 3 else {
                    log.warning("mail not sent; giving up", metadata: ["attempt": "\(attempt)", "error": "\(text)"])
                    return
                }
                log.info("mail not sent; trying again", metadata: ["attempt": "\(attempt)", "error": "\(text)"])
                try? await Task.sleep(for: .seconds(2 * attempt))
            }
        }
    }

    static func message(_ event: JobEvent, from: String, to: [String]) -> MailMessage {
        let name = EventFilter.eventName(event)
        var lines = [
            "Job \(event.job.id) (\(event.job.type), queue \(event.job.queue)) \(event.outcome.rawValue) at \(event.at).",
            "",
            "Attempt: \(event.attempt) of \(event.maxAttempts)",
        ]
        if let user = event.job.userId { lines.append("User: \(user)") }
        if let error = event.error { lines.append("Error: \(error)") }
        if let result = event.result { lines.append("Result: \(result.encoded)") }
        lines.append("Payload: \(event.payload.encoded)")
        lines.append("")
        lines.append("-- medianest-worker")
        return MailMessage(
            from: from, to: to, subject: "[MediaNest] \(event.job.type) \(event.outcome.rawValue): \(event.job.id)",
            body: lines.joined(separator: "\n") + "\n(\(name))")
    }
}
