import Foundation
import JSON
import Logging
import WorkerConfig

/// Retention of a subscription's downloads (`keep_last`, `max_age`; never a protected item), after
/// every check and in the `cleanup` job.
///
/// Only files the item's own download put in the library are removed: its video (when its size is
/// still the one recorded at download, so a file replaced since is left alone) and the sidecars it
/// wrote (thumbnail, `.nfo`, subtitles), each only inside `paths.library`. An item whose download
/// found the video already in the library (a duplicate) owns no file: it is marked removed and the
/// file stays. Each removal is marked `removed`, written to the audit trail, and the folders are
/// rescanned in Plex (one `plex.scan` job per folder) when Plex is configured.
struct SubscriptionRetention: Sendable {
    let services: WorkerServices
    let logger: Logger

    struct Outcome: Sendable {
        /// Keys of the items removed.
        var removed: [String] = []
        /// Why retention could not finish, if it could not.
        var problem: String?
    }

    func apply(_ subscription: Subscription, origin: String) async -> Outcome {
        var outcome = Outcome()
        guard subscription.keepLast != nil || subscription.maxAge != nil else { return outcome }
        let store = SubscriptionStore(pool: services.postgres)
        let items: [SubscriptionItem]
        do {
            items = try await store.items(of: subscription.id, states: [.downloaded])
        } catch {
            outcome.problem = "retention not applied: PostgreSQL did not answer"
            return outcome
        }
        let doomed = SubscriptionPlan.retention(
            items, keepLast: subscription.keepLast, maxAge: subscription.maxAge, now: Date().timeIntervalSince1970)
        guard !doomed.isEmpty else { return outcome }
        let library = services.configuration.paths.library
        var folders: [String] = []
        var audit: [AuditEntry] = []
        for (item, reason) in doomed {
            let files = removeFiles(of: item, library: library)
            do {
                guard try await store.removed(subscriptionId: subscription.id, videoKey: item.videoKey, reason: reason + files.note)
                else { continue }
            } catch {
                outcome.problem = "retention stopped: PostgreSQL did not answer"
                break
            }
            outcome.removed.append(item.videoKey)
            if let path = item.path, !files.deleted.isEmpty {
                let folder = (path as NSString).deletingLastPathComponent
                if !folders.contains(folder) { folders.append(folder) }
            }
            audit.append(
                AuditEntry(
                    actor: "subscription \(subscription.name)", source: "retention", action: "subscription.remove",
                    target: String((item.path ?? item.videoKey).prefix(200)), ok: true,
                    detail: "\(item.videoKey): \(reason)\(files.note); \(files.deleted.count) file(s) deleted"))
            logger.notice(
                "subscription retention removed a video",
                metadata: [
                    "subscription": "\(subscription.name)", "videoKey": "\(item.videoKey)", "reason": "\(reason)",
                    "files": "\(files.deleted.count)",
                ])
        }
        let trail = AuditTrail(redis: services.redis, keys: services.queue.keys, consumer: services.queue.consumer, logger: logger)
        do { try await trail.add(audit) } catch {
            logger.warning("subscription removals not written to the audit trail", metadata: ["error": "\(error)"])
        }
        await rescan(folders, origin: origin)
        return outcome
    }

    /// Deletes what the item's download wrote; returns the paths deleted and a note on what was kept.
    func removeFiles(of item: SubscriptionItem, library: String) -> (deleted: [String], note: String) {
        guard !item.duplicate else { return ([], " (the file belongs to an earlier download and is kept)") }
        guard let path = item.path else { return ([], "") }
        let root = LibraryPath.realPath(library) ?? library
        var deleted: [String] = []
        var note = ""
        func inside(_ p: String) -> String? {
            guard let real = LibraryPath.realPath(p), LibraryPath.isInside(real, root) else { return nil }
            return real
        }
        if let video = inside(path) {
            let size = (try? FileManager.default.attributesOfItem(atPath: video)[.size] as? NSNumber)?.int64Value
            if let recorded = item.size, let size, size != recorded {
                note = " (the video changed since its download and is kept)"
            } else if unlink(video) == 0 {
                deleted.append(video)
            }
        }
        if note.isEmpty {
            for sidecar in item.sidecars {
                if let real = inside(sidecar), unlink(real) == 0 { deleted.append(real) }
            }
        }
        return (deleted, note)
    }

    /// One `plex.scan` per folder, when Plex is configured.
    func rescan(_ folders: [String], origin: String) async {
        guard services.configuration.plex != nil, !folders.isEmpty else { return }
        let envelopes = folders.map { folder in
            JobEnvelope(
                id: "plex.scan:" + DerivedID.uuid("retention:\(origin):\(folder)"), type: PlexScanHandler.type,
                payloadJSON: JSONValue.object([("path", .string(folder))]).encoded)
        }
        do { try await services.enqueue(envelopes, queue: SubscriptionSettings.queue(in: services.configuration)) } catch {
            logger.warning("Plex rescans after subscription removals not enqueued", metadata: ["error": "\(error)"])
        }
    }
}
