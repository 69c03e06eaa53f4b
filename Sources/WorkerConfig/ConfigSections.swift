import Yams

/// The sections of jobs.yml, one decoder each (``ConfigLoader/decode(_:reader:)`` runs them in order).
extension ConfigLoader {
    /// `redis`: url, prefix.
    static func decodeRedis(_ top: Section, _ configuration: inout WorkerConfiguration, _ reader: ConfigReader) throws(ConfigError) {
        if let redis = try reader.section(top["redis"], key: "redis", known: ["url", "prefix"]) {
            if let node = redis["url"] {
                configuration.redis.url = try redisURL(node, key: redis.path("url"), reader: reader)
            }
            if let node = redis["prefix"] {
                let prefix = try reader.text(node, key: redis.path("prefix"), expected: "a key prefix")
                guard matches(prefix, allowed: prefixCharacters, length: 1...64) else {
                    throw reader.error(
                        redis.path("prefix"), "expected 1–64 of A-Z a-z 0-9 _ . : -, got \(reader.describe(node, text: prefix))", at: node)
                }
                configuration.redis.prefix = prefix
            }
        }
    }

    /// `postgres`: url, pool_size.
    static func decodePostgres(_ top: Section, _ configuration: inout WorkerConfiguration, _ reader: ConfigReader) throws(ConfigError) {
        if let postgres = try reader.section(top["postgres"], key: "postgres", known: ["url", "pool_size"]) {
            if let node = postgres["url"] {
                configuration.postgres.url = try postgresURL(node, key: postgres.path("url"), reader: reader)
            }
            if let node = postgres["pool_size"] {
                configuration.postgres.poolSize = try reader.int(node, key: postgres.path("pool_size"), range: 1...100)
            }
        }
    }

    /// `paths`: library, temp, state.
    static func decodePaths(_ top: Section, _ configuration: inout WorkerConfiguration, _ reader: ConfigReader) throws(ConfigError) {
        if let paths = try reader.section(top["paths"], key: "paths", known: ["library", "temp", "state"]) {
            if let node = paths["state"] {
                configuration.paths.state = try reader.absolutePath(node, key: paths.path("state"))
            }
            if let node = paths["library"] {
                configuration.paths.library = try reader.absolutePath(node, key: paths.path("library"))
            }
            if let node = paths["temp"] {
                configuration.paths.temp = try reader.absolutePath(node, key: paths.path("temp"))
            }
        }
    }

    /// `control`: socket, mode; `metrics`: listen.
    static func decodeControl(_ top: Section, _ configuration: inout WorkerConfiguration, _ reader: ConfigReader) throws(ConfigError) {
        if let control = try reader.section(top["control"], key: "control", known: ["socket", "mode"]) {
            if let node = control["socket"] {
                let socket = try reader.absolutePath(node, key: control.path("socket"))
                guard socket.utf8.count <= 107 else {
                    throw reader.error(
                        control.path("socket"), "a Unix socket path is at most 107 bytes, this one has \(socket.utf8.count)", at: node)
                }
                configuration.control.socket = socket
            }
            if let node = control["mode"] {
                configuration.control.mode = try fileMode(node, key: control.path("mode"), reader: reader)
            }
        }

        if let metrics = try reader.section(top["metrics"], key: "metrics", known: ["listen"]), let node = metrics["listen"] {
            configuration.metrics = try listenAddress(node, key: metrics.path("listen"), reader: reader)
        }
    }

    /// `shutdown_timeout`, `lease`.
    static func decodeTimings(_ top: Section, _ configuration: inout WorkerConfiguration, _ reader: ConfigReader) throws(ConfigError) {
        if let node = top["shutdown_timeout"] {
            configuration.shutdownTimeout = try reader.duration(node, key: "shutdown_timeout", minimum: 0, exclusive: false)
        }
        if let node = top["lease"] {
            configuration.lease = try reader.duration(node, key: "lease", minimum: 2, exclusive: false)
        }
    }

    /// `queues`.
    static func decodeQueues(_ top: Section, _ configuration: inout WorkerConfiguration, _ reader: ConfigReader) throws(ConfigError) {
        if let node = top["queues"] {
            configuration.queues = try queues(node, reader: reader)
        }
    }

    /// `youtube`.
    static func decodeYouTube(_ top: Section, _ configuration: inout WorkerConfiguration, _ reader: ConfigReader) throws(ConfigError) {
        if let youtube = try reader.section(
            top["youtube"], key: "youtube",
            known: [
                "yt_dlp", "quality", "format", "allowed_hosts", "output", "sleep_requests", "js_runtime",
                "cookies", "extractor_args", "plugin_dirs", "throttle", "update",
                "sponsorblock", "chapters",
            ])
        {
            configuration.youtube = try youtubeSettings(youtube, reader: reader)
            try checkUpdateQueue(configuration, top, reader: reader)
        }
    }

    /// `plex`.
    static func decodePlex(_ top: Section, _ configuration: inout WorkerConfiguration, _ reader: ConfigReader) throws(ConfigError) {
        if let node = top["plex"], !reader.isNull(node),
            let plex = try reader.section(node, key: "plex", known: ["url", "token", "section", "path_map"])
        {
            configuration.plex = try plexSettings(plex, reader: reader)
        }
    }

    /// `overseerr`: url, api_key (an empty key turns it off).
    static func decodeOverseerr(_ top: Section, _ configuration: inout WorkerConfiguration, _ reader: ConfigReader) throws(ConfigError) {
        if let node = top["overseerr"], !reader.isNull(node),
            let overseerr = try reader.section(node, key: "overseerr", known: ["url", "api_key"])
        {
            let url = try httpURL(
                required(overseerr, "url", "the Overseerr server's address, e.g. http://127.0.0.1:5055", reader),
                key: overseerr.path("url"), reader: reader)
            let apiKey = try reader.string(
                required(overseerr, "api_key", "the API key from Overseerr's settings", reader),
                key: overseerr.path("api_key"), allowEmpty: true)
            configuration.overseerr = apiKey.isEmpty ? nil : OverseerrSettings(url: url, apiKey: apiKey)
        }
    }

    /// `schedules` (after `queues`: a schedule names a queue).
    static func decodeSchedules(_ top: Section, _ configuration: inout WorkerConfiguration, _ reader: ConfigReader) throws(ConfigError) {
        if let node = top["schedules"] {
            configuration.schedules = try schedules(node, queues: configuration.queues, reader: reader)
        } else if configuration.queue(named: "default") == nil {
            throw reader.error(
                "schedules",
                "the default schedules (cleanup every 15 minutes, service.health every 2 minutes) run on the queue \"default\", which is not configured: add a queue named default, or a schedules section (schedules: {} for none)",
                at: top["queues"])
        }
    }

    /// `retention`.
    static func decodeRetention(_ top: Section, _ configuration: inout WorkerConfiguration, _ reader: ConfigReader) throws(ConfigError) {
        if let retention = try reader.section(top["retention"], key: "retention", known: ["state", "jobs", "temp", "user_quota"]) {
            if let node = retention["state"] {
                configuration.retention.state = try reader.duration(node, key: retention.path("state"))
            }
            if let node = retention["jobs"] {
                configuration.retention.jobs = try reader.duration(node, key: retention.path("jobs"))
            }
            if let node = retention["temp"] {
                configuration.retention.temp = try reader.duration(node, key: retention.path("temp"))
            }
            if let node = retention["user_quota"] {
                configuration.retention.userQuota = try userQuota(node, key: retention.path("user_quota"), reader: reader)
            }
        }
    }

    /// `cleanup`.
    static func decodeCleanup(_ top: Section, _ configuration: inout WorkerConfiguration, _ reader: ConfigReader) throws(ConfigError) {
        if let cleanup = try reader.section(top["cleanup"], key: "cleanup", known: ["delete_orphans"]),
            let node = cleanup["delete_orphans"]
        {
            configuration.cleanup.deleteOrphans = try reader.bool(node, key: cleanup.path("delete_orphans"))
        }
    }

    /// `logging`.
    static func decodeLogging(_ top: Section, _ configuration: inout WorkerConfiguration, _ reader: ConfigReader) throws(ConfigError) {
        if let logging = try reader.section(top["logging"], key: "logging", known: ["level", "format"]) {
            if let node = logging["level"] {
                configuration.logging.level = try reader.choice(node, key: logging.path("level"), LoggingSettings.levels)
            }
            if let node = logging["format"] {
                configuration.logging.format = try reader.choice(node, key: logging.path("format"), LoggingSettings.formats)
            }
        }
    }

    /// `webhooks`, `smtp`, `notifications` (after `smtp`: mail needs it).
    static func decodeIntegrations(_ top: Section, _ configuration: inout WorkerConfiguration, _ reader: ConfigReader) throws(ConfigError) {
        if let node = top["webhooks"] {
            configuration.webhooks = try webhooks(node, reader: reader)
        }
        if let node = top["smtp"] {
            configuration.smtp = try smtp(node, reader: reader)
        }
        if let node = top["notifications"] {
            configuration.notifications = try notifications(node, smtp: configuration.smtp, reader: reader)
        }
    }
}
