// Value types of the Media module: what probe reports and what the operations take.

/// The kind of an elementary stream.
public enum StreamKind: String, Sendable, Equatable, Codable {
    case video, audio, subtitle, data, attachment, unknown
}

/// One elementary stream of a media file, as `Media.probe` reports it.
public struct StreamInfo: Sendable, Equatable {
    /// Index of the stream in its container.
    public var index: Int
    public var kind: StreamKind
    /// libav's short codec name: `h264`, `vp9`, `aac`, `opus`, `subrip`, `mov_text`, ...
    public var codec: String
    /// Codec profile name when libav knows it (`High`, `LC`, ...).
    public var profile: String?
    /// Video: coded width and height in pixels.
    public var width: Int?
    public var height: Int?
    /// Video: frames per second (average frame rate, else the base rate).
    public var frameRate: Double?
    /// Bits per second, when the container or the codec states it.
    public var bitRate: Int?
    /// Audio: samples per second and channel count.
    public var sampleRate: Int?
    public var channels: Int?
    /// ISO 639 language from the stream's tags (`eng`, `fre`, ...).
    public var language: String?
    /// Duration of the stream in seconds, when known.
    public var duration: Double?
    /// The stream is flagged as default / as an attached picture (cover art).
    public var isDefault: Bool
    public var isAttachedPicture: Bool
    /// The stream's own tags.
    public var tags: [String: String]
}

/// A chapter of a media file.
public struct ChapterInfo: Sendable, Equatable {
    public var start: Double
    public var end: Double
    public var title: String?
}

/// What `Media.probe` learns about a file.
public struct MediaInfo: Sendable, Equatable {
    /// libav's demuxer name, e.g. `mov,mp4,m4a,3gp,3g2,mj2`, `matroska,webm`.
    public var container: String
    /// The demuxer's long name, e.g. `QuickTime / MOV`.
    public var containerLongName: String
    /// Duration in seconds, when known.
    public var duration: Double?
    /// Overall bits per second, when known.
    public var bitRate: Int?
    /// Size of the file in bytes.
    public var size: Int64?
    public var streams: [StreamInfo]
    public var chapters: [ChapterInfo]
    /// Global tags (keys as the container spells them: `title`, `artist`, `date`, ...).
    public var tags: [String: String]

    public var videoStreams: [StreamInfo] { streams.filter { $0.kind == .video && !$0.isAttachedPicture } }
    public var audioStreams: [StreamInfo] { streams.filter { $0.kind == .audio } }
    public var subtitleStreams: [StreamInfo] { streams.filter { $0.kind == .subtitle } }

    /// A tag looked up without regard to case (Matroska writes `TITLE`, MP4 `title`).
    public func tag(_ key: String) -> String? {
        if let v = tags[key] { return v }
        let lower = key.lowercased()
        return tags.first { $0.key.lowercased() == lower }?.value
    }
}

/// A container the module writes.
public enum OutputContainer: String, Sendable, Equatable, CaseIterable, Codable {
    case mp4, mkv, webm, m4a, mp3

    /// The file extension, without the dot.
    public var fileExtension: String { rawValue }

    /// libav's muxer name.
    var muxerName: String {
        switch self {
        case .mp4: return "mp4"
        case .mkv: return "matroska"
        case .webm: return "webm"
        case .m4a: return "ipod"
        case .mp3: return "mp3"
        }
    }

    /// Whether the container carries video (m4a and mp3 are audio only).
    public var holdsVideo: Bool { self == .mp4 || self == .mkv || self == .webm }
}

/// Audio-only output formats of `Media.extractAudio`.
public enum AudioFormat: String, Sendable, Equatable, CaseIterable, Codable {
    /// AAC in MPEG-4 audio: copied when the source is AAC, else encoded to AAC.
    case m4a
    /// MP3: copied when the source is MP3, else encoded with libmp3lame.
    case mp3

    var container: OutputContainer { self == .m4a ? .m4a : .mp3 }
}

/// Tags written into an output. `nil` leaves a tag as the input had it; an empty
/// string removes it.
public struct MediaTags: Sendable, Equatable {
    public var title: String?
    /// The artist; for a download, the channel.
    public var artist: String?
    /// The release date, written as given (`2024-01-31` is the portable form).
    public var date: String?
    public var description: String?
    /// A comment; for a download, the source URL.
    public var comment: String?

    public init(
        title: String? = nil, artist: String? = nil, date: String? = nil,
        description: String? = nil, comment: String? = nil
    ) {
        self.title = title
        self.artist = artist
        self.date = date
        self.description = description
        self.comment = comment
    }

    public static let none = MediaTags()

    var pairs: [(String, String)] {
        var out: [(String, String)] = []
        if let title { out.append(("title", title)) }
        if let artist { out.append(("artist", artist)) }
        if let date { out.append(("date", date)) }
        if let description { out.append(("description", description)) }
        if let comment { out.append(("comment", comment)) }
        return out
    }
}

/// A subtitle file to embed (`merge`, `embedSubtitles`).
public struct SubtitleInput: Sendable, Equatable {
    /// Path of a text subtitle file libav can read: WebVTT, SubRip, ASS.
    public var path: String
    /// ISO 639-2 language (`eng`) or a yt-dlp code (`en`); written as the stream's language.
    public var language: String?
    /// A title for the track.
    public var title: String?

    public init(path: String, language: String? = nil, title: String? = nil) {
        self.path = path
        self.language = language
        self.title = title
    }
}

/// What a conversion did, beside the output's own probe.
public struct ConversionResult: Sendable, Equatable {
    /// The output, probed after it was renamed into place.
    public var output: MediaInfo
    /// One line per stream that was encoded rather than copied, e.g. `audio 1: vorbis -> aac`.
    public var transcoded: [String]
    /// One line per input stream left out, e.g. `data 3: bin_data (not allowed in mp4)`.
    public var dropped: [String]
    /// Ranges cut out, in the input's time, as done (snapped to keyframes, see Media.swift).
    public var removed: [TimeRange] = []
    /// Why requested cuts or chapters were refused or changed.
    public var editNotes: [String] = []

    /// Seconds cut out in all.
    public var removedSeconds: Double { removed.reduce(0) { $0 + $1.length } }
}

/// Where a thumbnail is taken.
public enum ThumbnailTime: Sendable, Equatable {
    /// Seconds from the start.
    case seconds(Double)
    /// A fraction of the duration, 0...1.
    case fraction(Double)
}

/// The image format of a thumbnail.
public enum ThumbnailFormat: String, Sendable, Equatable, CaseIterable, Codable {
    case jpeg, png
}

/// How a thumbnail frame is chosen.
public enum ThumbnailMode: String, Sendable, Equatable, CaseIterable, Codable {
    /// The keyframe at or before the time: one frame decoded, the fastest.
    case keyframe
    /// The frame shown at the time: decodes from the keyframe before it.
    case exact
    /// Like `keyframe`, but steps forward past near-black frames (fades, black
    /// intros) to a frame worth showing as a poster.
    case poster
}

/// What `Media.thumbnail` wrote.
public struct ThumbnailResult: Sendable, Equatable {
    public var width: Int
    public var height: Int
    /// Presentation time of the frame used, in seconds.
    public var time: Double
}
