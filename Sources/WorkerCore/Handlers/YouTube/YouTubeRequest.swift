import Foundation
import JSON
import WorkerConfig
import YtDlp

/// A `youtube.download` payload, checked (contract section 5): `downloadId` (UUID), `url`,
/// `quality`, `format`, optional `subtitles {languages, auto, embed}` and `collection`. Jobs the
/// daemon makes for playlist entries also carry `playlist` (their parent) and `entry` (what the
/// playlist said about the entry).
struct YouTubeRequest: Sendable {
    /// The payload schema (contract section 5). `playlist` and `entry` are what the daemon gives
    /// the jobs of a playlist's entries; `userId` is the form BullMQ data carries it in.
    static let schema = PayloadSchema([
        .optional("downloadId", .string(pattern: .uuid), note: "the youtube_downloads row; absent: derived from the job id"),
        .required("url", .nonEmptyString, note: "a video or playlist link"),
        .optional("quality", .oneOf(Quality.allCases.map(\.rawValue)), note: "absent: youtube.quality (1080p)"),
        .optional("format", .oneOf(Container.allCases.map(\.rawValue)), note: "absent: youtube.format (mp4)"),
        .optional(
            "subtitles",
            .object([
                .optional("languages", .array(of: .string(pattern: .languageCode), count: 0...20), note: "absent or empty: en"),
                .optional("auto", .boolean, note: "also automatic captions; absent: false"),
                .optional("embed", .boolean, note: "embed in the file instead of .srt sidecars; absent: false"),
            ])),
        .optional("collection", .string(), note: "Plex collection"),
        .optional("userId", .string(length: 1...128), note: "when the envelope has none"),
        .optional("playlist", playlistType, note: "set by the daemon on a playlist's entries"),
        .optional("entry", entryType, note: "set by the daemon on a playlist's entries"),
        .optional("subscription", subscriptionType, note: "set by the daemon on a subscription's downloads"),
    ])
    /// `subscription`: the subscription a download was queued for.
    static let subscriptionType = PayloadType.object([
        .required("id", .nonEmptyString), .optional("name", .string()), .required("videoKey", .nonEmptyString),
        .optional("output", .string(), note: "the subscription's file name template"),
    ])

    /// The subscription a download belongs to.
    struct SubscriptionRef: Sendable, Equatable {
        var id: String
        var name: String?
        var videoKey: String
        /// Its output template (checked), nil for `youtube.output`.
        var output: String?
    }
    /// `playlist`: the parent of a playlist's entry.
    static let playlistType = PayloadType.object([
        .required("jobId", .nonEmptyString), .required("downloadId", .nonEmptyString),
        .optional("title", .string()), .optional("url", .string()),
        .optional("index", .integer(min: 0)), .optional("count", .integer(min: 0)),
    ])
    /// `entry`: what the playlist said about its entry.
    static let entryType = PayloadType.object([
        .optional("title", .string()), .optional("channel", .string()),
        .optional("description", .string()), .optional("timestamp", .number()),
    ])

    /// Subtitles a download asks for.
    struct Subtitles: Sendable, Equatable {
        var languages: [String]
        var automatic: Bool
        /// Embed them in the file (else write `.srt` sidecars).
        var embed: Bool
    }

    /// The playlist a child job belongs to.
    struct Membership: Sendable, Equatable {
        var jobId: String
        var downloadId: String
        var title: String?
        var url: String?
        /// 1-based.
        var index: Int
        var count: Int
    }

    /// Fields the playlist gave for its entry (they win over the extracted ones, as yt-dlp's
    /// `url_transparent` entries do).
    struct EntryHints: Sendable, Equatable {
        var title: String?
        var channel: String?
        var description: String?
        var timestamp: Double?
    }

    var downloadId: String
    var url: String
    var source: SourceURL
    var quality: Quality
    var container: Container
    var subtitles: Subtitles?
    var collection: String?
    var userId: String?
    var playlist: Membership?
    var entry: EntryHints?
    var subscription: SubscriptionRef?
    /// The `subtitles` object as given, passed on to playlist entries.
    var subtitlesJSON: JSONValue?

    init(payload: JSONValue, jobId: String, userId: String?, configuration: WorkerConfiguration) throws {
        if let given = payload.given("downloadId") {
            guard let text = given.stringValue, let uuid = UUID(uuidString: text) else {
                throw JobFailure.permanent("The payload's 'downloadId' must be a UUID such as 3f2c1e9a-8b7d-4c6e-9f01-23456789abcd.")
            }
            downloadId = uuid.uuidString.lowercased()
        } else {
            downloadId = DerivedID.uuid("job:" + jobId)
        }
        guard let url = payload.given("url")?.stringValue, !url.isEmpty else {
            throw JobFailure.permanent("The payload needs 'url': the link of a video or a playlist.")
        }
        self.url = url
        // Each field: absent (or null) takes its default; any other type is refused, never defaulted.
        func text(_ key: String, _ wrong: (JSONValue) -> String) throws(JobFailure) -> String? {
            switch payload.given(key) {
            case nil: return nil
            case .string(let s)?: return s
            case let other?: throw JobFailure.permanent(wrong(other))
            }
        }
        self.userId = try userId ?? text("userId") { "The payload's 'userId' must be a string, not \($0.kind)." }

        let qualities = Quality.allCases.map(\.rawValue).joined(separator: ", ")
        let qualityText = try text("quality") { "'quality' must be one of \(qualities); got \($0.kind)." } ?? configuration.youtube.quality
        guard let quality = Quality(rawValue: qualityText) else {
            throw JobFailure.permanent("'quality' must be one of \(qualities); got '\(qualityText.prefix(40))'.")
        }
        self.quality = quality
        let formats = Container.allCases.map(\.rawValue).joined(separator: ", ")
        let formatText = try text("format") { "'format' must be one of \(formats); got \($0.kind)." } ?? configuration.youtube.format
        guard let container = Container(rawValue: formatText) else {
            throw JobFailure.permanent("'format' must be one of \(formats); got '\(formatText.prefix(40))'.")
        }
        self.container = container

        if let subs = payload.given("subtitles") {
            guard subs.isObject else {
                throw JobFailure.permanent("'subtitles' must be an object: {\"languages\": [\"en\"], \"auto\": false, \"embed\": false}.")
            }
            var languages: [String] = []
            if let list = subs.given("languages") {
                guard case .array(let items) = list, items.count <= 20 else {
                    throw JobFailure.permanent(
                        "'subtitles.languages' must be a list of at most 20 language codes such as [\"en\", \"de\"].")
                }
                for item in items {
                    guard let code = item.stringValue, SubtitleRequest.isValidLanguage(code) else {
                        throw JobFailure.permanent(
                            "'subtitles.languages' takes language codes such as \"en\" or \"pt-BR\" (letters, digits and '-').")
                    }
                    if !languages.contains(code) { languages.append(code) }
                }
            }
            if languages.isEmpty { languages = ["en"] }
            func flag(_ key: String) throws(JobFailure) -> Bool {
                switch subs.given(key) {
                case nil: return false
                case .bool(let b)?: return b
                case let other?: throw JobFailure.permanent("'subtitles.\(key)' must be true or false, not \(other.kind).")
                }
            }
            subtitles = Subtitles(languages: languages, automatic: try flag("auto"), embed: try flag("embed"))
            subtitlesJSON = subs
        }
        collection = try text("collection") { "'collection' must be a string, not \($0.kind)." }

        // Given by the daemon itself to a playlist's entries; checked all the same.
        for (key, type) in [("playlist", Self.playlistType), ("entry", Self.entryType), ("subscription", Self.subscriptionType)] {
            if let value = payload.given(key), let problem = type.check(value, path: "payload." + key) {
                throw JobFailure.permanent(problem)
            }
        }
        if let p = payload.given("playlist"), let parentJob = p["jobId"]?.stringValue, let parentDownload = p["downloadId"]?.stringValue {
            playlist = Membership(
                jobId: parentJob, downloadId: parentDownload, title: p.given("title")?.stringValue,
                url: p.given("url")?.stringValue, index: p.given("index")?.intValue ?? 0,
                count: p.given("count")?.intValue ?? 0)
        }
        if let e = payload.given("entry") {
            entry = EntryHints(
                title: e.given("title")?.stringValue, channel: e.given("channel")?.stringValue,
                description: e.given("description")?.stringValue, timestamp: e.given("timestamp")?.doubleValue)
        }
        if let sub = payload.given("subscription"), let id = sub["id"]?.stringValue, let key = sub["videoKey"]?.stringValue {
            let output = sub.given("output")?.stringValue
            if let output, let problem = SubscriptionSettings.outputProblem(output) {
                throw JobFailure.permanent("The payload's 'subscription.output' is not a file name template: \(problem).")
            }
            subscription = SubscriptionRef(id: id, name: sub.given("name")?.stringValue, videoKey: key, output: output)
        }
        do {
            source = try SourceURL.parse(
                url, allowedHosts: configuration.youtube.allowedHosts, keepSmuggledFragment: playlist != nil || subscription != nil)
        } catch {
            throw JobFailure.permanent(error.description)
        }
    }
}

extension DerivedID {
    /// The job id of a playlist's entry: `<parent>.<index>`, or a hash of the parent when that
    /// would pass the 128 characters job ids may have.
    static func childJobID(parent: String, index: Int) -> String {
        let plain = "\(parent).\(index)"
        if plain.utf8.count <= 128 { return plain }
        return "pl-\(uuid("parent:" + parent)).\(index)"
    }
}
