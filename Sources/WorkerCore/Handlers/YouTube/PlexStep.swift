import JSON
import PostgresClient
import YtDlp

extension YouTubeDownload {
    /// The last step of a download: Plex scans the file's folder, lists the item, puts it in the
    /// payload's collection (else the playlist's) and fills in metadata it lacks. It never fails the
    /// download: when Plex is away the result says `plex: "pending"` and a `plex.scan` job tries
    /// again later. Without a `plex` section the result says `plex: "off"`.
    func publishToPlex(path: String, info: VideoInfo, thumbnail: String?) async -> PlexOutcome {
        guard context.services.integrations.plex(context.services) != nil else { return .disabled }
        await context.report(Progress(stage: "plex", percent: 100))
        let outcome = await PlexPublisher.publish(
            file: path, title: info.title, summary: info.description, date: info.date, poster: thumbnail,
            collection: request.collection ?? request.playlist?.title, jobID: context.job.id, services: context.services)
        if let ratingKey = outcome.ratingKey {
            await records.plexIDs(request.downloadId, ratingKey: ratingKey, collection: outcome.collectionKey)
        }
        context.logger.info("plex step", metadata: ["plex": "\(outcome.state)", "ratingKey": "\(outcome.ratingKey ?? "")"])
        return outcome
    }
}

extension JSONValue {
    /// This object with `pairs` appended (unchanged when it is not an object).
    func appending(_ pairs: [(String, JSONValue)]) -> JSONValue {
        guard case .object(let existing) = self else { return self }
        return .object(existing + pairs)
    }
}
