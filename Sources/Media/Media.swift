import CAVShims
import CLibAV

/// Media: in-process conversion through libavformat, libavcodec, libswscale and
/// libswresample (FFmpeg 5.1). It never runs an ffmpeg executable. A client
/// module: it knows nothing of jobs; the worker's handlers call it.
///
/// ## Threads, cancellation, outputs
///
/// - Every operation runs on a thread of its own (`LibAVThread`), never on the
///   cooperative pool; the async functions await it through a continuation.
/// - Cancelling the calling Task sets a flag that the packet loops check between
///   packets and that libav's blocking I/O sees through its interrupt callback.
///   The operation then throws `MediaError.cancelled`.
/// - Outputs are written to `.<name>.part-<pid>-<random>` beside the target and
///   renamed into place only when complete; on any error or cancellation the
///   temporary file is removed. No partial output is ever left under the
///   target name, and an existing file at the target stays intact until the
///   rename replaces it.
/// - Every negative libav return becomes a `MediaError` that carries
///   `av_strerror`'s text plus the last error libav logged on that thread
///   (e.g. "Invalid data found when processing input (moov atom not found)").
///   libav's own logging is captured, never printed.
///
/// ## What is copied, what is encoded, what is refused
///
/// Video is never re-encoded: a video codec the container cannot hold is refused
/// with `MediaError.unsupportedCodec`, whose message names a container that works.
///
/// | container | video copied | audio copied | audio otherwise | text subtitles |
/// |---|---|---|---|---|
/// | mp4 (index first) | H.264, HEVC, AV1, VP9, MPEG-4, MPEG-2 | AAC, MP3, Opus, AC-3, E-AC-3, ALAC | encoded to AAC | mov_text |
/// | mkv | whatever the Matroska muxer accepts | whatever it accepts | encoded to AAC | SubRip/ASS copied, others to SubRip |
/// | webm | VP8, VP9, AV1 (H.264/HEVC refused) | Opus, Vorbis | encoded to Opus (libopus) | WebVTT |
/// | m4a (index first) | — | AAC | encoded to AAC | — |
/// | mp3 | — | MP3 | encoded with libmp3lame | — |
///
/// Reasons: FFmpeg 5.1 writes VP9 and Opus into MP4 without `-strict`, as
/// standardised sample entries that browsers and Plex play, so they are copied
/// (no generation loss). It would also write Vorbis into MP4, but almost no
/// player reads that, so Vorbis (and FLAC, which 5.1 marks experimental in MP4,
/// and PCM) becomes AAC. H.264 into WebM is impossible by the WebM spec and
/// re-encoding video would cost minutes per file, so it is refused; mkv or mp4
/// hold it. Encoders: native `aac` (192 kb/s stereo), `libopus` (128 kb/s),
/// `libmp3lame` (192 kb/s CBR); channels above 6 (AAC) or 2 (Opus, MP3) are
/// downmixed. Bitmap subtitles (PGS, DVD) go into mkv only and are dropped from
/// mp4 and webm; data tracks, attachments and cover art are dropped. Every
/// dropped or encoded stream is listed in `ConversionResult`.
///
/// MP4 and m4a outputs have their index (moov) before the media data, as
/// `-movflags +faststart` gives, so players can start before the download ends.
/// Rather than write the file and then rewrite all of it to move the index
/// forward (what +faststart does), the module reserves room for the index at
/// the start (`moov_size`: 24 bytes per estimated sample + 64 KiB + tags; an
/// H.264/AAC index takes about 14 bytes per sample) and writes the file once;
/// the unused rest of the room is a `free` box (120 KB, 0.6 %, for a 60 s 720p file).
/// Should the estimate fall short, the output is written again with
/// +faststart.
///
/// H.264 and HEVC inputs in (non-fragmented) MP4 or Matroska are opened
/// without avformat_find_stream_info, whose read-ahead decodes frames: their
/// headers carry what the muxers need. Everything else, fragmented (DASH) MP4
/// included, gets the usual read-ahead.
///
/// An input whose read ends in an error, or whose last packet is cut short, is
/// refused as damaged or truncated (`MediaError.invalidMedia`): a short output
/// would look complete.
///
/// Global tags and chapters of the (first) input are carried over, minus keys
/// that describe the old file (encoder, brands, Matroska statistics), and the
/// given `MediaTags` are laid over them: title, artist, date, description,
/// comment (MP4 ©nam/©ART/©day/desc/©cmt, Matroska tags, ID3v2.4 frames).
///
/// ## Cuts and chapters (`EditRequest`)
///
/// `merge` and `remux` take ranges to cut out and chapters to write, applied in
/// the same pass that copies the packets; with an empty request nothing of this
/// runs. The requested ranges are first made safe by `EditPlan` (merged,
/// clamped to the file, refused with a reason when start ≥ end or not finite,
/// at most 1000; cuts that would leave less than 1 s are refused as a whole).
/// Everything stays stream copy, so cuts fall on keyframes, by this rule:
///
/// - Video stops at the first packet, in decode order, whose time lies in a
///   removed range, and resumes at the first keyframe at or after the range's
///   end. A removed range thus grows to that keyframe (up to one GOP) and
///   nothing of it is shown; frames before the range that follow a dropped one
///   in decode order (B-frames) go with it, so no kept frame loses a reference.
///   The keyframe times come from one read of the video stream's packets (no
///   decoding) before the pass, done only when there is something to cut.
/// - Audio and subtitle packets are dropped when their middle (time + half
///   their duration) lies in a removed range, as snapped above; so audio ends
///   and resumes within one audio frame of the video.
/// - Every kept packet is moved earlier by the seconds removed before it, so
///   timestamps are continuous; where two frames would meet at one decode
///   time, the later one is moved on by one tick.
/// - Chapters (the request's, else the input's own) are made non-overlapping
///   (an inner chapter interrupts the outer one, which resumes after it),
///   titles stripped of control characters and cut to 200 characters, then
///   mapped through the cuts; a chapter wholly inside a cut is left out.
///   MP4 gets both a QuickTime chapter track (a `text` track referenced by
///   `tref/chap`) and Nero chapters (`udta/chpl`), as libav's mov muxer writes
///   them by default (players differ in which of the two they read; which one a
///   given Plex version reads was not checked here). Matroska and WebM get their
///   Chapters element.
///
/// `ConversionResult.removed` lists the ranges actually cut (snapped), in input
/// time, and `editNotes` why anything requested was refused or changed.
///
/// `merge` takes the best video stream of the video file and the best audio
/// stream of the audio file (as yt-dlp leaves them) plus subtitle files; inputs
/// are each shifted to start at zero, as the ffmpeg command does, and read
/// interleaved by time so memory stays flat.
///
/// Thumbnails: `.keyframe` seeks to the keyframe at or before the time and
/// decodes that one frame; `.exact` decodes from that keyframe to the frame on
/// screen at the time; `.poster` looks at up to 10 keyframes from the time on,
/// stepping 5 % of the duration (at least 1 s), and takes the first whose mean
/// luma is at least 28/255, else the brightest. JPEG is written at q 3
/// (mjpeg, full-range 4:2:0, even sizes), PNG as RGB24. The height follows
/// the display aspect ratio.
public enum Media {
    /// Reads the container, duration, streams, chapters and tags of a file.
    public static func probe(_ path: String) async throws(MediaError) -> MediaInfo {
        try await LibAVThread.run("probe") { flag throws(MediaError) in
            try Prober.probe(path, flag: flag)
        }
    }

    /// Rewrites any input into mp4 (with faststart), mkv or webm by stream copy,
    /// re-encoding audio or text subtitles only where the container demands it
    /// (see the table above). `subtitles` are embedded as extra tracks; `edit`
    /// cuts ranges out and sets chapters (see "Cuts and chapters").
    public static func remux(
        input: String, output: String, container: OutputContainer,
        tags: MediaTags = .none, subtitles: [SubtitleInput] = [], edit: EditRequest = .none,
        progress: (@Sendable (Double) -> Void)? = nil
    ) async throws(MediaError) -> ConversionResult {
        guard container.holdsVideo else {
            throw .invalidArgument("remux writes mp4, mkv or webm; use extractAudio for \(container.rawValue)")
        }
        return try await LibAVThread.run("remux") { flag throws(MediaError) in
            try convert(output: output, container: container, tags: tags, edit: edit, progress: progress, flag: flag) {
                conv throws(MediaError) in
                let file = try InputFile.forCopy(path: input, flag: flag)
                try conv.addAll(of: conv.addInput(file))
                try addSubtitleFiles(subtitles, to: conv, flag: flag)
                return file
            }
        }
    }

    /// Merges the best video stream of `video` and the best audio stream of
    /// `audio` (a yt-dlp video-only and audio-only pair) into mp4, mkv or webm.
    public static func merge(
        video: String, audio: String, output: String, container: OutputContainer,
        tags: MediaTags = .none, subtitles: [SubtitleInput] = [], edit: EditRequest = .none,
        progress: (@Sendable (Double) -> Void)? = nil
    ) async throws(MediaError) -> ConversionResult {
        guard container.holdsVideo else {
            throw .invalidArgument("merge writes mp4, mkv or webm, not \(container.rawValue)")
        }
        return try await LibAVThread.run("merge") { flag throws(MediaError) in
            try convert(output: output, container: container, tags: tags, edit: edit, progress: progress, flag: flag) {
                conv throws(MediaError) in
                let vfile = try InputFile.forCopy(path: video, flag: flag)
                let afile = try InputFile.forCopy(path: audio, flag: flag)
                guard let vs = vfile.bestStream(AVMEDIA_TYPE_VIDEO) else { throw .noStream(path: video, kind: .video) }
                guard let as_ = afile.bestStream(AVMEDIA_TYPE_AUDIO) else { throw .noStream(path: audio, kind: .audio) }
                try conv.addVideo(vs, of: conv.addInput(vfile))
                try conv.addAudio(as_, of: conv.addInput(afile))
                try addSubtitleFiles(subtitles, to: conv, flag: flag)
                return vfile
            }
        }
    }

    /// Writes the best audio stream of `input` as m4a (AAC copied, anything else
    /// encoded to AAC) or mp3 (MP3 copied, anything else encoded with libmp3lame).
    public static func extractAudio(
        input: String, output: String, format: AudioFormat,
        tags: MediaTags = .none, progress: (@Sendable (Double) -> Void)? = nil
    ) async throws(MediaError) -> ConversionResult {
        try await LibAVThread.run("audio") { flag throws(MediaError) in
            try convert(output: output, container: format.container, tags: tags, progress: progress, flag: flag) {
                conv throws(MediaError) in
                let file = try InputFile.forCopy(path: input, flag: flag)
                guard let s = file.bestStream(AVMEDIA_TYPE_AUDIO) else { throw .noStream(path: input, kind: .audio) }
                try conv.addAudio(s, of: conv.addInput(file))
                return file
            }
        }
    }

    /// Converts a text subtitle file (WebVTT, SubRip, ASS) into a SubRip or
    /// WebVTT sidecar, chosen by `format`.
    public static func convertSubtitles(
        input: String, output: String, format: SubtitleFormat = .srt
    ) async throws(MediaError) {
        try await LibAVThread.run("subtitles") { flag throws(MediaError) in
            let file = try InputFile(path: input, flag: flag)
            guard let s = file.bestStream(AVMEDIA_TYPE_SUBTITLE) else { throw .noStream(path: input, kind: .subtitle) }
            guard CodecRules.isTextSubtitle(s.pointee.codecpar.pointee.codec_id) else {
                throw .unsupportedCodec(
                    codec: codecName(s.pointee.codecpar.pointee.codec_id), container: format.rawValue,
                    message: "only text subtitles can become \(format.rawValue)")
            }
            let out = try OutputFile(path: output, muxer: format.muxerName)
            let t = try SubtitleTranscoder(input: s, output: out, encoder: format.codecID)
            for other in file.streams where other != s { other.pointee.discard = AVDISCARD_ALL }
            try out.begin(flag: flag, options: [])
            let pkt = try Packet()
            while true {
                try flag.check()
                let ret = av_read_frame(file.ctx, pkt.ptr)
                if ret == AVErr.eof { break }
                if ret < 0 { throw MediaError.read(input, ret) }
                defer { av_packet_unref(pkt.ptr) }
                if pkt.ptr.pointee.stream_index == s.pointee.index {
                    try t.feed(pkt.ptr) { p throws(MediaError) in try out.write(p) }
                }
            }
            try out.commit()
        }
    }

    /// Writes one frame of `input` as a JPEG or PNG `width` pixels wide (the
    /// source width when nil; the height keeps the display aspect ratio).
    public static func thumbnail(
        input: String, output: String, at time: ThumbnailTime = .fraction(0.1),
        width: Int? = nil, format: ThumbnailFormat = .jpeg, mode: ThumbnailMode = .keyframe
    ) async throws(MediaError) -> ThumbnailResult {
        try await LibAVThread.run("thumbnail") { flag throws(MediaError) in
            try Thumbnailer.make(
                input: input, output: output, at: time, width: width,
                format: format, mode: mode, flag: flag)
        }
    }

    /// The libav libraries in use, e.g. `libavformat 59.27.100, libavcodec 59.37.100, …`
    /// (for health reports and logs).
    public static var libraryVersions: String {
        func v(_ name: String, _ n: UInt32) -> String { "\(name) \(n >> 16).\((n >> 8) & 0xff).\(n & 0xff)" }
        return [
            v("libavformat", avformat_version()), v("libavcodec", avcodec_version()),
            v("libavutil", avutil_version()), v("libswscale", swscale_version()),
            v("libswresample", swresample_version()),
        ].joined(separator: ", ")
    }

    // MARK: - helpers

    private static func addSubtitleFiles(_ subs: [SubtitleInput], to conv: Converter, flag: CancelFlag) throws(MediaError) {
        for sub in subs {
            let file = try InputFile(path: sub.path, flag: flag)
            guard let s = file.bestStream(AVMEDIA_TYPE_SUBTITLE) else { throw .noStream(path: sub.path, kind: .subtitle) }
            guard CodecRules.isTextSubtitle(s.pointee.codecpar.pointee.codec_id) else {
                throw .unsupportedCodec(
                    codec: codecName(s.pointee.codecpar.pointee.codec_id),
                    container: conv.container.rawValue,
                    message: "subtitle files must be text (WebVTT, SubRip, ASS)")
            }
            let input = conv.addInput(file)
            try conv.addSubtitle(s, of: input, language: sub.language, title: sub.title)
        }
    }

    /// Builds a conversion with `setup` (which returns the input whose tags and
    /// chapters carry over), runs it and probes the output. An MP4 whose space
    /// reserved for the index turns out too small is written again with a
    /// faststart pass instead.
    static func convert(
        output: String, container: OutputContainer, tags: MediaTags, edit: EditRequest = .none,
        progress: (@Sendable (Double) -> Void)?, flag: CancelFlag,
        reservation: IndexReservation = .standard,
        setup: (Converter) throws(MediaError) -> InputFile?
    ) throws(MediaError) -> ConversionResult {
        let reporter = ProgressReporter(progress)
        var reserve: IndexReservation? = reservation
        while true {
            let conv = try Converter(output: output, container: container)
            conv.edit = edit
            let meta = try setup(conv)
            do {
                try conv.run(flag: flag, tags: tags, metadataFrom: meta, progress: reporter, reservation: reserve)
            } catch {
                if reserve != nil && conv.indexReservationTooSmall {
                    reserve = nil
                    continue
                }
                throw error
            }
            // Our own outputs have complete headers: no need to read ahead.
            let info = try Prober.probe(output, flag: flag, thorough: false)
            reporter.finish()
            return ConversionResult(
                output: info, transcoded: conv.transcoded, dropped: conv.dropped,
                removed: conv.plan?.removed ?? [], editNotes: conv.plan?.notes ?? [])
        }
    }
}

/// Sidecar subtitle formats of `Media.convertSubtitles`.
public enum SubtitleFormat: String, Sendable, Equatable, CaseIterable, Codable {
    case srt, vtt

    var muxerName: String { self == .srt ? "srt" : "webvtt" }
    var codecID: AVCodecID { self == .srt ? AV_CODEC_ID_SUBRIP : AV_CODEC_ID_WEBVTT }
}
