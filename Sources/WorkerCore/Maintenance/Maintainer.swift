import Logging
import ServiceLifecycle
import WorkerConfig

/// One of the cluster's chores, done by every daemon on an interval: each does work that is atomic
/// in Redis, so it does not matter which daemon does it, or how many do.
protocol Maintainer: Sendable {
    /// What it does, for the log (`promoting scheduled jobs`).
    var name: String { get }
    /// How long to wait between two runs under `configuration`.
    func interval(_ configuration: WorkerConfiguration) -> Duration
    /// One run.
    func runOnce(_ configuration: WorkerConfiguration) async throws
}

/// Runs a maintainer as a service, until a graceful shutdown reaches it: a failure is logged once,
/// retried at the next interval, and its recovery logged.
struct MaintenanceService<M: Maintainer>: Service, CustomStringConvertible {
    let maintainer: M
    let state: WorkerState
    let logger: Logger

    var description: String { maintainer.name }

    func run() async {
        await cancelWhenGracefulShutdown { [maintainer, state, logger] in
            var failing = false
            while !Task.isCancelled {
                let cfg = state.configuration
                do {
                    try await maintainer.runOnce(cfg)
                    if failing { logger.notice("maintenance: \(maintainer.name) works again"); failing = false }
                } catch {
                    if Task.isCancelled { break }
                    if !failing { logger.error("maintenance: \(maintainer.name) failed; retrying", metadata: ["error": "\(error)"]) }
                    failing = true
                }
                try? await Task.sleep(for: maintainer.interval(cfg))
            }
        }
    }
}
