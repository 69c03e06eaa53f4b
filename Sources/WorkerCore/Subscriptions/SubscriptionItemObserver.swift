import Foundation
import JSON
import WorkerConfig

/// Fills `subscription_items` as a subscription's downloads end: `downloaded` with the file, its
/// sidecars, size and publication date; `failed` with the error (a cancelled download too). The
/// outcome comes through `P:outcomes`, at least once; the update is the same however often it runs.
struct SubscriptionItemObserver: JobObserver {
    func wants(_ event: JobEvent, configuration: WorkerConfiguration) -> Bool {
        event.job.type == YouTubeDownloadHandler.type && event.outcome != .retrying
    }

    func jobEnded(_ event: JobEvent, services: WorkerServices) async {
        guard event.job.type == YouTubeDownloadHandler.type, event.payload["subscription"]?.isObject == true else { return }
        let store = SubscriptionStore(pool: services.postgres)
        do {
            try await Self.record(jobId: event.job.id, outcome: event.outcome, result: event.result, error: event.error, store: store)
        } catch {
            services.logger.warning(
                "subscription item not updated", metadata: ["jobId": "\(event.job.id)", "error": "\(error)"])
        }
    }

    /// Writes how an item's download ended (here, and from a check for a job whose outcome the
    /// observer could not record).
    static func record(jobId: String, outcome: JobOutcome, result: JSONValue?, error: String?, store: SubscriptionStore) async throws {
        switch outcome {
        case .completed:
            let r = result ?? .object([])
            var sidecars: [String] = []
            for key in ["thumbnail", "nfo"] { if let p = r[key]?.stringValue { sidecars.append(p) } }
            if case .array(let subs)? = r["subtitles"] { sidecars += subs.compactMap(\.stringValue) }
            let published = r["publishedAt"]?.stringValue.flatMap(Timestamp.parse).map { Double($0) / 1000 }
            try await store.finished(
                jobId: jobId, state: .downloaded, path: r["path"]?.stringValue, sidecars: sidecars,
                size: r["size"]?.intValue.map(Int64.init), duplicate: r["duplicate"]?.boolValue ?? false,
                published: published, title: r["title"]?.stringValue, reason: nil)
        case .failed, .cancelled:
            try await store.finished(
                jobId: jobId, state: .failed, path: nil, sidecars: [], size: nil, duplicate: false, published: nil,
                title: nil, reason: outcome == .cancelled ? "cancelled" : error)
        case .retrying:
            return
        }
    }
}
