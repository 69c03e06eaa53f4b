import Foundation
import JSON
import RedisClient
import YtDlp

/// A playlist link: one child `youtube.download` job per entry, enqueued on the parent's queue
/// exactly as the API would enqueue it, then the parent follows them, reporting their mean
/// progress, and completes when they have all ended (failing only when none succeeded).
///
/// Child job ids are `<parent id>.<index>` and child download ids are derived from the parent's,
/// so a retried parent enqueues the same jobs again, which the queue runs only once. The children
/// are listed in `P:ytpl:<parent id>` so that cancelling the parent cancels them too
/// (`YouTubeDownloadObserver`).
///
/// The parent holds a slot of its queue while it waits: the queue needs more slots than the
/// playlists it runs at once (`queues.<queue>.concurrency` of at least 2 for one playlist).
struct PlaylistDownload: Sendable {
    let download: YouTubeDownload

    /// Most entries one playlist job expands to.
    static let maxEntries = 5000
    /// How often the parent looks at its children.
    static let pollInterval = Duration.seconds(1)

    /// `P:ytpl:<job id>`: the child job ids of a playlist job, as a JSON array.
    static func childrenKey(prefix: String, jobId: String) -> String { "\(prefix):ytpl:\(jobId)" }

    struct Child: Sendable {
        var jobId: String
        var downloadId: String
        var envelope: JobEnvelope
    }

    func run(_ playlist: PlaylistInfo) async throws -> JSONValue {
        let context = download.context
        let request = download.request
        let services = context.services
        let entries = playlist.entries
        guard !entries.isEmpty else {
            throw JobFailure.permanent("The playlist has no entries that can be downloaded (empty, private or not a playlist).")
        }
        guard entries.count <= Self.maxEntries else {
            throw JobFailure.permanent(
                "The playlist has \(entries.count) entries; at most \(Self.maxEntries) are downloaded in one job. Split it into smaller playlists."
            )
        }
        let title = playlist.title ?? "Playlist \(playlist.id)"
        await download.records.described(
            request.downloadId, extractor: playlist.extractor, videoId: nil, title: title,
            channel: playlist.channel ?? playlist.uploader, playlistTitle: title)
        let children = makeChildren(entries, title: title)

        // Remember the children (for a cancel), then enqueue them.
        let keys = services.queue.keys
        let listJSON = "[" + children.map { JSONText.quote($0.jobId) }.joined(separator: ",") + "]"
        let retention = max(Int(services.configuration.retention.state), 3600)
        do {
            _ = try await services.redis.send(
                RedisCommand(["SET", Self.childrenKey(prefix: keys.prefix, jobId: context.job.id), listJSON, "EX", String(retention)]))
            try await services.enqueue(children.map(\.envelope), queue: context.job.queue)
        } catch {
            throw JobFailure.retryable("Could not enqueue the playlist's entries: Redis did not answer.", detail: "\(error)")
        }
        context.logger.info("playlist expanded", metadata: ["entries": "\(children.count)"])
        if (services.configuration.queue(named: context.job.queue)?.concurrency ?? 0) < 2 {
            context.logger.warning(
                "this playlist job holds the only slot of its queue here while it waits for its entries; they run only on other daemons",
                metadata: ["queue": "\(context.job.queue)"])
        }
        await download.enterStage("downloading", percent: YouTubeDownload.Share.download.lowerBound)

        // Follow them.
        let childIDs = children.map(\.jobId)
        while true {
            let states: [(state: String?, progress: Double?)]
            do {
                states = try await services.queue.snapshots(jobIDs: childIDs, fields: [.state, .progress]).map { ($0[.state], $0.progress) }
            } catch {
                context.logger.warning("cannot read the playlist entries' state; trying again", metadata: ["error": "\(error)"])
                try await Task.sleep(for: Self.pollInterval)
                continue
            }
            let ended = states.filter { Self.isTerminal($0.state) }.count
            let sum = states.reduce(0.0) { $0 + (Self.isTerminal($1.state) ? 100 : min(max($1.progress ?? 0, 0), 100)) }
            let mean = sum / Double(max(states.count, 1))
            let range = YouTubeDownload.Share.download.lowerBound...YouTubeDownload.Share.moving
            await context.report(
                Progress(stage: "downloading", percent: range.lowerBound + (range.upperBound - range.lowerBound) * mean / 100))
            if ended == states.count { break }
            try await Task.sleep(for: Self.pollInterval)
        }
        return try await summarise(children, title: title)
    }

    /// The parent's result from its children's.
    func summarise(_ children: [Child], title: String) async throws -> JSONValue {
        let context = download.context
        let request = download.request
        let snapshots: [JobHash.Snapshot]
        do {
            snapshots = try await context.services.queue.snapshots(jobIDs: children.map(\.jobId), fields: [.state, .result, .error])
        } catch {
            throw JobFailure.retryable("Could not read the playlist entries' results: Redis did not answer.", detail: "\(error)")
        }
        var paths: [String] = []
        var size: Int64 = 0
        var duplicates = 0
        var failed = 0
        var cancelled = 0
        var firstError: String?
        var thumbnail: String?
        for snapshot in snapshots {
            switch snapshot.state {
            case .completed?:
                let result = snapshot.result
                if let path = result?["path"]?.stringValue { paths.append(path) }
                size += Int64(result?["size"]?.intValue ?? 0)
                if result?["duplicate"]?.boolValue == true { duplicates += 1 }
                if thumbnail == nil { thumbnail = result?["thumbnail"]?.stringValue }
            case .cancelled?:
                cancelled += 1
            default:
                failed += 1
                if firstError == nil { firstError = snapshot[.error] }
            }
        }
        let count = children.count
        guard !paths.isEmpty else {
            throw JobFailure.permanent(
                "None of the \(count) entries of the playlist could be downloaded"
                    + (firstError.map { "; the first error: \($0)" } ?? "."))
        }
        let problems = failed + cancelled
        let note = problems > 0 ? "\(problems) of \(count) entries were not downloaded (\(failed) failed, \(cancelled) cancelled)." : nil
        await download.records.completed(request.downloadId, paths: paths, size: nil, duplicate: false, error: note)
        await context.report(Progress(stage: "moving", percent: 100))
        let folder = Self.commonFolder(paths) ?? download.configuration.paths.library
        return .object([
            ("path", .string(folder)), ("size", .number(String(size))), ("thumbnail", thumbnail.map { .string($0) } ?? .null),
            ("paths", .array(paths.map { .string($0) })), ("playlistTitle", .string(title)),
            ("count", .number(String(count))), ("completed", .number(String(paths.count))),
            ("failed", .number(String(failed))), ("cancelled", .number(String(cancelled))),
            ("duplicates", .number(String(duplicates))), ("duplicate", .bool(false)),
            ("downloadId", .string(request.downloadId)), ("children", .array(children.map { .string($0.jobId) })),
        ])
    }

    /// One child envelope per entry.
    func makeChildren(_ entries: [PlaylistEntry], title: String) -> [Child] {
        let context = download.context
        let request = download.request
        let count = entries.count
        return entries.enumerated().map { offset, entry in
            let index = offset + 1
            let jobId = DerivedID.childJobID(parent: context.job.id, index: index)
            let downloadId = DerivedID.uuid("\(request.downloadId)/\(index)")
            var payload: [(String, JSONValue)] = [
                ("downloadId", .string(downloadId)), ("url", .string(entry.url)),
                ("quality", .string(request.quality.rawValue)), ("format", .string(request.container.rawValue)),
            ]
            if let subtitles = request.subtitlesJSON { payload.append(("subtitles", subtitles)) }
            if let collection = request.collection { payload.append(("collection", .string(collection))) }
            payload.append(
                (
                    "playlist",
                    .object([
                        ("jobId", .string(context.job.id)), ("downloadId", .string(request.downloadId)), ("title", .string(title)),
                        ("url", .string(request.source.url)), ("index", .number(String(index))), ("count", .number(String(count))),
                    ])
                ))
            if entry.type == "url_transparent" {
                var hints: [(String, JSONValue)] = []
                if let t = entry.title { hints.append(("title", .string(String(t.prefix(1000))))) }
                if let c = entry.channel ?? entry.uploader { hints.append(("channel", .string(String(c.prefix(500))))) }
                if let d = entry.description { hints.append(("description", .string(String(d.prefix(4000))))) }
                if let ts = entry.timestamp { hints.append(("timestamp", .number(String(Int64(ts))))) }
                if !hints.isEmpty { payload.append(("entry", .object(hints))) }
            }
            let envelope = JobEnvelope(
                id: jobId, type: YouTubeDownloadHandler.type, payloadJSON: JSONValue.object(payload).encoded,
                userId: context.envelope.userId, maxAttempts: context.envelope.maxAttempts,
                timeoutSeconds: context.envelope.timeoutSeconds)
            return Child(jobId: jobId, downloadId: downloadId, envelope: envelope)
        }
    }

    static func isTerminal(_ state: String?) -> Bool {
        state.flatMap(JobState.init(rawValue:))?.isTerminal == true
    }

    /// The deepest folder that holds every path.
    static func commonFolder(_ paths: [String]) -> String? {
        guard let first = paths.first else { return nil }
        var common = (first as NSString).deletingLastPathComponent.split(separator: "/", omittingEmptySubsequences: false)
        for path in paths.dropFirst() {
            let parts = (path as NSString).deletingLastPathComponent.split(separator: "/", omittingEmptySubsequences: false)
            var n = 0
            while n < common.count, n < parts.count, common[n] == parts[n] { n += 1 }
            common = Array(common.prefix(n))
        }
        let joined = common.joined(separator: "/")
        return joined.isEmpty ? "/" : joined
    }
}
