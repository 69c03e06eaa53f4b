import Logging
import ServiceLifecycle

/// The pool's part of a graceful shutdown: once the fetchers have stopped, running jobs get
/// `shutdown_timeout` less a reserve to finish; those still running then are stopped and handed
/// back to their queue (the attempt not counted), within the reserve.
struct JobDrain: Service, CustomStringConvertible {
    let pool: WorkerPool
    let state: WorkerState
    let logger: Logger

    var description: String { "job drain" }

    /// The part of `shutdown_timeout` kept for handing jobs back and writing the last records.
    static func reserve(_ budget: Double) -> Double { min(2.0, budget * 0.2) }

    func run() async {
        do { try await gracefulShutdown() } catch { return }  // cancelled: nothing to wait for
        let budget = state.configuration.shutdownTimeout
        let reserve = Self.reserve(budget)
        let deadline = ContinuousClock.now + .milliseconds(Int64(budget * 1000))
        logger.info(
            "shutting down: no new jobs; waiting for running jobs",
            metadata: [
                "active": "\(pool.activeTotal)",
                "timeout": "\(Processor.describe(seconds: budget))",
            ])
        let jobsDeadline = deadline - .milliseconds(Int64(reserve * 1000))
        if !(await pool.waitUntilIdle(timeout: jobsDeadline - ContinuousClock.now)) {
            logger.warning(
                "shutdown timeout reached; handing unfinished jobs back to the queue", metadata: ["active": "\(pool.activeTotal)"])
            pool.stopAll(reason: .shutdown)
            _ = await pool.waitUntilIdle(
                timeout: max(deadline - ContinuousClock.now - .milliseconds(Int64(reserve * 250)), .milliseconds(100)))
        }
    }
}
