import Testing

@testable import WorkerConfig

@Suite("Errors name the file, the key and the line")
struct ConfigErrorTests {
    @Test func unknownKeyIsNamedWithASuggestion() {
        let error = parseError(
            """
            queues:
              youtube:
                concurency: 3
            """)
        #expect(error?.file == "jobs.yml")
        #expect(error?.key == "queues.youtube.concurency")
        #expect(error?.line == 3)
        #expect(error?.message.contains("did you mean \"concurrency\"") == true)
    }

    @Test func unknownTopLevelKey() {
        let error = parseError("redis: {}\nlogs: { level: info }\n")
        #expect(error?.key == "logs")
        #expect(error?.line == 2)
    }

    @Test func integrationSectionsAreTyped() throws {
        let configuration = try parse(
            """
            webhooks:
              - url: https://hooks.example.com/x
                secret: a-secret-of-24-characters
                events: [youtube:completed]
            smtp: { host: mail.example.com, port: 587, from: worker@example.com, username: worker, password: "${SMTP_PASSWORD:-}" }
            notifications: ~
            """)
        #expect(
            configuration.webhooks == [
                WebhookSettings(
                    url: "https://hooks.example.com/x", secret: "a-secret-of-24-characters",
                    events: ["youtube:completed"])
            ])
        #expect(
            configuration.smtp
                == SMTPSettings(
                    host: "mail.example.com", port: 587, username: "worker", password: "",
                    from: "worker@example.com"))
        #expect(configuration.notifications == NotificationSettings())
    }

    @Test func wrongTypeSaysWhatWasExpected() {
        let error = parseError(
            """
            queues:
              youtube:
                concurrency: three
            """)
        #expect(error?.description == #"jobs.yml:3: queues.youtube.concurrency: expected a whole number from 1 to 1024, got "three""#)
    }

    @Test func sectionOfTheWrongShape() {
        let error = parseError("redis: [a, b]")
        #expect(error?.key == "redis")
        #expect(error?.message.contains("got a list") == true)
    }

    @Test func missingValue() {
        let error = parseError("queues:\n  default:\n    max_attempts:\n")
        #expect(error?.key == "queues.default.max_attempts")
        #expect(error?.message.hasSuffix("got nothing") == true)
    }

    @Test func badDuration() {
        let error = parseError("shutdown_timeout: 30 seconds")
        #expect(error?.key == "shutdown_timeout")
        #expect(error?.line == 1)
        #expect(error?.message.contains("expected a duration") == true)
        #expect(error?.message.contains("\"30 seconds\"") == true)
    }

    @Test func durationBounds() {
        #expect(parseError("lease: 1s")?.key == "lease")
        #expect(parseError("queues: { default: { timeout: 0s } }")?.key == "queues.default.timeout")
        #expect(parseError("queues: { default: { backoff: { initial: 1h, max: 10m } } }")?.key == "queues.default.backoff")
    }

    @Test func badQueueName() {
        let error = parseError("queues:\n  default: {}\n  YouTube: {}\n")
        #expect(error?.key == "queues.YouTube")
        #expect(error?.line == 3)
        #expect(error?.message.contains("a-z 0-9 _ -") == true)
    }

    @Test func noQueues() {
        #expect(parseError("queues: {}")?.key == "queues")
    }

    @Test func scheduleWithBothCronAndEvery() {
        let error = parseError(
            """
            schedules:
              cleanup:
                cron: "*/15 * * * *"
                every: 15m
                job: { type: cleanup, queue: default }
            """)
        #expect(error?.key == "schedules.cleanup")
        #expect(error?.line == 3)
        #expect(error?.message.contains("both cron and every") == true)
    }

    @Test func scheduleWithNeither() {
        let error = parseError("schedules:\n  cleanup: { job: { type: cleanup, queue: default } }\n")
        #expect(error?.key == "schedules.cleanup")
    }

    @Test func scheduleNamingAnUnknownQueue() {
        let error = parseError(
            """
            schedules:
              health:
                every: 2m
                job: { type: service.health, queue: maintenance }
            """)
        #expect(error?.key == "schedules.health.job.queue")
        #expect(error?.line == 4)
        #expect(error?.message.contains("no queue named \"maintenance\"") == true)
        #expect(error?.message.contains("youtube, media, default") == true)
    }

    @Test func scheduleJobNeedsATypeAndAMapPayload() {
        #expect(parseError("schedules: { a: { every: 1m, job: { queue: default } } }")?.key == "schedules.a.job.type")
        #expect(
            parseError("schedules: { a: { every: 1m, job: { type: x, queue: default, payload: [1] } } }")?.key
                == "schedules.a.job.payload")
    }

    @Test(arguments: [
        ("* * * *", "expected 5 fields"), ("61 * * * *", "out of range"), ("0 0 30 2 *", "never"),
        ("*/0 * * * *", "step"), ("@reboot", "unknown macro"), ("5-1 * * * *", "backwards"),
    ])
    func badCronExpression(cron: String, fragment: String) {
        let error = parseError("schedules: { a: { cron: \"\(cron)\", job: { type: cleanup, queue: default } } }")
        #expect(error?.key == "schedules.a.cron")
        #expect(error?.message.contains(fragment) == true, "\(error?.message ?? "")")
    }

    @Test(arguments: [
        ("redis: { url: \"http://127.0.0.1:6379\" }", "redis.url", "redis://"),
        ("redis: { url: \"rediss://h:6379\" }", "redis.url", "TLS"),
        ("redis: { url: \"redis://h:6379/x\" }", "redis.url", "database number"),
        ("postgres: { url: \"mysql://root@db/medianest\" }", "postgres.url", "postgres://"),
        ("plex: { url: \"ftp://plex\", token: t }", "plex.url", "http:// or https://"),
        ("overseerr: { url: \"overseerr:5055\", api_key: k }", "overseerr.url", "http:// or https://"),
    ])
    func badURLScheme(yaml: String, key: String, fragment: String) {
        let error = parseError(yaml)
        #expect(error?.key == key)
        #expect(error?.line == 1)
        #expect(error?.message.contains(fragment) == true, "\(error?.message ?? "")")
    }

    @Test func urlErrorsMaskPasswords() {
        let error = parseError("redis: { url: \"http://:hunter2@127.0.0.1:6379\" }")
        #expect(error?.description.contains("hunter2") == false)
        #expect(error?.description.contains("***") == true)
    }

    @Test(arguments: [
        ("redis: { prefix: \"has space\" }", "redis.prefix"),
        ("postgres: { pool_size: 0 }", "postgres.pool_size"),
        ("paths: { library: media/youtube }", "paths.library"),
        ("control: { mode: \"0999\" }", "control.mode"),
        ("metrics: { listen: \"127.0.0.1\" }", "metrics.listen"),
        ("metrics: { listen: \"127.0.0.1:99999\" }", "metrics.listen"),
        ("youtube: { quality: 4k }", "youtube.quality"),
        ("youtube: { format: avi }", "youtube.format"),
        ("youtube: { allowed_hosts: \"example.com\" }", "youtube.allowed_hosts"),
        ("youtube: { allowed_hosts: [\"https://example.com/\"] }", "youtube.allowed_hosts[0]"),
        ("youtube: { output: \"{title}.mp4\" }", "youtube.output"),
        ("youtube: { output: \"{uploader}/{title}.{ext}\" }", "youtube.output"),
        ("youtube: { output: \"/abs/{title}.{ext}\" }", "youtube.output"),
        ("youtube: { output: \"../{title}.{ext}\" }", "youtube.output"),
        ("plex: { token: t }", "plex.url"),
        ("retention: { user_quota: lots }", "retention.user_quota"),
        ("cleanup: { delete_orphans: maybe }", "cleanup.delete_orphans"),
        ("logging: { level: verbose }", "logging.level"),
        ("queues: { default: { rate_limit: { max: 5 } } }", "queues.default.rate_limit.per"),
        ("control: { socket: \"/\(String(repeating: "x", count: 120))\" }", "control.socket"),
    ])
    func valueErrorsNameTheirKey(yaml: String, key: String) {
        #expect(parseError(yaml)?.key == key)
    }

    @Test func unknownPlaceholderIsNamed() {
        let error = parseError("youtube: { output: \"{uploader}/{title}.{ext}\" }")
        #expect(error?.message.contains("{uploader}") == true)
    }

    @Test func invalidYAMLGivesTheLine() {
        let error = parseError(
            """
            redis:
              url: redis://127.0.0.1:6379/0
             prefix: medianest
            queues: [
            """)
        #expect(error?.file == "jobs.yml")
        #expect(error?.key == "")
        #expect(error?.line == 3)
        #expect(error?.message.hasPrefix("invalid YAML") == true)
        #expect(error?.description.hasPrefix("jobs.yml:3: invalid YAML") == true)
    }

    @Test func duplicateKey() {
        let error = parseError("logging: { level: info }\nlogging: { level: debug }\n")
        #expect(error?.message.contains("duplicate key \"logging\"") == true)
        #expect(error?.line != nil)
    }

    @Test func topLevelMustBeAMap() {
        let error = parseError("- redis\n- postgres\n")
        #expect(error?.key == "")
        #expect(error?.message.contains("top level") == true)
    }

    @Test func missingFile() {
        #expect(
            throws: ConfigError(
                file: "/nonexistent/jobs.yml", key: "",
                message: "no such file (give the path with --config or MEDIANEST_CONFIG)")
        ) {
            try ConfigLoader.load(path: "/nonexistent/jobs.yml", environment: [:])
        }
    }

    @Test func directoryInsteadOfAFile() throws {
        let scratch = try ScratchDirectory()
        do {
            _ = try ConfigLoader.load(path: scratch.path, environment: [:])
            Issue.record("expected an error")
        } catch {
            #expect(error.file == scratch.path)
            #expect(error.message.contains("directory"))
        }
    }

    @Test func invalidYAMLInAFileNamesThePath() throws {
        let scratch = try ScratchDirectory()
        let file = try scratch.write("jobs.yml", "queues:\n  default: {\n")
        do {
            _ = try ConfigLoader.load(path: file, environment: [:])
            Issue.record("expected an error")
        } catch {
            #expect(error.file == file)
            #expect(error.line != nil)
            #expect(error.description.hasPrefix(file + ":"))
        }
    }

    @Test func descriptionWithoutKeyOrLine() {
        #expect(ConfigError(file: "a.yml", key: "", message: "m").description == "a.yml: m")
        #expect(ConfigError(file: "a.yml", key: "k", message: "m", line: 2).description == "a.yml:2: k: m")
    }
}
