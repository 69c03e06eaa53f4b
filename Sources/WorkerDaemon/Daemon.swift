import Foundation
import Logging
import Synchronization
import WorkerConfig
import WorkerCore

/// The daemon process: a `Worker` plus what belongs to a process — signals, systemd notification,
/// the watchdog, and re-reading jobs.yml on SIGHUP.
package final class Daemon: Sendable {
    package let worker: Worker
    let configPath: String?
    let environment: [String: String]
    let notifier: SystemdNotifier
    let logger: Logger

    package init(
        configuration: WorkerConfiguration, configPath: String?, environment: [String: String],
        registry: HandlerRegistry, logger: Logger
    ) throws {
        self.worker = try Worker(
            configuration: configuration, registry: registry, logger: logger,
            observers: WorkerServices.standardObservers(configuration))
        self.configPath = configPath
        self.environment = environment
        self.notifier = SystemdNotifier(environment: environment)
        self.logger = logger
    }

    /// Runs until SIGTERM/SIGINT, then shuts down gracefully. Returns the exit status (0).
    package func run() async -> Int32 {
        let signals = SignalWatcher(
            onTerminate: { [worker, notifier, logger] sig in
                logger.notice("received \(sig == SIGTERM ? "SIGTERM" : "SIGINT"); shutting down")
                notifier.notify("STOPPING=1\nSTATUS=Shutting down: finishing running jobs")
                worker.shutdown()
            },
            onReload: { [self] in
                Task { await self.reload() }
            })
        let watchdog = Task { [notifier, environment] in
            guard let interval = SystemdNotifier.watchdogInterval(environment: environment) else { return }
            while !Task.isCancelled {
                notifier.notify("WATCHDOG=1")
                try? await Task.sleep(for: interval)
            }
        }
        let statusTask = Task { [worker, notifier] in
            await worker.waitUntilReady()
            while !Task.isCancelled && !worker.isShuttingDown {
                let s = worker.status()
                let active = s.queues.map(\.active).reduce(0, +)
                notifier.notify(
                    "STATUS=\(active) active job(s); queues \(s.queues.map { "\($0.name) \($0.active)/\($0.concurrency)" }.joined(separator: ", "))\(s.paused.isEmpty ? "" : "; paused: " + s.paused.sorted().joined(separator: ","))"
                )
                try? await Task.sleep(for: .seconds(5))
            }
        }
        var metricsServer: MetricsServer?
        let cfg = worker.configuration
        if cfg.metrics.enabled {
            let server = MetricsServer(host: cfg.metrics.host, port: cfg.metrics.port, worker: worker, logger: logger)
            do {
                try server.start()
                metricsServer = server
            } catch {
                logger.error("metrics endpoint not started", metadata: ["error": "\(error)"])
            }
        }
        defer { metricsServer?.stop() }
        let controlServer = startControlServer()
        defer { controlServer?.stop() }
        await worker.run(onReady: { [notifier] in
            notifier.notify("READY=1\nSTATUS=Consuming queues")
        })
        watchdog.cancel()
        statusTask.cancel()
        withExtendedLifetime(signals) {}
        return 0
    }

    /// SIGHUP (and the control socket's `reload`): re-reads jobs.yml; a bad file is refused and the
    /// running configuration kept. Returns nil when applied, else why it was refused.
    @discardableResult
    func reload() async -> String? {
        notifier.notify("RELOADING=1\nMONOTONIC_USEC=\(Self.monotonicMicroseconds())")
        defer { notifier.notify("READY=1") }
        guard let configPath else {
            logger.warning("SIGHUP: no configuration file to re-read")
            return "the daemon was started without a configuration file (--config or MEDIANEST_CONFIG), so there is nothing to re-read"
        }
        do {
            let fresh = try ConfigLoader.load(path: configPath, environment: environment)
            await worker.reload(fresh)
            return nil
        } catch {
            logger.error("SIGHUP: configuration refused; keeping the running one", metadata: ["error": "\(error)"])
            return "\(error)"
        }
    }

    static func monotonicMicroseconds() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return UInt64(ts.tv_sec) * 1_000_000 + UInt64(ts.tv_nsec) / 1000
    }
}
