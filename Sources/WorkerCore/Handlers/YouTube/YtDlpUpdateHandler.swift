import Foundation
import JSON
import Logging
import Synchronization
import WorkerConfig
import YtDlp

/// Which yt-dlp a download starts, and how many downloads run on this host: the update switches
/// a managed yt-dlp only while none does (contract section 13).
package final class YtDlpGate: Sendable {
    private let running = Mutex(0)

    package init() {}

    /// A download starts: the executable it runs (for a managed yt-dlp, the version `current`
    /// names now, as a resolved path, so a later switch affects only later downloads).
    /// Throws a waiting failure when yt-dlp is managed and no version is installed yet.
    package func enter(_ configuration: WorkerConfiguration) throws(JobFailure) -> String {
        try running.withLock { (count: inout Int) throws(JobFailure) -> String in
            let executable = try Self.executable(configuration)
            count += 1
            return executable
        }
    }

    /// A download has ended.
    package func leave() { running.withLock { $0 = max($0 - 1, 0) } }

    /// Downloads running on this host now.
    package var downloads: Int { running.withLock { $0 } }

    /// Runs `body` when no download runs (no download starts meanwhile); false when one runs.
    package func whenIdle(_ body: () throws(ManagedYtDlpError) -> Void) throws(ManagedYtDlpError) -> Bool {
        try running.withLock { (count: inout Int) throws(ManagedYtDlpError) -> Bool in
            guard count == 0 else { return false }
            try body()
            return true
        }
    }

    /// The executable a yt-dlp run starts now: `youtube.yt_dlp`, or the managed one's current version.
    package static func executable(_ configuration: WorkerConfiguration) throws(JobFailure) -> String {
        guard configuration.youtube.managed else { return configuration.youtube.ytDlp }
        let managed = ManagedYtDlp(stateDirectory: configuration.paths.state)
        guard let path = managed.executable() else {
            throw JobFailure.waiting(
                "No managed yt-dlp is installed on this host yet (in \(managed.root)); the download waits until one is: "
                    + "run medianest-worker ytdlp install, or a youtube.update job (which needs pip to reach its index).",
                seconds: 15)
        }
        return path
    }

    /// The executable for checks (`--version`): as `executable`, or the path `current` will have when none is installed.
    package static func checkedExecutable(_ configuration: WorkerConfiguration) -> String {
        (try? executable(configuration))
            ?? ManagedYtDlp(stateDirectory: configuration.paths.state).versionsDirectory + "/(none installed)/bin/yt-dlp"
    }
}

extension ManagedYtDlp.Source {
    /// The pip source `youtube.update` names, for `channel` (`off` installs from stable).
    package init(_ update: YtDlpUpdateSettings, channel: String? = nil) {
        let wanted = channel ?? update.channel
        self.init(
            channel: wanted == "off" ? "stable" : wanted, indexURL: update.indexURL, findLinks: update.findLinks,
            noIndex: update.noIndex, python: update.python)
    }

    /// The environment of venv and pip: yt-dlp's (PATH, HOME, proxies, CA bundles) and pip's own
    /// `PIP_*` settings (an index, find-links, a certificate) from the daemon's environment.
    package static func environment(from base: [String: String] = ProcessInfo.processInfo.environment) -> [String: String] {
        var env = YtDlpConfiguration.childEnvironment(from: base)
        for (name, value) in base where name.hasPrefix("PIP_") { env[name] = value }
        return env
    }
}

/// `youtube.update {}` (contract section 13): brings this host's managed yt-dlp up to date.
///
/// Installs the newest version of `youtube.update.channel` in a new venv beside the current one,
/// checks that it runs (`yt-dlp --version`), and switches `current` to it once no
/// `youtube.download` runs on this host: it waits up to ``switchWait`` for running downloads to
/// end, then hands the job back (attempt not counted) to try again later, the new version kept
/// ready. The previous version is kept to fall back to; older ones are removed. A failed install
/// or a new version that does not run changes nothing, and the error says why.
///
/// The per-host schedule (``YtDlpUpdateScheduler``) names its daemon in `host`: another daemon that
/// takes the job hands it back, until `until` (epoch ms) has passed — then it completes as skipped.
struct YtDlpUpdateHandler: JobHandler {
    static let type = "youtube.update"
    static let schema = PayloadSchema([
        .optional("host", .string(length: 1...200), note: "the daemon (consumer name) whose yt-dlp to update; any when absent"),
        .optional("until", .integer(min: 0), note: "epoch ms after which a job for another daemon is skipped"),
    ])
    /// Longest wait for this host's downloads to end before the job is handed back.
    static let switchWait: Duration = .seconds(600)

    func run(_ context: JobContext) async throws -> JSONValue {
        try Self.schema.check(context.payload)
        let services = context.services
        let configuration = services.configuration
        let me = services.queue.consumer
        if let host = context.payload.given("host")?.stringValue, host != me {
            let until = context.payload.given("until")?.doubleValue.map { Int64($0) } ?? Int64.max
            if Timestamp.nowMilliseconds() > until {
                return .object([
                    ("skipped", .bool(true)), ("host", .string(host)),
                    ("message", .string("the daemon \(host) did not take its update in time (it may have stopped); skipped")),
                ])
            }
            throw JobFailure.waiting("This update is for the daemon \(host); handed back for it.", seconds: 0.5)
        }
        let youtube = configuration.youtube
        guard youtube.managed else {
            throw JobFailure.permanent(
                "youtube.yt_dlp is \(youtube.ytDlp), not managed: this daemon does not replace a yt-dlp it does not own; "
                    + "update it with pip install -U \"yt-dlp[default]\", or set youtube.yt_dlp: managed.")
        }
        guard youtube.update.channel != "off" else {
            return .object([
                ("skipped", .bool(true)), ("channel", .string("off")),
                ("message", .string("youtube.update.channel is off: nothing updated")),
            ])
        }
        return try await Self.update(
            ManagedYtDlp(stateDirectory: configuration.paths.state), source: ManagedYtDlp.Source(youtube.update),
            context: context)
    }

    /// At start: with `yt_dlp: managed` and no version installed, installs one (the channel's
    /// newest; stable when the channel is off), then checks yt-dlp (`startupYtDlpCheck`). Without
    /// network the install fails, the log says so, and YouTube downloads wait (attempts not counted)
    /// until `medianest-worker ytdlp install` or a `youtube.update` job installs one.
    package static func startup(_ services: WorkerServices) async {
        let configuration = services.configuration
        if configuration.youtube.managed {
            let managed = ManagedYtDlp(stateDirectory: configuration.paths.state)
            if let version = managed.currentVersion() {
                services.logger.info("managed yt-dlp", metadata: ["version": "\(version)", "folder": "\(managed.root)"])
            } else {
                let source = ManagedYtDlp.Source(configuration.youtube.update)
                services.logger.notice(
                    "managed yt-dlp: none installed yet; installing yt-dlp[default] (needs pip to reach its index)",
                    metadata: ["folder": "\(managed.root)", "channel": "\(source.channel)"])
                do {
                    if let installed = try await managed.installNow(source, environment: ManagedYtDlp.Source.environment()) {
                        services.logger.notice("managed yt-dlp installed", metadata: ["version": "\(installed.version)"])
                    } else {
                        services.logger.notice("managed yt-dlp: another install runs (medianest-worker ytdlp install?); not starting one")
                    }
                } catch {
                    services.logger.error(
                        """
                        managed yt-dlp could not be installed; YouTube downloads wait (attempts not counted) until one is: \
                        run medianest-worker ytdlp install once the host reaches the package index, or let a youtube.update job do it
                        """,
                        metadata: ["error": "\(error)", "folder": "\(managed.root)"])
                }
            }
        }
        await ServiceHealthHandler.startupYtDlpCheck(services)
    }

    static func update(_ managed: ManagedYtDlp, source: ManagedYtDlp.Source, context: JobContext) async throws -> JSONValue {
        let services = context.services
        guard let lock = try managed.lock() else {
            throw JobFailure.waiting("Another install of yt-dlp runs on this host; this update waits for it.", seconds: 30)
        }
        defer { lock.release() }
        let before = managed.currentVersion()
        await context.report(Progress(stage: "installing", percent: 10))
        let preparation: ManagedYtDlp.Preparation
        do {
            preparation = try await managed.prepare(source, environment: ManagedYtDlp.Source.environment())
        } catch {
            let keeps = before.map { "yt-dlp \($0) stays in use." } ?? "No yt-dlp is installed yet."
            switch error {
            case .broken(let why):
                throw JobFailure.permanent("The new yt-dlp was refused: \(why). \(keeps)")
            case .cancelled:
                throw CancellationError()
            case .install(let why), .filesystem(let why):
                throw JobFailure.retryable("The yt-dlp update failed: \(why). \(keeps)")
            }
        }
        var result: [(String, JSONValue)] = [("channel", .string(source.channel))]
        switch preparation {
        case .alreadyCurrent(let version):
            managed.prune()
            return .object(
                result + [("version", .string(version)), ("alreadyCurrent", .bool(true)), ("message", .string("already current"))])
        case .currentIsNewer(let newest, let current):
            return .object(
                result + [
                    ("version", .string(current)), ("newest", .string(newest)), ("alreadyCurrent", .bool(true)),
                    ("message", .string("already current: \(current) is newer than the channel's newest (\(newest)); kept")),
                ])
        case .ready(let prepared):
            let start = ContinuousClock.now
            var reported = false
            while true {
                let switched: Bool
                do {
                    switched = try services.ytDlpGate.whenIdle { () throws(ManagedYtDlpError) in try managed.activate(prepared.version) }
                } catch {
                    throw JobFailure.retryable("yt-dlp \(prepared.version) is installed but could not be switched to: \(error)")
                }
                if switched { break }
                if ContinuousClock.now - start >= switchWait {
                    throw JobFailure.waiting(
                        "yt-dlp \(prepared.version) is installed; the switch waits until no download runs on this host.", seconds: 30)
                }
                if !reported {
                    reported = true
                    context.logger.info(
                        "yt-dlp update: waiting for this host's downloads to end before switching",
                        metadata: ["version": "\(prepared.version)", "downloads": "\(services.ytDlpGate.downloads)"])
                    await context.report(Progress(stage: "waiting for downloads", percent: 80))
                }
                try await Task.sleep(for: .milliseconds(200))
            }
            let waited = ContinuousClock.now - start
            let removed = managed.prune()
            context.logger.notice(
                "yt-dlp updated",
                metadata: ["version": "\(prepared.version)", "previous": "\(before ?? "none")", "channel": "\(source.channel)"])
            await ServiceHealthHandler.startupYtDlpCheck(services)
            result += [
                ("version", .string(prepared.version)), ("previous", before.map { .string($0) } ?? .null), ("switched", .bool(true)),
                ("switchedAt", .string(Timestamp.now())),
                (
                    "waitedSeconds",
                    .number(String(format: "%.1f", Double(waited.components.seconds) + Double(waited.components.attoseconds) / 1e18))
                ),
                ("removed", .array(removed.map { .string($0) })),
            ]
            return .object(result)
        }
    }
}

/// `medianest-worker ytdlp install` and `ytdlp status`: the managed yt-dlp from the command line.
package enum ManagedYtDlpCommand {
    /// Installs the newest of the configured channel (stable when off) and switches to it at once;
    /// meant for setting up, before the daemon runs (the daemon's own `youtube.update` waits for
    /// downloads to end; this does not). Returns the line to print and whether it worked.
    package static func install(_ configuration: WorkerConfiguration) async -> (message: String, ok: Bool) {
        guard configuration.youtube.managed else {
            return (
                "youtube.yt_dlp is \(configuration.youtube.ytDlp), not managed: nothing to install (set youtube.yt_dlp: managed)", false
            )
        }
        let managed = ManagedYtDlp(stateDirectory: configuration.paths.state)
        let source = ManagedYtDlp.Source(configuration.youtube.update)
        do {
            guard let installed = try await managed.installNow(source, environment: ManagedYtDlp.Source.environment()) else {
                return ("another install of yt-dlp runs in \(managed.root); try again when it has ended", false)
            }
            if !installed.switched {
                return ("yt-dlp \(installed.version) (\(source.channel)) is already current in \(managed.root)", true)
            }
            let previous = installed.previous.map { "; \($0) kept to fall back to" } ?? ""
            return ("yt-dlp \(installed.version) (\(source.channel)) installed in \(managed.root)\(previous)", true)
        } catch {
            let keeps = managed.currentVersion().map { "; yt-dlp \($0) stays in use" } ?? ""
            return ("could not install yt-dlp: \(error)\(keeps)", false)
        }
    }

    /// The managed versions: current, previous and every installed one.
    package static func status(_ configuration: WorkerConfiguration) -> String {
        guard configuration.youtube.managed else { return "youtube.yt_dlp is \(configuration.youtube.ytDlp) (not managed)" }
        let managed = ManagedYtDlp(stateDirectory: configuration.paths.state)
        return """
            folder: \(managed.root)
            channel: \(configuration.youtube.update.channel), every \(DurationParser.format(configuration.youtube.update.every))
            current: \(managed.currentVersion() ?? "none")
            previous: \(managed.previousVersion() ?? "none")
            installed: \(managed.installedVersions().joined(separator: ", "))
            """
    }
}
