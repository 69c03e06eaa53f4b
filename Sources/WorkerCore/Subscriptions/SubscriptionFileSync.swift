import Foundation
import Logging
import WorkerConfig

/// Brings the `subscriptions` table in line with jobs.yml's `subscriptions` (at start and on every
/// reload): each one upserted by name, and those of the file no longer in it disabled (never
/// deleted, nor their files). Retried until PostgreSQL answers or the daemon stops.
struct SubscriptionFileSync: Sendable {
    let services: WorkerServices
    let state: WorkerState
    let logger: Logger

    func run(_ subscriptions: [SubscriptionSettings]) async {
        let store = SubscriptionStore(pool: services.postgres)
        var delay = 500
        var warned = false
        while !state.isShuttingDown && !Task.isCancelled {
            do {
                let outcome = try await store.syncFile(subscriptions)
                for (what, names) in [
                    ("added", outcome.created), ("updated", outcome.updated),
                    ("disabled (gone from jobs.yml; files kept)", outcome.disabled),
                ]
                where !names.isEmpty {
                    logger.notice("subscriptions of jobs.yml \(what)", metadata: ["subscriptions": "\(names.joined(separator: ","))"])
                }
                return
            } catch {
                if !warned {
                    logger.warning("subscriptions of jobs.yml not synced yet; retrying", metadata: ["error": "\(error)"])
                    warned = true
                }
                try? await Task.sleep(for: .milliseconds(delay))
                delay = min(delay * 2, 10_000)
            }
        }
    }
}
