import Foundation
import JSON
import Logging
import WorkerConfig
import YtDlp

extension HandlerRegistry {
    /// `youtube.subscription`.
    mutating func registerSubscriptionHandler() {
        register(SubscriptionCheckHandler.type, SubscriptionCheckHandler(), schema: SubscriptionCheckHandler.schema)
    }
}

/// `youtube.subscription {subscriptionId}` (contract section 12): checks one subscription.
///
/// Lists the source with yt-dlp without downloading (`--flat-playlist`), newest first; records
/// every entry it has not seen in `subscription_items` (the first check takes the newest
/// `backfill` and records the older ones `skipped`; live and upcoming entries are `skipped` until
/// they are over); enqueues a `youtube.download` for every `queued` item, with a job id derived
/// from the subscription and the video (so a check run again never doubles a download); then
/// applies retention. A source that cannot be listed sets `last_error` and fails this check only
/// (never retried: the next interval checks again). Publishes `subscription:checked`.
struct SubscriptionCheckHandler: JobHandler {
    static let type = "youtube.subscription"
    static let schema = PayloadSchema([
        .required("subscriptionId", .string(length: 1...128), note: "the subscriptions row (its id, or its name)")
    ])

    /// A check's job id: `subscription:<id>:<tag>` — the tick (the leader's), `first`, `manual:<ms>`
    /// or `control:<entry>`.
    static func jobID(_ subscription: Subscription, tag: String) -> String { "subscription:\(subscription.id):\(tag)" }

    /// Enqueues a check of `subscription` under `jobID(subscription, tag:)` on the subscriptions'
    /// queue; a job id the queue has seen runs once. Returns the job id.
    @discardableResult
    static func enqueue(_ subscription: Subscription, tag: String, services: WorkerServices) async throws -> String {
        let id = jobID(subscription, tag: tag)
        let envelope = JobEnvelope(
            id: id, type: type, payloadJSON: JSONValue.object([("subscriptionId", .string(subscription.id))]).encoded,
            userId: subscription.userId)
        try await services.enqueue(envelope, queue: SubscriptionSettings.queue(in: services.configuration))
        return id
    }

    func run(_ context: JobContext) async throws -> JSONValue {
        try Self.schema.check(context.payload)
        let services = context.services
        let configuration = services.configuration
        let store = SubscriptionStore(pool: services.postgres)
        let reference = context.payload["subscriptionId"]?.stringValue ?? ""
        let found: Subscription?
        do {
            found = try await store.find(reference)
        } catch {
            throw JobFailure.retryable("The subscription could not be read: PostgreSQL did not answer.", detail: "\(error)")
        }
        guard let subscription = found else {
            throw JobFailure.permanent("No subscription \(JSONText.quote(String(reference.prefix(80)))) exists (it may have been removed).")
        }
        guard subscription.enabled else {
            return .object([
                ("subscriptionId", .string(subscription.id)), ("name", .string(subscription.name)), ("checked", .bool(false)),
                ("note", .string("the subscription is disabled; nothing was checked")),
            ])
        }
        await context.report(Progress(stage: "listing", percent: 0))
        let playlist: PlaylistInfo
        do {
            playlist = try await list(subscription, configuration: configuration, context: context)
        } catch let failure as JobFailure where failure.deferral != nil {
            throw failure  // the youtube circuit is open: the check waits, as downloads do
        } catch {
            let message = (error as? JobFailure)?.message ?? "\(error)"
            try? await store.checked(id: subscription.id, error: message)
            context.logger.warning(
                "subscription source could not be listed; the next check is at the next interval",
                metadata: ["subscription": "\(subscription.name)", "error": "\(message)"])
            throw JobFailure.permanent("The subscription's source could not be listed: \(message)")
        }
        try Task.checkCancellation()

        await context.report(Progress(stage: "recording", percent: 40))
        let listed = SubscriptionPlan.listed(playlist)
        let queuedCount: Int
        let skipped: Int
        let inserted: Int
        do {
            for ended in try await store.endedButQueued(of: subscription.id) {
                try await SubscriptionItemObserver.record(
                    jobId: ended.jobId, outcome: ended.outcome, result: ended.result, error: ended.error, store: store)
            }
            let known = try await store.known(of: subscription.id)
            let plan = SubscriptionPlan.plan(listed, known: known, firstCheck: known.isEmpty, backfill: subscription.backfill)
            inserted = try await store.insert(plan.new, subscriptionId: subscription.id)
            try await store.requeue(plan.requeue, subscriptionId: subscription.id)
            skipped = plan.new.filter { $0.state == .skipped }.count
            queuedCount = plan.new.filter { $0.state == .queued }.count + plan.requeue.count
            await context.report(Progress(stage: "queueing", percent: 60))
            try await enqueueQueued(subscription, store: store, context: context)
        } catch let failure as JobFailure {
            throw failure
        } catch {
            throw JobFailure.retryable("The subscription's items could not be recorded: PostgreSQL did not answer.", detail: "\(error)")
        }

        await context.report(Progress(stage: "retention", percent: 80))
        let retention = await SubscriptionRetention(services: services, logger: context.logger).apply(subscription, origin: context.job.id)
        try? await store.checked(id: subscription.id, error: retention.problem)

        let event = JSONText.object([
            ("event", .string("subscription:checked")), ("jobId", .string(context.job.id)), ("queue", .string(context.job.queue)),
            ("type", .string(Self.type)), ("at", .string(Timestamp.now())), ("userId", subscription.userId.map { .string($0) }),
            ("subscriptionId", .string(subscription.id)), ("name", .string(subscription.name)),
            ("found", .int(Int64(listed.count))), ("queued", .int(Int64(queuedCount))), ("removed", .int(Int64(retention.removed.count))),
        ])
        do { try await services.queue.publish(event, userId: subscription.userId) } catch {
            context.logger.warning("subscription:checked not published", metadata: ["error": "\(error)"])
        }
        context.logger.info(
            "subscription checked",
            metadata: [
                "subscription": "\(subscription.name)", "found": "\(listed.count)", "new": "\(inserted)",
                "queued": "\(queuedCount)", "removed": "\(retention.removed.count)",
            ])
        return .object([
            ("subscriptionId", .string(subscription.id)), ("name", .string(subscription.name)), ("checked", .bool(true)),
            ("found", .number(String(listed.count))), ("new", .number(String(inserted))), ("skipped", .number(String(skipped))),
            ("queued", .number(String(queuedCount))), ("removed", .array(retention.removed.map { .string($0) })),
            ("retentionProblem", retention.problem.map { .string($0) } ?? .null),
        ])
    }

    /// The source's entries, from `yt-dlp --flat-playlist` through the `youtube` circuit.
    func list(_ subscription: Subscription, configuration: WorkerConfiguration, context: JobContext) async throws -> PlaylistInfo {
        let source: SourceURL
        do {
            source = try SourceURL.parse(subscription.url, allowedHosts: configuration.youtube.allowedHosts)
        } catch {
            throw JobFailure.permanent(error.description)
        }
        // A listing runs yt-dlp as a download does: the managed version in place now, and a switch waits for it.
        var configuration = configuration
        let gate = context.services.ytDlpGate
        configuration.youtube.ytDlp = try gate.enter(configuration)
        defer { gate.leave() }
        let ytdlp = YtDlp(configuration: YouTubeDownload.ytDlpConfiguration(configuration.youtube, context: context))
        let (_, extraction) = try await YouTubeDownload.throughYouTubeCircuit(context) {
            try await ytdlp.extract(url: source.url)
        }
        guard case .playlist(let playlist) = extraction else {
            throw JobFailure.permanent("The link is a single video, not a channel, playlist or feed.")
        }
        return playlist
    }

    /// Enqueues a `youtube.download` for every item still `queued` (new ones and any whose job
    /// never arrived); the queue runs each job id once.
    func enqueueQueued(_ subscription: Subscription, store: SubscriptionStore, context: JobContext) async throws {
        let services = context.services
        let envelopes = try await store.queued(of: subscription.id).map { item in
            var payload: [(String, JSONValue)] = [("downloadId", .string(item.downloadId)), ("url", .string(item.url))]
            if let quality = subscription.quality { payload.append(("quality", .string(quality))) }
            if let format = subscription.format { payload.append(("format", .string(format))) }
            if let collection = subscription.collection { payload.append(("collection", .string(collection))) }
            var ref: [(String, JSONValue)] = [
                ("id", .string(subscription.id)), ("name", .string(subscription.name)), ("videoKey", .string(item.key)),
            ]
            if let output = subscription.output { ref.append(("output", .string(output))) }
            payload.append(("subscription", .object(ref)))
            var hints: [(String, JSONValue)] = []
            if let title = item.title { hints.append(("title", .string(title))) }
            if let published = item.published { hints.append(("timestamp", .number(String(Int64(published))))) }
            if !hints.isEmpty { payload.append(("entry", .object(hints))) }
            return JobEnvelope(
                id: item.jobId, type: YouTubeDownloadHandler.type, payloadJSON: JSONValue.object(payload).encoded,
                userId: subscription.userId)
        }
        do {
            try await services.enqueue(envelopes, queue: SubscriptionSettings.queue(in: services.configuration))
        } catch {
            throw JobFailure.retryable("Could not enqueue the subscription's downloads: Redis did not answer.", detail: "\(error)")
        }
    }
}
