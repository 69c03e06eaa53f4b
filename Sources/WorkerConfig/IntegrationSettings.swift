import JSON
import Yams

/// The sections `webhooks`, `smtp` and `notifications` of `jobs.yml`, decoded by
/// ``ConfigLoader`` into ``WorkerConfiguration/webhooks``, ``WorkerConfiguration/smtp`` and
/// ``WorkerConfiguration/notifications``:
///
///     webhooks:
///       - url: https://hooks.example.com/medianest
///         secret: "${WEBHOOK_SECRET}"
///         events: [completed, failed]          # default: completed, failed, cancelled
///     smtp:
///       host: smtp.example.com
///       port: 587                              # default 587 (465 with tls: tls, 25 with tls: none)
///       tls: auto                              # auto · starttls · tls · none
///       username: medianest
///       password: "${SMTP_PASSWORD}"
///       from: "MediaNest <medianest@example.com>"
///       ca_file: /etc/ssl/certs/internal-ca.pem  # optional
///       verify: true                           # default true
///       timeout: 30s
///     notifications:
///       users: true                            # notifications rows + P:user:<id> (default true)
///       mail:
///         to: [ops@example.com]
///         events: [failed]                     # default: failed
///
/// An event list names outcomes (`completed`, `failed`, `cancelled`, `retrying`), event names
/// (`job:failed`, `youtube:completed`), `<type>:<outcome>` (`overseerr.submit:failed`) or `*`.

/// One entry of `webhooks`.
package struct WebhookSettings: Sendable, Equatable {
    /// Where deliveries are POSTed (http or https).
    package var url: String
    /// The HMAC-SHA256 key of the signature; a secret.
    package var secret: String
    /// Which events are sent.
    package var events: [String]
    /// Seconds one delivery may take (key `timeout`, default 10 s).
    package var timeout: Double
    /// Tries of one delivery before it is given up (key `attempts`, default 5).
    package var attempts: Int

    /// A receiver.
    package init(url: String, secret: String, events: [String] = WebhookSettings.defaultEvents, timeout: Double = 10, attempts: Int = 5) {
        self.url = url
        self.secret = secret
        self.events = events
        self.timeout = timeout
        self.attempts = attempts
    }

    /// The outcomes a receiver gets when its `events` is left out.
    package static let defaultEvents = ["completed", "failed", "cancelled"]
}

/// Key `smtp`.
package struct SMTPSettings: Sendable, Equatable {
    package var host: String
    package var port: Int
    /// `auto` (STARTTLS when offered), `starttls` (required), `tls` (from the first byte) or `none`.
    package var tls: String
    package var username: String?
    /// A secret.
    package var password: String?
    /// The sender, `addr` or `Name <addr>`.
    package var from: String
    /// PEM file of CA certificates trusted for the server (key `ca_file`).
    package var caFile: String?
    /// Whether the server's certificate is checked (key `verify`, default true).
    package var verify: Bool
    /// Seconds for connecting and for each reply (default 30 s).
    package var timeout: Double

    /// Settings with the given values.
    package init(
        host: String, port: Int = 587, tls: String = "auto", username: String? = nil, password: String? = nil,
        from: String, caFile: String? = nil, verify: Bool = true, timeout: Double = 30
    ) {
        self.host = host
        self.port = port
        self.tls = tls
        self.username = username
        self.password = password
        self.from = from
        self.caFile = caFile
        self.verify = verify
        self.timeout = timeout
    }

    /// The accepted `tls` values.
    package static let tlsModes = ["auto", "starttls", "tls", "none"]
}

/// Key `notifications`.
package struct NotificationSettings: Sendable, Equatable {
    /// Whether terminal events of jobs with a userId become `notifications` rows and
    /// messages on `P:user:<id>` (key `users`, default true).
    package var users: Bool
    /// Mail to admins; nil for none.
    package var mail: MailNotificationSettings?

    /// Settings with the given values.
    package init(users: Bool = true, mail: MailNotificationSettings? = nil) {
        self.users = users
        self.mail = mail
    }
}

/// Key `notifications.mail`.
package struct MailNotificationSettings: Sendable, Equatable {
    /// Recipients.
    package var to: [String]
    /// Which events are mailed.
    package var events: [String]

    /// Settings with the given values.
    package init(to: [String], events: [String] = MailNotificationSettings.defaultEvents) {
        self.to = to
        self.events = events
    }

    /// The outcomes mail is sent for when `notifications.mail.events` is left out.
    package static let defaultEvents = ["failed"]
}

// MARK: - Decoding

extension ConfigLoader {
    /// Key `webhooks`: a list of receivers; null is none.
    static func webhooks(_ node: Node, reader: ConfigReader) throws(ConfigError) -> [WebhookSettings] {
        if reader.isNull(node) { return [] }
        guard case .sequence(let sequence) = node else {
            throw reader.error("webhooks", "expected a list of {url, secret, events}, got \(reader.describe(node))", at: node)
        }
        var hooks: [WebhookSettings] = []
        for (index, item) in sequence.enumerated() {
            hooks.append(try webhook(item, key: "webhooks[\(index)]", reader: reader))
        }
        return hooks
    }

    static func webhook(_ node: Node, key: String, reader: ConfigReader) throws(ConfigError) -> WebhookSettings {
        let section = try reader.section(node, key: key, known: ["url", "secret", "events", "timeout", "attempts"])!
        let url = try httpURL(need(section, "url", "the receiver's http(s) address", reader), key: section.path("url"), reader: reader)
        let secretNode = try need(section, "secret", "the key deliveries are signed with (e.g. \"${WEBHOOK_SECRET}\")", reader)
        let secret = try reader.string(secretNode, key: section.path("secret"), expected: "a secret")
        guard secret.utf8.count >= 16 else {
            throw reader.error(
                section.path("secret"), "must be at least 16 characters (a random string, e.g. from `openssl rand -hex 32`)", at: secretNode
            )
        }
        var webhook = WebhookSettings(url: url, secret: secret)
        if let node = section["events"] { webhook.events = try events(node, key: section.path("events"), reader: reader) }
        if let node = section["timeout"] { webhook.timeout = try reader.duration(node, key: section.path("timeout")) }
        if let node = section["attempts"] { webhook.attempts = try reader.int(node, key: section.path("attempts"), range: 1...20) }
        return webhook
    }

    /// Key `smtp`; null is no mail server.
    static func smtp(_ node: Node, reader: ConfigReader) throws(ConfigError) -> SMTPSettings? {
        if reader.isNull(node) { return nil }
        let section = try reader.section(
            node, key: "smtp",
            known: [
                "host", "port", "tls", "username", "password", "from", "ca_file", "verify", "timeout",
            ])!
        let host = try reader.string(
            need(section, "host", "the mail server's host name", reader), key: section.path("host"),
            expected: "a host name")
        let fromNode = try need(section, "from", "the sender, e.g. \"MediaNest <medianest@example.com>\"", reader)
        let from = try reader.string(fromNode, key: section.path("from"), expected: "a mail address")
        guard isMailAddress(from) else {
            throw reader.error(
                section.path("from"), "\(JSONText.quote(from, escapingNonPrintable: true)) is not a mail address", at: fromNode)
        }
        var settings = SMTPSettings(host: host, from: from)
        if let node = section["tls"] { settings.tls = try reader.choice(node, key: section.path("tls"), SMTPSettings.tlsModes) }
        settings.port = settings.tls == "tls" ? 465 : settings.tls == "none" ? 25 : 587
        if let node = section["port"] { settings.port = try reader.int(node, key: section.path("port"), range: 1...65535) }
        if let node = section["username"], !reader.isNull(node) {
            settings.username = try reader.string(node, key: section.path("username"), expected: "a user name")
        }
        if let node = section["password"], !reader.isNull(node) {
            settings.password = try reader.string(node, key: section.path("password"), expected: "a password", allowEmpty: true)
            if settings.username == nil {
                throw reader.error(section.path("username"), "is required when smtp.password is set", at: section.node)
            }
        }
        if let node = section["ca_file"], !reader.isNull(node) {
            settings.caFile = try reader.string(node, key: section.path("ca_file"), expected: "a PEM file of CA certificates")
        }
        if let node = section["verify"] { settings.verify = try reader.bool(node, key: section.path("verify")) }
        if let node = section["timeout"] { settings.timeout = try reader.duration(node, key: section.path("timeout")) }
        return settings
    }

    /// Key `notifications`; mail needs `smtp`, so that is decoded first.
    static func notifications(_ node: Node, smtp: SMTPSettings?, reader: ConfigReader) throws(ConfigError) -> NotificationSettings {
        var settings = NotificationSettings()
        guard !reader.isNull(node), let section = try reader.section(node, key: "notifications", known: ["users", "mail"]) else {
            return settings
        }
        if let node = section["users"] { settings.users = try reader.bool(node, key: section.path("users")) }
        if let node = section["mail"], !reader.isNull(node),
            let mail = try reader.section(node, key: section.path("mail"), known: ["to", "events"])
        {
            let toNode = try need(mail, "to", "the addresses that get mail", reader)
            let recipients = try strings(toNode, key: mail.path("to"), expected: "mail addresses", reader: reader)
            guard !recipients.isEmpty else { throw reader.error(mail.path("to"), "needs at least one address", at: toNode) }
            for (address, item) in recipients where !isMailAddress(address) {
                throw reader.error(
                    mail.path("to"), "\(JSONText.quote(address, escapingNonPrintable: true)) is not a mail address", at: item)
            }
            let events =
                try mail["events"].map { node throws(ConfigError) in try Self.events(node, key: mail.path("events"), reader: reader) }
                ?? MailNotificationSettings.defaultEvents
            settings.mail = MailNotificationSettings(to: recipients.map(\.0), events: events)
            if smtp == nil {
                throw reader.error(mail.key, "mail needs an smtp section with the server to send through", at: mail.node)
            }
        }
        return settings
    }

    /// An event list: one name or a list of them, each an outcome, an event name, `<type>:<outcome>` or `*`.
    static func events(_ node: Node, key: String, reader: ConfigReader) throws(ConfigError) -> [String] {
        let names = try strings(node, key: key, expected: "event names", reader: reader)
        guard !names.isEmpty else { throw reader.error(key, "needs at least one event (or \"*\")", at: node) }
        for (name, item) in names {
            let valid = name == "*" || ["completed", "failed", "cancelled", "retrying"].contains(name) || name.contains(":")
            guard valid else {
                throw reader.error(
                    key,
                    "\(JSONText.quote(name, escapingNonPrintable: true)) is not an event: use completed, failed, cancelled, retrying, an event name such as job:failed, <type>:<outcome>, or *",
                    at: item)
            }
        }
        return names.map(\.0)
    }

    /// One string or a list of strings.
    static func strings(_ node: Node, key: String, expected: String, reader: ConfigReader) throws(ConfigError) -> [(String, Node)] {
        if case .scalar = node, !reader.isNull(node) {
            return [(try reader.string(node, key: key, expected: expected), node)]
        }
        return try reader.stringList(node, key: key, expected: expected)
    }

    /// `section[name]`, or an error that says what the key is for, at the section's line.
    static func need(_ section: Section, _ name: String, _ what: String, _ reader: ConfigReader) throws(ConfigError) -> Node {
        guard let node = section[name] else {
            throw reader.error(section.path(name), "is required: \(what)", at: section.node)
        }
        return node
    }

    /// `addr` or `Name <addr>`, on one line.
    static func isMailAddress(_ text: String) -> Bool {
        text.contains("@") && !text.contains(where: { $0 == "\r" || $0 == "\n" })
    }
}
