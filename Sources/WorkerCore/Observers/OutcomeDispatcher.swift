import Foundation
import JSON
import Logging
import RedisClient
import ServiceLifecycle
import Synchronization

/// Calls the observers (notifications, error logs, webhooks, mail, download rows) for the outcomes
/// in `P:outcomes`. The scripts that end attempts write an outcome there when some observer wants
/// it, so an outcome is never only in a daemon's memory: every host runs a dispatcher, they share
/// the stream through the group `observers`, an entry is acknowledged (and trimmed) once its observers have returned,
/// and the entries of a host that died are claimed by another after the lease. Up to
/// `maxInFlight` outcomes are observed at once; a live dispatcher renews the ones it still works on.
final class OutcomeDispatcher: Service, CustomStringConvertible {
    var description: String { "outcome dispatcher" }

    static let maxInFlight = 32
    static let blockMilliseconds = 200

    let services: WorkerServices
    let consumer: String
    let redisConfiguration: RedisConfiguration
    let lease: @Sendable () -> Double
    private let inFlight = Mutex<Set<String>>([])

    init(services: WorkerServices, consumer: String, redisConfiguration: RedisConfiguration, lease: @escaping @Sendable () -> Double) {
        self.services = services
        self.consumer = consumer
        self.redisConfiguration = redisConfiguration
        self.lease = lease
        self.stream = OutboxStream(
            key: services.queue.keys.outcomes, group: RedisKeys.observersGroup, consumer: consumer, redis: services.redis)
    }

    let stream: OutboxStream

    /// Outcomes waiting for their observers, and the age of the oldest.
    func backlog() async throws -> (count: Int, oldestSeconds: Double) {
        try await stream.backlog(nowMilliseconds: Timestamp.nowMilliseconds())
    }

    /// Dispatches until cancelled or a graceful shutdown reaches it; outcomes being observed then stay
    /// pending and are observed again later (by this host after a restart, or another).
    func run() async {
        await cancelWhenGracefulShutdown { [self] in await dispatch() }
    }

    private func dispatch() async {
        let connection = blockingConnection(redisConfiguration, name: "\(consumer)-outcomes", blockMilliseconds: Self.blockMilliseconds)
        defer { connection.close() }
        await withTaskCancellationHandler {
            await withDiscardingTaskGroup { group in
                await loop(connection, group: &group)
                group.cancelAll()
            }
        } onCancel: {
            connection.close()
        }
    }

    private func loop(_ connection: RedisConnection, group: inout DiscardingTaskGroup) async {
        let log = services.logger
        var failures = 0
        var groupReady = false
        var lastClaim = ContinuousClock.now
        var lastRenew = ContinuousClock.now
        while !Task.isCancelled {
            do {
                if !groupReady { try await stream.ensureGroup(); groupReady = true }
                let leaseMs = Int(lease() * 1000)
                if ContinuousClock.now - lastRenew >= .milliseconds(Int64(leaseMs / 3)) {
                    lastRenew = .now
                    try await stream.renew(Array(inFlight.withLock { $0 }))
                }
                let free = Self.maxInFlight - inFlight.withLock { $0.count }
                if free <= 0 {
                    try? await Task.sleep(for: .milliseconds(20))
                    continue
                }
                var entries: [StreamEntry] = []
                if ContinuousClock.now - lastClaim >= .milliseconds(Int64(leaseMs / 2)) {
                    lastClaim = .now
                    entries = try await stream.claim(idleMilliseconds: leaseMs, count: free)
                        .filter { e in !inFlight.withLock { $0.contains(e.id) } }
                    if !entries.isEmpty {
                        log.notice("took over job outcomes a stopped daemon had not observed", metadata: ["count": "\(entries.count)"])
                    }
                }
                if entries.isEmpty {
                    entries = try await stream.read(count: free, blockMilliseconds: Self.blockMilliseconds, on: connection)
                }
                failures = 0
                for entry in entries {
                    inFlight.withLock { _ = $0.insert(entry.id) }
                    group.addTask { [self] in
                        await observe(entry)
                        inFlight.withLock { _ = $0.remove(entry.id) }
                    }
                }
            } catch RedisError.server(let message) where message.hasPrefix("NOGROUP") {
                groupReady = false
            } catch {
                if Task.isCancelled { break }
                failures += 1
                if failures == 1 { log.error("cannot read job outcomes; retrying", metadata: ["error": "\(error)"]) }
                try? await Task.sleep(for: .milliseconds(min(100 * (1 << min(failures, 5)), 2000)))
            }
        }
    }

    private func observe(_ entry: StreamEntry) async {
        if let event = Self.event(from: entry, vocabulary: services.queue.vocabulary) {
            let configuration = services.configuration
            let wanting = services.observers.filter { $0.wants(event, configuration: configuration) }
            await withDiscardingTaskGroup { group in
                for observer in wanting {
                    group.addTask { [services] in await observer.jobEnded(event, services: services) }
                }
            }
        } else {
            services.logger.warning("an entry of the outcomes stream is not an outcome; dropped", metadata: ["entry": "\(entry.id)"])
        }
        if Task.isCancelled { return }  // shutting down: observed again after the lease, by this host or another
        var delay = 50
        for _ in 0..<10 {
            do { try await stream.done([entry.id]); return } catch {
                try? await Task.sleep(for: .milliseconds(delay))
                delay = min(delay * 2, 1000)
            }
        }
    }

    /// The observers' view of an outcome entry (fields written by the scripts' `observe`, and by `reject`).
    static func event(from entry: StreamEntry, vocabulary: (String) -> EventVocabulary) -> JobEvent? {
        let f = entry.fieldMap
        func text(_ name: String) -> String? { f[name].map { String(decoding: $0, as: UTF8.self) } }
        guard let id = text("id"), let outcome = text("o").flatMap(JobOutcome.init(rawValue:)) else { return nil }
        let type = text("t") ?? ""
        let queue = text("q") ?? ""
        let user = text("u").flatMap { $0.isEmpty ? nil : $0 }
        let payload = text("env").flatMap { JSONValue.parse($0)?["payload"] } ?? .object([])
        let events = vocabulary(type)
        let job = JobDescriptor(
            id: id, type: type, queue: queue, userId: user, events: events,
            correlation: events.correlationField.flatMap { payload[$0]?.stringValue })
        let failed = outcome == .failed || outcome == .retrying
        return JobEvent(
            job: job, outcome: outcome, attempt: text("a").flatMap { Int($0) } ?? 0,
            maxAttempts: text("m").flatMap { Int($0) } ?? 0,
            error: failed ? text("err") : nil, detail: text("det"),
            result: outcome == .completed ? text("res").flatMap { JSONValue.parse($0) } : nil,
            payload: payload, at: text("at") ?? Timestamp.now(), deliveryKey: entry.id)
    }
}
