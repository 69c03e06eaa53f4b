/// The daemon's resolved configuration: what `jobs.yml` says, with every default filled in,
/// `${VAR}` references expanded and the `MEDIANEST_REDIS_URL` / `MEDIANEST_DATABASE_URL`
/// overrides applied.
///
/// Build one with ``ConfigLoader/load(path:environment:)``,
/// ``ConfigLoader/parse(yaml:source:environment:)`` or ``ConfigLoader/defaults(environment:)``;
/// ``init()`` gives the built-in defaults for tests. Every time value is in seconds.
package struct WorkerConfiguration: Sendable, Equatable {
    /// The file the configuration was read from; `nil` when it came from a string or the defaults.
    package var sourcePath: String?
    /// Where the queues, job state and events live.
    package var redis: RedisSettings
    /// The durable job record.
    package var postgres: PostgresSettings
    /// The media library and the working directory for downloads in progress.
    package var paths: PathSettings
    /// The admin control socket.
    package var control: ControlSettings
    /// The Prometheus endpoint.
    package var metrics: MetricsSettings
    /// How long running jobs may finish after SIGTERM before they are handed back (key `shutdown_timeout`).
    package var shutdownTimeout: Double
    /// How long a job stays claimed by a host that stops renewing it (key `lease`, at least 2 s).
    package var lease: Double
    /// The queues, in file order (key `queues`, a map of name to settings).
    package var queues: [QueueSettings]
    /// Defaults and limits for `youtube.download` jobs.
    package var youtube: YouTubeSettings
    /// The Plex server to refresh after downloads; `nil` when absent or its token is empty.
    package var plex: PlexSettings?
    /// The Overseerr server; `nil` when absent or its API key is empty.
    package var overseerr: OverseerrSettings?
    /// Jobs fired on a timetable, in file order.
    package var schedules: [ScheduleSettings]
    /// How long finished state, job records and temporary files are kept, and the per-user quota.
    package var retention: RetentionSettings
    /// What the `cleanup` job may do.
    package var cleanup: CleanupSettings
    /// Log level and format.
    package var logging: LoggingSettings
    /// Receivers of signed job outcomes, in file order (key `webhooks`; none by default).
    package var webhooks: [WebhookSettings]
    /// The mail server; `nil` when there is no `smtp` section.
    package var smtp: SMTPSettings?
    /// What users and admins are told of their jobs (key `notifications`).
    package var notifications: NotificationSettings
    /// The BullMQ queues consumed beside the streams (key `bullmq`; none by default).
    package var bullmq: BullMQSettings?
    /// Channels, playlists and feeds re-checked on their interval, in file order (key `subscriptions`).
    package var subscriptions: [SubscriptionSettings]

    /// The built-in defaults, with no file and no environment.
    package init() {
        sourcePath = nil
        redis = RedisSettings()
        postgres = PostgresSettings()
        paths = PathSettings()
        control = ControlSettings()
        metrics = MetricsSettings()
        shutdownTimeout = 30
        lease = 30
        queues = QueueSettings.defaultQueues
        youtube = YouTubeSettings()
        plex = nil
        overseerr = nil
        schedules = ScheduleSettings.defaultSchedules
        retention = RetentionSettings()
        cleanup = CleanupSettings()
        logging = LoggingSettings()
        webhooks = []
        smtp = nil
        notifications = NotificationSettings()
        subscriptions = []
        bullmq = nil
    }

    /// The queue with this name, if the configuration has one.
    package func queue(named name: String) -> QueueSettings? {
        queues.first { $0.name == name }
    }

    /// The names of the configured queues, in file order.
    package var queueNames: [String] { queues.map(\.name) }
}

/// Key `redis`.
package struct RedisSettings: Sendable, Equatable {
    /// A `redis://[[user]:password@]host[:port][/db]` URL (default `redis://127.0.0.1:6379/0`).
    package var url: String
    /// The prefix of every key, `P` in the contract (default `medianest`, `[A-Za-z0-9_.:-]{1,64}`).
    package var prefix: String

    /// The default Redis URL.
    package static let defaultURL = "redis://127.0.0.1:6379/0"

    /// Settings with the given values, defaults for the rest.
    package init(url: String = RedisSettings.defaultURL, prefix: String = "medianest") {
        self.url = url
        self.prefix = prefix
    }
}

/// Key `postgres`.
package struct PostgresSettings: Sendable, Equatable {
    /// A `postgres://` or `postgresql://` URL (default `postgres://medianest@127.0.0.1:5432/medianest`).
    package var url: String
    /// How many connections the daemon keeps open (key `pool_size`, default 4).
    package var poolSize: Int

    /// The default Postgres URL.
    package static let defaultURL = "postgres://medianest@127.0.0.1:5432/medianest"

    /// Settings with the given values, defaults for the rest.
    package init(url: String = PostgresSettings.defaultURL, poolSize: Int = 4) {
        self.url = url
        self.poolSize = poolSize
    }
}

/// Key `paths`; both absolute.
package struct PathSettings: Sendable, Equatable {
    /// The media library that finished files are moved into (default `/srv/media/youtube`).
    package var library: String
    /// Where downloads and conversions work before the move (default `/var/lib/medianest-worker/tmp`).
    package var temp: String
    /// The daemon's own lasting files (default `/var/lib/medianest-worker`): a managed yt-dlp lives
    /// in `<state>/yt-dlp`.
    package var state: String = "/var/lib/medianest-worker"

    /// Settings with the given values, defaults for the rest.
    package init(library: String = "/srv/media/youtube", temp: String = "/var/lib/medianest-worker/tmp") {
        self.library = library
        self.temp = temp
    }
}

/// Key `control`.
package struct ControlSettings: Sendable, Equatable {
    /// Path of the Unix socket (default `/run/medianest-worker/control.sock`).
    package var socket: String
    /// Permission bits the socket is created with, written as an octal string such as `"0660"` (default `0o660`).
    package var mode: UInt16

    /// Settings with the given values, defaults for the rest.
    package init(socket: String = "/run/medianest-worker/control.sock", mode: UInt16 = 0o660) {
        self.socket = socket
        self.mode = mode
    }

    /// ``mode`` as the four-digit octal text used in `jobs.yml`, e.g. `"0660"`.
    package var modeText: String {
        let digits = String(mode, radix: 8)
        return String(repeating: "0", count: max(0, 4 - digits.count)) + digits
    }
}

/// Key `metrics`: `listen: host:port`, or `listen: off` (or `""`) to serve no metrics.
package struct MetricsSettings: Sendable, Equatable {
    /// Whether `/metrics` and `/healthz` are served.
    package var enabled: Bool
    /// Address to bind (default `127.0.0.1`); an IPv6 address without brackets.
    package var host: String
    /// TCP port (default 9464).
    package var port: Int

    /// Settings with the given values, defaults for the rest.
    package init(enabled: Bool = true, host: String = "127.0.0.1", port: Int = 9464) {
        self.enabled = enabled
        self.host = host
        self.port = port
    }

    /// The `listen` value as written in `jobs.yml`: `host:port`, `[v6]:port`, or `off`.
    package var listen: String {
        guard enabled else { return "off" }
        return host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
    }
}

/// One entry of `queues`.
package struct QueueSettings: Sendable, Equatable {
    /// The queue's name, `[a-z0-9_-]{1,64}`; jobs are enqueued on `P:queue:<name>`.
    package var name: String
    /// How many jobs of this queue one daemon runs at once (1–1024, default 1).
    package var concurrency: Int
    /// Attempts before a job fails for good (key `max_attempts`, at least 1, default 3).
    package var maxAttempts: Int
    /// Delay between attempts.
    package var backoff: BackoffSettings
    /// Time allowed per attempt, in seconds (default 1 h).
    package var timeout: Double
    /// At most `max` job starts per `per` seconds across all daemons (key `rate_limit`); `nil` for no limit.
    package var rateLimit: RateLimitSettings?

    /// Settings with the given values, defaults for the rest.
    package init(
        name: String,
        concurrency: Int = 1,
        maxAttempts: Int = 3,
        backoff: BackoffSettings = BackoffSettings(),
        timeout: Double = 3600,
        rateLimit: RateLimitSettings? = nil
    ) {
        self.name = name
        self.concurrency = concurrency
        self.maxAttempts = maxAttempts
        self.backoff = backoff
        self.timeout = timeout
        self.rateLimit = rateLimit
    }

    /// The queues used when `jobs.yml` has no `queues` key: those of the contract's example.
    package static let defaultQueues: [QueueSettings] = [
        QueueSettings(
            name: "youtube", concurrency: 3, maxAttempts: 3,
            backoff: BackoffSettings(initial: 5, max: 600), timeout: 7200,
            rateLimit: RateLimitSettings(max: 5, per: 60)),
        QueueSettings(name: "media", concurrency: 2),
        QueueSettings(name: "default", concurrency: 4),
    ]
}

/// Key `backoff` of a queue: the delay grows from `initial` towards `max`.
package struct BackoffSettings: Sendable, Equatable {
    /// Delay before the second attempt, in seconds (default 5 s).
    package var initial: Double
    /// Longest delay between attempts, in seconds (default 10 min).
    package var max: Double

    /// Settings with the given values, defaults for the rest.
    package init(initial: Double = 5, max: Double = 600) {
        self.initial = initial
        self.max = max
    }
}

/// Key `rate_limit` of a queue.
package struct RateLimitSettings: Sendable, Equatable {
    /// Jobs that may start in one window (at least 1).
    package var max: Int
    /// Length of the window, in seconds.
    package var per: Double

    /// A limit of `max` starts per `per` seconds.
    package init(max: Int, per: Double) {
        self.max = max
        self.per = per
    }
}

/// Key `youtube`.
package struct YouTubeSettings: Sendable, Equatable {
    /// The yt-dlp executable, a name looked up in `PATH` or a path (key `yt_dlp`, default `yt-dlp`).
    package var ytDlp: String
    /// Quality when a job names none (default `1080p`).
    package var quality: String
    /// Container when a job names none (default `mp4`).
    package var format: String
    /// Hosts allowed besides YouTube's own (key `allowed_hosts`, default none).
    package var allowedHosts: [String]
    /// File name template inside the library (default `{channel}/{title} [{id}].{ext}`).
    package var output: String
    /// Pause between yt-dlp's metadata requests, in seconds (key `sleep_requests`); `nil` for none.
    package var sleepRequests: Double?
    /// JavaScript runtime yt-dlp uses for YouTube's player (key `js_runtime`, e.g. `deno` or `node:/usr/bin/node`); `nil` for yt-dlp's own choice.
    package var jsRuntime: String?
    /// A Netscape cookies file (key `cookies`), checked at load; each yt-dlp run gets a private copy.
    /// A secret: never logged, shown as *** in the resolved configuration.
    package var cookies: String?
    /// `--extractor-args` values, one per extractor (`youtube:player_client=default,mweb`), from key `extractor_args`.
    package var extractorArgs: [String]
    /// Folders yt-dlp loads plugins from (key `plugin_dirs`, e.g. a PO-token provider), each checked to exist at load.
    package var pluginDirs: [String]
    /// `youtube.throttle`: sleep_interval and max_sleep_interval (seconds between downloads) and limit_rate (bytes per second);
    /// `sleep_requests` is ``sleepRequests``.
    package var sleepInterval: Double?
    package var maxSleepInterval: Double?
    package var limitRate: Int64?
    /// SponsorBlock (key `sponsorblock`); `nil` when not configured.
    package var sponsorBlock: SponsorBlockSettings? = nil
    /// Write the video's own chapters (key `chapters`, default false).
    package var chapters: Bool = false
    /// Key `update`: scheduled updates of a managed yt-dlp.
    package var update = YtDlpUpdateSettings()

    /// The qualities a job or the configuration may ask for.
    package static let qualities = ["best", "2160p", "1440p", "1080p", "720p", "480p", "360p", "audio"]
    /// The formats a job or the configuration may ask for.
    package static let formats = ["mp4", "mkv", "webm", "m4a", "mp3"]
    /// The placeholders ``output`` may use.
    package static let outputPlaceholders = ["channel", "title", "id", "date", "ext", "user", "playlist", "index"]
    /// The default ``output`` template.
    package static let defaultOutput = "{channel}/{title} [{id}].{ext}"

    /// Settings with the given values, defaults for the rest.
    package init(
        ytDlp: String = "yt-dlp",
        quality: String = "1080p",
        format: String = "mp4",
        allowedHosts: [String] = [],
        output: String = YouTubeSettings.defaultOutput,
        sleepRequests: Double? = nil,
        jsRuntime: String? = nil,
        cookies: String? = nil,
        extractorArgs: [String] = [],
        pluginDirs: [String] = [],
        sleepInterval: Double? = nil,
        maxSleepInterval: Double? = nil,
        limitRate: Int64? = nil
    ) {
        self.ytDlp = ytDlp
        self.quality = quality
        self.format = format
        self.allowedHosts = allowedHosts
        self.output = output
        self.sleepRequests = sleepRequests
        self.jsRuntime = jsRuntime
        self.cookies = cookies
        self.extractorArgs = extractorArgs
        self.pluginDirs = pluginDirs
        self.sleepInterval = sleepInterval
        self.maxSleepInterval = maxSleepInterval
        self.limitRate = limitRate
    }
}

/// Key `youtube.sponsorblock`.
package struct SponsorBlockSettings: Sendable, Equatable {
    /// Base URL of the API (default `https://sponsor.ajay.app`).
    package var api: String = "https://sponsor.ajay.app"
    /// Categories cut out of the media.
    package var remove: [String] = []
    /// Categories written as chapters.
    package var mark: [String] = []
    /// The categories of the public API that can be cut or marked.
    package static let categories = [
        "sponsor", "selfpromo", "interaction", "intro", "outro", "preview", "music_offtopic", "filler", "exclusive_access",
    ]

    package init(api: String = "https://sponsor.ajay.app", remove: [String] = [], mark: [String] = []) {
        self.api = api
        self.remove = remove
        self.mark = mark
    }
}

/// Key `plex`.
package struct PlexSettings: Sendable, Equatable {
    /// Base URL of the server, `http` or `https`.
    package var url: String
    /// The `X-Plex-Token`; a secret.
    package var token: String
    /// Title or key of the library section to refresh; `nil` to find it from the path.
    package var section: String?
    /// How library paths on this host appear to Plex (key `path_map`, local → remote, in file order).
    package var pathMap: [PathMapping]

    /// Settings with the given values.
    package init(url: String, token: String, section: String? = nil, pathMap: [PathMapping] = []) {
        self.url = url
        self.token = token
        self.section = section
        self.pathMap = pathMap
    }

    /// `path` as Plex sees it: the first mapping whose `local` is `path` or one of its parent
    /// folders replaces that prefix; a path no mapping covers is returned unchanged.
    package func remotePath(for path: String) -> String {
        for mapping in pathMap {
            let local =
                mapping.local.hasSuffix("/") && mapping.local.count > 1
                ? String(mapping.local.dropLast()) : mapping.local
            if path == local { return mapping.remote }
            let prefix = local == "/" ? "/" : local + "/"
            if path.hasPrefix(prefix) {
                let rest = path.dropFirst(prefix.count)
                return mapping.remote.hasSuffix("/") ? mapping.remote + rest : mapping.remote + "/" + rest
            }
        }
        return path
    }
}

/// One entry of `plex.path_map`.
package struct PathMapping: Sendable, Equatable {
    /// An absolute path on this host.
    package var local: String
    /// The same folder as the Plex server sees it.
    package var remote: String

    /// A mapping of `local` to `remote`.
    package init(local: String, remote: String) {
        self.local = local
        self.remote = remote
    }
}

/// Key `overseerr`.
package struct OverseerrSettings: Sendable, Equatable {
    /// Base URL of the server, `http` or `https`.
    package var url: String
    /// The `X-Api-Key`; a secret (key `api_key`).
    package var apiKey: String

    /// Settings with the given values.
    package init(url: String, apiKey: String) {
        self.url = url
        self.apiKey = apiKey
    }
}

/// One entry of `schedules`: a job enqueued on a timetable, once per cluster.
package struct ScheduleSettings: Sendable, Equatable {
    /// The schedule's name (its key in `schedules`).
    package var name: String
    /// A five-field cron expression or `@hourly`-style macro; exactly one of ``cron`` and ``every`` is set.
    package var cron: String?
    /// Interval in seconds; exactly one of ``cron`` and ``every`` is set.
    package var every: Double?
    /// What is enqueued.
    package var job: ScheduledJob

    /// A schedule with the given values.
    package init(name: String, cron: String? = nil, every: Double? = nil, job: ScheduledJob) {
        self.name = name
        self.cron = cron
        self.every = every
        self.job = job
    }

    /// ``cron`` parsed; `nil` for an `every` schedule (a loaded configuration's cron text always parses).
    package var cronExpression: CronExpression? {
        cron.flatMap { try? CronExpression($0) }
    }

    /// The schedules used when `jobs.yml` has no `schedules` key: those of the contract's example
    /// and `overseerr.sync` every 5 minutes, all on the queue `default`.
    package static let defaultSchedules: [ScheduleSettings] = [
        ScheduleSettings(
            name: "cleanup", cron: "*/15 * * * *",
            job: ScheduledJob(type: "cleanup", queue: "default")),
        ScheduleSettings(
            name: "health", every: 120,
            job: ScheduledJob(type: "service.health", queue: "default")),
        ScheduleSettings(
            name: "overseerr-sync", every: 300,
            job: ScheduledJob(type: "overseerr.sync", queue: "default")),
    ]
}

/// Key `job` of a schedule.
package struct ScheduledJob: Sendable, Equatable {
    /// The job type, e.g. `cleanup`.
    package var type: String
    /// The queue it is enqueued on; always one of the configured queues.
    package var queue: String
    /// The payload as compact JSON object text (key `payload`, default `{}`).
    package var payloadJSON: String

    /// A job with the given values.
    package init(type: String, queue: String, payloadJSON: String = "{}") {
        self.type = type
        self.queue = queue
        self.payloadJSON = payloadJSON
    }
}

/// Key `retention`.
package struct RetentionSettings: Sendable, Equatable {
    /// How long the Redis hash of a finished job is kept, in seconds (default 7 days).
    package var state: Double
    /// How long finished jobs are kept in Postgres, in seconds (default 30 days).
    package var jobs: Double
    /// Age after which leftovers in `paths.temp` are removed, in seconds (default 6 h).
    package var temp: Double
    /// Library bytes one user may fill (key `user_quota`, e.g. `10GiB`); `nil` for no quota.
    package var userQuota: Int64?

    /// Settings with the given values, defaults for the rest.
    package init(state: Double = 7 * 86400, jobs: Double = 30 * 86400, temp: Double = 6 * 3600, userQuota: Int64? = nil) {
        self.state = state
        self.jobs = jobs
        self.temp = temp
        self.userQuota = userQuota
    }
}

/// Key `cleanup`.
package struct CleanupSettings: Sendable, Equatable {
    /// Whether the `cleanup` job deletes library files no job record knows (key `delete_orphans`, default false).
    package var deleteOrphans: Bool

    /// Settings with the given values, defaults for the rest.
    package init(deleteOrphans: Bool = false) {
        self.deleteOrphans = deleteOrphans
    }
}

/// Key `logging`.
package struct LoggingSettings: Sendable, Equatable {
    /// One of ``levels`` (default `info`).
    package var level: String
    /// `auto` (the daemon picks by where the log goes), `json` or `text` (default `auto`).
    package var format: String

    /// The accepted levels, most verbose first.
    package static let levels = ["trace", "debug", "info", "notice", "warning", "error", "critical"]
    /// The accepted formats.
    package static let formats = ["auto", "json", "text"]

    /// Settings with the given values, defaults for the rest.
    package init(level: String = "info", format: String = "auto") {
        self.level = level
        self.format = format
    }
}
