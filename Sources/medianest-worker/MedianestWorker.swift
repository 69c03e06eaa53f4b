import ArgumentParser
import Foundation
import JSON
import Logging
import WorkerConfig
import WorkerCore
import WorkerDaemon

/// Exit status for a bad configuration (sysexits EX_CONFIG); systemd's unit does not restart on it.
let exitConfig: Int32 = 78

struct ConfigOption: ParsableArguments {
    @Option(name: .long, help: "Path of jobs.yml (default: $MEDIANEST_CONFIG, else built-in defaults).")
    var config: String?

    /// Loads the configuration or exits 78 with a message naming the file, the key and the problem.
    func load() -> (WorkerConfiguration, String?) {
        let env = ProcessInfo.processInfo.environment
        do {
            let path = ConfigLoader.configPath(commandLinePath: config, environment: env)
            return (try ConfigLoader.resolve(commandLinePath: config, environment: env), path)
        } catch {
            FileHandle.standardError.write(Data("medianest-worker: configuration refused: \(error)\n".utf8))
            Foundation.exit(exitConfig)
        }
    }
}

@main
struct MedianestWorker: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "medianest-worker",
        abstract: "MediaNest's background job and download daemon.",
        subcommands: [Run.self, Migrate.self, CheckConfig.self, Enqueue.self, Ctl.self, YtDlpCommand.self])
}

struct Run: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Run the daemon until SIGTERM.")
    @OptionGroup var options: ConfigOption

    func run() async throws {
        let (cfg, path) = options.load()
        Logs.bootstrap(level: cfg.logging.level, format: cfg.logging.format)
        let logger = Logger(label: "medianest-worker")
        do {
            let daemon = try Daemon(
                configuration: cfg, configPath: path, environment: ProcessInfo.processInfo.environment,
                registry: HandlerRegistry.standard(), logger: logger)
            let status = await daemon.run()
            // Everything is flushed and closed: leave now rather than wait for idle threads to wind down.
            Foundation.exit(status)
        } catch let error as ExitCode {
            throw error
        } catch {
            logger.critical("cannot start", metadata: ["error": "\(error)"])
            throw ExitCode(exitConfig)
        }
    }
}

struct Migrate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Apply the database schema migrations and exit.")
    @OptionGroup var options: ConfigOption

    func run() async throws {
        let (cfg, _) = options.load()
        do {
            let applied = try await ClusterClient.migrate(configuration: cfg)
            print(applied.isEmpty ? "schema is up to date" : "applied migrations: \(applied.map(String.init).joined(separator: ", "))")
        } catch {
            FileHandle.standardError.write(Data("medianest-worker: migration failed: \(error)\n".utf8))
            throw ExitCode(1)
        }
    }
}

struct CheckConfig: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check-config",
        abstract: "Validate jobs.yml and print the resolved configuration (secrets masked).")
    @OptionGroup var options: ConfigOption

    func run() throws {
        let (cfg, _) = options.load()
        print(cfg.maskedDescription())
    }
}

struct Enqueue: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Add a job to a queue (as the API does) and print its id.")
    @OptionGroup var options: ConfigOption
    @Option(help: "Queue name.") var queue: String
    @Option(help: "Job type, e.g. noop, sleep, youtube.download.") var type: String
    @Option(help: "Payload JSON object.") var payload: String = "{}"
    @Option(help: "Job id (default: a new UUID).") var id: String?
    @Option(help: "User id; the job's events also go to the user's channel.") var user: String?
    @Option(help: "Most attempts.") var maxAttempts: Int?
    @Option(help: "Do not start before this RFC 3339 time.") var runAt: String?

    func run() async throws {
        let (cfg, _) = options.load()
        let jobID = id ?? UUID().uuidString.lowercased()
        guard JobEnvelope.isValidID(jobID) else { throw ValidationError("--id must be 1–128 characters of A-Z a-z 0-9 . _ : -") }
        guard JobEnvelope.isValidQueueName(queue) else { throw ValidationError("--queue must match [a-z0-9_-]{1,64}") }
        guard let payloadValue = JSONValue.parse(payload), payloadValue.isObject else {
            throw ValidationError("--payload must be a JSON object")
        }
        var runAtMs: Int64?
        if let runAt {
            guard let ms = Timestamp.parse(runAt) else { throw ValidationError("--run-at must be an RFC 3339 timestamp") }
            runAtMs = ms
        }
        let envelope = JobEnvelope(
            id: jobID, type: type, payloadJSON: payloadValue.encoded, userId: user,
            maxAttempts: maxAttempts, runAt: runAtMs)
        let cluster = try ClusterClient(configuration: cfg, name: "medianest-enqueue")
        defer { cluster.close() }
        do {
            try await cluster.enqueue(envelope, on: queue)
        } catch {
            FileHandle.standardError.write(Data("medianest-worker: could not enqueue: \(error)\n".utf8))
            throw ExitCode(1)
        }
        print(jobID)
    }
}

struct YtDlpCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ytdlp", abstract: "The managed yt-dlp (youtube.yt_dlp: managed) of this host.",
        subcommands: [Install.self, Status.self])

    struct Install: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Install the newest yt-dlp[default] of youtube.update.channel under paths.state and switch to it now.")
        @OptionGroup var options: ConfigOption

        func run() async throws {
            let (cfg, _) = options.load()
            let outcome = await ManagedYtDlpCommand.install(cfg)
            if outcome.ok {
                print(outcome.message)
            } else {
                FileHandle.standardError.write(Data("medianest-worker: \(outcome.message)\n".utf8))
                throw ExitCode(1)
            }
        }
    }

    struct Status: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show the managed yt-dlp versions of this host.")
        @OptionGroup var options: ConfigOption

        func run() throws {
            let (cfg, _) = options.load()
            print(ManagedYtDlpCommand.status(cfg))
        }
    }
}
