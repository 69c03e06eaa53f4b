import Foundation
import Testing

@testable import WorkerConfig

/// The repository's `jobs.yml`, two folders above this file.
let exampleFilePath = URL(fileURLWithPath: #filePath)
    .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    .appendingPathComponent("jobs.yml").path

@Suite("The example jobs.yml")
struct ExampleFileTests {
    @Test func loadsWithAnEmptyEnvironment() throws {
        let configuration = try ConfigLoader.load(path: exampleFilePath, environment: [:])
        #expect(configuration.sourcePath == exampleFilePath)
        #expect(configuration.plex == nil, "an empty PLEX_TOKEN turns Plex off")
        #expect(configuration.overseerr == nil, "an empty OVERSEERR_API_KEY turns Overseerr off")
    }

    @Test func hasTheContractValues() throws {
        let configuration = try ConfigLoader.load(path: exampleFilePath, environment: ["PLEX_TOKEN": "plex-secret"])
        #expect(configuration.redis == RedisSettings(url: "redis://127.0.0.1:6379/0", prefix: "medianest"))
        #expect(configuration.postgres.url == "postgres://medianest@127.0.0.1:5432/medianest")
        #expect(configuration.paths == PathSettings(library: "/srv/media/youtube", temp: "/var/lib/medianest-worker/tmp"))
        #expect(configuration.control == ControlSettings(socket: "/run/medianest-worker/control.sock", mode: 0o660))
        #expect(configuration.metrics == MetricsSettings(enabled: true, host: "127.0.0.1", port: 9464))
        #expect(configuration.shutdownTimeout == 30)
        #expect(
            configuration.queues == [
                QueueSettings(
                    name: "youtube", concurrency: 3, maxAttempts: 3,
                    backoff: BackoffSettings(initial: 5, max: 600), timeout: 7200,
                    rateLimit: RateLimitSettings(max: 5, per: 60)),
                QueueSettings(name: "media", concurrency: 2),
                QueueSettings(name: "default", concurrency: 4),
            ])
        #expect(
            configuration.youtube
                == YouTubeSettings(
                    ytDlp: "yt-dlp", quality: "1080p", format: "mp4", allowedHosts: [],
                    output: "{channel}/{title} [{id}].{ext}"))
        #expect(
            configuration.plex
                == PlexSettings(
                    url: "http://127.0.0.1:32400", token: "plex-secret", section: "YouTube",
                    pathMap: [PathMapping(local: "/srv/media/youtube", remote: "/data/youtube")]))
        #expect(
            configuration.schedules == [
                ScheduleSettings(name: "cleanup", cron: "*/15 * * * *", job: ScheduledJob(type: "cleanup", queue: "default")),
                ScheduleSettings(name: "health", every: 120, job: ScheduledJob(type: "service.health", queue: "default")),
                ScheduleSettings(name: "overseerr-sync", every: 300, job: ScheduledJob(type: "overseerr.sync", queue: "default")),
            ])
        #expect(
            configuration.retention
                == RetentionSettings(
                    state: 7 * 86400, jobs: 30 * 86400, temp: 6 * 3600,
                    userQuota: 10 * 1_073_741_824))
    }

    @Test func matchesTheBuiltInDefaultsWhereTheContractIsSilent() throws {
        var configuration = try ConfigLoader.load(path: exampleFilePath, environment: [:])
        configuration.sourcePath = nil
        configuration.retention.userQuota = nil
        #expect(configuration == WorkerConfiguration(), "jobs.yml documents the defaults, except user_quota")
    }

    @Test func everyKeyTheLoaderKnowsAppearsInTheExample() throws {
        let text = try String(contentsOfFile: exampleFilePath, encoding: .utf8)
        let keys =
            ConfigLoader.topLevelKeys + [
                "url", "prefix", "pool_size", "library", "temp", "socket", "mode", "listen", "concurrency",
                "max_attempts", "backoff", "initial", "max", "timeout", "rate_limit", "per", "yt_dlp", "quality",
                "format", "allowed_hosts", "output", "sleep_requests", "js_runtime", "token", "section", "path_map",
                "api_key", "cron", "every", "job", "type", "queue", "payload", "state", "jobs", "user_quota",
                "delete_orphans", "level",
            ]
        for key in keys {
            #expect(text.contains("\(key):"), "jobs.yml shows \(key)")
        }
    }
}
