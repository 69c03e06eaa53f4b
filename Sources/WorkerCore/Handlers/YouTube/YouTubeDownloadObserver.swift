import Foundation
import JSON
import RedisClient
import WorkerConfig

/// Keeps `youtube_downloads` rows right when a download ends without a file, which only the
/// outcome knows (a cancelled attempt looks the same as a shutdown from inside the handler):
/// `failed` with the error, `queued` again before a retry, `cancelled`. Cancelling a playlist job
/// cancels its entries' jobs too.
struct YouTubeDownloadObserver: JobObserver {
    func wants(_ event: JobEvent, configuration: WorkerConfiguration) -> Bool {
        event.job.type == YouTubeDownloadHandler.type && event.outcome != .completed
    }

    func jobEnded(_ event: JobEvent, services: WorkerServices) async {
        guard event.job.type == YouTubeDownloadHandler.type else { return }
        let downloadId = Self.downloadId(Self.refusedPayload(event) ?? event.payload, jobId: event.job.id)
        let records = DownloadRecords(pool: services.postgres, logger: services.logger)
        switch event.outcome {
        case .completed:
            return
        case .failed:
            await records.ended(downloadId, status: "failed", error: event.error)
        case .retrying:
            await records.ended(downloadId, status: "queued", error: event.error)
        case .cancelled:
            await records.ended(downloadId, status: "cancelled", error: nil)
            await cancelChildren(of: event.job.id, services: services)
        }
    }

    /// The row id of a job: the payload's `downloadId`, else the one derived from the job id.
    static func downloadId(_ payload: JSONValue, jobId: String) -> String {
        if let text = payload["downloadId"]?.stringValue, let uuid = UUID(uuidString: text) { return uuid.uuidString.lowercased() }
        return DerivedID.uuid("job:" + jobId)
    }

    /// The payload of an envelope refused at intake (attempt 0: say a field of the wrong type),
    /// read from the entry the event carries as its detail, so that the row the API made under
    /// the payload's `downloadId` is failed too. Nil for any other event.
    static func refusedPayload(_ event: JobEvent) -> JSONValue? {
        guard event.outcome == .failed, event.attempt == 0, event.payload["downloadId"] == nil,
            let detail = event.detail, let payload = JSONValue.parse(detail)?["payload"], payload.isObject
        else { return nil }
        return payload
    }

    /// `cancel` commands for a playlist job's entries, through the control stream every daemon reads.
    func cancelChildren(of jobId: String, services: WorkerServices) async {
        let keys = services.queue.keys
        do {
            guard
                let list = try await services.redis.send(
                    RedisCommand(["GET", PlaylistDownload.childrenKey(prefix: keys.prefix, jobId: jobId)])
                ).string,
                case .array(let items)? = JSONValue.parse(list)
            else { return }
            let ids = items.compactMap(\.stringValue)
            guard !ids.isEmpty else { return }
            _ = try await services.redis.pipeline(ids.map { RedisCommand(["XADD", keys.control, "*", "cmd", "cancel", "jobId", $0]) })
        } catch {
            services.logger.warning("playlist entries not cancelled", metadata: ["jobId": "\(jobId)", "error": "\(error)"])
        }
    }
}
