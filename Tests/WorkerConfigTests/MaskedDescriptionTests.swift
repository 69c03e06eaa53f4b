import Testing

@testable import WorkerConfig

@Suite("maskedDescription")
struct MaskedDescriptionTests {
    static let yaml = """
        redis: { url: "redis://default:redis-pass@redis.local:6379/0", prefix: medianest }
        postgres: { url: "postgres://medianest:pg-pass@db.local:5432/medianest?sslmode=disable&password=qs-pass" }
        plex:
          url: http://plex.local:32400
          token: "${PLEX_TOKEN}"
          section: YouTube
          path_map: { /srv/media/youtube: /data/youtube }
        overseerr: { url: http://overseerr.local:5055, api_key: overseerr-key }
        smtp: { host: mail.local, username: worker, password: smtp-pass, from: worker@mail.local }
        schedules:
          nightly: { cron: "0 3 * * *", job: { type: cleanup, queue: default, payload: { dryRun: false, note: "1" } } }
        """

    @Test func hidesSecretsAndShowsTheRest() throws {
        let configuration = try parse(Self.yaml, environment: ["PLEX_TOKEN": "plex-token-value"])
        let text = configuration.maskedDescription()
        for secret in ["redis-pass", "pg-pass", "qs-pass", "plex-token-value", "overseerr-key", "smtp-pass"] {
            #expect(!text.contains(secret), "\(secret) is shown")
        }
        for shown in [
            "redis://default:***@redis.local:6379/0", "postgres://medianest:***@db.local:5432/medianest",
            "sslmode=disable", "http://plex.local:32400", "token: \"***\"", "api_key: \"***\"",
            "section: YouTube", "/srv/media/youtube: /data/youtube", "mail.local", "username: worker",
            "prefix: medianest", "concurrency: 3", "shutdown_timeout: 30s", "state: 7d",
            "cron: \"0 3 * * *\"", "listen: \"127.0.0.1:9464\"", "mode: \"0660\"",
        ] {
            #expect(text.contains(shown), "\(shown) is missing from:\n\(text)")
        }
    }

    @Test func isAValidConfigurationItself() throws {
        let configuration = try parse(Self.yaml, environment: ["PLEX_TOKEN": "plex-token-value"])
        var reread = try parse(configuration.maskedDescription())
        #expect(reread.plex?.token == "***")
        #expect(reread.overseerr?.apiKey == "***")
        reread.redis.url = configuration.redis.url
        reread.postgres.url = configuration.postgres.url
        reread.plex?.token = configuration.plex!.token
        reread.overseerr?.apiKey = configuration.overseerr!.apiKey
        reread.smtp?.password = configuration.smtp!.password
        #expect(reread == configuration)
    }

    @Test func defaultsRoundTrip() throws {
        let defaults = WorkerConfiguration()
        #expect(try parse(defaults.maskedDescription()) == defaults)
        let example = try ConfigLoader.load(path: exampleFilePath, environment: ["PLEX_TOKEN": "x"])
        var reread = try parse(example.maskedDescription())
        reread.sourcePath = example.sourcePath
        reread.plex?.token = "x"
        #expect(reread == example)
    }

    @Test func redisPasswordWithoutUser() {
        #expect(ServiceURL.masked("redis://:pw@h:6379/0") == "redis://:***@h:6379/0")
        #expect(ServiceURL.masked("redis://pw@h:6379/0") == "redis://***@h:6379/0")
        #expect(ServiceURL.masked("postgres://user@h/db") == "postgres://user@h/db")
        #expect(ServiceURL.masked("https://h/x?token=abc&page=2") == "https://h/x?token=***&page=2")
        #expect(ServiceURL.masked("not a url") == "not a url")
    }
}
