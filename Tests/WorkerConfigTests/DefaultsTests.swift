import Testing

@testable import WorkerConfig

@Suite("Defaults")
struct DefaultsTests {
    @Test func defaultsWithoutAFile() {
        let configuration = ConfigLoader.defaults(environment: [:])
        #expect(configuration.sourcePath == nil)
        #expect(configuration.redis.url == "redis://127.0.0.1:6379/0")
        #expect(configuration.redis.prefix == "medianest")
        #expect(configuration.postgres.url == "postgres://medianest@127.0.0.1:5432/medianest")
        #expect(configuration.postgres.poolSize == 4)
        #expect(configuration.paths.library == "/srv/media/youtube")
        #expect(configuration.paths.temp == "/var/lib/medianest-worker/tmp")
        #expect(configuration.control.socket == "/run/medianest-worker/control.sock")
        #expect(configuration.control.mode == 0o660)
        #expect(configuration.control.modeText == "0660")
        #expect(configuration.metrics == MetricsSettings(enabled: true, host: "127.0.0.1", port: 9464))
        #expect(configuration.shutdownTimeout == 30)
        #expect(configuration.lease == 30)
        #expect(configuration.queueNames == ["youtube", "media", "default"])
        #expect(configuration.youtube == YouTubeSettings())
        #expect(configuration.youtube.quality == "1080p")
        #expect(configuration.youtube.format == "mp4")
        #expect(configuration.youtube.output == "{channel}/{title} [{id}].{ext}")
        #expect(configuration.plex == nil)
        #expect(configuration.overseerr == nil)
        #expect(configuration.schedules.map(\.name) == ["cleanup", "health", "overseerr-sync"])
        #expect(configuration.retention == RetentionSettings(state: 604_800, jobs: 2_592_000, temp: 21_600, userQuota: nil))
        #expect(configuration.cleanup.deleteOrphans == false)
        #expect(configuration.logging == LoggingSettings(level: "info", format: "auto"))
        #expect(configuration.webhooks.isEmpty)
        #expect(configuration.smtp == nil)
        #expect(configuration.notifications == NotificationSettings(users: true, mail: nil))
    }

    @Test func emptyFileGivesTheDefaults() throws {
        #expect(try parse("") == WorkerConfiguration())
        #expect(try parse("# only a comment\n") == WorkerConfiguration())
        #expect(try parse("---\n") == WorkerConfiguration())
    }

    @Test func defaultsOfAQueueKeyByKey() throws {
        let configuration = try parse(
            """
            queues:
              default:
              bulk: { concurrency: 8 }
            """)
        #expect(
            configuration.queues == [
                QueueSettings(
                    name: "default", concurrency: 1, maxAttempts: 3,
                    backoff: BackoffSettings(initial: 5, max: 600), timeout: 3600, rateLimit: nil),
                QueueSettings(name: "bulk", concurrency: 8),
            ])
        #expect(configuration.queue(named: "bulk")?.concurrency == 8)
        #expect(configuration.queue(named: "missing") == nil)
    }

    @Test func queuesKeepFileOrder() throws {
        let configuration = try parse(
            """
            queues: { zeta: {}, alpha: {}, default: {}, mid: {} }
            """)
        #expect(configuration.queueNames == ["zeta", "alpha", "default", "mid"])
    }

    @Test func schedulesNeedTheDefaultQueueUnlessGiven() throws {
        let error = parseError("queues: { downloads: {} }")
        #expect(error?.key == "schedules")
        #expect(error?.message.contains("schedules: {}") == true)
        #expect(try parse("queues: { downloads: {} }\nschedules: {}").schedules.isEmpty)
    }

    @Test func resolveUsesCommandLineThenEnvironmentThenDefaults() throws {
        let scratch = try ScratchDirectory()
        let file = try scratch.write("jobs.yml", "logging: { level: debug }\n")
        #expect(ConfigLoader.configPath(commandLinePath: file, environment: ["MEDIANEST_CONFIG": "/nope"]) == file)
        #expect(ConfigLoader.configPath(commandLinePath: nil, environment: ["MEDIANEST_CONFIG": file]) == file)
        #expect(ConfigLoader.configPath(commandLinePath: nil, environment: ["MEDIANEST_CONFIG": ""]) == nil)

        let fromEnvironment = try ConfigLoader.resolve(commandLinePath: nil, environment: ["MEDIANEST_CONFIG": file])
        #expect(fromEnvironment.logging.level == "debug")
        #expect(fromEnvironment.sourcePath == file)
        #expect(try ConfigLoader.resolve(commandLinePath: nil, environment: [:]) == WorkerConfiguration())
        #expect(throws: ConfigError.self) {
            try ConfigLoader.resolve(commandLinePath: nil, environment: ["MEDIANEST_REDIS_URL": "http://nope"])
        }
    }

    @Test func acceptsEveryKindOfValue() throws {
        let configuration = try parse(
            """
            redis: { url: "redis://:pw@redis.local:6380/2", prefix: "mn:prod" }
            postgres: { url: "postgresql:///medianest?host=/run/postgresql", pool_size: 10 }
            paths: { library: /media/yt/, temp: /tmp/mn }
            control: { socket: /tmp/mn.sock, mode: 600 }
            metrics: { listen: "[::1]:9000" }
            shutdown_timeout: 0
            lease: 2s
            queues:
              default: { concurrency: 1024, max_attempts: 10, backoff: { initial: 1s, max: 1s }, timeout: 90, rate_limit: { max: 1, per: 250ms } }
            youtube:
              yt_dlp: /opt/yt-dlp/bin/yt-dlp
              quality: AUDIO
              format: m4a
              allowed_hosts: [127.0.0.1, Media.Example.com, "[::1]"]
              output: "{user}/{playlist}/{index} - {title} ({date}).{ext}"
              sleep_requests: 1.5
              js_runtime: node:/usr/bin/node
            schedules:
              nightly: { cron: "@daily", job: { type: cleanup, queue: default, payload: { dryRun: true, limit: 10, tags: [a, "1"], note: ~ } } }
            retention: { state: 1d, jobs: 1w, temp: 30m, user_quota: 500MiB }
            cleanup: { delete_orphans: yes }
            logging: { level: WARNING, format: json }
            """)
        #expect(configuration.redis.prefix == "mn:prod")
        #expect(configuration.postgres.poolSize == 10)
        #expect(configuration.paths.library == "/media/yt")
        #expect(configuration.control.mode == 0o600)
        #expect(configuration.metrics == MetricsSettings(enabled: true, host: "::1", port: 9000))
        #expect(configuration.metrics.listen == "[::1]:9000")
        #expect(configuration.shutdownTimeout == 0)
        #expect(configuration.lease == 2)
        #expect(configuration.queues[0].rateLimit == RateLimitSettings(max: 1, per: 0.25))
        #expect(configuration.youtube.quality == "audio")
        #expect(configuration.youtube.allowedHosts == ["127.0.0.1", "media.example.com", "::1"])
        #expect(configuration.youtube.sleepRequests == 1.5)
        #expect(configuration.youtube.jsRuntime == "node:/usr/bin/node")
        #expect(configuration.schedules[0].cron == "@daily")
        #expect(configuration.schedules[0].job.payloadJSON == #"{"dryRun":true,"limit":10,"tags":["a","1"],"note":null}"#)
        #expect(configuration.retention.userQuota == Int64(524_288_000))
        #expect(configuration.cleanup.deleteOrphans)
        #expect(configuration.logging.level == "warning")
    }

    @Test(arguments: ["off", "\"\"", "false", "~"])
    func metricsCanBeTurnedOff(value: String) throws {
        let configuration = try parse("metrics: { listen: \(value) }")
        #expect(configuration.metrics.enabled == false)
        #expect(configuration.metrics.listen == "off")
    }

    @Test func metricsOnAllInterfaces() throws {
        #expect(try parse("metrics: { listen: \":9464\" }").metrics == MetricsSettings(enabled: true, host: "0.0.0.0", port: 9464))
    }

    @Test func yamlAnchorsAndMergeKeys() throws {
        let configuration = try parse(
            """
            queues:
              youtube: &base { concurrency: 2, timeout: 2h }
              media: { <<: *base, concurrency: 5 }
              default: {}
            """)
        #expect(configuration.queue(named: "media") == QueueSettings(name: "media", concurrency: 5, timeout: 7200))
    }

    @Test func emptyServiceSectionsAreOff() throws {
        let configuration = try parse("plex:\noverseerr: ~\n")
        #expect(configuration.plex == nil)
        #expect(configuration.overseerr == nil)
        let withToken = try parse("plex: { url: \"https://plex.example.com\", token: abc }")
        #expect(withToken.plex == PlexSettings(url: "https://plex.example.com", token: "abc"))
    }

    @Test func plexPathMapping() {
        let plex = PlexSettings(
            url: "http://plex:32400", token: "t",
            pathMap: [
                PathMapping(local: "/srv/media/youtube", remote: "/data/youtube")
            ])
        #expect(plex.remotePath(for: "/srv/media/youtube/chan/a.mp4") == "/data/youtube/chan/a.mp4")
        #expect(plex.remotePath(for: "/srv/media/youtube") == "/data/youtube")
        #expect(plex.remotePath(for: "/srv/media/youtube2/a.mp4") == "/srv/media/youtube2/a.mp4")
    }
}
