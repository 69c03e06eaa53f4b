import Foundation
import JSON
import Logging
import PostgresClient
import RedisClient
import ServiceClients
import WorkerConfig

/// How publishing a file to Plex ended.
package enum PlexOutcome: Sendable, Equatable {
    /// Plex lists the file: its rating key, and the collection's when one was asked for.
    case published(ratingKey: String, collectionKey: String?)
    /// Plex could not be brought up to date now; a `plex.scan` job (`jobID`) tries again later.
    /// `reason` is the sentence for logs.
    case pending(reason: String, jobID: String?)
    /// No Plex server is configured.
    case disabled

    /// The value of the job result's `plex` field: `published`, `pending` or `off`.
    package var state: String {
        switch self {
        case .published: return "published"
        case .pending: return "pending"
        case .disabled: return "off"
        }
    }

    /// The rating key when published.
    package var ratingKey: String? {
        if case .published(let key, _) = self { return key }
        return nil
    }

    /// The collection's rating key when published into one.
    package var collectionKey: String? {
        if case .published(_, let key) = self { return key }
        return nil
    }

    /// Fields for a job result: `plex` (``state``), and `plexRatingKey`, `plexCollectionId` when known.
    package var resultFields: [(String, JSONValue)] {
        var fields: [(String, JSONValue)] = [("plex", .string(state))]
        if let ratingKey { fields.append(("plexRatingKey", .string(ratingKey))) }
        if let collectionKey { fields.append(("plexCollectionId", .string(collectionKey))) }
        return fields
    }
}

/// Publishes downloaded files to Plex: maps the path to the server's (`plex.path_map`), scans the
/// file's folder in the library section (`plex.section`, else the section whose folder holds the
/// path), waits for the item (bounded polling), puts it in a collection, and sets title, summary,
/// date and poster where Plex has none. Every step is safe to repeat, so a later try redoes them all.
package enum PlexPublisher {
    /// How long ``publish(file:title:summary:date:poster:collection:jobID:services:)`` waits for Plex to list the file.
    package static let inlineWait: Duration = .seconds(30)
    /// Delay before the `plex.scan` job that retries a pending publication first runs.
    package static let retryDelaySeconds: Int64 = 30
    /// Attempts of that job.
    package static let retryAttempts = 10

    /// Publishes `file` (an absolute path in the library). Never throws: on any failure the file is
    /// left as it is, a `plex.scan` job (id `<jobID>:plex`) is enqueued to try again later, and
    /// `.pending` is returned; with no Plex configured, `.disabled`.
    ///
    /// - Parameters:
    ///   - title, summary: set where Plex has none (a title counts as none when it is the file name).
    ///   - date: `YYYY-MM-DD` or `YYYYMMDD`, set as `originallyAvailableAt` where Plex has none.
    ///   - poster: a local image file or an http(s) URL, set where Plex has no poster.
    ///   - collection: the collection to add the item to (made when missing); nil or empty for none.
    ///   - jobID: the download job's id, for logs and the retry job's id.
    package static func publish(
        file: String, title: String?, summary: String?, date: String?, poster: String?,
        collection: String?, jobID: String, services: WorkerServices
    ) async -> PlexOutcome {
        guard let (client, settings) = services.integrations.plex(services) else { return .disabled }
        let request = PublishRequest(file: file, title: title, summary: summary, date: date, poster: poster, collection: collection)
        var log = services.logger
        log[metadataKey: "jobId"] = "\(jobID)"
        do {
            let published = try await run(request, client: client, settings: settings, wait: inlineWait, logger: log)
            return .published(ratingKey: published.ratingKey, collectionKey: published.collectionKey)
        } catch {
            let reason = (error as? ServiceError)?.description ?? (error is CancellationError ? "the job was stopped" : "\(error)")
            let retryID = "\(jobID):plex"
            do {
                try await enqueueRetry(request, id: retryID, downloadJobID: jobID, services: services)
                log.warning(
                    "Plex not updated; a plex.scan job will try again", metadata: ["reason": "\(reason)", "retryJob": "\(retryID)"])
                return .pending(reason: reason, jobID: retryID)
            } catch {
                log.error(
                    "Plex not updated, and the plex.scan job to try again could not be enqueued",
                    metadata: ["reason": "\(reason)", "error": "\(error)"])
                return .pending(reason: reason, jobID: nil)
            }
        }
    }

    /// What to publish.
    struct PublishRequest: Sendable {
        var file: String
        var title: String?
        var summary: String?
        var date: String?
        var poster: String?
        var collection: String?

        /// The payload of a `plex.scan` job that publishes the same file.
        func payload(downloadJobID: String?, downloadID: String?) -> JSONValue {
            .compact([
                ("path", .string((file as NSString).deletingLastPathComponent)), ("file", .string(file)),
                ("title", .text(title)), ("summary", .text(summary)), ("date", .text(date)), ("poster", .text(poster)),
                ("collection", .text(collection)), ("downloadJobId", .text(downloadJobID)), ("downloadId", .text(downloadID)),
            ])
        }
    }

    struct Published: Sendable {
        var ratingKey: String
        var collectionKey: String?
        var section: PlexSection
        var remoteFile: String
    }

    static func enqueueRetry(_ request: PublishRequest, id: String, downloadJobID: String?, services: WorkerServices) async throws {
        let configuration = services.configuration
        let queue = configuration.queue(named: "default")?.name ?? configuration.queueNames.first ?? "default"
        // The download's id (payload.downloadId), so that the retry can update its youtube_downloads row.
        var downloadID: String?
        if let downloadJobID, let snapshot = try? await services.queue.snapshots(jobIDs: [downloadJobID], fields: [.envelope]).first {
            downloadID = snapshot.envelope?["payload"]?["downloadId"]?.stringValue
        }
        let payload = request.payload(downloadJobID: downloadJobID, downloadID: downloadID)
        let envelope = JobEnvelope(
            id: id, type: PlexScanHandler.type, payloadJSON: payload.encoded,
            maxAttempts: retryAttempts, runAt: Timestamp.nowMilliseconds() + retryDelaySeconds * 1000)
        try await services.enqueue(envelope, queue: queue)
    }

    /// The publishing steps. Throws ``ServiceError`` (``ServiceError/missing(service:what:)`` when
    /// Plex has not listed the file within `wait`) or `CancellationError`.
    static func run(
        _ request: PublishRequest, client: PlexClient, settings: PlexSettings, wait: Duration,
        logger: Logger, onStage: (@Sendable (String) async -> Void)? = nil
    ) async throws -> Published {
        let remoteFile = settings.remotePath(for: request.file)
        let remoteFolder = (remoteFile as NSString).deletingLastPathComponent
        let section = try await client.section(named: settings.section, containing: remoteFile)
        try await client.refresh(section: section.key, path: remoteFolder)
        logger.debug("plex scan requested", metadata: ["section": "\(section.title)", "path": "\(remoteFolder)"])

        await onStage?("waiting for plex to list the file")
        let item = try await waitForItem(client: client, section: section, remoteFile: remoteFile, wait: wait)
        var collectionKey: String?
        if let collection = request.collection?.trimmingCharacters(in: .whitespacesAndNewlines), !collection.isEmpty {
            await onStage?("plex collection")
            collectionKey = try await client.ensureInCollection(section: section, title: collection, ratingKey: item.ratingKey)
        }
        await onStage?("plex metadata")
        try await fillMetadata(request, item: item, client: client, section: section, logger: logger)
        logger.info(
            "published to plex",
            metadata: [
                "ratingKey": "\(item.ratingKey)", "section": "\(section.title)",
                "collection": "\(collectionKey ?? "-")",
            ])
        return Published(ratingKey: item.ratingKey, collectionKey: collectionKey, section: section, remoteFile: remoteFile)
    }

    /// Polls for the item: after 0.5 s, 1 s, then every 2 s until `wait` has passed; the last look
    /// goes through all of the section's items, the others through the recently added ones.
    static func waitForItem(client: PlexClient, section: PlexSection, remoteFile: String, wait: Duration) async throws -> PlexItem {
        let deadline = ContinuousClock.now + wait
        var delay = Duration.milliseconds(500)
        while true {
            try await Task.sleep(for: min(delay, max(deadline - ContinuousClock.now, .zero)))
            let last = ContinuousClock.now >= deadline
            if let item = try await client.findItem(section: section, file: remoteFile, thorough: last) {
                return item
            }
            if last {
                throw ServiceError.missing(
                    service: PlexClient.service,
                    what: "item for \(remoteFile) in section '\(section.title)' yet (its scan may still be running)")
            }
            delay = min(delay * 2, .seconds(2))
        }
    }

    static func fillMetadata(
        _ request: PublishRequest, item: PlexItem, client: PlexClient, section: PlexSection, logger: Logger
    ) async throws {
        let current = try await client.item(ratingKey: item.ratingKey) ?? item
        var fields: [(String, String)] = []
        if let title = request.title?.trimmingCharacters(in: .whitespacesAndNewlines), !title.isEmpty,
            titleIsMissing(current.title, file: request.file)
        {
            fields.append(("title", title))
        }
        if let summary = request.summary, !summary.isEmpty, (current.summary ?? "").isEmpty {
            fields.append(("summary", summary))
        }
        if let date = normalizedDate(request.date), (current.originallyAvailableAt ?? "").isEmpty {
            fields.append(("originallyAvailableAt", date))
        }
        try await client.edit(section: section, ratingKey: item.ratingKey, fields: fields)
        if let poster = request.poster, !poster.isEmpty, (current.thumb ?? "").isEmpty {
            if poster.hasPrefix("http://") || poster.hasPrefix("https://") {
                try await client.setPoster(ratingKey: item.ratingKey, imageURL: poster)
            } else if let image = readImage(poster) {
                try await client.uploadPoster(ratingKey: item.ratingKey, image: image)
            } else {
                logger.debug("poster not readable; left out", metadata: ["poster": "\(poster)"])
            }
        }
    }

    /// Plex names an item it knows nothing about after its file: such a title counts as missing.
    static func titleIsMissing(_ title: String?, file: String) -> Bool {
        guard let title, !title.isEmpty else { return true }
        let name = (file as NSString).lastPathComponent
        let stem = (name as NSString).deletingPathExtension
        return title == name || title == stem
    }

    /// `YYYY-MM-DD` from `YYYY-MM-DD`, `YYYYMMDD` or an RFC 3339 time; nil otherwise.
    static func normalizedDate(_ text: String?) -> String? {
        guard let text else { return nil }
        let digits = Array(text.utf8)
        func isDigit(_ b: UInt8) -> Bool { b >= 48 && b <= 57 }
        if digits.count == 8, digits.allSatisfy(isDigit) {
            return "\(text.prefix(4))-\(text.dropFirst(4).prefix(2))-\(text.dropFirst(6).prefix(2))"
        }
        if digits.count >= 10, digits[4] == UInt8(ascii: "-"), digits[7] == UInt8(ascii: "-"),
            [0, 1, 2, 3, 5, 6, 8, 9].allSatisfy({ isDigit(digits[$0]) })
        {
            return String(text.prefix(10))
        }
        return nil
    }

    /// A poster file's bytes, up to 20 MiB.
    static func readImage(_ path: String) -> [UInt8]? {
        guard let attributes = try? FileManager.default.attributesOfItem(atPath: path),
            let size = attributes[.size] as? NSNumber, size.intValue > 0, size.intValue <= 20 * 1024 * 1024,
            let data = FileManager.default.contents(atPath: path)
        else { return nil }
        return [UInt8](data)
    }
}
