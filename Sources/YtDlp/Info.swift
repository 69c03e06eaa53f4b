import Foundation

/// One format a site offers for a video, from yt-dlp's info JSON.
public struct FormatInfo: Sendable, Equatable {
    /// yt-dlp's `format_id`.
    public var id: String
    /// File extension yt-dlp would use (`mp4`, `webm`, `m4a`, ...).
    public var ext: String?
    /// Video codec (`avc1.64001F`, `vp09...`, `av01...`); `none` for audio-only; nil when unknown.
    public var vcodec: String?
    /// Audio codec (`mp4a.40.2`, `opus`, ...); `none` for video-only; nil when unknown.
    public var acodec: String?
    public var width: Int?
    public var height: Int?
    public var fps: Double?
    /// Total, video and audio bit rates in kbit/s.
    public var tbr: Double?
    public var vbr: Double?
    public var abr: Double?
    /// Exact and estimated sizes in bytes.
    public var filesize: Int64?
    public var filesizeApprox: Int64?
    /// `https`, `http_dash_segments`, `m3u8_native`, ...
    public var protocolName: String?
    public var language: String?
    /// yt-dlp's preference for the audio language (higher is better; -1 for dubbed tracks).
    public var languagePreference: Int?
    public var formatNote: String?
    /// The format is DRM-protected (cannot be downloaded).
    public var hasDRM: Bool

    public init(
        id: String, ext: String? = nil, vcodec: String? = nil, acodec: String? = nil, width: Int? = nil, height: Int? = nil,
        fps: Double? = nil, tbr: Double? = nil, vbr: Double? = nil, abr: Double? = nil, filesize: Int64? = nil,
        filesizeApprox: Int64? = nil, protocolName: String? = nil, language: String? = nil, languagePreference: Int? = nil,
        formatNote: String? = nil, hasDRM: Bool = false
    ) {
        self.id = id
        self.ext = ext
        self.vcodec = vcodec
        self.acodec = acodec
        self.width = width
        self.height = height
        self.fps = fps
        self.tbr = tbr
        self.vbr = vbr
        self.abr = abr
        self.filesize = filesize
        self.filesizeApprox = filesizeApprox
        self.protocolName = protocolName
        self.language = language
        self.languagePreference = languagePreference
        self.formatNote = formatNote
        self.hasDRM = hasDRM
    }

    /// Whether the format carries video: true, false, or nil when yt-dlp does not know.
    public var hasVideo: Bool? {
        guard let vcodec else { return acodec == "none" ? true : nil }
        return vcodec != "none"
    }

    /// Whether the format carries audio: true, false, or nil when yt-dlp does not know.
    public var hasAudio: Bool? {
        guard let acodec else { return vcodec == "none" ? true : nil }
        return acodec != "none"
    }

    /// The size to expect in bytes: exact, estimated, or from the bit rate and `duration`.
    public func expectedSize(duration: Double?) -> Int64? {
        if let filesize, filesize > 0 { return filesize }
        if let filesizeApprox, filesizeApprox > 0 { return filesizeApprox }
        if let tbr, tbr > 0, let duration, duration > 0 { return Int64(tbr * 125 * duration) }
        return nil
    }
}

/// One subtitle file a site offers.
public struct SubtitleInfo: Sendable, Equatable {
    public var ext: String?
    public var name: String?
}

/// A video, from yt-dlp's info JSON (`--dump-single-json`).
public struct VideoInfo: Sendable, Equatable {
    public var id: String
    public var title: String?
    /// yt-dlp's extractor name, lower case (`youtube`, `generic`, ...).
    public var extractor: String
    /// `Youtube`, `Generic`, ...
    public var extractorKey: String?
    public var webpageURL: String?
    public var channel: String?
    public var channelID: String?
    public var uploader: String?
    /// `YYYYMMDD`.
    public var uploadDate: String?
    public var releaseDate: String?
    /// Epoch seconds.
    public var timestamp: Double?
    /// Seconds.
    public var duration: Double?
    public var description: String?
    public var thumbnail: String?
    public var tags: [String]
    public var categories: [String]
    /// `not_live`, `is_live`, `is_upcoming`, `was_live`, `post_live`.
    public var liveStatus: String?
    public var isLive: Bool
    public var formats: [FormatInfo]
    /// Subtitles by language.
    public var subtitles: [String: [SubtitleInfo]]
    /// Automatic captions by language.
    public var automaticCaptions: [String: [SubtitleInfo]]
    public var playlistTitle: String?
    public var playlistIndex: Int?

    /// When it was published, epoch milliseconds: the timestamp, else the upload (or release) day at 00:00 UTC.
    public var publishedMilliseconds: Int64? {
        if let timestamp, timestamp.isFinite, abs(timestamp) < 1e11 { return Int64((timestamp * 1000).rounded()) }
        for raw in [uploadDate, releaseDate] {
            guard let raw, raw.count == 8, raw.allSatisfy(\.isNumber) else { continue }
            let chars = Array(raw)
            var parts = tm()
            parts.tm_year = Int32(String(chars[0..<4]))! - 1900
            parts.tm_mon = Int32(String(chars[4..<6]))! - 1
            parts.tm_mday = Int32(String(chars[6..<8]))!
            let seconds = timegm(&parts)
            if seconds != -1 { return Int64(seconds) * 1000 }
        }
        return nil
    }

    /// The date as `YYYY-MM-DD`: upload date, else release date, else the timestamp's day (UTC).
    public var date: String? {
        for raw in [uploadDate, releaseDate] {
            if let raw, raw.count == 8, raw.allSatisfy(\.isNumber) {
                let chars = Array(raw)
                return "\(String(chars[0..<4]))-\(String(chars[4..<6]))-\(String(chars[6..<8]))"
            }
        }
        if let timestamp {
            var t = time_t(timestamp)
            var parts = tm()
            gmtime_r(&t, &parts)
            return String(format: "%04d-%02d-%02d", Int(parts.tm_year) + 1900, Int(parts.tm_mon) + 1, Int(parts.tm_mday))
        }
        return nil
    }

    /// The channel's name: `channel`, else `uploader`.
    public var channelName: String? {
        [channel, uploader].compactMap { $0?.trimmingWhitespace() }.first { !$0.isEmpty }
    }

    /// Whether it is a stream that has not ended.
    public var isLiveNow: Bool { isLive || liveStatus == "is_live" || liveStatus == "is_upcoming" }
}

/// One entry of a playlist listed with `--flat-playlist`.
public struct PlaylistEntry: Sendable, Equatable {
    /// What yt-dlp gives to download the entry.
    public var url: String
    public var id: String?
    public var title: String?
    /// `url` or `url_transparent` (the entry's own fields then win over the extracted ones).
    public var type: String?
    public var duration: Double?
    public var channel: String?
    public var uploader: String?
    public var timestamp: Double?
    public var description: String?
    /// `is_live`, `is_upcoming`, `was_live`, `not_live`, … when the listing says.
    public var liveStatus: String? = nil
    /// The extractor that would download it (`Youtube`), when the listing says.
    public var ieKey: String? = nil

    /// Whether it is itself a playlist (a channel's tab, a playlist inside a channel's playlists tab).
    public var isPlaylist: Bool {
        type == "playlist" || ["youtubetab", "youtubeplaylist"].contains((ieKey ?? "").lowercased())
    }

    /// Whether the listing marks it as a stream that is on now or has not begun.
    public var isLiveOrUpcoming: Bool { liveStatus == "is_live" || liveStatus == "is_upcoming" }

    /// The entry's id: yt-dlp's, else the one smuggled into its link (an RSS item's guid).
    public var stableID: String? {
        if let id, !id.isEmpty { return id }
        guard let range = url.range(of: "#__youtubedl_smuggle=") else { return nil }
        // Form-encoded (`+` for a space, as Python's urlencode writes it).
        let encoded = String(url[range.upperBound...]).replacingOccurrences(of: "+", with: " ")
        guard let decoded = encoded.removingPercentEncoding,
            let object = try? JSONSerialization.jsonObject(with: Data(decoded.utf8)) as? [String: Any],
            let forced = object["force_videoid"] as? String, !forced.isEmpty
        else { return nil }
        return forced
    }
}

/// A playlist, from `--flat-playlist --dump-single-json`.
public struct PlaylistInfo: Sendable, Equatable {
    public var id: String
    public var title: String?
    public var extractor: String
    public var webpageURL: String?
    public var channel: String?
    public var uploader: String?
    public var entries: [PlaylistEntry]
}

/// What a link turned out to be.
public enum Extraction: Sendable, Equatable {
    case video(VideoInfo)
    case playlist(PlaylistInfo)

    /// Reads yt-dlp's info JSON.
    ///
    /// - Throws: `YtDlpError.badOutput` when it is not a JSON object with an id.
    public static func parse(_ json: [UInt8]) throws(YtDlpError) -> Extraction {
        let object: Any
        do {
            object = try JSONSerialization.jsonObject(with: Data(json), options: [])
        } catch {
            throw .badOutput("yt-dlp's description of the video is not valid JSON (\(json.count) bytes); the download will be tried again.")
        }
        guard let dict = object as? [String: Any] else { throw .badOutput("yt-dlp's description of the video is not a JSON object.") }
        let type = string(dict["_type"]) ?? "video"
        let extractor = (string(dict["extractor"]) ?? string(dict["extractor_key"]) ?? "generic").lowercased()
        if type == "playlist" || type == "multi_video" {
            let rawEntries = dict["entries"] as? [Any] ?? []
            let entries: [PlaylistEntry] = rawEntries.compactMap { item in
                guard let e = item as? [String: Any] else { return nil }
                guard let url = string(e["url"]) ?? string(e["webpage_url"]) ?? string(e["original_url"]) else { return nil }
                return PlaylistEntry(
                    url: url, id: string(e["id"]), title: string(e["title"]), type: string(e["_type"]),
                    duration: double(e["duration"]), channel: string(e["channel"]), uploader: string(e["uploader"]),
                    timestamp: double(e["timestamp"]), description: string(e["description"]),
                    liveStatus: string(e["live_status"]), ieKey: string(e["ie_key"]))
            }
            return .playlist(
                PlaylistInfo(
                    id: string(dict["id"]) ?? "playlist", title: string(dict["title"]), extractor: extractor,
                    webpageURL: string(dict["webpage_url"]), channel: string(dict["channel"]), uploader: string(dict["uploader"]),
                    entries: entries))
        }
        guard let id = string(dict["id"]), !id.isEmpty else { throw .badOutput("yt-dlp described the video without an id.") }
        // Manifests (DASH, HLS) may give no duration but list their fragments' durations.
        var fragmentsDuration: Double?
        for item in dict["formats"] as? [Any] ?? [] {
            guard let f = item as? [String: Any], let fragments = f["fragments"] as? [Any] else { continue }
            let total = fragments.reduce(0.0) { $0 + (double(($1 as? [String: Any])?["duration"]) ?? 0) }
            if total > 0 { fragmentsDuration = max(fragmentsDuration ?? 0, total) }
        }
        // A video of one format (an extractor that gave a `url` and no list, e.g. a page's JSON-LD) is
        // described with that format's fields at the top level.
        let listed = dict["formats"] as? [Any] ?? []
        let formatDicts: [Any] = listed.isEmpty && string(dict["url"]) != nil && string(dict["format_id"]) != nil ? [dict] : listed
        let formats = formatDicts.compactMap { item -> FormatInfo? in
            guard let f = item as? [String: Any], let fid = string(f["format_id"]) else { return nil }
            return FormatInfo(
                id: fid, ext: string(f["ext"]), vcodec: string(f["vcodec"]), acodec: string(f["acodec"]),
                width: int(f["width"]), height: int(f["height"]), fps: double(f["fps"]), tbr: double(f["tbr"]),
                vbr: double(f["vbr"]), abr: double(f["abr"]), filesize: int64(f["filesize"]),
                filesizeApprox: int64(f["filesize_approx"]), protocolName: string(f["protocol"]),
                language: string(f["language"]), languagePreference: int(f["language_preference"]),
                formatNote: string(f["format_note"]), hasDRM: bool(f["has_drm"]) ?? false)
        }
        return .video(
            VideoInfo(
                id: id, title: string(dict["title"]), extractor: extractor, extractorKey: string(dict["extractor_key"]),
                webpageURL: string(dict["webpage_url"]), channel: string(dict["channel"]), channelID: string(dict["channel_id"]),
                uploader: string(dict["uploader"]), uploadDate: string(dict["upload_date"]), releaseDate: string(dict["release_date"]),
                timestamp: double(dict["timestamp"]), duration: double(dict["duration"]) ?? fragmentsDuration,
                description: string(dict["description"]),
                thumbnail: string(dict["thumbnail"]), tags: strings(dict["tags"]), categories: strings(dict["categories"]),
                liveStatus: string(dict["live_status"]), isLive: bool(dict["is_live"]) ?? false, formats: formats,
                subtitles: subtitles(dict["subtitles"]), automaticCaptions: subtitles(dict["automatic_captions"]),
                playlistTitle: string(dict["playlist_title"]) ?? string(dict["playlist"]), playlistIndex: int(dict["playlist_index"])))
    }

    // MARK: lenient field readers (yt-dlp writes numbers as ints or floats, and nulls freely)

    static func string(_ v: Any?) -> String? {
        v as? String
    }

    static func double(_ v: Any?) -> Double? {
        switch v {
        case let n as NSNumber: return n.doubleValue.isFinite ? n.doubleValue : nil
        case let s as String: return Double(s)
        default: return nil
        }
    }

    static func int(_ v: Any?) -> Int? {
        guard let d = double(v), d.isFinite, abs(d) < 9e15 else { return nil }
        return Int(d)
    }

    static func int64(_ v: Any?) -> Int64? {
        guard let d = double(v), d.isFinite, abs(d) < 9e18 else { return nil }
        return Int64(d)
    }

    static func bool(_ v: Any?) -> Bool? {
        switch v {
        case let b as Bool: return b
        case let n as NSNumber: return n.boolValue
        default: return nil
        }
    }

    static func strings(_ v: Any?) -> [String] {
        (v as? [Any])?.compactMap { $0 as? String } ?? []
    }

    static func subtitles(_ v: Any?) -> [String: [SubtitleInfo]] {
        guard let dict = v as? [String: Any] else { return [:] }
        var out: [String: [SubtitleInfo]] = [:]
        for (language, list) in dict {
            let tracks = (list as? [Any] ?? []).compactMap { item -> SubtitleInfo? in
                guard let t = item as? [String: Any] else { return nil }
                return SubtitleInfo(ext: string(t["ext"]), name: string(t["name"]))
            }
            if !tracks.isEmpty { out[language] = tracks }
        }
        return out
    }
}
