import Foundation
import JSON
import Logging
import PostgresClient
import RedisClient
import ServiceClients
import Synchronization
import WorkerConfig
import YtDlp

/// `service.health`: checks what the daemon depends on and records it.
///
/// Checks, at once, each bounded to 10 s: `plex` and `overseerr` (when configured), `redis`,
/// `postgres`, `yt-dlp` (its version, and whether a JavaScript runtime for YouTube's player is
/// present), `disk:library` and `disk:temp` (free space). Each result is written to the
/// `service_status` row of the service (the API's table: status, response time, uptime over 30
/// days), to `worker_service_checks` (counts and the check's details), to the hash
/// `P:health:<service>` (`status`, `responseTimeMs`, `checkedAt`, `message`, and the check's own
/// fields) and to the MediaNest dashboard's `status:<service>` and `status:all` JSON. The job completes whatever the services' state: a check that ran is a success.
struct ServiceHealthHandler: JobHandler {
    static let type = "service.health"
    static let checkTimeout: Double = 10
    /// Free space under which a folder is `degraded`.
    static let lowSpaceBytes: Int64 = 1 << 30

    struct Check: Sendable {
        var service: String
        var status: String
        var responseTimeMs: Int?
        var message: String?
        var details: [(String, JSONValue)] = []
    }

    func run(_ context: JobContext) async throws -> JSONValue {
        let services = context.services
        let configuration = services.configuration
        await context.report(Progress(stage: "checking", percent: 0))
        var probes: [(String, @Sendable () async -> Check)] = [
            ("redis", { await Self.redis(services) }),
            ("postgres", { await Self.postgres(services) }),
            ("yt-dlp", { await Self.ytDlp(configuration) }),
            ("disk:library", { Self.disk("disk:library", configuration.paths.library) }),
            ("disk:temp", { Self.disk("disk:temp", configuration.paths.temp) }),
        ]
        if let (plex, _) = services.integrations.plex(services) {
            probes.append(("plex", { await Self.http("plex") { _ = try await plex.sections() } }))
        }
        if let overseerr = services.integrations.overseerr(services) {
            probes.append(("overseerr", { await Self.http("overseerr") { _ = try await overseerr.status() } }))
        }
        let checks = await withTaskGroup(of: Check.self) { group in
            for (name, probe) in probes { group.addTask { await Self.bounded(name, probe) } }
            var all: [Check] = []
            for await check in group { all.append(check) }
            return all.sorted { $0.service < $1.service }
        }
        await context.report(Progress(stage: "recording", percent: 90))
        if let ytdlp = checks.first(where: { $0.service == "yt-dlp" }) { services.integrations.noteYtDlp(ytdlp) }
        let circuits = services.integrations.circuitStates()
        await Self.record(checks, circuits: circuits, services: services, context: context)
        let down = checks.filter { $0.status == "down" }.map(\.service)
        if !down.isEmpty { context.logger.warning("services down", metadata: ["services": "\(down.joined(separator: ","))"]) }
        return .object([("services", .object(checks.map { ($0.service, .string($0.status)) }))])
    }

    /// Runs a probe with the check timeout.
    static func bounded(_ service: String, _ probe: @escaping @Sendable () async -> Check) async -> Check {
        await withTaskGroup(of: Check?.self) { group in
            group.addTask { await probe() }
            group.addTask {
                try? await Task.sleep(for: .milliseconds(Int64(checkTimeout * 1000)))
                return nil
            }
            let first = await group.next() ?? nil
            group.cancelAll()
            return first ?? Check(service: service, status: "down", message: "the check did not finish within \(Int(checkTimeout)) s")
        }
    }

    static func timed(_ body: () async throws -> Void) async -> (Int, (any Error)?) {
        let start = ContinuousClock.now
        do {
            try await body()
            return (milliseconds(ContinuousClock.now - start), nil)
        } catch {
            return (milliseconds(ContinuousClock.now - start), error)
        }
    }

    static func milliseconds(_ d: Duration) -> Int { Int(d / .milliseconds(1)) }

    static func http(_ service: String, _ body: @Sendable () async throws -> Void) async -> Check {
        let (ms, error) = await timed(body)
        guard let error else { return Check(service: service, status: "up", responseTimeMs: ms) }
        let message = (error as? ServiceError)?.description ?? "the check failed"
        // A service that answers but refuses (a 4xx, e.g. a wrong token) works, but not for us.
        let status = (error as? ServiceError)?.httpStatus.map { $0 < 500 ? "degraded" : "down" } ?? "down"
        return Check(service: service, status: status, responseTimeMs: ms, message: message)
    }

    static func redis(_ services: WorkerServices) async -> Check {
        let (ms, error) = await timed {
            guard try await services.redis.send(RedisCommand(["PING"])).string == "PONG" else { throw CancellationError() }
        }
        return Check(
            service: "redis", status: error == nil ? "up" : "down", responseTimeMs: ms,
            message: error == nil ? nil : "Redis does not answer PING")
    }

    static func postgres(_ services: WorkerServices) async -> Check {
        var version: String?
        let start = ContinuousClock.now
        do {
            version = try await services.postgres.query("SHOW server_version").first?[0]
            return Check(
                service: "postgres", status: "up", responseTimeMs: milliseconds(ContinuousClock.now - start),
                details: version.map { [("version", .string($0))] } ?? [])
        } catch {
            return Check(
                service: "postgres", status: "down", responseTimeMs: milliseconds(ContinuousClock.now - start),
                message: "PostgreSQL does not answer: \(error)")
        }
    }

    static func disk(_ service: String, _ path: String) -> Check {
        var stats = statvfs()
        guard statvfs(path, &stats) == 0 else {
            return Check(
                service: service, status: "down", message: "\(path) is not reachable: \(String(cString: strerror(errno)))",
                details: [("path", .string(path))])
        }
        let free = Int64(stats.f_bavail) * Int64(stats.f_frsize)
        let total = Int64(stats.f_blocks) * Int64(stats.f_frsize)
        let low = free < lowSpaceBytes || (total > 0 && Double(free) / Double(total) < 0.05)
        return Check(
            service: service, status: low ? "degraded" : "up",
            message: low ? "\(path) has \(free / (1 << 20)) MiB free" : nil,
            details: [("path", .string(path)), ("freeBytes", .number(String(free))), ("totalBytes", .number(String(total)))])
    }

    /// yt-dlp's version (`yt-dlp --version`), its channel and age (versions are release dates), a
    /// JavaScript runtime (the configured one, `youtube.js_runtime` as `name` or `name:path`, else
    /// deno, node, bun or qjs in `PATH`) and the plugin packages found in `youtube.plugin_dirs`.
    /// `degraded` when older than 2025.11.12, older than 90 days, or without a JS runtime.
    /// A managed yt-dlp (`yt_dlp: managed`) is checked as `current` names it, its channel the configured one.
    static func ytDlp(_ configuration: WorkerConfiguration, now: Date = Date()) async -> Check {
        var settings = configuration.youtube
        let managed = settings.managed
        settings.ytDlp = YtDlpGate.checkedExecutable(configuration)
        let start = ContinuousClock.now
        let run = await ProcessProbe.run(settings.ytDlp, ["--version"], timeout: checkTimeout - 1)
        let ms = milliseconds(ContinuousClock.now - start)
        let runtime = javaScriptRuntime(settings.jsRuntime)
        let plugins = pluginPackages(settings.pluginDirs)
        var details: [(String, JSONValue)] = [
            ("jsRuntime", runtime.map { .string($0) } ?? .null),
            ("plugins", .string(plugins.joined(separator: ","))),
        ]
        guard let output = run, output.status == 0, let version = output.text.split(whereSeparator: \.isNewline).first.map(String.init)
        else {
            let message =
                managed
                ? "no managed yt-dlp runs on this host (none installed in \(ManagedYtDlp(stateDirectory: configuration.paths.state).root)? "
                    + "run medianest-worker ytdlp install)"
                : "\(settings.ytDlp) --version did not run (is yt-dlp installed? see youtube.yt_dlp)"
            return Check(service: "yt-dlp", status: "down", responseTimeMs: ms, message: message, details: details)
        }
        details.insert(("version", .string(version)), at: 0)
        var problems: [String] = []
        let advice =
            managed
            ? "update it (the youtube.update job; youtube.update.channel is \(settings.update.channel))"
            : "update it (pip install -U \"yt-dlp[default]\")"
        if let parsed = YtDlpVersion(version) {
            let age = parsed.ageDays(now: now)
            details.insert(("channel", .string(managed ? settings.update.channel : parsed.channel)), at: 1)
            details.insert(("ageDays", .number(String(age))), at: 2)
            if parsed < YtDlpVersion.minimum {
                problems.append(
                    "yt-dlp \(version) is older than \(YtDlpVersion.minimum): YouTube needs 2025.11.12 or newer with a JS runtime; "
                        + advice)
            } else if age > YtDlpVersion.staleDays {
                problems.append(
                    "yt-dlp \(version) is \(age) days old (more than \(YtDlpVersion.staleDays)); YouTube changes often: " + advice)
            }
        } else {
            problems.append("yt-dlp's version \"\(version.prefix(40))\" is not a release date; its age is unknown")
        }
        if runtime == nil {
            problems.append("no JavaScript runtime (deno, node, bun or qjs) found; YouTube downloads may fail (set youtube.js_runtime)")
        }
        return Check(
            service: "yt-dlp", status: problems.isEmpty ? "up" : "degraded", responseTimeMs: ms,
            message: problems.isEmpty ? nil : problems.joined(separator: "; "), details: details)
    }

    /// Plugin packages in the plugin folders: sub-folders holding `yt_dlp_plugins`, and `.zip`/`.whl` files.
    static func pluginPackages(_ folders: [String]) -> [String] {
        var found: [String] = []
        for folder in folders {
            let names = ((try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? []).sorted()
            for name in names {
                let path = (folder as NSString).appendingPathComponent(name)
                var isDirectory: ObjCBool = false
                if name.hasSuffix(".zip") || name.hasSuffix(".whl") {
                    found.append(name)
                } else if FileManager.default.fileExists(atPath: path + "/yt_dlp_plugins", isDirectory: &isDirectory), isDirectory.boolValue
                {
                    found.append(name)
                }
            }
        }
        return found
    }

    /// The start-up check of yt-dlp: recorded in `P:health:yt-dlp`, kept for `ctl status` and
    /// `medianest_ytdlp_info`, and logged (a warning when degraded or down).
    package static func startupYtDlpCheck(_ services: WorkerServices) async {
        let check = await bounded("yt-dlp") { await ytDlp(services.configuration) }
        services.integrations.noteYtDlp(check)
        var fields = [
            "HSET", "\(services.queue.keys.prefix):health:yt-dlp", "status", check.status, "checkedAt", Timestamp.now(),
            "message", check.message ?? "",
        ]
        for (name, value) in check.details { fields += [name, value.stringValue ?? (value == .null ? "" : value.encoded)] }
        _ = try? await services.redis.send(RedisCommand(fields))
        var metadata: Logger.Metadata = ["status": "\(check.status)"]
        for (name, value) in check.details { metadata[name] = "\(value.stringValue ?? value.encoded)" }
        if let message = check.message {
            metadata["problem"] = "\(message)"
            services.logger.warning("yt-dlp check", metadata: metadata)
        } else {
            services.logger.info("yt-dlp check", metadata: metadata)
        }
    }

    static func javaScriptRuntime(_ configured: String?) -> String? {
        if let configured, !configured.isEmpty {
            let parts = configured.split(separator: ":", maxSplits: 1).map(String.init)
            if parts.count == 2 { return FileManager.default.isExecutableFile(atPath: parts[1]) ? configured : nil }
            return executable(named: parts[0]).map { "\(parts[0]):\($0)" }
        }
        for name in ["deno", "node", "bun", "qjs"] {
            if let path = executable(named: name) { return "\(name):\(path)" }
        }
        return nil
    }

    static func executable(named name: String) -> String? {
        if name.contains("/") { return FileManager.default.isExecutableFile(atPath: name) ? name : nil }
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/local/bin:/usr/bin:/bin"
        for folder in path.split(separator: ":") {
            let candidate = "\(folder)/\(name)"
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        return nil
    }

    /// Writes the checks to `service_status` and `P:health:<service>`.
    static func record(_ checks: [Check], circuits: [String: String], services: WorkerServices, context: JobContext) async {
        let now = Timestamp.now()
        var commands: [RedisCommand] = []
        for check in checks {
            let key = "\(services.queue.keys.prefix):health:\(check.service)"
            var fields = ["HSET", key, "status", check.status, "checkedAt", now, "message", check.message ?? ""]
            if let ms = check.responseTimeMs { fields += ["responseTimeMs", String(ms)] }
            if let circuit = circuits[check.service] { fields += ["circuit", circuit] }
            for (name, value) in check.details {
                fields += [name, value.stringValue ?? (value == .null ? "" : value.encoded)]
            }
            commands.append(RedisCommand(fields))
        }
        do {
            _ = try await services.redis.pipeline(commands)
        } catch {
            context.logger.warning("health not written to Redis", metadata: ["error": "\(error)"])
        }
        var dashboard: [String] = []
        for check in checks {
            var details = check.details
            if let message = check.message { details.append(("message", .string(message))) }
            if let circuit = circuits[check.service] { details.append(("circuit", .string(circuit))) }
            var uptime: (day: String?, month: String?) = (nil, nil)
            do {
                let row = try await services.postgres.query(
                    Self.recordSQL,
                    [
                        PostgresBind(check.service), PostgresBind(check.status), PostgresBind(check.responseTimeMs),
                        PostgresBind(json: JSONValue.object(details).encoded),
                    ]
                ).first
                uptime = (row?["uptime24h"], row?["uptime30d"])
            } catch {
                context.logger.warning("health not written to PostgreSQL", metadata: ["service": "\(check.service)", "error": "\(error)"])
            }
            dashboard.append(Self.dashboardJSON(check, uptime: uptime, checkedAt: now))
        }
        var statusCommands = zip(checks, dashboard).map { check, json in
            RedisCommand(["SET", "status:\(check.service)", json, "EX", String(Self.dashboardTTL)])
        }
        statusCommands.append(
            RedisCommand(["SET", "status:all", "[" + dashboard.joined(separator: ",") + "]", "EX", String(Self.dashboardTTL)]))
        do {
            _ = try await services.redis.pipeline(statusCommands)
        } catch {
            context.logger.warning("dashboard status not written to Redis", metadata: ["error": "\(error)"])
        }
    }

    /// Seconds the MediaNest dashboard's `status:<service>` keys live without a newer check.
    static let dashboardTTL = 3600

    /// The names the MediaNest dashboard shows.
    static func displayName(_ service: String) -> String {
        switch service {
        case "plex": "Plex"
        case "overseerr": "Overseerr"
        case "redis": "Redis"
        case "postgres": "PostgreSQL"
        case "yt-dlp": "yt-dlp"
        case "disk:library": "Library disk"
        case "disk:temp": "Temporary disk"
        default: service
        }
    }

    /// `status:<service>` for the MediaNest backend's dashboard (UPSTREAM.md section 2): {name,
    /// displayName, status up|down (a degraded service answers: up, with its message), responseTime
    /// (ms), uptime24h and uptime30d (percent of this daemon's checks), lastCheck, message}.
    static func dashboardJSON(_ check: Check, uptime: (day: String?, month: String?), checkedAt: String) -> String {
        let responseTime: JSONValue = check.responseTimeMs.map { .number(String($0)) } ?? .null
        let day: JSONValue = uptime.day.map { .number($0) } ?? .null
        let month: JSONValue = uptime.month.map { .number($0) } ?? .null
        let message: JSONValue = check.message.map { .string($0) } ?? (check.status == "down" ? .string("down") : .null)
        let fields: [(String, JSONValue)] = [
            ("name", .string(check.service)), ("displayName", .string(displayName(check.service))),
            ("status", .string(check.status == "down" ? "down" : "up")), ("responseTime", responseTime),
            ("uptime24h", day), ("uptime30d", month), ("lastCheck", .string(checkedAt)), ("message", message),
        ]
        return JSONValue.object(fields).encoded
    }

    /// One check into `worker_service_checks` (counts, details), `worker_service_history` (for the
    /// uptimes; 30 days kept) and the API's `service_status` (status, response time, last check in
    /// UTC, uptime over 30 days); answers the 24-hour and 30-day uptimes including this check.
    static let recordSQL = """
        WITH current AS (SELECT CASE WHEN $2::text = 'down' THEN 0 ELSE 1 END AS up),
        own AS (
            INSERT INTO worker_service_checks (service_name, status, response_time_ms, checks_total, checks_up, details, checked_at)
            SELECT $1, $2, $3, 1, current.up, $4, now() FROM current
            ON CONFLICT (service_name) DO UPDATE SET
                status = EXCLUDED.status, response_time_ms = EXCLUDED.response_time_ms,
                checks_total = worker_service_checks.checks_total + 1,
                checks_up = worker_service_checks.checks_up + EXCLUDED.checks_up,
                details = EXCLUDED.details, checked_at = now()
        ),
        past AS (
            SELECT count(*) FILTER (WHERE checked_at > now() - interval '24 hours') AS n24,
                   count(*) FILTER (WHERE up AND checked_at > now() - interval '24 hours') AS up24,
                   count(*) FILTER (WHERE checked_at > now() - interval '30 days') AS n30,
                   count(*) FILTER (WHERE up AND checked_at > now() - interval '30 days') AS up30
            FROM worker_service_history WHERE service_name = $1
        ),
        noted AS (INSERT INTO worker_service_history (service_name, up) SELECT $1, current.up = 1 FROM current),
        trimmed AS (DELETE FROM worker_service_history WHERE service_name = $1 AND checked_at < now() - interval '30 days'),
        uptime AS (
            SELECT round(100.0 * (past.up24 + current.up) / (past.n24 + 1), 2) AS day,
                   round(100.0 * (past.up30 + current.up) / (past.n30 + 1), 2) AS month
            FROM past, current
        ),
        shared AS (
            INSERT INTO service_status (service_name, status, response_time_ms, last_check_at, uptime_percentage)
            SELECT $1, $2, $3, now(), uptime.month FROM uptime
            ON CONFLICT (service_name) DO UPDATE SET
                status = EXCLUDED.status, response_time_ms = EXCLUDED.response_time_ms,
                last_check_at = EXCLUDED.last_check_at, uptime_percentage = EXCLUDED.uptime_percentage
        )
        SELECT day::text AS uptime24h, month::text AS uptime30d FROM uptime
        """
}

/// Runs a short command and collects its output, off the cooperative pool (Foundation's process
/// machinery waits on threads of its own).
enum ProcessProbe {
    struct Output: Sendable {
        var status: Int32
        var text: String
    }

    /// How much lower than the daemon a probe runs (`nice`): a check is maintenance, and the
    /// start-up one (a Python start of yt-dlp, about half a second of a core) would otherwise
    /// take that from the jobs the daemon starts on at the same moment.
    static let niceness: Int32 = 5

    /// `executable` (a name looked up in `PATH`, or a path) with `arguments`, at a lower CPU priority
    /// (`niceness`); nil when it cannot start or does not end within `timeout` seconds (it is then killed).
    static func run(_ executable: String, _ arguments: [String], timeout: Double) async -> Output? {
        guard let path = ServiceHealthHandler.executable(named: executable) else { return nil }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: path)
        process.arguments = arguments
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = FileHandle.nullDevice
        process.standardInput = FileHandle.nullDevice
        let finished = ProbeFlag()
        let reader = pipe.fileHandleForReading
        return await withCheckedContinuation { (continuation: CheckedContinuation<Output?, Never>) in
            process.terminationHandler = { ended in
                finished.value.store(true, ordering: .releasing)
                let data = reader.readDataToEndOfFile()
                continuation.resume(returning: Output(status: ended.terminationStatus, text: String(decoding: data, as: UTF8.self)))
            }
            do {
                try process.run()
            } catch {
                process.terminationHandler = nil
                continuation.resume(returning: nil)
                return
            }
            let pid = process.processIdentifier
            _ = setpriority(__priority_which_t(PRIO_PROCESS.rawValue), id_t(pid), niceness)
            DispatchQueue.global().asyncAfter(deadline: .now() + timeout) {
                if !finished.value.load(ordering: .acquiring) { kill(pid, SIGKILL) }
            }
        }
    }
}

/// Set once a probed process has ended (so the deadline does not signal a reused pid).
final class ProbeFlag: Sendable {
    let value = Atomic<Bool>(false)
}
