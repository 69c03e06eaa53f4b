import Foundation
import JSON
import PostgresClient
import ServiceClients
import WorkerConfig

/// `plex.scan`: brings Plex up to date with the library.
///
/// Payload (contract section 5): `path`, a library folder (absolute or relative to
/// `paths.library`), or nothing for the whole section. With `file` as well (what
/// ``PlexPublisher`` enqueues for a download Plex could not take at once) the file is published:
/// scanned, waited for, put in `collection`, given `title`, `summary`, `date` and `poster` where
/// Plex has none, and the download's `youtube_downloads` row gets the collection id.
///
/// Result: `{section, path}` for a scan; `{plex: "published", plexRatingKey, plexCollectionId,
/// section, file}` for a publication.
struct PlexScanHandler: JobHandler {
    static let type = "plex.scan"
    /// How long one attempt waits for Plex to list a published file.
    static let publishWait: Duration = .seconds(20)

    /// The payload schema: `path` from the API; the rest is what ``PlexPublisher`` gives the job
    /// that publishes a download Plex could not take at once.
    static let schema = PayloadSchema([
        .optional("path", .nonEmptyString, note: "a library folder; absent: the whole section"),
        .optional("file", .nonEmptyString, note: "publish this file (set by the daemon)"),
        .optional("title", .string()), .optional("summary", .string()), .optional("date", .string()),
        .optional("poster", .string()), .optional("collection", .string()),
        .optional("downloadId", .string(), note: "the download's youtube_downloads row"),
        .optional("downloadJobId", .string(), note: "the download's job"),
    ])

    func run(_ context: JobContext) async throws -> JSONValue {
        guard let (client, settings) = context.services.integrations.plex(context.services) else {
            throw JobFailure.permanent("Plex is not configured: add a plex section with url and token to jobs.yml")
        }
        try Self.schema.check(context.payload)
        let library = context.services.configuration.paths.library
        await context.report(Progress(stage: "plex", percent: 0))
        do {
            if let file = context.payload.given("file")?.stringValue {
                return try await publish(file: file, library: library, client: client, settings: settings, context: context)
            }
            let folder: String?
            switch context.payload["path"] {
            case nil, .null?: folder = nil
            case .string(let path)?: folder = try Self.resolveFolder(path, library: library)
            case let other?: throw JobFailure.permanent("the payload's 'path' must be a string, not \(other.kind)")
            }
            let remote = settings.remotePath(for: folder ?? LibraryPath.realPath(library) ?? library)
            let section = try await client.section(named: settings.section, containing: remote)
            try await client.refresh(section: section.key, path: folder == nil ? nil : remote)
            context.logger.info(
                "plex scan requested", metadata: ["section": "\(section.title)", "path": "\(folder == nil ? "(whole section)" : remote)"])
            return .compact([
                ("section", .string(section.title)), ("sectionKey", .string(section.key)),
                ("path", folder == nil ? nil : .string(remote)),
            ])
        } catch {
            throw await ServiceFailures.jobFailure(error, service: PlexClient.service, context: context)
        }
    }

    private func publish(
        file: String, library: String, client: PlexClient, settings: PlexSettings,
        context: JobContext
    ) async throws -> JSONValue {
        let path = try LibraryPath.resolve(file, library: library)
        let payload = context.payload
        let request = PlexPublisher.PublishRequest(
            file: path, title: payload.given("title")?.stringValue,
            summary: payload.given("summary")?.stringValue, date: payload.given("date")?.stringValue,
            poster: payload.given("poster")?.stringValue, collection: payload.given("collection")?.stringValue)
        let published: PlexPublisher.Published
        do {
            published = try await PlexPublisher.run(
                request, client: client, settings: settings, wait: Self.publishWait,
                logger: context.logger, onStage: { await context.report(Progress(stage: $0)) })
        } catch let error as ServiceError {
            if case .missing(_, let what) = error, what.hasPrefix("item for") {
                throw JobFailure.retryable(
                    "Plex has not listed \((path as NSString).lastPathComponent) yet; trying again later",
                    detail: error.description)
            }
            throw error
        }
        if let downloadID = payload.given("downloadId")?.stringValue {
            await Self.recordOnDownload(downloadID, published: published, context: context)
        }
        return .compact([
            ("plex", .string("published")), ("plexRatingKey", .string(published.ratingKey)),
            ("plexCollectionId", .text(published.collectionKey)), ("section", .string(published.section.title)),
            ("file", .string(published.remoteFile)), ("downloadJobId", payload.given("downloadJobId")),
        ])
    }

    /// Keeps the Plex ids on the download's `youtube_downloads` row when there is one (best effort:
    /// the table belongs to the YouTube pipeline).
    static func recordOnDownload(_ downloadID: String, published: PlexPublisher.Published, context: JobContext) async {
        await DownloadRecords(pool: context.services.postgres, logger: context.logger).plexIDs(
            downloadID, ratingKey: published.ratingKey, collection: published.collectionKey)
    }

    /// The real path of a library folder; a permanent failure when it is not a folder inside the library.
    static func resolveFolder(_ path: String, library: String) throws -> String {
        guard !path.isEmpty, !path.utf8.contains(0) else { throw JobFailure.permanent("the payload's 'path' is empty or holds a NUL byte") }
        let root = LibraryPath.realPath(library) ?? (library as NSString).standardizingPath
        let joined = path.hasPrefix("/") ? path : (root as NSString).appendingPathComponent(path)
        guard let real = LibraryPath.realPath(joined) else { throw JobFailure.permanent("'\(path)' does not exist in the library") }
        guard LibraryPath.isInside(real, root) else {
            throw JobFailure.permanent("'\(path)' resolves outside the library (\(library)); only folders inside it can be scanned")
        }
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: real, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw JobFailure.permanent("'\(path)' is a file, not a folder; give its folder, or 'file' to publish it")
        }
        return real
    }
}
