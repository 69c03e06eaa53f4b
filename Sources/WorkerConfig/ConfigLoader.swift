import Foundation
import JSON
import Yams

/// Reads, checks and resolves `jobs.yml`.
///
/// A file is refused as a whole at the first problem, with a ``ConfigError`` that names the file,
/// the key, the line and what was expected. Unknown keys are errors everywhere.
package enum ConfigLoader {
    /// Environment variable naming the configuration file when `--config` is not given.
    package static let configPathVariable = "MEDIANEST_CONFIG"
    /// Environment variable that overrides `redis.url`.
    package static let redisURLVariable = "MEDIANEST_REDIS_URL"
    /// Environment variable that overrides `postgres.url`.
    package static let databaseURLVariable = "MEDIANEST_DATABASE_URL"

    /// Reads the file at `path`, expands `${VAR}` (and `${VAR:-default}`) from `environment` in
    /// every scalar value, applies the `MEDIANEST_REDIS_URL` and `MEDIANEST_DATABASE_URL`
    /// overrides and checks everything. The result's ``WorkerConfiguration/sourcePath`` is `path`.
    package static func load(path: String, environment: [String: String]) throws(ConfigError) -> WorkerConfiguration {
        let text = try readFile(path)
        var configuration = try parse(yaml: text, source: path, environment: environment)
        configuration.sourcePath = path
        return configuration
    }

    /// Like ``load(path:environment:)`` for YAML text; `source` names it in errors (`"<string>"`
    /// by convention). An empty document gives the defaults.
    package static func parse(yaml: String, source: String, environment: [String: String]) throws(ConfigError) -> WorkerConfiguration {
        let root: Node?
        do {
            root = try Yams.compose(yaml: yaml)
        } catch {
            throw yamlError(error, source: source)
        }
        let reader = ConfigReader(file: source, environment: environment)
        var configuration = try decode(root, reader: reader)
        try applyOverrides(to: &configuration, environment: environment, source: source)
        return configuration
    }

    /// The configuration with every default, when no file is given; the URL overrides from
    /// `environment` are applied as they are. ``resolve(commandLinePath:environment:)`` also checks them.
    package static func defaults(environment: [String: String]) -> WorkerConfiguration {
        var configuration = WorkerConfiguration()
        if let url = environment[redisURLVariable], !url.isEmpty { configuration.redis.url = url }
        if let url = environment[databaseURLVariable], !url.isEmpty { configuration.postgres.url = url }
        return configuration
    }

    /// The configuration the daemon runs with: the file given on the command line, else the one
    /// `MEDIANEST_CONFIG` names, else the defaults (with the URL overrides checked too).
    package static func resolve(commandLinePath: String?, environment: [String: String]) throws(ConfigError) -> WorkerConfiguration {
        if let path = configPath(commandLinePath: commandLinePath, environment: environment) {
            return try load(path: path, environment: environment)
        }
        return try parse(yaml: "", source: "<defaults>", environment: environment)
    }

    /// The file to read: `commandLinePath`, else `MEDIANEST_CONFIG` when set and not empty, else `nil`.
    package static func configPath(commandLinePath: String?, environment: [String: String]) -> String? {
        if let commandLinePath, !commandLinePath.isEmpty { return commandLinePath }
        if let path = environment[configPathVariable], !path.isEmpty { return path }
        return nil
    }

    // MARK: - File and YAML

    static func readFile(_ path: String) throws(ConfigError) -> String {
        let manager = FileManager.default
        var isDirectory: ObjCBool = false
        guard manager.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw ConfigError(file: path, key: "", message: "no such file (give the path with --config or \(configPathVariable))")
        }
        guard !isDirectory.boolValue else {
            throw ConfigError(file: path, key: "", message: "is a directory, expected a YAML file")
        }
        guard manager.isReadableFile(atPath: path), let data = manager.contents(atPath: path) else {
            throw ConfigError(file: path, key: "", message: "cannot be read (check its permissions for the daemon's user)")
        }
        guard let text = String(data: data, encoding: .utf8) else {
            throw ConfigError(file: path, key: "", message: "is not UTF-8 text")
        }
        return text
    }

    static func yamlError(_ error: any Error, source: String) -> ConfigError {
        guard let yamlError = error as? YamlError else {
            return ConfigError(file: source, key: "", message: "invalid YAML: \(error)")
        }
        switch yamlError {
        case .scanner(let context, let problem, let mark, _),
            .parser(let context, let problem, let mark, _),
            .composer(let context, let problem, let mark, _):
            var message = "invalid YAML: \(problem)"
            if let context, !context.text.isEmpty {
                message += " (\(context.text) at line \(context.mark.line))"
            }
            return ConfigError(file: source, key: "", message: message, line: mark.line)
        case .reader(let problem, let offset, _, let yaml):
            var line: Int?
            if let offset, let index = yaml.index(yaml.startIndex, offsetBy: offset, limitedBy: yaml.endIndex) {
                line = yaml[..<index].reduce(1) { $1 == "\n" ? $0 + 1 : $0 }
            }
            return ConfigError(file: source, key: "", message: "invalid YAML: \(problem)", line: line)
        case .duplicatedKeysInMapping(let duplicates, let context):
            let names = duplicates.map { "\"\($0)\"" }.joined(separator: ", ")
            return ConfigError(file: source, key: "", message: "duplicate key \(names) in one map", line: context.mark.line)
        default:
            return ConfigError(file: source, key: "", message: "invalid YAML: \(yamlError)")
        }
    }

    // MARK: - Sections

    static let topLevelKeys = [
        "redis", "postgres", "paths", "control", "metrics", "shutdown_timeout", "lease", "queues",
        "youtube", "plex", "overseerr", "schedules", "retention", "cleanup", "logging",
        "webhooks", "smtp", "notifications", "bullmq", "subscriptions",
    ]

    static func decode(_ root: Node?, reader: ConfigReader) throws(ConfigError) -> WorkerConfiguration {
        var configuration = WorkerConfiguration()
        guard let root, !reader.isNull(root) else { return configuration }
        guard case .mapping = root else {
            throw reader.error("", "expected a map of settings at the top level, got \(reader.describe(root))", at: root)
        }
        let top = try reader.section(root, key: "", known: topLevelKeys)!
        // In this order: a later section may read an earlier one's result (schedules name queues,
        // notifications need the smtp settings). Each decoder lives in ConfigSections.swift.
        try decodeRedis(top, &configuration, reader)
        try decodePostgres(top, &configuration, reader)
        try decodePaths(top, &configuration, reader)
        try decodeControl(top, &configuration, reader)
        try decodeTimings(top, &configuration, reader)
        try decodeQueues(top, &configuration, reader)
        try decodeYouTube(top, &configuration, reader)
        try decodePlex(top, &configuration, reader)
        try decodeOverseerr(top, &configuration, reader)
        try decodeSchedules(top, &configuration, reader)
        try decodeRetention(top, &configuration, reader)
        try decodeCleanup(top, &configuration, reader)
        try decodeLogging(top, &configuration, reader)
        try decodeIntegrations(top, &configuration, reader)
        try decodeBullMQ(top, &configuration, reader)
        try decodeSubscriptions(top, &configuration, reader)
        return configuration
    }

    static func queues(_ node: Node, reader: ConfigReader) throws(ConfigError) -> [QueueSettings] {
        let entries = try reader.entries(node, key: "queues", expected: "a map of queue names to their settings")
        guard !entries.isEmpty else {
            throw reader.error("queues", "at least one queue is required", at: node)
        }
        var queues: [QueueSettings] = []
        for entry in entries {
            let key = "queues.\(entry.name)"
            guard matches(entry.name, allowed: queueNameCharacters, length: 1...64) else {
                throw reader.error(
                    key, "a queue name is 1–64 of a-z 0-9 _ -, got \(JSONText.quote(entry.name, escapingNonPrintable: true))",
                    at: entry.keyNode)
            }
            var queue = QueueSettings(name: entry.name)
            let known = ["concurrency", "max_attempts", "backoff", "timeout", "rate_limit"]
            if let section = try reader.section(entry.value, key: key, known: known) {
                if let node = section["concurrency"] {
                    queue.concurrency = try reader.int(node, key: section.path("concurrency"), range: 1...1024)
                }
                if let node = section["max_attempts"] {
                    queue.maxAttempts = try reader.int(node, key: section.path("max_attempts"), range: 1...Int.max)
                }
                if let backoff = try reader.section(section["backoff"], key: section.path("backoff"), known: ["initial", "max"]) {
                    if let node = backoff["initial"] {
                        queue.backoff.initial = try reader.duration(node, key: backoff.path("initial"))
                    }
                    if let node = backoff["max"] {
                        queue.backoff.max = try reader.duration(node, key: backoff.path("max"))
                    }
                    guard queue.backoff.initial <= queue.backoff.max else {
                        throw reader.error(
                            backoff.key,
                            "initial (\(DurationParser.format(queue.backoff.initial))) must not be longer than max (\(DurationParser.format(queue.backoff.max)))",
                            at: backoff.node)
                    }
                }
                if let node = section["timeout"] {
                    queue.timeout = try reader.duration(node, key: section.path("timeout"))
                }
                if let node = section["rate_limit"], !reader.isNull(node),
                    let limit = try reader.section(node, key: section.path("rate_limit"), known: ["max", "per"])
                {
                    let max = try reader.int(
                        required(limit, "max", "how many jobs may start per window, a whole number ≥ 1", reader),
                        key: limit.path("max"), range: 1...Int.max)
                    let per = try reader.duration(
                        required(limit, "per", "the window, a duration such as 1m", reader),
                        key: limit.path("per"))
                    queue.rateLimit = RateLimitSettings(max: max, per: per)
                }
            }
            queues.append(queue)
        }
        return queues
    }

    static func youtubeSettings(_ section: Section, reader: ConfigReader) throws(ConfigError) -> YouTubeSettings {
        var youtube = YouTubeSettings()
        if let node = section["yt_dlp"] {
            youtube.ytDlp = try reader.string(node, key: section.path("yt_dlp"), expected: "the yt-dlp command or its path")
        }
        if let node = section["quality"] {
            youtube.quality = try reader.choice(node, key: section.path("quality"), YouTubeSettings.qualities)
        }
        if let node = section["format"] {
            youtube.format = try reader.choice(node, key: section.path("format"), YouTubeSettings.formats)
        }
        if let node = section["allowed_hosts"] {
            youtube.allowedHosts = []
            let expected = "host names such as media.example.com (no scheme, path or port)"
            for (index, (host, item)) in try reader.stringList(node, key: section.path("allowed_hosts"), expected: expected).enumerated() {
                var name = host.trimmingWhitespace().lowercased()
                if name.hasPrefix("["), name.hasSuffix("]") { name = String(name.dropFirst().dropLast()) }
                let isIPv6 = name.contains(":") && name.allSatisfy { $0.isHexDigit || $0 == ":" || $0 == "." }
                let isName = matches(name, allowed: hostCharacters, length: 1...253) && !name.hasPrefix(".") && !name.hasPrefix("-")
                guard isIPv6 || isName else {
                    throw reader.error(
                        "\(section.path("allowed_hosts"))[\(index)]",
                        "expected a host name such as media.example.com (no scheme, path or port), got \(reader.describe(item, text: host))",
                        at: item)
                }
                if !youtube.allowedHosts.contains(name) { youtube.allowedHosts.append(name) }
            }
        }
        if let node = section["output"] {
            let template = try reader.string(node, key: section.path("output"), expected: "a file name template")
            if let problem = outputTemplateProblem(template) {
                throw reader.error(section.path("output"), problem, at: node)
            }
            youtube.output = template
        }
        if let node = section["sleep_requests"], !reader.isNull(node) {
            youtube.sleepRequests = try reader.duration(node, key: section.path("sleep_requests"), minimum: 0, exclusive: false)
        }
        if let node = section["js_runtime"], !reader.isNull(node) {
            youtube.jsRuntime = try reader.string(
                node, key: section.path("js_runtime"), expected: "a runtime such as deno or node:/usr/bin/node")
        }
        try youtubeToday(section, &youtube, reader: reader)
        if let node = section["chapters"], !reader.isNull(node) {
            youtube.chapters = try reader.bool(node, key: section.path("chapters"))
        }
        if let node = section["sponsorblock"], !reader.isNull(node),
            let sb = try reader.section(node, key: section.path("sponsorblock"), known: ["api", "remove", "mark"])
        {
            var settings = SponsorBlockSettings()
            if let api = sb["api"] { settings.api = try httpURL(api, key: sb.path("api"), reader: reader) }
            for name in ["remove", "mark"] {
                guard let list = sb[name] else { continue }
                var cats: [String] = []
                let expected = "SponsorBlock categories (\(SponsorBlockSettings.categories.joined(separator: ", ")))"
                for (index, (cat, item)) in try reader.stringList(list, key: sb.path(name), expected: expected).enumerated() {
                    guard SponsorBlockSettings.categories.contains(cat) else {
                        throw reader.error(
                            "\(sb.path(name))[\(index)]",
                            "unknown SponsorBlock category \(reader.describe(item, text: cat)); expected \(expected)",
                            at: item)
                    }
                    if !cats.contains(cat) { cats.append(cat) }
                }
                if name == "remove" { settings.remove = cats } else { settings.mark = cats }
            }
            if let both = settings.remove.first(where: settings.mark.contains) {
                throw reader.error(sb.path("mark"), "category \(both) is both removed and marked; choose one", at: sb["mark"] ?? node)
            }
            youtube.sponsorBlock = settings
        }
        return youtube
    }

    static func plexSettings(_ section: Section, reader: ConfigReader) throws(ConfigError) -> PlexSettings? {
        let url = try httpURL(
            required(section, "url", "the Plex server's address, e.g. http://127.0.0.1:32400", reader),
            key: section.path("url"), reader: reader)
        let token = try reader.string(
            required(section, "token", "the X-Plex-Token, e.g. \"${PLEX_TOKEN}\"", reader),
            key: section.path("token"), allowEmpty: true)
        var settings = PlexSettings(url: url, token: token)
        if let node = section["section"], !reader.isNull(node) {
            settings.section = try reader.string(node, key: section.path("section"), expected: "a library section title or key")
        }
        if let node = section["path_map"] {
            let key = section.path("path_map")
            for entry in try reader.entries(node, key: key, expected: "a map of local paths to the paths Plex sees") {
                let entryKey = "\(key).\(entry.name)"
                let local = try reader.absolutePath(entry.keyNode, key: entryKey)
                let remote = try reader.string(entry.value, key: entryKey, expected: "the path Plex sees for \(local)")
                settings.pathMap.append(PathMapping(local: local, remote: remote))
            }
        }
        return token.isEmpty ? nil : settings
    }

    static func schedules(_ node: Node, queues: [QueueSettings], reader: ConfigReader) throws(ConfigError) -> [ScheduleSettings] {
        var schedules: [ScheduleSettings] = []
        for entry in try reader.entries(node, key: "schedules", expected: "a map of schedule names to their settings") {
            let key = "schedules.\(entry.name)"
            guard matches(entry.name, allowed: prefixCharacters, length: 1...64) else {
                throw reader.error(
                    key, "a schedule name is 1–64 of A-Z a-z 0-9 _ . : -, got \(JSONText.quote(entry.name, escapingNonPrintable: true))",
                    at: entry.keyNode)
            }
            guard let section = try reader.section(entry.value, key: key, known: ["cron", "every", "job"]) else { continue }
            let cronNode = section["cron"].flatMap { reader.isNull($0) ? nil : $0 }
            let everyNode = section["every"].flatMap { reader.isNull($0) ? nil : $0 }
            var schedule: ScheduleSettings
            switch (cronNode, everyNode) {
            case (.some, .some):
                throw reader.error(key, "has both cron and every; give exactly one", at: section.node)
            case (nil, nil):
                throw reader.error(key, "needs cron (e.g. \"*/15 * * * *\") or every (e.g. 2m)", at: section.node)
            case (let cron?, nil):
                let text = try reader.string(cron, key: section.path("cron"), expected: "a cron expression such as \"*/15 * * * *\"")
                let expression: CronExpression
                do {
                    expression = try CronExpression(text)
                } catch {
                    throw reader.error(
                        section.path("cron"), "expected a cron expression such as \"*/15 * * * *\": \(error.message)", at: cron)
                }
                schedule = ScheduleSettings(name: entry.name, cron: expression.text, job: ScheduledJob(type: "", queue: ""))
            case (nil, let every?):
                let seconds = try reader.duration(every, key: section.path("every"), minimum: 1, exclusive: false)
                schedule = ScheduleSettings(name: entry.name, every: seconds, job: ScheduledJob(type: "", queue: ""))
            }

            let jobNode = try required(section, "job", "the job to enqueue: { type: ..., queue: ... }", reader)
            guard let job = try reader.section(jobNode, key: section.path("job"), known: ["type", "queue", "payload"]) else { continue }
            let typeNode = try required(job, "type", "the job type, e.g. cleanup", reader)
            let type = try reader.string(typeNode, key: job.path("type"), expected: "a job type such as cleanup")
            guard matches(type, allowed: prefixCharacters, length: 1...64) else {
                throw reader.error(
                    job.path("type"), "expected a job type such as cleanup or service.health, got \(reader.describe(typeNode, text: type))",
                    at: typeNode)
            }
            let queueNode = try required(job, "queue", "the queue it is enqueued on", reader)
            let queue = try reader.string(queueNode, key: job.path("queue"), expected: "a queue name")
            guard queues.contains(where: { $0.name == queue }) else {
                let names = queues.map(\.name).joined(separator: ", ")
                throw reader.error(
                    job.path("queue"), "no queue named \(JSONText.quote(queue, escapingNonPrintable: true)) (the queues are: \(names))",
                    at: queueNode)
            }
            var payload = "{}"
            if let node = job["payload"], !reader.isNull(node) {
                guard case .mapping = node else {
                    throw reader.error(job.path("payload"), "expected a map of the job's fields, got \(reader.describe(node))", at: node)
                }
                payload = try reader.json(node, key: job.path("payload")).encoded
            }
            schedule.job = ScheduledJob(type: type, queue: queue, payloadJSON: payload)
            schedules.append(schedule)
        }
        return schedules
    }

    // MARK: - Values

    static func required(_ section: Section, _ name: String, _ what: String, _ reader: ConfigReader) throws(ConfigError) -> Node {
        guard let node = section[name] else {
            throw reader.error(section.path(name), "missing: \(what)", at: section.node)
        }
        return node
    }

    static func redisURL(_ node: Node, key: String, reader: ConfigReader) throws(ConfigError) -> String {
        let url = try reader.string(node, key: key, expected: "a redis:// URL")
        if let problem = redisURLProblem(url) { throw reader.error(key, problem, at: node) }
        return url
    }

    static func postgresURL(_ node: Node, key: String, reader: ConfigReader) throws(ConfigError) -> String {
        let url = try reader.string(node, key: key, expected: "a postgres:// URL")
        if let problem = postgresURLProblem(url) { throw reader.error(key, problem, at: node) }
        return url
    }

    static func httpURL(_ node: Node, key: String, reader: ConfigReader) throws(ConfigError) -> String {
        let url = try reader.string(node, key: key, expected: "an http:// or https:// URL")
        if let problem = httpURLProblem(url) { throw reader.error(key, problem, at: node) }
        return url
    }

    static func redisURLProblem(_ text: String) -> String? {
        let expected =
            "expected a redis:// URL such as redis://127.0.0.1:6379/0, got \(JSONText.quote(ServiceURL.masked(text), escapingNonPrintable: true))"
        guard let url = ServiceURL(text) else { return expected }
        if url.scheme == "rediss" { return expected + " (TLS connections are not supported)" }
        guard url.scheme == "redis" else { return expected }
        guard !url.host.isEmpty else {
            return "the URL has no host: \(JSONText.quote(ServiceURL.masked(text), escapingNonPrintable: true))"
        }
        let path = url.rest.prefix { $0 != "?" && $0 != "#" }
        let database = path.drop { $0 == "/" }
        if !database.isEmpty, Int(database).map({ $0 >= 0 }) != true {
            return
                "the part after the host must be a database number such as /0, got \(JSONText.quote(String(path), escapingNonPrintable: true))"
        }
        return nil
    }

    static func postgresURLProblem(_ text: String) -> String? {
        let expected =
            "expected a postgres:// or postgresql:// URL such as postgres://medianest@127.0.0.1:5432/medianest, got \(JSONText.quote(ServiceURL.masked(text), escapingNonPrintable: true))"
        guard let url = ServiceURL(text), url.scheme == "postgres" || url.scheme == "postgresql" else { return expected }
        return nil
    }

    static func httpURLProblem(_ text: String) -> String? {
        let expected = "expected an http:// or https:// URL, got \(JSONText.quote(ServiceURL.masked(text), escapingNonPrintable: true))"
        guard let url = ServiceURL(text), url.scheme == "http" || url.scheme == "https" else { return expected }
        guard !url.host.isEmpty else {
            return "the URL has no host: \(JSONText.quote(ServiceURL.masked(text), escapingNonPrintable: true))"
        }
        return nil
    }

    static func fileMode(_ node: Node, key: String, reader: ConfigReader) throws(ConfigError) -> UInt16 {
        let expected = "an octal file mode such as \"0660\""
        let text = try reader.text(node, key: key, expected: expected)
        var digits = Substring(text.trimmingWhitespace())
        if digits.hasPrefix("0o") || digits.hasPrefix("0O") { digits = digits.dropFirst(2) }
        guard !digits.isEmpty, digits.count <= 4, let mode = UInt16(digits, radix: 8), mode <= 0o777 else {
            throw reader.error(key, "expected \(expected) (at most 0777), got \(reader.describe(node, text: text))", at: node)
        }
        return mode
    }

    static func listenAddress(_ node: Node, key: String, reader: ConfigReader) throws(ConfigError) -> MetricsSettings {
        let expected = "host:port such as 127.0.0.1:9464, [::1]:9464 or :9464, or off"
        guard let raw = try reader.optionalText(node, key: key, expected: expected) else {
            return MetricsSettings(enabled: false)
        }
        let text = raw.trimmingWhitespace()
        if ["", "off", "false", "no", "none", "disabled"].contains(text.lowercased()) {
            return MetricsSettings(enabled: false)
        }
        var host: Substring
        var portText: Substring
        if text.hasPrefix("["), let close = text.firstIndex(of: "]") {
            host = text[text.index(after: text.startIndex)..<close]
            let after = text[text.index(after: close)...]
            guard after.hasPrefix(":") else {
                throw reader.error(key, "expected \(expected), got \(reader.describe(node, text: raw))", at: node)
            }
            portText = after.dropFirst()
        } else if let colon = text.lastIndex(of: ":"), !text[..<colon].contains(":") {
            host = text[..<colon]
            portText = text[text.index(after: colon)...]
            if host.isEmpty { host = "0.0.0.0" }
        } else {
            throw reader.error(key, "expected \(expected), got \(reader.describe(node, text: raw))", at: node)
        }
        guard let port = Int(portText), (1...65535).contains(port) else {
            throw reader.error(key, "expected a port from 1 to 65535 after the colon, got \(reader.describe(node, text: raw))", at: node)
        }
        guard !host.isEmpty, !host.contains(where: { $0 == " " || $0 == "/" }) else {
            throw reader.error(key, "expected \(expected), got \(reader.describe(node, text: raw))", at: node)
        }
        return MetricsSettings(enabled: true, host: String(host), port: port)
    }

    static func userQuota(_ node: Node, key: String, reader: ConfigReader) throws(ConfigError) -> Int64? {
        let expected = "a size such as 10GiB or 500MiB, or off"
        guard let text = try reader.optionalText(node, key: key, expected: expected) else { return nil }
        if ["", "off", "none", "false", "no"].contains(text.trimmingWhitespace().lowercased()) { return nil }
        guard let bytes = SizeParser.parse(text), bytes > 0 else {
            throw reader.error(key, "expected \(expected), got \(reader.describe(node, text: text))", at: node)
        }
        return bytes
    }

    /// Why `template` cannot name files inside the library, or `nil` when it can.
    static func outputTemplateProblem(_ template: String) -> String? {
        let placeholders = YouTubeSettings.outputPlaceholders.map { "{\($0)}" }.joined(separator: " ")
        var index = template.startIndex
        while index < template.endIndex {
            let character = template[index]
            if character == "}" { return "unmatched \"}\" (the placeholders are \(placeholders))" }
            if character == "{" {
                guard let close = template[index...].firstIndex(of: "}") else {
                    return "unmatched \"{\" (the placeholders are \(placeholders))"
                }
                let name = template[template.index(after: index)..<close]
                guard YouTubeSettings.outputPlaceholders.contains(String(name)) else {
                    return "unknown placeholder {\(name)}; the placeholders are \(placeholders)"
                }
                index = template.index(after: close)
                continue
            }
            index = template.index(after: index)
        }
        if template.hasPrefix("/") {
            return "must be relative to paths.library, got \(JSONText.quote(template, escapingNonPrintable: true))"
        }
        let parts = template.split(separator: "/", omittingEmptySubsequences: false)
        if parts.contains(where: { $0.isEmpty || $0 == "." || $0 == ".." }) {
            return "must not contain empty, . or .. path parts, got \(JSONText.quote(template, escapingNonPrintable: true))"
        }
        guard let last = parts.last, last.contains("{ext}") else {
            return "the file name (after the last /) must contain {ext}, e.g. \"{channel}/{title} [{id}].{ext}\""
        }
        return nil
    }

    // MARK: - Environment overrides

    static func applyOverrides(
        to configuration: inout WorkerConfiguration, environment: [String: String], source: String
    ) throws(ConfigError) {
        if let url = environment[redisURLVariable], !url.isEmpty {
            if let problem = redisURLProblem(url) {
                throw ConfigError(file: source, key: "redis.url", message: "\(redisURLVariable): \(problem)")
            }
            configuration.redis.url = url
        }
        if let url = environment[databaseURLVariable], !url.isEmpty {
            if let problem = postgresURLProblem(url) {
                throw ConfigError(file: source, key: "postgres.url", message: "\(databaseURLVariable): \(problem)")
            }
            configuration.postgres.url = url
        }
    }

    // MARK: - Character sets

    static let prefixCharacters = Set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.:-")
    static let queueNameCharacters = Set("abcdefghijklmnopqrstuvwxyz0123456789_-")
    static let hostCharacters = Set("abcdefghijklmnopqrstuvwxyz0123456789.-")

    static func matches(_ text: String, allowed: Set<Character>, length: ClosedRange<Int>) -> Bool {
        length.contains(text.count) && text.allSatisfy(allowed.contains)
    }
}
