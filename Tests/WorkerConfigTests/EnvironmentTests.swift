import Testing

@testable import WorkerConfig

@Suite("Environment")
struct EnvironmentTests {
    @Test func expandsVariablesInValues() throws {
        let configuration = try parse(
            """
            redis: { url: "redis://${REDIS_HOST}:${REDIS_PORT}/0" }
            paths: { library: "${MEDIA_ROOT}/youtube" }
            queues:
              default:
                concurrency: ${WORKERS}
            youtube: { allowed_hosts: ["${EXTRA_HOST}"] }
            plex:
              url: http://plex:32400
              token: ${PLEX_TOKEN}
              path_map: { "${MEDIA_ROOT}/youtube": /data/youtube }
            """,
            environment: [
                "REDIS_HOST": "redis.internal", "REDIS_PORT": "6380", "MEDIA_ROOT": "/mnt/media",
                "WORKERS": "6", "EXTRA_HOST": "127.0.0.1", "PLEX_TOKEN": "abc",
            ])
        #expect(configuration.redis.url == "redis://redis.internal:6380/0")
        #expect(configuration.paths.library == "/mnt/media/youtube")
        #expect(configuration.queue(named: "default")?.concurrency == 6)
        #expect(configuration.youtube.allowedHosts == ["127.0.0.1"])
        #expect(configuration.plex?.token == "abc")
        #expect(configuration.plex?.pathMap == [PathMapping(local: "/mnt/media/youtube", remote: "/data/youtube")])
    }

    @Test func defaultsForUnsetVariables() throws {
        let yaml = """
            logging: { level: "${LOG_LEVEL:-debug}", format: "${LOG_FORMAT-text}" }
            """
        #expect(try parse(yaml).logging == LoggingSettings(level: "debug", format: "text"))
        #expect(
            try parse(yaml, environment: ["LOG_LEVEL": "", "LOG_FORMAT": "json"]).logging
                == LoggingSettings(level: "debug", format: "json"))
        #expect(try parse(yaml, environment: ["LOG_LEVEL": "error"]).logging.level == "error")
    }

    @Test func escapedReferenceIsLiteral() throws {
        let configuration = try parse(
            """
            youtube: { yt_dlp: "/opt/$${HOME}/cost$5" }
            """)
        #expect(configuration.youtube.ytDlp == "/opt/${HOME}/cost$5")
    }

    @Test func unsetVariableNamesTheKeyAndTheVariable() {
        let error = parseError(
            """
            plex:
              url: http://127.0.0.1:32400
              token: "${PLEX_TOKEN}"
            """)
        #expect(error?.key == "plex.token")
        #expect(error?.line == 3)
        #expect(error?.message.contains("PLEX_TOKEN") == true)
        #expect(error?.description.hasPrefix("jobs.yml:3: plex.token: ") == true)
    }

    @Test func malformedReference() {
        let error = parseError("paths: { temp: \"/tmp/${oops\" }")
        #expect(error?.key == "paths.temp")
        #expect(error?.message.contains("closing") == true)
    }

    @Test func urlOverridesWinOverTheFile() throws {
        let environment = [
            "MEDIANEST_REDIS_URL": "redis://:secret@10.0.0.5:6379/1",
            "MEDIANEST_DATABASE_URL": "postgresql://worker:pw@db:5432/medianest",
        ]
        let yaml = """
            redis: { url: redis://127.0.0.1:6379/0 }
            postgres: { url: postgres://medianest@127.0.0.1:5432/medianest }
            """
        let configuration = try parse(yaml, environment: environment)
        #expect(configuration.redis.url == "redis://:secret@10.0.0.5:6379/1")
        #expect(configuration.postgres.url == "postgresql://worker:pw@db:5432/medianest")

        let defaults = ConfigLoader.defaults(environment: environment)
        #expect(defaults.redis.url == "redis://:secret@10.0.0.5:6379/1")
        #expect(defaults.postgres.url == "postgresql://worker:pw@db:5432/medianest")

        // Empty overrides are ignored.
        let unchanged = try parse(yaml, environment: ["MEDIANEST_REDIS_URL": "", "MEDIANEST_DATABASE_URL": ""])
        #expect(unchanged.redis.url == "redis://127.0.0.1:6379/0")
    }

    @Test func badOverrideIsRefusedWithoutLeakingThePassword() {
        let error = parseError("", environment: ["MEDIANEST_DATABASE_URL": "mysql://root:hunter2@db/medianest"])
        #expect(error?.key == "postgres.url")
        #expect(error?.message.hasPrefix("MEDIANEST_DATABASE_URL: ") == true)
        #expect(error?.description.contains("hunter2") == false)
    }

    @Test func expansion() throws {
        let environment = ["A": "1", "EMPTY": ""]
        #expect(try EnvironmentExpansion.expand("x${A}y${A}", environment: environment) == "x1y1")
        #expect(try EnvironmentExpansion.expand("${EMPTY:-d}|${EMPTY-d}|${UNSET-d}", environment: environment) == "d||d")
        #expect(try EnvironmentExpansion.expand("$A $ $$ $${A}", environment: environment) == "$A $ $$ ${A}")
        #expect(throws: EnvironmentExpansion.Failure.unset("B")) { try EnvironmentExpansion.expand("${B}", environment: environment) }
        #expect(throws: EnvironmentExpansion.Failure.self) { try EnvironmentExpansion.expand("${1A}", environment: environment) }
        #expect(throws: EnvironmentExpansion.Failure.self) { try EnvironmentExpansion.expand("${A?x}", environment: environment) }
    }
}
