import Testing

@testable import WorkerConfig

@Suite("webhooks, smtp and notifications")
struct IntegrationSettingsTests {
    static let full = """
        queues: { default: {} }
        webhooks:
          - url: https://hooks.example.com/medianest
            secret: "${WEBHOOK_SECRET}"
            events: [completed, "job:failed"]
            timeout: 5s
            attempts: 3
          - url: http://127.0.0.1:9000/in
            secret: another-secret-of-enough-length
        smtp:
          host: smtp.example.com
          tls: tls
          username: medianest
          password: "${SMTP_PASSWORD}"
          from: "MediaNest <medianest@example.com>"
          ca_file: /etc/ssl/ca.pem
          verify: false
          timeout: 1m
        notifications:
          users: false
          mail:
            to: ops@example.com
            events: "*"
        """
    static let environment = ["WEBHOOK_SECRET": "0123456789abcdef0123", "SMTP_PASSWORD": "smtp-secret"]

    @Test func areDecodedOnceIntoTypedSettings() throws {
        let configuration = try parse(Self.full, environment: Self.environment)
        #expect(
            configuration.webhooks == [
                WebhookSettings(
                    url: "https://hooks.example.com/medianest", secret: "0123456789abcdef0123",
                    events: ["completed", "job:failed"], timeout: 5, attempts: 3),
                WebhookSettings(url: "http://127.0.0.1:9000/in", secret: "another-secret-of-enough-length"),
            ])
        #expect(
            configuration.smtp
                == SMTPSettings(
                    host: "smtp.example.com", port: 465, tls: "tls", username: "medianest",
                    password: "smtp-secret", from: "MediaNest <medianest@example.com>",
                    caFile: "/etc/ssl/ca.pem", verify: false, timeout: 60))
        #expect(
            configuration.notifications
                == NotificationSettings(users: false, mail: MailNotificationSettings(to: ["ops@example.com"], events: ["*"])))
    }

    @Test func checkConfigMasksTheirSecretsAndReadsBack() throws {
        let configuration = try parse(Self.full, environment: Self.environment)
        let text = configuration.maskedDescription()
        #expect(!text.contains("0123456789abcdef0123") && !text.contains("smtp-secret"), "\(text)")
        #expect(text.contains("password: \"***\"") && text.contains("secret: \"***\""), "\(text)")
        for shown in ["host: smtp.example.com", "port: 465", "\"job:failed\"", "users: false", #"to: ["ops@example.com"]"#] {
            #expect(text.contains(shown), "\(shown) is missing from:\n\(text)")
        }
        // The masked webhook secret is too short to be accepted again; with it put back the file reads back the same.
        let reread = try parse(
            text.replacingOccurrences(of: "secret: \"***\"", with: "secret: \"${WEBHOOK_SECRET}\""),
            environment: Self.environment)
        var expected = configuration
        expected.webhooks[1].secret = Self.environment["WEBHOOK_SECRET"]!
        expected.smtp?.password = "***"
        #expect(reread == expected)
    }

    @Test(arguments: [
        // (yaml, key, line, message part)
        ("webhooks:\n  - url: https://h.example.com/x\n    secret: short\n", "webhooks[0].secret", 3, "at least 16 characters"),
        ("webhooks:\n  - url: ftp://h.example.com/x\n    secret: 0123456789abcdef\n", "webhooks[0].url", 2, "http:// or https://"),
        ("webhooks:\n  - secret: 0123456789abcdef\n", "webhooks[0].url", 2, "is required"),
        (
            "webhooks:\n  - url: https://h.example.com/x\n    secret: 0123456789abcdef\n    events: [done]\n", "webhooks[0].events", 4,
            "is not an event"
        ),
        (
            "webhooks:\n  - url: https://h.example.com/x\n    secret: 0123456789abcdef\n    attempts: 50\n", "webhooks[0].attempts", 4,
            "from 1 to 20"
        ),
        (
            "webhooks:\n  - url: https://h.example.com/x\n    secret: 0123456789abcdef\n    retries: 2\n", "webhooks[0].retries", 4,
            "unknown key"
        ),
        ("queues: { default: {} }\nwebhooks: { url: x }\n", "webhooks", 2, "expected a list"),
        ("smtp:\n  host: mail.example.com\n  from: nobody\n", "smtp.from", 3, "is not a mail address"),
        ("smtp:\n  host: mail.example.com\n  from: a@example.com\n  tls: ssl\n", "smtp.tls", 4, "one of auto, starttls, tls, none"),
        ("smtp:\n  host: mail.example.com\n  from: a@example.com\n  port: 0\n", "smtp.port", 4, "from 1 to 65535"),
        (
            "smtp:\n  host: mail.example.com\n  from: a@example.com\n  password: x\n", "smtp.username", 2,
            "is required when smtp.password is set"
        ),
        ("smtp:\n  host: mail.example.com\n  from: a@example.com\n  timeout: forever\n", "smtp.timeout", 4, "duration"),
        ("smtp:\n  from: a@example.com\n", "smtp.host", 2, "is required"),
        ("notifications:\n  users: maybe\n", "notifications.users", 2, "true or false"),
        ("notifications:\n  mail:\n    to: [ops@example.com]\n", "notifications.mail", 3, "needs an smtp section"),
        (
            "smtp: { host: m.example.com, from: a@example.com }\nnotifications:\n  mail:\n    to: [ops@example.com, nobody]\n",
            "notifications.mail.to", 4, "\"nobody\" is not a mail address"
        ),
        ("notifications:\n  mail:\n    events: [failed]\n", "notifications.mail.to", 3, "is required"),
        ("notifications:\n  mails: {}\n", "notifications.mails", 2, "did you mean \"mail\""),
    ])
    func errorsNameTheFileTheKeyAndTheLine(yaml: String, key: String, line: Int, message: String) {
        let error = parseError(yaml)
        #expect(error?.file == "jobs.yml")
        #expect(error?.key == key, "\(String(describing: error))")
        #expect(error?.line == line, "\(String(describing: error))")
        #expect(error?.message.contains(message) == true, "\(String(describing: error))")
        #expect(error?.description.hasPrefix("jobs.yml:\(line): \(key): ") == true, "\(String(describing: error))")
    }

    @Test func anUnsetVariableInsideASectionIsNamedWithItsLine() {
        let error = parseError("smtp:\n  host: mail.example.com\n  from: a@example.com\n  username: u\n  password: \"${SMTP_PASSWORD}\"\n")
        #expect(
            error?.description.hasPrefix("jobs.yml:5: smtp.password: environment variable SMTP_PASSWORD is not set") == true,
            "\(String(describing: error))")
    }

    @Test func nullSectionsAreTheDefaults() throws {
        let configuration = try parse("webhooks: ~\nsmtp: ~\nnotifications: ~\n")
        #expect(configuration.webhooks.isEmpty && configuration.smtp == nil && configuration.notifications == NotificationSettings())
    }
}
