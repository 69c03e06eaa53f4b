/// A quality a job may ask for (contract section 5).
public enum Quality: String, Sendable, Equatable, CaseIterable {
    case best
    case p2160 = "2160p"
    case p1440 = "1440p"
    case p1080 = "1080p"
    case p720 = "720p"
    case p480 = "480p"
    case p360 = "360p"
    case audio

    /// The largest picture size allowed (the shorter side, so vertical videos count like wide ones).
    public var maxHeight: Int? {
        switch self {
        case .best, .audio: return nil
        case .p2160: return 2160
        case .p1440: return 1440
        case .p1080: return 1080
        case .p720: return 720
        case .p480: return 480
        case .p360: return 360
        }
    }
}

/// A container a job may ask for (contract section 5).
public enum Container: String, Sendable, Equatable, CaseIterable {
    case mp4, mkv, webm, m4a, mp3

    /// Whether the container holds audio only.
    public var isAudioOnly: Bool { self == .m4a || self == .mp3 }
}

/// Codec families, from yt-dlp's codec strings (`avc1.64001F`, `vp09.00.40.08`, `mp4a.40.2`, ...).
public enum CodecFamily: String, Sendable, Equatable {
    case h264, hevc, vp8, vp9, av1, otherVideo
    case aac, opus, vorbis, mp3, ac3, flac, otherAudio
    case unknown

    /// The family of a video codec string.
    public static func video(_ codec: String?) -> CodecFamily {
        guard let c = codec?.lowercased(), c != "none", !c.isEmpty else { return .unknown }
        if c.hasPrefix("avc") || c.hasPrefix("h264") { return .h264 }
        if c.hasPrefix("hev") || c.hasPrefix("hvc") || c.hasPrefix("h265") { return .hevc }
        if c.hasPrefix("vp09") || c.hasPrefix("vp9") { return .vp9 }
        if c.hasPrefix("vp8") { return .vp8 }
        if c.hasPrefix("av01") || c == "av1" { return .av1 }
        return .otherVideo
    }

    /// The family of an audio codec string.
    public static func audio(_ codec: String?) -> CodecFamily {
        guard let c = codec?.lowercased(), c != "none", !c.isEmpty else { return .unknown }
        if c == "mp4a.40.34" || c == "mp4a.6b" || c.hasPrefix("mp3") { return .mp3 }
        if c.hasPrefix("mp4a") || c.hasPrefix("aac") { return .aac }
        if c.hasPrefix("opus") { return .opus }
        if c.hasPrefix("vorbis") { return .vorbis }
        if c.hasPrefix("ac-3") || c.hasPrefix("ec-3") || c.hasPrefix("ac3") || c.hasPrefix("eac3") { return .ac3 }
        if c.hasPrefix("flac") { return .flac }
        return .otherAudio
    }
}

/// What to download for a request, and how it becomes the output.
public struct FormatPlan: Sendable, Equatable {
    public enum Kind: Sendable, Equatable {
        /// A video-only and an audio-only format, to be merged.
        case separate
        /// One format with both (or unknown) streams, to be remuxed.
        case combined
        /// Video without any audio track (the site has none).
        case videoOnly
        /// Audio only, to become m4a or mp3.
        case audioOnly
    }

    public var kind: Kind
    /// The formats to download, video first.
    public var formats: [FormatInfo]
    /// The container of the output.
    public var container: Container

    /// yt-dlp's `-f` value that downloads exactly these formats, each to a file of its own.
    public var selector: String {
        formats.map { "b*[format_id='\($0.id)']" }.joined(separator: ",")
    }

    /// The expected download size in bytes, when every format's size can be estimated.
    public func expectedSize(duration: Double?) -> Int64? {
        var total: Int64 = 0
        for f in formats {
            guard let s = f.expectedSize(duration: duration) else { return nil }
            total += s
        }
        return total
    }
}

/// Picks formats from yt-dlp's list for a quality and a container, the way a person would:
/// the largest picture within the quality (the smallest available when none fits), separate best
/// video and best audio when the site has them, a combined format when that is all there is, and
/// codecs the container can hold by stream copy (the Media module never re-encodes video).
///
/// - mp4 prefers H.264, then VP9/AV1, then HEVC (never VP8); WebM takes only VP8/VP9/AV1; mkv takes
///   anything. Audio prefers the original language, then a codec the container copies (AAC for
///   mp4 and m4a, Opus for WebM and mkv, MP3 for mp3), then the bit rate.
/// - `audio` quality, or an m4a/mp3 container, takes the best audio (an m4a when the container
///   asked for holds video).
public enum FormatSelector {
    /// The plan for `quality` and `container`.
    ///
    /// - Throws: `YtDlpError.noFormat` when nothing usable is offered, with a sentence that says
    ///   which choice would work.
    public static func plan(formats all: [FormatInfo], quality: Quality, container requested: Container) throws(YtDlpError) -> FormatPlan {
        let formats = all.filter(isUsable)
        guard !formats.isEmpty else {
            throw .noFormat("The site offers no downloadable format for this video (it may be DRM-protected or not yet available).")
        }
        if quality == .audio || requested.isAudioOnly {
            let output: Container = requested.isAudioOnly ? requested : .m4a
            let audioOnly = formats.filter { $0.hasVideo == false && $0.hasAudio != false }
            if let best = audioOnly.max(by: { audioKey($0, output) < audioKey($1, output) }) {
                return FormatPlan(kind: .audioOnly, formats: [best], container: output)
            }
            let withAudio = formats.filter { $0.hasAudio != false }
            if let best = withAudio.max(by: { combinedAudioKey($0) < combinedAudioKey($1) }) {
                return FormatPlan(kind: .audioOnly, formats: [best], container: output)
            }
            throw .noFormat("The video has no audio track to save as \(output.rawValue).")
        }

        let container = requested
        let videoOnly = formats.filter { $0.hasVideo == true && $0.hasAudio == false && fits(container, $0) }
        let audioOnly = formats.filter { $0.hasVideo == false && $0.hasAudio != false }
        let combined = formats.filter { $0.hasVideo != false && $0.hasAudio != false && fits(container, $0) }
        let cap = quality.maxHeight

        let bestVideo = choose(videoOnly, cap: cap, container: container)
        let bestCombined = choose(combined, cap: cap, container: container)
        let bestAudio = audioOnly.max(by: { audioKey($0, container) < audioKey($1, container) })

        if let video = bestVideo, let audio = bestAudio {
            if let both = bestCombined, (both.shortSide ?? 0) >= (video.shortSide ?? 0), both.hasVideo == true {
                return FormatPlan(kind: .combined, formats: [both], container: container)
            }
            return FormatPlan(kind: .separate, formats: [video, audio], container: container)
        }
        if let both = bestCombined {
            return FormatPlan(kind: .combined, formats: [both], container: container)
        }
        if let video = bestVideo {
            return FormatPlan(kind: .videoOnly, formats: [video], container: container)
        }
        if container == .webm {
            throw .noFormat("WebM needs VP8, VP9 or AV1 video and this video has none; choose mp4 or mkv instead.")
        }
        if container == .mp4 {
            throw .noFormat("This video's codecs cannot go into mp4; choose mkv instead.")
        }
        throw .noFormat("The site offers no video format for this request; try the audio quality.")
    }

    /// Whether a format can be downloaded at all: not DRM-protected, not a storyboard, with an id
    /// yt-dlp's format selector can quote.
    static func isUsable(_ f: FormatInfo) -> Bool {
        if f.hasDRM { return false }
        if f.ext == "mhtml" || f.protocolName == "mhtml" { return false }
        if f.formatNote?.lowercased().contains("storyboard") == true { return false }
        if f.hasVideo == false && f.hasAudio == false { return false }
        return !f.id.isEmpty && f.id.utf8.count <= 128
            && f.id.utf8.allSatisfy { b in
                (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x5A) || (b >= 0x61 && b <= 0x7A)
                    || b == UInt8(ascii: "-") || b == UInt8(ascii: "_") || b == UInt8(ascii: ".") || b == UInt8(ascii: "=")
                    || b == UInt8(ascii: ":") || b == UInt8(ascii: "~") || b == UInt8(ascii: "@")
            }
    }

    /// Whether the container can take the format's video by stream copy (unknown codecs are tried).
    static func fits(_ container: Container, _ f: FormatInfo) -> Bool {
        let family = CodecFamily.video(f.vcodec)
        switch container {
        case .mp4: return family != .vp8
        case .webm: return [.vp8, .vp9, .av1, .unknown].contains(family)
        default: return true
        }
    }

    /// The best of `candidates` within `cap` (the smallest above it when none fits).
    static func choose(_ candidates: [FormatInfo], cap: Int?, container: Container) -> FormatInfo? {
        guard !candidates.isEmpty else { return nil }
        let within = candidates.filter { f in
            guard let cap, let side = f.shortSide else { return true }
            return side <= cap
        }
        if within.isEmpty {
            return candidates.min { a, b in
                (a.shortSide ?? Int.max, -videoPreference(a, container)) < (b.shortSide ?? Int.max, -videoPreference(b, container))
            }
        }
        return within.max { videoKey($0, container) < videoKey($1, container) }
    }

    static func videoKey(_ f: FormatInfo, _ container: Container) -> VideoKey {
        VideoKey(side: f.shortSide ?? 0, preference: videoPreference(f, container), fps: f.fps ?? 0, bitrate: f.vbr ?? f.tbr ?? 0)
    }

    struct VideoKey: Comparable {
        var side: Int
        var preference: Int
        var fps: Double
        var bitrate: Double
        static func < (a: VideoKey, b: VideoKey) -> Bool {
            (a.side, a.preference, a.fps, a.bitrate) < (b.side, b.preference, b.fps, b.bitrate)
        }
    }

    static func videoPreference(_ f: FormatInfo, _ container: Container) -> Int {
        switch (container, CodecFamily.video(f.vcodec)) {
        case (.mp4, .h264): return 3
        case (.mp4, .vp9), (.mp4, .av1): return 2
        case (.webm, .vp9), (.webm, .av1): return 3
        case (.webm, .vp8): return 2
        case (.mkv, .vp9), (.mkv, .av1), (.mkv, .h264): return 2
        default: return 1
        }
    }

    struct AudioKey: Comparable {
        var language: Int
        var preference: Int
        var bitrate: Double
        static func < (a: AudioKey, b: AudioKey) -> Bool {
            (a.language, a.preference, a.bitrate) < (b.language, b.preference, b.bitrate)
        }
    }

    static func audioKey(_ f: FormatInfo, _ container: Container) -> AudioKey {
        let family = CodecFamily.audio(f.acodec)
        let preference: Int
        switch (container, family) {
        case (.mp4, .aac), (.m4a, .aac), (.mp3, .mp3), (.webm, .opus), (.mkv, .opus), (.mkv, .aac): preference = 3
        case (.mp4, .opus), (.mp4, .mp3), (.mp4, .ac3), (.webm, .vorbis), (.mkv, _): preference = 2
        default: preference = 1
        }
        return AudioKey(language: f.languagePreference ?? 0, preference: preference, bitrate: f.abr ?? f.tbr ?? 0)
    }

    /// For audio taken from a combined format: the best audio bit rate, then the smallest picture.
    static func combinedAudioKey(_ f: FormatInfo) -> AudioKey {
        AudioKey(language: f.languagePreference ?? 0, preference: Int(f.abr ?? 0), bitrate: -Double(f.shortSide ?? 0))
    }
}

extension FormatInfo {
    /// The shorter side of the picture (the height of a wide video), or the height alone.
    var shortSide: Int? {
        if let width, let height, width > 0, height > 0 { return min(width, height) }
        return height
    }
}
