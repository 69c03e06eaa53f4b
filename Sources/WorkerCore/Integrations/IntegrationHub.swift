import Foundation
import Logging
import RedisClient
import ServiceClients
import Synchronization
import WorkerConfig

/// What the outbound integrations share within the process: one ``ServiceCaller`` (so one set of
/// circuit breakers per service, whichever job or observer calls), and the clients built from the
/// configuration in force.
///
/// Breaker changes are logged and written to the `circuit` field of `P:health:<service>`; the
/// `medianest_circuit_open{service}` gauge reads ``circuitOpen()``.
package final class IntegrationHub: Sendable {
    struct WeakServices: @unchecked Sendable {
        // Invariant: only read and written under the hub's `attached` mutex.
        weak var services: WorkerServices?
    }

    /// Every outbound HTTP request goes through this caller.
    package let caller: ServiceCaller
    /// Breakers are reported through the services of the worker that owns the hub (weakly: the services own the hub).
    private let attached = Mutex<WeakServices>(WeakServices())
    /// The last check of yt-dlp (start-up or `service.health`).
    private let ytDlpCheck = Mutex<YtDlpSummary?>(nil)
    /// Circuits kept in Redis for the whole cluster (`youtube`), as last read: state and whether it holds back.
    private let clusterCircuits = Mutex<[String: (state: String, holdingBack: Bool)]>([:])

    /// Per-request policy of Plex calls: 10 s, two more tries after 0.5 s and 1 s on 5xx and connection errors.
    package static let plexPolicy = CallPolicy(timeout: 10, retries: 2, backoff: 0.5, maxBackoff: 4)
    /// Per-request policy of Overseerr calls.
    package static let overseerrPolicy = CallPolicy(timeout: 15, retries: 2, backoff: 0.5, maxBackoff: 4)
    /// Breakers open after 5 failures without a success within a minute; open 5 s, doubling per failed trial up to 5 min.
    package static let breakerPolicy = BreakerPolicy(failureThreshold: 5, window: 60, openDuration: 5, maxOpenDuration: 300)

    /// A hub over its own caller; each worker's `WorkerServices` owns one.
    package init(caller: ServiceCaller = ServiceCaller()) {
        self.caller = caller
        caller.breakers.observeChanges { [weak self] service, state in
            self?.breakerChanged(service, state)
        }
    }

    /// Makes `services` the ones breaker changes are reported through.
    func attach(_ services: WorkerServices) {
        attached.withLock { current in
            if current.services !== services { current.services = services }
        }
    }

    /// The Plex client for the configuration in force; nil when Plex is not configured.
    func plex(_ services: WorkerServices) -> (PlexClient, PlexSettings)? {
        attach(services)
        guard let settings = services.configuration.plex, !settings.token.isEmpty else { return nil }
        let metrics = services.metrics
        return (
            PlexClient(
                url: settings.url, token: settings.token, caller: caller, policy: Self.plexPolicy,
                breakerPolicy: Self.breakerPolicy,
                observe: { metrics.externalRequest(service: PlexClient.service, outcome: $0) }), settings
        )
    }

    /// The Overseerr client for the configuration in force; nil when Overseerr is not configured.
    func overseerr(_ services: WorkerServices) -> OverseerrClient? {
        attach(services)
        guard let settings = services.configuration.overseerr, !settings.apiKey.isEmpty else { return nil }
        let metrics = services.metrics
        return OverseerrClient(
            url: settings.url, apiKey: settings.apiKey, caller: caller, policy: Self.overseerrPolicy,
            breakerPolicy: Self.breakerPolicy,
            observe: { metrics.externalRequest(service: OverseerrClient.service, outcome: $0) })
    }

    /// The webhook client.
    func webhooks(_ services: WorkerServices) -> WebhookClient {
        attach(services)
        return WebhookClient(caller: caller, breakerPolicy: Self.breakerPolicy)
    }

    /// Whether each service's breaker holds calls back now, for the `medianest_circuit_open` gauge.
    /// Plex and Overseerr are listed (as closed) as soon as they are configured, before any call.
    package func circuitOpen(configuration: WorkerConfiguration? = nil) -> [String: Bool] {
        var out = caller.breakers.holdingBack()
        for (name, seen) in clusterCircuits.withLock({ $0 }) { out[name] = seen.holdingBack }
        if configuration?.plex != nil, out[PlexClient.service] == nil { out[PlexClient.service] = false }
        if configuration?.overseerr != nil, out[OverseerrClient.service] == nil { out[OverseerrClient.service] = false }
        return out
    }

    /// Each service's breaker state (`closed`, `open`, `half-open`), for status answers; configured
    /// services are listed (as closed) before their first call, as in the gauge.
    package func circuitStates(configuration: WorkerConfiguration? = nil) -> [String: String] {
        var out = caller.breakers.snapshot().mapValues(\.rawValue)
        for (name, seen) in clusterCircuits.withLock({ $0 }) { out[name] = seen.state }
        if configuration?.plex != nil, out[PlexClient.service] == nil { out[PlexClient.service] = "closed" }
        if configuration?.overseerr != nil, out[OverseerrClient.service] == nil { out[OverseerrClient.service] = "closed" }
        return out
    }

    /// What `ctl status` and `medianest_ytdlp_info` show of yt-dlp.
    package struct YtDlpSummary: Sendable, Equatable {
        package var version: String
        package var channel: String
        package var ageDays: Int?
        package var jsRuntime: String
        package var plugins: [String]
        package var status: String
        package var warning: String?
    }

    func noteYtDlp(_ check: ServiceHealthHandler.Check) {
        func detail(_ name: String) -> String? { check.details.first { $0.0 == name }?.1.stringValue }
        let runtime = detail("jsRuntime").flatMap { $0.split(separator: ":").first.map(String.init) } ?? "none"
        let summary = YtDlpSummary(
            version: detail("version") ?? "none", channel: detail("channel") ?? "unknown",
            ageDays: check.details.first { $0.0 == "ageDays" }.flatMap { Int($0.1.encoded) }, jsRuntime: runtime,
            plugins: (detail("plugins") ?? "").split(separator: ",").map(String.init), status: check.status, warning: check.message)
        ytDlpCheck.withLock { $0 = summary }
    }

    /// The last check of yt-dlp, nil before the first.
    package var ytDlp: YtDlpSummary? { ytDlpCheck.withLock { $0 } }

    /// Records what a cluster-wide circuit looks like now (from Redis, or after this host changed it).
    package func noteClusterCircuit(_ service: String, state: String, holdingBack: Bool) {
        clusterCircuits.withLock { $0[service] = (state, holdingBack) }
    }

    private func breakerChanged(_ service: String, _ state: BreakerState) {
        guard let services = attached.withLock({ $0.services }) else { return }
        let level: Logger.Level = state == .open ? .warning : .notice
        services.logger.log(
            level: level, "circuit breaker \(state.rawValue)",
            metadata: [
                "service": "\(service)",
                "retryIn": "\(state == .open ? String(format: "%.0f s", caller.breakers.breaker(service).retryAfter) : "-")",
            ])
        let key = "\(services.queue.keys.prefix):health:\(service)"
        Task {
            _ = try? await services.redis.send(RedisCommand(["HSET", key, "circuit", state.rawValue, "circuitChangedAt", Timestamp.now()]))
        }
    }
}
