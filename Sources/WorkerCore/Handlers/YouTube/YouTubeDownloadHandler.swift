import Foundation
import JSON
import Logging
import Media
import Synchronization
import WorkerConfig
import YtDlp

extension HandlerRegistry {
    /// `youtube.download` and `youtube.update`.
    mutating func registerYouTubeHandler() {
        register(
            YouTubeDownloadHandler.type, YouTubeDownloadHandler(), schema: YouTubeRequest.schema,
            events: YouTubeDownloadHandler.events)
        register(YtDlpUpdateHandler.type, YtDlpUpdateHandler(), schema: YtDlpUpdateHandler.schema)
    }
}

/// `youtube.download {downloadId, url, quality, format, subtitles?, collection?}` (contract sections
/// 2, 3, 5): checks the link before any network access, describes it with yt-dlp (cached in Redis),
/// completes at once when the same video at the same quality and format is already in the library,
/// checks the user's quota, downloads the chosen formats into the job's temporary folder, merges or
/// converts them in-process (Media), writes subtitles, a `-thumb.jpg` and an `.nfo`, and moves the
/// set into the library under the `youtube.output` template. A playlist link becomes one child job
/// per entry (see `PlaylistDownload`). The `youtube_downloads` row follows every step.
struct YouTubeDownloadHandler: JobHandler {
    static let type = "youtube.download"
    /// The names the MediaNest web client listens for (contract section 3): `youtube:*`, a retry is
    /// `youtube:failed` with `willRetry: true`, every event carries `downloadId`, and the completed
    /// one `filePath`, `fileSize` and `thumbnail`.
    static let events = EventVocabulary(
        prefix: "youtube", retryAsFailed: true, correlationField: "downloadId",
        completedFromResult: [
            .init("filePath", from: "path"), .init("fileSize", from: "size"),
            .init("thumbnail", from: "thumbnail"),
        ])

    func run(_ context: JobContext) async throws -> JSONValue {
        // The job's temporary folder is named after its id: "." and ".." would name the folder
        // above it (envelope ids allow them).
        guard context.job.id.contains(where: { $0 != "." }) else {
            throw JobFailure.permanent("The job id '\(context.job.id)' cannot name a temporary folder; use letters or digits.")
        }
        try YouTubeRequest.schema.check(context.payload)
        var configuration = context.services.configuration
        // The yt-dlp this download runs, resolved once (a managed yt-dlp's update switches only
        // while no download runs on this host, and a switch affects only later downloads).
        let gate = context.services.ytDlpGate
        configuration.youtube.ytDlp = try gate.enter(configuration)
        defer { gate.leave() }
        let request = try YouTubeRequest(
            payload: context.payload, jobId: context.job.id, userId: context.envelope.userId,
            configuration: configuration)
        do {
            return try await YouTubeDownload(context: context, request: request, configuration: configuration).run()
        } catch let forbidden as ForbiddenDownload {
            throw forbidden.failure
        }
    }
}

/// One attempt of one download.
struct YouTubeDownload: Sendable {
    let context: JobContext
    let request: YouTubeRequest
    let configuration: WorkerConfiguration
    let records: DownloadRecords
    let cache: MetadataCache
    let ytdlp: YtDlp
    /// Names of the job's temporary files start with this (made from the job id, never from the video).
    let baseName: String

    /// Progress given to each stage, in percent of the whole.
    enum Share {
        static let metadata = 0.0
        static let download = 2.0...90.0
        static let convert = 90.0
        static let thumbnail = 96.0
        static let moving = 98.0
    }

    init(context: JobContext, request: YouTubeRequest, configuration: WorkerConfiguration) {
        self.context = context
        self.request = request
        self.configuration = configuration
        records = DownloadRecords(pool: context.services.postgres, logger: context.logger)
        cache = MetadataCache(redis: context.services.redis, prefix: context.services.queue.keys.prefix, logger: context.logger)
        ytdlp = YtDlp(configuration: Self.ytDlpConfiguration(configuration.youtube, context: context))
        baseName = "dl-" + context.job.id.replacingOccurrences(of: ":", with: "_")
    }

    /// How yt-dlp runs for this job: `youtube.*` settings; the cookies copy goes into the job's temporary folder.
    static func ytDlpConfiguration(_ y: YouTubeSettings, context: JobContext) -> YtDlpConfiguration {
        YtDlpConfiguration(
            executable: y.ytDlp, sleepRequests: y.sleepRequests, jsRuntime: y.jsRuntime,
            cookies: y.cookies, extractorArgs: y.extractorArgs, pluginDirs: y.pluginDirs,
            sleepInterval: y.sleepInterval, maxSleepInterval: y.maxSleepInterval, limitRate: y.limitRate,
            scratchDirectory: y.cookies == nil ? nil : try? context.temporaryDirectory())
    }

    func run() async throws -> JSONValue {
        async let began: Void = records.begin(
            DownloadRecords.Start(
                id: request.downloadId, userId: request.userId, url: request.url, jobId: context.job.id,
                parentId: request.playlist?.downloadId, playlistTitle: request.playlist?.title,
                quality: request.quality.rawValue, format: request.container.rawValue))
        // The report and the row run beside the cache look-up and yt-dlp's start, not before them.
        async let reported: Void = context.report(Progress(stage: "metadata", percent: Share.metadata))
        let (json, extraction, cached) = try await describe()
        await reported
        await began
        switch extraction {
        case .playlist(let playlist):
            if request.playlist != nil || request.subscription != nil {
                throw JobFailure.permanent(
                    "This \(request.playlist != nil ? "playlist entry" : "subscription's entry") is itself a playlist; nested playlists are not downloaded.")
            }
            return try await PlaylistDownload(download: self).run(playlist)
        case .video(var info):
            if let hints = request.entry {
                info.title = hints.title ?? info.title
                info.channel = hints.channel ?? info.channel
                info.description = hints.description ?? info.description
                info.timestamp = hints.timestamp ?? info.timestamp
            }
            do {
                return try await downloadVideo(info, json: json)
            } catch let forbidden as ForbiddenDownload {
                // HTTP 403: links in the description may have expired or be bound to another
                // host's address. Once, in this attempt, with a description made afresh.
                await cache.forget(info: info, source: request.source)
                context.logger.notice("HTTP 403 from the site: trying once more with fresh metadata")
                let (freshJSON, fresh) = try await ytDlpCall { try await ytdlp.extract(url: request.source.url) }
                guard case .video(var again) = fresh else { throw forbidden.failure }
                if let hints = request.entry {
                    again.title = hints.title ?? again.title
                    again.channel = hints.channel ?? again.channel
                    again.description = hints.description ?? again.description
                    again.timestamp = hints.timestamp ?? again.timestamp
                }
                do {
                    return try await downloadVideo(again, json: freshJSON)
                } catch let twice as ForbiddenDownload {
                    throw JobFailure.permanent(
                        twice.failure.message + " It was refused again with fresh metadata.", detail: twice.failure.detail)
                }
            } catch let failure as JobFailure where cached && failure.retryable {
                // Links in a cached description may have expired or be bound to another host's
                // address: the next attempt describes the video afresh.
                await cache.forget(info: info, source: request.source)
                throw failure
            }
        }
    }

    // MARK: metadata

    /// The link's info JSON: from the cache, else from yt-dlp (then cached). The flag says
    /// whether it came from the cache.
    /// With `youtube.cookies` nothing is cached: yt-dlp writes the account's cookies into the info
    /// JSON (each format's `cookies`), and they must never reach Redis.
    func describe() async throws -> ([UInt8], Extraction, Bool) {
        let cacheable = configuration.youtube.cookies == nil
        if cacheable, let cached = await cache.lookup(request.source), let extraction = try? Extraction.parse(cached) {
            context.logger.debug("metadata from cache")
            return (cached, extraction, true)
        }
        let (json, extraction) = try await ytDlpCall { try await ytdlp.extract(url: request.source.url) }
        if cacheable, case .video(let info) = extraction {
            await cache.store(json, info: info, source: request.source)
        }
        return (json, extraction, false)
    }

    // MARK: one video

    func downloadVideo(_ info: VideoInfo, json: [UInt8]) async throws -> JSONValue {
        if info.isLiveNow {
            throw JobFailure.permanent("This is a live stream or a premiere that has not ended; download it once it is over.")
        }
        let plan: FormatPlan
        do { plan = try FormatSelector.plan(formats: info.formats, quality: request.quality, container: request.container) } catch {
            throw JobFailure.permanent(error.description)
        }
        await records.described(
            request.downloadId, extractor: info.extractor, videoId: info.id, title: info.title,
            channel: info.channelName, playlistTitle: request.playlist?.title, duration: info.duration)
        if let duplicate = await findDuplicate(info) { return duplicate }
        try await checkQuota(adding: plan.expectedSize(duration: info.duration))

        await enterStage("downloading", percent: Share.download.lowerBound)
        let directory = try context.temporaryDirectory()
        let infoPath = (directory as NSString).appendingPathComponent(baseName + ".info.json")
        guard FileManager.default.createFile(atPath: infoPath, contents: Data(json)) else {
            throw JobFailure.retryable("Cannot write to the temporary folder \(directory); check paths.temp (full disk?).")
        }
        let wantSiteThumbnail = plan.container.isAudioOnly && info.thumbnail != nil
        let downloadRequest = DownloadRequest(
            infoJSONPath: infoPath, plan: plan, directory: directory, baseName: baseName,
            subtitles: request.subtitles.map { SubtitleRequest(languages: $0.languages, automatic: $0.automatic) },
            thumbnail: wantSiteThumbnail)
        let pump = ProgressPump(context: context)
        let files: DownloadedFiles
        do {
            files = try await ytDlpCall {
                try await ytdlp.download(
                    downloadRequest, progress: pump.downloads(plan: plan, duration: info.duration, range: Share.download))
            }
            await pump.finish()
        } catch {
            await pump.finish()
            throw error
        }
        try Task.checkCancellation()
        let edit = await editStep(info, json: json, audioOnly: plan.container.isAudioOnly)
        return try await finish(info, plan: plan, files: files, directory: directory, edit: edit)
    }

    /// Converts, adds sidecars and moves the result into the library.
    /// The steps after yt-dlp: convert (merge or remux) in-process, subtitles, thumbnail, `.nfo`, the
    /// move into the library, then Plex.
    func finish(
        _ info: VideoInfo, plan: FormatPlan, files: DownloadedFiles, directory: String, edit: EditStep = EditStep()
    ) async throws -> JSONValue {
        let embed = request.subtitles?.embed == true && !plan.container.isAudioOnly
        let (output, conversion) = try await convert(
            info, plan: plan, files: files, directory: directory, embedSubtitles: embed, edit: edit.edit)
        var sidecars: [LibraryMover.Item] = []
        let subtitles = embed ? [] : try await subtitleSidecars(files, directory: directory)
        sidecars += subtitles
        let thumbnail = try await thumbnailSidecar(output: output, conversion: conversion, files: files, directory: directory)
        if let thumbnail { sidecars.append(thumbnail) }
        if let nfo = nfoSidecar(info, duration: conversion.output.duration ?? info.duration, directory: directory) { sidecars.append(nfo) }

        let (path, size, placed) = try await moveIntoLibrary(output, sidecars: sidecars, info: info, ext: plan.container.rawValue)
        func placedPath(_ item: LibraryMover.Item?) -> String? {
            item.flatMap { item in sidecars.firstIndex { $0.suffix == item.suffix }.map { placed.paths[$0] } }
        }
        let thumbnailPath = placedPath(thumbnail)
        let nfoPath = sidecars.firstIndex { $0.suffix == ".nfo" }.map { placed.paths[$0] }
        let subtitleSuffixes = Set(subtitles.map(\.suffix))
        let subtitlePaths = sidecars.indices.filter { subtitleSuffixes.contains(sidecars[$0].suffix) }.map { placed.paths[$0] }
        await records.completed(
            request.downloadId, paths: [path], size: size, duplicate: false, duration: conversion.output.duration ?? info.duration)
        await context.report(Progress(stage: "moving", percent: 100))
        context.logger.info(
            "download in the library", metadata: ["path": "\(path)", "videoId": "\(info.id)", "extractor": "\(info.extractor)"])
        let plex = await publishToPlex(path: path, info: info, thumbnail: thumbnailPath)
        var fields = plex.resultFields
        if let sb = edit.resultField(conversion) { fields.insert(sb, at: 0) }
        return result(info, path: path, size: size, thumbnail: thumbnailPath, nfo: nfoPath, subtitles: subtitlePaths, duplicate: false)
            .appending(fields)
    }

    /// Merges, remuxes or extracts the downloaded streams into the chosen container, in-process,
    /// with tags and (when asked) embedded subtitles. Returns the output's path and what it holds.
    func convert(
        _ info: VideoInfo, plan: FormatPlan, files: DownloadedFiles, directory: String,
        embedSubtitles: Bool, edit: EditRequest = .none
    ) async throws -> (String, ConversionResult) {
        let output = (directory as NSString).appendingPathComponent(baseName + ".out." + plan.container.rawValue)
        let tags = MediaTags(
            title: info.title, artist: info.channelName, date: info.date, description: info.description,
            comment: sourceLink(info))
        let embedded = embedSubtitles ? files.subtitles.map { SubtitleInput(path: $0.path, language: $0.language) } : []
        let stage = plan.kind == .separate ? "merging" : "converting"
        await enterStage(stage, percent: Share.convert)
        let pump = ProgressPump(context: context)
        let progress = pump.media(stage: stage, range: Share.convert...Share.thumbnail)
        let converted: Result<ConversionResult, MediaError>
        do {
            switch plan.kind {
            case .separate:
                converted = .success(
                    try await Media.merge(
                        video: files.media[0], audio: files.media[1], output: output, container: outputContainer(plan.container),
                        tags: tags, subtitles: embedded, edit: edit, progress: progress))
            case .combined, .videoOnly:
                converted = .success(
                    try await Media.remux(
                        input: files.media[0], output: output, container: outputContainer(plan.container),
                        tags: tags, subtitles: embedded, edit: edit, progress: progress))
            case .audioOnly:
                converted = .success(
                    try await Media.extractAudio(
                        input: files.media[0], output: output, format: plan.container == .mp3 ? .mp3 : .m4a, tags: tags, progress: progress)
                )
            }
        } catch {
            converted = .failure(error)
        }
        await pump.finish()
        switch converted {
        case .success(let result): return (output, result)
        case .failure(let error): throw jobFailure(error)
        }
    }

    /// The downloaded subtitles as `.srt` sidecars (`<name>.<language>.srt`); one that cannot be converted is left out.
    func subtitleSidecars(_ files: DownloadedFiles, directory: String) async throws -> [LibraryMover.Item] {
        var sidecars: [LibraryMover.Item] = []
        for (language, path) in files.subtitles {
            let srt = (directory as NSString).appendingPathComponent("\(baseName).srt.\(language).srt")
            do {
                try await Media.convertSubtitles(input: path, output: srt, format: .srt)
                sidecars.append(LibraryMover.Item(source: srt, suffix: ".\(language).srt"))
            } catch MediaError.cancelled {
                throw CancellationError()
            } catch {
                context.logger.warning("subtitles not converted", metadata: ["language": "\(language)", "error": "\(error)"])
            }
        }
        return sidecars
    }

    /// `-thumb.jpg`: a poster frame of the video (at most 1280 wide), or the downloaded thumbnail for audio; nil when neither works.
    func thumbnailSidecar(
        output: String, conversion: ConversionResult, files: DownloadedFiles, directory: String
    ) async throws -> LibraryMover.Item? {
        await enterStage("thumbnail", percent: Share.thumbnail)
        let thumb = (directory as NSString).appendingPathComponent(baseName + "-thumb.jpg")
        do {
            if let video = conversion.output.videoStreams.first {
                let width = (video.width ?? 0) > 1280 ? 1280 : nil
                _ = try await Media.thumbnail(input: output, output: thumb, at: .fraction(0.1), width: width, format: .jpeg, mode: .poster)
            } else if let image = files.thumbnail {
                _ = try await Media.thumbnail(input: image, output: thumb, at: .seconds(0), width: nil, format: .jpeg, mode: .keyframe)
            } else {
                return nil
            }
            return LibraryMover.Item(source: thumb, suffix: "-thumb.jpg")
        } catch MediaError.cancelled {
            throw CancellationError()
        } catch {
            context.logger.warning("no thumbnail", metadata: ["error": "\(error)"])
            return nil
        }
    }

    /// The `.nfo` Plex's agents read; nil when it cannot be written.
    func nfoSidecar(_ info: VideoInfo, duration: Double?, directory: String) -> LibraryMover.Item? {
        let nfo = (directory as NSString).appendingPathComponent(baseName + ".nfo")
        let document = NFOWriter.document(
            NFOWriter.Fields(
                title: info.title ?? info.id, channel: info.channelName, id: info.id, extractor: info.extractor, date: info.date,
                description: info.description, duration: duration,
                url: sourceLink(info), tags: info.tags, playlist: request.playlist?.title,
                index: request.playlist?.index))
        guard FileManager.default.createFile(atPath: nfo, contents: Data(document.utf8)) else { return nil }
        return LibraryMover.Item(source: nfo, suffix: ".nfo")
    }

    /// Checks the quota, then moves the media and its sidecars into the library under the output
    /// template, atomically and never replacing a file. Returns the media's path, its size and where each went.
    func moveIntoLibrary(
        _ output: String, sidecars: [LibraryMover.Item], info: VideoInfo,
        ext: String
    ) async throws -> (String, Int64, LibraryMover.Placed) {
        await enterStage("moving", percent: Share.moving)
        let rendered = OutputTemplate(request.subscription?.output ?? configuration.youtube.output).render(templateValues(info), ext: ext)
        let size = fileSize(output)
        try await checkQuota(adding: size)  // the size the row records (sidecars are a few kB)
        try Task.checkCancellation()
        let placed: LibraryMover.Placed
        do {
            let folder = try LibraryMover.prepareFolder(library: configuration.paths.library, components: rendered.folders)
            let mediaSuffix =
                rendered.fileName.hasPrefix(rendered.baseName) ? String(rendered.fileName.dropFirst(rendered.baseName.count)) : ""
            placed = try LibraryMover.place(
                media: LibraryMover.Item(source: output, suffix: mediaSuffix), sidecars: sidecars,
                folder: folder, baseName: rendered.baseName)
        } catch let failure as JobFailure {
            throw failure
        } catch {
            throw JobFailure.retryable(
                "Cannot move the download into the library (\(configuration.paths.library)): \(error.localizedDescription)")
        }
        return (placed.paths.last!, size, placed)
    }

    // MARK: duplicates and quota

    /// The same video at the same quality and format, recorded and still on disk inside the library.
    func findDuplicate(_ info: VideoInfo) async -> JSONValue? {
        let rows: [DownloadRecords.Existing]
        do {
            rows = try await records.existing(
                extractor: info.extractor, videoId: info.id, quality: request.quality.rawValue,
                format: request.container.rawValue, except: request.downloadId)
        } catch {
            context.logger.warning("duplicate check skipped: PostgreSQL did not answer", metadata: ["error": "\(error)"])
            return nil
        }
        let library = LibraryPath.realPath(configuration.paths.library) ?? configuration.paths.library
        for row in rows {
            guard let real = LibraryPath.realPath(row.path), LibraryPath.isInside(real, library) else { continue }
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: real, isDirectory: &isDirectory), !isDirectory.boolValue else { continue }
            let size = fileSize(real)
            let base = (real as NSString).deletingPathExtension
            let thumb = FileManager.default.fileExists(atPath: base + "-thumb.jpg") ? base + "-thumb.jpg" : nil
            let nfo = FileManager.default.fileExists(atPath: base + ".nfo") ? base + ".nfo" : nil
            await records.completed(request.downloadId, paths: [real], size: size, duplicate: true)
            await context.report(Progress(stage: "moving", percent: 100))
            context.logger.info("already in the library", metadata: ["path": "\(real)", "videoId": "\(info.id)"])
            return result(info, path: real, size: size, thumbnail: thumb, nfo: nfo, subtitles: [], duplicate: true)
        }
        return nil
    }

    /// Fails when `bytes` more would take the user past `retention.user_quota`.
    func checkQuota(adding bytes: Int64?) async throws {
        guard let quota = configuration.retention.userQuota, let user = request.userId else { return }
        let used: Int64
        do {
            used = try await records.used(by: user, except: request.downloadId)
        } catch {
            throw JobFailure.retryable(
                "Cannot check the download quota: PostgreSQL did not answer; the download will be tried again.",
                detail: "\(error)")
        }
        let adding = bytes ?? 0
        guard used + adding > quota || used >= quota else { return }
        let size = bytes.map { " (about \(ByteText.format($0)))" } ?? ""
        throw JobFailure.permanent(
            "This download\(size) would pass the quota of \(ByteText.format(quota)) per user (\(ByteText.format(used)) used); "
                + "remove some downloads or ask an admin to raise retention.user_quota.")
    }

    // MARK: pieces

    /// Values for the output template.
    func templateValues(_ info: VideoInfo) -> [String: String] {
        var values: [String: String] = [
            "channel": info.channelName ?? "", "title": info.title ?? "", "id": info.id, "date": info.date ?? "",
            "user": request.userId ?? "", "playlist": request.playlist?.title ?? request.subscription?.name ?? "",
        ]
        if let membership = request.playlist, membership.index > 0 {
            let width = max(2, String(max(membership.count, membership.index)).count)
            let digits = String(membership.index)
            values["index"] = String(repeating: "0", count: max(width - digits.count, 0)) + digits
        }
        return values
    }

    func result(
        _ info: VideoInfo, path: String, size: Int64, thumbnail: String?, nfo: String?, subtitles: [String], duplicate: Bool
    ) -> JSONValue {
        var pairs: [(String, JSONValue)] = [
            ("path", .string(path)), ("size", .number(String(size))),
            ("thumbnail", thumbnail.map { .string($0) } ?? .null), ("nfo", nfo.map { .string($0) } ?? .null),
            ("subtitles", .array(subtitles.map { .string($0) })), ("duplicate", .bool(duplicate)),
            ("downloadId", .string(request.downloadId)), ("videoId", .string(info.id)), ("extractor", .string(info.extractor)),
            ("title", info.title.map { .string($0) } ?? .null), ("channel", info.channelName.map { .string($0) } ?? .null),
            ("duration", info.duration.map { .number(String($0)) } ?? .null),
            ("quality", .string(request.quality.rawValue)), ("format", .string(request.container.rawValue)),
        ]
        if let collection = request.collection { pairs.append(("collection", .string(collection))) }
        if let published = info.publishedMilliseconds { pairs.append(("publishedAt", .string(Timestamp.format(milliseconds: published)))) }
        if let membership = request.playlist {
            pairs.append(
                (
                    "playlist",
                    .object([
                        ("jobId", .string(membership.jobId)), ("downloadId", .string(membership.downloadId)),
                        ("index", .number(String(membership.index))),
                    ])
                ))
        }
        return .object(pairs)
    }

    /// The page the video came from, for tags and the `.nfo` (without yt-dlp's private fragment).
    func sourceLink(_ info: VideoInfo) -> String {
        let link = info.webpageURL ?? request.source.url
        return link.split(separator: "#", maxSplits: 1).first.map(String.init) ?? link
    }

    /// Reports a new stage and records it in the row.
    func enterStage(_ stage: String, percent: Double) async {
        await context.report(Progress(stage: stage, percent: percent))
        await records.stage(request.downloadId, stage)
    }

    func outputContainer(_ c: Container) -> OutputContainer {
        OutputContainer(rawValue: c.rawValue) ?? .mp4
    }

    /// Runs a yt-dlp call through the cluster-wide `youtube` circuit, turning its errors into the
    /// job's. While the circuit is open the job waits (attempt not counted); a bot check or an
    /// HTTP 429 opens it for every host; a 403 is thrown as ``ForbiddenDownload`` (tried once
    /// more with fresh metadata by ``run()``).
    func ytDlpCall<T: Sendable>(_ body: () async throws -> T) async throws -> T {
        try await Self.throughYouTubeCircuit(context, body)
    }

    /// ``ytDlpCall(_:)`` for any job that runs yt-dlp (a subscription's check too).
    static func throughYouTubeCircuit<T: Sendable>(_ context: JobContext, _ body: () async throws -> T) async throws -> T {
        let circuit = YouTubeCircuit(redis: context.services.redis, prefix: context.services.queue.keys.prefix)
        let hub = context.services.integrations
        let permit = await circuit.acquire()
        if case .wait(let seconds, let reason) = permit {
            hub.noteClusterCircuit(YouTubeCircuit.service, state: "open", holdingBack: true)
            await context.report(Progress(stage: "waiting for youtube"))
            let cause =
                reason.map { $0 == "rate_limited" ? YtDlpError.rateLimited(detail: "") : .botCheck(detail: "") } ?? .botCheck(detail: "")
            throw JobFailure.waiting(
                cause.description, seconds: seconds, detail: "youtube circuit open; next trial in \(Int(seconds.rounded(.up))) s")
        }
        do {
            let value = try await body()
            if await circuit.answered(permit) {
                hub.noteClusterCircuit(YouTubeCircuit.service, state: "closed", holdingBack: false)
                context.logger.notice("youtube circuit closed: the trial download went through", metadata: ["service": "youtube"])
            }
            return value
        } catch let error as YtDlpError {
            let detail = error.detail.isEmpty ? nil : error.detail
            if error.opensCircuit {
                let (seconds, opened) = await circuit.trip(permit, reason: error.kind, consumer: context.services.queue.consumer)
                hub.noteClusterCircuit(YouTubeCircuit.service, state: "open", holdingBack: true)
                if opened {
                    context.logger.warning(
                        "youtube circuit open: YouTube downloads pause on every host",
                        metadata: ["service": "youtube", "reason": "\(error.kind)", "retryIn": "\(Int(seconds.rounded(.up))) s"])
                }
                await context.report(Progress(stage: "waiting for youtube"))
                throw JobFailure.waiting(error.description, seconds: seconds, detail: detail)
            }
            switch error.kind {
            case "network", "other": await circuit.release(permit)
            default:
                // YouTube answered (a missing video, a 403, a sign-in page): a trial closes the circuit.
                if await circuit.answered(permit) {
                    hub.noteClusterCircuit(YouTubeCircuit.service, state: "closed", holdingBack: false)
                }
            }
            let failure = JobFailure(error.description, retryable: error.isRetryable, detail: detail)
            if case .forbidden = error { throw ForbiddenDownload(failure: failure) }
            throw failure
        } catch {
            await circuit.release(permit)
            throw error
        }
    }
}

/// An HTTP 403 from yt-dlp: ``YouTubeDownload/run()`` tries once more with fresh metadata; any
/// other caller sees it as the retryable failure it carries.
struct ForbiddenDownload: Error, Sendable {
    let failure: JobFailure
}

func fileSize(_ path: String) -> Int64 {
    var st = stat()
    return stat(path, &st) == 0 ? Int64(st.st_size) : 0
}

/// Byte counts as people read them.
enum ByteText {
    static func format(_ bytes: Int64) -> String {
        let units = ["B", "KiB", "MiB", "GiB", "TiB"]
        var value = Double(bytes)
        var unit = 0
        while value >= 1024 && unit < units.count - 1 {
            value /= 1024
            unit += 1
        }
        return unit == 0 ? "\(bytes) B" : String(format: value < 10 ? "%.1f %@" : "%.0f %@", value, units[unit])
    }
}

/// Carries progress reported on other threads (yt-dlp's reader, libav's) to the job in order, one
/// report at a time, at most every half second; a report not yet sent is replaced by a newer one.
/// `finish()` waits until the last one is out, so the next stage's report always comes after.
final class ProgressPump: Sendable {
    private let last = Mutex<ContinuousClock.Instant?>(nil)
    private let continuation: AsyncStream<Progress>.Continuation
    private let task: Task<Void, Never>

    init(context: JobContext) {
        let (stream, continuation) = AsyncStream<Progress>.makeStream(bufferingPolicy: .bufferingNewest(1))
        self.continuation = continuation
        task = Task {
            for await progress in stream { await context.report(progress) }
        }
    }

    /// Queues a report unless one went out less than half a second ago.
    func send(_ progress: Progress) {
        let now = ContinuousClock.now
        let due = last.withLock { t -> Bool in
            if let t, now - t < .milliseconds(500) { return false }
            t = now
            return true
        }
        if due { continuation.yield(progress) }
    }

    /// Stops taking reports and waits until the last one is sent.
    func finish() async {
        continuation.finish()
        await task.value
    }

    /// A callback for yt-dlp's reports: the formats' progress folded into one, mapped onto `range`.
    func downloads(plan: FormatPlan, duration: Double?, range: ClosedRange<Double>) -> @Sendable (DownloadProgress) -> Void {
        let aggregator = LockedAggregator(ProgressAggregator(formats: plan.formats.map { ($0.id, $0.expectedSize(duration: duration)) }))
        return { [self] p in
            let overall = aggregator.update(p)
            send(
                Progress(
                    stage: "downloading", percent: range.lowerBound + (range.upperBound - range.lowerBound) * overall.fraction,
                    downloadedBytes: overall.downloadedBytes, totalBytes: overall.totalBytes, speed: overall.speed, eta: overall.eta))
        }
    }

    /// A callback for libav's fraction done, mapped onto `range` percent.
    func media(stage: String, range: ClosedRange<Double>) -> @Sendable (Double) -> Void {
        { [self] fraction in
            send(Progress(stage: stage, percent: range.lowerBound + (range.upperBound - range.lowerBound) * min(max(fraction, 0), 1)))
        }
    }
}

/// A `ProgressAggregator` shared with the reading thread.
final class LockedAggregator: Sendable {
    private let state: Mutex<ProgressAggregator>
    init(_ aggregator: ProgressAggregator) { state = Mutex(aggregator) }
    func update(_ p: DownloadProgress) -> ProgressAggregator.Overall { state.withLock { $0.update(p) } }
}
