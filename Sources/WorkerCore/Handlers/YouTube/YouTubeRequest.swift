import Foundation
import WorkerConfig
import YtDlp

/// A `youtube.download` payload, checked (contract section 5): `downloadId` (UUID), `url`,
/// `quality`, `format`, optional `subtitles {languages, auto, embed}` and `collection`. Jobs the
/// daemon makes for playlist entries also carry `playlist` (their parent) and `entry` (what the
/// playlist said about the entry).
struct YouTubeRequest: Sendable {
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
    /// The `subtitles` object as given, passed on to playlist entries.
    var subtitlesJSON: JSONValue?

    init(payload: JSONValue, jobId: String, userId: String?, configuration: WorkerConfiguration) throws {
        if let given = payload["downloadId"], given != .null {
            guard let text = given.stringValue, let uuid = UUID(uuidString: text) else {
                throw JobFailure.permanent("The payload's 'downloadId' must be a UUID such as 3f2c1e9a-8b7d-4c6e-9f01-23456789abcd.")
            }
            downloadId = uuid.uuidString.lowercased()
        } else {
            downloadId = DerivedID.uuid("job:" + jobId)
        }
        guard let url = payload["url"]?.stringValue else {
            throw JobFailure.permanent("The payload needs 'url': the link of a video or a playlist.")
        }
        self.url = url
        self.userId = userId ?? payload["userId"]?.stringValue

        let qualityText = payload["quality"]?.stringValue ?? configuration.youtube.quality
        guard let quality = Quality(rawValue: qualityText) else {
            throw JobFailure.permanent("'quality' must be one of \(Quality.allCases.map(\.rawValue).joined(separator: ", ")); got '\(qualityText.prefix(40))'.")
        }
        self.quality = quality
        let formatText = payload["format"]?.stringValue ?? configuration.youtube.format
        guard let container = Container(rawValue: formatText) else {
            throw JobFailure.permanent("'format' must be one of \(Container.allCases.map(\.rawValue).joined(separator: ", ")); got '\(formatText.prefix(40))'.")
        }
        self.container = container

        if let subs = payload["subtitles"], subs != .null {
            guard subs.isObject else { throw JobFailure.permanent("'subtitles' must be an object: {\"languages\": [\"en\"], \"auto\": false, \"embed\": false}.") }
            var languages: [String] = []
            if let list = subs["languages"] {
                guard case .array(let items) = list else { throw JobFailure.permanent("'subtitles.languages' must be a list of language codes such as [\"en\", \"de\"].") }
                for item in items {
                    guard let code = item.stringValue, SubtitleRequest.isValidLanguage(code) else {
                        throw JobFailure.permanent("'subtitles.languages' takes language codes such as \"en\" or \"pt-BR\" (letters, digits and '-').")
                    }
                    if !languages.contains(code) { languages.append(code) }
                }
            }
            if languages.isEmpty { languages = ["en"] }
            subtitles = Subtitles(languages: Array(languages.prefix(20)), automatic: subs["auto"]?.boolValue ?? false,
                                  embed: subs["embed"]?.boolValue ?? false)
            subtitlesJSON = subs
        }
        collection = payload["collection"]?.stringValue

        if let p = payload["playlist"], p.isObject, let parentJob = p["jobId"]?.stringValue, let parentDownload = p["downloadId"]?.stringValue {
            playlist = Membership(jobId: parentJob, downloadId: parentDownload, title: p["title"]?.stringValue, url: p["url"]?.stringValue,
                                  index: p["index"]?.intValue ?? 0, count: p["count"]?.intValue ?? 0)
        }
        if let e = payload["entry"], e.isObject {
            entry = EntryHints(title: e["title"]?.stringValue, channel: e["channel"]?.stringValue,
                               description: e["description"]?.stringValue, timestamp: e["timestamp"]?.doubleValue)
        }
        do {
            source = try SourceURL.parse(url, allowedHosts: configuration.youtube.allowedHosts, keepSmuggledFragment: playlist != nil)
        } catch {
            throw JobFailure.permanent(error.description)
        }
    }
}

/// Ids the daemon derives itself, the same on every host and every attempt.
enum DerivedID {
    /// A UUID (version 8, RFC 9562 "custom") from a 128-bit FNV-1a hash of `text`.
    static func uuid(_ text: String) -> String {
        var a: UInt64 = 0xcbf2_9ce4_8422_2325
        var b: UInt64 = 0x8422_2325_cbf2_9ce4
        for byte in text.utf8 {
            a = (a ^ UInt64(byte)) &* 0x0000_0100_0000_01B3
            b = (b ^ UInt64(byte)) &* 0x0000_0100_0000_01B3
            b = (b << 7) | (b >> 57)
        }
        a ^= b >> 17
        b ^= a << 13
        var bytes = (0..<8).map { UInt8(truncatingIfNeeded: a >> (56 - 8 * $0)) } + (0..<8).map { UInt8(truncatingIfNeeded: b >> (56 - 8 * $0)) }
        bytes[6] = (bytes[6] & 0x0F) | 0x80  // version 8
        bytes[8] = (bytes[8] & 0x3F) | 0x80  // RFC 4122 variant
        let hex = bytes.map { String(format: "%02x", $0) }.joined()
        let c = Array(hex)
        return "\(String(c[0..<8]))-\(String(c[8..<12]))-\(String(c[12..<16]))-\(String(c[16..<20]))-\(String(c[20..<32]))"
    }

    /// The job id of a playlist's entry: `<parent>.<index>`, or a hash of the parent when that
    /// would pass the 128 characters job ids may have.
    static func childJobID(parent: String, index: Int) -> String {
        let plain = "\(parent).\(index)"
        if plain.utf8.count <= 128 { return plain }
        return "pl-\(uuid("parent:" + parent)).\(index)"
    }
}
