import JSON

import JSON
/// The reserved sections `webhooks`, `smtp` and `notifications` of `jobs.yml`, typed.
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
public struct IntegrationSettings: Sendable, Equatable {
    /// Webhook receivers, in file order.
    public var webhooks: [WebhookSettings]
    /// The mail server; nil when there is no `smtp` section.
    public var smtp: SMTPSettings?
    /// What users and admins are told.
    public var notifications: NotificationSettings

    /// No webhooks, no mail, user notifications on.
    public init(webhooks: [WebhookSettings] = [], smtp: SMTPSettings? = nil, notifications: NotificationSettings = NotificationSettings()) {
        self.webhooks = webhooks
        self.smtp = smtp
        self.notifications = notifications
    }

    /// The outcomes webhooks get when their `events` is left out.
    public static let defaultWebhookEvents = ["completed", "failed", "cancelled"]
    /// The outcomes mail is sent for when `notifications.mail.events` is left out.
    public static let defaultMailEvents = ["failed"]
}

/// One entry of `webhooks`.
public struct WebhookSettings: Sendable, Equatable {
    /// Where deliveries are POSTed (http or https).
    public var url: String
    /// The HMAC-SHA256 key of the signature; a secret.
    public var secret: String
    /// Which events are sent.
    public var events: [String]
    /// Seconds one delivery may take (key `timeout`, default 10 s).
    public var timeout: Double
    /// Tries of one delivery before it is given up (key `attempts`, default 5).
    public var attempts: Int

    /// A receiver.
    public init(url: String, secret: String, events: [String] = IntegrationSettings.defaultWebhookEvents, timeout: Double = 10, attempts: Int = 5) {
        self.url = url
        self.secret = secret
        self.events = events
        self.timeout = timeout
        self.attempts = attempts
    }
}

/// Key `smtp`.
public struct SMTPSettings: Sendable, Equatable {
    public var host: String
    public var port: Int
    /// `auto` (STARTTLS when offered), `starttls` (required), `tls` (from the first byte) or `none`.
    public var tls: String
    public var username: String?
    /// A secret.
    public var password: String?
    /// The sender, `addr` or `Name <addr>`.
    public var from: String
    /// PEM file of CA certificates trusted for the server (key `ca_file`).
    public var caFile: String?
    /// Whether the server's certificate is checked (key `verify`, default true).
    public var verify: Bool
    /// Seconds for connecting and for each reply (default 30 s).
    public var timeout: Double

    /// Settings with the given values.
    public init(host: String, port: Int = 587, tls: String = "auto", username: String? = nil, password: String? = nil,
                from: String, caFile: String? = nil, verify: Bool = true, timeout: Double = 30) {
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
    public static let tlsModes = ["auto", "starttls", "tls", "none"]
}

/// Key `notifications`.
public struct NotificationSettings: Sendable, Equatable {
    /// Whether terminal events of jobs with a userId become `notifications` rows and
    /// messages on `P:user:<id>` (key `users`, default true).
    public var users: Bool
    /// Mail to admins; nil for none.
    public var mail: MailNotificationSettings?

    /// Settings with the given values.
    public init(users: Bool = true, mail: MailNotificationSettings? = nil) {
        self.users = users
        self.mail = mail
    }
}

/// Key `notifications.mail`.
public struct MailNotificationSettings: Sendable, Equatable {
    /// Recipients.
    public var to: [String]
    /// Which events are mailed.
    public var events: [String]

    /// Settings with the given values.
    public init(to: [String], events: [String] = IntegrationSettings.defaultMailEvents) {
        self.to = to
        self.events = events
    }
}

extension WorkerConfiguration {
    /// The reserved sections typed and checked. Throws ``ConfigError`` naming the key and what is wrong.
    public func integrationSettings() throws(ConfigError) -> IntegrationSettings {
        try IntegrationSettings.parse(extras: extras, file: sourcePath ?? "<string>")
    }
}

extension IntegrationSettings {
    /// Reads the reserved sections from their JSON text (``WorkerConfiguration/extras``).
    public static func parse(extras: [String: String], file: String) throws(ConfigError) -> IntegrationSettings {
        var settings = IntegrationSettings()
        let reader = ExtrasReader(file: file)
        if let text = extras["webhooks"], let value = try reader.document(text, key: "webhooks"), value != .null {
            guard case .array(let items) = value else { throw reader.error("webhooks", "expected a list of {url, secret, events}, got \(value.kindName)") }
            for (index, item) in items.enumerated() {
                settings.webhooks.append(try webhook(item, key: "webhooks[\(index)]", reader: reader))
            }
        }
        if let text = extras["smtp"], let value = try reader.document(text, key: "smtp"), value != .null {
            settings.smtp = try smtp(value, reader: reader)
        }
        if let text = extras["notifications"], let value = try reader.document(text, key: "notifications"), value != .null {
            let members = try reader.object(value, key: "notifications", known: ["users", "mail"])
            if let users = members["users"] { settings.notifications.users = try reader.bool(users, key: "notifications.users") }
            if let mail = members["mail"], mail != .null {
                let m = try reader.object(mail, key: "notifications.mail", known: ["to", "events"])
                guard let to = m["to"] else { throw reader.error("notifications.mail.to", "is required: the addresses that get mail") }
                let recipients = try reader.strings(to, key: "notifications.mail.to", allowSingle: true)
                guard !recipients.isEmpty else { throw reader.error("notifications.mail.to", "needs at least one address") }
                for address in recipients where !address.contains("@") || address.contains(where: { $0 == "\r" || $0 == "\n" }) {
                    throw reader.error("notifications.mail.to", "\(JSONText.quote(address, escapingNonPrintable: true)) is not a mail address")
                }
                let events = try m["events"].map { v throws(ConfigError) in try reader.events(v, key: "notifications.mail.events") }
                    ?? defaultMailEvents
                settings.notifications.mail = MailNotificationSettings(to: recipients, events: events)
                if settings.smtp == nil {
                    throw reader.error("notifications.mail", "mail needs an smtp section with the server to send through")
                }
            }
        }
        return settings
    }

    static func webhook(_ value: JSONValue, key: String, reader: ExtrasReader) throws(ConfigError) -> WebhookSettings {
        let m = try reader.object(value, key: key, known: ["url", "secret", "events", "timeout", "attempts"])
        guard let urlValue = m["url"] else { throw reader.error("\(key).url", "is required: the receiver's http(s) address") }
        let url = try reader.string(urlValue, key: "\(key).url")
        if let problem = ConfigLoader.httpURLProblem(url) { throw reader.error("\(key).url", problem) }
        guard let secretValue = m["secret"] else {
            throw reader.error("\(key).secret", "is required: the key deliveries are signed with (e.g. \"${WEBHOOK_SECRET}\")")
        }
        let secret = try reader.string(secretValue, key: "\(key).secret")
        guard secret.utf8.count >= 16 else {
            throw reader.error("\(key).secret", "must be at least 16 characters (a random string, e.g. from `openssl rand -hex 32`)")
        }
        var webhook = WebhookSettings(url: url, secret: secret)
        if let events = m["events"] { webhook.events = try reader.events(events, key: "\(key).events") }
        if let timeout = m["timeout"] { webhook.timeout = try reader.duration(timeout, key: "\(key).timeout") }
        if let attempts = m["attempts"] { webhook.attempts = try reader.int(attempts, key: "\(key).attempts", range: 1...20) }
        return webhook
    }

    static func smtp(_ value: JSONValue, reader: ExtrasReader) throws(ConfigError) -> SMTPSettings {
        let m = try reader.object(value, key: "smtp", known: ["host", "port", "tls", "username", "password", "from", "ca_file", "verify", "timeout"])
        guard let host = m["host"] else { throw reader.error("smtp.host", "is required: the mail server's host name") }
        guard let from = m["from"] else { throw reader.error("smtp.from", "is required: the sender, e.g. \"MediaNest <medianest@example.com>\"") }
        let fromText = try reader.string(from, key: "smtp.from")
        guard fromText.contains("@"), !fromText.contains(where: { $0 == "\r" || $0 == "\n" }) else {
            throw reader.error("smtp.from", "\(JSONText.quote(fromText, escapingNonPrintable: true)) is not a mail address")
        }
        var settings = SMTPSettings(host: try reader.string(host, key: "smtp.host"), from: fromText)
        if let tls = m["tls"] {
            let mode = try reader.string(tls, key: "smtp.tls")
            guard SMTPSettings.tlsModes.contains(mode) else {
                throw reader.error("smtp.tls", "expected one of \(SMTPSettings.tlsModes.joined(separator: ", ")), got \(JSONText.quote(mode, escapingNonPrintable: true))")
            }
            settings.tls = mode
        }
        settings.port = settings.tls == "tls" ? 465 : settings.tls == "none" ? 25 : 587
        if let port = m["port"] { settings.port = try reader.int(port, key: "smtp.port", range: 1...65535) }
        if let user = m["username"], user != .null { settings.username = try reader.string(user, key: "smtp.username") }
        if let password = m["password"], password != .null { settings.password = try reader.string(password, key: "smtp.password", allowEmpty: true) }
        if settings.password != nil && settings.username == nil {
            throw reader.error("smtp.username", "is required when smtp.password is set")
        }
        if let ca = m["ca_file"], ca != .null { settings.caFile = try reader.string(ca, key: "smtp.ca_file") }
        if let verify = m["verify"] { settings.verify = try reader.bool(verify, key: "smtp.verify") }
        if let timeout = m["timeout"] { settings.timeout = try reader.duration(timeout, key: "smtp.timeout") }
        return settings
    }
}

/// Reads values of the reserved sections, with errors that name the key.
struct ExtrasReader {
    let file: String

    func error(_ key: String, _ message: String) -> ConfigError {
        ConfigError(file: file, key: key, message: message)
    }

    func document(_ text: String, key: String) throws(ConfigError) -> JSONValue? {
        guard let value = JSONValue.parse(text) else { throw error(key, "cannot be read") }
        return value
    }

    func object(_ value: JSONValue, key: String, known: [String]) throws(ConfigError) -> [String: JSONValue] {
        guard case .object(let members) = value else { throw error(key, "expected a map, got \(value.kindName)") }
        var out: [String: JSONValue] = [:]
        for (name, member) in members {
            guard known.contains(name) else {
                throw error("\(key).\(name)", "unknown key; expected one of \(known.joined(separator: ", "))")
            }
            out[name] = member
        }
        return out
    }

    func string(_ value: JSONValue, key: String, allowEmpty: Bool = false) throws(ConfigError) -> String {
        let text: String
        switch value {
        case .string(let s): text = s
        case .number(let n): text = n
        default: throw error(key, "expected text, got \(value.kindName)")
        }
        guard allowEmpty || !text.isEmpty else { throw error(key, "must not be empty") }
        return text
    }

    func strings(_ value: JSONValue, key: String, allowSingle: Bool) throws(ConfigError) -> [String] {
        if allowSingle, case .string(let single) = value { return [single] }
        guard case .array(let items) = value else { throw error(key, "expected a list, got \(value.kindName)") }
        var out: [String] = []
        for (index, item) in items.enumerated() { out.append(try string(item, key: "\(key)[\(index)]")) }
        return out
    }

    func events(_ value: JSONValue, key: String) throws(ConfigError) -> [String] {
        let names = try strings(value, key: key, allowSingle: true)
        guard !names.isEmpty else { throw error(key, "needs at least one event (or \"*\")") }
        for name in names {
            let valid = name == "*" || ["completed", "failed", "cancelled", "retrying"].contains(name) || name.contains(":")
            guard valid else {
                throw error(key, "\(JSONText.quote(name, escapingNonPrintable: true)) is not an event: use completed, failed, cancelled, retrying, an event name such as job:failed, <type>:<outcome>, or *")
            }
        }
        return names
    }

    func bool(_ value: JSONValue, key: String) throws(ConfigError) -> Bool {
        guard case .bool(let b) = value else { throw error(key, "expected true or false, got \(value.kindName)") }
        return b
    }

    func int(_ value: JSONValue, key: String, range: ClosedRange<Int>) throws(ConfigError) -> Int {
        guard case .number(let n) = value, let i = Int(n), range.contains(i) else {
            throw error(key, "expected a whole number from \(range.lowerBound) to \(range.upperBound)")
        }
        return i
    }

    func duration(_ value: JSONValue, key: String) throws(ConfigError) -> Double {
        let text: String
        switch value {
        case .number(let n): text = n
        case .string(let s): text = s
        default: throw error(key, "expected a duration such as 10s, got \(value.kindName)")
        }
        guard let seconds = DurationParser.parse(text), seconds > 0 else {
            throw error(key, "expected a duration such as 10s or 1m, got \(JSONText.quote(text, escapingNonPrintable: true))")
        }
        return seconds
    }
}

extension JSONValue {
    var kindName: String {
        switch self {
        case .null: return "nothing"
        case .bool: return "true/false"
        case .number: return "a number"
        case .string: return "text"
        case .array: return "a list"
        case .object: return "a map"
        }
    }
}
