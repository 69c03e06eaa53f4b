import JSON

extension WorkerConfiguration {
    /// A YAML rendering of the resolved configuration, every default included, with secrets
    /// replaced by `***`: passwords in URLs, `plex.token`, `overseerr.api_key`, `webhooks[].secret`
    /// and `smtp.password`.
    /// This is what `medianest-worker check-config` prints; it is itself a valid `jobs.yml`.
    package func maskedDescription() -> String {
        var out = YAMLWriter()
        out.comment(
            "medianest-worker configuration" + (sourcePath.map { " from \($0)" } ?? "")
                + ", with every default; secrets are shown as ***")
        out.open("redis")
        out.scalar("url", ServiceURL.masked(redis.url))
        out.scalar("prefix", redis.prefix)
        out.close()
        out.open("postgres")
        out.scalar("url", ServiceURL.masked(postgres.url))
        out.raw("pool_size", String(postgres.poolSize))
        out.close()
        out.open("paths")
        out.scalar("library", paths.library)
        out.scalar("temp", paths.temp)
        out.scalar("state", paths.state)
        out.close()
        out.open("control")
        out.scalar("socket", control.socket)
        out.scalar("mode", control.modeText)
        out.close()
        out.open("metrics")
        out.scalar("listen", metrics.listen)
        out.close()
        out.raw("shutdown_timeout", DurationParser.format(shutdownTimeout))
        out.raw("lease", DurationParser.format(lease))

        out.open("queues")
        for queue in queues {
            out.open(queue.name)
            out.raw("concurrency", String(queue.concurrency))
            out.raw("max_attempts", String(queue.maxAttempts))
            out.raw(
                "backoff", "{ initial: \(DurationParser.format(queue.backoff.initial)), max: \(DurationParser.format(queue.backoff.max)) }")
            out.raw("timeout", DurationParser.format(queue.timeout))
            if let limit = queue.rateLimit {
                out.raw("rate_limit", "{ max: \(limit.max), per: \(DurationParser.format(limit.per)) }")
            }
            out.close()
        }
        out.close()

        out.open("youtube")
        out.scalar("yt_dlp", youtube.ytDlp)
        out.scalar("quality", youtube.quality)
        out.scalar("format", youtube.format)
        out.raw("allowed_hosts", "[" + youtube.allowedHosts.map(YAMLWriter.quote).joined(separator: ", ") + "]")
        out.scalar("output", youtube.output)
        if let sleep = youtube.sleepRequests { out.raw("sleep_requests", DurationParser.format(sleep)) }
        if let runtime = youtube.jsRuntime { out.scalar("js_runtime", runtime) }
        if youtube.cookies != nil { out.scalar("cookies", "***") }
        if !youtube.extractorArgs.isEmpty {
            out.raw("extractor_args", "[" + youtube.extractorArgs.map(YAMLWriter.quote).joined(separator: ", ") + "]")
        }
        if !youtube.pluginDirs.isEmpty {
            out.raw("plugin_dirs", "[" + youtube.pluginDirs.map(YAMLWriter.quote).joined(separator: ", ") + "]")
        }
        if youtube.sleepInterval != nil || youtube.limitRate != nil {
            out.open("throttle")
            if let sleep = youtube.sleepInterval { out.raw("sleep_interval", DurationParser.format(sleep)) }
            if let sleep = youtube.maxSleepInterval { out.raw("max_sleep_interval", DurationParser.format(sleep)) }
            if let rate = youtube.limitRate { out.raw("limit_rate", String(rate)) }
            out.close()
        }
        if youtube.managed {
            let update = youtube.update
            out.open("update")
            out.scalar("channel", update.channel)
            out.raw("every", DurationParser.format(update.every))
            out.scalar("queue", update.queue)
            if update.noIndex { out.scalar("index_url", "none") }
            if let index = update.indexURL { out.scalar("index_url", ServiceURL.masked(index)) }
            if !update.findLinks.isEmpty {
                out.raw("find_links", "[" + update.findLinks.map { YAMLWriter.quote(ServiceURL.masked($0)) }.joined(separator: ", ") + "]")
            }
            out.scalar("python", update.python)
            out.close()
        }
        out.close()

        if let plex {
            out.open("plex")
            out.scalar("url", ServiceURL.masked(plex.url))
            out.scalar("token", "***")
            if let section = plex.section { out.scalar("section", section) }
            if plex.pathMap.isEmpty {
                out.raw("path_map", "{}")
            } else {
                out.open("path_map")
                for mapping in plex.pathMap { out.scalar(mapping.local, mapping.remote) }
                out.close()
            }
            out.close()
        } else {
            out.comment("plex: off (no plex section, or an empty token)")
        }

        if let overseerr {
            out.open("overseerr")
            out.scalar("url", ServiceURL.masked(overseerr.url))
            out.scalar("api_key", "***")
            out.close()
        } else {
            out.comment("overseerr: off (no overseerr section, or an empty api_key)")
        }

        if schedules.isEmpty {
            out.raw("schedules", "{}")
        } else {
            out.open("schedules")
            for schedule in schedules {
                out.open(schedule.name)
                if let cron = schedule.cron { out.scalar("cron", cron) }
                if let every = schedule.every { out.raw("every", DurationParser.format(every)) }
                let payload = JSONValue.parse(schedule.job.payloadJSON).map(YAMLWriter.flow) ?? YAMLWriter.quote(schedule.job.payloadJSON)
                out.raw(
                    "job",
                    "{ type: \(YAMLWriter.quote(schedule.job.type)), queue: \(YAMLWriter.quote(schedule.job.queue)), payload: \(payload) }")
                out.close()
            }
            out.close()
        }

        if !subscriptions.isEmpty {
            out.open("subscriptions")
            for s in subscriptions {
                out.open(s.name)
                out.scalar("url", ServiceURL.masked(s.url))
                if let user = s.userId { out.scalar("user", user) }
                if let quality = s.quality { out.scalar("quality", quality) }
                if let format = s.format { out.scalar("format", format) }
                if let output = s.output { out.scalar("output", output) }
                if let collection = s.collection { out.scalar("collection", collection) }
                out.raw("check_every", DurationParser.format(Double(s.checkEvery)))
                out.raw("backfill", String(s.backfill))
                out.raw("keep_last", s.keepLast.map(String.init) ?? "null")
                out.raw("max_age", s.maxAge.map { DurationParser.format(Double($0)) } ?? "null")
                out.raw("enabled", s.enabled ? "true" : "false")
                out.close()
            }
            out.close()
        }

        out.open("retention")
        out.raw("state", DurationParser.format(retention.state))
        out.raw("jobs", DurationParser.format(retention.jobs))
        out.raw("temp", DurationParser.format(retention.temp))
        out.raw("user_quota", retention.userQuota.map(SizeParser.format) ?? "off")
        out.close()
        out.open("cleanup")
        out.raw("delete_orphans", cleanup.deleteOrphans ? "true" : "false")
        out.close()
        out.open("logging")
        out.scalar("level", logging.level)
        out.scalar("format", logging.format)
        out.close()

        if webhooks.isEmpty {
            out.raw("webhooks", "[]")
        } else {
            out.open("webhooks")
            for hook in webhooks {
                out.item([
                    ("url", YAMLWriter.quote(ServiceURL.masked(hook.url))), ("secret", YAMLWriter.quote("***")),
                    ("events", YAMLWriter.list(hook.events)), ("timeout", DurationParser.format(hook.timeout)),
                    ("attempts", String(hook.attempts)),
                ])
            }
            out.close()
        }
        if let smtp {
            out.open("smtp")
            out.scalar("host", smtp.host)
            out.raw("port", String(smtp.port))
            out.scalar("tls", smtp.tls)
            if let username = smtp.username { out.scalar("username", username) }
            if smtp.password != nil { out.scalar("password", "***") }
            out.scalar("from", smtp.from)
            if let caFile = smtp.caFile { out.scalar("ca_file", caFile) }
            out.raw("verify", smtp.verify ? "true" : "false")
            out.raw("timeout", DurationParser.format(smtp.timeout))
            out.close()
        } else {
            out.comment("smtp: off (no smtp section)")
        }
        out.open("notifications")
        out.raw("users", notifications.users ? "true" : "false")
        if let mail = notifications.mail {
            out.raw("mail", "{ to: \(YAMLWriter.list(mail.to)), events: \(YAMLWriter.list(mail.events)) }")
        }
        out.close()
        if let bullmq {
            out.open("bullmq")
            out.scalar("prefix", bullmq.prefix)
            out.open("queues")
            for queue in bullmq.queues {
                out.open(queue.name)
                out.scalar("queue", queue.queue)
                out.raw("jobs", "{ " + queue.jobs.map { YAMLWriter.quote($0.name) + ": " + YAMLWriter.quote($0.type) }.joined(separator: ", ") + " }")
                out.close()
            }
            out.close()
            out.raw("lock_duration", DurationParser.format(bullmq.lockDuration))
            out.raw("sync_every", DurationParser.format(bullmq.syncEvery))
            out.raw("max_stalled", String(bullmq.maxStalled))
            out.close()
        } else {
            out.comment("bullmq: off (no bullmq section)")
        }
        return out.text
    }
}

/// Writes block-style YAML line by line.
struct YAMLWriter {
    private(set) var text = ""
    private var depth = 0

    mutating func comment(_ line: String) {
        text += indent + "# " + line + "\n"
    }

    mutating func open(_ key: String) {
        text += indent + Self.quote(key) + ":\n"
        depth += 1
    }

    mutating func close() {
        depth -= 1
    }

    /// A string value, quoted when YAML would read it as something else.
    mutating func scalar(_ key: String, _ value: String) {
        raw(key, Self.quote(value))
    }

    /// One entry of a list of maps, its values already written as YAML.
    mutating func item(_ pairs: [(String, String)]) {
        for (index, (key, value)) in pairs.enumerated() {
            text += indent + (index == 0 ? "- " : "  ") + Self.quote(key) + ": " + value + "\n"
        }
    }

    /// Strings as a YAML flow list (`[a, "job:failed"]`).
    static func list(_ values: [String]) -> String {
        "[" + values.map(quote).joined(separator: ", ") + "]"
    }

    /// A value already written as YAML.
    mutating func raw(_ key: String, _ value: String) {
        text += indent + Self.quote(key) + ": " + value + "\n"
    }

    private var indent: String { String(repeating: "  ", count: depth) }

    /// `value` plain when that reads back as the same string, else double-quoted.
    static func quote(_ value: String) -> String {
        let plainCharacters = Set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_./-")
        let numberLike = Set("0123456789.+-_:eExXoO")
        let reserved: Set<String> = ["true", "false", "yes", "no", "on", "off", "null", "y", "n", "~"]
        guard let first = value.first, first.isASCII, first.isLetter || first.isNumber || first == "_" || first == "/",
            value.allSatisfy(plainCharacters.contains),
            !value.allSatisfy(numberLike.contains),
            !reserved.contains(value.lowercased())
        else { return JSONText.quote(value, escapingNonPrintable: true) }
        return value
    }

    /// A JSON value as a YAML flow collection (`{ a: 1, b: [x, y] }`).
    static func flow(_ value: JSONValue) -> String {
        switch value {
        case .null: return "null"
        case .bool(let flag): return flag ? "true" : "false"
        case .number(let number): return number
        case .string(let string): return quote(string)
        case .array(let items): return "[" + items.map(flow).joined(separator: ", ") + "]"
        case .object(let members):
            if members.isEmpty { return "{}" }
            return "{ " + members.map { quote($0.0) + ": " + flow($0.1) }.joined(separator: ", ") + " }"
        }
    }
}
